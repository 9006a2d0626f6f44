"""Nightly-run benchmark: 1M leads (CSV, 5 channel layouts) + 10M events (Parquet).

Runs the full `leadctl run` from a fresh workspace, then a second night with 1%
new leads, and compares with plain DuckDB reading the same files into a
database file in the same run. Targets: ratio <= 3.0, <= 60 s, peak <= 4 GB;
second night <= 0.5x the first; at --scale 4 with --memory-limit 3GB, peak <= 3 GB.

    python bench/run.py [--scale 1|4] [--leads N] [--events N] [--memory-limit 3GB]

Generated data is cached per scale in bench/out/ (or $LEADCTL_BENCH_DATA). Peak memory
is the peak RSS of the leadctl process. The publish line times what `open_writer` pays
before the work starts: copying the published file (plus fsync) at its first-night size.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import OUT, bench_args, bench_data, fresh, leadctl_cmd, measure, report  # noqa: E402
from ingest import baseline_inbox, plain_duckdb_load  # noqa: E402


def publish_copy_seconds(db: Path) -> float:
    """What the writer's private copy costs: copy the published file, fsync it."""
    work = OUT / "publish_probe.duckdb"
    started = time.perf_counter()
    shutil.copyfile(db, work)
    fd = os.open(work, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
    seconds = time.perf_counter() - started
    work.unlink()
    return round(seconds, 3)


def main() -> None:
    args = bench_args(__doc__.splitlines()[0])
    n_leads, n_events = args.leads, args.events
    data_dir = bench_data(n_leads, n_events)
    inbox = data_dir / "inbox"
    db = fresh(OUT / "run.duckdb")
    limit = ["--memory-limit", args.memory_limit] if args.memory_limit else []
    plain = measure(plain_duckdb_load(baseline_inbox(inbox), fresh(OUT / "plain.duckdb")))
    first = measure(leadctl_cmd("--db", str(db), *limit, "run", "--inbox", str(inbox),
                                "--as-of", "2026-11-01", "--json"))
    copy = publish_copy_seconds(db)
    second = measure(leadctl_cmd("--db", str(db), *limit, "run", "--inbox",
                                 str(data_dir / "night2"), "--as-of", "2026-11-02", "--json"))
    stages1 = json.loads(first["stdout"])["timings"]
    stages2 = json.loads(second["stdout"])["timings"]
    report(f"leadctl run: {n_leads:,} leads + {n_events:,} events"
           + (f", --memory-limit {args.memory_limit}" if limit else ""), [
        ("plain DuckDB read into a database file (s)", plain["seconds"]),
        ("leadctl run, first night (s)", first["seconds"]),
        ("  per stage (s)", json.dumps(stages1)),
        ("  peak memory (MB, target <= 4096)", first["peak_mb"]),
        ("  ratio to plain DuckDB (target <= 3.0)",
         round(first["seconds"] / plain["seconds"], 2)),
        ("published file after night 1 (MB)", round(db.stat().st_size / 2**20, 1)),
        ("  its copy + fsync, as a writer pays it (s)", copy),
        ("leadctl run, second night +1% leads (s)", second["seconds"]),
        ("  per stage (s)", json.dumps(stages2)),
        ("  peak memory (MB)", second["peak_mb"]),
        ("  second / first (target <= 0.5)", round(second["seconds"] / first["seconds"], 2)),
        ("  publish copy / second night", round(copy / second["seconds"], 3)),
    ])


if __name__ == "__main__":
    main()
