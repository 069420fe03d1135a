"""papermill drives the tutorials: injected parameters reach the job, a failed run fails the run.

papermill is a test dependency; without it these tests are skipped, saying so.
"""

from __future__ import annotations

import json
import shutil
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

papermill = pytest.importorskip(
    "papermill", reason="papermill is not installed (pip install papermill: a test dependency)"
)

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
KERNEL = "openjd-notebook-papermill"


@pytest.fixture
def kernel_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A kernelspec that runs this interpreter, where papermill's kernel manager looks first."""
    spec = tmp_path / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": KERNEL, "language": "python"})
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    return KERNEL


def outputs_text(cell: nbformat.NotebookNode) -> str:
    parts = []
    for output in cell.get("outputs", []):
        parts.append(str(output.get("text", "")))
        parts.append(str(output.get("data", {}).get("text/plain", "")))
    return "".join(parts)


def test_injected_parameters_reach_the_job(kernel_name: str, tmp_path: Path) -> None:
    workdir = tmp_path / "notebooks"
    shutil.copytree(NOTEBOOKS, workdir, ignore=shutil.ignore_patterns("openjd-runs"))
    output = tmp_path / "01-executed.ipynb"
    executed = papermill.execute_notebook(
        str(workdir / "01-first-job.ipynb"),
        str(output),
        parameters={"foo": 7},
        kernel_name=kernel_name,
        cwd=str(workdir),
        progress_bar=False,
    )
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "foo = 7" in injected[0].source
    logged = next(c for c in executed.cells if c.source == 'print(result.log("DemoStep", 0))')
    assert "Foo=7 Bar=1" in outputs_text(logged)  # the run used the injected value
    checks = next(c for c in executed.cells if c.source.startswith("assert result.ok"))
    assert "All checks passed." in outputs_text(checks)


FAILING = textwrap.dedent(
    f"""\
    %%openjd_template job
    specificationVersion: jobtemplate-2023-09
    name: MaybeFails
    parameterDefinitions:
    - name: Code
      type: INT
    steps:
    - name: Render
      script:
        actions:
          onRun:
            command: {sys.executable}
            args: ["-c", "import sys; sys.exit({{{{Param.Code}}}})"]
    """
)


def failing_notebook(path: Path, run_line: str) -> Path:
    notebook = nbformat.v4.new_notebook()
    parameters = nbformat.v4.new_code_cell("exit_code = 0")
    parameters.metadata["tags"] = ["parameters"]
    notebook.cells = [
        nbformat.v4.new_code_cell("%load_ext openjd_notebook"),
        parameters,
        nbformat.v4.new_code_cell(FAILING),
        nbformat.v4.new_code_cell(f'values = {{"Code": exit_code}}\n{run_line}'),
        nbformat.v4.new_code_cell("print('after the run')"),
    ]
    notebook.metadata["kernelspec"] = {"name": KERNEL, "display_name": KERNEL, "language": "python"}
    nbformat.write(notebook, path)
    return path


@pytest.mark.parametrize(
    "run_line",
    [
        "%openjd_run job --params values --raise",
        "%openjd_config raise_on_failure=True\n%openjd_run job --params values",
    ],
    ids=["--raise", "raise_on_failure"],
)
def test_a_failed_run_fails_the_papermill_run(
    kernel_name: str, tmp_path: Path, run_line: str
) -> None:
    source = failing_notebook(tmp_path / "job.ipynb", run_line)
    run = {"kernel_name": kernel_name, "cwd": str(tmp_path), "progress_bar": False}
    # The same notebook succeeds with its own value...
    papermill.execute_notebook(str(source), str(tmp_path / "ok.ipynb"), **run)
    # ...and stops at the run when the injected value makes the job fail.
    with pytest.raises(papermill.PapermillExecutionError) as raised:
        papermill.execute_notebook(
            str(source), str(tmp_path / "failed.ipynb"), parameters={"exit_code": 3}, **run
        )
    assert raised.value.ename == "JobFailedError"
    assert "job 'MaybeFails' failed: Render[0] failed: exit code 3" in raised.value.evalue
    saved = nbformat.read(tmp_path / "failed.ipynb", as_version=4)
    assert "after the run" not in outputs_text(saved.cells[-1])
