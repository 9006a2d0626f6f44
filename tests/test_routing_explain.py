"""One person's routing (`leadctl.routing.explain`): its state, the latest log rows and
the route that placed it; broken rules only hide the route's definition."""

from __future__ import annotations

import datetime as dt

from routing_cases import AS_OF, ROUTED, make_ws, rules

from leadctl.routing.explain import explain_routing
from leadctl.routing.stage import run_routing


def test_explain_routing_shows_state_route_and_history(tmp_path):
    r = rules(tmp_path, ROUTED.format(reassign="", default="default_pool: nurture"))
    ws = make_ws([("b1", 50, "B", "east")])
    run_routing(ws, r, AS_OF, run_id=1)
    got = explain_routing(ws, "b1", tmp_path, AS_OF)
    assert got["state"] == {"pool": "public_sea", "owner": None, "status": None,
                            "status_since": None, "assigned_at": AS_OF, "locked_until": None,
                            "dormant": False, "reason": "claim_pool", "as_of": AS_OF,
                            "locked": False}
    assert len(got["log"]) == 1
    assert {k: v for k, v in got["log"][0].items() if k != "logged_at"} == {
        "as_of": AS_OF, "old_pool": None, "new_pool": "public_sea", "old_owner": None,
        "new_owner": None, "old_status": None, "new_status": None, "rule": "warm",
        "reason": "claim_pool", "recorded_as": None}
    assert got["route"] == {"route": "warm", "at": f"{tmp_path / 'routing.yaml'}:13:5",
                            "when": "grade = 'B' and region = 'east'", "pool": "public_sea",
                            "description": None}
    assert "note" not in got
    assert explain_routing(ws, "nobody", tmp_path, AS_OF) == {
        "available": False, "note": "not routed yet (run `leadctl route`)"}
    day_before = AS_OF - dt.timedelta(days=1)
    assert explain_routing(ws, "b1", tmp_path, day_before) == {
        "available": False, "note": f"not routed by {day_before}"}


def test_an_edited_routing_file_is_said_to_have_changed_since_the_route(tmp_path):
    # The route's definition now beside a decision the edited condition rejects: no word.
    r = rules(tmp_path, ROUTED.format(reassign="", default="default_pool: nurture"))
    ws = make_ws([("b1", 50, "B", "east")])
    run_routing(ws, r, AS_OF, run_id=1)
    path = tmp_path / "routing.yaml"
    path.write_text(path.read_text().replace("grade = 'B'", "grade = 'A'"), encoding="utf-8")
    got = explain_routing(ws, "b1", tmp_path, AS_OF)
    assert (got["route"]["when"], got["note"]) == (
        "grade = 'A' and region = 'east'",
        "routing.yaml has changed since this route was computed: the definitions shown are "
        "the file's now; run `leadctl route` (or `route --dry-run` to preview) to recompute")


def test_broken_rules_hide_only_the_route_definition(tmp_path):
    r = rules(tmp_path, ROUTED.format(reassign="", default=""))
    ws = make_ws([("a1", 90, "A", "east")])
    run_routing(ws, r, AS_OF, run_id=1)
    (tmp_path / "routing.yaml").write_text("pools: 3\n", encoding="utf-8")
    got = explain_routing(ws, "a1", tmp_path, AS_OF)
    assert (got["state"]["owner"], got["log"][0]["rule"]) == ("ann", "hot")
    assert "route" not in got
    assert got["note"].startswith("rule definitions not shown: ")  # was: nothing said


def test_the_route_that_placed_a_person_stays_shown_after_a_status_change(tmp_path):
    # The latest log row is the status change: its rule ('status') is no route, and the
    # route that put the person in its pool was no longer shown
    r = rules(tmp_path, ROUTED.format(reassign="", default=""))
    ws = make_ws([("a1", 90, "A", "east")])
    run_routing(ws, r, AS_OF, run_id=1)
    ws.execute("INSERT INTO assignments (logged_at, run_id, as_of, person_id, old_pool, "
               "new_pool, old_owner, new_owner, old_status, new_status, rule, reason) "
               "SELECT logged_at + INTERVAL 1 HOUR, 2, as_of, person_id, new_pool, new_pool, "
               "new_owner, new_owner, NULL, 'contacting', 'status', 'status set' "
               "FROM assignments WHERE person_id = 'a1'")
    got = explain_routing(ws, "a1", tmp_path, AS_OF)
    assert (got["log"][0]["rule"], got["route"]["route"]) == ("status", "hot")


def test_no_route_is_shown_for_a_pool_a_later_row_left_and_a_sale_came_back_to(tmp_path):
    # hot put a1 in sales; an SLA return took it to public_sea, and a sale brought it back
    # to sales: the log shows no route placing it there since.
    r = rules(tmp_path, ROUTED.format(reassign="", default=""))
    ws = make_ws([("a1", 90, "A", "east")])
    run_routing(ws, r, AS_OF, run_id=1)
    for hours, old, new, rule in ((1, "sales", "public_sea", "lifecycle.status_sla_days"),
                                  (2, "public_sea", "sales", "sale")):
        ws.execute("INSERT INTO assignments (logged_at, run_id, as_of, person_id, old_pool, "
                   "new_pool, rule, reason) SELECT logged_at + INTERVAL (?) HOUR, 1 + ?, "
                   "as_of, person_id, ?, ?, ?, ? FROM assignments WHERE run_id = 1",
                   [hours, hours, old, new, rule, rule])
    assert "route" not in explain_routing(ws, "a1", tmp_path, AS_OF)
    # Before the return it was the route's doing (rows dated by then: the first only).
    ws.execute("UPDATE assignments SET as_of = as_of + 1 WHERE run_id > 1")
    assert explain_routing(ws, "a1", tmp_path, AS_OF)["route"]["route"] == "hot"


def test_a_merged_away_ids_route_into_the_pool_is_not_the_route_that_placed_it(tmp_path):
    # r1 (warm → public_sea) merged into a1, whose own state (hot → sales) was kept; an
    # SLA return then took a1 to public_sea: no route placed it there, yet warm was shown
    r = rules(tmp_path, ROUTED.format(reassign="", default=""))
    ws = make_ws([("a1", 90, "A", "east")])
    run_routing(ws, r, AS_OF, run_id=1)
    ws.execute("INSERT INTO person_aliases (old_person_id, person_id) VALUES ('r1', 'a1')")
    for person, hours, old, new, rule in (
            ("r1", 0, None, "public_sea", "warm"), ("a1", 24, "sales", "sales", "merge"),
            ("a1", 48, "sales", "public_sea", "lifecycle.status_sla_days")):
        ws.execute("INSERT INTO assignments (logged_at, run_id, as_of, person_id, old_pool, "
                   "new_pool, rule, reason) SELECT logged_at + INTERVAL (?) HOUR, 2 + ?, "
                   "as_of + ? // 24, ?, ?, ?, ?, ? FROM assignments WHERE run_id = 1",
                   [hours, hours, hours, person, old, new, rule, rule])
    ws.execute("UPDATE ownership SET pool = 'public_sea', owner = NULL WHERE person_id = 'a1'")
    got = explain_routing(ws, "a1", tmp_path, AS_OF + dt.timedelta(days=2))
    assert got["state"]["pool"] == "public_sea" and "route" not in got
