"""Each tag kind is one class in tagging/kinds.py, one fixture and one line of docs:
the shipped rules use every kind, a fixture expects a value of each, the README's list
of kinds names each."""

from __future__ import annotations

from pathlib import Path

from leadctl.ruletest import fixture_files, load_cases
from leadctl.tagging.kinds import KINDS
from leadctl.tagging.parse import load_tag_rules
from tests.conftest import RULES

README = Path(__file__).resolve().parent.parent / "README.md"


def test_kinds_are_listed_once_in_message_order():
    assert list(KINDS) == ["tiers", "metric", "first", "last", "top", "active_days", "streak",
                           "rfm", "expr"]
    assert all(name == kind.name for name, kind in KINDS.items())


def test_every_kind_has_a_shipped_tag_with_a_fixture_and_a_doc_line():
    tags = load_tag_rules(RULES).tags
    expected = {key for path in fixture_files(RULES) for case in load_cases(path)
                for _, key, _, _ in case.expect}
    readme = README.read_text(encoding="utf-8")
    for kind in KINDS:
        with_fixture = [t.name for t in tags if t.kind == kind and t.name in expected]
        assert with_fixture, f"no shipped tag of kind {kind} has a fixture"
        assert f"kind: {kind}" in readme, f"README does not show kind {kind}"


def test_streaks_from_the_day_bitmask_equal_the_runs_of_days(tmp_path):
    """A streak in a window of up to 62 days is read from the day bitmask (longest run of
    ones, the ones from yesterday up); gaps and islands over the events' days (the pass of
    its own, still used for longer windows) give the same for every pattern of days."""
    import datetime as dt

    import duckdb

    from leadctl.tagging.fields import event_condition_sql
    from leadctl.tagging.kinds import PASS_EVENTS, PASS_OWN, kind_of
    from leadctl.tagging.sql import event_pass_sql

    (tmp_path / "tags.yaml").write_text("""
tags:
  - {name: longest, kind: streak, event: login, window: 30d}
  - {name: current, kind: streak, event: login, window: 30d, current: true}
""")
    rules = load_tag_rules(tmp_path)
    as_of = dt.date(2026, 11, 1)
    longest, current = rules.tags
    assert {kind_of(t).computed_by(t) for t in rules.tags} == {PASS_EVENTS}
    con = duckdb.connect()
    con.execute("""CREATE TABLE events AS
        SELECT 's' || p AS subject, 'login' AS event_type,
               TIMESTAMP '2026-11-01 12:00' - INTERVAL (day) DAY AS ts
        FROM range(3000) a(p), range(0, 36) b(day)
        WHERE hash(p, day) % 10 < p % 10""")  # persons from no days to nearly every day
    con.execute("CREATE TABLE subject_persons AS "
                "SELECT DISTINCT subject, subject AS person_id FROM events")
    by_bits = con.execute(f"SELECT person_id, longest, current FROM "
                          f"({event_pass_sql(rules, as_of)}) ORDER BY 1").fetchall()
    own = kind_of(longest).own_pass_sql([longest, current],
                                        event_condition_sql(rules, longest, as_of), as_of)
    by_runs = con.execute(f"SELECT person_id, longest, coalesce(current, 0) FROM ({own}) "
                          "ORDER BY 1").fetchall()
    assert by_bits == by_runs
    assert {r[1] for r in by_bits} >= {1, 2, 5, 30} and max(r[2] for r in by_bits) == 30
    longest.window_days = 63  # too long for the bitmask: a pass of its own
    assert kind_of(longest).computed_by(longest) == PASS_OWN
