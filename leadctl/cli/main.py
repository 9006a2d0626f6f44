"""Entry point. A plain `leadctl [--db X] [--rules Y] portrait QUERY [--json] [--reveal]
[--as-of D]` is served without importing typer (support staff look a lead up while the
customer is on the phone); everything else, including any option this parser does not
know, goes to the Typer app."""

from __future__ import annotations

import os
import sys

from leadctl.cli import output
from leadctl.cli.portrait_view import show_portrait
from leadctl.errors import LeadctlError

_GLOBAL_VALUE_OPTIONS = {"--db", "--rules"}
_PORTRAIT_FLAGS = {"--json": "json_out", "--reveal": "reveal"}


def parse_fast_portrait(argv: list[str]) -> dict | None:
    """The portrait call's arguments, or None when the Typer app should handle argv."""
    opts: dict = {"db": os.environ.get("LEADCTL_DB"), "json_out": False, "reveal": False,
                  "as_of": None, "query": None}
    args = iter(argv)
    for arg in args:  # global options, up to the command
        name, eq, value = arg.partition("=")
        if name in _GLOBAL_VALUE_OPTIONS:
            value = value if eq else next(args, None)
            if value is None:
                return None
            if name == "--db":
                opts["db"] = value
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


def run_fast_portrait(opts: dict) -> int:

    try:
        show_portrait(opts["db"], opts["query"], opts["reveal"], opts["as_of"], opts["json_out"])
    except LeadctlError as exc:
        output.report_failure(exc, exc.exit_code, opts["json_out"])
        return exc.exit_code
    except Exception as exc:
        output.report_failure(exc, 3, opts["json_out"], message=(
            f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for details)"))
        return 3
    return 0


def main() -> None:
    os.environ.setdefault("PYTHONIOENCODING", "utf-8")
    opts = parse_fast_portrait(sys.argv[1:])
    if opts is not None:
        sys.exit(run_fast_portrait(opts))
    from leadctl.cli.app import app  # noqa: PLC0415 - typer and every command: not for portrait

    app(prog_name="leadctl")  # also under `python -m leadctl`: completion is for `leadctl`
