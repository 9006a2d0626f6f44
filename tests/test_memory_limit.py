"""--memory-limit / LEADCTL_MEMORY_LIMIT: checked before anything runs, passed to every
DuckDB connection the workspace opens (with a spill folder beside the workspace), and
the same results under a tight limit."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from leadctl.cli.app import app
from leadctl.errors import UsageError, WorkspaceError
from leadctl.workspace import (
    configure,
    memory_limit,
    open_memory,
    open_reader,
    open_writer,
    parse_memory_limit,
    reading,
)
from tests.conftest import Cli
from tests.test_run import AS_OF, SAMPLE_INBOX, leadctl, runs_log, state


@pytest.fixture(autouse=True)
def _no_limit_left_behind(monkeypatch):
    monkeypatch.delenv("LEADCTL_MEMORY_LIMIT", raising=False)
    configure(memory_limit=None)
    yield
    configure(memory_limit=None)


@pytest.mark.parametrize(("given", "duckdb_form"), [
    ("3GB", "3GB"), ("500MB", "500MB"), ("1.5GiB", "1.5GiB"), ("2gb", "2GB"),
    (" 750 mb ", "750MB"), ("16MB", "16MB"), ("4tib", "4TiB"),
])
def test_sizes_are_accepted_in_decimal_and_binary_units(given, duckdb_form):
    assert parse_memory_limit(given) == duckdb_form


@pytest.mark.parametrize(("given", "message"), [
    ("junk", "--memory-limit must be a size such as 3GB, 500MB or 1.5GiB, not 'junk'"),
    ("3", "--memory-limit must be a size such as 3GB, 500MB or 1.5GiB, not '3'"),
    ("3XB", "--memory-limit must be a size such as 3GB, 500MB or 1.5GiB, not '3XB'"),
    ("-1GB", "--memory-limit must be a size such as 3GB, 500MB or 1.5GiB, not '-1GB'"),
    ("", "--memory-limit must be a size such as 3GB, 500MB or 1.5GiB, not ''"),
    ("80%", "--memory-limit must be a size such as 3GB, 500MB or 1.5GiB, not '80%'"),
    ("1MB", "--memory-limit 1MB is too small: DuckDB needs at least 16MB"),
    ("99999999TB", "--memory-limit 99999999TB is too large: at most 1000TB"),
    ("1001TB", "--memory-limit 1001TB is too large: at most 1000TB"),
])
def test_junk_sizes_are_usage_errors(given, message):
    with pytest.raises(UsageError) as err:
        parse_memory_limit(given)
    assert str(err.value) == message


@pytest.mark.parametrize("args_env", [
    (["--memory-limit", "lots"], {}),
    ([], {"LEADCTL_MEMORY_LIMIT": "lots"}),
])
def test_cli_refuses_junk_with_exit_2_before_anything_runs(tmp_path, args_env):
    args, env = args_env
    cli = Cli(tmp_path / "ws.duckdb")
    result = CliRunner().invoke(app, ["--db", str(cli.db), *args, "init", str(tmp_path)],
                                env=env)
    assert result.exit_code == 2
    assert "Invalid value for '--memory-limit'" in result.stderr
    assert "must be a size such as 3GB, 500MB or 1.5GiB, not 'lots'" in result.stderr
    assert not cli.db.exists()


def _settings(ws) -> tuple:
    return ws.execute("SELECT current_setting('memory_limit'), "
                      "current_setting('temp_directory')").fetchone()


def test_the_limit_and_spill_folder_reach_every_connection(tmp_path):
    db = tmp_path / "ws.duckdb"
    configure(memory_limit="200MB")
    assert memory_limit() == "200MB"
    with open_writer(db, create=True) as ws:
        # DuckDB's pool gets 80%: the rest of the process stays within the limit too.
        assert _settings(ws) == ("152.5 MiB", str(tmp_path / "ws.duckdb.tmp"))
    reader = open_reader(db)
    try:
        assert _settings(reader) == ("152.5 MiB", str(tmp_path / "ws.duckdb.tmp"))
    finally:
        reader.con.close()
    assert open_memory().scalar("SELECT current_setting('memory_limit')") == "152.5 MiB"
    (tmp_path / "elsewhere").mkdir()
    link = tmp_path / "elsewhere" / "ws.duckdb"
    link.symlink_to(db)  # one spill folder, the file's, whichever name opens it
    with open_writer(link) as ws:
        assert _settings(ws)[1] == str(tmp_path / "ws.duckdb.tmp")
    with reading(link) as reader:
        assert _settings(reader)[1] == str(tmp_path / "ws.duckdb.tmp")


def test_the_env_gives_the_limit_when_not_configured(tmp_path, monkeypatch):
    monkeypatch.setenv("LEADCTL_MEMORY_LIMIT", "1GiB")
    with open_writer(tmp_path / "ws.duckdb", create=True) as ws:
        assert _settings(ws)[0] == "819.1 MiB"
    monkeypatch.setenv("LEADCTL_MEMORY_LIMIT", "many")
    with pytest.raises(UsageError, match="LEADCTL_MEMORY_LIMIT must be a size"):
        open_reader(tmp_path / "ws.duckdb")


def test_the_cli_option_configures_the_workspace(tmp_path):
    cli = Cli(tmp_path / "ws.duckdb")
    assert cli("--memory-limit", "300MB", "init", str(tmp_path)).exit_code == 0
    assert memory_limit() == "300MB"
    assert cli("runs").exit_code == 0  # a later command without it: no limit
    assert memory_limit() is None


def test_a_run_under_a_tight_limit_gives_the_same_results(tmp_path):
    plain, tight = tmp_path / "plain.duckdb", tmp_path / "tight.duckdb"
    for db, extra in ((plain, []), (tight, ["--memory-limit", "80MB"])):
        result = leadctl(db, *extra, "run", "--inbox", str(SAMPLE_INBOX), "--as-of", AS_OF,
                         "--json")
        assert result.returncode == 0, result.stderr
    assert state(tight) == state(plain)
    assert not (tmp_path / "tight.duckdb.tmp").exists()  # DuckDB removed its spill folder


def test_running_out_of_memory_within_the_limit_says_so_exit_2(tmp_path):
    result = leadctl(tmp_path / "ws.duckdb", "--memory-limit", "20MB", "run", "--inbox",
                     str(SAMPLE_INBOX), "--as-of", AS_OF)
    assert result.returncode == 2
    assert "error: DuckDB ran out of memory within --memory-limit 20MB (" in result.stderr
    assert result.stderr.rstrip().endswith("raise the limit")
    assert runs_log(tmp_path / "ws.duckdb")[-1] == ("run", "failed")


def test_a_spill_disk_without_room_says_so_not_raise_the_limit(tmp_path):
    # DuckDB spills up to the free space of the disk under the spill folder: this caps it
    # as a full disk would (its out-of-memory error said "raise the limit", a wrong cure)
    configure(memory_limit="30MB")
    with pytest.raises(WorkspaceError) as failed, open_writer(tmp_path / "ws.duckdb",
                                                               create=True) as ws:
        ws.execute("SET threads = 1")
        ws.execute("SET max_temp_directory_size = '2MB'")
        ws.execute("CREATE TABLE t AS SELECT i, md5(CAST(i AS VARCHAR)) AS s "
                   "FROM range(3000000) r(i) ORDER BY s")
    assert str(failed.value).startswith(
        f"cannot write the spill folder {tmp_path / 'ws.duckdb.tmp'} (where DuckDB keeps "
        "what does not fit in memory, beside the workspace): the disk is full (failed to "
        "offload data block of size ")
    assert str(failed.value).endswith(
        "); free space there or move the workspace to a disk with room (nothing was "
        "published: the workspace is as it was)")


def test_the_spill_a_killed_process_left_is_cleared_by_the_next_command(tmp_path):

    cli = Cli(tmp_path / "ws.duckdb")
    assert cli("init", str(tmp_path)).exit_code == 0
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    spill = tmp_path / "ws.duckdb.tmp"
    spill.mkdir()
    left = [f"duckdb_temp_{dead}_0_owner", f"duckdb_temp_{dead}_0_storage_DEFAULT-0.tmp"]
    live = f"duckdb_temp_{os.getpid()}_0_storage_DEFAULT-0.tmp"  # a running process's
    for name in (*left, live):
        (spill / name).write_bytes(b"x")
    assert cli("runs").exit_code == 0  # a reader, without a limit
    assert sorted(p.name for p in spill.iterdir()) == [live]
    (spill / live).unlink()
    assert cli("runs").exit_code == 0
    assert not spill.exists()  # an empty folder goes too (DuckDB keeps one it did not make)


def test_the_copy_a_killed_dry_run_left_is_cleared_by_the_next_write_or_dry_run(tmp_path):

    cli = Cli(tmp_path / "ws.duckdb")
    assert cli("init", str(tmp_path)).exit_code == 0
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    left, live = (tmp_path / f".leadctl-dry-run-{pid}-x1" for pid in (dead, os.getpid()))
    for folder in (left, live):
        folder.mkdir()
        (folder / "ws.duckdb").write_bytes(b"a copy with personal data")
    assert cli("run", "--dry-run", "--as-of", "2026-11-01").exit_code == 0
    assert sorted(tmp_path.glob(".leadctl-dry-run-*")) == [live]
    left.mkdir()
    assert cli("run", "--as-of", "2026-11-01").exit_code == 0  # a writer clears them too
    assert sorted(tmp_path.glob(".leadctl-dry-run-*")) == [live]


def test_a_spill_folder_that_cannot_be_made_is_the_users_to_fix_exit_2(tmp_path):
    # a stray file where the spill folder goes: DuckDB's IO error was an internal error (3)
    (tmp_path / "ws.duckdb.tmp").write_text("junk")
    result = leadctl(tmp_path / "ws.duckdb", "--memory-limit", "80MB", "run", "--inbox",
                     str(SAMPLE_INBOX), "--as-of", AS_OF)
    assert (result.returncode, result.stderr.splitlines()[-1]) == (
        2, f"error: cannot write the spill folder {tmp_path / 'ws.duckdb.tmp'} (where DuckDB "
           "keeps what does not fit in memory, beside the workspace): Failed to create directory "
           f"\"{tmp_path / 'ws.duckdb.tmp'}\": File exists (nothing was published: the "
           "workspace is as it was)")
    assert runs_log(tmp_path / "ws.duckdb")[-1] == ("run", "failed")
