"""Incremental nights equal full ones, night after night: new events, windows sliding at
the day boundary, events entering from the future, identity merges, a rerun on the same
day and a jump of several days. Two workspaces get the same nights, one with `--full`;
every result table (identity, tags, scores, routing) must be identical, row for row."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import duckdb
import pytest

from leadctl.tagging import incremental as tag_incremental
from leadctl.tagging.stage import NEW_FEATURES, StoredTag, compare_sql, history_sql
from tests.conftest import RULES, SAMPLE_INBOX, Cli

HELD_BACK = "agent_list.csv"  # its leads arrive on night 4 and bridge existing persons
# (as-of, events of [from, to) delivered that night; None: no events file)
NIGHTS = [
    ("2026-10-20", (None, "2026-10-20")),
    ("2026-10-21", ("2026-10-20", "2026-10-25")),  # events of later days wait in the base
    ("2026-10-21", None),  # the same day again: nothing to recompute
    ("2026-10-28", ("2026-10-25", "2026-11-03")),  # a week later, with the held-back leads
    ("2026-11-02", None),
]
COMPARED = {
    **{table: f"SELECT * FROM {table} ORDER BY ALL" for table in (
        "lead_identifiers", "blocked_identifiers", "person_leads", "persons", "person_aliases",
        "subject_persons", "event_subjects", "person_features", "tag_event_state",
        "score_breakdown", "ownership", "lead_intent")},
    "identity_history": "SELECT * EXCLUDE (changed_at) FROM identity_history ORDER BY ALL",
    "assignments": "SELECT * EXCLUDE (logged_at) FROM assignments ORDER BY ALL",
    "tag_history": "SELECT * EXCLUDE (run_id) FROM tag_history ORDER BY ALL",
    "tags": "SELECT person_id, tag, CAST(value AS VARCHAR), as_of FROM tags ORDER BY ALL",
    "scores": "SELECT * EXCLUDE (run_id) FROM scores ORDER BY ALL",
}


def _inboxes(root: Path) -> list[Path | None]:
    """One inbox folder per night (None: nothing delivered): leads on nights 1 and 4,
    events split by day."""
    folders = []
    for night, (_, window) in enumerate(NIGHTS, start=1):
        folder = root / f"night{night}"
        folder.mkdir()
        if night == 1:
            for path in SAMPLE_INBOX.iterdir():
                if path.name not in (HELD_BACK, "events.parquet"):
                    shutil.copy(path, folder / path.name)
        if night == 4:
            shutil.copy(SAMPLE_INBOX / HELD_BACK, folder / HELD_BACK)
        if window is not None:
            start, end = window
            where = (f"ts < TIMESTAMP '{end}'" if start is None else
                     f"ts >= TIMESTAMP '{start}' AND ts < TIMESTAMP '{end}'")
            duckdb.execute(f"COPY (SELECT * FROM '{SAMPLE_INBOX / 'events.parquet'}' "
                           f"WHERE {where}) TO '{folder / 'events.parquet'}'")
        folders.append(folder if any(folder.iterdir()) else None)
    return folders


def _tables(db: Path) -> dict[str, list]:
    with duckdb.connect(str(db), read_only=True) as con:
        return {name: con.execute(sql).fetchall() for name, sql in COMPARED.items()}


def _run_nights(root: Path, work_share: float, count: int = len(NIGHTS),
                rules: Path = RULES) -> list[tuple[dict, dict, dict, dict]]:
    """Per night: (incremental run summary, full run summary, tables of each)."""
    incremental = Cli(root / "incremental.duckdb", rules)
    full = Cli(root / "full.duckdb", rules)
    out = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tag_incremental, "MAX_WORK_SHARE", work_share)
        for (as_of, _), inbox in list(zip(NIGHTS, _inboxes(root), strict=True))[:count]:
            args = ["run", "--as-of", as_of, "--json"] + (["--inbox", str(inbox)]
                                                          if inbox else [])
            a, b = incremental(*args), full(*args, "--full")
            assert (a.exit_code, b.exit_code) == (0, 0), a.stderr + b.stderr
            out.append((a.json(), b.json(), _tables(incremental.db), _tables(full.db)))
    return out


@pytest.fixture(scope="module")
def nights(tmp_path_factory) -> list[tuple[dict, dict, dict, dict]]:
    """The nights with the incremental tag path taken whatever share it touches (the
    sample is small: most of its persons have news every night)."""
    return _run_nights(tmp_path_factory.mktemp("nights"), work_share=1e9)


@pytest.mark.parametrize("night", range(1, len(NIGHTS) + 1))
def test_every_tag_table_equals_a_full_run(nights, night):
    _, _, tables, expected = nights[night - 1]
    for name in COMPARED:
        assert tables[name] == expected[name], f"night {night}: {name} differs"


def test_only_the_first_night_and_full_runs_compute_everyone(nights):
    recomputed = [(a["stages"]["tag"]["recomputed"], b["stages"]["tag"]["recomputed"])
                  for a, b, _, _ in nights]
    persons = [a["stages"]["tag"]["persons"] for a, _, _, _ in nights]
    assert [r["incremental"] for r, _ in recomputed] == [False, True, True, True, True]
    assert [f["incremental"] for _, f in recomputed] == [False] * len(NIGHTS)
    assert [r["events_pass"] for r, _ in recomputed] == ["full"] + ["folded"] * 4
    assert {f["events_pass"] for _, f in recomputed} == {"full"}
    assert [f["persons"] for _, f in recomputed] == persons
    # The rerun on the same day touches nobody; the others only some persons.
    assert recomputed[2][0]["persons"] == 0
    assert all(0 < r["persons"] < p for (r, _), p in zip(recomputed, persons, strict=True)
               if r is not recomputed[2][0] and r is not recomputed[0][0])


def test_only_the_leads_the_news_touches_are_linked_again(nights):
    relinked = [(a["stages"]["resolve"]["relinked_leads"], a["stages"]["resolve"]["leads"])
                for a, _, _, _ in nights]
    full = [b["stages"]["resolve"]["relinked_leads"] for _, b, _, _ in nights]
    assert full == [leads for _, leads in relinked]
    assert relinked[0][0] == relinked[0][1]  # nothing to start from
    assert [r for r, _ in relinked[1:3]] == [0, 0]  # events only, then nothing at all
    assert 0 < relinked[3][0] < relinked[3][1]  # the held-back leads and their persons
    assert relinked[4][0] == 0


def test_the_nights_change_something(nights):
    """The sequence exercises what it claims: merges on night 4, values moving each night."""
    for run in (0, 1):  # incremental, full
        assert [n[run]["stages"]["resolve"]["merges"] for n in nights] == [0, 0, 0, 4, 0]
        assert [n[run]["stages"]["tag"]["changes"] for n in nights] == [
            0, 2523, 0, 12306, 9146]


def test_past_the_work_share_the_other_passes_run_for_everyone(tmp_path):
    """The sample's second night recomputes 612 of its 1,445 persons (42%): incremental
    under the default share (half), for everyone under a quarter, equal to --full both
    ways."""
    (tmp_path / "half").mkdir(), (tmp_path / "quarter").mkdir()
    _, half = _run_nights(tmp_path / "half", tag_incremental.MAX_WORK_SHARE, count=2)
    _, quarter = _run_nights(tmp_path / "quarter", 0.25, count=2)
    assert half[0]["stages"]["tag"]["recomputed"] == {
        "incremental": True, "persons": 612, "events_pass": "folded"}
    assert quarter[0]["stages"]["tag"]["recomputed"] == {
        "incremental": False, "persons": 1445, "events_pass": "folded"}
    assert half[2] == half[3] == quarter[2] == quarter[3]


# Every partial of the shared events pass in a short window: minimums and maximums whose
# events leave (those persons are recomputed), a bitmask the 7-day jump of night 4 empties,
# a count and an average under a filter, the time of the last event in a window.
WINDOWED_TAGS = """
  - {name: biggest_order_7d, kind: metric, event: order_paid, agg: max, field: amount,
     window: 7d}
  - {name: smallest_order_3d, kind: metric, event: order_paid, agg: min, field: amount,
     window: 3d}
  - {name: days_since_first_login_5d, kind: first, event: login, window: 5d}
  - {name: days_since_last_view_2d, kind: last, event: page_view, window: 2d}
  - {name: last_order_time_4d, kind: last, event: order_paid, value: ts, window: 4d}
  - {name: login_days_7d, kind: active_days, event: login, window: 7d}
  - {name: big_orders_3d, kind: metric, event: order_paid, agg: count, window: 3d,
     where: amount > 300}
  - {name: avg_big_order_5d, kind: metric, event: order_paid, agg: avg, field: amount,
     window: 5d, where: amount > 300}
"""


def test_partials_of_every_kind_fold_to_a_full_run(tmp_path):
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    (rules / "tags.yaml").write_text((RULES / "tags.yaml").read_text() + WINDOWED_TAGS)
    nights = _run_nights(tmp_path, work_share=1e9, rules=rules)
    for night, (summary, _, tables, expected) in enumerate(nights, start=1):
        assert summary["stages"]["tag"]["recomputed"]["events_pass"] == (
            "full" if night == 1 else "folded")
        for name in ("person_features", "tag_event_state", "tag_history"):
            assert tables[name] == expected[name], f"night {night}: {name} differs"
    with duckdb.connect(str(tmp_path / "incremental.duckdb"), read_only=True) as con:
        with_values = con.execute(
            "SELECT count(biggest_order_7d), count(days_since_first_login_5d), "
            "count(last_order_time_4d), count(*) FILTER (WHERE login_days_7d > 0) "
            "FROM person_features").fetchone()
    assert min(with_values) > 0


def test_an_event_filter_reading_the_as_of_is_read_from_raw_events_as_rules_check_says(
        tmp_path):
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    (rules / "tags.yaml").write_text(
        (RULES / "tags.yaml").read_text()
        + "  - {name: orders_after_a_day, kind: metric, event: order_paid, agg: count,\n"
          "     where: days_since(ts) >= 1}\n")
    nightly = Cli(tmp_path / "check.duckdb", rules)("rules", "check", "--json").json()["nightly"]
    assert nightly["folded"] == []
    assert nightly["from_raw_events"][0] == {
        "tag": "paid_orders_7d", "reason": "the event filter of 'orders_after_a_day' reads "
                                           "the as-of date (a window: is folded)"}
    nights = _run_nights(tmp_path, work_share=1e9, count=2, rules=rules)
    assert [n[0]["stages"]["tag"]["recomputed"]["events_pass"] for n in nights] == [
        "full", "full"]
    assert nights[1][2]["person_features"] == nights[1][3]["person_features"]


def test_every_history_form_stores_the_sorted_rows_in_the_same_order():
    """With many changes, DuckDB's history insert sorts the compare rows by person and
    unnests each person's changes, with no sort of the history rows; Spark stores a
    night's changes before sorting them: at 400k persons (parallel scans) the stored rows
    and their order are those of the sorted UNION ALL."""

    con = duckdb.connect()
    con.execute("CREATE TABLE tag_history (run_id INTEGER, as_of DATE, person_id VARCHAR, "
                "tag VARCHAR, old_value JSON, new_value JSON)")
    con.execute(f"""CREATE TABLE {NEW_FEATURES} AS
        SELECT 'P' || md5(i::VARCHAR)[:12] AS person_id,
               CASE WHEN i % 3 > 0 THEN i % 7 END AS visits,
               CASE WHEN i % 5 > 0 THEN ['a', 'b'][:i % 3] END AS top,
               CASE WHEN i % 4 > 0 THEN 'tier ' || i % 2 END AS b_tier
        FROM range(400000) t(i)""")
    con.execute(f"""CREATE TABLE person_features AS
        SELECT person_id, CASE WHEN i % 10 < 7 THEN visits ELSE 2 END AS visits, top,
               CASE WHEN i % 2 = 0 THEN 'tier 1' END AS b_tier
        FROM (SELECT *, row_number() OVER () AS i FROM {NEW_FEATURES}) WHERE i % 10 > 0""")
    tags = [StoredTag("visits", "number", "BIGINT"), StoredTag("top", "list", "VARCHAR[]"),
            StoredTag("b_tier", "text", "VARCHAR")]
    con.execute(compare_sql(tags, tags))
    stored = {}
    for form in ("person order", "sorted", "staged"):
        con.execute("DELETE FROM tag_history")
        for statement in history_sql(tags, tags, dt.date(2026, 11, 1), 2,
                                     in_person_order=form == "person order",
                                     staged=form == "staged"):
            con.execute(statement)
        stored[form] = con.execute("SELECT * FROM tag_history").fetchall()
    assert stored["person order"] == stored["sorted"] == stored["staged"]
    assert len(stored["sorted"]) > 300_000
    assert {r[3] for r in stored["sorted"]} == {"visits", "top", "b_tier"}
    assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = "
                       "'tag_history_changes'").fetchone() == (0,)


def test_subjects_a_full_resolve_moves_reach_the_folded_tags(tmp_path):
    """Identity rules change between nights (a lower cap: shared values stop linking), so
    resolve rebuilds subject_persons in full while the tag rules, and so the folded tag
    state, stay: the moved subjects it logs are what the tags recompute."""
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    inboxes = _inboxes(tmp_path)
    incremental = Cli(tmp_path / "incremental.duckdb", rules)
    full = Cli(tmp_path / "full.duckdb", rules)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tag_incremental, "MAX_WORK_SHARE", 1e9)
        for night, ((as_of, _), inbox) in enumerate(zip(NIGHTS[:2], inboxes[:2], strict=True),
                                                 start=1):
            if night == 2:
                identity = rules / "identity.yaml"
                identity.write_text(identity.read_text().replace(
                    "max_records_per_value: 20", "max_records_per_value: 2"))
            args = ["run", "--as-of", as_of, "--inbox", str(inbox), "--json"]
            a, b = incremental(*args), full(*args, "--full")
            assert (a.exit_code, b.exit_code) == (0, 0), a.stderr + b.stderr
    resolved, tagged = a.json()["stages"]["resolve"], a.json()["stages"]["tag"]
    assert resolved["splits"] > 0 and resolved["relinked_leads"] == resolved["leads"]
    assert tagged["recomputed"]["events_pass"] == "folded"
    assert _tables(incremental.db) == _tables(full.db)
    with duckdb.connect(str(incremental.db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM subject_moves").fetchone() == (0,)
        # No renamed working table left behind, no copy of subject_persons kept.
        assert con.execute("SELECT list(table_name ORDER BY table_name) FROM "
                           "information_schema.tables WHERE table_name LIKE '%subject%'"
                           ).fetchone()[0] == ["event_subjects", "subject_keys",
                                               "subject_moves", "subject_persons"]
