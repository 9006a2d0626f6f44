"""Tables owned by the tag, score and route stages."""

STAGE_DDL: list[str] = [
    # Current tag values, long form; value is JSON (numbers stay numbers,
    # lists stay arrays). person_tags (wide, typed) is rebuilt by each tag run.
    """CREATE TABLE IF NOT EXISTS tags (
        person_id VARCHAR, tag VARCHAR, value JSON, as_of DATE, run_id INTEGER)""",
    """CREATE TABLE IF NOT EXISTS tag_history (
        run_id INTEGER, as_of DATE, person_id VARCHAR, tag VARCHAR,
        old_value JSON, new_value JSON)""",
    """CREATE TABLE IF NOT EXISTS scores (
        person_id VARCHAR PRIMARY KEY, score DOUBLE, grade VARCHAR, as_of DATE,
        run_id INTEGER)""",
    """CREATE TABLE IF NOT EXISTS score_breakdown (
        person_id VARCHAR, rule VARCHAR, points DOUBLE)""",
    """CREATE TABLE IF NOT EXISTS ownership (
        person_id VARCHAR PRIMARY KEY, pool VARCHAR, owner VARCHAR, status VARCHAR,
        status_since DATE, assigned_at DATE, locked_until DATE, dormant BOOLEAN,
        reason VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS assignments (
        logged_at TIMESTAMP, run_id INTEGER, as_of DATE, person_id VARCHAR,
        old_pool VARCHAR, new_pool VARCHAR, old_owner VARCHAR, new_owner VARCHAR,
        old_status VARCHAR, new_status VARCHAR, rule VARCHAR, reason VARCHAR)""",
]
