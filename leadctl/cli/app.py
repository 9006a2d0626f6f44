"""Root Typer app: global options, then one module per command group."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
import typer.core

from leadctl import __version__
from leadctl.cli import (
    common,
    explain,
    export,
    find,
    ingest,
    lifecycle,
    output,
    portrait,
    report,
    resolve,
    route,
    run,
    score,
    tag,
    workspace,
)
from leadctl.cli import rules as rules_cli
from leadctl.errors import UsageError
from leadctl.pii import MaskingFilter
from leadctl.workspace import set_command_name


class JsonFailureGroup(typer.core.TyperGroup):
    """Errors the command-line parser finds (a missing argument, `--limit 1.5`) also
    print the failure document on stdout when the command was given `--json`; the
    parser's own message still goes to stderr, exit 2."""

    def invoke(self, ctx):
        args = [*ctx._protected_args, *ctx.args]
        try:
            return super().invoke(ctx)
        except Exception as exc:
            if "--json" in args and getattr(exc, "exit_code", None) == 2 \
                    and hasattr(exc, "format_message"):  # click's UsageError family
                output.print_json(output.failure_document(
                    UsageError(exc.format_message()), 2))
            raise


app = typer.Typer(
    cls=JsonFailureGroup,
    name="leadctl",
    help="Turn multi-channel lead dumps into one explainable lead base: ingest, resolve "
    "identities, tag, score, route, and look up any lead.",
    no_args_is_help=True,
    add_completion=True,  # leadctl --install-completion [bash|zsh|fish|powershell]
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"leadctl {__version__}\n")
        raise typer.Exit()


@app.callback()
def global_options(
    ctx: typer.Context,
    db: Annotated[Path | None, typer.Option("--db", envvar="LEADCTL_DB",
                  help="Workspace database file [default: ./leadctl.duckdb]",
                  show_default=False)] = None,
    rules: Annotated[Path, typer.Option("--rules", envvar="LEADCTL_RULES",
                     help="Rules directory.")] = Path("rules"),
    verbose: Annotated[bool, typer.Option("--verbose", "-v",
                       help="Log progress to stderr.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Log SQL and show tracebacks.")] = False,
    log_file: Annotated[Path | None, typer.Option("--log-file", help="Also log to this file.",
                        show_default=False)] = None,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                       help="Show the version.")] = False,
) -> None:
    ctx.obj = common.Settings(db=db, rules=rules, debug=debug)
    _configure_logging(logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING,
                       log_file)

    set_command_name(ctx.invoked_subcommand or "leadctl")


def _configure_logging(level: int, log_file: Path | None) -> None:
    """stderr: with -v/--debug the log itself; else warnings only, as `warning: ...` (an
    error is the CLI's own `error:` line). --log-file: the log at INFO or below, appended."""
    logger = logging.getLogger("leadctl")
    logger.setLevel(min(level, logging.INFO) if log_file else level)
    for old in logger.handlers:
        old.close()
    logger.handlers.clear()

    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s")
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setLevel(level)
    stderr.setFormatter(fmt)
    if level > logging.INFO:
        stderr.setFormatter(logging.Formatter("warning: %(message)s"))
        stderr.addFilter(lambda record: record.levelno < logging.ERROR)
    handlers: list[logging.Handler] = [stderr]
    if log_file:
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
        handlers[-1].setFormatter(fmt)
    for handler in handlers:
        handler.addFilter(MaskingFilter())  # logs never carry raw phones, e-mails, ID cards
        logger.addHandler(handler)


for _module in (workspace, ingest, resolve, run, tag, score, route, lifecycle, rules_cli,
                portrait, find, explain, report, export):
    _module.register(app)

