"""`leadctl score [--as-of D] [--dry-run] [--json]`."""

from __future__ import annotations

from typing import Annotated

import typer

from leadctl import api
from leadctl.cli import common

ScoreAsOf = Annotated[
    str | None,
    typer.Option("--as-of", help="Score as of this date (YYYY-MM-DD): that of the stored tags "
                 "(default: the last tag run's; today before any). A score reads the tags "
                 "as their run computed them, so another date exits 2: tag as of it first.",
                 show_default=False),
]


def register(app: typer.Typer) -> None:
    app.command("score")(score)


def score(
    ctx: typer.Context,
    as_of: ScoreAsOf = None,
    dry_run: common.DryRun = False,
    json_out: common.Json = False,
) -> None:
    """Evaluate rules/scoring.yaml for every person: points per rule, score, grade.
    --dry-run shows the grade distribution and how many persons would change grade
    against the stored scores, and stores nothing. Scores are as of the stored tags (the
    last tag run's as-of)."""

    s = common.settings(ctx)
    day = common.guarded(ctx, lambda: common.parse_as_of(as_of))
    result = common.run(ctx, lambda: api.score(s.db, s.rules, day, dry_run=dry_run))
    common.show(result, json_out, render_score_summary)


def render_score_summary(result: dict) -> None:
    out = common.stdout_console()
    head = "dry run: nothing stored" if result["dry_run"] else f"stored run {result['run_id']}"
    if result.get("skipped"):
        out.print(f"{head} — {result['skipped']}", markup=False)
        return
    previous = result.get("previous")
    since = (f"vs run {previous['run_id']} as of {previous['as_of']}" if previous
             else "no stored scores yet")
    rows = [[g["grade"], g["persons"], g["previous"], _delta(g["persons"] - g["previous"])]
            for g in result["grades"]]
    changes = result["grade_changes"]
    verb = "would change" if result["dry_run"] else "changed"
    out.print(f"{head} — as of {result['as_of']}, {result['persons']} persons, {since}\n"
              f"{changes['changed']} persons {verb} grade, {changes['added']} new, "
              f"{changes['removed']} no longer scored", markup=False, highlight=False)
    out.print(common.table(None, ["grade", "persons", "previous", "change"], rows,
                           right=("persons", "previous", "change"), drop=("previous",)))
    if result["grade_moves"]:
        out.print(common.table("grade moves", ["from", "to", "persons"],
                               [[m["from"], m["to"], m["persons"]]
                                for m in result["grade_moves"][:12]], right=("persons",)))
    out.print(common.table("points by rule", ["rule", "persons", "total points"],
                           [[r["rule"], r["persons"], r["points"]] for r in result["rules"]],
                           right=("persons", "total points")))


def _delta(n: int) -> str:
    return f"+{n}" if n > 0 else str(n) if n else ""
