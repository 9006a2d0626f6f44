"""identity why A B: the shortest path between two leads of one person, or why not."""

from __future__ import annotations

import pytest
from conftest import SAMPLE_INBOX, Cli, write

from leadctl.errors import NotFound
from leadctl.identity.config import IdentityConfig
from leadctl.identity.why import why
from tests.test_identity_support import person_of, resolve, workspace

LEADS = [
    # a chain P1 -phone- P2 -email- P3 -wechat- P4, and a shortcut-free detour
    {"lead_id": "P1", "name": "王伟", "phone": "13812345678", "created_at": "2026-01-01"},
    {"lead_id": "P2", "phone": "+86 138 1234 5678", "email": "w@qq.com",
     "created_at": "2026-01-02"},
    {"lead_id": "P3", "email": "W@qq.com", "wechat": "wx_wang", "created_at": "2026-01-03"},
    {"lead_id": "P4", "wechat": "WX_WANG", "created_at": "2026-01-04"},
    # a blocked phone, a capped one (cap 2 below), an invalid one, nothing shared
    {"lead_id": "B1", "phone": "13800138000", "created_at": "2026-01-05"},
    {"lead_id": "B2", "phone": "13800138000", "created_at": "2026-01-06"},
    {"lead_id": "C1", "phone": "13911112222", "created_at": "2026-01-07"},
    {"lead_id": "C2", "phone": "13911112222", "created_at": "2026-01-08"},
    {"lead_id": "C3", "phone": "13911112222", "created_at": "2026-01-09"},
    {"lead_id": "I1", "phone": "139abc", "email": "i1@qq.com", "created_at": "2026-01-10"},
    {"lead_id": "I2", "phone": "139abc", "created_at": "2026-01-11"},
    # a phone typo with the same name: not linked, but suggested
    {"lead_id": "T1", "name": "李娜", "phone": "13700001111", "created_at": "2026-01-12"},
    {"lead_id": "T2", "name": "李娜", "phone": "13700001112", "created_at": "2026-01-13"},
]


@pytest.fixture(scope="module")
def ws():
    ws = workspace(*LEADS)
    resolve(ws, IdentityConfig(max_records_per_value=2))
    return ws


def test_the_shortest_chain_of_shared_values(ws):
    got = why(ws, IdentityConfig(), None, "P1", "P4")
    assert (got["linked"], got["reason"], got["person_id"]) == (
        True, "shared_values", person_of(ws)["P1"])
    assert [(p["lead_id"], p["via"]) for p in got["path"]] == [
        ("P1", None), ("P2", {"type": "phone", "value": "138****5678"}),
        ("P3", {"type": "email", "value": "w***@qq.com"}),
        ("P4", {"type": "wechat", "value": "w****g"})]
    assert str(got["path"][0]["created_at"]) == "2026-01-01 00:00:00"
    revealed = why(ws, IdentityConfig(), None, "P4", "P2", reveal=True)
    assert [(p["lead_id"], p["via"] and p["via"]["value"]) for p in revealed["path"]] == [
        ("P4", None), ("P3", "wx_wang"), ("P2", "w@qq.com")]


def test_a_phone_query_stands_for_its_persons_earliest_lead(ws):
    got = why(ws, IdentityConfig(), None, "138 1234 5678", "P3")
    assert (got["a"]["lead_id"], got["a"]["chosen"]) == (
        "P1", "earliest lead of the person matched by phone")
    assert (got["a"]["query"], got["b"]["query"]) == ("138****5678", "P3")  # masked
    revealed = why(ws, IdentityConfig(), None, "138 1234 5678", "P3", reveal=True)
    assert revealed["a"]["query"] == "138 1234 5678"
    assert [p["lead_id"] for p in got["path"]] == ["P1", "P2", "P3"]
    same = why(ws, IdentityConfig(), None, "P2", "s/P2")
    assert (same["reason"], len(same["path"])) == ("same_lead", 1)


@pytest.mark.parametrize(("a", "b", "reason", "values"), [
    ("B1", "B2", "blocked", [("phone", "138****8000", "blocked", "blocklist", 2)]),
    ("C1", "C3", "capped", [("phone", "139****2222", "capped",
                             "shared by 3 records, over the cap of 2", 3)]),
    ("I1", "I2", "invalid", [("phone", "*39", "invalid", "not a valid phone number", None)]),
    ("P1", "T1", "no_shared_value", []),
])
def test_why_not(ws, a, b, reason, values):
    got = why(ws, IdentityConfig(), None, a, b)
    assert (got["linked"], got["path"], got["reason"]) == (False, [], reason)
    assert [(v["type"], v["value"], v["status"], v["reason"], v["records"])
            for v in got["values"]] == values
    assert got["suggestion"] is None


def test_why_not_names_a_suggestion_and_the_messages(ws):
    got = why(ws, IdentityConfig(), None, "T1", "T2")
    assert (got["reason"], got["message"]) == ("no_shared_value", "they share no identifier value")
    assert [(e["kind"], e["detail"]) for e in got["suggestion"]["evidence"]] == [
        ("phone_typo", "one digit different")]
    assert got["suggestion"]["reviewed"] is None  # open: `suggest` lists it
    capped = why(ws, IdentityConfig(), None, "C1", "C2")
    assert capped["message"] == ("the phone 139****2222 they share is carried by 3 records, "
                                 "over the cap, so it does not link")


def test_cannot_link_overrides_and_cut_values(ws, tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    write(rules / "identity_overrides.yaml", "overrides:\n- kind: cannot_link\n"
          "  leads: [T1, {source: s, lead_id: T2}]\n  reason: two sisters\n")
    got = why(ws, IdentityConfig(), rules, "T1", "T2")
    assert (got["reason"], got["message"], got["overrides"]) == (
        "cannot_link", "a cannot-link override separates them (two sisters)",
        [{"kind": "cannot_link", "reason": "two sisters", "file": "identity_overrides.yaml"}])
    # the pair is reviewed: shown, labelled as `suggest` (hides it) and `accept` (refuses
    # it) see it
    assert (got["suggestion"]["score"], got["suggestion"]["reviewed"]) == (0.9, "cannot_link")
    # what resolve writes for a value a cannot-link cut (status cut in blocked_identifiers)
    ws.execute("INSERT INTO blocked_identifiers VALUES "
               "('phone', '+8613911112222', 'cannot_link: two people', 3, 'cut')")
    try:
        cut = why(ws, IdentityConfig(), None, "C1", "C2")
    finally:
        ws.execute("DELETE FROM blocked_identifiers WHERE status = 'cut'")
    assert (cut["reason"], cut["values"][0]["status"], cut["values"][0]["reason"]) == (
        "cannot_link", "cut", "cannot_link: two people")


def test_a_must_link_override_is_a_hop(ws, tmp_path):
    # resolve puts must-linked leads in one person and publishes the entry's leads
    # (identity_override_leads); here by hand
    person = person_of(ws)
    ws.execute("UPDATE person_leads SET person_id = ? WHERE person_id = ?",
               [person["T1"], person["T2"]])
    ws.execute("INSERT INTO identity_override_leads (entry, kind, lead_key, reason) "
               "SELECT 0, 'must_link', lead_key, 'same person, confirmed' FROM leads "
               "WHERE lead_id IN ('T1', 'T2')")
    rules = tmp_path / "rules"
    rules.mkdir()
    write(rules / "identity_overrides.yaml", "overrides:\n- kind: must_link\n"
          "  leads: [T1, T2]\n  reason: same person, confirmed\n")
    try:
        got = why(ws, IdentityConfig(), rules, "T2", "T1")
    finally:
        ws.execute("UPDATE person_leads SET person_id = ? WHERE lead_key = (SELECT lead_key "
                   "FROM leads WHERE lead_id = 'T2')", [person["T2"]])
        ws.execute("DELETE FROM identity_override_leads")
    assert (got["linked"], got["reason"]) == (True, "must_link")
    assert [(p["lead_id"], p["via"]) for p in got["path"]] == [
        ("T2", None), ("T1", {"type": "must_link", "value": "same person, confirmed"})]


def test_unknown_queries(ws):
    with pytest.raises(NotFound, match="no lead or person matches 'nope'"):
        why(ws, IdentityConfig(), None, "nope", "P1")
    # a long number no identifier kind took (an ID card a digit short) is echoed masked
    with pytest.raises(NotFound, match=r"no lead or person matches '44\*\*\*\*31'"):
        why(ws, IdentityConfig(), None, "4401061988 0512031", "P1")


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Cli:
    cli = Cli(tmp_path_factory.mktemp("why") / "ws.duckdb")
    assert cli("ingest", SAMPLE_INBOX).exit_code == 0
    assert cli("resolve").exit_code == 0
    return cli


def test_cli_on_the_sample(sample):
    # two leads of one person that share no value themselves: two hops
    got = sample("identity", "why", "AG300012", "SEO200043", "--json")
    doc = got.json()
    assert (got.exit_code, doc["linked"], doc["reason"]) == (0, True, "shared_values")
    assert [(p["source"], p["lead_id"], p["created_at"], p["via"]) for p in doc["path"]] == [
        ("agent_list", "AG300012", "2026-08-08T13:58:00", None),
        ("feed_douyin", "DY500133", "2026-08-26T09:39:00",
         {"type": "wechat", "value": "yi****80"}),
        ("seo_forms", "SEO200043", "2026-08-15T18:15:54",
         {"type": "phone", "value": "181****1863"})]
    # T00385: one lead has its phone with a digit missing
    no = sample("identity", "why", "SEO200204", "AG300031", "--json").json()
    assert (no["linked"], no["reason"], no["suggestion"]["score"]) == (
        False, "no_shared_value", 0.9)
    blocked = sample("identity", "why", "SEO200210", "SEO200497")
    assert blocked.exit_code == 0
    assert blocked.stdout.startswith(
        "NOT LINKED: seo_forms/SEO200210 (P2e9d49342758) and seo_forms/SEO200497 "
        "(P772f1d146290): the phone 138****8000 they share is blocked (blocklist)")
    missing = sample("identity", "why", "nope", "SEO200497", "--json")
    assert (missing.exit_code, missing.json()["error"]["type"]) == (1, "NotFound")


def test_a_phone_query_of_a_source_named_with_a_space(tmp_path):
    # the earliest lead is taken as it is stored, not looked up again through its text
    # (`sem baidu/S1` cannot be parsed back: it was exit 1, "no lead with id")
    cli = Cli(tmp_path / "ws.duckdb")
    (tmp_path / "in").mkdir()
    write(tmp_path / "in" / "sem baidu.csv", "lead_id,name,phone,created_at\n"
          "S1,张三,13812340001,2026-10-01 10:00\nS2,李四,13812340002,2026-10-01 10:00\n")
    assert cli("run", "--inbox", tmp_path / "in", "--as-of", "2026-11-01").exit_code == 0
    result = cli("identity", "why", "13812340001", "13812340002", "--json")
    assert result.exit_code == 0, result.stderr
    assert (result.json()["linked"], result.json()["a"]["source"], result.json()["a"]["lead_id"]
            ) == (False, "sem baidu", "S1")


def test_a_tie_between_chains_goes_to_the_smaller_lead_not_the_earlier_key():
    # Y9 arrived before Y1: the path went through Y9 or Y1 by the order of the files
    ws = workspace({"lead_id": "X1", "phone": "13911110000"},
                   {"lead_id": "Y9", "phone": "13911110000", "email": "tie@qq.com"},
                   {"lead_id": "Y1", "phone": "13911110000", "email": "tie@qq.com"},
                   {"lead_id": "Z5", "email": "tie@qq.com"})
    resolve(ws)
    assert [p["lead_id"] for p in why(ws, IdentityConfig(), None, "X1", "Z5")["path"]] == [
        "X1", "Y1", "Z5"]


def test_a_chain_of_any_length_is_found():
    # each lead shares its phone with one neighbour and its e-mail with the other: past
    # 100 hops the search gave up ("no chain of shared values was found")
    ws = workspace(*({"lead_id": f"L{i:03d}", "phone": f"1391{i // 2 + 1000:07d}",
                      "email": f"u{(i + 1) // 2}@qq.com"} for i in range(103)))
    resolve(ws)
    got = why(ws, IdentityConfig(), None, "L000", "L102")
    assert (got["reason"], [p["lead_id"] for p in got["path"]]) == (
        "shared_values", [f"L{i:03d}" for i in range(103)])
