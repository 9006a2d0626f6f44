"""Ingest benchmark: 1M leads (CSV, 5 layouts) + 10M events (Parquet).

Compares `leadctl ingest` with plain DuckDB reading the same files into a
database file, in the same run. Target: ratio ≤ 1.5.

    python bench/ingest.py [--scale 1|4] [--leads N] [--events N] [--memory-limit 3GB]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import (  # noqa: E402
    OUT,
    bench_args,
    bench_data,
    data_root,
    duckdb_script,
    fresh,
    leadctl_cmd,
    measure,
    report,
)


def baseline_inbox(inbox: Path) -> Path:
    """The same files for plain DuckDB, which cannot read GB18030: that one file is
    transcoded to UTF-8 beforehand (untimed, so the baseline is favoured)."""
    target = data_root() / "baseline_inbox" / inbox.parent.name
    if target.exists():
        return target
    target.mkdir(parents=True)
    for f in sorted(inbox.iterdir()):
        raw = f.read_bytes() if f.suffix == ".csv" else b""
        try:
            raw.decode("utf-8")
            (target / f.name).symlink_to(f)
        except UnicodeDecodeError:
            (target / f.name).write_bytes(raw.decode("gb18030").encode("utf-8"))
    return target


def plain_duckdb_load(data_dir: Path, db: Path) -> list[str]:
    code = f"""
import duckdb, pathlib
con = duckdb.connect({str(db)!r})
for i, f in enumerate(sorted(pathlib.Path({str(data_dir)!r}).iterdir())):
    if f.suffix == '.csv':
        con.execute(f"CREATE TABLE t{{i}} AS SELECT * FROM read_csv('{{f}}', header=true)")
    elif f.suffix == '.parquet':
        con.execute(f"CREATE TABLE t{{i}} AS SELECT * FROM read_parquet('{{f}}')")
con.close()
"""
    return duckdb_script(code)


def main() -> None:
    args = bench_args(__doc__.splitlines()[0])
    n_leads, n_events = args.leads, args.events
    data_dir = bench_data(n_leads, n_events)
    inbox = data_dir / "inbox"
    limit = ["--memory-limit", args.memory_limit] if args.memory_limit else []
    plain = measure(plain_duckdb_load(baseline_inbox(inbox), fresh(OUT / "plain.duckdb")))
    ours = measure(leadctl_cmd("--db", str(fresh(OUT / "ingest.duckdb")), *limit, "ingest",
                               str(inbox)))
    report(f"ingest {n_leads:,} leads + {n_events:,} events", [
        ("plain DuckDB read into a database file (s)", plain["seconds"]),
        ("leadctl ingest (s)", ours["seconds"]),
        ("leadctl ingest peak memory (MB)", ours["peak_mb"]),
        ("ratio leadctl / plain (target <= 1.5)", round(ours["seconds"] / plain["seconds"], 2)),
    ])


if __name__ == "__main__":
    main()
