"""The IPython extension: ``%load_ext openjd_notebook`` registers the OpenJD magics."""

from __future__ import annotations

import atexit
import contextlib
from typing import Any

__all__ = ["load_ipython_extension", "unload_ipython_extension"]

_MAGICS_ATTRIBUTE = "_openjd_notebook_magics"
_ORIGINAL_SHUTDOWN_ATTRIBUTE = "_openjd_notebook_kernel_shutdown"
_MATCHER_ID = "openjd_notebook.run_line"


def load_ipython_extension(ipython: Any) -> None:
    """Register the magics on this shell (a second load is a no-op)."""
    from .magics import OpenJDMagics

    if getattr(ipython, _MAGICS_ATTRIBUTE, None) is not None:
        return
    magics = OpenJDMagics(ipython, parent=ipython)
    ipython.register_magics(magics)
    setattr(ipython, _MAGICS_ATTRIBUTE, magics)
    ipython.events.register("post_run_cell", magics.forget_shown)
    completer = getattr(ipython, "Completer", None)
    if completer is not None:
        completer.custom_matchers.append(_run_line_matcher(magics))
    # A kernel shutdown or restart must not leave actions running, nor a record "running".
    atexit.register(magics.shutdown)
    kernel = getattr(ipython, "kernel", None)
    if kernel is not None:
        _end_runs_before_the_kernel_stops(kernel, magics)


def _end_runs_before_the_kernel_stops(kernel: Any, magics: Any) -> None:
    """Run ``magics.abandon_runs`` when the kernel is asked to shut down or restart.

    atexit comes too late: on a shutdown request ipykernel kills its children first, and
    the kernel manager kills the kernel a few seconds later, while the cell that waits for
    a run may still hold the main thread. ``do_shutdown`` is the kernel's own hook for "the
    frontend is shutting the kernel down"; it runs on the control thread, first.
    """
    original = kernel.do_shutdown

    def do_shutdown(restart: bool) -> Any:
        magics.abandon_runs("the kernel restarted" if restart else "the kernel shut down")
        return original(restart)

    kernel.do_shutdown = do_shutdown
    setattr(magics, _ORIGINAL_SHUTDOWN_ATTRIBUTE, (kernel, original))


def unload_ipython_extension(ipython: Any) -> None:
    magics = getattr(ipython, _MAGICS_ATTRIBUTE, None)
    if magics is None:
        return
    magics.shutdown()
    atexit.unregister(magics.shutdown)
    with contextlib.suppress(ValueError):
        ipython.events.unregister("post_run_cell", magics.forget_shown)
    _remove_completer(ipython)
    hooked = getattr(magics, _ORIGINAL_SHUTDOWN_ATTRIBUTE, None)
    if hooked is not None:
        kernel, original = hooked
        kernel.do_shutdown = original
    setattr(ipython, _MAGICS_ATTRIBUTE, None)


def _run_line_matcher(magics: Any) -> Any:
    """Tab completion on ``%openjd_run`` lines (IPython's matcher API, version 2)."""
    from IPython.core.completer import context_matcher

    @context_matcher(identifier=_MATCHER_ID)  # type: ignore[untyped-decorator]
    def matcher(context: Any) -> Any:
        return magics.complete_run(context)

    return matcher


def _remove_completer(ipython: Any) -> None:
    completer = getattr(ipython, "Completer", None)
    if completer is not None:
        completer.custom_matchers[:] = [
            m
            for m in completer.custom_matchers
            if getattr(m, "matcher_identifier", None) != _MATCHER_ID
        ]
