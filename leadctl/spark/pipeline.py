"""`leadctl run --engine spark`: the nightly chain on Apache Spark.

The stages are the DuckDB pipeline's own (leadctl.pipeline): same builders, same
rules, same summaries. Only the executor differs (SparkWorkspace) and the reader
that stages input files (SparkReader). Results are written as one Parquet folder
per table under `output`; `load_results` turns them into a DuckDB workspace so
`portrait`, `find` and `export` work as usual. With `state`, a previous output is
the starting point (person ids, ownership and already-ingested files carry over).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from leadctl import pipeline
from leadctl.errors import (
    DataCheckFailed,
    InputError,
    UsageError,
    first_line,
)
from leadctl.identity import cache as identity_cache
from leadctl.identity.tables import IDENTITY_STATE_KEY
from leadctl.ingest import load as ingest_load
from leadctl.routing import rep_actions
from leadctl.routing.merge import carry_ownership, moved_intents_sql
from leadctl.routing.parse import load_routing_rules
from leadctl.routing.screens import has_state_reason
from leadctl.routing.tables import ROUTED_WITH_KEY
from leadctl.ruleset import load_rules
from leadctl.schema import UPGRADED_COLUMNS, all_ddl
from leadctl.scoring.tables import SCORED_WITH_KEY
from leadctl.spark.executor import (
    SparkStatementError,
    SparkWorkspace,
    from_spark,
    spark_session,
    union_all,
)
from leadctl.spark.ingest import SparkReader, exact_location, is_remote
from leadctl.sqltext import file_literal, literal
from leadctl.tagging import event_state
from leadctl.tagging import incremental as tag_incremental
from leadctl.tagging.tables import TAGGED_WITH_KEY
from leadctl.views.asof import last_tag_as_of
from leadctl.workspace import open_writer, reading

log = logging.getLogger("leadctl")

SUMMARY_FILE = "_leadctl_run.json"
# DuckDB's errors for a Parquet file it cannot read (cut short, not Parquet): the output's,
# an input error (load-results)
UNREADABLE_PARQUET = ("InvalidInputException", "IOException")
# Views on DuckDB (derived from person_features / scores): written as tables.
VIEWS = ("tags", "score_breakdown")
# Tables a stage makes in a shape the rules decide (no DDL creates them): read from --state
# when there, so the next night can continue from them.
MADE_BY_STAGES = (event_state.STATE,)
# What a state must hold: the record a night carries forward (a table missing would start
# over: every person dealt again, the routing history gone).
STATE_REQUIRED = ("ingested_files", "leads", "events", "persons", "person_leads",
                  "identity_history", "ownership", "assignments")


class SparkUnavailable(UsageError):
    """pyspark is not installed, or Spark cannot start (no Java, a bad --spark-master):
    the user's setup to fix, exit 2."""


@dataclass
class SparkRunOptions:
    rules_dir: Path
    as_of: dt.date | None  # None: today in the workspace time zone
    inputs: list[str]
    output: str
    master: str | None = None  # None: spark-submit's --master, else local[2]
    state: str | None = None
    checkpoint_dir: str | None = None
    delimiter: str = ","
    max_reject_share: float = 0.05
    conf: dict[str, str] = field(default_factory=dict)
    # The DuckDB workspace reps work in (`--db`): its claims, statuses and sales since
    # the state's run are carried into the night (with `state` only).
    workspace: Path | None = None


def open_spark(options: SparkRunOptions):
    if options.master is None and not os.environ.get("PYSPARK_GATEWAY_PORT"):
        options.master = "local[2]"  # not launched by spark-submit

    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise SparkUnavailable("the Spark engine needs pyspark: pip install 'leadctl[spark]'"
                               ) from None
    if "spark.sql.session.timeZone" in options.conf:
        raise UsageError("spark.sql.session.timeZone is fixed to UTC: timestamps are "
                         "wall-clock times (the workspace time zone is in sources.yaml)")
    conf = {"spark.sql.legacy.javaCharsets": "true", **options.conf}  # GB18030 files
    try:
        spark = spark_session(options.master, conf=conf)
        options.master = spark.sparkContext.master
    except Exception as exc:  # no Java, bad master URL
        raise SparkUnavailable(f"cannot start Spark ({options.master}): {first_line(exc)}"
                               ) from exc
    return SparkWorkspace(spark, checkpoint_dir=options.checkpoint_dir)


def _same_folder(a: str, b: str) -> bool:
    """Whether two folder arguments name one folder (`out`, `./out/`, a link to it)."""
    if is_remote(a) or is_remote(b):
        return a.rstrip("/") == b.rstrip("/")
    return Path(a).resolve() == Path(b).resolve()


def run_spark(options: SparkRunOptions,
              progress: Callable[[int, int, str], None] | None = None) -> dict:
    if not options.inputs and not options.state:
        raise InputError("--engine spark needs input files (--inbox PATH, local or cluster) "
                         "or a previous output to recompute (--state DIR)")
    if options.state and _same_folder(options.state, options.output):
        raise UsageError("--output must be a new folder, not the --state it continues from "
                         "(the state's files are read, and partly copied, while writing)")
    if not is_remote(options.output):
        _check_local_output(options.output)
    rules = load_rules(options.rules_dir)
    for warning in rules.warnings:  # as the DuckDB engine's night says them
        log.warning("rules: %s", warning)
    digest = rules.hash
    ws = open_spark(options)
    summary: dict = {"engine": "spark", "master": options.master,
                     "as_of": None, "rules_hash": digest,
                     "output": options.output, "stages": {}, "timings": {}}
    try:
        for statement in all_ddl():
            ws.execute(statement)
        after = None  # a run id this night's must pass
        if options.state:
            summary["state_tables"] = load_state(ws, options.state)
            if options.workspace is not None and options.workspace.exists():
                summary["rep_actions"], after = carry_rep_actions(ws, options.workspace)
        run_options = pipeline.RunOptions(rules_dir=options.rules_dir, as_of=options.as_of,
                                          inbox=options.inputs,
                                          max_reject_share=options.max_reject_share,
                                          in_order=False)  # rep actions carried in are later
        pipeline.settle_as_of(ws, rules, run_options, summary)  # today: the state's zone
        options.as_of = run_options.as_of
        summary["run_id"] = ws.start_run("run --engine spark", options.as_of, digest,
                                         after=after)
        try:
            pipeline.run_stages(ws, rules, run_options, summary, progress,
                                reader=SparkReader(ws.spark, options.delimiter))
        except SparkStatementError as exc:  # one line naming the stage and statement
            stage = next((s for s in pipeline.STAGES if s not in summary["timings"]), "")
            raise SparkStatementError(f"stage {stage}: {exc}") from exc
        outcome, problem = pipeline.data_checks(summary, run_options)
        summary["outcome"] = outcome
        ws.finish_run(outcome, pipeline.run_counts(summary), options.inputs, problem)
        started = time.perf_counter()
        summary["statements"] = dict(sorted(ws.counts.items()))
        summary["tables"] = write_results(ws, options.output, summary)
        summary["timings"]["write"] = round(time.perf_counter() - started, 3)
    finally:
        ws.close()
    if progress:
        progress(len(pipeline.STAGES), len(pipeline.STAGES), "")
    if summary["outcome"] != "ok":
        raise DataCheckFailed(summary["problem"], summary)
    return summary


def _check_local_output(output: str) -> None:
    """A local --output must be a new folder that can be made: checked before the night
    (a file in its place failed only at the write, after every stage)."""
    path = Path(output)
    if (path / SUMMARY_FILE).is_file():
        raise UsageError(f"--output {output} already holds a complete run (its "
                         f"{SUMMARY_FILE}): give a new folder (an old one can be deleted "
                         "once a later night's output exists)")
    existing = next(p for p in (path, *path.absolute().parents) if p.exists())
    if not existing.is_dir():
        named = "is a file" if existing == path else f"is under the file {existing}"
        raise UsageError(f"--output {output} {named}: give a new folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"--output {output}: cannot write in {existing} (permission "
                         "denied): give a folder you can write")


def result_tables(ws) -> list[str]:
    """Workspace tables (not the stages' working tables, which start with '_')."""
    return sorted(n for n in ws.tables if not n.startswith("_")) + list(VIEWS)


def write_results(ws, output: str, summary: dict) -> dict[str, int]:
    """One Parquet folder per table, then the run summary (last: an output with a summary
    is complete); returns rows per table. What a table kept unchanged from `--state` is
    copied as files; only its other parts are encoded anew (appended as new files)."""
    folder = output.rstrip("/")
    _hadoop_delete(ws.spark, f"{folder}/{SUMMARY_FILE}")
    counts, copied = {}, {}
    for name in result_tables(ws):
        target = f"{folder}/{name}"
        parts = ws.parts.get(name, [])
        kept = [p.origin for p in parts if p.origin]
        new = [p.frame for p in parts if not p.origin] if parts else [ws.frame(name)]
        _hadoop_delete(ws.spark, target)
        for origin in kept:
            copied[name] = copied.get(name, 0) + _hadoop_copy_parquet(ws.spark, origin, target)
        started = time.perf_counter()
        if new:  # a table with no part besides its copied files needs no write
            try:
                union_all(new).write.mode("append" if kept else "overwrite").parquet(target)
            except Exception as exc:  # pyspark's or py4j's: one line, not the JVM's stack
                if not from_spark(exc):
                    raise
                raise SparkStatementError(f"stage write: table {name} to {target}: "
                                          f"{first_line(exc)}") from exc
        written = time.perf_counter()
        counts[name] = _written_rows(ws, name, target)
        log.debug("wrote %s: %.3fs, counted in %.3fs (%d copied files)", name,
                  written - started, time.perf_counter() - written, copied.get(name, 0))
    summary["copied_files"] = copied
    text = json.dumps({**summary, "tables": counts}, default=str, indent=1)
    _hadoop_write_text(ws.spark, f"{folder}/{SUMMARY_FILE}", text)
    return counts


def _written_rows(ws, name: str, target: str) -> int:
    """Rows of a table as written, from its Parquet footers: counting the frame computes a
    view again (`tags` at 1M persons: 12.6 s). Read through Hadoop, not by a Spark job
    per table (33 jobs took 4.3 s a night). A table with no rows may have no file."""
    files = _hadoop_parquet_files(ws.spark, target)
    if not files:
        return ws.frame(name).count()
    return sum(footer.rows for footer in _footers(ws.spark, files).values())


@dataclass(frozen=True)
class Footer:
    """What a Parquet file's footer says: its rows, and its top-level columns with the
    DuckDB type of what Spark reads each as (spark_type_name)."""
    rows: int
    columns: tuple[tuple[str, str], ...]


class UnreadableFooter(Exception):
    """A Parquet file with no footer to read (cut short, not Parquet): `file` its name."""

    def __init__(self, file: str, cause: str):
        super().__init__(f"{file}: {cause}")
        self.file = file


def _footers(spark, files: list) -> dict[str, Footer]:
    """File name -> Footer of the Parquet `files` (FileStatus), each footer opened once
    through Hadoop (no Spark job)."""
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    # (the Parquet schema as this session's reader takes it: each column's Spark type)
    spark_schema = jvm.org.apache.spark.sql.execution.datasources.parquet \
        .ParquetToSparkSchemaConverter(spark._jsparkSession.sessionState().conf())
    footers = {}
    for status in files:
        file = str(status.getPath().getName())
        try:
            reader = jvm.org.apache.parquet.hadoop.ParquetFileReader.open(
                jvm.org.apache.parquet.hadoop.util.HadoopInputFile.fromStatus(status, conf))
        except Exception as exc:  # the JVM's: a file cut short, no Parquet footer
            if not from_spark(exc):
                raise
            raise UnreadableFooter(file, first_line(exc)) from None
        try:
            schema = json.loads(spark_schema.convert(reader.getFileMetaData().getSchema())
                                .json())
            footers[file] = Footer(int(reader.getRecordCount()), tuple(
                (f["name"], spark_type_name(f["type"])) for f in schema["fields"]))
        finally:
            reader.close()
    return footers


def load_state(ws, state: str) -> list[str]:
    """A previous run's output as the starting workspace tables. Each is read as it is
    (Parquet, not materialised again); a table the night leaves alone is copied as files
    by write_results."""
    folder = state.rstrip("/")
    if not _hadoop_exists(ws.spark, f"{folder}/{SUMMARY_FILE}"):
        raise InputError(f"--state {state}: not a complete Spark run's output "
                         f"(no {SUMMARY_FILE})")
    # The views' tables too: the stages replace them, but first read what the last run
    # stored (the tag stage its previous run, for the change counts of the summary).
    names = list(dict.fromkeys([*result_tables(ws), *MADE_BY_STAGES, *STATE_REQUIRED]))
    written = _state_written(ws, folder, state)
    # a folder with no Parquet file (a copy stopped half way) holds no table either
    listed = {name: _hadoop_parquet_files(ws.spark, f"{folder}/{name}")
              for name in dict.fromkeys([*names, *written])}
    missing = [name for name in STATE_REQUIRED if not listed[name]]
    if missing:  # a night from it would start those over: ownership, history lost
        raise InputError(f"--state {state}: incomplete Spark output: no {', '.join(missing)} "
                         "table; give the whole --output folder of the last night")
    footers = {}
    for name, files in listed.items():
        try:
            footers[name] = _footers(ws.spark, files or [])
        except UnreadableFooter as exc:
            raise InputError(f"--state {state}: its {name} table's file {exc.file} cannot be "
                             "read: an incomplete copy; give the whole --output folder of "
                             "the last night") from None
    _refuse_partial_state(state, written, footers)
    _refuse_foreign_state_columns(state, {name: footers[name] for name in names})
    loaded = []
    for name in names:
        if not listed[name]:
            continue
        # exactly the files checked above: Spark's reader of the folder would read any
        # other file too (a `.bak` copy, a part with no extension), rows counted nowhere
        frame = ws.spark.read.parquet(*[exact_location(str(f.getPath())) for f in listed[name]])
        added = _added_columns(ws, name, frame)
        if added:  # a state written before them: NULL, the whole table written anew
            ws.store_frame(name, frame.select("*", *added), materialise=False)
        else:
            ws.store_frame(name, frame, origin=f"{folder}/{name}")
        loaded.append(name)
    return loaded


def _refuse_foreign_state_columns(state: str, footers: dict[str, dict[str, Footer]]) -> None:
    """Every Parquet file of the state's tables has its table's columns, of its types
    (foreign_column): a file of another version or shape would be read with its table's
    first file's schema, its rows' missing columns NULL, or its text compared as dates."""
    required = schema_columns()
    for name, files in sorted(footers.items()):
        foreign = foreign_column(name, {f: footer.columns for f, footer in files.items()},
                                 required.get(name, ()))
        if foreign:
            raise InputError(f"--state {state}: its {name} table's file "
                             f"{foreign_text(*foreign)}: not this version's output or a "
                             "damaged copy; give the whole --output folder of the last night")


def _added_columns(ws, name: str, frame) -> list:
    """The columns added to table `name` since the state's `frame` was written
    (schema.UPGRADED_COLUMNS) that it lacks, as typed NULLs (types: the table all_ddl()
    made before the state is read)."""
    from pyspark.sql import functions as F

    added = {c for c, _ in UPGRADED_COLUMNS.get(name, ())} - set(frame.columns)
    if not added or name not in ws.tables:
        return []
    return [F.lit(None).cast(f.dataType).alias(f.name)
            for f in ws.frame(name).schema.fields if f.name in added]


def _state_written(ws, folder: str, state: str) -> dict:
    """Rows per table the state's run wrote (its summary)."""
    summary = _hadoop_read_text(ws.spark, f"{folder}/{SUMMARY_FILE}")
    try:
        return dict(json.loads(summary).get("tables") or {})
    except (ValueError, TypeError, AttributeError):
        raise InputError(f"--state {state}: {SUMMARY_FILE} is not a complete Spark run "
                         "summary; give the whole --output folder of the last night") from None


def _refuse_partial_state(state: str, written: dict, footers: dict[str, dict[str, Footer]]
                          ) -> None:
    """Every table the state's summary lists (`written`) is there whole, as many rows as
    its run wrote (Parquet footers): a part file lost in a copy would deal its persons
    again, or drop their history, and a folder left empty fails in Spark's reader."""
    for name, rows in sorted(written.items()):
        found = sum(f.rows for f in footers[name].values()) if footers[name] else None
        if found != rows:
            held = "no Parquet file" if found is None else f"{found} rows"
            raise InputError(f"--state {state}: incomplete Spark output: its {name} table "
                             f"holds {held} where its run wrote {rows}; give the whole "
                             "--output folder of the last night")


def _hadoop_path(spark, uri: str):
    """(FileSystem, Path) for a local or cluster location, as Spark itself resolves it."""
    path = spark.sparkContext._jvm.org.apache.hadoop.fs.Path(uri)
    return path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), path


def _hadoop_exists(spark, uri: str) -> bool:
    fs, path = _hadoop_path(spark, uri)
    return bool(fs.exists(path))


def _hadoop_delete(spark, uri: str) -> None:
    fs, path = _hadoop_path(spark, uri)
    fs.delete(path, True)


def _hadoop_parquet_files(spark, folder: str) -> list | None:
    """The FileStatus of each Parquet file in `folder` (None: no such folder)."""
    fs, path = _hadoop_path(spark, folder)
    if not fs.exists(path):
        return None
    return [status for status in fs.listStatus(path)
            if status.getPath().getName().endswith(".parquet")
            and not status.getPath().getName().startswith((".", "_"))]


def _hadoop_copy_parquet(spark, source: str, target: str) -> int:
    """Copies the Parquet files of folder `source` into folder `target` (bytes as they
    are, no decoding); returns how many."""
    src_fs, _ = _hadoop_path(spark, source)
    dst_fs, dst = _hadoop_path(spark, target)
    dst_fs.mkdirs(dst)
    file_util = spark.sparkContext._jvm.org.apache.hadoop.fs.FileUtil
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    files = _hadoop_parquet_files(spark, source) or []
    for status in files:
        file_util.copy(src_fs, status.getPath(), dst_fs, dst, False, conf)
    return len(files)


def _hadoop_read_text(spark, uri: str) -> str:
    """A small text file, local or on the cluster (Spark's own readers skip a file whose
    name starts with `_`, as the run summary's does)."""
    fs, path = _hadoop_path(spark, uri)
    stream = fs.open(path)
    try:
        scanner = spark.sparkContext._jvm.java.util.Scanner(stream, "UTF-8").useDelimiter(
            "\\A")
        return str(scanner.next()) if scanner.hasNext() else ""
    finally:
        stream.close()


def _hadoop_write_text(spark, uri: str, text: str) -> None:
    fs, path = _hadoop_path(spark, uri)
    stream = fs.create(path, True)
    try:
        stream.write(bytearray(text.encode("utf-8")))
    finally:
        stream.close()


def carry_rep_actions(ws, db: Path) -> tuple[int, int | None]:
    """The rep actions of workspace `db` that the state does not have, applied to the
    state's tables (routing/rep_actions.py); returns how many log rows were new and the
    workspace's last run id, which the night's must pass: the loaded night's rows keep
    its id, and a workspace run of the same id (a load, a claim) would be listed as the
    one that made them, its rows ordered after theirs. They are rows typed by hand
    (claims, statuses, sales; and the merge rows and conflicts of the workspace's
    folds): small, so they travel as Arrow."""
    with reading(db) as duck:
        # (its columns, not table_exists: a scalar's result left open blocks duck.arrow)
        selects = rep_actions.rep_action_selects(
            has_state_reason(duck), bool(duck.columns("ownership_conflicts")))
        for name, select in selects.items():
            ws.register(rep_actions.SOURCES[name], duck.arrow(select))
        last_run = duck.scalar("SELECT max(run_id) FROM runs")
    unknown = ws.rows(rep_actions.unknown_persons_sql())[0]
    if unknown["persons"]:  # a sale there would lock a person the state never had
        ws.script(rep_actions.drop_sql())
        raise InputError(
            f"--db {db}: its rep actions name {unknown['persons']} person(s) this --state "
            f"has never had (such as {unknown['example']}): it is not the workspace this "
            "state's nights were loaded into; give that one, or leave --db out")
    ws.script(rep_actions.merge_sql())
    carried = int(ws.scalar(rep_actions.count_new_sql()) or 0)
    ws.script(rep_actions.drop_sql())
    return carried, None if last_run is None else int(last_run)


# The workspace's own run log and schema version, what reps entered in it (claims,
# intents and sales are written by `claim`/`status`/`sale`, never by a Spark run; the
# Spark run's copies of them came from here, see carry_rep_actions), and the experiments
# `audience export` recorded there (a Spark run writes them empty).
KEPT_BY_WORKSPACE = ("runs", "meta", "lead_intent", "sales", "experiments",
                     "experiment_members")
# What load-results reads of those: the run's sales and intents (taken where newer) and
# its meta, so they must be whole as the tables are.
READ_BY_LOAD = ("meta", "lead_intent", "sales")
RUN_SALES = "_run_sales"  # the loaded run's sales (which the workspace does not take)
RUN_INTENTS = "_run_intents"  # the loaded run's intents (taken as its sales are)
# Meta entries that describe the derived tables (what the next night continues from): they
# come with the tables from the Spark run, else the workspace's own would describe tables
# it no longer has.
STATE_META_KEYS = (IDENTITY_STATE_KEY, identity_cache.META_KEY,
                   identity_cache.EVENT_SUBJECTS_KEY, tag_incremental.META_KEY, SCORED_WITH_KEY,
                   TAGGED_WITH_KEY, ROUTED_WITH_KEY, ingest_load.ZONE_KEY)


@functools.cache
def schema_columns() -> dict[str, tuple[tuple[str, str], ...]]:
    """The (column, DuckDB type) this version's DDL (all_ddl()) gives each table, in order
    (made once a process: the DDL does not change)."""
    import duckdb  # (not at module level: TID253, the CLI's start-up time)

    con = duckdb.connect()
    try:
        for statement in all_ddl():
            con.execute(statement)
        rows = con.execute("SELECT table_name, column_name, data_type FROM "
                           "information_schema.columns ORDER BY table_name, "
                           "ordinal_position").fetchall()
    finally:
        con.close()
    columns: dict[str, list[tuple[str, str]]] = {}
    for table, column, kind in rows:
        columns.setdefault(table, []).append((column, kind))
    return {table: tuple(cs) for table, cs in columns.items()}


# What a column of a DuckDB type holds, as far as a stored file must agree with the DDL:
# integer widths are not told apart (Spark writes what its plan gives), JSON is text.
KINDS = {"VARCHAR": "text", "JSON": "text", "TINYINT": "integer", "SMALLINT": "integer",
         "INTEGER": "integer", "BIGINT": "integer", "HUGEINT": "integer", "FLOAT": "number",
         "DOUBLE": "number", "DECIMAL": "number", "DATE": "date", "TIMESTAMP": "timestamp",
         "TIMESTAMP_S": "timestamp", "TIMESTAMP_MS": "timestamp", "TIMESTAMP_NS": "timestamp",
         "TIMESTAMP WITH TIME ZONE": "timestamp", "BOOLEAN": "boolean", "BLOB": "bytes"}
# Spark's type names (a StructType's JSON) as DuckDB's.
SPARK_TYPES = {"string": "VARCHAR", "byte": "TINYINT", "short": "SMALLINT",
               "integer": "INTEGER", "long": "BIGINT", "float": "FLOAT", "double": "DOUBLE",
               "date": "DATE", "timestamp": "TIMESTAMP WITH TIME ZONE",
               "timestamp_ntz": "TIMESTAMP", "boolean": "BOOLEAN", "binary": "BLOB"}


def spark_type_name(spark_type) -> str:
    """The DuckDB name of a Spark type as its JSON gives it ('long', 'decimal(38,6)',
    {'type': 'array', 'elementType': 'string', ...})."""
    if isinstance(spark_type, dict):
        if spark_type.get("type") == "array":
            return f"{spark_type_name(spark_type['elementType'])}[]"
        return str(spark_type.get("type")).upper()  # a struct, a map
    return SPARK_TYPES.get(spark_type, spark_type.upper())  # DECIMAL(38,6) as it is


def column_kind(duckdb_type: str) -> str:
    """What a column of `duckdb_type` holds (KINDS; a list: its elements' kind + `[]`)."""
    if duckdb_type.endswith("[]"):
        return f"{column_kind(duckdb_type[:-2])}[]"
    return KINDS.get(duckdb_type.split("(")[0].upper(), duckdb_type)


def stores_as(stored: str, ddl: str) -> bool:
    """Whether a file's column of type `stored` holds what the DDL's `ddl` type does
    (a DOUBLE column stored as whole numbers too)."""
    kind, wanted = column_kind(stored), column_kind(ddl)
    return kind == wanted or (wanted, kind) == ("number", "integer")


def foreign_column(name: str, files: dict[str, tuple[tuple[str, str], ...]],
                   ddl: tuple[tuple[str, str], ...]) -> tuple[str, str, str | None, str] | None:
    """The first (file, column, its stored type or None: lacking, the DDL's type) where a
    file of table `name` (`files`: file -> its (column, DuckDB type)) lacks a column its
    table has, one of its DDL's (`ddl`; person_features and scores have more, one per rule,
    which change with the rules) or one its other files have, or stores a column of the
    DDL as another kind of value (stores_as). Not the columns added since
    (UPGRADED_COLUMNS), which an older output lacks (checked where it has them)."""
    upgraded = {c for c, _ in UPGRADED_COLUMNS.get(name, ())}
    types = dict(ddl)
    required = [c for c in dict.fromkeys([*types, *(c for cs in files.values() for c, _ in cs)])
                if c not in upgraded]
    for file, columns in sorted(files.items()):
        stored = dict(columns)
        lacking = [c for c in required if c not in stored]
        if lacking:
            return file, lacking[0], None, types.get(lacking[0], "")
        wrong = [c for c, t in columns if c in types and not stores_as(t, types[c])]
        if wrong:
            return file, wrong[0], stored[wrong[0]], types[wrong[0]]
    return None


def foreign_text(file: str, column: str, stored: str | None, ddl: str) -> str:
    """foreign_column's finding, said after "its TABLE table's file "."""
    if stored is None:
        return f"{file} has no {column} column"
    return f"{file} stores {column} as {stored}, not {ddl}"


def top_level_columns(rows) -> dict[str, tuple[tuple[str, str], ...]]:
    """File -> its top-level (column, DuckDB type), from DuckDB's parquet_schema() rows
    (file, name, num_children, duckdb_type), each file's in its order: the root, then each
    element followed by its children (a list column's `list` and `element`)."""
    by_file: dict[str, list] = {}
    for row in rows:
        by_file.setdefault(row[0], []).append(row)
    columns = {}
    for file, elements in by_file.items():
        counts = [n or 0 for _, _, n, _ in elements]  # children of each element
        top, at = [], 1
        for _ in range(counts[0]):
            top.append((elements[at][1], elements[at][3] or "UNKNOWN"))
            end, pending = at + 1, counts[at]  # past its descendants
            while pending:
                pending += counts[end] - 1
                end += 1
            at = end
        columns[file] = tuple(top)
    return columns


def parquet_schema_sql(source: str) -> str:
    """Each file's schema elements in file order (`source`: a read_parquet argument)."""
    return ("SELECT file_name, name, num_children, duckdb_type FROM "
            f"parquet_schema({source})")


def load_state_meta_sql(source: str) -> list[str]:
    """Replace the workspace's STATE_META_KEYS by the Spark run's (`source`: its meta)."""
    keys = ", ".join(literal(k) for k in STATE_META_KEYS)
    return [f"DELETE FROM meta WHERE key IN ({keys})",
            f"INSERT INTO meta (key, value) SELECT key, value FROM read_parquet({source}) "
            f"WHERE key IN ({keys})"]


def load_table_sql(name: str, kind: str | None, columns: list[tuple[str, str]], source: str,
                   source_columns: list[str]) -> list[str]:
    """Statements replacing table `name` by the rows of `source` (a read_parquet argument).
    A table of the same columns keeps its types (JSON, lists) and is refilled, also when
    `source` lacks columns added since it was written (schema.UPGRADES: NULL); any other
    shape (person_features and scores have one column per rule) is re-created."""
    quoted = f'"{name}"'
    names = {c for c, _ in columns}
    missing = names - set(source_columns)
    if kind == "BASE TABLE" and set(source_columns) <= names \
            and missing <= {c for c, _ in UPGRADED_COLUMNS.get(name, ())}:
        return [f"DELETE FROM {quoted}",
                f"INSERT INTO {quoted} BY NAME SELECT * FROM read_parquet({source})"]
    drop = [f"DROP VIEW {quoted}"] if kind == "VIEW" else \
        [f"DROP TABLE {quoted}"] if kind else []
    return drop + [f"CREATE TABLE {quoted} AS SELECT * FROM read_parquet({source})"]


def _run_summary(path: Path, output: str) -> tuple[dict, dt.date]:
    """The Spark run's summary file and its as-of, checked: a truncated or foreign one is
    an input error, not an internal one."""
    try:
        run = json.loads(path.read_text(encoding="utf-8"))
        as_of = dt.date.fromisoformat(run["as_of"])
        _check_summary_numbers(run)
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{output}: {SUMMARY_FILE} is not a complete Spark run summary "
                         f"({type(exc).__name__}: {exc}); copy the whole --output folder "
                         "again") from None
    return run, as_of


def _whole(value, most: int | None = None) -> bool:
    """Whether `value` is a whole number from 0 (to `most`); JSON's true is none."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0 and (
        most is None or value <= most)


def _check_summary_numbers(run: dict) -> None:
    """The summary's run id (a workspace INTEGER: the load's run ids pass it) and its
    rows per table (what _refuse_partial_copy counts against): an edited one would fail
    deep in the load."""
    run_id, tables = run.get("run_id"), run.get("tables")
    if run_id is not None and not _whole(run_id, 2**31 - 1):
        raise ValueError(f"run_id {run_id!r} is not a whole number from 0 to {2**31 - 1}")
    if tables is not None and not isinstance(tables, dict):
        raise ValueError(f"tables is a {type(tables).__name__}, not rows per table")
    bad = [name for name, rows in (tables or {}).items() if not _whole(rows)]
    if bad:
        raise ValueError(f"tables: {bad[0]} has {tables[bad[0]]!r} rows, not a whole number")


def _parquet_files(folder: Path) -> list[Path]:
    """The Parquet files of an output's table folder, as Spark lists them (its
    `*.parquet`, not `.…` or `_…`); none: no such folder."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.parquet") if not p.name.startswith((".", "_")))


def parquet_source(files: list[Path]) -> str:
    """A read_parquet argument naming exactly `files`. DuckDB takes each as a glob pattern:
    a `[`, `*` or `?` in a folder's name (`night[1]`) is escaped as a one-character class."""
    return "[" + ", ".join(file_literal(str(f)) for f in files) + "]"


def _refuse_partial_copy(ws, folder: Path, files: dict[str, list[Path]], written: dict,
                         output: str) -> None:
    """Every table the run's summary lists is there whole, as many rows as the run wrote
    (read off the Parquet footers): an output copied down only in part (a folder missing,
    files missing) would load some tables of this night beside others of the last one.
    `files`: each table's Parquet files."""
    for name, rows in sorted(written.items()):
        if name in KEPT_BY_WORKSPACE and name not in READ_BY_LOAD:
            continue
        if not files[name]:  # (Spark writes a file for no rows too)
            raise InputError(f"{output}: its {name} table is missing (no Parquet file in "
                             f"{folder / name}): an incomplete copy; copy the whole "
                             "--output folder again (nothing was loaded)")
        try:
            found = int(ws.scalar("SELECT coalesce(sum(num_rows), 0) FROM "
                                  f"parquet_file_metadata({parquet_source(files[name])})"))
        except Exception as exc:  # a file cut short: no footer to read
            if type(exc).__name__ not in UNREADABLE_PARQUET:
                raise
            raise InputError(f"{output}: its {name} table cannot be read "
                             f"({first_line(exc)}): an incomplete copy; copy the whole "
                             "--output folder again (nothing was loaded)") from None
        if found != rows:
            raise InputError(f"{output}: its {name} table holds {found} rows where the run "
                             f"wrote {rows}: an incomplete copy; copy the whole --output "
                             "folder again (nothing was loaded)")


def _refuse_foreign_columns(ws, files: dict[str, list[Path]], tables: list[str],
                            output: str) -> None:
    """Every file of the tables to load has its table's columns, of its types
    (foreign_column): read together, DuckDB takes the first file's columns, and a table
    lacking one would be re-created without it (load_table_sql), a text column loaded
    into a DATE one fail deep in the load or be re-created as text."""
    required = schema_columns()
    for name in tables:
        try:
            rows = [tuple(r.values()) for r in ws.rows(parquet_schema_sql(
                parquet_source(files[name])))]
        except Exception as exc:  # a file cut short: no footer to read
            if type(exc).__name__ not in UNREADABLE_PARQUET:
                raise
            raise InputError(f"{output}: its {name} table cannot be read "
                             f"({first_line(exc)}); nothing was loaded") from None
        columns = {Path(f).name: cs for f, cs in top_level_columns(rows).items()}
        foreign = foreign_column(name, columns, required.get(name, ()))
        if foreign:
            raise InputError(f"{output}: its {name} table's file {foreign_text(*foreign)}: "
                             "not this version's output or a damaged copy; nothing was "
                             "loaded")


def load_results(db: Path | None, output: str, rules_dir: Path | None = None) -> dict:
    """Replaces a DuckDB workspace's tables by a Spark run's results (atomically).
    `rules_dir`: its routing.yaml's on_merge policy folds a rep action on a person the run
    merged away (read only then)."""
    folder = Path(output)
    summary_path = folder / SUMMARY_FILE
    if not summary_path.is_file():
        raise InputError(f"{output}: not a Spark run's output (no {SUMMARY_FILE}); "
                         "run `leadctl run --engine spark --output DIR` first")
    run, run_as_of = _run_summary(summary_path, output)
    written = run.get("tables") or {}
    # each table's files, listed once: the ones checked are the ones loaded
    files = {name: _parquet_files(folder / name)
             for name in {*(p.name for p in folder.iterdir()), *written, *READ_BY_LOAD}}
    tables = sorted(n for n, fs in files.items() if fs and n not in KEPT_BY_WORKSPACE)
    with open_writer(db, create=True) as ws:
        latest = last_tag_as_of(ws)
        if latest is not None and run_as_of < latest:  # refused: nothing is published
            raise InputError(f"{output}: a night as of {run_as_of}, older than this "
                             f"workspace's last night ({latest}): loading it would take the "
                             "workspace back and drop what came since; load the latest "
                             "output")
        _refuse_partial_copy(ws, folder, files, written, output)
        _refuse_foreign_columns(ws, files, [*tables, *(t for t in READ_BY_LOAD if files[t])],
                                output)
        # Loaded rows keep the Spark run log's ids, which may pass this log's: the load and
        # every later run here take higher ones, so rows ordered by run (the latest tag
        # history row of a person, a run's own identity changes) keep their order.
        spark_run = run.get("run_id")
        meta = parquet_source(files["meta"])
        if files["meta"]:  # a new workspace: the run's zone, not the default
            ws.rules_zone = ws.scalar(f"SELECT max(value) FROM read_parquet({meta}) "
                                      f"WHERE key = {literal(ingest_load.ZONE_KEY)}")
        ws.start_run("load-results", run_as_of, run.get("rules_hash"),
                     after=spark_run if isinstance(spark_run, int) else None)
        ws.compact_when_due()
        ws.execute(rep_actions.stamp_folds_from_sql(ws.run_id))
        ws.script(rep_actions.capture_sql())  # before the run's tables replace them
        for name in tables:
            source = parquet_source(files[name])
            try:
                ws.script(load_table_sql(name, ws.table_type(name), ws.columns(name), source,
                                         [c for c, _ in ws.columns_of_query(
                                             f"SELECT * FROM read_parquet({source})")]))
            except Exception as exc:  # a half-copied or foreign output: nothing is published
                if type(exc).__name__ not in UNREADABLE_PARQUET:
                    raise
                raise InputError(f"{output}: its {name} table cannot be read "
                                 f"({first_line(exc)}); nothing was loaded") from None
        if files["meta"]:
            ws.script(load_state_meta_sql(meta))
        # Rep actions the run did not carry (newer than it) stay: never overwritten. One
        # on a person the run merged away is folded into the survivor by on_merge; a fold
        # an earlier load made (its merge row, its conflicts) stays too. The
        # workspace keeps its own sales table (the run's tell which sales it carried) and
        # takes the run's it lacks.
        unknown = ws.rows(rep_actions.unknown_persons_sql())[0]
        if unknown["persons"]:  # refused: nothing is published
            raise InputError(
                f"{output}: this workspace's rep actions name {unknown['persons']} person(s) "
                f"that run has never had (such as {unknown['example']}): it is another "
                "workspace's Spark run; load it into that one (or into a new workspace)")
        run_sales = "sales"
        if files["sales"]:
            run_sales = RUN_SALES
            ws.execute(f"CREATE OR REPLACE TEMP TABLE {RUN_SALES} AS SELECT * FROM "
                       f"read_parquet({parquet_source(files['sales'])})")
        ws.script(rep_actions.merge_sql(run_sales))
        kept = int(ws.scalar(rep_actions.count_new_sql()) or 0)
        not_applied = int(ws.scalar(rep_actions.count_not_applied_sql()) or 0)
        if run_sales == RUN_SALES:
            ws.execute(rep_actions.run_sales_sql(RUN_SALES))
        # The run's intents too (a new workspace had none: its dormancy clock), the later
        # of both per person; one the workspace holds under an id the run retired is folded.
        if files["lead_intent"]:
            ws.execute(f"CREATE OR REPLACE TEMP TABLE {RUN_INTENTS} AS SELECT person_id, "
                       f"intent_at FROM read_parquet({parquet_source(files['lead_intent'])})")
            ws.script(rep_actions.later_intents_sql(RUN_INTENTS))
        ws.script([*rep_actions.drop_sql(), f"DROP TABLE IF EXISTS {RUN_SALES}",
                   f"DROP TABLE IF EXISTS {RUN_INTENTS}"])
        # (the fold's rows are stamped with the load's start: what marks them as its folds)
        started = ws.scalar(f"SELECT started_at FROM runs WHERE run_id = {int(ws.run_id)}")
        folded = carry_ownership(ws, load_routing_rules(rules_dir), run_as_of, ws.run_id,
                                 now=started) \
            if kept or ws.scalar(moved_intents_sql()) else {}
        ws.finish_run(run.get("outcome", "ok"), {"spark_run": run.get("run_id"),
                                                 "stages": run.get("stages"),
                                                 "timings": run.get("timings")}, output)
    return {"output": output, "run_id": run.get("run_id"), "as_of": run.get("as_of"),
            "tables": {n: run.get("tables", {}).get(n) for n in tables},
            "rep_actions_kept": kept, "rep_actions_not_applied": not_applied,
            "merged_states": folded.get("merged", 0),
            "conflicts": folded.get("conflicts", 0)}
