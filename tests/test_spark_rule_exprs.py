"""Rule expressions give the DuckDB engine's values on the Spark engine: each expression
is compiled as the stages compile it (with the finite guard), its tag value's JSON
text (json_value_sql) computed by DuckDB and by the Spark executor (the real
translation) over the same rows."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.conftest import Cli, rules_edited
from tests.test_spark_parity import MISSING

pytestmark = [pytest.mark.spark, pytest.mark.skipif(MISSING is not None, reason=MISSING or "")]

FIELDS = {"n": "number", "w": "number", "d": "date", "s": "string"}
# n a DOUBLE, w a BIGINT (a whole field), d a DATE, s a text
ROWS = [(1, "2.5", "7", "2024-02-29"), (2, "-2.5", "-7", "2023-01-31"),
        (3, "2e15", "5", "2026-10-31"), (4, "1e20", "9007199254740993", None),
        (5, "NULL", "NULL", None)]
TABLE = "CREATE OR REPLACE TABLE f AS " + " UNION ALL ".join(
    f"SELECT {i} AS person_id, CAST({n} AS DOUBLE) AS n, CAST({w} AS BIGINT) AS w, "
    f"CAST({'NULL' if d is None else repr(d)} AS DATE) AS d, 'abc' AS s" for i, n, w, d in ROWS)


@pytest.fixture(scope="module")
def engines():
    import duckdb

    from leadctl.spark.executor import SparkWorkspace, spark_session

    duck = duckdb.connect()
    spark = SparkWorkspace(spark_session("local[1]"))
    for con in (duck, spark):
        con.execute(TABLE)
    yield duck, spark
    spark.close()


def _values(engines, text):
    """The expression's JSON text per row, on DuckDB and on Spark (an engine's error:
    ('error', the reason a stage gives for it, else its message))."""
    from leadctl.rules.expr import compile_expr
    from leadctl.sqlfn import rule_guard
    from leadctl.tagging.stage import json_value_sql
    from leadctl.workspace import failed_computation

    compiled = compile_expr(text, FIELDS, as_of=dt.date(2026, 11, 1), whole_fields={"w"},
                            finite_guard=rule_guard("tag 'x'"), guard_result=False)
    value = json_value_sql(compiled.type, "v") if compiled.type == "number" else "to_json(v)"
    sql = (f"SELECT person_id, CAST({value} AS VARCHAR) AS j FROM "
           f"(SELECT person_id, {compiled.sql} AS v FROM f) AS x ORDER BY person_id")
    out = []
    for con in engines:
        try:
            out.append([row[1] for row in con.execute(sql).fetchall()])
        except Exception as exc:  # the engine's error, as a stage reports it
            out.append(("error", failed_computation(exc) or str(exc)))
    return out


def test_a_decimal_divided_is_a_double_on_both_engines(engines):
    cases = {
        "w * 1.0 / 3": ["2.3333333333333335", "-2.3333333333333335", "1.6666666666666667",
                        "3002399751580330.5", None],
        "greatest(w, 1.25) / 3": ["2.3333333333333335", "0.4166666666666667",
                                  "1.6666666666666667", "3002399751580330.5", "0.4166666666666667"],
        "coalesce(w * 1.0, 0) / 7": ["1", "-1", "0.7142857142857143", "1286742750677284.5",
                                     "0"],
        "case when w > 0 then 1.0 else 2.5 end / 3": [
            "0.3333333333333333", "0.8333333333333334", "0.3333333333333333",
            "0.3333333333333333", "0.8333333333333334"],
        "1.5 / w": ["0.21428571428571427", "-0.21428571428571427", "0.3",
                    "1.6653345369377348e-16", None],
        "1.0 / 3 * 3 = w / w": ["true", "true", "true", "true", None],
    }
    for text, expected in cases.items():
        assert _values(engines, text) == [expected, expected], text


def test_a_whole_double_from_1e15_on_is_duckdbs_text_on_spark(engines):
    """2e15 as a DOUBLE is `2000000000000000.0` (Java's text is `2.0E15`); a BIGINT's
    every digit stays."""
    expected = ["2.5", "-2.5", "2000000000000000.0", "100000000000000000000.0", None]
    assert _values(engines, "n") == [expected, expected]
    assert _values(engines, "n * 1") == [expected, expected]
    whole = ["7000000000000000", "-7000000000000000", "5000000000000000", None, None]
    assert _values(engines, "if(w < 100, w * 1000000000000000, null)") == [whole, whole]


def test_floor_and_ceil_keep_duckdbs_type_on_spark(engines):
    """Of a DOUBLE (or a whole number) a DOUBLE, as on DuckDB: Spark's BIGINT held 1e20
    at 9223372036854775807; of a DECIMAL a DECIMAL on both."""
    cases = {
        "floor(n * 100000)": ["250000", "-250000", "200000000000000000000.0", "1e25", None],
        "floor(n)": ["2", "-3", "2000000000000000.0", "100000000000000000000.0", None],
        "ceil(n / 2 + 0)": ["2", "-1", "1000000000000000.0", "50000000000000000000.0", None],
        "floor(w)": ["7", "-7", "5", "9007199254740992.0", None],
        "floor(floor(n + 0.5) / 2)": ["1", "-1", "1000000000000000.0",
                                      "50000000000000000000.0", None],
        "floor(w * 1.5)": ["10", "-11", "7", "13510798882111489", None],
        "ceil(1.25)": ["2", "2", "2", "2", "2"],
    }
    for text, expected in cases.items():
        assert _values(engines, text) == [expected, expected], text


def test_a_whole_number_past_its_type_stops_spark_too_with_duckdbs_reason(engines):
    """Spark (ANSI off) wrapped it around (7 * 4611686018427387904 was
    -9223372036854775808 there): now both engines stop, and the stage says why alike."""
    def overflow(what, text):
        return [("error", f"overflow in {what} ({text})")] * 2

    # (each past the range for one row: which row an engine meets first is its own)
    cases = {
        "w * 1024": overflow("multiplication of INT64", "9007199254740993 * 1024"),
        "coalesce(w, 0) * 1024": overflow("multiplication of INT64", "9007199254740993 * 1024"),
        "if(w < 100, w + 1, 0) * 1317624576693539401": overflow(
            "multiplication of INT64", "8 * 1317624576693539401"),
        "if(w < 100, w, 0) + 9223372036854775801": overflow(
            "addition of INT64", "7 + 9223372036854775801"),
        "abs(w - 9223372036854775802)": overflow("subtraction of INT64",
                                                 "-7 - 9223372036854775802"),
        "9223372036854775807 + 1": overflow("addition of INT64", "9223372036854775807 + 1"),
        "-(w * 1024) % 3 + n": overflow("multiplication of INT64", "9007199254740993 * 1024"),
    }
    for text, expected in cases.items():
        assert _values(engines, text) == expected, text
    # whole numbers are 64-bit on both: literals are no INT32s (that overflowed at 2^31)
    assert _values(engines, "2147483647 + 1") == [["2147483648"] * 5] * 2
    # -2^63 is the one whole number abs() and `-` cannot give back (Spark's kept it)
    least = "if(w = 5, -9223372036854775807 - 1, w)"
    assert _values(engines, f"abs({least})") == [
        ("error", "overflow on abs(-9223372036854775808)")] * 2
    assert _values(engines, "abs(if(w = 5, -4611686018427387904, w) * 2)") == [
        ("error", "overflow on abs(-9223372036854775808)")] * 2
    assert _values(engines, f"-{least} + 1") == [
        ("error", "overflow in negation of numeric value")] * 2
    assert _values(engines, "if(w < 100, abs(w - 10) * -(w), 0) + -n") == [
        ["-23.5", "121.5", "-2000000000000025.0", "-100000000000000000000.0", None]] * 2
    # in range: the same values, NULL stays NULL
    fits = ["9223372036854775807", "-9223372036854775807", "6588122883467697005", "0", None]
    assert _values(engines, "if(w < 100, w * 1317624576693539401, 0) - w + w") == [fits] * 2
    small = ["120", "162", "54", "0", "0"]
    assert _values(engines, "coalesce(if(w < 100, (w + 1) * (w - 2), 0) * 3, 0)") == [small] * 2


def test_year_month_length_and_days_since_are_bigints_on_spark(engines):
    """Spark's are INTs: `year(d) * 1000000000` wrapped to 1070403584 (DuckDB's BIGINT
    gives 2024000000000)."""
    cases = {
        "year(d) * 1000000000": ["2024000000000", "2023000000000", "2026000000000", None, None],
        "month(d) * 1000000000": ["2000000000", "1000000000", "10000000000", None, None],
        "days_since(d) * 10000000": ["9760000000", "13700000000", "10000000", None, None],
        "length(s) * 1000000000": ["3000000000"] * 5,
    }
    for text, expected in cases.items():
        assert _values(engines, text) == [expected, expected], text


def test_run_on_spark_exits_2_naming_the_stage_for_a_whole_number_overflow(tmp_path):
    rules = rules_edited(tmp_path, "tags.yaml", "\ntags:\n", (
        '\ntags:\n  - {name: x_wrap, kind: expr, expr: "lead_count * 4611686018427387904"}\n'))
    (tmp_path / "web.csv").write_text("lead_id,phone,email\nL1,13812345678,\n"
                                      "L2,13812345678,a@qq.com\n", encoding="utf-8")
    message = ("tag: a rule's expression cannot be computed for some person: overflow "
               "in multiplication of INT64 (2 * 4611686018427387904); whole numbers must "
               "stay from -9223372036854775808 to 9223372036854775807: check the "
               "expressions in rules/")
    cli = Cli(tmp_path / "ws.duckdb", rules)
    for engine in ((), ("--engine", "spark", "--output", tmp_path / "out")):
        result = cli("run", "--inbox", tmp_path / "web.csv", "--as-of", "2026-11-01", "--json",
                     *engine)
        assert (result.exit_code, result.json()["error"]) == (2, {
            "type": "InputError", "message": message, "location": None}), engine
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.parquet"))
