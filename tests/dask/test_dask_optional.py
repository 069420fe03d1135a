"""Dask is an optional extra: nothing imports it until an executor is made."""

from __future__ import annotations

import subprocess
import sys

import pytest

from openjd_notebook.jobs.dask_executor import ClusterError, DaskExecutor


def test_importing_the_executor_module_does_not_import_dask() -> None:
    code = (
        "import sys, openjd_notebook, openjd_notebook.jobs.dask_executor;"
        "print('distributed' in sys.modules or 'dask' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_without_dask_making_an_executor_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    with pytest.raises(ClusterError, match=r"pip install 'openjd-notebook\[dask\]'"):
        DaskExecutor("tcp://127.0.0.1:8786")
