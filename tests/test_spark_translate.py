"""leadctl.spark.translate: DuckDB statements → Spark actions. Pure (sqlglot only, no Spark)."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
import sqlglot
from sqlglot import exp
from sqlglot.optimizer.simplify import simplify

from leadctl.spark.translate import (
    Action,
    UnsupportedStatement,
    delete_match_sql,
    delete_query_sql,
    java_datetime_pattern,
    to_spark_sql,
    translate,
    update_match_sql,
    update_query_sql,
)

NOOP = Action("noop")


def test_create_temp_table_as_select_materializes():
    assert translate("CREATE OR REPLACE TEMP TABLE x AS SELECT a, count(*) AS n FROM t GROUP BY a"
                     ) == Action("materialize", name="x",
                                 sql="SELECT a, COUNT(*) AS n FROM t GROUP BY a")


def test_create_table_with_columns_is_an_empty_typed_table():
    assert translate("CREATE TABLE IF NOT EXISTS t (a BIGINT, j JSON, d TIMESTAMP)") == Action(
        "empty", name="t", if_not_exists=True,
        types=(("a", "BIGINT"), ("j", "STRING"), ("d", "TIMESTAMP_NTZ")))


def test_insert_select_appends_with_named_columns():
    assert translate("INSERT INTO t (a, b) SELECT x, y FROM s") == Action(
        "append", name="t", sql="SELECT x, y FROM s", columns=("a", "b"))


def test_insert_values_binds_params_as_literals():
    action = translate("INSERT INTO t VALUES (?, ?, ?)", ["O'Brien", dt.date(2026, 11, 1), None])
    assert action == Action("append", name="t", sql=(
        "SELECT * FROM VALUES ('O\\'Brien', CAST('2026-11-01' AS DATE), NULL) AS _v"))
    assert translate("SELECT ?, ?, ?, ?", [True, -5, 1.5, dt.datetime(2026, 11, 1, 8, 30)]).sql \
        == "SELECT TRUE, -5, 1.5, CAST('2026-11-01 08:30:00' AS TIMESTAMP_NTZ)"
    assert translate("SELECT $a, $b, $a", {"a": 1, "b": "x"}).sql == "SELECT 1, 'x', 1"


@pytest.mark.parametrize("value", ["x'); DROP TABLE leads; --", "x\\'); DROP TABLE leads; --",
                                   "a\\b\n'--"])
def test_bind_is_safe_against_injection(value):
    sql = translate("SELECT * FROM leads WHERE name = ?", [value]).sql
    (tree,) = sqlglot.parse(sql, read="spark")  # one statement, nothing smuggled after it
    rhs = tree.args["where"].this.expression
    assert isinstance(rhs, exp.Literal) and rhs.is_string and rhs.this == value
    assert translate("SELECT ?", ["x'); DROP TABLE leads; --"]).sql \
        == "SELECT 'x\\'); DROP TABLE leads; --'"


@pytest.mark.parametrize("sql, expected", [
    ("SELECT * FROM t WHERE a = ? LIMIT ?", "SELECT * FROM t WHERE a = 1 LIMIT 2"),
    ("WITH c AS (SELECT ? AS v) SELECT v, ? FROM c",
     "WITH c AS (SELECT 1 AS v) SELECT v, 2 FROM c"),
])
def test_positional_params_bind_in_text_order(sql, expected):
    assert translate(sql, [1, 2]).sql == expected


@pytest.mark.parametrize("sql", ["INSERT OR REPLACE INTO t VALUES (1)",
                                 "INSERT INTO t VALUES (1) ON CONFLICT DO NOTHING"])
def test_insert_or_replace_is_unsupported(sql):
    with pytest.raises(UnsupportedStatement, match="INSERT OR REPLACE / ON CONFLICT"):
        translate(sql)


def test_delete_keeps_rows_whose_condition_is_null():
    action = translate("DELETE FROM t WHERE c")
    assert action == Action("delete", name="t", sql="COALESCE((c), FALSE)",
                            extra={"alias": "t"})
    assert delete_match_sql(action, "__parts") \
        == "SELECT * FROM `__parts` AS `t` WHERE COALESCE((c), FALSE)"
    assert delete_query_sql(translate("DELETE FROM t WHERE a > 1 AND b IS NULL"), "__part") \
        == "SELECT * FROM `__part` AS `t` WHERE NOT (COALESCE((a > 1 AND b IS NULL), FALSE))"


def test_delete_without_where_empties_the_table():
    assert translate("DELETE FROM t") == Action("materialize", name="t",
                                                sql="SELECT * FROM t WHERE FALSE")


def test_update_without_from():
    action = translate("UPDATE t SET a = ? WHERE b", [1])
    assert action == Action("update", name="t", sql="b", assignments=(("a", "1"),),
                            extra={"alias": "t", "source_alias": None})
    assert update_query_sql(action, ["k", "v", "a"]) == (
        "SELECT t.`k`, t.`v`, CASE WHEN coalesce((b), false) THEN 1 ELSE t.`a` END AS `a` "
        "FROM `t` AS t")


def test_update_from_left_joins_a_matched_marker():
    action = translate("UPDATE t SET v = r.x FROM r WHERE t.k = r.k")
    assert action == Action("update", name="t", sql="t.k = r.k", assignments=(("v", "r.x"),),
                            source="SELECT * FROM r", extra={"alias": "t", "source_alias": "r"})
    assert update_query_sql(action, ["k", "v", "a"]) == (
        "SELECT t.`k`, CASE WHEN r.`__matched` THEN r.x ELSE t.`v` END AS `v`, t.`a` "
        "FROM `t` AS t LEFT JOIN (SELECT *, TRUE AS `__matched` FROM (SELECT * FROM r)) AS r "
        "ON t.k = r.k")
    # the parts holding a row to update: a part is rewritten only when one matches
    assert update_match_sql(action, "__parts") == (
        "SELECT t.* FROM `__parts` AS t JOIN (SELECT * FROM r) AS r ON t.k = r.k")
    assert update_query_sql(action, ["k"], "__part").startswith(
        "SELECT t.`k` FROM `__part` AS t LEFT JOIN")


@pytest.mark.parametrize("sql, expected", [
    ("DROP TABLE IF EXISTS x", Action("drop", name="x", if_exists=True)),
    ("DROP VIEW x", Action("drop", name="x")),
    ("ALTER TABLE a RENAME TO b", Action("rename", name="a", new_name="b")),
    ("BEGIN TRANSACTION", NOOP), ("COMMIT", NOOP), ("SET x = 1", NOOP), ("CHECKPOINT", NOOP),
    ("CREATE VIEW v AS SELECT 1", Action("view", name="v", sql="SELECT 1")),
    ("SELECT 1", Action("query", sql="SELECT 1")),
])
def test_catalog_and_transaction_statements(sql, expected):
    assert translate(sql) == expected


@pytest.mark.parametrize("sql, message", [
    ("COPY t TO 'x.csv'", "no Spark form for statement: COPY t TO 'x.csv'"),
    ("PRAGMA foo", "no Spark form for statement: PRAGMA foo"),
    ("ALTER TABLE t ADD COLUMN c INT", "no Spark form for statement: ALTER TABLE t ADD"),
    ("CREATE INDEX i ON t (a)", "no Spark form for CREATE INDEX"),
    ("SELEC 1", "cannot parse statement for Spark"),
])
def test_statements_spark_cannot_express_are_unsupported(sql, message):
    with pytest.raises(UnsupportedStatement) as info:
        translate(sql)
    assert str(info.value).startswith(message)
    assert info.value.exit_code == 3


@pytest.mark.parametrize("duckdb, spark", [
    ("SELECT regexp_full_match(a, 'ab|c') FROM t", "SELECT a RLIKE '^(?:ab|c)\\\\z' FROM t"),
    ("SELECT regexp_full_match(a, p) FROM t", "SELECT a RLIKE CONCAT('^(?:', p, ')\\\\z') FROM t"),
    ("SELECT strlen(a), epoch_us(ts) FROM t", "SELECT OCTET_LENGTH(a), UNIX_MICROS(ts) FROM t"),
    ("SELECT to_json(x) FROM t",
     "SELECT IF(x IS NULL, NULL, SUBSTRING(TO_JSON(ARRAY(x), MAP('timestampFormat', "
     "'yyyy-MM-dd HH:mm:ss', 'timestampNTZFormat', 'yyyy-MM-dd HH:mm:ss', "
     "'ignoreNullFields', 'false')), 2, LENGTH(TO_JSON(ARRAY(x), MAP('timestampFormat', "
     "'yyyy-MM-dd HH:mm:ss', 'timestampNTZFormat', 'yyyy-MM-dd HH:mm:ss', "
     "'ignoreNullFields', 'false'))) - 2)) FROM t"),
    ("SELECT to_json(CAST(x AS BIGINT)) FROM t", "SELECT CAST(CAST(x AS BIGINT) AS STRING) FROM t"),
    ("SELECT arg_max(v, k), arg_min(v, k) FROM t",
     "SELECT MAX_BY(v, IF(v IS NULL, NULL, k)), MIN_BY(v, IF(v IS NULL, NULL, k)) FROM t"),
    ("SELECT arg_min(v, k, 3) FILTER (WHERE h) FROM t",
     "SELECT IF(SIZE(COLLECT_LIST(IF(v IS NULL, NULL, IF(k IS NULL, NULL, STRUCT(k AS k, "
     "v AS v)))) FILTER(WHERE h))"
     " = 0, NULL, SLICE(TRANSFORM(ARRAY_SORT(COLLECT_LIST(IF(v IS NULL, NULL, IF(k IS NULL, "
     "NULL, STRUCT(k AS k, v AS v)))) FILTER(WHERE h)), x -> x.v), 1, 3)) FROM t"),
    ("SELECT arg_max(v, k, 2) FROM t",
     "SELECT IF(SIZE(COLLECT_LIST(IF(v IS NULL, NULL, IF(k IS NULL, NULL, STRUCT(k AS k, "
     "v AS v))))) = 0, NULL, "
     "SLICE(TRANSFORM(REVERSE(ARRAY_SORT(COLLECT_LIST(IF(v IS NULL, NULL, IF(k IS NULL, NULL, "
     "STRUCT(k AS k, v AS v)))))), x -> x.v), 1, 2)) FROM t"),
    ("SELECT list_slice(l, 2, 4) FROM t", "SELECT SLICE(l, 2, ((4) - (2) + 1)) FROM t"),
    ("SELECT round(x, 2) FROM t", "SELECT ROUND(x, 2) FROM t"),
    ("SELECT a FROM t ORDER BY (a, b)", "SELECT a FROM t ORDER BY STRUCT(a, b) NULLS LAST"),
    ("SELECT arg_min(v, (a, b)) FROM t",
     "SELECT MIN_BY(v, IF(v IS NULL, NULL, STRUCT(a, b))) FROM t"),
    ("SELECT * FROM t WHERE (a, b) IN ((1, 2))", "SELECT * FROM t WHERE (a, b) IN ((1, 2))"),
    ("CREATE TABLE t (j JSON[])", "CREATE TABLE t (j ARRAY<STRING>)"),
    # DuckDB's trim takes Unicode spaces (NBSP, U+3000) off, Spark's only ' '
    ("SELECT trim(a), ltrim(a), rtrim(a) FROM t",
     "SELECT REGEXP_REPLACE(a, '^\\\\p{Zs}+|\\\\p{Zs}+\\\\z', ''), "
     "REGEXP_REPLACE(a, '^\\\\p{Zs}+', ''), REGEXP_REPLACE(a, '\\\\p{Zs}+\\\\z', '') FROM t"),
    ("SELECT trim(a, 'xy') FROM t", "SELECT TRIM('xy' FROM a) FROM t"),
])
def test_to_spark_sql_rewrites(duckdb, spark):
    assert to_spark_sql(duckdb) == spark


def test_list_slice_length_is_inclusive_end_minus_begin_plus_one():
    folded = simplify(sqlglot.parse_one(to_spark_sql("SELECT list_slice(l, 2, 4) FROM t"),
                                        read="spark"))
    assert folded.sql(dialect="spark") == "SELECT SLICE(l, 2, 3) FROM t"


def test_list_slice_with_an_expression_as_begin():
    folded = simplify(sqlglot.parse_one(to_spark_sql("SELECT list_slice(l, 1 + 1, 4) FROM t"),
                                        read="spark"))
    assert folded.sql(dialect="spark") == "SELECT SLICE(l, 2, 3) FROM t"


def test_ordered_list_aggregate_is_refused_not_silently_unordered():
    with pytest.raises(UnsupportedStatement, match="list_sort"):
        to_spark_sql("SELECT list(a ORDER BY b) FROM t")
    assert to_spark_sql("SELECT list_sort(list(a)) FROM t") == \
        "SELECT ARRAY_SORT(COLLECT_LIST(a)) FROM t"


def test_to_json_formats_zone_less_timestamps_like_duckdb():
    assert "'timestampNTZFormat', 'yyyy-MM-dd HH:mm:ss'" in to_spark_sql("SELECT to_json(ts)")


def test_regexp_full_match_does_not_accept_a_trailing_newline():
    out = to_spark_sql("SELECT regexp_full_match(a, 'abc') FROM t")
    assert out.endswith(")\\\\z' FROM t")


@pytest.mark.parametrize(("strftime", "java"), [
    ("%Y/%m/%d %H:%M:%S", "yyyy/M/d H:m:s"),  # one-digit fields parse, as on DuckDB
    ("%Y%m%d", "yyyyMMdd"),  # fields that touch need fixed widths
    ("%Y年%m月%d日", "yyyy年M月d日"),
    ("%Y-%m-%dT%H:%M", "yyyy-M-d'T'H:m"),  # ASCII letters are quoted literals
])
def test_strptime_formats_become_java_patterns(strftime, java):
    assert java_datetime_pattern(strftime) == java


def test_strptime_format_without_a_spark_form_is_refused():
    with pytest.raises(UnsupportedStatement, match="%j"):
        java_datetime_pattern("%Y-%j")


def test_a_jvm_failure_is_one_line_naming_the_statement():
    from leadctl.spark.executor import SparkStatementError, SparkWorkspace

    class JavaError(Exception):
        """Stands for py4j's Py4JJavaError: the JVM's message, then its stack."""

        java_exception = type("J", (), {"getMessage": lambda self: "Job aborted: disk full"})()

    JavaError.__module__ = "py4j.protocol"

    def fail(action):
        raise JavaError("An error occurred while calling o81.sql.\n\tat org.apache...")

    ws = SparkWorkspace.__new__(SparkWorkspace)
    ws._run, ws.counts = fail, Counter()
    with pytest.raises(SparkStatementError) as caught:
        ws.execute("SELECT count(*) FROM leads")
    assert str(caught.value) == "Job aborted: disk full\n  in: SELECT COUNT(*) FROM leads"
    assert caught.value.exit_code == 3


def test_a_jvm_failure_reading_arrow_is_one_line_naming_the_statement_too():
    from leadctl.spark.executor import SparkStatementError, SparkWorkspace

    class AnalysisException(Exception):
        """Stands for pyspark's own error (phone prefixes, leftover phones read as Arrow)."""

    AnalysisException.__module__ = "pyspark.errors.exceptions.captured"

    def fail(sql):
        raise AnalysisException("[TABLE_OR_VIEW_NOT_FOUND] leads\n\tJVM stacktrace: ...")

    ws = SparkWorkspace.__new__(SparkWorkspace)
    ws._to_arrow = fail
    with pytest.raises(SparkStatementError) as caught:
        ws.arrow("SELECT phone FROM leads")
    assert str(caught.value) == "[TABLE_OR_VIEW_NOT_FOUND] leads\n  in: SELECT phone FROM leads"


def test_a_jvm_that_stopped_answering_is_one_line_naming_the_statement():
    from leadctl.spark.executor import SparkStatementError, SparkWorkspace

    def fail(action):
        raise ConnectionRefusedError(111, "Connection refused")

    ws = SparkWorkspace.__new__(SparkWorkspace)
    ws._run, ws.counts = fail, Counter()
    with pytest.raises(SparkStatementError) as caught:
        ws.execute("SELECT count(*) FROM leads")
    assert str(caught.value) == (
        "the Spark JVM stopped answering ([Errno 111] Connection refused): see its log, "
        "e.g. for memory\n  in: SELECT COUNT(*) FROM leads")


def test_a_materialized_cte_becomes_a_temp_view_made_before_the_statement():
    action = translate(
        "CREATE TABLE t AS WITH a AS (SELECT 1 AS x), l0 AS MATERIALIZED (SELECT x FROM a), "
        "l1 AS (SELECT l0.*, m.x AS y FROM l0 CROSS JOIN (SELECT max(x) AS x FROM l0) m) "
        "SELECT * FROM l1")
    assert action.ctes == (("__cte_l0", "WITH a AS (SELECT 1 AS x) SELECT x FROM a"),)
    assert action.sql == (
        "WITH a AS (SELECT 1 AS x), l1 AS (SELECT l0.*, m.x AS y FROM __cte_l0 AS l0 "
        "CROSS JOIN (SELECT MAX(x) AS x FROM __cte_l0 AS l0) AS m) SELECT * FROM l1")


def test_a_view_keeps_its_materialized_cte_inline():
    """A view is read after its statement, when the temp view would be gone."""
    action = translate("CREATE VIEW v AS WITH l0 AS MATERIALIZED (SELECT 1 AS x) "
                       "SELECT * FROM l0, l0 AS b")
    assert (action.ctes, action.sql) == ((), "WITH l0 AS (SELECT 1 AS x) SELECT * FROM l0, l0 AS b")
