"""The entry point's fast portrait path: same output as the Typer command, no typer import."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import duckdb
import pytest
from typer.main import get_command
from typer.testing import CliRunner

from leadctl.cli.app import app
from leadctl.cli.main import command_in, parse_fast_portrait, typer_app
from leadctl.cli.root import COMMANDS
from tests.conftest import RULES, SAMPLE_INBOX, Cli, write


@pytest.mark.parametrize("argv,expected", [
    (["portrait", "138 0000 0001"], {"query": "138 0000 0001"}),
    (["--db", "x.duckdb", "portrait", "L1", "--json"], {"db": "x.duckdb", "query": "L1",
                                                         "json_out": True}),
    (["--db=x.duckdb", "--rules", "r", "portrait", "--reveal", "--as-of", "2026-11-01", "L1"],
     {"db": "x.duckdb", "query": "L1", "reveal": True, "as_of": "2026-11-01"}),
    (["--memory-limit", "1GB", "portrait", "L1"], {"query": "L1", "memory_limit": "1GB"}),
])
def test_plain_portrait_calls_take_the_fast_path(argv, expected, monkeypatch):
    monkeypatch.delenv("LEADCTL_DB", raising=False)
    opts = parse_fast_portrait(argv)
    assert opts == {"db": None, "json_out": False, "reveal": False, "as_of": None,
                    "query": None, "memory_limit": None, **expected}


@pytest.mark.parametrize("argv", [
    ["portrait", "--help"], ["portrait"], ["portrait", "a", "b"], ["--debug", "portrait", "a"],
    ["portrait", "a", "--bogus"], ["find", "x"], [], ["--db"], ["portrait", "a", "--as-of"],
])
def test_anything_else_goes_to_typer(argv):
    assert parse_fast_portrait(argv) is None


def test_fast_path_matches_typer_and_does_not_import_typer(tmp_path):

    db = tmp_path / "ws.duckdb"
    cli = Cli(db)
    assert cli("run", "--inbox", SAMPLE_INBOX, "--as-of", "2026-11-01").exit_code == 0
    typer_out = cli("portrait", "13800000001", "--json").stdout
    code = ("import sys; from leadctl.cli.main import main; sys.argv = ['leadctl', '--db', "
            f"{str(db)!r}, 'portrait', '13800000001', '--json']\n"
            "try:\n    main()\nexcept SystemExit as e:\n"
            "    assert 'typer' not in sys.modules, 'typer imported'\n    raise")
    fast = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert fast.returncode == 0, fast.stderr
    assert fast.stdout == typer_out
    missing = subprocess.run([sys.executable, "-m", "leadctl", "--db", str(db), "portrait",
                              "nobody@nowhere.cn"], capture_output=True, text=True)
    assert missing.returncode == 1 and missing.stderr.startswith("error: ")


def test_log_file_masks_personal_data(tmp_path):


    cli = Cli(tmp_path / "ws.duckdb")
    log = tmp_path / "run.log"
    assert cli("--log-file", log, "init", tmp_path).exit_code == 0
    logging.getLogger("leadctl").info("lookup 13812345678 for a@b.cn")
    text = log.read_text(encoding="utf-8")
    assert "138****5678" in text and "13812345678" not in text


def test_every_command_logs_its_start_end_failure_and_warnings(tmp_path):

    cli = Cli(tmp_path / "ws.duckdb")
    log = tmp_path / "ops.log"
    assert cli("--log-file", log, "init", tmp_path).exit_code == 0
    assert cli("--log-file", log, "find", "city = '上海'", "--count").exit_code == 0
    broken = Cli(tmp_path / "ws.duckdb", RULES / "missing")
    assert broken("--log-file", log, "tag").exit_code == 2
    bad = tmp_path / "bad.csv"
    bad.write_text("lead_id,phone,created_at\nL1,13800000001,someday\n", encoding="utf-8")
    assert cli("--log-file", log, "ingest", bad, "--strict").exit_code == 1
    # only `run` logged anything: a cron job of `tag` left an empty log
    lines = [line.split(" ", 3)[2:] for line in log.read_text(encoding="utf-8").splitlines()]
    assert [(level, text.split(" in ")[0]) for level, text in lines] == [
        ("INFO", "init started"), ("INFO", "init done"), ("INFO", "find started"),
        ("WARNING", "no person matched; cities and provinces are stored by their official "
                    "names: '上海' is '上海市'"), ("INFO", "find done"),
        ("INFO", "tag started"),
        ("ERROR", f"tag failed (exit 2): rules directory {RULES / 'missing'} not found "
                  "(pass --rules)"), ("INFO", "ingest started"),
        ("ERROR", "ingest failed (exit 1): 1 rows rejected (--strict); see `leadctl export "
                  "rejects -o rejects.csv`")]


# -- one command's module per call; `leadctl --help` from the table of commands ----------

@pytest.mark.parametrize(("argv", "expected"), [
    (["--db", "x.duckdb", "-v", "tag", "--dry-run"], "tag"),
    (["--db=x.duckdb", "--log-file", "l.log", "rules", "check"], "rules"),
    (["--memory-limit", "3GB", "run", "--inbox", "in"], "run"),
    (["--help"], None), ([], None), (["--version"], None),
    (["--show-completion", "bash"], None),
])
def test_the_command_is_found_after_the_root_options(argv, expected):
    assert command_in(argv) == expected


def test_the_table_of_commands_matches_the_commands():
    full = get_command(app)
    listed = {name: (" ".join((full.get_command(None, name).help or "").split("\n\n")[0]
                              .split())) for name in full.list_commands(None)}
    assert {name: help_text for name, (_, help_text) in COMMANDS.items()} == listed
    assert list(COMMANDS) == list(listed)  # the same order in `leadctl --help`


def test_root_help_lists_every_command_without_loading_one():
    lazy = CliRunner().invoke(typer_app(["--help"]), ["--help"], prog_name="leadctl",
                              terminal_width=100)
    full = CliRunner().invoke(app, ["--help"], prog_name="leadctl", terminal_width=100)
    assert (lazy.exit_code, lazy.stdout) == (0, full.stdout)
    modules = sorted({f"leadctl.cli.{m}" for m, _ in COMMANDS.values()})
    code = ("import sys; from leadctl.cli.main import typer_app; typer_app(['--help']); "
            f"print([m for m in {modules!r} if m in sys.modules])")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert (loaded.returncode, loaded.stdout) == (0, "[]\n")


@pytest.mark.parametrize("command", list(COMMANDS))
def test_each_command_runs_from_its_own_module(command):
    result = CliRunner().invoke(typer_app([command, "--help"]), [command, "--help"],
                                prog_name="leadctl")
    assert (result.exit_code, result.stdout.startswith(f"Usage: leadctl {command} ")) == (
        0, True)


@pytest.fixture(scope="module")
def two_leads(tmp_path_factory):

    tmp = tmp_path_factory.mktemp("pipe")
    write(tmp / "leads.csv", "lead_id,phone,name\nL1,13912345678,Ann\nL2,13912345679,Bob\n")
    assert Cli(tmp / "ws.duckdb")("run", "--inbox", tmp, "--as-of", "2026-11-01").exit_code == 0
    return tmp / "ws.duckdb"


@pytest.mark.parametrize("args", [["portrait", "L1"], ["portrait", "L1", "--json"],
                                  ["find", "lead_count >= 1"], ["runs", "--json"],
                                  ["explain", "L1"], ["portrait", "nobody"],
                                  ["--show-completion", "zsh"]])
def test_a_reader_that_went_away_leaves_the_exit_code_and_stderr_alone(two_leads, args):
    # `leadctl find … | head`: the reader closes early. rich exited 1 there, and the
    # portrait's --json printed a traceback; a found lead is still found (0), a missing one
    # still not (1, its message).
    read, write_end = os.pipe()
    os.close(read)
    try:
        done = subprocess.run([sys.executable, "-m", "leadctl", "--db", str(two_leads), *args],
                              stdout=write_end, stderr=subprocess.PIPE, text=True)
    finally:
        os.close(write_end)
    found = args[1] != "nobody"
    assert (done.returncode, done.stderr == "") == ((0, True) if found else (1, False))
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("shell, marker", [
    ("zsh", "#compdef leadctl"), ("bash", "complete -o default -F _leadctl_completion leadctl"),
    ("fish", "complete --command leadctl --no-files"),
])
def test_show_completion_gives_the_named_shells_script_from_any_shell(shell, marker):
    # run from sh (no shell to detect): typer took no shell word and printed nothing
    ran = subprocess.run(["sh", "-c", f'"{sys.executable}" -m leadctl --show-completion '
                          f"{shell}"], capture_output=True, text=True)
    assert (ran.returncode, ran.stderr) == (0, "")
    assert [line for line in ran.stdout.splitlines() if line.startswith(marker)] != []


def test_install_completion_installs_for_the_named_shell(tmp_path):
    ran = subprocess.run([sys.executable, "-m", "leadctl", "--install-completion", "zsh"],
                         capture_output=True, text=True, env={**os.environ, "HOME": str(tmp_path)})
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.splitlines()[0] == f"zsh completion installed in {tmp_path}/.zfunc/_leadctl"
    assert (tmp_path / ".zfunc" / "_leadctl").read_text().startswith("#compdef leadctl")


@pytest.mark.parametrize("args", [
    ["sale", "L1", "--rep", "13912345010", "--as-of", "2026-11-01"],
    ["audience", "export", "a", "cty = '13912345010'", "-o", "{tmp}/a.csv", "--as-of",
     "2026-11-01", "--reveal"],
])
def test_the_run_log_keeps_a_failed_commands_reason_masked(tmp_path, args):
    write(tmp_path / "leads.csv", "lead_id,phone,name\nL1,13912345678,Ann\n")
    cli = Cli(tmp_path / "ws.duckdb")
    assert cli("run", "--inbox", tmp_path, "--as-of", "2026-11-01").exit_code == 0
    assert cli(*[a.format(tmp=tmp_path) for a in args]).exit_code == 2
    con = duckdb.connect(str(tmp_path / "ws.duckdb"), read_only=True)
    (error,) = con.execute("SELECT error FROM runs ORDER BY run_id DESC LIMIT 1").fetchone()
    assert ("139****5010" in error, "13912345010" in error) == (True, False)
