"""`leadctl run` (the nightly job) and `leadctl runs` (its log)."""

from __future__ import annotations

from typing import Annotated

import typer

from leadctl.cli import common


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("runs")(runs)


def run(
    ctx: typer.Context,
    inbox: Annotated[list[str] | None, typer.Option("--inbox", help="Folder (or files/globs) of "
                     "new lead and event files; already-ingested content is skipped.")] = None,
    as_of: common.AsOf = None,
    max_reject_share: Annotated[float, typer.Option(
        "--max-reject-share", help="Exit 1 when more than this share of rows read is rejected.")
    ] = 0.05,
    json_out: common.Json = False,
) -> None:
    """The nightly job: ingest → resolve → tag → score → route, published atomically."""
    from leadctl.errors import DataCheckFailed
    from leadctl.pipeline import RunOptions, run_nightly

    s = common.settings(ctx)

    def action():
        options = RunOptions(rules_dir=s.rules, as_of=common.parse_as_of(as_of),
                             inbox=list(inbox or []), max_reject_share=max_reject_share)
        with common.Progress("run") as bar:
            try:
                return run_nightly(s.db, options, bar.update)
            except DataCheckFailed as exc:
                render(exc.details, json_out)  # the work is published; show it, then exit 1
                raise

    render(common.run(ctx, action), json_out)


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
    out.print(common.table(f"run {summary.get('run_id')} as of {summary['as_of']}: "
                           f"{summary.get('outcome')}", ["stage", "time", "counts"], rows))


def runs(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", help="Most recent N runs.")] = 20,
    json_out: common.Json = False,
) -> None:
    """List the run log: id, command, start/end, as-of, outcome, error."""
    from leadctl import api

    s = common.settings(ctx)
    rows = common.run(ctx, lambda: api.runs(s.db, limit))
    if json_out:
        common.print_json(rows)
        return
    common.stdout_console().print(common.table(
        None, ["run", "command", "started", "ended", "as_of", "outcome", "error"],
        [[r["run_id"], r["command"], r["started_at"], r["ended_at"], r["as_of"], r["outcome"],
          r["error"]] for r in rows]))
