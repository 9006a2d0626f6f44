"""Entry point. A plain `leadctl [--db X] [--rules Y] portrait QUERY [--json] [--reveal]
[--as-of D]` is served without importing typer (support staff look a lead up while the
customer is on the phone); everything else goes to a Typer app holding only the command
that runs (its module alone is imported), or — for `leadctl --help` and a bare
`leadctl` — every command's name and help from `root.COMMANDS`, no command module at all.
Shell completion and anything this parser cannot place get the full app."""

from __future__ import annotations

import importlib
import os
import sys

from leadctl.cli import output, signals
from leadctl.cli.portrait_view import show_portrait
from leadctl.errors import LeadctlError, UsageError
from leadctl.workspace import configure, name_text, parse_memory_limit

_GLOBAL_VALUE_OPTIONS = {"--db", "--rules", "--memory-limit"}
# Root options that take a value (the others are flags), to find the command in argv.
_ROOT_VALUE_OPTIONS = {"--db", "--rules", "--log-file", "--memory-limit"}
_PORTRAIT_FLAGS = {"--json": "json_out", "--reveal": "reveal"}


def parse_fast_portrait(argv: list[str]) -> dict | None:
    """The portrait call's arguments, or None when the Typer app should handle argv."""
    opts: dict = {"db": os.environ.get("LEADCTL_DB"), "json_out": False, "reveal": False,
                  "as_of": None, "query": None, "memory_limit": None}
    args = iter(argv)
    for arg in args:  # global options, up to the command
        name, eq, value = arg.partition("=")
        if name in _GLOBAL_VALUE_OPTIONS:
            value = value if eq else next(args, None)
            if value is None:
                return None
            if name == "--memory-limit" and not _is_memory_limit(value):
                return None  # Typer reports it, worded as for every other command
            if name in ("--db", "--memory-limit"):
                opts[name[2:].replace("-", "_")] = value
            continue
        if arg != "portrait":
            return None
        break
    else:
        return None
    for arg in args:
        name, eq, value = arg.partition("=")
        if arg in _PORTRAIT_FLAGS:
            opts[_PORTRAIT_FLAGS[arg]] = True
        elif name == "--as-of":
            opts["as_of"] = value if eq else next(args, None)
            if opts["as_of"] is None:
                return None
        elif arg.startswith("-") or opts["query"] is not None:
            return None  # --help, unknown options, extra arguments: Typer explains them
        else:
            opts["query"] = arg
    return opts if opts["query"] is not None else None


def _is_memory_limit(value: str) -> bool:
    try:
        parse_memory_limit(value)
    except UsageError:
        return False
    return True


def run_fast_portrait(opts: dict) -> int:

    try:
        configure(memory_limit=opts.get("memory_limit"))  # a bad size: exit 2, as on Typer
        show_portrait(opts["db"], opts["query"], opts["reveal"], opts["as_of"], opts["json_out"])
    except LeadctlError as exc:
        output.report_failure(exc, exc.exit_code, opts["json_out"])
        return exc.exit_code
    except Exception as exc:
        output.report_failure(exc, 3, opts["json_out"], message=(
            f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for details)"))
        return 3
    refused = output.stdout_refused()
    if refused is not None:  # as the Typer app says it (common.stdout_refusal_reported)
        output.error(refused + output.WORK_DONE)
        return 2
    return 0


def command_in(argv: list[str]) -> str | None:
    """The command name of a `leadctl [root options] COMMAND ...` call, else None."""
    args = iter(argv)
    for arg in args:
        name, eq, _ = arg.partition("=")
        if name in _ROOT_VALUE_OPTIONS:
            if not eq:
                next(args, None)
        elif not arg.startswith("-"):
            return arg
        elif name in ("--install-completion", "--show-completion"):
            return None
    return None


def typer_app(argv: list[str]):
    """The app for this call: the command's module only; the commands' names and help
    (no module) when no command is named; everything for shell completion."""
    # typer and the command modules: only on this path, never for the fast portrait
    from leadctl.cli.root import COMMANDS, new_app  # noqa: PLC0415

    command = command_in(argv)
    if any(k.startswith("_LEADCTL_COMPLETE") for k in os.environ) or (
            command is not None and command not in COMMANDS):
        from leadctl.cli.app import app  # noqa: PLC0415 - completion, unknown command

        return app
    app = new_app()
    if command is not None:
        importlib.import_module(f"leadctl.cli.{COMMANDS[command][0]}").register(app)
        return app
    for name, (_, help_text) in COMMANDS.items():  # `leadctl --help`: names and help only
        app.command(name, help=help_text)(_listed_only)
    return app


def _listed_only() -> None:
    """Stands in for a command in `leadctl --help`; never runs (a named command loads its
    module instead)."""


COMPLETION_SHELLS = ("bash", "zsh", "fish", "powershell", "pwsh")


def completion_for_named_shell(argv: list[str]) -> bool:
    """`--show-completion SHELL` / `--install-completion SHELL`: for the shell named. typer
    takes no shell word where it can detect the shell it runs under, so it gave that
    shell's script (and from `sh`, a cron job or a Dockerfile, none). Whether it ran."""
    if command_in(argv[:-2]) is not None:  # a command's own arguments, not these
        return False
    argv = argv[-2:]  # root options before it (`--db`) change nothing of the script
    if len(argv) != 2 or argv[0] not in ("--show-completion", "--install-completion") \
            or argv[1] not in COMPLETION_SHELLS:
        return False
    from typer import completion  # noqa: PLC0415 - only on this path

    names = {"prog_name": "leadctl", "complete_var": "_LEADCTL_COMPLETE"}
    if argv[0] == "--show-completion":
        output.write_stdout(completion.get_completion_script(shell=argv[1], **names) + "\n")
    else:
        shell, path = completion.install(shell=argv[1], **names)
        output.write_stdout(f"{shell} completion installed in {path}\n"
                            "Completion will take effect once you restart the terminal\n")
    return True


def main(held: list[int] | None = None) -> None:
    """`held`: signals that arrived while the modules loaded (`entry`)."""
    os.environ.setdefault("PYTHONIOENCODING", "utf-8")
    output.tolerate_narrow_encodings()
    signals.install(held)
    bad = next((arg for arg in sys.argv[1:] if output.not_utf8(arg)), None)
    if bad is not None:  # nothing can store, compare or print it: refused before any work
        shown = name_text(bad)  # the bytes, as \xff
        output.report_failure(UsageError(f"an argument is not valid UTF-8 text: {shown}"), 2,
                              "--json" in sys.argv[1:])
        sys.exit(2)
    opts = parse_fast_portrait(sys.argv[1:])
    if completion_for_named_shell(sys.argv[1:]):
        _exit_if_stdout_refused()
        return
    try:
        if opts is not None:
            signals.printing_from_now()
            sys.exit(run_fast_portrait(opts))
        # also under `python -m leadctl`: completion is for `leadctl`
        typer_app(sys.argv[1:])(prog_name="leadctl")
    except OSError as exc:  # Click's own output refused: `--help`, or a usage message
        if exc.filename is not None:
            raise  # a named file's (a shell's rc file for --install-completion), not stdout's
        output.refuse_stdout(exc)  # (a stderr that refuses it loses this line too: exit 2)
        _exit_if_stdout_refused()
    except SystemExit as done:
        # `--version`, shell completion: printed before any command, with exit 0
        if done.code in (0, None):
            _exit_if_stdout_refused()
        raise
    finally:
        signals.exit_if_signalled()


def _exit_if_stdout_refused() -> None:
    """Exit 2 saying so once stdout refused what was printed before any command ran
    (`--help`, `--version`, shell completion): nothing else was done."""
    refused = output.stdout_refused()
    if refused is not None:
        output.error(refused)
        sys.exit(2)
