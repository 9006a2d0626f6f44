"""Ownership through identity changes: when `resolve` merges or splits persons, their
routing state (pool, owner, status, sale lock, last intent) follows, in the same atomic
write, so that `portrait` and `route` right after `resolve` see the right owner.

Merge (person M absorbed old ids): every `ownership` row of the ids brought together is
a candidate; `on_merge: keep:` in routing.yaml (model.MERGE_CRITERIA, default: an active
sale lock — the earliest sale of several —, else an owner with the most advanced status,
else the earliest assignment; then M's own state, then the smallest id) picks the one M
keeps, with the latest lock of that same rep. Sales rows stay as recorded (the retired
ids lead to M through `person_aliases`). One `assignments` row (rule `merge`) per merged
person names the ids and why. An active lock of another rep that the merge cannot keep
is a conflict: one `ownership_conflicts` row, listed by `leadctl identity conflicts`.

Split (leads of old id O now form person P): O's id, sales and state stay together on
the part identity gives O's id — the part holding most of O's leads —, the other parts
get no state (the next route routes them as new). One `assignments` row (rule `split`)
per part that leaves a routed person. A part that leaves and joins another routed
person (identity records the split, no merge) brings the locks of sales under its retired
ids to that person as a merge would (`split_joins_sql`: decided by `on_merge`, a `merge` row).

`preferred_ids_sql` is what routing asks identity to prefer as the surviving id: routed
persons in the order the keep policy picks their states (so the kept state's id survives;
on a tie, the oldest, whose state a tie keeps). Pure builders here; `carry_ownership` runs them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from leadctl.identity.tables import ID_MOVES
from leadctl.routing.lifecycle import keep_log_order, log_stamp
from leadctl.routing.model import DEFAULT_MERGE_KEEP, STATUSES, RoutingRules
from leadctl.routing.tables import (
    CONFLICT_COLUMNS,
    LOG_COLUMNS,
    MERGE_CANDIDATES,
    MERGE_INTENT,
    MERGE_KEPT,
    MERGE_LOCKS_BEFORE,
    MERGE_TEMP_TABLES,
    OWNERSHIP_COLUMNS,
    SPLIT_JOINS,
    SPLIT_LOCKS,
)
from leadctl.sqltext import date_literal, literal, ts_literal
from leadctl.workspace import Workspace

# The sort keys of each criterion (expression over a candidate, direction); NULLs last.
_CRITERION_KEYS: dict[str, list[tuple[str, str]]] = {
    "lock": [("CASE WHEN locked THEN 0 ELSE 1 END", "ASC"),
             ("CASE WHEN locked THEN sold_at END", "ASC")],
    "sales_pool_status": [("CASE WHEN owner IS NOT NULL THEN 0 ELSE 1 END", "ASC"),
                          ("CASE WHEN owner IS NOT NULL THEN status_rank END", "DESC")],
    "earliest_assignment": [("assigned_at", "ASC")],
    "latest_assignment": [("assigned_at", "DESC")],
}
_STATE = ("pool", "owner", "status", "status_since", "assigned_at", "locked_until",
          "dormant", "reason")
# `(id, place)` after identity resolution: each id MERGE_LOCKS_BEFORE names and the
# person it is (or leads to)
_PERSON_OF_ID = f"""SELECT i.id, coalesce(a.person_id, i.id) AS place
FROM (SELECT person_id AS id FROM {MERGE_LOCKS_BEFORE}
      UNION SELECT sold_on AS id FROM {MERGE_LOCKS_BEFORE}) i
LEFT JOIN person_aliases a ON a.old_person_id = i.id"""


def locks_sql(as_of: dt.date) -> str:
    """`(person_id, sold_on, rep, sold_at)`: the sales still locking on `as_of`, each under
    the person it is a sale of — the person `person_aliases` leads its id to (a sale made
    under an id an earlier merge retired is that person's sale) —, the earliest per person,
    id sold on and rep. Taken before identity resolution moves ids (MERGE_LOCKS_BEFORE,
    `locks_before_sql`); `staying_locks_sql` keeps of it what stays with each person."""
    day = date_literal(as_of)
    return f"""SELECT coalesce(a.person_id, s.person_id) AS person_id, s.person_id AS sold_on,
       s.rep, min(s.sold_at) AS sold_at
FROM sales s LEFT JOIN person_aliases a ON a.old_person_id = s.person_id
WHERE s.locked_until >= {day}
GROUP BY coalesce(a.person_id, s.person_id), s.person_id, s.rep"""


def locks_before_sql(as_of: dt.date) -> str:
    """MERGE_LOCKS_BEFORE: `locks_sql` as the persons are before this run's identity changes
    (`resolve_with_ownership` takes it before resolve; `carry_ownership` otherwise)."""
    return f"CREATE OR REPLACE TEMP TABLE {MERGE_LOCKS_BEFORE} AS\n{locks_sql(as_of)}"


def drop_locks_before_sql() -> str:
    return f"DROP TABLE IF EXISTS {MERGE_LOCKS_BEFORE}"


def staying_locks_sql(goes_to: str) -> str:
    """`(person_id, rep, sold_at)`: per person as it was before this run's identity changes
    and rep, the earliest sale still locking (MERGE_LOCKS_BEFORE) that stays with it through
    them: made under an id that goes where the person's id goes (`goes_to`: a query of
    `(id, place)`; two ids it does not list go nowhere new: a region resolve's ids outside
    it). A sale under a retired id that leaves with a split part (with the lead it was
    derived from) is that part's, not the person's, even when the rest merges. The one
    definition of a routed person's lock both rankings use, so the id that survives and
    the state kept are one person's: `preferred_ids_sql` while identity assigns ids
    (places: its components, ID_MOVES), `candidates_sql` after (places: person ids)."""
    return f"""SELECT b.person_id, b.rep, min(b.sold_at) AS sold_at
FROM {MERGE_LOCKS_BEFORE} b
LEFT JOIN ({goes_to}) gp ON gp.id = b.person_id
LEFT JOIN ({goes_to}) gs ON gs.id = b.sold_on
WHERE gs.place IS NOT DISTINCT FROM gp.place
GROUP BY b.person_id, b.rep"""


def preferred_ids_sql(as_of: dt.date, keep: Sequence[str] = DEFAULT_MERGE_KEEP) -> str:
    """`(person_id, priority)` for identity's choice of the surviving id on a merge: every
    routed person, ranked by the `on_merge: keep:` policy over the same keys as
    `candidates_sql` (the lock's sale: the earliest of the owner's still locking on the
    person or an id it retired that goes with it, `staying_locks_sql` over identity's
    ID_MOVES; needs MERGE_LOCKS_BEFORE), so the id that survives is the one whose state
    the merge keeps (the rep who keeps the customer keeps the id too). Persons the policy
    cannot tell apart share a rank: identity then keeps the oldest, and the merge its
    state."""
    day = date_literal(as_of)
    derived, key_cols, order = _ranking(keep, day)
    goes_to = f"SELECT old_id AS id, comp AS place FROM {ID_MOVES}"
    return f"""
        WITH locking AS ({staying_locks_sql(goes_to)}),
        states AS (
            SELECT o.person_id, o.owner, o.assigned_at, {derived}, l.sold_at
            FROM ownership o LEFT JOIN locking l ON l.person_id = o.person_id
                 AND l.rep = o.owner)
        SELECT person_id, dense_rank() OVER (ORDER BY {order or "1"}) AS priority
        FROM (SELECT *{key_cols} FROM states)"""


def changes_sql(run_id: int) -> str:
    """How many merges and splits identity recorded in this run."""
    return f"SELECT count(*) FROM identity_history WHERE run_id = {int(run_id)}"


def moved_states_sql() -> str:
    """How many ownership rows belong to retired person ids (merged away)."""
    return ("SELECT count(*) FROM ownership "
            "WHERE person_id IN (SELECT old_person_id FROM person_aliases)")


def moved_intents_sql() -> str:
    return ("SELECT count(*) FROM lead_intent "
            "WHERE person_id IN (SELECT old_person_id FROM person_aliases)")


def _status_rank(column: str) -> str:
    """pending 1 < contacting < unclear_intent < clear_intent < appointment < closed 6."""
    whens = " ".join(f"WHEN '{s}' THEN {i}" for i, s in enumerate(STATUSES, 1))
    return f"CASE {column} {whens} ELSE 0 END"


def _keys(keep: Sequence[str]) -> list[tuple[str, str, str]]:
    """(column name, expression, direction) of each sort key, in policy order."""
    out = []
    for criterion in keep:
        for n, (expr, direction) in enumerate(_CRITERION_KEYS[criterion]):
            out.append((f"k_{criterion}_{n}", expr, direction))
    return out


def _ranking(keep: Sequence[str], day: str) -> tuple[str, str, str]:
    """What both rankings of routing states share, so that they agree (`candidates_sql`:
    the state a merge keeps; `preferred_ids_sql`: the id that survives): the columns
    derived from an `ownership` row `o` (`locked`, `status_rank`), the policy's key
    columns over them (`, expr AS k_…`) and their ORDER BY."""
    derived = (f"o.owner IS NOT NULL AND coalesce(o.locked_until >= {day}, FALSE) AS locked, "
               f"{_status_rank('o.status')} AS status_rank")
    keys = _keys(keep)
    key_cols = "".join(f", {expr} AS {name}" for name, expr, _ in keys)
    order = ", ".join(f"{name} {direction} NULLS LAST" for name, _, direction in keys)
    return derived, key_cols, order


def candidates_sql(keep: Sequence[str], as_of: dt.date) -> str:
    """MERGE_CANDIDATES: one row per ownership row of a person merged away and of the
    person it went to (`target`), with its sort keys and `pick` (1 = the state kept).
    `sold_at`: the first sale still locking by the row's owner on the row's person as it
    was before this run's identity changes — its id or an id an earlier merge retired into
    it, that goes with it (`staying_locks_sql`, as `preferred_ids_sql` ranks it) —; for a
    row under a retired id (a rep action folded in, a split part's lock), the first on its
    own id; else on any id of the merged person.
    `recorded`: the row's lock (its id, rep and first sale) is the other lock of an open
    conflict on `target` already — a state folded before that came back with a rep action
    made meanwhile (rep_actions): not recorded, nor logged, a second time (a repeat sale
    meanwhile made it longer: rep_actions.extended_conflicts_sql moves the conflict's
    end)."""
    day = date_literal(as_of)
    derived, key_cols, order = _ranking(keep, day)
    state = ", ".join(f"o.{c}" for c in _STATE)
    return f"""CREATE OR REPLACE TEMP TABLE {MERGE_CANDIDATES} AS
WITH moved AS (
  SELECT o.person_id, a.person_id AS target
  FROM ownership o JOIN person_aliases a ON a.old_person_id = o.person_id
), members AS (
  SELECT person_id, target FROM moved
  UNION
  SELECT target AS person_id, target FROM moved
), locking AS (  -- the locks as the ids are now: each on the id sold on and its person
  SELECT sold_on AS person_id, person_id AS target, rep, sold_at
  FROM ({locks_sql(as_of)}) AS locks
), sold_by_person AS ({staying_locks_sql(_PERSON_OF_ID)}
), sold_by_id AS (
  SELECT person_id, rep, min(sold_at) AS sold_at FROM locking GROUP BY person_id, rep
), sold_by_target AS (
  SELECT target, rep, min(sold_at) AS sold_at FROM locking GROUP BY target, rep
), sold AS (
  SELECT m.target, o.person_id, {state}, {derived},
         coalesce(b.sold_at, d.sold_at, x.sold_at) AS sold_at
  FROM members m JOIN ownership o ON o.person_id = m.person_id
  LEFT JOIN sold_by_person b ON b.person_id = o.person_id AND b.rep = o.owner
  LEFT JOIN sold_by_id d ON d.person_id = o.person_id AND d.rep = o.owner
  LEFT JOIN sold_by_target x ON x.target = m.target AND x.rep = o.owner
), recorded AS (
  SELECT DISTINCT current_id, other_person_id, other_rep, other_sold_at, other_locked_until
  FROM ({_open_conflicts_sql(True)}) AS open_conflicts
), states AS (
  SELECT s.*, r.current_id IS NOT NULL AS recorded
  FROM sold s LEFT JOIN recorded r ON r.current_id = s.target
       AND r.other_person_id = s.person_id AND r.other_rep = s.owner
       AND r.other_sold_at = s.sold_at
), keyed AS (
  SELECT *{key_cols}
  FROM states
)
SELECT *, row_number() OVER (PARTITION BY target ORDER BY {order}{', ' if order else ''}
                             CASE WHEN person_id = target THEN 0 ELSE 1 END,
                             person_id) AS pick
FROM keyed"""


def kept_sql(keep: Sequence[str], run_id: int) -> str:
    """MERGE_KEPT: one row per merged person — the state it keeps (the pick, with the
    latest lock its rep holds among the candidates), its own state before, which
    criterion decided (against the runner-up), the ids merged and the log reason.
    `conflicts`: the locks of other reps not kept that no open conflict records yet.
    `unchanged`: a fold of states that came back under retired ids (not this run's merge)
    that keeps the person's own state as it is and records no conflict, or redoes a
    merge logged already (`logged`: an earlier identity merge into the person, whose run
    logged its row, retired every id folded — a sale on X while the night merged X into
    Y): nothing to log. A lock it does not keep is recorded as a conflict all the same;
    the DuckDB engine logs one row per merge. A fold that is a merge never logged (a
    split part's lock joining a person) logs its conflict."""
    keys = _keys(keep)
    whens = []
    for criterion in keep:
        differs = " OR ".join(f"p.{name} IS DISTINCT FROM r.{name}" for name, _, _ in keys
                              if name.startswith(f"k_{criterion}_"))
        whens.append(f"WHEN {differs} THEN 'by {criterion}'")
    decided = " ".join(whens)
    state = ", ".join(f"p.{c}" for c in _STATE if c != "locked_until")
    # The ids merged: this run's merge; else (a rep action on a retired id that
    # load-results or a Spark night folds in) the ids of the states folded.
    return f"""CREATE OR REPLACE TEMP TABLE {MERGE_KEPT} AS
WITH p AS (SELECT * FROM {MERGE_CANDIDATES} WHERE pick = 1),
r AS (SELECT * FROM {MERGE_CANDIDATES} WHERE pick = 2),
same_rep AS (
  SELECT c.target, max(c.locked_until) AS locked_until
  FROM {MERGE_CANDIDATES} c JOIN p ON p.target = c.target AND c.owner = p.owner
  GROUP BY c.target
), lost AS (
  SELECT c.target, count(*) AS n,
         array_to_string(list_sort(list_distinct(list(c.owner))), ', ') AS reps
  FROM {MERGE_CANDIDATES} c JOIN p ON p.target = c.target
  WHERE c.locked AND c.owner IS DISTINCT FROM p.owner AND NOT c.recorded
  GROUP BY c.target
), merged AS (
  SELECT person_id, old_person_ids FROM identity_history
  WHERE run_id = {int(run_id)} AND change = 'merge'
), folded AS (
  SELECT target, list_sort(list_distinct(list(person_id))) AS old_person_ids,
         count(DISTINCT person_id) AS n
  FROM {MERGE_CANDIDATES} WHERE person_id <> target GROUP BY target
), premerged AS (  -- folded ids an earlier identity merge into the person logged
  SELECT DISTINCT c.target, c.person_id FROM {MERGE_CANDIDATES} c
  JOIN identity_history ih ON ih.person_id = c.target AND ih.change = 'merge'
       AND list_contains(ih.old_person_ids, c.person_id)
  JOIN assignments a ON a.run_id = ih.run_id AND a.person_id = ih.person_id
       AND a.rule = 'merge'
  WHERE c.person_id <> c.target
), logged AS (
  SELECT f.target FROM folded f
  JOIN (SELECT target, count(*) AS n FROM premerged GROUP BY target) m
    ON m.target = f.target AND m.n = f.n
), decided AS (
  SELECT p.target AS person_id, p.person_id AS kept_from, {state},
         coalesce(l.locked_until, p.locked_until) AS locked_until, p.sold_at,
         s.pool AS old_pool, s.owner AS old_owner, s.status AS old_status,
         coalesce(h.old_person_ids, f.old_person_ids) AS old_person_ids,
         coalesce(x.n, 0) AS conflicts, x.reps AS conflict_reps,
         CASE WHEN r.person_id IS NULL THEN 'the only routed one'
              {decided} ELSE 'tie' END AS decided_by,
         h.person_id IS NULL AND p.person_id = p.target
           AND (coalesce(x.n, 0) = 0 OR g.target IS NOT NULL)
           AND coalesce(l.locked_until, p.locked_until) IS NOT DISTINCT FROM p.locked_until
           AS unchanged
  FROM p LEFT JOIN r ON r.target = p.target
  LEFT JOIN {MERGE_CANDIDATES} s ON s.target = p.target AND s.person_id = p.target
  LEFT JOIN same_rep l ON l.target = p.target
  LEFT JOIN lost x ON x.target = p.target
  LEFT JOIN merged h ON h.person_id = p.target
  LEFT JOIN folded f ON f.target = p.target
  LEFT JOIN logged g ON g.target = p.target
)
SELECT *,
       'merge: ' || coalesce(array_to_string(old_person_ids, ', '), '?') || ' into '
       || person_id || '; kept the state of ' || kept_from || ' (' || decided_by || ')'
       || CASE WHEN conflicts > 0 THEN '; conflict: active lock of ' || conflict_reps
               || ' not kept, see leadctl identity conflicts' ELSE '' END AS log_reason
FROM decided"""


def conflicts_insert_sql(as_of: dt.date, run_id: int, detected_at: dt.datetime) -> str:
    """One `ownership_conflicts` row per active lock of another rep a merge did not keep."""
    return f"""INSERT INTO ownership_conflicts ({', '.join(CONFLICT_COLUMNS)})
SELECT {ts_literal(detected_at)}, {int(run_id)}, {date_literal(as_of)}, k.person_id,
       k.old_person_ids, k.kept_from, k.owner, k.sold_at, k.locked_until,
       c.person_id, c.owner, c.sold_at, c.locked_until, 'open'
FROM {MERGE_CANDIDATES} c JOIN {MERGE_KEPT} k ON k.person_id = c.target
WHERE c.locked AND c.owner IS DISTINCT FROM k.owner AND NOT c.recorded"""


def apply_merge_sql(as_of: dt.date, run_id: int, logged_at: dt.datetime) -> list[str]:
    """Log one `merge` row per merged person (with the reason of the state it keeps; none
    for a fold that leaves it `unchanged`), then replace the candidates' ownership rows by
    the kept states."""
    cols = ", ".join(OWNERSHIP_COLUMNS)
    return [
        f"INSERT INTO assignments ({', '.join(LOG_COLUMNS)})\n"
        f"SELECT {ts_literal(logged_at)}, {int(run_id)}, {date_literal(as_of)}, person_id,\n"
        f"       old_pool, pool, old_owner, owner, old_status, status, 'merge', log_reason,\n"
        f"       reason\n"
        f"FROM {MERGE_KEPT} WHERE NOT unchanged",
        f"DELETE FROM ownership WHERE person_id IN (SELECT person_id FROM {MERGE_CANDIDATES})",
        f"INSERT INTO ownership ({cols})\nSELECT {cols} FROM {MERGE_KEPT}",
    ]


def fold_intent_sql() -> list[str]:
    """lead_intent rows of retired ids go to their person (the latest intent wins)."""
    return [
        f"""CREATE OR REPLACE TEMP TABLE {MERGE_INTENT} AS
SELECT coalesce(a.person_id, i.person_id) AS person_id, max(i.intent_at) AS intent_at
FROM lead_intent i LEFT JOIN person_aliases a ON a.old_person_id = i.person_id
WHERE coalesce(a.person_id, i.person_id) IN (
  SELECT a2.person_id FROM lead_intent i2
  JOIN person_aliases a2 ON a2.old_person_id = i2.person_id)
GROUP BY coalesce(a.person_id, i.person_id)""",
        f"DELETE FROM lead_intent WHERE person_id IN (SELECT old_person_id FROM person_aliases)"
        f" OR person_id IN (SELECT person_id FROM {MERGE_INTENT})",
        f"INSERT INTO lead_intent (person_id, intent_at) "
        f"SELECT person_id, intent_at FROM {MERGE_INTENT}",
    ]


def _split_parts_sql(run_id: int) -> str:
    """The parts split off this run that have no state of their own (`person_id`), each
    with the id it left (`split_from`), that id's person now when a merge retired it
    (`now_id`), and that person's state (`kept_by`, `pool`, `owner`, `status`; NULL when
    it was not routed)."""
    split_from = "array_to_string(h.old_person_ids, ', ')"
    return f"""SELECT h.person_id, {split_from} AS split_from, a.person_id AS now_id,
       o.person_id AS kept_by, o.pool, o.owner, o.status
FROM identity_history h
LEFT JOIN person_aliases a ON a.old_person_id = {split_from}
LEFT JOIN ownership o ON o.person_id = coalesce(a.person_id, {split_from})
WHERE h.run_id = {int(run_id)} AND h.change = 'split'
  AND h.person_id NOT IN (SELECT person_id FROM ownership)"""


def _rep_pools_sql(rep_pools: dict[str, str]) -> str:
    """(rep, pool): each rep's first pool, as rows (none: one row of NULLs, so a join
    to it still reads)."""
    return " UNION ALL ".join(f"SELECT {literal(rep)} AS rep, {literal(pool)} AS pool"
                              for rep, pool in rep_pools.items()) or \
        "SELECT CAST(NULL AS VARCHAR) AS rep, CAST(NULL AS VARCHAR) AS pool"


def split_locks_sql(as_of: dt.date, run_id: int, rep_pools: dict[str, str]) -> str:
    """SPLIT_LOCKS: the state a part split off this run gets back when it has none of its
    own but sales recorded under its id (or ids merged into it) still lock it — say the
    other lock of a merge's conflict, split out again by an unlink: the seller's, closed,
    locked (a split never drops a lock). Of several reps' locks the earliest sale's, as a
    merge keeps, with that rep's latest `locked_until`; the pool is the rep's first (as a
    sale's without a state), else the one the part left."""
    day = date_literal(as_of)
    pools = _rep_pools_sql(rep_pools)
    return f"""CREATE OR REPLACE TEMP TABLE {SPLIT_LOCKS} AS
WITH parts AS (
  SELECT person_id, pool AS left_pool FROM ({_split_parts_sql(run_id)})
), locks AS (
  SELECT p.person_id, s.rep, min(s.sold_at) AS sold_at, max(s.sold_at) AS last_sold_at,
         max(s.locked_until) AS locked_until
  FROM sales s LEFT JOIN person_aliases a ON a.old_person_id = s.person_id
  JOIN parts p ON p.person_id = coalesce(a.person_id, s.person_id)
  WHERE s.locked_until >= {day}
  GROUP BY p.person_id, s.rep
), firsts AS (
  SELECT *, row_number() OVER (PARTITION BY person_id ORDER BY sold_at, rep) AS n
  FROM locks
)
SELECT f.person_id, coalesce(r.pool, p.left_pool) AS pool, f.rep AS owner, f.sold_at,
       f.last_sold_at, f.locked_until
FROM firsts f JOIN parts p ON p.person_id = f.person_id
LEFT JOIN ({pools}) r ON r.rep = f.rep
WHERE f.n = 1"""


def split_locks_apply_sql() -> list[str]:
    """The SPLIT_LOCKS states written: ownership, and the sale as the last clear intent."""
    return [
        f"""INSERT INTO ownership ({', '.join(OWNERSHIP_COLUMNS)})
SELECT person_id, pool, owner, 'closed', sold_at, sold_at, locked_until, FALSE, 'sale'
FROM {SPLIT_LOCKS}""",
        f"""INSERT INTO lead_intent (person_id, intent_at)
SELECT person_id, last_sold_at FROM {SPLIT_LOCKS}
WHERE person_id NOT IN (SELECT person_id FROM lead_intent)"""]


def split_joins_sql(as_of: dt.date, run_id: int, rep_pools: dict[str, str]) -> str:
    """SPLIT_JOINS: the locks a part split off this run brings to a routed person it
    joined (the part has a state of its own, so `split_locks_sql` skips it, and identity
    records no merge when that person's id was the only routed one): sales recorded under
    a retired id that now leads to the part still lock it for a rep its state does not
    hold that lock for — say the other lock of a merge's conflict, unlinked and linked to
    another routed person in one night. One row per retired id: the lock's state (the
    seller's, closed, locked; of several reps the earliest sale's, with that rep's latest
    `locked_until`; the rep's first pool, else the person's), which `split_joins_apply_sql`
    puts back under that id, so that the merge that follows decides it against the
    person's own state by `on_merge: keep:` (a `merge` row; a lock not kept, a conflict).
    A lock of an open conflict the person still holds was decided already: left alone."""
    day = date_literal(as_of)
    pools = _rep_pools_sql(rep_pools)
    return f"""CREATE OR REPLACE TEMP TABLE {SPLIT_JOINS} AS
WITH parts AS (
  SELECT DISTINCT o.person_id, o.pool, o.owner, o.locked_until
  FROM identity_history h JOIN ownership o ON o.person_id = h.person_id
  WHERE h.run_id = {int(run_id)} AND h.change = 'split'
), decided AS (
  SELECT current_id, other_rep FROM ({_open_conflicts_sql(True)})
), locks AS (
  SELECT s.person_id AS old_id, p.person_id AS now_id, p.pool AS own_pool, s.rep,
         min(s.sold_at) AS sold_at, max(s.sold_at) AS last_sold_at,
         max(s.locked_until) AS locked_until
  FROM sales s JOIN person_aliases a ON a.old_person_id = s.person_id
  JOIN parts p ON p.person_id = a.person_id
  WHERE s.locked_until >= {day}
    AND s.person_id NOT IN (SELECT person_id FROM ownership)
  GROUP BY s.person_id, p.person_id, p.pool, s.rep
), open_locks AS (
  SELECT l.* FROM locks l JOIN parts p ON p.person_id = l.now_id
  WHERE NOT coalesce(p.owner = l.rep AND p.locked_until >= l.locked_until, FALSE)
    AND NOT EXISTS (SELECT 1 FROM decided d
                    WHERE d.current_id = l.now_id AND d.other_rep = l.rep)
), firsts AS (
  SELECT *, row_number() OVER (PARTITION BY old_id ORDER BY sold_at, rep) AS n
  FROM open_locks
)
SELECT f.old_id AS person_id, coalesce(r.pool, f.own_pool) AS pool, f.rep AS owner,
       f.sold_at, f.last_sold_at, f.locked_until
FROM firsts f LEFT JOIN ({pools}) r ON r.rep = f.rep
WHERE f.n = 1"""


def split_joins_apply_sql() -> list[str]:
    """The SPLIT_JOINS states written under their retired ids (the merge then folds them),
    with the sale as that id's last clear intent (folded as a merge's: the latest wins)."""
    return [
        f"""INSERT INTO ownership ({', '.join(OWNERSHIP_COLUMNS)})
SELECT person_id, pool, owner, 'closed', sold_at, sold_at, locked_until, FALSE, 'sale'
FROM {SPLIT_JOINS}""",
        f"""INSERT INTO lead_intent (person_id, intent_at)
SELECT person_id, last_sold_at FROM {SPLIT_JOINS}"""]


def split_logged_sql(run_id: int) -> str:
    """The persons `split_log_sql` logs a row for, and the persons whose state those rows
    carry (`kept_by`: a change logged for it later would be written back in time too)."""
    parts = f"SELECT * FROM ({_split_parts_sql(run_id)}) p WHERE p.kept_by IS NOT NULL"
    return (f"SELECT person_id FROM ({parts}) a UNION ALL "
            f"SELECT kept_by AS person_id FROM ({parts}) b")


def split_log_sql(as_of: dt.date, run_id: int, logged_at: dt.datetime) -> str:
    """One `split` row per part split off a routed person this run that has no state of
    its own: it leaves the person's pool/owner/status (kept by the part with the id), and
    is routed as new unless a sale lock of its own goes with it (SPLIT_LOCKS: its state's
    reason `sale`, as `split_locks_apply_sql` writes; else none)."""
    return f"""INSERT INTO assignments ({', '.join(LOG_COLUMNS)})
SELECT {ts_literal(logged_at)}, {int(run_id)}, {date_literal(as_of)}, p.person_id,
       p.pool, k.pool, p.owner, k.owner, p.status,
       CASE WHEN k.owner IS NOT NULL THEN 'closed' END, 'split',
       'split: from ' || p.split_from
       || CASE WHEN p.now_id IS NULL THEN '' ELSE ' (now ' || p.now_id || ')' END
       || '; pool, owner, status and lock stay with ' || p.kept_by
       || ' (the part holding most of its leads); this part '
       || CASE WHEN k.owner IS NULL THEN 'is routed as new'
               ELSE 'keeps its own sale lock: ' || k.owner || ', until '
                    || CAST(k.locked_until AS VARCHAR) END,
       CASE WHEN k.owner IS NOT NULL THEN 'sale' END
FROM ({_split_parts_sql(run_id)}) p
LEFT JOIN {SPLIT_LOCKS} k ON k.person_id = p.person_id
WHERE p.kept_by IS NOT NULL"""


def drop_temp_sql() -> list[str]:
    return [f"DROP TABLE IF EXISTS {t}" for t in MERGE_TEMP_TABLES]


def carry_ownership(ws: Workspace, rules: RoutingRules, as_of: dt.date,
                    run_id: int, *, in_order: bool = False,
                    now: dt.datetime | None = None, locks_taken: bool = False) -> dict:
    """After identity resolution in run `run_id`: the routing states of merged persons
    decided by `rules.merge_keep`, conflicts recorded, intents folded, splits logged.
    Also without identity changes in this run, states still held by a merged-away id (a
    rep action carried from a workspace onto a person a Spark night merged: rep_actions)
    are folded the same way. `in_order` (a DuckDB resolve or run that publishes): a merge
    or split row for a person with a row dated after `as_of` is refused (UsageError)
    before any is written. `now`: the stamp of the rows written (default: now, the
    workspace zone's clock; `load-results` gives its run's start, which marks its folds:
    rep_actions.folded_by_load). `locks_taken`: the caller took MERGE_LOCKS_BEFORE before
    identity resolution (`locks_before_sql`; it drops it); else it is taken here, as the
    ids are now (a fold with no identity change of its own). Returns {merged, split,
    conflicts} (rows written by this run)."""
    counts = {"merged": 0, "split": 0, "conflicts": 0}
    changed = bool(ws.scalar(changes_sql(run_id)))
    if not changed and not ws.scalar(moved_states_sql()) and not ws.scalar(moved_intents_sql()):
        return counts
    now = now or log_stamp(ws, as_of)  # the workspace zone's clock (never back)
    try:
        if changed:  # a split part's lock that joined a routed person: merged below
            ws.execute(split_joins_sql(as_of, run_id, rules.rep_first_pools()))
            ws.script(split_joins_apply_sql())
        if ws.scalar(moved_states_sql()):
            if not locks_taken:
                ws.execute(locks_before_sql(as_of))
            ws.execute(candidates_sql(rules.merge_keep, as_of))
            ws.execute(kept_sql(rules.merge_keep, run_id))
            if in_order:  # the ids merged: each one's state is decided as of `as_of`
                keep_log_order(ws, f"SELECT person_id FROM {MERGE_CANDIDATES}", as_of,
                               "an identity merge")
            counts["merged"] = int(ws.scalar(f"SELECT count(*) FROM {MERGE_KEPT} "
                                             "WHERE NOT unchanged"))
            counts["conflicts"] = int(ws.scalar(f"SELECT coalesce(sum(conflicts), 0) "
                                                f"FROM {MERGE_KEPT}"))
            if counts["conflicts"]:
                ws.execute(conflicts_insert_sql(as_of, run_id, now))
            ws.script(apply_merge_sql(as_of, run_id, now))
        if ws.scalar(moved_intents_sql()):
            ws.script(fold_intent_sql())
        if changed:
            ws.execute(split_locks_sql(as_of, run_id, rules.rep_first_pools()))
            if in_order:
                keep_log_order(ws, split_logged_sql(run_id), as_of, "an identity split")
            before = int(ws.scalar("SELECT count(*) FROM assignments"))
            ws.execute(split_log_sql(as_of, run_id, now))
            counts["split"] = int(ws.scalar("SELECT count(*) FROM assignments")) - before
            ws.script(split_locks_apply_sql())
            ws.execute(end_split_conflicts_sql())
    finally:
        ws.script(drop_temp_sql())
        if not locks_taken:
            ws.execute(drop_locks_before_sql())
    return counts


# --------------------------------------------------------------------------- conflicts


def _open_conflicts_sql(still_one: bool) -> str:
    """Open conflicts with `current_id`, the person each belongs to now (a later merge may
    have retired the id it was recorded under), whose two states' persons are still one
    (or, `still_one=False`, are not: a split took the other lock's person out again)."""
    def current(column: str, n: str) -> str:
        return f"coalesce(p{n}.person_id, a{n}.person_id, {column})"
    return (f"SELECT {current('c.person_id', '1')} AS current_id, c.*\n"
            "FROM ownership_conflicts c\n"
            "LEFT JOIN persons p1 ON p1.person_id = c.person_id\n"
            "LEFT JOIN person_aliases a1 ON a1.old_person_id = c.person_id\n"
            "LEFT JOIN persons p2 ON p2.person_id = c.other_person_id\n"
            "LEFT JOIN person_aliases a2 ON a2.old_person_id = c.other_person_id\n"
            f"WHERE c.status = 'open' AND {current('c.other_person_id', '2')} "
            f"{'=' if still_one else '<>'} {current('c.person_id', '1')}")


def conflicts_query_sql() -> str:
    """Open conflicts, each under the person it belongs to now, while both states'
    persons are still one."""
    return (_open_conflicts_sql(True)
            + "\nORDER BY c.detected_at, current_id, c.other_rep, c.other_person_id")


def end_split_conflicts_sql() -> str:
    """A split that took the other lock's person out again ends the conflict for good: a
    later merge of the two is a new one (recorded then), not this one back."""
    return f"""UPDATE ownership_conflicts SET status = 'ended'
FROM ({_open_conflicts_sql(False)}) e
WHERE ownership_conflicts.status = 'open' AND ownership_conflicts.run_id = e.run_id
  AND ownership_conflicts.person_id = e.person_id
  AND ownership_conflicts.other_person_id = e.other_person_id"""


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


def list_conflicts(ws: Workspace) -> list[dict]:
    """Open ownership conflicts: {person_id, kept, other, old_person_ids, run_id, as_of,
    detected_at, status}; kept/other: {rep, sold_at, locked_until, from_person_id}."""
    if not ws.table_exists("ownership_conflicts"):  # a workspace made before the table
        return []
    out = []
    for r in ws.rows(conflicts_query_sql()):
        out.append({
            "person_id": r["current_id"],
            "kept": {"rep": r["kept_rep"], "sold_at": _iso(r["kept_sold_at"]),
                     "locked_until": _iso(r["kept_locked_until"]),
                     "from_person_id": r["kept_person_id"]},
            "other": {"rep": r["other_rep"], "sold_at": _iso(r["other_sold_at"]),
                      "locked_until": _iso(r["other_locked_until"]),
                      "from_person_id": r["other_person_id"]},
            "old_person_ids": list(r["old_person_ids"] or []),
            "recorded_as": r["person_id"],
            "run_id": r["run_id"], "as_of": _iso(r["as_of"]),
            "detected_at": _iso(r["detected_at"]), "status": r["status"],
        })
    return out
