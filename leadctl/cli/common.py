"""Shared CLI plumbing: settings, option types, error → exit code, output."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from leadctl.cli.output import (  # noqa: F401  (re-exported for command modules)
    Progress,
    error,
    parse_as_of,
    parse_optional_as_of,
    print_json,
    stderr_console,
    stdout_console,
    table,
    warn,
)
from leadctl.errors import LeadctlError

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


ViewAsOf = Annotated[
    str | None,
    typer.Option("--as-of", help="Show everything as of this date (YYYY-MM-DD). Default: the "
                 "as-of of the last tag run (today before any).", show_default=False),
]
AsOf = Annotated[
    str | None,
    typer.Option("--as-of", help="Compute as of this date (YYYY-MM-DD). Default: today.",
                 show_default=False),
]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Show what would change; change nothing.")]
Reveal = Annotated[bool, typer.Option("--reveal", help="Show personal data unmasked.")]


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


def as_of_date(ctx: typer.Context, as_of: str | None):
    """The --as-of option as a date (a bad date: exit 2 with the message)."""
    return run(ctx, lambda: parse_as_of(as_of))


def show(result: Any, json_out: bool, render: Callable[[Any], None]) -> None:
    """The result as one JSON document (--json), else rendered for a person."""
    if json_out:
        print_json(result)
    else:
        render(result)
