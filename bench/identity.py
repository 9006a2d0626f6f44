"""Identity resolution benchmark: 1M leads (bench/datagen.py, 5 layouts).

In the same run it times, each in its own subprocess:
  - read:      plain DuckDB reading the lead files into a database file (the baseline);
  - resolve:   `resolve_identities` on a freshly ingested workspace (first run: every
               person id is new), in a locked write session (copy, work, publish);
  - re-run:    resolving the same data again (every id is kept);
  - night 2:   resolving after 1% new leads arrive (ids kept, merges recorded; only the
               new leads and new event subjects are normalised: the cache does the rest);
  - suggest:   `leadctl identity suggest` on that workspace (a steward's lookup).
Peak memory is the subprocess's max RSS. Precision/recall against the generator's
truth are reported too. Targets: resolve ≤ 2 × read, ≤ 2 GB.

    python bench/identity.py [--leads 1000000] [--events 0] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import OUT, PYTHON, REPO, duckdb_script, fresh, report  # noqa: E402

# Like common.measure, plus the child's CPU time (user + system): on a shared, busy
# machine wall times swing with the load, CPU time much less.
_WRAPPER = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
            "r = subprocess.run(sys.argv[1:]); w = time.perf_counter() - t; "
            "u = resource.getrusage(resource.RUSAGE_CHILDREN); "
            "sys.stderr.write(f'\\n@@bench {w} {u.ru_maxrss} {u.ru_utime + u.ru_stime}\\n'); "
            "sys.exit(r.returncode)")


def measure(cmd: list[str]) -> dict:
    """Wall time (s), CPU time (s) and peak RSS (MB) of one subprocess."""
    import subprocess

    proc = subprocess.run([PYTHON, "-c", _WRAPPER, *cmd], capture_output=True, cwd=REPO)
    stderr = proc.stderr.decode(errors="replace")
    if proc.returncode != 0:
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n"
                         f"{stderr[-2000:]}")
    wall, rss, cpu = stderr.rsplit("@@bench ", 1)[1].split()[:3]
    return {"seconds": round(float(wall), 3), "cpu": round(float(cpu), 3),
            "peak_mb": round(int(rss) / 1024, 1), "stdout": proc.stdout.decode(errors="replace")}


LEAD_SUFFIXES = (".csv", ".parquet")


def utf8_copies(files: list[Path], folder: Path) -> list[Path]:
    """DuckDB's CSV reader has no GB18030: the baseline reads UTF-8 copies (made once,
    not timed), which only makes the baseline faster."""
    folder.mkdir(exist_ok=True)
    copies = []
    for path in files:
        copy = folder / path.name
        if not copy.exists():
            if path.name == "agent_list.csv":
                copy.write_text(path.read_text(encoding="gb18030"), encoding="utf-8")
            else:
                shutil.copyfile(path, copy)
        copies.append(copy)
    return copies


def plain_read(files: list[Path], db: Path, threads: int | None) -> list[str]:
    """DuckDB alone: each lead file into a table of a database file."""
    code = f"""
import duckdb
con = duckdb.connect({str(db)!r})
if {threads!r}: con.execute("SET threads = {threads or 0}")
for i, f in enumerate({[str(f) for f in files]!r}):
    if f.endswith('.csv'):
        con.execute(f"CREATE TABLE t{{i}} AS SELECT * FROM read_csv('{{f}}', header=true)")
    else:
        con.execute(f"CREATE TABLE t{{i}} AS SELECT * FROM read_parquet('{{f}}')")
con.close()
"""
    return duckdb_script(code)


def resolve_cmd(db: Path, threads: int | None) -> list[str]:
    code = f"""
import json
from leadctl.workspace import open_writer
from leadctl.identity.config import load_identity_config
from leadctl.identity.resolve import resolve_identities
with open_writer({str(db)!r}) as ws:
    if {threads!r}: ws.execute("SET threads = {threads or 0}")
    summary = resolve_identities(ws, load_identity_config({str(REPO / 'rules')!r}), None)
print(json.dumps(summary.to_dict(), default=str))
"""
    return [PYTHON, "-c", code]


def ingest_cmd(db: Path, paths: list[Path]) -> list[str]:
    return [PYTHON, "-m", "leadctl", "--db", str(db), "ingest", *map(str, paths)]


def quality(db: Path, truth: Path) -> dict:
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        row = con.execute(f"""
            WITH j AS (
                SELECT t.person AS truth, pl.person_id AS found
                FROM read_parquet('{truth}') t
                JOIN leads l ON l.source = t.source AND l.lead_id = t.lead_id
                JOIN person_leads pl ON pl.lead_key = l.lead_key),
            pairs AS (SELECT count(*) AS n FROM j GROUP BY truth, found),
            tp AS (SELECT sum(n * (n - 1) / 2) AS v FROM pairs),
            t AS (SELECT sum(n * (n - 1) / 2) AS v FROM (SELECT count(*) AS n FROM j
                                                        GROUP BY truth)),
            f AS (SELECT max(n) AS biggest, sum(n * (n - 1) / 2) AS v
                  FROM (SELECT count(*) AS n FROM j GROUP BY found))
            SELECT tp.v / f.v, tp.v / t.v, f.biggest FROM tp, t, f""").fetchone()
    finally:
        con.close()
    return {"precision": round(row[0], 5), "recall": round(row[1], 5), "largest": row[2]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    from datagen import make_bench_data

    data_dir = OUT / f"identity_data_{args.leads}_{args.events}"
    if not (data_dir / "night2").exists():
        make_bench_data(data_dir, n_leads=args.leads, n_events=args.events, extra_fraction=0.01)
    inbox = data_dir / "inbox"
    lead_files = sorted(p for p in inbox.iterdir() if p.suffix in LEAD_SUFFIXES
                        and p.stem != "events")
    ingest_paths = lead_files + ([inbox / "events.parquet"] if args.events else [])

    plain_files = utf8_copies(lead_files, data_dir / "utf8")
    read = measure(plain_read(plain_files, fresh(OUT / "identity_plain.duckdb"), args.threads))
    ingested = fresh(OUT / "identity_ingested.duckdb")
    ingest = measure(ingest_cmd(ingested, ingest_paths))
    db = fresh(OUT / "identity.duckdb")
    shutil.copyfile(ingested, db)
    first = measure(resolve_cmd(db, args.threads))
    first_summary = json.loads(first["stdout"].strip().splitlines()[-1])
    first_quality = quality(db, data_dir / "truth.parquet")
    again = measure(resolve_cmd(db, args.threads))
    again_summary = json.loads(again["stdout"].strip().splitlines()[-1])
    measure(ingest_cmd(db, sorted((data_dir / "night2").iterdir())))
    night2 = measure(resolve_cmd(db, args.threads))
    night2_summary = json.loads(night2["stdout"].strip().splitlines()[-1])
    suggest = measure([PYTHON, "-m", "leadctl", "--db", str(db), "identity", "suggest",
                       "--min-score", "0", "--json"])

    ratio = round(first["seconds"] / read["seconds"], 2)
    report(f"identity resolution, {args.leads:,} leads, {args.events:,} events", [
        ("plain DuckDB read of the lead files (s)", read["seconds"]),
        ("  CPU (s)", read["cpu"]),
        ("leadctl ingest (s, for reference)", ingest["seconds"]),
        ("resolve, first run: wall (s)", first["seconds"]),
        ("  CPU (s)", first["cpu"]),
        ("  of which resolve_identities (s)", first_summary["seconds"]),
        ("  steps (s)", json.dumps(first_summary["timings"])),
        ("  peak memory (MB)", first["peak_mb"]),
        ("  persons / largest / rounds", f"{first_summary['persons']:,} / "
                                         f"{first_summary['largest_person']} / "
                                         f"{first_summary['rounds']}"),
        ("  precision / recall vs truth", f"{first_quality['precision']} / "
                                          f"{first_quality['recall']}"),
        ("ratio resolve / read (target <= 2)", ratio),
        ("  same ratio in CPU time", round(first["cpu"] / read["cpu"], 2)),
        ("resolve again, same data: wall (s)", again["seconds"]),
        ("  ids kept / new", f"{again_summary['ids']['kept']:,} / "
                             f"{again_summary['ids']['new']:,}"),
        ("  peak memory (MB)", again["peak_mb"]),
        ("resolve after 1% new leads: wall (s)", night2["seconds"]),
        ("  of which resolve_identities (s)", night2_summary["seconds"]),
        ("  steps (s)", json.dumps(night2_summary["timings"])),
        ("  leads / phone subjects normalised", f"{night2_summary['normalised_leads']:,} / "
                                                f"{night2_summary['normalised_subjects']:,}"),
        ("  night 2 / first run (resolve_identities)",
         round(night2_summary["seconds"] / first_summary["seconds"], 2)),
        ("  ids kept / new / merges", f"{night2_summary['ids']['kept']:,} / "
                                      f"{night2_summary['ids']['new']:,} / "
                                      f"{night2_summary['merges']:,}"),
        ("  peak memory (MB)", night2["peak_mb"]),
        ("identity suggest: wall (s)", suggest["seconds"]),
        ("  CPU (s) / as a ratio to the read's CPU",
         f"{suggest['cpu']} / {round(suggest['cpu'] / read['cpu'], 2)}"),
        ("  pairs suggested", json.loads(suggest["stdout"])["total"]),
        ("  peak memory (MB)", suggest["peak_mb"]),
    ])


if __name__ == "__main__":
    main()
