"""The seed README example runs against our engine with only its import line changed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "seed_readme_demo.py"
SEED = ROOT.parent / "shared" / "reference" / "seed-openjd-sessions-README.md"

pytestmark = pytest.mark.skipif(not SEED.is_file(), reason=f"seed README not found at {SEED}")


def _run_demo(tmp_path: Path, *, reference: bool) -> list[str]:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    script = DEMO.read_text()
    if reference:  # the same example through the reference library
        script = script.replace(
            'OUR_IMPORT = "from openjd_notebook.sessions import"', "OUR_IMPORT = REFERENCE_IMPORT"
        )
    path = tmp_path / ("reference.py" if reference else "ours.py")
    path.write_text(script)
    result = subprocess.run(
        [sys.executable, str(path)],
        env={**env, "OPENJD_SEED_README": str(SEED)},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout.splitlines()


def _action_output(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith(("Entering", "Exiting", "Foo="))]


def test_seed_example_runs_with_only_the_import_changed(tmp_path: Path) -> None:
    ours = _action_output(_run_demo(tmp_path, reference=False))
    expected = (
        ["Entering DemoJobEnv", "Entering DemoStepEnv"]
        + [f"Foo=12 Bar={bar}" for bar in range(1, 11)]
        + ["Exiting DemoStepEnv", "Exiting DemoJobEnv"]
    )
    assert ours == expected


def test_seed_example_output_matches_the_reference(tmp_path: Path) -> None:
    ours = _action_output(_run_demo(tmp_path, reference=False))
    reference = _action_output(_run_demo(tmp_path, reference=True))
    assert ours == reference
