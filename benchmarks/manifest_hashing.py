"""What recording the outputs costs: the same job with and without an output manifest.

The job writes a 1 GiB output folder of 1,000 files (1 MiB each, 10 tasks of 100 files). It runs
twice per round through ``run_job``: once with the folder declared ``dataFlow: OUT`` (so every
file is hashed after the run) and once with ``dataFlow: NONE`` (nothing hashed). The best of the
rounds counts, runs alternating, because small machines are noisy; each run starts from an empty
folder so both write the same bytes.

Target: the manifest must not double the run's wall time (ratio OUT/NONE below 2.0).

    .venv/bin/python benchmarks/manifest_hashing.py            # table
    .venv/bin/python benchmarks/manifest_hashing.py --json     # one JSON object
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from openjd_notebook import Template, run_job

FILES = 1000
FILE_BYTES = 1024 * 1024
TASKS = 10
TARGET_RATIO = 2.0

WRITE_FILES = (
    "import os, pathlib, sys\n"
    "out = pathlib.Path(sys.argv[1]); out.mkdir(parents=True, exist_ok=True)\n"
    "task, per_task, size = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])\n"
    "for i in range(per_task):\n"
    "    (out / f'{task:02d}-{i:04d}.bin').write_bytes(os.urandom(size))\n"
)


def template(data_flow: str) -> Template:
    document = {
        "specificationVersion": "jobtemplate-2023-09",
        "name": f"Write-{data_flow}",
        "parameterDefinitions": [
            {"name": "Out", "type": "PATH", "objectType": "DIRECTORY", "dataFlow": data_flow}
        ],
        "steps": [
            {
                "name": "Write",
                "parameterSpace": {
                    "taskParameterDefinitions": [
                        {"name": "T", "type": "INT", "range": f"1-{TASKS}"}
                    ]
                },
                "script": {
                    "actions": {
                        "onRun": {
                            "command": sys.executable,
                            "args": [
                                "-c",
                                WRITE_FILES,
                                "{{Param.Out}}",
                                "{{Task.Param.T}}",
                                str(FILES // TASKS),
                                str(FILE_BYTES),
                            ],
                        }
                    }
                },
            }
        ],
    }
    return Template.from_text(yaml.safe_dump(document, sort_keys=False))


def timed_run(data_flow: str, work: Path) -> tuple[float, int]:
    out = work / "out"
    shutil.rmtree(out, ignore_errors=True)
    sessions = work / "sessions"
    sessions.mkdir(exist_ok=True)
    started = time.perf_counter()
    result = run_job(
        template(data_flow),
        {"Out": str(out)},
        runs_root=work / "runs",
        session_root=sessions,
        workers=2,
    )
    elapsed = time.perf_counter() - started
    if not result.ok:
        raise SystemExit(f"the {data_flow} run failed: {result.error}")
    hashed = int((result.outputs["state"] == "hashed").sum()) if data_flow == "OUT" else 0
    return elapsed, hashed


def measure(rounds: int) -> dict[str, Any]:
    best = {"OUT": float("inf"), "NONE": float("inf")}
    hashed = 0
    with tempfile.TemporaryDirectory(prefix="openjd-manifest-bench-") as folder:
        work = Path(folder)
        for _ in range(rounds):
            for flow in ("NONE", "OUT"):
                elapsed, count = timed_run(flow, work)
                best[flow] = min(best[flow], elapsed)
                hashed = max(hashed, count)
    ratio = best["OUT"] / best["NONE"]
    return {
        "files": FILES,
        "bytes": FILES * FILE_BYTES,
        "hashed_files": hashed,
        "without_manifest_s": round(best["NONE"], 2),
        "with_manifest_s": round(best["OUT"], 2),
        "ratio": round(ratio, 2),
        "target": f"< {TARGET_RATIO}",
        "met": ratio < TARGET_RATIO,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    numbers = measure(args.rounds)
    if args.json:
        print(json.dumps(numbers))
        return 0
    print(f"1 GiB output folder of {FILES} files, 2 workers, best of {args.rounds} rounds")
    print(f"  without an output manifest (dataFlow NONE): {numbers['without_manifest_s']:6.2f} s")
    print(f"  with an output manifest (dataFlow OUT):     {numbers['with_manifest_s']:6.2f} s")
    met = "met" if numbers["met"] else "NOT met"
    print(f"  ratio {numbers['ratio']:.2f} (target {numbers['target']}: {met})")
    print(f"  {numbers['hashed_files']} files hashed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
