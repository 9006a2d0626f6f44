"""Score + route benchmark: the shipped scoring and routing rules over 1M persons.

A workspace file gets 1M synthetic persons in person_features (attributes and the tag
columns the shipped rules use), generated with DuckDB SQL. Then, on one connection, it
times:
  - baseline: ONE plain DuckDB pass over person_features — a hand-written
    CREATE TABLE AS SELECT with the same points, score, grade, first-matching route and
    a per-pool row_number (the dealing order);
  - score: `run_scores` (points table, scores, score_breakdown);
  - route: `run_routing`, first run (deals everybody: ownership + one log row per
    person) and second run (nothing changed: the nightly steady state, no log rows).
Target: score + route (the nightly steady state) ≤ 2 × baseline; each step's best of
`--rounds` runs counts, as the machine may be shared. Then the same through the CLI
(`leadctl score`, `leadctl route` as subprocesses, each copying and publishing the
workspace) for information.

    python bench/score_route.py [--persons 1000000] [--rounds 3] [--no-cli]
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import OUT, REPO, fresh, leadctl_cmd, measure, report  # noqa: E402

AS_OF = dt.date(2026, 11, 4)
RULES = REPO / "rules"


def generate_sql(persons: int) -> str:
    """person_features with the columns rules/scoring.yaml and rules/routing.yaml use."""
    def h(k: int) -> str:  # a deterministic pseudo-random number per person and column
        return f"(hash(i * 31 + {k}) % 1000000)"

    return f"""
CREATE OR REPLACE TABLE person_features AS
SELECT 'P' || lpad(CAST(i AS VARCHAR), 8, '0') AS person_id,
       c.city, c.province,
       ['sem', 'feed', 'agent', 'app', 'seo'][1 + i % 5] AS channel,
       ['sem_baidu', 'feed_douyin', 'agent_list', 'app_signups', 'seo_forms'][1 + i % 5]
         AS source,
       CAST(1 + CAST({h(1)} % 10 = 0 AS INTEGER) AS INTEGER) AS lead_count,
       TIMESTAMP '2026-05-01' + INTERVAL 1 MINUTE * ({h(2)} % 250000) AS first_seen,
       TIMESTAMP '2026-10-01' + INTERVAL 1 MINUTE * ({h(3)} % 40000) AS last_seen,
       CASE WHEN {h(4)} < 3000 THEN 'high' WHEN {h(4)} < 200000 THEN 'medium'
            ELSE 'low' END AS value_tier,
       CAST(CASE WHEN {h(5)} < 400000 THEN {h(6)} % 5000 ELSE 0 END AS DOUBLE)
         AS paid_amount_30d,
       CAST({h(7)} % 31 * CAST({h(8)} < 300000 AS INTEGER) AS BIGINT) AS login_days_30d,
       CASE WHEN {h(8)} < 300000 THEN {h(9)} % 40 END AS days_since_last_login,
       CAST(CAST({h(10)} < 150000 AS INTEGER) AS BIGINT) AS form_submits_30d,
       CAST({h(11)} % 25 AS BIGINT) AS page_views_30d,
       CASE WHEN {h(12)} < 900000 THEN {h(13)} % 200 END AS days_since_last_activity,
       {h(1)} % 10 = 0 AS repeat_lead
FROM range({persons}) AS t(i)
JOIN (VALUES (0, '上海', '上海市'), (1, '北京', '北京'), (2, '广州', '广东省'),
             (3, '深圳', '广东'), (4, '杭州', '浙江省'), (5, '成都', '四川省'),
             (6, '武汉', '湖北'), (7, 'Shanghai', '上海')) AS c(k, city, province)
  ON c.k = i % 8
"""


# The shipped rules, written by hand as one statement: what "plain DuckDB" would do.
BASELINE_SQL = """
CREATE OR REPLACE TABLE plain_score_route AS
WITH points AS (
  SELECT person_id, province, value_tier,
         CASE WHEN value_tier = 'high' THEN 40 ELSE 0 END
         + CASE WHEN value_tier = 'medium' THEN 20 ELSE 0 END
         + least(paid_amount_30d / 100, 20)
         + CASE WHEN login_days_30d >= 5 THEN 15 * CASE
               WHEN days_since_last_login IS NULL OR days_since_last_login <= 0 THEN 1
               WHEN days_since_last_login > 60 THEN 0
               ELSE power(0.5, days_since_last_login / 14) END ELSE 0 END
         + CASE WHEN form_submits_30d >= 1 THEN 15 * CASE
               WHEN days_since_last_activity IS NULL OR days_since_last_activity <= 0 THEN 1
               WHEN days_since_last_activity > 180 THEN 0
               ELSE power(0.5, days_since_last_activity / 30) END ELSE 0 END
         + least(page_views_30d, 10)
         + CASE WHEN repeat_lead THEN 5 ELSE 0 END
         + CASE WHEN starts_with(city, '上海') OR starts_with(city, '北京')
                  OR city IN ('Shanghai', 'Beijing') THEN 5 ELSE 0 END AS score
  FROM person_features
), graded AS (
  SELECT *, CASE WHEN score >= 70 THEN 'A' WHEN score >= 45 THEN 'B'
                 WHEN score >= 20 THEN 'C' ELSE 'D' END AS grade
  FROM points
), routed AS (
  SELECT *, CASE
      WHEN grade = 'A' AND value_tier = 'high' THEN 'key_accounts'
      WHEN grade IN ('A', 'B') AND (starts_with(province, '上海')
           OR starts_with(province, '江苏') OR starts_with(province, '浙江')
           OR starts_with(province, '安徽')) THEN 'sales_east'
      WHEN grade IN ('A', 'B') AND (starts_with(province, '广东')
           OR starts_with(province, '福建') OR starts_with(province, '湖南')) THEN 'sales_south'
      WHEN grade IN ('A', 'B') THEN 'sales_other'
      WHEN grade = 'C' THEN 'public_sea'
      ELSE 'nurture' END AS pool
  FROM graded
)
SELECT person_id, score, grade, pool,
       row_number() OVER (PARTITION BY pool ORDER BY score DESC, person_id) AS position
FROM routed
"""


def timed(action) -> tuple[float, object]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def one_round(base: Path, work: Path, scoring, routing) -> dict:
    """Copy the generated workspace, then time baseline, score, route twice on it."""
    from leadctl.routing.stage import run_routing
    from leadctl.scoring.stage import run_scores
    from leadctl.tagging.fields import person_features_fields
    from leadctl.workspace import open_writer

    shutil.copyfile(base, fresh(work))
    with open_writer(work) as ws:
        fields = person_features_fields(ws)
        ws.execute("SELECT count(*), " + ", ".join(f"count({c})" for c in fields)
                   + " FROM person_features")  # warm the file pages for everyone
        out: dict = {}
        out["baseline"], _ = timed(lambda: ws.execute(BASELINE_SQL))
        out["score"], out["scored"] = timed(
            lambda: run_scores(ws, scoring, AS_OF, run_id=1, fields=fields))
        out["route1"], out["first"] = timed(
            lambda: run_routing(ws, routing, AS_OF, run_id=2, fields=fields))
        out["route2"], out["second"] = timed(
            lambda: run_routing(ws, routing, AS_OF, run_id=3, fields=fields))
        out["log_rows"] = ws.scalar("SELECT count(*) FROM assignments")
        out["over_capacity"] = ws.scalar(
            "SELECT count(*) FROM (SELECT new_owner, count(*) AS n FROM assignments "
            "WHERE new_owner IS NOT NULL GROUP BY new_owner) l JOIN (VALUES "
            + ", ".join(f"('{r.name}', {r.capacity})" for r in routing.reps().values()
                        if r.capacity is not None)
            + ") AS c(rep, capacity) ON c.rep = l.new_owner WHERE l.n > c.capacity")
        out["breakdown_rows"] = ws.scalar("SELECT count(*) FROM score_breakdown")
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3,
                        help="Repeat and keep each step's best time (shared machines).")
    parser.add_argument("--no-cli", action="store_true", help="Skip the CLI timings.")
    args = parser.parse_args()
    from leadctl.routing.parse import load_routing_rules
    from leadctl.scoring.parse import load_scoring_rules
    from leadctl.workspace import open_writer

    OUT.mkdir(parents=True, exist_ok=True)
    base = fresh(OUT / "score_route_base.duckdb")
    with open_writer(base, create=True) as ws:
        ws.execute(generate_sql(args.persons))
    scoring, routing = load_scoring_rules(RULES), load_routing_rules(RULES)
    rounds = [one_round(base, OUT / "score_route.duckdb", scoring, routing)
              for _ in range(args.rounds)]
    best = {k: min(r[k] for r in rounds) for k in ("baseline", "score", "route1", "route2")}
    last = rounds[-1]
    grades = ", ".join(f"{g['grade']} {g['persons']}" for g in last["scored"]["grades"])
    report(f"score + route {args.persons:,} persons (in process, best of {args.rounds})", [
        ("plain DuckDB pass: score, grade, route, position (s)", round(best["baseline"], 3)),
        ("leadctl score: points, scores, breakdown view (s)", round(best["score"], 3)),
        ("leadctl route, first run: deal all, log all (s)", round(best["route1"], 3)),
        ("leadctl route, second run: nothing changed (s)", round(best["route2"], 3)),
        ("ratio (score + second route) / plain (target <= 2)",
         round((best["score"] + best["route2"]) / best["baseline"], 2)),
        ("ratio (score + first route) / plain",
         round((best["score"] + best["route1"]) / best["baseline"], 2)),
        ("grades", grades),
        ("breakdown rows (view)", last["breakdown_rows"]),
        ("first run: changes / owned / log rows",
         f"{last['first']['changes']} / {last['first']['owned']} / {last['log_rows']}"),
        ("second run: changes", last["second"]["changes"]),
        ("reps over capacity", last["over_capacity"]),
    ])
    if args.no_cli:
        return
    # End to end through the CLI: process start, workspace copy, work, publish.
    cli_db = fresh(OUT / "score_route_cli.duckdb")
    shutil.copyfile(base, cli_db)
    env = {"LEADCTL_DB": str(cli_db), "LEADCTL_RULES": str(RULES)}
    day = AS_OF.isoformat()
    plain_cli = measure([sys.executable, "-c", (
        "import duckdb, sys; con = duckdb.connect(sys.argv[1]); con.execute(sys.argv[2]); "
        "con.execute('CHECKPOINT'); con.close()"), str(cli_db), BASELINE_SQL])
    cli_score = measure(leadctl_cmd("score", "--as-of", day), env=env)
    cli_route = measure(leadctl_cmd("route", "--as-of", day), env=env)
    cli_again = measure(leadctl_cmd("route", "--as-of", day), env=env)
    report("the same through the CLI (subprocesses, one run each)", [
        ("plain DuckDB script: connect, pass, checkpoint (s)", plain_cli["seconds"]),
        ("leadctl score (s)", cli_score["seconds"]),
        ("leadctl route, first run (s)", cli_route["seconds"]),
        ("leadctl route, second run (s)", cli_again["seconds"]),
        ("ratio (score + second route) / plain",
         round((cli_score["seconds"] + cli_again["seconds"]) / plain_cli["seconds"], 2)),
        ("peak memory score / route (MB)", f"{cli_score['peak_mb']} / {cli_route['peak_mb']}"),
    ])


if __name__ == "__main__":
    main()
