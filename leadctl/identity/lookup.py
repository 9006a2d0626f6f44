"""Which person a query names: a phone, e-mail, WeChat id, ID card, device id, lead id
(also `source/lead_id`) or person id, with or without a prefix (`phone:`, `lead:` ...).

Used by every command that takes a person (portrait, explain, status, sale): one lookup,
one set of messages. Pure classification (`classify_query`) plus one SQL lookup; phone
numbers that are not plain CN mobiles go through the identity normaliser.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from leadctl import pii
from leadctl.errors import NotFound, UsageError
from leadctl.identity.history import ID_HEX, ID_PREFIX
from leadctl.identity.normalize import normalize_phone


class AmbiguousQuery(NotFound):
    """The query matched several persons; `candidates` lists them (exit 1)."""

    def __init__(self, message: str, candidates: list[dict]):
        super().__init__(message)
        self.candidates = candidates
        self.details = {"candidates": candidates}  # kept in the --json failure document


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
             "name": pii.shown("name", found.get(pid, {}).get("name"), reveal),
             "phone": pii.shown("phone", found.get(pid, {}).get("phone"), reveal),
             "city": found.get(pid, {}).get("city"),
             "lead_count": found.get(pid, {}).get("lead_count")} for pid in ids]
