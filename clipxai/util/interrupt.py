"""Ctrl-C that no library can swallow.

Python turns Ctrl-C into a ``KeyboardInterrupt`` raised wherever the main thread happens to
be. When that is a finalizer (a ``__del__``, which numba and llvmlite run by the thousand
while compiling UMAP), Python prints "Exception ignored in ..." and carries on as if nothing
had happened: the analysis finished and exited 0. Inside ``stop_on_interrupt()`` a Ctrl-C is
also remembered, so it is raised again where it can no longer be lost: when the block ends
(or fails because of it) and wherever ``raise_if_interrupted()`` is called, e.g. before a
result file is written.
"""

from __future__ import annotations

import signal
import sys
import threading
from contextlib import contextmanager

_active: list[dict] = []  # one record per open stop_on_interrupt(), innermost last


def interrupted() -> bool:
    """Whether Ctrl-C came while a ``stop_on_interrupt()`` block is open."""
    return any(state["hit"] for state in _active)


def raise_if_interrupted() -> None:
    """Raise ``KeyboardInterrupt`` if a Ctrl-C came (and was perhaps lost) in an open block."""
    if interrupted():
        raise KeyboardInterrupt


@contextmanager
def stop_on_interrupt():
    """Within the block, Ctrl-C stops the program even if some library swallowed it.

    Where Ctrl-C is ignored (a job started in the background), it stays ignored; off the
    main thread, where Python delivers no signals, the block runs unchanged.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous in (signal.SIG_IGN, None):
        yield
        return
    state = {"hit": False}

    def handler(signum, frame):
        state["hit"] = True
        if callable(previous) and previous is not signal.default_int_handler:
            previous(signum, frame)  # an enclosing block or the host program's own handler
        raise KeyboardInterrupt

    hook = sys.unraisablehook

    def quiet_hook(unraisable):
        # The interrupt lost in a finalizer is raised again below; its "ignored" report is noise.
        if not (state["hit"] and isinstance(unraisable.exc_value, KeyboardInterrupt)):
            hook(unraisable)

    signal.signal(signal.SIGINT, handler)
    sys.unraisablehook = quiet_hook
    _active.append(state)
    try:
        yield
    except Exception:
        if state["hit"]:  # a library turned the lost interrupt into an error of its own
            raise KeyboardInterrupt from None
        raise
    finally:
        _active.remove(state)
        sys.unraisablehook = hook
        signal.signal(signal.SIGINT, previous)
    if state["hit"]:
        raise KeyboardInterrupt
