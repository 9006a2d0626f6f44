"""EQUIVALENCE: night after night, incremental tags (daily rollups folded night by night,
event tags recomputed for affected persons only) give exactly what a full rebuild gives
on the same data — person_features, tags, tag_history, and what scoring and routing make
of them, row for row.

Each night brings new leads (some merging two persons, some a new person), events of the
new day, late events of older days, events on the as-of day itself (counted only the
next night), and moves the as-of forward, so events slide out of the 7/30/90/180-day
windows; one night skips a day, one repeats the as-of."""

from __future__ import annotations

import datetime as dt
import functools
import random

import pytest

from leadctl import pipeline
from leadctl.pipeline import RunOptions, run_nightly
from leadctl.tagging.incremental import FEATURES, STATE
from leadctl.tagging.parse import load_tag_rules
from leadctl.tagging.rollup import ROLLUPS
from leadctl.tagging.stage import run_tags
from leadctl.workspace import reading
from tests.conftest import RULES
from tests.test_tagging_seed import workspace

START = dt.date(2026, 11, 1)
PERSONS = 150
# as-of of each night (a skipped day, a repeated night)
NIGHTS = [START, START + dt.timedelta(days=1), START + dt.timedelta(days=2),
          START + dt.timedelta(days=4), START + dt.timedelta(days=4),
          START + dt.timedelta(days=5)]
COMPARED = {
    "person_features": "SELECT * FROM person_features ORDER BY person_id",
    "tags": "SELECT person_id, tag, CAST(value AS VARCHAR), as_of FROM tags ORDER BY ALL",
    "tag_history": "SELECT as_of, person_id, tag, CAST(old_value AS VARCHAR), "
                   "CAST(new_value AS VARCHAR) FROM tag_history ORDER BY ALL",
    "tag_event_features": f"SELECT * FROM {FEATURES} ORDER BY person_id",
    "persons": "SELECT person_id, lead_count FROM persons ORDER BY ALL",
    "scores": "SELECT * EXCLUDE (run_id) FROM scores ORDER BY ALL",
}


def phone(i: int) -> str:
    return f"13{5 + i % 4}{i + 1000:08d}"


def write_night(folder, night: int, as_of: dt.date, rng: random.Random) -> None:
    """Leads and events files of one night (one person per phone; merges via e-mail)."""
    folder.mkdir(parents=True, exist_ok=True)
    lead_rows = ["lead_id,phone,email,created_at,city"]
    first = 0 if night == 0 else PERSONS + 4 * night
    count = PERSONS if night == 0 else 4
    for i in range(first, first + count):
        lead_rows.append(f"L{i},{phone(i)},u{i}@qq.com,{as_of - dt.timedelta(days=1)} 09:00,"
                         f"{rng.choice(['上海', '北京', ''])}")
    if night:  # a lead joining two existing persons: phone of one, e-mail of another
        a, b = rng.sample(range(PERSONS), 2)
        lead_rows.append(f"M{night},{phone(a)},u{b}@qq.com,{as_of - dt.timedelta(days=1)} "
                         "10:00,")
    (folder / f"leads_{night}.csv").write_text("\n".join(lead_rows) + "\n", encoding="utf-8")
    persons = first + count
    event_rows = ["phone,event_type,ts,amount,category"]
    # night 0: 200 days of history; later: the last complete day, late events, as-of day
    days = range(1, 200) if night == 0 else [1, 1, 1, rng.randint(2, 200), 0]
    for _ in range(1500 if night == 0 else 25):
        day = rng.choice(days)
        ts = dt.datetime.combine(as_of - dt.timedelta(days=day), dt.time()) + dt.timedelta(
            seconds=rng.choice([0, 86399, rng.randint(0, 86399)]))
        kind = rng.choice(["order_paid", "order_paid", "login", "page_view", "form_submit"])
        amount = rng.choice(["100", "150.25", "300", "300.5", "2000"]) \
            if kind == "order_paid" else ""
        category = rng.choice(["fresh", "daily", "apparel", "digital"]) \
            if kind == "order_paid" else ""
        event_rows.append(f"{phone(rng.randrange(persons))},{kind},{ts},{amount},{category}")
    if night == 0:  # persons whose only events slide out of a window during the nights
        for k, (window, kind) in enumerate([(7, "order_paid"), (30, "login"),
                                            (90, "order_paid"), (180, "order_paid")]):
            for back in range(window - 4, window + 1):
                ts = dt.datetime.combine(as_of - dt.timedelta(days=back), dt.time(12))
                event_rows.append(f"{phone(PERSONS - 1 - k)},{kind},{ts},120,fresh")
    (folder / f"events_{night}.csv").write_text("\n".join(event_rows) + "\n",
                                                encoding="utf-8")


def snapshot(db) -> dict[str, list[tuple]]:
    with reading(db) as ws:
        return {name: [tuple(r.values()) for r in ws.rows(sql)]
                for name, sql in COMPARED.items()}


@pytest.fixture
def nights(tmp_path):
    rng = random.Random(17)
    folders = []
    for night, as_of in enumerate(NIGHTS):
        folder = tmp_path / "inbox" / f"night{night}"
        if night != 4:  # the repeated as-of brings no new files
            write_night(folder, night, as_of, rng)
        else:
            folder.mkdir(parents=True)
        folders.append(folder)
    return folders


def test_night_after_night_incremental_equals_full_rebuild(tmp_path, nights, monkeypatch):
    incremental_db, full_db = tmp_path / "incr.duckdb", tmp_path / "full.duckdb"
    modes = []
    for night, (folder, as_of) in enumerate(zip(nights, NIGHTS, strict=True)):
        inbox = [str(folder)] if any(folder.iterdir()) else []
        options = RunOptions(rules_dir=RULES, as_of=as_of, inbox=inbox)
        with monkeypatch.context() as m:
            m.setattr(pipeline, "run_tags", functools.partial(run_tags, incremental=False))
            full = run_nightly(full_db, options)
        incremental = run_nightly(incremental_db, options)
        assert full["stages"]["tag"]["event_tags_from"]["mode"] == "full"
        modes.append(incremental["stages"]["tag"]["event_tags_from"])
        expected, got = snapshot(full_db), snapshot(incremental_db)
        for table in COMPARED:
            assert got[table] == expected[table], f"night {night}: {table} differs"
        assert expected["tag_history"], "tag history is compared"
    assert [m["mode"] for m in modes] == ["full"] + ["incremental"] * 5
    # Only some persons were recomputed on the incremental nights.
    persons = len(snapshot(incremental_db)["persons"])
    assert all(0 < m["affected_persons"] < persons for m in modes[1:4]), modes
    assert modes[4]["folded_files"] == 0


def test_a_rule_change_recomputes_every_person(tmp_path, nights):
    db = tmp_path / "ws.duckdb"
    run_nightly(db, RunOptions(rules_dir=RULES, as_of=NIGHTS[0], inbox=[str(nights[0])]))
    rules = tmp_path / "rules"
    rules.mkdir()
    for f in RULES.glob("*.yaml"):
        text = f.read_text(encoding="utf-8")
        (rules / f.name).write_text(text.replace("window: 7d", "window: 8d"), encoding="utf-8")
    second = run_nightly(db, RunOptions(rules_dir=rules, as_of=NIGHTS[1],
                                        inbox=[str(nights[1])]))
    # a longer window: the same rollups (the night's file folded in), every person anew
    assert second["stages"]["tag"]["event_tags_from"] == {"mode": "full", "folded_files": 1}
    with reading(db) as ws:
        assert ws.scalar(f"SELECT as_of FROM {STATE}") == NIGHTS[1]


def test_what_does_not_fit_the_stored_state_recomputes_every_person():
    rules = load_tag_rules(RULES)
    ws = workspace(["a", "b"], [("a", "order_paid", "2026-10-30 10:00", 300, "fresh", 2),
                                ("b", "login", "2026-10-31 10:00", None, None, 1)])

    def mode(as_of, run_id):
        return run_tags(ws, rules, as_of, run_id=run_id)["event_tags_from"]

    assert mode(START, 1) == {"mode": "full", "folded_files": 1}
    assert mode(START + dt.timedelta(days=1), 2)["mode"] == "incremental"
    assert mode(START, 3)["mode"] == "full"  # an earlier as-of
    # events of a folded file changed: the rollups are rebuilt from every event
    ws.execute("DELETE FROM events WHERE subject = 'person:b'")
    assert mode(START, 4) == {"mode": "full", "folded_files": 1}
    assert ws.scalar(f"SELECT count(*) FROM {ROLLUPS}") == 1
    assert mode(START, 4)["mode"] == "incremental"
    ws.execute("INSERT INTO runs (run_id, command) VALUES (5, 'load-results')")
    assert mode(START, 6)["mode"] == "full"  # Spark results loaded since
    assert mode(START, 7)["mode"] == "incremental"
    assert ws.scalar("SELECT login_days_30d FROM person_features WHERE person_id = 'b'") == 0
