"""A signal decides how a command ends, whatever error it surfaces as: DuckDB turns a
signal raised mid-query into "Query interrupted", which a stage may wrap again (a rule
check's message). Outside a command's library call the process exits at once."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import shutil
import signal
import subprocess
import sys

import duckdb
import pytest
from typer.main import get_command

from leadctl import api, errors, pipeline
from leadctl.cli import signals
from leadctl.cli.app import app
from leadctl.errors import RuleError
from tests.conftest import RULES, Cli


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


NO_IDENTIFIER = ("no identifier column (found: foo, bar; expected one of phone, email, wechat, "
                 "device_id, id_card or an alias of one, see rules/sources.yaml)")


@pytest.mark.parametrize("command", ["run", "refused run", "status"])
def test_a_first_signal_while_a_failure_is_logged_ends_the_command_as_the_signal(
        tmp_path, command):
    # (it was dropped with a second one's: exit 2, the input error, as if none came)
    db, inbox, rules, log_file = (tmp_path / "ws.duckdb", tmp_path / "inbox",
                                  tmp_path / "rules", tmp_path / "night.log")
    inbox.mkdir()
    (inbox / "bad.csv").write_text("foo,bar\n1,2\n")
    shutil.copytree(RULES, rules)
    args = {"run": ["run", "--inbox", str(inbox), "--as-of", "2026-10-03"],
            "refused run": ["run", "--as-of", "2026-10-03"],
            "status": ["status", "NOPE", "clear_intent"]}[command]
    if command == "refused run":
        (rules / "tags.yaml").write_text("tags: [\n")
    leadctl = [sys.executable, "-m", "leadctl", "--db", str(db), "--rules", str(rules)]
    assert subprocess.run([*leadctl, "init"], capture_output=True).returncode == 0
    stopped = subprocess.run(  # SIGTERM while the `failed` / `refused` row is written
        [*leadctl, "--log-file", str(log_file), *args, "--json"], capture_output=True,
        text=True, env={**os.environ, "LEADCTL_TEST_KILL_AFTER": "failure row",
                        "LEADCTL_TEST_KILL_SIGNAL": "TERM"})
    assert (stopped.returncode, json.loads(stopped.stdout), stopped.stderr) == (
        143, {"error": {"type": "Terminated", "message": "terminated (SIGTERM)",
                        "location": None}, "exit_code": 143},
        "error: terminated (SIGTERM)\n")
    with duckdb.connect(str(db), read_only=True) as con:  # the row is written all the same
        assert con.execute("SELECT command, outcome, error FROM runs").fetchall() == [{
            "run": ("run", "failed", "1 inbox file(s) could not be read or used, nothing "
                    f"was changed: {inbox / 'bad.csv'}: {NO_IDENTIFIER}"),
            "refused run": ("run", "refused", f"{rules / 'tags.yaml'}:2:1: invalid YAML: "
                            "expected the node content, but found '<stream end>' (while "
                            "parsing a flow node)"),
            "status": ("status", "failed",
                       "no lead or person matches 'NOPE' (tried lead id, person id)")}[command]]
    last = log_file.read_text().splitlines()[-1].split(" ", 2)[2]
    assert last == {"run": "ERROR run stopped once its failure was logged: terminated (SIGTERM)",
                    "refused run": "ERROR run stopped once its refusal was logged: terminated "
                    "(SIGTERM)",
                    "status": "ERROR status failed (exit 143): terminated (SIGTERM)"}[command]


def test_a_signal_at_start_up_is_logged_as_any_failure(tmp_path):
    # (it left the --log-file untouched, not even made: a failed run's log was empty)
    log_file = tmp_path / "night.log"
    stopped = subprocess.run(
        [sys.executable, "-m", "leadctl", "--db", str(tmp_path / "ws.duckdb"), "-v",
         "--log-file", str(log_file), "run", "--inbox", "X", "--as-of", "2026-10-03", "--json"],
        capture_output=True, text=True, env={**os.environ, "LEADCTL_TEST_KILL_AFTER": "entry"})
    logged = ["INFO run started", "ERROR run failed (exit 143): terminated (SIGTERM)"]
    assert (stopped.returncode, json.loads(stopped.stdout)["error"]["type"]) == (
        143, "Terminated")
    assert [line.split(" ", 2)[2] for line in log_file.read_text().splitlines()] == logged
    assert [line.split(" ", 2)[2] for line in stopped.stderr.splitlines()[:-1]] == logged
    assert stopped.stderr.splitlines()[-1] == "error: terminated (SIGTERM)"


@pytest.mark.parametrize(("args", "logged"), [
    (["identity", "why", "13812345678", "L2"], ["INFO identity why started",
     "ERROR identity why failed (exit 143): terminated (SIGTERM)"]),
    (["-v", "--log-file=LOG", "export", "leads", "-o", "x.csv"], [
        "INFO export started", "ERROR export failed (exit 143): terminated (SIGTERM)"]),
    (["--version"], None), (["find", "--help"], None),  # nothing would have run
    (["--log-file", "DB.lock", "run"], None),  # the workspace's own files: never a log
])
def test_a_signal_before_the_log_is_set_up_logs_to_the_log_file_named(
        tmp_path, monkeypatch, capsys, no_signal_yet, args, logged):
    log_file = tmp_path / "night.log"
    db = tmp_path / "ws.duckdb"
    argv = ["--db", str(db), "--log-file", str(log_file)] + [
        a.replace("LOG", str(log_file)).replace("DB", str(db)) for a in args]
    monkeypatch.setattr("sys.argv", ["leadctl", *argv])
    monkeypatch.setattr(logging.getLogger("leadctl"), "handlers", [])  # not set up yet
    with pytest.raises(SystemExit) as ended:
        signals._on_signal(signal.SIGTERM, None)
    assert ended.value.code == 143
    lines = log_file.read_text().splitlines() if log_file.exists() else None
    assert (lines and [line.split(" ", 2)[2] for line in lines]) == logged
    assert not (tmp_path / "ws.duckdb.lock").exists()


def test_a_signal_once_the_log_is_set_up_logs_the_failure_once(
        tmp_path, monkeypatch, no_signal_yet):
    log_file = tmp_path / "night.log"
    monkeypatch.setattr("sys.argv", ["leadctl", "--log-file", str(log_file), "runs"])

    @contextlib.contextmanager
    def stopped_as_the_call_begins():  # the command's start is logged (common.guarded)
        signals._on_signal(signal.SIGTERM, None)
        yield

    monkeypatch.setattr(signals, "running_action", stopped_as_the_call_begins)
    result = Cli(tmp_path / "ws.duckdb")("--log-file", str(log_file), "runs")
    assert result.exit_code == 143
    assert [line.split(" ", 2)[2] for line in log_file.read_text().splitlines()] == [
        "INFO runs started", "ERROR runs failed (exit 143): terminated (SIGTERM)"]


def test_the_groups_a_signal_at_start_up_logs_with_their_command_are_the_groups():
    groups = {name for name, command in get_command(app).commands.items()
              if hasattr(command, "list_commands")}
    assert groups == signals.GROUPS


@pytest.mark.parametrize("command", ["ingest", "claim"])
def test_a_writer_stopped_during_its_publish_says_its_work_stands(tmp_path, command):
    # (it said `claim failed (exit 143)` while `runs` said ok: a rep retried, claimed twice)
    db, log_file = tmp_path / "ws.duckdb", tmp_path / "log"
    leadctl = [sys.executable, "-m", "leadctl", "--db", str(db), "--rules", str(RULES)]
    events = str(RULES.parent / "sample_data" / "inbox" / "events.parquet")
    leads = str(RULES.parent / "sample_data" / "inbox" / "seo_forms.csv")
    assert subprocess.run([*leadctl, "run", "--inbox", leads, "--as-of", "2026-11-01"],
                          capture_output=True).returncode == 0
    args = {"ingest": ["ingest", events],
            "claim": ["claim", "public_sea", "--rep", "rep_wang", "--n", "2",
                      "--as-of", "2026-11-02"]}[command]
    stopped = subprocess.run(
        [*leadctl, "--log-file", str(log_file), *args, "--json"], capture_output=True,
        text=True, env={**os.environ, "LEADCTL_TEST_KILL_AFTER": "rename",
                        "LEADCTL_TEST_KILL_SIGNAL": "TERM"})
    assert json.loads(stopped.stdout) == {
        "published": True, "error": {"type": "Terminated", "message": "terminated (SIGTERM)",
                                     "location": None}, "exit_code": 143}
    said = f"{command} (run 2) was published (ok) before it was stopped: terminated (SIGTERM)"
    assert (stopped.returncode, stopped.stderr.splitlines()[-2:]) == (
        143, [f"warning: {said}", "error: terminated (SIGTERM)"])
    logged = [line.split(" ", 2)[2] for line in log_file.read_text().splitlines()]
    assert logged[1:] == [f"WARNING {said}", logged[2]] and "failed" not in logged[2]
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT command, outcome FROM runs ORDER BY run_id").fetchall() \
            == [("run", "ok"), (command, "ok")]


def test_once_the_outcome_is_decided_a_signal_cannot_change_the_exit_code(monkeypatch):
    # (a SIGINT during the interpreter's shutdown, which restores the default handlers,
    # killed a run that had reported exit 143 for its SIGTERM: the shell saw 130)
    from leadctl.cli import entry, main

    def decided(held):
        raise SystemExit(143)

    monkeypatch.setattr(main, "main", decided)
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        with pytest.raises(SystemExit):
            entry.main()
        assert {s: signal.getsignal(s) for s in before} == {
            signal.SIGTERM: signal.SIG_IGN, signal.SIGINT: signal.SIG_IGN}
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)
