"""`leadctl init`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from leadctl.cli import common
from leadctl.starter import init_workspace


def register(app: typer.Typer) -> None:
    app.command("init")(init)


def init(
    ctx: typer.Context,
    directory: Annotated[Path, typer.Argument(
        help="Workspace folder.", parser=lambda v: common.folder_path(v, "workspace"))
    ] = Path("."),
    json_out: common.Json = False,
) -> None:
    """Create a workspace: database and starter rules/ with documented examples."""

    s = common.settings(ctx)
    # --db and --rules, when given (also `--rules ./rules`), are where the database and
    # the rules go; else DIR/leadctl.duckdb and DIR/rules
    result = common.run(ctx, lambda: init_workspace(directory, s.db,
                                                    s.rules if s.rules_given else None))
    if json_out:
        common.print_json(result)
        return
    state = "created" if result["db_created"] else "already there"
    out = common.stdout_console()
    out.print(f"workspace {result['db']} ({state})")
    out.print(f"rules in {result['rules']}: {len(result['rules_copied'])} copied, "
              f"{len(result['rules_kept'])} kept")
