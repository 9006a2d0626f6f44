"""Shared CLI plumbing: settings, option types, error → exit code, output."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from leadctl.cli import output, signals
from leadctl.cli.output import (  # noqa: F401  (re-exported for command modules)
    MAX_LOCK_DAYS,
    Progress,
    check_amount,
    check_count,
    check_share,
    check_text,
    check_utf8,
    error,
    not_utf8,
    parse_as_of,
    parse_date,
    print_json,
    problem_list,
    report_failure,
    stderr_console,
    stdout_console,
    table,
    value_text,
    warn,
)
from leadctl.errors import (
    LeadctlError,
    UsageError,
    interruption,
    interruption_exit_code,
    was_published,
)
from leadctl.workspace import names_folder

log = logging.getLogger("leadctl")


@dataclass
class Settings:
    db: Path | None
    rules: Path
    debug: bool = False
    memory_limit: str | None = None  # --memory-limit / LEADCTL_MEMORY_LIMIT, validated
    rules_given: bool = False  # --rules or LEADCTL_RULES named `rules` (not the default)


def file_path(value: str | os.PathLike) -> Path:
    """The parser of every option that names a file to open or write (`--db`, `--log-file`,
    `-o`): a path written with a trailing separator (`newdir/`, `out.csv/.`) names a
    folder, which pathlib would silently make a file name of: exit 2 naming the option."""
    text = os.fspath(value)
    problem = names_folder(text)
    if problem:
        raise typer.BadParameter(problem)
    return Path(text)


def folder_path(value: str | os.PathLike, what: str = "rules") -> Path:
    """The parser of `--rules` (and init's DIR): an empty value (an unset variable) is no
    folder, never the working folder pathlib would make of it: exit 2 naming the option."""
    text = os.fspath(value)
    if not text.strip():
        raise typer.BadParameter(f"an empty path (an unset variable?): name the {what} folder")
    return Path(text)


def file_option(*names: str, **options: Any) -> Any:
    """A typer.Option naming a file to open or write, parsed by `file_path`."""
    return typer.Option(*names, parser=file_path, metavar="<path>", **options)


def settings(ctx: typer.Context) -> Settings:
    obj = ctx.find_root().obj
    if obj is None:  # invoked without the root callback (tests of sub-apps)
        obj = Settings(None, Path(os.environ.get("LEADCTL_RULES") or "rules"),
                       rules_given=bool(os.environ.get("LEADCTL_RULES")))
    return obj


ViewAsOf = Annotated[
    str | None,
    typer.Option("--as-of", help="Show everything as of this date (YYYY-MM-DD). Default: the "
                 "as-of of the last tag run (today before any).", show_default=False),
]
AsOf = Annotated[
    str | None,
    typer.Option("--as-of", help="Compute as of this date (YYYY-MM-DD). Default: today "
                 "in the workspace time zone.", show_default=False),
]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Show what would change; change nothing.")]
Full = Annotated[bool, typer.Option(
    "--full", help="Recompute every person from all leads and events (by default only what "
    "changed since the stored run is recomputed; the result is the same).")]
Reveal = Annotated[bool, typer.Option("--reveal", help="Show personal data unmasked.")]


def run(ctx: typer.Context, action: Callable[[], Any]) -> Any:
    """Runs the command's library call (see `guarded`); the log gets a line when the
    command starts and one when it ends: done, or failed with its exit code (`fail`)."""
    return guarded(ctx, action)


def _logged_command(ctx: typer.Context) -> str | None:
    """The command as the log names it (`identity why`); None for `run`, whose DuckDB
    pipeline logs its own start, stages and outcome — unless the CLI logs it
    (`refusal_logged`, `logged_here`)."""
    command = ctx.command_path.removeprefix(f"{ctx.find_root().info_name} ")
    return None if command == "run" and not ctx.meta.get(CLI_LOGGED) else command


def refusal_logged(ctx: typer.Context, check: Callable[[], Any]) -> Any:
    """`run`'s checks of its options, before its pipeline logs its own start: a run they
    refuse is logged as any command's failure is (`run started`, `run failed (exit 2): …`),
    so a failed run's log is never empty."""
    try:
        return check()
    except LeadctlError:
        logged_here(ctx)
        raise


def parser_refusal_logged(exc: Exception, root: typer.Context, args: list[str]) -> None:
    """A command whose options the parser refuses (`--limit x`, a missing argument) is
    logged as any refused command is (`find started`, `find failed (exit 2): …`): a cron
    job's log file shows why it did nothing. Only a command's own parse: the root's
    options configure the log, so before them nothing can be logged. `root`, `args`: the
    root's context and its command line from the command on, for an error the parser
    raises without the command's context (`--limit` missing its value)."""
    ctx = getattr(exc, "ctx", None)
    if ctx is not None and ctx.parent is None:
        return  # the root's own parse (an unknown command): before the log is set up
    command = (ctx.command_path.removeprefix(f"{ctx.find_root().info_name} ")
               if ctx is not None else command_named(root.command, args, root))
    if command is None or LOG_STARTED in root.meta:
        return
    root.meta[LOG_STARTED] = root.meta[LOG_FAILED] = True
    message = (f"no command given (see `leadctl {command} --help`)"
               if type(exc).__name__ == "NoArgsIsHelpError" else exc.format_message())
    log.info("%s started", command)
    log.error("%s failed (exit 2): %s", command, message)


def command_named(group, args: list[str], ctx: typer.Context | None = None) -> str | None:
    """`identity why` of `identity why A --x`: the command of the root `group`, and its
    subcommand if a group (`ctx`: the root's context, when there is one yet)."""
    names = [a for a in args if not a.startswith("-")]
    command = group.get_command(ctx, names[0]) if names else None
    if command is None:
        return None
    sub = getattr(command, "get_command", None)
    if sub is not None and len(names) > 1 and sub(ctx, names[1]) is not None:
        return f"{names[0]} {names[1]}"
    return names[0]


def logged_here(ctx: typer.Context) -> None:
    """The CLI logs this `run`'s start and outcome as any command's: one refused by its
    options, or one on the Spark engine (whose pipeline logs its stages only, and may
    refuse before them: no input, an output folder that exists, pyspark missing)."""
    ctx.meta[CLI_LOGGED] = True
    _log_start(ctx)


def _log_start(ctx: typer.Context) -> None:
    command = _logged_command(ctx)
    if command is None or LOG_STARTED in ctx.meta:
        return
    ctx.meta[LOG_STARTED] = time.monotonic()
    log.info("%s started", command)

    def done() -> None:  # when the command's context closes: after its output, warnings
        # (a stdout that refused the output: its failure is logged once the command ends)
        if not ctx.meta.get(LOG_FAILED) and output.stdout_refused() is None:
            log.info("%s done in %.2fs", command, time.monotonic() - ctx.meta[LOG_STARTED])
    ctx.call_on_close(done)


def stdout_refusal_reported(root: typer.Context, args: list[str]) -> bool:
    """After a command that succeeded: whether stdout refused its output (a full disk, a
    closed stdout). Then the command's failure is logged as any is (`find failed (exit 2):
    cannot write to stdout: …`; `run`'s too, after its pipeline logged the published run)
    and said on stderr: the caller exits 2. `args`: the command line from the command on."""
    refused = output.stdout_refused()
    if refused is None:
        return False
    message = refused + output.WORK_DONE
    command = command_named(root.command, args, root)
    if command is not None and not root.meta.get(LOG_FAILED):
        root.meta[LOG_FAILED] = True
        log.error("%s failed (exit 2): %s", command, message)
    error(message)
    return True


LOG_STARTED, LOG_FAILED = "leadctl.log_started", "leadctl.log_failed"
CLI_LOGGED = "leadctl.run_logged_by_cli"


def guarded(ctx: typer.Context, action: Callable[[], Any]) -> Any:
    """Runs one library call; maps named errors to messages and exit codes (with --json
    also to the failure document on stdout). The command's start is logged first, also
    when the call only parses an option (`--as-of`): its failure never comes alone."""
    _log_start(ctx)
    try:
        with signals.running_action():
            return action()
    except LeadctlError as exc:
        if interruption(exc):  # after a signal: however a stage wrapped the engine's error
            interrupted(ctx, exc)
        if settings(ctx).debug:
            log.exception("error")
        fail(ctx, exc)
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (Terminated)
        interrupted(ctx, exc)
    except Exception as exc:
        if interruption(exc):  # DuckDB stopped by a signal mid-query
            interrupted(ctx, exc)
        if isinstance(exc, UnicodeEncodeError) and not_utf8(exc.object[exc.start:exc.end]):
            # bytes from argv or a file name that are not UTF-8: nothing can store them
            text = exc.object[max(0, exc.start - 30):exc.end + 30]
            fail(ctx, UsageError(f"not valid UTF-8 text (an argument or a file name): "
                                 f"{text!r}"))
        debug = settings(ctx).debug
        if debug:  # the traceback on stderr; the exit code and --json document as without
            log.exception("internal error")
        fail(ctx, exc, exit_code=3, message=f"internal error: {type(exc).__name__}: {exc}"
             + ("" if debug else " (rerun with --debug for details)"))


def interrupted(ctx: typer.Context, exc: BaseException) -> NoReturn:
    """Stopped by a signal: exit 130 (Ctrl-C) or 143 (SIGTERM), with the --json document;
    a writer published nothing and logged the run as interrupted."""
    fail(ctx, exc, exit_code=interruption_exit_code(exc), message=interruption(exc))


def json_requested(ctx: typer.Context) -> bool:
    """Whether the running command was given --json (its `json_out` parameter)."""
    return bool(ctx.params.get("json_out"))


def fail(ctx: typer.Context, exc: BaseException, *, exit_code: int | None = None,
         message: str | None = None, details: dict | None = None,
         echo: bool = True) -> NoReturn:
    """Reports an error (stderr; with --json the failure document on stdout) and exits
    with its code; `details` is the partial result kept in the document."""
    code = exit_code if exit_code is not None else getattr(exc, "exit_code", 3)
    command = _logged_command(ctx)
    if command is not None and not ctx.meta.get(LOG_FAILED) and not was_published(exc):
        ctx.meta[LOG_FAILED] = True
        log.error("%s failed (exit %d): %s", command, code,
                  getattr(exc, "log_text", None) or message or exc)
    report_failure(exc, code, json_requested(ctx), message=message, details=details, echo=echo)
    raise typer.Exit(code) from None


def as_of_date(ctx: typer.Context, as_of: str | None):
    """The --as-of option as a date (a bad date: exit 2 with the message)."""
    return guarded(ctx, lambda: parse_as_of(as_of))


def show(result: Any, json_out: bool, render: Callable[[Any], None]) -> None:
    """The result as one JSON document (--json), else rendered for a person."""
    if json_out:
        print_json(result)
    else:
        render(result)
