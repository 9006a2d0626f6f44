"""`leadctl rules check`, `leadctl rules test` and `leadctl tag` through the real CLI:
exit codes, file:line messages, fixtures with diffs, nothing changed on invalid rules."""

from __future__ import annotations

import shutil

import duckdb
import pytest

import leadctl.ruleset as ruleset
from leadctl.errors import RuleError
from leadctl.rules.load import rules_hash
from leadctl.ruleset import load_rules
from tests.conftest import RULES, Cli, db_rows
from tests.test_rules_load import nested_aliases

BAD_TIER = """\
tags:
  - name: paid_7d
    kind: metric
    event: order_paid
    agg: sum
    field: amount
    window: 7d
  - name: tier
    kind: tiers
    levels:
      - name: high
        when: paid_7d > 100 or 1=1; drop table leads
    default: low
"""


def seeded(cli: Cli) -> Cli:
    assert cli("init", str(cli.db.parent)).exit_code == 0
    con = duckdb.connect(str(cli.db))
    con.execute("INSERT INTO persons (person_id, lead_count) VALUES ('p1', 1), ('p2', 2)")
    con.execute("INSERT INTO subject_persons (subject, person_id) VALUES "
                "('person:p1', 'p1'), ('person:p2', 'p2')")
    con.execute("INSERT INTO events (subject, event_type, ts, amount, category) "
                "SELECT 'person:p1', 'order_paid', TIMESTAMP '2026-10-31 10:00', 250, 'fresh' "
                "FROM range(30)")
    con.close()
    return cli



def test_rules_check_passes_on_the_shipped_rules(cli):
    result = cli("rules", "check", "--json")
    assert result.exit_code == 0, result.stderr
    data = result.json()
    assert data["ok"] is True and data["tags"] == 27 and data["db"] is None


def test_rules_check_reports_every_problem_with_location_and_exits_2(tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "tags.yaml").write_text(BAD_TIER.replace("kind: metric", "kind: metrics"))
    cli = Cli(tmp_path / "ws.duckdb", rules)
    result = cli("rules", "check")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"error: {rules / 'tags.yaml'}:3:11: tag 'paid_7d': unknown kind 'metrics' (did "
        "you mean 'metric'?) (known: tiers, metric, first, last, top, active_days, streak, rfm, "
        "expr)",
        f"error: {rules / 'tags.yaml'}:12:35: tag 'tier' level 'high': ';' is not allowed: a "
        "rule expression is one expression, not SQL statements",
    ]
    as_json = cli("rules", "check", "--json")
    assert as_json.exit_code == 2
    assert [(p["line"], p["col"]) for p in as_json.json()["problems"]] == [(3, 11), (12, 35)]


def test_rules_check_warns_about_event_types_missing_from_the_data(cli):
    seeded(cli)
    result = cli("rules", "check", "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json()["db"] == str(cli.db)
    # each at the tag, the funnel step, the `reactivate_on` item naming it (funnel steps
    # and reactivate_on had none)
    assert result.json()["warnings"] == [
        f"{RULES / file}:{where}: no '{event}' events in the workspace yet"
        for file, where, event in (
            ("tags.yaml", "166:5", "login"), ("tags.yaml", "194:5", "page_view"),
            ("tags.yaml", "202:5", "form_submit"), ("funnels.yaml", "48:10", "push"),
            ("funnels.yaml", "49:10", "push_receipt"), ("funnels.yaml", "50:10", "click"),
            ("funnels.yaml", "51:10", "store_visit"), ("funnels.yaml", "52:10", "install"),
            ("funnels.yaml", "53:10", "register"), ("funnels.yaml", "54:10", "bind_card"),
            ("funnels.yaml", "55:10", "join_activity"), ("funnels.yaml", "55:10", "apply"),
            ("routing.yaml", "132:19", "login"), ("routing.yaml", "132:26", "form_submit"))]


def test_load_rules_lists_the_problems_of_every_file_and_types_scoring_by_the_tags(tmp_path):
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    (rules / "scoring.yaml").write_text(
        "grades: {A: 50, D: 0}\n"
        "rules:\n  - {name: high_tier, when: value_tier > 3, points: 10}\n")
    (rules / "sources.yaml").write_text("colour: red\n")
    with pytest.raises(RuleError) as caught:
        load_rules(rules)
    assert [(loc.file.rsplit("/", 1)[-1], loc.line, loc.col, message)
            for loc, message in caught.value.problems] == [
        ("scoring.yaml", 3, 29,
         "score rule 'high_tier' when: cannot compare string 'value_tier' with number 3"),
        ("sources.yaml", 1, 1, "unknown key 'colour' (known: aliases, timezone)")]


def test_invalid_rules_refuse_to_tag_and_change_nothing(tmp_path):
    cli = seeded(Cli(tmp_path / "ws.duckdb"))
    assert cli("tag", "--as-of", "2026-11-01").exit_code == 0
    before = db_rows(cli, "SELECT * FROM tags ORDER BY person_id, tag")
    runs = db_rows(cli, "SELECT count(*) FROM runs")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "tags.yaml").write_text(BAD_TIER)
    result = Cli(cli.db, bad)("tag", "--as-of", "2026-11-02")
    assert result.exit_code == 2
    assert f"{bad / 'tags.yaml'}:12:35:" in result.stderr
    assert db_rows(cli, "SELECT * FROM tags ORDER BY person_id, tag") == before
    assert db_rows(cli, "SELECT count(*) FROM runs") == runs


def test_tag_stores_and_dry_run_shows_the_difference(cli):
    seeded(cli)
    result = cli("tag", "--as-of", "2026-11-01", "--json")
    assert result.exit_code == 0, result.stderr
    first = result.json()
    assert first["run_id"] == 1 and first["persons"] == 2
    assert db_rows(cli, "SELECT value FROM tags WHERE person_id = 'p1' AND tag = 'value_tier'"
                   ) == [('"high"',)]
    assert db_rows(cli, "SELECT command, outcome, CAST(as_of AS VARCHAR) FROM runs "
                   "WHERE run_id = 1") == [("tag", "ok", "2026-11-01")]
    preview = cli("tag", "--as-of", "2026-11-08", "--dry-run", "--json")
    assert preview.exit_code == 0, preview.stderr
    data = {t["tag"]: t for t in preview.json()["tags"]}
    assert data["value_tier"]["levels"][:2] == [
        {"value": "high", "persons": 0, "previous": 1},
        {"value": "medium", "persons": 1, "previous": 0}]
    assert data["paid_orders_7d"]["changes"] == {"added": 0, "removed": 0, "changed": 1}
    assert db_rows(cli, "SELECT value FROM tags WHERE person_id = 'p1' AND tag = 'value_tier'"
                   ) == [('"high"',)]
    table = cli("tag", "--as-of", "2026-11-08", "--dry-run")
    assert table.exit_code == 0
    assert "dry run, nothing stored" in table.stdout
    row = next(line for line in table.stdout.splitlines() if "value_tier" in line)
    assert "high 0" in row and "│       1 │" in row  # level sizes; 1 value changed


def test_rules_test_passes_on_the_shipped_fixtures(cli):
    result = cli("rules", "test")
    assert (result.exit_code, result.stdout, result.stderr) == (
        0, "rules test ok: 182/182 expectations passed in 16 cases from 13 files\n", "")


FAILING_FIXTURE = """\
as_of: 2026-11-01
persons:
  - {id: p1, phone: "13800000001"}
events:
  - {phone: "13800000001", event: order_paid, days_ago: 1, amount: 100, category: fresh}
  - {person: p1, event: order_paid, days_ago: 40, amount: 900, category: fresh}
expect:
  p1:
    paid_amount_30d: 1000
    top_categories_7d: []
"""


def test_rules_test_prints_a_diff_and_exits_1(rules_copy, tmp_path):
    (rules_copy / "tests" / "zz_wrong.yaml").write_text(FAILING_FIXTURE)
    result = Cli(tmp_path / "ws.duckdb", rules_copy)("rules", "test")
    assert result.exit_code == 1
    fixture = rules_copy / "tests" / "zz_wrong.yaml"
    assert [line for line in result.stdout.splitlines() if line.startswith("FAIL")] == [
        f"FAIL {fixture}:9: zz_wrong: paid_amount_30d for p1: expected 1000, got 100",
        f"FAIL {fixture}:10: zz_wrong: top_categories_7d for p1: expected [], got no value",
    ]
    data = Cli(tmp_path / "ws.duckdb", rules_copy)("rules", "test", "--json").json()
    assert data["failed"] == 2 and data["ok"] is False
    assert data["failures"][0] | {"message": None} == {
        "file": str(fixture), "line": 9, "case": "zz_wrong", "person": "p1",
        "tag": "paid_amount_30d", "expected": 1000, "got": 100, "message": None}


# Fixture data read as ingest reads the same data: a zoned time in the workspace's zone
# (Asia/Shanghai: 2026-10-31T20:00Z is the as-of day, not counted), a category trimmed,
# an empty one no value; numbers compared to the millionth.
INGEST_LIKE_FIXTURE = """\
as_of: 2026-11-01
persons:
  - {id: p1, phone: "13800000001"}
events:
  - {person: p1, event: order_paid, at: "2026-10-31T20:00:00+00:00", amount: 100}
  - {person: p1, event: order_paid, at: "2026-10-05T20:00:00+00:00", amount: 7.5,
     category: " fresh "}
  - {person: p1, event: order_paid, at: "2026-10-06 10:00", amount: 2.25, category: ""}
expect:
  p1:
    paid_orders_30d: 2
    paid_amount_30d: 9.75
    categories_bought_180d: 1
    first_order_category: fresh
"""


def test_fixture_data_is_read_as_ingest_reads_it(rules_copy, tmp_path):
    path = rules_copy / "tests" / "zz_ingest.yaml"
    path.write_text(INGEST_LIKE_FIXTURE, encoding="utf-8")
    run = Cli(tmp_path / "ws.duckdb", rules_copy)
    assert run("rules", "test").stdout == (
        "rules test ok: 4/4 expectations passed in 1 cases from 1 files\n")
    path.write_text(INGEST_LIKE_FIXTURE.replace("9.75", "9.750001"), encoding="utf-8")
    result = run("rules", "test")
    assert (result.exit_code, result.stdout.splitlines()[0]) == (
        1, f"FAIL {path}:12: zz_ingest: paid_amount_30d for p1: expected 9.750001, got 9.75")


def test_a_broken_fixture_is_a_rule_error(rules_copy, tmp_path):
    (rules_copy / "tests" / "zz_broken.yaml").write_text(
        FAILING_FIXTURE.replace("{phone: \"13800000001\", event", "{phone: \"139\", event"))
    result = Cli(tmp_path / "ws.duckdb", rules_copy)("rules", "test")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"error: {rules_copy / 'tests' / 'zz_broken.yaml'}:5:5: zz_broken: an event needs "
        "`person:` (a person id of this case), `phone:` or `lead_id:` of a listed person")


def test_a_fixture_of_nested_aliases_is_refused_at_once(rules_copy, tmp_path):
    # 218 bytes of nested aliases were 31 s and 600 MB of `rules test` (8 levels: > 5 min)
    path = rules_copy / "tests" / "zz_bomb.yaml"
    path.write_text(nested_aliases(8))
    result = Cli(tmp_path / "ws.duckdb", rules_copy)("rules", "test")
    assert (result.exit_code, result.stderr) == (2, (
        f"error: {path}:5:29: too many aliased values: the aliases up to here repeat more "
        "than 100,000 values (nested aliases multiply them); write the values out or nest "
        "fewer aliases\n"))


BADLY_TYPED = """\
cases:
  - name: typed
    as_of: 2026-11-01
    persons:
      - {id: p1, lead_count: abc, leads: BD100001, first_seen: yesterday, sources: 5}
      - {id: p2, leads: -1}
    expect: {p1: {repeat_lead: false}}
  - name: typed
    as_of: 2026-11-01
    persons: [{id: p1}]
    expect: {p1: {}}
"""


def test_a_fixture_of_wrong_types_or_that_checks_nothing_is_a_rule_error(rules_copy,
                                                                        tmp_path):
    # lead_count: abc was exit 3; leads: BD100001 was 8 leads; {} passed checking nothing;
    # leads: -1 was exit 3
    path = rules_copy / "tests" / "zz_typed.yaml"
    path.write_text(BADLY_TYPED)
    result = Cli(tmp_path / "ws.duckdb", rules_copy)("rules", "test")
    assert (result.exit_code, sorted(result.stderr.splitlines())) == (2, sorted(
        f"error: {path}:{where}: typed: {message}" for where, message in (
            ("5:30", "person lead_count must be a whole number from 1 to 1,000,000, not 'abc'"),
            ("5:42", "person leads must be a list of ids, not 'BD100001'"),
            ("5:64", "person first_seen must be a date or a timestamp like 2026-10-01 08:00, "
                     "not 'yesterday'"),
            ("5:84", "person sources must be a list of source names, not 5"),
            ("6:25", "person leads must be a list of ids, not -1"),
            ("11:14", "expectations of 'p1' must map tag → value"),
            ("8:5", "a case of this name is above: give each case its own `name:`"))))
    path.write_text("cases: []\n")
    empty = Cli(tmp_path / "ws.duckdb", rules_copy)("rules", "test")
    assert (empty.exit_code, empty.stderr) == (
        2, f"error: {path}:1:8: `cases:` must be a list of cases\n")


EDGE_OF_THE_CALENDAR = """\
as_of: 2026-11-01
persons:
  - {id: p1, first_seen: '0001-01-01T00:00:00+14:00'}
events:
  - {person: p1, event: order_paid, at: '9999-12-31T23:59:59-12:00'}
  - {person: p1, event: order_paid, at: 0001-01-01T00:00:00+14:00}
expect: {p1: {paid_amount_30d: 0}}
"""


def test_a_fixture_time_outside_the_calendar_is_a_rule_error(rules_copy, tmp_path):
    # zoned times whose UTC instant has no date were exit 3 (OverflowError)
    path = rules_copy / "tests" / "zz_edge.yaml"
    path.write_text(EDGE_OF_THE_CALENDAR)
    result = Cli(tmp_path / "ws.duckdb", rules_copy)("rules", "test")
    assert (result.exit_code, result.stderr.splitlines()) == (2, [
        f"error: {path}:3:26: zz_edge: person first_seen must be a date from 1900-01-01 to "
        "2999-12-31, not '0001-01-01T00:00:00+14:00'",
        f"error: {path}:5:41: zz_edge: `at:` must be a date from 1900-01-01 to 2999-12-31, "
        "not '9999-12-31T23:59:59-12:00'",
        f"error: {path}:6:41: zz_edge: `at:` must be a date from 1900-01-01 to 2999-12-31, "
        "not 0001-01-01T00:00:00+14:00"])


def test_rules_check_says_which_tags_later_nights_read_from_raw_events(cli):
    result = cli("rules", "check")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[1:] == [
        "later nights: 15 tags folded from stored partials, 6 derived, 6 read from raw events:",
        "  top_categories_7d: per-value counts (top, first/last value, distinct)",
        "  favourite_category_90d: per-value counts (top, first/last value, distinct)",
        "  first_order_category: per-value counts (top, first/last value, distinct)",
        "  categories_bought_180d: per-value counts (top, first/last value, distinct)",
        "  login_streak_30d: runs of days (streak)",
        "  login_streak_current: runs of days (streak)"]
    nightly = cli("rules", "check", "--json").json()["nightly"]
    assert nightly["folded"][:3] == ["paid_orders_7d", "paid_amount_7d", "paid_orders_30d"]
    assert nightly["derived"] == ["value_tier", "rfm_segment", "activity_level",
                                  "lifecycle_stage", "acquisition_channel", "repeat_lead"]
    assert nightly["from_raw_events"][-1] == {"tag": "login_streak_current",
                                              "reason": "runs of days (streak)"}


def test_a_rule_file_changed_while_the_rules_are_read_is_read_again(tmp_path, monkeypatch):
    # `identity link` appending an override while a run reads the rules: the hash the run
    # records is that of the files it parsed, the new ones

    rules = shutil.copytree(RULES, tmp_path / "rules")
    real, calls = ruleset.load_funnel_rules, []

    def append_while_reading(*args):
        if not calls:
            with open(rules / "identity_overrides.yaml", "a", encoding="utf-8") as out:
                out.write("overrides:\n  - kind: must_link\n    leads: [a|1, b|2]\n"
                          "    reason: same person\n")
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(ruleset, "load_funnel_rules", append_while_reading)
    loaded = load_rules(rules)
    assert (len(calls), loaded.hash == rules_hash(rules)) == (2, True)
    assert len(loaded.identity.overrides) == 1


# What a real run computes from the same files (each checked by `run`): a city spelled 上海
# is 上海市, with its province, for scoring; a category of a tab is a category (ingest's
# trim takes spaces only); an empty amount is no amount, as an empty CSV cell.
AS_A_RUN_FIXTURE = """\
as_of: 2026-11-01
persons:
  - {id: p1, phone: "13912340001", city: 上海, leads: [L1]}
  - {id: p2, id_card: "110101199003071234", phone: "13800138000"}  # a bad card, a blocked phone
events:
  - {phone: "13912340001", event: order_paid, at: "2026-10-30 12:00:00", amount: 50,
     category: "\\t"}
  - {person: p1, event: order_paid, days_ago: 1, amount: ""}
expect:
  p1: {points.key_city: 5, first_order_category: "\\t", categories_bought_180d: 1,
       paid_orders_30d: 2, paid_amount_30d: 50}
  p2: {points.key_city: 0}
"""


def test_fixture_persons_and_events_are_read_as_a_run_reads_them(rules_copy, tmp_path):
    path = rules_copy / "tests" / "zz_run.yaml"
    path.write_text(AS_A_RUN_FIXTURE, encoding="utf-8")
    result = Cli(tmp_path / "ws.duckdb", rules_copy)("rules", "test")
    assert (result.exit_code, result.stdout, result.stderr) == (
        0, "rules test ok: 6/6 expectations passed in 1 cases from 1 files\n", "")


KEYS_BESIDE_CASES = """\
as_of: 2026-11-01
persons: [{id: p1}]
expect: {p1: {repeat_lead: true}}
cases:
  - name: one
    as_of: 2026-11-01
    persons: [{id: p1}]
    expect: {p1: {repeat_lead: false}}
"""


def test_keys_beside_cases_are_a_rule_error(rules_copy, tmp_path):
    # they were ignored: the wrong `repeat_lead: true` above checked nothing, and passed
    path = rules_copy / "tests" / "zz_beside.yaml"
    path.write_text(KEYS_BESIDE_CASES)
    result = Cli(tmp_path / "ws.duckdb", rules_copy)("rules", "test")
    assert (result.exit_code, result.stdout, result.stderr.splitlines()) == (2, "", [
        f"error: {path}:{line}:1: '{key}' beside `cases:`: a file of cases holds only "
        f"`cases:` (give each case its own `{key}:`)"
        for line, key in ((1, "as_of"), (2, "persons"), (3, "expect"))])


EVENT_TIMES = """\
as_of: 2026-11-01
persons: [{id: p1}]
events:
  - {person: p1, event: visit, days_ago: 3, time: 09:30}
  - {person: p1, event: visit, days_ago: 2, time: 10:00:00}
  - {person: p1, event: visit, days_ago: 1, time: "07:05:30.5"}
expect:
  p1: {first_visit_at: 2026-10-29 09:30:00, second_visit_at: 2026-10-30 10:00:00,
       last_visit_at: 2026-10-31 07:05:30.5}
"""


def test_an_unquoted_event_time_is_the_time_it_says(rules_copy, tmp_path):
    # YAML 1.1 reads 10:00:00 as 36000 (base 60), which was taken for minutes: midnight
    tags = rules_copy / "tags.yaml"
    tags.write_text(tags.read_text() + "".join(
        f"  - {{name: {name}, kind: {kind}, category: profile, description: x, event: visit,"
        f" value: ts{where}}}\n" for name, kind, where in (
            ("first_visit_at", "first", ""), ("last_visit_at", "last", ""),
            ("second_visit_at", "last", ", where: \"days_since(ts) >= 2\""))))
    path = rules_copy / "tests" / "zz_times.yaml"
    path.write_text(EVENT_TIMES)
    run = Cli(tmp_path / "ws.duckdb", rules_copy)
    result = run("rules", "test")
    assert (result.exit_code, result.stdout, result.stderr) == (
        0, "rules test ok: 3/3 expectations passed in 1 cases from 1 files\n", "")
    # a time past the day (or not a time) was read modulo 24 hours (25:00 was 01:00)
    path.write_text(EVENT_TIMES.replace("09:30}", "25:00}").replace("10:00:00}", "9}")
                    .replace('"07:05:30.5"', "'10:60'"))
    result = run("rules", "test")
    assert (result.exit_code, result.stderr.splitlines()) == (2, [
        f"error: {path}:{line}: zz_times: `time:` must be a time of day from 00:00 to "
        f"23:59:59 (HH:MM or HH:MM:SS), not {written}"
        for line, written in (("4:51", "25:00"), ("5:51", "9"), ("6:51", "'10:60'"))])


@pytest.mark.parametrize("beside, col", [("time: '09:30'", 61), ("days_ago: 3", 61)])
def test_an_event_with_at_and_days_ago_or_time_is_a_fixture_error(rules_copy, tmp_path,
                                                                  beside, col):
    # the key beside `at:` was silently ignored (the event stayed at the `at:`, and passed)
    path = rules_copy / "tests" / "zz_at_time.yaml"
    path.write_text("as_of: 2026-11-01\npersons: [{id: p1}]\nevents:\n"
                    f"  - {{person: p1, event: order_paid, at: '2026-10-31 08:00', {beside},"
                    " amount: 100}\nexpect: {p1: {paid_amount_30d: 100}}\n")
    result = Cli(tmp_path / "ws.duckdb", rules_copy)("rules", "test")
    key = beside.split(":")[0]
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", (
        f"error: {path}:4:{col}: zz_at_time: an event has both `at:` and `{key}:`: write the "
        "date and time of day in `at:`, or use `days_ago:` with `time:`\n"))


def test_a_mistyped_fixture_key_is_one_error(rules_copy, tmp_path):
    """`expct:` is the one problem (with its near miss), not also "`expect:` must map…";
    so is a funnel expectation's `grups:`."""
    head = "name: c\nas_of: 2026-11-01\npersons: [{id: a}]\n"
    (rules_copy / "tests" / "x.yaml").write_text(head + "expct:\n  a: {paid_orders_7d: 1}\n")
    (rules_copy / "tests" / "y.yaml").write_text(
        head + "expect_funnels:\n  app_install:\n    grups:\n      A:\n        pushed: 0\n")
    result = Cli(tmp_path / "ws.duckdb", rules_copy)("rules", "test")
    x, y = rules_copy / "tests" / "x.yaml", rules_copy / "tests" / "y.yaml"
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [
        f"error: {x}:4:1: unknown key 'expct' in a fixture (did you mean 'expect'?) "
        "(known: name, as_of, persons, events, expect, expect_funnels)",
        f"error: {y}:6:5: c: unknown key 'grups' (did you mean 'groups'?) (known: by, "
        "attribution, groups)"]


FUNNEL_FIXTURE = """\
name: c
as_of: 2026-11-01
persons: [{id: p1}]
expect_funnels:
  app_install:
    by: [utm_content]
    groups:
      A:
        pushed: 0
"""


@pytest.mark.parametrize(("text", "replacement", "error"), [
    ("  app_install:", "  app_instal:",
     "5:3: c: no funnel 'app_instal' in {funnels} (did you mean 'app_install'?) (funnels: "
     "app_install, app_register_basic)"),
    ("[utm_content]", "[utm_content, utm_contnt]",
     "6:23: c: funnel 'app_install' is not broken down by 'utm_contnt' (did you mean "
     "'utm_content'?) (its by: utm_source, utm_medium, utm_campaign, utm_content, utm_term, "
     "source, batch, tag:value_tier)"),
    ("[utm_content]", "[utm_content, utm_content]", "6:23: c: by: 'utm_content' is listed twice"),
    ("    groups:", "    attribution: frist\n    groups:",
     "7:18: c: attribution must be first or last, not 'frist' (did you mean 'first'?)"),
], ids=["funnel", "by", "by twice", "attribution"])
def test_a_fixture_funnel_error_is_at_its_own_key(rules_copy, tmp_path, text, replacement,
                                                  error):
    fixture = rules_copy / "tests" / "x.yaml"
    fixture.write_text(FUNNEL_FIXTURE.replace(text, replacement, 1))
    result = Cli(tmp_path / "ws.duckdb", rules_copy)("rules", "test")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [
        f"error: {fixture}:{error.format(funnels=rules_copy / 'funnels.yaml')}"]
