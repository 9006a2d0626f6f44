"""A stdout or stderr the command cannot write to (a full disk: /dev/full; a closed file
descriptor: `>&-`, `2>&-`). A stdout that refuses the output ends the command with exit 2
and one `error:` line (its work done: a run stays published and `ok`), logged as its
failure; never a traceback, exit 1 or 3. A stderr that refuses messages loses them: the
command's result (its --json document) and exit code stay its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from conftest import RULES, Cli, write

from leadctl.cli import main as cli_main
from leadctl.cli import output

pytestmark = pytest.mark.skipif(not Path("/dev/full").exists(),
                                reason="needs /dev/full (a full disk)")

AS_OF = "2026-11-01"
FULL = ("error: cannot write to stdout: No space left on device (the command's work is "
        "done; only its output is lost)\n")
CLOSED = ("error: cannot write to stdout: Bad file descriptor (the command's work is "
          "done; only its output is lost)\n")


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("streams")
    (tmp / "inbox").mkdir()
    write(tmp / "inbox" / "leads.csv", "lead_id,phone,name\nL1,13912345678,Ann\n"
          "L2,13912345679,Bob\n")
    assert Cli(tmp / "ws.duckdb")("run", "--inbox", tmp / "inbox", "--as-of",
                                  AS_OF).exit_code == 0
    return tmp / "ws.duckdb"


def leadctl(ws: Path, *args, stdout: str = "pipe", stderr: str = "pipe"):
    """The real command with stdout / stderr a pipe, /dev/full ("full") or closed."""
    streams, close, opened = {}, [], []
    for name, how in (("stdout", stdout), ("stderr", stderr)):
        if how == "full":
            opened.append(os.open("/dev/full", os.O_WRONLY))
            streams[name] = opened[-1]
        elif how == "closed":
            close.append(1 if name == "stdout" else 2)
        else:
            streams[name] = subprocess.PIPE
    try:
        return subprocess.run(
            [sys.executable, "-m", "leadctl", "--db", str(ws), "--rules", str(RULES),
             *map(str, args)], text=True, **streams,
            preexec_fn=lambda: [os.close(fd) for fd in close])
    finally:
        for fd in opened:
            os.close(fd)


@pytest.mark.parametrize("args", [
    ["find", "true", "--limit", "1"], ["find", "true", "--json"], ["runs"],
    ["portrait", "L1"], ["portrait", "L1", "--json"],  # the fast path, without Typer
    ["portrait", "L1", "--as-of", AS_OF],
    ["report", "channels"],
])
def test_a_full_stdout_is_exit_2_with_one_line_not_a_traceback(ws, args):
    done = leadctl(ws, *args, stdout="full")
    assert (done.returncode, done.stderr) == (2, FULL)


@pytest.mark.parametrize("args", [["runs"], ["find", "true", "--json"], ["portrait", "L1"]])
def test_a_closed_stdout_is_exit_2_with_one_line(ws, args):
    # was: AttributeError: 'NoneType' object has no attribute 'isatty' (exit 1)
    done = leadctl(ws, *args, stdout="closed")
    assert (done.returncode, done.stderr) == (2, CLOSED)


def test_the_version_on_a_full_stdout_is_exit_2(ws):
    done = leadctl(ws, "--version", stdout="full")
    assert (done.returncode, done.stderr) == (
        2, "error: cannot write to stdout: No space left on device\n")


def test_help_on_a_full_stdout_is_exit_2_and_another_file_s_error_is_not_stdout_s(ws):
    done = leadctl(ws, "--help", stdout="full")
    assert (done.returncode, done.stderr) == (
        2, "error: cannot write to stdout: No space left on device\n")


@pytest.mark.parametrize("error, exit_code", [
    (OSError(28, "No space left on device"), 2),  # Click writing stdout: no file named
    # another file's (a shell rc file --install-completion cannot make): its own error
    (NotADirectoryError(20, "Not a directory", "/dev/null/x"), None),
])
def test_only_stdout_s_own_error_is_cannot_write_to_stdout(monkeypatch, capsys, error,
                                                         exit_code):
    def app(argv):
        def run(prog_name):
            raise error
        return run

    monkeypatch.setattr(cli_main, "typer_app", app)
    monkeypatch.setattr(sys, "argv", ["leadctl", "--help"])
    try:
        with pytest.raises(SystemExit if exit_code else NotADirectoryError) as ended:
            cli_main.main()
    finally:
        output.forget_stdout_refused()  # (the process's: later tests in it print again)
    if exit_code:
        assert ended.value.code == 2
        assert capsys.readouterr().err == (
            "error: cannot write to stdout: No space left on device\n")


def test_a_missing_lead_on_a_full_stdout_keeps_its_own_exit_code(ws):
    done = leadctl(ws, "portrait", "nobody", "--json", stdout="full")
    assert done.returncode == 1 and "Traceback" not in done.stderr


def test_a_run_whose_summary_cannot_be_printed_is_published_and_logged_failed(ws, tmp_path):
    log = tmp_path / "night.log"
    done = leadctl(ws, "--log-file", log, "run", "--inbox", ws.parent / "inbox",
                   "--as-of", "2026-11-02", "--json", stdout="full")
    assert (done.returncode, done.stderr) == (2, FULL)
    lines = log.read_text(encoding="utf-8").splitlines()
    assert lines[-1].split(" ", 2)[2] == "ERROR run failed (exit 2): " + FULL[7:-1]
    assert "run 2 published, ok" in lines[-2]
    with duckdb.connect(str(ws), read_only=True) as con:
        assert con.execute("SELECT run_id, outcome FROM runs ORDER BY run_id DESC LIMIT 1"
                           ).fetchone() == (2, "ok")


def test_a_command_on_a_full_stdout_logs_its_failure_not_done(ws, tmp_path):
    log = tmp_path / "find.log"
    assert leadctl(ws, "--log-file", log, "find", "true", stdout="full").returncode == 2
    assert [line.split(" ", 2)[2] for line in log.read_text().splitlines()] == [
        "INFO find started", "ERROR find failed (exit 2): " + FULL[7:-1]]


@pytest.mark.parametrize("stderr", ["full", "closed"])
def test_a_stderr_that_cannot_be_written_leaves_the_json_document_and_exit_code(ws, stderr):
    # was: exit 1 and an empty stdout (the error line raised before the document)
    done = leadctl(ws, "find", "nosuch = 1", "--json", stderr=stderr)
    doc = json.loads(done.stdout)
    assert (done.returncode, doc["exit_code"], doc["error"]["type"]) == (2, 2, "UsageError")
    assert leadctl(ws, "find", "nosuch = 1", stderr=stderr).returncode == 2
    found = leadctl(ws, "find", "true", "--json", stderr=stderr)
    assert (found.returncode, json.loads(found.stdout)["count"]) == (0, 2)


def test_a_usage_error_on_a_full_stderr_is_still_exit_2(ws):
    assert leadctl(ws, "find", "true", "--limit", "x", stderr="full").returncode == 2
