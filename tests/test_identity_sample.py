"""Resolution quality on the synthetic sample with ground truth (sample_data/)."""

from __future__ import annotations

from pathlib import Path

import pytest

from leadctl.identity.config import load_identity_config
from leadctl.identity.resolve import resolve_identities
from leadctl.ingest import ingest_paths
from leadctl.workspace import open_memory

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "sample_data"


def pairwise_quality(ws, truth_csv: Path) -> dict:
    """Pairwise precision/recall of person_leads against the true persons."""
    ws.execute(f"CREATE TEMP TABLE truth AS SELECT * FROM read_csv('{truth_csv}', "
               "all_varchar = true)")
    return ws.rows("""
        WITH j AS (
            SELECT t.person AS truth, pl.person_id AS found FROM truth t
            JOIN leads l ON l.source = t.source AND l.lead_id = t.lead_id
            JOIN person_leads pl ON pl.lead_key = l.lead_key),
        both_ AS (SELECT sum(n * (n - 1) / 2) AS pairs
                  FROM (SELECT count(*) AS n FROM j GROUP BY truth, found)),
        true_ AS (SELECT sum(n * (n - 1) / 2) AS pairs
                  FROM (SELECT count(*) AS n FROM j GROUP BY truth)),
        found AS (SELECT sum(n * (n - 1) / 2) AS pairs, max(n) AS largest
                  FROM (SELECT count(*) AS n FROM j GROUP BY found))
        SELECT both_.pairs / found.pairs AS precision, both_.pairs / true_.pairs AS recall,
               found.largest, (SELECT count(*) FROM j) AS leads,
               (SELECT count(*) FROM truth) AS truth_leads
        FROM both_, true_, found""")[0]


@pytest.mark.skipif(not (SAMPLE / "truth.csv").exists(), reason="no sample data")
def test_sample_resolution_is_precise_and_complete():
    ws = open_memory()
    ingest_paths(ws, [str(SAMPLE / "inbox")])
    summary = resolve_identities(ws, load_identity_config(REPO / "rules"), run_id=1)
    quality = pairwise_quality(ws, SAMPLE / "truth.csv")
    assert quality["leads"] == quality["truth_leads"] == summary.leads == 3154
    # 3321 of the 3401 true pairs found, and no false pair
    assert quality["precision"] == 1.0
    assert quality["recall"] == pytest.approx(3321 / 3401)
    assert quality["largest"] == 6
    assert summary.subjects == {"matched": 5673, "unmatched": 12}
