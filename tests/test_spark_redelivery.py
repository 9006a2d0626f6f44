"""A corrected re-delivery of events (event ids) on Spark, night 2 from `--state`: the
same events, rejects and tags as the DuckDB engine."""

from __future__ import annotations

import datetime as dt

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import Cli, write
from tests.test_event_redelivery import LEADS, NIGHT1, NIGHT2
from tests.test_spark_parity import MISSING

pytestmark = [pytest.mark.spark, pytest.mark.skipif(MISSING is not None, reason=MISSING or "")]
COMPARED = {
    "events": "SELECT * FROM events ORDER BY ALL",
    "rejects": "SELECT file_id, source, kind, row_number, reason, detail, raw FROM rejects "
               "ORDER BY ALL",
    "person_features": "SELECT * FROM person_features ORDER BY ALL",
    "leads": "SELECT source, lead_id, phone, attributes, row_hash FROM leads ORDER BY ALL",
    "lead_identifiers": "SELECT * FROM lead_identifiers ORDER BY ALL",
}


def _rows(db) -> dict[str, list]:
    with duckdb.connect(str(db), read_only=True) as con:
        return {name: con.execute(sql).fetchall() for name, sql in COMPARED.items()}


def _logins(path, event_ids: pa.Array) -> None:
    """A Parquet events file of logins with these ids, at zoned times (UTC midnight:
    08:00 in the workspace's Asia/Shanghai)."""
    utc = dt.UTC
    pq.write_table(pa.table({
        "event_id": event_ids,
        "phone": ["13933334444"] * len(event_ids), "event_type": ["login"] * len(event_ids),
        "ts": pa.array([dt.datetime(2026, 10, 30 + i, tzinfo=utc) for i in range(len(event_ids))],
                       pa.timestamp("us", tz="UTC"))}), path)


def _app_leads(path) -> None:
    """Parquet leads with doubles (pandas' numbers): Java writes the phone 13900000000.0
    as 1.39E10 and 123456789.25 as 1.2345678925E8; DuckDB as 13900000000.0, 123456789.25.
    And a zoned timestamp, whose DuckDB text is in the machine's time zone."""
    pq.write_table(pa.table({
        "lead_id": ["A1", "A2"], "phone": pa.array([13900000000.0, 13811112220.0]),
        "score": pa.array([123456789.25, 1.5e-4]), "big": pa.array([1e16, float("nan")]),
        # a zoned timestamp kept as an attribute: UTC text with its offset on both engines
        "seen": pa.array([dt.datetime(2026, 10, 1, 8, 30, 0, 120000, tzinfo=dt.UTC),
                          None], pa.timestamp("ms", tz="Asia/Shanghai")),
        # types Spark cannot read (pandas' default nanoseconds, TIME), and `Phone` beside
        # `phone`: Spark reads a copy DuckDB makes
        "at_ns": pa.array([dt.datetime(2026, 10, 1, 8, 30, 0, 123456), None],
                          pa.timestamp("ns")),
        "clock": pa.array([dt.time(8, 30), None], pa.time64("us")),
        "Phone": ["13911110009", None],
        # nested values: attributes as DuckDB's text of them (Spark's was {red, 1})
        "meta": pa.array([{"color": "red", "n": 1}, None],
                         pa.struct([("color", pa.string()), ("n", pa.int64())])),
        "tags": pa.array([[("a", 1)], None], pa.map_(pa.string(), pa.int64())),
        "visits": pa.array([[dt.datetime(2026, 10, 1, 8, 30, tzinfo=dt.UTC)], None],
                           pa.list_(pa.timestamp("us", tz="UTC")))}),
        path)


# Duplicate and empty header names (DuckDB's names: Phone_1, column4), doubled quotes
# and a quoted delimiter (RFC 4180, which Spark reads with `\` as its escape otherwise).
ODD_HEADER = ('lead_id,phone,Phone,note,,city\n'
              'H1,13911110001,13911110002,"say ""hi"" now",x,"bj, x"\n'
              'H2,13911110003,,"""",,\n'
              'H3,,13911110007,n,,\n')  # `Phone` is the phone too
# Extra fields that are all empty are dropped (T1: DuckDB loads the row), others make a
# reject (T2; T3 is short).
RAGGED = ('lead_id,phone,note\n'
          + "".join(f"R{i},1390000100{i},n\n" for i in range(8))
          + 'T1,13911110004,"a,b",,""\n'
          'T2,13911110005,"a,b",,x\n'
          'T3,13911110006\n')


def test_a_redelivery_on_spark_replaces_events_as_on_duckdb(tmp_path):
    duck, spark = Cli(tmp_path / "duck.duckdb"), Cli(tmp_path / "spark.duckdb")
    state = None
    for night, (text, as_of) in enumerate(((NIGHT1, "2026-11-01"), (NIGHT2, "2026-11-02"))):
        inbox = tmp_path / f"in{night}"
        inbox.mkdir()
        write(inbox / "leads.csv", LEADS)
        write(inbox / "orders.csv", text)
        _app_leads(inbox / "app.parquet")
        write(inbox / "odd.csv", ODD_HEADER)
        write(inbox / "ragged.csv", RAGGED)
        # Night 1's ids are doubles (an integer column with a gap, from pandas), which Java
        # writes as 2.026103E7; night 2 sends the same event with an integer id.
        _logins(inbox / "logins.parquet", pa.array([20261030.0, None], pa.float64())
                if night == 0 else pa.array([20261030], pa.int64()))
        options = ["--inbox", str(inbox), "--as-of", as_of, "--max-reject-share", "1"]
        assert duck("run", *options).exit_code == 0
        out = tmp_path / f"out{night}"
        ran = spark("run", "--engine", "spark", *options, "--output", str(out),
                    *(["--state", str(state)] if state else []))
        assert ran.exit_code == 0, ran.stderr[-2000:]
        state = out
    assert spark("load-results", str(state)).exit_code == 0
    expected, got = _rows(duck.db), _rows(spark.db)
    assert sorted(r[4] for r in got["rejects"]) == [
        "duplicate_event_id", "missing_columns", "superseded", "superseded", "superseded",
        "too_many_columns"]
    assert [r[1:4] for r in got["leads"] if r[1].startswith("T")] == [
        ("T1", "13911110004", '{"note":"a,b"}')]
    assert [r[1:3] for r in got["leads"] if r[1] == "H3"] == [("H3", "13911110007")]
    for name in COMPARED:
        assert got[name] == expected[name], name
