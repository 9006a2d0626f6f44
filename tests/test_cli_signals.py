"""A signal decides how a command ends, whatever error it surfaces as: DuckDB turns a
signal raised mid-query into "Query interrupted", which a stage may wrap again (a rule
check's message). Outside a command's library call the process exits at once."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys

import duckdb
import pytest

from leadctl import api, errors, pipeline
from leadctl.cli import signals
from leadctl.errors import RuleError
from tests.conftest import RULES


@pytest.fixture
def no_signal_yet(monkeypatch):
    monkeypatch.setattr(errors, "_RECEIVED", [])
    monkeypatch.setattr(signals, "_STATE", {"phase": "startup", "deferred": None})
    monkeypatch.setattr(signals.os, "_exit", lambda code: (_ for _ in ()).throw(
        SystemExit(code)))


@pytest.mark.parametrize(("name", "code", "kind", "message"), [
    ("SIGTERM", 143, "Terminated", "terminated (SIGTERM)"),
    ("SIGINT", 130, "Interrupted", "interrupted")])
def test_an_error_after_a_signal_is_the_signal(cli, monkeypatch, no_signal_yet, name, code,
                                               kind, message):
    def stopped_mid_query(*args, **kwargs):
        errors.note_signal(name)
        raise RuleError("tags do not fit the workspace data: Query interrupted")

    monkeypatch.setattr(api, "find", stopped_mid_query)
    result = cli("find", "lead_count > 1", "--json")
    assert (result.exit_code, result.stderr) == (code, f"error: {message}\n")
    assert result.json() == {"error": {"type": kind, "message": message, "location": None},
                             "exit_code": code}


def test_a_signal_outside_a_command_call_exits_at_once_with_its_document(
        monkeypatch, capsys, no_signal_yet):
    monkeypatch.setattr("sys.argv", ["leadctl", "find", "x > 1", "--json"])
    with pytest.raises(SystemExit) as ended:
        signals._on_signal(signal.SIGTERM, None)
    out = capsys.readouterr()
    assert ended.value.code == 143 and out.err == "error: terminated (SIGTERM)\n"
    assert json.loads(out.out)["error"]["type"] == "Terminated"
    with signals.running_action(), pytest.raises(KeyboardInterrupt):  # undo, then exit
        signals._on_signal(signal.SIGINT, None)


def test_a_signal_while_the_result_prints_waits_for_the_printing(capsys, no_signal_yet):
    with signals.running_action():
        pass  # the command's work is done: its result prints now
    signals._on_signal(signal.SIGTERM, None)  # no exit in the middle of the document
    print('{"persons": 3}')
    with pytest.raises(SystemExit) as ended:
        signals.exit_if_signalled()
    out = capsys.readouterr()
    assert (ended.value.code, out.out, out.err) == (
        143, '{"persons": 3}\n', "error: terminated (SIGTERM)\n")


def test_a_signal_while_the_modules_load_waits_for_them_then_stops_the_command(tmp_path):
    # (it killed the process silently, or with a traceback: an empty `--json` result)
    stopped = subprocess.run(
        [sys.executable, "-m", "leadctl", "--db", str(tmp_path / "ws.duckdb"), "run", "--json"],
        capture_output=True, text=True, env={**os.environ, "LEADCTL_TEST_KILL_AFTER": "entry"})
    assert (stopped.returncode, json.loads(stopped.stdout), stopped.stderr) == (
        143, {"error": {"type": "Terminated", "message": "terminated (SIGTERM)",
                        "location": None}, "exit_code": 143},
        "error: terminated (SIGTERM)\n")
    assert not (tmp_path / "ws.duckdb").exists()


def test_a_second_signal_while_a_stopped_run_is_logged_loses_nothing(tmp_path, monkeypatch):



    # the command's own handler, in the middle of its work (a first signal stopped it)
    monkeypatch.setattr(errors, "_RECEIVED", [])
    monkeypatch.setattr(signals, "_STATE", {"phase": "action", "deferred": None})
    previous = signal.signal(signal.SIGTERM, signals._on_signal)  # restored below
    real = pipeline.record_run

    def record(*args, **kwargs):  # the second signal arrives while the row is written
        os.kill(os.getpid(), signal.SIGTERM)
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "record_run", record)
    db = tmp_path / "ws.duckdb"
    try:
        pipeline._record_failure(db, pipeline.RunOptions(RULES, dt.date(2026, 11, 1)), "x",
                                 KeyboardInterrupt(), {"stages": {}, "timings": {}},
                                 dt.datetime(2026, 11, 1, 2, 0))
    finally:
        signal.signal(signal.SIGTERM, previous)
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT outcome, error FROM runs").fetchall() == [
            ("failed", "interrupted")]
