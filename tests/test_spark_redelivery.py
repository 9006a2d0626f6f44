"""A corrected re-delivery of events (event ids) on Spark, night 2 from `--state`: the
same events, rejects and tags as the DuckDB engine."""

from __future__ import annotations

import duckdb
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
}


def _rows(db) -> dict[str, list]:
    with duckdb.connect(str(db), read_only=True) as con:
        return {name: con.execute(sql).fetchall() for name, sql in COMPARED.items()}


def test_a_redelivery_on_spark_replaces_events_as_on_duckdb(tmp_path):
    duck, spark = Cli(tmp_path / "duck.duckdb"), Cli(tmp_path / "spark.duckdb")
    state = None
    for night, (text, as_of) in enumerate(((NIGHT1, "2026-11-01"), (NIGHT2, "2026-11-02"))):
        inbox = tmp_path / f"in{night}"
        inbox.mkdir()
        write(inbox / "leads.csv", LEADS)
        write(inbox / "orders.csv", text)
        options = ["--inbox", str(inbox), "--as-of", as_of, "--max-reject-share", "1"]
        assert duck("run", *options).exit_code == 0
        out = tmp_path / f"out{night}"
        ran = spark("run", "--engine", "spark", *options, "--output", str(out),
                    *(["--state", str(state)] if state else []))
        assert ran.exit_code == 0, ran.stderr[-2000:]
        state = out
    assert spark("load-results", str(state)).exit_code == 0
    expected, got = _rows(duck.db), _rows(spark.db)
    assert sorted(r[4] for r in got["rejects"]) == ["duplicate_event_id", "superseded",
                                                   "superseded"]
    for name in COMPARED:
        assert got[name] == expected[name], name
