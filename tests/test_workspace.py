"""Workspace: atomic publish, writer lock, stale lock take-over, readers during writes."""

from __future__ import annotations

import multiprocessing
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from leadctl import workspace
from leadctl.errors import WorkspaceError, WorkspaceLocked
from leadctl.starter import starter_rules_dir
from leadctl.workspace import _clone_or_copy, open_reader, open_writer, reading, temp_copy
from tests.conftest import RULES, SAMPLE_INBOX, Cli, write


def count_leads(db) -> int:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("SELECT count(*) FROM leads").fetchone()[0]
    finally:
        con.close()


def insert_lead(ws, key: int) -> None:
    ws.execute("INSERT INTO leads (lead_key, source, lead_id) VALUES (?, 's', ?)", [key, str(key)])


def test_writer_publishes_on_success_only(tmp_path):
    db = tmp_path / "ws.duckdb"
    with open_writer(db, create=True) as ws:
        insert_lead(ws, 1)
    assert count_leads(db) == 1
    with pytest.raises(RuntimeError), open_writer(db) as ws:
        insert_lead(ws, 2)
        raise RuntimeError("boom")
    assert count_leads(db) == 1
    assert not (tmp_path / "ws.duckdb.work").exists()


def test_a_write_keeps_the_workspace_mode_and_a_read_only_one_is_refused(tmp_path):
    db = tmp_path / "ws.duckdb"
    with open_writer(db, create=True) as ws:
        insert_lead(ws, 1)
    db.chmod(0o640)
    with open_writer(db) as ws:
        assert os.stat(tmp_path / "ws.duckdb.work").st_mode & 0o777 == 0o640  # while it works
        insert_lead(ws, 2)
    assert (db.stat().st_mode & 0o777, count_leads(db)) == (0o640, 2)
    db.chmod(0o440)
    read_only = r"ws.duckdb is read-only \(its mode has no write permission\): nothing"
    with pytest.raises(WorkspaceError, match=read_only), open_writer(db) as ws:
        insert_lead(ws, 3)
    assert count_leads(db) == 2


def test_a_publish_that_fails_is_a_workspace_error_and_publishes_nothing(tmp_path, monkeypatch):
    db = tmp_path / "ws.duckdb"
    with open_writer(db, create=True) as ws:
        insert_lead(ws, 1)

    def full(src, dst):
        raise OSError(28, "No space left on device", str(src))

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(WorkspaceError) as failed, open_writer(db) as ws:
        insert_lead(ws, 2)
    assert str(failed.value) == (
        f"cannot write workspace {db}: No space left on device (nothing "
        "was published: the workspace is as it was)")
    monkeypatch.undo()
    assert count_leads(db) == 1 and not (tmp_path / "ws.duckdb.work").exists()


def test_a_folder_turned_unwritable_during_a_write_is_a_workspace_error(tmp_path, monkeypatch):
    # The publish fails, and so does removing the private copy: the publish's failure is
    # told (exit 2), not the removal's PermissionError (exit 3)
    db = tmp_path / "ws.duckdb"
    with open_writer(db, create=True) as ws:
        insert_lead(ws, 1)
    unlink = Path.unlink

    def unwritable(src, dst):
        def refused(self, missing_ok=False):
            raise PermissionError(13, "Permission denied", str(self))
        monkeypatch.setattr(Path, "unlink", refused)
        raise PermissionError(13, "Permission denied", str(src))

    monkeypatch.setattr(os, "replace", unwritable)
    with pytest.raises(WorkspaceError) as failed, open_writer(db) as ws:
        insert_lead(ws, 2)
    assert str(failed.value) == (f"cannot write workspace {db}: Permission denied (nothing "
                                 "was published: the workspace is as it was)")
    monkeypatch.setattr(Path, "unlink", unlink)
    monkeypatch.undo()
    assert (tmp_path / "ws.duckdb.work").exists()  # left to the next writer
    with open_writer(db) as ws:
        insert_lead(ws, 2)
    assert count_leads(db) == 2 and not (tmp_path / "ws.duckdb.work").exists()


def test_a_private_copy_that_cannot_be_made_is_a_workspace_error(tmp_path, monkeypatch):
    db = tmp_path / "ws.duckdb"
    with open_writer(db, create=True) as ws:
        insert_lead(ws, 1)

    def too_large(src, dst):
        raise OSError(27, "File too large", str(src), None, str(dst))

    monkeypatch.setattr(shutil, "copyfile", too_large)
    with pytest.raises(WorkspaceError) as failed, open_writer(db) as ws:
        insert_lead(ws, 2)
    assert str(failed.value) == (f"cannot write workspace {db}: File too large (nothing was "
                                 "published: the workspace is as it was)")
    monkeypatch.undo()
    assert count_leads(db) == 1


def test_a_link_to_the_workspace_publishes_into_the_file_it_names_under_its_lock(tmp_path):
    real, link = tmp_path / "real.duckdb", tmp_path / "link.duckdb"
    with open_writer(real, create=True) as ws:
        insert_lead(ws, 1)
    link.symlink_to(real)
    with open_writer(link) as ws:
        insert_lead(ws, 2)
        with pytest.raises(WorkspaceLocked), open_writer(real):
            pass  # the same file under its other name: locked
    assert link.is_symlink() and count_leads(real) == 2


def test_a_damaged_workspace_is_a_workspace_error_for_readers_and_writers(tmp_path):
    db = tmp_path / "ws.duckdb"
    with open_writer(db, create=True) as ws:
        ws.execute("CREATE TABLE big AS SELECT range AS n, md5(range::VARCHAR) AS t "
                   "FROM range(300000)")
    data = bytearray(db.read_bytes())
    data[len(data) // 3:len(data) // 3 + 100000] = b"U" * 100000  # a damaged stretch
    db.write_bytes(bytes(data))
    with pytest.raises(WorkspaceError, match=(
            f"^cannot read workspace {db}: Corrupt database file: computed checksum .* \\(the "
            "file is damaged or truncated: restore it from a copy\\)$")), reading(db) as ws:
        ws.execute("SELECT sum(length(t)) FROM big")
    with pytest.raises(WorkspaceError, match="; nothing was published\\)$"), \
            open_writer(db) as ws:
        ws.execute("CREATE TABLE copy AS SELECT * FROM big")


@pytest.mark.parametrize("kept", [0.4, 4096])  # a share of the file, or bytes
def test_a_truncated_workspace_is_refused_whatever_a_command_reads(tmp_path, kept):
    db = tmp_path / "ws.duckdb"
    with open_writer(db, create=True) as ws:
        ws.execute("CREATE TABLE big AS SELECT range AS n, md5(range::VARCHAR) AS t "
                   "FROM range(300000)")
    data = db.read_bytes()
    db.write_bytes(data[:int(len(data) * kept) if kept < 1 else kept])
    damaged = "the file is damaged or truncated: restore it from a copy\\)$"
    with pytest.raises(WorkspaceError, match=damaged):
        open_reader(db)  # before any query: one that reads no lost block answered
    with pytest.raises(WorkspaceError, match=damaged), open_writer(db):
        pass
    assert not db.with_name("ws.duckdb.work").exists()


def test_a_reader_opening_a_file_as_a_smaller_one_replaces_it_reads_the_one_opened(
        tmp_path, monkeypatch):
    # the size was taken from the path again: by then a publish (or a restore) had put a
    # smaller file there, and the valid file opened was called truncated
    db, small = tmp_path / "ws.duckdb", tmp_path / "small.duckdb"
    with open_writer(db, create=True) as ws:
        ws.execute("CREATE TABLE big AS SELECT range AS n, md5(range::VARCHAR) AS t "
                   "FROM range(300000)")
    with open_writer(small, create=True) as ws:
        insert_lead(ws, 1)
    opening = workspace._connect

    def replaced_once_open(*args, **kwargs):
        con = opening(*args, **kwargs)
        os.replace(small, db)
        return con

    monkeypatch.setattr(workspace, "_connect", replaced_once_open)
    reader = open_reader(db)
    assert reader.scalar("SELECT count(*) FROM big") == 300000
    reader.con.close()


def test_reader_sees_published_state_while_writer_works(tmp_path):
    db = tmp_path / "ws.duckdb"
    with open_writer(db, create=True) as ws:
        insert_lead(ws, 1)
    with open_writer(db) as ws:
        insert_lead(ws, 2)
        reader = open_reader(db)  # no lock error while the writer runs
        assert reader.scalar("SELECT count(*) FROM leads") == 1
        reader.con.close()
    assert count_leads(db) == 2


def _hold_lock(db, ready, release, create=False):
    with open_writer(db, create=create):
        ready.set()
        release.wait(20)


@pytest.mark.parametrize("published", [True, False])  # False: a new workspace's first night
def test_second_writer_is_refused_with_pid(tmp_path, published):
    db = tmp_path / "ws.duckdb"
    if published:
        with open_writer(db, create=True):
            pass
    ctx = multiprocessing.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(db, ready, release, not published))
    holder.start()
    try:
        assert ready.wait(20)  # (not told to run init while the first night makes it)
        with pytest.raises(WorkspaceLocked, match=rf"pid {holder.pid}\b"), open_writer(db):
            pass
        if not published:  # a reader too: not told to run init
            with pytest.raises(WorkspaceLocked, match=rf"pid {holder.pid}\b"):
                open_reader(db)
    finally:
        release.set()
        holder.join(20)
    with pytest.raises(WorkspaceError, match="^no workspace at .*: run `leadctl init`"), \
            open_writer(tmp_path / "other.duckdb"):
        pass
    with pytest.raises(WorkspaceError, match="^no workspace at .*: run `leadctl init`"):
        open_reader(tmp_path / "other.duckdb")


def _die_while_writing(db, ready):
    with open_writer(db) as ws:
        insert_lead(ws, 99)
        ready.set()
        time.sleep(60)


def test_killed_writer_leaves_published_state_and_stale_lock_is_taken_over(tmp_path):
    db = tmp_path / "ws.duckdb"
    with open_writer(db, create=True) as ws:
        insert_lead(ws, 1)
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Event()
    victim = ctx.Process(target=_die_while_writing, args=(db, ready))
    victim.start()
    assert ready.wait(20)
    os.kill(victim.pid, signal.SIGKILL)
    victim.join(20)
    assert count_leads(db) == 1  # the half-done work was never published
    with open_writer(db) as ws:  # the lock file is still there, but its flock died
        insert_lead(ws, 2)
    assert count_leads(db) == 2


def test_reader_needs_an_existing_workspace(tmp_path):
    with pytest.raises(WorkspaceError, match="run `leadctl init` first"):
        open_reader(tmp_path / "missing.duckdb")


def test_init_creates_workspace_and_copies_rules(cli, tmp_path):

    init_cli = Cli(tmp_path / "new" / "leadctl.duckdb", rules=tmp_path / "new" / "rules")
    result = init_cli("init", tmp_path / "new", "--json")
    assert result.exit_code == 0, result.stderr
    data = result.json()
    assert data["db_created"] is True
    assert (tmp_path / "new" / "leadctl.duckdb").exists()
    names = ["costs.yaml", "funnels.yaml", "identity.yaml", "routing.yaml", "scoring.yaml",
             "sources.yaml", "tags.yaml", *(f"tests/{name}.yaml" for name in (
                 "app_install_funnel", "behaviour_and_preference", "days_since_first_payment",
                 "edges", "lifecycle_stage", "login_days_30d", "login_streak", "paid_amount_30d",
                 "profile", "rfm_segment", "scoring_routing", "top_categories_7d",
                 "value_tier"))]
    copied = [str(tmp_path / "new" / "rules" / name) for name in names]
    assert (data["rules_copied"], data["rules_kept"]) == (copied, [])
    for name in names:  # each one a copy of the starter rule file
        assert (tmp_path / "new" / "rules" / name).read_bytes() == \
            (starter_rules_dir() / name).read_bytes()
    again = init_cli("init", tmp_path / "new", "--json").json()
    assert (again["db_created"], again["rules_copied"], again["rules_kept"]) == (
        False, [], copied)


@pytest.mark.parametrize("given", [["--rules", "./rules"], ["--rules", "rules"],
                                   ["--rules", "mine"], "LEADCTL_RULES", []])
def test_init_writes_the_rules_where_rules_given_says_else_into_its_folder(
        tmp_path, monkeypatch, given):
    # (`leadctl --rules ./rules init ws` put them in ws/rules: `./rules` was taken for the
    # default)

    from leadctl.cli.app import app

    monkeypatch.chdir(tmp_path)
    env = {"LEADCTL_DB": None, "LEADCTL_RULES": "rules" if given == "LEADCTL_RULES" else None}
    args = given if isinstance(given, list) else []
    result = CliRunner().invoke(app, [*args, "init", "ws"], env=env)
    assert result.exit_code == 0, result.stderr
    rules = Path(args[1]) if args else Path("rules" if given else "ws/rules")
    assert result.stdout == (f"workspace {Path('ws/leadctl.duckdb')} (created)\n"
                             f"rules in {rules}: 20 copied, 0 kept\n")
    assert (tmp_path / rules / "tags.yaml").read_bytes() == \
        (starter_rules_dir() / "tags.yaml").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({"ws", rules.parts[0]})
    assert (tmp_path / "ws" / "rules").exists() is (rules == Path("ws/rules"))


def test_the_private_copy_is_a_clone_or_an_exact_copy(tmp_path):
    src, dst = tmp_path / "a.duckdb", tmp_path / "a.duckdb.work"
    src.write_bytes(os.urandom(300_000))
    dst.write_bytes(b"leftover of a killed writer, longer than nothing")
    _clone_or_copy(src, dst)
    assert dst.read_bytes() == src.read_bytes()


def row_groups(db, table: str) -> int:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("SELECT count(DISTINCT row_group_id) "
                           f"FROM pragma_storage_info('{table}')").fetchone()[0]
    finally:
        con.close()


def test_every_seventh_nightly_run_compacts_and_other_writers_never_do(tmp_path, caplog):
    """Deleted rows keep their row groups (no vacuum at a checkpoint) until the seventh
    nightly run since the last compaction publishes; other commands do not count. The
    log says so for a `load-results` as for a `run` (it said nothing of the former)."""
    caplog.set_level("INFO", logger="leadctl")
    db = tmp_path / "ws.duckdb"
    with open_writer(db, create=True) as ws:
        ws.execute("CREATE TABLE t AS SELECT range AS i FROM range(300000)")  # 3 row groups
    compacted = []
    for night in range(1, 15):
        with open_writer(db) as ws:
            assert ws.scalar("SELECT current_setting('max_vacuum_tasks')") == 0
            ws.start_run("claim", None)
            ws.start_run("run" if night % 2 else "load-results", None)
            compacted.append(ws.compact_when_due())
            ws.execute(f"DELETE FROM t WHERE i % 3 <> 0 OR i = {3 * night}")
        if night == 1:
            assert row_groups(db, "t") == 3  # two thirds deleted, nothing merged
    assert [n for n, c in enumerate(compacted, 1) if c] == [7, 14]
    assert [r.getMessage() for r in caplog.records if "compacts" in r.getMessage()] == [
        "publishing compacts the workspace (every 7 nightly runs)"] * 2
    assert row_groups(db, "t") == 1
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*) FROM t").fetchone()[0] == 100000 - 14
    con.close()


def test_refused_and_failed_runs_are_no_nights_for_the_compaction(tmp_path):
    """Ten refused or failed attempts (nothing published) after one real night: the next
    real night is the second, not the seventh; six real ones make the seventh compact."""
    db = tmp_path / "ws.duckdb"
    with open_writer(db, create=True) as ws:
        for outcome in ["ok"] + ["refused", "failed"] * 5:
            ws.start_run("run", None)
            ws.finish_run(outcome)
    due = []
    for _ in range(6):
        with open_writer(db) as ws:
            ws.start_run("run", None)
            due.append(ws.compact_when_due())
            ws.finish_run("ok")
    assert due == [False] * 5 + [True]


def test_a_write_the_file_size_limit_refuses_is_a_workspace_error_and_leaves_nothing(
        tmp_path):
    """A disk that fills mid-run (here a 1 MB file size limit) fails at a COMMIT or a
    checkpoint of the private copy: exit 2 naming the workspace, no copy left behind."""


    limit = (1_000_000, 1_000_000)
    ran = subprocess.run(
        [sys.executable, "-m", "leadctl", "--db", str(tmp_path / "ws.duckdb"), "--rules",
         str(RULES), "ingest", str(SAMPLE_INBOX)], capture_output=True, text=True,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, limit), timeout=300)
    assert ran.returncode == 2, ran.stderr
    assert ran.stderr.splitlines()[-1].startswith(
        f"error: cannot write workspace {tmp_path / 'ws.duckdb'}: ")
    assert ran.stderr.endswith("(nothing was published: the workspace is as it was)\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ws.duckdb.lock"]


def test_an_input_file_named_like_the_workspace_fails_alone(tmp_path):

    cli = Cli(tmp_path / "crm")
    (tmp_path / "crm_orders.parquet").write_bytes(b"PAR1" + b"\0" * 64)  # damaged
    write(tmp_path / "web.csv", "lead_id,phone\nW1,13700000001\n")
    result = cli("ingest", tmp_path / "crm_orders.parquet", tmp_path / "web.csv", "--json")
    assert result.exit_code == 2
    assert [(f["file"].rsplit("/", 1)[-1], f["status"]) for f in result.json()["files"]] == [
        ("crm_orders.parquet", "failed"), ("web.csv", "loaded")]


def test_a_staged_copy_left_by_a_killed_process_is_removed_by_the_next_writer(
        tmp_path, monkeypatch):
    # a GBK file's transcoded copy (its rows in clear) stayed in the temp folder for good


    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    gone = subprocess.Popen(["true"])
    gone.wait()
    fd, mine = temp_copy(".csv")
    os.close(fd)
    left = tmp_path / f"leadctl-{gone.pid}-x1.csv"
    left.write_text("lead_id,name\nA1,张三\n", encoding="utf-8")
    with open_writer(tmp_path / "ws.duckdb", create=True):
        pass
    assert sorted(p.name for p in tmp_path.glob("leadctl-*")) == [os.path.basename(mine)]
    assert os.path.basename(mine).startswith(f"leadctl-{os.getpid()}-")


def test_leadctl_db_written_as_a_folder_is_refused_by_the_library(tmp_path, monkeypatch):
    """$LEADCTL_DB with a trailing `/` was refused by the CLI's --db parser only: the
    library (and the CLI's fast portrait path) read it as the file `newdir`, and a writer
    made it. Now the library refuses it with the CLI's message and makes nothing."""

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LEADCTL_DB", "newdir/")
    with pytest.raises(WorkspaceError, match=r"^LEADCTL_DB: newdir/ names a folder: give "
                                             r"a file path$"), open_writer(None, create=True):
        pass
    with pytest.raises(WorkspaceError, match="names a folder"), reading("out/."):
        pass
    assert list(tmp_path.iterdir()) == []
    monkeypatch.delenv("LEADCTL_DB")
    done = subprocess.run([sys.executable, "-m", "leadctl", "portrait", "P1"], cwd=tmp_path,
                          env={**os.environ, "LEADCTL_DB": "newdir/",
                               "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
                          capture_output=True, text=True)
    assert (done.returncode, done.stderr) == (2, "error: newdir/ names a folder: give a "
                                                 "file path\n")
    assert list(tmp_path.iterdir()) == []


def test_init_refuses_the_root_and_an_empty_folder_before_making_anything(tmp_path,
                                                                           monkeypatch):
    # (`--rules "$UNSET/"` wrote the starter rules into /; a missing folder of --db was
    # found only after the rules had been copied)
    import shutil

    def copied(src, dest):
        raise AssertionError(f"init wrote {dest}")

    monkeypatch.setattr(shutil, "copyfile", copied)
    for rules, folder, message in (
            (Path("/"), tmp_path / "w", "/ is the root folder (an unset variable before a "
                                        "/?): name the rules folder"),
            (tmp_path / "r", Path("/"), "/ is the root folder (an unset variable before a "
                                        "/?): name the workspace folder"),
            (tmp_path / "t2" / "rules", tmp_path / "t2",
             f"directory {tmp_path / 't2' / 'sub'} does not exist")):
        db = tmp_path / "t2" / "sub" / "ws.duckdb" if folder.name == "t2" else \
            tmp_path / "ws.duckdb"
        result = Cli(db, rules=rules)("init", folder, "--json")
        assert (result.exit_code, result.json()["error"]["message"]) == (2, message)
    empty = Cli(tmp_path / "ws.duckdb", rules=tmp_path / "r")("init", "")
    assert empty.exit_code == 2 and "name the workspace folder" in empty.stderr
    assert list(tmp_path.iterdir()) == []
