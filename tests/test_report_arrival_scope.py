"""`report channels` as of a date sees the leads that had arrived by then: a later lead of
another channel does not make an earlier lead a duplicate yet, and a lead without
created_at arrives at its file's ingest time (for `--as-of` and `--since` alike)."""

from __future__ import annotations

import pytest
from conftest import Cli

from leadctl.workspace import open_writer

COLUMNS = ("channel", "leads", "persons", "dup_rate", "new_persons", "dup_other_source")
# P1: feed on 10-17, sem on 10-21. P2: seo without created_at, its file ingested 10-25.
CRAFTED = """
INSERT INTO ingested_files (file_id, ingested_at) VALUES
 (1, '2026-10-01 08:00:00'), (2, '2026-10-25 08:00:00');
INSERT INTO leads (lead_key, source, lead_id, file_id, created_at) VALUES
 (1, 'feed', 'F1', 1, '2026-10-17 10:00:00'), (2, 'sem', 'S1', 1, '2026-10-21 10:00:00'),
 (3, 'seo', 'O1', 2, NULL);
INSERT INTO person_leads VALUES (1, 'P1'), (2, 'P1'), (3, 'P2');
INSERT INTO persons (person_id) VALUES ('P1'), ('P2');
"""


@pytest.fixture(scope="module")
def cli(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("arrival")
    (tmp / "rules").mkdir()
    cli = Cli(tmp / "ws.duckdb", tmp / "rules")
    with open_writer(cli.db, create=True) as ws:
        ws.execute(CRAFTED)
    return cli


def channels(cli, *options) -> list[tuple]:
    result = cli("report", "channels", *options, "--json")
    assert result.exit_code == 0, result.stderr
    data = result.json()
    return [tuple(r[c] for c in COLUMNS) for r in data["channels"] + [data["total"]]]


def test_a_lead_that_arrives_later_is_no_duplicate_yet(cli):
    assert channels(cli, "--as-of", "2026-10-20") == [
        ("feed", 1, 1, 0.0, 1, 0), ("(total)", 1, 1, 0.0, 1, 0)]
    assert channels(cli, "--as-of", "2026-10-21") == [
        ("feed", 1, 1, 1.0, 1, 0), ("sem", 1, 1, 1.0, 0, 1), ("(total)", 2, 1, 1.0, 1, 1)]


def test_a_lead_without_created_at_arrives_at_its_files_ingest_time(cli):
    assert channels(cli, "--as-of", "2026-10-24", "--since", "2026-10-22") == [
        ("(total)", 0, 0, None, 0, 0)]
    assert channels(cli, "--as-of", "2026-10-25", "--since", "2026-10-22") == [
        ("seo", 1, 1, 0.0, 1, 0), ("(total)", 1, 1, 0.0, 1, 0)]


def test_duplicates_export_sees_the_same_arrivals(cli, tmp_path):
    out = tmp_path / "dups.csv"
    for as_of, rows in (("2026-10-20", 0), ("2026-10-21", 1)):
        result = cli("report", "channels", "--duplicates", "sem", "-o", out, "--as-of", as_of)
        assert result.exit_code == 0, result.stderr
        assert len(out.read_text().splitlines()) == 1 + rows
