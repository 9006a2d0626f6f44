"""SIGTERM and Ctrl-C: how a command stops.

While a command's library call runs (`running_action`), a signal raises (Terminated or
KeyboardInterrupt) so the writer publishes nothing, removes its private copy and logs
the run; the CLI then exits 143 / 130 (cli.common.run). Before or after that call
(start-up, argument parsing, rendering) there is nothing to undo: the process reports
the signal and exits at once, instead of Click turning it into "Aborted!" and exit 1.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterator

from leadctl.cli.output import report_failure
from leadctl.errors import Terminated, interruption, interruption_exit_code, note_signal

_STATE = {"action": False}


def install() -> None:
    signal.signal(signal.SIGTERM, _on_signal)  # stop like Ctrl-C, not like kill -9
    signal.signal(signal.SIGINT, _on_signal)


@contextlib.contextmanager
def running_action() -> Iterator[None]:
    _STATE["action"] = True
    try:
        yield
    finally:
        _STATE["action"] = False


def _on_signal(signum: int, frame) -> None:
    name = "SIGTERM" if signum == signal.SIGTERM else "SIGINT"
    note_signal(name)
    exc = Terminated() if name == "SIGTERM" else KeyboardInterrupt()
    if _STATE["action"]:
        raise exc
    code = interruption_exit_code(exc)
    with contextlib.suppress(Exception):
        report_failure(exc, code, "--json" in sys.argv[1:], message=interruption(exc))
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)
