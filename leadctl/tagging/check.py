"""Tag rules against the data present: bind the generated SQL without running it, and
warn about event types the rules use that the workspace does not have (yet)."""

from __future__ import annotations

import datetime as dt

from leadctl.errors import Location, RuleError, first_line
from leadctl.rules.located import Problems
from leadctl.sqltext import literal
from leadctl.tagging.model import TagRules
from leadctl.tagging.sql import features_select_sql


def check_tags_against_data(ws, rules: TagRules) -> tuple[Problems, list[str]]:
    """(problems, warnings)."""
    try:
        ws.execute("EXPLAIN " + features_select_sql(rules, dt.date.today()))
    except RuleError as exc:
        return list(exc.problems), []
    except Exception as exc:  # a binder error: the data does not fit the rules
        return [(Location(str(rules.path), 1, 1),
                 f"tags do not fit the workspace data: {first_line(exc)}")], []
    used: dict[str, Location | None] = {}
    for tag in rules.tags:
        for event in tag.events:
            used.setdefault(event, tag.loc)
    warnings: list[str] = []
    if used and ws.scalar("SELECT count(*) > 0 FROM (SELECT 1 FROM events LIMIT 1)"):
        present = {r["event_type"] for r in ws.rows(
            "SELECT DISTINCT event_type FROM events WHERE event_type IN ("
            + ", ".join(literal(e) for e in used) + ")")}
        warnings = [f"{loc}: no '{event}' events in the workspace yet"
                    for event, loc in used.items() if event not in present]
    return [], warnings
