"""Spark engine benchmark: 1M leads (CSV, 5 layouts) + 10M events (Parquet).

On the same generated files, times plain DuckDB reading them into a database file
(the baseline of bench/run.py), the DuckDB engine (`leadctl run`, first night) and
the Spark engine (`leadctl run --engine spark` on local[2], Parquet results to
bench/out/spark_out). Prints per-stage seconds for both engines, the ratios
Spark / DuckDB engine and Spark / plain DuckDB, and peak memory.

Spark's JVM is a child of leadctl that leadctl never waits for, so measure()'s
peak RSS (RUSAGE_CHILDREN) leaves it out; the whole process tree's RSS is also
sampled from /proc (every 0.5 s) and reported beside it.

With `--files N` the same rows also run split into N inbox files (each file cut
into parts at record boundaries), reported as a ratio to the 6-file inbox; with
`--second-night` the next night (1% new leads, one new day of events) runs from the
first night's output as `--state`, reported as a ratio to the first night. Each
Spark run reports its statements by kind and how many table writes materialised.

    python bench/spark.py [--leads 1000000] [--events 10000000] [--files 100]
                          [--second-night] [--driver-memory 12g] [--master local[2]]
                          [--skip-duckdb]
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


def split_inbox(inbox: Path, n_files: int) -> Path:
    """The inbox's rows in about `n_files` files (cached): CSVs cut at line boundaries
    (bytes kept, so a GB18030 file stays GB18030), Parquet by row ranges."""
    import duckdb

    target = inbox.parent / f"inbox_{n_files}_files"
    files = sorted(inbox.iterdir())
    if target.exists() and len(list(target.iterdir())) >= n_files:
        return target
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir()
    per_file = max(1, round(n_files / len(files)))
    for f in files:
        if f.suffix == ".parquet":
            rows = duckdb.execute(f"SELECT count(*) FROM '{f}'").fetchone()[0]
            step = -(-rows // per_file)
            for part in range(per_file):
                duckdb.execute(f"COPY (SELECT * FROM '{f}' LIMIT {step} OFFSET {part * step}) "
                           f"TO '{target / f'{f.stem}_{part:03}.parquet'}'")
            continue
        header, *lines = f.read_bytes().splitlines(keepends=True)
        step = -(-len(lines) // per_file)
        for part in range(per_file):
            chunk = lines[part * step:(part + 1) * step]
            (target / f"{f.stem}_{part:03}{f.suffix}").write_bytes(header + b"".join(chunk))
    return target


def spark_run(args, inbox: Path, output: Path, *extra: str) -> dict:
    shutil.rmtree(output, ignore_errors=True)
    result = measure_tree(leadctl_cmd(
        "run", "--engine", "spark", "--spark-master", args.master, "--inbox", str(inbox),
        "--output", str(output), "--json",
        "--spark-conf", f"spark.driver.memory={args.driver_memory}", *extra))
    summary = json.loads(result["stdout"])
    return {**result, "timings": summary["timings"], "statements": summary["statements"],
            "summary": summary}


def spark_rows(label: str, run: dict) -> list[tuple[str, float | str]]:
    return [
        (f"{label} (s)", run["seconds"]),
        ("  per stage (s)", json.dumps(run["timings"])),
        ("  statements by kind", json.dumps(run["statements"])),
        ("  startup + shutdown, outside stages (s)",
         round(run["seconds"] - sum(run["timings"].values()), 1)),
        ("  peak memory, process tree incl. JVM (MB)", run["tree_peak_mb"]),
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--driver-memory", default="12g")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--skip-duckdb", action="store_true")
    parser.add_argument("--files", type=int, default=0,
                        help="also run the same rows split into this many inbox files")
    parser.add_argument("--second-night", action="store_true",
                        help="also run the next night from the first night's output")
    args = parser.parse_args()
    data_dir = bench_data(args.leads, args.events, nights=2 if args.second_night else 1)
    inbox = data_dir / "inbox"
    rows = []
    if not args.skip_duckdb:
        plain = measure(plain_duckdb_load(baseline_inbox(inbox), fresh(OUT / "plain.duckdb")))
        duck = measure_tree(leadctl_cmd("--db", str(fresh(OUT / "spark_bench.duckdb")), "run",
                                        "--inbox", str(inbox), "--as-of", "2026-11-01", "--json"))
        duck["timings"] = json.loads(duck["stdout"])["timings"]
    spark_out = OUT / "spark_out"
    spark = spark_run(args, inbox, spark_out, "--as-of", "2026-11-01")
    (OUT / f"spark_summary_{args.leads}_{args.events}.json").write_text(spark["stdout"])
    many = night2 = None
    if args.files:
        many = spark_run(args, split_inbox(inbox, args.files), OUT / "spark_out_files",
                         "--as-of", "2026-11-01")
    if args.second_night:
        night2 = spark_run(args, data_dir / "night2", OUT / "spark_out_night2",
                           "--as-of", "2026-11-02", "--state", str(spark_out))
    if not args.skip_duckdb:
        rows += [
            ("plain DuckDB read into a database file (s)", plain["seconds"]),
            ("DuckDB engine, first night (s)", duck["seconds"]),
            ("  per stage (s)", json.dumps(duck["timings"])),
            ("  ratio to plain DuckDB", round(duck["seconds"] / plain["seconds"], 2)),
            ("  peak memory, measure() (MB)", duck["peak_mb"]),
            ("  peak memory, process tree (MB)", duck["tree_peak_mb"]),
        ]
    rows += spark_rows(f"Spark engine, {args.master}, driver {args.driver_memory}", spark)
    if many:
        rows += spark_rows(f"Spark engine, the same rows in {args.files} files", many)
        rows += [(f"  ratio {args.files} files / one inbox",
                  round(many["seconds"] / spark["seconds"], 2))]
    if night2:
        rows += spark_rows("Spark engine, second night from --state", night2)
        rows += [("  ratio second night / first night",
                  round(night2["seconds"] / spark["seconds"], 2))]
    if not args.skip_duckdb:
        rows += [(f"  {stage}: Spark / DuckDB engine", round(s / duck["timings"][stage], 2)
                  if duck["timings"].get(stage) else "-")
                 for stage, s in spark["timings"].items()]
        rows += [("ratio Spark / DuckDB engine", round(spark["seconds"] / duck["seconds"], 2)),
                 ("ratio Spark / plain DuckDB", round(spark["seconds"] / plain["seconds"], 2))]
    report(f"Spark vs DuckDB engine: {args.leads:,} leads + {args.events:,} events", rows)


if __name__ == "__main__":
    main()
