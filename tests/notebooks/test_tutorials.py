"""Every tutorial notebook runs top to bottom, headless, and leaves static run summaries."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
TUTORIALS = sorted(NOTEBOOKS.glob("[0-9][0-9]-*.ipynb"))
MAX_SECONDS = 60.0


def _load_executor() -> ModuleType:
    """``examples/execute_notebook.py``, the script ``make demo`` runs, imported as a module."""
    path = ROOT / "examples" / "execute_notebook.py"
    spec = importlib.util.spec_from_file_location("execute_notebook", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


executor = _load_executor()


def test_there_are_tutorials() -> None:
    assert [p.name for p in TUTORIALS][:3] == [
        "01-first-job.ipynb",
        "02-parameter-sweeps.ipynb",
        "03-environments.ipynb",
    ]


@pytest.mark.parametrize("notebook", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_is_stored_clean(notebook: Path) -> None:
    """Stored as current nbformat writes it: every cell has an id (nbformat warns, and will
    refuse, otherwise) and no outputs or execution counts are committed."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    assert [i for i, cell in enumerate(cells) if "id" not in cell] == []
    code = [cell for cell in cells if cell["cell_type"] == "code"]
    assert [c["id"] for c in code if c["outputs"] or c["execution_count"] is not None] == []


@pytest.mark.parametrize("notebook", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_runs_top_to_bottom(notebook: Path, tmp_path: Path) -> None:
    # A copy of the whole folder: notebooks may use files next to them, and their run records,
    # scratch files and outputs then land in tmp_path, not in the repository.
    workdir = tmp_path / "notebooks"
    shutil.copytree(
        NOTEBOOKS,
        workdir,
        ignore=shutil.ignore_patterns("openjd-runs", ".ipynb_checkpoints", "_build", "__pycache__"),
    )
    copy = workdir / notebook.name

    started = time.monotonic()
    try:
        executed = executor.execute_notebook(
            copy,
            cwd=workdir,
            save_to=tmp_path / f"executed-{notebook.name}",
            parameters=executor.QUICK_PARAMETERS.get(notebook.stem),
        )
    except executor.NotebookExecutionError as error:
        pytest.fail(f"{notebook.name}: {error}", pytrace=False)
    elapsed = time.monotonic() - started

    errors = executor.error_outputs(executed)
    assert not errors, f"{notebook.name} has error outputs: {errors}"
    assert executor.final_summaries(executed), f"{notebook.name}: no static run summary"
    frozen = executor.widget_outputs(executed)
    assert not frozen, f"{notebook.name}: a %openjd_run output is still a widget: {frozen}"
    assert "widgets" not in executed.metadata, f"{notebook.name} saved widget state"
    assert elapsed < MAX_SECONDS, f"{notebook.name} took {elapsed:.1f} s"


def parameters_cell(notebook: Path) -> tuple[int, list[str]]:
    """The index of the cell tagged ``parameters`` and the names it assigns."""
    import ast

    import nbformat

    cells = nbformat.read(notebook, as_version=4).cells
    tagged = [i for i, c in enumerate(cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{notebook.name}: {len(tagged)} cells tagged 'parameters'"
    tree = ast.parse(cells[tagged[0]].source)
    names = [t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets]
    assert names and all(isinstance(node, ast.Assign) for node in tree.body), notebook.name
    return tagged[0], names


@pytest.mark.parametrize("notebook", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_every_tutorial_has_parameters_that_reach_its_jobs(notebook: Path) -> None:
    """papermill -p NAME VALUE overrides them; a later cell puts each into a dict that a run
    takes with --params (or into the Python API's parameters)."""
    import nbformat

    index, names = parameters_cell(notebook)
    later = "\n".join(c.source for c in nbformat.read(notebook, as_version=4).cells[index + 1 :])
    assert "--params" in later, notebook.name
    for name in names:
        assert re.search(rf"\b{name}\b", later), f"{notebook.name}: {name} is never used"


def test_quick_parameters_name_variables_of_parameters_cells() -> None:
    for stem, values in executor.QUICK_PARAMETERS.items():
        _, names = parameters_cell(NOTEBOOKS / f"{stem}.ipynb")
        assert set(values) <= set(names), stem


def test_final_summaries_and_errors_are_found(tmp_path: Path) -> None:
    """The helpers the test above relies on, on a hand-made executed notebook."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    widget = "application/vnd.jupyter.widget-view+json"
    run = new_code_cell("%openjd_run job")
    run.outputs = [
        new_output("display_data", data={"text/plain": "Job: success", "text/html": "<p>"}),
        new_output("execute_result", data={"text/plain": "Job: success"}, execution_count=1),
    ]
    frozen = new_code_cell("%openjd_run job --no-block")
    frozen.outputs = [new_output("display_data", data={"text/plain": "VBox()", widget: {}})]
    other = new_code_cell("display('not a run')")
    other.outputs = [new_output("display_data", data={"text/plain": "'not a run'"})]
    usage = new_code_cell("%openjd_run nothing")
    usage.outputs = [new_output("stream", name="stderr", text="UsageError: No template\n")]
    failed = new_code_cell("1 / 0")
    failed.outputs = [new_output("error", ename="ZeroDivisionError", evalue="", traceback=[])]
    notebook = new_notebook(cells=[run, frozen, other, usage, failed])
    nbformat.validate(notebook)

    assert executor.final_summaries(notebook) == ["Job: success"]
    assert len(executor.widget_outputs(notebook)) == 1
    assert [o.output_type for o in executor.error_outputs(notebook)] == ["stream", "error"]
