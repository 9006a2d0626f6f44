"""The nightly run: atomic per run, locked, idempotent, checked rules, data checks."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from leadctl import pipeline, workspace
from leadctl.errors import WorkspaceLocked
from tests.conftest import RULES, SAMPLE_INBOX, Cli, write

AS_OF = "2026-11-01"
REPO = Path(__file__).resolve().parent.parent


def leadctl(db: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "leadctl", "--db", str(db), "--rules", str(RULES), *args],
        capture_output=True, text=True, cwd=REPO, env={**os.environ, **(env or {})},
        timeout=300)


def state(db: Path) -> dict:
    """What a run produces, in a comparable form."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        q = {
            "leads": "SELECT count(*) FROM leads",
            "persons": "SELECT list(person_id ORDER BY person_id) FROM persons",
            "partition": "SELECT list(person_id || ':' || lead_key ORDER BY lead_key) "
                         "FROM person_leads",
            "tags": "SELECT md5(string_agg(person_id || tag || CAST(value AS VARCHAR), ',' "
                    "ORDER BY person_id, tag)) FROM tags",
            "scores": "SELECT md5(string_agg(person_id || score || grade, ',' "
                      "ORDER BY person_id)) FROM scores",
            "owners": "SELECT md5(string_agg(person_id || coalesce(pool, '') || "
                      "coalesce(owner, ''), ',' ORDER BY person_id)) FROM ownership",
        }
        return {k: con.execute(v).fetchone()[0] for k, v in q.items()}
    finally:
        con.close()


def runs_log(db: Path, *columns: str) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(f"SELECT {', '.join(('command', 'outcome', *columns))} FROM runs "
                           "ORDER BY run_id").fetchall()
    finally:
        con.close()


def log_lines(path: Path) -> list[str]:
    """The log file's lines without their timestamp, timings as `T`."""
    return [re.sub(r"\d+\.\d\ds", "Ts", line.split(" ", 2)[2])
            for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    db = tmp_path_factory.mktemp("ref") / "ws.duckdb"
    log = db.with_name("run.log")
    result = leadctl(db, "--log-file", str(log), "run", "--inbox", str(SAMPLE_INBOX),
                     "--as-of", AS_OF, "--json")
    assert result.returncode == 0, result.stderr
    return {"db": db, "state": state(db), "log": log, "stderr": result.stderr}


def test_run_on_sample_resolves_tags_scores_routes(reference):
    s = reference["state"]
    assert s["leads"] == 3154
    assert len(s["persons"]) == 1535
    con = duckdb.connect(str(reference["db"]), read_only=True)
    try:
        counts = {table: con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                  for table in ("tags", "scores", "ownership")}
    finally:
        con.close()
    assert counts == {"tags": 35419, "scores": 1535, "ownership": 1535}
    assert runs_log(reference["db"]) == [("run", "ok")]


def test_run_log_file_has_every_stage_with_counts_and_warnings_masked(reference):
    lines = log_lines(reference["log"])
    assert [re.split(r"[:(]", line)[0].strip() for line in lines] == [
        "INFO run 1 started",
        "INFO stage ingest started", "INFO stage ingest done in Ts", "WARNING ingest",
        "INFO stage resolve started", "INFO stage resolve done in Ts", "WARNING resolve",
        "INFO stage tag started", "INFO stage tag done in Ts",
        "INFO stage score started", "INFO stage score done in Ts",
        "INFO stage route started", "INFO stage route done in Ts",
        "INFO run 1 published, ok in Ts"]
    assert lines[2] == ("INFO stage ingest done in Ts: files=7 rows_read=32060 leads=3154 "
                        "events=28902 rejects=4 skipped_duplicate_files=0 failed_files=0 "
                        "invalid_files=0 rejected_files=0 empty_files=0")
    assert lines[3] == ("WARNING ingest: 4 of 32060 rows rejected (0.0125%; allowed 5%), "
                        "see `leadctl export rejects`")
    assert lines[10] == ("INFO stage score done in Ts: persons=1535 grades=A:107,B:255,C:317,"
                         "D:856 grade_changes=changed:0,added:1535,removed:0 "
                         "score=min:0.0,avg:24.58,max:97.54")
    assert "phone 138****8000 (blocklist, 30 records)" in lines[6]
    assert "13800138000" not in reference["log"].read_text(encoding="utf-8")
    assert reference["stderr"].splitlines() == ["warning: " + lines[3].split(" ", 1)[1],
                                                "warning: " + lines[6].split(" ", 1)[1]]


def test_second_run_on_same_inbox_changes_nothing(reference, tmp_path):
    db = tmp_path / "ws.duckdb"
    shutil.copyfile(reference["db"], db)
    result = leadctl(db, "run", "--inbox", str(SAMPLE_INBOX), "--as-of", AS_OF, "--json")
    assert result.returncode == 0, result.stderr
    assert state(db) == reference["state"]
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*) FROM assignments WHERE run_id = 2").fetchone() == (0,)
    con.close()


def test_an_empty_inbox_is_a_quiet_night_that_still_ages_the_base(reference, tmp_path):
    quiet, plain = tmp_path / "quiet.duckdb", tmp_path / "plain.duckdb"
    shutil.copyfile(reference["db"], quiet)
    shutil.copyfile(reference["db"], plain)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "README.md").write_text("deliveries land here", encoding="utf-8")
    result = leadctl(quiet, "run", "--inbox", str(inbox), "--as-of", "2026-11-15", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["stages"]["ingest"] == {
        "files": 0, "note": "the inbox holds no CSV or Parquet file"}
    assert result.stderr.splitlines()[0] == (
        f"warning: ingest: the inbox holds no CSV or Parquet file ({inbox}): the night ran "
        "on the stored data")
    assert leadctl(plain, "run", "--as-of", "2026-11-15").returncode == 0
    assert state(quiet) == state(plain) != reference["state"]
    missing = leadctl(quiet, "run", "--inbox", str(tmp_path / "typo"), "--as-of", "2026-11-16")
    assert (missing.returncode, missing.stderr.splitlines()[-1]) == (
        2, f"error: no such file or folder: {tmp_path / 'typo'}")


@pytest.mark.parametrize("stage", ["ingest", "resolve", "tag", "score", "route"])
def test_kill_after_each_stage_keeps_published_state_and_next_run_completes(
        reference, tmp_path, stage):
    db = tmp_path / "ws.duckdb"
    assert leadctl(db, "init").returncode == 0
    before = state(db)
    killed = leadctl(db, "run", "--inbox", str(SAMPLE_INBOX), "--as-of", AS_OF,
                     env={"LEADCTL_TEST_KILL_AFTER": stage})
    assert killed.returncode == -9
    assert state(db) == before  # nothing of the killed run was published
    again = leadctl(db, "run", "--inbox", str(SAMPLE_INBOX), "--as-of", AS_OF)
    assert again.returncode == 0, again.stderr
    assert state(db) == reference["state"]


@pytest.mark.parametrize("stage", ["rules", "tag"])  # (rules: as the rule files load)
def test_sigterm_stops_a_run_like_ctrl_c_and_logs_it(reference, tmp_path, stage):
    db = tmp_path / "ws.duckdb"
    assert leadctl(db, "init").returncode == 0
    before = state(db)
    stopped = leadctl(db, "run", "--inbox", str(SAMPLE_INBOX), "--as-of", AS_OF, "--json",
                      env={"LEADCTL_TEST_KILL_AFTER": stage, "LEADCTL_TEST_KILL_SIGNAL": "TERM"})
    assert stopped.returncode == 143
    assert json.loads(stopped.stdout)["error"] == {
        "type": "Terminated", "message": "terminated (SIGTERM)", "location": None}
    assert state(db) == before and not (tmp_path / "ws.duckdb.work").exists()
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT outcome, error FROM runs").fetchall() == [
        ("failed", "terminated (SIGTERM)")]
    con.close()
    assert leadctl(db, "run", "--inbox", str(SAMPLE_INBOX), "--as-of", AS_OF).returncode == 0


def test_sigterm_stops_a_standalone_tag_and_logs_it_as_failed(reference, tmp_path):
    """Every writer logs a stopped attempt as `run` does (a tag left no row at all)."""
    db = tmp_path / "ws.duckdb"
    db.write_bytes(reference["db"].read_bytes())
    before = state(db)
    stopped = leadctl(db, "tag", "--as-of", AS_OF,
                      env={"LEADCTL_TEST_KILL_AFTER": "tag", "LEADCTL_TEST_KILL_SIGNAL": "TERM"})
    assert stopped.returncode == 143 and state(db) == before
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT command, outcome, error FROM runs ORDER BY run_id"
                           ).fetchall() == [("run", "ok", None),
                                            ("tag", "failed", "terminated (SIGTERM)")]


def test_a_run_stopped_while_its_rules_load_logs_its_start_too(tmp_path):
    # (its log held the failure alone: every command logs a line when it starts)
    db, log_file = tmp_path / "ws.duckdb", tmp_path / "log"
    stopped = leadctl(db, "--log-file", str(log_file), "run", "--as-of", AS_OF,
                      env={"LEADCTL_TEST_KILL_AFTER": "rules",
                           "LEADCTL_TEST_KILL_SIGNAL": "TERM"})
    assert stopped.returncode == 143
    assert [line.split(" ", 2)[2] for line in log_file.read_text().splitlines()] == [
        f"INFO run 1 started: as of {AS_OF}, inbox none",
        "ERROR run 1 failed, nothing was published: terminated (SIGTERM)"]


@pytest.mark.parametrize("stage", ["rename", "publish"])  # (rename: during the publish)
def test_sigterm_after_the_publish_leaves_the_published_run_alone(reference, tmp_path, stage):
    db = tmp_path / "ws.duckdb"
    stopped = leadctl(db, "run", "--inbox", str(SAMPLE_INBOX), "--as-of", AS_OF,
                      env={"LEADCTL_TEST_KILL_AFTER": stage,
                           "LEADCTL_TEST_KILL_SIGNAL": "TERM"})
    assert stopped.returncode == 143
    assert "run 1 was published (ok) before it was stopped: terminated (SIGTERM)" in \
        stopped.stderr
    assert state(db) == reference["state"]
    with duckdb.connect(str(db), read_only=True) as con:  # no second, failed run row
        assert con.execute("SELECT run_id, outcome FROM runs").fetchall() == [(1, "ok")]


def test_a_workspace_that_cannot_be_written_is_said_once(tmp_path):
    cli = Cli(tmp_path / "ws.duckdb")
    assert cli("init").exit_code == 0
    (tmp_path / "ws.duckdb").chmod(0o444)
    result = cli("run", "--as-of", AS_OF)
    assert (result.exit_code, result.stderr) == (
        2, f"error: workspace {tmp_path / 'ws.duckdb'} is read-only (its mode has no write "
           "permission): nothing was changed; make it writable to update it\n")


def test_invalid_rules_exit_2_and_change_nothing(tmp_path):
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    tags = rules / "tags.yaml"
    tags.write_text(tags.read_text(encoding="utf-8").replace(
        "paid_orders_7d >= 30", "paid_orders_7d >= 30; drop table leads", 1), encoding="utf-8")
    cli = Cli(tmp_path / "ws.duckdb", rules=rules)
    log = tmp_path / "run.log"
    result = cli("--log-file", log, "run", "--inbox", SAMPLE_INBOX, "--as-of", AS_OF)
    assert result.exit_code == 2
    assert "tags.yaml:" in result.stderr and "';' is not allowed" in result.stderr
    con = duckdb.connect(str(tmp_path / "ws.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM leads").fetchone() == (0,)
    con.close()
    # The refusal is in the run log (with the first problem) and in the log file.
    problems = result.stderr.removeprefix("error: ").splitlines()
    [(command, outcome, error)] = runs_log(tmp_path / "ws.duckdb", "error")
    assert (command, outcome) == ("run", "refused")
    more = f" (and {len(problems) - 1} more: `leadctl rules check`)" if problems[1:] else ""
    assert error == problems[0] + more
    assert log_lines(log) == [
        f"INFO run 1 started: as of {AS_OF}, inbox {SAMPLE_INBOX}",
        f"ERROR run 1 refused (exit 2): invalid rules, nothing ran ({len(problems)} problem(s))",
        *(f"ERROR rules: {problem}" for problem in problems)]
    assert f"ERROR rules: {tags}:76:35: tag 'value_tier' level 'high': ';' is not allowed" \
        in log.read_text(encoding="utf-8")


def test_a_missing_rules_folder_makes_no_workspace(tmp_path):
    """`--db new.duckdb run` with no rules folder (a wrong --rules or working directory)
    made new.duckdb (and its lock) to log the refusal in; now it exits 2 and leaves no
    file. A workspace that exists still gets its `refused` row."""
    cli = Cli(tmp_path / "new.duckdb", rules=tmp_path / "missing")
    result = cli("run", "--inbox", SAMPLE_INBOX, "--as-of", AS_OF)
    assert result.exit_code == 2
    assert result.stderr == f"error: rules directory {tmp_path / 'missing'} not found " \
                            "(pass --rules)\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    assert Cli(cli.db)("init").exit_code == 0
    assert cli("run", "--inbox", SAMPLE_INBOX, "--as-of", AS_OF).exit_code == 2
    assert [r[:2] for r in runs_log(cli.db)] == [("run", "refused")]


def test_rejects_over_threshold_exit_1_but_work_is_published(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    write(inbox / "bad.csv", "lead_id,phone,created_at\n1,13900000001,2026-10-01\n"
          "2,13900000002,not-a-date\n3,,2026-10-01\n")
    cli = Cli(tmp_path / "ws.duckdb")
    result = cli("run", "--inbox", inbox, "--as-of", AS_OF, "--json")
    assert result.exit_code == 1
    assert "rejects 2/3" in result.stderr
    assert result.json()["outcome"] == "data_check_failed"
    assert runs_log(tmp_path / "ws.duckdb") == [("run", "data_check_failed")]


def test_an_empty_delivery_again_under_a_new_name_still_fails_the_data_check(tmp_path):
    cli = Cli(tmp_path / "ws.duckdb")
    for night, name in enumerate(("export_1101.csv", "export_1102.csv"), start=1):
        inbox = tmp_path / f"inbox{night}"
        inbox.mkdir()
        write(inbox / name, "lead_id,phone,created_at\n")  # the same (empty) content
        result = cli("run", "--inbox", inbox, "--as-of", AS_OF, "--json")
        assert result.exit_code == 1, (night, result.stderr)
        assert f"no row loaded from {inbox / name} (empty)" in result.stderr


def test_a_dangling_link_or_a_pipe_in_the_inbox_is_a_failed_delivery(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    write(inbox / "web.csv", "lead_id,phone\n1,13900000001\n")
    (inbox / "gone.csv").symlink_to(tmp_path / "nowhere.csv")
    os.mkfifo(inbox / "pipe.csv")  # never opened: it would wait for a writer
    result = Cli(tmp_path / "ws.duckdb")("run", "--inbox", inbox, "--as-of", AS_OF)
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        f"error: 2 inbox file(s) could not be read or used, nothing was changed: "
        f"{inbox / 'gone.csv'}: not a readable file (a dangling link, a pipe or a device); "
        f"{inbox / 'pipe.csv'}: not a readable file (a dangling link, a pipe or a device)")
    doc = Cli(tmp_path / "ws.duckdb")("run", "--inbox", inbox, "--as-of", AS_OF, "--json").json()
    assert ({f["file"]: f["status"] for f in doc["ingest"]["files"]}, doc["published"],
            doc["exit_code"]) == ({str(inbox / "gone.csv"): "failed",
                                   str(inbox / "pipe.csv"): "failed",
                                   str(inbox / "web.csv"): "loaded"}, False, 2)


def test_unreadable_inbox_file_exits_2_nothing_changed_and_failure_logged(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    write(inbox / "good.csv", "lead_id,phone\n1,13900000001\n")
    (inbox / "junk.csv").write_bytes(b"\x00\x01junk" * 50)
    cli = Cli(tmp_path / "ws.duckdb")
    result = cli("run", "--inbox", inbox, "--as-of", AS_OF)
    assert result.exit_code == 2
    assert "junk.csv" in result.stderr
    con = duckdb.connect(str(tmp_path / "ws.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM leads").fetchone() == (0,)
    con.close()
    assert runs_log(tmp_path / "ws.duckdb") == [("run", "failed")]


def test_a_failed_runs_log_row_starts_when_the_run_started(tmp_path, monkeypatch):

    def slow_failure(*args, **kwargs):
        time.sleep(0.5)
        raise RuntimeError("boom")

    monkeypatch.setattr(pipeline, "run_stages", slow_failure)
    assert Cli(tmp_path / "ws.duckdb")("run", "--as-of", AS_OF).exit_code == 3
    con = duckdb.connect(str(tmp_path / "ws.duckdb"), read_only=True)
    try:
        outcome, seconds = con.execute(
            "SELECT outcome, epoch(ended_at) - epoch(started_at) FROM runs").fetchone()
    finally:
        con.close()
    assert outcome == "failed" and seconds >= 0.5  # not the moment the row was written


def test_a_failed_run_keeps_the_lock_until_its_log_row_is_written(tmp_path, monkeypatch):

    def failing(*args, **kwargs):
        raise RuntimeError("boom")

    def record(*args, **kwargs):  # another writer (a rep's claim) tries the workspace now
        with pytest.raises(WorkspaceLocked):
            workspace._Lock(tmp_path / "ws.duckdb.lock").acquire()
        return real(*args, **kwargs)

    real = pipeline.record_run
    monkeypatch.setattr(pipeline, "run_stages", failing)
    monkeypatch.setattr(pipeline, "record_run", record)
    result = Cli(tmp_path / "ws.duckdb")("run", "--as-of", AS_OF)
    assert (result.exit_code, result.stderr) == (
        3, "error: internal error: RuntimeError: boom (rerun with --debug for details)\n")
    assert runs_log(tmp_path / "ws.duckdb") == [("run", "failed")]


def test_failed_run_logs_its_reason_masked(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "13812345678.csv").write_bytes(b"\x00\x01junk" * 50)  # named after a person
    log = tmp_path / "run.log"
    result = Cli(tmp_path / "ws.duckdb")("-v", "--log-file", log, "run", "--inbox", inbox,
                                          "--as-of", AS_OF)
    assert result.exit_code == 2
    failed = (f"ERROR run 1 failed in stage ingest, nothing was published: 1 inbox file(s) "
              f"could not be read or used, nothing was changed: {inbox}/138****5678.csv: "
              "binary content (NUL bytes): not a CSV or Parquet file")
    assert log_lines(log)[1:] == ["INFO stage ingest started", failed]
    assert log_lines(log)[0].startswith("INFO run 1 started: as of 2026-11-01, rules ")
    assert "13812345678" not in log.read_text(encoding="utf-8")
    assert failed in result.stderr  # -v: the same log on stderr


@pytest.mark.parametrize("args, message", [
    (["--as-of", "2026-13-01"], "--as-of must be a date like 2026-11-01, not '2026-13-01'"),
    (["--max-reject-share", "2"], "--max-reject-share must be a number from 0 to 1, not '2.0'"),
    (["--engine", "spark", "--dry-run"], "--dry-run needs --engine duckdb (the Spark engine "
     "neither previews nor forces a full run: it writes a new --output from --state)"),
    (["--engine", "spark"], "--engine spark needs --output DIR for the result tables"),
    # refused by the Spark pipeline before it starts Spark (it logs stages only)
    (["--engine", "spark", "--output", "out"], "--engine spark needs input files (--inbox "
     "PATH, local or cluster) or a previous output to recompute (--state DIR)"),
    (["--engine", "spark", "--state", "st", "--output", "st"], "--output must be a new "
     "folder, not the --state it continues from (the state's files are read, and partly "
     "copied, while writing)"),
])
def test_a_run_its_options_refuse_logs_its_start_and_failure(tmp_path, args, message,
                                                              monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "st").mkdir()
    log = tmp_path / "run.log"
    result = Cli(tmp_path / "ws.duckdb")("-v", "--log-file", log, "run", *args)
    assert (result.exit_code, result.stdout) == (2, "")
    assert log_lines(log) == ["INFO run started", f"ERROR run failed (exit 2): {message}"]
    assert f"run failed (exit 2): {message}" in result.stderr  # -v: the same on stderr


@pytest.mark.parametrize("args, command, message", [
    (["run", "--max-reject-share", "abc"], "run", "Invalid value for '--max-reject-share': "
     "Input should be a valid number, unable to parse string as a number"),
    (["find", "--limit", "x", "grade = 'A'"], "find", "Invalid value for '--limit': Input "
     "should be a valid integer, unable to parse string as an integer"),
    (["identity", "why", "P1"], "identity why", "Missing argument 'b'."),
    # raised by the parser without the command's context
    (["report", "channels", "--by"], "report channels", "Option '--by' requires an argument."),
    (["report"], "report", "no command given (see `leadctl report --help`)"),
])
def test_options_the_parser_refuses_are_logged_as_a_failed_command(tmp_path, args, command,
                                                                  message):
    log = tmp_path / "cron.log"
    result = Cli(tmp_path / "ws.duckdb")("--log-file", log, *args)
    assert result.exit_code == 2
    assert log_lines(log) == [f"INFO {command} started",
                              f"ERROR {command} failed (exit 2): {message}"]


@pytest.mark.parametrize("args, message", [
    (["--as-of", "2026-02-30"], "--as-of must be a date like 2026-11-01, not '2026-02-30'"),
    (["--engine", "sparkk"], "--engine must be duckdb or spark, not 'sparkk'"),
])
def test_a_run_its_options_refuse_leaves_a_refused_row_in_a_workspace(tmp_path, args,
                                                                     message):
    # issue 14: every run attempt leaves a row (a run refused for invalid rules did)
    cli = Cli(tmp_path / "ws.duckdb")
    assert cli("init").exit_code == 0
    assert cli("run", *args).exit_code == 2
    assert cli("run", *args, "--dry-run").exit_code == 2  # a dry run writes nothing
    assert runs_log(cli.db, "error") == [("run", "refused", message)]


@pytest.mark.parametrize("args, env", [
    (["--memory-limit", "junk", "identity", "why", "P1", "P2"], {}),
    (["identity", "why", "P1", "P2"], {"LEADCTL_MEMORY_LIMIT": "junk"}),  # a cron job's env
])
def test_a_root_option_the_parser_refuses_is_logged_too(tmp_path, monkeypatch, args, env):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    log = tmp_path / "cron.log"
    result = Cli(tmp_path / "ws.duckdb")("--log-file", log, *args)
    assert result.exit_code == 2
    assert log_lines(log) == [
        "INFO identity why started", "ERROR identity why failed (exit 2): Invalid value for "
        "'--memory-limit' (env var: 'LEADCTL_MEMORY_LIMIT'): must be a size such as 3GB, 500MB or "
        "1.5GiB, not 'junk'"]


def test_a_root_option_refused_logs_nothing_into_the_workspace_file(tmp_path):
    cli = Cli(tmp_path / "ws.duckdb")
    assert cli("init").exit_code == 0
    before = cli.db.read_bytes()
    assert cli("--log-file", cli.db, "--memory-limit", "junk", "find", "x").exit_code == 2
    assert cli.db.read_bytes() == before


def test_a_bad_as_of_is_logged_after_the_commands_start(tmp_path):
    log = tmp_path / "ops.log"
    cli = Cli(tmp_path / "ws.duckdb")
    commands = {"tag": [], "resolve": [], "route": [], "score": [], "portrait": ["P1"],
                "claim": ["pool", "--rep", "r1"], "status": ["P1", "contacting"],
                "sale": ["P1", "--rep", "r1"]}
    for command, args in commands.items():
        assert cli("--log-file", log, command, *args, "--as-of", "2026-13-01").exit_code == 2
    bad = "--as-of must be a date like 2026-11-01, not '2026-13-01'"
    assert log_lines(log) == [line for command in commands for line in (
        f"INFO {command} started", f"ERROR {command} failed (exit 2): {bad}")]


def test_concurrent_run_exits_2_naming_the_running_one(tmp_path):
    db = tmp_path / "ws.duckdb"
    assert leadctl(db, "init").returncode == 0
    slow = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from leadctl.workspace import open_writer, set_command_name\n"
         "set_command_name('run')\n"
         f"with open_writer({str(db)!r}):\n    print('locked', flush=True); time.sleep(30)"],
        stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert slow.stdout.readline().strip() == "locked"
        result = leadctl(db, "--log-file", str(tmp_path / "run.log"), "run", "--as-of", AS_OF)
        assert result.returncode == 2
        assert f"pid {slow.pid}" in result.stderr and "run started" in result.stderr
    finally:
        slow.kill()
        slow.wait()
    assert runs_log(db) == []  # refused by the lock: no row, but the log file says so
    assert log_lines(tmp_path / "run.log") == [f"ERROR run refused: {result.stderr[7:].strip()}"]


def test_reader_works_during_a_run(reference, tmp_path):
    db = tmp_path / "ws.duckdb"
    shutil.copyfile(reference["db"], db)
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import time; from leadctl.workspace import open_writer\n"
         f"with open_writer({str(db)!r}):\n    print('locked', flush=True); time.sleep(30)"],
        stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert holder.stdout.readline().strip() == "locked"
        result = leadctl(db, "portrait", "13800000001", "--json")
        assert result.returncode == 0, result.stderr
        portrait = json.loads(result.stdout)
        assert (portrait["person_id"], portrait["query"]) == (
            "P83914f95b421", {"text": "138****0001", "matched_by": ["phone"]})
    finally:
        holder.kill()
        holder.wait()


def test_runs_lists_the_log(reference):
    result = Cli(reference["db"])("runs", "--json")
    assert [(r["command"], r["outcome"]) for r in result.json()] == [("run", "ok")]
    [row] = result.json()
    assert row["counts"]["stages"]["ingest"]["leads"] == 3154  # objects, not JSON strings
    assert row["inputs"] == [str(SAMPLE_INBOX)]


def test_runs_table_shows_the_rules_hash(reference):
    [row] = Cli(reference["db"])("runs", "--json").json()
    table = Cli(reference["db"])("runs", env={"COLUMNS": "200"}).stdout
    assert "┃ rules        ┃" in table and f"│ {row['rules_hash'][:12]} │" in table


def test_a_dry_run_refused_for_its_rules_writes_nothing_and_makes_no_workspace(tmp_path):
    """No `refused` row in the run log, no workspace made, nothing changed: a dry run."""
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    cli = Cli(tmp_path / "ws.duckdb", rules=rules)
    assert cli("run", "--inbox", SAMPLE_INBOX, "--as-of", AS_OF).exit_code == 0
    before = (tmp_path / "ws.duckdb").read_bytes()
    routing = rules / "routing.yaml"
    routing.write_text(routing.read_text(encoding="utf-8").replace(
        "when: grade = 'A'", "when: grade = 'A' and nosuchtag > 3", 1), encoding="utf-8")
    log = tmp_path / "run.log"
    refused = cli("--log-file", log, "run", "--as-of", "2026-11-02", "--dry-run")
    assert refused.exit_code == 2 and "unknown field 'nosuchtag'" in refused.stderr
    assert (tmp_path / "ws.duckdb").read_bytes() == before
    assert log_lines(log)[:2] == [
        "INFO dry run started: as of 2026-11-02, inbox none",
        "ERROR dry run refused (exit 2): invalid rules, nothing ran (1 problem(s))"]
    fresh = Cli(tmp_path / "new.duckdb", rules=rules)
    assert fresh("run", "--as-of", "2026-11-02", "--dry-run").exit_code == 2
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("new")) == []


def test_a_dry_runs_stages_say_dry_run_and_no_run_id(tmp_path):
    cli = Cli(tmp_path / "ws.duckdb")
    result = cli("run", "--inbox", SAMPLE_INBOX, "--as-of", AS_OF, "--dry-run", "--json")
    assert result.exit_code == 0
    data = result.json()
    assert [(stage, counts.get("dry_run"), counts.get("run_id", "-"))
            for stage, counts in data["stages"].items()] == [
        ("ingest", None, "-"), ("resolve", None, "-"), ("tag", True, None),
        ("score", True, None), ("route", True, None)]


@pytest.mark.parametrize(("share", "allowed", "shown"), [
    (1001 / 20001, 0.05, ("5.005%", "5%")), (1 / 4, 0.2499, ("25%", "24.99%")),
    (0.000317, 0.0001, ("0.0317%", "0.01%")), (0.05, 0.05, ("5%", "5%"))])
def test_a_share_of_rejects_never_reads_as_the_threshold_it_broke(share, allowed, shown):
    assert pipeline._shares(share, allowed) == shown
