"""The workspace's clock (leadctl/clock.py): "today" (the default as-of) and every stamp
(ingest, rejects, run log, identity history, routing log) are wall-clock times of the
workspace time zone, whatever the machine's zone. Here the workspace is in
Pacific/Kiritimati (UTC+14) and the machine in Pacific/Pago_Pago (UTC-11): at the frozen
instant 2026-12-06 22:30 UTC it is 12-07 12:30 in the workspace and 12-06 11:30 on the
machine."""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import shutil
import time

import duckdb
import pytest

from leadctl import clock, workspace
from tests.conftest import RULES, Cli, write
from tests.test_rep_actions import _fake_spark_output

NOW = dt.datetime(2026, 12, 6, 22, 30, tzinfo=dt.UTC)
WALL = dt.datetime(2026, 12, 7, 12, 30)  # NOW in Pacific/Kiritimati


@pytest.fixture
def machine_elsewhere(monkeypatch):
    """The machine in Pacific/Pago_Pago (restored afterwards), the clock frozen at NOW."""
    monkeypatch.setenv("TZ", "Pacific/Pago_Pago")
    time.tzset()
    monkeypatch.setattr(clock, "utc_now", lambda: NOW)
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def kiritimati(tmp_path, machine_elsewhere) -> Cli:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    sources = rules / "sources.yaml"
    sources.write_text(sources.read_text(encoding="utf-8").replace(
        "timezone: Asia/Shanghai", "timezone: Pacific/Kiritimati"), encoding="utf-8")
    return Cli(tmp_path / "ws.duckdb", rules)


def _inbox(tmp_path, name: str, text: str):
    folder = tmp_path / name
    folder.mkdir()
    write(folder / "web.csv", text)
    return folder


def _one(cli: Cli, sql: str):
    with duckdb.connect(str(cli.db), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_wall_clock_is_the_zone_s_not_the_machine_s(machine_elsewhere):
    assert clock.wall_clock_now("Pacific/Kiritimati") == WALL
    assert clock.today("Pacific/Kiritimati") == dt.date(2026, 12, 7)
    assert clock.today("Asia/Shanghai") == dt.date(2026, 12, 7)  # 06:30
    assert clock.today("UTC") == dt.date(2026, 12, 6)


def test_default_as_of_is_today_in_the_workspace_zone(kiritimati, tmp_path):
    inbox = _inbox(tmp_path, "inbox", "lead_id,name,phone,created_at\n"
                   "W1,Ann,13900000001,\nW2,Bob,13900000002,2026-12-01 10:00:00\n")
    result = kiritimati("run", "--inbox", inbox, "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json()["as_of"] == "2026-12-07"
    # W1 (no created_at) arrived at its ingest time, 12-07 12:30: not after the as-of
    channels = kiritimati("report", "channels", "--json").json()
    assert (channels["as_of"], [(c["channel"], c["leads"]) for c in channels["channels"]
                                if c["leads"]]) == ("2026-12-07", [("web", 2)])
    portrait = kiritimati("portrait", "13900000001", "--json").json()
    assert (portrait["as_of"], portrait["as_of_differs"], portrait["identity_as_of"]) == (
        "2026-12-07", [], None)
    assert _one(kiritimati, "SELECT command, as_of FROM runs") == [
        ("run", dt.date(2026, 12, 7))]


def test_a_screen_before_any_tag_run_is_today_in_the_stored_zone(kiritimati, tmp_path):
    inbox = _inbox(tmp_path, "inbox", "lead_id,name,phone\nW1,Ann,13900000001\n")
    assert kiritimati("ingest", inbox).exit_code == 0
    data = kiritimati("report", "channels", "--json").json()
    assert (data["as_of"], data["as_of_source"]) == ("2026-12-07", "today")


def test_stamps_are_wall_clock_times_of_the_workspace_zone(kiritimati, tmp_path):
    # W3 has no identifier: rejected; W4 joins W1 and W2 in the second run: a merge
    first = _inbox(tmp_path, "first", "lead_id,name,phone,email\n"
                   "W1,Ann,13900000001,\nW2,Ann,,ann@example.com\nW3,Cy,,\n")
    second = _inbox(tmp_path, "second", "lead_id,name,phone,email\n"
                    "W4,Ann,13900000001,ann@example.com\n")
    for inbox in (first, second):
        result = kiritimati("run", "--inbox", inbox, "--max-reject-share", "1")
        assert result.exit_code == 0, result.stderr
    assert _one(kiritimati, "SELECT DISTINCT ingested_at FROM ingested_files") == [(WALL,)]
    assert _one(kiritimati, "SELECT rejected_at, reason FROM rejects") == [
        (WALL, "no_identifier")]
    assert _one(kiritimati, "SELECT DISTINCT started_at, ended_at FROM runs") == [
        (WALL, WALL)]
    assert _one(kiritimati, "SELECT changed_at, change FROM identity_history") == [
        (WALL, "merge")]
    # (a frozen clock: a row after another of its date is stamped a microsecond later)
    assert _one(kiritimati, "SELECT DISTINCT date_trunc('second', logged_at) "
                            "FROM assignments") == [(WALL,)]


def test_rep_actions_default_to_today_in_the_workspace_zone(kiritimati, tmp_path):
    inbox = _inbox(tmp_path, "inbox", "lead_id,name,phone\nW1,Ann,13900000001\n")
    assert kiritimati("run", "--inbox", inbox).exit_code == 0
    result = kiritimati("sale", "W1", "--rep", "rep_wang", "--json")
    assert result.exit_code == 0, result.stderr
    assert _one(kiritimati, "SELECT command, as_of, started_at FROM runs ORDER BY run_id") \
        == [("run", dt.date(2026, 12, 7), WALL), ("sale", dt.date(2026, 12, 7), WALL)]
    assert _one(kiritimati, "SELECT as_of, date_trunc('second', logged_at) FROM assignments "
                            "WHERE run_id = 2") == [(dt.date(2026, 12, 7), WALL)]


def test_a_refused_or_loaded_run_on_a_new_workspace_is_stamped_in_the_rules_zone(
        kiritimati, tmp_path):
    """No zone stored yet: the run log's row of a run refused for its rules, and of a Spark
    output loaded into a new workspace, were stamped in Asia/Shanghai (06:30), not in the
    zone of sources.yaml or of the run (12:30)."""
    tags = kiritimati.rules / "tags.yaml"
    good = tags.read_text(encoding="utf-8")
    tags.write_text(good + "bogus: [\n", encoding="utf-8")
    assert kiritimati("run", "--inbox", _inbox(tmp_path, "n1", "lead_id,phone\nA1,13900000001\n")
                      ).exit_code == 2
    assert _one(kiritimati, "SELECT outcome, as_of, started_at, ended_at FROM runs") == [
        ("refused", dt.date(2026, 12, 7), WALL, WALL)]
    tags.write_text(good, encoding="utf-8")
    assert kiritimati("run", "--inbox", tmp_path / "n1").exit_code == 0
    out = tmp_path / "out"
    _fake_spark_output(kiritimati.db, out, run_id=2, with_log=True)
    loaded = Cli(tmp_path / "new.duckdb", kiritimati.rules)
    assert loaded("load-results", out).exit_code == 0
    assert _one(loaded, "SELECT command, started_at, ended_at FROM runs "
                        "WHERE command = 'load-results'") == [("load-results", WALL, WALL)]


def test_a_locked_workspace_names_the_writer_s_start_on_the_workspace_clock(kiritimati, tmp_path):
    """The lock keeps the instant; the second writer shows it as `runs` does (it showed the
    machine's wall clock, 11:30 of the day before)."""
    inbox = _inbox(tmp_path, "inbox", "lead_id,name,phone\nW1,Ann,13900000001\n")
    assert kiritimati("run", "--inbox", inbox).exit_code == 0
    lock = tmp_path / "ws.duckdb.lock"
    with workspace.writer_lock(kiritimati.db):
        assert json.loads(lock.read_text())["started"] == "2026-12-06T22:30:00+00:00"
    held = os.open(lock, os.O_RDWR)  # another writer's hold (this process's own is reused)
    try:
        fcntl.flock(held, fcntl.LOCK_EX)
        os.pwrite(held, b'{"pid": 7, "command": "run", "started": "2026-12-06T22:30:00+00:00"}', 0)
        result = kiritimati("tag")
    finally:
        os.close(held)
    assert (result.exit_code, result.stderr) == (2, (
        "error: workspace is locked by another leadctl writer (pid 7, run started "
        "2026-12-07T12:30:00); try again later\n"))


def test_a_locked_new_workspace_names_the_writer_s_start_as_an_instant(kiritimati, tmp_path):
    """No zone is stored yet (the holder creates the workspace): the start is shown with
    its offset, not on a clock the workspace may never use."""
    lock = tmp_path / "ws.duckdb.lock"
    held = os.open(lock, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(held, fcntl.LOCK_EX)
        os.pwrite(held, b'{"pid": 7, "command": "ingest", "started": '
                        b'"2026-12-06T22:30:00+00:00"}', 0)
        result = kiritimati("ingest", _inbox(tmp_path, "inbox", "lead_id,phone\nW1,13900000001\n"))
    finally:
        os.close(held)
    assert (result.exit_code, result.stderr) == (2, (
        "error: workspace is locked by another leadctl writer (pid 7, ingest started "
        "2026-12-06T22:30:00+00:00); try again later\n"))


def _new_york(tmp_path) -> tuple[Cli, object]:
    """A workspace in America/New_York and an inbox of one lead, W1."""
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    sources = rules / "sources.yaml"
    sources.write_text(sources.read_text(encoding="utf-8").replace(
        "timezone: Asia/Shanghai", "timezone: America/New_York"), encoding="utf-8")
    return (Cli(tmp_path / "ws.duckdb", rules),
            _inbox(tmp_path, "inbox", "lead_id,name,phone\nW1,Ann,13900000001\n"))


def test_a_status_set_in_the_hour_a_clock_repeats_stays_after_the_claim_before_it(
        tmp_path, monkeypatch):
    # America/New_York on 2026-11-01: 05:30 UTC is 01:30 EDT, 06:10 UTC is 01:10 EST. Rows
    # of one date are listed by their stamp: the status sorted before the claim
    cli, inbox = _new_york(tmp_path)
    for hour, minute, *command in (
            (4, 0, "run", "--inbox", inbox), (5, 30, "claim", "nurture", "--rep", "ops_xu"),
            (6, 10, "status", "W1", "contacting"), (7, 0, "status", "W1", "clear_intent")):
        instant = dt.datetime(2026, 11, 1, hour, minute, tzinfo=dt.UTC)
        monkeypatch.setattr(clock, "utc_now", lambda instant=instant: instant)
        day = "2026-11-02" if command[-1] == "clear_intent" else "2026-11-01"  # a later day:
        assert cli(*command, "--as-of", day).exit_code == 0  # 11-01 is rebuilt from the log
    assert cli("portrait", "W1", "--as-of", "2026-11-01", "--json").json()["status"] \
        == "contacting"
    assert cli("find", "status = 'contacting'", "--as-of", "2026-11-01", "--count").stdout \
        .strip() == "1"
    assert _one(cli, "SELECT logged_at, rule FROM assignments ORDER BY run_id") == [
        (dt.datetime(2026, 11, 1, 0, 0), "default_pool"),
        (dt.datetime(2026, 11, 1, 1, 30), "claim"),
        (dt.datetime(2026, 11, 1, 1, 30, 0, 1), "status"),  # just after: never the same
        (dt.datetime(2026, 11, 1, 2, 0), "status")]


def test_a_second_status_in_the_repeated_hour_survives_a_spark_load(tmp_path, monkeypatch):
    # stamped as the first (its time when the clock went back), it was taken for it and
    # dropped by load-results: the person kept 'contacting'
    cli, inbox = _new_york(tmp_path)

    def at(hour: int, minute: int) -> None:
        instant = dt.datetime(2026, 11, 1, hour, minute, tzinfo=dt.UTC)
        monkeypatch.setattr(clock, "utc_now", lambda: instant)

    for hour, minute, *command in ((4, 0, "run", "--inbox", inbox),
                                   (5, 20, "claim", "nurture", "--rep", "ops_xu"),
                                   (5, 30, "status", "W1", "contacting")):
        at(hour, minute)
        assert cli(*command, "--as-of", "2026-11-01").exit_code == 0
    _fake_spark_output(cli.db, tmp_path / "out", run_id=1)
    at(6, 10)  # 01:10 EST, after 01:30 EDT
    assert cli("status", "W1", "clear_intent", "--as-of", "2026-11-01").exit_code == 0
    at(8, 0)
    assert cli("load-results", tmp_path / "out").exit_code == 0
    assert _one(cli, "SELECT status FROM ownership") == [("clear_intent",)]
