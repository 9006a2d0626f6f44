"""SQL builders of `leadctl report ab` (pure: inputs → SQL text).

Every members query has the columns (member, person_id, variant, start): `member` is
unique per experiment (the person id as assigned), `person_id` the current person (what
events resolve to), `start` the moment conversions count from.
"""

from __future__ import annotations

import datetime as dt
import re

from leadctl.errors import UsageError
from leadctl.sqltext import date_literal, ident, literal, ts_literal

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
# events columns a variant may come from besides the attributes JSON
EVENT_COLUMNS = {"category": "e.category", "source": "e.source",
                 "amount": "CAST(e.amount AS VARCHAR)"}
# leads columns a variant may come from (`lead.<column>`) besides the attributes JSON
LEAD_COLUMNS = ("source", "channel", "utm_source", "utm_medium", "utm_campaign", "utm_content",
                "utm_term", "city", "province")
LEAD_PREFIX = "lead."


def audience_members_sql(name: str, start: dt.date, *, anchored: bool = True) -> str:
    """The exported membership, each member as the person holding its anchor now (its
    earliest lead at the export: merges and splits follow the lead, not the person id,
    which a split may give to another human); a member without one (recorded before
    anchors, or its lead gone) → its id, or the person a later merge retired it into.
    `anchored`: whether experiment_members has the anchor columns (a workspace made before
    them and only read since has not)."""
    if not anchored:
        return (f"SELECT m.person_id AS member, coalesce(a.person_id, m.person_id) AS person_id, "
                f"m.variant, {ts_literal(start)} AS start\n"
                "FROM experiment_members m\n"
                "LEFT JOIN person_aliases a ON a.old_person_id = m.person_id\n"
                f"WHERE m.name = {literal(name)}")
    return (f"SELECT m.person_id AS member, "
            f"coalesce(pl.person_id, a.person_id, m.person_id) AS person_id, "
            f"m.variant, {ts_literal(start)} AS start\n"
            "FROM experiment_members m\n"
            "LEFT JOIN leads l ON l.source = m.anchor_source AND l.lead_id = m.anchor_lead_id\n"
            "LEFT JOIN person_leads pl ON pl.lead_key = l.lead_key\n"
            "LEFT JOIN person_aliases a ON a.old_person_id = m.person_id\n"
            f"WHERE m.name = {literal(name)}")


def persons_in_several_variants_sql(members: str) -> str:
    """How many current persons hold members of more than one variant (a merge joined
    members of different arms): they count in each."""
    return (f"SELECT count(*) FROM (SELECT person_id FROM ({members}) m "
            "GROUP BY person_id HAVING count(DISTINCT variant) > 1)")


def check_attribute(text: str) -> tuple[str, str]:
    """`utm_content` (an event attribute) or `lead.utm_content` (a lead column or
    attribute) → ("event" | "lead", key)."""
    kind, key = ("lead", text[len(LEAD_PREFIX):]) if text.startswith(LEAD_PREFIX) \
        else ("event", text)
    if not _KEY.fullmatch(key):
        raise UsageError(f"--variant-from must name an attribute like utm_content or "
                         f"lead.utm_content, not {text!r}")
    return kind, key


def _json_key(column: str, key: str) -> str:
    return f"json_extract_string({column}, {literal('$.' + key)})"


def attribute_members_sql(attribute: str, *, goal: str, as_of: dt.date,
                          entry: str | None = None, since: dt.date | None = None) -> str:
    """Persons whose entry carries `attribute`; variant = its value at their first such
    entry, start = that entry's time. Event attributes: the entry is the first event of
    type `entry` carrying it (default: of any type but the goal); `lead.X`: the person's
    first lead (by created_at) carrying it. Entries from `since`, before `as_of`."""
    kind, key = check_attribute(attribute)
    if kind == "lead":
        value = f"l.{ident(key)}" if key in LEAD_COLUMNS else _json_key("l.attributes", key)
        where = [f"{value} IS NOT NULL", f"{value} <> ''", "l.created_at IS NOT NULL",
                 f"l.created_at < {date_literal(as_of)}"]
        if since is not None:
            where.append(f"l.created_at >= {date_literal(since)}")
        entries = (f"SELECT pl.person_id, {value} AS variant, l.created_at AS start,\n"
                   "  row_number() OVER (PARTITION BY pl.person_id "
                   "ORDER BY l.created_at, l.lead_key) AS n\n"
                   "FROM leads l JOIN person_leads pl ON pl.lead_key = l.lead_key\n"
                   f"WHERE pl.person_id IS NOT NULL AND {' AND '.join(where)}")
    else:
        value = EVENT_COLUMNS.get(key) or _json_key("e.attributes", key)
        where = [f"{value} IS NOT NULL", f"{value} <> ''",
                 f"e.ts < {date_literal(as_of)}",
                 (f"e.event_type = {literal(entry)}" if entry is not None
                  else f"e.event_type <> {literal(goal)}")]
        if since is not None:
            where.append(f"e.ts >= {date_literal(since)}")
        entries = (f"SELECT sp.person_id, {value} AS variant, e.ts AS start,\n"
                   "  row_number() OVER (PARTITION BY sp.person_id "
                   "ORDER BY e.ts, e.file_id, e.row_number) AS n\n"
                   "FROM events e JOIN subject_persons sp ON sp.subject = e.subject\n"
                   f"WHERE sp.person_id IS NOT NULL AND {' AND '.join(where)}")
    return (f"SELECT person_id AS member, person_id, variant, start\n"
            f"FROM ({entries}) AS entries WHERE n = 1")


def ab_counts_sql(members_sql: str, *, goal: str, window_days: int, as_of: dt.date) -> str:
    """Per variant: persons, converted (a goal event of the person in
    [start, start + window) and before the as-of day) and open (window not over by as-of).
    A person counts once per variant: members of one arm a later merge joined are one
    person (their earliest start); members of different arms count in each."""
    stop = ts_literal(as_of)
    window = f"INTERVAL {int(window_days)} DAY"
    return f"""
        WITH members AS ({members_sql}),
        units AS (
            SELECT variant, person_id, min(start) AS start
            FROM members GROUP BY variant, person_id),
        goals AS (
            SELECT sp.person_id, e.ts
            FROM events e JOIN subject_persons sp ON sp.subject = e.subject
            WHERE e.event_type = {literal(goal)} AND sp.person_id IS NOT NULL),
        hits AS (
            SELECT DISTINCT u.variant, u.person_id
            FROM units u JOIN goals g ON g.person_id = u.person_id
            WHERE g.ts >= u.start AND g.ts < u.start + {window} AND g.ts < {stop})
        SELECT u.variant, count(*) AS persons, count(h.person_id) AS converted,
               count(*) FILTER (WHERE u.start + {window} > {stop}) AS open
        FROM units u LEFT JOIN hits h ON h.variant = u.variant AND h.person_id = u.person_id
        GROUP BY u.variant
        ORDER BY u.variant"""


def goal_events_sql(goal: str) -> str:
    return f"SELECT count(*) FROM events WHERE event_type = {literal(goal)}"
