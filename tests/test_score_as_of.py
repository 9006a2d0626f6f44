"""A score is as of its tags: `score` without --as-of scores as of the last tag run's
as-of, and another --as-of exits 2 (it would store the tags' stale ages, and the decayed
points computed from them, under the new date)."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest
from conftest import SAMPLE_INBOX, Cli

from leadctl.errors import UsageError
from leadctl.scoring.stage import check_tags_as_of, tags_as_of
from leadctl.workspace import open_writer

REFUSED = ("the tags are as of 2026-11-01, and a score reads their values (days since, "
           "windows) as of that day, so it cannot be as of 2026-12-04: run `leadctl tag "
           "--as-of 2026-12-04` first, or score as of the tags (without --as-of, or "
           "--as-of 2026-11-01)")


@pytest.fixture(scope="module")
def tagged(tmp_path_factory) -> Cli:
    cli = Cli(tmp_path_factory.mktemp("score_as_of") / "ws.duckdb")
    assert cli("run", "--inbox", SAMPLE_INBOX, "--as-of", "2026-11-01").exit_code == 0
    return cli


@pytest.fixture
def ws(tagged, tmp_path) -> Cli:
    copy = Cli(tmp_path / "ws.duckdb")
    copy.db.write_bytes(tagged.db.read_bytes())
    return copy


def stored(cli) -> list[tuple]:
    con = duckdb.connect(str(cli.db), read_only=True)
    try:
        return con.execute("SELECT as_of, count(*), sum(score) FROM scores GROUP BY as_of"
                           ).fetchall()
    finally:
        con.close()


def runs(cli) -> list[tuple]:
    return [(r["command"], r["as_of"], r["outcome"]) for r in cli("runs", "--json").json()]


def test_another_as_of_than_the_tags_is_refused(ws):
    before = stored(ws)
    result = ws("score", "--as-of", "2026-12-04")
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", f"error: {REFUSED}\n")
    dry = ws("score", "--as-of", "2026-12-04", "--dry-run", "--json")
    assert (dry.exit_code, dry.json()) == (2, {
        "error": {"type": "UsageError", "message": REFUSED, "location": None},
        "exit_code": 2})
    assert stored(ws) == before
    # the refused score is logged as failed (the dry run is not a write: no row)
    assert runs(ws) == [("score", "2026-12-04", "failed"), ("run", "2026-11-01", "ok")]


def test_without_as_of_the_score_is_as_of_the_tags(ws):
    before = stored(ws)
    result = ws("score", "--json")
    assert result.exit_code == 0, result.stderr
    data = result.json()
    assert (data["as_of"], data["run_id"], data["grade_changes"]) == (
        "2026-11-01", 2, {"changed": 0, "added": 0, "removed": 0})
    assert stored(ws) == before
    assert runs(ws) == [("score", "2026-11-01", "ok"), ("run", "2026-11-01", "ok")]
    assert ws("score", "--as-of", "2026-11-01", "--dry-run").exit_code == 0


def test_after_tagging_at_a_later_date_the_score_follows(ws):
    assert ws("tag", "--as-of", "2026-12-04").exit_code == 0
    data = ws("score", "--json").json()
    # The decayed behaviour points now use the ages as of 2026-12-04.
    assert (data["as_of"], data["grade_changes"]["changed"]) == ("2026-12-04", 679)
    old = ws("score", "--as-of", "2026-11-01")
    assert (old.exit_code, old.stderr) == (
        2, "error: the tags are as of 2026-12-04, and a score reads their values (days "
        "since, windows) as of that day, so it cannot be as of 2026-11-01: run `leadctl tag "
        "--as-of 2026-11-01` first, or score as of the tags (without --as-of, or --as-of "
        "2026-12-04)\n")


def test_without_tags_any_date_scores(tmp_path):
    with open_writer(tmp_path / "ws.duckdb", create=True) as ws:
        assert tags_as_of(ws) is None
    check_tags_as_of(dt.date(2026, 12, 4), None)
    check_tags_as_of(dt.date(2026, 11, 1), dt.date(2026, 11, 1))
    with pytest.raises(UsageError) as refused:
        check_tags_as_of(dt.date(2026, 12, 4), dt.date(2026, 11, 1))
    assert str(refused.value) == REFUSED
