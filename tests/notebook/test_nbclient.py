"""A notebook using both magics, executed headless by nbclient, saves its final summary and
no widget state."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

from kernel_harness import KERNEL_NAME

TEMPLATE = textwrap.dedent(
    f"""\
    %%openjd_template frames
    specificationVersion: jobtemplate-2023-09
    name: Frames
    parameterDefinitions:
    - name: Greeting
      type: STRING
      default: hello
    steps:
    - name: Render
      parameterSpace:
        taskParameterDefinitions:
        - name: Frame
          type: INT
          range: "1-3"
      script:
        actions:
          onRun:
            command: {sys.executable}
            args: ["-c", "print('{{{{Param.Greeting}}}} frame {{{{Task.Param.Frame}}}}')"]
    """
)


def test_executed_notebook_keeps_a_static_summary(kernel_spec_dir: Path, tmp_path: Path) -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell("%load_ext openjd_notebook"),
        nbformat.v4.new_code_cell(TEMPLATE),
        nbformat.v4.new_code_cell(
            "result = %openjd_run frames -p Greeting={{not-expanded}}\nresult.state"
        ),
        nbformat.v4.new_code_cell("print(result.log('Render', 0))"),
    ]
    manager = KernelManager(
        kernel_name=KERNEL_NAME,
        kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernel_spec_dir)]),
    )
    client = NotebookClient(
        notebook, km=manager, timeout=120, resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    nbformat.write(notebook, tmp_path / "executed.ipynb")

    summary_cell, run_cell, log_cell = notebook.cells[1], notebook.cells[2], notebook.cells[3]
    assert any("Render" in str(o.get("data", {})) for o in summary_cell.outputs)
    displays = [o for o in run_cell.outputs if o.output_type == "display_data"]
    assert displays, "the run showed nothing"
    final = displays[0]["data"]
    assert "application/vnd.jupyter.widget-view+json" not in final  # replaced, not frozen at 0%
    # Nobody watches a headless run live: no widget was made, so none is saved (and
    # nbconvert's HTML needs no widget script from a CDN).
    assert "widgets" not in notebook.metadata
    assert not any(
        "application/vnd.jupyter.widget-view+json" in o.get("data", {})
        for cell in notebook.cells
        for o in cell.outputs
    )
    assert "success" in final["text/plain"] and "success" in final["text/html"]
    results = [o for o in run_cell.outputs if o.output_type == "execute_result"]
    assert results and "'success'" in results[0]["data"]["text/plain"]
    logged = "".join(o.get("text", "") for o in log_cell.outputs)
    assert "{{not-expanded}} frame 1" in logged  # the magic line is not variable-expanded
