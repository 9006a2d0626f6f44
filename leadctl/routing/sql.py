"""SQL of the route stage and of the lifecycle commands: pure builders, rules +
person_features fields + as-of in, SQL text out. The stage (`routing.stage`) runs
them in order:

  1. `config_sql`      pools, reps and pool membership as small temp tables;
  2. `activity_sql`    dormant persons with new activity since they went dormant;
  3. `decide_sql`      ONE pass over person_features ⟗ ownership (⋈ scores): each person's
                       *cause* (first that applies, see model.CAUSES), new pool, rule, and
                       new owner/status/reason as if not dealt;
  4. `allocation.deal_sql` per wave of pools, then `allocation.merge_dealt_sql` gives
                       the dealt persons their owner;
  5. `new_state_sql`   a view: what changed, the log reason; `summary_sql` counts it;
  6. `apply_sql`       append the assignment log, replace the changed ownership rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping

from leadctl.routing.model import (
    INTENT_STATUSES,
    RELEASED_CAUSES,
    ROUTED_CAUSES,
    SLA_RETURNED,
    Route,
    RoutingRules,
    route_fields,
)
from leadctl.routing.tables import (
    ACTIVITY,
    CFG_MEMBERS,
    CFG_POOLS,
    CFG_REPS,
    DECIDED,
    DORMANT_RULE,
    LOG_COLUMNS,
    NEW,
    NOT_IDENTITY_CHANGE,
    OWNERSHIP_COLUMNS,
    TEMP_TABLES,
)
from leadctl.rules.located import LocatedText, compile_located
from leadctl.sqlfn import rule_guard
from leadctl.sqltext import date_literal, ident, literal, number, opt_literal, ts_literal


def _in(values) -> str:
    return ", ".join(literal(v) for v in values)


def _values_table(name: str, columns: list[tuple[str, str]], rows: list[list[str]]) -> str:
    """A small temp table from literal rows (typed even when empty)."""
    casts = ", ".join(f"CAST({c} AS {t}) AS {c}" for c, t in columns)
    if not rows:
        nulls = ", ".join(f"CAST(NULL AS {t}) AS {c}" for c, t in columns)
        return f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT {nulls} WHERE false"
    values = ",\n  ".join("(" + ", ".join(row) + ")" for row in rows)
    names = ", ".join(c for c, _ in columns)
    return (f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT {casts}\n"
            f"FROM (VALUES\n  {values}) AS v({names})")


def config_sql(rules: RoutingRules) -> list[str]:
    pools = [[literal(p.name), literal(p.allocation), str(i), opt_literal(p.team),
              "TRUE" if p.deals else "FALSE"] for i, p in enumerate(rules.pools)]
    reps = [[literal(p.name), literal(r.name), str(j), number(r.share),
             "NULL" if rules.capacity(r.name) is None else str(rules.capacity(r.name))]
            for p in rules.pools for j, r in enumerate(p.reps)]
    members = [[literal(p.name), literal(rep)] for p in rules.pools for rep in rules.members(p)]
    return [
        _values_table(CFG_POOLS, [("pool", "VARCHAR"), ("allocation", "VARCHAR"),
                                  ("pool_pos", "INTEGER"), ("team", "VARCHAR"),
                                  ("deals", "BOOLEAN")], pools),
        _values_table(CFG_REPS, [("pool", "VARCHAR"), ("rep", "VARCHAR"),
                                 ("rep_pos", "INTEGER"), ("weight", "DOUBLE"),
                                 ("capacity", "BIGINT")], reps),
        _values_table(CFG_MEMBERS, [("pool", "VARCHAR"), ("rep", "VARCHAR")], members),
    ]


def route_column_sql(as_of: dt.date) -> Callable[[str], str]:
    """SQL of a field in a route condition: person_features is `f`, scores `s`,
    ownership `o`."""
    day = date_literal(as_of)
    builtin = {
        "score": "s.score", "grade": "s.grade", "pool": "o.pool", "owner": "o.owner",
        "status": "o.status",
        "status_days": f"date_diff('day', o.status_since, {day})",
        "days_in_pool": f"date_diff('day', o.assigned_at, {day})",
    }

    def column_sql(name: str) -> str:
        return builtin.get(name) or f"f.{ident(name)}"

    return column_sql


def activity_sql(rules: RoutingRules, as_of: dt.date) -> str:
    """Dormant persons with activity since the day they went dormant (`assigned_at`) and
    before the as-of day: an event (of `reactivate_on` types) or a new lead (last_seen)."""
    life = rules.lifecycle
    types = f" AND e.event_type IN ({_in(life.reactivate_on)})" if life.reactivate_on else ""
    until = ts_literal(as_of)
    return (f"CREATE OR REPLACE TEMP TABLE {ACTIVITY} AS\n"
            f"WITH dormant AS (\n"
            f"  SELECT person_id, CAST(assigned_at AS TIMESTAMP) AS since FROM ownership\n"
            f"  WHERE dormant AND assigned_at IS NOT NULL\n"
            f"), seen AS (\n"
            f"  SELECT sp.person_id, e.ts FROM events e\n"
            f"  JOIN subject_persons sp ON sp.subject = e.subject\n"
            f"  WHERE e.ts < {until}{types}\n"
            f"    AND sp.person_id IN (SELECT person_id FROM dormant)\n"
            f"  UNION ALL\n"
            f"  SELECT person_id, last_seen AS ts FROM person_features\n"
            f"  WHERE last_seen < {until} AND person_id IN (SELECT person_id FROM dormant)\n"
            f")\n"
            f"SELECT DISTINCT d.person_id FROM dormant d JOIN seen x ON x.person_id = d.person_id"
            f"\nWHERE x.ts >= d.since")


def _case_by_route(rules: RoutingRules, value: Callable[[Route], str], column="route_no",
                   default="NULL") -> str:
    if not rules.routes:
        return default
    whens = " ".join(f"WHEN {i} THEN {value(r)}" for i, r in enumerate(rules.routes, 1))
    return f"CASE {column} {whens} ELSE {default} END"


def cause_sql(rules: RoutingRules, as_of: dt.date) -> str:
    """Each person's cause (model.CAUSES, the first that applies) from the columns of
    `decide_sql`'s `routed` step."""
    day = date_literal(as_of)
    life = rules.lifecycle
    causes = ["WHEN NOT present THEN 'person_removed'",
              f"WHEN old_owner IS NOT NULL AND old_locked_until >= {day} THEN 'locked'",
              "WHEN old_dormant AND active_again THEN 'reactivated'",
              "WHEN old_dormant THEN 'dormant'",
              "WHEN old_status = 'closed' THEN 'closed'"]
    if life.dormant_after_days is not None:
        causes.append(
            f"WHEN old_pool IS NOT NULL AND old_pool <> {literal(life.dormant_pool or '')} "
            f"AND coalesce(old_status, '') NOT IN ({_in(INTENT_STATUSES)}) AND NOT wants_back "
            f"AND date_diff('day', greatest(old_assigned_at, coalesce(intent_at, "
            f"old_assigned_at)), {day}) >= {life.dormant_after_days} THEN 'no_intent'")
    if life.status_sla_days:
        limits = " ".join(f"WHEN {literal(s)} THEN {n}"
                          for s, n in life.status_sla_days.items())
        causes.append(
            f"WHEN old_owner IS NOT NULL AND old_status IN ({_in(life.status_sla_days)}) "
            f"AND date_diff('day', old_status_since, {day}) > CASE old_status {limits} END "
            f"THEN 'sla_expired'")
    reassigning = [(i, r) for i, r in enumerate(rules.routes, 1) if r.reassign]
    if reassigning:
        allowed = " ".join(
            f"WHEN {i} THEN " + (f"old_pool IN ({_in(r.from_pools)})" if r.from_pools
                                 else "TRUE") for i, r in reassigning)
        causes.append(
            f"WHEN route_no IN ({', '.join(str(i) for i, _ in reassigning)}) "
            f"AND old_pool IS NOT NULL AND old_pool <> route_pool "
            # a lead the SLA sent back waits for a claim: taking it would undo the return
            f"AND coalesce(old_reason, '') <> {literal(SLA_RETURNED)} "
            f"AND CASE route_no {allowed} ELSE FALSE END THEN 'reassigned'")
    pool_names = _in(p.name for p in rules.pools) or "NULL"
    causes += [f"WHEN old_pool IS NOT NULL AND old_pool NOT IN ({pool_names}) "
               f"THEN 'pool_removed'",
               "WHEN old_owner IS NOT NULL AND NOT is_member THEN 'rep_removed'",
               "WHEN old_owner IS NOT NULL THEN 'sticky'",
               "WHEN old_pool IS NOT NULL THEN 'waiting'",
               "ELSE 'new'"]
    return "CASE " + " ".join(causes) + " END"


def decide_sql(rules: RoutingRules, fields: Mapping[str, str], as_of: dt.date,
               *, with_activity: bool = False) -> str:
    """ONE pass over person_features ⟗ ownership (⋈ persons, scores, intent, activity):
    each person's cause (`cause_sql`; `person_removed` for ownership rows whose person is
    gone from `persons`), new pool, rule, and its new owner/status/reason assuming it is not dealt
    (`needs_deal` persons are then dealt and given their owner by
    `allocation.merge_dealt_sql`)."""
    names = route_fields(fields)
    column_sql = route_column_sql(as_of)
    life = rules.lifecycle

    def cond(text: LocatedText | None, what: str) -> str:
        if text is None:
            return "TRUE"
        # a decimal computation past the largest number stops the stage: infinity would
        # pass every threshold
        return compile_located(text, names, "boolean", as_of, what, column_sql,
                               finite_guard=rule_guard(what)).sql

    whens = " ".join(f"WHEN {cond(r.when, f'route {r.name!r} when')} THEN {i}"
                     for i, r in enumerate(rules.routes, 1))
    route_no = f"CASE {whens} END" if whens else "CAST(NULL AS INTEGER)"
    # reactivate_when brings a dormant person back; a person it holds for does not go
    # dormant (else it would be sent there and back by every route, changing nothing)
    wants_back = "FALSE" if life.reactivate_when is None else \
        f"coalesce({cond(life.reactivate_when, 'reactivate_when')}, FALSE)"
    active = "a.person_id IS NOT NULL" if with_activity else "FALSE"
    joins = "LEFT JOIN scores s ON s.person_id = f.person_id\n"
    if life.dormant_after_days is not None:
        joins += "  LEFT JOIN lead_intent i ON i.person_id = o.person_id\n"
    if with_activity:
        joins += f"  LEFT JOIN {ACTIVITY} a ON a.person_id = o.person_id\n"
    joins += f"  LEFT JOIN {CFG_MEMBERS} m ON m.pool = o.pool AND m.rep = o.owner\n"
    intent_at = "i.intent_at" if life.dormant_after_days is not None else "CAST(NULL AS DATE)"

    cause = cause_sql(rules, as_of)

    routed = _in(ROUTED_CAUSES)
    default_pool = opt_literal(rules.default_pool)
    default_rule = "'default_pool'" if rules.default_pool else "CAST(NULL AS VARCHAR)"
    return f"""CREATE OR REPLACE TEMP TABLE {DECIDED} AS
WITH base AS (
  SELECT coalesce(f.person_id, o.person_id) AS person_id,
         cur.person_id IS NOT NULL AS present, o.person_id IS NOT NULL AS known, s.score,
         o.pool AS old_pool, o.owner AS old_owner, o.status AS old_status,
         o.status_since AS old_status_since, o.assigned_at AS old_assigned_at,
         o.locked_until AS old_locked_until, coalesce(o.dormant, FALSE) AS old_dormant,
         o.reason AS old_reason, {intent_at} AS intent_at,
         m.rep IS NOT NULL AS is_member,
         {route_no} AS route_no,
         {wants_back} AS wants_back, {active} OR {wants_back} AS active_again
  FROM person_features f
  FULL OUTER JOIN ownership o ON o.person_id = f.person_id
  -- Who is a person is `persons`' say: after a resolve and before the next tag run,
  -- person_features still has the ids a merge retired (not dealt again) and lacks the
  -- part a split made, whose state the resolve gave it (a lock it keeps).
  LEFT JOIN persons cur ON cur.person_id = coalesce(f.person_id, o.person_id)
  {joins}
  WHERE cur.person_id IS NOT NULL OR o.person_id IS NOT NULL), routed AS (
  SELECT *, {_case_by_route(rules, lambda r: literal(r.pool))} AS route_pool,
         {_case_by_route(rules, lambda r: literal(r.name))} AS route_name
  FROM base
), caused AS (
  SELECT *, {cause} AS cause FROM routed
), targeted AS (
  SELECT *,
         CASE WHEN cause IN ({routed}) THEN coalesce(route_pool, {default_pool})
              WHEN cause = 'no_intent' THEN {opt_literal(life.dormant_pool)}
              WHEN cause = 'sla_expired' THEN {opt_literal(life.sla_return_pool)}
              WHEN cause = 'person_removed' THEN NULL
              ELSE old_pool END AS new_pool,
         CASE WHEN cause IN ({routed}) THEN coalesce(route_name, CASE WHEN route_pool IS NULL
                   AND {default_pool} IS NOT NULL THEN {default_rule} END)
              WHEN cause = 'no_intent' THEN {literal(DORMANT_RULE)}
              WHEN cause = 'sla_expired' THEN 'lifecycle.status_sla_days.' || old_status
              END AS new_rule,
         cause IN ({_in(RELEASED_CAUSES)}) OR cause = 'person_removed' AS released
  FROM caused
), kept AS (
  -- A rep of the pool the person moves to keeps her lead (a pool renamed, a route that
  -- moves it where she also works): dealt again, it took a slot of her capacity, and a
  -- second route the same day dealt it once more
  SELECT t.*, t.released AND t.cause IN ('pool_removed', 'reassigned')
         AND k.rep IS NOT NULL AS kept_by_rep
  FROM targeted t LEFT JOIN {CFG_MEMBERS} k ON k.pool = t.new_pool AND k.rep = t.old_owner
), dealing AS (
  SELECT t.*, t.released AND NOT t.kept_by_rep AS freed,
         t.released AND NOT t.kept_by_rep AND coalesce(p.deals, FALSE) AS needs_deal,
         p.allocation
  FROM kept t LEFT JOIN {CFG_POOLS} p ON p.pool = t.new_pool
)
SELECT person_id, present, known, cause, score, needs_deal,
       old_pool, old_owner, old_status, old_status_since, old_assigned_at,
       old_locked_until, old_dormant, old_reason,
       new_pool AS pool,
       CASE WHEN freed THEN CAST(NULL AS VARCHAR) ELSE old_owner END AS owner,
       CASE WHEN freed THEN CAST(NULL AS VARCHAR) ELSE old_status END AS status,
       cause IN ('no_intent', 'dormant') AS dormant,
       CASE WHEN needs_deal THEN 'no_capacity'
            WHEN cause IN ('no_intent', 'dormant') THEN 'dormant'
            WHEN cause = 'person_removed' THEN NULL
            WHEN new_pool IS NULL THEN 'no_route'
            WHEN cause = 'sla_expired' OR (cause = 'waiting'
                 AND old_reason = {literal(SLA_RETURNED)}) THEN {literal(SLA_RETURNED)}
            WHEN freed THEN 'claim_pool'
            ELSE old_reason END AS reason,
       -- what moved it: a rep removed from a claim pool frees the lead to its pool's
       -- allocation (`allocation.claim`), as a dealing pool's deals it again
       coalesce(new_rule, CASE WHEN needs_deal OR cause = 'rep_removed'
                               THEN 'allocation.' || allocation END) AS rule
FROM dealing"""


def new_state_sql(as_of: dt.date) -> str:
    """A view of the decided state with what changed and the log reason."""
    day = date_literal(as_of)
    return f"""CREATE OR REPLACE TEMP VIEW {NEW} AS
SELECT *,
       -- a rep taking the person starts its status age, also when the status it deals
       -- is the one the last rep left (pending): she has not held it for those days
       CASE WHEN status IS DISTINCT FROM old_status
                 OR (owner IS NOT NULL AND owner IS DISTINCT FROM old_owner) THEN {day}
            ELSE old_status_since END AS status_since,
       CASE WHEN pool IS DISTINCT FROM old_pool OR owner IS DISTINCT FROM old_owner
            THEN {day} ELSE old_assigned_at END AS assigned_at,
       old_locked_until AS locked_until,
       CASE WHEN cause IN ('new', 'waiting') THEN reason ELSE cause END AS log_reason,
       (pool IS DISTINCT FROM old_pool OR owner IS DISTINCT FROM old_owner
        OR status IS DISTINCT FROM old_status) AS logged,
       (NOT present OR NOT known OR pool IS DISTINCT FROM old_pool
        OR owner IS DISTINCT FROM old_owner OR status IS DISTINCT FROM old_status
        OR dormant IS DISTINCT FROM old_dormant OR reason IS DISTINCT FROM old_reason)
         AS changed
FROM {DECIDED}"""


def summary_sql() -> str:
    """Everything the run summary counts, from one grouped pass (a few rows per pool)."""
    return (f"SELECT cause, present, old_pool, pool, owner, reason, log_reason, logged,\n"
            f"       changed, coalesce(status, '') = 'closed' AS closed, count(*) AS persons\n"
            f"FROM {NEW}\n"
            f"GROUP BY cause, present, old_pool, pool, owner, reason, log_reason, logged,\n"
            f"         changed, coalesce(status, '') = 'closed'")


def apply_sql(as_of: dt.date, run_id: int, logged_at: dt.datetime, *,
              logged: bool = True, changed: bool = True) -> list[str]:
    """Append the log (each row with the reason of the state it leads to), then replace the
    changed ownership rows (and drop gone ones). `logged` / `changed`: whether any row
    needs it (a quiet night skips the scans)."""
    day, at, cols = date_literal(as_of), ts_literal(logged_at), ", ".join(OWNERSHIP_COLUMNS)
    log = [f"INSERT INTO assignments ({', '.join(LOG_COLUMNS)})\n"
           f"SELECT {at}, {int(run_id)}, {day}, person_id, old_pool, pool, old_owner, owner,\n"
           f"       old_status, status, rule, log_reason, reason\n"
           f"FROM {NEW} WHERE logged"]
    state = [f"DELETE FROM ownership WHERE person_id IN (SELECT person_id FROM {NEW} "
             f"WHERE changed AND known)",
             f"INSERT INTO ownership ({cols})\n"
             f"SELECT {cols} FROM {NEW} WHERE changed AND present"]
    return (log if logged else []) + (state if changed else [])


def drop_temp_sql() -> list[str]:
    return [f"DROP VIEW IF EXISTS {NEW}"] + [f"DROP TABLE IF EXISTS {t}" for t in TEMP_TABLES]


# --------------------------------------------------------------------------- lifecycle SQL


def _waiting_sql(pool: str, as_of: dt.date) -> str:
    """Unowned persons in `pool` that were in it by `as_of` and have no change logged
    after it (a claim is not dated before its lead entered the pool, nor before a merge
    made the person: the log stays in date order, as for `status` and `sale`)."""
    day = date_literal(as_of)
    return (f"o.pool = {literal(pool)} AND o.owner IS NULL\n"
            f"  AND (o.assigned_at IS NULL OR o.assigned_at <= {day})\n"
            f"  AND o.person_id NOT IN (SELECT person_id FROM assignments WHERE as_of > {day})")


def _unlocked_sql(as_of: dt.date) -> str:
    return f"(o.locked_until IS NULL OR o.locked_until < {date_literal(as_of)})"


def claim_pick_sql(pool: str, as_of: dt.date, limit: int) -> str:
    """The `limit` best unlocked persons waiting in `pool` by `as_of` (score desc, id)."""
    return (f"SELECT o.person_id FROM ownership o LEFT JOIN scores s ON s.person_id = "
            f"o.person_id\nWHERE {_waiting_sql(pool, as_of)} AND {_unlocked_sql(as_of)}\n"
            f"ORDER BY s.score DESC NULLS LAST, o.person_id LIMIT {int(limit)}")


def claim_waiting_sql(pool: str, as_of: dt.date) -> str:
    """(free, total): the persons waiting in `pool` by `as_of` that a claim can take
    (unlocked), and all of them (the persons `claim_pick_sql` picks from)."""
    return (f"SELECT count(*) FILTER (WHERE {_unlocked_sql(as_of)}) AS free, count(*) AS total "
            f"FROM ownership o WHERE {_waiting_sql(pool, as_of)}")


def rep_period_load_sql(rep: str, period_from: dt.date, period_to: dt.date) -> str:
    """Leads that became the rep's in the capacity period (all of it: a claim dated
    earlier in the period still counts what the rep got later in it)."""
    return (f"SELECT count(*) FROM assignments WHERE new_owner = {literal(rep)}\n"
            f"  AND new_owner IS DISTINCT FROM old_owner AND {NOT_IDENTITY_CHANGE}\n"
            f"  AND as_of >= {date_literal(period_from)} AND as_of <= {date_literal(period_to)}")


def later_logged_sql(persons: str, as_of: dt.date) -> str:
    """(person_id, as_of, rule, persons): of the persons `persons` (a SELECT of person_id)
    whose latest assignment row is dated after `as_of`, the one with the latest such row
    (then the smallest id), that row's date and rule, and how many such persons there are.
    One pass over the log rows dated after `as_of` (none: no row)."""
    day = date_literal(as_of)
    return f"""WITH touched AS (SELECT DISTINCT person_id FROM ({persons}) AS p),
later AS (
  SELECT a.person_id, a.as_of, a.rule,
         row_number() OVER (PARTITION BY a.person_id
                            ORDER BY a.as_of DESC, a.logged_at DESC) AS n
  FROM assignments a JOIN touched t ON t.person_id = a.person_id
  WHERE a.as_of > {day})
SELECT person_id, as_of, rule, count(*) OVER () AS persons FROM later WHERE n = 1
ORDER BY as_of DESC, person_id LIMIT 1"""
