"""`leadctl run`: the nightly job — ingest → resolve → tag → score → route → publish.

The whole run happens in one `open_writer` session: the new state is built on
a private copy and published by one atomic rename, so a failure or `kill -9`
at any point leaves the last published state, and the next run redoes the
work. A failed run still leaves a row in `runs` (written in a second, tiny
write session) so cron's history shows it; so does a run refused for invalid rules
(outcome `refused`). A run refused by the lock leaves none: another run is writing.

Everything cron needs to see goes to the `leadctl` logger (`-v`, `--log-file`): each
stage's start and end with counts and timings, warnings (rules, reject share, blocked
or over-shared identifier values) and the reason of a failure.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from leadctl.clock import utc_now
from leadctl.errors import (
    DataCheckFailed,
    InputError,
    LeadctlError,
    RuleError,
    WorkspaceError,
    WorkspaceLocked,
    format_problem,
    interruption,
    stopped_after_publish,
)
from leadctl.identity.preview import identity_diff, snapshot_sql
from leadctl.identity.resolve import resolve_identities
from leadctl.ingest import NoDataFiles, check_zone, ingest_paths, options_from_rules
from leadctl.ingest.sources import load_sources_config
from leadctl.routing.merge import (
    carry_ownership,
    drop_locks_before_sql,
    locks_before_sql,
    preferred_ids_sql,
)
from leadctl.routing.stage import run_routing
from leadctl.rules.load import rules_hash
from leadctl.ruleset import RuleSet, load_rules
from leadctl.scoring.stage import run_scores
from leadctl.tagging.stage import run_tags
from leadctl.workspace import (
    kill_point,
    open_private,
    open_writer,
    signals_while_failing,
    workspace_path,
    writer_lock,
)

log = logging.getLogger("leadctl")

STAGES = ("ingest", "resolve", "tag", "score", "route")


@dataclass
class RunOptions:
    rules_dir: Path
    as_of: dt.date | None  # None: today in the workspace time zone (set as the run starts)
    inbox: list[str] = field(default_factory=list)
    max_reject_share: float = 0.05
    dry_run: bool = False  # everything computed on a private copy; nothing published
    # A row dated before a person's last logged change is refused (routing.lifecycle.
    # keep_log_order); off in dry runs and Spark nights (whose folds carry later actions)
    in_order: bool = True
    full: bool = False  # golden records, subjects, tags of everyone (not only what changed)


def run_nightly(db: Path | None, options: RunOptions,
                progress: Callable[[int, int, str], None] | None = None) -> dict:
    started_at = utc_now()  # the run log's, should this run fail
    try:
        rules = load_rules(options.rules_dir)  # invalid rules: nothing runs, nothing changes
        kill_point("rules")
    except RuleError as exc:
        _refuse(db, options, exc)  # a dry run's refusal: logged, nothing written
        raise
    except (Exception, KeyboardInterrupt) as exc:  # a signal while the rules load: logged
        if not options.dry_run:
            _record_failure(db, options, rules_hash(options.rules_dir or "rules"), exc,
                            {"stages": {}, "timings": {}}, started_at)
        raise
    digest = rules.hash
    for warning in rules.warnings:
        log.warning("rules: %s", warning)
    summary: dict = {"as_of": None, "rules_hash": digest, "stages": {}, "timings": {}}
    if options.dry_run:
        return dry_run(db, rules, options, summary, progress)
    try:
        with writer_lock(db, create=True):  # kept until a failed run's row is written
            return _publish_run(db, rules, options, summary, progress, started_at)
    except WorkspaceLocked as exc:
        log.error("run refused: %s", exc)  # another writer holds the lock: no row
        raise


def _publish_run(db: Path | None, rules: RuleSet, options: RunOptions, summary: dict,
                 progress: Callable[[int, int, str], None] | None,
                 started_at: dt.datetime) -> dict:
    """The nightly run's write session, under the writer lock `run_nightly` holds; a
    failed one is logged as failed."""
    digest = summary["rules_hash"]
    started = time.perf_counter()
    session = None
    try:
        with open_writer(db, create=True) as ws:
            session = ws
            settle_as_of(ws, rules, options, summary)
            summary["run_id"] = ws.start_run("run", options.as_of, digest)
            log.info("run %s started: as of %s, rules %s, inbox %s", summary["run_id"],
                     summary["as_of"], digest[:16], ", ".join(options.inbox) or "none")
            ws.compact_when_due()  # logs when it is due
            run_stages(ws, rules, options, summary, progress)
            outcome, problem = data_checks(summary, options)
            summary["outcome"] = outcome
            ws.finish_run(outcome, run_counts(summary), options.inbox, problem)
        kill_point("publish")
    except WorkspaceError as exc:
        if "run_id" in summary:  # the workspace opened, then failed to publish: log it
            _record_failure(db, options, digest, exc, summary, started_at)
        raise  # else it refused to open: a run log row would be refused the same way
    except (Exception, KeyboardInterrupt) as exc:  # a signal too: the run is logged
        if session is not None and session.published:  # stopped after its publish
            stopped_after_publish(exc, f"run {summary['run_id']}")
            raise
        _record_failure(db, options, digest, exc, summary, started_at)
        raise
    if progress:
        progress(len(STAGES), len(STAGES), "")
    seconds = time.perf_counter() - started
    if summary["outcome"] != "ok":
        log.error("run %s published, %s in %.2fs: %s", summary["run_id"], summary["outcome"],
                  seconds, summary["problem"])
        raise DataCheckFailed(summary["problem"], summary)
    log.info("run %s published, ok in %.2fs", summary["run_id"], seconds)
    return summary


def dry_run(db: Path | None, rules: RuleSet, options: RunOptions, summary: dict,
            progress: Callable[[int, int, str], None] | None = None) -> dict:
    """`leadctl run --dry-run`: every stage on a private copy of the workspace, thrown
    away afterwards: nothing is published and the run log gets no row (the copy's own
    run row goes with it). `identity` is the resolve preview against the published state
    (identity/preview.py; its owner changes include the route stage's). A failed data
    check still raises DataCheckFailed (exit 1): the real run would fail it too."""
    with open_private(db, create=True) as ws:
        ws.script(snapshot_sql())
        settle_as_of(ws, rules, options, summary)
        run_id = ws.start_run("run", options.as_of, summary["rules_hash"])
        log.info("dry run: as of %s, rules %s, inbox %s", summary["as_of"],
                 summary["rules_hash"][:16], ", ".join(options.inbox) or "none")
        run_stages(ws, rules, options, summary, progress)
        outcome, problem = data_checks(summary, options)
        summary["identity"] = identity_diff(ws, summary["stages"]["resolve"], run_id)
    summary.update({"dry_run": True, "run_id": None, "outcome": outcome})
    for counts in summary["stages"].values():  # the copy's run id is in no run log
        if "run_id" in counts:
            counts.update({"dry_run": True, "run_id": None})
    if progress:
        progress(len(STAGES), len(STAGES), "")
    log.info("dry run done (%s): nothing was published", outcome)
    if outcome != "ok":
        raise DataCheckFailed(problem, summary)
    return summary


def settle_as_of(ws, rules: RuleSet, options: RunOptions, summary: dict) -> None:
    """The night's as-of: --as-of, else today in the workspace time zone (the one its
    times were read in, else sources.yaml's), whatever the machine's zone. The session's
    stamps are read on the same clock."""
    options.as_of = ws.settle_clock(rules.sources.timezone, options.as_of)
    summary["as_of"] = options.as_of.isoformat()


def run_stages(ws, rules: RuleSet, options: RunOptions, summary: dict,
               progress: Callable[[int, int, str], None] | None = None, reader=None) -> None:
    """Every stage in order on `ws` (either engine), with counts and timings in `summary`
    and a log line at each stage's start and end; `reader` stages the input files
    (default: DuckDB's)."""
    funcs = {**_STAGE_FUNCS, "ingest": lambda w, r, o: ingest_inbox(w, r, o, reader)}
    for index, stage in enumerate(STAGES):
        if progress:
            progress(index, len(STAGES), stage)
        log.info("stage %s started", stage)
        started = time.perf_counter()
        counts = summary["stages"][stage] = funcs[stage](ws, rules, options)
        summary["timings"][stage] = round(time.perf_counter() - started, 3)
        log.info("stage %s done in %.2fs: %s", stage, summary["timings"][stage],
                 stage_counts(stage, counts))
        for warning in _stage_warnings(stage, counts, options):
            log.warning("%s: %s", stage, warning)
        kill_point(stage)
    summary["conflicts"] = summary["stages"].get("resolve", {}).get("conflicts", 0)


class InboxRefused(InputError):
    """An inbox file could not be read or used: nothing of the night is published (exit 2).
    `details` (in the `--json` failure document): every file's ingest result, as
    `leadctl ingest --json` gives it (`files`, `totals`), so a script sees which file."""

    def __init__(self, message: str, details: dict):
        super().__init__(message)
        self.details = {"ingest": details, "published": False}


def ingest_inbox(ws, rules: RuleSet, options: RunOptions, reader=None) -> dict:
    """The ingest stage; `reader` stages the files (default: DuckDB's)."""
    ingest_options = options_from_rules(rules.rules_dir, rules.sources)
    if not options.inbox:  # (with one, ingest_paths checks the zone before it reads it)
        check_zone(ws, ingest_options)  # a night without files still reads zoned attributes
        return {"files": 0, "note": "no inbox given"}
    try:
        result = ingest_paths(ws, options.inbox, ingest_options, reader=reader)
    except NoDataFiles:
        # a night without deliveries still ages the base (windows, dormancy): not an error
        return {"files": 0, "note": "the inbox holds no CSV or Parquet file"}
    if result.failed:
        names = "; ".join(f"{f.file}: {f.message}" for f in result.failed)
        raise InboxRefused(f"{len(result.failed)} inbox file(s) could not be read or used, "
                           f"nothing was changed: {names}", result.to_dict())
    return {**result.totals(),
            "nothing_loaded": {f.file: f.status for f in result.nothing_loaded}}


def resolve_with_ownership(ws, rules: RuleSet, as_of: dt.date, run_id: int | None,
                           progress=None, full: bool = False, in_order: bool = False) -> dict:
    """Identities, then the routing states of merged/split persons (same write): what
    `resolve`, `resolve --dry-run` and the nightly resolve stage all run (`in_order`: see
    carry_ownership)."""
    # the sales' persons before resolve moves ids: what both the surviving id
    # (preferred) and the state a merge keeps are ranked by
    ws.execute(locks_before_sql(as_of))
    try:
        counts = resolve_identities(ws, rules.identity, run_id, progress,
                                    preferred=preferred_ids_sql(as_of, rules.routing.merge_keep),
                                    full=full).to_dict()
        counts["ownership"] = carry_ownership(ws, rules.routing, as_of, run_id,
                                              in_order=in_order, locks_taken=True)
    finally:
        ws.execute(drop_locks_before_sql())
    counts["conflicts"] = counts["ownership"]["conflicts"]
    return counts


def _resolve(ws, rules: RuleSet, options: RunOptions) -> dict:
    return resolve_with_ownership(ws, rules, options.as_of, ws.run_id, full=options.full,
                                  in_order=options.in_order and not options.dry_run)


def _tag(ws, rules: RuleSet, options: RunOptions) -> dict:
    return run_tags(ws, rules.tags, options.as_of, run_id=ws.run_id, full=options.full)


def _score(ws, rules: RuleSet, options: RunOptions) -> dict:
    return run_scores(ws, rules.scoring, options.as_of, run_id=ws.run_id)


def _route(ws, rules: RuleSet, options: RunOptions) -> dict:
    return run_routing(ws, rules.routing, options.as_of, run_id=ws.run_id,
                       in_order=options.in_order and not options.dry_run)


_STAGE_FUNCS = {"ingest": ingest_inbox, "resolve": _resolve, "tag": _tag, "score": _score,
                "route": _route}


def _shares(share: float, allowed: float) -> tuple[str, str]:
    """A share of rejects and the threshold it is held to, as percentages to three
    significant digits, or as many more as it takes for a share other than the threshold
    to read as another (0.0317%, not 0.0%; 5.005% above 5%, not 5% above 5%)."""
    for digits in range(3, 18):
        shown = f"{share * 100:.{digits}g}%", f"{allowed * 100:.{digits}g}%"
        if shown[0] != shown[1] or share == allowed:
            break
    return shown


def data_checks(summary: dict, options: RunOptions) -> tuple[str, str | None]:
    ingest = summary["stages"].get("ingest", {})
    read = ingest.get("rows_read") or 0
    rejects = ingest.get("rejects") or 0
    problems = []
    if read and rejects / read > options.max_reject_share:
        share, allowed = _shares(rejects / read, options.max_reject_share)
        problems.append(f"rejects {rejects}/{read} = {share} of rows read, above the allowed "
                        f"{allowed} (see `leadctl export rejects`)")
    if ingest.get("nothing_loaded"):  # a file that loaded no row is a failed delivery
        files = ", ".join(f"{f} ({s})" for f, s in ingest["nothing_loaded"].items())
        problems.append(f"no row loaded from {files}")
    if problems:
        summary["problem"] = "; ".join(problems)
        return "data_check_failed", summary["problem"]
    return "ok", None


def run_counts(summary: dict) -> dict:
    return {"stages": summary["stages"], "timings": summary["timings"]}


# Run-wide facts each stage repeats, and per-stage internals: not counts.
_NOT_COUNTS = {"as_of", "dry_run", "run_id", "rules_hash", "previous", "seconds", "timings",
               "details_shown"}


def stage_counts(stage: str, counts: dict) -> str:
    """A stage's counts on one line: `key=value`, small mappings as `key=a:1,b:2`."""
    parts = []
    for key, value in counts.items():
        if key in _NOT_COUNTS or value is None or isinstance(value, bool):
            continue
        if isinstance(value, (int, float, str)):
            parts.append(f"{key}={value}")
        elif stage == "tag" and key == "tags":
            parts.append(f"tags={len(value)}")
        elif stage == "score" and key == "grades":
            parts.append("grades=" + ",".join(f"{g['grade']}:{g['persons']}" for g in value))
        elif isinstance(value, dict) and value and all(
                isinstance(v, (int, float, str)) for v in value.values()):
            parts.append(f"{key}=" + ",".join(f"{k}:{v}" for k, v in value.items()))
    return " ".join(parts)


def _stage_warnings(stage: str, counts: dict, options: RunOptions) -> list[str]:
    """What cron should notice even when the run succeeds."""
    if stage == "ingest" and options.inbox and counts.get("files") == 0:
        return [f"{counts['note']} ({', '.join(options.inbox)}): the night ran on the "
                "stored data"]
    if stage == "ingest" and counts.get("rejects"):
        read, rejects = counts.get("rows_read") or 0, counts["rejects"]
        share, allowed = _shares(rejects / read if read else 1.0, options.max_reject_share)
        return [f"{rejects} of {read} rows rejected ({share}; allowed {allowed}), see "
                "`leadctl export rejects`"]
    if stage == "resolve" and counts.get("conflicts"):
        return [f"{counts['conflicts']} ownership conflict(s): an identity merge kept "
                "one state and not another rep's active sale lock (on_merge: keep); "
                "see `leadctl identity conflicts`"] + _stage_warnings(
                    stage, {**counts, "conflicts": 0}, options)
    if stage == "resolve" and counts.get("overrides", {}).get("warnings"):
        notes = [f"identity override: {w}" for w in counts["overrides"]["warnings"]]
        return notes + _stage_warnings(
            stage, {**counts, "overrides": {**counts["overrides"], "warnings": []}}, options)
    if stage == "resolve" and (counts.get("blocked_values") or counts.get("capped_values")):
        # the top values are blocked_identifiers' (cut ones too): the count names each kind
        top = "; ".join(f"{v['id_type']} {v['value']} ({v['reason']}, {v['records']} "
                        f"record{'' if v['records'] == 1 else 's'})"
                        for v in counts.get("top_blocked", []))
        blocked, capped = counts.get("blocked_values", 0), counts.get("capped_values", 0)
        cut = (counts.get("overrides") or {}).get("cut_values", 0)
        kinds = (f"{blocked} blocklisted, {capped} over-shared and {cut} cut (cannot_link)"
                 if cut else f"{blocked} blocklisted and {capped} over-shared")
        return [f"{kinds} identifier values do not link"
                + (f" — top: {top}" if top else "") + "; see `leadctl export blocked`"]
    return []


def _refuse(db, options: RunOptions, exc: RuleError) -> None:
    """Invalid rules: nothing ran; the run log says so with the first problem (not a dry
    run's: it writes nothing), and the log file with its start and exit code."""
    first = format_problem(*exc.problems[0]) if exc.problems else str(exc)
    more = len(exc.problems) - 1
    reason = first + (f" (and {more} more: `leadctl rules check`)" if more > 0 else "")
    # No rules folder at all (a wrong --rules or working directory): logged only in a
    # workspace that exists, never one made at a path that may be as wrong.
    found = Path(options.rules_dir or "rules").is_dir()
    name = "dry run"
    with _logging_failure(exc, "refusal"):
        if not options.dry_run:
            name = _run_name(record_run(
                db, "run", options.as_of, rules_hash(options.rules_dir or "rules"), "refused",
                {}, options.inbox, reason, create=found, default_today=True,
                zone=_rules_zone(options)))
        _log_run_start(name, options)
        log.error("%s refused (exit 2): invalid rules, nothing ran (%d problem(s))", name,
                  len(exc.problems))
        for problem in exc.problems:
            log.error("rules: %s", format_problem(*problem))


def record_refused_options(db, options: RunOptions, exc: BaseException) -> None:
    """A run refused for an option's value (`--as-of 2026-02-30`, `--engine sparkk`):
    nothing ran; a workspace that exists logs it as `refused` with the reason, as a run
    refused for invalid rules, so every run attempt leaves a row (none is made for it;
    a dry run writes nothing). The log file has its lines already (cli refusal_logged)."""
    if options.dry_run:
        return
    with _logging_failure(exc, "refusal"):
        record_run(db, "run", None, rules_hash(options.rules_dir or "rules"), "refused", {},
                   options.inbox, str(exc), create=False, default_today=True,
                   zone=_rules_zone(options))


def _record_failure(db, options: RunOptions, digest: str, exc: BaseException,
                    summary: dict, started_at: dt.datetime) -> None:
    """The failed run's own work was discarded; leave a trace in the run log, with the
    counts of the stages it finished."""
    if isinstance(exc, DataCheckFailed):
        return
    stage = next((s for s in STAGES if s not in summary["stages"]), None)
    with _logging_failure(exc, "failure"):
        reason, run_id = record_failed_command(db, "run", options.as_of, digest, exc,
                                               run_counts(summary), options.inbox,
                                               started_at, default_today=True,
                                               zone=_rules_zone(options))
        if "run_id" not in summary:  # stopped before its start was logged (rules, copy)
            _log_run_start(_run_name(run_id), options)
        log.error("%s failed%s, nothing was published: %s", _run_name(run_id),
                  f" in stage {stage}" if stage and summary.get("run_id") else "", reason)


@contextlib.contextmanager
def _logging_failure(exc: BaseException, what: str) -> Iterator[None]:
    """Around a run's `failed` / `refused` row and its log lines: a second Ctrl-C must not
    lose them (a first one stopped the run); a first one waits for them, is logged too,
    then ends the run 143 / 130 (`signals_while_failing`)."""
    try:
        with signals_while_failing(exc):
            yield
    except KeyboardInterrupt as stop:  # (Terminated too)
        log.error("run stopped once its %s was logged: %s", what, interruption(stop))
        raise


def _rules_zone(options: RunOptions) -> str | None:
    """The time zone sources.yaml names, for the run log of a run that failed or was
    refused on a workspace storing none yet; None when the file cannot tell."""
    try:
        return load_sources_config(options.rules_dir).timezone
    except Exception:  # noqa: BLE001 (a broken sources.yaml: the refusal says so)
        return None


def failure_reason(exc: BaseException) -> str:
    """What the run log says a failed command failed of."""
    return interruption(exc) or (str(exc) if isinstance(exc, LeadctlError) else
                                 f"internal error: {type(exc).__name__}: {exc}")


def record_failed_command(db, command: str, as_of: dt.date | None, digest: str | None,
                          exc: BaseException, counts: dict, inputs,
                          started_at: dt.datetime, **clock) -> tuple[str, int | None]:
    """A `failed` row for a command whose write session was discarded (an error or a
    signal): (the reason logged, its run id or None when it could not be written). The
    caller holds signals off (`signals_while_failing`) while it writes and logs. `clock`:
    record_run's `zone` and `default_today`."""
    reason = failure_reason(exc)
    return reason, record_run(db, command, as_of, digest, "failed", counts, inputs, reason,
                              started_at, **clock)


def record_run(db, command: str, as_of: dt.date | None, digest: str | None, outcome: str,
               counts: dict, inputs, error: str, started_at: dt.datetime | None = None, *,
               create: bool = True, zone: str | None = None,
               default_today: bool = False) -> int | None:
    """One finished row in `runs` (its own write session, begun when the command began:
    `started_at`, an aware instant); None when it cannot be written (e.g. another writer
    holds the lock) or, `create=False`, when there is no workspace (none is made, no lock
    file either). Stamped on the workspace's clock (`zone`: the rules' time zone, for a
    workspace that stores none yet); `default_today`: an as-of of None is today there."""
    try:
        if not create and not workspace_path(db).exists():
            return None
        with open_writer(db, create=create) as ws:
            as_of = ws.settle_clock(zone, as_of, today=default_today)
            run_id = ws.start_run(command, as_of, digest, started_at=started_at)
            ws.finish_run(outcome, counts, inputs, error)
            kill_point("failure row")  # test hook: a signal while the row is written
        return run_id
    except Exception as exc:  # never hide the command's own error behind this one
        log.warning("run log not written: %s", exc)
        return None


def _log_run_start(name: str, options: RunOptions) -> None:
    """The start line of a run that never reached its own (`_publish_run` logs that one
    with its rules hash): refused, or stopped while its rules load."""
    log.info("%s started: as of %s, inbox %s", name, options.as_of or "today",
             ", ".join(options.inbox) or "none")


def _run_name(run_id: int | None) -> str:
    return f"run {run_id}" if run_id else "run"
