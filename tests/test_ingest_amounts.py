"""An event amount is a finite number or the row is rejected as `bad_amount`: a NaN or an
infinity (as text, or in a float column of a Parquet file) would make every sum and
average over it, and the RFM means of everyone, NaN."""

from __future__ import annotations

import math

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.conftest import Cli, write
from tests.test_ingest import rejects_in

HEADER = "phone,event_type,ts,amount\n"
NOT_FINITE = ["NaN", "nan", "inf", "-inf", "Infinity", "-Infinity", "1e400", "-1e999"]


def amounts_in(cli) -> list:
    con = duckdb.connect(str(cli.db), read_only=True)
    try:
        return [r[0] for r in con.execute("SELECT amount FROM events ORDER BY row_number")
                .fetchall()]
    finally:
        con.close()


def test_nan_and_infinite_text_amounts_are_rejected_finite_ones_kept(cli, tmp_path):
    rows = ["12.5", *NOT_FINITE, "1e308", "-0"]
    write(tmp_path / "ev.csv", HEADER + "".join(
        f"13812345678,order_paid,2026-10-30 10:00:00,{a}\n" for a in rows))
    assert cli("ingest", tmp_path / "ev.csv").exit_code == 0
    assert amounts_in(cli) == [12.5, 1e308, 0.0]
    assert [(r[1], r[2]) for r in rejects_in(cli)] == [
        (n, "bad_amount") for n in range(2, 2 + len(NOT_FINITE))]


def test_nan_and_infinite_amounts_of_a_float_parquet_column_are_rejected(cli, tmp_path):
    table = pa.table({"phone": ["13812345678"] * 5, "event_type": ["order_paid"] * 5,
                      "ts": ["2026-10-30 10:00:00"] * 5,
                      "amount": pa.array([1.5, math.nan, math.inf, -math.inf, None],
                                         pa.float64())})
    pq.write_table(table, tmp_path / "ev.parquet")
    assert cli("ingest", tmp_path / "ev.parquet").exit_code == 0
    assert amounts_in(cli) == [1.5, None]  # a missing amount is no amount, not a bad one
    assert [(r[1], r[2]) for r in rejects_in(cli)] == [
        (2, "bad_amount"), (3, "bad_amount"), (4, "bad_amount")]


@settings(max_examples=60, deadline=None)
@given(st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr),
                 st.sampled_from(NOT_FINITE),
                 st.text(alphabet="0123456789.e+-naif_dx", max_size=8)))
@example("+-0")
@example("1_000")
@example("1.5d")
@example("0x1p3")
def test_any_amount_text_loads_as_its_finite_value_or_is_rejected(tmp_path_factory, text):
    """Plain numbers only, on both engines: each engine's cast reads more, and not the
    same more (DuckDB `1_000` and `+-0`, Spark's Java `1.5d` and `0x1p3`)."""
    folder = tmp_path_factory.mktemp("amount")
    cli = Cli(folder / "ws.duckdb")
    write(folder / "ev.csv", HEADER + f"13812345678,order_paid,2026-10-30,{text}\n")
    assert cli("ingest", folder / "ev.csv").exit_code == 0
    try:
        expected = None if "_" in text else float(text.replace(",", ""))  # Python: 1_000
    except ValueError:
        expected = None
    stripped = text.strip()
    if stripped == "":
        assert (amounts_in(cli), rejects_in(cli)) == ([None], [])
    elif expected is not None and math.isfinite(expected):
        assert (amounts_in(cli), rejects_in(cli)) == ([expected], [])
    elif expected is not None:  # NaN or infinite
        assert amounts_in(cli) == []
        assert [r[2] for r in rejects_in(cli)] == ["bad_amount"]
    else:
        assert (amounts_in(cli), [r[2] for r in rejects_in(cli)]) == ([], ["bad_amount"])
