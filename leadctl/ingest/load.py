"""Ingest files into the workspace: one function per file, SQL does the rows."""

from __future__ import annotations

import contextlib
import glob
import json
import logging
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from leadctl.clock import DEFAULT_ZONE, ZONE_KEY, wall_clock_now
from leadctl.errors import InputError, Location, RuleError, UsageError, first_line
from leadctl.ingest import sql
from leadctl.ingest.columns import (
    EVENT_COLUMNS,
    IDENTIFIER_COLUMNS,
    LEAD_COLUMNS,
    build_alias_map,
    field_columns,
    fold_header,
    map_columns,
    missing_identifier_message,
)
from leadctl.ingest.sniff import (
    UTF8,
    FileFormat,
    codec_name,
    csv_header,
    ends_with_eof_mark,
    has_blank_line,
    hash_and_line_endings,
    sniff,
    transcode_to_utf8,
    without_eof_mark,
)
from leadctl.ingest.sources import SOURCES_FILE, SourcesConfig, load_sources_config
from leadctl.rules.load import rule_path
from leadctl.sqltext import file_literal, ident, meta_value_sql, set_meta_sql
from leadctl.workspace import Workspace, is_root_folder, name_text

log = logging.getLogger("leadctl")

DATA_SUFFIXES = {".csv", ".tsv", ".txt", ".parquet", ".pq"}
KINDS = ("auto", "leads", "events")
# What happened to a file. `loaded`: at least one row loaded; `rejected`: rows read, every
# one rejected; `empty`: no rows; `invalid`: its columns cannot be used (no identifier
# column, an events file without its columns): every row kept in rejects, exit 2;
# `failed`: unreadable (or refused), nothing stored, exit 2; `skipped_duplicate`: the same
# content was ingested before (`duplicate_of` names that file).
STATUSES = ("loaded", "rejected", "empty", "invalid", "failed", "skipped_duplicate")


class NoDataFiles(InputError):
    """The folders given hold no CSV or Parquet file (for `run`'s inbox: a quiet night)."""


@dataclass
class FileResult:
    file: str
    source: str
    kind: str = ""
    status: str = "loaded"  # one of STATUSES
    rows_read: int = 0
    loaded: int = 0
    rejected: int = 0
    superseded: int = 0
    encoding: str = ""
    delimiter: str = ""
    message: str = ""
    warning: str = ""
    duplicate_of: dict | None = None  # {"file", "ingested_at"} of the earlier same content


@dataclass
class IngestSummary:
    files: list[FileResult] = field(default_factory=list)

    @property
    def failed(self) -> list[FileResult]:
        """Files that make the command an input error (exit 2)."""
        return [f for f in self.files if f.status in ("failed", "invalid")]

    @property
    def nothing_loaded(self) -> list[FileResult]:
        """New files of which no row loaded (a data check for `leadctl run`)."""
        return [f for f in self.files if f.status in ("rejected", "empty")]

    def totals(self) -> dict:
        return {
            "files": len(self.files),
            "rows_read": sum(f.rows_read for f in self.files),
            "leads": sum(f.loaded for f in self.files if f.kind == "leads"),
            "events": sum(f.loaded for f in self.files if f.kind == "events"),
            "rejects": sum(f.rejected for f in self.files),
            "skipped_duplicate_files": sum(f.status == "skipped_duplicate" for f in self.files),
            "failed_files": sum(f.status == "failed" for f in self.files),
            "invalid_files": sum(f.status == "invalid" for f in self.files),
            "rejected_files": sum(f.status == "rejected" for f in self.files),
            "empty_files": sum(f.status == "empty" for f in self.files),
        }

    def to_dict(self) -> dict:
        return {"files": [asdict(f) for f in self.files], "totals": self.totals()}


@dataclass
class IngestOptions:
    source: str | None = None
    kind: str = "auto"
    encoding: str | None = None
    force: bool = False  # read with the forced encoding even when it contradicts the file
    timezone: str | None = None  # None: from rules/sources.yaml, else Asia/Shanghai
    timezone_loc: Location | None = None  # where sources.yaml names it
    # the sources.yaml the zone comes from (named there, or its default when not)
    sources_file: Path | None = None
    aliases: dict[str, list[str]] = field(default_factory=dict)
    rules_dir: Path | None = None


def options_from_rules(rules_dir: Path | None, config: SourcesConfig | None = None,
                       **overrides) -> IngestOptions:
    """Ingest options with the aliases and time zone of `rules_dir/sources.yaml` (the
    given `config`, else loaded and validated: a broken file raises RuleError before
    anything is read)."""
    if overrides.get("encoding") is not None:  # before any file is read or run logged
        try:
            codec_name(overrides["encoding"])
        except InputError as exc:
            raise UsageError(f"--encoding: {exc}") from None
    if config is None:  # (a run's rule set logged its warnings already)
        config = load_sources_config(rules_dir)
        for warning in config.warnings:
            log.warning("rules: %s", warning)
    options = IngestOptions(rules_dir=rules_dir, aliases=config.aliases, **overrides)
    if options.timezone is None:
        options.timezone, options.timezone_loc = config.timezone, config.timezone_loc
        options.sources_file = rule_path(rules_dir, SOURCES_FILE)
    return options


def _data_files(folder: Path) -> list[Path]:
    """A folder's data files, recursively (not into linked folders), sorted. A folder
    below it that cannot be listed is an input error: its files would be left out
    silently (Path.rglob passes over it)."""
    def unreadable(exc: OSError) -> None:
        raise InputError(f"cannot read the folder {exc.filename}: {exc.strerror or exc} "
                         "(the files in it would be left out)") from exc

    # not only regular files: a dangling link or a pipe named like a data file
    # is a delivery that failed (reported by _ingest_file), not nothing
    found: list[Path] = []
    for root, folders, names in os.walk(folder, onerror=unreadable):
        folders[:] = [f for f in folders if not copies_folder(f)]
        found += (Path(root) / name for name in names)
    return sorted(p for p in found if _is_data_file(p))


_GLOB = re.compile(r"[*?\[]")  # what makes a path to read a pattern


def _from_the_root(raw: str) -> bool:
    """Whether a path or pattern to read starts at the root folder (`"$INBOX/"`, `/*`
    with the variable unset): walked, it would read every data file of the machine."""
    fixed = _GLOB.split(raw, maxsplit=1)[0]
    folder = fixed if fixed == raw else os.path.dirname(fixed)
    return bool(folder) and is_root_folder(folder)


def copies_folder(name: str) -> bool:
    """A folder that holds copies, not deliveries: hidden ones (.git, .stversions,
    .Trash-1000) and Spark's own (_temporary, _spark_metadata); both engines skip them."""
    return name.startswith(".") or name in ("_temporary", "_spark_metadata")


def file_stat(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


def _is_data_file(path: Path) -> bool:
    return (not path.is_dir() and path.suffix.lower() in DATA_SUFFIXES
            and not path.name.startswith("."))


def expand_paths(paths: list[str]) -> list[Path]:
    """Files, folders (recursively: data files only) and globs (a folder they match read
    as a folder, a file only when it is a data file), in a stable order."""
    found: list[Path] = []
    for raw in paths:
        if not raw.strip():  # Path("") is the working folder: every data file below it
            raise InputError("an empty path was given (an unset variable?): name a file or "
                             "folder")
        if _from_the_root(raw) and (os.path.isdir(raw) or not os.path.lexists(raw)):
            raise InputError(f"{raw} is the root folder (an unset variable before a /?): "
                             "name the folder of the files")
        if _GLOB.search(raw) and not os.path.lexists(raw):  # leads[1].csv
            matches = sorted(Path(p) for p in glob.glob(raw, recursive=True))
            if not matches:
                raise InputError(f"no files match {raw}")
            for match in matches:
                found += _data_files(match) if match.is_dir() else (
                    [match] if _is_data_file(match) else [])
            continue
        path = Path(raw)
        if path.is_dir():
            found += _data_files(path)
        elif path.is_file():
            found.append(path)
        elif path.exists():
            raise InputError(f"{raw} is neither a file nor a folder (a device, a pipe)")
        else:
            raise InputError(f"no such file or folder: {raw}")
    unique = list(dict.fromkeys(found))
    if not unique:
        raise NoDataFiles(f"no CSV or Parquet files found in {', '.join(paths)}")
    return unique


@dataclass
class StagedFile:
    """A file made readable by SQL: `rows_sql` selects its rows with `row_number` (the
    record number in the file); `rejects_table` (line, error_type, error_message,
    csv_line, column_idx) holds lines the reader could not parse."""

    rows_sql: str
    columns: list[str]
    types: dict[str, str]  # DuckDB type names
    rejects_table: str | None = None
    message: str = ""
    temp: Path | None = None
    header_fields: list[str] | None = None  # a CSV's header record as written
    schema_names: list[str] | None = None  # a Parquet file's column names as written
    decoded: tuple[str, ...] = ()  # Parquet columns of bytes read as text


def parquet_names(path: Path) -> list[str] | None:
    """A local Parquet file's column names as written (the reader names `Phone` beside
    `phone` Phone_1); None when its schema cannot be read here (the reader says why)."""
    import pyarrow
    import pyarrow.parquet

    try:
        return list(pyarrow.parquet.read_schema(str(path)).names)
    except (pyarrow.ArrowException, OSError):
        return None


class DuckDBReader:
    """How the DuckDB engine finds, fingerprints and stages input files."""

    def expand(self, paths: list[str]) -> list[Path]:
        return expand_paths(paths)

    def fingerprint(self, path: Path, encoding: str | None) -> tuple[str, FileFormat]:
        stat = file_stat(path)  # before reading: a change while hashing shows too
        fmt = sniff(path, encoding)
        fmt.stat = stat
        digest, fmt.mixed_newlines = hash_and_line_endings(path, text=fmt.format == "csv")
        fmt.eof_mark = fmt.format == "csv" and ends_with_eof_mark(path, fmt.encoding)
        return digest, fmt

    def stage(self, ws: Workspace, path: Path, fmt: FileFormat, file_id: int) -> StagedFile:
        if fmt.format == "parquet":
            own, _ = _describe(ws, f"SELECT * FROM read_parquet({file_literal(str(path))}) LIMIT 0")
            renames = sql.free_names(own)
            if "file_row_number" in {c.lower() for c in own}:
                ws.execute(sql.stage_parquet_sql("_stage", str(path), renames))
                rows_sql = sql.positional_csv_rows_sql("_stage")
            else:
                rows_sql = sql.parquet_rows_sql(str(path), renames)
            columns, types = _describe(ws, f"SELECT * FROM ({rows_sql}) LIMIT 0")
            zoned = [c for c in columns if sql.zoned_type(types[c])]
            if zoned:
                rows_sql = sql.zoned_as_text_sql(rows_sql, zoned)
                columns, types = _describe(ws, f"SELECT * FROM ({rows_sql}) LIMIT 0")
            kinds = sql.parquet_value_types(types)
            if kinds:
                rows_sql = sql.parquet_values_sql(rows_sql, kinds)
                columns, types = _describe(ws, f"SELECT * FROM ({rows_sql}) LIMIT 0")
            return StagedFile(rows_sql, columns, types, decoded=tuple(
                c for c, kind in kinds.items() if kind == "text"),
                schema_names=parquet_names(path))
        staged = StagedFile("", [], {}, rejects_table=f"_rej_{file_id}")
        read_path = path
        if (fmt.encoding not in ("utf-8", "utf8") or fmt.mixed_newlines or fmt.blank_after_bom
                or fmt.white_before_header or fmt.crlf_before_header):
            # (the copy has no byte order mark: UTF-8's is read as one by utf-8-sig)
            encoding = "utf-8-sig" if fmt.has_bom and fmt.encoding in UTF8 else fmt.encoding
            staged.temp, replaced = transcode_to_utf8(path, encoding,
                                                      newlines=(fmt.mixed_newlines
                                                                or fmt.crlf_before_header),
                                                      delimiter=fmt.delimiter,
                                                      eof_mark=fmt.eof_mark,
                                                      blank_leading=fmt.white_before_header)
            read_path = staged.temp
            if replaced:
                staged.message = (f"{replaced} undecodable byte(s): their rows are rejected "
                                  "(invalid_encoding)")
        elif fmt.eof_mark:
            read_path = staged.temp = without_eof_mark(path)
        if fmt.looks_like:
            staged.message = (f"its bytes that are not {fmt.encoding} look like "
                              f"{fmt.looks_like}: --encoding {fmt.looks_like} reads them "
                              "(their rows are rejected, invalid_encoding)")
        try:
            # first: a header whose quote is left open fails its file before any read
            staged.header_fields = csv_header(read_path, fmt.delimiter)
            header = _stage_csv(ws, read_path, fmt.delimiter, staged.rejects_table,
                                fmt.apostrophes, rewritten=staged.temp is not None
                                and (fmt.mixed_newlines or fmt.crlf_before_header))
            for old_name, new_name in sql.free_names(header).items():  # a `row_number` column
                ws.execute(f"ALTER TABLE _stage RENAME COLUMN {ident(old_name)} "
                           f"TO {ident(new_name)}")
            one_column = len(header) == 1
            white = (_drop_blank_line_rows(ws, read_path, staged.rejects_table, fmt.delimiter)
                     if one_column else _drop_white_space_lines(ws, staged.rejects_table))
            # Without reader rejects (the common case) a row's position is its record.
            if ws.scalar(f"SELECT count(*) FROM {staged.rejects_table}"):
                _renumber_rejects_past_blank_lines(ws, read_path, staged.rejects_table,
                                                   fmt.delimiter, spaces=one_column or white,
                                                   known=white)
                staged.rows_sql = sql.numbered_csv_rows_sql("_stage", staged.rejects_table)
            else:
                staged.rows_sql = sql.positional_csv_rows_sql("_stage")
            staged.columns, staged.types = _describe(ws, "SELECT * FROM _stage LIMIT 0")
        except BaseException as exc:
            self.release(ws, staged)
            if staged.temp and str(staged.temp) in str(exc) and _reader_error(exc):
                # the reader names the file it read: the temporary copy, not the file
                raise InputError(_reader_message(exc).replace(str(staged.temp),
                                                              str(path))) from None
            raise
        return staged

    def release(self, ws: Workspace, staged: StagedFile) -> None:
        """After the file is loaded (or failed): remove what staging left behind."""
        if staged.temp:
            staged.temp.unlink(missing_ok=True)


EARLIER_FILES_SQL = ("SELECT file_id, path, ingested_at, status, source, encoding "
                     "FROM ingested_files WHERE content_hash = ? ORDER BY file_id")


class IngestState:
    """What one ingest needs to know of what is stored, read once and kept up to date as
    its files load (a query per file is a Spark job each): the next file id, the earlier
    files of each content hash, the sources with stored leads (only a file of such a
    source can supersede a lead), and the key after which a file's new leads are
    numbered."""

    def __init__(self, ws: Workspace):
        self.ws = ws
        # Ids in order, one per file given a row: what a max(file_id) + 1 per file would
        # give, without its query per file.
        self.file_id = ws.next_id("ingested_files", "file_id")
        self.lead_key_base = ws.scalar("SELECT coalesce(max(lead_key), 0) FROM leads")
        rows = ws.execute("SELECT content_hash, file_id, path, ingested_at, status, source, "
                          "encoding, kind, rows_loaded FROM ingested_files "
                          "ORDER BY file_id").fetchall()
        self.by_hash: dict[str, list[tuple]] = {}
        for row in rows:
            self.by_hash.setdefault(row[0], []).append(tuple(row[1:7]))
        self.lead_sources = {row[5] for row in rows if row[7] == "leads" and row[8]}
        self.recorded: set[str] = set()
        # This delivery (the files of the command, in order) and where in it the file
        # being ingested is; fingerprints taken ahead of a file's turn.
        self.delivery: list[Path] = []
        self.position = 0
        self.fingerprints: dict[Path, tuple[str, FileFormat]] = {}

    def replaced_by(self, file_id: int) -> set[str] | None:
        """The contents (hashes) of the later files that replaced rows of file `file_id`
        (they went to rejects as 'superseded', 'replaced by file N' or 'read again as …
        by file N'); None when none did. Asked of a duplicate only: rare, so one query
        each (a few distinct details, however many rows)."""
        rows = self.ws.execute(sql.superseding_files_sql(), [file_id]).fetchall()
        if not rows:
            return None
        named = {digest or "" for by_file, digest in rows if by_file is not None}
        return named or {""}  # replaced by a file not named: never re-sent

    def later_digests(self, reader: DuckDBReader, encoding: str | None) -> set[str]:
        """The contents of the files after the current one in this delivery (fingerprinted
        once: kept for their own turn). A file that cannot be fingerprinted counts as none."""
        digests = set()
        for path in self.delivery[self.position + 1:]:
            if path not in self.fingerprints:
                try:
                    if not path.is_file():
                        continue
                    self.fingerprints[path] = reader.fingerprint(path, encoding)
                except (OSError, InputError):
                    continue
            digests.add(self.fingerprints[path][0])
        return digests

    def earlier(self, digest: str) -> list[tuple]:
        """(file_id, path, ingested_at, status, source, encoding) of the files of this
        content, in order."""
        if digest in self.recorded:  # recorded by this ingest: read back as stored
            return self.ws.execute(EARLIER_FILES_SQL, [digest]).fetchall()
        return self.by_hash.get(digest, [])

    def record(self, digest: str, result: FileResult) -> None:
        """A file was given its ingested_files row (loaded, rejected, empty or invalid)."""
        self.file_id += 1
        self.recorded.add(digest)
        if result.kind == "leads" and result.loaded:
            self.lead_sources.add(result.source)


def check_zone(ws: Workspace, options: IngestOptions) -> str | None:
    """The zone the stored times were read in (None: nothing stored yet); refuses another
    one in sources.yaml: times are converted once, as a file is read, so the workspace
    would hold wall clocks of two zones, and its results would not be those of the same
    files and rules read afresh."""
    stored = stored_zone(ws)
    problems = zone_problems(stored, options.timezone, options.timezone_loc,
                             options.sources_file)
    if problems:
        raise RuleError(problems)
    return stored


def stored_zone(ws: Workspace) -> str | None:
    """The zone the workspace's times were read in (None: nothing stored yet)."""
    return ws.scalar(meta_value_sql(ZONE_KEY))


def zone_problems(stored: str | None, timezone: str, where: Location | None,
                  sources: Path | None = None) -> list:
    """sources.yaml's `timezone` (written at `where`) against the zone the workspace's
    times were read in (`stored`). Not written there (`where` None), the zone is the
    default of `sources` (the sources.yaml read, or looked for): the problem is at that
    file's start and says so."""
    if stored is None or stored == timezone:
        return []
    converted = "(times are converted once, as their file is read)"
    if where is None and sources is not None:
        missing = (f"{SOURCES_FILE} has no `timezone:`" if sources.is_file()
                   else f"there is no {SOURCES_FILE}")
        return [(Location(str(sources), 1, 1),
                 f"timezone is {timezone}, the default ({missing}), but "
                 f"this workspace holds times read in {stored} {converted}: write "
                 f"timezone: {stored} in {SOURCES_FILE}, or read the files into a new "
                 "workspace")]
    return [(where, f"timezone is {timezone}, but this workspace holds times read in "
                    f"{stored} {converted}: keep timezone: {stored}, or read the files into "
                    "a new workspace")]


def ingest_paths(ws: Workspace, paths: list[str], options: IngestOptions | None = None,
                 progress: Callable[[int, int, str], None] | None = None,
                 reader: DuckDBReader | None = None) -> IngestSummary:
    options = options or IngestOptions()
    options.timezone = options.timezone or DEFAULT_ZONE
    reader = reader or DuckDBReader()
    if options.kind not in KINDS:
        raise InputError(f"--kind must be one of {', '.join(KINDS)}, not {options.kind!r}")
    zone = check_zone(ws, options)  # before the paths are read: a rule error comes first
    files = reader.expand(paths)
    alias_maps = {kind: build_alias_map(options.aliases, events=kind == "events")
                  for kind in ("leads", "events")}  # an events file's `id` names no lead
    summary = IngestSummary()
    state = IngestState(ws)
    state.delivery = files
    for index, path in enumerate(files):
        if progress:
            progress(index, len(files), str(path))
        state.position = index
        summary.files.append(_ingest_file(ws, path, options, alias_maps, reader, state))
    if zone is None and ws.scalar("SELECT count(*) FROM ingested_files WHERE rows_loaded > 0"):
        ws.script(set_meta_sql(ZONE_KEY, options.timezone))  # from the first rows stored on
    if progress:
        progress(len(files), len(files), "")
    return summary


def events_by_columns(mapping: dict[str, str]) -> bool:
    """`--kind auto`: a file is events when it has a column named `event_type` (case,
    spaces, `_`, `-` aside: an events file without its timestamp is then an invalid events
    file, not leads), or an event type column by another name (`action`, `event`, `事件`,
    …) beside a timestamp column (`ts` or an alias). A leads file's `action` column alone
    is an attribute of its leads."""
    header = mapping.get("event_type")
    return header is not None and (fold_header(header) == "eventtype" or "ts" in mapping)


def _ingest_file(ws: Workspace, path: Path, options: IngestOptions,
                 alias_maps: dict[str, dict[str, str]], reader: DuckDBReader,
                 state: IngestState) -> FileResult:
    source = options.source or path.stem
    file_id = state.file_id
    result = FileResult(file=name_text(path), source=name_text(source))
    if result.file != str(path):  # DuckDB takes a file name as UTF-8 text, nothing else
        return _failed(result, "its name is not valid UTF-8 text: rename it to load it")
    # The file's stamp: its ingest time and its rejects', a wall-clock time of the
    # workspace zone like every created_at (a lead without one arrived then), whatever
    # the machine's zone: one clock, so a file's rows and rejects are of one day.
    at = wall_clock_now(options.timezone)
    if not path.is_file():  # never opened: a pipe would wait for a writer forever
        return _failed(result, "not a readable file (a dangling link, a pipe or a device)")
    try:
        digest, fmt = (state.fingerprints.pop(path, None)
                       or reader.fingerprint(path, options.encoding))
    except OSError as exc:
        return _failed(result, f"cannot read: {exc.strerror or exc}")
    except InputError as exc:
        return _failed(result, str(exc))
    earlier = state.earlier(digest)
    # An invalid or empty delivery again is not a duplicate: it is refused or flagged again
    # (exit 2 / exit 1), so a job that keeps sending broken exports keeps alerting.
    kept = [row for row in earlier if row[3] not in ("invalid", "empty")]
    # ...nor is the content of an earlier delivery of this source whose rows a later one
    # replaced: sent again, it takes the correction back (else the retracted rows, and a
    # merge they made, stayed) — unless every file that replaced them comes again after
    # it in this same delivery: a folder delivered again whole (an old file and its
    # correction, in their order) changes nothing, and is skipped.
    # ...nor is the content forced as another encoding than its last read (one that
    # garbled it, or one that takes that back): its rows replace the earlier read's.
    # Only when asked: another leadctl version may have named a detected one otherwise.
    # Read for another reason (a correction taken back), the content read otherwise
    # before leaves all the same: else its garbled leads stayed beside the right ones.
    misread = [row for row in kept if _read_otherwise(row[5], fmt)]
    if kept and not (options.encoding is not None and kept[-1] in misread) and not (
            kept[-1][4] == source and _takes_back(state, kept[-1][0], reader, options)):
        again = (f" (read as {kept[-1][5]}: --encoding {fmt.encoding} reads it again as "
                 f"{fmt.encoding})") if kept[-1] in misread else ""
        return _duplicate(result, kept[0][1], kept[0][2], again)
    if fmt.conflict:
        if not options.force:
            return _failed(result, f"{fmt.conflict}; drop --encoding, or add --force to read "
                                   f"it as {options.encoding} anyway")
        result.warning = f"{fmt.conflict}; read as {options.encoding} (--force)"
    result.encoding, result.delimiter = fmt.encoding, fmt.delimiter
    if fmt.format == "empty":
        result.status, result.message = "empty", "empty file: nothing to ingest"
        _record_file(ws, file_id, path, result, digest, fmt.format, [], at)
        state.record(digest, result)
        return result
    staged: StagedFile | None = None
    ws.execute("BEGIN TRANSACTION")  # a failing file leaves no partial rows behind
    try:
        for row in earlier:  # an earlier invalid attempt: its rejects give way to this one
            if row[3] not in ("invalid", "empty"):
                continue  # a delivery this one takes back to: it stays on record
            ws.execute("DELETE FROM rejects WHERE file_id = ?", [row[0]])
            ws.execute("DELETE FROM ingested_files WHERE file_id = ?", [row[0]])
        staged = reader.stage(ws, path, fmt, file_id)
        result.message = staged.message
        rows_sql, types = staged.rows_sql, staged.types
        columns = [c for c in staged.columns if c not in ("row_number", "file_row_number")]
        # matched by the header as written: the reader names `Phone` beside `phone` Phone_1
        written = staged.header_fields or staged.schema_names
        mapping, extra = map_columns(columns, alias_maps["leads"], written)
        kind = options.kind
        if kind == "auto":
            kind = "events" if events_by_columns(mapping) else "leads"
        if kind == "events":  # its `id` names no lead (LEADS_ONLY_ALIASES)
            mapping, extra = map_columns(columns, alias_maps["events"], written)
        fields = field_columns(columns, alias_maps[kind], written)
        extra = _without_empty_unnamed(ws, rows_sql, columns, written, extra)
        result.kind = kind
        # Rejected rows are counted as inserted (an INSERT returns its count on DuckDB and
        # on the Spark executor): no count of rejects afterwards.
        if staged.rejects_table and ws.scalar(f"SELECT count(*) FROM {staged.rejects_table}"):
            result.rejected += _inserted(ws, sql.reader_rejects_sql(
                file_id, source, kind, staged.rejects_table, at=at, encoding=fmt.encoding,
                looks_like=fmt.looks_like))
        if kind == "leads":
            _load_leads(ws, staged, mapping, extra, columns, file_id, source, options, result,
                        state, at, fields)
        else:
            _load_events(ws, rows_sql, mapping, extra, columns, types, file_id, source, options,
                         result, at, staged.header_fields, fields)
        if misread:
            _retract_reads(ws, [row[0] for row in misread], file_id, fmt.encoding, result, at)
        if fmt.stat is not None and file_stat(path) != fmt.stat:
            raise InputError("changed while it was read (still being written?): nothing of "
                             "it was loaded; the next ingest reads it again")
        result.rows_read = result.loaded + result.rejected
        _settle_status(result)
        _record_file(ws, file_id, path, result, digest, fmt.format, columns, at)
        ws.execute("COMMIT")
        state.record(digest, result)
    except InputError as exc:
        _rollback(ws)
        return _failed(result, str(exc))
    except OSError as exc:  # gone or unreadable since it was hashed
        _rollback(ws)
        return _failed(result, f"cannot read: {exc.strerror or exc}")
    except Exception as exc:  # the reader's errors (truncated Parquet, ...)
        _rollback(ws)
        if not _reader_error(exc):
            raise  # the workspace's own (a full disk at COMMIT), or a bug
        return _failed(result, _reader_message(exc))
    finally:
        if staged:
            reader.release(ws, staged)
    return result


def _takes_back(state: IngestState, file_id: int, reader: DuckDBReader,
                options: IngestOptions) -> bool:
    """Whether the content of file `file_id`, sent again, takes back a correction: later
    files replaced rows of it, and not all of them come again after it in this delivery
    (then the delivery repeats both, in their order, and nothing changes)."""
    replacing = state.replaced_by(file_id)
    if not replacing:
        return False
    return not replacing <= state.later_digests(reader, options.encoding)


def _stage_csv(ws: Workspace, path: Path, delimiter: str, rejects: str,
               apostrophes: bool = False, rewritten: bool = False) -> list[str]:
    """Stages a CSV file in `_stage` (reader rejects in `rejects`); returns its header.

    DuckDB's sniffer gives quoting up for a whole file over one field with a stray quote
    (`"Jo"e"`): the header keeps its quotes, or quoted fields holding the delimiter split
    and their lines are rejected while the quotes stay in what loads. Then the file is
    read again with RFC 4180 quoting, which rejects only that line, and the read with
    fewer rejected lines is kept (the RFC one on a tie). A sniffer that would take `'`
    for the quote character (`'Tom'` loaded as Tom) gets no say: the RFC read stands; nor
    does one that gives up on a `rewritten` copy (its line ends made LF, a CR kept inside
    a quoted value, `"x\ry"`, beside a quote left open, `"Bob,`), which failed the file."""
    def stage(columns: list[str] | None) -> int:
        ws.script([f"DELETE FROM {rejects}", f"DELETE FROM {rejects}_scan"]
                  if ws.table_type(rejects) else [])
        ws.execute(sql.stage_csv_sql("_stage", str(path), delimiter, rejects,
                                     f"{rejects}_scan", columns))
        return int(ws.scalar(f"SELECT count(DISTINCT line) FROM {rejects}"))

    # (asked apart: a sniffer's failure in the read would end the file's transaction)
    quote = _sniffed_quote(ws, path, delimiter) if apostrophes or rewritten else ""
    if quote is None or (apostrophes and quote == "'"):
        stage(sql.reader_column_names(csv_header(path, delimiter)))
        return _describe(ws, "SELECT * FROM _stage LIMIT 0")[0]
    rejected = stage(None)
    header, _ = _describe(ws, "SELECT * FROM _stage LIMIT 0")
    quoted = ws.rows(sql.quoted_values_sql("_stage", header))[0]
    # Values still wholly in quotes (`"A1"`): the sniffer gave quoting up for the file, and
    # every quoted value would keep its quotes; the RFC read stands, whatever it rejects.
    lost = sql.quoting_lost(header) or quoted["wholly"]
    if not lost and not (rejected and quoted["starts"]):
        return header
    # On a tie the RFC read stands: the sniffed one kept the quotes of every quoted
    # value it loaded, and rejected valid lines (a quoted "Wang, Li" split in two).
    if stage(sql.reader_column_names(csv_header(path, delimiter))) > rejected and not lost:
        stage(None)  # quoting was right after all: the sniffed read stands
    return _describe(ws, "SELECT * FROM _stage LIMIT 0")[0]


def _renumber_rejects_past_blank_lines(ws: Workspace, path: Path, rejects: str,
                                      delimiter: str, spaces: bool = False,
                                      known: bool = False) -> None:
    """Blank lines use no record number, but DuckDB counts them in a rejected line's
    number. The file's lines say which were blank: each line where every record is one
    line, else (a quoted value spans lines) the lines that start outside a quoted value.
    Where neither accounts for the records read (quotes that do not pair up), the
    reader's numbers stand. `spaces`: a line of white space alone is blank too (see
    _drop_blank_line_rows, _drop_white_space_lines); `known`: the file has one."""
    blanks = known or has_blank_line(path, spaces)
    if not blanks or not _store_file_lines(ws, path, delimiter, spaces):
        return
    rejected = ws.scalar(f"SELECT count(DISTINCT line) FROM {rejects}")
    expected = ws.scalar("SELECT count(*) FROM _stage") + rejected

    def accounts_for_records(table: str) -> bool:
        """Whether `table`'s lines hold the records read, each rejected line a record's
        (not a blank line's, nor past the end)."""
        records = ws.scalar(f"SELECT count(*) FILTER (WHERE NOT blank) - 1 FROM {table}")
        placed = ws.scalar(f"SELECT count(DISTINCT r.line) FROM {rejects} r JOIN "
                           f"({sql.records_of_lines_sql(table)}) m ON m.line = r.line")
        return records == expected and placed == rejected

    try:
        if accounts_for_records("_file_lines"):
            ws.execute(sql.rejects_past_blank_lines_sql(rejects, "_file_lines"))
            return
        ws.execute("CREATE OR REPLACE TEMP TABLE _record_lines AS "
                   + sql.lines_outside_quotes_sql("_file_lines"))
        if accounts_for_records("_record_lines"):
            ws.execute(sql.rejects_past_blank_lines_sql(rejects, "_record_lines"))
    finally:
        ws.execute("DROP TABLE IF EXISTS _record_lines")
        ws.execute("DROP TABLE _file_lines")


def _drop_blank_line_rows(ws: Workspace, path: Path, rejects: str, delimiter: str) -> bool:
    """A one-column file (a phone list): DuckDB's reader gives each blank line after the
    header as a row (NULL, or its white space); they are no records (as in a file of more
    columns, and as Spark reads it: a line of white space alone too). A line `""` is a
    record: an empty value. Which rows are blank lines is told from the file's lines as
    the reader counts them; where those do not pair up with the rows read exactly
    (quotes that do not pair up), no row is dropped: a blank line is then rejected
    (no_identifier), never a record lost. Whether rows were dropped."""
    column = _describe(ws, "SELECT * FROM _stage LIMIT 0")[0][0]
    # no empty value read, no blank line (the file is read again only when there is one)
    if not ws.scalar(f"SELECT count(*) FROM _stage WHERE {sql.blank_value_sql(ident(column))}"):
        return False
    if not _store_file_lines(ws, path, delimiter, spaces=True):
        return False
    ws.execute("CREATE OR REPLACE TEMP TABLE _record_lines AS "
               + sql.lines_outside_quotes_sql("_file_lines"))
    try:
        # the lines outside quoted values first: the file's every line only where the
        # reader read it without quoting (the sniffer gave quoting up)
        for table in ("_record_lines", "_file_lines"):
            rows = sql.blank_line_rows_sql("_stage", column, table, rejects)
            if ws.scalar(f"SELECT coalesce(bool_and(paired), false) FROM ({rows})"):
                break
        else:
            return False
        blank = f"SELECT row_id FROM ({rows}) WHERE blank"
        if not ws.scalar(f"SELECT count(*) FROM ({blank})"):
            return False
        # a new table: the rowids of the rows kept are their positions again
        ws.script([f"CREATE OR REPLACE TEMP TABLE _stage_kept AS SELECT * FROM _stage "
                   f"WHERE rowid NOT IN ({blank}) ORDER BY rowid",
                   "DROP TABLE _stage", "ALTER TABLE _stage_kept RENAME TO _stage"])
        return True
    finally:
        ws.script(["DROP TABLE _record_lines", "DROP TABLE _file_lines"])


def _store_file_lines(ws: Workspace, path: Path, delimiter: str, spaces: bool) -> bool:
    """Stores the file's lines in `_file_lines` (sql.file_lines_sql: a line of damaged
    bytes too); False when the file cannot be read so (looked at apart first: a reader
    error must not fail the file's transaction)."""
    if ws.probe(f"SELECT count(*) FROM ({sql.read_lines_sql(str(path))})") is None:
        return False
    ws.script([f"CREATE OR REPLACE TEMP TABLE _read_lines AS "
               f"{sql.read_lines_sql(str(path), '_lines_rej', '_lines_rej_scan')}",
               "CREATE OR REPLACE TEMP TABLE _file_lines AS " + sql.file_lines_sql(
                   "_read_lines", "_lines_rej", delimiter, spaces),
               "DROP TABLE _read_lines", "DROP TABLE _lines_rej", "DROP TABLE _lines_rej_scan"])
    return True


def _drop_white_space_lines(ws: Workspace, rejects: str) -> bool:
    """A file of more columns: a line of white space alone (`   `) is a blank line, no
    record (Spark trims it and skips it), not a `missing_columns` reject. Only the
    reader's rejects are looked at: a file without such lines is not read again. Whether
    there were any (they still count in the reader's numbers of the lines after them)."""
    lines = sql.white_space_lines_sql(rejects)
    if not ws.scalar(f"SELECT count(*) FROM ({lines})"):
        return False
    ws.execute(f"DELETE FROM {rejects} WHERE line IN ({lines})")
    return True


def _sniffed_quote(ws: Workspace, path: Path, delimiter: str) -> str | None:
    return ws.probe(sql.sniffed_quote_sql(str(path), delimiter))


def _rollback(ws: Workspace) -> None:
    """Ends the file's transaction; when the COMMIT itself failed (a full disk) there is
    none left, and that failure, not this one, is the one to report."""
    with contextlib.suppress(Exception):
        ws.execute("ROLLBACK")


def _reader_error(exc: BaseException) -> bool:
    """Whether `exc` is an engine's (the reader's) error, not the workspace's own or a bug."""
    return type(exc).__module__.split(".")[0] in ("duckdb", "_duckdb", "pyspark", "py4j")


_LINE_SIZE = re.compile(r"Maximum line size of [0-9]+ bytes exceeded\. Actual Size:\s*([0-9]+)")


def _reader_message(exc: BaseException) -> str:
    """The reader's error in one line; an over-long line says what usually causes one
    (DuckDB's own first line names only a CSV error on a line it counts per buffer)."""
    size = _LINE_SIZE.search(str(exc))
    if size:
        return (f"a line of {int(size.group(1)):,} bytes is over the "
                f"{sql.MAX_LINE_BYTES // (1024 * 1024)} MB limit for one line (a quote "
                "left open makes the rest of a file one line): nothing of the file was loaded")
    return first_line(exc)


def _describe(ws: Workspace, query: str) -> tuple[list[str], dict[str, str]]:
    cur = ws.execute(f"DESCRIBE {query}")
    described = [(row[0], row[1]) for row in cur.fetchall()]
    return [c for c, _ in described], dict(described)


def _settle_status(result: FileResult) -> None:
    """The status the counts tell (an invalid file stays invalid)."""
    if result.status == "invalid":
        return
    if not result.rows_read:
        result.status, note = "empty", "no rows"
    elif not result.loaded:
        result.status, note = "rejected", f"no row loaded: all {result.rejected} rejected"
    else:
        return
    result.message = "; ".join(m for m in (note, result.message) if m)


def _duplicate(result: FileResult, earlier_path: str, ingested_at,
               note: str = "") -> FileResult:
    at = ingested_at.isoformat(sep=" ", timespec="seconds") if ingested_at else "?"
    result.status = "skipped_duplicate"
    result.duplicate_of = {"file": earlier_path, "ingested_at": at}
    result.message = f"same content as {earlier_path}, ingested {at}{note}"
    return result


def _inserted(ws: Workspace, insert: str) -> int:
    """Run an INSERT; the rows it inserted."""
    return ws.execute(insert).fetchone()[0]


def _invalid(ws, rows_sql, columns, file_id, source, kind, reason, detail, result,
             at) -> None:
    """A file whose columns cannot be used: every row kept in rejects, an input error."""
    result.rejected += _inserted(ws, sql.whole_file_reject_sql(
        rows_sql, columns, file_id, source, kind, reason, detail, at=at))
    result.status, result.message = "invalid", detail


def _without_empty_unnamed(ws, rows_sql: str, columns: list[str], written: list[str] | None,
                           extra: list[str]) -> list[str]:
    """`extra` less the columns with no name in the header and no value in the file (a
    header's trailing delimiter: the reader names it `column3`, and every lead had
    `{"column3": null}` among its attributes). An unnamed column with a value stays."""
    unnamed = [c for c, w in zip(columns, written or [], strict=False)
               if not str(w).strip() and c in extra]
    if not unnamed:
        return extra
    found = ws.rows(sql.values_in_columns_sql(rows_sql, unnamed))[0]
    return [c for c in extra if c not in unnamed or found[c]]


def _read_fields(rows_sql: str, mapping: dict[str, str], fields: dict[str, list[str]],
                 columns: list[str], types: dict[str, str]):
    """A field several columns give (`Mobile` and `手机号`, `时间` and `ts`) is read from
    one column added to the rows: per row the first usable value among them
    (`sql.first_value_sql`). Returns the rows, the mapping and the types to read by."""
    taken = {c.lower() for c in columns}
    names: dict[str, str] = {}
    for canonical in mapping:
        if len(fields.get(canonical, ())) > 1:
            name, n = f"_{canonical}_value", 1
            while name.lower() in taken:
                name, n = f"_{canonical}_value_{n}", n + 1
            taken.add(name.lower())
            names[canonical] = name
    rows_sql, added = sql.first_value_sql(
        rows_sql, {name: fields[canonical] for canonical, name in names.items()}, types)
    return rows_sql, {**mapping, **names}, {**types, **added}


def _load_leads(ws, staged: StagedFile, mapping, extra, columns, file_id, source, options,
                result, state: IngestState, at, fields=None):
    rows_sql = staged.rows_sql
    if not any(c in mapping for c in IDENTIFIER_COLUMNS):
        detail = missing_identifier_message(columns, extra, options.aliases)
        _invalid(ws, rows_sql, columns, file_id, source, "leads", "missing_identifier_columns",
                 detail, result, at)
        return
    # A column named like an event field (`price`, `time`) is the lead's attribute
    # under its own header: leads have no such field, and nothing is dropped.
    kept = set(extra) | {h for c, h in mapping.items() if c not in LEAD_COLUMNS}
    extra = [c for c in columns if c in kept]
    mapping = {c: h for c, h in mapping.items() if c in LEAD_COLUMNS}
    read_sql, mapping, _ = _read_fields(rows_sql, mapping, fields or {}, columns, staged.types)
    checked = sql.checked_leads_sql(read_sql, mapping, extra, columns, options.timezone,
                                    staged.header_fields, staged.decoded)
    ws.execute(f"CREATE OR REPLACE TEMP TABLE _checked AS {checked}")
    # A view: read twice, it costs less than a stored table (a Spark job per file).
    ws.execute(f"CREATE OR REPLACE TEMP VIEW _dup_rows AS {sql.duplicate_rows_sql('_checked')}")
    result.rejected += _inserted(ws, sql.insert_lead_rejects_sql(
        rows_sql, "_checked", "_dup_rows", columns, file_id, source, at=at))
    superseding = source in state.lead_sources  # else no stored lead can be replaced
    if superseding:
        ws.execute(sql.kept_keys_sql("_checked", source))
        result.superseded = ws.scalar("SELECT count(*) FROM _kept_keys")
    if result.superseded:
        ws.script(sql.supersede_leads_sql(file_id, at=at))
    base = state.lead_key_base
    result.loaded = _inserted(ws, sql.insert_leads_sql("_checked", "_dup_rows", file_id,
                                                       source, base, kept=superseding))
    # New keys are base + record number, and every record is loaded or rejected: the next
    # file's keys start past this file's records (a literal: a max over every stored lead
    # per file cost Spark a job over all of the table's parts).
    state.lead_key_base = base + result.loaded + result.rejected


def _load_events(ws, rows_sql, mapping, extra, columns, types, file_id, source, options,
                 result, at, header_fields=None, fields=None):
    missing = [c for c in ("event_type",) if c not in mapping]
    if not any(c in mapping for c in ("person_id", "lead_id", "phone")):
        missing.append("person_id/lead_id/phone")
    if "ts" not in mapping:
        missing.append("ts")
    if missing:
        detail = f"missing event columns: {', '.join(missing)} (have: {', '.join(columns)})"
        if "person_id/lead_id/phone" in missing and "id" in map(fold_header, columns):
            detail += "; an id naming the lead: `lead_id: [id]` under aliases in sources.yaml"
        _invalid(ws, rows_sql, columns, file_id, source, "events", "missing_columns", detail,
                 result, at)
        return
    rows_sql, mapping, types = _read_fields(rows_sql, mapping, fields or {}, columns, types)
    fields = sql.event_columns_sql(mapping, types, options.timezone, columns, header_fields)
    # Lead columns an events file carries (utm_source, channel, ...) are attributes of its
    # events under their canonical names (a campaign's UTM fields, for funnels); when the
    # file also has a column of that very name, the alias keeps its own header (渠道 and
    # channel both kept: nothing dropped).
    taken = {h.lower() for h in extra}
    kept = {header: canonical if canonical.lower() not in taken else header
            for canonical, header in mapping.items() if canonical not in EVENT_COLUMNS}
    result.loaded = _inserted(ws, sql.insert_events_sql(
        rows_sql, fields, [*extra, *kept], file_id, source, kept))
    # Rejects are rare: only scan the file a second time when rows are missing.
    if ws.scalar(f"SELECT count(*) FROM ({rows_sql})") > result.loaded:
        result.rejected += _inserted(ws, sql.insert_event_rejects_sql(
            rows_sql, fields, columns, file_id, source, at=at))
    if "event_id" in mapping:
        _replace_events(ws, file_id, source, result, at)


REPLACED_EVENTS = "_replaced_events"


def _replace_events(ws, file_id: int, source: str, result: FileResult, at) -> None:
    """A file with event ids replaces the stored events of its source with the same ids
    (a corrected re-delivery; they go to rejects as 'superseded') and keeps the first row
    of an id it repeats. Stages that fold new events into stored state see events leave
    (tags: the count of superseded events; identity: the count of events)."""
    ws.execute(sql.replaced_events_sql(REPLACED_EVENTS, file_id, source))
    counts = ws.rows(f"SELECT count(*) FILTER (WHERE file_id < {int(file_id)}) AS old, "
                     f"count(*) FILTER (WHERE file_id = {int(file_id)}) AS repeated "
                     f"FROM {REPLACED_EVENTS}")[0]
    if counts["old"] or counts["repeated"]:
        ws.script(sql.remove_replaced_events_sql(REPLACED_EVENTS, at=at))
        result.superseded += counts["old"]
        result.loaded -= counts["repeated"]
        result.rejected += counts["repeated"]
    ws.execute(f"DROP TABLE {REPLACED_EVENTS}")


def _read_otherwise(encoding: str | None, fmt: FileFormat) -> bool:
    """Whether a stored read of this content (its `encoding`) decoded it otherwise than
    this read will."""
    if fmt.format != "csv" or not encoding:
        return False
    try:
        return codec_name(encoding) != codec_name(fmt.encoding)
    except InputError:
        return True


def _retract_reads(ws: Workspace, file_ids: list[int], file_id: int, encoding: str,
                   result: FileResult, at) -> None:
    """What earlier reads of the file with another encoding still have stored (a lead
    whose id this read carries again was replaced already, keeping its key) leaves for
    rejects as 'superseded'."""
    statements, counted = sql.retract_files_sql(file_ids, file_id, encoding, at=at)
    retracted = ws.scalar(counted)
    by_id = ws.scalar(sql.replaced_by_sql(file_ids, file_id))
    ws.script(statements)
    result.superseded += retracted
    files = ", ".join(map(str, file_ids))
    # A file whose rows later deliveries all replaced has none left to replace: said so.
    note = (f"read again as {encoding}: replaces what file(s) {files} loaded"
            if retracted or by_id else
            f"read again as {encoding}: file(s) {files} had no row stored any more "
            "(replaced by later files): none replaced")
    result.message = "; ".join(m for m in (result.message, note) if m)


def _record_file(ws: Workspace, file_id: int, path: Path, result: FileResult, digest: str,
                 fmt: str, columns: list[str], at) -> None:
    # The ingest time (`at`) is a lead's arrival when it has no created_at: a wall-clock
    # time of the workspace zone like every created_at, not of the machine's zone.
    ws.execute(
        "INSERT INTO ingested_files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [file_id, str(path), result.source, result.kind, digest, fmt, result.encoding,
         result.delimiter, json.dumps(columns, ensure_ascii=False), result.rows_read,
         result.loaded, result.rejected, at, ws.run_id, result.status,
         "; ".join(m for m in (result.message, result.warning) if m)],
    )


def _failed(result: FileResult, message: str) -> FileResult:
    """Nothing of a failed file stays (its transaction is rolled back): no counts."""
    result.status, result.message = "failed", message
    result.rows_read = result.loaded = result.rejected = result.superseded = 0
    return result
