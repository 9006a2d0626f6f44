"""Tables owned by the score stage."""

SCORING_DDL: list[str] = [
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
]

# The `meta` key holding the hash of the scoring.yaml the stored scores were computed with:
# explain says when the file shown beside them has changed since.
SCORED_WITH_KEY = "scoring_rules_hash"
