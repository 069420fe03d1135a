"""The IPython extension: ``%load_ext openjd_notebook`` registers the OpenJD magics."""

from __future__ import annotations

import atexit
from typing import Any

__all__ = ["load_ipython_extension", "unload_ipython_extension"]

_MAGICS_ATTRIBUTE = "_openjd_notebook_magics"


def load_ipython_extension(ipython: Any) -> None:
    """Register the magics on this shell (a second load is a no-op)."""
    from .magics import OpenJDMagics

    if getattr(ipython, _MAGICS_ATTRIBUTE, None) is not None:
        return
    magics = OpenJDMagics(ipython, parent=ipython)
    ipython.register_magics(magics)
    setattr(ipython, _MAGICS_ATTRIBUTE, magics)
    # A kernel shutdown or restart must not leave actions running.
    atexit.register(magics.shutdown)


def unload_ipython_extension(ipython: Any) -> None:
    magics = getattr(ipython, _MAGICS_ATTRIBUTE, None)
    if magics is None:
        return
    magics.shutdown()
    atexit.unregister(magics.shutdown)
    setattr(ipython, _MAGICS_ATTRIBUTE, None)
