"""``--cluster`` in the CLI and in ``%openjd_run`` (skipped until those options exist)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dask_support import frames_step, template

from openjd_notebook import load_run, runs
from openjd_notebook.cli import build_parser, main

pytest.importorskip("distributed")

from openjd_notebook.jobs.dask_executor import ClusterError

JOB = template([frames_step("Render", 4, "echo frame {{Task.Param.Frame}}")])


def _run_help() -> str:
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command")
    return str(commands.choices["run"].format_help())  # type: ignore[attr-defined]


cli_has_cluster = pytest.mark.skipif(
    "--cluster" not in _run_help(), reason="the CLI has no --cluster option yet"
)


@cli_has_cluster
def test_cli_runs_on_a_cluster(cluster: Any, tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(JOB.text)
    code = main(
        ["run", str(path), "--cluster", cluster.scheduler_address, "--nodes", "2",
         "--runs-root", str(tmp_path / "runs"), "--output", "json"]
    )  # fmt: skip

    assert code == 0
    record = runs(tmp_path / "runs")
    result = load_run(record["path"].iloc[0])
    assert result.ok and set(result.tasks["worker"]) <= {"0", "1"}


@cli_has_cluster
def test_cli_says_when_the_cluster_cannot_be_reached(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(JOB.text)
    started = time.monotonic()
    code = main(["run", str(path), "--cluster", "auto", "--runs-root", str(tmp_path)])
    assert code == 1 and time.monotonic() - started < 5
    assert "--cluster auto found no Dask client" in capsys.readouterr().err


@pytest.fixture
def shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    interactive = pytest.importorskip("IPython.core.interactiveshell")
    monkeypatch.chdir(tmp_path)
    ip = interactive.InteractiveShell.instance()
    ip.run_line_magic("load_ext", "openjd_notebook")
    ip.run_line_magic("openjd_config", f"runs_root={tmp_path / 'runs'}")
    if "--cluster" not in (ip.find_line_magic("openjd_run").__doc__ or ""):
        pytest.skip("%openjd_run has no --cluster option yet")
    ip.user_ns["job"] = JOB
    yield ip
    ip.run_line_magic("unload_ext", "openjd_notebook")


def test_the_magic_runs_on_a_cluster(shell: Any, cluster: Any) -> None:
    result = shell.run_line_magic(
        "openjd_run", f"job --cluster {cluster.scheduler_address} --nodes 2 --quiet"
    )
    assert result.ok and set(result.tasks["worker"]) <= {"0", "1"}


def test_the_magic_with_cluster_auto_and_no_client_fails_within_5_s(shell: Any) -> None:
    started = time.monotonic()
    with pytest.raises(ClusterError, match="--cluster auto found no Dask client"):
        shell.run_line_magic("openjd_run", "job --cluster auto")
    assert time.monotonic() - started < 5


def test_the_magic_refuses_nodes_without_a_cluster(shell: Any) -> None:
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match="--nodes needs --cluster"):
        shell.run_line_magic("openjd_run", "job --nodes 2")
