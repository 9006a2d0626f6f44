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

LOG_ROWS = 5  # the latest log rows a screen shows


def person_log(ws, person_id: str, limit: int = LOG_ROWS) -> list[dict]:
    """The person's latest assignment log rows, newest first; `recorded_as` names the
    retired id a row was written under (NULL: the person's own)."""
    return ws.rows(
        "SELECT logged_at, as_of, old_pool, new_pool, old_owner, new_owner, old_status, "
        "new_status, rule, reason, CASE WHEN person_id <> ? THEN person_id END AS recorded_as "
        f"FROM assignments WHERE {recorded_under_sql()} "
        f"ORDER BY logged_at DESC, run_id DESC LIMIT {int(limit)}", [person_id] * 3)


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
