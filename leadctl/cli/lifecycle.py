"""`leadctl claim`, `leadctl status`, `leadctl sale`: a rep's lifecycle actions."""

from __future__ import annotations

from typing import Annotated

import typer

from leadctl import api
from leadctl.cli import common
from leadctl.routing.lifecycle import CLAIM_SHORT_REASONS

Rep = Annotated[str, typer.Option("--rep", help="The sales rep (as named in routing.yaml).")]


def register(app: typer.Typer) -> None:
    app.command("claim")(claim)
    app.command("status")(status)
    app.command("sale")(sale)


def claim(
    ctx: typer.Context,
    pool: Annotated[str, typer.Argument(help="A claim pool of routing.yaml.")],
    rep: Rep,
    n: Annotated[int, typer.Option("--n", help="How many leads to take.")] = 1,
    as_of: common.AsOf = None,
    json_out: common.Json = False,
) -> None:
    """Take up to N waiting leads from a claim pool (best score first), within the rep's
    remaining capacity for the period; leads locked to another rep are skipped."""

    s = common.settings(ctx)
    day = common.as_of_date(ctx, as_of)
    result = common.run(ctx, lambda: api.claim(s.db, s.rules, pool, rep,
                                                common.check_count("--n", n), day))
    if result["reason"]:  # took fewer than asked (maybe nothing): say why, still exit 0
        took = "nothing" if not result["count"] else f"only {result['count']}"
        common.warn(f"{rep} claimed {took} from {pool}: {CLAIM_SHORT_REASONS[result['reason']]}"
                    f" ({result['reason']})")
    if json_out:
        common.print_json(result)
        return
    room = "no limit" if result["room"] is None else f"{result['room']} left this period"
    line = (f"{rep} claimed {result['count']} of {result['requested']} from {pool} ({room}; "
            f"{result['waiting']} still waiting)")
    if result["reason"]:
        line += f" — fewer than asked: {result['reason']}"
    out = common.stdout_console()
    out.print(line, markup=False, highlight=False)
    for person in result["claimed"]:
        out.print(f"  {person}", markup=False, highlight=False)


def status(
    ctx: typer.Context,
    person: Annotated[str, typer.Argument(help="Person id (or a lead id).")],
    new_status: Annotated[str, typer.Argument(
        metavar="STATUS", help="pending, contacting, unclear_intent, clear_intent, "
        "appointment or closed")],
    rep: Annotated[str | None, typer.Option("--rep", help="Refuse unless this rep owns the "
                                            "lead.")] = None,
    as_of: common.AsOf = None,
    json_out: common.Json = False,
) -> None:
    """Set a lead's follow-up status. A status held longer than its SLA in routing.yaml
    sends the lead back to the pool on the next route run."""

    s = common.settings(ctx)
    day = common.as_of_date(ctx, as_of)
    result = common.run(ctx, lambda: api.set_status(s.db, s.rules, person, new_status, day,
                                                    rep))
    if json_out:
        common.print_json(result)
        return
    text = (f"{result['person_id']}: {result['old_status'] or '-'} → {result['status']}"
            if result["changed"] else f"{result['person_id']}: already {result['status']}")
    common.stdout_console().print(f"{text} (owner {result['owner']})", markup=False,
                                  highlight=False)


def sale(
    ctx: typer.Context,
    person: Annotated[str, typer.Argument(help="Person id (or a lead id).")],
    rep: Rep,
    amount: Annotated[float | None, typer.Option("--amount", help="Sale amount (kept in "
                                                 "the sales log).")] = None,
    lock_days: Annotated[int | None, typer.Option(
        "--lock-days", help="Lock length in days [default: lifecycle.lock_days]",
        show_default=False)] = None,
    as_of: common.AsOf = None,
    json_out: common.Json = False,
) -> None:
    """Record a sale: the person becomes the rep's (status closed) and is locked to the
    rep — other reps cannot claim it and routing leaves it alone until the lock ends."""

    s = common.settings(ctx)
    day = common.as_of_date(ctx, as_of)
    result = common.run(ctx, lambda: api.sale(
        s.db, s.rules, person, rep, day,
        common.check_count("--lock-days", lock_days, high=common.MAX_LOCK_DAYS),
        common.check_amount("--amount", amount)))
    if json_out:
        common.print_json(result)
        return
    first = "first sale" if result["first_sale"] else "repeat sale"
    common.stdout_console().print(
        f"{result['person_id']}: {first} by {rep}; locked to {rep} until "
        f"{result['locked_until']}", markup=False, highlight=False)
