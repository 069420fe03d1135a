"""``python -m openjd_notebook ...``: the ``openjd-notebook`` command."""

from .cli import console_main

if __name__ == "__main__":
    console_main()
