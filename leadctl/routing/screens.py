"""One person's routing as the screens (`portrait`, `explain`) show it: the latest rows of
its assignment log and its sale lock as of a date. Light: the portrait imports it.

Both read the rows recorded under the person's id or one a merge retired into it.
`ownership.locked_until` is the lock held now; whether it was active at an earlier
date follows from the sales on record (their `sold_at`..`locked_until`). The lock of a
person with no sale on record at all (a workspace filled by other means, such as a Spark
run loaded into a new one) is taken as it stands.
"""

from __future__ import annotations

import datetime as dt

from leadctl.identity.lookup import recorded_under_sql
from leadctl.routing.tables import DORMANT_RULE, OWNERSHIP_COLUMNS
from leadctl.sqltext import date_literal, literal

LOG_ROWS = 5  # the latest log rows a screen shows
# The order the screens list a person's log rows in, latest first: by date (an undated
# row, written before the log had one, last), then as written; of one write (a night's
# rows under the person's id and an id a merge retired) its own id's first. The `?` is
# the person's id.
LOG_ORDER = ("as_of DESC NULLS LAST, logged_at DESC, run_id DESC, person_id = ? DESC, "
             "person_id")


def _person_rows(person_id: str, until: dt.date | None) -> tuple[str, list]:
    """The condition and parameters of the person's log rows (any id they were recorded
    under) dated by `until`, when given (an undated row always)."""
    dated = "" if until is None else " AND (as_of IS NULL OR as_of <= ?)"
    return (f"{recorded_under_sql()}{dated}",
            [person_id] * 2 + ([until] if until is not None else []))


def person_log(ws, person_id: str, limit: int = LOG_ROWS,
               until: dt.date | None = None) -> list[dict]:
    """The person's latest assignment log rows (dated by `until`, when given), latest
    first by their date (`LOG_ORDER`: rows written under an id a merge retired sort
    among its own by date, not by when they were written); `recorded_as` names the
    retired id a row was written under (NULL: its own)."""
    rows, params = _person_rows(person_id, until)
    return ws.rows(
        "SELECT logged_at, as_of, old_pool, new_pool, old_owner, new_owner, old_status, "
        "new_status, rule, reason, CASE WHEN person_id <> ? THEN person_id END AS recorded_as "
        f"FROM assignments WHERE {rows} ORDER BY {LOG_ORDER} LIMIT {int(limit)}",
        [person_id, *params, person_id])


def placing_route(ws, person_id: str, routes: list[str], pool: str | None,
                  until: dt.date | None = None) -> str | None:
    """The route (of `routes`) that last put the person in `pool`: the latest log row of
    the person (under any id it was recorded under; by date, `LOG_ORDER`, as the log is
    listed; dated by `until`, when given) that moved it into the pool, when a route wrote
    it. A status change, claim or sale within the pool moves nothing; a merge row is
    passed over (the state it kept came in by the retired id's own rows). None: the latest
    move into the pool was no route's (an SLA return, a sale bringing it back), or none."""
    if not routes or pool is None:
        return None
    rows, params = _person_rows(person_id, until)
    rule = ws.scalar(
        f"SELECT rule FROM assignments WHERE {rows} AND new_pool = ? "
        "AND old_pool IS DISTINCT FROM new_pool AND rule NOT IN ('merge', 'split') "
        f"ORDER BY {LOG_ORDER} LIMIT 1", [*params, pool, person_id])
    return rule if rule in routes else None


def latest_action_sql(until: dt.date | None = None) -> str:
    """The date of the latest assignment log row or sale on record (dated by `until`, when
    given): what the routing a screen shows holds (a sale of a closed lead logs nothing,
    yet its lock shows)."""
    logged = "" if until is None else f" WHERE as_of <= {date_literal(until)}"
    sold = "" if until is None else f" WHERE sold_at <= {date_literal(until)}"
    return ("SELECT max(day) FROM (SELECT max(as_of) AS day FROM assignments"
            f"{logged} UNION ALL SELECT max(sold_at) FROM sales{sold})")


def latest_sale(ws, person_id: str, rep: str, until: dt.date) -> dt.date | None:
    """The day of `rep`'s latest sale of the person on record (under any id it was
    recorded under) made by `until`: the sale whose lock a screen showing her as the
    owner shows (`ownership_as_of_sql`)."""
    return ws.scalar(f"SELECT max(sold_at) FROM sales WHERE {recorded_under_sql()} "
                     "AND rep = ? AND sold_at <= ?", [person_id, person_id, rep, until])


def has_state_reason(ws) -> bool:
    """Whether the workspace's log has `state_reason` (one made before it and only read
    since has not been upgraded)."""
    return ws.has_column("assignments", "state_reason")


def routing_state(ws, person_id: str, until: dt.date, log: list[dict],
                  rebuild: bool = True) -> dict | None:
    """The person's routing (the `ownership` columns) as of `until` (`ownership_as_of_sql`),
    with `as_of`: the date of the latest of its log rows the screen lists (`log`, from
    `person_log`, dated by then: those written under an id a merge retired too), or of the
    latest sale by then of the owner shown when later (a sale of a closed lead logs
    nothing, yet its lock shows; another rep's sale, say under a retired id whose lock
    the merge did not keep, shows nothing). None: not routed by then. `rebuild=False` (a
    screen at its default as-of, whose `until` is today or later: nothing is logged after
    it) reads the stored row alone, one look-up."""
    if rebuild:
        built = ownership_as_of_sql(until, person_id, state_reason=has_state_reason(ws))
        sql = f"SELECT * EXCLUDE (person_id) FROM ({built})"
    else:
        sql = (f"SELECT {', '.join(c for c in OWNERSHIP_COLUMNS if c != 'person_id')} "
               f"FROM ownership WHERE person_id = {literal(person_id)}")
    rows = ws.rows(sql)
    if not rows:
        return None
    state = rows[0]
    days = [max((r["as_of"] for r in log if r["as_of"]), default=None),
            latest_sale(ws, person_id, state["owner"], until) if state["owner"] else None]
    return {**state, "as_of": max((d for d in days if d is not None), default=None)}


def ownership_as_of_sql(until: dt.date, person_id: str | None = None, *,
                        state_reason: bool = True) -> str:
    """Every person's routing as of `until` (the `ownership` columns; only `person_id`'s
    when given): the stored row of a person with nothing logged after `until`; the others
    rebuilt from their log rows dated by then (each holds the state it left; rows recorded
    under an id a merge retired count for the person it went into, after its own). The
    lock, for both:
    none before the person's first sale on record by the rep shown (a sale of a closed
    lead logs nothing), then the latest she made by then, at most the stored one; none
    when no rep or another rep than the seller is shown (a later sale's lock is not there
    before it); the stored one for a person with no sale on record at all (by anyone, at
    any date). A status never set has no since-date. A person with no log row by then was
    not routed by then: no row. The reason of a rebuilt state is the one it had (the row's
    `state_reason`); a row written before that column (or `state_reason=False`: a log
    without it) gives its log reason."""
    day = date_literal(until)
    reason = "coalesce(a.state_reason, a.reason)" if state_reason else "a.reason"
    # The lock of a person with sales on record: the shown rep's, none before her first
    # (none at all when she made none: no owner, or not the seller), and at most the
    # stored one (a merge keeps the survivor's, not the latest of the two persons'). Only
    # a person with no sale on record at all keeps the stored lock as it stands.
    lock = ("CASE WHEN s.person_id IS NULL THEN o.locked_until "
            "WHEN x.locked_until IS NULL THEN NULL "
            "ELSE least(o.locked_until, x.locked_until) END AS locked_until")
    stored = ", ".join(lock if c == "locked_until" else f"o.{c}" for c in OWNERSHIP_COLUMNS)
    one = "" if person_id is None else f" AND o.person_id = {literal(person_id)}"

    def under(table: str) -> str:  # one person: its rows only, before the joins (a lookup)
        if person_id is None:
            return ""
        pid = literal(person_id)
        return (f"WHERE {table}.person_id = {pid} OR {table}.person_id IN "
                f"(SELECT old_person_id FROM person_aliases WHERE person_id = {pid})")
    return f"""WITH logged AS (
  SELECT coalesce(al.person_id, a.person_id) AS person_id, a.person_id AS recorded_as,
         a.as_of, a.logged_at, a.run_id,
         a.old_pool, a.new_pool, a.old_owner, a.new_owner, a.old_status, a.new_status,
         a.rule, {reason} AS reason
  FROM assignments a LEFT JOIN person_aliases al ON al.old_person_id = a.person_id
  {under("a")}
), changed AS (
  SELECT DISTINCT person_id FROM logged WHERE as_of > {day}
), dated AS (
  -- Two persons a later merge joined were routed apart before it: the surviving id's
  -- rows come first (the state the merge kept), a retired id's only when the survivor
  -- had none by then (the latest of those, ties in the ids' order).
  SELECT *, row_number() OVER (PARTITION BY person_id
                               ORDER BY recorded_as = person_id DESC, as_of DESC NULLS LAST,
                                        logged_at DESC, run_id DESC, recorded_as) AS r,
         (new_pool, new_owner) IS DISTINCT FROM (old_pool, old_owner) AS moved
  FROM logged
  WHERE person_id IN (SELECT person_id FROM changed) AND (as_of IS NULL OR as_of <= {day})
), rebuilt AS (  -- the since-dates and dormancy of the state shown: its own id's rows
  SELECT d.person_id,
         -- as the writers date it: a status change, or a rep taking the person (a merge
         -- keeps the date of the state it keeps)
         max(d.as_of) FILTER (WHERE d.new_status IS DISTINCT FROM d.old_status
                              OR (d.new_owner IS NOT NULL AND d.rule <> 'merge'
                                  AND d.new_owner IS DISTINCT FROM d.old_owner))
             AS status_since,
         max(d.as_of) FILTER (WHERE d.moved) AS assigned_at,
         coalesce(arg_max(d.rule, (d.as_of, d.logged_at, d.run_id)) FILTER (WHERE d.moved)
                  = {literal(DORMANT_RULE)}, FALSE) AS dormant
  FROM dated d JOIN dated c ON c.person_id = d.person_id AND c.r = 1
                           AND c.recorded_as = d.recorded_as
  GROUP BY d.person_id
), sold AS (  -- per rep: a lock is the seller's (a merge that kept another rep's state
  -- kept none of it)
  SELECT coalesce(al.person_id, x.person_id) AS person_id, x.rep,
         max(x.locked_until) FILTER (WHERE x.sold_at <= {day}) AS locked_until
  FROM sales x LEFT JOIN person_aliases al ON al.old_person_id = x.person_id
  {under("x")}
  GROUP BY 1, 2
), on_record AS (  -- persons with a sale on record (any rep, any date)
  SELECT DISTINCT person_id FROM sold
)
SELECT {stored}
FROM ownership o LEFT JOIN sold x ON x.person_id = o.person_id AND x.rep = o.owner
LEFT JOIN on_record s ON s.person_id = o.person_id
WHERE o.person_id NOT IN (SELECT person_id FROM changed){one}
UNION ALL
SELECT d.person_id, d.new_pool AS pool, d.new_owner AS owner, d.new_status AS status,
       CASE WHEN b.status_since IS NOT NULL OR d.new_status IS NULL THEN b.status_since
            ELSE d.as_of END AS status_since, b.assigned_at,
       {lock},
       b.dormant, d.reason
FROM dated d JOIN rebuilt b ON b.person_id = d.person_id
LEFT JOIN sold x ON x.person_id = d.person_id AND x.rep = d.new_owner
LEFT JOIN on_record s ON s.person_id = d.person_id
LEFT JOIN ownership o ON o.person_id = d.person_id
WHERE d.r = 1"""


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
