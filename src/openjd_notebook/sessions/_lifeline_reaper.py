"""What a session's lifeline runs once it is cut; a script, never imported by the package.

``python -S -E _lifeline_reaper.py TAG DIRECTORY RETAIN SUDO_USER PSUTIL_PARENT``

Kills every process carrying the session's tag (setsid'd and double-forked ones included)
and removes the session's working directory unless RETAIN is ``retain``. It starts with
``-S`` (no site packages) so that it starts fast; psutil's directory comes as an argument.
"""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from pathlib import Path


def _remove_directory(directory: Path, sudo_user: str | None) -> None:
    if not directory.is_dir():
        return
    if sudo_user:
        entries = [str(entry) for entry in directory.iterdir()]
        if entries:
            subprocess.run(
                ["sudo", "-n", "-u", sudo_user, "-i", "rm", "-rf", *entries],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                check=False,
                timeout=30,
            )
    shutil.rmtree(directory, ignore_errors=True)


def main(argv: list[str]) -> int:
    tag, directory, retain, sudo_user, psutil_parent = argv
    # The script's directory is sys.path[0], so the sibling module imports as top level.
    sys.path.append(psutil_parent)
    process_tree = importlib.import_module("_process_tree")
    process_tree.kill_tree(tag, sudo_user=sudo_user or None)
    if retain != "retain":
        _remove_directory(Path(directory), sudo_user or None)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
