"""Portrait start-up benchmark: `leadctl portrait PHONE` and `leadctl --help`, cold.

Each figure is the median of several fresh subprocesses, compared in the same run
with the floor it cannot beat:

- `leadctl portrait PHONE`  vs  `python -c "import duckdb; duckdb.connect(DB,
  read_only=True).execute('select 1')"`  (target ratio <= 2)
- `leadctl --help`           vs  `python -c "import typer"`  (target ratio <= 2)

and both again while another process writes the same workspace (a `leadctl
ingest` of a big CSV in the background): readers must not block or slow down
beyond the shared CPU.

The workspace is synthesised directly in SQL at the requested scale (persons,
leads, identifiers, tags, scores, ownership, assignments, events), so the
benchmark does not depend on the other stages' speed.

    python bench/portrait.py [--leads 1000000] [--events 10000000] [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import OUT, PYTHON, REPO, fresh, leadctl_cmd, measure, report  # noqa: E402

TAGS = (("value_tier", "tiers", "value"), ("paid_amount_30d", "metric", "value"),
        ("paid_orders_7d", "metric", "value"), ("login_days_30d", "active_days", "behaviour"),
        ("days_since_last_login", "last", "behaviour"),
        ("top_categories_7d", "top", "preference"),
        ("days_since_first_payment", "first", "lifecycle"), ("rfm_segment", "rfm", "value"))


def workspace_sql(n_leads: int, n_events: int, sorted_layout: bool = False) -> list[str]:
    """Synthetic published state: ~0.7 persons per lead, 1-3 identifiers per lead.

    Person ids look like resolve's (P + 12 hex of a hash). "as-is": the worst case, the
    identity tables in no useful order (tags/scores/ownership by person); with
    `sorted_layout` as lookups prefer it and as a full resolve writes them (identifiers
    by value, person_leads and persons by person id): DuckDB's min/max zone maps then
    skip all but one row group of each lookup. A night's region rows are appended
    unsorted, so a workspace drifts from the sorted layout between full resolves."""
    person = "CAST(floor(lead_key * 0.7) AS BIGINT)"
    pid = "'P' || substr(md5(CAST(p AS VARCHAR)), 1, 12)"
    person_pid = pid.replace("(p AS", f"({person} AS")
    shuffled = "hash(lead_key, id_type)"
    n_persons = int(n_leads * 0.7) + 1
    tag_rows = ",\n".join(f"({i}, '{t}', '{k}', '{c}', NULL, 'string')"
                          for i, (t, k, c) in enumerate(TAGS))
    return [
        f"""INSERT INTO leads (lead_key, source, lead_id, name, phone, email, wechat, city,
                              created_at, utm_source, utm_medium, utm_campaign, channel)
        SELECT lead_key, 'src' || (lead_key % 12), 'L' || lead_key, '测试' || (lead_key % 97),
               '138' || lpad(CAST({person} AS VARCHAR), 8, '0'),
               CASE WHEN lead_key % 3 = 0 THEN 'u' || lead_key || '@example.com' END,
               CASE WHEN lead_key % 4 = 0 THEN 'wx_' || {person} END,
               'city' || (lead_key % 50),
               TIMESTAMP '2026-01-01' + INTERVAL (lead_key % 300) DAY,
               'utm' || (lead_key % 20), 'cpc', 'camp' || (lead_key % 200),
               'chan' || (lead_key % 8)
        FROM range({n_leads}) t(lead_key)""",
        f"""INSERT INTO lead_identifiers (lead_key, id_type, raw_value, value, status)
        SELECT lead_key, id_type, value, value, 'ok' FROM (
          SELECT lead_key, 'phone' AS id_type,
                 '+86138' || lpad(CAST({person} AS VARCHAR), 8, '0') AS value
          FROM range({n_leads}) t(lead_key)
          UNION ALL SELECT lead_key, 'email', 'u' || lead_key || '@example.com'
          FROM range(0, {n_leads}, 3) t(lead_key)
          UNION ALL SELECT lead_key, 'wechat', 'wx_' || {person}
          FROM range(0, {n_leads}, 4) t(lead_key))
        ORDER BY {"value, lead_key" if sorted_layout else shuffled}""",
        f"""INSERT INTO person_leads
        SELECT lead_key, {person_pid} FROM range({n_leads}) t(lead_key)
        ORDER BY {"2, 1" if sorted_layout else "hash(lead_key)"}""",
        f"""INSERT INTO persons (person_id, name, phone, email, wechat, city, province, channel,
                                source, first_seen, last_seen, lead_count)
        SELECT {pid}, '测试' || (p % 97), '+86138' || lpad(CAST(p AS VARCHAR), 8, '0'),
               NULL, 'wx_' || p, 'city' || (p % 50), 'prov' || (p % 10), 'chan' || (p % 8),
               'src' || (p % 12), TIMESTAMP '2026-01-01', TIMESTAMP '2026-10-01', 1
        FROM range({n_persons}) t(p) ORDER BY {"1" if sorted_layout else "hash(p)"}""",
        f"""INSERT INTO tags
        SELECT {pid}, tag,
               CASE tag WHEN 'value_tier' THEN '"' || ['high','medium','low'][p % 3 + 1] || '"'
                        WHEN 'top_categories_7d' THEN '["fresh","apparel"]'
                        WHEN 'rfm_segment' THEN '"important_value"'
                        ELSE CAST(p % 31 AS VARCHAR) END,
               DATE '2026-11-01', 2
        FROM range({n_persons}) t(p),
             (VALUES {", ".join(f"('{t}')" for t, _, _ in TAGS)}) v(tag)
        ORDER BY 1, 2""",
        f"""INSERT INTO tag_history
        SELECT 2, DATE '2026-11-01', {pid}, 'value_tier', '"medium"', '"high"'
        FROM range(0, {n_persons}, 7) t(p)""",
        f"""INSERT INTO tag_history
        SELECT 1, DATE '2026-10-01', {pid}, 'value_tier', NULL, '"medium"'
        FROM range(0, {n_persons}, 7) t(p)""",
        "DELETE FROM tag_definitions",
        "INSERT INTO tag_definitions (position, tag, kind, category, description, type) "
        f"VALUES {tag_rows}",
        f"""INSERT INTO scores SELECT {pid}, p % 100, ['A','B','C','D'][p % 4 + 1],
                                     DATE '2026-11-01', 2 FROM range({n_persons}) t(p)
        ORDER BY 1""",
        f"""INSERT INTO ownership SELECT {pid}, ['sales_sh','sales_bj','nurture'][p % 3 + 1],
               'rep' || (p % 40), 'contacting', DATE '2026-10-20', DATE '2026-10-01',
               CASE WHEN p % 10 = 0 THEN DATE '2027-01-01' END, false, 'route r' || (p % 5)
        FROM range({n_persons}) t(p) ORDER BY 1""",
        f"""INSERT INTO assignments SELECT TIMESTAMP '2026-10-01', 2, DATE '2026-10-01', {pid},
               NULL, ['sales_sh','sales_bj','nurture'][p % 3 + 1], NULL, 'rep' || (p % 40),
               NULL, 'pending', 'r' || (p % 5), 'route r' || (p % 5), 'route r' || (p % 5)
        FROM range({n_persons}) t(p) ORDER BY 4""",
        f"""INSERT INTO subject_persons (subject, person_id, status)
        SELECT 'phone:138' || lpad(CAST(p AS VARCHAR), 8, '0'), {pid}, 'ok'
        FROM range({n_persons}) t(p) ORDER BY 1""",
        f"""INSERT INTO events (source, subject, event_type, ts, amount, category)
        SELECT 'app', 'phone:138' || lpad(CAST(hash(i) % {n_persons} AS VARCHAR), 8, '0'),
               ['login','order_paid','view'][i % 3 + 1],
               TIMESTAMP '2026-08-01' + INTERVAL (hash(i * 7) % 7776000) SECOND,
               CASE WHEN i % 3 = 1 THEN 50 + i % 500 END, 'cat' || (i % 9)
        FROM range({n_events}) t(i)""",
    ]


def build_workspace(db: Path, n_leads: int, n_events: int, sorted_layout: bool = False) -> None:
    from leadctl.workspace import open_writer

    with open_writer(fresh(db), create=True) as ws:
        for statement in workspace_sql(n_leads, n_events, sorted_layout):
            ws.execute(statement)


def big_csv(path: Path, rows: int) -> Path:
    """A lead file for the background writer; new content each time (re-ingest is a no-op)."""
    import duckdb

    token = f"{os.getpid()}_{time.time_ns()}"
    con = duckdb.connect()
    con.execute(f"""COPY (SELECT 'X{token}_' || i AS lead_id,
                                 '139' || lpad(CAST(i AS VARCHAR), 8, '0') AS phone,
                                 'n' || i AS name, 'city' || (i % 50) AS city,
                                 '2026-10-01 10:00:00' AS created_at
                          FROM range({rows}) t(i)) TO '{path}' (FORMAT csv, HEADER true)""")
    con.close()
    return path


# Like common.measure, plus the child's CPU time (user + system), which a busy machine
# disturbs far less than wall time.
_TIMED = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
          "r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL); "
          "w = time.perf_counter() - t; u = resource.getrusage(resource.RUSAGE_CHILDREN); "
          "sys.stderr.write(f'@@bench {w} {u.ru_utime + u.ru_stime}\\n'); sys.exit(r.returncode)")


def timed(cmd: list[str]) -> tuple[float, float]:
    proc = subprocess.run([PYTHON, "-c", _TIMED, *cmd], capture_output=True, cwd=REPO)
    stderr = proc.stderr.decode(errors="replace")
    if proc.returncode != 0:
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{stderr[-2000:]}")
    wall, cpu = stderr.rsplit("@@bench ", 1)[1].split()
    return float(wall), float(cpu)


def measure_set(db: Path, phone: str, runs: int) -> dict:
    """Medians over `runs` rounds; each round runs every command once (interleaved, so
    a burst of load elsewhere hits them alike)."""
    commands = {
        "duckdb": [PYTHON, "-c", "import duckdb, sys; duckdb.connect(sys.argv[1], "
                   "read_only=True).execute('select 1')", str(db)],
        "portrait": leadctl_cmd("--db", str(db), "portrait", phone),
        "portrait_json": leadctl_cmd("--db", str(db), "portrait", phone, "--json"),
        "typer": [PYTHON, "-c", "import typer"],
        "help": leadctl_cmd("--help"),
    }
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, cmd in commands.items():
            samples[name].append(timed(cmd))
    return {name: (round(statistics.median(w for w, _ in got), 3),
                   round(statistics.median(c for _, c in got), 3))
            for name, got in samples.items()}


def rows_for(m: dict) -> list[tuple[str, float | str]]:
    def pair(name: str) -> str:
        return f"{m[name][0]:.3f} s wall, {m[name][1]:.3f} s cpu"

    def ratio(a: str, b: str) -> str:
        return f"{m[a][0] / m[b][0]:.2f} wall, {m[a][1] / m[b][1]:.2f} cpu"

    return [
        ("python: import duckdb + connect + select 1", pair("duckdb")),
        ("leadctl portrait PHONE", pair("portrait")),
        ("leadctl portrait PHONE --json", pair("portrait_json")),
        ("ratio portrait / duckdb (target <= 2)", ratio("portrait", "duckdb")),
        ("ratio portrait --json / duckdb", ratio("portrait_json", "duckdb")),
        ("python: import typer", pair("typer")),
        ("leadctl --help", pair("help")),
        ("ratio --help / typer (target <= 2)", ratio("help", "typer")),
    ]


def person_activity_sql() -> list[str]:
    """The per person and event type summary a stage would precompute (recommended)."""
    return ["""CREATE TABLE person_activity AS
        SELECT sp.person_id, e.event_type, count(*) AS events_total,
               count(*) FILTER (WHERE e.ts >= DATE '2026-10-02') AS events_30d,
               sum(e.amount) FILTER (WHERE e.ts >= DATE '2026-10-02') AS amount_30d,
               max(e.ts) AS last_at
        FROM events e JOIN subject_persons sp ON sp.subject = e.subject
        GROUP BY 1, 2 ORDER BY 1, 2"""]


def prepare(args, layout: str) -> tuple[Path, str]:
    db = OUT / f"portrait_{layout}_{args.leads}_{args.events}.duckdb"
    if not db.exists():
        started = time.perf_counter()
        build_workspace(db, args.leads, args.events, sorted_layout=layout == "sorted")
        if layout == "sorted":
            from leadctl.workspace import open_writer

            with open_writer(db) as ws:
                for statement in person_activity_sql():
                    ws.execute(statement)
        print(f"built {db} in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    number = f"{int(args.leads * 0.35):08d}"
    phone = f"138 {number[:4]} {number[4:]}"
    check = measure(leadctl_cmd("--db", str(db), "portrait", phone, "--json"))
    if '"person_id"' not in check["stdout"]:
        raise SystemExit(f"portrait {phone} found nobody: {check['stdout'][:500]}")
    return db, phone


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--layout", choices=("as-is", "sorted", "both"), default="both",
                        help="row order of the synthetic workspace (see workspace_sql)")
    parser.add_argument("--writer-rows", type=int, default=2_000_000,
                        help="rows of the CSV ingested in the background")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    # An installed package has byte-code; PYTHONDONTWRITEBYTECODE must not tax leadctl only.
    subprocess.run([PYTHON, "-m", "compileall", "-q", str(REPO / "leadctl")], check=True)
    layouts = ("as-is", "sorted") if args.layout == "both" else (args.layout,)
    for layout in layouts:
        db, phone = prepare(args, layout)
        quiet = measure_set(db, phone, args.runs)
        report(f"portrait ({layout} layout), {args.leads:,} leads + {args.events:,} events, "
               f"median of {args.runs} cold runs", rows_for(quiet))

    # Busy: a copy of the workspace (the bench database stays as built) while `leadctl
    # ingest` runs one fresh file after another into it.
    busy_db = fresh(OUT / "portrait_busy.duckdb")
    shutil.copyfile(db, busy_db)
    stop = threading.Event()
    ingests: list[int] = []

    def keep_writing() -> None:
        while not stop.is_set():
            csv = big_csv(OUT / "portrait_writer.csv", args.writer_rows)
            proc = subprocess.run(leadctl_cmd("--db", str(busy_db), "ingest", str(csv)),
                                  capture_output=True, cwd=REPO)
            ingests.append(proc.returncode)

    writer = threading.Thread(target=keep_writing, daemon=True)
    writer.start()
    try:
        time.sleep(2.0)  # the first ingest is copying / loading by now
        busy = measure_set(busy_db, phone, args.runs)
    finally:
        stop.set()
        writer.join()
        fresh(busy_db)
    report(f"same ({layouts[-1]} layout) while `leadctl ingest` keeps writing the workspace "
           f"({len(ingests)} ingests of {args.writer_rows:,} rows, exit codes "
           f"{sorted(set(ingests))})", rows_for(busy))


if __name__ == "__main__":
    main()
