"""The rule expression language: exact SQL, real results in DuckDB, exact rejections."""

from __future__ import annotations

from datetime import date

import pytest
import sqlglot

from leadctl.errors import Location, RuleError
from leadctl.rules.expr import CompiledExpr, ExprError, compile_expr, expr_names
from leadctl.rules.load import load_yaml_text
from leadctl.rules.located import RuleDoc, compile_located
from leadctl.sqlfn import round_sql
from leadctl.workspace import open_memory

FIELDS = {
    "orders": "number",
    "amount": "number",
    "city": "string",
    "name": "string",
    "vip": "boolean",
    "signup": "date",
    "seen": "timestamp",
    "cats": "list",
}
AS_OF = date(2026, 11, 1)


def sql(text: str, **kwargs) -> str:
    return compile_expr(text, FIELDS, as_of=AS_OF, **kwargs).sql


# -- each construct compiles to exactly this SQL ---------------------------------------

COMPILES = [
    # (expression, DuckDB SQL, result type)
    ("orders >= 30 and city in ('Shanghai', 'Beijing')",
     """("orders" >= 30 AND "city" IN ('Shanghai', 'Beijing'))""", "boolean"),
    ("city == 'x'", """("city" = 'x')""", "boolean"),
    ("city != 'x' or not vip", """("city" <> 'x' OR NOT "vip")""", "boolean"),
    ("city <> 'x'", """("city" <> 'x')""", "boolean"),
    ("orders < 1 or orders <= 2 or orders > 3",
     """("orders" < 1 OR "orders" <= 2 OR "orders" > 3)""", "boolean"),
    ("city not in ('a', 'b')", """(NOT ("city" IN ('a', 'b')))""", "boolean"),
    ("amount in (1, -2.5)", """("amount" IN (1, -2.5))""", "boolean"),
    ("orders between 1 and 5", """("orders" BETWEEN 1 AND 5)""", "boolean"),
    ("orders not between 1 and 5", """(NOT ("orders" BETWEEN 1 AND 5))""", "boolean"),
    ("city is null", """("city" IS NULL)""", "boolean"),
    ("city is not null", """(NOT ("city" IS NULL))""", "boolean"),
    ("-amount * (orders + 1) - 2 / 4 % 3",
     """(-"amount" /* overflow checked */ * /* overflow checked */ ("orders" + /* overflow checked */ 1) - /* overflow checked */ CAST(2 AS DOUBLE) / NULLIF(4, 0) % NULLIF(3, 0))""",  # noqa: E501
     "number"),
    ("2 - (3 - orders)", """(2 - /* overflow checked */ (3 - /* overflow checked */ "orders"))""", "number"),  # noqa: E501
    ("- -orders", """(-(-"orders" /* overflow checked */) /* overflow checked */)""", "number"),
    ("(orders > 1) = vip", """(("orders" > 1) = "vip")""", "boolean"),
    ("vip = true or vip = false", """("vip" = TRUE OR "vip" = FALSE)""", "boolean"),
    ("city || '-' || name", """(("city" || '-') || "name")""", "string"),
    ("'it''s' = city", """('it''s' = "city")""", "boolean"),
    ("case when vip then 1 when orders > 2 then 2 else 3 end",
     """CASE WHEN "vip" THEN 1 WHEN "orders" > 2 THEN 2 ELSE 3 END""", "number"),
    ("case city when 'a' then 'x' end", """CASE "city" WHEN 'a' THEN 'x' END""", "string"),
    ("abs(amount)", 'ABS("amount" /* overflow checked */)', "number"),
    ("round(amount)", 'ROUND("amount")', "number"),
    # the rounding of leadctl.sqlfn (its values: tests/test_sqlfn.py), with the argument
    ("round(amount, 2)",
     "(" + sqlglot.transpile(round_sql('"amount"', 2), read="duckdb", write="duckdb")[0] + ")",
     "number"),
    ("floor(amount) + ceil(amount)",
     """(FLOOR(CAST("amount" AS DOUBLE)) + /* overflow checked */ CEIL(CAST("amount" AS DOUBLE)))""", "number"),  # noqa: E501
    ("least(amount, 1, 2)", 'LEAST("amount", 1, 2)', "number"),
    ("greatest(signup, '2026-01-01')", """GREATEST("signup", CAST('2026-01-01' AS DATE))""",
     "date"),
    ("min(amount, orders)", 'LEAST("amount", "orders")', "number"),
    ("max(amount, orders, 3)", 'GREATEST("amount", "orders", 3)', "number"),
    ("coalesce(city, name, 'none')", """COALESCE("city", "name", 'none')""", "string"),
    ("lower(city)", 'LOWER("city")', "string"),
    ("upper(city)", 'UPPER("city")', "string"),
    ("trim(name)", 'TRIM("name")', "string"),
    ("length(city)", 'CAST(LENGTH("city") AS BIGINT)', "number"),
    ("length(cats)", 'CAST(ARRAY_LENGTH("cats") AS BIGINT)', "number"),
    ("starts_with(city, 'Sh')", """STARTS_WITH("city", 'Sh')""", "boolean"),
    ("ends_with(city, 'ai')", """ENDS_WITH("city", 'ai')""", "boolean"),
    ("contains(city, 'ha')", """(STRPOS("city", 'ha') > 0)""", "boolean"),
    ("contains(cats, 'maternal')", """ARRAY_CONTAINS("cats", 'maternal')""", "boolean"),
    ("days_since(signup)", """CAST(DATE_DIFF('DAY', "signup", CAST('2026-11-01' AS DATE)) AS BIGINT)""",  # noqa: E501
     "number"),
    ("days_since(seen)",
     """CAST(DATE_DIFF('DAY', CAST("seen" AS DATE), CAST('2026-11-01' AS DATE)) AS BIGINT)""", "number"),  # noqa: E501
    ("year(signup)", 'CAST(YEAR("signup") AS BIGINT)', "number"),
    ("month(seen)", 'CAST(MONTH("seen") AS BIGINT)', "number"),
    ("nullif(orders, 0)", 'NULLIF("orders", 0)', "number"),
    ("if(vip, 'yes', null)", """CASE WHEN "vip" THEN 'yes' ELSE NULL END""", "string"),
    ("signup >= '2026-01-01'", """("signup" >= CAST('2026-01-01' AS DATE))""", "boolean"),
    ("seen < '2026-10-25 12:30'",
     """("seen" < CAST('2026-10-25 12:30:00' AS TIMESTAMP))""", "boolean"),
    ("city", '"city"', "string"),
    ("null", "NULL", "null"),
    ("cats", '"cats"', "list"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected", "kind"), COMPILES)
def test_compiles_to_exact_sql(text, expected, kind):
    compiled = compile_expr(text, FIELDS, as_of=AS_OF)
    assert (compiled.sql, compiled.type) == (expected, kind)


def test_names_lists_referenced_fields_only():
    compiled = compile_expr("days_since(signup) < 3 and contains(city, name)", FIELDS, as_of=AS_OF)
    assert compiled == CompiledExpr(compiled.sql, "boolean", frozenset({"signup", "city", "name"}))
    assert expr_names("value_tier = 'high' and min(paid_7d, 3) > x") == {
        "value_tier", "paid_7d", "x",
    }  # fmt: skip


def test_column_sql_is_used_verbatim_and_parenthesised_when_not_a_plain_name():
    def attr(name: str) -> str:
        return f"a.attrs['{name}']"

    assert sql("amount + 1 > 2", column_sql=lambda n: f'p."{n}"') == '(p."amount" + /* overflow checked */ 1 > 2)'  # noqa: E501
    assert sql("amount + 1 > 2", column_sql=attr) == "((a.attrs['amount']) + /* overflow checked */ 1 > 2)"  # noqa: E501


def test_default_column_reference_quotes_names():
    compiled = compile_expr('"we""ird" + 1', {'we"ird': "number"})
    assert compiled.sql == '("we""ird" + /* overflow checked */ 1)'


# -- results in DuckDB ------------------------------------------------------------------


@pytest.fixture(scope="module")
def ws():

    ws = open_memory()
    ws.execute(
        """CREATE TEMP TABLE t AS SELECT * FROM (VALUES
        (1, 35, 6500.0, 'Shanghai', ' Ann ', TRUE, DATE '2026-10-30',
         TIMESTAMP '2026-10-25 23:59:00', ['maternal', 'apparel']),
        (2, 3, NULL, 'Beijing', 'Bo', FALSE, DATE '2025-01-15', NULL, []),
        (3, 0, -2.5, NULL, NULL, NULL, NULL, TIMESTAMP '2026-10-31 00:00:01', NULL)
        ) v(id, orders, amount, city, name, vip, signup, seen, cats)"""
    )
    return ws


EVALUATES = [
    # (expression, value for rows 1, 2, 3)
    ("orders >= 30 and city in ('Shanghai', 'Beijing')", [True, False, False]),
    ("city not in ('Beijing')", [True, False, None]),
    ("orders between 3 and 35", [True, True, False]),
    ("city is null", [False, False, True]),
    ("amount is not null", [True, False, True]),
    ("orders * 2 + 1", [71, 7, 1]),
    ("orders % 2", [1, 1, 0]),
    ("orders / 2", [17.5, 1.5, 0.0]),
    # by zero: empty, as on Spark (DuckDB alone gives NaN / infinity, above every threshold)
    ("0 / orders", [0.0, 0.0, None]),
    ("7 % orders", [7, 1, None]),
    ("round(amount / orders, 2)", [185.71, None, None]),
    ("-amount", [-6500.0, None, 2.5]),
    ("abs(amount)", [6500.0, None, 2.5]),
    ("round(amount / 3, 1)", [2166.7, None, -0.8]),
    # a first argument wholly in parentheses is one argument; `1e3+1` is 1e3 + 1
    ("abs((orders - 40))", [5, 37, 40]),
    ("if((orders > 3), 1, 0)", [1, 0, 0]),
    ("min((orders), 5)", [5, 3, 0]),
    ("orders < 1e1+1", [False, True, True]),
    ("orders - 1e1-1", [24.0, -8.0, -11.0]),
    ("orders + 1e1+1e1", [55.0, 23.0, 20.0]),
    ("round(amount + 8532955.655, 2)", [8539455.66, None, 8532953.16]),  # half, up
    ("round(round(round(amount / 3, 1) * 1.05, 1), 2)", [2275.0, None, -0.8]),
    ("floor(amount)", [6500.0, None, -3.0]),
    ("ceil(amount)", [6500.0, None, -2.0]),
    ("least(orders, 10)", [10, 3, 0]),
    ("max(orders, 10, 20)", [35, 20, 20]),
    ("coalesce(amount, 0)", [6500.0, 0.0, -2.5]),
    ("lower(city) || '/' || upper(city)", ["shanghai/SHANGHAI", "beijing/BEIJING", None]),
    ("length(trim(name))", [3, 2, None]),
    ("starts_with(city, 'Sh') or ends_with(city, 'ng')", [True, True, None]),
    ("contains(city, 'hai')", [True, False, None]),
    ("contains(cats, 'maternal')", [True, False, None]),
    ("length(cats)", [2, 0, None]),
    ("days_since(signup)", [2, 655, None]),
    ("days_since(seen)", [7, None, 1]),
    ("year(signup) * 100 + month(signup)", [202610, 202501, None]),
    ("signup >= '2026-01-01'", [True, False, None]),
    ("seen < '2026-10-31'", [True, None, False]),
    ("nullif(orders, 3)", [35, None, 0]),
    ("if(vip, 'yes', 'no')", ["yes", "no", "no"]),
    ("case when orders >= 30 then 'high' when orders > 0 then 'low' else 'none' end",
     ["high", "low", "none"]),
    ("case city when 'Beijing' then 1 else 0 end", [0, 1, 0]),
    ("city = 'it''s'", [False, False, None]),
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), EVALUATES)
def test_evaluates_in_duckdb(ws, text, expected):
    compiled = compile_expr(text, FIELDS, as_of=AS_OF)
    rows = ws.rows(f"SELECT {compiled.sql} AS v FROM t ORDER BY id")
    assert [row["v"] for row in rows] == expected


def test_whole_numbers_are_64_bit(ws):
    # `orders` is an INTEGER column, the literals INT32s: each overflowed at 2^31
    compiled = [compile_expr(text, FIELDS, whole_fields={"orders"}).sql for text in (
        "orders * 2147483647", "2147483647 + 1 = 2147483648", "100000 * 100000")]
    rows = ws.rows(f"SELECT {', '.join(compiled)} FROM t ORDER BY id")
    assert [tuple(r.values()) for r in rows] == [
        (75161927645, True, 10000000000), (6442450941, True, 10000000000), (0, True, 10000000000)]


def test_nested_rounds_compute_each_argument_once():
    # round() reads its value some 40 times (a band per power of ten): nested as a copy
    # each, 3 levels took 36 s to plan; bound, each level adds about 1,900 characters
    text = "amount"
    for _ in range(3):
        text = f"round({text} * 1.05, 1)"
    compiled = compile_expr(text, FIELDS, as_of=AS_OF)
    assert compiled.sql.count('"amount"') == 1 and len(compiled.sql) < 8_000


# -- portable output ----------------------------------------------------------------------

SPARK = [
    ("city = 'it''s' and amount > 1", "(`city` = 'it\\'s' AND `amount` > 1)"),
    ("days_since(signup) <= 30", "(CAST(DATEDIFF(CAST('2026-11-01' AS DATE), `signup`) AS BIGINT) <= 30)"),  # noqa: E501
    ("contains(cats, 'a') and contains(city, 'b')",
     "(ARRAY_CONTAINS(`cats`, 'a') AND LOCATE('b', `city`) > 0)"),
    ("length(cats) + least(orders, 2)", "(CAST(SIZE(`cats`) AS BIGINT) + /* overflow checked */ LEAST(`orders`, 2))"),  # noqa: E501
    ("starts_with(city, 'x')", "STARTSWITH(`city`, 'x')"),
    ("round(amount * 2, 0) > 1",
     "((TRANSFORM(ARRAY((`amount` * /* overflow checked */ 2)), rounded__ -> " + sqlglot.transpile(
         round_sql("rounded__", 0), read="duckdb", write="spark")[0] + ")[0]) > 1)"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), SPARK)
def test_compiles_for_spark(text, expected):
    assert sql(text, dialect="spark") == expected


# -- rejections: exact message and offset -------------------------------------------------

ALLOWED = (
    "abs, ceil, coalesce, contains, days_since, ends_with, floor, greatest, if, least, length, "
    "lower, max, min, month, nullif, round, starts_with, trim, upper, year"
)
KNOWN = "amount, cats, city, name, orders, seen, signup, vip"
STATEMENT = "is not allowed: rule expressions cannot contain SQL statements or sub-queries"

REJECTS = [
    # (expression, message, offset, length)
    ("1=1; drop table leads",
     "';' is not allowed: a rule expression is one expression, not SQL statements", 3, 1),
    ("read_text('/etc/passwd')", f"function 'read_text' is not allowed (allowed: {ALLOWED})", 0, 9),
    ("(select count(*) from leads) > 0", f"'select' {STATEMENT}", 1, 6),
    ("city = 'x' or 1=1 --", "comments ('--') are not allowed in rule expressions: "
     "they could hide part of a condition", 18, 2),
    ("orders > 1 /* hidden */", "comments ('/*') are not allowed in rule expressions: "
     "they could hide part of a condition", 11, 12),
    ('"leads"."phone" = 1',
     "table references are not allowed: write the field name alone (phone)", 0, 15),
    ("x = 1 union select 1", f"'union' {STATEMENT}", 6, 5),
    ("city in (select city from leads)", f"'select' {STATEMENT}", 9, 6),
    ("glob('*')", f"function 'glob' is not allowed (allowed: {ALLOWED})", 0, 4),
    ("getenv('HOME') = 'x'", f"function 'getenv' is not allowed (allowed: {ALLOWED})", 0, 6),
    ("ifnull(city, 'x')", f"function 'ifnull' is not allowed (allowed: {ALLOWED})", 0, 6),
    ("orders > 0 and sum(amount) > 1", "aggregate function 'sum' is not allowed in expressions "
     "(aggregates over events belong in metric tags)", 15, 3),
    ("count(*) > 1", "aggregate function 'count' is not allowed in expressions "
     "(aggregates over events belong in metric tags)", 0, 5),
    ("min(amount) > 1", "min() with one argument is an aggregate, which is not allowed here; "
     "use min(a, b, ...) to pick among values", 0, 11),
    ("*", "'*' is not allowed", 0, 1),
    ("orders::varchar = '1'", "casts ('::') are not allowed", 6, 2),
    ("cast(orders as varchar) = '1'", f"function 'cast' is not allowed (allowed: {ALLOWED})", 0, 4),
    ("date '2026-01-01' < signup",
     "casts are not allowed (compare dates with 'YYYY-MM-DD' strings)", 0, 17),
    ("orders > ?", "parameters and placeholders ('?') are not allowed", 9, 1),
    ("orders > $1", "parameters and placeholders ('$') are not allowed", 9, 1),
    ("orders > :n", "parameters and placeholders (':') are not allowed", 9, 1),
    ("@orders > 1", "parameters and placeholders ('@') are not allowed", 0, 1),
    ("x -> x + 1", "'->' is not allowed (no lambdas or JSON operators)", 2, 2),
    ("cats = ['a']", "'[' is not allowed: write a list of values as x in ('a', 'b')", 7, 1),
    ("abs(orders) over ()", "window functions are not allowed", 0, 19),
    ('"abs"(orders)', 'function names cannot be quoted: "abs"', 0, 5),
    ("orders ^ 2 > 1", "'^' (power) is not allowed", 0, 10),
    ("orders ~ 'x'", "'orders ~ 'x'' is not allowed in rule expressions", 0, 12),
    ("city like 'S%'", "'like' is not allowed (use starts_with, ends_with or contains)", 0, 14),
    ("foo > 1", f"unknown field 'foo' (known: {KNOWN})", 0, 3),
    ("orders > 1 and citi = 'x'",
     f"unknown field 'citi' (did you mean 'city'?) (known: {KNOWN})", 15, 4),
    ('city = "Shanghai"',
     f"unknown field 'Shanghai' (known: {KNOWN}); write text in single quotes: 'Shanghai'", 7, 10),
    ("city = 30", "cannot compare string 'city' with number 30", 0, 9),
    ("orders > 1 and 'a' < orders", "cannot compare string 'a' with number 'orders'", 15, 12),
    ("cats = 'x'", "cannot compare list 'cats' with string 'x' "
     "(use contains(list, value) to look inside a list)", 0, 10),
    ("vip > false", "true/false values can only be compared with = or !=", 0, 11),
    ("city = null", "comparing with null is never true; use 'is null' or 'is not null'", 0, 11),
    ("orders is true", "only 'is null' and 'is not null' are allowed "
     "(compare true/false values with =)", 0, 14),
    ("orders in (1, 'a')", "'in' list mixes number 1 and string 'a'", 14, 3),
    ("city in (1, 2)", "cannot compare string 'city' with number 1", 0, 14),
    ("city in ('a', name)", "an 'in' list may only hold literal values like 1 or 'text'", 14, 4),
    ("city in ('a', null)", "null in an 'in' list never matches; use 'is null'", 14, 4),
    ("amount + city > 1", "'+' needs numbers, got string 'city'", 9, 4),
    ("signup - 1", "'-' needs numbers, got date 'signup' (use days_since() for dates)", 0, 6),
    ("-city", "'-' needs a number, got string 'city'", 1, 4),
    ("city || orders", "'||' joins strings, got number 'orders'", 8, 6),
    ("vip and orders", "'and' needs true/false values, got number 'orders'", 8, 6),
    ("not (orders + 1)", "'not' needs a true/false value, got number (orders + 1)", 4, 12),
    ("signup = 'soon'", "'soon' is not a valid date (write 'YYYY-MM-DD')", 9, 6),
    ("signup < '2026-02-30'", "'2026-02-30' is not a valid date (write 'YYYY-MM-DD')", 9, 12),
    ("abs(city)", "abs() needs a number, got string 'city'", 4, 4),
    ("abs(orders, 1)", "abs() takes 1 argument, got 2", 0, 14),
    ("round(amount, orders)", "round() digits must be a whole number like 2", 14, 6),
    ("round(amount, -2147483649)", "round() digits must be between -38 and 38", 14, 11),
    ("starts_with(city)", "starts_with() takes 2 arguments, got 1", 0, 17),
    ("least(orders)", "least() takes at least 2 arguments, got 1", 0, 13),
    ("least(orders, city)", "least() arguments mix number 'orders' and string 'city'", 14, 4),
    ("contains(orders, 1)", "contains() needs a string or a list first, got number 'orders'", 9, 6),
    ("contains(cats, cats)",
     "contains(list, value) needs a single value to look for, got list 'cats'", 15, 4),
    ("year(city)", "year() needs a date, got string 'city'", 5, 4),
    ("if(orders, 1, 2)", "if() needs a true/false condition first, got number 'orders'", 3, 6),
    ("if(vip, 1, 'a')", "if() results mix number 1 and string 'a'", 11, 3),
    ("case when vip then 1 else 'a' end", "case results mix number 1 and string 'a'", 26, 3),
    ("case when orders then 1 end",
     "'when' needs a true/false condition, got number 'orders'", 10, 6),
    ("trim(both 'x' from city)", f"'from' {STATEMENT}", 14, 4),
    ("'abc", "unterminated string: missing closing '", 0, 4),
    ("city = 'a' and \"x", "unterminated quoted name: missing closing \"", 15, 2),
    ("orders >", "syntax error: something is missing after '>'", 7, 1),
    ("orders 2", "syntax error: unexpected '2'", 7, 1),
    ("(orders > 1", "syntax error: missing ')'", 11, 0),
    ("orders > 1)", "syntax error: unexpected ')'", 10, 1),
    ("orders city", "syntax error: unexpected 'city' (missing operator or quotes?)", 7, 4),
    ("   ", "empty expression", 0, 3),
]  # fmt: skip


@pytest.mark.parametrize(("text", "message", "offset", "length"), REJECTS)
def test_rejects_with_message_and_offset(text, message, offset, length):
    with pytest.raises(ExprError) as info:
        compile_expr(text, FIELDS, as_of=AS_OF)
    assert (info.value.message, info.value.offset, info.value.length) == (message, offset, length)


def test_condition_must_be_boolean():
    with pytest.raises(ExprError) as info:
        compile_expr("city", FIELDS, expect="boolean")
    assert (info.value.message, info.value.offset) == (
        "condition must be true/false, got string",
        0,
    )
    with pytest.raises(ExprError) as info:
        compile_expr("vip or vip", FIELDS, expect="number")
    assert info.value.message == "expression must be a number, got boolean"
    assert compile_expr("orders * 2", FIELDS, expect="number").type == "number"


def test_days_since_needs_an_as_of_date():
    with pytest.raises(ExprError) as info:
        compile_expr("days_since(signup) > 2", FIELDS)
    assert (info.value.message, info.value.offset, info.value.length) == (
        "days_since() needs an as-of date, and none was given", 0, 18,
    )  # fmt: skip


def test_unknown_field_without_any_fields():
    with pytest.raises(ExprError) as info:
        compile_expr("a = 1", {})
    assert info.value.message == "unknown field 'a' (no fields are available here)"


def test_a_number_may_start_with_its_dot():
    assert sql("orders >= .5") == '("orders" >= 0.5)'
    assert sql("orders > -.5 and amount < .5e1+1") == (
        '("orders" > -0.5 AND "amount" < 0.5e1 + 1)')
    assert sql("orders in (.5, 1)", dialect="spark") == "(`orders` IN (0.5, 1))"
    doc = RuleDoc("tags.yaml")
    rules = load_yaml_text("tags:\n  - when: orders >= .5\n", "tags.yaml")
    assert compile_located(doc.text(rules["tags"][0], "when"), FIELDS, None, AS_OF).sql == (
        '("orders" >= 0.5)')
    for text, name, length in (("t.orders >= .5", "orders", 8), ("orders.5 > 1", "5", 8),
                               ("orders .5 > 1", "5", 9)):
        with pytest.raises(ExprError) as caught:
            sql(text)
        assert (caught.value.message, caught.value.offset, caught.value.length) == (
            f"table references are not allowed: write the field name alone ({name})", 0,
            length)


def test_compile_located_reports_the_file_location_of_the_bad_character():
    rules = load_yaml_text(
        "tags:\n"
        "  - ok: orders > 1\n"
        "    when: orders > 1 and citi = 'x'\n"
        "    block: |\n"
        "      orders > 1\n"
        "        and read_text('x') = 'y'\n"
        "    nested: {a: 1}\n",
        "tags.yaml",
    )
    tag = rules["tags"][0]
    doc = RuleDoc("tags.yaml")

    def compile_at(key):
        return compile_located(doc.text(tag, key), FIELDS, None, AS_OF)

    assert compile_at("ok").sql == '("orders" > 1)'
    with pytest.raises(RuleError) as info:
        compile_at("when")
    assert info.value.problems == [
        (
            Location("tags.yaml", 3, 26),
            f"unknown field 'citi' (did you mean 'city'?) (known: {KNOWN})",
        )
    ]
    with pytest.raises(RuleError) as info:
        compile_at("block")
    assert info.value.problems[0][0] == Location("tags.yaml", 6, 13)
    assert str(info.value).startswith("tags.yaml:6:13: function 'read_text' is not allowed")
    assert doc.problems == []
    compile_at("nested")  # a structure is a problem of the file, not an expression error
    assert doc.problems == [
        (Location("tags.yaml", 7, 13), "`nested:` must be an expression (text), not a structure")
    ]
