"""`leadctl run` (the nightly job) and `leadctl runs` (its log)."""

from __future__ import annotations

from typing import Annotated

import typer

from leadctl import api
from leadctl.cli import common
from leadctl.errors import DataCheckFailed, LeadctlError, UsageError
from leadctl.pipeline import RunOptions, record_refused_options, run_nightly
from leadctl.workspace import db_path_from


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("runs")(runs)
    app.command("load-results")(load_results)


def run(
    ctx: typer.Context,
    inbox: Annotated[list[str] | None, typer.Option(
        "--inbox", "--input", help="Folder (or files/globs) of new lead and event files; "
        "already-ingested content is skipped. With --engine spark also hdfs://, s3a://, …")
    ] = None,
    as_of: common.AsOf = None,
    max_reject_share: Annotated[float, typer.Option(
        "--max-reject-share", help="Exit 1 when more than this share of rows read is rejected.")
    ] = 0.05,
    engine: Annotated[str, typer.Option(
        "--engine", help="duckdb (the workspace, default) or spark (needs leadctl[spark] "
        "and Java; results go to --output as Parquet).")] = "duckdb",
    output: Annotated[str | None, typer.Option(
        "--output", help="Spark: folder (local or cluster) for the result tables.")] = None,
    spark_master: Annotated[str | None, typer.Option(
        "--spark-master", help="Spark: master URL, e.g. local[4], spark://host:7077, yarn "
        "(default: spark-submit's --master, else local[2]).")] = None,
    state: Annotated[str | None, typer.Option(
        "--state", help="Spark: a previous run's --output to continue from (person ids, "
        "ownership, ingested files); the claims, statuses and sales made since in the "
        "--db workspace are carried in.")] = None,
    checkpoint_dir: Annotated[str | None, typer.Option(
        "--checkpoint-dir", help="Spark: reliable checkpoint folder (HDFS/S3 on a cluster).")
    ] = None,
    spark_conf: Annotated[list[str] | None, typer.Option(
        "--spark-conf", help="Spark: extra setting KEY=VALUE (repeatable).")] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Compute everything on a private copy, publish nothing; the summary "
        "adds the identity preview (as `resolve --dry-run`).")] = False,
    full: common.Full = False,
    json_out: common.Json = False,
) -> None:
    """The nightly job: ingest → resolve → tag → score → route, published atomically."""

    s = common.settings(ctx)

    def check() -> tuple:
        as_of_date = common.parse_as_of(as_of)
        common.check_share("--max-reject-share", max_reject_share)
        if engine not in ("duckdb", "spark"):
            raise UsageError(f"--engine must be duckdb or spark, not {engine!r}")
        given = {"--output": output is not None, "--state": state is not None,
                 "--spark-master": spark_master is not None,
                 "--checkpoint-dir": checkpoint_dir is not None,
                 "--spark-conf": bool(spark_conf), "--dry-run": dry_run, "--full": full}
        check_engine_options(engine, [option for option, on in given.items() if on])
        conf = spark_settings(output, spark_conf or []) if engine == "spark" else {}
        return as_of_date, conf

    def action():
        try:
            as_of_date, conf = common.refusal_logged(ctx, check)
        except LeadctlError as exc:
            record_refused_options(s.db, RunOptions(rules_dir=s.rules, as_of=None,
                                                    inbox=list(inbox or []),
                                                    dry_run=dry_run), exc)
            raise
        if engine == "spark":
            common.logged_here(ctx)
        with common.Progress("run") as bar:
            try:
                if engine == "spark":
                    return _run_spark(s, as_of_date, list(inbox or []), output, spark_master,
                                      state, checkpoint_dir, conf, max_reject_share,
                                      bar.update)

                options = RunOptions(rules_dir=s.rules, as_of=as_of_date,
                                     inbox=list(inbox or []), max_reject_share=max_reject_share,
                                     dry_run=dry_run, full=full)
                return run_nightly(s.db, options, bar.update)
            except DataCheckFailed as exc:
                # The work is published: show it, then exit 1 (with --json the summary is
                # part of the failure document).
                if not json_out:
                    render(exc.details, json_out)
                raise

    render(common.run(ctx, action), json_out)


# The options only one engine reads: given to the other engine they would be silently
# ignored (`--output` on DuckDB writing nothing), so they are a usage error.
ENGINE_ONLY = {
    "spark": (("--output", "--state", "--spark-master", "--checkpoint-dir", "--spark-conf"),
              "the default engine, duckdb, works in the --db workspace"),
    "duckdb": (("--dry-run", "--full"),
               "the Spark engine neither previews nor forces a full run: it writes a new "
               "--output from --state"),
}


def check_engine_options(engine: str, given: list[str]) -> None:
    """Before anything runs: a UsageError naming every option in `given` that only the
    other engine reads."""
    other = "spark" if engine == "duckdb" else "duckdb"
    only, why = ENGINE_ONLY[other]
    named = [option for option in only if option in given]
    if named:
        listed = named[0] if len(named) == 1 else f"{', '.join(named[:-1])} and {named[-1]}"
        verb = "needs" if len(named) == 1 else "need"
        raise UsageError(f"{listed} {verb} --engine {other} ({why})")


def spark_settings(output: str | None, conf: list[str]) -> dict[str, str]:
    """The Spark engine's checks of its options: --output is needed; --spark-conf's
    KEY=VALUE items as a dict."""
    if not output:
        raise UsageError("--engine spark needs --output DIR for the result tables")
    pairs = {}
    for item in conf:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise UsageError(f"--spark-conf takes KEY=VALUE, not {item!r}")
        pairs[key.strip()] = value
    return pairs


def _run_spark(s, as_of, inputs, output, master, state, checkpoint_dir, pairs,
               max_reject_share, progress):
    # The Spark engine loads sqlglot and pyspark: only when it is asked for.
    from leadctl.spark.pipeline import SparkRunOptions, run_spark  # noqa: PLC0415

    return run_spark(SparkRunOptions(
        rules_dir=s.rules, as_of=as_of, inputs=inputs, output=output, master=master,
        state=state, checkpoint_dir=checkpoint_dir, conf=pairs,
        max_reject_share=max_reject_share, workspace=db_path_from(s.db)), progress)


def load_results(
    ctx: typer.Context,
    output: Annotated[str, typer.Argument(help="A `run --engine spark` --output folder.")],
    json_out: common.Json = False,
) -> None:
    """Load a Spark run's result tables into the workspace (portrait, find, export)."""
    from leadctl.spark.pipeline import load_results as load  # noqa: PLC0415 - as above

    s = common.settings(ctx)
    result = common.run(ctx, lambda: load(s.db, output, s.rules))
    if json_out:
        common.print_json(result)
        return
    common.stdout_console().print(common.table(
        f"loaded run {result['run_id']} (as of {result['as_of']}) from {output}",
        ["table", "rows"], [[t, n] for t, n in result["tables"].items()]))


# Run-wide facts repeated by each stage's summary: shown once, in the title.
_NOT_COUNTS = {"note", "as_of", "dry_run", "run_id", "rules_hash", "seconds", "details_shown"}


def render(summary: dict, json_out: bool) -> None:
    if json_out:
        common.print_json(summary)
        return
    rows = []
    for stage, counts in summary["stages"].items():
        shown = ", ".join(f"{k}={v}" for k, v in counts.items()
                          if isinstance(v, (int, float, str)) and k not in _NOT_COUNTS)
        rows.append([stage, f"{summary['timings'].get(stage, 0):.2f}s", shown])
    out = common.stdout_console()
    engine = f" on {summary['engine']} ({summary['master']})" if summary.get("engine") else ""
    name = "dry run (nothing published)" if summary.get("dry_run") else \
        f"run {summary.get('run_id')}"
    out.print(common.table(f"{name}{engine} as of {summary['as_of']}: "
                           f"{summary.get('outcome')}", ["stage", "time", "counts"], rows,
                           drop=("time",)))
    ident = summary.get("identity")
    if ident:
        out.print(f"identity: {ident['persons_before']} → {ident['persons_after']} persons; "
                  f"merges {ident['merges']}, splits {ident['splits']}; ids retired "
                  f"{ident['ids_retired']}, new {ident['ids_new']}; owner changes "
                  f"{ident['owner_changes']}")


def runs(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", help="Most recent N runs.")] = 20,
    json_out: common.Json = False,
) -> None:
    """List the run log: id, command, start/end, as-of, rules hash, outcome, error."""

    s = common.settings(ctx)
    rows = common.run(ctx, lambda: api.runs(s.db, common.check_count("--limit", limit)))
    if json_out:
        common.print_json(rows)
        return
    common.stdout_console().print(common.table(
        None, ["run", "command", "started", "ended", "as_of", "rules", "outcome", "error"],
        [[r["run_id"], r["command"], r["started_at"], r["ended_at"], r["as_of"],
          (r["rules_hash"] or "")[:RULES_HASH_SHOWN], r["outcome"], r["error"]] for r in rows],
        drop=("rules", "ended", "started", "command", "as_of")))


RULES_HASH_SHOWN = 12  # of the hash's hex digits: enough to tell the rules of two runs apart
