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
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from leadctl.errors import DataCheckFailed, InputError, LeadctlError

SUMMARY_FILE = "_leadctl_run.json"
# Views on DuckDB (derived from person_features / scores): written as tables.
VIEWS = ("tags", "score_breakdown")


class SparkUnavailable(LeadctlError):
    exit_code = 2


@dataclass
class SparkRunOptions:
    rules_dir: Path
    as_of: dt.date
    inputs: list[str]
    output: str
    master: str | None = None  # None: spark-submit's --master, else local[2]
    state: str | None = None
    checkpoint_dir: str | None = None
    delimiter: str = ","
    max_reject_share: float = 0.05
    conf: dict[str, str] = field(default_factory=dict)


def open_spark(options: SparkRunOptions):
    import os

    from leadctl.spark.executor import SparkWorkspace, spark_session

    if options.master is None and not os.environ.get("PYSPARK_GATEWAY_PORT"):
        options.master = "local[2]"  # not launched by spark-submit

    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise SparkUnavailable("the Spark engine needs pyspark: pip install 'leadctl[spark]'"
                               ) from None
    conf = {"spark.sql.legacy.javaCharsets": "true", **options.conf}  # GB18030 files
    try:
        spark = spark_session(options.master, conf=conf)
        options.master = spark.sparkContext.master
    except Exception as exc:  # no Java, bad master URL
        raise SparkUnavailable(f"cannot start Spark ({options.master}): "
                               f"{str(exc).strip().splitlines()[0]}") from exc
    return SparkWorkspace(spark, checkpoint_dir=options.checkpoint_dir)


def run_spark(options: SparkRunOptions,
              progress: Callable[[int, int, str], None] | None = None) -> dict:
    from leadctl import pipeline
    from leadctl.rules.check import check_rules
    from leadctl.rules.load import rules_hash
    from leadctl.schema import all_ddl

    if not options.inputs:
        raise InputError("--engine spark needs input files: --inbox PATH (local or cluster)")
    check_rules(options.rules_dir)
    digest = rules_hash(options.rules_dir)
    summary: dict = {"engine": "spark", "master": options.master,
                     "as_of": options.as_of.isoformat(), "rules_hash": digest,
                     "output": options.output, "stages": {}, "timings": {}}
    ws = open_spark(options)
    summary["master"] = options.master
    try:
        for statement in all_ddl():
            ws.execute(statement)
        if options.state:
            summary["state_tables"] = load_state(ws, options.state)
        summary["run_id"] = ws.start_run("run --engine spark", options.as_of, digest)
        stages = {**pipeline._STAGE_FUNCS, "ingest": lambda w, o: _ingest(w, options)}
        run_options = pipeline.RunOptions(rules_dir=options.rules_dir, as_of=options.as_of,
                                          inbox=options.inputs,
                                          max_reject_share=options.max_reject_share)
        for index, stage in enumerate(pipeline.STAGES):
            if progress:
                progress(index, len(pipeline.STAGES), stage)
            started = time.perf_counter()
            summary["stages"][stage] = stages[stage](ws, run_options)
            summary["timings"][stage] = round(time.perf_counter() - started, 3)
        outcome, problem = pipeline._data_checks(summary, run_options)
        summary["outcome"] = outcome
        ws.finish_run(outcome, pipeline._counts(summary), options.inputs, problem)
        started = time.perf_counter()
        summary["tables"] = write_results(ws, options.output, summary)
        summary["timings"]["write"] = round(time.perf_counter() - started, 3)
    finally:
        ws.close()
    if progress:
        progress(len(pipeline.STAGES), len(pipeline.STAGES), "")
    if summary["outcome"] != "ok":
        raise DataCheckFailed(summary["problem"], summary)
    return summary


def _ingest(ws, options: SparkRunOptions) -> dict:
    from leadctl.ingest import ingest_paths, options_from_rules
    from leadctl.spark.ingest import SparkReader

    result = ingest_paths(ws, options.inputs, options_from_rules(options.rules_dir),
                          reader=SparkReader(options.delimiter))
    if result.failed:
        names = "; ".join(f"{f.file}: {f.message}" for f in result.failed)
        raise InputError(f"{len(result.failed)} input file(s) could not be read, nothing was "
                         f"written: {names}")
    return result.totals()


def result_tables(ws) -> list[str]:
    """Workspace tables (not the stages' working tables, which start with '_')."""
    return sorted(n for n in ws.tables if not n.startswith("_")) + list(VIEWS)


def write_results(ws, output: str, summary: dict) -> dict[str, int]:
    """One Parquet folder per table, then the run summary; returns rows per table."""
    counts = {}
    for name in result_tables(ws):
        frame = ws.frame(name)
        frame.write.mode("overwrite").parquet(f"{output.rstrip('/')}/{name}")
        counts[name] = frame.count()
    text = json.dumps({**summary, "tables": counts}, default=str, indent=1)
    ws.spark.sparkContext.parallelize([text], 1).saveAsTextFile(
        f"{output.rstrip('/')}/{SUMMARY_FILE}") if "://" in output else (
        Path(output) / SUMMARY_FILE).write_text(text)
    return counts


def load_state(ws, state: str) -> list[str]:
    """A previous run's output as the starting workspace tables."""
    from leadctl.spark.ingest import is_remote

    if not is_remote(state) and not Path(state).is_dir():
        raise InputError(f"--state {state}: no such folder (a previous --output)")
    names = [n for n in result_tables(ws) if n not in VIEWS]
    loaded = []
    for name in names:
        location = f"{state.rstrip('/')}/{name}"
        if not is_remote(state) and not Path(location).is_dir():
            continue
        ws.store_frame(name, ws.spark.read.parquet(location))
        loaded.append(name)
    return loaded


def load_results(db: Path | None, output: str) -> dict:
    """Replaces a DuckDB workspace's tables by a Spark run's results (atomically)."""
    from leadctl.workspace import open_writer

    folder = Path(output)
    summary_path = folder / SUMMARY_FILE
    if not summary_path.is_file():
        raise InputError(f"{output}: not a Spark run's output (no {SUMMARY_FILE}); "
                         "run `leadctl run --engine spark --output DIR` first")
    run = json.loads(summary_path.read_text())
    # The workspace keeps its own run log (and schema version); the Spark run is one entry.
    tables = sorted(p.name for p in folder.iterdir() if p.is_dir() and any(p.glob("*.parquet"))
                    and p.name not in ("runs", "meta"))
    with open_writer(db, create=True) as ws:
        ws.start_run("load-results", dt.date.fromisoformat(run["as_of"]), run.get("rules_hash"))
        for name in tables:
            kind = ws.table_type(name)
            if kind == "VIEW":
                ws.execute(f'DROP VIEW "{name}"')
            elif kind:
                ws.execute(f'DROP TABLE "{name}"')
            source = str(folder / name / "*.parquet").replace("'", "''")
            ws.execute(f"CREATE TABLE \"{name}\" AS SELECT * FROM read_parquet('{source}')")
        ws.finish_run(run.get("outcome", "ok"), {"spark_run": run.get("run_id"),
                                                 "stages": run.get("stages"),
                                                 "timings": run.get("timings")}, output)
    return {"output": output, "run_id": run.get("run_id"), "as_of": run.get("as_of"),
            "tables": {n: run.get("tables", {}).get(n) for n in tables}}
