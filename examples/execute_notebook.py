"""Execute a notebook headless with nbclient and show what its OpenJD runs produced.

Usage::

    python examples/execute_notebook.py notebooks/01-first-job.ipynb [--save OUT.ipynb]
        [-p NAME VALUE ...] [--quick]

The kernel runs on the given interpreter (by default this one), through a kernelspec written to
a temporary directory, so the notebook never picks up whichever ``python3`` kernel happens to be
installed. Progress is printed per cell; at the end the last run summary (the run's task table)
is printed. The exit code is 1, with a clear message, when any cell fails.

``-p NAME VALUE`` sets a variable of the notebook's ``parameters`` cell the way papermill does:
a cell tagged ``injected-parameters`` goes right after it (VALUE is read as a Python literal,
else taken as a string). ``--quick`` uses ``QUICK_PARAMETERS``, the values that make the
tutorials' long workshop exercises short, as CI runs them.

The functions are importable too: ``execute_notebook``, ``final_summaries``, ``error_outputs``
and ``widget_outputs`` are what the tutorial tests use.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

__all__ = [
    "QUICK_PARAMETERS",
    "NotebookExecutionError",
    "error_outputs",
    "execute_notebook",
    "final_summaries",
    "inject_parameters",
    "main",
    "widget_outputs",
]

KERNEL_NAME = "openjd-notebook-headless"
WIDGET_MIMETYPE = "application/vnd.jupyter.widget-view+json"
RUN_MAGIC = "%openjd_run"

PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"
QUICK_PARAMETERS: dict[str, dict[str, Any]] = {
    # Tutorial 4's stop-button exercise runs ten 3-second frames for a workshop; CI has no
    # one to press the button, so the frames take a tenth of a second there.
    "04-cancel-and-timeouts": {"exercise_frame_seconds": 0.1},
}
"""Per tutorial (file name without ``.ipynb``), the parameters a quick, unattended run uses."""

CellProgress = Callable[[int, int, nbformat.NotebookNode, float], None]
"""Called after each code cell: (1-based cell number, number of cells, cell, seconds)."""


class NotebookExecutionError(RuntimeError):
    """A cell failed; ``notebook`` holds the outputs up to and including the failing cell."""

    def __init__(self, message: str, notebook: nbformat.NotebookNode, cell_number: int) -> None:
        super().__init__(message)
        self.notebook = notebook
        self.cell_number = cell_number


def _write_kernel_spec(directory: Path, python: str) -> None:
    spec = directory / KERNEL_NAME
    spec.mkdir(parents=True)
    kernel = {
        "argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"Python ({python})",
        "language": "python",
    }
    (spec / "kernel.json").write_text(json.dumps(kernel), encoding="utf-8")


def inject_parameters(notebook: nbformat.NotebookNode, parameters: dict[str, Any]) -> None:
    """Set ``parameters`` as papermill does: a cell tagged ``injected-parameters`` right after
    the cell tagged ``parameters`` (at the top when there is none)."""
    if not parameters:
        return
    source = "# Parameters\n" + "".join(
        f"{name} = {value!r}\n" for name, value in parameters.items()
    )
    cell = nbformat.v4.new_code_cell(source.rstrip("\n"))  # type: ignore[no-untyped-call]
    cell.metadata["tags"] = [INJECTED_TAG]
    tagged = [
        index
        for index, existing in enumerate(notebook.cells)
        if PARAMETERS_TAG in existing.get("metadata", {}).get("tags", [])
    ]
    notebook.cells.insert(tagged[0] + 1 if tagged else 0, cell)


def execute_notebook(
    path: str | Path,
    *,
    python: str = sys.executable,
    timeout: int = 120,
    cwd: str | Path | None = None,
    save_to: str | Path | None = None,
    on_cell: CellProgress | None = None,
    parameters: dict[str, Any] | None = None,
) -> nbformat.NotebookNode:
    """Run every cell of the notebook at ``path`` in a fresh kernel and return it with outputs.

    ``python`` is the interpreter the kernel runs on, ``timeout`` the limit per cell in seconds,
    ``cwd`` the kernel's working directory (default: the notebook's directory, as in Jupyter),
    ``parameters`` values for the notebook's ``parameters`` cell (see ``inject_parameters``).
    ``save_to`` also writes the executed notebook there, failed or not. A failing cell (an
    exception, a timeout or a dead kernel) stops the run and raises
    :class:`NotebookExecutionError`. The kernel's own stderr (its start-up warnings) is kept out
    of the way and only shown when the kernel dies.
    """
    path = Path(path)
    notebook: nbformat.NotebookNode = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
    inject_parameters(notebook, parameters or {})
    working_directory = Path(cwd) if cwd is not None else path.resolve().parent
    with tempfile.TemporaryDirectory(prefix="openjd-kernels-") as kernels:
        _write_kernel_spec(Path(kernels), python)
        manager = KernelManager(
            kernel_name=KERNEL_NAME,
            kernel_spec_manager=KernelSpecManager(kernel_dirs=[kernels]),
        )
        client = NotebookClient(
            notebook,
            km=manager,
            timeout=timeout,
            resources={"metadata": {"path": str(working_directory)}},
        )
        kernel_log = Path(kernels) / "kernel-stderr.log"
        try:
            with kernel_log.open("wb") as stderr:
                _run_cells(client, notebook, on_cell, stderr=stderr, kernel_log=kernel_log)
        finally:
            if save_to is not None:
                nbformat.write(notebook, Path(save_to))  # type: ignore[no-untyped-call]
    return notebook


def _run_cells(
    client: NotebookClient,
    notebook: nbformat.NotebookNode,
    on_cell: CellProgress | None,
    *,
    stderr: BinaryIO,
    kernel_log: Path,
) -> None:
    count = len(notebook.cells)
    with client.setup_kernel(stderr=stderr):
        for index, cell in enumerate(notebook.cells):
            if cell.cell_type != "code":
                continue
            started = time.monotonic()
            try:
                client.execute_cell(cell, index)
            except (CellExecutionError, CellTimeoutError, DeadKernelError) as error:
                message = f"cell {index + 1}/{count} failed:\n{error}"
                if isinstance(error, DeadKernelError):
                    message += f"\nkernel stderr:\n{kernel_log.read_text(errors='replace')}"
                raise NotebookExecutionError(message, notebook, index + 1) from None
            if on_cell is not None:
                on_cell(index + 1, count, cell, time.monotonic() - started)
        client.set_widgets_metadata()


def _is_run_cell(cell: nbformat.NotebookNode) -> bool:
    return cell.cell_type == "code" and RUN_MAGIC in cell.source


def final_summaries(notebook: nbformat.NotebookNode) -> list[str]:
    """The text of every static run summary that ``%openjd_run`` left, in notebook order.

    A static summary is a ``display_data`` output with ``text/plain`` and no widget view: the
    live dashboard replaced by the result once the run ended.
    """
    summaries: list[str] = []
    for cell in notebook.cells:
        if not _is_run_cell(cell):
            continue
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if (
                output.output_type == "display_data"
                and "text/plain" in data
                and WIDGET_MIMETYPE not in data
            ):
                summaries.append(str(data["text/plain"]))
    return summaries


def widget_outputs(notebook: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    """Outputs of ``%openjd_run`` cells that still hold a live widget view (a frozen dashboard)."""
    return [
        output
        for cell in notebook.cells
        if _is_run_cell(cell)
        for output in cell.get("outputs", [])
        if WIDGET_MIMETYPE in output.get("data", {})
    ]


def error_outputs(notebook: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    """Error outputs, and stderr streams that report an IPython ``UsageError``."""
    found: list[nbformat.NotebookNode] = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.output_type == "error" or (
                output.output_type == "stream"
                and output.get("name") == "stderr"
                and "UsageError:" in output.get("text", "")
            ):
                found.append(output)
    return found


def _describe(output: nbformat.NotebookNode) -> str:
    if output.output_type == "error":
        return f"{output.get('ename')}: {output.get('evalue')}"
    return str(output.get("text", "")).strip()


def _first_line(cell: nbformat.NotebookNode) -> str:
    source = str(cell.source).strip()
    line = source.splitlines()[0] if source else ""
    return f"{line[:47]}..." if len(line) > 50 else f"{line:<50}"


def _print_progress(number: int, count: int, cell: nbformat.NotebookNode, seconds: float) -> None:
    print(f"cell {number}/{count} {_first_line(cell)} ok ({seconds:.1f} s)", flush=True)


def _literal(text: str) -> Any:
    """``3`` and ``0.5`` as numbers, ``"'x'"`` as a string, anything else as it is."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Execute a notebook headless with nbclient.")
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--save", type=Path, metavar="OUT", help="write the executed notebook")
    parser.add_argument("--timeout", type=int, default=120, help="seconds allowed per cell")
    parser.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="a value for the notebook's parameters cell, as papermill -p",
    )
    parser.add_argument(
        "--quick", action="store_true", help="shorten the tutorials' workshop exercises"
    )
    args = parser.parse_args(argv)
    if not args.notebook.is_file():
        print(f"error: no notebook at {args.notebook}", file=sys.stderr)
        return 1

    print(f"Executing {args.notebook} with {sys.executable}", flush=True)
    started = time.monotonic()
    parameters = dict(QUICK_PARAMETERS.get(args.notebook.stem, {})) if args.quick else {}
    parameters.update({name: _literal(value) for name, value in args.parameter})
    try:
        notebook = execute_notebook(
            args.notebook,
            timeout=args.timeout,
            save_to=args.save,
            on_cell=_print_progress,
            parameters=parameters,
        )
    except NotebookExecutionError as error:
        cell = error.notebook.cells[error.cell_number - 1]
        count = len(error.notebook.cells)
        print(f"cell {error.cell_number}/{count} {_first_line(cell)} FAILED", flush=True)
        print(f"\nerror: {args.notebook} {str(error).strip()}", file=sys.stderr)
        return 1
    elapsed = time.monotonic() - started

    problems = error_outputs(notebook)
    if problems:
        print(f"\nerror: {args.notebook} has error outputs:", file=sys.stderr)
        for output in problems:
            print(f"  {_describe(output)}", file=sys.stderr)
        return 1
    summaries = final_summaries(notebook)
    if summaries:
        print(f"\n{args.notebook} ran in {elapsed:.1f} s. Its last run:\n")
        print(summaries[-1])
    else:
        print(f"\n{args.notebook} ran in {elapsed:.1f} s (it shows no %openjd_run summary).")
    if args.save is not None:
        print(f"\nExecuted notebook saved to {args.save}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
