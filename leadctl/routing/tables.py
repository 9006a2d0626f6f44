"""Tables owned by routing and the lead lifecycle; the route stage's working tables."""

# The rule of the log row that sends a person to the dormant pool (the screens read it).
DORMANT_RULE = "lifecycle.dormant_after_days"

# ownership_conflicts, column by column (its DDL, and a typed empty one where a workspace
# predates the table)
CONFLICT_SCHEMA = (
    ("detected_at", "TIMESTAMP"), ("run_id", "INTEGER"), ("as_of", "DATE"),
    ("person_id", "VARCHAR"), ("old_person_ids", "VARCHAR[]"), ("kept_person_id", "VARCHAR"),
    ("kept_rep", "VARCHAR"), ("kept_sold_at", "DATE"), ("kept_locked_until", "DATE"),
    ("other_person_id", "VARCHAR"), ("other_rep", "VARCHAR"), ("other_sold_at", "DATE"),
    ("other_locked_until", "DATE"), ("status", "VARCHAR"))

ROUTING_DDL: list[str] = [
    # Current routing state, one row per routed person (unique by construction; no index
    # for the same reason as scores). `reason`: why it is where it is (dealt, claimed,
    # sale, no_capacity, claim_pool, no_route, dormant); locked while
    # locked_until >= as-of.
    """CREATE TABLE IF NOT EXISTS ownership (
        person_id VARCHAR, pool VARCHAR, owner VARCHAR, status VARCHAR,
        status_since DATE, assigned_at DATE, locked_until DATE, dormant BOOLEAN,
        reason VARCHAR)""",
    # Append-only: one row per change of pool, owner or status, with the rule and reason
    # (why it changed: sla_expired, no_intent, status_change, ...). `state_reason`: the
    # `ownership.reason` of the state the row leads to (what the screens show as of a past
    # date); NULL in rows written before the column existed (schema.UPGRADES).
    """CREATE TABLE IF NOT EXISTS assignments (
        logged_at TIMESTAMP, run_id INTEGER, as_of DATE, person_id VARCHAR,
        old_pool VARCHAR, new_pool VARCHAR, old_owner VARCHAR, new_owner VARCHAR,
        old_status VARCHAR, new_status VARCHAR, rule VARCHAR, reason VARCHAR,
        state_reason VARCHAR)""",
    # Last day each person had clear intent (status clear_intent, appointment or closed,
    # set by `leadctl status` / `leadctl sale`): restarts the dormancy clock.
    "CREATE TABLE IF NOT EXISTS lead_intent (person_id VARCHAR, intent_at DATE)",
    # Append-only: recorded sales (`leadctl sale`); the first sale locks the person.
    """CREATE TABLE IF NOT EXISTS sales (
        sold_at DATE, run_id INTEGER, person_id VARCHAR, rep VARCHAR, amount DOUBLE,
        locked_until DATE)""",
    # Append-only: active sale locks of different reps that an identity merge brought
    # together (routing/merge.py). The merged person keeps the `kept_*` state; the other
    # rep's lock is flagged here (status open) for a manager to decide
    # (`leadctl identity conflicts`). `*_person_id`: the person each state came from;
    # old_person_ids: the ids the merge retired.
    "CREATE TABLE IF NOT EXISTS ownership_conflicts ("
    + ", ".join(f"{column} {kind}" for column, kind in CONFLICT_SCHEMA) + ")",
]

# Assignment rows that count towards a rep's capacity: an owner carried over by an
# identity merge or split (routing/merge.py) is not a lead that became the rep's.
NOT_IDENTITY_CHANGE = "coalesce(rule, '') NOT IN ('merge', 'split')"

OWNERSHIP_COLUMNS = ("person_id", "pool", "owner", "status", "status_since", "assigned_at",
                     "locked_until", "dormant", "reason")
LOG_COLUMNS = ("logged_at", "run_id", "as_of", "person_id", "old_pool", "new_pool",
               "old_owner", "new_owner", "old_status", "new_status", "rule", "reason",
               "state_reason")

# meta: the routing.yaml hash of the last stored route run (explain says when it changed)
ROUTED_WITH_KEY = "routing_rules_hash"

# The route stage's working tables (temporary; dropped at the end of every run).
CFG_POOLS = "route_cfg_pools"
CFG_REPS = "route_cfg_reps"
CFG_MEMBERS = "route_cfg_members"
ACTIVITY = "route_activity"
DECIDED = "route_decided"
DEALT = "route_dealt"
NEW = "route_new"  # a view
TEMP_TABLES = (CFG_POOLS, CFG_REPS, CFG_MEMBERS, ACTIVITY, DECIDED, DEALT)

# The identity-change step's working tables (routing/merge.py; dropped when it ends).
MERGE_CANDIDATES = "route_merge_candidates"
MERGE_KEPT = "route_merge_kept"
MERGE_INTENT = "route_merge_intent"
SPLIT_LOCKS = "route_split_locks"
SPLIT_JOINS = "route_split_joins"
# The sales still locking, under the persons they belonged to before identity resolution
# moved ids (routing/merge.py: taken before it, dropped after the identity-change step).
MERGE_LOCKS_BEFORE = "route_merge_locks_before"
MERGE_TEMP_TABLES = (MERGE_CANDIDATES, MERGE_KEPT, MERGE_INTENT, SPLIT_LOCKS, SPLIT_JOINS)
CONFLICT_COLUMNS = tuple(column for column, _ in CONFLICT_SCHEMA)
