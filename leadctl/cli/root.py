"""The root Typer app — global options, logging, `--json` parse errors — without its
commands, and the table of commands (name → module, short help) that lets `leadctl`
import only the command it runs (`leadctl.cli.main`); `leadctl.cli.app` is the app with
every command registered (tests, shell completion)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
import typer.core

from leadctl import __version__
from leadctl.cli import common, output
from leadctl.errors import LeadctlError, UsageError
from leadctl.pii import MaskingFilter, MessageFilter
from leadctl.views.export import refuse_workspace_file
from leadctl.workspace import (
    configure,
    db_path_from,
    names_folder,
    parse_memory_limit,
    set_command_name,
)


class JsonFailureGroup(typer.core.TyperGroup):
    """Errors the command-line parser finds (a missing argument, `--limit 1.5`) also
    print the failure document on stdout when the command was given `--json`; the
    parser's own message still goes to stderr, exit 2."""

    def make_context(self, info_name, args, parent=None, **extra):
        # The root's own options (`--memory-limit lots`) fail here, before invoke.
        wants_json, given = "--json" in args, list(args)  # (the parse consumes `args`)
        output.forget_stdout_refused()  # (a command before it, in the same process)
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except Exception as exc:
            if getattr(exc, "exit_code", None) == 2 and hasattr(exc, "format_message"):
                if wants_json:
                    output.print_json(output.failure_document(
                        UsageError(exc.format_message()), 2))
                _root_refusal_logged(self, given, exc.format_message())
            raise

    def invoke(self, ctx):
        args = [*ctx._protected_args, *ctx.args]
        try:
            done = super().invoke(ctx)
        except typer.Exit as exc:
            if exc.exit_code == 0:
                _refused_writes(ctx, args)
            raise
        except Exception as exc:
            root_options = {o for p in self.params for o in (*p.opts, *p.secondary_opts)}
            if getattr(exc, "option_name", None) in root_options:  # after the command
                exc.possibilities = []  # not the command's look-alikes (--limit)
                exc.message += (f" (a global option: it goes before the command, as in "
                                f"`leadctl {exc.option_name} … {ctx.invoked_subcommand} …`)")
            if getattr(exc, "exit_code", None) == 2 and hasattr(exc, "format_message"):
                common.parser_refusal_logged(exc, ctx, args)  # click's UsageError family
                if "--json" in args:
                    output.print_json(output.failure_document(
                        UsageError(exc.format_message()), 2))
            raise
        _refused_writes(ctx, args)
        return done


def _root_refusal_logged(group: typer.core.TyperGroup, args: list[str], message: str) -> None:
    """A root option the parser refuses (`--memory-limit junk`, also from
    LEADCTL_MEMORY_LIMIT) is logged to the --log-file given beside it as a command's
    refused option is (`find started`, `find failed (exit 2): …`): a cron job's log says
    why the night did nothing. Read from the command line itself: the parse that would
    set the log up is the one that failed."""
    valued = {o for p in group.params if not getattr(p, "is_flag", False)
              for o in (*p.opts, *p.secondary_opts)}
    given_values: dict[str, str | None] = {}
    names, words = [], iter(args)
    for word in words:
        option, given, value = word.partition("=")
        if option in valued:
            given_values[option] = value if given else next(words, None)
        elif not word.startswith("-"):
            names.append(word)
    log_file = given_values.get("--log-file")
    if log_file is None or "'--log-file'" in message or names_folder(log_file):
        return  # the log file is what was refused (`log/` names a folder): none to write
    try:  # never into the workspace file (global_options refuses that too)
        refuse_workspace_file("--log-file", Path(log_file),
                              db_path_from(given_values.get("--db")))
    except LeadctlError:
        return
    name = common.command_named(group, names)
    if name is None:
        return
    try:
        _configure_logging(logging.WARNING, _log_file(Path(log_file)))
    except typer.BadParameter:
        return  # no log to write to: stderr says it all
    common.log.info("%s started", name)
    common.log.error("%s failed (exit 2): %s", name, message)


def _refused_writes(ctx: typer.Context, args: list[str]) -> None:
    """After a command that succeeded: exit 2 when stdout refused its output or its
    --log-file could not be written, each said on stderr (its work is done)."""
    refused = common.stdout_refusal_reported(ctx, args)
    _log_file_refused()
    if refused:
        raise typer.Exit(2)


class _LogFile(logging.FileHandler):
    """--log-file: a write the file system refuses (a full disk) is kept, not printed as a
    traceback per record; the command then ends with exit 2 naming the file."""
    refused: OSError | None = None

    def handleError(self, record: logging.LogRecord) -> None:
        if self.refused is None:
            failure = sys.exc_info()[1]
            self.refused = failure if isinstance(failure, OSError) else OSError(str(failure))

    def close(self) -> None:
        try:
            super().close()
        except OSError as exc:  # what is still buffered cannot be written either
            self.refused = self.refused or exc


def _log_file_refused() -> None:
    """After a command that succeeded: exit 2 when its --log-file could not be written."""
    handler = next((h for h in logging.getLogger("leadctl").handlers
                    if isinstance(h, _LogFile) and h.refused is not None), None)
    if handler is not None:
        output.error(f"cannot write the log file {handler.baseFilename}: "
                     f"{handler.refused.strerror or handler.refused}")
        raise typer.Exit(2)


def _version(value: bool) -> None:
    if value:
        output.write_stdout(f"leadctl {__version__}\n")
        raise typer.Exit()


def _memory_limit(value: str | None) -> str | None:
    """--memory-limit checked before anything runs (exit 2 naming the option)."""
    if value is None:
        return None
    try:
        return parse_memory_limit(value)
    except UsageError as exc:
        raise typer.BadParameter(str(exc).removeprefix("--memory-limit ")) from None


def _log_file(value: Path | None) -> Path | None:
    """--log-file checked before anything runs: a file we can append to (exit 2 naming the
    option, not a traceback from the logging module)."""
    if value is None:
        return None
    try:
        with open(value, "a", encoding="utf-8"):
            pass
    except OSError as exc:
        raise typer.BadParameter(f"cannot append to {value}: {exc.strerror}") from None
    return value


def global_options(
    ctx: typer.Context,
    db: Annotated[Path | None, common.file_option("--db", envvar="LEADCTL_DB",
                  help="Workspace database file [default: ./leadctl.duckdb]",
                  show_default=False)] = None,
    rules: Annotated[Path, typer.Option("--rules", envvar="LEADCTL_RULES",
                     parser=common.folder_path, metavar="<path>",
                     help="Rules directory.")] = Path("rules"),
    verbose: Annotated[bool, typer.Option("--verbose", "-v",
                       help="Log progress to stderr.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Log SQL and show tracebacks.")] = False,
    log_file: Annotated[Path | None, common.file_option(
        "--log-file", help="Also log to this file.", callback=_log_file,
        show_default=False)] = None,
    memory_limit: Annotated[str | None, typer.Option(
        "--memory-limit", envvar="LEADCTL_MEMORY_LIMIT", callback=_memory_limit,
        help="Cap DuckDB's memory (e.g. 3GB, 500MB); beyond it work spills to <db>.tmp/ "
        "beside the workspace [default: 80% of RAM]", show_default=False)] = None,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                       help="Show the version.")] = False,
) -> None:
    if log_file is not None:  # (a reader appended its log to the published file)
        try:
            refuse_workspace_file("--log-file", log_file, db_path_from(db),
                                  instead="log to another file")
        except UsageError as exc:  # the library's message, as click words an option's
            raise typer.BadParameter(str(exc).removeprefix("--log-file "),
                                     param_hint="'--log-file'") from None
    source = ctx.get_parameter_source("rules")  # `--rules rules` is given, as `--rules x`
    ctx.obj = common.Settings(db=db, rules=rules, debug=debug, memory_limit=memory_limit,
                              rules_given=getattr(source, "name", None) in (
                                  "COMMANDLINE", "ENVIRONMENT"))
    configure(memory_limit=memory_limit)
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
    stderr.addFilter(lambda record: not getattr(record, output.PRINTED, False))
    if level > logging.INFO:
        stderr.setFormatter(logging.Formatter("warning: %(message)s"))
        stderr.addFilter(lambda record: record.levelno < logging.ERROR)
    handlers: list[logging.Handler] = [stderr]
    if log_file:
        handlers.append(_LogFile(log_file, encoding="utf-8"))
        handlers[-1].setFormatter(fmt)
    for handler in handlers:
        handler.addFilter(MaskingFilter())  # logs never carry raw phones, e-mails, ID cards
        # control characters as escapes, as an `error:` line has them (a file name is data)
        handler.addFilter(MessageFilter(output.visible))
        logger.addHandler(handler)


def new_app() -> typer.Typer:
    """The root app with its global options and no command yet."""
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
    app.callback()(global_options)
    return app


# Every command: the module under leadctl.cli that registers it, and the first paragraph
# of its help (what `leadctl --help` lists; tests/test_cli_main.py keeps both in step
# with the commands themselves). In `leadctl --help` order.
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("workspace",
        'Create a workspace: database and starter rules/ with documented examples.'),
    "ingest": ("ingest",
        'Load CSV/Parquet lead or event files; bad rows go to rejects with a reason.'),
    "resolve": ("resolve",
        'Normalise identifiers, merge identities (OneID), build golden person records.'),
    "run": ("run",
        'The nightly job: ingest → resolve → tag → score → route, published atomically.'),
    "runs": ("run", 'List the run log: id, command, start/end, as-of, rules hash, outcome, error.'),
    "load-results": ("run",
        "Load a Spark run's result tables into the workspace (portrait, find, export)."),
    "tag": ("tag",
        'Evaluate rules/tags.yaml for every person; --dry-run shows per-tag counts, value'
        ' distribution and the difference against the last stored run, and stores '
        'nothing.'),
    "score": ("score",
        'Evaluate rules/scoring.yaml for every person: points per rule, score, grade. '
        '--dry-run shows the grade distribution and how many persons would change grade '
        "against the stored scores, and stores nothing. Scores are as of the stored tags "
        "(the last tag run's as-of)."),
    "route": ("route",
        'Assign persons to pools and reps per rules/routing.yaml (lifecycle first: locks,'
        ' dormancy, reactivation, status SLAs; then routes, first match wins; then '
        'allocation). --dry-run lists what would move where and why, and changes nothing.'),
    "claim": ("lifecycle",
        'Take up to N waiting leads from a claim pool (best score first), within the '
        "rep's remaining capacity for the period; leads locked to another rep are "
        'skipped.'),
    "status": ("lifecycle",
        "Set a lead's follow-up status. A status held longer than its SLA in routing.yaml"
        ' sends the lead back to the pool on the next route run.'),
    "sale": ("lifecycle",
        "Record a sale: the person becomes the rep's (status closed) and is locked to the"
        ' rep — other reps cannot claim it and routing leaves it alone until the lock '
        'ends.'),
    "portrait": ("portrait",
        "One person's portrait: contacts, grade and score, pool/owner, linked leads, "
        'tags, activity and history. Exit 1 when nothing (or more than one person) '
        'matches.'),
    "find": ("find",
        'List persons matching an expression (exit 2 with the column when EXPR is '
        'invalid).'),
    "explain": ("explain",
        'Why this lead merged with whom, why each tag value, how the score adds up, why '
        'this pool. Parts not computed yet are shown as such.'),
    "export": ("export", 'Write a table of the published state to CSV or Parquet (by extension).'),
    "rules": ("rules", 'Validate rule files; run rule fixtures.'),
    "report": ("report", 'Reports over the published state.'),
    "identity": ("identity",
        'Identity stewardship: why two leads are (not) one person, suggested matches, '
        'overrides that survive rebuilds, shared-value suspects, ownership conflicts.'),
    "audience": ("audience",
        'Audiences: export persons matching an expression with deterministic variants '
        'and a holdout, recorded as an experiment.'),
}
