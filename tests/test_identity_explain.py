"""explain: which values joined a lead to its person, and which could not link."""

from __future__ import annotations

import datetime as dt

import pytest

from leadctl.errors import NotFound
from leadctl.identity.explain import AmbiguousLead, explain_lead_identity
from tests.test_identity_support import person_of, resolve, workspace

LEADS = [
    {"lead_id": "A", "source": "sem", "phone": "138 1234 5678", "email": "Z@qq.com",
     "id_card": "110105194912310021", "created_at": "2026-01-01"},
    {"lead_id": "B", "source": "feed", "phone": "+8613812345678", "wechat": "wx_b",
     "created_at": "2026-01-02"},
    {"lead_id": "C", "source": "seo", "wechat": "WX_B", "created_at": "2026-01-03"},
    {"lead_id": "D", "source": "app", "email": "z@qq.com", "device_id": "0000-0000",
     "created_at": "2026-01-04"},
    {"lead_id": "E", "source": "app", "phone": "13800138000", "created_at": "2026-01-05"},
    {"lead_id": "X", "source": "feed", "phone": "13900000001"},
    {"lead_id": "X", "source": "seo", "phone": "13900000002"},
]


@pytest.fixture(scope="module")
def ws():
    ws = workspace(*LEADS)
    resolve(ws)
    return ws


def test_the_values_that_joined_a_lead_and_with_whom(ws):
    got = explain_lead_identity(ws, "A")
    person = person_of(ws)["A"]
    assert got["lead"] == {"source": "sem", "lead_id": "A",
                           "created_at": dt.datetime(2026, 1, 1, 0, 0), "chosen": "query"}
    assert (got["person_id"], got["person_leads"]) == (person, 4)
    assert got["joined_by"] == [
        {"id_type": "email", "value": "z@qq.com", "records": 2,
         "leads": [{"source": "app", "lead_id": "D", "person_id": person}]},
        {"id_type": "phone", "value": "+8613812345678", "records": 2,
         "leads": [{"source": "feed", "lead_id": "B", "person_id": person}]},
    ]
    assert got["not_linking"] == [
        {"id_type": "id_card", "raw_value": "110105194912310021", "value": None,
         "status": "invalid", "records": None,
         "reason": "not an 18-digit ID card with a valid check digit"}]
    assert got["paths"] == [
        {"lead": "feed:B", "hops": [{"from": "sem:A", "to": "feed:B", "id_type": "phone",
                                     "value": "+8613812345678"}]},
        {"lead": "seo:C", "hops": [
            {"from": "sem:A", "to": "feed:B", "id_type": "phone", "value": "+8613812345678"},
            {"from": "feed:B", "to": "seo:C", "id_type": "wechat", "value": "wx_b"}]},
        {"lead": "app:D", "hops": [{"from": "sem:A", "to": "app:D", "id_type": "email",
                                    "value": "z@qq.com"}]},
    ]


def test_blocked_values_are_listed_as_not_linking(ws):
    got = explain_lead_identity(ws, "D")
    assert got["not_linking"] == [
        {"id_type": "device_id", "raw_value": "0000-0000", "value": "0000-0000",
         "status": "blocked", "records": 1, "reason": "repeated character"}]
    single = explain_lead_identity(ws, "lead:E")
    assert (single["person_leads"], single["joined_by"], single["paths"]) == (1, [], [])
    assert single["not_linking"][0]["reason"] == "blocklist"


def test_a_lead_id_in_two_sources_must_name_its_source(ws):
    with pytest.raises(AmbiguousLead) as err:
        explain_lead_identity(ws, "X")
    assert str(err.value) == "lead id 'X' exists in 2 sources; ask for one of feed/X, seo/X"
    assert explain_lead_identity(ws, "seo:X")["lead"]["source"] == "seo"
    assert explain_lead_identity(ws, "SEO/x")["lead"]["source"] == "seo"  # as explain prints


def test_unknown_leads_and_person_fallback(ws):
    with pytest.raises(NotFound, match="no lead with id 'nope'"):
        explain_lead_identity(ws, "nope")
    person = person_of(ws)["C"]
    got = explain_lead_identity(ws, "13812345678", person_id=person)
    assert got["lead"]["lead_id"] == "A"
    assert got["lead"]["chosen"] == "oldest lead of the person"


def test_a_lead_id_in_two_sources_of_one_person_explains_the_oldest():
    # explain DUPX found the person (both leads are one), then explained nothing
    ws = workspace({"lead_id": "DUPX", "source": "e", "phone": "13911113301",
                    "created_at": "2026-09-02"},
                   {"lead_id": "DUPX", "source": "f", "phone": "13911113301",
                    "created_at": "2026-09-01"})
    resolve(ws)
    person = person_of(ws)["DUPX"]
    got = explain_lead_identity(ws, "DUPX", person_id=person)
    assert (got["lead"]["source"], got["lead"]["chosen"], got["person_leads"]) == (
        "f", "oldest lead with this id", 2)
    with pytest.raises(AmbiguousLead):  # without the person: which one is not known
        explain_lead_identity(ws, "DUPX")
