"""Tag rules against the data present: bind the generated SQL without running it, and
warn about event types the rules use that the workspace does not have (yet: also those of
funnel steps and `reactivate_on`, `missing_event_warnings`). Also what
each tag costs a later night (`nightly_cost`)."""

from __future__ import annotations

import datetime as dt

from leadctl.errors import Location, RuleError, first_line
from leadctl.rules.located import Problems
from leadctl.sqltext import literal
from leadctl.tagging.kinds import PASS_DERIVED, PASS_EVENTS, PASS_OWN, PASS_VALUES, kind_of
from leadctl.tagging.model import TagRules
from leadctl.tagging.sql import dated_filter_tag, features_select_sql


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
    return [], missing_event_warnings(ws, used)


def missing_event_warnings(ws, used: dict[str, Location | None]) -> list[str]:
    """A warning at each event type a rule file names (`used`: type → where, in the
    file's order) that the workspace has no events of; none while it has no events."""
    if not used or not ws.scalar("SELECT count(*) > 0 FROM (SELECT 1 FROM events LIMIT 1)"):
        return []
    present = {r["event_type"] for r in ws.rows(
        "SELECT DISTINCT event_type FROM events WHERE event_type IN ("
        + ", ".join(literal(e) for e in used) + ")")}
    return [f"{loc}: no '{event}' events in the workspace yet"
            for event, loc in used.items() if event not in present]


# Why a pass is recomputed from raw events each night, not folded from stored partials.
RAW_REASONS = {
    PASS_VALUES: "per-value counts (top, first/last value, distinct)",
    PASS_OWN: "runs of days (streak)",
}


def nightly_cost(rules: TagRules) -> dict:
    """How a later night computes each tag: `folded` (the shared events pass: stored
    partials plus the night's news, tagging/event_state.py), `from_raw_events` (read from
    every event again, for everyone or for the persons with news: each with its reason)
    or `derived` (from other tags, no events read)."""
    by_pass: dict[str, list[str]] = {}
    for tag in rules.tags:
        by_pass.setdefault(kind_of(tag).computed_by(tag), []).append(tag.name)
    raw = [{"tag": name, "reason": reason} for how, reason in RAW_REASONS.items()
           for name in by_pass.get(how, [])]
    folded = by_pass.get(PASS_EVENTS, [])
    dated = dated_filter_tag(rules)
    if dated is not None:  # no fold at all (tagging/stage.py `_fold`)
        raw = [{"tag": name, "reason": f"the event filter of '{dated}' reads the as-of date "
                                        "(a window: is folded)"}
               for name in folded] + raw
        folded = []
    return {"folded": folded, "from_raw_events": raw,
            "derived": by_pass.get(PASS_DERIVED, [])}
