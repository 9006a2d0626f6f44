"""`leadctl resolve`."""

from __future__ import annotations

import typer

from leadctl import api
from leadctl.cli import common


def register(app: typer.Typer) -> None:
    app.command("resolve")(resolve)


def resolve(ctx: typer.Context, as_of: common.AsOf = None,
            json_out: common.Json = False) -> None:
    """Normalise identifiers, merge identities (OneID), build golden person records."""

    s = common.settings(ctx)
    day = common.as_of_date(ctx, as_of)  # sale locks active on this day follow merges
    with common.Progress("resolve") as bar:
        result = common.run(ctx, lambda: api.resolve(s.db, s.rules, bar.update, as_of=day))
    if result.get("conflicts"):
        common.warn(f"{result['conflicts']} ownership conflict(s): a merge brought together "
                    "active sale locks of different reps (the earlier sale was kept); see "
                    "`leadctl identity conflicts`")
    if json_out:
        common.print_json(result)
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
