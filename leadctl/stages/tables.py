"""Tables owned by the score and route stages."""

from leadctl.tagging.tables import TAG_DDL

STAGE_DDL: list[str] = [
    *TAG_DDL,
    # One row per person (unique by construction; no PRIMARY KEY: each score run replaces
    # every row, and re-inserting 1M keys into DuckDB's index costs seconds). A score run
    # re-creates it with these columns first, then one `p_<rule>` points column per rule.
    """CREATE TABLE IF NOT EXISTS scores (
        person_id VARCHAR, score DOUBLE, grade VARCHAR, as_of DATE,
        run_id INTEGER)""",
    # Points per person and rule, only rules that gave points (they add up to the score).
    # A score run replaces this table by a VIEW of the `p_<rule>` columns of scores.
    """CREATE TABLE IF NOT EXISTS score_breakdown (
        person_id VARCHAR, rule VARCHAR, points DOUBLE)""",
    # Current routing state, one row per routed person (unique by construction; no index
    # for the same reason as scores). `reason`: why it is where it is (dealt, claimed,
    # sale, no_capacity, claim_pool, no_route, dormant); locked while
    # locked_until >= as-of.
    """CREATE TABLE IF NOT EXISTS ownership (
        person_id VARCHAR, pool VARCHAR, owner VARCHAR, status VARCHAR,
        status_since DATE, assigned_at DATE, locked_until DATE, dormant BOOLEAN,
        reason VARCHAR)""",
    # Append-only: one row per change of pool, owner or status, with the rule and reason.
    """CREATE TABLE IF NOT EXISTS assignments (
        logged_at TIMESTAMP, run_id INTEGER, as_of DATE, person_id VARCHAR,
        old_pool VARCHAR, new_pool VARCHAR, old_owner VARCHAR, new_owner VARCHAR,
        old_status VARCHAR, new_status VARCHAR, rule VARCHAR, reason VARCHAR)""",
    # Last day each person had clear intent (status clear_intent, appointment or closed,
    # set by `leadctl status` / `leadctl sale`): restarts the dormancy clock.
    "CREATE TABLE IF NOT EXISTS lead_intent (person_id VARCHAR, intent_at DATE)",
    # Append-only: recorded sales (`leadctl sale`); the first sale locks the person.
    """CREATE TABLE IF NOT EXISTS sales (
        sold_at DATE, run_id INTEGER, person_id VARCHAR, rep VARCHAR, amount DOUBLE,
        locked_until DATE)""",
]
