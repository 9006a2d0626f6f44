"""tags.yaml: parsing, validation with file:line:col, dependency order, pure SQL builders."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from leadctl.errors import RuleError
from leadctl.ruletest import fixture_files, load_cases
from leadctl.tagging.event_state import Fold, compile_pass, news_sql
from leadctl.tagging.model import PERSON_FIELDS
from leadctl.tagging.parse import load_tag_rules
from leadctl.tagging.sql import event_pass_sql, features_select_sql, value_pass_sql
from tests.conftest import RULES

AS_OF = dt.date(2026, 11, 1)

GOOD_METRIC = """\
  - name: paid_7d
    kind: metric
    event: order_paid
    agg: sum
    field: amount
    window: 7d
"""


def rules_dir(tmp_path: Path, body: str) -> Path:
    (tmp_path / "tags.yaml").write_text(body, encoding="utf-8")
    return tmp_path


def problems(tmp_path: Path, body: str) -> list[str]:
    with pytest.raises(RuleError) as caught:
        load_tag_rules(rules_dir(tmp_path, body))
    return [f"{loc.line}:{loc.col}: {message}" for loc, message in caught.value.problems]


def test_shipped_rules_are_ordered_by_dependency_with_types():
    rules = load_tag_rules(RULES)
    names = [t.name for t in rules.tags]
    for tag in rules.tags:
        for dep in tag.deps:
            assert names.index(dep) < names.index(tag.name), (dep, tag.name)
    by_name = rules.by_name
    assert by_name["value_tier"].deps == ("paid_orders_7d", "paid_amount_7d", "paid_orders_30d",
                                          "paid_amount_30d")
    assert by_name["rfm_segment"].deps == ("days_since_last_payment", "paid_orders_180d",
                                           "paid_amount_180d")
    assert {n: by_name[n].type for n in ("value_tier", "paid_amount_30d",
                                         "days_since_first_payment", "top_categories_7d",
                                         "login_days_30d", "repeat_lead")} == {
        "value_tier": "string", "paid_amount_30d": "number", "days_since_first_payment": "number",
        "top_categories_7d": "list", "login_days_30d": "number", "repeat_lead": "boolean"}
    fields = rules.fields()
    assert fields["city"] == "string" and fields["rfm_segment"] == "string"
    assert set(fields) == set(PERSON_FIELDS) | set(names)


@pytest.mark.parametrize("body, expected", [
    ("tags:\n  - name: a\n    kind: [metric\n",
     "4:1: invalid YAML: expected ',' or ']', but got '<stream end>' (while parsing a flow "
     "sequence started at line 3, column 11)"),
    ("tags:\n  - name: a\n    kind: histogram\n",
     "3:11: tag 'a': unknown kind 'histogram' (known: tiers, metric, first, last, top, "
     "active_days, streak, rfm, expr)"),
    ("tags:\n" + GOOD_METRIC + "    colour: red\n",
     "8:5: tag 'paid_7d': unknown field 'colour' for kind metric (allowed: name, kind, "
     "category, description, highlight, event, agg, field, window, where)"),
    ("tags:\n" + GOOD_METRIC.replace("field: amount", "field: category"),
     "6:12: tag 'paid_7d': type mismatch: sum needs a number field, 'category' is string"),
    ("tags:\n" + GOOD_METRIC + "  - name: t\n    kind: tiers\n    levels:\n"
     "      - {name: hi, when: \"paid_7d > 'many'\"}\n    default: lo\n",
     "11:27: tag 't' level 'hi': cannot compare number 'paid_7d' with string 'many'"),
    ("tags:\n  - name: a\n    kind: expr\n    expr: b + 1\n"
     "  - name: b\n    kind: expr\n    expr: c * 2\n  - name: c\n    kind: expr\n    expr: a\n",
     "2:5: dependency cycle: a -> b -> c -> a"),
    ("tags:\n" + GOOD_METRIC + "    where: 1=1; drop table leads\n",
     "8:15: tag 'paid_7d' where: ';' is not allowed: a rule expression is one expression, "
     "not SQL statements"),
    ("tags:\n" + GOOD_METRIC + "    where: \"read_text('/etc/passwd') = 'x'\"\n",
     "8:13: tag 'paid_7d' where: function 'read_text' is not allowed (allowed: abs, ceil, "
     "coalesce, contains, days_since, ends_with, floor, greatest, if, least, length, lower, "
     "max, min, month, nullif, round, starts_with, trim, upper, year)"),
    ("tags:\n" + GOOD_METRIC + "    where: amount > (select max(amount) from events)\n",
     "8:22: tag 'paid_7d' where: 'select' is not allowed: rule expressions cannot contain SQL "
     "statements or sub-queries"),
    ("tags:\n" + GOOD_METRIC.replace("order_paid", "\"paid'; drop table x; --\""),
     "4:12: tag 'paid_7d': event must be an event type name or a list of them"),
    ("tags:\n" + GOOD_METRIC.replace("order_paid", "[]"),
     "4:12: tag 'paid_7d': event is an empty list: name at least one event type"),
    ("tags:\n" + GOOD_METRIC.replace("window: 7d", "window: a week"),
     "7:13: tag 'paid_7d': window must be a number of days like 30d (or `all`), not 'a week'"),
    # a list or number as a tiers level would be stored as its Python text, "['high']"
    ("tags:\n  - name: t\n    kind: tiers\n    levels:\n"
     "      - {name: [hi], when: 'true'}\n    default: lo\n",
     "5:16: tag 't': a level's name must be a text like high, not ['hi']"),
    ("tags:\n  - name: t\n    kind: tiers\n    levels:\n"
     "      - {name: hi, when: 'true'}\n    default: 5\n",
     "6:14: tag 't': default must be a text like high, not 5"),
    ("tags:\n" + GOOD_METRIC + "  - name: seg\n    kind: rfm\n    recency: paid_7d\n"
     "    frequency: paid_7d\n    monetary: paid_7x\n",
     "12:15: tag 'seg': monetary refers to unknown tag 'paid_7x' (did you mean 'paid_7d'?)"),
    ("tags:\n" + GOOD_METRIC + "    description: [a, b]\n",
     "8:18: tag 'paid_7d': description must be a text, not ['a', 'b']"),
    ("tags:\n" + GOOD_METRIC.replace("field: amount", "field: price"),
     "6:12: tag 'paid_7d': unknown event field 'price' (known: amount, category, event_type, "
     "ts; declare others under event_attributes)"),
    # the second definition is the alias, where the anchored tag is repeated
    ("tags:\n" + GOOD_METRIC.replace("  - name", "  - &p\n    name") + "  - *p\n",
     "9:5: tag 'paid_7d' is defined twice (first at {path}:3:5)"),
])
def test_each_problem_is_located(tmp_path, body, expected):
    assert problems(tmp_path, body) == [expected.replace("{path}", str(tmp_path / "tags.yaml"))]


def test_every_problem_is_reported_at_once(tmp_path):
    found = problems(tmp_path, """\
tags:
  - name: a
    kind: metric
    event: order_paid
    agg: median
  - name: Bad-Name
    kind: metric
  - name: t
    kind: tiers
    levels:
      - {name: hi, when: unknown_tag > 1}
""")
    assert found == [
        "5:10: tag 'a': agg must be one of count, sum, avg, min, max, count_distinct "
        "(did you mean 'min'?)",
        "6:11: tag name 'Bad-Name' must be lower_snake_case (letters, digits, _) and not a "
        "reserved word",
        "8:5: tag 't': tiers need a `default:` level (or `default: null` for no value)",
        "11:26: tag 't' level 'hi': unknown field 'unknown_tag' (known: a, channel, city, "
        "first_seen, last_seen, lead_count, name, province, source, sources, t)",
    ]


def test_rfm_needs_number_tags(tmp_path):
    found = problems(tmp_path, """\
tags:
  - name: fav
    kind: top
    event: order_paid
    field: category
  - name: seg
    kind: rfm
    recency: fav
    frequency: nowhere
    monetary: lead_count
""")
    assert found == ["8:14: tag 'seg': type mismatch: recency 'fav' is list, needs a number",
                     "9:16: tag 'seg': frequency refers to unknown tag 'nowhere'"]


def test_event_pass_is_one_scan_and_one_group_by_over_events():
    rules = load_tag_rules(RULES)
    sql = event_pass_sql(rules, AS_OF)
    assert sql.count("FROM events e") == 1
    assert sql.count("GROUP BY") == 1  # the partials per person; each tag a column over them
    assert "count(DISTINCT" not in sql  # distinct days are bitmasks: they merge per person
    assert "e.ts >= TIMESTAMP '2026-10-25 00:00:00'" in sql  # last 7 days
    assert "e.ts < TIMESTAMP '2026-11-01 00:00:00'" in sql  # nothing from the as-of day on
    values = value_pass_sql(rules, AS_OF)
    assert [[t.name for t in tags] for _, _, tags in values] == [
        ["top_categories_7d", "favourite_category_90d", "first_order_category",
         "categories_bought_180d"]]
    assert values[0][1].count("FROM events e") == 1


def test_a_fold_reads_only_the_events_whose_part_in_a_condition_can_differ():

    compiled = compile_pass(load_tag_rules(RULES), AS_OF)
    sql = news_sql(compiled, Fold(AS_OF - dt.timedelta(days=1), 5, "tag_moved"))
    assert "FROM tag_changes e\n" in sql  # the changing events, joined to persons once
    scanned = sql[sql.index("AND (e.file_id > 5 OR"):]
    # news files; the day that entered; the day that slid out of each window (7, 30, 180),
    # of the event types that window's tags read (orders only for 7 and 180 days)
    orders = " AND e.event_type = 'order_paid'"
    for start, end, types in (("10-31", "11-01", ""), ("10-24", "10-25", orders),
                              ("10-01", "10-02", ""), ("05-04", "05-05", orders)):
        assert (f"(e.ts >= TIMESTAMP '2026-{start} 00:00:00' AND "
                f"e.ts < TIMESTAMP '2026-{end} 00:00:00'{types})") in scanned.split("\n")[0]
    assert scanned.split("\n")[0].count("e.ts >=") == 4


def test_features_sql_transpiles_to_spark():
    from leadctl.spark.translate import translate

    spark = translate(features_select_sql(load_tag_rules(RULES), AS_OF))
    # the first layer, read twice (tags and their averages), is materialised once
    assert (spark.kind, spark.name, [name for name, _ in spark.ctes]) == (
        "query", None, ["__cte_layer0"])
    layer0 = spark.ctes[0][1]
    assert "DATEDIFF(DAY, CAST('2000-01-01' AS DATE), CAST(e.ts AS DATE)) AS dn" in layer0
    assert "FROM events" in layer0 and "FROM __cte_layer0 AS layer0" in spark.sql
    assert "person_features" not in layer0 + spark.sql


def test_every_shipped_tag_has_a_fixture_expectation():

    expected = {key for path in fixture_files(RULES) for case in load_cases(path)
                for _, key, _, _ in case.expect}
    assert {t.name for t in load_tag_rules(RULES).tags} - expected == set()


def test_category_and_description_are_optional(tmp_path):
    """As the README says: category `other` (accepted though not in `categories:`) and
    no description when left out."""
    rules = load_tag_rules(rules_dir(tmp_path, "categories: [value]\ntags:\n" + GOOD_METRIC
                                     + "  - {name: no_cat, kind: expr, expr: '1'}\n"
                                     + "  - {name: other_cat, kind: expr, expr: '2', "
                                     "category: other}\n"))
    assert [(t.name, t.category, t.description) for t in rules.tags] == [
        ("paid_7d", "other", ""), ("no_cat", "other", ""), ("other_cat", "other", "")]


def test_a_tag_defined_twice_still_has_its_expressions_checked(tmp_path):
    """Its problems are said with the duplicate, not only once its name is fixed."""
    path = tmp_path / "tags.yaml"
    assert problems(tmp_path, "tags:\n" + GOOD_METRIC + GOOD_METRIC.replace(
        "window: 7d", "window: 7d\n    where: nosuch > 1") + """\
  - name: seg
    kind: expr
    expr: lead_count >= 2
  - name: seg
    kind: expr
    expr: nosuch2 > 1
""") == [
        f"8:11: tag 'paid_7d' is defined twice (first at {path}:2:5)",
        "14:12: tag 'paid_7d' where: unknown field 'nosuch' (known: amount, category, "
        "event_type, ts)",
        f"18:11: tag 'seg' is defined twice (first at {path}:15:5)",
        "20:11: tag 'seg': unknown field 'nosuch2' (known: channel, city, first_seen, "
        "last_seen, lead_count, name, paid_7d, province, seg, source, sources)"]


def test_a_tag_defined_twice_naming_a_broken_tag_says_nothing_more_of_it(tmp_path):
    """bad_a's own problem is said once; a duplicate using it no more than uses_a does."""
    assert problems(tmp_path, """\
tags:
  - {name: bad_a, kind: expr, expr: nosuch_field + 1}
  - {name: uses_a, kind: expr, expr: bad_a + 1}
  - {name: uses_a, kind: expr, expr: bad_a * 2}
""") == [
        "2:37: tag 'bad_a': unknown field 'nosuch_field' (known: channel, city, first_seen, "
        "last_seen, lead_count, name, province, source, sources)",
        f"4:12: tag 'uses_a' is defined twice (first at {tmp_path / 'tags.yaml'}:3:6)"]
