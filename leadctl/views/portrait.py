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
import json
import re
from dataclasses import dataclass

from leadctl import pii
from leadctl.errors import NotFound, UsageError
from leadctl.identity.history import ID_HEX, ID_PREFIX
from leadctl.identity.normalize import normalize_phone
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


class AmbiguousQuery(NotFound):
    """The query matched several persons; `candidates` lists them (exit 1)."""

    def __init__(self, message: str, candidates: list[dict]):
        super().__init__(message)
        self.candidates = candidates


# -- query → lookups (pure) ----------------------------------------------------------------

@dataclass(frozen=True)
class Lookup:
    kind: str  # phone | email | wechat | id_card | device_id | lead_id | person_id
    value: str


IDENTIFIER_KINDS = ("phone", "email", "wechat", "id_card", "device_id")
PREFIXES = {
    "phone": "phone", "tel": "phone", "mobile": "phone", "email": "email", "mail": "email",
    "wechat": "wechat", "wx": "wechat", "id_card": "id_card", "idcard": "id_card",
    "device": "device_id", "device_id": "device_id", "lead": "lead_id", "lead_id": "lead_id",
    "person": "person_id", "person_id": "person_id",
}
_FULL_WIDTH = {**{0xFF10 + i: str(i) for i in range(10)}, 0xFF0B: "+", 0xFF0D: "-",
               0x3000: " ", 0xFF08: "(", 0xFF09: ")", 0xFF20: "@"}
_PHONE_JUNK = re.compile(r"[\s\-().]")
_CN_MOBILE = re.compile(r"1[3-9][0-9]{9}")
_PHONE_LIKE = re.compile(r"\+?[0-9]{6,15}")
_ID_CARD = re.compile(r"[1-9][0-9]{16}[0-9Xx]|[1-9][0-9]{14}")
_WECHAT = re.compile(r"[A-Za-z][-_A-Za-z0-9]{5,19}")
_DEVICE = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def looks_like_person_id(text: str) -> bool:
    return re.fullmatch(re.escape(ID_PREFIX) + "[0-9a-f]{" + str(ID_HEX) + "}",
                        text.strip()) is not None


def normalize_cn_mobile(text: str) -> str | None:
    """`138 1234 5678`, `+86-138…`, `0086…`, `(+86)…`, full-width, `….0` → `+8613812345678`."""
    s = text.translate(_FULL_WIDTH).strip()
    if s.endswith(".0"):
        s = s[:-2]
    s = _PHONE_JUNK.sub("", s)
    for prefix in ("+86", "0086"):
        if s.startswith(prefix):
            s = s[len(prefix):]
            break
    else:
        if len(s) == 13 and s.startswith("86"):
            s = s[2:]
    return "+86" + s if _CN_MOBILE.fullmatch(s) else None


def id_card_checksum_ok(value: str) -> bool:
    if len(value) != 18:
        return len(value) == 15 and value.isdigit()
    total = sum(int(ch) * w for ch, w in zip(value[:17], _ID_WEIGHTS, strict=True))
    return "10X98765432"[total % 11] == value[17].upper()


def _normalize_other_phone(text: str) -> str | None:
    """Landlines, foreign numbers: the identity normaliser (phonenumbers, imported by it
    only now)."""
    try:
        return normalize_phone(text)
    except Exception:  # a value it cannot parse is simply not a phone
        return None


def classify_query(text: str) -> list[Lookup]:
    """What a query may be, most specific first; lead id and person id are always tried."""
    query = text.strip()
    head, sep, rest = query.partition(":")
    if sep and head.lower() in PREFIXES and rest.strip():
        kind, value = PREFIXES[head.lower()], rest.strip()
        if kind == "phone":
            value = normalize_cn_mobile(value) or _normalize_other_phone(value) or value
        return [Lookup(kind, _normalize_identifier(kind, value))]
    lookups: list[Lookup] = []
    plain = query.translate(_FULL_WIDTH).strip()
    if "@" in plain and " " not in plain:
        lookups.append(Lookup("email", plain.lower()))
    elif _ID_CARD.fullmatch(plain):
        lookups.append(Lookup("id_card", plain.upper()))
    phone = normalize_cn_mobile(plain)
    if phone is None and _PHONE_LIKE.fullmatch(_PHONE_JUNK.sub("", plain.removesuffix(".0"))) \
            and not _ID_CARD.fullmatch(plain):
        phone = _normalize_other_phone(plain)
    if phone:
        lookups.append(Lookup("phone", phone))
    if _WECHAT.fullmatch(plain):
        lookups.append(Lookup("wechat", plain.lower()))
    if _DEVICE.fullmatch(plain):
        lookups.append(Lookup("device_id", plain.lower()))
    lookups += [Lookup("lead_id", query), Lookup("person_id", query)]
    return lookups


def _normalize_identifier(kind: str, value: str) -> str:
    if kind in ("email", "wechat", "device_id"):
        return value.lower()
    if kind == "id_card":
        return value.upper()
    return value


def describe_lookup(lookup: Lookup) -> str:
    """`phone 138****5678`: a lookup as shown in messages (masked)."""
    return f"{lookup.kind} {pii.mask(lookup.kind, lookup.value)}"


def lookup_sql(lookups: list[Lookup]) -> tuple[str, list]:
    """Persons hit by any of the lookups: rows (matched_by, person_id, lead_key)."""
    parts: list[str] = []
    params: list = []
    for lookup in lookups:
        if lookup.kind in IDENTIFIER_KINDS:
            parts.append("SELECT ? AS matched_by, lead_key, CAST(NULL AS VARCHAR) AS person_id "
                         "FROM lead_identifiers WHERE id_type = ? AND value = ?")
            params += [lookup.kind, lookup.kind, lookup.value]
        elif lookup.kind == "lead_id":
            parts.append("SELECT 'lead_id' AS matched_by, lead_key, "
                         "CAST(NULL AS VARCHAR) AS person_id FROM leads WHERE lead_id = ?")
            params.append(lookup.value)
        elif lookup.kind == "person_id":
            parts.append("SELECT 'person_id' AS matched_by, CAST(NULL AS BIGINT) AS lead_key, "
                         "person_id FROM persons WHERE person_id = ?")
            params.append(lookup.value)
    hits = "\n  UNION ALL ".join(parts)
    sql = (f"WITH hits AS (\n  {hits})\n"
           "SELECT h.matched_by, coalesce(h.person_id, pl.person_id) AS person_id, h.lead_key\n"
           "FROM hits h LEFT JOIN person_leads pl ON pl.lead_key = h.lead_key")
    return sql, params


# -- reading one person --------------------------------------------------------------------

def resolve_person(ws, query: str, *, reveal: bool = False) -> tuple[str, list[str]]:
    """The one person a query names, with how it matched; NotFound / AmbiguousQuery else."""
    if not query.strip():
        raise UsageError("the query is empty: give a phone, email, WeChat id, ID card, "
                         "lead id or person id")
    lookups = classify_query(query)
    if lookups[0].kind == "wechat" and looks_like_person_id(query):
        # A person id (P + 12 hex) also looks like a WeChat id; try the cheap exact
        # person lookup before scanning identifiers.
        found = ws.execute("SELECT person_id FROM persons WHERE person_id = ?",
                           [query.strip()]).fetchone()
        if found:
            return found[0], ["person_id"]
    sql, params = lookup_sql(lookups)
    by_person: dict[str, list[str]] = {}
    unresolved: list[str] = []
    for matched_by, person_id, _lead_key in ws.execute(sql, params).fetchall():
        if person_id is None:
            unresolved.append(matched_by)
            continue
        kinds = by_person.setdefault(person_id, [])
        if matched_by not in kinds:
            kinds.append(matched_by)
    if len(by_person) == 1:
        return next(iter(by_person.items()))
    if by_person:
        raise AmbiguousQuery(
            f"{query!r} matches {len(by_person)} persons; ask again with a person id "
            "(or a prefix such as lead:, phone:, person:)",
            candidates(ws, by_person, reveal=reveal))
    merged = _merged_into(ws, lookups)
    if merged:
        return merged, ["merged_person_id"]
    shown = masked_query(query, next((lk.kind for lk in lookups), ""), reveal)
    if unresolved:
        raise NotFound(f"{shown!r} was ingested but is not linked to a person yet: "
                       "run `leadctl resolve` (or the nightly `leadctl run`)")
    tried = ", ".join([describe_lookup(lk) for lk in lookups if lk.kind in IDENTIFIER_KINDS]
                      + [lk.kind.replace("_", " ") for lk in lookups
                         if lk.kind not in IDENTIFIER_KINDS])
    card = next((lk for lk in lookups if lk.kind == "id_card"), None)
    hint = ("; the ID card checksum is wrong (a typo?)"
            if card and not id_card_checksum_ok(card.value) else "")
    raise NotFound(f"no lead or person matches {shown!r} (tried {tried}){hint}")


def masked_query(query: str, kind: str, reveal: bool = False) -> str:
    """The query as echoed back: masked when it is personal data."""
    return query if reveal or kind not in IDENTIFIER_KINDS else pii.mask(kind, query.strip())


def _merged_into(ws, lookups: list[Lookup]) -> str | None:
    """An old person id that a later resolve merged into another person (person_aliases)."""
    person = next((lk.value for lk in lookups if lk.kind == "person_id"), None)
    if person is None:
        return None
    row = ws.execute("SELECT person_id FROM person_aliases WHERE old_person_id = ?",
                     [person]).fetchone()
    return row[0] if row else None


def candidates(ws, by_person: dict[str, list[str]], *, reveal: bool = False) -> list[dict]:
    ids = sorted(by_person)
    marks = ", ".join("?" for _ in ids)
    rows = ws.rows(f"SELECT person_id, name, phone, city, lead_count FROM persons "
                   f"WHERE person_id IN ({marks}) ORDER BY person_id", ids)
    found = {r["person_id"]: r for r in rows}
    return [{"person_id": pid, "matched_by": by_person[pid],
             "name": _pii("name", found.get(pid, {}).get("name"), reveal),
             "phone": _pii("phone", found.get(pid, {}).get("phone"), reveal),
             "city": found.get(pid, {}).get("city"),
             "lead_count": found.get(pid, {}).get("lead_count")} for pid in ids]


def _pii(kind: str, value, reveal: bool):
    if reveal or value is None:
        return value
    if isinstance(value, list):
        return pii.mask_values(kind, value)
    return pii.mask(kind, str(value))


def _one(ws, sql: str, params: list) -> dict | None:
    rows = ws.rows(sql, params)
    return rows[0] if rows else None


def _json_value(text):
    if text is None:
        return None
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return text


def portrait(db, query: str, *, reveal: bool = False, as_of: dt.date | None = None) -> dict:
    """`leadctl portrait`: one person's portrait by phone/email/WeChat/ID card/device/lead
    id/person id, from the published state. The library function of the command lives
    here, not in `api`, so a lookup loads only what it needs."""
    with reading(db) as ws:
        return build_portrait(ws, query, reveal=reveal, as_of=as_of)


def build_portrait(ws, query: str, *, reveal: bool = False, as_of: dt.date | None = None) -> dict:
    """Everything the portrait shows, as plain data (masked unless `reveal`)."""
    as_of = as_of or dt.date.today()
    person_id, matched_by = resolve_person(ws, query, reveal=reveal)
    person = _one(ws, "SELECT * FROM persons WHERE person_id = ?", [person_id]) or {}
    score = _one(ws, "SELECT score, grade, as_of FROM scores WHERE person_id = ?", [person_id])
    owner = _one(ws, "SELECT * FROM ownership WHERE person_id = ?", [person_id])
    leads, lead_count = _leads(ws, person_id)
    tags, groups, tags_as_of = _tags(ws, person_id)
    locked_until = owner.get("locked_until") if owner else None
    result = {
        "person_id": person_id,
        "query": {"text": masked_query(query, matched_by[0], reveal), "matched_by": matched_by},
        "masked": not reveal,
        "as_of": as_of.isoformat(),
        "name": _pii("name", person.get("name"), reveal),
        "phone": _pii("phone", person.get("phone"), reveal),
        "email": _pii("email", person.get("email"), reveal),
        "wechat": _pii("wechat", person.get("wechat"), reveal),
        "id_card": _pii("id_card", person.get("id_card"), reveal),
        "device_id": _pii("device_id", person.get("device_id"), reveal),
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
        "locked": bool(locked_until and locked_until >= as_of),
        "dormant": bool(owner and owner.get("dormant")),
        "routing_reason": owner.get("reason") if owner else None,
        "identifiers": _identifiers(person, reveal),
        "leads": [{k: v for k, v in lead.items() if k != "lead_key"} for lead in leads],
        "tags": tags,
        "tags_as_of": tags_as_of,
        "tag_groups": groups,
        "activity": _activity(ws, person_id, as_of),
        "history": _history(ws, person_id),
        "identity_history": _identity_history(ws, person_id),
    }
    return result


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
        out += [{"type": kind, "value": _pii(kind, value, reveal)}
                for value in dict.fromkeys(v for v in values if v)]
    return out


def _tags(ws, person_id: str) -> tuple[dict, list[dict], object]:
    rows = ws.rows("SELECT tag, value, as_of, run_id FROM tags WHERE person_id = ? ORDER BY tag",
                   [person_id])
    if not rows:
        return {}, [], None
    values = {r["tag"]: _json_value(r["value"]) for r in rows}
    last_run = max((r["run_id"] for r in rows if r["run_id"] is not None), default=None)
    changes = _tag_changes(ws, person_id, last_run)
    definitions = _tag_definitions(ws, list(values))
    groups: dict[str, list[dict]] = {}
    for tag, value in values.items():
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
    return values, group_list, max((r["as_of"] for r in rows if r["as_of"]), default=None)


def _tag_changes(ws, person_id: str, last_run) -> dict:
    """Tags whose value changed in the latest tag run (not on the very first run, where
    every value is new)."""
    if last_run is None:
        return {}
    rows = ws.execute(
        "SELECT tag, old_value, EXISTS (SELECT 1 FROM tag_history WHERE run_id < ?) "
        "FROM tag_history WHERE person_id = ? AND run_id = ? "
        "AND old_value IS DISTINCT FROM new_value", [last_run, person_id, last_run]).fetchall()
    return {tag: _json_value(old) for tag, old, earlier in rows if earlier}


def _tag_definitions(ws, tags: list[str]) -> dict[str, dict]:
    if not tags:
        return {}
    marks = ", ".join("?" for _ in tags)
    rows = ws.rows(f"SELECT * FROM tag_definitions WHERE tag IN ({marks})", tags)
    return {r["tag"]: {k: _json_value(v) if k == "levels" and isinstance(v, str) else v
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


def _activity(ws, person_id: str, as_of: dt.date) -> dict:
    """Per event type: events and amount in the last 30 whole days, all-time count, last time.

    Read from the precomputed `person_activity` when a stage provides it. Otherwise the
    events table is scanned only while it is small: matching a person's subjects in
    10M events costs ~0.3 s, more than the whole lookup may take.
    """
    result = {"window_days": ACTIVITY_WINDOW_DAYS, "source": None, "events": []}
    try:
        rows = ws.rows(
            "SELECT event_type, events_total AS total, events_30d AS recent, "
            "amount_30d AS recent_amount, last_at AS last_ts FROM person_activity "
            "WHERE person_id = ? ORDER BY recent DESC, total DESC, event_type", [person_id])
        result["source"] = "person_activity"
    except duckdb_catalog_error():  # no such table: the stages do not provide it (yet)
        if ws.scalar("SELECT count(*) FROM events") > ACTIVITY_SCAN_MAX_EVENTS:
            result["source"] = "skipped"
            result["note"] = ("events not summarised: no person_activity table and too many "
                              "events to scan during a lookup")
            return result
        result["source"] = "events"
        rows = _activity_from_events(ws, person_id, as_of)
    result["events"] = [{"event_type": r["event_type"], "total": r["total"],
                         "last_30d": r["recent"], "amount_30d": r["recent_amount"],
                         "last_at": r["last_ts"]} for r in rows]
    return result


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
    return ws.rows(
        "SELECT event_type, count(*) AS total, "
        "count(*) FILTER (WHERE ts >= ?) AS recent, "
        "sum(amount) FILTER (WHERE ts >= ?) AS recent_amount, max(ts) AS last_ts "
        f"FROM events WHERE subject IN ({marks}) AND ts < ? "
        "GROUP BY event_type ORDER BY recent DESC, total DESC, event_type",
        [since, since, *subjects, as_of])


def _history(ws, person_id: str) -> list[dict]:
    return ws.rows(
        "SELECT logged_at, as_of, old_pool, new_pool, old_owner, new_owner, old_status, "
        "new_status, rule, reason FROM assignments WHERE person_id = ? "
        f"ORDER BY logged_at DESC, run_id DESC LIMIT {MAX_HISTORY}", [person_id])


def _identity_history(ws, person_id: str) -> list[dict]:
    return ws.rows(
        "SELECT run_id, changed_at, change, old_person_ids, leads, reason FROM identity_history "
        f"WHERE person_id = ? ORDER BY run_id DESC, changed_at DESC LIMIT {MAX_HISTORY}",
        [person_id])
