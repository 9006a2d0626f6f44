"""Allocations: how a pool's waiting leads get an owner. One entry per allocation in
`ALLOCATIONS` (the `allocation:` values routing.yaml accepts, in the order listed in
messages).

Dealing allocations (round_robin, weighted, least_loaded) share one slot matching:
every rep of a pool offers numbered *slots* j = 1, 2, ... (as many as its remaining
capacity allows); slot j of a rep has the key (base + j - 0.5) / weight, where base is
the rep's load the allocation counts (its `base_sql`) and weight is 1 except for
weighted pools, where it is the rep's `share`: its weight as a whole number (weights in
millionths over their gcd, at most 10**12), so a key is one correctly rounded division
of exact numbers and equal ratios give equal keys (0.3:0.9 deals as 1:3, ties included).
Slots are numbered by (key, rep position in routing.yaml); persons by
(score desc, person_id); person n gets slot n. That is exactly "deal one at a time to
the rep with the lowest key": an even rotation for round_robin, a Sainte-Laguë share
for weights, water-filling for least_loaded — and a rep never gets more slots than its
capacity has room for.

To add an allocation: one `Allocation(...)` entry in `ALLOCATIONS` below (its name,
what it does, whether it deals, whether reps' weights count, and the load its slot
keys start from).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from leadctl.routing.tables import CFG_POOLS, CFG_REPS, DEALT, DECIDED, NOT_IDENTITY_CHANGE
from leadctl.sqltext import date_literal, literal

# Loads a dealing allocation can start its slot keys from (over `deal_sql`'s joins).
POOL_PERIOD_LOAD = "coalesce(ppr.n, 0)"  # leads the rep got from this pool this period
OPEN_LOAD = "coalesce(ol.n, 0)"  # open (not closed) leads the rep holds, any pool


@dataclass(frozen=True)
class Allocation:
    """How the leads waiting in a pool get an owner."""

    name: str
    description: str
    deals: bool = True  # the route stage deals them (else reps claim them)
    # Reps may have a `weight:` other than 1 (parse refuses one elsewhere, so the slot
    # keys of other pools divide by 1).
    weighted: bool = False
    # SQL of the rep's load its slot keys start after (dealing allocations only).
    base_sql: str | None = None


ALLOCATIONS: dict[str, Allocation] = {a.name: a for a in (
    Allocation("round_robin", "an even rotation, continued across runs within the "
               "capacity period", base_sql=POOL_PERIOD_LOAD),
    Allocation("weighted", "shares in proportion to the reps' weights (Sainte-Laguë)",
               weighted=True, base_sql=POOL_PERIOD_LOAD),
    Allocation("least_loaded", "the rep holding the fewest open leads gets the next one "
               "(water-filling)", base_sql=OPEN_LOAD),
    Allocation("claim", "nobody deals: leads wait unowned until a rep claims them "
               "(`leadctl claim`)", deals=False),
)}
DEFAULT_ALLOCATION = "claim"


def dealt_table_sql() -> str:
    return (f"CREATE OR REPLACE TEMP TABLE {DEALT} (person_id VARCHAR, pool VARCHAR, "
            f"owner VARCHAR)")


def period_counts_sql(period_from: dt.date, period_to: dt.date, *, by_pool: bool) -> str:
    """Leads that became each rep's (per pool, or in all pools) in the capacity period
    (all of it, also the days after the as-of): the assignment log plus what earlier
    waves of this run dealt."""
    pool_col = "new_pool AS pool, " if by_pool else ""
    pool_group = ", new_pool" if by_pool else ""
    dealt_col = "pool, " if by_pool else ""
    dealt_group = ", pool" if by_pool else ""
    keys = "rep, pool" if by_pool else "rep"
    return (f"SELECT {keys}, sum(n) AS n FROM (\n"
            f"    SELECT new_owner AS rep, {pool_col}count(*) AS n FROM assignments\n"
            f"    WHERE as_of >= {date_literal(period_from)} "
            f"AND as_of <= {date_literal(period_to)}"
            f"\n      AND new_owner IS NOT NULL AND new_owner IS DISTINCT FROM old_owner\n"
            f"      AND {NOT_IDENTITY_CHANGE}\n"
            f"    GROUP BY new_owner{pool_group}\n"
            f"    UNION ALL\n"
            f"    SELECT owner AS rep, {dealt_col}count(*) AS n FROM {DEALT} "
            f"GROUP BY owner{dealt_group}\n"
            f"  ) AS counted GROUP BY {keys}")


def open_load_sql() -> str:
    """Open (not closed) leads each rep holds after this run's releases + earlier waves."""
    return (f"SELECT rep, count(*) AS n FROM (\n"
            f"    SELECT owner AS rep FROM {DECIDED}\n"
            f"    WHERE owner IS NOT NULL AND coalesce(status, '') <> 'closed'\n"
            f"    UNION ALL SELECT owner AS rep FROM {DEALT}\n"
            f"  ) AS held GROUP BY rep")


def slot_base_sql() -> str:
    """A rep's starting load in its pool, by the pool's allocation (`p`)."""
    whens = " ".join(f"WHEN {literal(a.name)} THEN {a.base_sql}"
                     for a in ALLOCATIONS.values() if a.deals)
    return f"CAST(CASE p.allocation {whens} END AS DOUBLE)"


def deal_sql(pools: list[str], as_of: dt.date, period_from: dt.date,
             period_to: dt.date) -> str:
    """Deal the persons waiting in `pools` (one wave) to reps: the slot matching described
    in the module docstring, set-based. Appends (person_id, pool, owner) to DEALT;
    persons beyond the pool's slots stay unassigned (no capacity)."""
    wave = ", ".join(literal(p) for p in pools)
    return f"""INSERT INTO {DEALT} (person_id, pool, owner)
WITH todo AS (
  SELECT person_id, pool,
         row_number() OVER (PARTITION BY pool
                            ORDER BY score DESC NULLS LAST, person_id) AS person_no
  FROM {DECIDED} WHERE needs_deal AND pool IN ({wave})
), demand AS (
  SELECT pool, CAST(count(*) AS BIGINT) AS n FROM todo GROUP BY pool
), period_rep AS (
  {period_counts_sql(period_from, period_to, by_pool=False)}
), period_pool_rep AS (
  {period_counts_sql(period_from, period_to, by_pool=True)}
), open_rep AS (
  {open_load_sql()}
), reps AS (
  SELECT r.pool, r.rep, r.rep_pos, r.weight, d.n AS demand,
         CASE WHEN r.capacity IS NULL THEN NULL
              ELSE greatest(r.capacity - coalesce(pr.n, 0), 0) END AS room,
         {slot_base_sql()} AS base
  FROM {CFG_REPS} r
  JOIN {CFG_POOLS} p ON p.pool = r.pool
  JOIN demand d ON d.pool = r.pool
  LEFT JOIN period_rep pr ON pr.rep = r.rep
  LEFT JOIN period_pool_rep ppr ON ppr.pool = r.pool AND ppr.rep = r.rep
  LEFT JOIN open_rep ol ON ol.rep = r.rep
), unlimited AS (
  SELECT *, sum(CASE WHEN room IS NULL THEN weight END) OVER (PARTITION BY pool) AS free_weight
  FROM reps
), bounded AS (
  -- Reps without a capacity limit alone offer `demand` slots with keys up to top_key, so
  -- no slot above top_key is ever used: generate only those (about demand + reps rows).
  SELECT *, max(CASE WHEN room IS NULL
                     THEN CAST(base + ceil(demand * weight / free_weight) - 0.5 AS DOUBLE)
                          / weight END)
            OVER (PARTITION BY pool) AS top_key
  FROM unlimited
), counted AS (
  SELECT pool, rep, rep_pos, weight, base,
         CAST(least(demand, coalesce(room, demand),
                    coalesce(floor(top_key * weight - base + 0.5) + 1, demand)) AS BIGINT)
           AS slots
  FROM bounded
), slots AS (
  SELECT pool, rep, rep_pos, CAST(base + j - 0.5 AS DOUBLE) / weight AS slot_key
  FROM (SELECT *, unnest(generate_series(1, slots)) AS j FROM counted WHERE slots > 0) AS s
), numbered AS (
  SELECT pool, rep,
         row_number() OVER (PARTITION BY pool ORDER BY slot_key, rep_pos) AS slot_no
  FROM slots
)
SELECT t.person_id, t.pool, n.rep
FROM todo t JOIN numbered n ON n.pool = t.pool AND n.slot_no = t.person_no"""


def merge_dealt_sql() -> str:
    """Dealt persons get their owner, status pending, reason dealt."""
    # UPDATE ... FROM: DuckDB >= 1.2 and Postgres; Spark would use MERGE INTO instead.
    return (f"UPDATE {DECIDED} SET owner = a.owner, status = 'pending', reason = 'dealt'\n"
            f"FROM {DEALT} a WHERE {DECIDED}.person_id = a.person_id")
