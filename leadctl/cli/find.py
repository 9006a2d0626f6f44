"""`leadctl find EXPR`: persons matching a rule expression, with counts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from leadctl import api
from leadctl.cli import common
from leadctl.views.asof import describe


def register(app: typer.Typer) -> None:
    app.command("find")(find)


def find(
    ctx: typer.Context,
    expr: Annotated[str, typer.Argument(
        help="A condition in the rule language over tags, person attributes, score/grade and "
        "routing state, e.g. \"grade = 'A' and city = '上海市' and login_days_30d >= 10\".")],
    limit: Annotated[int | None, typer.Option(
        "--limit", help="List at most N persons [default: 20]; with -o, write at most N "
        "(default: all).", show_default=False)] = None,
    count: Annotated[bool, typer.Option("--count", help="Only count the matches.")] = False,
    out: Annotated[Path | None, common.file_option(
        "-o", "--output", help="Write the matches to this .csv or .parquet file.",
        show_default=False)] = None,
    reveal: common.Reveal = False,
    as_of: common.ViewAsOf = None,
    json_out: common.Json = False,
) -> None:
    """List persons matching an expression (exit 2 with the column when EXPR is invalid)."""

    s = common.settings(ctx)
    result = common.run(ctx, lambda: api.find(
        s.db, expr, limit=common.check_count("--limit", limit), count_only=count,
        reveal=reveal, out=out, as_of=common.parse_as_of(as_of), rules_dir=s.rules))
    if result.get("hint"):
        common.warn(result["hint"])
    if json_out:
        common.print_json(result)
        return
    console = common.stdout_console(piped_width=120)  # piped: keep rows on one line
    if count:
        console.print(str(result["count"]))
        return
    if out is not None:
        common.stderr_console().print(
            f"wrote {result['rows']} of {result['count']} matching persons to {result['file']}")
        return
    rows = [[p["person_id"], p["name"], p["phone"], p["city"], p["grade"],
             _score(p["score"]), p["pool"], p["owner"]] for p in result["persons"]]
    shown = len(rows)
    title = (f"{result['count']} persons match" if shown == result["count"]
             else f"{result['count']} persons match, first {shown} by score")
    title += f" ({describe(result)})"
    console.print(common.table(title, ["person", "name", "phone", "city", "grade", "score",
                                       "pool", "owner"], rows, right=("score",),
                                drop=("owner", "city", "pool", "name"), full="--json or -o"))


def _score(value) -> str:
    return "" if value is None else common.value_text(value)  # every digit, as --json has
