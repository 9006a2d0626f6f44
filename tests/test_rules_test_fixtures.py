"""`rules test` reads a fixture as README says: events as ingest reads the same data,
a wrong-typed value or a typo is a located error (exit 2) with its near miss, and a
rules folder without fixtures checks nothing, so it does not pass."""

from __future__ import annotations

import pytest

from tests.conftest import Cli


@pytest.fixture
def rules(rules_copy):
    return rules_copy


def run(rules, text: str, *args: str):
    fixture = rules / "tests" / "zz.yaml"
    fixture.write_text(text)
    return fixture, Cli(rules.parent / "ws.duckdb", rules)("rules", "test", *args)


def test_an_unknown_expected_tag_or_step_check_names_the_near_miss(rules):
    fixture, result = run(rules, "as_of: 2026-11-01\npersons: [{id: p1}]\n"
                                 "expect: {p1: {paid_amout_30d: 0}}\n")
    assert (result.exit_code, result.stderr) == (2, (
        f"error: {fixture}:3:15: zz: unknown tag or key 'paid_amout_30d' in expect "
        "(did you mean 'paid_amount_30d'?)\n"))
    fixture, result = run(rules, "as_of: 2026-11-01\npersons: [{id: p1}]\n"
                                 "expect_funnels:\n  app_register_basic:\n    groups:\n"
                                 "      all: {pushed: {conversoin: 0}}\n")
    assert (result.exit_code, result.stderr) == (2, (
        f"error: {fixture}:6:13: zz: unknown step check 'conversoin' (did you mean "
        "'conversion'?) (known: persons, conversion, of_previous, median_hours_from_previous,"
        " below_min)\n"))


def test_a_rules_folder_without_fixtures_checks_nothing_and_fails(rules):
    """An empty or missing tests/ passed: `rules test ok: 0/0 expectations passed`, exit 0."""
    cli = Cli(rules.parent / "ws.duckdb", rules)
    for folder in ("empty", "missing"):
        if folder == "missing":
            (rules / "tests").rmdir()
        result = cli("rules", "test")
        assert (result.exit_code, result.stdout, result.stderr) == (
            1, "", f"error: no fixture in {rules / 'tests'}: nothing was checked\n")
        doc = cli("rules", "test", "--json").json()
        assert (doc["ok"], doc["files"], doc["cases"], doc["error"], doc["exit_code"]) == (
            False, [], 0, {"type": "DataCheckFailed", "location": None, "message":
                           f"no fixture in {rules / 'tests'}: nothing was checked"}, 1)


def test_an_event_finds_its_person_by_any_spelling_of_the_phone(rules):
    """`phone:` had to match the person's phone letter for letter (exit 2 "an event
    needs person:, phone: or lead_id: of a listed person"), while resolve links them."""
    fixture, result = run(rules, """\
as_of: 2026-11-01
persons:
  - {id: p1, phone: "138-0000-0001"}
  - {id: p2, phone: 13800000002}
  - {id: p3, phone: "+1 650-253-0000"}
events:
  - {phone: "13800000001", event: login, days_ago: 1}
  - {phone: "+86 138 0000 0001", event: login, days_ago: 2}
  - {phone: " 0086 138 0000 0002 ", event: login, days_ago: 1}
  - {phone: "+16502530000", event: login, days_ago: 1}
  - {person: " p3 ", lead_id: x, event: login, days_ago: 2}
expect:
  p1: {login_days_30d: 2}
  p2: {login_days_30d: 1}
  p3: {login_days_30d: 2}
""")
    assert (result.exit_code, result.stdout, result.stderr) == (
        0, "rules test ok: 3/3 expectations passed in 1 cases from 1 files\n", "")
    fixture, result = run(rules, "as_of: 2026-11-01\npersons: [{id: p1, phone: '138-0000-0001'}]"
                                 "\nevents:\n  - {phone: '13800000002', event: login, "
                                 "days_ago: 1}\nexpect: {p1: {login_days_30d: 0}}\n")
    assert (result.exit_code, result.stderr) == (2, (
        f"error: {fixture}:4:5: zz: an event needs `person:` (a person id of this case), "
        "`phone:` or `lead_id:` of a listed person\n"))


def test_a_wrong_typed_event_field_or_person_id_and_no_event_type_are_fixture_errors(rules):
    """A list or a mapping was loaded as its Python text ("['login']"), and an empty or
    `N/A` event type was loaded though ingest rejects such a row as no_event_type."""
    fixture, result = run(rules, """\
as_of: 2026-11-01
persons: [{id: [p1]}, {id: {a: 1}}, {id: p3}]
events:
  - {person: p3, event: [login], days_ago: 1}
  - {person: p3, event: {type: login}, days_ago: 1}
  - {person: p3, event: login, days_ago: 1, category: [fresh, apparel]}
  - {person: p3, event: "", days_ago: 1}
  - {person: p3, event: " N/A ", days_ago: 1}
  - {person: p3, event: yes, days_ago: 1}
  - {person: p3, event: 404, days_ago: 1, category: 7}
expect: {p3: {login_days_30d: 0}}
""")
    assert (result.exit_code, result.stderr.splitlines()) == (2, [
        f"error: {fixture}:{where}: zz: {message}" for where, message in (
            ("2:16", "person id must be a text or a number, not ['p1']"),
            ("2:28", "person id must be a text or a number, not {'a': 1}"),
            ("4:25", "`event:` must be a text or a number, not ['login']"),
            ("5:25", "`event:` must be a text or a number, not {'type': 'login'}"),
            ("6:55", "`category:` must be a text or a number, not ['fresh', 'apparel']"),
            ("7:25", "`event:` '' is no event type (ingest rejects such a row as "
                     "no_event_type)"),
            ("8:25", "`event:` ' N/A ' is no event type (ingest rejects such a row as "
                     "no_event_type)"),
            ("9:25", "`event:` must be a text or a number, not yes"))])


def test_an_events_at_is_read_as_ingest_reads_the_same_text(rules):
    """`at:` took only Python's ISO forms: `24:00:00`, a region-name zone, `2026/10/30`
    or Unix seconds, which ingest reads, were "an event needs `at:`" (exit 2)."""
    fixture, result = run(rules, """\
as_of: 2026-11-01
persons: [{id: p1}, {id: p2}]
events:
  - {person: p1, event: order_paid, at: "2026-10-24 24:00:00", amount: 5}
  - {person: p1, event: order_paid, at: "2026-10-25 08:00 Asia/Tokyo", amount: 5}
  - {person: p1, event: order_paid, at: "2026/10/30 8:15", amount: 5}
  - {person: p2, event: order_paid, at: "2026-10-24 23:59:59", amount: 5}
  - {person: p2, event: order_paid, at: 1793145600, amount: 5}  # 10-28 08:00 here
expect:
  p1: {paid_orders_7d: 3}
  p2: {paid_orders_7d: 1}
""")
    assert (result.exit_code, result.stdout, result.stderr) == (
        0, "rules test ok: 2/2 expectations passed in 1 cases from 1 files\n", "")
