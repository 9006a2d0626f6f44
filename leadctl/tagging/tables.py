"""Tables owned by the tag stage, and how their JSON values read back."""

import json
from typing import Any

TAG_DDL: list[str] = [
    # Current tag values, long form; value is JSON (numbers stay numbers,
    # lists stay arrays); a person without a value for a tag has no row.
    # person_features (wide, typed) is rebuilt by each tag run.
    """CREATE TABLE IF NOT EXISTS tags (
        person_id VARCHAR, tag VARCHAR, value JSON, as_of DATE, run_id INTEGER)""",
    # Only values that changed against the previous stored run (NULL = no value); the
    # first run records every initial value (old NULL).
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


def stored_value(text: Any) -> Any:
    """A tag value as stored (JSON text) → the value; text that is no JSON as it is."""
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


# The `meta` key holding the hash of the tags.yaml the stored tags were computed with:
# explain says when the file shown beside them has changed since.
TAGGED_WITH_KEY = "tags_rules_hash"


# Run-log rows whose tags were published (a data check failing still publishes the work);
# a Spark night logs its run in the state it carries.
TAG_COMMANDS = ("tag", "run", "load-results", "run --engine spark")
PUBLISHED_OUTCOMES = ("ok", "data_check_failed")


def last_tag_run_sql() -> str:
    """The as-of and run id of the last run that published tags, from the run log."""
    return (f"SELECT as_of, run_id FROM runs WHERE command IN {TAG_COMMANDS} "
            f"AND outcome IN {PUBLISHED_OUTCOMES} AND as_of IS NOT NULL "
            "ORDER BY run_id DESC LIMIT 1")
