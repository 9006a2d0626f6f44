"""The `leadctl` command's entry point. A SIGTERM or Ctrl-C that arrives while the
toolkit's modules load waits for them, then stops the command as `signals` says (exit
143 / 130, one JSON document under --json), instead of killing it silently or with a
traceback and an empty `--json` result."""

from __future__ import annotations

import os
import signal

_HELD: list[int] = []


def _hold(signum: int, frame) -> None:
    _HELD.append(signum)


def main() -> None:
    for held in (signal.SIGTERM, signal.SIGINT):
        signal.signal(held, _hold)
    if os.environ.get("LEADCTL_TEST_KILL_AFTER") == "entry":  # test hook (workspace's)
        os.kill(os.getpid(), signal.SIGTERM)
    from leadctl.cli.main import main as run  # noqa: PLC0415 — loads after the handlers

    try:
        run(held=_HELD)
    finally:
        # The outcome is decided (a signal that waited for it has ended the process):
        # one arriving while the interpreter shuts down, which restores the default
        # handlers, would kill the process with another code than the one reported.
        for decided in (signal.SIGTERM, signal.SIGINT):
            signal.signal(decided, signal.SIG_IGN)
