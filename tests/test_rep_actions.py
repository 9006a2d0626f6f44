"""Rep actions (claim, status, sale) survive `load-results`: a Spark output made before
them never overwrites them (routing/rep_actions.py). The output here is written from a
DuckDB workspace in the Spark output's layout, so no Spark is needed."""

from __future__ import annotations

import json

import duckdb
import pytest

from tests.conftest import SAMPLE_INBOX, Cli

AS_OF = "2026-11-01"


def _fake_spark_output(db, folder):
    """Every table of `db` as <folder>/<table>/part.parquet plus the run summary."""
    con = duckdb.connect(str(db), read_only=True)
    names = [r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
        "AND table_name NOT IN ('runs', 'meta')").fetchall()]
    for name in names:
        (folder / name).mkdir(parents=True)
        con.execute(f"COPY {name} TO '{folder / name / 'part.parquet'}' (FORMAT parquet)")
    con.close()
    (folder / "_leadctl_run.json").write_text(json.dumps(
        {"as_of": AS_OF, "run_id": 1, "outcome": "ok", "tables": {}}))


def _rows(db, sql):
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.fixture(scope="module")
def acted(tmp_path_factory):
    """A night's output loaded into a workspace, then a claim, a status change and a sale
    made there; returns (workspace Cli, output folder, the actions' persons)."""
    tmp = tmp_path_factory.mktemp("rep")
    night = Cli(tmp / "night.duckdb")
    assert night("run", "--inbox", SAMPLE_INBOX, "--as-of", AS_OF).exit_code == 0
    _fake_spark_output(night.db, tmp / "out")
    ws = Cli(tmp / "ws.duckdb")
    assert ws("load-results", tmp / "out").exit_code == 0
    owned = _rows(ws.db, "SELECT person_id, owner FROM ownership WHERE owner IS NOT NULL "
                         "AND locked_until IS NULL ORDER BY person_id LIMIT 2")
    claimed = ws("claim", "nurture", "--rep", "ops_xu", "--n", "2", "--as-of", AS_OF, "--json")
    assert claimed.exit_code == 0, claimed.stderr
    (status_person, status_owner), (sale_person, sale_rep) = owned
    assert ws("status", status_person, "contacting", "--as-of", AS_OF).exit_code == 0
    assert ws("sale", sale_person, "--rep", sale_rep, "--amount", "880",
              "--as-of", AS_OF).exit_code == 0
    return ws, tmp / "out", claimed.json()["claimed"], status_person, sale_person


def test_load_results_keeps_actions_newer_than_the_run(acted):
    ws, out, claimed, status_person, sale_person = acted
    persons = sorted([*claimed, status_person, sale_person])
    where = f"person_id IN ({', '.join(repr(p) for p in persons)})"
    before = {t: _rows(ws.db, f"SELECT * FROM {t} WHERE {where} ORDER BY ALL")
              for t in ("ownership", "assignments", "sales", "lead_intent")}
    assert len(claimed) == 2 and len(before["sales"]) == 1

    loaded = ws("load-results", out, "--json")  # the output predates every action
    assert loaded.exit_code == 0 and loaded.json()["rep_actions_kept"] == 4
    after = {t: _rows(ws.db, f"SELECT * FROM {t} WHERE {where} ORDER BY ALL") for t in before}
    assert after == before
    assert _rows(ws.db, f"SELECT owner, status, locked_until IS NOT NULL FROM ownership "
                        f"WHERE person_id = '{sale_person}'")[0][1:] == ("closed", True)

    again = ws("load-results", out, "--json")  # idempotent: nothing doubled
    assert again.json()["rep_actions_kept"] == 4
    assert {t: _rows(ws.db, f"SELECT * FROM {t} WHERE {where} ORDER BY ALL")
            for t in before} == before

