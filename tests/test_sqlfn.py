"""Engine-independent rounding (leadctl.sqlfn), evaluated on DuckDB."""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from leadctl.sqlfn import round_sql


def test_rounds_the_decimal_value_half_away_from_zero_and_never_fails():
    values = "(3.925::DOUBLE), (-2.675), (1e40), ('inf'::DOUBLE), (NULL)"
    rows = duckdb.connect().execute(
        f"SELECT {round_sql('x', 2)} FROM (VALUES {values}) t(x)").fetchall()
    assert [r[0] for r in rows[:3]] == [3.93, -2.68, 1e40]
    assert math.isinf(rows[3][0]) and rows[4][0] is None


def test_more_digits_than_the_default_scale_are_kept():
    value = round_sql("0.123456789012::DOUBLE", 11)
    assert duckdb.connect().execute(f"SELECT {value}").fetchall() == [(0.12345678901,)]


def test_digits_no_decimal_can_hold_keep_the_value():
    assert round_sql("x", 40) == "x"


def test_values_beyond_the_narrow_decimal_are_rounded_by_the_wide_one():
    rows = duckdb.connect().execute(
        f"SELECT {round_sql('x', 2)} FROM (VALUES (1234567890.126::DOUBLE), "
        f"(-99999999999.996), (999999999.996)) t(x)").fetchall()
    assert [r[0] for r in rows] == [1234567890.13, -100000000000.0, 1000000000.0]


def _wide_only(value: str, digits: int) -> str:
    """The one-width form the narrow-then-wide chain must equal."""
    scale = max(9, digits + 1)
    return (f"coalesce(CAST(round(TRY_CAST({value} AS DECIMAL(38, {scale})), {digits}) "
            f"AS DOUBLE), {value})")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(allow_nan=False, width=64), min_size=1, max_size=200)
       | st.lists(st.integers(-10**13, 10**13).map(lambda i: i / 1000), min_size=1,
                  max_size=200),
       st.integers(-3, 20))
def test_trying_the_narrow_decimal_first_never_changes_a_result(values, digits):
    # below 10^6, where values are fixed at 9 decimals (above: the next test)
    con = duckdb.connect()
    con.execute("CREATE TABLE t (x DOUBLE)")
    con.executemany("INSERT INTO t VALUES (?)", [[v] for v in values])
    differ = con.execute(
        f"SELECT x FROM t WHERE abs(x) < 1e6 AND {round_sql('x', digits)} IS DISTINCT FROM "
        f"{_wide_only('x', digits)}").fetchall()
    assert differ == []


@settings(max_examples=80, deadline=None)
@given(st.integers(10**6, 10**15 - 1), st.integers(0, 9), st.integers(0, 3),
       st.booleans())
def test_a_decimal_of_15_digits_rounds_half_away_from_zero_at_any_size(whole, decimals,
                                                                      digits, negative):
    # 8532953.155 (the DOUBLE 8532953.15499999932…) rounds to 8532953.16, as written

    text = f"{'-' if negative else ''}{whole}.{'5' * decimals}" if decimals else str(whole)
    if len(text.lstrip("-").replace(".", "")) > 15:
        return  # more digits than a DOUBLE keeps
    expected = float(Decimal(text).quantize(Decimal(1).scaleb(-digits), ROUND_HALF_UP))
    got = duckdb.connect().execute(
        f"SELECT {round_sql('x', digits)} FROM (SELECT CAST(? AS DOUBLE) AS x)",
        [float(text)]).fetchall()[0][0]
    assert got == expected


def test_large_values_that_have_no_decimals_are_kept():
    rows = duckdb.connect().execute(
        f"SELECT {round_sql('x', 2)}, {round_sql('x', -3)} FROM (VALUES (1e20::DOUBLE), "
        f"(8532953.155)) t(x)").fetchall()
    assert rows == [(1e20, 1.0e20), (8532953.16, 8533000.0)]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(allow_nan=False, width=64) | st.none(), min_size=1, max_size=100),
       st.integers(-3, 20))
def test_a_computed_value_is_rounded_once_and_as_a_named_one(values, digits):
    # `x * 1` is computed once (bound), `x` is read in place: the same result
    con = duckdb.connect()
    con.execute("CREATE TABLE t (x DOUBLE)")
    con.executemany("INSERT INTO t VALUES (?)", [[v] for v in values])
    bound = round_sql("x * 1", digits)
    assert bound.count("x * 1") == 1 and round_sql("x", digits).count("x") > 1
    differ = con.execute(f"SELECT x FROM t WHERE {bound} IS DISTINCT FROM "
                         f"{round_sql('x', digits)}").fetchall()
    assert differ == []
