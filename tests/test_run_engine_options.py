"""`leadctl run`: an option only the other engine reads is a usage error before anything
runs (it used to be ignored: `--output` on DuckDB ran the whole night and wrote nothing)."""

from __future__ import annotations

import datetime as dt
import shutil

import pytest
from conftest import RULES, SAMPLE_INBOX, Cli, db_rows

from leadctl.cli.run import check_engine_options
from leadctl.spark import pipeline as spark_pipeline
from leadctl.workspace import open_writer

NOTE_SPARK = "(the default engine, duckdb, works in the --db workspace)"
NOTE_DUCKDB = ("(the Spark engine neither previews nor forces a full run: it writes a new "
               "--output from --state)")


def test_output_on_duckdb_exits_2_and_writes_nothing(tmp_path):
    cli = Cli(tmp_path / "x.duckdb")
    result = cli("run", "--output", tmp_path / "out", "--json")
    assert (result.exit_code, result.json()) == (2, {"error": {
        "type": "UsageError", "location": None,
        "message": f"--output needs --engine spark {NOTE_SPARK}"}, "exit_code": 2})
    assert result.stderr == f"error: --output needs --engine spark {NOTE_SPARK}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_every_spark_option_is_named(tmp_path):
    cli = Cli(tmp_path / "x.duckdb")
    result = cli("run", "--inbox", SAMPLE_INBOX, "--spark-conf", "junk", "--state",
                 tmp_path / "state", "--checkpoint-dir", tmp_path / "ck", "--spark-master",
                 "local[1]", "--output", tmp_path / "out")
    assert (result.exit_code, result.stdout, result.stderr) == (
        2, "", "error: --output, --state, --spark-master, --checkpoint-dir and --spark-conf "
        f"need --engine spark {NOTE_SPARK}\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize("args, named", [
    (["--state", "s"], "--state needs"),
    (["--spark-master", "local[1]"], "--spark-master needs"),
    (["--checkpoint-dir", "ck"], "--checkpoint-dir needs"),
    (["--spark-conf", "spark.driver.memory=1g"], "--spark-conf needs"),
    (["--engine", "duckdb", "--state", "s", "--output", "o"], "--output and --state need"),
])
def test_an_existing_workspace_gets_its_refused_row_and_nothing_else(tmp_path, args, named):
    # issue 14: every run attempt leaves a row in `runs`, with its outcome and reason
    cli = Cli(tmp_path / "ws.duckdb")
    with open_writer(cli.db, create=True):
        pass
    result = cli("run", "--inbox", SAMPLE_INBOX, "--as-of", "2026-11-01", *args)
    assert (result.exit_code, result.stderr) == (
        2, f"error: {named} --engine spark {NOTE_SPARK}\n")
    assert [(r["command"], r["outcome"], r["error"], r["inputs"])
            for r in cli("runs", "--json").json()] == [
        ("run", "refused", f"{named} --engine spark {NOTE_SPARK}", [str(SAMPLE_INBOX)])]
    assert db_rows(cli, "SELECT (SELECT count(*) FROM leads), (SELECT count(*) FROM "
                        "ingested_files)") == [(0, 0)]


def test_workspace_only_options_on_spark_are_named(tmp_path):
    cli = Cli(tmp_path / "x.duckdb")
    result = cli("run", "--engine", "spark", "--inbox", SAMPLE_INBOX, "--output",
                 tmp_path / "out", "--full", "--dry-run")
    assert (result.exit_code, result.stderr) == (
        2, f"error: --dry-run and --full need --engine duckdb {NOTE_DUCKDB}\n")
    result = cli("run", "--engine", "spark", "--output", tmp_path / "out", "--full")
    assert (result.exit_code, result.stderr) == (
        2, f"error: --full needs --engine duckdb {NOTE_DUCKDB}\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_the_spark_nightly_form_passes_the_check(tmp_path):
    check_engine_options("spark", ["--state", "--output", "--spark-master",
                                   "--checkpoint-dir", "--spark-conf"])
    check_engine_options("duckdb", ["--dry-run", "--full"])
    # `--db ws run --engine spark --state DIR --output NEW` reaches the Spark engine's own
    # checks (here: NEW must not be the state itself), without starting Spark.
    result = Cli(tmp_path / "ws.duckdb")("run", "--engine", "spark", "--state",
                                          tmp_path / "out", "--output", f"{tmp_path}/out/")
    assert (result.exit_code, result.stderr) == (
        2, "error: --output must be a new folder, not the --state it continues from (the "
        "state's files are read, and partly copied, while writing)\n")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "_leadctl_run.json").write_text("{}", encoding="utf-8")
    for other in (f"{tmp_path}/./out", str(tmp_path / "link")):
        if other.endswith("link"):
            (tmp_path / "link").symlink_to(tmp_path / "out")
        same = Cli(tmp_path / "ws.duckdb")("run", "--engine", "spark", "--state",
                                           tmp_path / "out", "--output", other)
        assert (same.exit_code, same.stderr.startswith("error: --output must be a new")) == (
            2, True)
    again = Cli(tmp_path / "ws.duckdb")("run", "--engine", "spark", "--inbox", SAMPLE_INBOX,
                                        "--output", tmp_path / "out")
    assert (again.exit_code, again.stderr) == (2, (
        f"error: --output {tmp_path / 'out'} already holds a complete run (its "
        "_leadctl_run.json): give a new folder (an old one can be deleted once a later "
        "night's output exists)\n"))


def test_an_output_older_than_the_workspaces_last_night_is_not_loaded(tmp_path):
    cli = Cli(tmp_path / "ws.duckdb")
    assert cli("run", "--inbox", SAMPLE_INBOX, "--as-of", "2026-11-02").exit_code == 0
    old = tmp_path / "out1"
    old.mkdir()
    (old / "_leadctl_run.json").write_text('{"as_of": "2026-11-01", "run_id": 1}')
    published = cli.db.read_bytes()
    result = cli("load-results", old)
    assert (result.exit_code, result.stderr) == (2, (
        f"error: {old}: a night as of 2026-11-01, older than this workspace's last night "
        "(2026-11-02): loading it would take the workspace back and drop what came since; "
        "load the latest output\n"))
    assert cli.db.read_bytes() == published


def test_a_spark_night_says_the_rules_warnings_as_a_duckdb_night_does(tmp_path, monkeypatch,
                                                                      caplog):
    # `run --engine spark` read the rules and said none of their warnings
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    (rules / "scoring.yaml").unlink()

    def no_spark(options):
        raise RuntimeError("stopped before Spark starts")
    monkeypatch.setattr(spark_pipeline, "open_spark", no_spark)
    options = spark_pipeline.SparkRunOptions(rules, dt.date(2026, 11, 1), [str(SAMPLE_INBOX)],
                                             str(tmp_path / "out"))
    with caplog.at_level("WARNING", logger="leadctl"), pytest.raises(RuntimeError):
        spark_pipeline.run_spark(options)
    assert f"rules: {rules / 'scoring.yaml'}: not found (the score stage is skipped)" in [
        r.getMessage() for r in caplog.records]
