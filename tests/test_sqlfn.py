"""Engine-independent rounding (leadctl.sqlfn), evaluated on DuckDB."""

from __future__ import annotations

import math

import duckdb

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
