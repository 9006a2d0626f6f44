"""The score stage: scoring rules → per-person points, score, grade (+ breakdown).

One pass over person_features computes every rule's points into a temporary table;
`dry_run` stops there and reports the grade distribution and how many persons would
change grade against the stored scores. A real run replaces `scores` (which keeps the
points per rule as `p_<rule>` columns) and makes `score_breakdown` the long-form view
of those columns (person_id, rule, points; only rules that gave points).

A score is as of its tags: its rules read the stored tag values (days since, windows)
as the tag run computed them, so scoring as of another date would store stale ages under
that date. `run_scores` therefore scores as of the stored tags' as-of (`as_of=None`, what
`leadctl score` does without `--as-of`) and refuses another date (`check_tags_as_of`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from leadctl.errors import UsageError
from leadctl.scoring.model import ScoringRules
from leadctl.scoring.sql import (
    grade_changes_sql,
    infinite_points_sql,
    points_table_sql,
    rule_hits_sql,
    store_scores_sql,
)
from leadctl.scoring.tables import SCORED_WITH_KEY
from leadctl.sqlfn import avg_sql
from leadctl.sqltext import ident, set_meta_sql
from leadctl.tagging.fields import person_features_fields
from leadctl.tagging.incremental import TagState, state_sql
from leadctl.workspace import RuleComputationFailed, Workspace, rule_computation

POINTS = "score_new_points"  # dry run: a temporary table
NEXT = "scores_next"  # real run: the next `scores`, renamed into place


def tags_as_of(ws: Workspace) -> dt.date | None:
    """The as-of of the stored tags (person_features): that of the last stored tag run
    (`tag`, `run`, `load-results`), kept with its incremental state; else the one stored
    with the tags (a workspace filled by other means); None without tags."""
    state = TagState.from_json(ws.scalar(state_sql()))
    if state is not None:
        return state.as_of
    if ws.table_type("tags") is None:
        return None
    day = ws.scalar("SELECT as_of FROM tags WHERE as_of IS NOT NULL LIMIT 1")
    return dt.date.fromisoformat(str(day)[:10]) if day is not None else None


def check_tags_as_of(as_of: dt.date, tagged: dt.date | None) -> None:
    """A score as of another date than its tags' would read their values (days since,
    windows) as of the tags' date and store them as of `as_of`: a UsageError."""
    if tagged is not None and as_of != tagged:
        raise UsageError(
            f"the tags are as of {tagged}, and a score reads their values (days since, "
            f"windows) as of that day, so it cannot be as of {as_of}: run `leadctl tag "
            f"--as-of {as_of}` first, or score as of the tags (without --as-of, or "
            f"--as-of {tagged})")


@rule_computation("score")  # an overflow for this data: exit 2
def run_scores(ws: Workspace, rules: ScoringRules, as_of: dt.date | None, *,
               dry_run: bool = False, run_id: int | None = None,
               fields: Mapping[str, str] | None = None) -> dict:
    """Score every person of person_features as of `as_of`, which must be the stored tags'
    as-of (None: that one; today without tags); store unless `dry_run`."""
    tagged = tags_as_of(ws)
    if as_of is None:
        as_of = tagged or ws.today()
    summary: dict = {"as_of": as_of.isoformat(), "dry_run": dry_run, "run_id": None,
                     "rules_hash": rules.rules_hash}
    if not rules.present:
        return {**summary, "skipped": f"no {rules.path.name}: nothing scored", "persons": 0}
    check_tags_as_of(as_of, tagged)
    fields = dict(fields) if fields is not None else person_features_fields(ws)
    if not dry_run:
        run_id = run_id if run_id is not None else ws.run_id or 0
        summary["run_id"] = run_id
    # A real run computes straight into a new persistent table (one write), published by
    # renaming it over `scores` once the summary has compared it with the old one.
    target = POINTS if dry_run else NEXT
    ws.execute(points_table_sql(rules, fields, as_of, target, run_id=run_id,
                                temporary=dry_run))
    try:
        _refuse_infinite_points(ws, rules, target)
        summary.update(_summary(ws, rules, target))
        if not dry_run:
            types = {name: ws.table_type(name) for name in ("scores", "score_breakdown")}
            ws.script(store_scores_sql(
                rules, NEXT, scores_is_table=types.get("scores") == "BASE TABLE",
                breakdown_is_table=types.get("score_breakdown") == "BASE TABLE"))
            ws.script(set_meta_sql(SCORED_WITH_KEY, rules.rules_hash))
    finally:
        ws.execute(f"DROP TABLE IF EXISTS {ident(target)}")
    return summary


def _refuse_infinite_points(ws: Workspace, rules: ScoringRules, table: str) -> None:
    """Points no finite number for some person (an expression past the largest double)
    stop the stage as an overflow does: exit 2, nothing stored."""
    check = infinite_points_sql(rules, table)
    found = ws.rows(check)[0] if check else {}
    for name in [r.name for r in rules.rules] + [""]:
        if found.get("n_" + name):
            what = f"rule {name}'s points are" if name else "the sum of the points is"
            raise RuleComputationFailed(
                f"score: {what} no finite number for {found['n_' + name]} person(s), such "
                f"as {found['e_' + name]} (past the largest number, about 1.8e308): "
                f"check the expressions in {rules.path.name}")


def _summary(ws: Workspace, rules: ScoringRules, table: str) -> dict:
    """Grades now and before, grade moves, score range and each rule's hits for the
    computed points `table` against the stored `scores`."""
    persons = int(ws.scalar(f"SELECT count(*) FROM {ident(table)}") or 0)
    pairs = ws.rows(grade_changes_sql(table))
    now: dict[str, int] = {}
    before: dict[str, int] = {}
    changes = {"changed": 0, "added": 0, "removed": 0}
    moves = []
    for p in pairs:
        n = int(p["persons"])
        if p["scored"]:
            now[p["new_grade"]] = now.get(p["new_grade"], 0) + n
        if p["was_scored"]:
            before[p["old_grade"]] = before.get(p["old_grade"], 0) + n
        if p["scored"] and p["was_scored"] and p["old_grade"] != p["new_grade"]:
            changes["changed"] += n
            moves.append({"old_grade": p["old_grade"], "new_grade": p["new_grade"],
                          "persons": n})
        changes["added"] += n if p["scored"] and not p["was_scored"] else 0
        changes["removed"] += n if p["was_scored"] and not p["scored"] else 0
    stats = ws.rows(f"SELECT min(score) AS min, {avg_sql('score')} AS avg, max(score) AS max "
                    f"FROM {ident(table)}")[0]
    names = rules.grade_names + sorted(g for g in set(now) | set(before)
                                       if g not in rules.grade_names)
    hits_sql = rule_hits_sql(rules, table)
    hits = ws.rows(hits_sql)[0] if hits_sql else {}
    previous = ws.rows("SELECT max(as_of) AS as_of, max(run_id) AS run_id, count(*) AS persons "
                       "FROM scores")[0]
    return {
        "persons": persons,
        "previous": ({"as_of": str(previous["as_of"]), "run_id": previous["run_id"],
                      "persons": int(previous["persons"])} if previous["persons"] else None),
        "grades": [{"grade": g, "persons": now.get(g, 0), "previous": before.get(g, 0)}
                   for g in names],
        "grade_changes": changes,
        "grade_moves": sorted(
            ({"from": m["old_grade"], "to": m["new_grade"], "persons": int(m["persons"])}
             for m in moves), key=lambda m: (-m["persons"], str(m["from"]), str(m["to"]))),
        "score": ({"min": stats["min"], "avg": round(stats["avg"], 2), "max": stats["max"]}
                  if persons else None),
        "rules": [{"rule": r.name, "persons": int(hits.get("n_" + r.name) or 0),
                   "points": round(float(hits.get("s_" + r.name) or 0), 2)}
                  for r in rules.rules],
    }


def fixture_values(ws: Workspace, rules: ScoringRules, as_of: dt.date) -> dict[str, dict]:
    """`rules test` stage: score the case; expectation keys `score`, `grade`, and
    `points.<rule>` (points that rule gave)."""
    if not rules.present:
        return {}
    run_scores(ws, rules, as_of, run_id=ws.run_id or 0)
    out: dict[str, dict] = {}
    for r in ws.rows("SELECT person_id, score, grade FROM scores"):
        out[r["person_id"]] = {"score": r["score"], "grade": r["grade"]}
        out[r["person_id"]].update({f"points.{x.name}": 0.0 for x in rules.rules})
    for r in ws.rows("SELECT person_id, rule, points FROM score_breakdown"):
        out.setdefault(r["person_id"], {})[f"points.{r['rule']}"] = r["points"]
    return out
