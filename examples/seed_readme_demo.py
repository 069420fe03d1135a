"""Run the openjd-sessions README example against openjd_notebook.sessions.

The example is read from the reference README and only its import line is changed,
which is exactly the drop-in promise: ``from openjd.sessions import`` becomes
``from openjd_notebook.sessions import``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

SEED_README = Path(
    os.environ.get(
        "OPENJD_SEED_README",
        Path(__file__).resolve().parents[2] / "shared/reference/seed-openjd-sessions-README.md",
    )
)
REFERENCE_IMPORT = "from openjd.sessions import"
OUR_IMPORT = "from openjd_notebook.sessions import"


def seed_example(readme: Path) -> str:
    """The README's first Python code block, with our import line."""
    text = readme.read_text(encoding="utf-8")
    start = text.index("```python\n") + len("```python\n")
    code = text[start : text.index("```", start)]
    if code.count(REFERENCE_IMPORT) != 1:
        raise SystemExit(f"{readme}: expected exactly one '{REFERENCE_IMPORT}' line")
    return code.replace(REFERENCE_IMPORT, OUR_IMPORT)


def main() -> int:
    if not SEED_README.is_file():
        print(
            f"Cannot find the seed README at {SEED_README}; set OPENJD_SEED_README to its path.",
            file=sys.stderr,
        )
        return 2
    code = seed_example(SEED_README)
    print(f"Running the example of {SEED_README.name} with the import line changed to:")
    print(f"    {OUR_IMPORT} ...\n")
    exec(compile(code, str(SEED_README), "exec"), {"__name__": "__main__"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
