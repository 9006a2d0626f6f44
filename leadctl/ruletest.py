"""`rules test`: YAML fixtures (`rules/tests/*.yaml`) run against an in-memory workspace.

A fixture file is one case, or `cases:` with a list of them. A case:

    as_of: 2026-11-01
    persons:                      # golden records; `id` becomes person_id
      - {id: p1, city: Shanghai, phone: "13800000001", leads: [L1]}
    events:                       # `person:` (an id above), or `phone:` / `lead_id:`
      - {person: p1, event: order_paid, days_ago: 3, amount: 300, category: apparel}
      - {phone: "13800000001", event: login, at: "2026-10-31 09:00", repeat: 2}
    expect:                       # person → tag → value (null = no value)
      p1: {paid_amount_30d: 300, top_categories_7d: [apparel]}

Event keys: `event` (type), `at` (timestamp) or `days_ago` (+ optional `time`, HH:MM or
HH:MM:SS, default 12:00), `amount`, `category`, `repeat` (n copies); any other key is an
event attribute.
Expectations name tags, or keys the score and route stages add after the tag stage
(each domain's `stage.fixture_values(ws, rules, as_of) -> {person_id: {key: value}}`).

Funnels (rules/funnels.yaml) are checked per group with `expect_funnels:` (then
`expect:` may be left out):

    expect_funnels:
      app_install:                  # a funnel name
        by: [utm_content]           # optional: --by (none: one group, called `all`)
        attribution: last           # optional: --attribution
        groups:                     # group (its key values joined by ", ", null as
          A: {pushed: 3, registered: 1}          # (none)) → step → persons
          B: {registered: {persons: 0, below_min: true}}   # or → {persons, conversion,
                                                 # of_previous, below_min}

This runner sits above the domains: it drives their stages on each case, with the rules
loaded once (`RuleSet`).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from leadctl.campaigns.funnels import ATTRIBUTIONS
from leadctl.campaigns.funnels_report import choose_dimensions, find_funnel, funnel_report
from leadctl.errors import Location, RuleError, UsageError
from leadctl.identity.normalize import (
    clean_phone,
    cn_mobile_pattern,
    keyed_sql,
    normalize_phone,
    normalize_phone_leftovers,
)
from leadctl.identity.persons import PLACE_COLUMNS
from leadctl.identity.resolve import placed_persons, places_registered
from leadctl.identity.subjects import distinct_subjects_sql, subject_phones_sql
from leadctl.ingest.sql import parse_timestamp_sql
from leadctl.routing import stage as routing_stage
from leadctl.rules.bounds import (
    FIRST_DATE,
    LAST_DATE,
    MAX_DAYS,
    date_in,
    finite,
    is_number,
    plain_text,
    whole_in,
    written,
)
from leadctl.rules.expr_compile import element_of
from leadctl.rules.hints import did_you_mean, mistyped_keys, one_of
from leadctl.rules.located import parse_file
from leadctl.ruleset import RuleSet, load_rules
from leadctl.scoring import stage as scoring_stage
from leadctl.sqltext import NULL_TOKENS, literal, trimmed
from leadctl.tagging.stage import run_tags
from leadctl.workspace import open_memory

TESTS_DIR = "tests"

CASE_KEYS = ("name", "as_of", "persons", "events", "expect", "expect_funnels")
FUNNEL_EXPECT_KEYS = ("by", "attribution", "groups")
STEP_CHECK_KEYS = ("persons", "conversion", "of_previous", "median_hours_from_previous",
                   "below_min")
ALL_GROUP = "all"
PERSON_KEYS = ("id", "name", "phone", "email", "wechat", "device_id", "id_card", "city",
               "province", "channel", "source", "sources", "first_seen", "last_seen",
               "lead_count", "leads")
EVENT_RESERVED = ("person", "phone", "lead_id", "event", "at", "days_ago", "time", "amount",
                  "category", "repeat")
DEFAULT_TIME = dt.time(12, 0)
MAX_LEAD_COUNT = 1_000_000


@dataclass
class Failure:
    file: str
    line: int
    case: str
    person: str
    key: str
    expected: Any
    got: Any

    def __str__(self) -> str:
        expected, got = _show(self.expected), _show(self.got)
        if expected == got:  # a date and its text, [2026-09-01] and ["2026-09-01"]
            expected, got = (f"{expected} ({_kind(self.expected)})",
                             f"{got} ({_kind(self.got)})")
        return (f"{self.file}:{self.line}: {self.case}: {self.key} for {self.person}: "
                f"expected {expected}, got {got}")

    def to_dict(self) -> dict:
        return {"file": self.file, "line": self.line, "case": self.case,
                "person": self.person, "tag": self.key, "expected": _plain(self.expected),
                "got": _plain(self.got), "message": str(self)}


@dataclass
class Case:
    name: str
    file: str
    loc: Location | None
    as_of: dt.date
    persons: list[dict]
    events: list[dict]
    expect: list[tuple[str, str, Any, Location | None]]  # person, key, value, where
    # funnel → (by, attribution, [(group, step, key, value, where)], where each key is:
    # {"funnel": …, "attribution": …, "by": [one per by item]})
    funnels: dict[str, tuple[list[str], str | None, list[tuple], dict]] = field(
        default_factory=dict)


@dataclass
class FixtureResult:
    folder: str = ""  # where the fixtures are read from
    files: list[str] = field(default_factory=list)
    cases: int = 0
    checks: int = 0
    failures: list[Failure] = field(default_factory=list)

    def to_dict(self) -> dict:
        # No case checks nothing: that does not pass (`nothing_checked`).
        return {"ok": bool(self.cases) and not self.failures, "folder": self.folder,
                "files": self.files, "cases": self.cases,
                "checks": self.checks, "passed": self.checks - len(self.failures),
                "failed": len(self.failures),
                "failures": [f.to_dict() for f in self.failures]}


def _show(value: Any) -> str:
    if value is None:
        return "no value"
    if isinstance(value, dt.date):  # as written in a fixture: not the quoted text
        return _plain(value)
    return json.dumps(_plain(value), ensure_ascii=False)


def _kind(value: Any) -> str:
    """A value's type as a FAIL line names it when two values are written alike."""
    if isinstance(value, (list, tuple)):
        kinds = list(dict.fromkeys(_kind(v) for v in value if v is not None))
        return f"list of {' and '.join(kinds)}" if kinds else "list"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, dt.datetime):
        return "timestamp"
    if isinstance(value, dt.date):
        return "date"
    if isinstance(value, str):
        return "text"
    if isinstance(value, Mapping):
        return "mapping"
    return "no value" if value is None else type(value).__name__


def _plain(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat(sep=" ") if isinstance(value, dt.datetime) else value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


# --------------------------------------------------------------------------- loading


def fixture_files(rules_dir: Path) -> list[Path]:
    folder = rules_dir / TESTS_DIR
    return sorted(list(folder.glob("*.yaml")) + list(folder.glob("*.yml"))) \
        if folder.is_dir() else []


def load_cases(path: Path, region: str = "CN") -> list[Case]:
    """The cases of one fixture file; `region`: identity.yaml's default_region, which
    phones are normalised with (an event's `phone:` finds the person as resolve links it)."""
    return parse_file(path, lambda doc: _cases(doc, path, region))


def _cases(doc: Any, path: Path, region: str) -> list[Case]:
    problems: list[tuple[Location | None, str]] = []
    here = Location(str(path), 1, 1)
    if not isinstance(doc, Mapping):
        raise RuleError([(_loc(doc, here), "a fixture file must be a mapping (one case, "
                          "or `cases:` with a list of cases)")])
    raw_cases = doc.get("cases") if "cases" in doc else [doc]
    if "cases" in doc:  # nothing beside the cases: a key there would check nothing
        for key in doc:
            if key != "cases":
                problems.append((_key_loc(doc, key, here), f"'{key}' beside `cases:`: a file "
                                 "of cases holds only `cases:` (give each case its own "
                                 f"`{key}:`)"))
    if not isinstance(raw_cases, list) or not raw_cases:  # none: a file that checks nothing
        raise RuleError([(_value_loc(doc, "cases", here), "`cases:` must be a list of cases")])
    cases = []
    phone_key = _phone_keyer(region)
    for index, raw in enumerate(raw_cases):
        default_name = f"{path.stem}" + (f"[{index + 1}]" if "cases" in doc else "")
        case = _parse_case(raw, path, default_name, problems, phone_key)
        if case is None:
            continue
        if any(c.name == case.name for c in cases):  # a failure must name one case
            problems.append((_loc(raw, here), f"{case.name}: a case of this name is above: "
                             "give each case its own `name:`"))
        cases.append(case)
    if problems:
        raise RuleError(problems)
    return cases


def _loc(node: Any, fallback: Location | None) -> Location | None:
    return getattr(node, "loc", None) or fallback


def _key_loc(mapping: Any, key: str, fallback: Location | None) -> Location | None:
    getter = getattr(mapping, "key_loc", None)
    return (getter(key) if getter else None) or _loc(mapping, fallback)


def _value_loc(mapping: Any, key: str, fallback: Location | None) -> Location | None:
    getter = getattr(mapping, "value_loc", None)
    return (getter(key) if getter else None) or _key_loc(mapping, key, fallback)


def _item_loc(seq: Any, index: int, fallback: Location | None) -> Location | None:
    getter = getattr(seq, "item_loc", None)
    return (getter(index) if getter else None) or _loc(seq[index], fallback)


def _parse_case(raw: Any, path: Path, default_name: str, problems: list,
                phone_key: Callable[[str], str]) -> Case | None:
    here = Location(str(path), 1, 1)
    if not isinstance(raw, Mapping):
        problems.append((_loc(raw, here), "a case must be a mapping with as_of, persons, "
                         "events, expect"))
        return None
    loc = _loc(raw, here)
    for key in raw:
        if key not in CASE_KEYS:
            problems.append((_key_loc(raw, key, loc), f"unknown key '{key}' in a fixture"
                             f"{did_you_mean(key, CASE_KEYS)} (known: {', '.join(CASE_KEYS)})"))
    mistyped = mistyped_keys(raw, CASE_KEYS)  # its unknown key is the one problem
    name = str(raw.get("name") or default_name)
    as_of = _date(raw.get("as_of"))
    if as_of is None:
        problems.append((_value_loc(raw, "as_of", loc) if "as_of" in raw else loc,
                         f"{name}: `as_of:` must be a date like 2026-11-01"))
        as_of = dt.date(2000, 1, 1)
    elif not date_in(as_of):  # its windows and days_ago must stay inside the calendar
        problems.append((_value_loc(raw, "as_of", loc), f"{name}: `as_of:` must be a date "
                         f"from {FIRST_DATE} to {LAST_DATE}, not {written(raw, 'as_of')}"))
        as_of = dt.date(2000, 1, 1)
    persons = _parse_persons(raw.get("persons") or [], raw, loc, name, problems)
    events = _parse_events(raw.get("events") or [], raw, loc, name, as_of, persons, problems,
                           phone_key)
    funnels = _parse_expect_funnels(raw.get("expect_funnels"), raw, loc, name, problems)
    # funnel expectations alone are enough (when they are broken, that is their error)
    expect = [] if (raw.get("expect_funnels") is not None or "expect" in mistyped) \
        and "expect" not in raw else _parse_expect(
        raw.get("expect"), raw, loc, name, persons, problems)
    return Case(name, str(path), loc, as_of, persons, events, expect, funnels)


def _parse_expect_funnels(raw: Any, case: Mapping, loc, name: str,
                          problems: list) -> dict[str, tuple]:
    if raw is None:
        return {}
    where = _value_loc(case, "expect_funnels", loc)
    if not isinstance(raw, Mapping) or not raw:
        problems.append((where, f"{name}: `expect_funnels:` must map funnel → {{by, groups}}"))
        return {}
    out = {}
    for funnel, spec in raw.items():
        at = _key_loc(raw, funnel, where)
        for key in spec if isinstance(spec, Mapping) else ():
            if key not in FUNNEL_EXPECT_KEYS:
                problems.append((_key_loc(spec, key, at), f"{name}: unknown key '{key}'"
                                 f"{did_you_mean(key, FUNNEL_EXPECT_KEYS)} "
                                 f"(known: {', '.join(FUNNEL_EXPECT_KEYS)})"))
        if not isinstance(spec, Mapping) or not isinstance(spec.get("groups"), Mapping):
            if not (isinstance(spec, Mapping) and "groups" in mistyped_keys(
                    spec, FUNNEL_EXPECT_KEYS)):
                problems.append((at, f"{name}: funnel '{funnel}' needs `groups:` (group → "
                                 "step → persons)"))
            continue
        by = spec.get("by") or []
        by_at = [_item_loc(by, i, at) for i in range(len(by))] if isinstance(by, list) \
            else [_value_loc(spec, "by", at)]
        by = [str(b) for b in (by if isinstance(by, list) else [by])]
        places = {"funnel": at, "attribution": _value_loc(spec, "attribution", at),
                  "by": by_at}
        checks, found = [], len(problems)
        groups = spec["groups"]
        for group, steps in groups.items():
            g_at = _key_loc(groups, group, at)
            if not isinstance(steps, Mapping):
                problems.append((g_at, f"{name}: group '{group}' must map step → persons"))
                continue
            for step, value in steps.items():
                s_at = _key_loc(steps, step, g_at)
                values = value if isinstance(value, Mapping) else {"persons": value}
                for key, expected in values.items():
                    if key not in STEP_CHECK_KEYS:
                        problems.append((s_at, f"{name}: unknown step check '{key}'"
                                         f"{one_of(key, STEP_CHECK_KEYS)}"))
                        continue
                    checks.append((str(group), str(step), key, expected, s_at))
        if not checks and len(problems) == found:  # `groups: {}`, `all: {}`, `pushed: {}`
            problems.append((at, f"{name}: funnel '{funnel}' expects nothing (give a step's "
                             "persons in a group)"))
            continue
        out[str(funnel)] = (by, spec.get("attribution"), checks, places)
    return out


def _date(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value)) if value is not None else None
    except ValueError:
        return None


def _timestamp(value: Any) -> dt.datetime | None:
    """A fixture's timestamp; a zoned one keeps its zone (loading converts it to the
    workspace time zone, as ingest does)."""
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time(0, 0))
    return _as_ingest_reads(str(value).strip())


# Two fixed zones a naive text reads the same in and a zoned one an hour apart.
_ZONES_APART = ("UTC", "Etc/GMT-1")


@functools.cache
def _timestamp_reader() -> Any:
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    return con


def _as_ingest_reads(text: str) -> dt.datetime | None:
    """A timestamp text as ingest reads it (ISO forms, `2026-10-03 24:00:00`, `… 08:15
    Asia/Tokyo`, `2026/10/03 8:15`, Unix seconds, and no form it rejects: its
    `parse_timestamp_sql`): naive (local time) when it reads the same in two zones, else
    the instant (UTC)."""
    read = ", ".join(parse_timestamp_sql("$1", zone) for zone in _ZONES_APART)
    utc, other = _timestamp_reader().execute(f"SELECT {read}", [text]).fetchone()
    if utc is None:
        return None
    if not isinstance(utc, dt.datetime):  # (text) past Python's calendar: its ISO form says
        try:  # which date, for the fixture's range check to name
            return dt.datetime.fromisoformat(text)
        except ValueError:
            return None
    return utc if utc == other else utc.replace(tzinfo=dt.UTC)


def _parse_persons(raw: Any, case: Mapping, loc, name: str, problems: list) -> list[dict]:
    if not isinstance(raw, list):
        problems.append((_value_loc(case, "persons", loc), f"{name}: `persons:` must be a list"))
        return []
    out: list[dict] = []
    seen: set[str] = set()
    for index, person in enumerate(raw):
        where = _item_loc(raw, index, loc)
        if not isinstance(person, Mapping) or person.get("id") is None \
                or not trimmed(str(person["id"])):
            problems.append((where, f"{name}: each person needs an `id:`"))
            continue
        if not _scalar(person["id"]):  # a list or a mapping was loaded as its repr
            problems.append((_value_loc(person, "id", where), f"{name}: person id must be a "
                             f"text or a number, not {written(person, 'id')}"))
            continue
        for key in person:
            if key not in PERSON_KEYS:
                problems.append((_key_loc(person, key, where), f"{name}: unknown person "
                                 f"attribute '{key}' (known: {', '.join(PERSON_KEYS)})"))
        pid = trimmed(str(person["id"]))  # as ingest trims an id
        if pid in seen:
            problems.append((where, f"{name}: person '{pid}' is listed twice"))
        seen.add(pid)
        _check_person_types(person, where, name, problems)
        out.append(_person_record(person, pid))  # (with a problem, nothing is loaded)
    return out


def _check_person_types(person: Mapping, where, name: str, problems: list) -> None:
    """Each attribute of the type its column has (a string `leads:` was read letter by
    letter, `lead_count: abc` was an internal error)."""
    for key in PERSON_KEYS:
        value = person.get(key)
        if value is None or key == "id":
            continue
        if key in ("leads", "sources"):
            ok = isinstance(value, list) and all(
                isinstance(v, (str, int)) and not isinstance(v, bool) for v in value)
            need = "a list of ids" if key == "leads" else "a list of source names"
        elif key == "lead_count":
            ok, need = whole_in(value, 1, MAX_LEAD_COUNT) is not None, \
                f"a whole number from 1 to {MAX_LEAD_COUNT:,}"
        elif key in ("first_seen", "last_seen"):
            ok, need = _timestamp(value) is not None and not isinstance(value, bool), \
                "a date or a timestamp like 2026-10-01 08:00"
            if ok and not date_in(_timestamp(value).date()):  # 0001-01-01T00:00+14:00
                ok, need = False, f"a date from {FIRST_DATE} to {LAST_DATE}"  # has no UTC
        else:
            ok, need = isinstance(value, (str, int, float)) and not isinstance(value, bool), \
                "a text"
        if not ok:
            problems.append((_value_loc(person, key, where),
                             f"{name}: person {key} must be {need}, not {written(person, key)}"))


def _person_record(person: Mapping, pid: str) -> dict:
    record = {k: person.get(k) for k in PERSON_KEYS}
    record["id"] = pid
    leads = person.get("leads")  # not a list: a problem already (_check_person_types)
    record["leads"] = [trimmed(str(v)) for v in leads] if isinstance(leads, list) else []
    for key in ("first_seen", "last_seen"):
        if record[key] is not None:
            record[key] = _timestamp(record[key])
    return record


def _parse_events(raw: Any, case: Mapping, loc, name: str, as_of: dt.date,
                  persons: list[dict], problems: list,
                  phone_key: Callable[[str], str]) -> list[dict]:
    if not isinstance(raw, list):
        problems.append((_value_loc(case, "events", loc), f"{name}: `events:` must be a list"))
        return []
    ids = {p["id"] for p in persons}
    phones = {phone_key(trimmed(str(p["phone"]))) for p in persons
              if p.get("phone") is not None}
    leads = {lead for p in persons for lead in p["leads"]}
    out: list[dict] = []
    for index, event in enumerate(raw):
        where = _item_loc(raw, index, loc)
        if not isinstance(event, Mapping) or event.get("event") is None:
            problems.append((where, f"{name}: each event needs `event:` (its type)"))
            continue
        wrong = next((k for k in ("event", "category")
                      if event.get(k) is not None and not _scalar(event[k])), None)
        if wrong is not None:  # a list or a mapping was loaded as its repr
            problems.append((_value_loc(event, wrong, where), f"{name}: `{wrong}:` must be a "
                             f"text or a number, not {written(event, wrong)}"))
            continue
        event_type = (_ref(event, "event") or "").lower()
        if not event_type or event_type in NULL_TOKENS:  # '', 'N/A': ingest's no_event_type
            problems.append((_value_loc(event, "event", where), f"{name}: `event:` "
                             f"{written(event, 'event')} is no event type (ingest rejects "
                             "such a row as no_event_type)"))
            continue
        subject = _subject(event, ids, phones, leads, phone_key)
        if subject is None:
            problems.append((where, f"{name}: an event needs `person:` (a person id of this "
                             "case), `phone:` or `lead_id:` of a listed person"))
            continue
        # at: is the whole instant: a days_ago: or time: beside it was silently ignored
        beside = next((k for k in ("days_ago", "time") if k in event), None)
        if event.get("at") is not None and beside is not None:
            problems.append((_key_loc(event, beside, where), f"{name}: an event has both "
                             f"`at:` and `{beside}:`: write the date and time of day in "
                             "`at:`, or use `days_ago:` with `time:`"))
            continue
        days = event.get("days_ago")
        if event.get("at") is None and is_number(days) and \
                whole_in(days, -MAX_DAYS, MAX_DAYS) is None:
            problems.append((_value_loc(event, "days_ago", where), f"{name}: days_ago must be "
                             f"a whole number of days from {-MAX_DAYS} to {MAX_DAYS}, not "
                             f"{written(event, 'days_ago')}"))
            continue
        if event.get("at") is None and _time_of(event) is None:
            problems.append((_value_loc(event, "time", where), f"{name}: `time:` must be a "
                             "time of day from 00:00 to 23:59:59 (HH:MM or HH:MM:SS), not "
                             f"{written(event, 'time')}"))
            continue
        ts = _event_time(event, as_of)
        if ts is None:
            problems.append((where, f"{name}: an event needs `at:` (a timestamp) or "
                             "`days_ago:` (whole days before as_of, with optional `time:`)"))
            continue
        if event.get("at") is not None and not date_in(ts.date()):  # in zone: no UTC either
            problems.append((_value_loc(event, "at", where), f"{name}: `at:` must be a date "
                             f"from {FIRST_DATE} to {LAST_DATE}, not {written(event, 'at')}"))
            continue
        repeat = event.get("repeat", 1)
        if not isinstance(repeat, int) or isinstance(repeat, bool) or not 1 <= repeat <= 10000:
            problems.append((_value_loc(event, "repeat", where),
                             f"{name}: repeat must be a whole number from 1 to 10000"))
            continue
        amount = event.get("amount")
        amount = None if amount == "" else amount  # an empty CSV cell: no amount
        if amount is not None and (isinstance(amount, bool)
                                   or not isinstance(amount, (int, float))):
            problems.append((_value_loc(event, "amount", where),
                             f"{name}: amount must be a number"))
            continue
        # Any finite number, as ingest loads it (NaN, infinity and a number past the
        # largest double are ingest's bad_amount); a sum's own ±10^18 cut-off then applies.
        if amount is not None and finite(amount) is None:
            problems.append((_value_loc(event, "amount", where), f"{name}: amount must be a "
                             f"finite number, not {written(event, 'amount')} (ingest rejects "
                             "such a row as bad_amount)"))
            continue
        # As ingest reads them: an empty attribute is no value (an empty CSV cell), the
        # category trimmed
        attributes = {str(k): _plain(v) for k, v in event.items()
                      if k not in EVENT_RESERVED and v != ""}
        category = None if event.get("category") is None else trimmed(str(event["category"]))
        out.append({
            "subject": subject, "event_type": event_type, "ts": ts,
            "amount": None if amount is None else float(amount),
            "category": category or None,
            "attributes": json.dumps({k: v if isinstance(v, str) else json.dumps(v)
                                      for k, v in attributes.items()}, ensure_ascii=False)
            if attributes else None,
            "repeat": repeat,
        })
    return out


def _subject(event: Mapping, ids: set, phones: set, leads: set,
             phone_key: Callable[[str], str]) -> str | None:
    """The event's subject as ingest writes it ('phone:' and the trimmed text), when it
    names a listed person: a phone in any spelling of the person's (as resolve links
    `138-0000-0001` and `+86 138 0000 0001`)."""
    if (person := _ref(event, "person")) is not None:
        return f"person:{person}" if person in ids else None
    if (phone := _ref(event, "phone")) is not None:
        return f"phone:{phone}" if phone_key(phone) in phones else None
    if (lead := _ref(event, "lead_id")) is not None:
        return f"lead:{lead}" if lead in leads else None
    return None


def _ref(mapping: Mapping, key: str) -> str | None:
    """An id, phone or event type as ingest reads it: trimmed; None when missing or empty.
    (A person id of a fixture is any name: `none` is one.)"""
    if mapping.get(key) is None:
        return None
    return trimmed(str(mapping[key])) or None


def _scalar(value: Any) -> bool:
    """A text or a number (a date YAML read is its text): not a boolean, list or mapping."""
    return isinstance(value, (str, int, float, dt.date)) and not isinstance(value, bool)


def _phone_keyer(region: str) -> Callable[[str], str]:
    """A phone's identity key: E.164 when it is a valid number (`normalize_phone`, as
    resolve's SQL and phonenumbers normalise it), else its cleaned text; the SQL side
    is `fixture_phones_sql`."""
    pattern = cn_mobile_pattern()
    return lambda text: normalize_phone(text, region, pattern) or clean_phone(text)


def _event_time(event: Mapping, as_of: dt.date) -> dt.datetime | None:
    if event.get("at") is not None:
        return _timestamp(event["at"])
    days = event.get("days_ago")
    if not isinstance(days, int) or isinstance(days, bool):
        return None
    time = _time_of(event)
    return None if time is None else dt.datetime.combine(as_of - dt.timedelta(days=days), time)


TIME_RE = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?")


def _time_of(event: Mapping) -> dt.time | None:
    """An event's `time:` (12:00 without one); None when it is not a time of day. YAML
    1.1 reads an unquoted 09:30 as the number 570 and 10:00:00 as 36000 (base 60): the
    file's text is read instead, so both are what they say, and 25:00 is no time."""
    raw = event.get("time")
    if raw is None:
        return DEFAULT_TIME
    if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
        return None
    text = raw if isinstance(raw, str) else plain_text(event, "time")
    if text is None:  # a number not read from a file: minutes after midnight (HH:MM)
        return dt.time(raw // 60, raw % 60) if isinstance(raw, int) and 0 <= raw < 1440 \
            else None
    match = TIME_RE.fullmatch(text.strip())
    try:
        if match is None:  # an ISO time with a zone (10:00+08:00), read as an `at:`
            return dt.time.fromisoformat(text.strip()) if isinstance(raw, str) else None
        hours, minutes, seconds, fraction = match.groups()
        return dt.time(int(hours), int(minutes), int(seconds or 0),
                       int((fraction or "").ljust(6, "0")))
    except ValueError:  # 25:00, 10:60
        return None


def _parse_expect(raw: Any, case: Mapping, loc, name: str, persons: list[dict],
                  problems: list) -> list[tuple]:
    if not isinstance(raw, Mapping) or not raw:
        problems.append((_value_loc(case, "expect", loc) if "expect" in case else loc,
                         f"{name}: `expect:` must map person id → {{tag: value}}"))
        return []
    ids = {p["id"] for p in persons}
    out = []
    for person, values in raw.items():
        where = _key_loc(raw, person, loc)
        if trimmed(str(person)) not in ids:
            problems.append((where, f"{name}: expectation for unknown person '{person}'"))
            continue
        if not isinstance(values, Mapping) or not values:  # {} checks nothing: no pass
            problems.append((where, f"{name}: expectations of '{person}' must map tag → value"))
            continue
        for key, value in values.items():
            out.append((trimmed(str(person)), str(key), value,
                        _key_loc(values, key, where)))
    return out


# --------------------------------------------------------------------------- running


def nothing_checked(result: Mapping) -> str | None:
    """Why a result with no case fails (`to_dict` of a run that found no fixture), else
    None."""
    return None if result["cases"] else \
        f"no fixture in {result['folder']}: nothing was checked"


def run_fixtures(rules_dir: Path | str) -> FixtureResult:
    """Check the rules, then run every fixture case; failures are returned, not raised.
    Invalid rules or fixture files raise RuleError (exit 2)."""

    rules = load_rules(rules_dir)
    result = FixtureResult(str(rules.rules_dir / TESTS_DIR))
    files = fixture_files(rules.rules_dir)
    problems: list = []
    loaded: list[Case] = []
    for path in files:
        result.files.append(str(path))
        try:
            loaded.extend(load_cases(path, rules.identity.default_region))
        except RuleError as exc:
            problems.extend(exc.problems)
    if problems:
        raise RuleError(problems)
    tag_names = {t.name for t in rules.tags.tags}
    tag_types = {t.name: t.type for t in rules.tags.tags}
    for case in loaded:
        result.cases += 1
        got = run_case(case, rules)
        for funnel, person, key, expected, actual, where in got.pop(FUNNELS_KEY, []):
            result.checks += 1
            if not values_equal(expected, actual):
                result.failures.append(Failure(case.file, where.line if where else 1,
                                               case.name, person, f"{funnel}.{key}",
                                               expected, actual))
        known = tag_names | {key for values in got.values() for key in values}
        unknown = [(where, f"{case.name}: unknown tag or key '{key}' in expect"
                           f"{did_you_mean(key, sorted(known))}")
                   for person, key, _, where in case.expect if key not in known]
        if unknown:
            raise RuleError(unknown)
        _refuse_unknown_names(case, rules)
        for person, key, expected, where in case.expect:
            result.checks += 1
            actual = typed(got.get(person, {}).get(key), tag_types.get(key))
            if not values_equal(expected, actual, rules.tags.timezone):
                result.failures.append(Failure(case.file, where.line if where else 1,
                                               case.name, person, key, expected, actual))
    return result


def _refuse_unknown_names(case: Case, rules: RuleSet) -> None:
    """An expected pool or grade the rules do not define is a typo in the fixture (exit 2
    where it is written), not a check that fails whatever the rules do."""
    named = {"pool": [p.name for p in rules.routing.pools],
             "grade": [g.name for g in rules.scoring.grades]}
    unknown = [(where, f"{case.name}: unknown {key} '{expected}' in expect"
                       f"{one_of(expected, named[key])}")
               for _, key, expected, where in case.expect
               if key in named and isinstance(expected, str) and expected not in named[key]]
    if unknown:
        raise RuleError(unknown)


def run_case(case: Case, rules: RuleSet) -> dict[str, dict[str, Any]]:
    """Load the case into a fresh in-memory workspace, run tags (then scoring and routing
    where their rule files exist), return person → {tag or key: value}."""

    ws = open_memory()
    try:
        load_case_data(ws, case, rules.tags.timezone, rules.identity.default_region)
        ws.start_run("rules test", case.as_of, rules.tags.rules_hash)
        run_tags(ws, rules.tags, case.as_of, run_id=ws.run_id)
        values: dict[str, dict[str, Any]] = {p["id"]: {} for p in case.persons}
        for row in ws.rows("SELECT person_id, tag, CAST(value AS VARCHAR) AS value FROM tags"):
            values.setdefault(row["person_id"], {})[row["tag"]] = json.loads(row["value"])
        for extra_values in (scoring_stage.fixture_values(ws, rules.scoring, case.as_of),
                             routing_stage.fixture_values(ws, rules.routing, case.as_of)):
            for person, extra in extra_values.items():
                values.setdefault(str(person), {}).update(extra)
        if case.funnels:
            values[FUNNELS_KEY] = funnel_checks(ws, case, rules)
        return values
    finally:
        ws.con.close()


FUNNELS_KEY = "\0funnels"  # run_case's entry for the funnel checks (no person id)


def funnel_checks(ws, case: Case, rules: RuleSet) -> list[tuple]:
    """Each funnel expectation of a case with the value the report gives:
    (funnel, group, step.key, expected, got, where). Unknown funnels, groups' steps or
    `by:` dimensions are rule errors (exit 2), like unknown tags."""
    out = []
    for funnel, (by, attribution, checks, places) in case.funnels.items():
        def failed(where, exc):
            return RuleError([(where, f"{case.name}: {exc}")])
        # each problem at the key that has it: the funnel's name, an item of by:, attribution:
        try:
            found = find_funnel(rules, funnel)
        except (RuleError, UsageError) as exc:
            raise failed(places["funnel"], exc) from None
        if attribution is not None and attribution not in ATTRIBUTIONS:
            raise failed(places["attribution"], f"attribution must be first or last, not "
                         f"'{attribution}'{did_you_mean(attribution, ATTRIBUTIONS)}")
        seen: set[str] = set()
        for name, where in zip(by, places["by"], strict=True):
            try:
                dims = choose_dimensions(found, [name], rules)
            except (RuleError, UsageError) as exc:
                raise failed(where, exc) from None
            if seen & {d.name for d in dims}:
                raise failed(where, f"by: '{name}' is listed twice")
            seen.update(d.name for d in dims)
        try:
            report = funnel_report(ws, rules, funnel, by=by, as_of=case.as_of,
                                   attribution=attribution)
        except (RuleError, UsageError) as exc:
            raise failed(places["funnel"], exc) from None
        groups = {", ".join("(none)" if v is None else str(v) for v in g["key"].values())
                  or ALL_GROUP: {s["step"]: s for s in g["steps"]} for g in report["groups"]}
        for group, step, key, expected, where in checks:
            if step not in report["steps"]:
                raise RuleError([(where, f"{case.name}: funnel '{funnel}' has no step "
                                  f"'{step}' (steps: {', '.join(report['steps'])})")])
            got = groups.get(group, {}).get(step, {}).get(key)
            if got is None and key == "persons":
                got = 0  # a group nobody entered has 0 persons at every step
            name = f"{step}" if key == "persons" else f"{step}.{key}"
            out.append((funnel, group, name, expected, got, where))
    return out


def _naive_and_zoned(values: list[dt.datetime | None]) -> dict[str, Any]:
    """Arrow columns `<>` (naive timestamps) and `<>_utc` (zoned ones as UTC instants)."""
    import pyarrow as pa

    def utc(v):
        return v.astimezone(dt.UTC).replace(tzinfo=None)
    zoned = [v is not None and v.tzinfo is not None for v in values]
    return {"": pa.array([None if z else v for v, z in zip(values, zoned, strict=True)],
                         pa.timestamp("us")),
            "_utc": pa.array([utc(v) if z else None for v, z in zip(values, zoned, strict=True)],
                             pa.timestamp("us", tz="UTC"))}


def load_case_data(ws, case: Case, timezone: str, region: str = "CN") -> None:
    """persons, events and subject_persons of one case, via Arrow (no row-by-row SQL);
    zoned timestamps in the workspace `timezone`, as ingest reads them."""
    import pyarrow as pa

    people = case.persons
    ws.register("fixture_persons", pa.table({
        "person_id": [p["id"] for p in people],
        "name": [_str(p["name"]) for p in people],
        "phone": [_str(p["phone"]) for p in people],
        "email": [_str(p["email"]) for p in people],
        "wechat": [_str(p["wechat"]) for p in people],
        "device_id": [_str(p["device_id"]) for p in people],
        "id_card": [_str(p["id_card"]) for p in people],
        "city": [_str(p["city"]) for p in people],
        "province": [_str(p["province"]) for p in people],
        "channel": [_str(p["channel"]) for p in people],
        "source": [_str(p["source"]) for p in people],
        "sources": pa.array([[str(s) for s in p["sources"]] if p["sources"] else None
                             for p in people], pa.list_(pa.string())),
        **{key + suffix: column for key in ("first_seen", "last_seen")
           for suffix, column in _naive_and_zoned([p[key] for p in people]).items()},
        "lead_count": pa.array([p["lead_count"] if p["lead_count"] is not None
                                else max(len(p["leads"]), 1) for p in people], pa.int32()),
        "leads": pa.array([p["leads"] for p in people], pa.list_(pa.string())),
    }))
    ws.register("fixture_events", pa.table({
        "subject": [e["subject"] for e in case.events],
        "event_type": [e["event_type"] for e in case.events],
        **{"ts" + suffix: column
           for suffix, column in _naive_and_zoned([e["ts"] for e in case.events]).items()},
        "amount": pa.array([e["amount"] for e in case.events], pa.float64()),
        "category": pa.array([e["category"] for e in case.events], pa.string()),
        "attributes": pa.array([e["attributes"] for e in case.events], pa.string()),
        "repeat": pa.array([e["repeat"] for e in case.events], pa.int64()),
    }))
    ws.script(fixture_load_sql(timezone))
    # phones as resolve links them: each spelling of a person's phone finds the person
    ws.script(fixture_phones_sql(cn_mobile_pattern(), region.upper() == "CN"))
    normalize_phone_leftovers(ws, [FIXTURE_SUBJECT_PHONES, FIXTURE_PERSON_PHONES], region)
    ws.execute(fixture_subjects_sql())
    # city and province as resolve reads a lead's given ones: official names whatever the
    # spelling (上海, Shanghai → 上海市), a city's province. Not filled from an ID card or a
    # mobile prefix: resolve takes only valid, unblocked ones, which a fixture's are not
    # checked to be (a fixture gives the city it means).
    ws.execute("CREATE OR REPLACE TEMP TABLE fixture_golden AS SELECT * REPLACE ("
               "CAST(NULL AS VARCHAR) AS phone, CAST(NULL AS VARCHAR) AS id_card) FROM persons")
    with places_registered(ws, "fixture_places"), placed_persons(
            ws, "fixture_golden", "fixture_given", "fixture_places",
            "fixture_phone_places") as placed:
        ws.execute(f"UPDATE persons SET {', '.join(f'{c} = x.{c}' for c in PLACE_COLUMNS)} "
                   f"FROM ({placed}) x WHERE persons.person_id = x.person_id")


def fixture_load_sql(timezone: str) -> list[str]:
    def local(column: str) -> str:
        return f"coalesce({column}, timezone({literal(timezone)}, {column}_utc))"
    return [
        "INSERT INTO persons (person_id, name, phone, email, wechat, device_id, id_card, city, "
        "province, channel, source, first_seen, last_seen, lead_count, sources, phones, emails) "
        "SELECT person_id, name, phone, email, wechat, device_id, id_card, city, province, "
        f"channel, source, {local('first_seen')}, {local('last_seen')}, lead_count, sources, "
        "CASE WHEN phone IS NULL THEN NULL ELSE [phone] END, "
        "CASE WHEN email IS NULL THEN NULL ELSE [email] END FROM fixture_persons",
        "INSERT INTO events (file_id, row_number, source, subject, event_type, ts, amount, "
        "category, attributes) "
        f"SELECT 0, row_number() OVER (), 'fixture', subject, event_type, {local('ts')}, "
        "amount, category, "
        "CAST(attributes AS JSON) FROM fixture_events, range(repeat)",
    ]


FIXTURE_SUBJECT_PHONES = "fixture_subject_phones"
FIXTURE_PERSON_PHONES = "fixture_person_phones"


def fixture_phones_sql(mobile_pattern: str, cn_default: bool) -> list[str]:
    """The identity keys of the events' phone subjects and of the persons' phones,
    normalised as resolve normalises them (phonenumbers' leftovers after these:
    `normalize_phone_leftovers`)."""
    persons = ("SELECT person_id, phone AS raw_value, false AS split FROM fixture_persons "
               "WHERE phone IS NOT NULL")
    return [
        f"CREATE OR REPLACE TEMP TABLE fixture_subjects AS "
        f"{distinct_subjects_sql('fixture_events')}",
        subject_phones_sql(FIXTURE_SUBJECT_PHONES, "fixture_subjects", mobile_pattern,
                           cn_default),
        f"CREATE OR REPLACE TEMP TABLE {FIXTURE_PERSON_PHONES} AS "
        f"{keyed_sql('phone', persons, 'person_id', mobile_pattern, cn_default)}",
    ]


def fixture_subjects_sql() -> str:
    """subject_persons of a case: a person id, a lead id of a person, a phone whose key
    is a person's phone's (any spelling of it)."""
    return (
        "INSERT INTO subject_persons (subject, person_id) SELECT subject, min(person_id) FROM ("
        "  SELECT 'person:' || person_id AS subject, person_id FROM fixture_persons"
        f"  UNION ALL SELECT s.subject, p.person_id FROM {FIXTURE_SUBJECT_PHONES} s "
        f"  JOIN {FIXTURE_PERSON_PHONES} p ON p.key_value = s.key_value"
        "  UNION ALL SELECT 'lead:' || unnest(leads), person_id FROM fixture_persons"
        ") GROUP BY subject")


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


MILLIONTH = Decimal("0.000001")


def _decimal(value: int | float) -> Decimal:
    """The number as written (a float as its shortest repr: 0.1 is 0.1), never through
    a float: 9007199254740993 stays itself."""
    return Decimal(value) if isinstance(value, int) else Decimal(repr(value))


def numbers_equal(expected: int | float, got: int | float) -> bool:
    """Whole numbers exactly (1000000001 is not 1000000000, 2**53 + 1 is not 2**53, and a
    float that cannot hold the expected whole number is not it); numbers with a fraction
    to the millionth (sums are exact to it: 0.1 + 0.2 is 0.3)."""
    a, b = _decimal(expected), _decimal(got)
    if not (a.is_finite() and b.is_finite()):
        return a == b
    if a == a.to_integral_value() and b == b.to_integral_value():
        return a == b
    try:
        return a.quantize(MILLIONTH, ROUND_HALF_EVEN) == b.quantize(MILLIONTH, ROUND_HALF_EVEN)
    except InvalidOperation:  # past 28 digits: a whole number far from one with a fraction
        return False


def typed(value: Any, tag_type: str | None) -> Any:
    """A tag's value as `values_equal` compares it: a date or timestamp tag's (stored as
    JSON text) as a date or a datetime; so are the values of a list of dates or
    timestamps (a `top` tag over such a field)."""
    element = element_of(tag_type) if tag_type is not None else None
    if isinstance(value, list) and element in ("date", "timestamp"):
        return [typed(v, element) for v in value]
    if isinstance(value, str) and tag_type in ("date", "timestamp"):
        try:
            return (dt.date if tag_type == "date" else dt.datetime).fromisoformat(value)
        except ValueError:
            return value
    return value


def _instant(value: Any, timezone: str | None) -> dt.datetime | None:
    """A date or a timestamp as the local time it is: a date is its midnight (as SQL
    compares a date with a timestamp, and as a fixture's `at:` date is read), a zoned
    timestamp is converted to the workspace time zone (as a fixture's `at:`), a text is
    read as either (an expectation written `'2026-10-01 23:59'`); else None."""
    if isinstance(value, str):
        value = _timestamp(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(ZoneInfo(timezone or "UTC")).replace(tzinfo=None)
        return value
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time(0, 0))
    return None


def values_equal(expected: Any, got: Any, timezone: str | None = None) -> bool:
    if expected is None or got is None:
        return expected is None and got is None
    if isinstance(expected, bool) or isinstance(got, bool):
        return expected is got
    if isinstance(expected, (int, float)) and isinstance(got, (int, float)):
        return numbers_equal(expected, got)
    if isinstance(expected, (list, tuple)) and isinstance(got, list):
        return len(expected) == len(got) and all(
            values_equal(a, b, timezone) for a, b in zip(expected, got, strict=True))
    if isinstance(got, dt.date):  # a date or timestamp tag (`typed`)
        instant = _instant(expected, timezone)
        return instant is not None and instant == _instant(got, timezone)
    if isinstance(expected, dt.date):  # of a text (or number) value: never equal
        return False
    # a text is expected as text: `100` (a number) is not the text '100'
    return isinstance(expected, str) and expected == got if isinstance(got, str) \
        else expected == got
