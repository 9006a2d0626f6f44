"""One person's routing as the screens (`portrait`, `explain`) show it: the latest rows of
its assignment log and its sale lock as of a date. Light: the portrait imports it.

Both read the rows recorded under the person's id or one a merge retired into it.
`ownership.locked_until` is the lock held now; whether it was active at an earlier
date follows from the sales on record (their `sold_at`..`locked_until`). A lock with no
sale on record (a workspace filled by other means) is taken as it stands.
"""

from __future__ import annotations

import datetime as dt

from leadctl.identity.lookup import recorded_under_sql
from leadctl.routing.tables import DORMANT_RULE

LOG_ROWS = 5  # the latest log rows a screen shows


def person_log(ws, person_id: str, limit: int = LOG_ROWS,
               until: dt.date | None = None) -> list[dict]:
    """The person's latest assignment log rows (dated by `until`, when given), newest
    first; `recorded_as` names the retired id a row was written under (NULL: its own)."""
    dated = "" if until is None else " AND (as_of IS NULL OR as_of <= ?)"  # NULL: undated
    return ws.rows(
        "SELECT logged_at, as_of, old_pool, new_pool, old_owner, new_owner, old_status, "
        "new_status, rule, reason, CASE WHEN person_id <> ? THEN person_id END AS recorded_as "
        f"FROM assignments WHERE {recorded_under_sql()}{dated} "
        f"ORDER BY logged_at DESC, run_id DESC LIMIT {int(limit)}",
        [person_id] * 3 + ([until] if until is not None else []))


def routing_state(ws, person_id: str, until: dt.date) -> dict | None:
    """The person's routing (pool, owner, status, status_since, assigned_at, locked_until,
    dormant, reason) as of `until`, with `as_of`: the date of the latest log row it
    reflects. The stored `ownership` row when nothing is logged after `until`; else rebuilt
    from the log rows dated by then (each holds the state it left) and the sales made by
    then. None: not routed by then. (One person's few log rows, read once.)"""
    current = ws.rows("SELECT pool, owner, status, status_since, assigned_at, locked_until, "
                      "dormant, reason FROM ownership WHERE person_id = ?", [person_id])
    log = ws.rows("SELECT as_of, old_pool, new_pool, old_owner, new_owner, old_status, "
                  f"new_status, rule, reason FROM assignments WHERE {recorded_under_sql()} "
                  "ORDER BY as_of NULLS FIRST, logged_at, run_id", [person_id, person_id])
    dated = [r for r in log if r["as_of"] is None or r["as_of"] <= until]  # NULL: undated
    if len(dated) == len(log):  # nothing changed after `until`
        return {**current[0], "as_of": log[-1]["as_of"] if log else None} if current else None
    if not dated:
        return None
    last = dated[-1]
    moves = [r for r in dated if (r["new_pool"], r["new_owner"]) != (r["old_pool"],
                                                                     r["old_owner"])]
    status_changes = [r for r in dated if r["new_status"] != r["old_status"]]
    sales, lock = ws.execute(
        "SELECT count(*), max(locked_until) FILTER (WHERE sold_at <= ?) "
        f"FROM sales WHERE {recorded_under_sql()}", [until, person_id, person_id]).fetchone()
    return {"pool": last["new_pool"], "owner": last["new_owner"],
            "status": last["new_status"],
            "status_since": (status_changes or dated)[-1]["as_of"],
            "assigned_at": moves[-1]["as_of"] if moves else None,
            "locked_until": lock if sales else (current[0]["locked_until"] if current
                                                else None),
            "dormant": bool(moves) and moves[-1]["rule"] == DORMANT_RULE,
            "reason": last["reason"], "as_of": last["as_of"]}


def sale_locks_sql() -> str:
    """(sales, active): the person's sales on record, and those made by a date whose lock
    runs to another. Parameters: those two dates, then the person id twice."""
    return ("SELECT count(*) AS sales, "
            "count(*) FILTER (WHERE sold_at <= ? AND locked_until >= ?) AS active "
            f"FROM sales WHERE {recorded_under_sql()}")


def locked_at(ws, person_id: str, locked_until: dt.date | None, as_of: dt.date,
              started_by: dt.date | None = None) -> bool:
    """Whether the person's sale lock was active at `as_of`: it still runs then, and a sale
    on record (made by `started_by`, default `as_of`) had started it and runs that long."""
    if not locked_until or locked_until < as_of:
        return False
    sales, active = ws.execute(sale_locks_sql(), [started_by or as_of, as_of, person_id,
                                                  person_id]).fetchone()
    return active > 0 or sales == 0
