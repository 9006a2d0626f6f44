"""Shared CLI plumbing: settings, option types, error → exit code, output."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from leadctl.errors import LeadctlError, UsageError

log = logging.getLogger("leadctl")


@dataclass
class Settings:
    db: Path | None
    rules: Path
    debug: bool = False


def settings(ctx: typer.Context) -> Settings:
    obj = ctx.find_root().obj
    if obj is None:  # invoked without the root callback (tests of sub-apps)
        obj = Settings(None, Path(os.environ.get("LEADCTL_RULES", "rules")))
    return obj


AsOf = Annotated[
    str | None,
    typer.Option("--as-of", help="Compute as of this date (YYYY-MM-DD). Default: today.",
                 show_default=False),
]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Show what would change; change nothing.")]
Reveal = Annotated[bool, typer.Option("--reveal", help="Show personal data unmasked.")]


def parse_as_of(value: str | None) -> dt.date:
    if value is None:
        return dt.date.today()
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"--as-of must be a date like 2026-11-01, not {value!r}") from None


def run(ctx: typer.Context, action: Callable[[], Any]) -> Any:
    """Runs one library call; maps named errors to messages and exit codes."""
    try:
        return action()
    except LeadctlError as exc:
        if settings(ctx).debug:
            log.exception("error")
        error(str(exc))
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        error("interrupted")
        raise typer.Exit(130) from None
    except Exception as exc:
        if settings(ctx).debug:
            raise
        error(f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for details)")
        raise typer.Exit(3) from None


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
            from rich.progress import BarColumn, Progress as RichProgress, TextColumn

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
