"""`leadctl resolve`."""

from __future__ import annotations

import typer

from leadctl import api
from leadctl.cli import common


def register(app: typer.Typer) -> None:
    app.command("resolve")(resolve)


def resolve(ctx: typer.Context, as_of: common.AsOf = None, dry_run: common.DryRun = False,
            full: common.Full = False, json_out: common.Json = False) -> None:
    """Normalise identifiers, merge identities (OneID), build golden person records."""

    s = common.settings(ctx)
    day = common.as_of_date(ctx, as_of)  # sale locks active on this day follow merges
    with common.Progress("resolve") as bar:
        result = common.run(ctx, lambda: api.resolve(s.db, s.rules, bar.update, as_of=day,
                                                     dry_run=dry_run, full=full))
    # Warnings in every mode (stderr, and the --log-file log): a dry run keeps the resolve
    # summary under "resolve", a real run is that summary.
    summary = result.get("resolve", {}) if dry_run else result
    for warning in summary.get("overrides", {}).get("warnings", []):
        common.warn(f"identity override: {warning}")
    if summary.get("conflicts"):
        common.warn(f"{summary['conflicts']} ownership conflict(s): a merge "
                    + ("would keep" if dry_run else "kept") + " one state and not another "
                    "rep's active sale lock (on_merge: keep); see `leadctl identity "
                    "conflicts`")
    if json_out:
        common.print_json(result)
        return
    if dry_run:
        render_preview(result)
        return
    ids = result.get("identifiers", {})
    rows = [[kind, v.get("rows"), v.get("ok"), v.get("invalid"), v.get("blocked"),
             v.get("capped"), v.get("linking")] for kind, v in sorted(ids.items())]
    out = common.stdout_console()
    out.print(f"{result.get('leads')} leads → {result.get('persons')} persons "
              f"({result.get('multi_lead_persons')} with several leads, largest "
              f"{result.get('largest_person')}); merges {result.get('merges', 0)}, "
              f"splits {result.get('splits', 0)}")
    out.print(common.table(None, ["identifier", "values", "ok", "invalid", "blocked", "capped",
                                  "linking"], rows,
                           right=("values", "ok", "invalid", "blocked", "capped", "linking"),
                           drop=("capped", "blocked", "invalid")))
    if result.get("blocked_values") or result.get("capped_values"):
        common.warn(f"{result.get('blocked_values', 0)} blocklisted and "
                    f"{result.get('capped_values', 0)} over-shared values do not link; "
                    "see `leadctl export blocked -o blocked.csv`")


def render_preview(r: dict) -> None:
    """`resolve --dry-run`: what would change against the published state."""
    out = common.stdout_console()
    out.print(f"dry run: {r['persons_before']} → {r['persons_after']} persons; merges "
              f"{r['merges']}, splits {r['splits']}; ids retired {r['ids_retired']}, new "
              f"{r['ids_new']}; owner changes {r['owner_changes']}; "
              f"{r['changed_persons']} persons with a new set of leads")
    if r["merged"]:
        out.print(common.table("merges", ["person", "absorbs", "leads"], [
            [m["person_id"], ", ".join(m["absorbed"]), m["leads"]] for m in r["merged"]],
            right=("leads",)))
    if r["split"]:
        out.print(common.table("splits", ["person", "leaves", "leads"], [
            [m["person_id"], m["from"], m["leads"]] for m in r["split"]], right=("leads",)))
    if r["largest_new_clusters"]:
        out.print(common.table("largest new clusters", ["person", "leads", "was"], [
            [c["person_id"], c["leads"], ", ".join(c["was"]) or "-"]
            for c in r["largest_new_clusters"]], right=("leads",)))
    if r["owners_changed"]:
        out.print(common.table("owner, pool or lock changes", ["person", "leads", "before",
                                                               "after"], [
            [c["person_id"], c["leads"], ", ".join(c["before"]), c["after"]]
            for c in r["owners_changed"]], right=("leads",)))
    if r["blocked"]["values"]:
        out.print(common.table("blocked / capped / cut values", ["change", "type", "value",
                                                                 "status", "records", "reason"],
                               [[v["change"], v["id_type"], v["value"], v["status"],
                                 v["records"], v["reason"]] for v in r["blocked"]["values"]],
                               right=("records",), drop=("reason",)))
    common.stderr_console().print("nothing was published (dry run)")
