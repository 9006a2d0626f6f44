"""Spark engine benchmark: 1M leads (CSV, 5 layouts) + 10M events (Parquet).

On the same generated files, times plain DuckDB reading them into a database file
(the baseline of bench/run.py), the DuckDB engine (`leadctl run`, first night) and
the Spark engine (`leadctl run --engine spark` on local[2], Parquet results to
bench/out/spark_out). Prints per-stage seconds for both engines, the ratios
Spark / DuckDB engine and Spark / plain DuckDB, and peak memory.

Spark's JVM is a child of leadctl that leadctl never waits for, so measure()'s
peak RSS (RUSAGE_CHILDREN) leaves it out; the whole process tree's RSS is also
sampled from /proc (every 0.5 s) and reported beside it.

    python bench/spark.py [--leads 1000000] [--events 10000000]
                          [--driver-memory 12g] [--master local[2]] [--skip-duckdb]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import OUT, bench_data, fresh, leadctl_cmd, measure, report  # noqa: E402
from ingest import baseline_inbox, plain_duckdb_load  # noqa: E402

PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 2**20


def tree_rss_mb(root: int) -> float:
    """Summed RSS (MB) of root's descendants, from /proc/*/stat."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry))
            rss[int(entry)] = int(fields[21])
    total, todo = 0, list(children.get(root, []))
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo += children.get(pid, [])
    return total * PAGE_MB


def measure_tree(cmd: list[str]) -> dict:
    """measure(), plus the peak summed RSS of the whole process tree (incl. a JVM)."""
    peak, done = [0.0], threading.Event()

    def poll() -> None:
        while not done.wait(0.5):
            peak[0] = max(peak[0], tree_rss_mb(os.getpid()))

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    try:
        result = measure(cmd)
    finally:
        done.set()
        watcher.join()
    return {**result, "tree_peak_mb": round(peak[0], 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--driver-memory", default="12g")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--skip-duckdb", action="store_true")
    args = parser.parse_args()
    data_dir = bench_data(args.leads, args.events)
    inbox = data_dir / "inbox"
    rows = []
    if not args.skip_duckdb:
        plain = measure(plain_duckdb_load(baseline_inbox(inbox), fresh(OUT / "plain.duckdb")))
        duck = measure_tree(leadctl_cmd("--db", str(fresh(OUT / "spark_bench.duckdb")), "run",
                                        "--inbox", str(inbox), "--as-of", "2026-11-01", "--json"))
        duck["timings"] = json.loads(duck["stdout"])["timings"]
    spark_out = OUT / "spark_out"
    shutil.rmtree(spark_out, ignore_errors=True)
    spark = measure_tree(leadctl_cmd(
        "run", "--engine", "spark", "--spark-master", args.master, "--inbox", str(inbox),
        "--output", str(spark_out), "--as-of", "2026-11-01", "--json",
        "--spark-conf", f"spark.driver.memory={args.driver_memory}"))
    summary = json.loads(spark["stdout"])
    spark["timings"] = summary["timings"]
    (OUT / f"spark_summary_{args.leads}_{args.events}.json").write_text(spark["stdout"])
    if not args.skip_duckdb:
        rows += [
            ("plain DuckDB read into a database file (s)", plain["seconds"]),
            ("DuckDB engine, first night (s)", duck["seconds"]),
            ("  per stage (s)", json.dumps(duck["timings"])),
            ("  ratio to plain DuckDB", round(duck["seconds"] / plain["seconds"], 2)),
            ("  peak memory, measure() (MB)", duck["peak_mb"]),
            ("  peak memory, process tree (MB)", duck["tree_peak_mb"]),
        ]
    rows += [
        (f"Spark engine, {args.master}, driver {args.driver_memory} (s)", spark["seconds"]),
        ("  per stage (s)", json.dumps(spark["timings"])),
        ("  startup + shutdown, outside stages (s)",
         round(spark["seconds"] - sum(spark["timings"].values()), 1)),
        ("  peak memory, measure() (MB, no JVM)", spark["peak_mb"]),
        ("  peak memory, process tree incl. JVM (MB)", spark["tree_peak_mb"]),
    ]
    if not args.skip_duckdb:
        rows += [(f"  {stage}: Spark / DuckDB engine", round(s / duck["timings"][stage], 2)
                  if duck["timings"].get(stage) else "-")
                 for stage, s in spark["timings"].items()]
        rows += [("ratio Spark / DuckDB engine", round(spark["seconds"] / duck["seconds"], 2)),
                 ("ratio Spark / plain DuckDB", round(spark["seconds"] / plain["seconds"], 2))]
    report(f"Spark vs DuckDB engine: {args.leads:,} leads + {args.events:,} events", rows)


if __name__ == "__main__":
    main()
