"""One library function per CLI command (the CLI only parses and renders).

Writers run inside `recorded_run` (locked, atomic publish, a row in `runs`); readers
inside `reading` (the published state, read-only). Rules are loaded once per command
(`load_rules`) and handed down. `leadctl portrait` is served by
`leadctl.views.portrait.portrait` directly: it must not load this module's imports.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

from leadctl.identity.overrides_cmd import write_override
from leadctl.identity.preview import preview_resolve
from leadctl.identity.resolve import resolve_identities
from leadctl.ingest import ingest_paths
from leadctl.routing.lifecycle import claim as claim_leads
from leadctl.routing.lifecycle import record_sale
from leadctl.routing.lifecycle import set_status as set_lead_status
from leadctl.routing.parse import check_routing_expressions
from leadctl.routing.stage import run_routing
from leadctl.ruleset import RuleSet, load_rules
from leadctl.ruletest import run_fixtures
from leadctl.scoring.parse import check_scoring_expressions
from leadctl.scoring.stage import run_scores
from leadctl.tagging.fields import person_features_fields
from leadctl.tagging.stage import run_tags
from leadctl.views.explain import explain_lead
from leadctl.views.export import export_table
from leadctl.views.find import find_persons
from leadctl.views.report import channel_report
from leadctl.workspace import Workspace, db_path_from, open_private, open_writer, reading


@contextlib.contextmanager
def recorded_run(db: Path | None, command: str, as_of: dt.date | None = None,
                 rules: RuleSet | None = None, *, create: bool = False) -> Iterator[Workspace]:
    """A locked, atomic write session with its `runs` row started (the caller finishes
    it with its counts)."""
    with open_writer(db, create=create) as ws:
        ws.start_run(command, as_of, rules.hash if rules else None)
        yield ws


def ingest(db: Path | None, paths: list[str], options, progress=None) -> dict:
    with recorded_run(db, "ingest", create=True) as ws:
        summary = ingest_paths(ws, paths, options, progress)
        ws.finish_run("ok" if not summary.failed else "partial", summary.totals(), paths)
    return summary.to_dict()


def resolve(db: Path | None, rules_dir: Path, progress=None, dry_run: bool = False) -> dict:
    """Identity resolution over everything ingested; publishes persons and history.
    dry_run: the same on a private copy, reported against the published state
    (identity/preview.py); nothing is published and the run log gets no row."""
    rules = load_rules(rules_dir)  # invalid rules: nothing changes
    if dry_run:
        with open_private(db) as ws:
            return preview_resolve(ws, rules.identity, rules.hash, progress)
    with recorded_run(db, "resolve", None, rules) as ws:
        result = resolve_identities(ws, rules.identity, ws.run_id, progress).to_dict()
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


def tag(db: Path | None, rules_dir: Path, as_of: dt.date, dry_run: bool = False,
        progress=None) -> dict:
    """Compute every tag as of `as_of` and store it (or, with dry_run, only report).
    Invalid rules raise RuleError before anything is computed or changed."""
    rules = load_rules(rules_dir)  # fail fast, before copying the workspace for a writer
    if dry_run:
        with reading(db) as ws:
            rules.check_data(ws)
            result = run_tags(ws, rules.tags, as_of, dry_run=True, progress=progress)
    else:
        with recorded_run(db, "tag", as_of, rules) as ws:
            rules.check_data(ws)
            result = run_tags(ws, rules.tags, as_of, run_id=ws.run_id, progress=progress)
            ws.finish_run("ok", {"persons": result["persons"], "tags": len(result["tags"]),
                                 "changes": result["changes"]})
    result["warnings"] = rules.warnings
    return result


def _stored_fields(ws: Workspace, rules, check) -> dict[str, str]:
    """Compile-check every expression against the columns person_features really has."""
    fields = person_features_fields(ws)
    check(rules, fields)
    return fields


def score(db: Path | None, rules_dir: Path, as_of: dt.date, dry_run: bool = False) -> dict:
    """Score every person as of `as_of` (rules/scoring.yaml); dry_run only reports the
    grade distribution and how many persons would change grade."""
    ruleset = load_rules(rules_dir)  # invalid rules: nothing changes
    rules = ruleset.require("scoring")
    if dry_run:
        with reading(db) as ws:
            fields = _stored_fields(ws, rules, check_scoring_expressions)
            return run_scores(ws, rules, as_of, dry_run=True, fields=fields)
    with recorded_run(db, "score", as_of, ruleset) as ws:
        fields = _stored_fields(ws, rules, check_scoring_expressions)
        result = run_scores(ws, rules, as_of, run_id=ws.run_id, fields=fields)
        ws.finish_run("ok", {"persons": result["persons"], **result["grade_changes"]})
    return result


def route(db: Path | None, rules_dir: Path, as_of: dt.date, dry_run: bool = False,
          limit: int = 50) -> dict:
    """Route every person as of `as_of` (rules/routing.yaml): lifecycle, routes, allocation;
    dry_run lists what would move where and why (up to `limit` persons) and changes
    nothing."""
    ruleset = load_rules(rules_dir)
    rules = ruleset.require("routing")
    if dry_run:
        with reading(db) as ws:
            fields = _stored_fields(ws, rules, check_routing_expressions)
            return run_routing(ws, rules, as_of, dry_run=True, fields=fields, limit=limit)
    with recorded_run(db, "route", as_of, ruleset) as ws:
        fields = _stored_fields(ws, rules, check_routing_expressions)
        result = run_routing(ws, rules, as_of, run_id=ws.run_id, fields=fields, limit=limit)
        ws.finish_run("ok", {"persons": result["persons"], "changes": result.get("changes", 0),
                             "unassigned": result.get("unassigned", {})})
    return result


# -- rep actions ------------------------------------------------------------------------------

def claim(db: Path | None, rules_dir: Path, pool: str, rep: str, n: int = 1,
          as_of: dt.date | None = None) -> dict:
    """A rep takes up to `n` leads waiting in a claim pool (capacity and locks respected)."""
    as_of = as_of or dt.date.today()
    ruleset = load_rules(rules_dir)
    rules = ruleset.require("routing")
    with recorded_run(db, "claim", as_of, ruleset) as ws:
        result = claim_leads(ws, rules, pool, rep, as_of, n, run_id=ws.run_id)
        ws.finish_run("ok", {"pool": pool, "rep": rep, "claimed": result["count"]})
    return result


def set_status(db: Path | None, rules_dir: Path, person: str, status: str,
               as_of: dt.date | None = None, rep: str | None = None) -> dict:
    """Set a lead's follow-up status (pending, contacting, unclear_intent, clear_intent,
    appointment, closed)."""
    as_of = as_of or dt.date.today()
    ruleset = load_rules(rules_dir)
    rules = ruleset.require("routing")
    with recorded_run(db, "status", as_of, ruleset) as ws:
        result = set_lead_status(ws, rules, person, status, as_of, rep, run_id=ws.run_id)
        ws.finish_run("ok", {"person_id": result["person_id"], "status": status,
                             "changed": result["changed"]})
    return result


def sale(db: Path | None, rules_dir: Path, person: str, rep: str, as_of: dt.date | None = None,
         lock_days: int | None = None, amount: float | None = None) -> dict:
    """Record a sale: the person becomes the rep's, closed, and locked (do-not-disturb)."""
    as_of = as_of or dt.date.today()
    ruleset = load_rules(rules_dir)
    rules = ruleset.require("routing")
    with recorded_run(db, "sale", as_of, ruleset) as ws:
        result = record_sale(ws, rules, person, rep, as_of, lock_days, amount,
                             run_id=ws.run_id)
        ws.finish_run("ok", {"person_id": result["person_id"], "rep": rep,
                             "locked_until": result["locked_until"]})
    return result


# -- read-only views ---------------------------------------------------------------------------

def find(db: Path | None, expr: str, *, limit: int | None = None, count_only: bool = False,
         reveal: bool = False, out: Path | None = None, as_of: dt.date | None = None) -> dict:
    """Persons matching a rule expression: {expr, count, limit, persons} (or file, rows)."""
    with reading(db) as ws:
        return find_persons(ws, expr, as_of=as_of, limit=limit, count_only=count_only,
                            reveal=reveal, out=out)


def report_channels(db: Path | None, by: str = "source", since: dt.date | None = None,
                    out: Path | None = None, rules_dir: Path | None = None,
                    as_of: dt.date | None = None) -> dict:
    """Per-channel lead quality as of one date: {by, since, as_of…, sales_pools,
    channels: [...], total} or a file."""
    with reading(db) as ws:
        return channel_report(ws, by=by, since=since, rules_dir=rules_dir, out=out, as_of=as_of)


def explain(db: Path | None, lead: str, reveal: bool = False,
            rules_dir: Path | None = None, as_of: dt.date | None = None) -> dict:
    """Identity links, tag values with their rules, score breakdown and routing decision
    of one lead's person; parts not computed yet are {"available": false, "note": ...}."""
    with reading(db) as ws:
        return explain_lead(ws, lead, reveal=reveal, rules_dir=rules_dir, as_of=as_of)


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
