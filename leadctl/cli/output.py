"""CLI output helpers without typer: usable by the fast portrait path too."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

from leadctl.errors import (
    DataCheckFailed,
    InputError,
    NotFound,
    RuleError,
    UsageError,
    WorkspaceError,
)

# The "type" of a --json failure document: the named error class (or the documented
# class it refines: AmbiguousQuery is a NotFound, WorkspaceLocked a WorkspaceError).
ERROR_TYPES = (NotFound, DataCheckFailed, RuleError, UsageError, InputError, WorkspaceError)
INTERNAL_ERROR = "InternalError"


def parse_as_of(value: str | None) -> dt.date:
    if value is None:
        return dt.date.today()
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"--as-of must be a date like 2026-11-01, not {value!r}") from None


def parse_optional_as_of(value: str | None) -> dt.date | None:
    """--as-of of a view: None (the view's own default: the last tag run's) or a date."""
    return None if value is None else parse_as_of(value)


def error(message: str) -> None:
    sys.stderr.write(f"error: {message}\n")


def warn(message: str) -> None:
    sys.stderr.write(f"warning: {message}\n")


def print_json(data: Any) -> None:
    """One JSON document on stdout; NaN and infinities (not JSON) are written as null."""
    sys.stdout.write(json.dumps(_finite(data), ensure_ascii=False, default=_json_default,
                                allow_nan=False, indent=2) + "\n")


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return _finite(int(value) if value == value.to_integral_value() else float(value)) \
            if value.is_finite() else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "to_dict"):
        return _finite(value.to_dict())
    return str(value)


def error_type(exc: BaseException) -> str:
    return next((cls.__name__ for cls in ERROR_TYPES if isinstance(exc, cls)), INTERNAL_ERROR)


def failure_document(exc: BaseException, exit_code: int, message: str | None = None,
                     details: dict | None = None) -> dict:
    """What `--json` prints when a command fails: the partial result the command has
    (a run summary, candidates), then {"error": {type, message, location}, "exit_code"}."""
    error_part: dict = {"type": error_type(exc) if exit_code != 3 else INTERNAL_ERROR,
                        "message": str(exc) if message is None else message, "location": None}
    if isinstance(exc, RuleError):
        error_part["location"] = next((str(loc) for loc, _ in exc.problems if loc), None)
        error_part["problems"] = problem_list(exc)
    partial = getattr(exc, "details", None) if details is None else details
    return {**(partial or {}), "error": error_part, "exit_code": exit_code}


def problem_list(exc: RuleError) -> list[dict]:
    return [{"file": loc.file if loc else None, "line": loc.line if loc else None,
             "col": loc.col if loc else None, "message": message}
            for loc, message in exc.problems]


def report_failure(exc: BaseException, exit_code: int, json_out: bool, *,
                   message: str | None = None, details: dict | None = None,
                   echo: bool = True) -> None:
    """The error on stderr (unless the caller printed it), and with --json the failure
    document on stdout: a script redirecting stdout always gets one JSON document."""
    if echo:
        error(str(exc) if message is None else message)
    if json_out:
        print_json(failure_document(exc, exit_code, message, details))


def stdout_console():
    from rich.console import Console

    # Piped output (cron, scripts) is not wrapped at rich's 80-column default.
    width = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 160
    return Console(soft_wrap=True, width=width)


def stderr_console():
    from rich.console import Console

    return Console(stderr=True)


def table(title: str | None, columns: list[str], rows: list[list[Any]], *,
          right: tuple[str, ...] = ()):
    from rich.table import Table

    t = Table(title=title, title_justify="left", header_style="bold")
    for name in columns:
        t.add_column(name, justify="right" if name in right else "left", overflow="fold")
    for row in rows:
        t.add_row(*("" if v is None else str(v) for v in row))
    return t


class Progress:
    """A rich progress bar on stderr, silent when stderr is not a terminal."""

    def __init__(self, description: str):
        self.description = description
        self._bar = None
        self._task = None

    def __enter__(self) -> Progress:
        if sys.stderr.isatty():
            from rich.progress import BarColumn, TextColumn
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(TextColumn("{task.description}"), BarColumn(),
                                     TextColumn("{task.completed}/{task.total}"),
                                     console=stderr_console(), transient=True)
            self._bar.__enter__()
            self._task = self._bar.add_task(self.description, total=None)
        return self

    def update(self, done: int, total: int, label: str = "") -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=done, total=total,
                             description=f"{self.description} {label}".strip())

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)
