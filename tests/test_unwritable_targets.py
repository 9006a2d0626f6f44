"""Every place a command writes that the user names (an -o file, --log-file, init's
folder, the workspace's folder) fails as a user error: exit 2, one JSON document under
--json, a message naming the path, nothing recorded; never an internal error (exit 3)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from conftest import Cli, write

from leadctl.errors import UsageError
from leadctl.views.export import part_name, refuse_workspace_file

AS_OF = "2026-11-01"
# A folder where nothing can be created (Linux /proc): DuckDB's COPY itself refuses.
UNWRITABLE = Path("/proc")
needs_proc = pytest.mark.skipif(not sys.platform.startswith("linux") or not UNWRITABLE.is_dir(),
                                reason="needs Linux /proc, a folder where no file can be made")


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("unwritable")
    inbox = root / "inbox"
    inbox.mkdir()
    write(inbox / "web.csv", "lead_id,name,phone,created_at\nL1,张三,13900000001,2026-10-01\n")
    ws = Cli(root / "ws.duckdb")
    assert ws("run", "--inbox", inbox, "--as-of", AS_OF).exit_code == 0
    (root / "folder.csv").mkdir()
    (root / "not_a_db.duckdb").write_text("hello\n", encoding="utf-8")
    return {"root": root, "ws": ws}


# Every command with an -o file, as (arguments before the target, after it).
WRITERS = {
    "export": (["export", "leads", "-o"], []),
    "find": (["find", "true", "-o"], []),
    "report channels": (["report", "channels", "-o"], []),
    "report channels --duplicates": (["report", "channels", "--duplicates", "web", "-o"], []),
    "audience export": (["audience", "export", "spring", "true", "-o"], []),
}


def _failure(result, code: int, kind: str) -> str:
    doc = json.loads(result.stdout)
    assert (result.exit_code, doc["exit_code"], doc["error"]["type"]) == (code, code, kind)
    assert doc["error"]["message"] in result.stderr
    return doc["error"]["message"]


def _experiments(env) -> int:

    with duckdb.connect(str(env["ws"].db), read_only=True) as con:
        return con.execute("SELECT count(*) FROM experiments").fetchone()[0]


@pytest.mark.parametrize("command", WRITERS)
def test_an_output_file_that_is_a_folder_is_a_usage_error(env, command):
    before, after = WRITERS[command]
    target = env["root"] / "folder.csv"
    result = env["ws"](*before, target, *after, "--json")
    assert _failure(result, 2, "UsageError") == f"{target} is a folder: give a file name for -o"
    assert _experiments(env) == 0  # the audience was not recorded


@needs_proc
@pytest.mark.parametrize("command", WRITERS)
def test_an_output_file_the_file_system_refuses_is_an_input_error(env, command):
    before, after = WRITERS[command]
    target = UNWRITABLE / "leadctl-test.csv"
    result = env["ws"](*before, target, *after, "--json")
    assert _failure(result, 2, "InputError").startswith(f"cannot write {target}: ")
    assert _experiments(env) == 0


@pytest.mark.parametrize("command", [c for c in WRITERS if c != "audience export"])
def test_an_existing_output_file_is_replaced_and_nothing_beside_it(env, command):
    # (DuckDB's COPY over an existing file wrote `tmp_<name>` and renamed it: a user's own
    # file of that name was lost)
    before, after = WRITERS[command]
    folder = env["root"] / command.replace(" ", "_")
    folder.mkdir()
    write(folder / "out.csv", "old\n")
    write(folder / "tmp_out.csv", "the user's own file\n")
    assert env["ws"](*before, folder / "out.csv", *after).exit_code == 0
    assert (folder / "out.csv").read_text(encoding="utf-8") != "old\n"
    assert (folder / "tmp_out.csv").read_text(encoding="utf-8") == "the user's own file\n"
    assert sorted(p.name for p in folder.iterdir()) == ["out.csv", "tmp_out.csv"]


@pytest.mark.parametrize("command", [c for c in WRITERS if c != "audience export"])
def test_a_long_output_file_name_is_written(env, command):
    """A name of 250 bytes is the file system's to take: the hidden name it is written
    under first stays within 255 bytes (it went past, and the command ended in exit 3)."""
    before, after = WRITERS[command]
    folder = env["root"] / ("long_" + command.replace(" ", "_"))
    folder.mkdir()
    target = folder / ("张" * 80 + "a" * 6 + ".csv")
    assert len(target.name.encode()) == 250
    result = env["ws"](*before, target, *after)
    assert result.exit_code == 0, result.stderr
    assert [p.name for p in folder.iterdir()] == [target.name]
    assert target.read_text(encoding="utf-8").startswith(("lead_id,", "person_id,", "channel,"))


def test_sigterm_while_an_export_renames_its_file_stops_it_with_the_file_whole(env):
    """The signal acts after the rename (it was dropped: exit 0 as though none came)."""
    out = env["root"] / "renamed.csv"
    stopped = subprocess.run(
        [sys.executable, "-m", "leadctl", "--db", str(env["ws"].db), "--rules",
         str(env["ws"].rules), "export", "leads", "-o", str(out)],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "LEADCTL_TEST_KILL_AFTER": "file rename",
             "LEADCTL_TEST_KILL_SIGNAL": "TERM"})
    assert stopped.returncode == 143, stopped.stderr
    assert out.read_text(encoding="utf-8").splitlines()[1].startswith("L1,web,")


def test_the_hidden_name_a_file_is_written_under_keeps_whole_characters():
    assert part_name("out.csv", "0123456789ab") == ".out.csv.0123456789ab.part"
    # a name with a byte no UTF-8 reads (through a link): left out, as COPY takes no such name
    assert part_name(os.fsdecode(b"caf\xe9.csv"), "0123456789ab") == ".caf.csv.0123456789ab.part"
    long = part_name("张" * 85, "0123456789ab")
    assert long == "." + "张" * 78 + ".0123456789ab.part" and len(long.encode()) == 253


@pytest.mark.parametrize("command", [["runs"], ["portrait", "L1"], ["find", "true"]])
def test_a_log_file_that_cannot_be_appended_to_is_a_usage_error(env, command):
    for target, reason in ((env["root"], "Is a directory"),
                           (env["root"] / "no" / "log.txt", "No such file or directory")):
        result = env["ws"]("--log-file", target, *command, "--json")
        assert _failure(result, 2, "UsageError") == (
            f"Invalid value for '--log-file': cannot append to {target}: {reason}")


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (a full disk)")
def test_a_log_file_on_a_full_disk_ends_the_command_with_exit_2_not_tracebacks(env):
    result = env["ws"]("--log-file", "/dev/full", "runs", "--json")
    assert result.exit_code == 2
    assert isinstance(json.loads(result.stdout), list)  # the command itself ran
    assert result.stderr == ("error: cannot write the log file /dev/full: "
                             "No space left on device\n")


@needs_proc
def test_init_where_no_folder_can_be_made_is_an_input_error(env):
    result = env["ws"]("init", UNWRITABLE / "leadctl-test", "--json")
    assert _failure(result, 2, "InputError") == (
        f"cannot create the folder {UNWRITABLE}/leadctl-test: No such file or directory")


@needs_proc
def test_a_workspace_where_no_lock_can_be_made_is_a_workspace_error(env):
    result = Cli(UNWRITABLE / "ws.duckdb")("run", "--inbox", env["root"] / "inbox", "--json")
    assert _failure(result, 2, "WorkspaceError") == (
        f"cannot write beside the workspace: {UNWRITABLE}/ws.duckdb.lock: "
        "No such file or directory")


def test_a_file_that_is_no_workspace_is_named_as_given(env):
    db = env["root"] / "not_a_db.duckdb"
    message = _failure(Cli(db)("tag", "--as-of", AS_OF, "--json"), 2, "WorkspaceError")
    assert message.startswith(f"{db} is not a leadctl workspace ") and ".work" not in message


@pytest.mark.parametrize("command", [
    ["portrait", "1"], ["find", "true"], ["report", "channels"], ["explain", "1"],
    ["export", "leads", "-o", "out.csv"], ["runs"], ["rules", "check"],
    ["ingest", "leads.csv"], ["run", "--inbox", "leads.csv", "--as-of", AS_OF],
    ["run", "--dry-run", "--inbox", "leads.csv", "--as-of", AS_OF], ["tag", "--as-of", AS_OF],
    ["init", "."]])
def test_a_csv_given_as_the_workspace_is_refused_and_left_as_it_was(env, command,
                                                                     monkeypatch):
    # (readers showed DuckDB's "in-memory database in read-only mode"; writers its error
    # and left leads.csv.lock beside the CSV)
    folder = env["root"] / f"csv_db_{'_'.join(command[:2]).replace('-', '')}"
    folder.mkdir()
    monkeypatch.chdir(folder)
    csv = write(folder / "leads.csv", "lead_id,phone\nW1,13700000001\n")
    before = csv.read_bytes()
    # init: its rules would go to ./rules, and must not (refused before they are written)
    rules = {"rules": Path("rules")} if command[0] == "init" else {}
    result = Cli(Path("leads.csv"), **rules)(*command, "--json")
    assert _failure(result, 2, "WorkspaceError") == (
        "leads.csv is not a leadctl workspace (not a DuckDB database file): nothing was "
        "changed; pass --db the workspace file")
    assert csv.read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == ["leads.csv"]


@pytest.mark.parametrize("command", [["runs"], ["find", "true"], ["tag", "--as-of", AS_OF],
                                     ["status", "X1", "new"]])
@pytest.mark.parametrize("made", [
    ["CREATE TABLE foo (a INTEGER)"],
    ["CREATE TABLE meta (key VARCHAR, value VARCHAR)", "CREATE TABLE users (a INTEGER)"],
    ["CREATE VIEW v AS SELECT 1 AS a"]])
def test_another_applications_duckdb_database_is_refused_and_left_as_it_was(tmp_path,
                                                                             command, made):
    # (readers failed with exit 3 on a missing table; writers added the workspace's tables)
    db = tmp_path / "analytics.duckdb"
    with duckdb.connect(str(db)) as con:
        for statement in made:
            con.execute(statement)
    before = db.read_bytes()
    assert _failure(Cli(db)(*command, "--json"), 2, "WorkspaceError") == (
        f"{db} is a DuckDB database but not a leadctl workspace: nothing was changed; "
        "pass --db the workspace file")
    assert db.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["analytics.duckdb"]


def test_an_empty_duckdb_file_is_no_workspace_to_read_but_one_to_write(tmp_path):
    db = tmp_path / "new.duckdb"
    duckdb.connect(str(db)).close()
    assert _failure(Cli(db)("runs", "--json"), 2, "WorkspaceError") == (
        f"no workspace in {db} (an empty DuckDB database): run `leadctl init` first "
        "(or pass --db)")
    assert Cli(db)("status", "X1", "pending").exit_code == 1  # a workspace now: no X1
    assert Cli(db)("runs", "--json").exit_code == 0


@pytest.mark.parametrize("option", [["--db", "x.duckdb"], ["--memory-limit", "1GB"],
                                    ["--log-file", "x.log"]])
def test_a_global_option_after_the_command_says_where_it_goes(env, option):
    result = env["ws"]("runs", *option, "--json")
    assert _failure(result, 2, "UsageError") == (
        f"No such option: {option[0]} (a global option: it goes before the command, as in "
        f"`leadctl {option[0]} … runs …`)")


def test_the_workspace_is_no_output_or_log_file_of_any_command(env):
    # `identity suspects -o` wrote its YAML over the workspace; --log-file appended to it
    db = env["ws"].db
    before = db.read_bytes()
    (env["root"] / "bl.yaml").symlink_to(db)
    for target in (db, env["root"] / "bl.yaml"):
        result = env["ws"]("identity", "suspects", "-o", target, "--json")
        assert _failure(result, 2, "UsageError") == (
            f"-o {target} is the workspace {db} or one of its files: write the result to "
            "another file")
    result = env["ws"]("--log-file", db, "find", "true", "--count", "--json")
    assert _failure(result, 2, "UsageError") == (
        f"Invalid value for '--log-file': {db} is the workspace {db} or one of its files: "
        "log to another file")
    assert db.read_bytes() == before


def test_init_whose_rules_cannot_be_written_creates_nothing(env):
    folder = env["root"] / "w1"
    folder.mkdir()
    (folder / "rules").write_text("a file where the rules folder goes\n", encoding="utf-8")
    result = Cli(folder / "leadctl.duckdb", rules=folder / "rules")("init", folder, "--json")
    assert _failure(result, 2, "InputError") == (
        f"cannot write the rules to {folder}/rules: File exists")
    assert sorted(p.name for p in folder.iterdir()) == ["rules"]


def test_a_dry_run_in_a_folder_that_does_not_exist_is_refused_as_a_run_is(env):
    for dry in ((), ("--dry-run",)):
        result = Cli(env["root"] / "nodir" / "ws.duckdb")("run", "--as-of", AS_OF, *dry,
                                                          "--json")
        assert _failure(result, 2, "WorkspaceError") == (
            f"directory {env['root']}/nodir does not exist")


@pytest.mark.parametrize("command", WRITERS)
def test_an_output_file_written_with_a_trailing_separator_names_a_folder(env, command):
    # (pathlib dropped the `/`: `-o out.csv/` wrote a file out.csv)
    before, after = WRITERS[command]
    folder = env["root"] / f"slash_{command.replace(' ', '_')}"
    folder.mkdir()
    for target in (f"{folder}/out.csv/", f"{folder}/out.csv/."):
        result = env["ws"](*before, target, *after, "--json")
        assert _failure(result, 2, "UsageError") == (
            f"Invalid value for '-o' / '--output': {target} names a folder: give a file path")
    assert list(folder.iterdir()) == []
    assert _experiments(env) == 0


def test_a_workspace_or_log_file_written_with_a_trailing_separator_names_a_folder(env):
    # (`--db newdir/ init` made a workspace FILE named newdir; --log-file a file too)
    folder = env["root"] / "slash_global"
    folder.mkdir()
    result = Cli(f"{folder}/newdir/")("init", folder, "--json")
    assert _failure(result, 2, "UsageError") == (
        f"Invalid value for '--db' (env var: 'LEADCTL_DB'): {folder}/newdir/ names"
        " a folder: give a file path")
    result = env["ws"]("--log-file", f"{folder}/log/", "runs", "--json")
    assert _failure(result, 2, "UsageError") == (
        f"Invalid value for '--log-file': {folder}/log/ names a folder: give a file path")
    assert list(folder.iterdir()) == []


def test_the_log_file_refusal_is_the_librarys_message(env):
    # (the CLI rebuilt the message beside refuse_workspace_file's own)

    db = env["ws"].db
    with pytest.raises(UsageError) as refused:
        refuse_workspace_file("--log-file", db, db, instead="log to another file")
    assert str(refused.value) == (
        f"--log-file {db} is the workspace {db} or one of its files: log to another file")
    result = env["ws"]("--log-file", db, "runs", "--json")
    assert _failure(result, 2, "UsageError") == (
        f"Invalid value for '--log-file': {str(refused.value).removeprefix('--log-file ')}")
