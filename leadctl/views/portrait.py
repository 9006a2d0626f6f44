"""One person's portrait, looked up by phone, email, WeChat, ID card, device id,
lead id or person id.

Start-up matters here (support runs it while on the phone): this module imports
only the stdlib and `leadctl.pii`; phone formats other than a plain CN mobile
are handed to `leadctl.identity.normalize` (phonenumbers) lazily. Every read is
a point lookup by a key (identifier value, lead id, person id) on the published
state, cheap when the stages store rows ordered by that key (DuckDB zone maps
then skip all other row groups); nothing is computed that a stage has not
already stored, except a small-events fallback for the activity summary.
"""

from __future__ import annotations

import datetime as dt

from leadctl import pii
from leadctl.identity.lookup import (
    changed_after,
    masked_query,
    person_changes_sql,
    resolve_person,
)
from leadctl.routing.screens import locked_at, person_log, routing_state
from leadctl.sqlfn import round_sql
from leadctl.tagging.tables import stored_value
from leadctl.views.asof import screen_as_of
from leadctl.workspace import reading

MAX_LEADS = 100  # in the result; `lead_count` has the total
MAX_HISTORY = 5
ACTIVITY_WINDOW_DAYS = 30
ACTIVITY_SCAN_MAX_EVENTS = 200_000
CATEGORY_ORDER = ("value", "behaviour", "behavior", "preference", "preferences", "lifecycle",
                  "model", "strategy")
KEY_TAG_KINDS = ("tiers", "rfm")
# Tier levels by how good they are for sales, when the rules do not say.
_GOOD = {"high", "vip", "top", "hot", "a", "s", "高", "高价值", "重要价值", "important_value"}
_MID = {"medium", "mid", "middle", "warm", "b", "中", "中价值", "normal"}
_BAD = {"low", "cold", "none", "c", "d", "低", "低价值", "lost"}


def _one(ws, sql: str, params: list) -> dict | None:
    rows = ws.rows(sql, params)
    return rows[0] if rows else None


def portrait(db, query: str, *, reveal: bool = False, as_of: dt.date | None = None) -> dict:
    """`leadctl portrait`: one person's portrait by phone/email/WeChat/ID card/device/lead
    id/person id, from the published state. The library function of the command lives
    here, not in `api`, so a lookup loads only what it needs."""
    with reading(db) as ws:
        return build_portrait(ws, query, reveal=reveal, as_of=as_of)


def build_portrait(ws, query: str, *, reveal: bool = False, as_of: dt.date | None = None) -> dict:
    """Everything the portrait shows, as plain data (masked unless `reveal`), as of one
    date: `as_of`, else the last tag run's, else today (`leadctl.views.asof`)."""
    screen = screen_as_of(ws, as_of)
    as_of = screen.as_of
    person_id, matched_by = resolve_person(ws, query, reveal=reveal)
    person = _one(ws, "SELECT * FROM persons WHERE person_id = ?", [person_id]) or {}
    score = _one(ws, "SELECT score, grade, as_of FROM scores WHERE person_id = ?", [person_id])
    history = person_log(ws, person_id, MAX_HISTORY, screen.actions_until)
    owner = routing_state(ws, person_id, screen.actions_until, history,
                          rebuild=screen.routing_until is not None)
    leads, lead_count = _leads(ws, person_id)
    tags, groups = _tags(ws, person_id)
    locked_until = owner.get("locked_until") if owner else None
    result = {
        "person_id": person_id,
        "query": {"text": masked_query(query, matched_by[0], reveal), "matched_by": matched_by},
        "masked": not reveal,
        **screen.with_routing(owner["as_of"] if owner else None,
                              score=score["as_of"] if score else None,
                              identity=changed_after(ws, person_id, as_of)),
        "name": pii.shown("name", person.get("name"), reveal),
        "phone": pii.shown("phone", person.get("phone"), reveal),
        "email": pii.shown("email", person.get("email"), reveal),
        "wechat": pii.shown("wechat", person.get("wechat"), reveal),
        "id_card": pii.shown("id_card", person.get("id_card"), reveal),
        "device_id": pii.shown("device_id", person.get("device_id"), reveal),
        "city": person.get("city"),
        "province": person.get("province"),
        "first_seen": person.get("first_seen"),
        "last_seen": person.get("last_seen"),
        "lead_count": lead_count,
        "score": score["score"] if score else None,
        "grade": score["grade"] if score else None,
        "scored_as_of": score["as_of"] if score else None,
        "pool": owner.get("pool") if owner else None,
        "owner": owner.get("owner") if owner else None,
        "status": owner.get("status") if owner else None,
        "status_since": owner.get("status_since") if owner else None,
        "locked_until": locked_until,
        "locked": locked_at(ws, person_id, locked_until, as_of, screen.actions_until),
        "dormant": bool(owner and owner.get("dormant")),
        "routing_reason": owner.get("reason") if owner else None,
        "identifiers": _identifiers(person, reveal),
        "leads": [{k: v for k, v in lead.items() if k != "lead_key"} for lead in leads],
        "tags": tags,
        "tag_groups": groups,
        "activity": _activity(ws, person_id, as_of,
                              precomputed_ok=screen.as_of == screen.tags_as_of),
        "history": history,
    }
    # the latest MAX_HISTORY; the count says how many there are in all
    result["identity_history"], result["identity_history_count"] = _identity_history(
        ws, person_id, screen.actions_until)
    # a phone or e-mail typed into a lead's city or utm value or carried by a tag's value:
    # masked too
    for lead in result["leads"]:
        lead.update({k: pii.text_shown(lead.get(k), reveal) for k in FREE_TEXT_LEAD_FIELDS})
    result["tags"] = pii.text_shown(tags, reveal)
    for entry in (t for group in groups for t in group["tags"]):
        entry["value"], entry["previous"] = (pii.text_shown(entry["value"], reveal),
                                             pii.text_shown(entry["previous"], reveal))
    return result


# a lead's raw cells as typed (the golden record's city is an official name)
FREE_TEXT_LEAD_FIELDS = ("channel", "utm_source", "utm_medium", "utm_campaign", "utm_content",
                         "utm_term", "city")


def _leads(ws, person_id: str) -> tuple[list[dict], int]:
    """The person's most recent leads (at most MAX_LEADS) and how many it has in all."""
    keyed = ws.execute(
        "SELECT lead_key, count(*) OVER () FROM person_leads WHERE person_id = ? "
        f"ORDER BY lead_key DESC LIMIT {4 * MAX_LEADS}", [person_id]).fetchall()
    if not keyed:
        return [], 0
    columns = ("lead_key, lead_id, source, channel, utm_source, utm_medium, utm_campaign, "
               "utm_content, utm_term, city, created_at")
    # Point lookups (`lead_key = ?`) prune by zonemap; an IN list scans the table.
    lookups = " UNION ALL ".join(f"SELECT {columns} FROM leads WHERE lead_key = ?"
                                 for _ in keyed)
    rows = ws.rows(
        f"SELECT * FROM ({lookups}) "
        f"ORDER BY created_at DESC NULLS LAST, lead_key DESC LIMIT {MAX_LEADS}",
        [key for key, _ in keyed])
    return rows, int(keyed[0][1])


def _identifiers(person: dict, reveal: bool) -> list[dict]:
    """Every linking identifier of the person, from its golden record (phones and emails
    lists, golden WeChat / ID card / device id): no scan of lead_identifiers, whose row
    order serves lookups by value."""
    out = []
    for kind, many in (("phone", "phones"), ("email", "emails"), ("wechat", None),
                       ("id_card", None), ("device_id", None)):
        values = [person.get(kind), *(person.get(many) or [] if many else [])]
        out += [{"type": kind, "value": pii.shown(kind, value, reveal)}
                for value in dict.fromkeys(v for v in values if v)]
    return out


def _tags(ws, person_id: str) -> tuple[dict, list[dict]]:
    rows = ws.rows("SELECT tag, value, as_of, run_id FROM tags WHERE person_id = ? ORDER BY tag",
                   [person_id])
    if not rows:
        return {}, []
    values = {r["tag"]: stored_value(r["value"]) for r in rows}
    last_run = max((r["run_id"] for r in rows if r["run_id"] is not None), default=None)
    changes = _tag_changes(ws, person_id, last_run)
    # a value the latest run took away is a change too: shown as no value, was …
    gone = [tag for tag in changes if tag not in values]
    definitions = _tag_definitions(ws, [*values, *gone])
    groups: dict[str, list[dict]] = {}
    for tag, value in [*values.items(), *((tag, None) for tag in gone)]:
        definition = definitions.get(tag, {})
        kind = definition.get("kind")
        tiered = kind in KEY_TAG_KINDS or bool(definition.get("levels"))
        entry = {"tag": tag, "value": value, "kind": kind,
                 "description": definition.get("description"),
                 "key": bool(definition.get("key") or definition.get("highlight") or tiered),
                 "tone": _tone(value, definition) if tiered else None,
                 "changed": tag in changes, "previous": changes.get(tag),
                 "_position": definition.get("position", len(definitions) + len(groups))}
        groups.setdefault(definition.get("category") or "other", []).append(entry)
    # Categories in the order the rules define them (first tag's position), `other` last;
    # within one, key tags first so truncation never hides them.
    def category_rank(category: str) -> tuple:
        known = CATEGORY_ORDER.index(category) if category in CATEGORY_ORDER else 99
        first = min(t["_position"] for t in groups[category])
        return (category == "other", first if definitions else known, category)

    group_list = []
    for category in sorted(groups, key=category_rank):
        entries = sorted(groups[category], key=lambda t: (not t["key"], t["_position"], t["tag"]))
        for entry in entries:
            del entry["_position"]
        group_list.append({"category": category, "tags": entries})
    return values, group_list


def _tag_changes(ws, person_id: str, last_run) -> dict:
    """Tags whose value changed in the latest tag run (not on the very first run, where
    every value is new)."""
    if last_run is None:
        return {}
    rows = ws.execute(
        "SELECT tag, old_value, EXISTS (SELECT 1 FROM tag_history WHERE run_id < ?) "
        "FROM tag_history WHERE person_id = ? AND run_id = ? "
        "AND old_value IS DISTINCT FROM new_value", [last_run, person_id, last_run]).fetchall()
    return {tag: stored_value(old) for tag, old, earlier in rows if earlier}


def _tag_definitions(ws, tags: list[str]) -> dict[str, dict]:
    if not tags:
        return {}
    marks = ", ".join("?" for _ in tags)
    rows = ws.rows(f"SELECT * FROM tag_definitions WHERE tag IN ({marks})", tags)
    return {r["tag"]: {k: stored_value(v) if k == "levels" and isinstance(v, str) else v
                       for k, v in r.items()} for r in rows}


def _tone(value, definition: dict) -> str | None:
    """good / mid / bad for a tier value: by its rank in the rule's levels, else by its name."""
    levels = definition.get("levels")
    if isinstance(levels, list) and value in levels and len(levels) > 1:
        rank = levels.index(value) / (len(levels) - 1)
        return "good" if rank == 0 else "bad" if rank == 1 else "mid"
    text = str(value).strip().lower()
    if text in _GOOD or text.endswith("high") or text.startswith("high"):
        return "good"
    if text in _MID or text.startswith("med") or text.startswith("mid"):
        return "mid"
    if text in _BAD or text.endswith("low") or text.startswith("low"):
        return "bad"
    return None


def _activity(ws, person_id: str, as_of: dt.date, *, precomputed_ok: bool = True) -> dict:
    """Per event type, as of `as_of`: events and amount in the 30 whole days before it,
    count and last time of all events before it.

    Read from the precomputed `person_activity` when a stage provides it (taken to be as
    of the tags: only when `precomputed_ok`, i.e. the screen is as of them). Otherwise the
    events table is scanned only while it is small: matching a person's subjects in
    10M events costs ~0.3 s, more than the whole lookup may take.
    """
    since = as_of - dt.timedelta(days=ACTIVITY_WINDOW_DAYS)
    result = {"window_days": ACTIVITY_WINDOW_DAYS, "since": since.isoformat(),
              "until": as_of.isoformat(), "source": None, "events": []}
    rows = _precomputed_activity(ws, person_id) if precomputed_ok else None
    if rows is not None:
        result["source"] = "person_activity"
    elif ws.scalar("SELECT count(*) FROM events") > ACTIVITY_SCAN_MAX_EVENTS:
        result["source"] = "skipped"
        result["note"] = ("events not summarised: no person_activity table as of "
                          f"{as_of.isoformat()} and too many events to scan during a lookup")
        return result
    else:
        result["source"] = "events"
        rows = _activity_from_events(ws, person_id, as_of)
    result["events"] = [{"event_type": r["event_type"], "total": r["total"],
                         "last_30d": r["recent"], "amount_30d": r["recent_amount"],
                         "last_at": r["last_ts"]} for r in rows]
    return result


def _precomputed_activity(ws, person_id: str) -> list[dict] | None:
    """The person's rows of `person_activity`; None when no stage provides that table."""
    try:
        return ws.rows(
            "SELECT event_type, events_total AS total, events_30d AS recent, "
            f"{round_sql('amount_30d', 2)} AS recent_amount, last_at AS last_ts "
            "FROM person_activity "
            "WHERE person_id = ? ORDER BY recent DESC, total DESC, event_type", [person_id])
    except duckdb_catalog_error():  # no such table (the stages do not provide it yet)
        return None


def duckdb_catalog_error() -> type[Exception]:
    import duckdb  # already loaded by the open workspace

    return duckdb.CatalogException


def _activity_from_events(ws, person_id: str, as_of: dt.date) -> list[dict]:
    subjects = [r[0] for r in ws.execute(
        "SELECT subject FROM subject_persons WHERE person_id = ?", [person_id]).fetchall()]
    if not subjects:
        return []
    marks = ", ".join("?" for _ in subjects)
    since = as_of - dt.timedelta(days=ACTIVITY_WINDOW_DAYS)
    return ws.rows(  # amounts rounded to cents: no float noise from the sum
        f"SELECT event_type, total, recent, {round_sql('amount', 2)} AS recent_amount, "
        "last_ts FROM (SELECT event_type, count(*) AS total, "
        "count(*) FILTER (WHERE ts >= ?) AS recent, "
        "sum(amount) FILTER (WHERE ts >= ?) AS amount, max(ts) AS last_ts "
        f"FROM events WHERE subject IN ({marks}) AND ts < ? GROUP BY event_type) "
        "ORDER BY recent DESC, total DESC, event_type",
        [since, since, *subjects, as_of])


def _identity_history(ws, person_id: str, until: dt.date) -> tuple[list[dict], int]:
    """The person's latest merges and splits dated by `until` (at most MAX_HISTORY; those
    of a later night were not there yet) and how many it has by then
    (`person_changes_sql`: those recorded under an id a later merge retired into it too,
    as its routing log; a split row is the part that left (`person_id`), so the part that
    kept the id finds it by its `old_person_ids`)."""
    rows = ws.rows(
        "SELECT * EXCLUDE (day), count(*) OVER () AS total "
        f"FROM ({person_changes_sql()}) WHERE day IS NULL OR day <= ? "
        # rows of one run in a fixed order, whatever order they were stored in
        f"ORDER BY run_id DESC, changed_at DESC, change, person_id, old_person_ids, leads "
        f"LIMIT {MAX_HISTORY}", [person_id] * 3 + [until])
    total = rows[0]["total"] if rows else 0
    return [{k: v for k, v in row.items() if k != "total"} for row in rows], total
