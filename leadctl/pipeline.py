"""`leadctl run`: the nightly job — ingest → resolve → tag → score → route → publish.

The whole run happens in one `open_writer` session: the new state is built on
a private copy and published by one atomic rename, so a failure or `kill -9`
at any point leaves the last published state, and the next run redoes the
work. A failed run still leaves a row in `runs` (written in a second, tiny
write session) so cron's history shows it.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from leadctl.errors import DataCheckFailed, InputError, LeadctlError, WorkspaceLocked
from leadctl.identity.resolve import resolve_identities
from leadctl.ingest import ingest_paths, options_from_rules
from leadctl.routing.stage import run_routing
from leadctl.ruleset import RuleSet, load_rules
from leadctl.scoring.stage import run_scores
from leadctl.tagging.stage import run_tags
from leadctl.workspace import kill_point, open_writer

STAGES = ("ingest", "resolve", "tag", "score", "route")


@dataclass
class RunOptions:
    rules_dir: Path
    as_of: dt.date
    inbox: list[str] = field(default_factory=list)
    max_reject_share: float = 0.05


def run_nightly(db: Path | None, options: RunOptions,
                progress: Callable[[int, int, str], None] | None = None) -> dict:

    rules = load_rules(options.rules_dir)  # invalid rules: nothing runs, nothing changes
    digest = rules.hash
    summary: dict = {"as_of": options.as_of.isoformat(), "rules_hash": digest, "stages": {},
                     "timings": {}}
    try:
        with open_writer(db, create=True) as ws:
            summary["run_id"] = ws.start_run("run", options.as_of, digest)
            run_stages(ws, rules, options, summary, progress)
            outcome, problem = data_checks(summary, options)
            summary["outcome"] = outcome
            ws.finish_run(outcome, run_counts(summary), options.inbox, problem)
        kill_point("publish")
    except LeadctlError as exc:
        _record_failure(db, options, digest, exc)
        raise
    if progress:
        progress(len(STAGES), len(STAGES), "")
    if summary["outcome"] != "ok":
        raise DataCheckFailed(summary["problem"], summary)
    return summary


def run_stages(ws, rules: RuleSet, options: RunOptions, summary: dict,
               progress: Callable[[int, int, str], None] | None = None, reader=None) -> None:
    """Every stage in order on `ws` (either engine), with counts and timings in `summary`;
    `reader` stages the input files (default: DuckDB's)."""
    funcs = {**_STAGE_FUNCS, "ingest": lambda w, r, o: ingest_inbox(w, r, o, reader)}
    for index, stage in enumerate(STAGES):
        if progress:
            progress(index, len(STAGES), stage)
        started = time.perf_counter()
        summary["stages"][stage] = funcs[stage](ws, rules, options)
        summary["timings"][stage] = round(time.perf_counter() - started, 3)
        kill_point(stage)


def ingest_inbox(ws, rules: RuleSet, options: RunOptions, reader=None) -> dict:
    """The ingest stage; `reader` stages the files (default: DuckDB's)."""
    if not options.inbox:
        return {"files": 0, "note": "no inbox given"}
    result = ingest_paths(ws, options.inbox, options_from_rules(rules.rules_dir, rules.sources),
                          reader=reader)
    if result.failed:
        names = "; ".join(f"{f.file}: {f.message}" for f in result.failed)
        raise InputError(f"{len(result.failed)} inbox file(s) could not be read or used, "
                         f"nothing was changed: {names}")
    return {**result.totals(),
            "nothing_loaded": {f.file: f.status for f in result.nothing_loaded}}


def _resolve(ws, rules: RuleSet, options: RunOptions) -> dict:
    return resolve_identities(ws, rules.identity, ws.run_id).to_dict()


def _tag(ws, rules: RuleSet, options: RunOptions) -> dict:
    return run_tags(ws, rules.tags, options.as_of, run_id=ws.run_id)


def _score(ws, rules: RuleSet, options: RunOptions) -> dict:
    return run_scores(ws, rules.scoring, options.as_of, run_id=ws.run_id)


def _route(ws, rules: RuleSet, options: RunOptions) -> dict:
    return run_routing(ws, rules.routing, options.as_of, run_id=ws.run_id)


_STAGE_FUNCS = {"ingest": ingest_inbox, "resolve": _resolve, "tag": _tag, "score": _score,
                "route": _route}


def data_checks(summary: dict, options: RunOptions) -> tuple[str, str | None]:
    ingest = summary["stages"].get("ingest", {})
    read = ingest.get("rows_read") or 0
    rejects = ingest.get("rejects") or 0
    problems = []
    if read and rejects / read > options.max_reject_share:
        problems.append(f"rejects {rejects}/{read} = {rejects / read:.1%} of rows read, above "
                        f"the allowed {options.max_reject_share:.1%} (see `leadctl export "
                        "rejects`)")
    if ingest.get("nothing_loaded"):  # a file that loaded no row is a failed delivery
        files = ", ".join(f"{f} ({s})" for f, s in ingest["nothing_loaded"].items())
        problems.append(f"no row loaded from {files}")
    if problems:
        summary["problem"] = "; ".join(problems)
        return "data_check_failed", summary["problem"]
    return "ok", None


def run_counts(summary: dict) -> dict:
    return {"stages": summary["stages"], "timings": summary["timings"]}


def _record_failure(db, options: RunOptions, digest: str, exc: LeadctlError) -> None:
    """The failed run's own work was discarded; leave a trace in the run log."""

    if isinstance(exc, (WorkspaceLocked, DataCheckFailed)):
        return
    try:
        with open_writer(db, create=True) as ws:
            ws.start_run("run", options.as_of, digest)
            ws.finish_run("failed", {}, options.inbox, str(exc))
    except LeadctlError:
        pass
