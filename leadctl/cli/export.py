"""`leadctl export WHAT -o FILE`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from leadctl import api
from leadctl.cli import common


def register(app: typer.Typer) -> None:
    app.command("export")(export)


def export(
    ctx: typer.Context,
    what: Annotated[str, typer.Argument(help="leads, persons, events, tags, scores, assignments, "
                    "rejects, blocked, history, runs")],
    out: Annotated[Path, common.file_option(
        "-o", "--output", help="Output file: .csv or .parquet")],
    json_out: common.Json = False,
) -> None:
    """Write a table of the published state to CSV or Parquet (by extension)."""

    s = common.settings(ctx)
    result = common.run(ctx, lambda: api.export(s.db, what, out))
    if json_out:
        common.print_json(result)
    else:
        common.stderr_console().print(f"wrote {result['rows']} rows to {result['file']}")
