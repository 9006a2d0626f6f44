"""`leadctl report channels`: channel / UTM monitoring; `leadctl report funnel`: campaign
funnels (rules/funnels.yaml)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Annotated

import typer

from leadctl import api
from leadctl.campaigns.experiments import arm_labels, p_text
from leadctl.cli import common, output
from leadctl.views.asof import describe
from leadctl.views.report import grade_columns

report_app = typer.Typer(help="Reports over the published state.", no_args_is_help=True,
                         rich_markup_mode=None)


def register(app: typer.Typer) -> None:
    app.add_typer(report_app, name="report")


@report_app.command("channels")
def channels(
    ctx: typer.Context,
    by: Annotated[str, typer.Option(
        "--by", help="source | utm_source | utm_medium | utm_campaign | utm_content | "
        "utm_term | channel")] = "source",
    since: Annotated[str | None, typer.Option(
        "--since", help="Only leads created (and rejects rejected) on or after this date "
        "(YYYY-MM-DD).", show_default=False)] = None,
    out: Annotated[Path | None, common.file_option(
        "-o", "--output", help="Write the table (total row last) to a .csv or .parquet file.",
        show_default=False)] = None,
    duplicates: Annotated[str | None, typer.Option(
        "--duplicates", metavar="SOURCE", help="Write the leads of SOURCE that duplicate an "
        "earlier lead of another source (with that lead's source, id and date) to -o FILE: "
        "the evidence for duplicate-lead refunds.", show_default=False)] = None,
    as_of: common.ViewAsOf = None,
    reveal: common.Reveal = False,
    json_out: common.Json = False,
) -> None:
    """Per channel: leads, unique persons, cross-channel duplicate rate, reject rate, grade
    mix and average score, share routed to sales pools, persons sold; new persons versus
    duplicates of an earlier lead (of another source / the same source), first-touch
    outcomes and cost per lead and per new person (rules/costs.yaml); with a total row."""

    s = common.settings(ctx)
    result = common.run(ctx, lambda: api.report_channels(
        s.db, by=by, since=_date(since), out=out, rules_dir=s.rules,
        as_of=common.parse_as_of(as_of), duplicates=duplicates, reveal=reveal))
    for warning in result.get("warnings", []):
        common.warn(warning)
    if json_out:
        common.print_json(result)
    elif out is not None:
        what = f" (leads of {result['source']} duplicating another source's earlier lead)" \
            if duplicates is not None else ""
        common.stderr_console().print(f"wrote {result['rows']} rows to {result['file']}{what}")
    else:
        # piped without $COLUMNS: wide enough for every column
        common.stdout_console(piped_width=120).print(render(result))


def _date(value: str | None):
    return None if value is None else common.parse_date(value, "--since", "2026-10-01")


def _pct(value) -> str:
    """A share as a percentage of its --json value, rounded as `_money` rounds (0.0625 is
    6.3%, not Python's 6.2%)."""
    if value is None:
        return "—"
    percent = Decimal(repr(float(value))) * 100
    return f"{percent.quantize(Decimal('0.1'), rounding=ROUND_HALF_UP)}%"


def _money(value, decimals: int = 2) -> str:
    """Rounded half away from zero, as the report's SQL rounds (Python's format rounds a
    half to even: 2.5 showed as 2 beside the JSON's 2.5 → 3)."""
    if value is None:
        return "—"
    if not abs(float(value)) < 1e15:  # as --json writes it (1e+28): no made-up digits
        return output.value_text(float(value))
    step = Decimal(1).scaleb(-decimals)
    return f"{Decimal(repr(float(value))).quantize(step, rounding=ROUND_HALF_UP):,}"


def _amount(value) -> str:
    """A sum of money: whole units when it is whole (35,000), else with its cents
    (1,334.49): every digit --json has, never rounded to the unit."""
    if value is None:
        return "—"
    return _money(value, 0 if float(value).is_integer() else 2)


# At a narrow width the grade mix goes first (the average score stays), then raw counts,
# then the cost per new person, the average score and the cost (a channel paid for that
# brought no lead shows only its cost); the value columns (new, dup other, cost/lead) stay
# longest.
_BEFORE_GRADES = ("leads", "persons", "dup", "rejects", "reject")
_AFTER_GRADES = ("avg score", "to sales", "sold", "new", "dup other", "cost", "cost/lead",
                 "cost/new", "amount")
_DROP = ("rejects", "persons", "sold", "amount", "cost/new", "avg score", "cost")


def grade_headers(grades: list[str], by: str) -> list[str]:
    """The grade mix's headers: each grade as written (A, hot), or `grade NAME` when the
    name is another column's header (a grade called `sold`): the table finds columns by
    header, to drop them."""
    taken = {by, *_BEFORE_GRADES, *_AFTER_GRADES}
    return [f"grade {g}" if g in taken else g for g in grades]


def render(result: dict):
    title = (f"channels by {result['by']}" + (f" since {result['since']}" if result["since"]
                                              else "") + f", {describe(result)}")
    num = common.value_text  # every digit, as --json has (None: —)
    grades = grade_columns(result["grades"])
    rows = [[r["channel"], r["leads"], r["persons"], _pct(r["dup_rate"]), num(r["rejects"]),
             _pct(r["reject_rate"]), *(r[g] for g in grades),
             num(r["avg_score"]), _pct(r["sales_share"]), r["sold"], r["new_persons"],
             r["dup_other_source"], _amount(r["cost"]), _money(r["cost_per_lead"]),
             _money(r["cost_per_new"]), _amount(r["new_sold_amount"])]
            for r in result["channels"] + [result["total"]]]
    currency = f" ({result['currency']})" if result.get("currency") else ""
    costs = (f"cost{currency} from {result['costs']}" if result.get("costs")
             else "no rules/costs.yaml: no costs")
    caption = (f"dup = leads whose person also came through another {result['by']}; "
               f"reject = rejects / (leads + rejects); to sales = persons in a sales pool "
               f"({result['sales_pools_rule']}); new = leads that were their person's first; "
               f"dup other = leads whose person another source brought earlier; amount = "
               f"sales of the persons the channel brought first; {costs}")
    headers = grade_headers(result["grades"], result["by"])
    right = (*_BEFORE_GRADES, *headers, *_AFTER_GRADES)
    return common.table(title, [result["by"], *right], rows, right=right,
                        drop=(tuple(headers), *_DROP),
                        full="--json or -o", caption=caption, total=True)


@report_app.command("funnel")
def funnel(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A funnel of rules/funnels.yaml.")],
    by: Annotated[list[str] | None, typer.Option(
        "--by", help="Break down by a dimension of the funnel's `by:` (utm_source, "
        "utm_content, source, a batch attribute, tag:NAME); repeat or comma-separate for "
        "several.", show_default=False)] = None,
    since: Annotated[str | None, typer.Option(
        "--since", help="Only entries (a first-step event) on or after this date "
        "(YYYY-MM-DD).", show_default=False)] = None,
    attribution: Annotated[str | None, typer.Option(
        "--attribution", help="first (the entry event's UTM fields; default) or last (the "
        "latest event of the person's path carrying them).", show_default=False)] = None,
    as_of: common.ViewAsOf = None,
    json_out: common.Json = False,
) -> None:
    """Per group: persons at each step (once per step, in order, inside the window), the
    conversion (of the persons entering), of the previous step, the median hours from the
    previous step, and `!` where a step falls under the funnel's min_conversion."""
    s = common.settings(ctx)
    result = common.run(ctx, lambda: api.report_funnel(
        s.db, s.rules, name, by=by, since=_date(since),
        as_of=common.parse_as_of(as_of), attribution=attribution))
    for warning in result["warnings"]:
        common.warn(warning)
    if json_out:
        common.print_json(result)
    else:
        common.stdout_console(piped_width=100).print(render_funnel(result))


_FUNNEL_RIGHT = ("persons", "conversion", "of prev", "median h")


def render_funnel(result: dict):
    by = result["by"]
    title = (f"funnel {result['funnel']} ({result['window_days']}d window, "
             f"{result['attribution']} touch)" + (f" by {', '.join(by)}" if by else "")
             + (f", entries since {result['since']}" if result["since"] else "")
             + f", {describe(result)}")
    rows = []
    for group in result["groups"]:
        label = ", ".join("(none)" if v is None else str(v) for v in group["key"].values())
        for index, step in enumerate(group["steps"]):
            flag = " !" if step["below_min"] else ""
            rows.append([label if index == 0 else "", step["step"], step["persons"],
                         _pct(step["conversion"]) + flag,
                         "" if index == 0 else _pct(step["of_previous"]),
                         common.value_text(step["median_hours_from_previous"])
                         if index else ""])
    mins = ", ".join(f"{k} {v * 100:g}%" for k, v in result["min_conversion"].items())
    caption = ("conversion = persons / persons entering; of prev = / the previous step; "
               "median h = median hours from the previous step"
               + (f"; ! = under min_conversion ({mins})" if mins else ""))
    open_windows = sum(g["open_windows"] for g in result["groups"])
    if open_windows:
        caption += f"; {open_windows} entries' windows still open at the as-of date"
    columns = [", ".join(by) or "group", "step", *_FUNNEL_RIGHT]
    if not by:
        rows = [row[1:] for row in rows]
        columns = columns[1:]
    return common.table(title, columns, rows, right=_FUNNEL_RIGHT, drop=("median h",),
                        caption=caption)


@report_app.command("ab")
def ab(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(
        help="An experiment recorded by `leadctl audience export`, or (with --variant-from) "
        "a name for an attribute experiment.")],
    goal: Annotated[str | None, typer.Option(
        "--goal", help="The goal event type (conversion). [default: the experiment's]",
        show_default=False)] = None,
    window: Annotated[str | None, typer.Option(
        "--window", help="Conversions count this long from each person's start, e.g. 14d "
        "or 2w. [default: 14d]", show_default=False)] = None,
    variant_from: Annotated[str | None, typer.Option(
        "--variant-from", help="Variant from an event attribute (utm_content) or a lead "
        "column (lead.utm_content) instead of a recorded experiment.",
        show_default=False)] = None,
    entry: Annotated[str | None, typer.Option(
        "--entry", help="With --variant-from: the entry event type carrying the attribute. "
        "[default: any but the goal]", show_default=False)] = None,
    since: Annotated[str | None, typer.Option(
        "--since", help="With --variant-from: only entries on or after this date.",
        show_default=False)] = None,
    variants: Annotated[str | None, typer.Option(
        "--variants", help="With --variant-from: the planned split, e.g. A:50,B:50 (first "
        "= control). [default: equal over the values seen]", show_default=False)] = None,
    control: Annotated[str | None, typer.Option(
        "--control", help="The variant the others are compared to.",
        show_default=False)] = None,
    as_of: Annotated[str | None, typer.Option(
        "--as-of", help="Count goal events before this date (YYYY-MM-DD). Default: today.",
        show_default=False)] = None,
    reveal: common.Reveal = False,
    json_out: common.Json = False,
) -> None:
    """A/B test: per variant persons, conversions and rate (95% Wilson CI); each variant
    against the control (difference with Newcombe CI, two-sided p-value); sample ratio
    check; a verdict that names no winner without significance or enough data."""

    s = common.settings(ctx)
    result = common.run(ctx, lambda: api.report_ab(
        s.db, name, goal=common.check_text("--goal", goal), window=window,
        as_of=common.parse_as_of(as_of), variant_from=variant_from,
        entry=common.check_text("--entry", entry),
        since=None if since is None else common.parse_date(since, "--since", "2026-10-01"),
        variants=variants, control=control, reveal=reveal))
    for warning in result["warnings"]:
        common.warn(warning)
    if json_out:
        common.print_json(result)
        return
    console = common.stdout_console(piped_width=120)
    console.print(render_ab(result))
    console.print(result["verdict"], markup=False, highlight=False, soft_wrap=True)


def _ci(values) -> str:
    return "—" if values is None else f"{values[0] * 100:.1f}–{values[1] * 100:.1f}%"


def render_ab(result: dict):
    origin = (f"from {result['start']}" if result["source"] == "audience"
              else f"variant from {result['variant_from']}")
    title = (f"A/B {result['experiment']}: {result['goal']} within {result['window_days']}d, "
             f"{origin}, events before {result['as_of']}")
    # by arm number: masked variant names can be alike
    by_arm = {c["arm"]: c for c in result["comparisons"]}
    labels = arm_labels([arm["variant"] for arm in result["variants"]])
    rows = []
    for i, (arm, label) in enumerate(zip(result["variants"], labels, strict=True), start=1):
        c = by_arm.get(i)
        rows.append([label + (" (control)" if arm["control"] else ""), arm["persons"],
                     arm["converted"], _pct(arm["rate"]), _ci(arm["ci"]),
                     _pct(arm["planned"]),
                     "" if c is None or c["diff"] is None else f"{c['diff'] * 100:+.1f} pts",
                     "" if c is None else _ci(c["ci"]).replace("%", " pts"),
                     "" if c is None or c["p_value"] is None
                     else f"{p_text(c['p_value'], 3)} ({c['test']})"])
    notes = []
    if result["srm"] is not None:
        notes.append(f"sample ratio p = {result['srm']['p_value']:.3g}"
                     + (" MISMATCH" if result["srm"]["mismatch"] else ""))
    if result["open_windows"]:
        notes.append(f"{result['open_windows']} persons' windows still open")
    if result["excluded"]:
        notes.append(f"{result['excluded']} persons with unplanned variants left out")
    caption = "; ".join(notes) if notes else None
    right = ("persons", "converted", "rate", "planned", "diff", "p")
    table = common.table(title, ["variant", "persons", "converted", "rate", "95% CI",
                                 "planned", "diff", "diff CI", "p"], rows, right=right,
                         drop=("planned", "diff CI"), full="--json", caption=caption)
    return table
