"""Lead lifecycle commands: a rep claims leads from a claim pool, sets a follow-up
status, records a sale (which locks the person to the rep: do-not-disturb).

Each change of pool, owner or status appends one `assignments` row, like routing does.
Capacity counts every lead that became the rep's in the current capacity period
(dealt, claimed or sold), so claims and routing share one limit.
"""

from __future__ import annotations

import datetime as dt

from leadctl.errors import InputError, UsageError
from leadctl.identity.lookup import recorded_under_sql, resolve_person
from leadctl.routing.model import INTENT_STATUSES, STATUSES, RoutingRules
from leadctl.routing.sql import (
    claim_pick_sql,
    claim_waiting_sql,
    later_logged_sql,
    rep_period_load_sql,
)
from leadctl.routing.tables import LOG_COLUMNS, OWNERSHIP_COLUMNS
from leadctl.workspace import Workspace

CLAIMED = "claim_picked"
# Why a claim took fewer leads than asked (the `reason` of its result).
CLAIM_SHORT_REASONS = {
    "pool_empty": "no leads waiting in the pool",
    "no_capacity": "the rep is at capacity for this period",
    "locked": "the leads left in the pool are locked to other reps",
}


def _state(ws: Workspace, person_id: str) -> dict | None:
    rows = ws.rows("SELECT * FROM ownership WHERE person_id = ?", [person_id])
    return rows[0] if rows else None


def _log(ws: Workspace, as_of: dt.date, run_id: int, person_id: str, old: dict | None,
         new: dict, rule: str, reason: str) -> None:
    old = old or {}
    ws.execute(
        f"INSERT INTO assignments ({', '.join(LOG_COLUMNS)}) VALUES "
        f"({', '.join('?' for _ in LOG_COLUMNS)})",
        [log_stamp(ws, as_of), run_id, as_of, person_id, old.get("pool"), new["pool"],
         old.get("owner"), new["owner"], old.get("status"), new["status"], rule, reason,
         new["reason"]])


def _write_state(ws: Workspace, row: dict) -> None:
    ws.execute("DELETE FROM ownership WHERE person_id = ?", [row["person_id"]])
    ws.execute(f"INSERT INTO ownership ({', '.join(OWNERSHIP_COLUMNS)}) VALUES "
               f"({', '.join('?' for _ in OWNERSHIP_COLUMNS)})",
               [row[c] for c in OWNERSHIP_COLUMNS])


def _mark_intent(ws: Workspace, person_id: str, as_of: dt.date) -> None:
    ws.execute("DELETE FROM lead_intent WHERE person_id = ?", [person_id])
    ws.execute("INSERT INTO lead_intent (person_id, intent_at) VALUES (?, ?)",
               [person_id, as_of])


def _not_before_last_change(ws: Workspace, person_id: str, as_of: dt.date,
                            action: str) -> None:
    """A rep action dated before the person's last logged change would rewrite its past:
    a status held since before the rep owned the lead, a log out of date order. Rows
    logged under an id a merge retired into the person are its changes too."""
    row = ws.execute(f"SELECT as_of, rule FROM assignments WHERE {recorded_under_sql()} "
                     "ORDER BY as_of DESC NULLS LAST LIMIT 1", [person_id] * 2).fetchone()
    if row and row[0] and as_of < row[0]:
        raise UsageError(f"person {person_id} last changed on {row[0]} ({row[1]}): a "
                         f"{action} cannot be dated before it (--as-of {as_of})")


def log_stamp(ws: Workspace, as_of: dt.date) -> dt.datetime:
    """The time to stamp log rows of `as_of` with: now on the workspace clock, or just
    after the latest row's of that date when that is not earlier. A wall clock goes back
    (the hour repeated when summer time ends; rows an earlier version stamped on the
    machine's UTC clock), and rows of one date are listed by their stamp: a status set
    after a claim sorted before it, and the screens showed the state before the status.
    Never the latest's own: a rep action is known by its stamp (rep_actions), and a second
    one stamped as the first was taken for it and lost by `load-results`."""
    now = ws.now()
    latest = ws.scalar("SELECT max(logged_at) FROM assignments WHERE as_of = ?", [as_of])
    if latest is None or latest < now:
        return now
    return latest + dt.timedelta(microseconds=1)


def keep_log_order(ws: Workspace, persons: str, as_of: dt.date, what: str) -> None:
    """A run, resolve or route dated before a person's last logged change would log its
    rows after that change under an earlier date, decided from the later state: the
    screens would show that state before it was set. Refused (exit 2) before anything is
    written; `persons`: a SELECT of the person ids about to be logged, `what` the rows."""
    if not ws.scalar("SELECT count(*) > 0 FROM assignments WHERE as_of > ?", [as_of]):
        return  # a night as of today: nothing logged later, `persons` is not evaluated
    rows = ws.rows(later_logged_sql(persons, as_of))
    if not rows:
        return
    row = rows[0]
    more = int(row["persons"]) - 1
    others = f" (and {more} more person{'s' if more > 1 else ''})" if more else ""
    raise UsageError(
        f"person {row['person_id']} last changed on {row['as_of']} ({row['rule']}){others}: "
        f"{what} cannot be logged as of {as_of}, before it (the log stays in date order); "
        f"run as of {row['as_of']} or later (--as-of), or preview with --dry-run")


def _changed(old: dict | None, new: dict) -> bool:
    old = old or {}
    return any(old.get(k) != new[k] for k in ("pool", "owner", "status"))


def _locked_to_other(state: dict | None, rep: str | None, as_of: dt.date) -> bool:
    return bool(state and state["owner"] and state["owner"] != rep and state["locked_until"]
                and state["locked_until"] >= as_of)


def _known_rep(rules: RoutingRules, rep: str) -> None:
    reps = rules.reps()
    if rep not in reps:
        raise UsageError(f"unknown rep '{rep}' (reps in {rules.path.name}: "
                         f"{', '.join(sorted(reps)) or 'none'})")


# --------------------------------------------------------------------------- claim


def claim(ws: Workspace, rules: RoutingRules, pool_name: str, rep: str, as_of: dt.date,
          n: int = 1, run_id: int | None = None) -> dict:
    """`rep` takes up to `n` waiting leads of claim pool `pool_name` (best score first,
    then person id), within the rep's remaining capacity; locked leads are skipped."""
    pool = rules.pool(pool_name)
    if pool is None:
        raise UsageError(f"unknown pool '{pool_name}' (pools: "
                         f"{', '.join(p.name for p in rules.pools) or 'none'})")
    if pool.deals:
        raise UsageError(f"pool '{pool.name}' deals its leads ({pool.allocation}); only claim "
                         "pools can be claimed from")
    _known_rep(rules, rep)
    members = rules.members(pool)
    if rep not in members:
        raise UsageError(f"rep '{rep}' is not a rep of pool '{pool.name}' "
                         f"(reps: {', '.join(members)})")
    if n < 1:
        raise UsageError("--n must be 1 or more")
    run_id = run_id if run_id is not None else ws.run_id or 0
    capacity = rules.capacity(rep)
    period_from = rules.period_start(as_of)
    load = int(ws.scalar(rep_period_load_sql(rep, period_from, rules.period_end(as_of))) or 0)
    room = None if capacity is None else max(capacity - load, 0)
    take = n if room is None else min(n, room)
    # Those in the pool by the claim's date (a backdated claim counted leads that
    # entered later as still waiting).
    waiting = ws.rows(claim_waiting_sql(pool.name, as_of))[0]
    claimed: list[str] = []
    if take > 0:
        ws.execute(f"CREATE OR REPLACE TEMP TABLE {CLAIMED} AS "
                   f"{claim_pick_sql(pool.name, as_of, take)}")
        claimed = [r["person_id"] for r in ws.rows(
            f"SELECT person_id FROM {CLAIMED} ORDER BY person_id")]
        ws.execute(
            f"INSERT INTO assignments ({', '.join(LOG_COLUMNS)})\n"
            f"SELECT CAST(? AS TIMESTAMP), ?, ?, o.person_id, o.pool, o.pool, o.owner, ?, "
            f"o.status, 'pending', 'claim', 'claimed', 'claimed'\n"
            f"FROM ownership o JOIN {CLAIMED} c ON c.person_id = o.person_id "
            f"ORDER BY o.person_id", [log_stamp(ws, as_of), run_id, as_of, rep])
        ws.execute(f"UPDATE ownership SET owner = ?, status = 'pending', status_since = ?, "
                   f"assigned_at = ?, dormant = FALSE, reason = 'claimed' "
                   f"WHERE person_id IN (SELECT person_id FROM {CLAIMED})",
                   [rep, as_of, as_of])
        ws.execute(f"DROP TABLE IF EXISTS {CLAIMED}")
    free = int(waiting["free"]) - len(claimed)  # still waiting, claimable
    locked = int(waiting["total"]) - int(waiting["free"])
    reason = None  # why fewer than asked were taken
    if len(claimed) < n:
        reason = ("no_capacity" if room is not None and room < n and free > 0
                  else "locked" if locked else "pool_empty")
    return {
        "pool": pool.name, "rep": rep, "as_of": as_of.isoformat(), "run_id": run_id,
        "requested": n, "claimed": claimed, "count": len(claimed),
        "capacity": capacity, "period_load": load + len(claimed),
        "room": None if room is None else room - len(claimed),
        "waiting": free, "locked_skipped": locked, "reason": reason,
    }


# --------------------------------------------------------------------------- status


def set_status(ws: Workspace, rules: RoutingRules, query: str, status: str, as_of: dt.date,
               rep: str | None = None, run_id: int | None = None) -> dict:
    """Set the follow-up status of an owned lead (optionally checking it is `rep`'s)."""
    if status not in STATUSES:
        raise UsageError(f"unknown status '{status}' (statuses: {', '.join(STATUSES)})")
    if rep is not None:
        _known_rep(rules, rep)
    person_id, _ = resolve_person(ws, query)
    state = _state(ws, person_id)
    if state is None or state["owner"] is None:
        raise InputError(f"person {person_id} has no owner"
                         + (f" (it waits in pool {state['pool']}: claim it first)"
                            if state and state["pool"] else " (route it first)"))
    if rep is not None and state["owner"] != rep:
        raise InputError(f"person {person_id} is owned by {state['owner']}, not {rep}"
                         + (f" (locked until {state['locked_until']})"
                            if _locked_to_other(state, rep, as_of) else ""))
    _not_before_last_change(ws, person_id, as_of, "status change")
    run_id = run_id if run_id is not None else ws.run_id or 0
    result = {"person_id": person_id, "owner": state["owner"], "old_status": state["status"],
              "status": status, "as_of": as_of.isoformat(), "run_id": run_id,
              "intent": status in INTENT_STATUSES}
    if state["status"] == status:
        return {**result, "changed": False}
    new = {**state, "status": status, "status_since": as_of}
    _log(ws, as_of, run_id, person_id, state, new, "status", "status_change")
    _write_state(ws, new)
    if status in INTENT_STATUSES or state["status"] in INTENT_STATUSES:
        _mark_intent(ws, person_id, as_of)  # intent now, or had it until today
    return {**result, "changed": True}


# --------------------------------------------------------------------------- sale


def record_sale(ws: Workspace, rules: RoutingRules, query: str, rep: str, as_of: dt.date,
                lock_days: int | None = None, amount: float | None = None,
                run_id: int | None = None) -> dict:
    """Record a sale by `rep`: the person becomes the rep's, status closed, locked for
    `lock_days` (default lifecycle.lock_days) — other reps cannot claim, and routing,
    SLA and dormancy leave it alone until the lock ends."""
    _known_rep(rules, rep)
    if lock_days is not None and lock_days < 0:
        raise UsageError("--lock-days must be 0 or more")
    person_id, _ = resolve_person(ws, query)
    state = _state(ws, person_id)
    if _locked_to_other(state, rep, as_of):
        raise InputError(f"person {person_id} is locked to {state['owner']} until "
                         f"{state['locked_until']} (do-not-disturb after a sale)")
    _not_before_last_change(ws, person_id, as_of, "sale")
    run_id = run_id if run_id is not None else ws.run_id or 0
    days = rules.lifecycle.lock_days if lock_days is None else lock_days
    locked_until = as_of + dt.timedelta(days=days)
    first_sale = not ws.scalar(  # sales of ids merged into the person count too
        f"SELECT count(*) FROM sales WHERE {recorded_under_sql()}", [person_id, person_id])
    if state and state["owner"] == rep and state["locked_until"] \
            and state["locked_until"] > locked_until:
        locked_until = state["locked_until"]  # a later sale never shortens a lock
    # the person joins a pool the rep works in: its current one when the rep is there, else
    # the rep's first (a sale from a nurture or dormant pool, or another team's, moves it)
    reps_pools = [p.name for p in rules.pools if rep in [r.name for r in p.reps]]
    pool = state["pool"] if state and state["pool"] in reps_pools else \
        rules.rep_first_pools().get(rep)
    new = {
        "person_id": person_id, "pool": pool, "owner": rep, "status": "closed",
        "status_since": as_of if not state or state["status"] != "closed"
        or state["owner"] != rep else state["status_since"],
        "assigned_at": as_of if not state or state["owner"] != rep or state["pool"] != pool
        else state["assigned_at"],
        "locked_until": locked_until, "dormant": False, "reason": "sale",
    }
    ws.execute("INSERT INTO sales (sold_at, run_id, person_id, rep, amount, locked_until) "
               "VALUES (?, ?, ?, ?, ?, ?)", [as_of, run_id, person_id, rep, amount,
                                             locked_until])
    if _changed(state, new):
        _log(ws, as_of, run_id, person_id, state, new, "sale", "sale")
    _write_state(ws, new)
    _mark_intent(ws, person_id, as_of)
    return {"person_id": person_id, "rep": rep, "sold_at": as_of.isoformat(),
            "locked_until": locked_until.isoformat(), "first_sale": first_sale,
            "pool": pool, "amount": amount, "run_id": run_id,
            "previous": {k: (state or {}).get(k) for k in ("pool", "owner", "status")}}
