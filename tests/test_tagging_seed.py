"""The five seed examples from the source articles, computed by the shipped rules,
with decoys just outside each window and filter and on the as-of day."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from leadctl.tagging.parse import load_tag_rules
from leadctl.tagging.stage import run_tags
from leadctl.workspace import open_memory
from tests.conftest import RULES

AS_OF = dt.date(2026, 11, 1)


@pytest.fixture(scope="module")
def rules():
    return load_tag_rules(RULES)


def workspace(persons: list[str], events: list[tuple]) -> object:
    """persons by id; events (person, event_type, ts, amount, category, repeat)."""
    ws = open_memory()
    ws.execute("INSERT INTO persons (person_id, lead_count) SELECT unnest(?), 1", [persons])
    ws.execute("INSERT INTO subject_persons (subject, person_id) "
               "SELECT 'person:' || p, p FROM (SELECT unnest(?) AS p)", [persons])
    if events:
        rows = ", ".join(
            f"('person:{p}', '{kind}', TIMESTAMP '{ts}', {amount if amount is not None else 'NULL'}"
            f", {repr(category) if category else 'NULL'}, {repeat})"
            for p, kind, ts, amount, category, repeat in events)
        ws.execute(f"INSERT INTO events (subject, event_type, ts, amount, category) "
                   f"SELECT s, t, ts, a, c FROM (VALUES {rows}) v(s, t, ts, a, c, n), range(n)")
    return ws


def tag_values(ws, tag: str) -> dict:
    rows = ws.rows("SELECT person_id, CAST(value AS VARCHAR) AS value FROM tags WHERE tag = ?",
                   [tag])
    return {r["person_id"]: json.loads(r["value"]) for r in rows}


def run(ws, rules) -> dict:
    return run_tags(ws, rules, AS_OF, run_id=1)


def test_value_tier_high_needs_30_orders_and_6000_in_the_last_7_days(rules):
    ws = workspace(["high", "edge_in", "edge_out", "count_short", "amount_short", "low"], [
        ("high", "order_paid", "2026-10-29 10:00", 200, "fresh", 30),  # exactly 30 and 6000
        ("edge_in", "order_paid", "2026-10-31 10:00", 300, "daily", 29),
        ("edge_in", "order_paid", "2026-10-25 00:00:00", 300, "daily", 1),  # window opens
        ("edge_out", "order_paid", "2026-10-31 10:00", 300, "daily", 29),
        ("edge_out", "order_paid", "2026-10-24 23:59:59", 300, "daily", 1),  # a second early
        ("count_short", "order_paid", "2026-10-30 10:00", 300, "digital", 29),
        ("count_short", "order_paid", "2026-11-01 00:00:00", 320, "digital", 3),  # as-of day
        ("amount_short", "order_paid", "2026-10-28 10:00", 170, "fresh", 34),  # 5780
        ("low", "login", "2026-10-31 10:00", 9999, None, 40),  # not orders
    ])
    run(ws, rules)
    assert tag_values(ws, "value_tier") == {
        "high": "high", "edge_in": "high", "edge_out": "medium", "count_short": "medium",
        "amount_short": "medium", "low": "low"}
    assert tag_values(ws, "paid_orders_7d") == {
        "high": 30, "edge_in": 30, "edge_out": 29, "count_short": 29, "amount_short": 34,
        "low": 0}
    assert tag_values(ws, "paid_amount_7d")["high"] == 6000


def test_paid_amount_30d_sums_100_150_300_to_550(rules):
    ws = workspace(["p1", "none"], [
        ("p1", "order_paid", "2026-10-31 09:00", 100, "daily", 1),
        ("p1", "order_paid", "2026-10-17 09:00", 150, "fresh", 1),
        ("p1", "order_paid", "2026-10-02 00:00:00", 300, "apparel", 1),  # first instant
        ("p1", "order_paid", "2026-10-01 23:59:59", 1000, "apparel", 1),  # just before
        ("p1", "order_paid", "2026-11-01 00:00:00", 2000, "apparel", 1),  # as-of day
        ("p1", "refund", "2026-10-20 09:00", 8000, None, 1),  # another event type
    ])
    run(ws, rules)
    assert tag_values(ws, "paid_amount_30d") == {"p1": 550, "none": 0}


def test_days_since_first_payment_two_days_before_as_of_is_2(rules):
    ws = workspace(["late", "early", "today_only", "never"], [
        ("late", "order_paid", "2026-10-30 23:59:59", 80, "fresh", 1),
        ("late", "order_paid", "2026-10-31 08:00", 90, "fresh", 1),
        ("late", "login", "2026-10-01 08:00", None, None, 1),
        ("early", "order_paid", "2026-10-30 00:00:00", 80, "fresh", 1),
        ("today_only", "order_paid", "2026-11-01 08:00", 50, "fresh", 1),
        ("never", "page_view", "2026-10-20 08:00", None, None, 1),
    ])
    run(ws, rules)
    assert tag_values(ws, "days_since_first_payment") == {"late": 2, "early": 2}


def test_top_categories_7d_counts_desc_then_value_asc(rules):
    paid = [("maternal", 5, 301), ("apparel", 4, 450), ("fresh", 4, 520), ("digital", 3, 999),
            ("daily", 2, 310), ("other", 2, 800)]
    ws = workspace(["p1"], [("p1", "order_paid", "2026-10-28 12:00", amount, category, n)
                            for category, n, amount in paid] + [
        ("p1", "order_paid", "2026-10-31 12:00", 300, "digital", 3),  # not > 300
        ("p1", "order_paid", "2026-10-24 23:59:59", 900, "daily", 5),  # before the window
        ("p1", "order_paid", "2026-11-01 00:00:00", 900, "other", 5),  # as-of day
        ("p1", "page_view", "2026-10-31 12:00", 900, "digital", 5),  # not an order
    ])
    run(ws, rules)
    assert tag_values(ws, "top_categories_7d") == {"p1": ["maternal", "apparel", "fresh"]}


def test_login_days_30d_counts_days_1_to_5_and_20_to_30(rules):
    days = [*range(1, 6), *range(20, 31)]  # day 1 = 30 days before as-of
    logins = [("p1", "login", f"{AS_OF - dt.timedelta(days=31 - d)} {hour:02d}:15", None, None, 1)
              for d in days for hour in (8, 21)]
    ws = workspace(["p1"], logins + [
        ("p1", "login", "2026-10-01 23:59:59", None, None, 3),  # before the window
        ("p1", "login", "2026-11-01 00:00:00", None, None, 3),  # as-of day
        ("p1", "page_view", "2026-10-15 10:00", None, None, 4),  # day 14: another event
    ])
    run(ws, rules)
    assert tag_values(ws, "login_days_30d") == {"p1": 16}
