"""One person's routing as the screens (`portrait`, `explain`) show it: the latest rows of
its assignment log and its sale lock as of a date. Light: the portrait imports it.

Both read the rows recorded under the person's id or one a merge retired into it. As of
a past date, a part a later split took out of another person (the split's log row is
under its id) shows, on the days it was inside that person, that person's routing: what
every screen showed for its leads then (`stand_in_ctes`).
`ownership.locked_until` is the lock held now; whether it was active at an earlier
date follows from the sales on record (their `sold_at`..`locked_until`). The lock of a
person with no sale on record at all (a workspace filled by other means, such as a Spark
run loaded into a new one) is taken as it stands.
"""

from __future__ import annotations

import datetime as dt

from leadctl.identity.lookup import ARRIVED_AT_SQL, change_days_sql, recorded_under_sql
from leadctl.routing.tables import DORMANT_RULE, OWNERSHIP_COLUMNS
from leadctl.sqltext import date_literal, literal

LOG_ROWS = 5  # the latest log rows a screen shows
# The order the screens list a person's log rows in, latest first: by date (an undated
# row, written before the log had one, last), then as written; of one write (a night's
# rows under the person's id and an id a merge retired) its own id's first. The `?` is
# the person's id.
LOG_ORDER = ("as_of DESC NULLS LAST, logged_at DESC, run_id DESC, person_id = ? DESC, "
             "person_id")


def _recorded_for(person_id: str, until: dt.date | None) -> tuple[str, list]:
    """The condition (on `person_id`) and parameters of the ids the person's log rows and
    sales are recorded under, on a screen as of `until` (None: now): its id and those a
    merge retired into it; as of a date before a split, those of the person a part it
    was inside then (`stand_in_ctes`). A split is never dated after `dt.date.max` (the
    default as-of's): then the plain look-up."""
    if until is None or until == dt.date.max:
        return recorded_under_sql(), [person_id, person_id]
    return f"person_id IN ({recorded_ids_sql(until, person_id)})", []


def _person_rows(person_id: str, until: dt.date | None) -> tuple[str, list]:
    """The condition and parameters of the person's log rows (`_recorded_for`) dated by
    `until`, when given (an undated row always)."""
    recorded, params = _recorded_for(person_id, until)
    dated = "" if until is None else " AND (as_of IS NULL OR as_of <= ?)"
    return f"{recorded}{dated}", params + ([until] if until is not None else [])


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
    recorded under, `_recorded_for`) made by `until`: the sale whose lock a screen showing
    her as the owner shows (`ownership_as_of_sql`)."""
    recorded, params = _recorded_for(person_id, until)
    return ws.scalar(f"SELECT max(sold_at) FROM sales WHERE {recorded} "
                     "AND rep = ? AND sold_at <= ?", [*params, rep, until])


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


def stand_in_ctes(until: dt.date) -> str:
    """CTE definitions (for a `WITH`, no keyword) of who a person was as of `until` when a
    later split took its leads out of another person, so that a split never rewrites a
    past day:
    - `stand_in(id, as_id)`: a part a split after `until` took out (its `split` log row is
      under the id that left) that was inside the person it left then — the latest of its
      own log rows and the merges retiring its id by then is such a merge, or it has none
      (a new id) and its first lead had arrived by then —, and that person (as it is
      now; that person's own stand-in when it was inside a third one too, up to 3 deep).
      The screens show the part with that person's routing, as they showed its leads
      that day.
    - `counted(old_person_id, person_id)`: the person the log rows and sales recorded
      under an id count for then, where that is not the id itself: a stand-in's rows its
      `as_id`'s; an id a merge retired its person's (`person_aliases`), or that person's
      stand-in when the id was inside it by then."""
    day = date_literal(until)
    return f"""splits AS (
  SELECT a.person_id AS id, coalesce(pa.person_id, h.old_person_ids[1]) AS left_id,
         a.as_of, a.run_id
  FROM assignments a JOIN identity_history h ON h.run_id = a.run_id
       AND h.person_id = a.person_id AND h.change = 'split'
  LEFT JOIN person_aliases pa ON pa.old_person_id = h.old_person_ids[1]
  WHERE a.rule = 'split' AND a.as_of > {day}
), first_splits AS (  -- the split after the date that took the id out
  SELECT id, arg_min(left_id, (as_of, run_id, left_id)) AS left_id
  FROM splits WHERE left_id IS NOT NULL GROUP BY id
), tracked AS (
  SELECT id FROM first_splits UNION
  SELECT old_person_id FROM person_aliases WHERE person_id IN (SELECT id FROM first_splits)
), retirements AS (
  SELECT id, run_id FROM (
    SELECT unnest(old_person_ids) AS id, run_id FROM identity_history WHERE change = 'merge')
  WHERE id IN (SELECT id FROM tracked)
), events AS (  -- the id's own log rows by then, and the merges that retired it by then
  SELECT person_id AS id, coalesce(as_of, DATE '0001-01-01') AS day,
         coalesce(run_id, -1) AS run_id, FALSE AS retired
  FROM assignments
  WHERE person_id IN (SELECT id FROM tracked) AND (as_of IS NULL OR as_of <= {day})
  UNION ALL
  SELECT r.id, d.day, r.run_id, TRUE
  FROM retirements r JOIN ({change_days_sql("retirements")}) d ON d.run_id = r.run_id
  WHERE d.day <= {day}
), inside AS (  -- retired: the id was inside another person then
  SELECT id, arg_max(retired, (day, run_id, retired)) AS retired FROM events GROUP BY id
), arrived AS (  -- a new id: inside from the day its first lead arrived
  SELECT pl.person_id AS id FROM person_leads pl JOIN leads l ON l.lead_key = pl.lead_key
  LEFT JOIN ingested_files f ON f.file_id = l.file_id
  WHERE pl.person_id IN (SELECT id FROM first_splits)
    AND pl.person_id NOT IN (SELECT id FROM inside)
  GROUP BY pl.person_id HAVING CAST(min({ARRIVED_AT_SQL}) AS DATE) <= {day}
), parts AS (
  SELECT f.id, f.left_id FROM first_splits f LEFT JOIN inside i ON i.id = f.id
  WHERE i.retired OR f.id IN (SELECT id FROM arrived)
), stand_in AS (
  SELECT p.id, coalesce(p3.left_id, p2.left_id, p.left_id) AS as_id
  FROM parts p LEFT JOIN parts p2 ON p2.id = p.left_id LEFT JOIN parts p3 ON p3.id = p2.left_id
), counted AS (
  SELECT id AS old_person_id, as_id AS person_id FROM stand_in
  UNION ALL
  SELECT a.old_person_id,
         CASE WHEN coalesce(i.retired, TRUE) THEN coalesce(s.as_id, a.person_id)
              ELSE a.person_id END
  FROM person_aliases a LEFT JOIN stand_in s ON s.id = a.person_id
  LEFT JOIN inside i ON i.id = a.old_person_id
  WHERE a.old_person_id NOT IN (SELECT id FROM stand_in)
)"""


def _shown_ctes(person_id: str) -> str:
    """After `stand_in_ctes`: `target(id)`, the person whose rows one person's screen reads
    (its stand-in, else itself), and `recorded_ids(id)`, the ids they are under."""
    pid = literal(person_id)
    return f"""target AS (
  SELECT coalesce((SELECT max(as_id) FROM stand_in WHERE id = {pid}), {pid}) AS id
), recorded_ids AS (
  SELECT id FROM target UNION ALL
  SELECT c.old_person_id FROM counted c JOIN target t ON c.person_id = t.id
)"""


def recorded_ids_sql(until: dt.date, person_id: str) -> str:
    """A query of the ids the person's log rows and sales are recorded under, on a screen
    as of `until` (`stand_in_ctes`)."""
    return f"WITH {stand_in_ctes(until)}, {_shown_ctes(person_id)}\nSELECT id FROM recorded_ids"


def ownership_as_of_sql(until: dt.date, person_id: str | None = None, *,
                        state_reason: bool = True) -> str:
    """Every person's routing as of `until` (the `ownership` columns; only `person_id`'s
    when given): the stored row of a person with nothing logged after `until`; the others
    rebuilt from their log rows dated by then (each holds the state it left; rows recorded
    under an id a merge retired count for the person it went into, after its own). A part
    a later split took out of a person it was inside then shows that person's routing
    (`stand_in_ctes`: its rows and sales count for that person then). The lock, for both:
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
    state = ", ".join(f"st.{c}" for c in OWNERSHIP_COLUMNS if c != "person_id")
    one = "" if person_id is None else " AND o.person_id = (SELECT id FROM target)"

    def shown(column: str) -> str:  # one person: its row only, under its own id
        return "" if person_id is None else f" AND {column} = {literal(person_id)}"

    def under(table: str) -> str:  # one person: its rows only, before the joins (a lookup)
        if person_id is None:
            return ""
        return f"WHERE {table}.person_id IN (SELECT id FROM recorded_ids)"
    ctes = stand_in_ctes(until) + ("" if person_id is None else f", {_shown_ctes(person_id)}")
    return f"""WITH {ctes}, logged AS (
  SELECT coalesce(al.person_id, a.person_id) AS person_id, a.person_id AS recorded_as,
         a.as_of, a.logged_at, a.run_id,
         a.old_pool, a.new_pool, a.old_owner, a.new_owner, a.old_status, a.new_status,
         a.rule, {reason} AS reason
  FROM assignments a LEFT JOIN counted al ON al.old_person_id = a.person_id
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
  FROM sales x LEFT JOIN counted al ON al.old_person_id = x.person_id
  {under("x")}
  GROUP BY 1, 2
), on_record AS (  -- persons with a sale on record (any rep, any date)
  SELECT DISTINCT person_id FROM sold
), states AS (
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
WHERE d.r = 1
)
SELECT * FROM states WHERE person_id NOT IN (SELECT id FROM stand_in){shown("person_id")}
UNION ALL  -- a part inside another person then: that person's routing
SELECT s.id AS person_id, {state}
FROM stand_in s JOIN states st ON st.person_id = s.as_id
WHERE s.id NOT IN (SELECT old_person_id FROM person_aliases){shown("s.id")}"""


def sale_locks_sql(recorded: str) -> str:
    """(sales, active): the person's sales on record (`recorded`: the condition on their
    person id), and those made by a date whose lock runs to another. Parameters: those
    two dates, then the condition's."""
    return ("SELECT count(*) AS sales, "
            "count(*) FILTER (WHERE sold_at <= ? AND locked_until >= ?) AS active "
            f"FROM sales WHERE {recorded}")


def locked_at(ws, person_id: str, locked_until: dt.date | None, as_of: dt.date,
              started_by: dt.date | None = None) -> bool:
    """Whether the person's sale lock was active at `as_of`: it still runs then, and a sale
    on record (made by `started_by`, default `as_of`) had started it and runs that long."""
    if not locked_until or locked_until < as_of:
        return False
    recorded, params = _recorded_for(person_id, started_by or as_of)
    sales, active = ws.execute(sale_locks_sql(recorded),
                               [started_by or as_of, as_of, *params]).fetchone()
    return active > 0 or sales == 0
