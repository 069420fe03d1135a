"""mybinder.org without Docker: build what repo2docker builds from ``binder/``, run every notebook.

repo2docker (pip buildpack) copies the repository into the image, runs
``pip install -r "binder/requirements.txt"`` from the repository root, then ``binder/postBuild``
as the notebook user, and starts kernels with that user's ``HOME``. Here: a copy of the working
tree, a fresh venv on this Python, the same two steps with ``HOME`` pointed at a temporary home,
then every ``notebooks/NN-*.ipynb`` executed on that venv's interpreter with that home.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import venv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import nbformat
import pytest

pytestmark = [pytest.mark.binder, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]
LAUNCH_NOTEBOOK = "notebooks/01-first-job.ipynb"
NOTEBOOK_GLOB = "notebooks/[0-9][0-9]-*.ipynb"
NOTEBOOKS = sorted(path.relative_to(REPO).as_posix() for path in REPO.glob(NOTEBOOK_GLOB))

# Not part of what a clone of the repository holds: environments, caches and run records.
IGNORED_EVERYWHERE = {
    ".git",
    ".venv",
    ".bench-venvs",
    "__pycache__",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    ".ipynb_checkpoints",
    "openjd-runs",
}
IGNORED_AT_ROOT = {"build", "dist"}
# Files that would make repo2docker pick another buildpack than pip (or skip requirements.txt).
OTHER_BUILDPACK_FILES = ("environment.yml", "Pipfile", "Dockerfile", "Project.toml", "default.nix")


@dataclass(frozen=True)
class BinderImage:
    """The stand-in for the image: repository copy, kernel interpreter and the user's home."""

    root: Path
    python: Path
    home: Path

    @property
    def bin(self) -> Path:
        return self.python.parent


def _ignore(root: Path) -> Callable[[str, list[str]], set[str]]:
    def ignore(directory: str, names: list[str]) -> set[str]:
        ignored = {name for name in names if name in IGNORED_EVERYWHERE}
        ignored |= {name for name in names if name.endswith(".egg-info")}
        if Path(directory) == root:
            ignored |= IGNORED_AT_ROOT.intersection(names)
        return ignored

    return ignore


def copy_repository(destination: Path) -> Path:
    """The working tree as repo2docker would see a clone of it (current versions of the files)."""
    shutil.copytree(REPO, destination, ignore=_ignore(REPO), symlinks=True)
    return destination


def _run(command: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> None:
    done = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    output = (done.stdout + done.stderr)[-6000:]
    assert done.returncode == 0, f"{' '.join(command)} exited {done.returncode}:\n{output}"


def _without_python_overrides(environ: dict[str, str]) -> dict[str, str]:
    hidden = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "IPYTHONDIR", "JUPYTER_CONFIG_DIR"}
    return {name: value for name, value in environ.items() if name not in hidden}


def kernel_environment(image: BinderImage) -> dict[str, str]:
    """The variables a kernel in the image sees: the user's HOME, the env's bin first on PATH."""
    env = _without_python_overrides(dict(os.environ))
    env["HOME"] = str(image.home)
    env["PATH"] = f"{image.bin}{os.pathsep}{env.get('PATH', os.defpath)}"
    env["VIRTUAL_ENV"] = str(image.bin.parent)
    return env


def pip_install_requirements(root: Path, python: Path) -> None:
    """What repo2docker runs, from the repository root (the pip cache is reused, unlike there)."""
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "--progress-bar=off"]
    _run(
        [*pip, "-r", "binder/requirements.txt"],
        cwd=root,
        env=_without_python_overrides(dict(os.environ)),
    )


def run_post_build(image: BinderImage) -> None:
    post_build = image.root / "binder" / "postBuild"
    assert os.access(post_build, os.X_OK), "binder/postBuild must be executable"
    _run([str(post_build)], cwd=image.root, env=kernel_environment(image))


def build_image(workdir: Path) -> BinderImage:
    root = copy_repository(workdir / "repo")
    environment = workdir / "env"
    venv.EnvBuilder(with_pip=True).create(environment)
    home = workdir / "home"
    home.mkdir()
    image = BinderImage(root=root, python=environment / "bin" / "python", home=home)
    pip_install_requirements(root, image.python)
    run_post_build(image)
    return image


def load_executor() -> ModuleType:
    """``examples/execute_notebook.py``, imported from the repository (it is not a package)."""
    path = REPO / "examples" / "execute_notebook.py"
    spec = importlib.util.spec_from_file_location("execute_notebook", path)
    assert spec is not None and spec.loader is not None, f"cannot import {path}"
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> BinderImage:
    return build_image(tmp_path_factory.mktemp("binder"))


@pytest.fixture(scope="module")
def executor() -> ModuleType:
    return load_executor()


@pytest.fixture
def in_image(image: BinderImage, monkeypatch: pytest.MonkeyPatch) -> BinderImage:
    """Kernels started by this process get the image's HOME and PATH, no Python overrides."""
    environment = kernel_environment(image)
    for name in set(os.environ) - set(environment):
        monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return image


def execute(executor: ModuleType, notebook: Path, image: BinderImage) -> nbformat.NotebookNode:
    saved = notebook.with_name(f"{notebook.stem}.executed.ipynb")
    try:
        result: nbformat.NotebookNode = executor.execute_notebook(
            notebook,
            python=str(image.python),
            save_to=saved,
            parameters=executor.QUICK_PARAMETERS.get(notebook.stem),
        )
    except executor.NotebookExecutionError as error:
        pytest.fail(f"{notebook.name}: {error}\n(executed notebook: {saved})")
    problems = [describe(output) for output in executor.error_outputs(result)]
    assert not problems, f"{notebook.name} has error outputs (see {saved}):\n" + "\n".join(problems)
    return result


def describe(output: nbformat.NotebookNode) -> str:
    if output.output_type == "error":
        return f"{output.get('ename')}: {output.get('evalue')}"
    return str(output.get("text", "")).strip()


def cell_text(cell: nbformat.NotebookNode) -> str:
    parts = []
    for output in cell.get("outputs", []):
        parts.append(str(output.get("text", "")))
        parts.append(str(output.get("data", {}).get("text/plain", "")))
    return "".join(parts)


def pinned(path: Path) -> dict[str, str]:
    """``name: version`` of every ``name==version`` line (names lower case, ``_`` as ``-``)."""
    pins = {}
    for line in path.read_text().splitlines():
        name, equals, version = line.partition("==")
        if equals and not line.startswith("#"):
            pins[name.strip().lower().replace("_", "-")] = version.strip()
    return pins


def test_binder_config_selects_the_pip_buildpack() -> None:
    binder = REPO / "binder"
    assert (binder / "requirements.txt").is_file()
    assert not (REPO / ".binder").exists(), "repo2docker refuses both binder/ and .binder/"
    present = [name for name in OTHER_BUILDPACK_FILES if (binder / name).exists()]
    assert not present, f"binder/{present} would replace the pip buildpack's requirements.txt"
    assert (REPO / LAUNCH_NOTEBOOK).is_file(), f"the launch link opens {LAUNCH_NOTEBOOK}"


def test_binder_pins_a_tested_set_and_leaves_the_base_image_alone() -> None:
    binder = REPO / "binder"
    lines = [
        line.strip()
        for line in (binder / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines == ["-c constraints.txt", ".[examples,dask]"], lines
    pins = pinned(binder / "constraints.txt")
    for package in ("ipykernel", "ipywidgets", "jupyterlab-widgets", "pandas", "openjd-model"):
        assert package in pins, f"constraints.txt does not pin {package}"
    # The base image brings JupyterLab and its server; pinning them here would fight it.
    assert not {"jupyterlab", "notebook", "jupyter-server"} & set(pins)


def test_binder_installs_the_repository(image: BinderImage) -> None:
    located = subprocess.run(
        [str(image.python), "-c", "import openjd_notebook; print(openjd_notebook.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        env=_without_python_overrides(dict(os.environ)),
        cwd=image.home,
    ).stdout.strip()
    assert Path(located).is_relative_to(image.bin.parent), located


def test_kernels_have_the_magics_without_load_ext(
    in_image: BinderImage, executor: ModuleType, tmp_path: Path
) -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell("%openjd_config")]
    path = tmp_path / "config-only.ipynb"
    nbformat.write(notebook, path)

    executed = execute(executor, path, in_image)

    assert "workers" in cell_text(executed.cells[0]), executed.cells[0].outputs


def test_binder_installs_the_pinned_versions(image: BinderImage) -> None:
    frozen = subprocess.run(
        [str(image.python), "-m", "pip", "freeze", "--exclude-editable"],
        capture_output=True,
        text=True,
        check=True,
        env=_without_python_overrides(dict(os.environ)),
    ).stdout
    installed = {}
    for line in frozen.splitlines():
        name, _, version = line.partition("==")
        installed[name.lower().replace("_", "-")] = version
    wanted = pinned(image.root / "binder" / "constraints.txt")
    wrong = {name: (version, installed.get(name)) for name, version in wanted.items()}
    wrong = {name: pair for name, pair in wrong.items() if pair[0] != pair[1]}
    assert not wrong, f"not the pinned versions (pinned, installed): {wrong}"


def test_load_ext_in_a_binder_kernel_says_nothing(
    in_image: BinderImage, executor: ModuleType, tmp_path: Path
) -> None:
    """The tutorials' own %load_ext is the first load: no "already loaded" notice."""
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell("%load_ext openjd_notebook")]
    path = tmp_path / "load-ext.ipynb"
    nbformat.write(notebook, path)

    executed = execute(executor, path, in_image)

    assert executed.cells[0].outputs == []


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_in_the_binder_environment(
    name: str, in_image: BinderImage, executor: ModuleType
) -> None:
    executed = execute(executor, in_image.root / name, in_image)
    noise = [cell_text(cell) for cell in executed.cells if "already loaded" in cell_text(cell)]
    assert not noise, f"{name}: {noise}"
