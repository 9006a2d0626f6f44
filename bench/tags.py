"""Tag benchmark: the shipped tag rules over 1M persons and 10M events.

Persons, subject_persons and events are generated with DuckDB SQL in an in-memory
workspace. In the same run it times:
  - baseline: one plain DuckDB `GROUP BY` pass over the events (count + sum per subject);
  - tags: computing every tag of rules/tags.yaml into a person_features table
    (the events pass, the top pass, tiers/rfm/expr layers);
  - store: the rest of a real `run_tags` (long-form `tags`, `tag_history`, definitions).
Target: tags ≤ 3 × baseline.

    python bench/tags.py [--persons 1000000] [--events 10000000] [--threads N]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import REPO, report, timed  # noqa: E402

AS_OF = dt.date(2026, 11, 1)


def generate_sql(persons: int, events: int, as_of: dt.date) -> list[str]:
    """Synthetic persons, two subjects for a third of them, and events over 200 days."""
    start = f"TIMESTAMP '{as_of.isoformat()}' - INTERVAL 200 DAY"
    return [
        f"""INSERT INTO persons (person_id, name, city, province, channel, source, lead_count,
                                 first_seen, last_seen)
            SELECT 'P' || lpad(CAST(i AS VARCHAR), 8, '0'), NULL,
                   ['Shanghai', 'Beijing', 'Shenzhen', 'Hangzhou', 'Chengdu'][1 + i % 5],
                   NULL, ['SEM', 'feed', 'agent', 'app', 'seo'][1 + (i // 7) % 5],
                   ['sem_baidu', 'feed_douyin', 'agent_list', 'app_signups', 'seo_forms']
                       [1 + (i // 7) % 5],
                   1 + (i % 3 = 0)::INTEGER,
                   {start} + INTERVAL 1 MINUTE * (hash(i) % 288000),
                   TIMESTAMP '{as_of.isoformat()}' - INTERVAL 1 HOUR * (1 + hash(i) % 24)
            FROM range({persons}) t(i)""",
        f"""INSERT INTO subject_persons (subject, person_id)
            SELECT 'person:P' || lpad(CAST(i AS VARCHAR), 8, '0'),
                   'P' || lpad(CAST(i AS VARCHAR), 8, '0') FROM range({persons}) t(i)
            UNION ALL
            SELECT 'phone:1380' || lpad(CAST(i AS VARCHAR), 7, '0'),
                   'P' || lpad(CAST(i AS VARCHAR), 8, '0') FROM range({persons}) t(i)
            WHERE i % 3 = 0""",
        f"""INSERT INTO events (file_id, row_number, source, subject, event_type, ts, amount,
                                category, attributes)
            SELECT 1, i, 'bench',
                   CASE WHEN p % 3 = 0 AND i % 2 = 0
                        THEN 'phone:1380' || lpad(CAST(p AS VARCHAR), 7, '0')
                        ELSE 'person:P' || lpad(CAST(p AS VARCHAR), 8, '0') END,
                   kind,
                   {start} + INTERVAL 1 SECOND * (hash(i * 7 + 1) % (201 * 86400)),
                   CASE WHEN kind = 'order_paid' THEN round(20 + (hash(i * 7 + 2) % 60000) / 100.0,
                                                            2) END,
                   CASE WHEN kind = 'order_paid' THEN ['maternal', 'apparel', 'fresh',
                        'digital', 'daily', 'other'][CAST(1 + hash(i * 7 + 3) % 6 AS BIGINT)] END,
                   NULL
            FROM (SELECT i,
                         -- a skewed choice of person: some people are far more active
                         CAST(floor({persons} * pow((hash(i * 7 + 4) % 1000003) / 1000003.0, 1.6))
                              AS BIGINT) AS p,
                         CASE WHEN hash(i * 7 + 5) % 100 < 50 THEN 'page_view'
                              WHEN hash(i * 7 + 5) % 100 < 75 THEN 'login'
                              WHEN hash(i * 7 + 5) % 100 < 90 THEN 'order_paid'
                              ELSE 'form_submit' END AS kind
                  FROM range({events}) t(i))""",
    ]


BASELINE_SQL = ("CREATE OR REPLACE TEMP TABLE bench_baseline AS "
                "SELECT subject, count(*) AS events, sum(amount) AS amount "
                "FROM events GROUP BY subject")
# The same per person: what any per-person figure costs at least (events → persons).
PERSON_BASELINE_SQL = ("CREATE OR REPLACE TEMP TABLE bench_person_baseline AS "
                       "SELECT sp.person_id, count(*) AS events, sum(e.amount) AS amount "
                       "FROM events e JOIN subject_persons sp ON sp.subject = e.subject "
                       "GROUP BY sp.person_id")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--threads", type=int, default=0, help="DuckDB threads (0: default)")
    parser.add_argument("--rounds", type=int, default=3, help="best of N for each timing")
    args = parser.parse_args()

    from leadctl.tagging.parse import load_tag_rules
    from leadctl.tagging.sql import compile_tag_rules
    from leadctl.tagging.stage import run_tags
    from leadctl.workspace import open_memory

    rules = load_tag_rules(REPO / "rules")
    ws = open_memory()
    if args.threads:
        ws.execute(f"SET threads = {args.threads}")
    gen = timed(lambda: ws.script(generate_sql(args.persons, args.events, AS_OF)))
    counts = ws.rows("SELECT (SELECT count(*) FROM persons) AS persons, "
                     "(SELECT count(*) FROM events) AS events, "
                     "(SELECT count(*) FROM subject_persons) AS subjects")[0]
    statements = compile_tag_rules(rules, AS_OF, "bench_features", temporary=True)

    # Interleaved rounds, best of each: other load on the machine hits both alike.
    baseline = person_baseline = tags = float("inf")
    for _ in range(args.rounds):
        baseline = min(baseline, timed(lambda: ws.execute(BASELINE_SQL)))
        person_baseline = min(person_baseline, timed(lambda: ws.execute(PERSON_BASELINE_SQL)))
        tags = min(tags, timed(lambda: ws.script(statements)))
    first_run = timed(lambda: run_tags(ws, rules, AS_OF, run_id=1))
    second_run = timed(lambda: run_tags(ws, rules, AS_OF + dt.timedelta(days=1), run_id=2))
    high = ws.scalar("SELECT count(*) FROM person_features WHERE value_tier = 'high'")
    history = ws.scalar("SELECT count(*) FROM tag_history")
    threads = ws.scalar("SELECT current_setting('threads')")

    report(f"tags: {len(rules.tags)} tag rules, {counts['persons']:,} persons, "
           f"{counts['events']:,} events, {counts['subjects']:,} subjects, {threads} threads", [
               ("generate data (s)", round(gen, 2)),
               ("baseline: plain GROUP BY over events (s)", round(baseline, 3)),
               ("tags: compute person_features (s)", round(tags, 3)),
               ("ratio tags / baseline (target <= 3)", round(tags / baseline, 2)),
               ("baseline per person: JOIN subject_persons (s)", round(person_baseline, 3)),
               ("ratio tags / per-person baseline", round(tags / person_baseline, 2)),
               ("full run_tags, first run (s)", round(first_run, 3)),
               ("full run_tags, next day (s)", round(second_run, 3)),
               ("persons with value_tier = high", high),
               ("tag_history rows after two runs", f"{history:,}"),
           ])


if __name__ == "__main__":
    main()
