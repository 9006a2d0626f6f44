"""Tables owned by the tag and route stages (the score stage owns its tables in
`leadctl.scoring.tables`)."""

TAG_DDL: list[str] = [
    # Current tag values, long form; value is JSON (numbers stay numbers,
    # lists stay arrays); a person without a value for a tag has no row.
    # person_features (wide, typed) is rebuilt by each tag run.
    """CREATE TABLE IF NOT EXISTS tags (
        person_id VARCHAR, tag VARCHAR, value JSON, as_of DATE, run_id INTEGER)""",
    # Only values that changed against the previous stored run (NULL = no value).
    """CREATE TABLE IF NOT EXISTS tag_history (
        run_id INTEGER, as_of DATE, person_id VARCHAR, tag VARCHAR,
        old_value JSON, new_value JSON)""",
    # The tag definitions of the last tag run: portrait panels group by category;
    # `type` is the expression type of the tag's person_features column; `levels` the
    # ordered level names of tiers/rfm tags (best first); `highlight` from the rule.
    """CREATE TABLE IF NOT EXISTS tag_definitions (
        position INTEGER, tag VARCHAR, kind VARCHAR, category VARCHAR,
        description VARCHAR, type VARCHAR, levels JSON, highlight BOOLEAN)""",
    # Wide, typed: one row per person, person attributes + one column per tag. Replaced
    # (CREATE OR REPLACE) by each tag run; before the first run it has attributes only.
    """CREATE TABLE IF NOT EXISTS person_features (
        person_id VARCHAR, name VARCHAR, city VARCHAR, province VARCHAR, channel VARCHAR,
        source VARCHAR, sources VARCHAR[], lead_count INTEGER, first_seen TIMESTAMP,
        last_seen TIMESTAMP)""",
]

ROUTING_DDL: list[str] = [
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
