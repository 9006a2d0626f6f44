"""`leadctl route [--as-of D] [--dry-run] [--json] [--limit N]`."""

from __future__ import annotations

from typing import Annotated

import typer

from leadctl import api
from leadctl.cli import common


def register(app: typer.Typer) -> None:
    app.command("route")(route)


def route(
    ctx: typer.Context,
    as_of: common.AsOf = None,
    dry_run: common.DryRun = False,
    limit: Annotated[int, typer.Option("--limit", help="Individual moves to list.")] = 50,
    json_out: common.Json = False,
) -> None:
    """Assign persons to pools and reps per rules/routing.yaml (lifecycle first: locks,
    dormancy, reactivation, status SLAs; then routes, first match wins; then allocation).
    --dry-run lists what would move where and why, and changes nothing."""

    s = common.settings(ctx)
    day = common.as_of_date(ctx, as_of)
    result = common.run(ctx, lambda: api.route(s.db, s.rules, day, dry_run=dry_run,
                                                limit=common.check_count("--limit", limit)))
    common.show(result, json_out, render_route_summary)


def render_route_summary(result: dict) -> None:
    out = common.stdout_console()
    head = "dry run: nothing changed" if result["dry_run"] else f"stored run {result['run_id']}"
    if result.get("skipped"):
        out.print(f"{head} — {result['skipped']}", markup=False)
        return
    out.print(f"{head} — as of {result['as_of']}, {result['persons']} persons, "
              f"{result['changes']} {'would change' if result['dry_run'] else 'changed'}",
              markup=False, highlight=False)
    if not result["moves"]:
        out.print("nothing moves", markup=False, highlight=False)
    else:
        out.print(common.table("moves", ["from pool", "to pool", "reason", "persons"],
                               [[m["from"] or "-", m["to"] or "-", m["reason"],
                                 m["persons"]] for m in result["moves"]],
                               right=("persons",)))
    if result["details"]:
        out.print(common.table(
            f"first {result['details_shown']} by person id",
            ["person", "from", "to", "rule", "reason"],
            [[d["person_id"], _where(d["from"]), _where(d["to"]), d["rule"], d["reason"]]
             for d in result["details"]], drop=("rule", "from")))
    out.print(common.table("pools", ["pool", "allocation", "persons", "owned", "waiting",
                                     "dealt now"],
                           [[p["pool"], p["allocation"] if p["in_rules"] else "not in rules",
                             p["persons"], p["owned"], p["unowned"],
                             p["dealt"]] for p in result["pools"]],
                           right=("persons", "owned", "waiting", "dealt now"),
                           drop=("allocation", "dealt now")))
    period = result["capacity_period"]
    out.print(common.table(f"reps (capacity per {period['period']} from {period['from']})",
                           ["rep", "dealt now", "this period", "capacity", "room", "open"],
                           [[r["rep"], r["dealt"], r["period_load"],
                             r["capacity"] if r["capacity"] is not None
                             else "-" if r["in_rules"] else "not in rules",
                             "-" if r["room"] is None else r["room"], r["open_leads"]]
                            for r in result["reps"]],
                           right=("dealt now", "this period", "capacity", "room", "open"),
                           drop=("this period", "open", "dealt now")))
    if result["unassigned"]:
        shown = ", ".join(f"{k} {v}" for k, v in result["unassigned"].items())
        out.print(f"without owner: {shown}", markup=False, highlight=False)


def _where(side: dict) -> str:
    parts = [side["pool"] or "-"]
    if side["owner"]:
        parts.append(side["owner"])
    if side["status"]:
        parts.append(f"({side['status']})")
    return " ".join(parts)
