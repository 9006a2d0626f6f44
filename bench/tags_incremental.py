"""Night after night tag benchmark: a base built once, then nights with +1% persons and
one new day of events (the issue-17 scenario).

Data as bench/tags.py (1M persons, 10M events over 200 days by default). Night 1: a full
`run_tags` (rollups built from every event). Each later night: 1% new persons (with
their subjects), one new day of events (events / 200, a new file id), as-of + 1 day, and
an incremental `run_tags`. Prints each night's time (and the part spent on rollups and
event tag columns), the ratio night 2 / night 1 (target <= 0.15) and last / night 2
(target <= 1.2), and, for reference, the last night's tags computed from raw events (as
before rollups; computing only, before that night's run) and the last night again as a
full recomputation from the rollups (`incremental=False`).

    python bench/tags_incremental.py [--persons 1000000] [--events 10000000] [--nights 10]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import REPO, report  # noqa: E402
from tags import AS_OF, generate_sql  # noqa: E402


def night_sql(night: int, persons: int, new_persons: int, events: int,
              as_of: dt.date) -> list[str]:
    """New persons (ids after the existing ones) and one day of events (the day before
    `as_of`), 80% by existing persons, 20% by the new ones."""
    first = persons
    day = f"TIMESTAMP '{(as_of - dt.timedelta(days=1)).isoformat()}'"
    return [
        f"""INSERT INTO persons (person_id, city, channel, source, lead_count, first_seen,
                                 last_seen)
            SELECT 'P' || lpad(CAST(i AS VARCHAR), 8, '0'), 'Shanghai', 'SEM', 'sem_baidu', 1,
                   {day}, {day} FROM range({first}, {first + new_persons}) t(i)""",
        f"""INSERT INTO subject_persons (subject, person_id)
            SELECT 'person:P' || lpad(CAST(i AS VARCHAR), 8, '0'),
                   'P' || lpad(CAST(i AS VARCHAR), 8, '0')
            FROM range({first}, {first + new_persons}) t(i)""",
        f"""INSERT INTO events (file_id, row_number, source, subject, event_type, ts, amount,
                                category, attributes)
            SELECT {night}, i, 'bench', 'person:P' || lpad(CAST(p AS VARCHAR), 8, '0'), kind,
                   {day} + INTERVAL 1 SECOND * (hash(i * 11 + {night}) % 86400),
                   CASE WHEN kind = 'order_paid' THEN round(20 + (hash(i * 11 + 2) % 60000)
                                                            / 100.0, 2) END,
                   CASE WHEN kind = 'order_paid' THEN ['maternal', 'apparel', 'fresh',
                        'digital', 'daily', 'other'][CAST(1 + hash(i * 11 + 3) % 6 AS BIGINT)]
                        END, NULL
            FROM (SELECT i,
                         CASE WHEN hash(i * 11 + 9) % 5 = 0
                              THEN {first} + hash(i * 11 + 4) % {max(new_persons, 1)}
                              ELSE CAST(floor({persons} * pow((hash(i * 11 + 4) % 1000003)
                                                              / 1000003.0, 1.6)) AS BIGINT)
                         END AS p,
                         CASE WHEN hash(i * 11 + 5) % 100 < 50 THEN 'page_view'
                              WHEN hash(i * 11 + 5) % 100 < 75 THEN 'login'
                              WHEN hash(i * 11 + 5) % 100 < 90 THEN 'order_paid'
                              ELSE 'form_submit' END AS kind
                  FROM range({events}) t(i))""",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--nights", type=int, default=10)
    parser.add_argument("--threads", type=int, default=0, help="DuckDB threads (0: default)")
    args = parser.parse_args()

    from leadctl.tagging import stage
    from leadctl.tagging.parse import load_tag_rules
    from leadctl.tagging.sql import compile_tag_rules
    from leadctl.workspace import open_memory

    rules = load_tag_rules(REPO / "rules")
    ws = open_memory()
    if args.threads:
        ws.execute(f"SET threads = {args.threads}")
    ws.script(generate_sql(args.persons, args.events, AS_OF))
    spent = {"features": 0.0}
    refresh = stage.refresh_event_features

    def timed_refresh(*a, **k):
        started = time.perf_counter()
        try:
            return refresh(*a, **k)
        finally:
            spent["features"] = time.perf_counter() - started

    stage.refresh_event_features = timed_refresh
    persons, rows, nights = args.persons, [], []
    as_of = AS_OF
    for night in range(1, args.nights + 1):
        if night > 1:
            as_of += dt.timedelta(days=1)
            new = max(persons // 100, 1)
            ws.script(night_sql(night + 1, persons, new, args.events // 200, as_of))
            persons += new
        if night == args.nights:  # the events part as before rollups, for comparison
            started = time.perf_counter()
            ws.script(compile_tag_rules(rules, as_of, "bench_raw", temporary=True))
            raw_compute = time.perf_counter() - started
            ws.execute("DROP TABLE bench_raw")
        started = time.perf_counter()
        summary = stage.run_tags(ws, rules, as_of, run_id=night)
        seconds = time.perf_counter() - started
        info = summary["event_tags_from"]
        nights.append(seconds)
        features_last = spent["features"]
        rows.append((f"night {night} ({info['mode']}, affected "
                     f"{info.get('affected_persons', 'all')}) (s)",
                     f"{seconds:.3f} (rollups + event tags {spent['features']:.3f})"))
    started = time.perf_counter()
    stage.run_tags(ws, rules, as_of, run_id=args.nights + 1, incremental=False)
    full = time.perf_counter() - started
    rows += [("last night again, full recomputation from rollups (s)", round(full, 3)),
             ("last night: computing every tag from raw events, as before (s)",
              round(raw_compute, 3)),
             ("last night: rollups + event tags of affected persons (s)",
              round(features_last, 3)),
             ("ratio night 2 / night 1 (target <= 0.15)", round(nights[1] / nights[0], 3)),
             (f"ratio night {args.nights} / night 2 (target <= 1.2)",
              round(nights[-1] / nights[1], 3))]
    report(f"tags night after night: {args.persons:,} persons, {args.events:,} events, "
           f"{args.nights} nights", rows)


if __name__ == "__main__":
    main()
