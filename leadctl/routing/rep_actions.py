"""What reps enter (`claim`, `status`, `sale`) carried between a DuckDB workspace and a
Spark run's state, so that no rep action is lost between Spark nights.

Reps work in a DuckDB workspace that `load-results` fills. Their actions are rows there:
the assignment log rows with rule claim / status / sale, the ownership rows of those
persons (the state after the actions), `sales` and `lead_intent`. The same merge moves
them in both directions:

- into a Spark night (`run --engine spark --state DIR`, the workspace given by --db):
  the actions the state does not have yet are applied to it before the stages run, as
  the DuckDB engine would see them in its workspace;
- back into the workspace (`load-results`): the actions the Spark output does not have
  (made while it ran, or a night run without --db) are re-applied over the loaded
  tables, so an action newer than the run is never overwritten.

An action is recognised by its log row (logged_at, person_id, rule), a sale also by its
`sales` row (a repeat sale by the owning rep logs nothing, yet moves the lock); a merge
applies only actions the target does not have, so carrying the same actions twice
changes nothing. Builders are plain SQL, run by DuckDB and (translated) by Spark.

What `load-results` itself wrote travels the same way: when it folds an action on a
person the run merged away (routing.merge.carry_ownership), its `merge` log row and the
`ownership_conflicts` rows it records exist only in the workspace. They are carried as
actions are (the merge row's person takes the workspace's state after the fold; a
conflict is recognised by when, on whom and whose lock), else the next Spark night or a
second load of the same output would drop the conflict: the fold cannot be done again
once the retired id's state is folded.
"""

from __future__ import annotations

from leadctl.limits import BIGINT_MAX
from leadctl.routing.tables import (
    CONFLICT_COLUMNS,
    CONFLICT_SCHEMA,
    LOG_COLUMNS,
    OWNERSHIP_COLUMNS,
)
from leadctl.sqltext import literal

REP_RULES = ("claim", "status", "sale")
_RULES = ", ".join(f"'{rule}'" for rule in REP_RULES)

# The source tables a merge reads (filled from the other side), by the table they feed.
SOURCES = {"assignments": "_rep_assignments", "ownership": "_rep_ownership",
           "sales": "_rep_sales", "lead_intent": "_rep_lead_intent",
           "ownership_conflicts": "_rep_conflicts"}
NEW_ACTIONS = "_rep_new_actions"
NEW_SALES = "_rep_new_sales"
NOT_APPLIED = "_rep_not_applied"
INTENT = "_rep_intent"
STATES = "_rep_states"
SALES_COLUMNS = ("sold_at", "run_id", "person_id", "rep", "amount", "locked_until")


def folded_by_load(row: str, stamp: str) -> str:
    """Whether `row` (an alias: its run_id, and `stamp`, its logged_at / detected_at) is
    one a fold of the workspace's own `load-results` wrote: a load stamps its folds with
    its run's start (spark.pipeline.load_results). The run id alone does not tell: loaded
    rows keep the Spark run log's ids, and the Spark night after the loaded one takes the
    id the load took, so that night's own merge rows and conflicts would pass for the
    load's (and be logged twice by a load of another output of that night). A DuckDB
    night run in the workspace is not carried either: its rows are no rep's. A load
    before the first that stamped (FOLDS_STAMPED_FROM, in meta) stamped its folds with the
    time of the fold: its rows are those stamped while it ran."""
    stamped_from = (f"coalesce((SELECT CAST(value AS BIGINT) FROM meta "
                    f"WHERE key = {literal(FOLDS_STAMPED_FROM)}), {BIGINT_MAX})")
    return ("EXISTS (SELECT 1 FROM runs r WHERE r.command = 'load-results' "
            f"AND r.run_id = {row}.run_id AND (r.started_at = {row}.{stamp} "
            f"OR r.run_id < {stamped_from} AND {row}.{stamp} "
            "BETWEEN r.started_at AND coalesce(r.ended_at, r.started_at)))")


# The first load-results run that stamped its folds with its start (meta key).
FOLDS_STAMPED_FROM = "folds_stamped_from_run"


def stamp_folds_from_sql(run_id: int) -> str:
    """Records `run_id` (a load about to fold) as the first stamping load, unless one is."""
    return (f"INSERT INTO meta (key, value) SELECT {literal(FOLDS_STAMPED_FROM)}, "
            f"{literal(str(int(run_id)))} WHERE NOT EXISTS (SELECT 1 FROM meta "
            f"WHERE key = {literal(FOLDS_STAMPED_FROM)})")


def rep_action_selects(state_reason: bool = True, conflicts: bool = True) -> dict[str, str]:
    """Per table, the SELECT that reads a workspace's rep actions (and its folds' merge
    rows and conflicts). `state_reason=False`: a workspace whose log predates that column
    (read only, so not upgraded): NULL; `conflicts=False`: one that predates
    `ownership_conflicts`: none."""
    log = ", ".join("CAST(NULL AS VARCHAR) AS state_reason"
                    if c == "state_reason" and not state_reason else c for c in LOG_COLUMNS)
    own = ", ".join(OWNERSHIP_COLUMNS)
    logged = f"rule IN ({_RULES}) OR (rule = 'merge' AND {folded_by_load('a', 'logged_at')})"
    actions = f"SELECT person_id FROM assignments a WHERE {logged}"
    cols = ", ".join(CONFLICT_COLUMNS)
    recorded = f"SELECT {cols} FROM ownership_conflicts c " \
        f"WHERE {folded_by_load('c', 'detected_at')}" \
        if conflicts else "SELECT " + ", ".join(
            f"CAST(NULL AS {t}) AS {c}" for c, t in CONFLICT_SCHEMA) + " WHERE FALSE"
    return {
        "assignments": f"SELECT {log} FROM assignments a WHERE {logged}",
        "ownership": f"SELECT {own} FROM ownership WHERE person_id IN ({actions}) "
                     "OR person_id IN (SELECT person_id FROM sales)",
        "sales": f"SELECT {', '.join(SALES_COLUMNS)} FROM sales",
        "lead_intent": "SELECT person_id, intent_at FROM lead_intent",
        "ownership_conflicts": recorded,
    }


def capture_sql() -> list[str]:
    """The workspace's own rep actions as the merge's sources (before its tables are
    replaced by a Spark output)."""
    return [f"CREATE OR REPLACE TEMP TABLE {SOURCES[name]} AS {select}"
            for name, select in rep_action_selects().items()]


KNOWN_PERSONS = ("(SELECT person_id FROM persons "
                 "UNION ALL SELECT old_person_id FROM person_aliases)")


def _unseen_sale(target: str) -> str:
    """A source sale (s) that `target` does not have."""
    return (f"NOT EXISTS (SELECT 1 FROM {target} t WHERE t.sold_at = s.sold_at "
            "AND t.person_id = s.person_id AND t.rep = s.rep "
            "AND t.locked_until = s.locked_until)")


def _unseen_conflict() -> str:
    """A source conflict (s) that the target's `ownership_conflicts` does not have (its
    status may differ: a later night ends one, which the target's row then says)."""
    return ("NOT EXISTS (SELECT 1 FROM ownership_conflicts t "
            "WHERE t.detected_at = s.detected_at AND t.person_id = s.person_id "
            "AND t.other_person_id = s.other_person_id AND t.other_rep = s.other_rep)")


def _unseen_action() -> str:
    """A source log row (s) that the target's `assignments` does not have."""
    return ("NOT EXISTS (SELECT 1 FROM assignments a WHERE a.logged_at = s.logged_at "
            "AND a.person_id = s.person_id AND a.rule = s.rule)")


def unknown_persons_sql() -> str:
    """(persons, example): the persons that source actions the target does not have yet
    name, and that the target has never had (neither a person nor a retired id). Actions
    of a workspace on the state its nights were loaded from never do: such actions come
    from another workspace."""
    return f"""
SELECT count(DISTINCT person_id) AS persons, min(person_id) AS example FROM (
  SELECT s.person_id FROM {SOURCES['sales']} s WHERE {_unseen_sale('sales')}
  UNION ALL
  SELECT s.person_id FROM {SOURCES['assignments']} s WHERE {_unseen_action()}
  UNION ALL
  SELECT i.person_id FROM {SOURCES['lead_intent']} i
  WHERE NOT EXISTS (SELECT 1 FROM lead_intent t WHERE t.person_id = i.person_id
                    AND t.intent_at >= i.intent_at)) AS acted
WHERE person_id NOT IN {KNOWN_PERSONS}"""


def not_applied_sql() -> str:
    """The new status changes (of NEW_ACTIONS) that are not applied: those of a person
    with only status changes whom the target gave to another owner (or to none) than the
    one the status was set on — its own row, or, for an id the target merged away, the
    survivor's. A status is a rep's note on the lead the rep owns: the DuckDB engine
    refuses one on a person the rep does not own (lifecycle.set_status), and applied
    after the night it would put the person back with the rep the night took it from
    (the owner, pool and lock of the state before the night; or the survivor's state,
    by the on_merge fold). The target's row stays as it is and nothing is logged."""
    return f"""SELECT n.{', n.'.join(LOG_COLUMNS)} FROM {NEW_ACTIONS} n
JOIN {SOURCES['ownership']} w ON w.person_id = n.person_id
LEFT JOIN person_aliases a ON a.old_person_id = n.person_id
JOIN ownership t ON t.person_id = coalesce(a.person_id, n.person_id)
WHERE t.owner IS DISTINCT FROM w.owner
  AND NOT EXISTS (SELECT 1 FROM {NEW_ACTIONS} o WHERE o.person_id = n.person_id
                  AND o.rule <> 'status')
  AND n.person_id NOT IN (SELECT person_id FROM {NEW_SALES})"""


def acted_states_sql(acted: str) -> str:
    """The state each person of `acted` (a SELECT of ids) takes: the target's row with the
    source's actions applied over it, as the DuckDB engine applies an action after the
    night. The source's row is the state after the actions, but over the state before the
    target's night: taken whole it undid what the night decided (a merge's longer lock of
    the same rep, say). So a person with only status changes keeps the target's row with
    the source's status and status_since (its owner is the one the status was set on:
    `not_applied_sql` left the others out); otherwise (a claim, a sale or a fold's merge
    row set the owner, pool and lock) it takes the source's row, and of one rep's locks
    the later (a sale never shortens a lock; the night's merge kept the latest of that
    rep's). A person the target has no row for (a retired id) takes the source's."""
    own = ", ".join(OWNERSHIP_COLUMNS)
    status_only = "t.person_id IS NOT NULL AND k.status_only = 1"
    cols = []
    for c in OWNERSHIP_COLUMNS:
        if c == "person_id":
            cols.append("w.person_id")
        elif c in ("status", "status_since"):
            cols.append(f"w.{c}")
        elif c == "locked_until":
            cols.append(f"CASE WHEN {status_only} OR (t.owner = w.owner AND "
                        "t.locked_until > w.locked_until) THEN t.locked_until "
                        "ELSE w.locked_until END AS locked_until")
        else:
            cols.append(f"CASE WHEN {status_only} THEN t.{c} ELSE w.{c} END AS {c}")
    return f"""WITH kinds AS (
  SELECT person_id, min(CASE WHEN rule = 'status' THEN 1 ELSE 0 END) AS status_only
  FROM (SELECT person_id, rule FROM {NEW_ACTIONS}
        UNION ALL SELECT person_id, 'sale' AS rule FROM {NEW_SALES}) AS acts
  GROUP BY person_id
)
SELECT {', '.join(cols)}
FROM (SELECT {own} FROM {SOURCES['ownership']} WHERE person_id IN {acted}) AS w
LEFT JOIN ownership t ON t.person_id = w.person_id
LEFT JOIN kinds k ON k.person_id = w.person_id"""


def merge_sql(target_sales: str = "sales") -> list[str]:
    """Apply the source actions the target tables do not have yet: their log rows are
    appended and their persons take the source's actions over the target's state
    (`acted_states_sql`), as do the persons of sales the target has not seen (`target_sales`: the
    target's sales, when its own `sales` table is not them); sales are added once; the
    intent date is the later of both; the source's conflicts the target does not have are
    added (a merge row of a fold is an action: its person takes the source's state, the
    one after the fold). A status change on a person the target gave to another owner
    is neither applied nor logged (`not_applied_sql`, counted by `count_not_applied_sql`).
    An action on a
    person the target has merged away keeps its retired id here: its ownership row is one
    of a merged-away person, which `routing.merge.carry_ownership` then folds into the
    survivor by the on_merge policy (a lock kept, or a conflict recorded), as the DuckDB
    engine does when the sale came before the night's merge."""
    log, own = ", ".join(LOG_COLUMNS), ", ".join(OWNERSHIP_COLUMNS)
    sales = ", ".join(SALES_COLUMNS)
    new = NEW_ACTIONS
    known = KNOWN_PERSONS
    acted = (f"(SELECT person_id FROM {new} UNION ALL SELECT person_id FROM {NEW_SALES} "
             f"WHERE person_id IN {known})")
    return [
        f"""CREATE OR REPLACE TEMP TABLE {NEW_SALES} AS
SELECT {', '.join(f's.{c}' for c in SALES_COLUMNS)} FROM {SOURCES['sales']} s
WHERE {_unseen_sale(target_sales)}""",
        f"""CREATE OR REPLACE TEMP TABLE {new} AS
SELECT {', '.join(f's.{c}' for c in LOG_COLUMNS)} FROM {SOURCES['assignments']} s
WHERE s.person_id IN {known} AND {_unseen_action()}""",
        f"CREATE OR REPLACE TEMP TABLE {NOT_APPLIED} AS {not_applied_sql()}",
        f"DELETE FROM {new} WHERE person_id IN (SELECT person_id FROM {NOT_APPLIED})",
        f"CREATE OR REPLACE TEMP TABLE {STATES} AS {acted_states_sql(acted)}",
        f"DELETE FROM ownership WHERE person_id IN {acted}",
        f"INSERT INTO ownership ({own}) SELECT {own} FROM {STATES}",
        f"INSERT INTO assignments ({log}) SELECT {log} FROM {new}",
        f"""INSERT INTO sales ({sales})
SELECT {sales} FROM {NEW_SALES} s WHERE {_unseen_sale('sales')}""",
        # nor the intent such a status marked (over the one before it: the run's intents,
        # loaded next, give the person the night's)
        *(f"DELETE FROM {table} WHERE person_id IN (SELECT person_id FROM {NOT_APPLIED})"
          for table in (SOURCES['lead_intent'], "lead_intent")),
        *later_intents_sql(SOURCES['lead_intent']),
        f"""INSERT INTO ownership_conflicts ({', '.join(CONFLICT_COLUMNS)})
SELECT {', '.join(f's.{c}' for c in CONFLICT_COLUMNS)} FROM {SOURCES['ownership_conflicts']} s
WHERE {_unseen_conflict()}""",
        extended_conflicts_sql(),
    ]


def extended_conflicts_sql() -> str:
    """An open conflict's other lock ends as that rep's latest sale on that person since
    the lock's first sale says: the rep sold the person again while the night that
    recorded the conflict ran (the workspace still had it as the rep's), the same lock
    made longer. (On the DuckDB engine no such sale can follow: the person is locked.)"""
    key = ("detected_at", "person_id", "other_person_id", "other_rep")
    return f"""UPDATE ownership_conflicts SET other_locked_until = e.locked_until
FROM (SELECT {', '.join(f'c.{k}' for k in key)}, max(s.locked_until) AS locked_until
      FROM ownership_conflicts c JOIN sales s ON s.person_id = c.other_person_id
       AND s.rep = c.other_rep AND s.sold_at >= c.other_sold_at
       AND s.locked_until > c.other_locked_until
      WHERE c.status = 'open'
      GROUP BY {', '.join(f'c.{k}' for k in key)}) AS e
WHERE ownership_conflicts.status = 'open'
  AND {' AND '.join(f'ownership_conflicts.{k} = e.{k}' for k in key)}"""


def later_intents_sql(source: str) -> list[str]:
    """`lead_intent` takes the intents of `source` (person_id, intent_at): of both sides'
    a person keeps the later (an intent only moves on: a clear intent is dated the day
    it is set)."""
    return [
        f"""CREATE OR REPLACE TEMP TABLE {INTENT} AS
SELECT person_id, max(intent_at) AS intent_at FROM (
  SELECT person_id, intent_at FROM lead_intent
  UNION ALL SELECT person_id, intent_at FROM {source}) AS both_sides
GROUP BY person_id""",
        "DELETE FROM lead_intent",
        f"INSERT INTO lead_intent (person_id, intent_at) SELECT person_id, intent_at FROM {INTENT}",
        f"DROP TABLE IF EXISTS {INTENT}",
    ]


def run_sales_sql(run_sales: str) -> str:
    """The loaded run's sales (`run_sales`) the workspace lacks: a workspace made anew
    from a state folder (a second analyst, a lost laptop) had none of the sales behind
    the run's locks."""
    return (f"INSERT INTO sales ({', '.join(SALES_COLUMNS)}) SELECT "
            f"{', '.join(f's.{c}' for c in SALES_COLUMNS)} FROM {run_sales} s "
            f"WHERE {_unseen_sale('sales')}")


def count_new_sql() -> str:
    """The rep actions applied: new log rows (not a fold's merge row), and new sales that
    logged nothing."""
    return (f"SELECT (SELECT count(*) FROM {NEW_ACTIONS} WHERE rule IN ({_RULES})) + "
            f"(SELECT count(*) FROM "
            f"{NEW_SALES} s WHERE s.person_id NOT IN (SELECT person_id FROM {NEW_ACTIONS} "
            "WHERE rule = 'sale'))")


def count_not_applied_sql() -> str:
    """The status changes not applied (`not_applied_sql`)."""
    return f"SELECT count(*) FROM {NOT_APPLIED}"


def drop_sql() -> list[str]:
    return [f"DROP TABLE IF EXISTS {name}" for name in
            (*SOURCES.values(), NEW_ACTIONS, NEW_SALES, NOT_APPLIED, INTENT, STATES)]
