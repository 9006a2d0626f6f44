"""The one module that owns DuckDB connections.

Publishing model: the workspace file (`leadctl.duckdb`) is the *published*
state. Readers open it read-only. A writer takes an exclusive lock
(`<db>.lock`, flock: released by the kernel if the process dies), copies the
published file to `<db>.work`, does all its work there, checkpoints and
atomically renames it over the published file. So a reader never sees a
half-written state, and `kill -9` at any point leaves the last published state.

Memory: `configure(memory_limit=...)` (the CLI's global `--memory-limit`) or the env
`LEADCTL_MEMORY_LIMIT` caps every DuckDB connection opened here; DuckDB then spills to
`<db>.tmp/` beside the workspace, which it removes when the connection closes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import re
import shutil
import signal
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from leadctl import clock, pii
from leadctl.clock import DEFAULT_ZONE, ZONE_KEY, wall_clock
from leadctl.errors import (
    InputError,
    LeadctlError,
    UsageError,
    WorkspaceError,
    WorkspaceLocked,
    interruption,
)
from leadctl.limits import BIGINT_MAX, BIGINT_MIN
from leadctl.schema import (
    COMPACT_EVERY_RUNS,
    COMPACTED_KEY,
    SCHEMA_VERSION,
    UPGRADES,
    all_ddl,
    compaction_due_sql,
)
from leadctl.sqlfn import DECIMAL_RANGE, NOT_FINITE
from leadctl.sqltext import meta_value_sql, set_meta_sql

log = logging.getLogger("leadctl")

DEFAULT_DB = "leadctl.duckdb"
LOCK, WORK, WAL = ".lock", ".work", ".wal"  # a writer's lock, its private copy, DuckDB's log
MEMORY_LIMIT_ENV = "LEADCTL_MEMORY_LIMIT"
UNPUBLISHED = "(nothing was published: the workspace is as it was)"  # a failed writer's end
_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*", re.IGNORECASE)
MIN_MEMORY_LIMIT = 16 * 10**6  # below this DuckDB cannot even hold a few vectors
MAX_MEMORY_LIMIT = 10**15  # 1000TB: more than any machine has, within what DuckDB accepts
# DuckDB's memory_limit bounds its buffer pool; the process also holds Python, the rules,
# Arrow hand-overs and DuckDB's unpooled allocations. With the whole limit for the pool a
# 4M-lead run under 3GB peaked at 3,251 MiB RSS (3.4 GB), so DuckDB gets this share.
DUCKDB_SHARE = 0.8
_SETTINGS: dict[str, str | None] = {"memory_limit": None}


_SEPARATORS = tuple(sep for sep in (os.sep, os.altsep) if sep)


def names_folder(text: str) -> str | None:
    """The problem of a file path written with a trailing separator (`newdir/`,
    `out.csv/.`): it names a folder, which pathlib would silently make a file name of."""
    if text.endswith(_SEPARATORS) or text.endswith(tuple(f"{sep}." for sep in _SEPARATORS)):
        return f"{text} names a folder: give a file path"
    return None


def is_root_folder(path: str | os.PathLike) -> bool:
    """Whether `path` is the root folder (`"$DIR/"` with DIR unset): refused wherever a
    folder is named, as a command would read or write all of the machine."""
    return os.path.realpath(path) == os.path.abspath(os.sep)


_SURROGATE = re.compile("[\ud800-\udfff]")


def name_text(text: str | os.PathLike) -> str:
    """A file name, or text holding one, as text that can be stored and printed: bytes of
    a name that are not UTF-8 (which Python reads as lone surrogates, which neither
    DuckDB nor a UTF-8 screen takes) written as their escapes (`b\\xffd.csv`)."""
    return _SURROGATE.sub(_escape_surrogate, os.fspath(text))


def _escape_surrogate(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"


def db_path_from(value: str | os.PathLike | None) -> Path:
    """The workspace file: `value` (--db), else $LEADCTL_DB, else the default. Either
    written as a folder (a trailing `/`) is a WorkspaceError, as the CLI's --db is."""
    if value:
        text, where = os.fspath(value), ""
    else:
        text, where = os.environ.get("LEADCTL_DB") or DEFAULT_DB, "LEADCTL_DB: "
    problem = names_folder(text)
    if problem:
        raise WorkspaceError(where + problem)
    return Path(text)


def workspace_path(value: str | os.PathLike | None) -> Path:
    """The workspace file `value` names (--db, $LEADCTL_DB, the default); a directory
    there, or a path DuckDB cannot open as written (unopenable_path), is a
    WorkspaceError, for readers and writers alike."""
    path = db_path_from(value)
    if path.is_dir():
        raise WorkspaceError(f"{path} is a directory, not a workspace file: pass --db FILE "
                             "(e.g. --db leads.duckdb)")
    problem = unopenable_path(path)
    if problem:
        raise WorkspaceError(f"{path}: {problem}: nothing was changed; rename it or pass "
                             "--db another path")
    return path


# The longest name beside the workspace file: a writer's private copy's log.
_LONGEST_SIBLING = WORK + WAL


def unopenable_path(path: Path) -> str | None:
    """Why DuckDB cannot open the workspace `path` as written, or None: it takes a backslash
    for a folder separator (another file opened, a copy written into another folder), a
    `?` in a folder's name cuts its log's path there, and the writer's private copy's log
    (`<db>.work.wal`) needs a name 9 bytes longer."""
    text = os.path.abspath(path)  # (the working folder's name counts too)
    if "\\" in text:
        return "DuckDB reads a \\ in a path as a folder separator"
    if "?" in os.path.dirname(text):
        return "DuckDB cannot keep its log in a folder whose name holds a ?"
    longest = len(os.fsencode(path.name + _LONGEST_SIBLING))
    if longest > 255:
        return f"the name is too long ({longest - len(_LONGEST_SIBLING)} bytes; at most " \
               f"{255 - len(_LONGEST_SIBLING)}: DuckDB's log beside it adds {_LONGEST_SIBLING})"
    return None


# DuckDB's database file: a checksum (8 bytes), then its magic bytes.
_MAGIC, _MAGIC_AT = b"DUCK", 8


def refuse_other_file(path: Path) -> None:
    """A file at `path` that is no DuckDB database (a CSV given as --db, an empty file) is
    a WorkspaceError, before DuckDB opens it (of a `.csv` it spoke of an "in-memory
    database in read-only mode") and before a writer locks or copies it."""
    try:
        with open(path, "rb") as file:
            head = file.read(_MAGIC_AT + len(_MAGIC))
    except OSError:
        return  # none yet (a writer makes it), or unreadable: the open that follows says why
    if head[_MAGIC_AT:] != _MAGIC:
        raise WorkspaceError(f"{path} is not a leadctl workspace (not a DuckDB database "
                             "file): nothing was changed; pass --db the workspace file")


def parse_memory_limit(value: str, name: str = "--memory-limit") -> str:
    """A memory size as DuckDB takes it (`3GB`, `500MB`, `1.5GiB`: decimal or binary
    units); UsageError naming `name` for anything else or less than 16MB."""
    match = _SIZE.fullmatch(value or "")
    unit = match.group(2).lower() if match else ""
    if not match or unit not in _UNITS:
        raise UsageError(f"{name} must be a size such as 3GB, 500MB or 1.5GiB, not {value!r}")
    if float(match.group(1)) * _UNITS[unit] < MIN_MEMORY_LIMIT:
        raise UsageError(f"{name} {value} is too small: DuckDB needs at least 16MB")
    if float(match.group(1)) * _UNITS[unit] > MAX_MEMORY_LIMIT:
        raise UsageError(f"{name} {value} is too large: at most 1000TB")
    return f"{match.group(1)}{match.group(2).upper().replace('I', 'i')}"


def configure(*, memory_limit: str | None = None) -> None:
    """Process-wide settings for every connection opened from now on (the CLI sets them
    once from its global options); `memory_limit` None falls back to the env."""
    _SETTINGS["memory_limit"] = parse_memory_limit(memory_limit) if memory_limit else None


def duckdb_memory_limit(limit: str) -> str:
    """DuckDB's own setting for a process limit (`parse_memory_limit`'s form), in bytes."""
    match = _SIZE.fullmatch(limit)
    return f"{int(float(match.group(1)) * _UNITS[match.group(2).lower()] * DUCKDB_SHARE)}B"


def memory_limit() -> str | None:
    """The configured limit, else `LEADCTL_MEMORY_LIMIT`, else None (DuckDB's default:
    80% of RAM)."""
    if _SETTINGS["memory_limit"]:
        return _SETTINGS["memory_limit"]
    env = os.environ.get(MEMORY_LIMIT_ENV)
    return parse_memory_limit(env, MEMORY_LIMIT_ENV) if env else None


def temp_directory(path: Path) -> Path:
    """Where DuckDB spills for the workspace at `path` (all its connections: DuckDB's temp
    files carry the process id): beside the file it names, as its lock, so readers and
    writers reaching it through a link spill to one folder (the writer's was the file's,
    a reader's the link's)."""
    real = Path(os.path.realpath(path))
    return real.with_name(real.name + ".tmp")


class SqlSession:
    """What every executor offers on top of `execute`: small results, ids, the run log.
    DuckDB's Workspace and the Spark engine's SparkWorkspace both build on it."""

    run_id: int | None = None
    # Whether a sort first samples its input to split it into ranges (Spark), which
    # computes that input twice: an expensive one is better stored, then sorted.
    sort_samples_input = False
    # Whether deleting and appending a few rows of a stored table costs those rows
    # (DuckDB), not a rewrite of the whole table (the Spark engine's Parquet tables).
    changes_rows_in_place = True

    def execute(self, sql: str, params: list | dict | None = None) -> Any:
        raise NotImplementedError

    def script(self, statements: list[str]) -> None:
        for statement in statements:
            self.execute(statement)

    def rows(self, sql: str, params: list | dict | None = None) -> list[dict]:
        """Small results only (summaries, one person): list of dicts."""
        cur = self.execute(sql, params)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def scalar(self, sql: str, params: list | dict | None = None) -> Any:
        row = self.execute(sql, params).fetchone()
        return row[0] if row else None

    def next_id(self, table: str, column: str) -> int:
        return int(self.scalar(f'SELECT coalesce(max("{column}"), 0) + 1 FROM "{table}"'))

    # -- the workspace's clock -------------------------------------------------
    # The time zone of the rules (sources.yaml) of the command: the workspace's until it
    # stores the zone its first rows were read in (then a different one is refused).
    rules_zone: str | None = None
    _stored_zone: str | None = None
    run_as_of: dt.date | None = None  # the as-of the run log's row was started with

    def zone(self) -> str:
        """The workspace time zone: the one its times were read in (meta), else the
        rules' (`rules_zone`), else the default (Asia/Shanghai)."""
        if self._stored_zone is None:  # once stored it stays (ingest refuses another)
            self._stored_zone = self.scalar(meta_value_sql(ZONE_KEY))
        return self._stored_zone or self.rules_zone or DEFAULT_ZONE

    def now(self, instant: dt.datetime | None = None) -> dt.datetime:
        """Now (or the aware `instant`) as the wall-clock time of the workspace zone: the
        clock of every stamp (ingest, rejects, run log, history), whatever the machine's
        time zone."""
        return wall_clock(self.zone(), instant)

    def today(self) -> dt.date:
        """Today in the workspace zone: the default as-of."""
        return self.now().date()

    def settle_clock(self, zone: str | None, as_of: dt.date | None = None, *,
                     today: bool = True) -> dt.date | None:
        """The session's clock reads `zone` (the rules' time zone, sources.yaml's) until
        the workspace stores the zone its times were read in; returns `as_of`, or (with
        `today`) today in the workspace zone when it is None."""
        self.rules_zone = zone
        return as_of or (self.today() if today else None)

    # -- run log ---------------------------------------------------------------
    def start_run(self, command: str, as_of: dt.date | None, rules_hash: str | None = None,
                  started_at: dt.datetime | None = None, after: int | None = None) -> int:
        """A new row of the run log, started now (or at `started_at`: a failed run's row is
        written afterwards, in a session of its own). `after`: a run id the run's id must
        pass (load-results: the loaded rows keep the Spark run log's ids)."""
        run_id = max(self.next_id("runs", "run_id"), (after or 0) + 1)
        self.run_as_of = as_of
        self.execute(
            "INSERT INTO runs (run_id, command, started_at, as_of, rules_hash, outcome) "
            "VALUES (?, ?, ?, ?, ?, 'running')",
            [run_id, command, self.now(started_at), as_of, rules_hash],
        )
        self.run_id = run_id
        return run_id

    def finish_run(self, outcome: str, counts: dict | None = None, inputs: Any = None,
                   error: str | None = None, as_of: dt.date | None = None) -> None:
        """Ends the run's row; `as_of`: the date the run settled on, when it started
        without one (`score` takes its tags'). The error is kept masked, as the log file
        keeps it, whatever `--reveal` showed on the screen (a phone typed as a rep)."""
        error = pii.mask_lines(name_text(error)) if error else error
        self.execute(
            "UPDATE runs SET ended_at = ?, outcome = ?, counts = ?, inputs = ?, "
            "error = ?, as_of = coalesce(?, as_of) WHERE run_id = ?",
            [self.now(), outcome, json.dumps(counts or {}, default=str),
             json.dumps(inputs, default=str), error, as_of, self.run_id],
        )


class Workspace(SqlSession):
    """A DuckDB connection plus helpers to run builder-produced SQL."""

    # Whether this write session's file has replaced the published one (open_writer): a
    # signal after that point stops a process whose work is done.
    published = False
    # Whether the checkpoint that publishes this write session also compacts tables: merges
    # under-filled row groups and reclaims the space of deleted rows (DuckDB's vacuum).
    compact_on_publish = False

    def __init__(self, con: Any, path: Path | None, *, read_only: bool, run_id: int | None = None,
                 file: Path | None = None):
        self.con = con
        self.path = path  # the workspace as the user named it
        self.file = file or path  # the file DuckDB has open (a writer's private copy)
        self.read_only = read_only
        self.run_id = run_id

    def compact_when_due(self) -> bool:
        """Sets `compact_on_publish` when the nightly runs since the last compaction, this
        one included, reach COMPACT_EVERY_RUNS (and records this run as the last one): so
        deleted rows of the tables kept incrementally are reclaimed once a week of nights."""
        self.compact_on_publish = bool(self.scalar(compaction_due_sql()))
        if self.compact_on_publish:
            self.script(set_meta_sql(COMPACTED_KEY, str(self.run_id)))
            log.info("publishing compacts the workspace (every %d nightly runs)",
                     COMPACT_EVERY_RUNS)
        return self.compact_on_publish

    # -- execution -----------------------------------------------------------
    def execute(self, sql: str, params: list | dict | None = None) -> Any:
        started = time.perf_counter()
        try:
            result = self.con.execute(sql, params) if params is not None else self.con.execute(sql)
        except Exception as exc:
            if type(exc).__name__ == "OutOfMemoryException" and \
                    "'max_temp_directory_size'" in str(exc):
                raise WorkspaceError(self._full_spill_disk(exc)) from exc
            if type(exc).__name__ == "OutOfMemoryException" and memory_limit():
                raise WorkspaceError(
                    f"DuckDB ran out of memory within --memory-limit {memory_limit()} "
                    f"({str(exc).splitlines()[0]}); raise the limit") from exc
            failed = self._file_failure(exc)
            if failed:
                raise WorkspaceError(failed) from exc
            raise
        finally:
            if log.isEnabledFor(logging.DEBUG):
                first = " ".join(sql.split())[:120]
                log.debug("sql %.3fs: %s", time.perf_counter() - started, first)
        return result

    def _file_failure(self, exc: Exception) -> str | None:
        """The message for an engine error about the workspace file itself (a full disk,
        a file size limit, a truncated or damaged file): the user's to fix, not an
        internal error; None for any other error."""
        if self.file is None or type(exc).__name__ not in (
                "IOException", "FatalException", "TransactionException", "Error"):
            return None
        text = str(exc)
        # DuckDB quotes the file it names (the database or its `.wal`)
        named = any(f'"{name}{suffix}"' in text for name in (os.path.abspath(self.file),
                                                              self.file)
                    for suffix in ("", WAL))
        if not named and not text.startswith("Corrupt database file"):
            return self._spill_failure(exc)  # else another file's error, or no file's
        reason = _as_named(exc, self.file, self.path)
        low = text.lower()
        if "could not read" in low or "corrupt database file" in low:
            return (f"cannot read workspace {self.path}: {reason} (the file is damaged or "
                    "truncated: restore it from a copy"
                    + (")" if self.read_only else "; nothing was published)"))
        return f"cannot write workspace {self.path}: {reason} {UNPUBLISHED}"

    def _full_spill_disk(self, exc: Exception) -> str:
        """The message for a spill that found no room: DuckDB's limit on what it spills
        is the free space of the disk under the spill folder (a larger memory limit is
        not the cure)."""
        reason = str(exc).splitlines()[0].removeprefix("Out of Memory Error: ")
        return self._spill_message(f"the disk is full ({reason}); free space there or move "
                                   "the workspace to a disk with room")

    def _spill_message(self, reason: str) -> str:
        return (f"cannot write the spill folder {temp_directory(Path(self.path))} (where "
                f"DuckDB keeps what does not fit in memory, beside the workspace): {reason}"
                + ("" if self.read_only else f" {UNPUBLISHED}"))

    def _spill_failure(self, exc: Exception) -> str | None:
        """The message for an error writing where DuckDB spills (`temp_directory`, or its
        own default beside the file it has open): a stray file of that name, a folder
        that cannot be written, a full disk are the user's to fix, not an internal error."""
        text = str(exc)
        folders = {temp_directory(Path(p)) for p in (self.path, self.file)}  # (link: its file's)
        if not any(f'"{name}' in text for folder in folders
                   for name in (folder, os.path.abspath(folder))):
            return None
        return self._spill_message(text.splitlines()[0].removeprefix("IO Error: "))

    def arrow(self, sql: str, params: list | dict | None = None):
        # A relation hands Arrow over without the DB-API result's extra copy.
        rel = self.con.sql(sql, params=params) if params else self.con.sql(sql)
        to_table = getattr(rel, "to_arrow_table", None) or rel.arrow
        return to_table()

    def probe(self, sql: str) -> Any:
        """One value from a query run apart, in a transaction of its own, or None when it
        fails: the caller's open transaction stays usable (a look at a file, not at
        tables; the reader's error is then the real read's to report)."""
        import duckdb  # loaded already: this workspace has a connection

        try:
            with self.con.cursor() as cur:
                row = cur.execute(sql).fetchone()
        except duckdb.Error:
            return None
        return row[0] if row else None

    def register(self, name: str, table: Any) -> None:
        self.con.register(name, table)

    def unregister(self, name: str) -> None:
        self.con.unregister(name)

    def columns(self, name: str) -> list[tuple[str, str]]:
        """(column, DuckDB type) of a table or view, in order."""
        return [tuple(r) for r in self.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = ? ORDER BY ordinal_position", [name]).fetchall()]

    def has_column(self, table: str, column: str) -> bool:
        """Whether `table` has `column` (a workspace made before a column was added, and
        only read since, has not been upgraded: schema.UPGRADES)."""
        return any(c == column for c, _ in self.columns(table))

    def columns_of_query(self, sql: str) -> list[tuple[str, str]]:
        return [(r[0], r[1]) for r in self.execute(f"DESCRIBE {sql}").fetchall()]

    def table_type(self, name: str) -> str | None:
        """'BASE TABLE', 'VIEW' or 'LOCAL TEMPORARY'; None when there is no such table."""
        return self.scalar("SELECT table_type FROM information_schema.tables "
                           "WHERE table_name = ? ORDER BY table_catalog = 'temp' LIMIT 1",
                           [name])

    def tables_like(self, prefix: str) -> list[str]:
        return [r[0] for r in self.execute(
            "SELECT table_name FROM information_schema.tables WHERE starts_with(table_name, ?) "
            "ORDER BY table_name", [prefix]).fetchall()]

    @contextlib.contextmanager
    def unordered(self) -> Iterator[None]:
        """Bulk steps that do not depend on row order: lets DuckDB parallelise CREATE AS."""
        setting = self.scalar("SELECT current_setting('preserve_insertion_order')")
        self.execute("SET preserve_insertion_order = false")
        try:
            yield
        finally:
            self.execute(f"SET preserve_insertion_order = {'true' if setting else 'false'}")

    def table_exists(self, name: str) -> bool:
        return bool(
            self.scalar(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]
            )
        )


_SPILL_FILE = re.compile(r"duckdb_temp_(\d+)_")  # DuckDB's temp files carry their pid


def _left_by_dead(folder: Path, named: re.Pattern) -> Iterator[Path]:
    """The entries of `folder` whose name (`named`, group 1: a process id) says a process
    that is gone made them; those of a live process are not listed."""
    try:
        names = os.listdir(folder)
    except OSError:
        return  # none yet: nothing was left
    for name in names:
        match = named.match(name)
        if match and not _alive(int(match[1])):
            yield folder / name


def _clear_stale_spill(folder: Path) -> None:
    """Removes the spill files a killed process left in `folder` (DuckDB removes only its
    own, when it closes), then the folder when it is empty: DuckDB removes a folder it
    made, never one that was there before it."""
    for left in _left_by_dead(folder, _SPILL_FILE):
        with contextlib.suppress(OSError):
            os.unlink(left)
    with contextlib.suppress(OSError):
        folder.rmdir()  # only when empty


DRY_RUN_PREFIX = ".leadctl-dry-run-"  # + the pid + a random part: a dry run's copy
_DRY_RUN_FOLDER = re.compile(re.escape(DRY_RUN_PREFIX) + r"(\d+)-")


TEMP_COPY_PREFIX = "leadctl-"  # + the pid: a file's staged copy in the temp folder
_TEMP_COPY = re.compile(re.escape(TEMP_COPY_PREFIX) + r"(\d+)-")


def temp_copy(suffix: str) -> tuple[int, str]:
    """(fd, path) of a new file in the temp folder for a staged copy of an input file
    (transcoded, trimmed): named with this process's id, so that a writer removes it
    should the process be killed (it holds the file's rows, personal data included)."""
    return tempfile.mkstemp(prefix=f"{TEMP_COPY_PREFIX}{os.getpid()}-", suffix=suffix)


def _clear_stale_temp_copies() -> None:
    for left in _left_by_dead(Path(tempfile.gettempdir()), _TEMP_COPY):
        with contextlib.suppress(OSError):
            left.unlink()


def _clear_stale_dry_runs(parent: Path | None) -> None:
    """Removes the folders of dry runs a killed process left beside the workspace (each a
    whole copy of it, personal data included)."""
    for left in _left_by_dead(parent or Path(tempfile.gettempdir()), _DRY_RUN_FOLDER):
        shutil.rmtree(left, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # another user's process: alive
    return True


def _connect(path: str, *, read_only: bool, spill_to: Path | None = None):
    """A DuckDB connection with the workspace settings: no progress bar (ours goes through
    rich on stderr; DuckDB's would interleave), UTC as the session time zone and, with a
    memory limit, the limit and the folder to spill to (`spill_to`; in-memory databases
    keep DuckDB's default)."""
    limit = memory_limit()
    import duckdb

    if spill_to is not None:  # also without a limit: a killed run's spill is cleared
        _clear_stale_spill(spill_to)
    con = duckdb.connect(path, read_only=read_only)
    con.execute("SET enable_progress_bar = false")
    # A zoned value's text (a list or struct of them kept as an attribute) in UTC, as on
    # Spark, not in the machine's zone; leadctl's times are converted by name otherwise.
    con.execute("SET TimeZone = 'UTC'")
    if not read_only:
        # No vacuum at checkpoints (merging under-filled row groups) unless a writer asks
        # (`Workspace.compact_on_publish`): every table a night rebuilds in parallel ends in
        # under-filled row groups, and merging them was 2.9 s of a 1M second night's 25 s.
        con.execute("SET max_vacuum_tasks = 0")
    if limit:
        con.execute(f"SET memory_limit = '{duckdb_memory_limit(limit)}'")
        if spill_to is not None:
            con.execute("SET temp_directory = ?", [str(spill_to)])
    return con


DAMAGED = "the file is damaged or truncated: restore it from a copy"
# DuckDB's file header: three 4 KiB blocks before the data blocks.
_HEADER_BYTES = 3 * 4096


def _opened(con: Any, file: Path, shown: Path, *, reader: bool = False,
            before: os.stat_result | None = None) -> None:
    """Refuses a workspace file shorter than the blocks in use its header counts (a
    truncated copy; free blocks at the end may be cut off by DuckDB itself): DuckDB reads
    blocks only when a query needs them, so a command that needs none of the lost ones
    would answer from a broken file as if all were well. Refuses too another
    application's DuckDB database (`_refuse_foreign`). `before`: the file's stat taken
    before connecting (a reader's: a publish may replace the file meanwhile)."""
    _refuse_foreign(con, shown, reader=reader)
    if _beside(file, WAL).exists():  # blocks a replayed log added are not in the file
        return
    # fetchall: a result left unfinished blocks the connection's cursors (DuckDB 2)
    needed = con.execute(f"SELECT {_HEADER_BYTES} + block_size * used_blocks "
                         "FROM pragma_database_size()").fetchall()[0][0]
    now = file.stat()
    if before is not None and (before.st_ino, before.st_dev) != (now.st_ino, now.st_dev):
        return  # published anew while opening: which file was opened is not known
    size = now.st_size
    if size < needed:
        con.close()
        raise WorkspaceError(f"cannot read workspace {shown}: it holds {size} of the "
                             f"{needed} bytes its blocks in use need ({DAMAGED})")


def _refuse_foreign(con: Any, shown: Path, *, reader: bool = False) -> None:
    """A DuckDB database without a workspace's `meta(key, value)` and its schema_version
    is no workspace: a reader would fail on a missing table, a writer add the workspace's
    tables to another application's file. An empty database has nothing to lose: a
    writer makes it a workspace; a reader finds none in it."""
    try:  # a workspace's own meta: one small read (every reader pays it; portrait too)
        # fetchall: a result left unfinished blocks the connection's cursors (DuckDB 2)
        if con.execute("SELECT count(*) FROM main.meta "
                       "WHERE key = 'schema_version'").fetchall()[0][0]:
            return
    except Exception:  # noqa: BLE001 - no such table or column: not a workspace's meta
        pass
    here = "database_name = current_database() AND NOT temporary"
    objects = con.execute(
        f"SELECT (SELECT count(*) FROM duckdb_tables() WHERE {here}) "
        f"+ (SELECT count(*) FROM duckdb_views() WHERE {here} AND NOT internal)"
        ).fetchall()[0][0]
    if objects or reader:
        con.close()
        raise WorkspaceError(
            f"{shown} is a DuckDB database but not a leadctl workspace: nothing was changed;"
            " pass --db the workspace file" if objects else
            f"no workspace in {shown} (an empty DuckDB database): run `leadctl init` first "
            "(or pass --db)")


def _open_failure(exc: Exception, work: Path, shown: Path) -> WorkspaceError:
    reason = _as_named(exc, work, shown)
    if "could not read enough bytes" in reason.lower() or reason.startswith("Corrupt"):
        reason += f" ({DAMAGED})"
    return WorkspaceError(f"cannot open workspace {shown}: {reason}")


def open_reader(db: str | os.PathLike | None) -> Workspace:
    """Read-only view of the published state; works while a writer runs."""
    path = workspace_path(db)
    if not path.exists():
        _refuse_if_being_made(path)
        raise WorkspaceError(f"no workspace at {path}: run `leadctl init` first (or pass --db)")
    refuse_other_file(path)
    before = path.stat()
    try:
        # absolute: DuckDB takes a relative `backup:1.duckdb` for an extension's scheme
        con = _connect(os.path.abspath(path), read_only=True, spill_to=temp_directory(path))
    except LeadctlError:
        raise
    except Exception as exc:  # duckdb raises IOException for non-database files
        raise _open_failure(exc, path, path) from exc
    _opened(con, path, path, reader=True, before=before)
    return Workspace(con, path, read_only=True)


@contextlib.contextmanager
def reading(db: str | os.PathLike | None) -> Iterator[Workspace]:
    """`open_reader` as a context: the connection is closed however the block ends."""
    ws = open_reader(db)
    try:
        yield ws
    finally:
        ws.con.close()


def open_memory() -> Workspace:
    """An in-memory workspace with the full schema (rule fixtures, tests)."""
    ws = Workspace(_connect(":memory:", read_only=False), None, read_only=False)
    ensure_schema(ws)
    return ws


def ensure_schema(ws: Workspace) -> None:
    ws.script(all_ddl())
    ws.script(UPGRADES)
    ws.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", [SCHEMA_VERSION])


class _Lock:
    def __init__(self, path: Path):
        self.path = path
        self.fd: int | None = None

    def acquire(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:  # a read-only or pseudo file system: no place for a writer
            raise WorkspaceError(f"cannot write beside the workspace: {self.path}: "
                                 f"{exc.strerror}") from None
        self._take(fd)
        # A lock file left by a killed process is simply re-locked: flock died with it.
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "command": _command_name(),
                                  "started": clock.utc_now().isoformat(timespec="seconds")
                                  }).encode(), 0)
        self.fd = fd

    def _take(self, fd: int) -> None:
        """Locks `fd`, or closes it and raises WorkspaceLocked naming the holder."""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = ""
            with contextlib.suppress(OSError):
                holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
            os.close(fd)
            info = json.loads(holder) if holder.startswith("{") else {}
            raise WorkspaceLocked(
                f"workspace is locked by another leadctl writer (pid {info.get('pid', '?')}, "
                f"{info.get('command', '?')} started {self._started(info.get('started'))}); "
                "try again later") from None

    def refuse_if_held(self) -> None:
        """WorkspaceLocked when another writer holds the lock (a workspace's first night
        publishes it only at its end: meanwhile its lock file is all there is)."""
        try:
            fd = os.open(self.path, os.O_RDWR)
        except OSError:
            return  # no lock file: nobody is writing it
        self._take(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def _started(self, started: Any) -> str:
        """The holder's start as the run log shows it: the wall clock of the workspace
        zone (the lock keeps the instant), not the machine's."""
        try:
            instant = dt.datetime.fromisoformat(started)
        except (TypeError, ValueError):
            return str(started or "?")
        if instant.tzinfo is None:  # written by an earlier version: as it was written
            return instant.isoformat(timespec="seconds")
        zone = None
        published = self.path.with_name(self.path.name.removesuffix(LOCK))
        with contextlib.suppress(Exception):  # no workspace yet, or not one to read
            con = _connect(str(published), read_only=True)
            try:
                zone = (con.execute(meta_value_sql(ZONE_KEY)).fetchone() or [None])[0]
            finally:
                con.close()
        if zone is None:  # no zone stored yet (a first ingest): the instant, with its offset
            return instant.isoformat(timespec="seconds")
        return wall_clock(zone, instant).isoformat(timespec="seconds")

    def release(self) -> None:
        if self.fd is not None:
            os.ftruncate(self.fd, 0)
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


_COMMAND = {"name": "leadctl"}


def set_command_name(name: str) -> None:
    _COMMAND["name"] = name


def _command_name() -> str:
    return _COMMAND["name"]


def _writable(db: str | os.PathLike | None, create: bool) -> tuple[Path, Path]:
    """(the workspace as given, the file it names) of a workspace a writer may open."""
    path = workspace_path(db)
    if not path.exists() and not create:
        _refuse_if_being_made(path)
        raise WorkspaceError(f"no workspace at {path}: run `leadctl init` first (or pass --db)")
    if path.parent and not path.parent.exists():
        raise WorkspaceError(f"directory {path.parent} does not exist")
    refuse_other_file(path)
    # A link is followed: the file it names is locked and replaced (under either name),
    # never the link itself; messages name the workspace as given.
    target = Path(os.path.realpath(path))
    if path.exists() and target not in _HELD_LOCKS:  # (a held lock's taker checked it)
        _refuse_foreign_file(path)  # before a lock file is made beside it
    if path.exists() and not path.stat().st_mode & stat.S_IWUSR:
        raise WorkspaceError(f"workspace {path} is read-only (its mode has no write "
                             "permission): nothing was changed; make it writable to update it")
    return path, target


def _refuse_if_being_made(path: Path) -> None:
    """WorkspaceLocked naming the writer when a workspace not yet published is being
    made (its first night holds the lock): not `run leadctl init first`."""
    if path.parent.is_dir():
        _Lock(_beside(Path(os.path.realpath(path)), LOCK)).refuse_if_held()


def _refuse_foreign_file(path: Path) -> None:
    """`_refuse_foreign` of the published file, read-only (one that cannot be opened is
    left to the writer's own open, which says why)."""
    try:
        con = _connect(str(path), read_only=True)
    except Exception:  # noqa: BLE001
        return
    _refuse_foreign(con, path)
    con.close()


# Writer locks a command holds across several write sessions (`writer_lock`).
_HELD_LOCKS: dict[Path, _Lock] = {}


@contextlib.contextmanager
def writer_lock(db: str | os.PathLike | None, *, create: bool = False) -> Iterator[None]:
    """The workspace's writer lock, held across the write sessions opened in the block
    (they take it as theirs): a run that failed logs its row before another writer can
    take the workspace."""
    _, target = _writable(db, create)
    if target in _HELD_LOCKS:
        yield
        return
    lock = _Lock(_beside(target, LOCK))
    lock.acquire()
    _HELD_LOCKS[target] = lock
    try:
        yield
    finally:
        del _HELD_LOCKS[target]
        lock.release()


@contextlib.contextmanager
def open_writer(db: str | os.PathLike | None, *, create: bool = False) -> Iterator[Workspace]:
    """Locked, atomic write session: publish on success, discard on any error."""
    path, target = _writable(db, create)
    held = target in _HELD_LOCKS
    lock = _Lock(_beside(target, LOCK))
    if not held:
        lock.acquire()
    work = _beside(target, WORK)
    try:
        with _publishing(path, work):  # an unwritable folder says so (exit 2)
            for leftover in (work, _beside(work, WAL)):
                leftover.unlink(missing_ok=True)  # from a killed writer: never published
        _clear_stale_dry_runs(target.parent)
        _clear_stale_temp_copies()
        with _open_copy(target, work, shown=path) as ws:
            yield ws
            with _publishing(path, work):
                if ws.compact_on_publish:
                    ws.execute("RESET max_vacuum_tasks")
                ws.execute("CHECKPOINT")
        with _publishing(path, work):
            _fsync(work)
            with signals_held():  # a signal during the rename knows it was published
                os.replace(work, target)  # the atomic publish
                kill_point("rename")
                ws.published = True
        _fsync_dir(target.parent)
    finally:
        for leftover in (work, _beside(work, WAL)):
            # A folder that turned unwritable keeps it: the failure that stopped the write
            # is the one to tell (not this one, an internal error), and the next writer
            # removes it.
            with contextlib.suppress(OSError):
                leftover.unlink(missing_ok=True)
        if not held:
            lock.release()


# Signals that arrived while `signals_held` held them (the Python handler offers
# it to `hold_signal` first): a signal sent to the process can reach another thread (DuckDB's),
# which the main thread's mask does not hold, and Python then runs the handler at once.
_HOLD: dict = {"on": False, "pending": []}


def hold_signal(signum: int) -> bool:
    """Keeps `signum` for the end of a held block (raised again then), if one is running;
    whether it did."""
    if _HOLD["on"]:
        _HOLD["pending"].append(signum)
    return _HOLD["on"]


@contextlib.contextmanager
def signals_ignored() -> Iterator[None]:
    """SIGTERM and SIGINT do nothing during the block: a command a first signal stopped
    finishes logging why, whatever a second Ctrl-C says (`signals_while_failing`)."""
    masked = hasattr(signal, "pthread_sigmask")
    stopping = {signal.SIGTERM, signal.SIGINT}
    before = signal.pthread_sigmask(signal.SIG_BLOCK, stopping) if masked else None
    outer, _HOLD["on"] = _HOLD["on"], True
    try:
        yield
    finally:
        if masked:
            while signal.sigtimedwait(stopping, 0) is not None:  # dropped, not raised
                pass
        _HOLD["on"] = outer
        if not outer:
            _HOLD["pending"] = []
        if masked:
            signal.pthread_sigmask(signal.SIG_SETMASK, before)


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """SIGTERM and SIGINT wait for the block to end (then they act as always); inside
    another such block (a publish within a failed command's row), for that one's end."""
    masked = hasattr(signal, "pthread_sigmask")  # (not on Windows)
    before = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT}) \
        if masked else None
    outer, _HOLD["on"] = _HOLD["on"], True
    try:
        yield
    finally:
        _HOLD["on"] = outer
        if masked:
            signal.pthread_sigmask(signal.SIG_SETMASK, before)
        if not outer:
            pending, _HOLD["pending"] = _HOLD["pending"], []
            if pending:
                signal.raise_signal(pending[0])


def signals_while_failing(exc: BaseException) -> contextlib.AbstractContextManager[None]:
    """Around writing and logging the `failed` (or `refused`) row of a command that `exc`
    ended: when a first SIGTERM or Ctrl-C stopped it, a second one is ignored (the row
    is not lost); after any other error a signal waits for the row, then ends the
    command as always (143 / 130: once a signal arrived, it decides how a command ends)."""
    return signals_ignored() if interruption(exc) else signals_held()


def _beside(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def own_files(path: Path) -> set[Path]:
    """The workspace file and the files beside it that are part of it (its log, a
    writer's lock and private copy), by their real paths (a link is followed)."""
    target = Path(os.path.realpath(path))
    work = _beside(target, WORK)
    return {target, _beside(target, WAL), work, _beside(work, WAL), _beside(target, LOCK)}


@contextlib.contextmanager
def _publishing(path: Path, work: Path) -> Iterator[None]:
    """A failure to write the private copy or to publish it (a full disk, an immutable or
    unwritable file) is the user's to fix, named by the workspace: nothing was published."""
    try:
        yield
    except LeadctlError:
        raise
    except Exception as exc:
        raise WorkspaceError(f"cannot write workspace {path}: {_as_named(exc, work, path)} "
                             f"{UNPUBLISHED}") from exc


def _as_named(exc: Exception, work: Path, path: Path) -> str:
    """An engine's or the OS's reason, naming the workspace the user gave (`path`), not
    its private copy (`<db>.work`)."""
    if isinstance(exc, OSError) and exc.strerror:  # [Errno 27] File too large: 'a' -> 'b'
        return exc.strerror
    text = str(exc).replace(str(work), str(path)).replace(os.path.abspath(work), str(path))
    return text.splitlines()[0]


@contextlib.contextmanager
def _open_copy(path: Path, work: Path, shown: Path | None = None) -> Iterator[Workspace]:
    """A writable workspace on `work`, a copy (or clone) of the published `path` when it
    exists, with the schema; the connection is closed however the block ends. `shown`:
    the workspace as the user named it (a link to `path`), for messages."""
    shown = shown or path
    if path.exists():
        with _publishing(shown, work):
            _clone_or_copy(path, work)
            shutil.copymode(path, work)  # published with the workspace's own permissions
    try:
        con = _connect(str(work), read_only=False, spill_to=temp_directory(path))
    except LeadctlError:
        raise
    except Exception as exc:
        raise _open_failure(exc, work, shown) from exc
    if path.exists():
        _opened(con, work, shown)
    ws = Workspace(con, shown, read_only=False, file=work)
    try:
        ensure_schema(ws)
        yield ws
    finally:
        con.close()


@contextlib.contextmanager
def open_private(db: str | os.PathLike | None, *, create: bool = False) -> Iterator[Workspace]:
    """A writable private copy of the published state, never published (dry runs): the
    copy is deleted however the block ends. Takes no lock (the published file is only
    read, once, by the copy), so a dry run neither waits for nor blocks a writer."""
    path = workspace_path(db)
    if not path.exists() and not create:
        _refuse_if_being_made(path)
        raise WorkspaceError(f"no workspace at {path}: run `leadctl init` first (or pass --db)")
    if not path.parent.is_dir():  # as a writer says (the copy went to /tmp instead)
        raise WorkspaceError(f"directory {path.parent} does not exist")
    refuse_other_file(path)
    parent = path.parent
    _clear_stale_dry_runs(parent)
    with _publishing(path, path):
        folder = Path(tempfile.mkdtemp(prefix=f"{DRY_RUN_PREFIX}{os.getpid()}-", dir=parent))
    try:
        with _open_copy(path, folder / path.name) as ws:
            yield ws
    finally:
        shutil.rmtree(folder, ignore_errors=True)


_FICLONE = 0x40049409  # Linux ioctl: share the source's blocks (btrfs, XFS, bcachefs, ...)


def _clone_or_copy(src: Path, dst: Path) -> None:
    """The writer's private copy of the published file. On a copy-on-write file system a
    clone shares the blocks, so the copy (and the fsync before the publish) costs what the
    run changes; elsewhere (ext4, tmpfs) a plain copy."""
    # created with the published file's mode: personal data is never readable by more
    # users while a run writes than when it is published
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, stat.S_IMODE(src.stat().st_mode))
    with open(src, "rb") as source, os.fdopen(fd, "wb") as target:
        try:
            fcntl.ioctl(target.fileno(), _FICLONE, source.fileno())
            return
        except OSError:
            pass  # not supported here: copy
    shutil.copyfile(src, dst)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        _fsync(path if str(path) else Path("."))


class RuleComputationFailed(InputError):
    """A rule's expression (a tag, score or route condition) cannot be computed for some
    person of this data: a whole number leaves BIGINT."""


# What to say of a value a user expression cannot compute (see `failed_computation`).
WHOLE_NUMBER_RANGE = f"whole numbers must stay from {BIGINT_MIN} to {BIGINT_MAX}"


# A checked whole-number operation's error on Spark (spark.translate._overflow_checked,
# _sign_checked).
_SPARK_OVERFLOW = re.compile(
    r"Overflow (in (addition|subtraction|multiplication) of INT\d+ \(-?\d+ [-+*] -?\d+\)"
    r"|on abs\(-?\d+\)|in negation of numeric value)(?=!)")


def failed_computation(exc: BaseException) -> str | None:
    """DuckDB's reason, from lower case (`overflow in multiplication of INT64 (3 * …)`), when
    `exc` is its error for a value an expression cannot compute for some row (a whole
    number past BIGINT; `/` and `%` by zero are NULL by construction; on Spark, a checked
    operation's error in DuckDB's words); None for any other
    error. A guarded decimal computation's (`sqlfn.finite_guard`, on either engine): its
    message from NOT_FINITE on (`…, in score rule 'big' when`)."""
    import duckdb

    found = str(exc).find(NOT_FINITE)
    engine = type(exc).__module__.split(".")[0] in ("duckdb", "_duckdb", "pyspark", "py4j") \
        or type(exc).__name__ == "SparkStatementError"  # (Spark's, on one line)
    if found >= 0 and engine:  # (Spark's ends its line with the SQL state)
        return str(exc)[found:].splitlines()[0].split(" SQLSTATE:")[0].rstrip(" .")
    overflow = _SPARK_OVERFLOW.search(str(exc)) if engine else None
    if overflow:  # DuckDB's text, which the Spark translation raises (OVERFLOW_CHECKED)
        return "o" + overflow.group()[1:]
    if not isinstance(exc, duckdb.OutOfRangeException):
        return None
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    text = re.sub(r"^[A-Za-z ]+ Error: ", "", text)
    text = re.split(r"(?<=\))[!.] ", text + " ", maxsplit=1)[0].rstrip(" !.")
    return text[:1].lower() + text[1:]


def computation_advice(reason: str) -> str:
    """The range to keep to, for a reason `failed_computation` gave."""
    return DECIMAL_RANGE if reason.startswith(NOT_FINITE) else WHOLE_NUMBER_RANGE


@contextlib.contextmanager
def rule_computation(stage: str) -> Iterator[None]:
    """Around a stage that computes rule expressions per person (also as a decorator):
    an overflow, or a guarded decimal computation past the largest number, becomes
    RuleComputationFailed (exit 2, the stage and the reason), not an internal error: the
    rules' fault for this data, nothing published."""
    try:
        yield
    except Exception as exc:
        reason = failed_computation(exc)
        if reason is None:
            raise
        raise RuleComputationFailed(
            f"{stage}: a rule's expression cannot be computed for some person: {reason}; "
            f"{computation_advice(reason)}: check the expressions in rules/") from None


def kill_point(stage: str) -> None:
    """Test hook: LEADCTL_TEST_KILL_AFTER=<stage> kills the process (as kill -9 would, or
    with LEADCTL_TEST_KILL_SIGNAL=TERM as `timeout` or systemd would)."""
    if os.environ.get("LEADCTL_TEST_KILL_AFTER") == stage:
        name = os.environ.get("LEADCTL_TEST_KILL_SIGNAL", "KILL")
        os.kill(os.getpid(), signal.SIGTERM if name == "TERM" else signal.SIGKILL)
