"""`leadctl ingest PATH...`."""

from __future__ import annotations

from typing import Annotated

import typer

from leadctl import api
from leadctl.cli import common
from leadctl.errors import DataCheckFailed, InputError, LeadctlError
from leadctl.ingest import options_from_rules


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest)


def ingest(
    ctx: typer.Context,
    paths: Annotated[list[str], typer.Argument(help="Files, folders or globs (CSV, Parquet).")],
    source: Annotated[str | None, typer.Option("--source", help="Source name [default: file stem]",
                      show_default=False)] = None,
    kind: Annotated[str, typer.Option("--kind", help="auto | leads | events")] = "auto",
    encoding: Annotated[str | None, typer.Option("--encoding", help="Force a CSV encoding "
                        "(default: detect UTF-8 / GB18030).", show_default=False)] = None,
    strict: Annotated[bool, typer.Option("--strict",
                      help="Exit 1 when any row is rejected.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Read with --encoding even when it "
                     "contradicts the file (a UTF-8 BOM, valid UTF-8).")] = False,
    json_out: common.Json = False,
) -> None:
    """Load CSV/Parquet lead or event files; bad rows go to rejects with a reason."""

    s = common.settings(ctx)
    with common.Progress("ingest") as bar:
        result = common.run(ctx, lambda: api.ingest(
            s.db, paths, options_from_rules(s.rules, source=common.check_text("--source", source),
                                            kind=kind, encoding=encoding, force=force),
            bar.update))
    for f in result["files"]:
        if f["warning"]:
            common.warn(f"{f['file']}: {f['warning']}")
    failed = [f for f in result["files"] if f["status"] in ("failed", "invalid")]
    problem: LeadctlError | None = None
    if failed:
        problem = InputError(f"{len(failed)} file(s) could not be read: " + "; ".join(
            f"{f['file']}: {f['message']}" for f in failed))
    elif strict and result["totals"]["rejects"]:
        problem = DataCheckFailed(f"{result['totals']['rejects']} rows rejected (--strict); "
                                  "see `leadctl export rejects -o rejects.csv`")
    if not json_out:
        render_ingest(result)
    elif problem is None:
        common.print_json(result)
    for f in failed:  # one line per file on stderr
        common.error(f"{f['file']}: {f['message']}")
    if problem is not None:  # the other files are loaded: the summary stays in the document
        common.fail(ctx, problem, details=result, echo=not failed)


def render_ingest(result: dict) -> None:
    rows = [[f["file"], f["source"], f["kind"], f["status"], f["rows_read"], f["loaded"],
             f["rejected"], "; ".join(m for m in (f["message"], f["warning"]) if m)]
            for f in result["files"]]
    t = result["totals"]
    rows.append(["total", "", "", "", t["rows_read"], t["leads"] + t["events"], t["rejects"], ""])
    common.stdout_console().print(common.table(
        None, ["file", "source", "kind", "status", "rows", "loaded", "rejected", "note"], rows,
        right=("rows", "loaded", "rejected"), drop=("kind", "source", "note", "status")))
