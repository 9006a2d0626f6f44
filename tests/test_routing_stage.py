"""The route stage: routes (first match wins), default pool, sticky ownership and
reassignment, reason codes, the assignment log, dry-run, removed persons, status age."""

from __future__ import annotations

import datetime as dt

from routing_cases import AS_OF, ROUTED, log_count, make_ws, owners, ranked, rules, state

from leadctl.routing.stage import run_routing
from leadctl.workspace import open_memory


def test_first_match_wins_and_unassigned_persons_get_a_reason(tmp_path):
    r = rules(tmp_path, ROUTED.format(reassign="", default=""))
    ws = make_ws([("a1", 90, "A", "east"), ("b1", 50, "B", "east"), ("b2", 50, "B", "west"),
                  ("n1", None, None, "east")])
    summary = run_routing(ws, r, AS_OF, run_id=1)
    rows = {r["person_id"]: (r["pool"], r["owner"], r["status"], r["reason"])
            for r in ws.rows("SELECT * FROM ownership")}
    assert rows == {"a1": ("sales", "ann", "pending", "dealt"),
                    "b1": ("public_sea", None, None, "claim_pool"),
                    "b2": (None, None, None, "no_route"),
                    "n1": (None, None, None, "no_route")}
    assert summary["unassigned"] == {"claim_pool": 1, "no_route": 2}
    log = ws.rows("SELECT person_id, old_pool, new_pool, new_owner, new_status, rule, reason "
                  "FROM assignments ORDER BY person_id")
    assert [tuple(r.values()) for r in log] == [
        ("a1", None, "sales", "ann", "pending", "hot", "dealt"),
        ("b1", None, "public_sea", None, None, "warm", "claim_pool")]


def test_default_pool_catches_the_rest(tmp_path):
    r = rules(tmp_path, ROUTED.format(reassign="", default="default_pool: nurture"))
    ws = make_ws([("b2", 50, "B", "west")])
    run_routing(ws, r, AS_OF, run_id=1)
    assert ws.rows("SELECT new_pool, rule, reason FROM assignments") == [
        {"new_pool": "nurture", "rule": "default_pool", "reason": "claim_pool"}]


def test_second_run_without_changes_writes_no_log_rows(tmp_path):
    r = rules(tmp_path, ROUTED.format(reassign="", default="default_pool: nurture"))
    ws = make_ws(ranked(5) + ranked(3, grade="B", prefix="b"))
    run_routing(ws, r, AS_OF, run_id=1)
    before = (log_count(ws), ws.rows("SELECT * FROM ownership ORDER BY person_id"))
    summary = run_routing(ws, r, AS_OF + dt.timedelta(days=1), run_id=2)
    assert summary["changes"] == 0 and summary["moves"] == []
    assert (log_count(ws), ws.rows("SELECT * FROM ownership ORDER BY person_id")) == before


def test_ownership_is_sticky_unless_a_route_reassigns(tmp_path):
    ws = make_ws([("a1", 90, "A", "east"), ("c1", 10, "C", "east")])
    sticky = rules(tmp_path, ROUTED.format(reassign="", default="default_pool: nurture"))
    run_routing(ws, sticky, AS_OF, run_id=1)
    assert (state(ws, "c1")["pool"], state(ws, "a1")["owner"]) == ("nurture", "ann")
    # Grades swap: without a rule saying so, nobody moves.
    ws.execute("UPDATE scores SET grade = CASE person_id WHEN 'a1' THEN 'C' ELSE 'A' END")
    assert run_routing(ws, sticky, AS_OF, run_id=2)["changes"] == 0
    # A reassigning route pulls the now-hot person out of nurture; a1 keeps its owner.
    moving = rules(tmp_path, ROUTED.format(reassign="\n    reassign: true\n    from: [nurture]",
                                           default="default_pool: nurture"))
    summary = run_routing(ws, moving, AS_OF, run_id=3)
    assert summary["details"] == [{
        "person_id": "c1", "from": {"pool": "nurture", "owner": None, "status": None},
        "to": {"pool": "sales", "owner": "bob", "status": "pending"},
        "rule": "hot", "reason": "reassigned"}]
    assert state(ws, "a1")["owner"] == "ann"


def test_dry_run_lists_moves_and_changes_nothing(tmp_path):
    r = rules(tmp_path, ROUTED.format(reassign="", default=""))
    ws = make_ws([("a1", 90, "A", "east"), ("a2", 80, "A", "west")])
    summary = run_routing(ws, r, AS_OF, dry_run=True)
    assert summary["run_id"] is None and summary["changes"] == 2
    assert [(d["person_id"], d["to"]["owner"], d["rule"], d["reason"])
            for d in summary["details"]] == [("a1", "ann", "hot", "dealt"),
                                             ("a2", "bob", "hot", "dealt")]
    assert log_count(ws) == 0 and ws.scalar("SELECT count(*) FROM ownership") == 0
    assert not ws.table_exists("route_decided")


def test_persons_merged_away_leave_the_ownership_table(tmp_path):
    r = rules(tmp_path, ROUTED.format(reassign="", default=""))
    ws = make_ws([("a1", 90, "A", "east"), ("a2", 80, "A", "east")])
    run_routing(ws, r, AS_OF, run_id=1)
    ws.execute("DELETE FROM person_features WHERE person_id = 'a2'")
    ws.execute("DELETE FROM persons WHERE person_id = 'a2'")
    summary = run_routing(ws, r, AS_OF, run_id=2)
    assert summary["removed"] == 1
    assert list(owners(ws)) == ["a1"]
    assert ws.rows("SELECT person_id, old_owner, new_owner, reason FROM assignments "
                   "WHERE run_id = 2") == [{"person_id": "a2", "old_owner": "bob",
                                            "new_owner": None, "reason": "person_removed"}]


def test_route_conditions_can_use_status_age(tmp_path):
    r = rules(tmp_path, """\
    pools:
      - {name: sales, allocation: round_robin, reps: [ann]}
      - {name: rescue, allocation: round_robin, reps: [bob]}
    routes:
      - name: stuck
        when: status = 'unclear_intent' and status_days >= 10
        pool: rescue
        reassign: true
      - {name: all, pool: sales}
    """)
    ws = make_ws([("a1", 90, "A", "east")])
    run_routing(ws, r, AS_OF, run_id=1)
    ws.execute("UPDATE ownership SET status = 'unclear_intent', status_since = DATE '2026-11-05'")
    run_routing(ws, r, dt.date(2026, 11, 14), run_id=2)
    assert state(ws, "a1")["owner"] == "ann"
    run_routing(ws, r, dt.date(2026, 11, 15), run_id=3)
    assert (state(ws, "a1")["pool"], state(ws, "a1")["owner"]) == ("rescue", "bob")


def test_route_before_the_tags_follow_a_resolve_takes_its_persons_from_persons(tmp_path):
    # A split made "a9" (not tagged yet) and gave it a1's sale lock; a merge retired "a2"
    # (still in person_features): routed, the lock was dropped as person_removed and a2
    # was dealt as a new person.
    r = rules(tmp_path, ROUTED.format(reassign="", default=""))
    ws = make_ws([("a1", 90, "A", "east")])
    run_routing(ws, r, AS_OF, run_id=1)
    ws.execute("UPDATE ownership SET person_id = 'a9', status = 'closed', "
               "locked_until = DATE '2027-01-01'")
    ws.execute("UPDATE persons SET person_id = 'a9'")
    ws.execute("INSERT INTO person_features (person_id, region) VALUES ('a2', 'east')")
    summary = run_routing(ws, r, AS_OF, run_id=2)
    assert ws.rows("SELECT person_id, pool, owner, locked_until FROM ownership") == [
        {"person_id": "a9", "pool": "sales", "owner": "ann",
         "locked_until": dt.date(2027, 1, 1)}]
    assert (summary["persons"], summary["changes"], summary["causes"]) == (
        1, 0, {"locked": 1})


def test_the_summary_lists_a_removed_pool_and_rep_still_holding_closed_leads(tmp_path):
    text = """\
    pools:
      - name: {pool}
        allocation: round_robin
        reps: [{rep}]
    routes:
      - {{name: all, pool: {pool}}}
    """
    ws = make_ws(ranked(2))
    run_routing(ws, rules(tmp_path, text.format(pool="sales_a", rep="ann")), AS_OF, run_id=1)
    ws.execute("UPDATE ownership SET status = 'closed' WHERE person_id = 'p01'")
    summary = run_routing(ws, rules(tmp_path, text.format(pool="sales_b", rep="bob")), AS_OF,
                          run_id=2)
    assert [(p["pool"], p["in_rules"], p["persons"], p["owned"]) for p in summary["pools"]] == [
        ("sales_b", True, 1, 1), ("sales_a", False, 1, 1)]
    assert [(r["rep"], r["in_rules"], r["capacity"], r["open_leads"])
            for r in summary["reps"]] == [("bob", True, None, 1), ("ann", False, None, 0)]


def test_a_renamed_pool_keeps_its_reps_leads_without_using_their_capacity(tmp_path):
    # Re-dealt, rep_sun's own 3 leads took her 3 slots: she lost them as no_capacity, and
    # a second route the same day dealt one again (capacity 5: period load said 5, then 4)
    text = """\
    pools:
      - name: {pool}
        allocation: round_robin
        reps:
          - {{name: rep_sun, capacity: 3}}
      - name: sea
        allocation: claim
    routes:
      - name: hot
        when: grade = 'A'
        pool: {pool}
    default_pool: sea
    """
    ws = make_ws(ranked(3))
    run_routing(ws, rules(tmp_path, text.format(pool="sales_a")), AS_OF, run_id=1)
    assert set(owners(ws).values()) == {"rep_sun"}
    renamed = rules(tmp_path, text.format(pool="sales_b"))
    summary = run_routing(ws, renamed, AS_OF, run_id=2)
    assert (summary["causes"], summary["unassigned"]) == ({"pool_removed": 3}, {})
    assert {(s["pool"], s["owner"]) for s in (state(ws, p) for p, *_ in ranked(3))} == {
        ("sales_b", "rep_sun")}
    assert run_routing(ws, renamed, AS_OF, run_id=3)["changes"] == 0


def test_routing_nobody_says_why_and_keeps_its_run_id(tmp_path):
    # (a tagged workspace of 0 persons said "run `leadctl tag` first" and run_id None)

    r = rules(tmp_path, ROUTED.format(reassign="", default=""))
    ws = open_memory()
    ws.execute("CREATE OR REPLACE TABLE person_features (person_id VARCHAR, region VARCHAR, "
               "last_seen TIMESTAMP)")
    summary = run_routing(ws, r, AS_OF, run_id=5)
    assert (summary["run_id"], summary["skipped"]) == (5, "no persons to route")
    ws.execute("INSERT INTO persons (person_id) VALUES ('a1')")  # not tagged yet
    assert run_routing(ws, r, AS_OF, dry_run=True)["skipped"] == (
        "person_features is empty (run `leadctl tag` first)")
