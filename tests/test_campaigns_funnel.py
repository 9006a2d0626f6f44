"""`leadctl report funnel` on hand-built events whose counts are worked out by hand:
window edges, out-of-order steps, one person through two channels, --since, --as-of,
the entry population, a tag dimension and the min_conversion flag."""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
import shutil

import pytest
from conftest import RULES, SAMPLE_INBOX, Cli, write
from rich.console import Console

from leadctl.campaigns.funnels import Dimension, Funnel, Step
from leadctl.campaigns.funnels_report import shape_groups
from leadctl.campaigns.funnels_sql import FunnelQuery, paths_sql, step_condition_sql
from leadctl.cli.report import render_funnel
from leadctl.workspace import open_writer

FUNNELS = """
funnels:
  - name: signup
    window: 14d
    steps:
      - {name: pushed, event: push}
      - {name: clicked, event: click}
      - {name: registered, event: register}
    by: [utm_source, utm_content, tag:value_tier]
    min_conversion: {registered: 0.5}
  - name: shanghai
    window: 14d
    entry: "city = '上海市'"
    steps:
      - {name: pushed, event: push}
      - {name: clicked, event: click}
  - name: twice
    window: 7d
    steps:
      - {name: first_view, event: page_view}
      - {name: second_view, event: page_view, where: "page = 'pricing'"}
  - name: thrice
    window: 7d
    steps:
      - {name: view, event: page_view}
      - {name: again, event: page_view}
      - {name: third, event: page_view}
"""

# a: push (sms, A) → click (its UTM says wechat) → register: the whole funnel.
# b: register BEFORE the click (out of order: does not count), then the click.
# c: click 1 s before the window closes (push + 14 d), register exactly at the close: out.
# d: push via edm, a second push via wechat, click, register carrying utm_source wechat:
#    first touch edm, last touch wechat.
# e: push on the as-of day (not complete: not counted). f: a click without a push.
# g, h: page views for `twice` (h's two views share a timestamp; g has only one).
EVENTS = """
INSERT INTO subject_persons (subject, person_id) VALUES
 ('person:a', 'a'), ('person:b', 'b'), ('person:c', 'c'), ('phone:13800000004', 'd'),
 ('person:d', 'd'), ('person:e', 'e'), ('person:f', 'f'), ('person:g', 'g'),
 ('person:h', 'h');
INSERT INTO persons (person_id, city) VALUES ('a', '上海市'), ('b', '北京市'), ('c', '北京市'),
 ('d', '上海市');
INSERT INTO tags (person_id, tag, value, as_of, run_id) VALUES
 ('a', 'value_tier', '"high"', '2026-11-01', 1), ('b', 'value_tier', '"low"', '2026-11-01', 1);
INSERT INTO events VALUES
 (1, 1, 'camp', 'person:a', 'push', '2026-10-01 10:00', NULL, NULL,
  '{"utm_source": "sms", "utm_content": "A"}'),
 (1, 2, 'camp', 'person:a', 'click', '2026-10-02 10:00', NULL, NULL, '{"utm_source": "wechat"}'),
 (1, 3, 'camp', 'person:a', 'register', '2026-10-03 10:00', NULL, NULL, NULL),
 (1, 4, 'camp', 'person:b', 'push', '2026-10-01 10:00', NULL, NULL,
  '{"utm_source": "sms", "utm_content": "B"}'),
 (1, 5, 'camp', 'person:b', 'register', '2026-10-01 12:00', NULL, NULL, NULL),
 (1, 6, 'camp', 'person:b', 'click', '2026-10-02 10:00', NULL, NULL, NULL),
 (1, 7, 'camp', 'person:c', 'push', '2026-10-01 10:00', NULL, NULL,
  '{"utm_source": "sms", "utm_content": "A"}'),
 (1, 8, 'camp', 'person:c', 'click', '2026-10-15 09:59:59', NULL, NULL, NULL),
 (1, 9, 'camp', 'person:c', 'register', '2026-10-15 10:00:00', NULL, NULL, NULL),
 (1, 10, 'camp', 'phone:13800000004', 'push', '2026-10-05 08:00', NULL, NULL,
  '{"utm_source": "edm", "utm_content": "A"}'),
 (1, 11, 'camp', 'person:d', 'push', '2026-10-06 09:00', NULL, NULL,
  '{"utm_source": "wechat", "utm_content": "B"}'),
 (1, 12, 'camp', 'person:d', 'click', '2026-10-06 10:00', NULL, NULL, NULL),
 (1, 13, 'camp', 'person:d', 'register', '2026-10-07 10:00', NULL, NULL,
  '{"utm_source": "wechat"}'),
 (1, 14, 'camp', 'person:e', 'push', '2026-11-01 08:00', NULL, NULL, '{"utm_source": "sms"}'),
 (1, 15, 'camp', 'person:f', 'click', '2026-10-02 10:00', NULL, NULL, NULL),
 (1, 16, 'web', 'person:g', 'page_view', '2026-10-02 10:00', NULL, NULL, '{"page": "pricing"}'),
 (1, 17, 'web', 'person:h', 'page_view', '2026-10-02 10:00', NULL, NULL, '{"page": "home"}'),
 (1, 18, 'web', 'person:h', 'page_view', '2026-10-02 10:00', NULL, NULL, '{"page": "pricing"}');
"""


def funnel_rules(tmp_path, funnels: str):
    """A rules folder of the shipped tags.yaml and `funnels` as funnels.yaml."""
    rules = tmp_path / "rules"
    rules.mkdir()
    shutil.copy(RULES / "tags.yaml", rules / "tags.yaml")
    write(rules / "funnels.yaml", funnels)
    return rules


@pytest.fixture
def fcli(tmp_path):
    rules = funnel_rules(tmp_path, FUNNELS)
    cli = Cli(tmp_path / "ws.duckdb", rules)
    with open_writer(cli.db, create=True) as ws:
        ws.execute(EVENTS)
    return cli


def funnel(cli, *args) -> dict:
    result = cli("report", "funnel", *args, "--as-of", "2026-11-01", "--json")
    assert result.exit_code == 0, result.stderr
    return result.json()


def counts(data: dict) -> list[tuple]:
    """(key values..., persons per step...) per group."""
    return [(*g["key"].values(), *(s["persons"] for s in g["steps"])) for g in data["groups"]]


def test_one_group_without_by_counts_in_order_inside_the_window(fcli):
    data = funnel(fcli, "signup")
    assert (data["funnel"], data["by"], data["window_days"], data["attribution"]) == (
        "signup", [], 14, "first")
    [group] = data["groups"]
    assert group["key"] == {}
    assert group["entered"] == 4 and group["open_windows"] == 0
    # b's register came before its click; c's register at push + 14 d is outside.
    assert [(s["step"], s["persons"], s["conversion"], s["of_previous"],
             s["median_hours_from_previous"], s["below_min"]) for s in group["steps"]] == [
        ("pushed", 4, 1.0, 1.0, None, False),
        ("clicked", 4, 1.0, 1.0, 25.0, False),  # 24, 24, 26 and 335.9997 hours
        ("registered", 2, 0.5, 0.5, 24.0, False),
    ]


def test_events_of_subjects_matching_no_person_count_nowhere(fcli):
    """An unmatched subject (no lead has its phone) has no person: its push and page views
    are nobody's, not one more person entering (both ways of walking the steps)."""
    before = [counts(funnel(fcli, name)) for name in ("signup", "thrice")]
    with open_writer(fcli.db) as ws:
        ws.execute("INSERT INTO subject_persons (subject, person_id) VALUES "
                   "('phone:13799990001', NULL)")
        ws.execute("INSERT INTO events VALUES (2, 1, 'camp', 'phone:13799990001', 'push', "
                   "'2026-10-20 09:00', NULL, NULL, '{\"utm_source\": \"sms\"}')")
        for row in (2, 3, 4):
            ws.execute(f"INSERT INTO events VALUES (2, {row}, 'web', 'phone:13799990001', "
                       f"'page_view', '2026-10-2{row} 09:00', NULL, NULL, NULL)")
    assert [counts(funnel(fcli, name)) for name in ("signup", "thrice")] == before
    assert before == [[(4, 4, 2)], [(2, 1, 0)]]


def test_first_touch_and_last_touch_attribute_the_two_channel_person_differently(fcli):
    # d was pushed through edm, then wechat: first touch, an entry through each (each
    # with its own window from its push); it registered through wechat
    assert counts(funnel(fcli, "signup", "--by", "utm_source")) == [
        ("sms", 3, 3, 1), ("edm", 1, 1, 1), ("wechat", 1, 1, 1)]
    last = funnel(fcli, "signup", "--by", "utm_source", "--attribution", "last")
    assert last["attribution"] == "last"
    # a's last touch is its click (wechat); b and c carry nothing after their sms push
    assert counts(last) == [("sms", 2, 2, 0), ("wechat", 2, 2, 2)]
    flags = {g["key"]["utm_source"]: g["steps"][2]["below_min"] for g in last["groups"]}
    assert flags == {"sms": True, "wechat": False}


def test_two_dimensions_and_the_min_conversion_flag(fcli):
    data = funnel(fcli, "signup", "--by", "utm_source,utm_content")
    assert counts(data) == [("sms", "A", 2, 2, 1), ("edm", "A", 1, 1, 1), ("sms", "B", 1, 1, 0),
                            ("wechat", "B", 1, 1, 1)]
    sms_b = data["groups"][2]["steps"][2]
    assert (sms_b["conversion"], sms_b["min_conversion"], sms_b["below_min"]) == (0.0, 0.5, True)
    assert data["groups"][0]["steps"][2]["below_min"] is False  # 1 of 2: exactly the minimum


def test_tag_dimension_groups_persons_without_the_tag_under_null(fcli):
    data = funnel(fcli, "signup", "--by", "value_tier")
    assert data["by"] == ["tag:value_tier"]
    assert counts(data) == [(None, 2, 2, 1), ("high", 1, 1, 1), ("low", 1, 1, 0)]


def test_since_and_as_of(fcli):
    assert counts(funnel(fcli, "signup", "--since", "2026-10-02")) == [(1, 1, 1)]  # d only
    result = fcli("report", "funnel", "signup", "--as-of", "2026-10-03", "--json")
    [group] = result.json()["groups"]
    # events before 2026-10-03 only: a and b click, c has not yet, d has not entered
    assert [s["persons"] for s in group["steps"]] == [3, 2, 0]
    assert group["open_windows"] == 3


def test_entry_population_and_the_same_event_never_counts_twice(fcli):
    assert counts(funnel(fcli, "shanghai")) == [(2, 2)]  # a and d
    # g's one pricing view cannot be its own second view; h's two views at one instant can
    assert counts(funnel(fcli, "twice")) == [(2, 1)]
    # h's two views count for two steps, not three (the first is not the third too)
    assert counts(funnel(fcli, "thrice")) == [(2, 1, 0)]


def test_json_contract_and_table(fcli):
    data = funnel(fcli, "signup", "--by", "utm_content")
    assert set(data["groups"][0]) == {"key", "entered", "open_windows", "steps"}
    assert set(data["groups"][0]["steps"][0]) == {
        "step", "persons", "conversion", "of_previous", "median_hours_from_previous",
        "min_conversion", "below_min"}
    table = fcli("report", "funnel", "signup", "--by", "utm_source", "--as-of", "2026-11-01",
                 env={"COLUMNS": "120"})
    assert table.exit_code == 0, table.stderr
    assert "funnel signup (14d window, first touch) by utm_source" in table.stdout
    assert "33.3% !" in table.stdout  # sms: 1 of 3 registered, under the 50% minimum
    assert "under min_conversion (registered 50%)" in table.stdout


def test_median_hours_show_every_digit_as_json_has_them(fcli):
    data = funnel(fcli, "signup")
    data["groups"][0]["steps"][1]["median_hours_from_previous"] = 1234567.25
    console = Console(width=120, file=io.StringIO())
    console.print(render_funnel(data))
    rows = [line.split("│") for line in console.file.getvalue().splitlines()
            if line.startswith("│")]
    assert [row[-2].strip() for row in rows] == ["", "1234567.25", "24"]  # not 1.23457e+06


def test_user_errors_exit_2(fcli, tmp_path):
    unknown = fcli("report", "funnel", "signpu", "--json")
    assert (unknown.exit_code, unknown.json()["error"]) == (2, {
        "type": "UsageError", "location": None,
        "message": f"no funnel 'signpu' in {fcli.rules}/funnels.yaml (did you mean 'signup'?) "
                   "(funnels: signup, shanghai, twice, thrice)"})
    bad_by = fcli("report", "funnel", "signup", "--by", "utm_medium")
    assert (bad_by.exit_code, bad_by.stdout, bad_by.stderr) == (2, "", (
        "error: funnel 'signup' is not broken down by 'utm_medium' (its by: utm_source, "
        "utm_content, tag:value_tier)\n"))
    bad_touch = fcli("report", "funnel", "signup", "--attribution", "middle")
    assert (bad_touch.exit_code, bad_touch.stdout, bad_touch.stderr) == (
        2, "", "error: --attribution must be first or last, not 'middle'\n")
    (fcli.rules / "funnels.yaml").unlink()
    missing = fcli("report", "funnel", "signup")
    assert (missing.exit_code, missing.stdout, missing.stderr) == (2, "", (
        f"error: {fcli.rules}/funnels.yaml not found: define funnels in funnels.yaml (see "
        "the README, Campaign funnels)\n"))


def test_rules_check_locates_funnel_problems(tmp_path):
    rules = funnel_rules(tmp_path, """funnels:
  - name: broken
    window: 2w
    steps:
      - {name: pushed, event: push, where: "utm_sorce = 'sms'"}
      - {name: registered}
    by: [utm_source, channel_x]
    min_conversion: {registerd: 0.01, pushed: 5}
""")
    result = Cli(tmp_path / "ws.duckdb", rules)("rules", "check")
    assert result.exit_code == 2
    path = rules / "funnels.yaml"
    for expected in (
        f"{path}:3:13: funnel 'broken': window must be a number of days like 14d, not '2w'",
        f"{path}:5:45: funnel 'broken' step 'pushed' where: unknown field 'utm_sorce' "
        "(did you mean 'utm_source'?",
        f"{path}:6:10: funnel 'broken' step 'registered': missing `event:`",
        f"{path}:7:22: funnel 'broken' by: unknown dimension 'channel_x'",
        f"{path}:8:22: funnel 'broken' min_conversion: unknown step 'registerd' "
        "(did you mean 'registered'?)",
        f"{path}:8:47: funnel 'broken' min_conversion 'pushed': must be a share",
    ):
        assert expected in result.stderr, result.stderr


def test_a_funnel_or_step_defined_twice_still_has_its_problems_said(tmp_path):
    rules = funnel_rules(tmp_path, """funnels:
  - name: f
    window: 14d
    steps:
      - {name: pushed, event: push}
      - {name: pushed, event: push, where: "utm_sorce = 'sms'"}
  - name: f
    window: 2w
    steps: [{name: pushed, event: push}]
""")
    result = Cli(tmp_path / "ws.duckdb", rules)("rules", "check")
    path = rules / "funnels.yaml"
    assert (result.exit_code, result.stderr.splitlines()) == (2, [
        f"error: {path}:6:10: funnel 'f' step 'pushed' is defined twice (first at "
        f"{path}:5:10)",
        f"error: {path}:6:45: funnel 'f' step 'pushed' where: unknown field 'utm_sorce' "
        "(did you mean 'utm_source'?) (known: amount, category, event_type, page, source, "
        "ts, utm_campaign, utm_content, utm_medium, utm_source, utm_term)",
        f"error: {path}:7:5: funnel 'f' is defined twice (first at {path}:2:5)",
        f"error: {path}:8:13: funnel 'f': window must be a number of days like 14d, not '2w'"])


def test_a_funnel_without_steps_is_a_rule_error(tmp_path):
    rules = funnel_rules(tmp_path, "funnels:\n  - {name: f, window: 14d, steps: []}\n")
    result = Cli(tmp_path / "ws.duckdb", rules)("rules", "check")
    # It passed, then `report funnel f` failed on `CASE END` (exit 3).
    assert (result.exit_code, result.stderr.splitlines()[0]) == (
        2, f"error: {rules}/funnels.yaml:2:35: funnel 'f': `steps:` is an empty list")
    write(rules / "funnels.yaml", "funnels:\n  - {name: f, window: 14d}\n")
    missing = Cli(tmp_path / "ws.duckdb", rules)("rules", "check")
    assert [line for line in missing.stderr.splitlines() if "funnels.yaml" in line] == [
        f"error: {rules}/funnels.yaml:2:5: funnel 'f': missing `steps:` (a list of "
        "{name, event})"]  # one error, not also "an empty list"


def test_shipped_funnels_pass_rules_check():
    result = Cli(RULES / "none.duckdb")("rules", "check", "--json")
    assert result.exit_code == 0, result.stdout
    assert result.json()["funnels"] == 2


def test_ingest_keeps_utm_columns_of_an_events_file_as_attributes(tmp_path):
    cli = Cli(tmp_path / "ws.duckdb")
    path = write(tmp_path / "camp.csv", "phone,event_type,ts,utm_source,关键词,batch\n"
                 "13800000001,push,2026-10-01 10:00,sms,信用卡,B1\n")
    assert cli("ingest", path).exit_code == 0
    with open_writer(cli.db) as ws:
        assert ws.scalar("SELECT CAST(attributes AS VARCHAR) FROM events") == (
            '{"batch":"B1","utm_source":"sms","utm_term":"信用卡"}')


def test_sample_campaign(tmp_path):
    """The shipped sample: every person pushed enters once (counted from the CSV), by
    channel once per channel that pushed them; edm's registrations fall under the
    funnel's 1% and are flagged, creatives split the rest."""
    with open(SAMPLE_INBOX / "campaign_events.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    pushed = {(r["phone"], r["lead_id"]) for r in rows if r["event_type"] == "push"}
    channels = {(r["phone"], r["lead_id"], r["utm_source"]) for r in rows
                if r["event_type"] == "push"}
    cli = Cli(tmp_path / "ws.duckdb")
    assert cli("run", "--inbox", SAMPLE_INBOX, "--as-of", "2026-11-01").exit_code == 0
    [total] = funnel(cli, "app_install")["groups"]
    assert total["entered"] == len(pushed) == 480
    by_source = funnel(cli, "app_register_basic", "--by", "utm_source")
    entered = {g["key"]["utm_source"]: g["entered"] for g in by_source["groups"]}
    assert entered == {s: [c[2] for c in channels].count(s) for _, _, s in channels}
    assert sum(entered.values()) == len(channels) == 542  # 62 were pushed by two channels
    flagged = [(g["key"]["utm_source"], s["step"]) for g in by_source["groups"]
               for s in g["steps"] if s["below_min"]]
    assert flagged == [("edm", "registered")]


def test_steps_of_disjoint_event_types_take_one_case_and_count_the_same(fcli):
    steps = [step_condition_sql((e,), None) for e in ("push", "click", "register")]
    forms = {}
    for exclusive in (False, True):
        query = FunnelQuery(steps, 14, dt.date(2026, 11, 1), exclusive_steps=exclusive)
        sql = paths_sql(query)
        assert ("unnest(" in sql) is not exclusive
        with open_writer(fcli.db) as ws:
            forms[exclusive] = ws.rows(f"SELECT * FROM ({sql}) ORDER BY person_id")
    assert forms[True] == forms[False]
    assert [(r["person_id"], r["ev3"] is not None) for r in forms[True]] == [
        ("a", True), ("b", False), ("c", False), ("d", True)]


def test_at_one_instant_a_step_takes_the_event_the_next_steps_need_least(fcli):
    # x, then `a` and `b` at one instant; step 2 takes either, step 3 only `a`: step 2 must
    # take `b` to leave `a` to step 3, whichever of the two was loaded first. A third
    # person's second `a` at that instant lets both later steps count.
    with open_writer(fcli.db) as ws:
        ws.execute("""
INSERT INTO subject_persons (subject, person_id) VALUES ('person:i', 'i'), ('person:j', 'j'),
 ('person:k', 'k');
INSERT INTO events VALUES
 (2, 1, 'app', 'person:i', 'x', '2026-10-02 10:00', NULL, NULL, NULL),
 (2, 2, 'app', 'person:i', 'a', '2026-10-02 11:00', NULL, NULL, NULL),
 (2, 3, 'app', 'person:i', 'b', '2026-10-02 11:00', NULL, NULL, NULL),
 (2, 4, 'app', 'person:j', 'x', '2026-10-02 10:00', NULL, NULL, NULL),
 (2, 5, 'app', 'person:j', 'b', '2026-10-02 11:00', NULL, NULL, NULL),
 (2, 6, 'app', 'person:j', 'a', '2026-10-02 11:00', NULL, NULL, NULL),
 (2, 7, 'app', 'person:k', 'a', '2026-10-02 10:00', NULL, NULL, NULL),
 (2, 8, 'app', 'person:k', 'a', '2026-10-02 10:00', NULL, NULL, NULL)""")
        steps = [step_condition_sql(events, None) for events in (("x", "a"), ("a", "b"), ("a",))]
        sql = paths_sql(FunnelQuery(steps, 14, dt.date(2026, 11, 1)))
        rows = ws.rows(f"SELECT person_id, ev1.id % 4294967296 AS r1, "
                       f"ev2.id % 4294967296 AS r2, ev3.id % 4294967296 AS r3 "
                       f"FROM ({sql}) WHERE person_id IN ('i', 'j', 'k') ORDER BY person_id")
    assert [tuple(r.values()) for r in rows] == [("i", 1, 3, 2), ("j", 4, 5, 6),
                                                 ("k", 7, 8, None)]


def _brute_force_depth(events: list[tuple], steps: list[set], window: dt.timedelta,
                      entries: list[tuple]) -> int:
    """How far an entry can get, every path tried: `events` (ts, id, type) sorted, the
    entry from any of `entries` (its candidate step-1 events at one instant)."""
    def deepest(k, prev, used, t1):
        if k == len(steps):
            return k
        return max([deepest(k + 1, e, used | {e[1]}, t1) for e in events
                    if e[2] in steps[k] and prev[0] <= e[0] < t1 + window
                    and e[1] not in used] + [k])
    return max(deepest(1, e, {e[1]}, e[0]) for e in entries)


def _expected_depths(persons: dict, steps: list[tuple], by_source: bool) -> dict:
    """Per person (or per person and utm_source of the entry, first touch): how far."""
    want = {}
    for person, events in persons.items():
        firsts = [e for e in events if e[2] in steps[0]]
        for source in {e[3] for e in firsts} if by_source else {None} if firsts else set():
            mine = [e for e in firsts if not by_source or e[3] == source]
            want[(person, source)] = _brute_force_depth(
                events, [set(s) for s in steps], dt.timedelta(days=7),
                [e for e in mine if e[0] == mine[0][0]])
    return want


def _depths(ws, steps: list[tuple], by_source: bool) -> dict:
    conditions = [step_condition_sql(events, None) for events in steps]
    dims = [Dimension("utm_source", "event", "utm_source")] if by_source else []
    sql = paths_sql(FunnelQuery(conditions, 7, dt.date(2026, 11, 1), dims=dims))
    reached = " + ".join(f"(ev{k} IS NOT NULL)::INT" for k in range(1, len(steps) + 1))
    source = "ev1.d0" if by_source else "NULL"
    return {(r["person_id"], r["source"]): r["n"] for r in ws.rows(
        f"SELECT person_id, {source} AS source, {reached} AS n FROM ({sql}) "
        "WHERE person_id LIKE 'r%'")}


def test_events_of_one_instant_serve_the_steps_so_the_person_gets_furthest(fcli):
    # Steps [push, click], [click, push], [push, install], [install, click]; a click on
    # 10-01, then a click and two pushes at one instant: s2 takes a push, s3 the other,
    # s4 the click — taking the click for s2 (or one push for s2 and the click for s3)
    # would stop the person at s3.
    ov2 = [("push", "click"), ("click", "push"), ("push", "install"), ("install", "click")]
    with open_writer(fcli.db) as ws:
        ws.execute("""
INSERT INTO subject_persons (subject, person_id) VALUES ('person:r1', 'r1');
INSERT INTO events (file_id, row_number, source, subject, event_type, ts) VALUES
 (3, 1, 'app', 'person:r1', 'click', '2026-10-01 00:00'),
 (3, 2, 'app', 'person:r1', 'click', '2026-10-02 00:00'),
 (3, 3, 'app', 'person:r1', 'push', '2026-10-02 00:00'),
 (3, 4, 'app', 'person:r1', 'push', '2026-10-02 00:00')""")
        sql = paths_sql(FunnelQuery([step_condition_sql(e, None) for e in ov2], 7,
                                    dt.date(2026, 11, 1)))
        rows = ws.rows(f"SELECT {', '.join(f'ev{k}.id % 4294967296' for k in range(1, 5))} "
                       f"FROM ({sql}) WHERE person_id = 'r1'")
    assert [tuple(r.values()) for r in rows] == [(1, 3, 4, 2)]


def test_shared_event_types_reach_as_far_as_trying_every_path(fcli):
    # Random persons whose events often share an instant, random funnels whose steps
    # share event types: the SQL's furthest step is the brute force's, entry by entry
    # (per person, and per person and utm_source under first touch).
    rng = random.Random(20261001)
    start = dt.datetime(2026, 10, 1)
    persons = {}
    values = []
    for p in range(300):
        events = []
        for row in range(rng.randint(1, 8)):
            ts = start + dt.timedelta(days=rng.choice((0, 0, 1, 1, 2, 8)))
            events.append((ts, row, rng.choice("abc"), rng.choice(("x", "y"))))
            values.append(f"(4, {p * 16 + row}, 'app', 'person:r{p}', '{events[-1][2]}', "
                          f"'{ts:%Y-%m-%d %H:%M}', '{{\"utm_source\": \"{events[-1][3]}\"}}')")
        persons[f"r{p}"] = sorted(events)
    subjects = ", ".join(f"('person:{p}', '{p}')" for p in persons)
    with open_writer(fcli.db) as ws:
        ws.execute(f"INSERT INTO subject_persons (subject, person_id) VALUES {subjects};"
                   "INSERT INTO events (file_id, row_number, source, subject, event_type, ts, "
                   f"attributes) VALUES {', '.join(values)}")
        for _ in range(24):
            steps = [tuple(sorted(rng.sample("abc", rng.randint(1, 2))))
                     for _ in range(rng.randint(2, 5))]
            for by_source in (False, True):
                want = _expected_depths(persons, steps, by_source)
                assert _depths(ws, steps, by_source) == want, (steps, by_source)


def test_the_minimum_compares_the_share_not_its_rounding():
    funnel = Funnel("demo", None, 14, [Step("pushed", ("push",)), Step("registered",
                                                                       ("register",))],
                    min_conversion={"registered": 0.01})
    flags = [shape_groups(funnel, [], [{"n1": entered, "n2": registered, "h2": 1.0,
                                        "open_windows": 0}])[0]["steps"][1]["below_min"]
             for entered, registered in ((9901, 99), (10000, 100), (0, 0))]
    assert flags == [True, False, False]  # 0.9999% (shown as 0.01) is below 1%
    at_seven = Funnel("demo", None, 14, funnel.steps, min_conversion={"registered": 0.07})
    assert shape_groups(at_seven, [], [{"n1": 100, "n2": 7, "h2": 1.0, "open_windows": 0}])[
        0]["steps"][1]["below_min"] is False


def test_events_no_resolve_has_mapped_are_warned_about(tmp_path):
    cli = Cli(tmp_path / "ws.duckdb")
    assert cli("run", "--inbox", SAMPLE_INBOX, "--as-of", "2026-11-01").exit_code == 0
    assert funnel(cli, "app_install")["warnings"] == []
    # two pushes of phones no resolve has seen, one of a known lead (already mapped)
    write(tmp_path / "late.csv", "phone,lead_id,event_type,ts,utm_source\n"
          "13700000001,,push,2026-10-20 10:00:00,sms\n13700000002,,push,2026-10-20 10:00:00,"
          "sms\n,SEO200001,push,2026-10-20 10:00:00,sms\n")
    assert cli("ingest", tmp_path / "late.csv", "--kind", "events").exit_code == 0
    warned = cli("report", "funnel", "app_install", "--json")
    assert warned.json()["warnings"] == [
        "2 events ingested since the last resolve are not mapped to persons yet, so not "
        "counted: run `leadctl resolve` (or `leadctl run`)"]
    assert "warning: 2 events ingested since the last resolve" in warned.stderr
    assert cli("resolve").exit_code == 0
    assert funnel(cli, "app_install")["warnings"] == []
    assert funnel(cli, "app_install", "--since", "2026-11-05")["warnings"] == [
        "--since 2026-11-05 is after the as-of 2026-11-01: nobody can have entered"]


BATCH_FUNNELS = """
funnels:
  - name: batch_signup
    window: 14d
    steps:
      - {name: pushed, event: push}
      - {name: clicked, event: click}
      - {name: registered, event: register}
    by: [batch, utm_source, tag:value_tier]
"""

# p: pushed in b1 (10-01), clicks (10-02); pushed again in b2 (10-10), clicks (10-11),
#    registers 10-20: outside b1's window (to 10-15 10:00), inside b2's (to 10-24 10:00).
# q: pushed twice in b1 (10-01 wechat, 10-03 sms), clicks 10-16: outside the window of
#    its first push (the b1 entry), inside that of its second (its sms entry).
# r: pushed in b2 on 10-20, clicks: its window is still open on 11-01.
BATCH_EVENTS = """
INSERT INTO subject_persons (subject, person_id) VALUES
 ('person:p', 'p'), ('person:q', 'q'), ('person:r', 'r');
INSERT INTO tags (person_id, tag, value, as_of, run_id) VALUES
 ('p', 'value_tier', '"high"', '2026-11-01', 1);
INSERT INTO events VALUES
 (1, 1, 'camp', 'person:p', 'push', '2026-10-01 10:00', NULL, NULL,
  '{"batch": "b1", "utm_source": "sms"}'),
 (1, 2, 'camp', 'person:p', 'click', '2026-10-02 10:00', NULL, NULL, NULL),
 (1, 3, 'camp', 'person:p', 'push', '2026-10-10 10:00', NULL, NULL,
  '{"batch": "b2", "utm_source": "sms"}'),
 (1, 4, 'camp', 'person:p', 'click', '2026-10-11 10:00', NULL, NULL, NULL),
 (1, 5, 'camp', 'person:p', 'register', '2026-10-20 10:00', NULL, NULL, NULL),
 (1, 6, 'camp', 'person:q', 'push', '2026-10-01 10:00', NULL, NULL,
  '{"batch": "b1", "utm_source": "wechat"}'),
 (1, 7, 'camp', 'person:q', 'push', '2026-10-03 10:00', NULL, NULL,
  '{"batch": "b1", "utm_source": "sms"}'),
 (1, 8, 'camp', 'person:q', 'click', '2026-10-16 10:00', NULL, NULL, NULL),
 (1, 9, 'camp', 'person:r', 'push', '2026-10-20 10:00', NULL, NULL,
  '{"batch": "b2", "utm_source": "sms"}'),
 (1, 10, 'camp', 'person:r', 'click', '2026-10-21 10:00', NULL, NULL, NULL);
"""


@pytest.fixture
def bcli(tmp_path):
    rules = funnel_rules(tmp_path, BATCH_FUNNELS + "event_attributes: {batch: string}\n")
    cli = Cli(tmp_path / "ws.duckdb", rules)
    with open_writer(cli.db, create=True) as ws:
        ws.execute(BATCH_EVENTS)
    return cli


def entries(data: dict) -> list[tuple]:
    """(key values..., entered, open_windows, persons per step...) per group."""
    return [(*g["key"].values(), g["entered"], g["open_windows"],
             *(s["persons"] for s in g["steps"])) for g in data["groups"]]


def test_a_person_pushed_in_two_batches_enters_each_with_its_own_window(bcli):
    # p counts in b1 (clicked; its register is after b1's window) and in b2 (registered);
    # q, pushed twice in b1, counts once there, from its first push (the click is late)
    assert entries(funnel(bcli, "batch_signup", "--by", "batch")) == [
        ("b1", 2, 0, 2, 1, 0), ("b2", 2, 1, 2, 2, 1)]
    # by channel: q enters through wechat (10-01) and through sms (10-03: clicks in time)
    assert entries(funnel(bcli, "batch_signup", "--by", "utm_source")) == [
        ("sms", 3, 1, 3, 3, 0), ("wechat", 1, 0, 1, 0, 0)]
    assert entries(funnel(bcli, "batch_signup", "--by", "batch,utm_source")) == [
        ("b1", "sms", 2, 0, 2, 2, 0), ("b2", "sms", 2, 1, 2, 2, 1),
        ("b1", "wechat", 1, 0, 1, 0, 0)]
    # --since applies per entry: p enters from its b2 push, q's pushes are all before
    assert entries(funnel(bcli, "batch_signup", "--by", "batch", "--since", "2026-10-05")) == [
        ("b2", 2, 1, 2, 2, 1)]


def test_without_event_fields_or_with_last_touch_a_person_enters_once(bcli):
    # one entry per person, from their first push: p's register is outside its window
    assert entries(funnel(bcli, "batch_signup")) == [(3, 1, 3, 2, 0)]
    assert entries(funnel(bcli, "batch_signup", "--by", "value_tier")) == [
        (None, 2, 1, 2, 1, 0), ("high", 1, 0, 1, 1, 0)]
    # last touch: the batch of the latest event of the path carrying one (the first push)
    assert entries(funnel(bcli, "batch_signup", "--by", "batch", "--attribution", "last")) == [
        ("b1", 2, 0, 2, 1, 0), ("b2", 1, 1, 1, 1, 0)]


def test_an_entry_reads_pool_owner_status_as_of_the_screen_as_find_does(tmp_path, rules_copy):
    """A funnel's entry is a `find` expression: under --as-of, `owner` is the owner as of
    that date (a claim made since does not enter), as `find --as-of` reads it."""
    with open(rules_copy / "funnels.yaml", "a", encoding="utf-8") as fh:
        fh.write("\n  - name: owned_reg\n    window: 14d\n    entry: \"owner = 'rep_wang'\"\n"
                 "    steps:\n      - {name: pushed, event: push}\n"
                 "      - {name: registered, event: register}\n")
    cli = Cli(tmp_path / "ws.duckdb", rules_copy)
    assert cli("run", "--inbox", SAMPLE_INBOX, "--as-of", "2026-11-01").exit_code == 0
    assert cli("claim", "public_sea", "--rep", "rep_wang", "--n", "30",
               "--as-of", "2026-11-02").exit_code == 0
    owned = ("find", "owner = 'rep_wang'", "--count")
    assert (cli(*owned, "--as-of", "2026-11-01").stdout, cli(*owned).stdout) == ("40\n", "70\n")
    then = funnel(cli, "owned_reg")  # --as-of 2026-11-01
    assert ([g["entered"] for g in then["groups"]], then["as_of_differs"]) == ([19], [])
    now = cli("report", "funnel", "owned_reg", "--json")  # the stored routing, as find's
    assert [g["entered"] for g in now.json()["groups"]] == [30]
    # the claim since the last night shows, and the view says so, as find's does
    found = cli("find", "owner = 'rep_wang'", "--json").json()
    assert ({k: now.json()[k] for k in ("as_of", "routing_as_of", "as_of_differs")}
            == {k: found[k] for k in ("as_of", "routing_as_of", "as_of_differs")}
            == {"as_of": "2026-11-01", "routing_as_of": "2026-11-02",
                "as_of_differs": ["routing"]})


@pytest.mark.parametrize(("condition", "reason"), [
    ("entry: \"lead_count * 9223372036854775807 >= 1\"",
     "overflow in multiplication of INT64"),
    ("entry: \"score * 1e300 * 1e300 > 0\"", "a number past the largest (about 1.8e308)"),
    ("steps:\n      - {name: pushed, event: push, where: \"year(ts) * 1e300 * 1e300 > 0\"}",
     "a number past the largest (about 1.8e308)"),
])
def test_an_entry_or_where_past_the_number_range_exits_2_as_in_find(tmp_path, rules_copy,
                                                                    condition, reason):
    steps = "" if condition.startswith("steps") else (
        "\n    steps:\n      - {name: pushed, event: push}")
    with open(rules_copy / "funnels.yaml", "a", encoding="utf-8") as fh:
        fh.write(f"\n  - name: huge\n    window: 14d\n    {condition}{steps}\n"
                 "      - {name: registered, event: register}\n")
    cli = Cli(tmp_path / "ws.duckdb", rules_copy)
    assert cli("run", "--inbox", SAMPLE_INBOX, "--as-of", "2026-11-01").exit_code == 0
    result = cli("report", "funnel", "huge")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.startswith("error: report funnel 'huge': a rule's expression cannot "
                                    f"be computed for some person: {reason}")
