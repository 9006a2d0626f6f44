"""CLI output helpers without typer: usable by the fast portrait path too."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import Any

from leadctl.errors import UsageError


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
    sys.stdout.write(json.dumps(data, ensure_ascii=False, default=_json_default, indent=2) + "\n")


def _json_default(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "to_dict"):
        return value.to_dict()
    return str(value)


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
