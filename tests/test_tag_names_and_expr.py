"""Tag names that would shadow the fields `find` and route conditions read beside the tags,
and the expression checks that kept DuckDB errors from reaching the user: the values a
list holds (`contains`), whole numbers beyond BIGINT, and overflow while `find` runs."""

from __future__ import annotations

import shutil

import duckdb
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from test_find import FEATURES_SQL
from test_portrait import AS_OF, seed_workspace

from leadctl.errors import RuleError
from leadctl.routing.model import ROUTE_FIELDS
from leadctl.rules.expr import ExprError, compile_expr, element_of, list_of
from leadctl.ruleset import load_rules
from leadctl.tagging.parse import load_tag_rules
from leadctl.views.find import EXTRA_FIELDS
from tests.conftest import RULES, SAMPLE_INBOX

BUILTIN = {  # name → where it is read besides the tags
    "score": "find and route conditions", "grade": "find and route conditions",
    "pool": "find and route conditions", "owner": "find and route conditions",
    "status": "find and route conditions", "status_since": "find", "assigned_at": "find",
    "locked_until": "find", "dormant": "find", "status_days": "route conditions",
    "days_in_pool": "route conditions",
}


def tag_problems(tmp_path, body: str) -> list[str]:
    (tmp_path / "tags.yaml").write_text(body, encoding="utf-8")
    with pytest.raises(RuleError) as caught:
        load_tag_rules(tmp_path)
    return [f"{loc.line}:{loc.col}: {message}" for loc, message in caught.value.problems]


@pytest.fixture
def rules_copy(tmp_path):
    target = tmp_path / "rules"
    shutil.copytree(RULES, target, ignore=shutil.ignore_patterns("tests"))
    return target


def prepend_tags(rules, *lines: str) -> int:
    """Insert flow-style tags first under `tags:`; returns the line of the first one."""
    path = rules / "tags.yaml"
    text = path.read_text(encoding="utf-8")
    line = text[:text.index("\ntags:\n")].count("\n") + 3
    path.write_text(text.replace("\ntags:\n", "\ntags:\n" + "".join(
        f"  - {item}\n" for item in lines), 1), encoding="utf-8")
    return line


# -- A: tag names -------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_a_tag_named_like_a_builtin_field_is_refused_and_names_it_no_further(tmp_path, name):
    assert tag_problems(tmp_path, f"""\
tags:
  - name: {name}
    kind: expr
    expr: "'x'"
  - {{name: uses_it, kind: expr, expr: "{name} is null"}}
""") == [f"2:11: tag name '{name}' is a built-in field of {BUILTIN[name]}; "
         "choose another name"]


@pytest.mark.parametrize("name", ["phones", "phone", "id_card", "city_source", "city"])
def test_a_tag_named_like_a_column_of_persons_is_refused(tmp_path, name):
    # `phones` passed, and `export persons` left the tag out for the golden record's list
    assert tag_problems(tmp_path, f"""\
tags:
  - name: {name}
    kind: expr
    expr: "'x'"
""") == [f"2:11: tag name '{name}' is a person attribute; choose another name"]


def test_the_refused_names_are_the_fields_find_and_routing_define():
    defined = (set(EXTRA_FIELDS) | set(ROUTE_FIELDS)) - {"person_id"}  # a reserved word
    assert defined == set(BUILTIN)


def test_rules_check_and_run_refuse_a_tag_named_grade(cli, rules_copy):
    line = prepend_tags(rules_copy, '{name: grade, kind: expr, category: value, expr: "\'x\'"}')
    cli.rules = rules_copy
    expected = (f"error: {rules_copy / 'tags.yaml'}:{line}:12: tag name 'grade' is a "
                "built-in field of find and route conditions; choose another name\n")
    check = cli("rules", "check")
    assert (check.exit_code, check.stderr) == (2, expected)
    run = cli("run", "--as-of", "2026-11-01")
    assert (run.exit_code, run.stderr) == (2, expected)


def test_tags_named_like_the_rfm_averages_columns_compute_the_same_segments(cli, rules_copy):
    # The averages' row had columns r, f and m: an rfm of tags named so (or an expr reading
    # one beside it) was an ambiguous column, and `run` exited 3 after `rules check` passed.
    prepend_tags(rules_copy, *(f'{{name: {n}, kind: expr, category: value, expr: "{e}"}}'
                               for n, e in (("r", "days_since_last_payment"),
                                            ("f", "paid_orders_180d"),
                                            ("m", "paid_amount_180d"))),
                 "{name: seg, kind: rfm, category: value, recency: r, frequency: f, "
                 "monetary: m}",
                 '{name: r_again, kind: expr, category: value, expr: "r + 0"}')
    cli.rules = rules_copy
    run = cli("run", "--inbox", SAMPLE_INBOX, "--as-of", "2026-11-01")
    assert run.exit_code == 0, run.stderr
    with duckdb.connect(str(cli.db), read_only=True) as con:
        assert con.execute("SELECT count(seg), count(*) FILTER (WHERE seg IS DISTINCT FROM "
                           "rfm_segment OR r_again IS DISTINCT FROM r) FROM person_features"
                           ).fetchall() == [(924, 0)]


# -- B: what a list holds -------------------------------------------------------------------

LISTS = {"string": "cats", "number": "amounts", "boolean": "flags", "date": "days",
         "timestamp": "times"}
VALUES = {"string": "name", "number": "n", "boolean": "flag", "date": "day",
          "timestamp": "time"}
FIELDS = {**{name: list_of(kind) for kind, name in LISTS.items()},
          **{name: kind for kind, name in VALUES.items()}, "plain": "list"}


def rejected(text: str) -> tuple[str, int, int]:
    with pytest.raises(ExprError) as caught:
        compile_expr(text, FIELDS)
    return caught.value.message, caught.value.offset, caught.value.length


@pytest.fixture(scope="module")
def lists_db():
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT ['a'] AS cats, [1::BIGINT] AS amounts, [true] AS flags, "
                "[DATE '2026-01-02'] AS days, [TIMESTAMP '2026-01-02 00:00'] AS times, "
                "'a' AS name, 1::BIGINT AS n, true AS flag, DATE '2026-01-02' AS day, "
                "TIMESTAMP '2026-01-02 00:00' AS time")
    yield con
    con.close()


@pytest.mark.parametrize("element", LISTS)
@pytest.mark.parametrize("value", VALUES)
def test_contains_accepts_exactly_the_values_a_list_holds_and_duckdb_binds_them(
        lists_db, element, value):
    text = f"contains({LISTS[element]}, {VALUES[value]})"
    if element == value or {element, value} == {"date", "timestamp"}:
        sql = compile_expr(text, FIELDS).sql
        assert lists_db.execute(f"SELECT {sql} FROM t").fetchone() == (True,)
    else:
        assert rejected(text) == (
            f"contains() cannot look for {value} '{VALUES[value]}' in list of {element} "
            f"'{LISTS[element]}'", len(LISTS[element]) + 11, len(VALUES[value]))


def test_contains_messages_and_dates():
    assert rejected("contains(cats, 1)") == (
        "contains() cannot look for number 1 in list of string 'cats'", 15, 1)
    assert rejected("contains(days, 'soon')") == (
        "'soon' is not a valid date (write 'YYYY-MM-DD')", 15, 6)
    assert compile_expr("contains(days, '2026-01-02')", FIELDS).sql == (
        """ARRAY_CONTAINS("days", CAST('2026-01-02' AS DATE))""")
    assert rejected("coalesce(cats, amounts) is null") == (
        "coalesce() arguments mix list of string 'cats' and list of number 'amounts'", 15, 7)
    assert rejected("cats = 'a'") == ("cannot compare list of string 'cats' with string 'a' "
                                      "(use contains(list, value) to look inside a list)", 0, 10)
    # A list of unknown values is not checked (a caller that did not say).
    assert compile_expr("contains(plain, 1)", FIELDS).sql == 'ARRAY_CONTAINS("plain", 1)'
    kind = compile_expr("if(n > 1, plain, amounts)", FIELDS).type
    assert (kind, element_of(kind)) == ("list", "number")


def test_tag_lists_know_their_values_in_every_rule_file(rules_copy):
    rules = load_tag_rules(rules_copy)
    assert [(name, kind, element_of(kind)) for name, kind in rules.fields().items()
            if kind == "list"] == [("sources", "list", "string"),
                                   ("top_categories_7d", "list", "string"),
                                   ("favourite_category_90d", "list", "string")]
    line = prepend_tags(rules_copy, '{name: likes_one, kind: expr, category: value, '
                                    'expr: "contains(top_categories_7d, 1)"}')
    path = rules_copy / "scoring.yaml"
    text = path.read_text(encoding="utf-8")
    when = "    when: value_tier = 'high'\n"
    when_line = text[:text.index(when)].count("\n") + 1
    path.write_text(text.replace(when, "    when: contains(sources, 2)\n", 1), encoding="utf-8")
    with pytest.raises(RuleError) as caught:
        load_rules(rules_copy)
    assert [(str(loc), message) for loc, message in caught.value.problems] == [
        (f"{path}:{when_line}:29", "score rule 'high_value' when: contains() cannot look for "
                                   "number 2 in list of string 'sources'"),
        (f"{rules_copy / 'tags.yaml'}:{line}:87", "tag 'likes_one': contains() cannot look "
                                                  "for number 1 in list of string "
                                                  "'top_categories_7d'")]


# -- B: whole numbers ---------------------------------------------------------------------

RANGE = "(whole numbers go from -9223372036854775808 to 9223372036854775807)"


def test_whole_number_literals_must_fit_a_bigint():
    assert compile_expr("n < 9223372036854775807", FIELDS).sql == '("n" < 9223372036854775807)'
    assert compile_expr("n > -9223372036854775808", FIELDS).sql == (
        '("n" > -9223372036854775808)')
    assert rejected("n * 9223372036854775808 > 1") == (
        f"whole number 9223372036854775808 is out of range {RANGE}", 4, 19)
    assert rejected("n > -9223372036854775809") == (
        f"whole number -9223372036854775809 is out of range {RANGE}", 4, 20)
    assert rejected("n in (1, -99999999999999999999)") == (
        f"whole number -99999999999999999999 is out of range {RANGE}", 9, 21)
    assert rejected("n > -(9223372036854775808)") == (
        f"whole number 9223372036854775808 is out of range {RANGE}", 6, 19)
    assert compile_expr("n < 99999999999999999999.5", FIELDS).sql == (  # not whole: no limit
        '("n" < 99999999999999999999.5)')


def test_decimal_literals_must_be_finite():
    assert compile_expr("n * 1e308 > 1", FIELDS).sql == '("n" * 1e308 > 1)'
    message = "number {} is out of range (a decimal number must be finite, at most about 1.8e308)"
    assert rejected("n * 1e999 > 1") == (message.format("1e999"), 4, 5)
    assert rejected("n > -1.5e400") == (message.format("1.5e400"), 5, 7)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(min_value=-(2**66), max_value=2**66))
@example(2**63 - 1)
@example(2**63)
@example(-(2**63))
@example(-(2**63) - 1)
def test_a_whole_number_compiles_iff_it_is_a_bigint_and_then_means_itself(lists_db, value):
    text = f"n + ({value})"
    if not -(2**63) <= value < 2**63:
        assert rejected(text) == (f"whole number {value} is out of range {RANGE}", 5,
                                  len(str(value)))
        return
    sql = compile_expr(text, FIELDS).sql
    if value < 2**63 - 1:  # n = 1
        assert lists_db.execute(f"SELECT {sql} FROM t").fetchone() == (1 + value,)


# -- B: find: exit 2, never an internal error ---------------------------------------------

@pytest.fixture
def fcli(cli):
    seed_workspace(cli.db, FEATURES_SQL)
    return cli


@pytest.mark.parametrize("expr, message", [
    ("contains(top_categories_7d, 1)",
     ["error: invalid expression at column 29: contains() cannot look for number 1 in list "
      "of string 'top_categories_7d'", "  contains(top_categories_7d, 1)",
      "                              ^"]),
    ("lead_count * 9223372036854775808 > 1",
     [f"error: invalid expression at column 14: whole number 9223372036854775808 is out of "
      f"range {RANGE}", "  lead_count * 9223372036854775808 > 1",
      "               ^^^^^^^^^^^^^^^^^^^"]),
    ("lead_count * 3074457345618258603 > 1",  # P1 has 3 leads: beyond BIGINT, P2's 2 are not
     ["error: cannot compute the expression: overflow in multiplication of INT64 "
      "(3 * 3074457345618258603); whole numbers must stay from -9223372036854775808 to "
      "9223372036854775807", "  lead_count * 3074457345618258603 > 1"]),
    ("abs(-9223372036854775808) > lead_count",
     ["error: cannot compute the expression: overflow on abs(-9223372036854775808); whole "
      "numbers must stay from -9223372036854775808 to 9223372036854775807",
      "  abs(-9223372036854775808) > lead_count"]),
    # a decimal number past the largest: infinity, and NaN from it, would match (NaN > 5)
    *[(expr, ["error: cannot compute the expression: a number past the largest (about "
              "1.8e308), or NaN from it; decimal numbers must stay from about -1.8e308 to "
              "1.8e308", "  " + expr])
      for expr in ("score * 1e300 * 1e300 - score * 1e300 * 1e300 > 5",
                   "1e308 * 10 - 1e308 * 10 > 1", "paid_amount_30d * 1e307 > 1",
                   "1 / (score * 1e300 * 1e300) = 0")],
])
def test_find_exits_2_with_the_reason(fcli, tmp_path, expr, message):
    for extra in ((), ("--count",), ("-o", str(tmp_path / "out.csv"))):
        result = fcli("find", expr, "--as-of", AS_OF, *extra)
        assert (result.exit_code, result.stdout, result.stderr.splitlines()) == (
            2, "", message)
    assert not (tmp_path / "out.csv").exists()
    result = fcli("find", expr, "--json")
    assert (result.exit_code, result.json()) == (2, {
        "error": {"type": "UsageError", "message": "\n".join(message)[len("error: "):],
                  "location": None}, "exit_code": 2})


def test_find_guards_decimal_computations_only(fcli):
    # whole numbers overflow with an error, unguarded: the optimiser still decides this one
    result = fcli("find", "lead_count * 9223372036854775807 > 0", "--count", "--as-of", AS_OF)
    assert (result.exit_code, result.stdout) == (0, "4\n")
    result = fcli("find", "score * 2 - paid_amount_30d / 10 > 100", "--count", "--as-of", AS_OF)
    assert (result.exit_code, result.stdout) == (0, "2\n")
    # the rules' SQL (tags, scoring, routing, Spark) has no guard
    assert compile_expr("n * 1.5 - n > 1", FIELDS).sql == '("n" * 1.5 - /* overflow checked */ "n" > 1)'  # noqa: E501
    guarded = compile_expr("n * 1.5 - 2 * 3 > 1", FIELDS, finite_guard="g({})".format,
                           whole_fields={"n"}).sql
    assert guarded == ('(g(g("n" * 1.5) - CAST(2 AS BIGINT) * /* overflow checked */ '
                       'CAST(3 AS BIGINT)) > 1)')  # whole numbers are 64-bit


def test_find_still_finds_inside_lists(fcli):
    result = fcli("find", "contains(top_categories_7d, 'fresh') and lead_count < "
                  "9223372036854775807", "--count", "--as-of", AS_OF)
    assert (result.exit_code, result.stdout) == (0, "2\n")



@pytest.mark.parametrize("text, message", [
    ("union = 1", "'union' is not allowed: rule expressions cannot contain SQL statements or "
                  "sub-queries; to name the field union, quote it: \"union\""),
    ("desc = 2 and union = 1", "; to name the fields desc, union, quote them: \"desc\", "
                               "\"union\""),
])
def test_a_field_named_like_a_word_sql_reserves_is_read_quoted_and_the_error_says_so(
        text, message):
    fields = {"union": "number", "desc": "number"}
    assert compile_expr('"union" = 1 and "desc" = 2', fields, expect="boolean").sql \
        == '("union" = 1 AND "desc" = 2)'
    with pytest.raises(ExprError) as refused:
        compile_expr(text, fields, expect="boolean")
    assert refused.value.message.endswith(message) if message.startswith(";") \
        else refused.value.message == message
