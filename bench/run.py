"""Nightly-run benchmark: 1M leads (CSV, 5 channel layouts) + 10M events (Parquet).

Runs the full `leadctl run` from a fresh workspace, then a second night with 1%
new leads, and compares with plain DuckDB reading the same files into a
database file in the same run. Targets: ratio <= 3.0, <= 60 s, peak <= 4 GB;
second night <= 0.5x the first.

    python bench/run.py [--leads 1000000] [--events 10000000]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import OUT, bench_data, fresh, leadctl_cmd, measure, report, scale_args  # noqa: E402
from ingest import baseline_inbox, plain_duckdb_load  # noqa: E402


def main() -> None:
    n_leads, n_events = scale_args()
    data_dir = bench_data(n_leads, n_events)
    inbox = data_dir / "inbox"
    db = fresh(OUT / "run.duckdb")
    plain = measure(plain_duckdb_load(baseline_inbox(inbox), fresh(OUT / "plain.duckdb")))
    first = measure(leadctl_cmd("--db", str(db), "run", "--inbox", str(inbox),
                                "--as-of", "2026-11-01", "--json"))
    second = measure(leadctl_cmd("--db", str(db), "run", "--inbox", str(data_dir / "night2"),
                                 "--as-of", "2026-11-02", "--json"))
    stages1 = json.loads(first["stdout"])["timings"]
    stages2 = json.loads(second["stdout"])["timings"]
    report(f"leadctl run: {n_leads:,} leads + {n_events:,} events", [
        ("plain DuckDB read into a database file (s)", plain["seconds"]),
        ("leadctl run, first night (s)", first["seconds"]),
        ("  per stage (s)", json.dumps(stages1)),
        ("  peak memory (MB, target <= 4096)", first["peak_mb"]),
        ("  ratio to plain DuckDB (target <= 3.0)",
         round(first["seconds"] / plain["seconds"], 2)),
        ("leadctl run, second night +1% leads (s)", second["seconds"]),
        ("  per stage (s)", json.dumps(stages2)),
        ("  peak memory (MB)", second["peak_mb"]),
        ("  second / first (target <= 0.5)", round(second["seconds"] / first["seconds"], 2)),
    ])


if __name__ == "__main__":
    main()
