"""The Typer app with every command registered (tests, shell completion, `leadctl` when
it cannot tell which command runs); `leadctl.cli.main` usually builds a smaller one."""

from __future__ import annotations

from leadctl.cli import (
    audience,
    explain,
    export,
    find,
    identity,
    ingest,
    lifecycle,
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
from leadctl.cli.root import new_app

COMMAND_MODULES = (workspace, ingest, resolve, run, tag, score, route, lifecycle, rules_cli,
                   portrait, find, explain, report, export,
                   identity, audience)

app = new_app()
for _module in COMMAND_MODULES:
    _module.register(app)
