"""One library function per CLI command (the CLI only parses and renders).

Writers run inside `open_writer` (locked, atomic publish) and record a row in
`runs`; readers use the published state read-only.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from leadctl.workspace import open_reader, open_writer


def ingest(db: Path | None, paths: list[str], options, progress=None) -> dict:
    from leadctl.ingest import ingest_paths

    with open_writer(db, create=True) as ws:
        ws.start_run("ingest", None)
        summary = ingest_paths(ws, paths, options, progress)
        ws.finish_run("ok" if not summary.failed else "partial", summary.totals(), paths)
    return summary.to_dict()


def runs(db: Path | None, limit: int) -> list[dict]:
    ws = open_reader(db)
    try:
        return ws.rows("SELECT run_id, command, started_at, ended_at, as_of, rules_hash, "
                       "outcome, counts, error FROM runs ORDER BY run_id DESC LIMIT ?", [limit])
    finally:
        ws.con.close()


def export(db: Path | None, what: str, out: Path, as_of: dt.date | None = None) -> dict:
    from leadctl.views.export import export_table

    ws = open_reader(db)
    try:
        return export_table(ws, what, out)
    finally:
        ws.con.close()


# -- read-only views: portrait, find, report, explain ------------------------------------------
# Imports stay inside the functions: `leadctl portrait` must start fast.

def portrait(db: Path | None, query: str, reveal: bool = False,
             as_of: dt.date | None = None) -> dict:
    """One person's portrait by phone/email/WeChat/ID card/device/lead id/person id."""
    from leadctl.views.portrait import build_portrait

    ws = open_reader(db)
    try:
        return build_portrait(ws, query, reveal=reveal, as_of=as_of)
    finally:
        ws.con.close()


# -- tags and rules ------------------------------------------------------------------------------

def tag(db: Path | None, rules_dir: Path, as_of: dt.date, dry_run: bool = False,
        progress=None) -> dict:
    """Compute every tag as of `as_of` and store it (or, with dry_run, only report).
    Invalid rules raise RuleError before anything is computed or changed."""
    from leadctl.rules.check import check_rules
    from leadctl.rules.load import rules_hash
    from leadctl.tagging.stage import run_tags

    check_rules(rules_dir)  # fail fast, before copying the workspace for a writer
    if dry_run:
        ws = open_reader(db)
        try:
            ctx = check_rules(rules_dir, ws)
            result = run_tags(ws, ctx.loaded["tags"], as_of, dry_run=True, progress=progress)
        finally:
            ws.con.close()
    else:
        with open_writer(db) as ws:
            ctx = check_rules(rules_dir, ws)
            ws.start_run("tag", as_of, rules_hash(rules_dir))
            result = run_tags(ws, ctx.loaded["tags"], as_of, run_id=ws.run_id,
                              progress=progress)
            ws.finish_run("ok", {"persons": result["persons"], "tags": len(result["tags"]),
                                 "changes": result["changes"]})
    result["warnings"] = ctx.warnings
    return result


def rules_check(db: Path | None, rules_dir: Path) -> dict:
    """Validate every rule file; with a workspace present, also against its data."""
    from leadctl.rules.check import check_rules
    from leadctl.workspace import db_path_from

    path = db_path_from(db)
    if not path.exists():
        return {**check_rules(rules_dir).summary(), "db": None}
    ws = open_reader(path)
    try:
        return {**check_rules(rules_dir, ws).summary(), "db": str(path)}
    finally:
        ws.con.close()


def rules_test(rules_dir: Path) -> dict:
    """Run rules/tests/*.yaml fixtures in memory; `ok` is False when any expectation fails."""
    from leadctl.rules.fixtures import run_fixtures

    return run_fixtures(rules_dir).to_dict()


def find(db: Path | None, expr: str, *, limit: int | None = None, count_only: bool = False,
         reveal: bool = False, out: Path | None = None, as_of: dt.date | None = None) -> dict:
    """Persons matching a rule expression: {expr, count, limit, persons} (or file, rows)."""
    from leadctl.views.find import find_persons

    ws = open_reader(db)
    try:
        return find_persons(ws, expr, as_of=as_of, limit=limit, count_only=count_only,
                            reveal=reveal, out=out)
    finally:
        ws.con.close()


# -- scoring, routing and the lead lifecycle ---------------------------------------------------

def _required_rules(rules_dir: Path, name: str):
    """Scoring or routing rules for a command that needs them: parsed and validated
    (structure) before any workspace is opened; a missing file is a rule error."""
    from leadctl.errors import Location, RuleError

    if name == "scoring":
        from leadctl.scoring.parse import load_scoring_rules as load
    else:
        from leadctl.routing.parse import load_routing_rules as load
    rules = load(rules_dir)
    if not rules.present:
        raise RuleError([(Location(str(rules.path), 1, 1),
                          f"{rules.path.name} not found in {rules_dir} (pass --rules)")])
    return rules


def _with_fields(rules, ws, name: str):
    """Compile-check every expression against the columns person_features really has."""
    from leadctl.scoring.fields import person_features_fields

    fields = person_features_fields(ws)
    if name == "scoring":
        from leadctl.scoring.parse import check_scoring_expressions as check
    else:
        from leadctl.routing.parse import check_routing_expressions as check
    check(rules, fields)
    return fields


def score(db: Path | None, rules_dir: Path, as_of: dt.date, dry_run: bool = False) -> dict:
    """Score every person as of `as_of` (rules/scoring.yaml); dry_run only reports the
    grade distribution and how many persons would change grade."""
    from leadctl.rules.check import check_rules
    from leadctl.rules.load import rules_hash
    from leadctl.scoring.stage import run_scores

    check_rules(rules_dir)  # invalid rules: nothing runs, nothing changes
    rules = _required_rules(rules_dir, "scoring")
    if dry_run:
        ws = open_reader(db)
        try:
            fields = _with_fields(rules, ws, "scoring")
            return run_scores(ws, rules, as_of, dry_run=True, fields=fields)
        finally:
            ws.con.close()
    with open_writer(db) as ws:
        fields = _with_fields(rules, ws, "scoring")
        ws.start_run("score", as_of, rules_hash(rules_dir))
        result = run_scores(ws, rules, as_of, run_id=ws.run_id, fields=fields)
        ws.finish_run("ok", {"persons": result["persons"], **result["grade_changes"]})
    return result


def route(db: Path | None, rules_dir: Path, as_of: dt.date, dry_run: bool = False,
          limit: int = 50) -> dict:
    """Route every person as of `as_of` (rules/routing.yaml): lifecycle, routes, allocation;
    dry_run lists what would move where and why (up to `limit` persons) and changes
    nothing."""
    from leadctl.routing.stage import run_routing
    from leadctl.rules.check import check_rules
    from leadctl.rules.load import rules_hash

    check_rules(rules_dir)
    rules = _required_rules(rules_dir, "routing")
    if dry_run:
        ws = open_reader(db)
        try:
            fields = _with_fields(rules, ws, "routing")
            return run_routing(ws, rules, as_of, dry_run=True, fields=fields, limit=limit)
        finally:
            ws.con.close()
    with open_writer(db) as ws:
        fields = _with_fields(rules, ws, "routing")
        ws.start_run("route", as_of, rules_hash(rules_dir))
        result = run_routing(ws, rules, as_of, run_id=ws.run_id, fields=fields, limit=limit)
        ws.finish_run("ok", {"persons": result["persons"], "changes": result.get("changes", 0),
                             "unassigned": result.get("unassigned", {})})
    return result


def claim(db: Path | None, rules_dir: Path, pool: str, rep: str, n: int = 1,
          as_of: dt.date | None = None) -> dict:
    """A rep takes up to `n` leads waiting in a claim pool (capacity and locks respected)."""
    from leadctl.routing.lifecycle import claim as claim_leads
    from leadctl.rules.load import rules_hash

    as_of = as_of or dt.date.today()
    rules = _required_rules(rules_dir, "routing")
    with open_writer(db) as ws:
        ws.start_run("claim", as_of, rules_hash(rules_dir))
        result = claim_leads(ws, rules, pool, rep, as_of, n, run_id=ws.run_id)
        ws.finish_run("ok", {"pool": pool, "rep": rep, "claimed": result["count"]})
    return result


def set_status(db: Path | None, rules_dir: Path, person: str, status: str,
               as_of: dt.date | None = None, rep: str | None = None) -> dict:
    """Set a lead's follow-up status (pending, contacting, unclear_intent, clear_intent,
    appointment, closed)."""
    from leadctl.routing.lifecycle import set_status as set_lead_status
    from leadctl.rules.load import rules_hash

    as_of = as_of or dt.date.today()
    rules = _required_rules(rules_dir, "routing")
    with open_writer(db) as ws:
        ws.start_run("status", as_of, rules_hash(rules_dir))
        result = set_lead_status(ws, rules, person, status, as_of, rep, run_id=ws.run_id)
        ws.finish_run("ok", {"person_id": result["person_id"], "status": status,
                             "changed": result["changed"]})
    return result


def sale(db: Path | None, rules_dir: Path, person: str, rep: str, as_of: dt.date | None = None,
         lock_days: int | None = None, amount: float | None = None) -> dict:
    """Record a sale: the person becomes the rep's, closed, and locked (do-not-disturb)."""
    from leadctl.routing.lifecycle import record_sale
    from leadctl.rules.load import rules_hash

    as_of = as_of or dt.date.today()
    rules = _required_rules(rules_dir, "routing")
    with open_writer(db) as ws:
        ws.start_run("sale", as_of, rules_hash(rules_dir))
        result = record_sale(ws, rules, person, rep, as_of, lock_days, amount,
                             run_id=ws.run_id)
        ws.finish_run("ok", {"person_id": result["person_id"], "rep": rep,
                             "locked_until": result["locked_until"]})
    return result


def report_channels(db: Path | None, by: str = "source", since: dt.date | None = None,
                    out: Path | None = None, rules_dir: Path | None = None) -> dict:
    """Per-channel lead quality: {by, since, sales_pools, channels: [...], total} or a file."""
    from leadctl.views.report import channel_report

    ws = open_reader(db)
    try:
        return channel_report(ws, by=by, since=since, rules_dir=rules_dir, out=out)
    finally:
        ws.con.close()


def explain(db: Path | None, lead: str, reveal: bool = False,
            rules_dir: Path | None = None) -> dict:
    """Identity links, tag values with their rules, score breakdown and routing decision
    of one lead's person; parts not computed yet are {"available": false, "note": ...}."""
    from leadctl.views.explain import explain_lead

    ws = open_reader(db)
    try:
        return explain_lead(ws, lead, reveal=reveal, rules_dir=rules_dir)
    finally:
        ws.con.close()


def resolve(db: Path | None, rules_dir: Path) -> dict:
    """Identity resolution over everything ingested; publishes persons and history."""
    from leadctl.identity.config import load_identity_config
    from leadctl.identity.resolve import resolve_identities
    from leadctl.rules.load import rules_hash

    config = load_identity_config(rules_dir)  # invalid config: nothing changes
    with open_writer(db) as ws:
        ws.start_run("resolve", None, rules_hash(rules_dir))
        result = resolve_identities(ws, config, ws.run_id).to_dict()
        ws.finish_run("ok", result)
    return result
