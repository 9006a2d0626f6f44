"""Engine-independent rounding (leadctl.sqlfn), evaluated on DuckDB."""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Context, Decimal

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from leadctl.sqlfn import avg_sql, exact_millionths_sql, round_sql


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


@settings(max_examples=150, deadline=None)
@given(st.integers(-(10**15 - 1), 10**15 - 1), st.integers(-30, 15), st.integers(-3, 20))
def test_a_decimal_of_15_significant_digits_rounds_as_written_at_any_magnitude(
        whole, exponent, digits):
    # read at 15 significant digits, never at a fixed count of decimals first
    text = f"{whole}e{exponent}"
    expected = float(Decimal(text).quantize(Decimal(1).scaleb(-digits), ROUND_HALF_UP,
                                            Context(prec=60)))
    got = duckdb.connect().execute(
        f"SELECT {round_sql('x', digits)} FROM (SELECT CAST(? AS DOUBLE) AS x)",
        [float(text)]).fetchall()[0][0]
    assert got == expected


def test_digits_past_the_9th_decimal_are_not_rounded_twice():
    # fixed at 9 decimals first, 0.4999999999 was 0.500000000 and rounded to 1
    rows = duckdb.connect().execute(
        f"SELECT {round_sql('x', 0)}, {round_sql('x', 2)}, {round_sql('x', 6)} FROM (VALUES "
        f"(0.4999999999::DOUBLE), (2.0049999999), (0.0000004999999), (1.2345674999)) t(x)"
    ).fetchall()
    assert rows == [(0.0, 0.5, 0.5), (2.0, 2.0, 2.005), (0.0, 0.0, 0.0),
                    (1.0, 1.23, 1.234567)]


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


def test_an_average_of_finite_values_is_finite():
    # avg() summed 1e308 and 1.5e308 to infinity first
    rows = duckdb.connect().execute(
        f"SELECT {avg_sql('x')} FROM (VALUES (1e308::DOUBLE), (1.5e308)) t(x)").fetchall()
    assert rows == [(1.25e308,)]


def test_an_amount_is_summed_at_6_decimals_of_its_15_significant_digits():
    rows = duckdb.connect().execute(
        f"SELECT CAST({exact_millionths_sql('x')} AS VARCHAR) FROM (VALUES "
        f"(0.0000004999999::DOUBLE), (1.2345674999), (1234567890123.45), (9.99e17), "
        f"(-0.0000005), (1e18)) t(x)").fetchall()
    assert [r[0] for r in rows] == ["0.000000", "1.234567", "1234567890123.450000",
                                    "999000000000000000.000000", "-0.000001", None]
