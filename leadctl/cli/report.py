"""`leadctl report channels`: channel / UTM monitoring."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from leadctl import api
from leadctl.cli import common
from leadctl.views.asof import describe

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
    out: Annotated[Path | None, typer.Option(
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
        as_of=common.parse_optional_as_of(as_of), duplicates=duplicates, reveal=reveal))
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
    return "—" if value is None else f"{value * 100:.1f}%"


def _num(value) -> str:
    return "—" if value is None else f"{value:g}"


def _money(value, decimals: int = 2) -> str:
    return "—" if value is None else f"{value:,.{decimals}f}"


# At a narrow width the grade mix goes first (the average score stays), then raw counts,
# then the cost per new person; the value columns (new, dup other, cost/lead) stay longest.
_RIGHT = ("leads", "persons", "dup", "rejects", "reject", "A", "B", "C", "D", "avg score",
          "to sales", "sold", "new", "dup other", "cost/lead", "cost/new", "amount")
_DROP = (("A", "B", "C", "D"), "rejects", "persons", "sold", "amount", "cost/new",
         "avg score")


def render(result: dict):
    title = (f"channels by {result['by']}" + (f" since {result['since']}" if result["since"]
                                              else "") + f", {describe(result)}")
    rows = [[r["channel"], r["leads"], r["persons"], _pct(r["dup_rate"]), _num(r["rejects"]),
             _pct(r["reject_rate"]), r["grade_a"], r["grade_b"], r["grade_c"], r["grade_d"],
             _num(r["avg_score"]), _pct(r["sales_share"]), r["sold"], r["new_persons"],
             r["dup_other_source"], _money(r["cost_per_lead"]), _money(r["cost_per_new"]),
             _money(r["new_sold_amount"], 0)]
            for r in result["channels"] + [result["total"]]]
    currency = f" ({result['currency']})" if result.get("currency") else ""
    costs = (f"cost{currency} from {result['costs']}" if result.get("costs")
             else "no rules/costs.yaml: no costs")
    caption = (f"dup = leads whose person also came through another {result['by']}; "
               f"reject = rejects / (leads + rejects); to sales = persons in a sales pool "
               f"({result['sales_pools_rule']}); new = leads that were their person's first; "
               f"dup other = leads whose person another source brought earlier; amount = "
               f"sales of the persons the channel brought first; {costs}")
    return common.table(title, [result["by"], *_RIGHT], rows, right=_RIGHT, drop=_DROP,
                        full="--json or -o", caption=caption, total=True)
