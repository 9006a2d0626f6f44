"""Event tags from daily rollups give exactly what raw events give: every windowed kind,
window edges (midnight, the as-of day), ties of first/last values, filters on event
columns and declared attributes, persons with several subjects; and a filter that
depends on the as-of date falls back to raw events, said by `rules check`."""

from __future__ import annotations

import datetime as dt
import json
import random

import pytest

from leadctl.tagging.parse import load_tag_rules
from leadctl.tagging.rollup import (
    ROLLUPS,
    event_features_sql,
    fold_select_sql,
    raw_only_tags,
    rollup_def,
)
from leadctl.tagging.sql import compile_tag_rules
from leadctl.tagging.stage import run_tags
from leadctl.workspace import open_memory
from tests.conftest import RULES
from tests.test_tagging_seed import workspace

AS_OF = dt.date(2026, 11, 1)

EVERY_KIND = """\
event_attributes:
  page: string
  score: number
tags:
  - {name: n_orders_7d, kind: metric, event: order_paid, agg: count, window: 7d}
  - {name: n_amounts_30d, kind: metric, event: order_paid, agg: count, field: amount,
     window: 30d}
  - {name: paid_30d, kind: metric, event: order_paid, agg: sum, field: amount, window: 30d}
  - {name: big_paid_90d, kind: metric, event: order_paid, agg: sum, field: amount,
     window: 90d, where: amount > 300}
  - {name: avg_180d, kind: metric, event: order_paid, agg: avg, field: amount, window: 180d}
  - {name: min_amount, kind: metric, event: order_paid, agg: min, field: amount}
  - {name: max_amount_30d, kind: metric, event: order_paid, agg: max, field: amount,
     window: 30d, where: "category in ('fresh', 'daily')"}
  - {name: last_order_ts, kind: metric, event: order_paid, agg: max, field: ts}
  - {name: max_category, kind: metric, event: order_paid, agg: max, field: category}
  - {name: score_sum_30d, kind: metric, event: page_view, agg: sum, field: score,
     window: 30d}
  - {name: cats_180d, kind: metric, event: order_paid, agg: count_distinct, field: category,
     window: 180d}
  - {name: pages_30d, kind: metric, event: page_view, agg: count_distinct, field: page,
     window: 30d, where: "page != 'home'"}
  - {name: first_pay_days, kind: first, event: order_paid}
  - {name: last_pay_days_30d, kind: last, event: order_paid, window: 30d}
  - {name: first_category, kind: first, event: order_paid, value: category}
  - {name: last_category_7d, kind: last, event: order_paid, value: category, window: 7d}
  - {name: last_amount, kind: last, event: order_paid, value: amount}
  - {name: first_ts, kind: first, event: [login, page_view], value: ts}
  - {name: top_cats_7d, kind: top, event: order_paid, field: category, n: 3, window: 7d,
     where: amount > 300}
  - {name: top_pages, kind: top, event: page_view, field: page, n: 2}
  - {name: login_days_30d, kind: active_days, event: login, window: 30d}
  - {name: any_days_90d, kind: active_days, event: [login, page_view, order_paid],
     window: 90d}
  - {name: login_days_all, kind: active_days, event: login}
  - {name: streak_30d, kind: streak, event: login, window: 30d}
  - {name: streak_now, kind: streak, event: login, window: 30d, current: true}
  - {name: big_spender, kind: tiers, levels: [{name: big, when: paid_30d >= 1000}],
     default: small}
  - {name: rfm, kind: rfm, recency: first_pay_days, frequency: n_orders_7d,
     monetary: paid_30d}
"""


def rules_from(tmp_path, text):
    (tmp_path / "tags.yaml").write_text(text, encoding="utf-8")
    return load_tag_rules(tmp_path)


def random_workspace(seed: int, persons: int = 40, events: int = 1500):
    """Persons with one or two subjects; events over 200 days, many on midnight and the
    same instant (ties), some on and after the as-of day."""
    rng = random.Random(seed)
    ws = open_memory()
    ids = [f"P{i:03d}" for i in range(persons)]
    ws.execute("INSERT INTO persons (person_id, lead_count) SELECT unnest(?), 1", [ids])
    subjects = [(f"person:{p}", p) for p in ids] + [(f"phone:{i}", p)
                                                   for i, p in enumerate(ids) if i % 3 == 0]
    ws.execute("INSERT INTO subject_persons (subject, person_id) SELECT unnest(?), unnest(?)",
               [[s for s, _ in subjects], [p for _, p in subjects]])
    rows = []
    for i in range(events):
        subject = rng.choice(subjects)[0]
        kind = rng.choice(["order_paid", "order_paid", "login", "page_view", "refund"])
        day = AS_OF - dt.timedelta(days=rng.randint(-2, 200))
        seconds = rng.choice([0, 0, 86399, 36000, 36000, rng.randint(0, 86399)])
        ts = dt.datetime.combine(day, dt.time()) + dt.timedelta(seconds=seconds)
        amount = rng.choice([None, 100, 150.25, 300, 300.01, 999.99, 0.1, 0.2]) \
            if kind != "login" else None
        category = rng.choice(["fresh", "daily", "apparel", "digital", None]) \
            if kind == "order_paid" else None
        attrs = json.dumps({"page": rng.choice(["home", "a", "b", "c"]),
                            "score": rng.choice([1, 2.5, "x"])}) if kind == "page_view" else None
        rows.append((i, subject, kind, ts, amount, category, attrs))
    columns = list(zip(*rows, strict=True))
    ws.execute("CREATE TEMP TABLE gen AS SELECT unnest(?) AS i, unnest(?) AS subject, "
               "unnest(?) AS event_type, CAST(unnest(?) AS TIMESTAMP) AS ts, "
               "CAST(unnest(?) AS DOUBLE) AS amount, CAST(unnest(?) AS VARCHAR) AS category, "
               "CAST(unnest(?) AS JSON) AS attributes", [list(c) for c in columns])
    ws.execute("INSERT INTO events (file_id, row_number, source, subject, event_type, ts, "
               "amount, category, attributes) SELECT 1 + i % 3, i, 'gen', subject, "
               "event_type, ts, amount, category, attributes FROM gen")
    return ws


def features(ws, rules, as_of, *, rollups: bool) -> list[tuple]:
    if rollups:
        ws.execute(f"CREATE OR REPLACE TABLE {ROLLUPS} AS "
                   f"{fold_select_sql(rules, rollup_def(rules))}")
        ws.execute(f"CREATE OR REPLACE TEMP TABLE ef AS {event_features_sql(rules, as_of)}")
    ws.script(compile_tag_rules(rules, as_of, "cmp", temporary=True,
                                event_features="ef" if rollups else None))
    return [tuple(r.values()) for r in ws.rows("SELECT * FROM cmp ORDER BY person_id")]


@pytest.mark.parametrize("seed", [1, 2])
def test_every_event_kind_from_rollups_equals_raw_events(tmp_path, seed):
    rules = rules_from(tmp_path, EVERY_KIND)
    ws = random_workspace(seed)
    for as_of in (AS_OF, AS_OF - dt.timedelta(days=1), AS_OF + dt.timedelta(days=3)):
        raw = features(ws, rules, as_of, rollups=False)
        assert len(raw) == 40
        assert features(ws, rules, as_of, rollups=True) == raw
    # the data reaches every kind (not all NULL / 0)
    rows = ws.rows("SELECT count(top_cats_7d) AS t, count(streak_now) FILTER "
                   "(WHERE streak_now > 0) AS s, count(pages_30d) FILTER (WHERE pages_30d > 1)"
                   " AS p, count(last_category_7d) AS c FROM cmp")[0]
    assert all(v > 0 for v in rows.values())


def test_the_shipped_rules_from_rollups_equal_raw_events():
    rules = load_tag_rules(RULES)
    ws = random_workspace(3)
    assert features(ws, rules, AS_OF, rollups=True) == features(ws, rules, AS_OF,
                                                                 rollups=False)


def test_the_rollup_keys_come_from_the_rules(tmp_path):
    rules = rules_from(tmp_path, EVERY_KIND)
    defn = rollup_def(rules)
    assert defn.events == ("login", "order_paid", "page_view")  # no refunds folded
    assert len(defn.flags) == 3  # amount > 300 (twice), category in (...), page != 'home'
    assert defn.keys == ["amount", "category", "page"]  # amount: the last order's amount
    assert ("s", "amount") in defn.columns and ("s", "score") in defn.columns
    sql = fold_select_sql(rules, defn, "e.file_id = 7")
    assert "GROUP BY e.subject, CAST(e.ts AS DATE), e.event_type" in sql
    assert "e.file_id = 7" in sql and "DECIMAL(38, 9)" in sql


def test_seed_examples_run_on_rollups():
    rules = load_tag_rules(RULES)
    ws = workspace(["p1"], [("p1", "order_paid", "2026-10-31 09:00", 100, "daily", 1),
                            ("p1", "order_paid", "2026-10-17 09:00", 150, "fresh", 1),
                            ("p1", "order_paid", "2026-10-02 00:00:00", 300, "apparel", 1)])
    summary = run_tags(ws, rules, AS_OF, run_id=1)
    assert summary["event_tags_from"] == {"mode": "full", "folded_files": 1}
    assert ws.scalar("SELECT paid_amount_30d FROM person_features") == 550
    assert ws.scalar(f"SELECT sum(n) FROM {ROLLUPS}") == 3


AS_OF_FILTER = """\
tags:
  - {name: recent_orders, kind: metric, event: order_paid, agg: count,
     where: days_since(ts) <= 3}
  - {name: orders, kind: metric, event: order_paid, agg: count}
"""


def test_a_filter_depending_on_the_as_of_falls_back_to_raw_events(tmp_path, cli):
    rules = rules_from(tmp_path, AS_OF_FILTER)
    assert [t.name for t in raw_only_tags(rules)] == ["recent_orders"]
    ws = workspace(["a"], [("a", "order_paid", "2026-10-30 10:00", 10, None, 2),
                           ("a", "order_paid", "2026-10-01 10:00", 10, None, 1)])
    summary = run_tags(ws, rules, AS_OF, run_id=1)
    assert summary["event_tags_from"] == {"mode": "events"}
    assert ws.rows("SELECT recent_orders, orders FROM person_features") == [
        {"recent_orders": 2, "orders": 3}]
    assert not ws.table_exists(ROLLUPS)
    cli.rules = tmp_path
    result = cli("rules", "check", "--json")
    assert result.exit_code == 0, result.stdout
    [warning] = [w for w in result.json()["warnings"] if "rollups" in w]
    assert warning.startswith(f"{tmp_path / 'tags.yaml'}:2:")
    assert "tag 'recent_orders'" in warning and "raw events" in warning
