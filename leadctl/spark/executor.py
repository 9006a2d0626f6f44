"""`SparkWorkspace`: the Spark executor behind the same methods stages call on a
DuckDB `Workspace` (execute, script, rows, scalar, arrow, register, columns, …).

Every table is a temp view over the union of its *parts*, each a checkpointed
DataFrame (or a Parquet folder loaded from a previous run), so iterative steps
(label propagation) never grow an unbounded lineage, and a write costs what it
changes: an INSERT materialises only its new rows as a new part; a DELETE or
UPDATE rewrites only the parts holding a row it matches; a CREATE replaces the
table by one part. Past MAX_PARTS parts, a table is compacted into one. With
`checkpoint_dir` set (HDFS/S3 on a cluster) checkpoints are reliable; without
it they are local (`local[N]`).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import reduce
from typing import Any

from leadctl.errors import LeadctlError, first_line
from leadctl.spark.translate import (
    Action,
    delete_match_sql,
    delete_query_sql,
    translate,
    update_match_sql,
    update_query_sql,
)
from leadctl.workspace import SqlSession

log = logging.getLogger("leadctl")

# Spark type names → the DuckDB names stages compare against (`ws.columns`).
_DUCKDB_TYPES = {"string": "VARCHAR", "bigint": "BIGINT", "int": "INTEGER",
                 "smallint": "SMALLINT", "tinyint": "TINYINT", "double": "DOUBLE",
                 "float": "FLOAT", "boolean": "BOOLEAN", "date": "DATE",
                 "timestamp": "TIMESTAMP WITH TIME ZONE", "timestamp_ntz": "TIMESTAMP"}


# A table of more parts is compacted into one: each part costs a little on every read.
MAX_PARTS = 32


@dataclass(frozen=True)
class Part:
    """Rows of a table: a materialised DataFrame; `origin` is the Parquet folder it was
    read from when it is a previous run's table, unchanged (written by copying files)."""

    frame: Any
    origin: str | None = None
    empty: bool = False  # a table created empty: the first INSERT replaces it


def union_all(frames: list):
    """The rows of every DataFrame in `frames` (same columns, in the same order)."""
    return reduce(lambda a, b: a.unionAll(b), frames)


def duckdb_type_name(spark_type: str) -> str:
    """A Spark type (simpleString) by the DuckDB name stages compare against."""
    if spark_type.startswith("array<") and spark_type.endswith(">"):
        return duckdb_type_name(spark_type[6:-1]) + "[]"
    return _DUCKDB_TYPES.get(spark_type, spark_type.upper())


def spark_session(master: str | None = "local[2]", app_name: str = "leadctl",
                  conf: dict | None = None):
    """A Spark session. `master` None: the one spark-submit was given (--master)."""
    from pyspark.sql import SparkSession

    # getOrCreate would silently hand back a running session of another master.
    running = SparkSession.getActiveSession() or SparkSession._instantiatedSession
    if master and running is not None and running.sparkContext.master != master:
        running.stop()
    builder = SparkSession.builder.appName(app_name)
    if master:
        builder = builder.master(master)
    builder = (builder
               # TIMESTAMP values are wall-clock times, as in the DuckDB workspace.
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.sql.ansi.enabled", "false")
               # A checkpoint keeps the constraints of the plan it came from, and a
               # UNION of checkpoints (a table's parts, or a query's UNION ALL) can
               # then fail planning ("key not found" in Union.rewriteConstraints,
               # Spark 4.x). The builders write the filters propagation would infer.
               .config("spark.sql.constraintPropagation.enabled", "false")
               # Every table write is a checkpoint: drop them once nothing refers to them.
               .config("spark.cleaner.referenceTracking.cleanCheckpoints", "true")
               .config("spark.ui.showConsoleProgress", "false"))
    if (master or "").startswith("local"):
        builder = builder.config("spark.sql.shuffle.partitions", "8").config(
            "spark.ui.enabled", "false")
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("FATAL")  # failures reach the user as our own errors
    return spark


def bounded_estimate(spark, frame):
    """`frame` (a checkpoint) with a size estimate Spark can plan with. A checkpoint keeps
    the estimate of the plan it came from (Spark 3.4+), and a join's estimate is the
    product of its sides': carried from statement to statement, estimates compound (a
    table joined three times per step, as a deal wave reads the dealt so far, triples its
    digits each step) until planning runs out of memory on a tiny night. One past what a
    long holds starts again from Spark's default (the RDD itself, not recomputed)."""
    jdf = getattr(frame, "_jdf", None)  # (a classic session's; Spark Connect keeps none)
    if jdf is None:
        return frame
    execution = jdf.queryExecution()
    if _bits(execution.optimizedPlan().stats().sizeInBytes()) < 64:
        return frame
    fresh = spark._jsparkSession.internalCreateDataFrame(execution.toRdd(), jdf.schema(), False)
    return frame.__class__(fresh, spark)


def _bits(size) -> int:
    """The bit length of a Scala BigInt as py4j hands it over (a Python int here)."""
    return size.bit_length() if isinstance(size, int) else size.bitLength()


def materialised_count(frame) -> int:
    """Rows of a checkpointed DataFrame, counted over its RDD: one stage, where
    DataFrame.count() plans an aggregate of two (0.07 s against 0.2–0.3 s a count)."""
    try:
        return int(frame._jdf.queryExecution().toRdd().count())
    except AttributeError:  # no JVM DataFrame behind it (Spark Connect)
        return frame.count()


class _Result:
    """The slice of a DB-API cursor that stages use, over a collected Spark result."""

    def __init__(self, rows: list | None = None, names: list[str] | None = None):
        self._rows = rows or []
        self.description = [(n,) for n in (names or [])]

    def fetchall(self) -> list[tuple]:
        return [tuple(r) for r in self._rows]

    def fetchone(self) -> tuple | None:
        return tuple(self._rows[0]) if self._rows else None


class _CountResult(_Result):
    """An INSERT's row count, as DuckDB returns it: counted only when fetched."""

    def __init__(self, frame):
        super().__init__(names=["Count"])
        self._frame = frame

    def fetchall(self) -> list[tuple]:
        return [(materialised_count(self._frame),)]

    def fetchone(self) -> tuple | None:
        return self.fetchall()[0]


class SparkWorkspace(SqlSession):
    engine = "spark"
    sort_samples_input = True
    changes_rows_in_place = False

    def __init__(self, spark, *, checkpoint_dir: str | None = None, run_id: int | None = None):
        self.spark = spark
        self.path = None
        self.read_only = False
        self.run_id = run_id
        self.tables: dict[str, Any] = {}  # name → the union of its parts
        self.parts: dict[str, list[Part]] = {}
        self.views: set[str] = set()
        self.reliable = bool(checkpoint_dir)
        # Statements run, by action kind, and table writes that materialised rows: the
        # bench's measure of what a night costs on Spark.
        self.counts: Counter[str] = Counter()
        if checkpoint_dir:
            spark.sparkContext.setCheckpointDir(checkpoint_dir)

    # -- the Workspace interface ----------------------------------------------------
    def execute(self, sql: str, params: list | dict | None = None) -> _Result:
        started = time.perf_counter()
        action = translate(sql, params)
        self.counts[action.kind] += 1
        try:
            with _one_line_errors(action.sql or sql), self._stored_ctes(action):
                return self._run(action)
        finally:
            if log.isEnabledFor(logging.DEBUG):
                log.debug("spark %.3fs %s: %s", time.perf_counter() - started, action.kind,
                          " ".join(sql.split())[:120])

    def arrow(self, sql: str, params: list | dict | None = None):
        action = translate(sql, params)
        with _one_line_errors(action.sql or sql), self._stored_ctes(action):
            return self._to_arrow(action.sql)

    def _to_arrow(self, sql: str):
        return self.spark.sql(sql).toArrow()

    @contextlib.contextmanager
    def _stored_ctes(self, action: Action) -> Iterator[None]:
        """The statement's MATERIALIZED CTEs as checkpointed temp views while it runs."""
        try:
            for view, cte_sql in action.ctes:
                self._materialise(self.spark.sql(cte_sql)).createOrReplaceTempView(view)
            yield
        finally:
            for view, _ in action.ctes:
                self.spark.catalog.dropTempView(view)

    def register(self, name: str, table: Any) -> None:
        """An Arrow table (small: e.g. phone results for distinct leftovers) as a table.
        One with no rows is given one empty chunk per column: pyspark cannot build a list
        column (the conflicts' old ids) from none."""
        if table.num_rows == 0:
            table = table.schema.empty_table()
        self._store(name, self.spark.createDataFrame(table))

    def unregister(self, name: str) -> None:
        self._drop(name)

    def table_exists(self, name: str) -> bool:
        return name in self.tables or name in self.views

    def columns(self, name: str) -> list[tuple[str, str]]:
        return [(f.name, duckdb_type_name(f.dataType.simpleString()))
                for f in self.frame(name).schema.fields]

    def table_type(self, name: str) -> str | None:
        if name in self.tables:
            return "BASE TABLE"
        return "VIEW" if name in self.views else None

    def tables_like(self, prefix: str) -> list[str]:
        return sorted(n for n in self.tables if n.startswith(prefix))

    @contextlib.contextmanager
    def unordered(self) -> Iterator[None]:
        yield  # Spark never promises row order

    def store_frame(self, name: str, frame, *, materialise: bool = True,
                    origin: str | None = None) -> None:
        """A DataFrame (e.g. a file Spark read) as a table: materialised, or as it is
        when its lineage is already short (a file read, a filter of a materialised
        table); `origin`: the Parquet folder `frame` reads, unchanged."""
        if materialise and not origin:
            self._store(name, frame)
        else:
            self._set_parts(name, [Part(frame, origin)])

    def frame(self, name: str):
        return self.tables[name] if name in self.tables else self.spark.table(name)

    def close(self) -> None:
        for name in list(self.tables):
            self._drop(name)

    # -- actions ----------------------------------------------------------------------
    def _run(self, action: Action) -> _Result:
        kind = action.kind
        if kind == "noop":
            return _Result()
        if kind == "query":
            frame = self.spark.sql(action.sql)
            return _Result(frame.collect(), frame.columns)
        if kind in ("materialize", "empty", "view") and action.if_not_exists \
                and self.table_exists(action.name):
            return _Result()
        if kind == "materialize":
            self._store(action.name, self.spark.sql(action.sql))
        elif kind == "empty":
            cols = ", ".join(f"CAST(NULL AS {t}) AS `{c}`" for c, t in action.types)
            self._store(action.name, self.spark.sql(f"SELECT {cols} WHERE FALSE"), empty=True)
        elif kind == "view":
            # Through SQL: Spark keeps the view's text and resolves it on each use, so
            # later writes to its tables show through (as in DuckDB).
            self._drop(action.name)
            self.spark.sql(f"CREATE TEMPORARY VIEW `{action.name}` AS {action.sql}")
            self.views.add(action.name)
        elif kind == "append":
            return _CountResult(self._append(action))
        elif kind == "delete":
            self._rewrite_parts(action, lambda relation: delete_match_sql(action, relation),
                                lambda relation: delete_query_sql(action, relation))
        elif kind == "update":
            columns = self.frame(action.name).columns
            self._rewrite_parts(action, lambda relation: update_match_sql(action, relation),
                                lambda relation: update_query_sql(action, columns, relation))
        elif kind == "drop":
            if not self.table_exists(action.name) and not action.if_exists:
                raise SparkStatementError(f"no table {action.name} to drop")
            self._drop(action.name)
        elif kind == "rename":
            parts = self.parts[action.name]
            self._drop(action.name)
            self._drop(action.new_name)
            self._set_parts(action.new_name, parts)
        return _Result()

    def _rewrite_parts(self, action: Action, match: Callable[[str], str],
                       rewrite: Callable[[str], str]) -> None:
        """Rewrites the parts of `action.name` holding a row that `match(relation)` (a
        SELECT from a relation) finds, each by `rewrite(relation)`; when that is half
        of them or more, the whole table as one part."""
        parts = self.parts[action.name]
        if len(parts) == 1:
            if self.spark.sql(match(action.name)).take(1):
                self._store(action.name, self.spark.sql(rewrite(action.name)))
            return
        from pyspark.sql import functions as F

        tagged = union_all([p.frame.withColumn("__part", F.lit(i))
                            for i, p in enumerate(parts)])
        tagged.createOrReplaceTempView("__parts")
        try:
            hit = {row[0] for row in self.spark.sql(
                f"SELECT DISTINCT `__part` FROM ({match('__parts')})"
            ).collect()}
        finally:
            self.spark.catalog.dropTempView("__parts")
        if not hit:
            return
        if len(hit) * 2 >= len(parts):  # most of the table: rewritten as one part
            self._store(action.name, self.spark.sql(rewrite(action.name)))
            return
        rewritten = []
        for i, part in enumerate(parts):
            if i not in hit:
                rewritten.append(part)
                continue
            part.frame.createOrReplaceTempView("__part")
            try:
                rewritten.append(Part(self._materialise(self.spark.sql(rewrite("__part")))))
            finally:
                self.spark.catalog.dropTempView("__part")
        self._set_parts(action.name, rewritten)

    def _append(self, action: Action):
        """The new rows as a new part of the table; returns them (materialised)."""
        from pyspark.sql import functions as F

        target = self.frame(action.name)
        new = self.spark.sql(action.sql)
        names = list(action.columns) or target.columns[:len(new.columns)]
        new = new.toDF(*names)
        fields = {f.name: f.dataType for f in target.schema.fields}
        aligned = new.select([
            (F.col(f"`{c}`") if c in names else F.lit(None)).cast(fields[c]).alias(c)
            for c in target.columns])
        part = self._materialise(aligned)
        parts = [p for p in self.parts[action.name] if not p.empty] + [Part(part)]
        if len(parts) > MAX_PARTS:
            self._store(action.name, union_all([p.frame for p in parts]))
        else:
            self._set_parts(action.name, parts)
        return part

    def _materialise(self, frame):
        self.counts["materialised"] += 1
        done = frame.checkpoint(eager=True) if self.reliable else frame.localCheckpoint(eager=True)
        return bounded_estimate(self.spark, done)

    def _store(self, name: str, frame, *, empty: bool = False) -> None:
        """`frame` as the table's one part."""
        self._set_parts(name, [Part(self._materialise(frame), empty=empty)])

    def _set_parts(self, name: str, parts: list[Part]) -> None:
        # A replaced part's checkpoint goes when nothing refers to it (cleanCheckpoints).
        frame = union_all([p.frame for p in parts])
        frame.createOrReplaceTempView(name)
        self.views.discard(name)
        self.parts[name] = parts
        self.tables[name] = frame

    def _drop(self, name: str) -> None:
        self.tables.pop(name, None)
        self.parts.pop(name, None)
        self.views.discard(name)
        self.spark.catalog.dropTempView(name)


@contextlib.contextmanager
def _one_line_errors(statement: str) -> Iterator[None]:
    """pyspark's or py4j's error, or a JVM gone (killed, out of memory), as one line naming
    the statement (exit 3), not the JVM's stack."""
    try:
        yield
    except Exception as exc:
        if from_spark(exc):
            raise SparkStatementError(f"{first_line(exc)}\n  in: {statement}") from exc
        if isinstance(exc, ConnectionError):
            raise SparkStatementError(
                f"the Spark JVM stopped answering ({first_line(exc)}): see its log, "
                f"e.g. for memory\n  in: {statement}") from exc
        raise


def from_spark(exc: BaseException) -> bool:
    """Whether `exc` is pyspark's own error, or py4j's for a failure inside the JVM."""
    return type(exc).__module__.split(".")[0] in ("pyspark", "py4j")


class SparkStatementError(LeadctlError):
    """A statement Spark rejected: an engine gap, reported as an internal error (exit 3)."""

    exit_code = 3
