"""`rules test` compares each expectation with the value exactly as README says: whole
numbers exactly, numbers with a fraction to the millionth, text as text, dates and
timestamps as the instants they are."""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import RULES, Cli

EXTRA_TAGS = """
  - {name: big_num, kind: expr, category: profile, description: x,
     expr: "lead_count * 9007199254740993"}
  - {name: code_text, kind: expr, category: profile, description: x, expr: "'100'"}
  - {name: seen_ts, kind: expr, category: profile, description: x, expr: "last_seen"}
  - {name: note_text, kind: expr, category: profile, description: x,
     expr: "'2026-10-01 is not a date'"}
  - {name: day_text, kind: expr, category: profile, description: x, expr: "'2026-10-01'"}
"""

FIXTURE = """\
as_of: 2026-11-01
persons:
  - {{id: p1, lead_count: 1, last_seen: "2026-10-01 23:59:58.5"}}
expect:
  p1: {{{key}: {value}}}
"""


@pytest.fixture
def run(tmp_path):
    """The shipped rules (without their fixtures) and the tags above; run(key, value)
    runs one expectation of p1: (exit code, first line of stdout)."""
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules, ignore=shutil.ignore_patterns("tests"))
    (rules / "tests").mkdir()
    tags = rules / "tags.yaml"
    tags.write_text(tags.read_text() + EXTRA_TAGS)
    fixture = rules / "tests" / "zz.yaml"

    def run_one(key: str, value: str) -> tuple[int, str]:
        fixture.write_text(FIXTURE.format(key=key, value=value))
        result = Cli(tmp_path / "ws.duckdb", rules)("rules", "test")
        assert result.stderr == "" or result.exit_code != 0
        return result.exit_code, (result.stdout.splitlines() or [""])[0].replace(
            f"FAIL {fixture}:5: zz: ", "")
    return run_one


PASSED = (0, "rules test ok: 1/1 expectations passed in 1 cases from 1 files")


def test_whole_numbers_are_compared_exactly(run):
    # 9007199254740993 (2**53 + 1) was compared as a float: 9007199254740992 passed
    assert run("big_num", "9007199254740993") == PASSED
    assert run("big_num", "9007199254740992") == (
        1, "big_num for p1: expected 9007199254740992, got 9007199254740993")
    assert run("repeat_lead", "false") == PASSED


def test_a_text_is_expected_as_text(run):
    # `code_text: 100` passed for the text '100' (a number was compared as its text),
    # while "100" for a number failed
    assert run("code_text", "'100'") == PASSED
    assert run("code_text", "100") == (1, 'code_text for p1: expected 100, got "100"')
    assert run("big_num", "'9007199254740993'") == (
        1, 'big_num for p1: expected "9007199254740993", got 9007199254740993')


def test_dates_and_timestamps_are_compared_as_instants(run):
    # a date or timestamp was compared as a prefix of the value's text: 2026-10-01 passed
    # for 2026-10-01 23:59:58.5 and for the text '2026-10-01 is not a date', and
    # 2026-10-01 23:59:58 for 23:59:58.5
    assert run("seen_ts", "2026-10-01 23:59:58.5") == PASSED
    assert run("seen_ts", "'2026-10-01 23:59:58.500'") == PASSED
    assert run("seen_ts", "2026-10-01T15:59:58.5Z") == PASSED  # Asia/Shanghai
    assert run("seen_ts", "2026-10-01 23:59:58") == (
        1, "seen_ts for p1: expected 2026-10-01 23:59:58, got 2026-10-01 23:59:58.500000")
    assert run("seen_ts", "2026-10-01") == (  # a date is its midnight
        1, "seen_ts for p1: expected 2026-10-01, got 2026-10-01 23:59:58.500000")
    assert run("note_text", "2026-10-01") == (
        1, 'note_text for p1: expected 2026-10-01, got "2026-10-01 is not a date"')
    assert run("day_text", "2026-10-01") == (  # a text is expected as text
        1, 'day_text for p1: expected 2026-10-01, got "2026-10-01"')
    assert run("day_text", "'2026-10-01'") == PASSED


def test_a_date_tag_is_its_day(run, tmp_path):
    tags = tmp_path / "rules" / "tags.yaml"
    tags.write_text(tags.read_text().replace("  page: string\n", "  page: string\n"
                                             "  visit_day: date\n") +
                    "  - {name: visit_date, kind: first, category: profile, description: x,"
                    " event: visit, value: visit_day}\n")
    fixture = tmp_path / "rules" / "tests" / "zz.yaml"
    case = ("as_of: 2026-11-01\npersons: [{{id: p1}}]\n"
            "events: [{{person: p1, event: visit, days_ago: 3, visit_day: 2026-10-01}}]\n"
            "expect:\n  p1: {{visit_date: {}}}\n")
    run_rules = Cli(tmp_path / "ws.duckdb", tmp_path / "rules")
    fixture.write_text(case.format("2026-10-02"))
    result = run_rules("rules", "test")
    assert (result.exit_code, result.stdout.splitlines()[0]) == (
        1, f"FAIL {fixture}:5: zz: visit_date for p1: expected 2026-10-02, got 2026-10-01")
    for same in ("2026-10-01", "'2026-10-01'", "2026-10-01 00:00:00"):
        fixture.write_text(case.format(same))
        result = run_rules("rules", "test")
        assert (result.exit_code, result.stdout) == (0, PASSED[1] + "\n"), same


def test_fixture_amounts_are_any_finite_number_and_sums_cut_at_1e18(tmp_path):
    """A fixture event takes the amounts ingest loads (any finite number), so the
    documented cut-off can be tested: an amount from ±10^18 on is no amount to a sum."""
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules, ignore=shutil.ignore_patterns("tests"))
    (rules / "tests").mkdir()
    (rules / "tests" / "big.yaml").write_text("""\
name: big amounts
as_of: 2026-11-01
persons: [{id: a}, {id: b}]
events:
  - {person: a, event: order_paid, days_ago: 1, amount: 1000000000000000000}
  - {person: a, event: order_paid, days_ago: 1, amount: 5}
  - {person: b, event: order_paid, days_ago: 1, amount: 900000000000000000}
  - {person: b, event: order_paid, days_ago: 1, amount: -1000000000000000000}
  - {person: b, event: order_paid, days_ago: 1, amount: 1.0e+300}
expect:
  a: {paid_orders_7d: 2, paid_amount_7d: 5}
  b: {paid_orders_7d: 3, paid_amount_7d: 900000000000000000}
""")
    result = Cli(tmp_path / "ws.duckdb", rules)("rules", "test")
    assert (result.exit_code, result.stdout.strip()) == (
        0, "rules test ok: 4/4 expectations passed in 1 cases from 1 files")


def test_an_expected_pool_or_grade_the_rules_lack_is_a_located_rule_error(tmp_path):
    """A typo there would be a FAIL whatever the rules did: said where it is (exit 2)."""
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules, ignore=shutil.ignore_patterns("tests"))
    (rules / "tests").mkdir()
    fixture = rules / "tests" / "zz.yaml"
    fixture.write_text("as_of: 2026-11-01\npersons:\n  - {id: p1}\nexpect:\n"
                       "  p1: {pool: nurtur, route: default_pool, grade: E}\n")
    result = Cli(tmp_path / "ws.duckdb", rules)("rules", "test")
    assert (result.exit_code, result.stdout, result.stderr.splitlines()) == (2, "", [
        f"error: {fixture}:5:8: zz: unknown pool 'nurtur' in expect (did you mean "
        "'nurture'?) (known: key_accounts, sales_east, sales_south, sales_other, public_sea, "
        "nurture, dormant)",
        f"error: {fixture}:5:43: zz: unknown grade 'E' in expect (known: A, B, C, D)"])
    fixture.write_text(fixture.read_text().replace("nurtur,", "nurture,").replace(
        "grade: E", "grade: D"))
    assert Cli(tmp_path / "ws.duckdb", rules)("rules", "test").exit_code == 0


def test_an_unquoted_number_expected_of_grades_named_by_numbers_is_compared(tmp_path):
    """Grades '1'..'4': `grade: 4` is no unknown grade; it is compared (and fails: the
    grade is the text '4')."""
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules, ignore=shutil.ignore_patterns("tests"))
    scoring = rules / "scoring.yaml"
    scoring.write_text(scoring.read_text().replace("A: 70", "'1': 70").replace(
        "B: 45", "'2': 45").replace("C: 20", "'3': 20").replace("D: 0", "'4': 0"))
    (rules / "tests").mkdir()
    (rules / "tests" / "zz.yaml").write_text(
        "as_of: 2026-11-01\npersons:\n  - {id: p1}\nexpect:\n  p1: {grade: 4}\n")
    result = Cli(tmp_path / "ws.duckdb", rules)("rules", "test")
    assert (result.exit_code, result.stdout.splitlines()[0]) == (
        1, f"FAIL {rules / 'tests' / 'zz.yaml'}:5: zz: grade for p1: expected 4, got \"4\"")


def test_a_top_tag_over_dates_is_expected_as_dates(tmp_path):
    """The values of a `top` tag over a date field were left as text: `[2026-09-01]`
    failed with `expected ["2026-09-01"], got ["2026-09-01"]`. Two values written alike
    are told apart by their types."""
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules, ignore=shutil.ignore_patterns("tests"))
    tags = rules / "tags.yaml"
    tags.write_text(tags.read_text().replace("  page: string\n", "  page: string\n"
                                             "  signup: date\n") +
                    "  - {name: top_signups, kind: top, category: profile, description: x,"
                    " event: profile, field: signup, n: 2}\n")
    (rules / "tests").mkdir()
    fixture = rules / "tests" / "zz.yaml"
    case = ("as_of: 2026-11-01\npersons: [{{id: p1}}]\n"
            "events:\n  - {{person: p1, event: profile, days_ago: 3, signup: 2026-09-01}}\n"
            "  - {{person: p1, event: order_paid, days_ago: 1, amount: 500,"
            " category: '2026-09-01'}}\n"
            "expect:\n  p1: {{{}}}\n")
    run_rules = Cli(tmp_path / "ws.duckdb", rules)
    for same in ("top_signups: [2026-09-01]", "top_signups: ['2026-09-01']"):
        fixture.write_text(case.format(same))
        result = run_rules("rules", "test")
        assert (result.exit_code, result.stdout) == (0, PASSED[1] + "\n"), same
    fixture.write_text(case.format("top_signups: [2026-09-02]"))
    assert run_rules("rules", "test").stdout.splitlines()[0] == (
        f"FAIL {fixture}:7: zz: top_signups for p1: expected [\"2026-09-02\"], "
        "got [\"2026-09-01\"]")
    fixture.write_text(case.format("top_categories_7d: [2026-09-01]"))  # a list of text
    result = run_rules("rules", "test")
    assert (result.exit_code, result.stdout.splitlines()[0]) == (1, (
        f"FAIL {fixture}:7: zz: top_categories_7d for p1: expected [\"2026-09-01\"] "
        "(list of date), got [\"2026-09-01\"] (list of text)"))
