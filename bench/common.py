"""Benchmark helpers: time a command in a subprocess, with its peak memory.

Timings are reported as ratios against plain DuckDB doing the same reads in
the same run, so results compare across noisy machines.
"""

from __future__ import annotations

import compileall
import functools
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench" / "out"
PYTHON = sys.executable


@functools.cache
def _compiled() -> None:
    """leadctl's bytecode, as an install writes it: where PYTHONDONTWRITEBYTECODE is set
    (this sandbox), every command would otherwise compile its modules again (0.2-0.4 s)."""
    compileall.compile_dir(REPO / "leadctl", quiet=1)


def leadctl_cmd(*args: str) -> list[str]:
    _compiled()
    return [PYTHON, "-m", "leadctl", *args]


# Runs the command as the only child of a fresh interpreter, so RUSAGE_CHILDREN
# is exactly that command's peak RSS.
_WRAPPER = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
            "r = subprocess.run(sys.argv[1:]); w = time.perf_counter() - t; "
            "m = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss; "
            "sys.stderr.write(f'\\n@@bench {w} {m}\\n'); sys.exit(r.returncode)")


def measure(cmd: list[str], *, env: dict | None = None, check: bool = True) -> dict:
    """Wall time (s) and peak RSS (MB) of one subprocess."""
    proc = subprocess.run([PYTHON, "-c", _WRAPPER, *cmd], capture_output=True,
                          env={**os.environ, **(env or {})}, cwd=REPO)
    stderr = proc.stderr.decode(errors="replace")
    if check and proc.returncode != 0:
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{stderr[-2000:]}")
    marker = stderr.rsplit("@@bench ", 1)[1].split()
    return {"seconds": round(float(marker[0]), 3), "peak_mb": round(int(marker[1]) / 1024, 1),
            "returncode": proc.returncode, "stdout": proc.stdout.decode(errors="replace")}


def duckdb_script(code: str) -> list[str]:
    return [PYTHON, "-c", code]


def fresh(path: Path) -> Path:
    for suffix in ("", ".wal", ".work", ".lock"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    return path


def report(title: str, rows: list[tuple[str, float | str]]) -> None:
    print(f"\n== {title}")
    for name, value in rows:
        print(f"  {name:<44} {value}")


def bench_args(description: str | None = None):
    """The scale of a benchmark: `--scale K` = K million leads and 10K million events
    (`--leads` / `--events` set either exactly), and `--memory-limit` for leadctl."""
    import argparse

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--scale", type=float, default=1.0,
                        help="K: K million leads and 10K million events (default 1)")
    parser.add_argument("--leads", type=int, default=None)
    parser.add_argument("--events", type=int, default=None)
    parser.add_argument("--memory-limit", default=None,
                        help="passed to leadctl as its global --memory-limit (e.g. 3GB)")
    parser.add_argument("--nights", type=int, default=2,
                        help="nights to run (bench/run.py): each after the first adds 1%% "
                             "new leads and one new day of events")
    args = parser.parse_args()
    args.leads = args.leads or round(args.scale * 1_000_000)
    args.events = args.events or round(args.scale * 10_000_000)
    return args


def scale_args() -> tuple[int, int]:
    args = bench_args()
    return args.leads, args.events


def data_root() -> Path:
    """Where generated data is cached between runs: `$LEADCTL_BENCH_DATA`, else bench/out."""
    return Path(os.environ.get("LEADCTL_BENCH_DATA") or OUT)


def bench_data(n_leads: int, n_events: int, nights: int = 2) -> Path:
    """Generated once per scale, then reused: the first night's inbox/ and nights 2..N
    (night<K>/: 1% new leads and one new day of events)."""
    import shutil

    from datagen import make_bench_data, make_second_night

    data_dir = data_root() / f"data_{n_leads}_{n_events}"
    if not (data_dir / "inbox" / "events.parquet").exists():
        shutil.rmtree(data_dir, ignore_errors=True)
        make_bench_data(data_dir, n_leads=n_leads, n_events=n_events)
    for night in range(2, nights + 1):
        if not (data_dir / f"night{night}" / "events.parquet").exists():
            make_second_night(data_dir, n_leads, 0.01, night=night, n_events=n_events)
    return data_dir


def timed(action) -> float:
    """Seconds `action()` takes (wall clock)."""
    started = time.perf_counter()
    action()
    return time.perf_counter() - started
