"""Incremental normalisation: a resolve that reuses the normalisation cache gives
exactly what a resolve from scratch gives on the same data."""

from __future__ import annotations

import dataclasses

from leadctl.identity import cache
from leadctl.identity.config import IdentityConfig, Survivorship
from leadctl.identity.tables import IDENTITY_STATE_KEY
from tests.test_identity_support import (
    add_leads,
    clusters,
    identifier,
    person_of,
    resolve,
    workspace,
)

LEADS = [
    {"lead_id": "A", "source": "sem", "phone": "138 1234 5678", "email": "A@QQ.com",
     "created_at": "2026-01-01 10:00"},
    {"lead_id": "B", "source": "feed", "phone": "13812345678/13912345678",
     "created_at": "2026-01-02 10:00"},
    {"lead_id": "C", "source": "seo", "phone": "021-12345678", "wechat": "WX_C",
     "created_at": "2026-01-03 10:00"},
    {"lead_id": "D", "source": "app", "phone": "13800138000", "email": "d@163.com"},
]
NEW_LEADS = [
    {"lead_id": "E", "source": "app", "phone": "+86 139 1234 5678", "email": "e@163.com",
     "created_at": "2026-02-01 10:00"},
    {"lead_id": "F", "source": "seo", "phone": "021 1234 5678", "email": "d@163.com"},
    {"lead_id": "G", "source": "sem", "wechat": "wx_c", "id_card": "11010519491231002X"},
]
SUBJECTS = ["phone:13812345678", "phone:+86 138-1234-5678", "phone:02112345678",
            "phone:12345", "lead:A", "lead:nobody"]
NEW_SUBJECTS = ["phone:13912345678", "phone:021 1234 5678", "phone:13812345678", "lead:E"]
RESULTS = ("lead_identifiers", "blocked_identifiers", "person_leads", "persons",
           "person_aliases", "subject_persons")
CACHE = (cache.LEAD_CELLS, cache.LEAD_VALUES, cache.SUBJECT_KEYS)


def add_events(ws, subjects: list[str]) -> None:
    ws.execute("INSERT INTO events (subject, event_type, ts) VALUES "
               + ", ".join("(?, 'visit', TIMESTAMP '2026-03-01 10:00')" for _ in subjects),
               subjects)


def snapshot(ws, tables=RESULTS) -> dict[str, list[tuple]]:
    return {t: [tuple(r.values()) for r in ws.rows(f"SELECT * FROM {t} ORDER BY ALL")]
            for t in tables}


def from_scratch(ws, config: IdentityConfig | None = None) -> dict[str, list[tuple]]:
    ws.script(cache.clear_sql())
    ws.execute(f"DELETE FROM meta WHERE key = '{IDENTITY_STATE_KEY}'")  # relink everyone
    summary = resolve(ws, config)
    assert summary.normalised_leads == ws.scalar("SELECT count(*) FROM leads")
    return snapshot(ws, RESULTS + CACHE)


def night_one():
    ws = workspace(*LEADS)
    add_events(ws, SUBJECTS)
    first = resolve(ws)
    assert (first.normalised_leads, first.normalised_subjects) == (4, 4)
    return ws


def test_new_leads_and_events_give_the_from_scratch_result():
    ws = night_one()
    add_leads(ws, *NEW_LEADS)
    add_events(ws, NEW_SUBJECTS)
    second = resolve(ws)
    assert (second.normalised_leads, second.normalised_subjects) == (3, 2)
    incremental = snapshot(ws, RESULTS + CACHE)
    assert len(incremental["person_leads"]) == 7
    # Nothing new: only the blocklist's two undecided phones go through phonenumbers.
    third = resolve(ws)
    assert (third.normalised_leads, third.normalised_subjects, third.phone_leftovers) == (0, 0, 2)
    assert snapshot(ws, RESULTS + CACHE) == incremental
    assert incremental == from_scratch(ws)


def test_a_superseded_lead_is_normalised_again_and_a_deleted_one_forgotten():
    ws = night_one()
    assert identifier(ws, "D", "phone")["status"] == "blocked"
    # A newer file replaced D's row (same lead_key) with another phone; C is gone.
    ws.execute("UPDATE leads SET phone = '13712345678' WHERE lead_id = 'D'")
    ws.execute("DELETE FROM leads WHERE lead_id = 'C'")
    summary = resolve(ws)
    assert summary.normalised_leads == 1
    assert identifier(ws, "D", "phone") == {"value": "+8613712345678", "status": "ok",
                                            "records": 1, "reason": None}
    assert ws.rows(f"SELECT raw_value FROM {cache.LEAD_VALUES} v JOIN leads l USING (lead_key) "
                   "WHERE l.lead_id = 'D' AND v.id_type = 'phone'") == [
        {"raw_value": "13712345678"}]
    assert ws.scalar(f"SELECT count(*) FROM {cache.LEAD_CELLS}") == 3
    assert snapshot(ws, RESULTS + CACHE) == from_scratch(ws)


def test_golden_records_are_redone_only_for_changed_persons():
    ws = night_one()
    ws.execute("UPDATE leads SET file_id = 1")
    resolve(ws)
    before = {r["person_id"]: r for r in ws.rows("SELECT * FROM persons")}
    # A newer file re-delivers C with another name; E joins A's person through its phone.
    ws.execute("UPDATE leads SET name = 'Cathy', file_id = 2 WHERE lead_id = 'C'")
    add_leads(ws, {"lead_id": "E", "source": "app", "phone": "13812345678", "name": "Eve",
                   "created_at": "2026-03-01 10:00"})
    resolve(ws)
    after = {r["person_id"]: r for r in ws.rows("SELECT * FROM persons")}
    people = person_of(ws)
    changed = {p for p in after if after[p] != before.get(p)}
    assert changed == {people["C"], people["E"]}
    assert after[people["C"]]["name"] == "Cathy" and after[people["E"]]["lead_count"] == 3
    assert snapshot(ws) == {k: v for k, v in from_scratch(ws).items() if k in RESULTS}


def test_a_change_of_default_region_empties_the_cache():
    ws = night_one()
    cn = snapshot(ws)
    us = dataclasses.replace(IdentityConfig(), default_region="US")
    summary = resolve(ws, us)
    assert (summary.normalised_leads, summary.normalised_subjects) == (4, 4)
    assert identifier(ws, "A", "phone")["status"] == "invalid"
    incremental = snapshot(ws, RESULTS + CACHE)
    assert incremental["lead_identifiers"] != cn["lead_identifiers"]
    assert incremental == from_scratch(ws, us)
    # Back to CN: normalised again, the first night's answer again.
    resolve(ws)
    assert snapshot(ws)["lead_identifiers"] == cn["lead_identifiers"]


def test_subjects_gone_from_events_leave_the_cache():
    ws = night_one()
    ws.execute("DELETE FROM events WHERE subject = 'phone:12345'")
    summary = resolve(ws)
    assert summary.normalised_subjects == 0
    assert [r["subject"] for r in ws.rows(
        f"SELECT subject FROM {cache.SUBJECT_KEYS} ORDER BY subject")] == [
        "phone:+86 138-1234-5678", "phone:02112345678", "phone:13812345678"]
    assert snapshot(ws, RESULTS + CACHE) == from_scratch(ws)


def test_cache_builders_are_plain_sql():
    assert cache.store_key_sql("k'1") == [
        "DELETE FROM meta WHERE key = 'identity_normalisation'",
        "INSERT INTO meta (key, value) VALUES ('identity_normalisation', 'k''1')"]
    sql = cache.changed_leads_sql("t")
    assert "c.id_card IS DISTINCT FROM l.id_card" in sql
    assert cache.normalisation_key("CN", "1", "x") != cache.normalisation_key("US", "1", "x")


def test_a_device_id_going_to_a_null_token_and_back_gives_the_from_scratch_partition():
    ws = workspace({"lead_id": "A", "device_id": "DEV-1", "created_at": "2026-01-01 10:00"},
                   {"lead_id": "B", "device_id": "dev-1", "email": "b@qq.com",
                    "created_at": "2026-01-02 10:00"},
                   {"lead_id": "C", "email": "B@qq.com", "created_at": "2026-01-03 10:00"})
    resolve(ws)
    nights = [("nan", [["A"], ["B", "C"]]), ("dev-1", [["A", "B", "C"]]),
              ("N/A", [["A"], ["B", "C"]]), ("dev-2", [["A"], ["B", "C"]]),
              ("DEV-1", [["A", "B", "C"]])]
    id_free = ("lead_identifiers", "blocked_identifiers") + CACHE
    for night, (device_id, expected) in enumerate(nights, start=2):
        # A newer file re-delivers B with this device id.
        ws.execute("UPDATE leads SET device_id = ?, file_id = ? WHERE lead_id = 'B'",
                   [device_id, night])
        resolve(ws)
        rebuilt = workspace(*ws.rows("SELECT lead_id, source, device_id, email, created_at "
                                     "FROM leads ORDER BY lead_key"))
        resolve(rebuilt)
        assert sorted(sorted(c) for c in clusters(ws)) == expected
        assert clusters(rebuilt) == clusters(ws)
        assert snapshot(ws, id_free) == snapshot(rebuilt, id_free)


def test_a_change_of_survivorship_method_relinks_as_from_scratch():
    """most_recent → earliest lives in the preparing statements, which the state key
    left out: the next night kept the old golden records."""
    ws = workspace(
        {"lead_id": "A", "source": "sem", "phone": "13812345678", "city": "广州",
         "created_at": "2026-01-01 10:00"},
        {"lead_id": "B", "source": "feed", "phone": "13812345678", "city": "杭州",
         "created_at": "2026-01-02 10:00"})
    resolve(ws)
    assert [r["city"] for r in ws.rows("SELECT city FROM persons")] == ["杭州市"]
    config = IdentityConfig()
    config.survivorship = {**config.survivorship, "city": Survivorship("earliest")}
    resolve(ws, config)
    incremental = snapshot(ws)
    assert [r["city"] for r in ws.rows("SELECT city FROM persons")] == ["广州市"]
    assert incremental == {k: v for k, v in from_scratch(ws, config).items() if k in RESULTS}
