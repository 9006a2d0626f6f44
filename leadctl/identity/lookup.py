"""Which person a query names: a phone, e-mail, WeChat id, ID card, device id, lead id
(also `source/lead_id` or `source:lead_id`, as explain prints it) or person id, with or
without a prefix (`phone:`, `lead:` ...).

Used by every command that takes a person (portrait, explain, status, sale): one lookup,
one set of messages. Pure classification (`classify_query`) plus set-based SQL: exact
point lookups first (cheap on the published state); only when no lead or person id
matches exactly are they compared case-insensitively (`ag300001` finds `AG300001`).
Phone numbers that are not plain CN mobiles go through the identity normaliser.

A value that does not link (blocked, or shared by more records than the cap) is reported
as such, not as several candidates. Every message echoes the query masked like the
portrait shows it (`138****5678`, `z***@qq.com`) unless `--reveal`.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from leadctl import pii
from leadctl.errors import NotFound, UsageError
from leadctl.identity.history import ID_HEX, ID_PREFIX, lead_derived_id_sql
from leadctl.identity.normalize import (
    FULL_WIDTH_TABLE,
    ascii_lower,
    clean_phone,
    cn_mobile_national,
    id_card_check_digit,
    normalize_phone,
)
from leadctl.identity.tables import IDENTITY_STATE_KEY
from leadctl.sqltext import date_literal, meta_value_sql


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
    source: str | None = None  # lead_id only: `source/lead_id`


IDENTIFIER_KINDS = ("phone", "email", "wechat", "id_card", "device_id")
ID_KINDS = ("lead_id", "person_id")
PREFIXES = {
    "phone": "phone", "tel": "phone", "mobile": "phone", "email": "email", "mail": "email",
    "wechat": "wechat", "wx": "wechat", "id_card": "id_card", "idcard": "id_card",
    "device": "device_id", "device_id": "device_id", "lead": "lead_id", "lead_id": "lead_id",
    "person": "person_id", "person_id": "person_id",
}
_CN_MOBILE = re.compile(r"1[3-9][0-9]{9}")
_PHONE_LIKE = re.compile(r"\+?[0-9]{6,15}")
_ID_CARD = re.compile(r"[1-9][0-9]{16}[0-9Xx]|[1-9][0-9]{14}")
_WECHAT = re.compile(r"[A-Za-z][-_A-Za-z0-9]{5,19}")
_DEVICE = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")
# Another token long enough to be a device id resolve keeps (a 16-hex Android id, a
# vendor id, a MAC address `3C:22:FB:12:34:56`, a braced GUID `{…}`, a dotted id …);
# shorter ones are WeChat ids or typos, not looked up as devices too.
_DEVICE_LIKE = re.compile(r"(?=.*[0-9])[-_.:{}A-Za-z0-9]{16,64}")
_PERSON_ID = re.compile(re.escape(ID_PREFIX) + "[0-9a-f]{" + str(ID_HEX) + "}", re.IGNORECASE)


def id_card_key(text: str) -> str | None:
    """An ID card as resolve stores it: spaces dropped, upper case, a 15-digit (pre-1999)
    one upgraded to 18 digits ('19' + its check digit); None when it is not one."""
    card = text.replace(" ", "").upper()
    if not _ID_CARD.fullmatch(card):
        return None
    if len(card) == 15:
        first17 = card[:6] + "19" + card[6:]
        return first17 + id_card_check_digit(first17)
    return card


def looks_like_person_id(text: str) -> bool:
    """`P` + 12 hex digits, in any case (`pD312707A6BEC`)."""
    return _PERSON_ID.fullmatch(text.strip()) is not None


def canonical_person_id(text: str) -> str:
    """A person-id-shaped query in the stored form (`P` + lower-case hex); else as given."""
    text = text.strip()
    return ID_PREFIX + text[len(ID_PREFIX):].lower() if looks_like_person_id(text) else text


def source_splits(text: str) -> list[tuple[str, str]]:
    """The (source, lead id) pairs a query may name a lead by, as explain prints one:
    `source/lead_id` split at each `/` (a lead id `2026/001`, a source of any name such as
    `leads (1)`: which split is a stored source's lead decides), and `source:lead_id` split
    at its first `:` (a source without `:` or `/`, the lead id any text: `s1:L 7`). A
    lookup, not a guess: only a stored source's lead matches (`source_lead_sql`)."""
    text = text.strip()
    splits = [(text[:at], text[at + 1:]) for at, char in enumerate(text)
              if char == "/" and 0 < at < len(text) - 1]
    head, sep, rest = text.partition(":")
    if sep and head and rest and "/" not in head:
        splits.append((head, rest))
    return list(dict.fromkeys(splits))


def source_lead_sql(splits: list[tuple[str, str]], *, fold_case: bool = False,
                    alias: str = "") -> tuple[str, list]:
    """A condition on `leads` (as `alias`): the lead is one of `splits` (source, lead id),
    in one scan; case-insensitively with `fold_case`. `FALSE` for none."""
    if not splits:
        return "FALSE", []
    source, lead_id = f"{alias}source", f"{alias}lead_id"
    if fold_case:
        source, lead_id = f"lower({source})", f"lower({lead_id})"
    condition = " OR ".join(f"({source} = ? AND {lead_id} = ?)" for _ in splits)
    params = [part.lower() if fold_case else part for split in splits for part in split]
    return f"({condition})", params


def normalize_cn_mobile(text: str) -> str | None:
    """`138 1234 5678`, `+86-138…`, `0086…`, `0086 0138…`, `(+86)…`, full-width, `….0`,
    `1.3812345678E+10` → `+8613812345678`: cleaned and prefixed as resolve reads a CN
    mobile under the default region CN (`clean_phone`, `cn_mobile_national`), without
    phonenumbers; any 1[3-9] number of 11 digits counts (resolve's pattern is narrower)."""
    national = cn_mobile_national(clean_phone(text), _CN_MOBILE.pattern)
    return "+86" + national if national else None


def id_card_checksum_ok(value: str) -> bool:
    if len(value) != 18:
        return len(value) == 15 and value.isdigit()
    return value[:17].isdigit() and id_card_check_digit(value[:17]) == value[17].upper()


def _normalize_other_phone(text: str, region: str = "CN") -> str | None:
    """Landlines, foreign numbers: the identity normaliser (phonenumbers, imported by it
    only now)."""
    try:
        return normalize_phone(text, region)
    except Exception:  # a value it cannot parse is simply not a phone
        return None


def _lead_lookups(value: str) -> list[Lookup]:
    return [Lookup("lead_id", lead_id, source) for source, lead_id in source_splits(value)] + [
        Lookup("lead_id", value)]


def _phone_key(text: str, region: str) -> str | None:
    """A phone as resolve keys it under `default_region`: with CN, a bare 11-digit mobile
    without phonenumbers (the portrait's start-up); elsewhere, only what resolve accepts."""
    if region == "CN":
        return normalize_cn_mobile(text)
    return _normalize_other_phone(text, region)


def classify_query(text: str, region: str = "CN") -> list[Lookup]:
    """What a query may be, most specific first; lead id and person id are always tried.
    `region`: the workspace's default phone region (`phone_region`)."""
    query = text.strip()
    head, sep, rest = query.partition(":")
    if sep and head.lower() in PREFIXES and rest.strip():
        kind, value = PREFIXES[head.lower()], rest.strip()
        if kind == "lead_id":
            return _lead_lookups(value)
        if kind == "phone":
            value = (_phone_key(value, region) or _normalize_other_phone(value, region)
                     or value)
        if kind == "person_id":
            value = canonical_person_id(value)
        return [Lookup(kind, _normalize_identifier(kind, value))]
    lookups: list[Lookup] = []
    plain = query.translate(FULL_WIDTH_TABLE).strip()
    card = id_card_key(plain)
    if "@" in plain and " " not in plain:
        lookups.append(Lookup("email", _normalize_identifier("email", plain)))
    elif card:
        lookups.append(Lookup("id_card", card))
    phone = _phone_key(plain, region)
    digits = clean_phone(plain)
    if phone is None and _PHONE_LIKE.fullmatch(digits) and not card:
        # Not a valid number: still looked up as cleaned, where blocked values live.
        phone = _normalize_other_phone(plain, region) or digits
    if phone:
        lookups.append(Lookup("phone", phone))
    if _WECHAT.fullmatch(plain):
        lookups.append(Lookup("wechat", _normalize_identifier("wechat", plain)))
    if _DEVICE.fullmatch(plain) or (_DEVICE_LIKE.fullmatch(plain) and not phone and not card):
        lookups.append(Lookup("device_id", _normalize_identifier("device_id", plain)))
    lookups += _lead_lookups(query)[:-1]  # `s1/a@b.com`: a lead id may hold an `@` too
    return lookups + [Lookup("lead_id", query), Lookup("person_id", canonical_person_id(query))]


def _normalize_identifier(kind: str, value: str) -> str:
    """An e-mail, WeChat id, device id or ID card as resolve keys it (`keyed_sql`), with
    a prefix or without: full-width forms and Unicode spaces read as ASCII, trimmed, ASCII
    letters lower-cased, an e-mail's `mailto:` dropped, an ID card's spaces dropped and
    upper-cased (a 15-digit one upgraded); other kinds as given."""
    if kind not in ("email", "wechat", "device_id", "id_card"):
        return value
    text = value.translate(FULL_WIDTH_TABLE).strip()
    if kind == "id_card":
        return id_card_key(text) or text.replace(" ", "").upper()
    text = ascii_lower(text)
    return text.removeprefix("mailto:") if kind == "email" else text


def describe_lookup(lookup: Lookup, reveal: bool = False) -> str:
    """`phone 138****5678`: a lookup as shown in messages (masked unless `reveal`, as the
    query is echoed)."""
    if lookup.kind in IDENTIFIER_KINDS:
        return f"{lookup.kind} {lookup.value if reveal else pii.mask(lookup.kind, lookup.value)}"
    return "source/lead id" if lookup.source else lookup.kind.replace("_", " ")


# Statuses of a value that names the person holding it (blocked and capped ones do not).
CARRIED_STATUSES = ("ok", "cut")
_CARRIED = ", ".join(f"'{status}'" for status in CARRIED_STATUSES)


def hits_sql(lookups: list[Lookup], *, fold_case: bool = False) -> tuple[str, list]:
    """The rows the lookups hit: (matched_by, lead_key, person_id, status, reason, lead),
    `lead_key` for a lead id or an identifier, `person_id` for a person id.

    Exact matches (`=`, a point lookup) unless `fold_case`: then only lead and person
    ids, compared case-insensitively (a scan; the caller tries it when exact finds none).
    """
    parts: list[str] = []
    params: list = []
    for lookup in lookups:
        if lookup.kind in IDENTIFIER_KINDS and not fold_case:
            parts.append("SELECT ? AS matched_by, lead_key, CAST(NULL AS VARCHAR) AS person_id, "
                         "status, reason, CAST(NULL AS VARCHAR) AS lead "
                         "FROM lead_identifiers WHERE id_type = ? AND value = ?")
            params += [lookup.kind, lookup.kind, lookup.value]
        elif lookup.kind == "lead_id" and lookup.source is None:
            column = "lower(lead_id)" if fold_case else "lead_id"
            parts.append(_LEAD_HITS + f"{column} = ?")
            params.append(lookup.value.lower() if fold_case else lookup.value)
        elif lookup.kind == "person_id":
            column = "lower(person_id)" if fold_case else "person_id"
            parts.append("SELECT 'person_id' AS matched_by, CAST(NULL AS BIGINT) AS lead_key, "
                         "person_id, 'ok' AS status, CAST(NULL AS VARCHAR) AS reason, "
                         f"CAST(NULL AS VARCHAR) AS lead FROM persons WHERE {column} = ?")
            params.append(lookup.value.lower() if fold_case else lookup.value)
    # the source/lead id splits of a query (`s1/2026/001`: s1 + 2026/001, s1/2026 + 001):
    # one scan for them all
    splits = [(lk.source, lk.value) for lk in lookups
              if lk.kind == "lead_id" and lk.source is not None]
    if splits:
        where, split_params = source_lead_sql(splits, fold_case=fold_case)
        parts.append(_LEAD_HITS + where)
        params += split_params
    return "\n  UNION ALL ".join(parts), params


_LEAD_HITS = ("SELECT 'lead_id' AS matched_by, lead_key, CAST(NULL AS VARCHAR) AS person_id, "
              "'ok' AS status, CAST(NULL AS VARCHAR) AS reason, "
              "source || '/' || lead_id AS lead FROM leads WHERE ")


def lookup_sql(lookups: list[Lookup], *, fold_case: bool = False) -> tuple[str, list]:
    """What the lookups hit (`hits_sql`), one row per (matched_by, status, person) for
    linking hits (status ok) and one per (matched_by, status) for values that do not link:
    (matched_by, status, reason, records, persons, person_id, leads)."""
    hits, params = hits_sql(lookups, fold_case=fold_case)
    sql = (f"WITH hits AS (\n  {hits}),\n"
           "found AS (\n"
           "  SELECT h.matched_by, h.status, h.reason,\n"
           f"         CASE WHEN h.status IN ({_CARRIED}) THEN\n"
           "           coalesce(h.lead, l.source || '/' || l.lead_id) END AS lead,\n"
           "         coalesce(h.person_id, pl.person_id) AS person_id\n"
           "  FROM hits h LEFT JOIN person_leads pl ON pl.lead_key = h.lead_key\n"
           "  LEFT JOIN leads l ON l.lead_key = h.lead_key)\n"
           "SELECT matched_by, status, min(reason) AS reason, count(*) AS records,\n"
           "       count(DISTINCT person_id) AS persons, min(person_id) AS person_id,\n"
           "       list_sort(list_distinct(list(lead))) AS leads\n"
           "FROM found GROUP BY matched_by, status,\n"
           f"         CASE WHEN status IN ({_CARRIED}) THEN person_id END\n"
           "ORDER BY person_id, matched_by")
    return sql, params


def names_another_sql(lookups: list[Lookup]) -> tuple[str, list]:
    """A row when an exact hit of `lookups` (lead ids, identifiers) is a lead of a person
    other than the one of the last parameter (to append), its value one that names the
    person holding it (linking, or cut by a cannot_link): a cheap probe, no grouping."""
    hits, params = hits_sql(lookups)
    return (f"WITH hits AS (\n  {hits})\n"
            "SELECT 1 FROM hits h JOIN person_leads pl ON pl.lead_key = h.lead_key\n"
            f"WHERE h.status IN ({_CARRIED}) AND pl.person_id <> ? LIMIT 1"), params


# -- reading one person --------------------------------------------------------------------

@dataclass
class Hit:
    matched_by: str
    status: str  # ok | cut | blocked | capped
    reason: str | None
    records: int
    persons: int
    person_id: str | None  # the person when `persons` == 1
    leads: list[str] = field(default_factory=list)  # `source/lead_id` of the matched leads


def _hits(ws, lookups: list[Lookup], *, fold_case: bool = False) -> list[Hit]:
    sql, params = lookup_sql(lookups, fold_case=fold_case)
    return [Hit(*row) for row in ws.execute(sql, params).fetchall()]


def _linking(hits: list[Hit]) -> dict[str, list[Hit]]:
    """Hits by the person they name: linking values, and values a cannot_link cut (a real
    value of each person's lead, kept from linking them: on a lookup each is a candidate)."""
    by_person: dict[str, list[Hit]] = {}
    for hit in hits:
        if hit.status in CARRIED_STATUSES and hit.person_id is not None:
            by_person.setdefault(hit.person_id, []).append(hit)
    return by_person


def _one_person(hits: list[Hit]) -> str | None:
    """The person every hit (linking or not) belongs to, when there is exactly one."""
    persons = {h.person_id for h in hits if h.person_id is not None}
    return persons.pop() if len(persons) == 1 and all(h.persons <= 1 for h in hits) else None


def _matched_by(hits: list[Hit]) -> list[str]:
    return list(dict.fromkeys(h.matched_by for h in hits))


def phone_region(ws) -> str:
    """The default phone region of the workspace's last resolve (CN before any)."""
    text = ws.scalar(meta_value_sql(IDENTITY_STATE_KEY))
    try:
        return json.loads(text).get("region") or "CN"
    except (TypeError, ValueError, AttributeError):
        return "CN"


def _failure(cls, message: Callable[[bool], str], reveal: bool, *args):
    """`cls` with `message(reveal)`; with `reveal`, its masked text `message(False)` for
    the log too (one lookup makes both)."""
    exc = cls(message(reveal), *args)
    if reveal:
        exc.log_text = message(False)
    return exc


def resolve_person(ws, query: str, *, reveal: bool = False) -> tuple[str, list[str]]:
    """The one person a query names, with how it matched; NotFound / AmbiguousQuery else.
    With `reveal`, such an error says the values as typed, and carries the masked text
    for the log (`log_text`): the log's own filter knows no WeChat or device id."""
    if not query.strip():
        raise UsageError("the query is empty: give a phone, email, WeChat id, ID card, "
                         "lead id or person id")
    head, sep, rest = query.strip().partition(":")
    if sep and head.lower() in PREFIXES and not rest.strip():
        raise UsageError(f"the query {query!r} has nothing after its prefix: give a value, "
                         f"as in {head}:VALUE")
    lookups = classify_query(query, phone_region(ws))
    if lookups[0].kind == "wechat" and looks_like_person_id(query):
        # A person id (P + 12 hex) also looks like a WeChat id; try the cheap exact
        # person lookup before scanning identifiers.
        found = ws.execute("SELECT person_id FROM persons WHERE person_id = ?",
                           [canonical_person_id(query)]).fetchone()
        if found:
            # unless it is also another person's lead id or WeChat id (exact point
            # lookups): then both are candidates, as a phone that is a lead id elsewhere
            _unless_another_person(ws, query, lookups, found[0], reveal)
            return found[0], ["person_id"]
    hits = _hits(ws, lookups)
    person = _one_person(hits)
    if person:
        return person, _matched_by([h for h in hits if h.person_id == person])
    if not hits and any(lk.kind in ID_KINDS for lk in lookups):  # nothing matched exactly
        hits = _hits(ws, lookups, fold_case=True)  # `ag300001` → AG300001
    by_person = _linking(hits)
    if len(by_person) == 1:
        person, found = next(iter(by_person.items()))
        return person, _matched_by(found)
    if by_person:
        raise _failure(AmbiguousQuery, lambda shows: _ambiguous_message(
            query, _shown(query, lookups, shows), by_person), reveal,
            candidates(ws, by_person, reveal=reveal))
    barred = [h for h in hits if h.status != "ok"]
    if barred:
        raise _failure(NotFound, lambda shows: " ".join(
            _barred_message(h, lookups, shows) for h in barred)
            + " Look the person up by lead id or person id.", reveal)
    merged = _merged_into(ws, lookups)
    if merged:
        return merged, ["merged_person_id"]
    if hits:
        raise _failure(NotFound, lambda shows: (
            f"{_shown(query, lookups, shows)!r} was ingested but is not linked to a person "
            "yet: run `leadctl resolve` (or the nightly `leadctl run`)"), reveal)
    card = next((lk for lk in lookups if lk.kind == "id_card"), None)
    hint = ("; the ID card checksum is wrong (a typo?)"
            if card and not id_card_checksum_ok(card.value) else "")
    # values are looked up among the identifiers resolve read: leads ingested since the
    # last resolve may hold it
    unread = ws.scalar(
        "SELECT count(*) FROM leads l WHERE NOT EXISTS (SELECT 1 FROM person_leads pl "
        "WHERE pl.lead_key = l.lead_key) AND NOT EXISTS (SELECT 1 FROM lead_identifiers li "
        "WHERE li.lead_key = l.lead_key)")
    if unread:
        hint += (f"; {unread} lead(s) ingested since the last resolve are not looked up "
                 "yet: run `leadctl resolve` (or the nightly `leadctl run`) and ask again")
    raise _failure(NotFound, lambda shows: (
        f"no lead or person matches {_shown(query, lookups, shows)!r} (tried "
        f"{', '.join(dict.fromkeys(describe_lookup(lk, shows) for lk in lookups))}){hint}"),
        reveal)


def _unless_another_person(ws, query: str, lookups: list[Lookup], person_id: str,
                           reveal: bool) -> None:
    """AmbiguousQuery when the query's other exact lookups (lead id, WeChat id) name a
    person other than `person_id`, the person its person id names."""
    probes = [lk for lk in lookups if lk.kind != "person_id"]  # a P + 12 hex: never empty
    sql, params = names_another_sql(probes)
    if ws.execute(sql, [*params, person_id]).fetchone():  # rare: then what each names
        named = _linking(_hits(ws, probes))
        by_person = {**named, person_id: [
            Hit("person_id", "ok", None, 1, 1, person_id), *named.get(person_id, [])]}
        raise _failure(AmbiguousQuery, lambda shows: _ambiguous_message(
            query, _shown(query, lookups, shows), by_person), reveal,
            candidates(ws, by_person, reveal=reveal))


def _ambiguous_message(query: str, shown: str, by_person: dict[str, list[Hit]]) -> str:
    found = [h for hits in by_person.values() for h in hits]
    if all(h.matched_by == "lead_id" for h in found):  # a lead id is echoed as given
        leads = sorted({lead for h in found for lead in h.leads})
        # (not the query itself: `s1/L 7` that is also a lead id of another source)
        example = next((lead for lead in leads if lead != query.strip()), leads[0])
        return (f"lead id {query.strip()!r} is in {len(leads)} sources, different persons "
                f"({', '.join(leads)}); name one as source/lead_id, e.g. {example}")
    return (f"{shown!r} matches {len(by_person)} persons; ask again with a person id "
            "(or a prefix such as lead:, phone:, person:)")


_CAP = re.compile(r"cap of ([0-9]+)")  # in the reason link.status_sql writes


def _barred_message(hit: Hit, lookups: list[Lookup], reveal: bool) -> str:
    """`phone 138****8000 is blocked (blocklist), so it links no leads; 30 records carry it.`"""
    value = next(lk.value for lk in lookups if lk.kind == hit.matched_by)
    what = f"{hit.matched_by} {value if reveal else pii.mask(hit.matched_by, value)}"
    records = f"{hit.records} record{'s' if hit.records != 1 else ''}"
    cap = _CAP.search(hit.reason or "")
    if hit.status == "capped" and cap:
        return (f"{what} is shared by {records}, above the cap of {cap.group(1)}, "
                "so it links no leads.")
    return f"{what} is {hit.status} ({hit.reason}), so it links no leads; {records} carry it."


def _shown(query: str, lookups: list[Lookup], reveal: bool) -> str:
    """The query as messages echo it: masked like the portrait when it is personal data."""
    first = lookups[0]
    if reveal:
        return query.strip()
    if first.kind not in IDENTIFIER_KINDS:  # a mistyped phone or ID card is still one
        return pii.mask_query(query.strip())
    return pii.mask(first.kind, first.value)


# When lead `l` arrived: its created_at, else the ingest time of its file `f`.
ARRIVED_AT_SQL = "coalesce(l.created_at, f.ingested_at)"


def arrived_after_sql(as_of: dt.date, persons: str | None = None) -> str:
    """A query of one value: the latest day a lead arrived (created_at, else its file's
    ingest time) after `as_of` in a person of `persons` (SQL giving person ids; None: every
    person); NULL when none did. Part of `changed_after_sql`."""
    later = f"arrived_at >= {date_literal(as_of + dt.timedelta(days=1))}"
    # the late leads first: a broad `find` matches 600k persons
    return f"""
        SELECT CAST(max(arrived_at) AS DATE) FROM (
            SELECT l.lead_key, {ARRIVED_AT_SQL} AS arrived_at
            FROM leads l LEFT JOIN ingested_files f ON f.file_id = l.file_id) a
        JOIN person_leads pl ON pl.lead_key = a.lead_key
        WHERE {later}{f" AND pl.person_id IN ({persons})" if persons is not None else ""}"""


def seen_by_sql(as_of: dt.date, persons: str | None = None) -> str:
    """The persons of `persons` (SQL giving person ids; None: every person) one of whose
    leads had arrived by `as_of` (or has no arrival time): those `report channels`
    counts."""
    return f"""
        SELECT DISTINCT pl.person_id FROM person_leads pl
        JOIN leads l ON l.lead_key = pl.lead_key
        LEFT JOIN ingested_files f ON f.file_id = l.file_id
        WHERE ({ARRIVED_AT_SQL} IS NULL
               OR {ARRIVED_AT_SQL} < {date_literal(as_of + dt.timedelta(days=1))})
          {f"AND pl.person_id IN ({persons})" if persons is not None else ""}"""


def change_days_sql(runs: str) -> str:
    """`(run_id, day)`: the as-of of each night run (of the ids the query or table `runs`
    gives) that made an identity change (`identity_history` is stamped by the wall
    clock): that of the merge or split rows it logged in the routing log (a loaded Spark
    night's rows keep its run ids, which this run log may not hold), else the run log's."""
    return f"""SELECT r.run_id, coalesce(l.day, n.as_of) AS day
FROM (SELECT DISTINCT run_id FROM {runs}) r
LEFT JOIN (SELECT run_id, max(as_of) AS day FROM assignments
           WHERE rule IN ('merge', 'split') AND run_id IN (SELECT run_id FROM {runs})
           GROUP BY run_id) l ON l.run_id = r.run_id
LEFT JOIN runs n ON n.run_id = r.run_id"""


HISTORY_COLUMNS = "run_id, changed_at, change, person_id, old_person_ids, leads, reason"


def identity_changes_sql(persons: str, runs: str | None = None) -> str:
    """The merges and splits (`identity_history` rows) of each person of `persons` (SQL
    giving person ids, read three times: `?` takes the id three times), one row per person
    and change, with `of_person` (the person) and the `day` of each (`change_days_sql`).
    A row is the person's when it was recorded under its id or one a later merge retired
    into it (logs keep the id they were written under), or names it in `old_person_ids`:
    a split's part that kept the id, a merge that retired the id before a split gave it
    back. One definition for the portrait's person (`person_changes_sql`) and a screen's
    set (`changed_after_sql`): three equi-joins (no OR over a set), each row once per
    person. `runs`: a query of the run ids to read (None: all)."""
    history = "identity_history" if runs is None else \
        f"(SELECT * FROM identity_history WHERE run_id IN ({runs}))"
    return f"""WITH h AS (
  SELECT {HISTORY_COLUMNS}, person_id AS of_person FROM {history} AS i
  WHERE person_id IN ({persons})
  UNION ALL
  SELECT {", ".join(f"i.{c}" for c in HISTORY_COLUMNS.split(", "))}, a.person_id
  FROM {history} AS i JOIN person_aliases a ON a.old_person_id = i.person_id
  WHERE a.person_id IN ({persons}) AND a.person_id <> i.person_id
  UNION ALL  -- a row the two above did not give the person already; an id once a row
  SELECT {", ".join(f"i.{c}" for c in HISTORY_COLUMNS.split(", "))}, i.old_id
  FROM (SELECT * FROM (SELECT *, unnest(old_person_ids) AS old_id,
                              generate_subscripts(old_person_ids, 1) AS k
                       FROM {history} AS i)
        WHERE old_id IN ({persons}) AND list_position(old_person_ids, old_id) = k) i
  LEFT JOIN person_aliases a ON a.old_person_id = i.person_id
  WHERE i.old_id <> i.person_id AND a.person_id IS DISTINCT FROM i.old_id
)
SELECT h.*, d.day FROM h LEFT JOIN ({change_days_sql("h")}) d ON d.run_id = h.run_id"""


def person_changes_sql() -> str:
    """The person's merges and splits with the `day` of each (`identity_changes_sql`).
    Parameters: the person's id three times."""
    return f"SELECT * EXCLUDE (of_person) FROM ({identity_changes_sql('?')})"


def changed_after_sql(as_of: dt.date, persons: str | None = None, *,
                      seen_by_then: bool = False) -> str:
    """A query of one value: the latest day after `as_of` the leads of a person of
    `persons` changed: one of them arrived (`arrived_after_sql`), or a merge or split
    joined or parted them (dated by its night, `identity_changes_sql`); NULL when none
    did. `persons`: a query giving person ids (None: every person with a lead), or `?`
    (one person, the portrait's and `explain`'s: its id given four times). With
    `seen_by_then` only of a person one of whose leads had arrived by then
    (`seen_by_sql`: the persons `report channels` counts). A screen shows today's
    identity (golden records, leads): not the one of its as-of then. One check for a
    screen of one person and of a set (find, report channels)."""
    if seen_by_then:
        persons = seen_by_sql(as_of, persons)
    elif persons is None:
        persons = "SELECT person_id FROM person_leads"
    # the late rows first, as the late leads: a broad `find` matches 600k persons, and a
    # night's screens rarely have a change after their as-of to look for
    later = date_literal(as_of)
    late_runs = f"SELECT run_id FROM ({change_days_sql('identity_history')}) WHERE day > {later}"
    return f"""
        SELECT greatest(({arrived_after_sql(as_of, persons)}),
                        (SELECT max(day) FROM ({identity_changes_sql(persons, late_runs)})
                         WHERE day > {later}))"""


def changed_after(ws, person_id: str, as_of: dt.date) -> dt.date | None:
    """The latest day after `as_of` the person's leads changed (`changed_after_sql`)."""
    return ws.scalar(changed_after_sql(as_of, "?"), [person_id] * 4)


def recorded_under_sql(column: str = "person_id") -> str:
    """A condition: `column` holds an id the person's rows may be recorded under, its
    current id (the first `?`) or one a merge retired into it (the second `?`). Logs and
    sales keep the id they were written under; a screen of the person reads them all."""
    return (f"({column} = ? OR {column} IN "
            "(SELECT old_person_id FROM person_aliases WHERE person_id = ?))")


def masked_query(query: str, kind: str, reveal: bool = False) -> str:
    """The query as echoed back in a result matched by `kind`: masked when it is personal
    data, in the portrait's form (`138****5678` for `+86 138-1234-5678`)."""
    if reveal or kind not in IDENTIFIER_KINDS:
        return query.strip()
    value = next((lk.value for lk in classify_query(query) if lk.kind == kind), query.strip())
    return pii.mask(kind, value)


def _merged_into(ws, lookups: list[Lookup]) -> str | None:
    """An old person id that a later resolve merged into another person (person_aliases),
    or, in a workspace rebuilt without that history, the one person holding the lead the
    id was derived from (as event subjects are matched)."""
    person = next((lk.value for lk in lookups if lk.kind == "person_id"), None)
    if person is None:
        return None
    row = ws.execute("SELECT person_id FROM person_aliases WHERE old_person_id = ?",
                     [person]).fetchone()
    if row or not looks_like_person_id(person):
        return row[0] if row else None
    rows = ws.execute(f"SELECT DISTINCT pl.person_id FROM leads l JOIN person_leads pl "
                      f"ON pl.lead_key = l.lead_key WHERE {lead_derived_id_sql('l')} = ?",
                      [person]).fetchall()
    return rows[0][0] if len(rows) == 1 else None


def candidates(ws, by_person: dict[str, list[Hit]], *, reveal: bool = False) -> list[dict]:
    ids = sorted(by_person)
    marks = ", ".join("?" for _ in ids)
    rows = ws.rows(f"SELECT person_id, name, phone, city, lead_count FROM persons "
                   f"WHERE person_id IN ({marks}) ORDER BY person_id", ids)
    found = {r["person_id"]: r for r in rows}
    return [{"person_id": pid, "matched_by": _matched_by(by_person[pid]),
             "leads": sorted({lead for h in by_person[pid] for lead in h.leads}),
             "name": pii.shown("name", found.get(pid, {}).get("name"), reveal),
             "phone": pii.shown("phone", found.get(pid, {}).get("phone"), reveal),
             "city": found.get(pid, {}).get("city"),
             "lead_count": found.get(pid, {}).get("lead_count")} for pid in ids]


def earliest_leads_sql(marks: str) -> str:
    """(person_id, lead_key, source, created_at, lead_id, first) of each person's earliest lead
    (created_at — none sorts last —, then source, lead_id; `first` that sort key): the
    stable lead an override, `identity why` and `explain` name for a person."""
    return f"""
        SELECT pl.person_id, arg_min(l.lead_key, (l.created_at, l.source, l.lead_id)) AS lead_key,
            arg_min(l.source, (l.created_at, l.source, l.lead_id)) AS source,
            arg_min(l.created_at, (l.created_at, l.source, l.lead_id)) AS created_at,
            arg_min(l.lead_id, (l.created_at, l.source, l.lead_id)) AS lead_id,
            min((l.created_at, l.source, l.lead_id)) AS first
        FROM person_leads pl JOIN leads l ON l.lead_key = pl.lead_key
        WHERE pl.person_id IN ({marks}) GROUP BY pl.person_id ORDER BY pl.person_id"""


def earliest_lead(ws, person_id: str) -> dict:
    """The person's earliest lead (earliest_leads_sql); NotFound when it has none."""
    rows = ws.rows(earliest_leads_sql("?"), [person_id])
    if not rows:
        raise NotFound(f"person {person_id} has no leads (run `leadctl resolve`)")
    return rows[0]
