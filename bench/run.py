"""Nightly-run benchmark: 1M leads (CSV, 5 channel layouts) + 10M events (Parquet).

Runs the full `leadctl run` from a fresh workspace, then nights 2..N (default 2), each
with 1% new leads and one new day of events, the as-of a day later, and compares with
plain DuckDB reading the first night's files into a database file in the same run.
Targets (issue 17): first night <= 3.0x plain; second night <= 0.15x the first; the
tenth night <= 1.2x the second; at --scale 4 with --memory-limit 3GB, peak <= 3 GB.

    python bench/run.py [--scale 1|4] [--leads N] [--events N] [--memory-limit 3GB]
                        [--nights N]

Generated data is cached per scale in bench/out/ (or $LEADCTL_BENCH_DATA). Peak memory
is the peak RSS of the leadctl process. The publish line times what `open_writer` pays
before the work starts: copying the published file (plus fsync) at its first-night size.
"""

from __future__ import annotations

import datetime as dt
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
    data_dir = bench_data(n_leads, n_events, max(2, args.nights))
    inbox = data_dir / "inbox"
    db = fresh(OUT / "run.duckdb")
    limit = ["--memory-limit", args.memory_limit] if args.memory_limit else []
    plain = measure(plain_duckdb_load(baseline_inbox(inbox), fresh(OUT / "plain.duckdb")))
    first = measure(leadctl_cmd("--db", str(db), *limit, "run", "--inbox", str(inbox),
                                "--as-of", "2026-11-01", "--json"))
    copy = publish_copy_seconds(db)
    nights = [first]
    for night in range(2, max(2, args.nights) + 1):
        nights.append(measure(leadctl_cmd(
            "--db", str(db), *limit, "run", "--inbox", str(data_dir / f"night{night}"),
            "--as-of", (dt.date(2026, 11, 1) + dt.timedelta(days=night - 1)).isoformat(),
            "--json")))
    second = nights[1]
    stages1 = json.loads(first["stdout"])["timings"]
    stages2 = json.loads(second["stdout"])["timings"]
    later = [(f"  night {k}: s, and / second night (target at 10 <= 1.2)",
              f"{n['seconds']} = {n['seconds'] / second['seconds']:.2f}x "
              + json.dumps(json.loads(n["stdout"])["timings"]))
             for k, n in enumerate(nights[2:], start=3)]
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
        ("leadctl run, second night: +1% leads, a new day of events (s)", second["seconds"]),
        ("  per stage (s)", json.dumps(stages2)),
        ("  peak memory (MB)", second["peak_mb"]),
        ("  second / first (target <= 0.15)", round(second["seconds"] / first["seconds"], 2)),
        ("  publish copy / second night", round(copy / second["seconds"], 3)),
        *later,
    ])


if __name__ == "__main__":
    main()
