"""Stable person ids: re-runs, fresh workspaces, new data, merges and splits."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib

from leadctl.identity import history as h
from leadctl.identity.config import IdentityConfig
from leadctl.identity.lookup import changed_after_sql, person_changes_sql, resolve_person
from leadctl.identity.overrides import LeadRef, Override
from leadctl.identity.resolve import resolve_identities
from leadctl.workspace import open_memory
from tests.test_identity_support import (
    add_leads,
    clusters,
    groups,
    person_of,
    resolve,
    workspace,
)

LEADS = [
    {"lead_id": "A", "source": "sem", "phone": "13812345678", "created_at": "2026-01-02 10:00"},
    {"lead_id": "B", "source": "feed", "phone": "138 1234 5678", "email": "x@qq.com",
     "created_at": "2026-01-05 10:00"},
    {"lead_id": "C", "source": "seo", "email": "X@QQ.COM", "created_at": "2026-01-01 09:00"},
    {"lead_id": "D", "source": "app", "phone": "13987654321", "created_at": "2026-02-01 10:00"},
    {"lead_id": "E", "source": "app", "wechat": "wx_e", "created_at": None},
]


def pid(source: str, lead_id: str, salt: str = "") -> str:
    return "P" + hashlib.md5(f"{source}|{lead_id}{salt}".encode()).hexdigest()[:12]


def history(ws) -> list[tuple]:
    return [tuple(r.values()) for r in ws.rows(
        "SELECT run_id, change, person_id, old_person_ids, leads, reason FROM identity_history "
        "ORDER BY run_id, change, person_id")]


def test_new_ids_come_from_the_oldest_lead_of_each_person():
    ws = workspace(*LEADS)
    summary = resolve(ws, run_id=1)
    assert person_of(ws) == {"A": pid("seo", "C"), "B": pid("seo", "C"), "C": pid("seo", "C"),
                             "D": pid("app", "D"), "E": pid("app", "E")}
    assert summary.ids == {"kept": 0, "new": 3, "retired": 0}
    assert history(ws) == []


def test_re_running_keeps_every_id_and_writes_no_history():
    ws = workspace(*LEADS)
    resolve(ws, run_id=1)
    before = person_of(ws)
    summary = resolve(ws, run_id=2)
    assert person_of(ws) == before
    assert summary.ids == {"kept": 3, "new": 0, "retired": 0}
    assert (summary.merges, summary.splits) == (0, 0)
    assert history(ws) == []


def test_a_fresh_workspace_with_the_same_data_derives_the_same_ids():
    first = workspace(*LEADS)
    resolve(first)
    second = workspace(*reversed(LEADS))  # other lead keys, same data
    resolve(second)
    assert person_of(second) == person_of(first)


def test_a_merge_of_persons_first_seen_together_keeps_the_id_a_fresh_workspace_derives():
    # L1 and L2 are as old as each other (dated alike, or all undated): the merged
    # person keeps the id of the smaller `source|lead_id`, as a fresh workspace names it.
    for created in ("2026-01-01 10:00", None):
        pair = [{"lead_id": "L1", "source": "sem", "phone": "13912340001", "wechat": "wxann",
                 "created_at": created},
                {"lead_id": "L2", "source": "feed", "phone": "13912340002",
                 "created_at": created}]
        bridge = {"lead_id": "X1", "source": "web", "phone": "13912340002",
                  "wechat": "wxann", "created_at": created and "2026-02-01 10:00"}
        ws = workspace(*pair)
        resolve(ws, run_id=1)
        assert sorted(set(person_of(ws).values())) == sorted([pid("sem", "L1"),
                                                              pid("feed", "L2")])
        add_leads(ws, bridge)
        resolve(ws, run_id=2)
        fresh = workspace(*pair, bridge)
        resolve(fresh)
        assert person_of(ws) == person_of(fresh) == dict.fromkeys(
            ("L1", "L2", "X1"), pid("feed", "L2"))


def test_a_tie_between_sources_one_prefixing_the_other_names_the_lead_earliest_names():
    # `web` < `web2` as names, but the text `web2|B1` < `web|A9` ('2' < '|'): the id
    # follows the pair, as `earliest` and `explain` do, also when the two merge later.
    for created in ("2026-01-01 10:00", None):
        a = {"lead_id": "A9", "source": "web", "phone": "13912340011", "created_at": created}
        b = {"lead_id": "B1", "source": "web2", "phone": "13912340012", "wechat": "wxtie",
             "created_at": created}
        bridge = {"lead_id": "Z1", "source": "zeta", "phone": "13912340011",
                  "wechat": "wxtie", "created_at": created and "2026-02-01 10:00"}
        ws = workspace(a, b)
        resolve(ws, run_id=1)
        assert person_of(ws) == {"A9": pid("web", "A9"), "B1": pid("web2", "B1")}
        add_leads(ws, bridge)
        resolve(ws, run_id=2)
        fresh = workspace(a, b, bridge)
        resolve(fresh)
        assert person_of(ws) == person_of(fresh) == dict.fromkeys(
            ("A9", "B1", "Z1"), pid("web", "A9"))
        assert ws.rows("SELECT source FROM persons") == [{"source": "web"}]


def test_new_leads_join_a_person_without_changing_its_id():
    ws = workspace(*LEADS)
    resolve(ws, run_id=1)
    before = person_of(ws)
    add_leads(ws, {"lead_id": "F", "source": "feed", "email": "x@qq.com",
                   "created_at": "2025-12-01 08:00"},  # older than every lead of the person
              {"lead_id": "G", "source": "feed", "phone": "13700000001"})
    summary = resolve(ws, run_id=2)
    after = person_of(ws)
    assert after["F"] == before["A"] == pid("seo", "C")
    assert after["G"] == pid("feed", "G")
    assert {k: after[k] for k in before} == before
    assert summary.ids == {"kept": 3, "new": 1, "retired": 0}
    assert history(ws) == []


def test_a_merge_keeps_the_oldest_id_and_is_recorded():
    ws = workspace(*LEADS)
    resolve(ws, run_id=1)
    add_leads(ws, {"lead_id": "H", "source": "agent", "phone": "13987654321",
                   "email": "x@qq.com", "wechat": "WX_E", "created_at": "2026-03-01"})
    summary = resolve(ws, run_id=2)
    survivor = pid("seo", "C")  # first seen 2026-01-01, before D (02-01); E has no date
    assert clusters(ws) == groups({"A", "B", "C", "D", "E", "H"})
    assert set(person_of(ws).values()) == {survivor}
    assert history(ws) == [
        (2, "merge", survivor, sorted([pid("app", "D"), pid("app", "E")]), 6,
         "linked by shared email, phone, wechat")]
    assert summary.ids == {"kept": 1, "new": 0, "retired": 2}
    assert (summary.merges, summary.splits) == (1, 0)
    assert ws.rows("SELECT * FROM person_aliases ORDER BY old_person_id") == [
        {"old_person_id": old, "person_id": survivor}
        for old in sorted([pid("app", "D"), pid("app", "E")])]


def test_events_naming_a_merged_person_follow_it_to_the_survivor():
    ws = workspace(*LEADS)
    resolve(ws, run_id=1)
    old = pid("app", "D")
    ws.execute("INSERT INTO events (subject, event_type, ts) VALUES (?, 'login', now())",
               [f"person:{old}"])
    add_leads(ws, {"lead_id": "H", "phone": "13987654321", "email": "x@qq.com"})
    resolve(ws, run_id=2)
    assert ws.rows("SELECT * FROM subject_persons") == [
        {"subject": f"person:{old}", "person_id": pid("seo", "C"), "status": "matched"}]


def test_a_workspace_rebuilt_from_the_files_finds_a_merged_away_id_too():
    # No person_aliases in a fresh workspace: the retired id is found through the lead
    # it was derived from, so the rebuild maps the event as the nightly workspace does.
    old = pid("app", "D")
    ws = workspace(*LEADS, {"lead_id": "H", "phone": "13987654321", "email": "x@qq.com"})
    ws.execute("INSERT INTO events (subject, event_type, ts) VALUES (?, 'login', now()), "
               "('person:P000000000000', 'login', now())", [f"person:{old}"])
    resolve(ws, run_id=1)
    assert ws.rows("SELECT * FROM person_aliases") == []
    assert ws.rows("SELECT * FROM subject_persons ORDER BY subject") == [
        {"subject": "person:P000000000000", "person_id": None, "status": "unmatched"},
        {"subject": f"person:{old}", "person_id": pid("seo", "C"), "status": "matched"}]
    assert resolve_person(ws, old.upper()) == (pid("seo", "C"), ["merged_person_id"])


def test_an_id_named_before_its_lead_arrives_is_matched_when_it_does():
    ws = workspace(*LEADS)
    ws.execute("INSERT INTO events (subject, event_type, ts) VALUES (?, 'login', now())",
               [f"person:{pid('agent', 'H')}"])
    resolve(ws, run_id=1)
    assert ws.scalar("SELECT status FROM subject_persons") == "unmatched"
    add_leads(ws, {"lead_id": "H", "source": "agent", "phone": "13987654321"})
    resolve(ws, run_id=2)  # H joins D's person: no person is named after H
    assert ws.rows("SELECT subject, person_id, status FROM subject_persons") == [
        {"subject": f"person:{pid('agent', 'H')}", "person_id": pid("app", "D"),
         "status": "matched"}]
    assert ws.rows("SELECT run_id, old_person_id, new_person_id FROM subject_moves") == [
        {"run_id": 2, "old_person_id": None, "new_person_id": pid("app", "D")}]


def test_a_split_keeps_the_id_on_the_larger_part_and_is_recorded():
    leads = [
        {"lead_id": "A", "phone": "13812345678", "email": "a@qq.com", "created_at": "2026-01-01"},
        {"lead_id": "B", "phone": "13812345678", "created_at": "2026-01-02"},
        {"lead_id": "C", "phone": "13812345678", "created_at": "2026-01-03"},
        {"lead_id": "D", "email": "a@qq.com", "created_at": "2026-01-04"},
    ]
    ws = workspace(*leads)
    resolve(ws, run_id=1)
    assert set(person_of(ws).values()) == {pid("s", "A")}
    # The phone is now shared by more records than the cap allows: it stops linking.
    summary = resolve(ws, dataclasses.replace(IdentityConfig(), max_records_per_value=2),
                      run_id=2)
    assert clusters(ws) == groups({"A", "D"}, {"B"}, {"C"})
    assert person_of(ws) == {"A": pid("s", "A"), "D": pid("s", "A"), "B": pid("s", "B"),
                             "C": pid("s", "C")}
    reason = f"no longer shares a usable identifier with the other leads of {pid('s', 'A')}"
    assert (summary.merges, summary.splits) == (0, 2)
    assert history(ws) == sorted([(2, "split", pid("s", "B"), [pid("s", "A")], 1, reason),
                                  (2, "split", pid("s", "C"), [pid("s", "A")], 1, reason)])


TIED = [  # C is ingested first; A and B are one person through the phone
    {"lead_id": "C", "email": "c@qq.com", "created_at": "2026-01-01"},
    {"lead_id": "A", "phone": "13812345678", "created_at": "2026-01-02"},
    {"lead_id": "B", "phone": "13812345678", "created_at": "2026-01-03"},
    {"lead_id": "D", "phone": "13987654321", "created_at": "2026-01-04"},  # not touched
]


def test_a_tied_split_keeps_the_id_on_the_part_holding_the_first_ingested_lead():
    """B leaves A's person and joins C's the same night: one lead each way, so A's
    part (A ingested before B) keeps the id — not the part labelled by C's smaller key."""
    ws = workspace(*TIED)
    resolve(ws, run_id=1)
    x, y = pid("s", "A"), pid("s", "C")
    config = IdentityConfig()
    config.overrides = (
        Override("cannot_link", leads=(LeadRef(None, "A"), LeadRef(None, "B"))),
        Override("must_link", leads=(LeadRef(None, "B"), LeadRef(None, "C"))))
    summary = resolve(ws, config, run_id=2)
    assert person_of(ws) == {"A": x, "B": y, "C": y, "D": pid("s", "D")}
    assert (summary.merges, summary.splits) == (0, 1)
    assert history(ws) == [(2, "split", y, [x], 1, "no longer shares a usable identifier "
                            f"with the other leads of {x}")]


def test_a_tied_split_in_a_region_gives_what_a_full_resolve_gives():
    """The same tie reached by new data (B re-delivered with C's e-mail): the region
    resolve and a full one both keep A's id on A."""
    results = []
    for full in (False, True):
        ws = workspace(*TIED)
        resolve(ws, run_id=1)
        ws.execute("UPDATE leads SET phone = NULL, email = 'c@qq.com' WHERE lead_id = 'B'")
        summary = resolve_identities(ws, IdentityConfig(), 2, full=full)
        assert summary.relinked_leads == (4 if full else 3)
        results.append((person_of(ws), history(ws)))
    assert results[0] == results[1]
    assert results[0][0] == {"A": pid("s", "A"), "B": pid("s", "C"), "C": pid("s", "C"),
                             "D": pid("s", "D")}
    x, y = pid("s", "A"), pid("s", "C")  # a split of A's person, no merge into C's
    assert results[0][1] == [(2, "split", y, [x], 1, "no longer shares a usable identifier "
                              f"with the other leads of {x}")]


def test_a_derived_id_already_taken_is_derived_again_with_a_salt():
    ws = workspace({"lead_id": "A", "phone": "13812345678"},
                   {"lead_id": "B", "phone": "13912345678"})
    resolve(ws, run_id=1)
    # Pretend a previous run gave lead A's person the id lead B would derive.
    ws.execute("UPDATE person_leads SET person_id = ? WHERE lead_key = 1", [pid("s", "B")])
    ws.execute("UPDATE persons SET person_id = ? WHERE person_id = ?",
               [pid("s", "B"), pid("s", "A")])
    ws.execute("DELETE FROM person_leads WHERE lead_key = 2")
    resolve(ws, run_id=2)
    assert person_of(ws) == {"A": pid("s", "B"), "B": pid("s", "B", "#1")}


def test_id_builders_are_plain_sql():

    assert h.new_id_sql("a.anchor", 0) == "'P' || substr(md5(a.anchor), 1, 12)"
    assert h.new_id_sql("a.anchor", 2) == "'P' || substr(md5(a.anchor || '#2'), 1, 12)"


def test_a_persons_identity_changes_are_the_same_alone_and_in_a_set():
    # One builder for the portrait's person and find's set: a row counts once for each
    # person it names (its id, an id a later merge retired into it, one of its old ids)
    ws = open_memory()
    ws.execute("INSERT INTO runs (run_id, as_of) VALUES (1, DATE '2026-11-02'), "
               "(2, DATE '2026-11-04'), (3, DATE '2026-11-06')")
    # 1: Y absorbed X; 2: a split gave X back; 3: X absorbed Y (Y retired into X)
    ws.execute("INSERT INTO identity_history VALUES (1, NULL, 'merge', 'Y', ['X', 'X'], 2, ''),"
               " (2, NULL, 'split', 'X', ['Y'], 1, ''), (3, NULL, 'merge', 'X', ['Y'], 2, ''),"
               " (3, NULL, 'merge', 'Z', ['W'], 2, '')")
    ws.execute("INSERT INTO person_aliases VALUES ('Y', 'X'), ('W', 'Z')")

    def runs(person):
        return sorted(r[0] for r in ws.execute(f"SELECT run_id FROM ({person_changes_sql()})",
                                               [person] * 3).fetchall())

    assert (runs("X"), runs("Z"), runs("Y")) == ([1, 2, 3], [3], [1, 2, 3])
    for day, alone in (("2026-11-01", {"X": "2026-11-06", "Z": "2026-11-06"}),
                       ("2026-11-05", {"X": "2026-11-06", "Z": "2026-11-06"}),
                       ("2026-11-06", {"X": None, "Z": None})):
        as_of = dt.date.fromisoformat(day)
        for person, expected in alone.items():
            got = ws.scalar(changed_after_sql(as_of, "?"), [person] * 4)
            assert (str(got) if got else None) == expected, (day, person)
        both = ws.scalar(changed_after_sql(as_of, "SELECT 'X' UNION ALL SELECT 'Z'"))
        assert (str(both) if both else None) == alone["X"], day
