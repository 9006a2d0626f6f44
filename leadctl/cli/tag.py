"""`leadctl tag [--as-of D] [--dry-run] [--full] [--json]`."""

from __future__ import annotations

import json

import typer

from leadctl import api
from leadctl.cli import common, output


def register(app: typer.Typer) -> None:
    app.command("tag")(tag)


def tag(
    ctx: typer.Context,
    as_of: common.AsOf = None,
    dry_run: common.DryRun = False,
    full: common.Full = False,
    json_out: common.Json = False,
) -> None:
    """Evaluate rules/tags.yaml for every person; --dry-run shows per-tag counts, value
    distribution and the difference against the last stored run, and stores nothing."""

    s = common.settings(ctx)
    day = common.as_of_date(ctx, as_of)
    with common.Progress("tag") as bar:
        result = common.run(ctx, lambda: api.tag(s.db, s.rules, day, dry_run=dry_run,
                                                 progress=bar.update, full=full))
    for warning in result.get("warnings", []):
        common.warn(warning)
    common.show(result, json_out, render_tag_summary)


def render_tag_summary(result: dict) -> None:
    previous = result.get("previous")
    since = (f"changes vs run {previous['run_id']} ({previous['as_of']})" if previous
             else "no stored run to compare with")
    stored = "dry run, nothing stored" if result["dry_run"] else f"stored as run {result['run_id']}"
    title = f"tags as of {result['as_of']}: {result['persons']} persons, {stored}; {since}"
    rows = []
    for t in result["tags"]:
        c = t["changes"]
        rows.append([t["tag"], t["kind"], t["persons_with_value"], _distribution(t),
                     c["added"], c["removed"], c["changed"]])
    for name in result.get("removed_tags", []):
        rows.append([name, "(removed)", 0, "", 0, "all", 0])
    common.stdout_console().print(common.table(
        title, ["tag", "kind", "valued", "values", "added", "removed", "changed"],
        rows, right=("valued", "added", "removed", "changed"),
        drop=("kind", "valued", "removed", "added")))


def _distribution(t: dict) -> str:
    if "levels" in t:
        shown = [lv for lv in t["levels"] if lv["persons"] or lv["previous"]]
        return ", ".join(f"{lv['value']} {lv['persons']}"
                         + (f" ({_delta(lv['persons'] - lv['previous'])})"
                            if lv["persons"] != lv["previous"] else "")
                         for lv in shown)
    if "stats" in t:
        s = t["stats"]
        return "" if s is None else f"{_num(s['min'])}..{_num(s['max'])} avg {_num(s['avg'])}"
    return ", ".join(f"{json.dumps(v['value'], ensure_ascii=False)} {v['persons']}"
                     for v in t.get("top_values", [])[:3])


def _delta(n: int) -> str:
    return f"+{n}" if n > 0 else str(n)


def _num(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and abs(value) >= 1e15:  # as --json writes it (1e+41)
        return output.value_text(value)
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}"
