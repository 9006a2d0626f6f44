"""Golden records (survivorship per field) and event subjects → persons."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from leadctl.identity import persons
from leadctl.identity.config import IdentityConfig, Survivorship
from tests.test_identity_support import person_of, resolve, workspace

# One person (phone or e-mail shared); F is a person of its own.
LEADS = [
    {"lead_id": "A", "source": "sem", "name": "张三", "city": "上海", "phone": "13812345678",
     "email": "a@qq.com", "created_at": "2026-01-01 10:00"},
    {"lead_id": "B", "source": "feed", "name": "李四", "city": "北京", "phone": "138 1234 5678",
     "email": "b@163.com", "created_at": "2026-01-03 10:00"},
    {"lead_id": "C", "source": "agent", "city": "杭州", "phone": "13912345678",
     "email": "A@QQ.COM", "created_at": "2026-01-02 10:00"},
    {"lead_id": "D", "source": "app", "city": "Shanghai", "phone": "+8613812345678"},
    {"lead_id": "E", "source": "feed", "city": "杭州", "phone": "13812345678",
     "email": "test@test.com", "created_at": "2026-01-02 12:00"},
    {"lead_id": "F", "source": "seo", "name": " 王五 ", "city": "成都", "phone": "13700000001",
     "created_at": "2026-01-09 08:00"},
]


def golden(config: IdentityConfig | None = None) -> dict[str, dict]:
    ws = workspace(*LEADS)
    resolve(ws, config)
    ids = person_of(ws)
    rows = {r["person_id"]: r for r in ws.rows("SELECT * FROM persons")}
    return {"ACDE": rows[ids["A"]], "F": rows[ids["F"]]}


def with_rule(field: str, method: str, *sources: str) -> IdentityConfig:
    config = IdentityConfig()
    return dataclasses.replace(config, survivorship={
        **config.survivorship, field: Survivorship(method, tuple(sources))})


def test_default_golden_record():
    person = golden()["ACDE"]
    assert {k: v for k, v in person.items() if k != "person_id"} == {
        "name": "李四",  # most_frequent: 1 vote each, the most recent wins
        "phone": "+8613812345678",  # most_recent: B
        "email": "b@163.com",  # most_recent linking e-mail (E's test@test.com is blocked)
        "wechat": None, "device_id": None, "id_card": None,
        "city": "北京市", "province": "北京市",  # official names of city_raw; a city implies
        "city_raw": "北京",  # most_recent: B (D has no date: it counts as oldest)
        "province_raw": None, "city_source": "given", "province_source": "given",
        "channel": None,
        "source": "sem",  # earliest: A
        "first_seen": dt.datetime(2026, 1, 1, 10, 0), "last_seen": dt.datetime(2026, 1, 3, 10, 0),
        "lead_count": 5, "sources": ["agent", "app", "feed", "sem"],
        "phones": ["+8613812345678", "+8613912345678"], "emails": ["a@qq.com", "b@163.com"],
    }


@pytest.mark.parametrize(("method", "sources", "city"), [
    ("most_recent", (), "北京"),
    ("earliest", (), "上海"),  # A, the oldest dated lead: undated D (Shanghai) comes last
    ("most_frequent", (), "杭州"),
    ("source_priority", ("app",), "Shanghai"),
    ("source_priority", ("agent", "app"), "杭州"),
    ("source_priority", ("nowhere",), "北京"),  # no listed source has one: the most recent
])
def test_each_survivorship_method(method, sources, city):
    assert golden(with_rule("city", method, *sources))["ACDE"]["city_raw"] == city


@pytest.mark.parametrize(("method", "sources", "phone"), [
    ("most_recent", (), "+8613812345678"),
    ("earliest", (), "+8613812345678"),
    ("most_frequent", (), "+8613812345678"),
    ("source_priority", ("agent",), "+8613912345678"),
])
def test_identifier_fields_use_the_same_methods(method, sources, phone):
    assert golden(with_rule("phone", method, *sources))["ACDE"]["phone"] == phone


def test_a_single_lead_person_is_its_lead():
    person = golden()["F"]
    assert {k: person[k] for k in ("name", "city", "phone", "source", "lead_count", "sources",
                                   "phones", "emails", "first_seen", "last_seen")} == {
        "name": "王五", "city": "成都市", "phone": "+8613700000001", "source": "seo",
        "lead_count": 1, "sources": ["seo"], "phones": ["+8613700000001"], "emails": [],
        "first_seen": dt.datetime(2026, 1, 9, 8, 0), "last_seen": dt.datetime(2026, 1, 9, 8, 0)}


def test_lists_hold_every_value_of_a_cell_and_many_sources(monkeypatch):
    monkeypatch.setattr(persons, "MAX_MASK_SOURCES", 1)  # sources by list aggregation
    ws = workspace({"lead_id": "A", "phone": "13812345678/13912345678/13712345678",
                    "email": "a@qq.com, b@qq.com"},
                   {"lead_id": "B", "source": "t", "email": "c@qq.com"},
                   {"lead_id": "C", "source": "u", "email": "c@qq.com"})
    resolve(ws)
    ids = person_of(ws)
    rows = {r["person_id"]: r for r in ws.rows("SELECT * FROM persons")}
    assert (rows[ids["A"]]["phones"], rows[ids["A"]]["emails"]) == (
        ["+8613712345678", "+8613812345678", "+8613912345678"], ["a@qq.com", "b@qq.com"])
    assert rows[ids["B"]]["sources"] == ["t", "u"]


def test_more_sources_than_a_bit_mask_holds():
    # 130 sources (a night's inbox split per file): the bits would pass BIGINT and HUGEINT.
    names = [f"s{k:03d}" for k in range(130)]
    ws = workspace(*({"lead_id": f"L{k}", "source": name,  # a chain: L0-L1, L1-L2, ...
                      "email": f"e{k}@qq.com, e{k + 1}@qq.com"}
                     for k, name in enumerate(names)))
    resolve(ws)
    assert ws.rows("SELECT lead_count, sources FROM persons") == [
        {"lead_count": 130, "sources": names}]


def test_leads_of_the_same_time_are_ordered_by_source_and_lead_id_not_by_file_order():
    # same created_at: the newer is the larger (source, lead_id), whichever came in first
    tied = [{"lead_id": "L1", "source": "sa", "name": "张三", "city": "上海",
             "email": "a@qq.com", "phone": "13812345678", "created_at": "2026-01-01 10:00"},
            {"lead_id": "L2", "source": "sb", "name": "李四", "city": "北京",
             "email": "b@qq.com", "phone": "13812345678", "created_at": "2026-01-01 10:00"}]
    shown = []
    for leads in (tied, tied[::-1]):
        ws = workspace(*leads)
        resolve(ws)
        shown.append(ws.rows("SELECT name, city, email, source FROM persons"))
    assert shown[0] == shown[1] == [
        {"name": "李四", "city": "北京市", "email": "b@qq.com", "source": "sa"}]


def test_survivor_builders_are_plain_sql():
    assert persons.survivor_sql(Survivorship("most_recent"), "city") == "arg_max(city, rk)"
    assert persons.survivor_sql(Survivorship("source_priority", ("a", "b")), "value",
                                "id_type = 'phone'") == (
        "arg_min(value, {'source_rank': CASE lead_source WHEN 'a' THEN 0 WHEN 'b' THEN 1 "
        "ELSE 2 END, 'newest': -rk}) FILTER (WHERE id_type = 'phone')")


def test_event_subjects_map_to_persons():
    ws = workspace(
        {"lead_id": "L1", "source": "sem", "phone": "13812345678"},
        {"lead_id": "L2", "source": "feed", "phone": "13912345678"},
        {"lead_id": "L2", "source": "seo", "phone": "13712345678"},  # same id, another source
        {"lead_id": "L3", "source": "seo", "phone": "13800138000", "email": "c@qq.com"},
    )
    resolve(ws)
    ids = {r["source"] + ":" + r["lead_id"]: r["person_id"] for r in ws.rows(
        "SELECT l.source, l.lead_id, pl.person_id FROM leads l JOIN person_leads pl "
        "USING (lead_key)")}
    subjects = {
        f"person:{ids['sem:L1']}": (ids["sem:L1"], "matched"),
        "person:P000000000000": (None, "unmatched"),
        "lead:L1": (ids["sem:L1"], "matched"),
        "lead:L2": (None, "ambiguous"),
        "lead:nope": (None, "unmatched"),
        "phone:+86 139-1234-5678": (ids["feed:L2"], "matched"),
        "phone:13800138000": (None, "unmatched"),  # blocked: never a person's phone
        "phone:1381234": (None, "unmatched"),
    }
    ws.execute("INSERT INTO events (subject, event_type, ts) SELECT unnest(?::VARCHAR[]), "
               "'login', now()", [list(subjects)])
    resolve(ws)
    got = {r["subject"]: (r["person_id"], r["status"])
           for r in ws.rows("SELECT * FROM subject_persons")}
    assert got == subjects


def test_a_null_token_in_a_text_field_is_no_value():
    """A newer lead's `N/A` city does not win most_recent over an older real one; a lone
    lead's `null` name and `-` channel are none; a name `Na` (那) stays a name."""
    ws = workspace(
        {"lead_id": "A", "source": "sem", "name": "Na", "city": "杭州", "channel": "-",
         "phone": "13812345678", "created_at": "2026-01-01 10:00"},
        {"lead_id": "B", "source": "feed", "name": "N/A", "city": " n/a ", "province": "NULL",
         "phone": "13812345678", "created_at": "2026-01-05 10:00"},
        {"lead_id": "F", "source": "seo", "name": "null", "city": "None", "channel": "-",
         "phone": "13700000001", "created_at": "2026-01-09 08:00"})
    resolve(ws)
    rows = ws.rows("SELECT name, city_raw, province_raw, channel, lead_count FROM persons "
                   "ORDER BY lead_count DESC")
    assert rows == [
        {"name": "Na", "city_raw": "杭州", "province_raw": None, "channel": None,
         "lead_count": 2},
        {"name": None, "city_raw": None, "province_raw": None, "channel": None,
         "lead_count": 1}]


@pytest.mark.parametrize(("cities", "raw", "city"), [
    # 上海, Shanghai, 上海市 are one place: three votes against 杭州's two
    (("上海", "杭州", "Shanghai", "杭州", "上海市"), "上海市", "上海市"),
    (("上海", "杭州", "Shanghai", "杭州", "ningbo"), "杭州", "杭州市"),  # 2 + 1 + 1 + 1
    # an unknown name votes with its spellings that differ in case and spaces only
    # (no place: the city is the mobile prefix's)
    (("Foo Bar", "杭州", "foobar", "杭州", "FOO BAR "), "FOO BAR", "连云港市"),
])
def test_most_frequent_city_votes_by_place_not_by_spelling(cities, raw, city):
    ws = workspace(*({"lead_id": f"L{k}", "source": "sem", "city": c, "phone": "13812345678",
                      "created_at": f"2026-01-0{k + 1} 10:00"} for k, c in enumerate(cities)))
    resolve(ws, with_rule("city", "most_frequent"))
    assert ws.rows("SELECT city_raw, city FROM persons") == [{"city_raw": raw, "city": city}]
