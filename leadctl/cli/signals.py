"""SIGTERM and Ctrl-C: how a command stops.

While a command's library call runs (`running_action`), a signal raises (Terminated or
KeyboardInterrupt) so the writer publishes nothing, removes its private copy and logs
the run; the CLI then exits 143 / 130 (cli.common.run). Before that call (start-up,
argument parsing) there is nothing to undo: the process logs the command's start and its
failure (`run failed (exit 143): terminated (SIGTERM)`; to the `--log-file` and `-v` its
command line names, should the root options not have set the log up yet), reports the
signal and exits at once, instead of Click turning it into "Aborted!" and exit 1. After
it (printing the result or the error), the signal waits for the printing to end, so
stdout never holds half a JSON document, then the process exits with the signal's code.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from leadctl.cli.output import error, report_failure, visible
from leadctl.errors import Terminated, interruption, interruption_exit_code, note_signal
from leadctl.pii import MaskingFilter, MessageFilter
from leadctl.workspace import db_path_from, hold_signal, names_folder, own_files

_STATE: dict = {"phase": "startup", "deferred": None}  # startup | action | after

# What a command line says of the log before the root options are parsed: those options
# that take a value, the flags that log to stderr, and the commands whose subcommand the
# log names too (`identity why`; tests/test_cli_signals.py keeps them in step with root).
_ROOT_VALUE_OPTIONS = {"--db", "--rules", "--log-file", "--memory-limit"}
_VERBOSE = {"-v", "--verbose", "--debug"}
GROUPS = frozenset({"rules", "report", "identity", "audience"})


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
        _log_stopped_at_startup(code, interruption(exc) or "")
    with contextlib.suppress(Exception):
        report_failure(exc, code, "--json" in sys.argv[1:], message=interruption(exc))
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def _log_stopped_at_startup(code: int, message: str) -> None:
    """A command stopped before its work logs its start and its failure as any command
    does (`run started`, `run failed (exit 143): terminated (SIGTERM)`): to the log the
    root options set up, or, before them, to the `--log-file` and `-v` of its command
    line (a file the root options would refuse, the workspace's own, gets nothing)."""
    argv = sys.argv[1:]
    command, options = _command_line(argv)
    if command is None or "--help" in argv:  # nothing would have run
        return
    logger = logging.getLogger("leadctl")
    meta, started, failed = _command_meta()
    if meta.get(failed):  # (a refusal of the command's options, said already)
        return
    if logger.handlers:  # set up: the command's own log
        def emit(level: int, msg: str, *args) -> None:
            logger.log(level, msg, *args)
    else:
        emit = _startup_log(options)
    if started not in meta:
        emit(logging.INFO, "%s started", command)
    emit(logging.ERROR, "%s failed (exit %d): %s", command, code, message)
    meta[failed] = True  # (no `done` line: its context may still close)


def _command_line(argv: list[str]) -> tuple[str | None, dict]:
    """The command as the log names it (`run`, `identity why`; None when there is none)
    and the root options given before it (`--log-file`: its value, `-v`: True)."""
    options: dict = {}
    args = iter(argv)
    for arg in args:
        name, eq, value = arg.partition("=")
        if name in _ROOT_VALUE_OPTIONS:
            options[name] = value if eq else next(args, None)
        elif arg in _VERBOSE:
            options[arg] = True
        elif not arg.startswith("-"):
            words = [arg, next(args, "")] if arg in GROUPS else [arg]
            if all(re.fullmatch(r"[a-z][a-z-]*", word) for word in words):
                return " ".join(words), options
            return None, options
    return None, options


def _command_meta() -> tuple[dict, str, str]:
    """Where `common` notes that it logged the command's start and its failure: its Click
    context's meta, and those two keys (before Typer begins: an empty dict of its own)."""
    # Click's context stack: Typer's own copy of Click, else Click (never imported here)
    stack = sys.modules.get("typer._click.globals") or sys.modules.get("click.globals")
    ctx = stack.get_current_context(silent=True) if stack is not None else None
    if ctx is None:  # Typer has not begun: nothing is logged
        return {}, "started", "failed"
    from leadctl.cli.common import LOG_FAILED, LOG_STARTED  # noqa: PLC0415 (loaded by now)

    return ctx.meta, LOG_STARTED, LOG_FAILED


def _startup_log(options: dict) -> Callable[..., None]:
    """Writes a log line as the root options' log would (root._configure_logging: the same
    format and masking): to the --log-file they would accept, and with -v to stderr."""
    handlers: list[logging.Handler] = []
    if any(options.get(flag) for flag in _VERBOSE):
        handlers.append(logging.StreamHandler(sys.stderr))
    path = options.get("--log-file")
    with contextlib.suppress(Exception):  # a path the root options refuse: no file
        if path and not names_folder(path) and Path(os.path.realpath(path)) not in \
                own_files(db_path_from(options.get("--db"))):
            handlers.append(logging.FileHandler(path, encoding="utf-8"))
    for handler in handlers:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        handler.addFilter(MaskingFilter())
        handler.addFilter(MessageFilter(visible))

    def emit(level: int, msg: str, *args) -> None:
        record = logging.LogRecord("leadctl", level, __file__, 0, msg, args, None)
        for handler in handlers:
            handler.handle(record)
    return emit
