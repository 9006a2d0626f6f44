"""Allocation: round robin, weighted, least loaded, capacity (one per rep, reset each
period), determinism, and the set-based slot matching against dealing one at a time."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter

from routing_cases import (
    AS_OF,
    add_persons,
    log_count,
    make_ws,
    one_pool,
    owners,
    ranked,
    rules,
    state,
)

from leadctl.routing.allocation import ALLOCATIONS, Allocation, slot_base_sql
from leadctl.routing.stage import run_routing


def test_round_robin_deals_in_turn_by_score(tmp_path):
    ws = make_ws(ranked(10))
    r = one_pool(tmp_path, "round_robin", "- ann\n- bob\n- cat\n")
    summary = run_routing(ws, r, AS_OF, run_id=1)
    got = owners(ws)
    assert [got[f"p{i:02d}"] for i in range(1, 11)] == [
        "ann", "bob", "cat", "ann", "bob", "cat", "ann", "bob", "cat", "ann"]
    assert Counter(got.values()) == {"ann": 4, "bob": 3, "cat": 3}
    assert summary["moves"] == [{"from": None, "to": "sales", "reason": "dealt", "persons": 10}]
    # The rotation continues across runs in the same period: bob and cat are behind.
    add_persons(ws, ranked(2, prefix="q"))
    run_routing(ws, r, AS_OF, run_id=2)
    assert (owners(ws)["q01"], owners(ws)["q02"]) == ("bob", "cat")


def test_weighted_gives_shares_in_proportion(tmp_path):
    ws = make_ws(ranked(8))
    r = one_pool(tmp_path, "weighted", "- {name: ann, weight: 3}\n- {name: bob, weight: 1}\n")
    run_routing(ws, r, AS_OF, run_id=1)
    got = owners(ws)
    assert [got[f"p{i:02d}"] for i in range(1, 9)] == [
        "ann", "ann", "bob", "ann", "ann", "ann", "bob", "ann"]
    big = make_ws(ranked(400))
    run_routing(big, r, AS_OF, run_id=1)
    assert Counter(owners(big).values()) == {"ann": 300, "bob": 100}


def test_weights_in_the_same_ratio_deal_the_same_ties_included(tmp_path):
    """0.3:0.9 is 1:3: the keys divide by whole shares (1 and 3), so ann's slot keys
    0.5 and 1.5 tie with bob's 1.5/3 and 4.5/3 and go to ann, listed first, as with 1:3
    (the floating keys 0.5/0.3 and 1.5/0.9 differ in their last bit: bob got it)."""
    dealt = {}
    for weights in ("1:3", "0.3:0.9", "0.000002:0.000006", "250000:750000"):
        ann, bob = weights.split(":")
        folder = tmp_path / weights.replace(":", "_")
        folder.mkdir()
        r = one_pool(folder, "weighted",
                     f"- {{name: ann, weight: {ann}}}\n- {{name: bob, weight: {bob}}}\n")
        assert [(rep.weight, rep.share) for rep in r.pool("sales").reps] == [
            (float(ann), 1), (float(bob), 3)]
        ws = make_ws(ranked(8))
        run_routing(ws, r, AS_OF, run_id=1)
        dealt[weights] = [owners(ws)[f"p{i:02d}"] for i in range(1, 9)]
    assert dealt == dict.fromkeys(dealt, [
        "bob", "ann", "bob", "bob", "bob", "ann", "bob", "bob"])


def test_least_loaded_fills_the_emptiest_reps_first(tmp_path):
    held = [(f"h{i}", 50.0, "A", "east") for i in range(4)]
    ws = make_ws(held + ranked(4))
    ws.execute("INSERT INTO ownership VALUES "
               "('h0', 'sales', 'ann', 'contacting', '2026-10-01', '2026-10-01', NULL, false, "
               "'dealt'), "
               "('h1', 'sales', 'ann', 'contacting', '2026-10-01', '2026-10-01', NULL, false, "
               "'dealt'), "
               "('h2', 'sales', 'ann', 'contacting', '2026-10-01', '2026-10-01', NULL, false, "
               "'dealt'), "
               "('h3', 'sales', 'cat', 'contacting', '2026-10-01', '2026-10-01', NULL, false, "
               "'dealt')")
    r = one_pool(tmp_path, "least_loaded", "- ann\n- bob\n- cat\n")
    run_routing(ws, r, AS_OF, run_id=1)
    got = owners(ws)
    assert [got[f"p{i:02d}"] for i in range(1, 5)] == ["bob", "bob", "cat", "bob"]
    assert Counter(got.values()) == {"ann": 3, "bob": 3, "cat": 2}


def test_capacity_is_never_exceeded_and_resets_next_period(tmp_path):
    ws = make_ws(ranked(6))
    r = one_pool(tmp_path, "round_robin",
                 "- {name: ann, capacity: 2}\n- {name: bob, capacity: 1}\n")
    summary = run_routing(ws, r, AS_OF, run_id=1)
    got = owners(ws)
    assert [got[f"p{i:02d}"] for i in range(1, 7)] == ["ann", "bob", "ann", None, None, None]
    assert state(ws, "p04")["reason"] == "no_capacity"
    assert summary["unassigned"] == {"no_capacity": 3}
    assert summary["reps"] == [
        {"rep": "ann", "capacity": 2, "in_rules": True, "period_load": 2, "room": 0,
         "dealt": 2, "open_leads": 2},
        {"rep": "bob", "capacity": 1, "in_rules": True, "period_load": 1, "room": 0,
         "dealt": 1, "open_leads": 1}]
    # Later the same week: still full; waiting persons stay, nothing is logged for them.
    add_persons(ws, [("q01", 10.0, "A", "east"), ("q02", 9.0, "A", "east")])
    before = log_count(ws)
    again = run_routing(ws, r, AS_OF + dt.timedelta(days=2), run_id=2)
    assert owners(ws)["p04"] is None and again["changes"] == 2  # q01, q02 enter the pool
    assert log_count(ws) == before + 2
    # Next week: capacity resets; the best waiting persons are dealt first.
    run_routing(ws, r, AS_OF + dt.timedelta(days=5), run_id=3)
    got = owners(ws)
    assert [got[p] for p in ("p04", "p05", "p06", "q01", "q02")] == [
        "ann", "bob", "ann", None, None]
    loads = ws.rows("SELECT new_owner, as_of, count(*) AS n FROM assignments "
                    "WHERE new_owner IS NOT NULL GROUP BY ALL ORDER BY ALL")
    assert [(r["new_owner"], str(r["as_of"]), r["n"]) for r in loads] == [
        ("ann", "2026-11-04", 2), ("ann", "2026-11-09", 2),
        ("bob", "2026-11-04", 1), ("bob", "2026-11-09", 1)]


def test_uncapped_rep_takes_what_capped_reps_cannot(tmp_path):
    ws = make_ws(ranked(6))
    r = one_pool(tmp_path, "round_robin",
                 "- {name: ann, capacity: 2}\n- {name: bob, capacity: 1}\n- cat\n")
    run_routing(ws, r, AS_OF, run_id=1)
    got = owners(ws)
    assert [got[f"p{i:02d}"] for i in range(1, 7)] == ["ann", "bob", "cat", "ann", "cat", "cat"]


def test_rep_shared_by_two_pools_has_one_capacity(tmp_path):
    r = rules(tmp_path, """\
    pools:
      - name: east
        team: east
        allocation: round_robin
        reps: [{name: ann, capacity: 3}]
      - name: west
        team: west
        allocation: round_robin
        reps: [{name: ann, capacity: 3}, bob]
    routes:
      - {name: east, when: region = 'east', pool: east}
      - {name: west, pool: west}
    """)
    assert r.waves() == [["east"], ["west"]]
    ws = make_ws(ranked(2, region="east", prefix="e") + ranked(4, region="west", prefix="w"))
    run_routing(ws, r, AS_OF, run_id=1)
    got = owners(ws)
    assert (got["e01"], got["e02"]) == ("ann", "ann")  # earlier pool first
    assert [got[f"w0{i}"] for i in range(1, 5)] == ["ann", "bob", "bob", "bob"]
    assert ws.scalar("SELECT count(*) FROM ownership WHERE owner = 'ann'") == 3


def test_allocation_is_deterministic_whatever_the_row_order(tmp_path):
    persons = [(f"p{i:02d}", float(i % 3), "A", "east") for i in range(12)]  # score ties
    r = one_pool(tmp_path, "weighted", "- {name: ann, weight: 2}\n- bob\n- cat\n")
    first, second = make_ws(persons), make_ws(list(reversed(persons)))
    run_routing(first, r, AS_OF, run_id=1)
    run_routing(second, r, AS_OF, run_id=1)
    assert owners(first) == owners(second)
    # Ties on score are broken by person id.
    assert [owners(first)[p] for p in ("p02", "p05", "p08", "p11")] == [
        "ann", "bob", "cat", "ann"]


def test_slot_matching_equals_dealing_one_lead_at_a_time(tmp_path):
    """Random pools (seeded): the set-based allocation gives exactly what dealing each
    lead in turn to the rep with the lowest (leads + 0.5) / weight would give."""
    rng = random.Random(20261104)
    for case in range(25):
        reps = [(f"r{i}", rng.choice([1, 2, 3]), rng.choice([None, 0, 1, 2, 5]),
                 rng.randrange(0, 4)) for i in range(rng.randrange(1, 5))]
        weighted = any(w != 1 for _, w, _, _ in reps)
        listed = "".join(f"- {{name: {n}" + (f", weight: {w}" if weighted else "")
                         + ("" if c is None else f", capacity: {c + done}") + "}\n"
                         for n, w, c, done in reps)
        folder = tmp_path / f"case{case}"
        folder.mkdir()
        r = one_pool(folder, "weighted" if weighted else "round_robin", listed)
        persons = ranked(rng.randrange(1, 15))
        ws = make_ws(persons)
        for name, _, _, done in reps:  # leads already dealt this week
            for _ in range(done):
                ws.execute("INSERT INTO assignments (as_of, person_id, new_pool, new_owner) "
                           "VALUES (?, 'old', 'sales', ?)", [AS_OF, name])
        run_routing(ws, r, AS_OF, run_id=1)
        taken = {n: done for n, _, _, done in reps}
        expected = {}
        for person, *_ in persons:
            free = [(((taken[n] + 0.5) / (w if weighted else 1)), pos, n)
                    for pos, (n, w, c, done) in enumerate(reps)
                    if c is None or taken[n] - done < c]
            expected[person] = min(free)[2] if free else None
            if free:
                taken[expected[person]] += 1
        assert owners(ws) == expected, (case, reps)


# --------------------------------------------------------------------------- the entries


def test_allocations_are_listed_once_in_message_order():
    assert list(ALLOCATIONS) == ["round_robin", "weighted", "least_loaded", "claim"]
    assert [a.name for a in ALLOCATIONS.values() if a.deals] == [
        "round_robin", "weighted", "least_loaded"]
    assert [a.name for a in ALLOCATIONS.values() if a.weighted] == ["weighted"]
    assert slot_base_sql() == (
        "CAST(CASE p.allocation WHEN 'round_robin' THEN coalesce(ppr.n, 0) "
        "WHEN 'weighted' THEN coalesce(ppr.n, 0) WHEN 'least_loaded' THEN coalesce(ol.n, 0) "
        "END AS DOUBLE)")


FRESH_START = Allocation("fresh_start", "a rotation that ignores what reps got earlier in "
                         "the period", base_sql="0")


def test_a_new_allocation_is_one_entry(tmp_path, monkeypatch):
    monkeypatch.setitem(ALLOCATIONS, FRESH_START.name, FRESH_START)
    ws = make_ws(ranked(3))
    r = one_pool(tmp_path, "fresh_start", "- ann\n- bob\n")
    assert r.pool("sales").deals and r.waves() == [["sales"]]
    run_routing(ws, r, AS_OF, run_id=1)
    add_persons(ws, ranked(1, prefix="q"))
    run_routing(ws, r, AS_OF, run_id=2)
    # round_robin would give q01 to bob (ann already got 2 this week); here the
    # rotation starts again at the first rep.
    assert owners(ws) == {"p01": "ann", "p02": "bob", "p03": "ann", "q01": "ann"}
