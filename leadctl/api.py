"""One library function per CLI command (the CLI only parses and renders).

Writers run inside `recorded_run` (locked, atomic publish, a row in `runs`); readers
inside `reading` (the published state, read-only). Rules are loaded once per command
(`load_rules`) and handed down. `leadctl portrait` is served by
`leadctl.views.portrait.portrait` directly: it must not load this module's imports.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import getpass
import json
import os
from collections.abc import Iterator
from pathlib import Path

from leadctl import pii
from leadctl.campaigns.audiences import AudienceSpec, members_file_sql, record_audience
from leadctl.campaigns.experiments import evaluate as evaluate_experiment
from leadctl.campaigns.experiments import parse_window
from leadctl.campaigns.funnels_report import funnel_report
from leadctl.clock import utc_now
from leadctl.errors import RuleError, UsageError, stopped_after_publish
from leadctl.identity import suggest, suspects, why
from leadctl.identity.config import load_identity_config
from leadctl.identity.overrides_cmd import write_override
from leadctl.identity.preview import preview_resolve
from leadctl.ingest import ingest_paths
from leadctl.pipeline import record_failed_command, resolve_with_ownership
from leadctl.routing.lifecycle import claim as claim_leads
from leadctl.routing.lifecycle import record_sale
from leadctl.routing.lifecycle import set_status as set_lead_status
from leadctl.routing.merge import list_conflicts
from leadctl.routing.parse import check_routing_expressions
from leadctl.routing.stage import run_routing
from leadctl.ruleset import RuleSet, load_rules
from leadctl.ruletest import run_fixtures
from leadctl.scoring.parse import check_scoring_expressions
from leadctl.scoring.stage import run_scores
from leadctl.tagging.fields import person_features_fields
from leadctl.tagging.parse import load_tag_rules
from leadctl.tagging.stage import run_tags
from leadctl.views.asof import ScreenAsOf, last_tag_as_of, stored_as_of
from leadctl.views.explain import explain_lead
from leadctl.views.export import (
    check_output_file,
    export_table,
    file_in_place,
    refuse_workspace_file,
)
from leadctl.views.find import (
    InvalidExpression,
    compile_filter,
    evaluating,
    find_persons,
    not_computed_yet,
    relation_sql,
)
from leadctl.views.report import channel_report
from leadctl.workspace import (
    Workspace,
    db_path_from,
    kill_point,
    open_private,
    open_writer,
    reading,
    signals_while_failing,
    writer_lock,
)


@contextlib.contextmanager
def recorded_run(db: Path | None, command: str, as_of: dt.date | None = None,
                 rules: RuleSet | None = None, *, create: bool = False,
                 inputs: list[str] | None = None, today: bool = False,
                 zone: str | None = None) -> Iterator[Workspace]:
    """A locked, atomic write session with its `runs` row started (the caller finishes
    it with its counts). A command that fails or is stopped once its session opened
    leaves a `failed` row (with `inputs`, what it read), as a failed `run` does (its
    session's row went with its work); the lock is held until that row is written.
    Its stamps are wall-clock times of the workspace zone (the one stored, else `zone`,
    else the rules'); `today`: an `as_of` of None is today there (`ws.run_as_of`)."""
    started_at = utc_now()
    digest = rules.hash if rules else None
    zone = zone or (rules.sources.timezone if rules else None)
    with writer_lock(db, create=create):
        session = None
        try:
            with open_writer(db, create=create) as ws:
                session = ws
                if rules is not None:  # another sources.yaml zone: refused, as rules check does
                    rules.check_zone(ws)
                as_of = ws.settle_clock(zone, as_of, today=today)
                ws.start_run(command, as_of, digest)
                yield ws
                kill_point(command)  # test hook: stopped before its publish
        except (Exception, KeyboardInterrupt) as exc:
            if session is not None and session.published:  # a signal during the rename
                stopped_after_publish(exc, f"{command} (run {session.run_id})")
            elif session is not None:
                # the CLI logs the failure itself (`tag failed (exit 2): …`); a second
                # Ctrl-C must not lose the row (the first stopped the command), a first
                # one waits for it, then ends the command (143 / 130)
                with signals_while_failing(exc):
                    record_failed_command(db, command, as_of, digest, exc, {}, inputs,
                                          started_at, zone=zone, default_today=today)
            raise


def ingest(db: Path | None, paths: list[str], options, progress=None) -> dict:
    with recorded_run(db, "ingest", create=True, inputs=paths,
                      zone=options.timezone if options else None) as ws:
        summary = ingest_paths(ws, paths, options, progress)
        outcome, counts, error = _ingest_outcome(summary)
        ws.finish_run(outcome, counts, paths, error)
    return summary.to_dict()


def _ingest_outcome(summary) -> tuple[str, dict, str | None]:
    """(outcome, counts, error) of an `ingest` for the run log: `failed` when a file failed
    and none loaded a row, `partial` when others did (published), with why each failed."""
    totals = summary.totals()
    failed = summary.failed
    if not failed:
        return "ok", totals, None
    why = "; ".join(f"{Path(f.file).name}: {f.message or f.status}" for f in failed[:3])
    more = f" (and {len(failed) - 3} more)" if len(failed) > 3 else ""
    loaded = totals["leads"] + totals["events"]
    return ("partial" if loaded else "failed"), totals, (
        f"{len(failed)} file(s) not loaded: {why}{more}")


def resolve(db: Path | None, rules_dir: Path, progress=None, as_of: dt.date | None = None,
            dry_run: bool = False, full: bool = False) -> dict:
    """Identity resolution over everything ingested; publishes persons and history. In the
    same write, merged and split persons' routing states follow the identity changes
    (routing/merge.py, locks active as of `as_of`, default today): `ownership` counts
    what moved, `conflicts` the locks of two reps that met in one person. dry_run: the
    same on a private copy, reported against the published state (identity/preview.py);
    nothing is published and the run log gets no row. full: golden records and subjects
    of every person, not only of those the news changed."""
    rules = load_rules(rules_dir)  # invalid rules: nothing changes

    def run(ws: Workspace, run_id: int | None) -> dict:
        return resolve_with_ownership(ws, rules, as_of or ws.today(), run_id, progress, full,
                                      in_order=not dry_run)

    if dry_run:
        with open_private(db) as ws:
            as_of = ws.settle_clock(rules.sources.timezone, as_of)
            return preview_resolve(ws, run, rules.hash, as_of)
    with recorded_run(db, "resolve", as_of, rules, today=True) as ws:
        result = run(ws, ws.run_id)
        ws.finish_run("ok", result)
    return result


def runs(db: Path | None, limit: int) -> list[dict]:
    """The run log, newest first; `counts` and `inputs` as the objects they were stored as."""
    with reading(db) as ws:
        rows = ws.rows("SELECT run_id, command, started_at, ended_at, as_of, rules_hash, "
                       "outcome, counts, inputs, error FROM runs ORDER BY run_id DESC LIMIT ?",
                       [limit])
    for row in rows:
        for key in ("counts", "inputs"):
            row[key] = json.loads(row[key]) if row[key] is not None else None
    return rows


def export(db: Path | None, what: str, out: Path) -> dict:
    with reading(db) as ws:
        return export_table(ws, what, out)


# -- rules and the tag, score and route stages ---------------------------------------------------

def rules_check(db: Path | None, rules_dir: Path) -> dict:
    """Validate every rule file; with a workspace present, also against its data."""
    path = db_path_from(db)
    if not path.exists():
        return {**load_rules(rules_dir).summary(), "db": None}
    with reading(path) as ws:
        return {**load_rules(rules_dir, ws).summary(), "db": str(path)}


def rules_test(rules_dir: Path) -> dict:
    """Run rules/tests/*.yaml fixtures in memory; `ok` is False when any expectation fails."""
    return run_fixtures(rules_dir).to_dict()


def tag(db: Path | None, rules_dir: Path, as_of: dt.date | None, dry_run: bool = False,
        progress=None, full: bool = False) -> dict:
    """Compute every tag as of `as_of` (None: today in the workspace time zone) and store
    it (or, with dry_run, only report). Invalid rules raise RuleError before anything is
    computed or changed."""
    rules = load_rules(rules_dir)  # fail fast, before copying the workspace for a writer
    if dry_run:
        with reading(db) as ws:
            rules.check_data(ws)
            result = run_tags(ws, rules.tags, ws.settle_clock(rules.sources.timezone, as_of),
                              dry_run=True, progress=progress, full=full)
    else:
        with recorded_run(db, "tag", as_of, rules, today=True) as ws:
            rules.check_data(ws)
            result = run_tags(ws, rules.tags, ws.run_as_of, run_id=ws.run_id,
                              progress=progress, full=full)
            ws.finish_run("ok", {"persons": result["persons"], "tags": len(result["tags"]),
                                 "changes": result["changes"]})
    result["warnings"] = rules.warnings
    return result


def _stored_fields(ws: Workspace, ruleset: RuleSet, rules, check) -> dict[str, str]:
    """Compile-check every expression against the columns person_features really has. A
    tag the rules define but no tag run has computed yet is not a rule error: the stored
    tags are behind the rules (exit 2 saying so, not a list of `unknown field`s)."""
    fields = person_features_fields(ws)
    try:
        check(rules, fields)
    except RuleError as exc:
        behind = [name for name in ruleset.fields() if name not in fields
                  and any(f"unknown field '{name}'" in message for _, message in exc.problems)]
        if not behind:
            raise
        shown = ", ".join(behind[:5]) + (f" and {len(behind) - 5} more" if len(behind) > 5 else "")
        raise UsageError(f"tags.yaml defines tags no tag run has computed yet ({shown}): run "
                         "`leadctl tag` first (or the nightly `leadctl run`)") from None
    return fields


def score(db: Path | None, rules_dir: Path, as_of: dt.date, dry_run: bool = False) -> dict:
    """Score every person as of `as_of` (rules/scoring.yaml); dry_run only reports the
    grade distribution and how many persons would change grade."""
    ruleset = load_rules(rules_dir)  # invalid rules: nothing changes
    rules = ruleset.require("scoring")
    if dry_run:
        with reading(db) as ws:
            fields = _stored_fields(ws, ruleset, rules, check_scoring_expressions)
            return run_scores(ws, rules, as_of, dry_run=True, fields=fields)
    with recorded_run(db, "score", as_of, ruleset) as ws:
        fields = _stored_fields(ws, ruleset, rules, check_scoring_expressions)
        result = run_scores(ws, rules, as_of, run_id=ws.run_id, fields=fields)
        ws.finish_run("ok", {"persons": result["persons"], **result["grade_changes"]},
                      as_of=dt.date.fromisoformat(result["as_of"]))  # the tags' by default
    return result


def route(db: Path | None, rules_dir: Path, as_of: dt.date | None, dry_run: bool = False,
          limit: int = 50) -> dict:
    """Route every person as of `as_of` (rules/routing.yaml; None: today in the workspace
    time zone): lifecycle, routes, allocation;
    dry_run lists what would move where and why (up to `limit` persons) and changes
    nothing."""
    ruleset = load_rules(rules_dir)
    rules = ruleset.require("routing")
    if dry_run:
        with reading(db) as ws:
            fields = _stored_fields(ws, ruleset, rules, check_routing_expressions)
            return run_routing(ws, rules, ws.settle_clock(ruleset.sources.timezone, as_of),
                               dry_run=True, fields=fields, limit=limit)
    with recorded_run(db, "route", as_of, ruleset, today=True) as ws:
        fields = _stored_fields(ws, ruleset, rules, check_routing_expressions)
        result = run_routing(ws, rules, ws.run_as_of, run_id=ws.run_id, fields=fields,
                             limit=limit,
                             in_order=True)
        ws.finish_run("ok", {"persons": result["persons"], "changes": result.get("changes", 0),
                             "unassigned": result.get("unassigned", {})})
    return result


# -- rep actions ------------------------------------------------------------------------------

def claim(db: Path | None, rules_dir: Path, pool: str, rep: str, n: int = 1,
          as_of: dt.date | None = None) -> dict:
    """A rep takes up to `n` leads waiting in a claim pool (capacity and locks respected)."""
    ruleset = load_rules(rules_dir)
    rules = ruleset.require("routing")
    with recorded_run(db, "claim", as_of, ruleset, today=True) as ws:
        as_of = ws.run_as_of
        result = claim_leads(ws, rules, pool, rep, as_of, n, run_id=ws.run_id)
        ws.finish_run("ok", {"pool": pool, "rep": rep, "claimed": result["count"]})
    return result


def set_status(db: Path | None, rules_dir: Path, person: str, status: str,
               as_of: dt.date | None = None, rep: str | None = None) -> dict:
    """Set a lead's follow-up status (pending, contacting, unclear_intent, clear_intent,
    appointment, closed)."""
    ruleset = load_rules(rules_dir)
    rules = ruleset.require("routing")
    with recorded_run(db, "status", as_of, ruleset, today=True) as ws:
        as_of = ws.run_as_of
        result = set_lead_status(ws, rules, person, status, as_of, rep, run_id=ws.run_id)
        ws.finish_run("ok", {"person_id": result["person_id"], "status": status,
                             "changed": result["changed"]})
    return result


def sale(db: Path | None, rules_dir: Path, person: str, rep: str, as_of: dt.date | None = None,
         lock_days: int | None = None, amount: float | None = None) -> dict:
    """Record a sale: the person becomes the rep's, closed, and locked (do-not-disturb)."""
    ruleset = load_rules(rules_dir)
    rules = ruleset.require("routing")
    with recorded_run(db, "sale", as_of, ruleset, today=True) as ws:
        as_of = ws.run_as_of
        result = record_sale(ws, rules, person, rep, as_of, lock_days, amount,
                             run_id=ws.run_id)
        ws.finish_run("ok", {"person_id": result["person_id"], "rep": rep,
                             "locked_until": result["locked_until"]})
    return result


# -- read-only views ---------------------------------------------------------------------------

def find(db: Path | None, expr: str, *, limit: int | None = None, count_only: bool = False,
         reveal: bool = False, out: Path | None = None, as_of: dt.date | None = None,
         rules_dir: Path | None = None) -> dict:
    """Persons matching a rule expression: {expr, count, limit, persons} (or file, rows)."""
    with _echoed_masked(reveal), _tags_not_computed(rules_dir), reading(db) as ws:
        return find_persons(ws, expr, as_of=as_of, limit=limit, count_only=count_only,
                            reveal=reveal, out=out)


@contextlib.contextmanager
def _echoed_masked(reveal: bool) -> Iterator[None]:
    """An error echoing the expression shows a phone, e-mail or ID card typed in it
    masked (as the log does), unless `reveal`."""
    try:
        yield
    except UsageError as exc:
        if not reveal:
            exc.args = (pii.mask_lines(str(exc)),)
        raise


@contextlib.contextmanager
def _tags_not_computed(rules_dir: Path | None) -> Iterator[None]:
    """An expression naming a tag that rules_dir's tags.yaml defines but no tag run has
    computed says so (run `leadctl tag` first), not that the field is unknown."""
    try:
        yield
    except InvalidExpression as exc:
        better = not_computed_yet(exc, _defined_tags(rules_dir)) if rules_dir else None
        if better is None:
            raise
        raise better from None


def _defined_tags(rules_dir: Path) -> set[str]:
    """The tags rules_dir/tags.yaml defines (none when it does not load)."""
    try:
        return {tag.name for tag in load_tag_rules(rules_dir).tags}
    except RuleError:
        return set()


def report_channels(db: Path | None, by: str = "source", since: dt.date | None = None,
                    out: Path | None = None, rules_dir: Path | None = None,
                    as_of: dt.date | None = None, duplicates: str | None = None,
                    reveal: bool = False) -> dict:
    """Per-channel lead quality and value as of one date: {by, since, as_of…, sales_pools,
    grades, costs, warnings, channels: [...], total} or a file; with `duplicates` (a
    source), that source's leads duplicating an earlier lead of another source, to a
    file."""
    with reading(db) as ws:
        result = channel_report(ws, by=by, since=since, rules_dir=rules_dir, out=out,
                                as_of=as_of, duplicates=duplicates, reveal=reveal)
    for row in result.get("channels", []):  # a utm value or channel may quote a phone
        row["channel"] = pii.text_shown(row["channel"], reveal)
    return result


def explain(db: Path | None, lead: str, reveal: bool = False,
            rules_dir: Path | None = None, as_of: dt.date | None = None) -> dict:
    """Identity links, tag values with their rules, score breakdown and routing decision
    of one lead's person; parts not computed yet are {"available": false, "note": ...}."""
    with reading(db) as ws:
        return explain_lead(ws, lead, reveal=reveal, rules_dir=rules_dir, as_of=as_of)


# -- identity stewardship: suggested matches, why / why not, suspects --------------------------

def identity_suggest(db: Path | None, rules_dir: Path, min_score: float = suggest.DEFAULT_MIN_SCORE,
                     limit: int | None = None, reveal: bool = False) -> dict:
    """Pairs of persons that share no linking value but are probably one person:
    {suggestions: [{a, b, score, evidence}], total, min_score, reviewed}."""
    config = load_identity_config(rules_dir)
    with reading(db) as ws:
        return suggest.suggest(ws, config, rules_dir, min_score=min_score, limit=limit,
                               reveal=reveal)


def identity_accept(db: Path | None, rules_dir: Path, pairs: list[str],
                    all_above: float | None = None, reason: str | None = None) -> dict:
    """Suggestions → must_link overrides in rules/identity_overrides.yaml (applied by the
    next resolve)."""
    config = load_identity_config(rules_dir)
    with reading(db) as ws:
        return suggest.review(ws, config, rules_dir, "must_link", pairs=pairs,
                              all_above=all_above, reason=reason)


def identity_reject(db: Path | None, rules_dir: Path, pairs: list[str],
                    reason: str | None = None) -> dict:
    """Suggestions → cannot_link overrides (never suggested again)."""
    config = load_identity_config(rules_dir)
    with reading(db) as ws:
        return suggest.review(ws, config, rules_dir, "cannot_link", pairs=pairs, reason=reason)


def identity_why(db: Path | None, rules_dir: Path, a: str, b: str, reveal: bool = False) -> dict:
    """Why two leads are one person (the path of shared values) or why not."""
    config = load_identity_config(rules_dir)
    with reading(db) as ws:
        return why.why(ws, config, rules_dir, a, b, reveal=reveal)


def identity_suspects(db: Path | None, min_distinct: int = suspects.DEFAULT_MIN_DISTINCT,
                      limit: int | None = None, reveal: bool = False,
                      out: Path | None = None) -> dict:
    """Linking values carried by many different names or cities, ranked; `out`: a
    blocklist fragment to review."""
    if out is not None:  # (it wrote the fragment over the workspace)
        refuse_workspace_file("-o", out, db_path_from(db))
    with reading(db) as ws:
        return suspects.find_suspects(ws, min_distinct=min_distinct, limit=limit,
                                      reveal=reveal, out=out)


def report_funnel(db: Path | None, rules_dir: Path, name: str, *, by: list[str] | None = None,
                  since: dt.date | None = None, as_of: dt.date | None = None,
                  attribution: str | None = None) -> dict:
    """A funnel of rules/funnels.yaml per group: persons, conversion (of entry), of the
    previous step, median hours between steps and the min_conversion flags."""
    rules = load_rules(rules_dir)
    with reading(db) as ws:
        result = funnel_report(ws, rules, name, by=by, since=since, as_of=as_of,
                               attribution=attribution)
    for group in result.get("groups", []):  # a utm value or attribute may quote a phone
        group["key"] = pii.text_shown(group["key"], False)
    return result


def identity_conflicts(db: Path | None) -> dict:
    """Open ownership conflicts: active sale locks an identity merge did not keep (another
    rep's state was kept): {"conflicts": [...]}."""
    with reading(db) as ws:
        return {"conflicts": list_conflicts(ws)}
# -- audiences and experiments ------------------------------------------------------------


def current_user() -> str:
    """Who records an experiment: $LEADCTL_USER, else the login name."""
    user = os.environ.get("LEADCTL_USER")
    if user:
        return user
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name (some containers)
        return "unknown"


def audience_export(db: Path | None, name: str, expr: str, out: Path, *,
                    variants: str | None = None, holdout: str | None = None,
                    seed: str | None = None, control: str | None = None,
                    goal: str | None = None, as_of: dt.date | None = None,
                    reveal: bool = False, replace: bool = False,
                    rules_dir: Path | None = None) -> dict:
    """Persons matching `expr` with deterministic variants (and a holdout), recorded as
    experiment `name` starting on `as_of` (default today) and written to `out`."""
    # pool, owner, status... as of a given start, as `find --as-of` reads them
    routing_until = as_of
    spec = AudienceSpec.parse(name, expr, start=as_of or dt.date.min, variants=variants,
                              holdout=holdout, seed=seed, control=control, goal=goal)
    check_output_file(out, db_path_from(db))  # a bad file name or folder: nothing recorded
    # The file takes its place once the experiment is published: stopped or failed before,
    # neither is there (a mailed audience `report ab` knows nothing of, or another one).
    with file_in_place(out) as write, \
            recorded_run(db, "audience export", as_of, today=True) as ws, \
            _echoed_masked(reveal):
        as_of = ws.run_as_of  # default: today in the workspace time zone
        spec = dataclasses.replace(spec, start=as_of)
        with _tags_not_computed(rules_dir):
            where = compile_filter(ws, expr, as_of)
        with evaluating(expr):  # an overflow for some person: exit 2, as in find
            result = record_audience(ws, spec, "SELECT p.person_id "
                                     f"{relation_sql(where, routing_until)}",
                                     user=current_user(), replace=replace)
        rows = write(ws, members_file_sql(name, reveal=reveal))
        # Drawn from the stored tags and scores, which are not recomputed for the start:
        # `as_of_differs` names those of another date, as `find` does.
        on = ScreenAsOf(as_of, "today" if routing_until is None else "option",
                        last_tag_as_of(ws))
        result.update(file=str(out), rows=rows, expr=pii.text_shown(expr, reveal),
                      **on.to_dict(score=stored_as_of(ws, "scores")))
        # What it read is the workspace (no file): the expression and the file it wrote are
        # counts of the run, `inputs` stays the array of files read (none).
        ws.finish_run("ok", {"experiment": name, "persons": result["persons"],
                             "expr": pii.mask_text(expr),  # the run log is a log: masked
                             "file": str(out)})
    return result


def report_ab(db: Path | None, name: str, *, goal: str | None = None,
              window: str | None = None, as_of: dt.date | None = None,
              variant_from: str | None = None, entry: str | None = None,
              since: dt.date | None = None, variants: str | None = None,
              control: str | None = None, reveal: bool = False) -> dict:
    """An A/B test: per variant persons, conversions, rate and 95% CI; each variant against
    the control (difference, CI, p-value); sample ratio check; a plain verdict. A recorded
    experiment's audience expression is masked unless `reveal`, as `audience export`
    echoed it."""
    window_days = parse_window(window)
    with reading(db) as ws:
        result = evaluate_experiment(ws, name, as_of=as_of or ws.today(), goal=goal,
                                     window_days=window_days, variant_from=variant_from,
                                     entry=entry, since=since, variants=variants,
                                     control=control,
                                     show=lambda text: pii.text_shown(text, reveal))
    # the recorded expression, and variants from an attribute (its values), may quote a
    # phone or an e-mail (the verdict already names them as shown)
    for row in (result, *result.get("variants", []), *result.get("comparisons", [])):
        for key in ("expr", "control", "variant", "vs"):
            if key in row:
                row[key] = pii.text_shown(row[key], reveal)
    return result
# -- identity stewardship ------------------------------------------------------------------------


def identity_link(db: Path | None, rules_dir: Path, a: str, b: str, reason: str,
                  by: str | None = None) -> dict:
    """Append a must_link of A and B (leads, or persons as their earliest lead) to
    rules/identity_overrides.yaml; the next resolve applies it."""
    rules = load_rules(rules_dir)  # never append to rules that do not load
    with reading(db) as ws:
        return write_override(ws, rules.rules_dir, rules.identity, "must_link", a, b,
                              reason, by)


def identity_unlink(db: Path | None, rules_dir: Path, a: str, b: str, reason: str,
                    by: str | None = None) -> dict:
    """Append a cannot_link of A and B to rules/identity_overrides.yaml."""
    rules = load_rules(rules_dir)
    with reading(db) as ws:
        return write_override(ws, rules.rules_dir, rules.identity, "cannot_link", a, b,
                              reason, by)
