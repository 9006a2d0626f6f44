"""SIGTERM and Ctrl-C: how a command stops.

While a command's library call runs (`running_action`), a signal raises (Terminated or
KeyboardInterrupt) so the writer publishes nothing, removes its private copy and logs
the run; the CLI then exits 143 / 130 (cli.common.run). Before that call (start-up,
argument parsing) there is nothing to undo: the process reports the signal and exits at
once, instead of Click turning it into "Aborted!" and exit 1. After it (printing the
result or the error), the signal waits for the printing to end, so stdout never holds
half a JSON document, then the process exits with the signal's code.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterator

from leadctl.cli.output import error, report_failure
from leadctl.errors import Terminated, interruption, interruption_exit_code, note_signal
from leadctl.workspace import hold_signal

_STATE: dict = {"phase": "startup", "deferred": None}  # startup | action | after


def install(held: list[int] | None = None) -> None:
    """`held`: signals that arrived before (while the modules loaded): acted on now."""
    signal.signal(signal.SIGTERM, _on_signal)  # stop like Ctrl-C, not like kill -9
    signal.signal(signal.SIGINT, _on_signal)
    if held:
        _on_signal(held[0], None)


@contextlib.contextmanager
def running_action() -> Iterator[None]:
    _STATE["phase"] = "action"
    try:
        yield
    finally:
        _STATE["phase"] = "after"


def printing_from_now() -> None:
    """A command whose work is reading and printing at once (the fast portrait): a
    signal waits for it to end."""
    _STATE["phase"] = "after"


def exit_if_signalled() -> None:
    """At the very end: a signal that waited for the printing ends the process now."""
    exc = _STATE["deferred"]
    if exc is None:
        return
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        error(interruption(exc) or "")
        sys.stderr.flush()
    os._exit(interruption_exit_code(exc))


def _on_signal(signum: int, frame) -> None:
    if hold_signal(signum):  # the publishing rename: it acts when that is done
        return
    name = "SIGTERM" if signum == signal.SIGTERM else "SIGINT"
    note_signal(name)
    exc = Terminated() if name == "SIGTERM" else KeyboardInterrupt()
    if _STATE["phase"] == "action":
        raise exc
    if _STATE["phase"] == "after":
        _STATE["deferred"] = _STATE["deferred"] or exc
        return
    code = interruption_exit_code(exc)
    with contextlib.suppress(Exception):
        report_failure(exc, code, "--json" in sys.argv[1:], message=interruption(exc))
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)
