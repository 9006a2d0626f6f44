"""The tag stage: what is stored (tags, person_features, tag_definitions, tag_history),
dry runs, and the run summary."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from leadctl.tagging.model import PERSON_FIELDS
from leadctl.tagging.parse import load_tag_rules
from leadctl.tagging.stage import run_tags
from tests.test_tagging_seed import workspace

AS_OF = dt.date(2026, 11, 1)

TAGS = """\
tags:
  - name: paid_30d
    kind: metric
    category: value
    description: Paid in the last 30 days
    event: order_paid
    agg: sum
    field: amount
    window: 30d
  - name: last_paid_days
    kind: last
    event: order_paid
  - name: tier
    kind: tiers
    category: value
    highlight: true
    levels:
      - {name: big, when: paid_30d >= 500}
    default: small
  - name: cats
    kind: top
    category: preference
    event: order_paid
    field: category
    n: 2
"""


def rules(tmp_path, text=TAGS):
    (tmp_path / "tags.yaml").write_text(text, encoding="utf-8")
    return load_tag_rules(tmp_path)


def events_ws():
    return workspace(["a", "b", "c"], [
        ("a", "order_paid", "2026-10-30 10:00", 300, "fresh", 2),
        ("a", "order_paid", "2026-10-20 10:00", 50.5, "daily", 1),
        ("b", "order_paid", "2026-10-31 10:00", 100, "apparel", 1),
    ])


def stored(ws) -> list[tuple]:
    return [(r["person_id"], r["tag"], json.loads(r["value"]), str(r["as_of"]), r["run_id"])
            for r in ws.rows("SELECT person_id, tag, CAST(value AS VARCHAR) AS value, as_of, "
                             "run_id FROM tags ORDER BY person_id, tag")]


def test_a_run_stores_long_json_values_wide_features_and_definitions(tmp_path):
    ws = events_ws()
    summary = run_tags(ws, rules(tmp_path), AS_OF, run_id=7)
    assert stored(ws) == [
        ("a", "cats", ["fresh", "daily"], "2026-11-01", 7),
        ("a", "last_paid_days", 2, "2026-11-01", 7),
        ("a", "paid_30d", 650.5, "2026-11-01", 7),
        ("a", "tier", "big", "2026-11-01", 7),
        ("b", "cats", ["apparel"], "2026-11-01", 7),
        ("b", "last_paid_days", 1, "2026-11-01", 7),
        ("b", "paid_30d", 100, "2026-11-01", 7),
        ("b", "tier", "small", "2026-11-01", 7),
        ("c", "paid_30d", 0, "2026-11-01", 7),  # no orders: 0, not unknown
        ("c", "tier", "small", "2026-11-01", 7),
    ]
    # whole numbers are JSON integers
    assert ws.scalar("SELECT CAST(value AS VARCHAR) FROM tags WHERE person_id = 'b' "
                     "AND tag = 'paid_30d'") == "100"
    assert ws.rows("SELECT person_id, city, paid_30d, last_paid_days, tier, cats "
                   "FROM person_features ORDER BY person_id") == [
        {"person_id": "a", "city": None, "paid_30d": 650.5, "last_paid_days": 2,
         "tier": "big", "cats": ["fresh", "daily"]},
        {"person_id": "b", "city": None, "paid_30d": 100.0, "last_paid_days": 1,
         "tier": "small", "cats": ["apparel"]},
        {"person_id": "c", "city": None, "paid_30d": 0.0, "last_paid_days": None,
         "tier": "small", "cats": None}]
    assert ws.rows("SELECT position, tag, kind, category, description, type, "
                   "CAST(levels AS VARCHAR) AS levels, highlight FROM tag_definitions "
                   "ORDER BY position") == [
        {"position": 0, "tag": "paid_30d", "kind": "metric", "category": "value",
         "description": "Paid in the last 30 days", "type": "number", "levels": None,
         "highlight": False},
        {"position": 1, "tag": "last_paid_days", "kind": "last", "category": "other",
         "description": "", "type": "number", "levels": None, "highlight": False},
        {"position": 2, "tag": "tier", "kind": "tiers", "category": "value",
         "description": "", "type": "string", "levels": '["big","small"]', "highlight": True},
        {"position": 3, "tag": "cats", "kind": "top", "category": "preference",
         "description": "", "type": "list", "levels": None, "highlight": False}]
    # The first run records every initial value (old NULL), sorted by person.
    assert ws.execute("SELECT run_id, CAST(as_of AS VARCHAR), person_id, tag, old_value, "
                      "CAST(new_value AS VARCHAR) FROM tag_history").fetchall() == [
        (7, "2026-11-01", "a", "cats", None, '["fresh","daily"]'),
        (7, "2026-11-01", "a", "last_paid_days", None, "2"),
        (7, "2026-11-01", "a", "paid_30d", None, "650.5"),
        (7, "2026-11-01", "a", "tier", None, '"big"'),
        (7, "2026-11-01", "b", "cats", None, '["apparel"]'),
        (7, "2026-11-01", "b", "last_paid_days", None, "1"),
        (7, "2026-11-01", "b", "paid_30d", None, "100"),
        (7, "2026-11-01", "b", "tier", None, '"small"'),
        (7, "2026-11-01", "c", "paid_30d", None, "0"),
        (7, "2026-11-01", "c", "tier", None, '"small"')]
    assert summary["persons"] == 3 and summary["previous"] is None
    assert summary["tags"][2] == {
        "tag": "tier", "kind": "tiers", "category": "value", "type": "string",
        "persons_with_value": 3, "changes": {"added": 0, "removed": 0, "changed": 0},
        "levels": [{"value": "big", "persons": 1, "previous": 0},
                   {"value": "small", "persons": 2, "previous": 0}]}


def test_history_keeps_only_changed_values_of_the_next_run(tmp_path):
    ws = events_ws()
    tag_rules = rules(tmp_path)
    run_tags(ws, tag_rules, AS_OF, run_id=1)
    ws.execute("INSERT INTO events (subject, event_type, ts, amount, category) VALUES "
               "('person:c', 'order_paid', TIMESTAMP '2026-11-01 09:00', 800, 'digital'), "
               "('person:a', 'order_paid', TIMESTAMP '2026-11-01 08:00', 0, 'fresh')")
    summary = run_tags(ws, tag_rules, AS_OF + dt.timedelta(days=2), run_id=2)
    history = ws.rows("SELECT run_id, CAST(as_of AS VARCHAR) AS as_of, person_id, tag, "
                      "CAST(old_value AS VARCHAR) AS old, CAST(new_value AS VARCHAR) AS new "
                      "FROM tag_history WHERE run_id = 2 ORDER BY tag, person_id")
    # b's days since its last order only aged (1 → 3): not a change. a ordered again: its
    # old value is the one aged to today (4), as is the one the portrait shows.
    assert [(h["person_id"], h["tag"], h["old"], h["new"]) for h in history] == [
        ("c", "cats", None, '["digital"]'),
        ("a", "last_paid_days", "4", "2"),
        ("c", "last_paid_days", None, "2"),
        ("c", "paid_30d", "0", "800"),
        ("c", "tier", '"small"', '"big"'),
    ]
    assert {(h["run_id"], h["as_of"]) for h in history} == {(2, "2026-11-03")}
    assert ws.rows("SELECT person_id, last_paid_days FROM person_features "
                   "ORDER BY person_id") == [{"person_id": "a", "last_paid_days": 2},
                                             {"person_id": "b", "last_paid_days": 3},
                                             {"person_id": "c", "last_paid_days": 2}]
    assert summary["previous"] == {"as_of": "2026-11-01", "run_id": 1, "persons": 3}
    assert {t["tag"]: t["changes"] for t in summary["tags"]} == {
        "paid_30d": {"added": 0, "removed": 0, "changed": 1},
        "last_paid_days": {"added": 1, "removed": 0, "changed": 1},
        "tier": {"added": 0, "removed": 0, "changed": 1},
        "cats": {"added": 1, "removed": 0, "changed": 0}}
    assert summary["changes"] == 5


def test_values_are_aged_only_under_the_same_definition(tmp_path):
    # last_paid_days itself changed (a 90-day window): its stored values are not its to
    # age, so every value that differs from the stored one is a change.
    ws = events_ws()
    run_tags(ws, rules(tmp_path), AS_OF, run_id=1)
    run_tags(ws, rules(tmp_path, TAGS.replace("  - name: last_paid_days\n    kind: last\n",
                                              "  - name: last_paid_days\n    kind: last\n"
                                              "    window: 90d\n")),
             AS_OF + dt.timedelta(days=1), run_id=2)
    assert ws.execute("SELECT person_id, CAST(old_value AS VARCHAR), "
                      "CAST(new_value AS VARCHAR) FROM tag_history WHERE run_id = 2 "
                      "AND tag = 'last_paid_days' ORDER BY person_id").fetchall() == [
        ("a", "2", "3"), ("b", "1", "2")]


def test_values_age_when_only_other_tags_changed(tmp_path):
    # paid_30d's window changed, last_paid_days did not: a's value only aged (2 → 4, no
    # row), b ordered again (aged 3 → 1: a change, not hidden by the stored 1).
    ws = events_ws()
    run_tags(ws, rules(tmp_path), AS_OF, run_id=1)
    ws.execute("INSERT INTO events (subject, event_type, ts, amount, category) VALUES "
               "('person:b', 'order_paid', TIMESTAMP '2026-11-02 10:00', 5, 'apparel')")
    run_tags(ws, rules(tmp_path, TAGS.replace("window: 30d", "window: 31d")),
             AS_OF + dt.timedelta(days=2), run_id=2)
    assert [h for h in _history(ws, 2) if h[1] == "last_paid_days"] == [
        ("b", "last_paid_days", "3", "1")]


def test_values_age_when_an_attribute_they_do_not_read_is_declared(tmp_path):
    # declaring `coupon` (for a new tag) changed every tag's definition key: days-since
    # values whose filter does not read it were not aged (a: 2 → 4 recorded as a change)
    ws = events_ws()
    run_tags(ws, rules(tmp_path), AS_OF, run_id=1)
    ws.execute("INSERT INTO events (subject, event_type, ts, amount, category) VALUES "
               "('person:b', 'order_paid', TIMESTAMP '2026-11-02 10:00', 5, 'apparel')")
    run_tags(ws, rules(tmp_path, "event_attributes:\n  coupon: number\n" + TAGS + (
        "  - {name: coupon_orders, kind: metric, event: order_paid, agg: count, "
        "window: 30d, where: coupon >= 10}\n")), AS_OF + dt.timedelta(days=2), run_id=2)
    assert [h for h in _history(ws, 2) if h[1] == "last_paid_days"] == [
        ("b", "last_paid_days", "3", "1")]


def test_values_age_after_a_run_of_another_leadctl_version(tmp_path):
    # An older leadctl stored its state under another key and without per-tag aging keys;
    # tags.yaml is the same file: a's days since its last order only aged (no row), b's
    # new order records the aged old value (3 → 1)
    ws = events_ws()
    run_tags(ws, rules(tmp_path), AS_OF, run_id=1)
    state = json.loads(ws.scalar("SELECT value FROM meta WHERE key = 'tag_state'"))
    older = {k: v for k, v in state.items() if k != "aging"} | {"key": "older"}
    ws.execute("UPDATE meta SET value = ? WHERE key = 'tag_state'", [json.dumps(older)])
    ws.execute("INSERT INTO events (subject, event_type, ts, amount, category) VALUES "
               "('person:b', 'order_paid', TIMESTAMP '2026-11-02 10:00', 5, 'apparel')")
    run_tags(ws, rules(tmp_path), AS_OF + dt.timedelta(days=2), run_id=2)
    assert [h for h in _history(ws, 2) if h[1] == "last_paid_days"] == [
        ("b", "last_paid_days", "3", "1")]


def _night(ws, run_id: int, as_of: dt.date, rules_hash: str, outcome: str) -> None:
    ws.execute("INSERT INTO runs (run_id, command, started_at, as_of, rules_hash, outcome) "
               "VALUES (?, 'run', TIMESTAMP '2026-11-01 02:00', ?, ?, ?)",
               [run_id, as_of, rules_hash, outcome])


@pytest.mark.parametrize("rules_then", ["same", "other"])
def test_values_age_after_a_version_that_kept_no_tags_yaml_hash(tmp_path, rules_then):
    # A version before the meta key tags_rules_hash (2026-12-04) stored neither it nor
    # per-tag aging keys: every days-since value that only aged (b: 1 → 3) was a change.
    # The run log tells the rules folder of that night was the one read now: aged, as
    # after a night of the current version; another folder (other rules): not aged.
    ws = events_ws()
    tag_rules = rules(tmp_path)
    tag_rules.folder_hash = "same"  # the rules folder read now (ruleset: the run log's hash)
    _night(ws, 1, AS_OF, "same", "ok")
    run_tags(ws, tag_rules, AS_OF, run_id=1)
    state = json.loads(ws.scalar("SELECT value FROM meta WHERE key = 'tag_state'"))
    older = {k: v for k, v in state.items() if k != "aging"} | {"key": "older"}
    ws.execute("UPDATE meta SET value = ? WHERE key = 'tag_state'", [json.dumps(older)])
    ws.execute("DELETE FROM meta WHERE key = 'tags_rules_hash'")
    ws.execute("UPDATE runs SET rules_hash = ? WHERE run_id = 1", [rules_then])
    # a dry run (no run of its own in the log) previews what a run records: no event since,
    # so nothing but ageing (same rules: no change; other rules: the aged values)
    preview = run_tags(ws, tag_rules, AS_OF + dt.timedelta(days=2), dry_run=True)
    assert preview["changes"] == {"same": 0, "other": 2}[rules_then]
    ws.execute("INSERT INTO events (subject, event_type, ts, amount, category) VALUES "
               "('person:c', 'order_paid', TIMESTAMP '2026-11-01 09:00', 800, 'digital'), "
               "('person:a', 'order_paid', TIMESTAMP '2026-11-01 08:00', 0, 'fresh')")
    _night(ws, 2, AS_OF + dt.timedelta(days=2), "same", "running")
    summary = run_tags(ws, tag_rules, AS_OF + dt.timedelta(days=2), run_id=2)
    assert summary["changes"] == 5
    # a ordered again: a change from its value aged to today (4 → 2); unaged, the stored
    # 2 hides it
    days = {"same": [("a", "last_paid_days", "4", "2")],
            "other": [("b", "last_paid_days", "1", "3")]}[rules_then]
    assert [h for h in _history(ws, 2) if h[1] == "last_paid_days"] == [
        *days, ("c", "last_paid_days", None, "2")]


def _history(ws, run_id: int) -> list[tuple]:
    return ws.execute("SELECT person_id, tag, CAST(old_value AS VARCHAR), "
                      "CAST(new_value AS VARCHAR) FROM tag_history WHERE run_id = ? "
                      "ORDER BY ALL", [run_id]).fetchall()


def test_values_age_through_a_run_that_cannot_carry_the_stored_ones(tmp_path):
    # An event left (a corrected re-delivery: every person is computed again) and b's
    # order changed; a's days since its last order only aged: no history row for a.
    ws = events_ws()
    run_tags(ws, rules(tmp_path), AS_OF, run_id=1)
    ws.execute("INSERT INTO rejects (kind, reason) VALUES ('events', 'superseded')")
    ws.execute("UPDATE events SET ts = TIMESTAMP '2026-10-29 10:00' WHERE subject = 'person:b'")
    run_tags(ws, rules(tmp_path), AS_OF + dt.timedelta(days=1), run_id=2)
    assert _history(ws, 2) == [("b", "last_paid_days", "2", "4")]


def test_values_age_backwards_when_the_as_of_moves_back(tmp_path):
    # Run 3 is a day before run 2 and brings c's first order: b's value (1 on 11-01, 3 on
    # 11-03) only aged back; a's is the same order, so no change either.
    ws = events_ws()
    run_tags(ws, rules(tmp_path), AS_OF, run_id=1)
    run_tags(ws, rules(tmp_path), AS_OF + dt.timedelta(days=2), run_id=2)
    ws.execute("INSERT INTO events (subject, event_type, ts, amount, category) VALUES "
               "('person:c', 'order_paid', TIMESTAMP '2026-10-31 09:00', 5, 'fresh')")
    run_tags(ws, rules(tmp_path), AS_OF + dt.timedelta(days=1), run_id=3)
    assert _history(ws, 3) == [("c", "cats", None, '["fresh"]'),
                               ("c", "last_paid_days", None, "2"),
                               ("c", "paid_30d", "0", "5")]


def test_a_value_aged_back_past_its_event_is_no_value(tmp_path):
    # As of 10-30 (events before that day), a's last order (10-30 10:00) is not there
    # yet: its stored 2 (as of 11-01) ages to no value, not to 0; its order of 10-20
    # gives 10. b's only order (10-31) is not there either: no value then, no change.
    ws = events_ws()
    run_tags(ws, rules(tmp_path), AS_OF, run_id=1)
    run_tags(ws, rules(tmp_path), dt.date(2026, 10, 30), run_id=2)
    assert [h for h in _history(ws, 2) if h[1] == "last_paid_days"] == [
        ("a", "last_paid_days", None, "10")]


def test_a_value_hidden_by_an_as_of_moved_back_only_ages_when_it_comes_back(tmp_path):
    # As of 10-30, b's order (10-31) is not there yet; as of 11-02 it is again, 2 days
    # after its recorded 1 (as of 11-01): it only aged, no row. a's is a real change from
    # its recorded 10 (as of 10-30) aged to 13.
    ws = events_ws()
    run_tags(ws, rules(tmp_path), AS_OF, run_id=1)
    run_tags(ws, rules(tmp_path), dt.date(2026, 10, 30), run_id=2)
    run_tags(ws, rules(tmp_path), dt.date(2026, 11, 2), run_id=3)
    assert [h for h in _history(ws, 3) if h[1] == "last_paid_days"] == [
        ("a", "last_paid_days", "13", "3")]


def test_a_value_removed_since_is_not_brought_back_by_an_as_of_moved_back(tmp_path):
    # b's only order is withdrawn (run 2: 2 → no value); moving the as-of back and forth
    # since must not find the value recorded before the removal.
    ws = events_ws()
    run_tags(ws, rules(tmp_path), AS_OF, run_id=1)
    ws.execute("INSERT INTO rejects (kind, reason) VALUES ('events', 'superseded')")
    ws.execute("DELETE FROM events WHERE subject = 'person:b'")
    run_tags(ws, rules(tmp_path), dt.date(2026, 11, 2), run_id=2)
    run_tags(ws, rules(tmp_path), dt.date(2026, 10, 30), run_id=3)
    run_tags(ws, rules(tmp_path), dt.date(2026, 11, 3), run_id=4)
    assert [h for h in _history(ws, 2) if h[:2] == ("b", "last_paid_days")] == [
        ("b", "last_paid_days", "2", None)]
    assert [h for h in _history(ws, 4) if h[0] == "b"] == []


def test_dry_run_reports_the_difference_and_stores_nothing(tmp_path):
    ws = events_ws()
    run_tags(ws, rules(tmp_path), AS_OF, run_id=1)
    before = stored(ws)
    changed = rules(tmp_path, TAGS.replace("paid_30d >= 500", "paid_30d >= 50"))
    summary = run_tags(ws, changed, AS_OF, dry_run=True)
    assert summary["dry_run"] is True and summary["run_id"] is None
    tier = next(t for t in summary["tags"] if t["tag"] == "tier")
    assert tier["levels"] == [{"value": "big", "persons": 2, "previous": 1},
                              {"value": "small", "persons": 1, "previous": 2}]
    assert tier["changes"] == {"added": 0, "removed": 0, "changed": 1}
    assert stored(ws) == before
    assert ws.scalar("SELECT count(*) FROM tag_history WHERE run_id <> 1") == 0
    assert ws.scalar("SELECT count(*) FROM information_schema.tables "
                     "WHERE table_name LIKE 'tag_new%' OR table_name = 'tag_compare'") == 0


def test_a_tag_removed_from_the_rules_leaves_history_and_disappears(tmp_path):
    ws = events_ws()
    run_tags(ws, rules(tmp_path), AS_OF, run_id=1)
    without_cats = TAGS[:TAGS.index("  - name: cats")]
    summary = run_tags(ws, rules(tmp_path, without_cats), AS_OF, run_id=2)
    assert summary["removed_tags"] == ["cats"]
    assert ws.rows("SELECT person_id, CAST(old_value AS VARCHAR) AS old, new_value "
                   "FROM tag_history WHERE tag = 'cats' AND run_id = 2 ORDER BY person_id") == [
        {"person_id": "a", "old": '["fresh","daily"]', "new_value": None},
        {"person_id": "b", "old": '["apparel"]', "new_value": None}]
    assert ws.scalar("SELECT count(*) FROM tags WHERE tag = 'cats'") == 0
    assert "cats" not in {r["column_name"] for r in ws.rows(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_name = 'person_features'")}


def test_stored_definitions_give_the_fields_of_the_rules(tmp_path):

    ws = events_ws()
    tag_rules = rules(tmp_path)
    run_tags(ws, tag_rules, AS_OF, run_id=1)
    stored = {r["tag"]: r["type"] for r in ws.rows(
        "SELECT tag, type FROM tag_definitions ORDER BY position")}
    assert {**PERSON_FIELDS, **stored} == tag_rules.fields() == {
        **PERSON_FIELDS, "paid_30d": "number", "last_paid_days": "number", "tier": "string",
        "cats": "list"}


def test_the_summary_counts_persons_per_value_most_frequent_first_ties_by_json(tmp_path):
    ws = workspace(["a", "b", "c", "d"], [
        ("a", "order_paid", "2026-10-30 10:00", 300, "fresh", 2),
        ("a", "order_paid", "2026-10-20 10:00", 50.5, "daily", 1),
        ("b", "order_paid", "2026-10-31 10:00", 100, "apparel", 1),
        ("c", "order_paid", "2026-10-31 10:00", 10, "toys", 1),
        ("d", "order_paid", "2026-10-29 10:00", 20, "apparel", 1),
    ])
    summary = run_tags(ws, rules(tmp_path), AS_OF, run_id=1)
    cats = next(t for t in summary["tags"] if t["tag"] == "cats")
    assert cats["top_values"] == [{"value": ["apparel"], "persons": 2},
                                  {"value": ["fresh", "daily"], "persons": 1},
                                  {"value": ["toys"], "persons": 1}]


def test_zoned_date_and_timestamp_attributes_are_read_in_the_workspace_time_zone(tmp_path):
    # 2026-10-31T16:30:00+00:00 is 11-01 00:30 in Shanghai: after 11-01 as a timestamp
    # and as a date, as the same text is as an event's ts
    tags = ("event_attributes: {paid_at: timestamp, paid_day: date}\ntags:\n"
            "  - {name: by_at, kind: metric, event: order_paid, agg: count,"
            " where: \"paid_at >= '2026-11-01'\"}\n"
            "  - {name: by_day, kind: metric, event: order_paid, agg: count,"
            " where: \"paid_day >= '2026-11-01'\"}\n")
    ws = events_ws()
    zoned = "2026-10-31T16:30:00+00:00"
    ws.execute("UPDATE events SET attributes = ? WHERE subject = 'person:b'",
               [f'{{"paid_at": "{zoned}", "paid_day": "{zoned}"}}'])
    run_tags(ws, rules(tmp_path, tags), AS_OF + dt.timedelta(days=1), run_id=1)
    assert ws.rows("SELECT person_id, by_at, by_day FROM person_features "
                   "ORDER BY person_id") == [
        {"person_id": "a", "by_at": 0, "by_day": 0}, {"person_id": "b", "by_at": 1, "by_day": 1},
        {"person_id": "c", "by_at": 0, "by_day": 0}]


def test_a_number_attribute_that_is_nan_or_infinite_is_no_number(tmp_path):
    """A declared number attribute read NaN ('NaN', a float column's own) as a number, and
    NaN passes every threshold in DuckDB: `coupon > 100` held for it. NaN and ±infinity
    are no number now (NULL), as they are no amount at ingest."""
    tags = ("event_attributes: {coupon: number}\ntags:\n"
            "  - {name: big_coupons, kind: metric, event: order_paid, agg: count,"
            " where: \"coupon > 100\"}\n"
            "  - {name: coupon_sum, kind: metric, event: order_paid, agg: sum,"
            " field: coupon}\n"
            "  - {name: top_coupon, kind: metric, event: order_paid, agg: max,"
            " field: coupon}\n")
    ws = events_ws()  # a: two kinds of order (1 + 2 rows), b: one
    ws.execute("""UPDATE events SET attributes = CASE WHEN subject = 'person:b' THEN
                  '{"coupon": "150"}' WHEN category = 'daily' THEN '{"coupon": "NaN"}'
                  ELSE '{"coupon": "1e400"}' END""")
    run_tags(ws, rules(tmp_path, tags), AS_OF, run_id=1)
    assert ws.rows("SELECT person_id, big_coupons, coupon_sum, top_coupon "
                   "FROM person_features ORDER BY person_id") == [
        {"person_id": "a", "big_coupons": 0, "coupon_sum": 0.0, "top_coupon": None},
        {"person_id": "b", "big_coupons": 1, "coupon_sum": 150.0, "top_coupon": 150.0},
        {"person_id": "c", "big_coupons": 0, "coupon_sum": 0.0, "top_coupon": None}]


@pytest.mark.parametrize(("b", "daily", "other", "sums"), [
    # `1_000` (DuckDB's cast reads 1000, Spark's none) and `2.5d` (Spark's Java cast reads
    # 2.5, DuckDB's none) are no number on either engine; `1e3` is, spaces around it too
    ("1_000", "2.5d", " 1e3 ", (2000.0, 0.0)),
    # `1,234.50` was no number (plain numbers only) while the same text is an amount; a
    # decimal comma `12,5` stays no number
    ("1,234.50", "12,5", " -1,000 ", (-2000.0, 1234.5))])
def test_a_number_attribute_reads_a_number_as_an_amount_does(tmp_path, b, daily, other,
                                                             sums):
    tags = ("event_attributes: {coupon: number}\ntags:\n"
            "  - {name: coupon_sum, kind: metric, event: order_paid, agg: sum,"
            " field: coupon}\n")
    ws = events_ws()  # a: two kinds of order (1 + 2 rows), b: one
    ws.execute("""UPDATE events SET attributes = CASE WHEN subject = 'person:b' THEN
                  json_object('coupon', ?) WHEN category = 'daily' THEN json_object('coupon', ?)
                  ELSE json_object('coupon', ?) END""", [b, daily, other])
    run_tags(ws, rules(tmp_path, tags), AS_OF, run_id=1)
    assert ws.rows("SELECT person_id, coupon_sum FROM person_features "
                   "ORDER BY person_id") == [
        {"person_id": "a", "coupon_sum": sums[0]}, {"person_id": "b", "coupon_sum": sums[1]},
        {"person_id": "c", "coupon_sum": 0.0}]


def test_number_stats_keep_a_large_double_and_average_without_overflow(tmp_path):
    # int(1.5e308) printed 309 made-up digits; avg of 1e308 and 1.5e308 was infinity
    tags = ("event_attributes: {coupon: number}\ntags:\n"
            "  - {name: top_coupon, kind: metric, event: order_paid, agg: max,"
            " field: coupon}\n")
    ws = events_ws()
    ws.execute("""UPDATE events SET attributes = CASE WHEN subject = 'person:b' THEN
                  '{"coupon": "1.5e308"}' ELSE '{"coupon": "1e308"}' END""")
    summary = run_tags(ws, rules(tmp_path, tags), AS_OF, run_id=1)
    stats = next(t for t in summary["tags"] if t["tag"] == "top_coupon")["stats"]
    assert stats == {"min": 1e308, "avg": 1.25e308, "max": 1.5e308}
    assert isinstance(stats["min"], float)


@pytest.mark.parametrize("command", ["tag", "run --engine spark"])
def test_a_stored_run_that_has_no_value_at_all_is_still_the_previous_run(tmp_path, command):
    # Leads without events yet: the first run stored no value (`tags` has no row), and the
    # next run said there was no previous run and counted no change it recorded. (A Spark
    # night's state carries its run log, its rows logged as `run --engine spark`.)
    ws = workspace(["a", "b"], [])
    ws.execute("INSERT INTO runs (run_id, command, started_at, as_of, outcome) "
               "VALUES (1, ?, now(), DATE '2026-11-01', 'ok')", [command])
    only_events = rules(tmp_path, "tags:\n" + TAGS[TAGS.index("  - name: last_paid"):
                                                     TAGS.index("  - name: tier")]
                        + TAGS[TAGS.index("  - name: cats"):])
    run_tags(ws, only_events, AS_OF, run_id=1)
    ws.execute("INSERT INTO events (subject, event_type, ts, amount, category) VALUES "
               "('person:a', 'order_paid', TIMESTAMP '2026-11-01 09:00', 80, 'fresh')")
    summary = run_tags(ws, only_events, AS_OF + dt.timedelta(days=1), run_id=2)
    assert summary["previous"] == {"as_of": "2026-11-01", "run_id": 1, "persons": 2}
    assert {t["tag"]: t["changes"]["added"] for t in summary["tags"]} == {
        "last_paid_days": 1, "cats": 1}
    assert summary["changes"] == 2
    assert ws.scalar("SELECT count(*) FROM tag_history WHERE run_id = 2") == 2
