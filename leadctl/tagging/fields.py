"""Fields rules read: event columns and declared attributes (tags' `where:` and
`field:`), and the columns person_features really has in a workspace (what scoring and
routing expressions can bind), by expression type."""

from __future__ import annotations

import datetime as dt
import re

from leadctl.ingest.sql import parse_timestamp_sql
from leadctl.rules.expr import CompiledExpr, ExprError, expr_names
from leadctl.rules.located import Problems, compile_located
from leadctl.sqlfn import rule_guard
from leadctl.sqltext import finite_or_null_sql, ident, literal, number_sql, ts_literal
from leadctl.tagging.model import EVENT_COLUMNS, TagDef, TagRules
from leadctl.workspace import Workspace

_ATTRIBUTE_CASTS = {"number": "DOUBLE", "boolean": "BOOLEAN"}


def attribute_value_sql(text: str, attribute_type: str, timezone: str) -> str:
    """A declared attribute's text as its type (NULL when it is not one; a number that is
    NaN or infinite too). Dates and
    timestamps are read as an event's `ts` is: a zoned value is converted to the
    workspace time zone (`2026-10-31T16:30:00+00:00` is 11-01 00:30 in Shanghai)."""
    if attribute_type in ("date", "timestamp"):
        moment = parse_timestamp_sql(text, timezone)
        return f"CAST({moment} AS DATE)" if attribute_type == "date" else moment
    cast = _ATTRIBUTE_CASTS.get(attribute_type)
    if attribute_type == "number":
        # NaN and ±infinity (a text 'NaN', 'inf', '1e400', a float column's own) are no
        # number, as they are no amount at ingest: one passes every threshold
        # (`duration > 100` holds for NaN) and turns sums and averages into NaN. A comma
        # groups thousands, as in an amount (1,234.50).
        return finite_or_null_sql(number_sql(text))
    return f"TRY_CAST({text} AS {cast})" if cast else text


def event_field_sql(rules: TagRules, name: str, alias: str = "e") -> str:
    """An event column, or a declared attribute read from the JSON `attributes`."""
    if name in EVENT_COLUMNS:
        return f"{alias}.{ident(name)}"
    extracted = f"json_extract_string({alias}.attributes, {literal('$.' + name)})"
    return attribute_value_sql(extracted, rules.event_attributes.get(name, "string"),
                               rules.timezone)


def event_column_sql(rules: TagRules):
    def column_sql(name: str) -> str:
        return event_field_sql(rules, name)

    return column_sql


def feature_column_sql(name: str) -> str:
    return ident(name)


def compile_event_filter(rules: TagRules, tag: TagDef, as_of: dt.date,
                         problems: Problems | None = None) -> CompiledExpr | None:
    """A tag's `where:` over event fields (RuleError, or a problem appended)."""
    what = f"tag '{tag.name}' where"
    return compile_located(tag.where, rules.event_fields(), "boolean", as_of, what,
                           column_sql=event_column_sql(rules), problems=problems,
                           finite_guard=rule_guard(what))


# A pass's FROM: events (e) with their person (sp.person_id). Every person's events ...
ALL_EVENTS = "events e JOIN subject_persons sp ON sp.subject = e.subject"


def some_persons_events_sql(persons: str) -> str:
    """... or the events of the persons a query selects (`persons`: person_id), through
    their subjects ..."""
    return (f"events e JOIN (SELECT subject, person_id FROM subject_persons "
            f"WHERE person_id IN ({persons})) sp ON sp.subject = e.subject")


def persons_events_sql(persons: str, events: str) -> str:
    """... or those in `events` (a table of events with their person_id) of the persons in
    `persons` (person_id), under the same aliases."""
    return f"{events} e JOIN {persons} sp ON sp.person_id = e.person_id"


def event_columns(rules: TagRules, tags: list[TagDef]) -> list[str]:
    """The event columns `tags` can read: the JSON attributes only when one names a
    declared attribute (its field, or in its filter)."""
    named = {t.field for t in tags} | {n for t in tags if t.where for n in names_in(t.where.value)}
    reads_attributes = any(n in rules.event_attributes for n in named)
    return [*EVENT_COLUMNS, *(["attributes"] if reads_attributes else [])]


def names_in(text: str) -> set[str]:
    """Field/tag names an expression refers to. A text the expression language rejects
    has none here; compiling it reports the error."""
    try:
        return expr_names(text)
    except ExprError:
        return set()


def events_in_sql(events: tuple[str, ...], alias: str = "e") -> str:
    if len(events) == 1:
        return f"{alias}.event_type = {literal(events[0])}"
    return f"{alias}.event_type IN ({', '.join(literal(e) for e in events)})"


def reads_as_of(rules: TagRules, tag: TagDef) -> bool:
    """Whether a tag's event filter uses the as-of date (compiled differently for two days):
    then which events it reads can change for anyone, any day."""
    if tag.where is None:
        return False
    day = dt.date(2000, 1, 1)
    return (compile_event_filter(rules, tag, day).sql
            != compile_event_filter(rules, tag, day + dt.timedelta(days=1)).sql)


def event_condition_sql(rules: TagRules, tag: TagDef, as_of: dt.date) -> str:
    """Which events a tag looks at (every pass already keeps only `ts < as_of`)."""
    parts = [events_in_sql(tag.events)]
    if tag.window_days is not None:
        parts.append(f"e.ts >= {ts_literal(as_of - dt.timedelta(days=tag.window_days))}")
    if tag.where is not None:
        parts.append(f"({compile_event_filter(rules, tag, as_of).sql})")
    return " AND ".join(parts)


_NUMERIC_TYPE = re.compile(r"U?(TINY|SMALL|BIG|HUGE)?INT(EGER)?|FLOAT|DOUBLE|REAL"
                           r"|(DECIMAL|NUMERIC)(\(\d+,\s*\d+\))?")


def expression_type(sql_type: str) -> str | None:
    """A column's DuckDB type as an expression type; None when expressions cannot use it
    (JSON, STRUCT, MAP, INTERVAL ...)."""
    upper = sql_type.upper().strip()
    if upper.endswith("[]"):
        return "list"
    if _NUMERIC_TYPE.fullmatch(upper):
        return "number"
    if upper == "BOOLEAN":
        return "boolean"
    if upper == "DATE":
        return "date"
    if upper.startswith("TIMESTAMP"):
        return "timestamp"
    if upper == "VARCHAR":
        return "string"
    return None


def person_features_fields(ws: Workspace, table: str = "person_features") -> dict[str, str]:
    """The columns person_features really has (what SQL can bind), as expression types."""
    typed = {name: expression_type(data_type) for name, data_type in ws.columns(table)
             if name != "person_id"}
    return {name: kind for name, kind in typed.items() if kind is not None}


def event_types(tags: list[TagDef]) -> tuple[str, ...]:
    """Every event type the tags read, in rule order."""
    return tuple(dict.fromkeys(e for t in tags for e in t.events))


def events_scope_sql(tags: list[TagDef], as_of: dt.date) -> str:
    """Row filter for a pass: only the event types and days any of its tags can use."""
    parts = [f"e.ts < {ts_literal(as_of)}", events_in_sql(event_types(tags))]
    windows = [t.window_days for t in tags]
    if all(w is not None for w in windows):
        parts.append(f"e.ts >= {ts_literal(as_of - dt.timedelta(days=max(windows)))}")
    return " AND ".join(parts)
