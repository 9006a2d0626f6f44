"""The score stage: scoring rules → per-person points, score, grade (+ breakdown).

One pass over person_features computes every rule's points into a temporary table;
`dry_run` stops there and reports the grade distribution and how many persons would
change grade against the stored scores. A real run replaces `scores` (which keeps the
points per rule as `p_<rule>` columns) and makes `score_breakdown` the long-form view
of those columns (person_id, rule, points; only rules that gave points).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from leadctl.rules.scoring import (
    ScoringRules,
    grade_changes_sql,
    ident,
    points_table_sql,
    rule_hits_sql,
    store_scores_sql,
)
from leadctl.workspace import Workspace

POINTS = "score_new_points"  # dry run: a temporary table
NEXT = "scores_next"  # real run: the next `scores`, renamed into place

# DuckDB column types → expression language types.
_NUMBER_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT",
                 "USMALLINT", "UINTEGER", "UBIGINT", "FLOAT", "DOUBLE", "REAL")


def expression_type(sql_type: str) -> str:
    t = sql_type.upper()
    if t.endswith("[]") or t.startswith(("LIST", "STRUCT", "MAP")):
        return "list"
    if t in _NUMBER_TYPES or t.startswith("DECIMAL"):
        return "number"
    if t == "BOOLEAN":
        return "boolean"
    if t == "DATE":
        return "date"
    if t.startswith("TIMESTAMP"):
        return "timestamp"
    return "string"


def person_features_fields(ws: Workspace, table: str = "person_features") -> dict[str, str]:
    """The columns person_features really has (what SQL can bind), as expression types."""
    return {name: expression_type(data_type) for name, data_type in ws.columns(table)
            if name != "person_id"}


def run_scores(ws: Workspace, rules: ScoringRules, as_of: dt.date, *, dry_run: bool = False,
               run_id: int | None = None, fields: Mapping[str, str] | None = None) -> dict:
    """Score every person of person_features as of `as_of`; store unless `dry_run`."""
    summary: dict = {"as_of": as_of.isoformat(), "dry_run": dry_run, "run_id": None,
                     "rules_hash": rules.rules_hash}
    if not rules.present:
        return {**summary, "skipped": f"no {rules.path.name}: nothing scored", "persons": 0}
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
        summary.update(_summary(ws, rules, target))
        if not dry_run:
            types = {name: ws.table_type(name) for name in ("scores", "score_breakdown")}
            ws.script(store_scores_sql(
                rules, NEXT, scores_is_table=types.get("scores") == "BASE TABLE",
                breakdown_is_table=types.get("score_breakdown") == "BASE TABLE"))
    finally:
        ws.execute(f"DROP TABLE IF EXISTS {ident(target)}")
    return summary


def _summary(ws: Workspace, rules: ScoringRules, table: str) -> dict:
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
    stats = ws.rows(f"SELECT min(score) AS min, avg(score) AS avg, max(score) AS max "
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


# --------------------------------------------------------------------------- explain / fixtures


def explain_score(ws: Workspace, person_id: str, rules: ScoringRules | None = None) -> dict:
    """How one person's stored score adds up: score, grade, and each rule's points (rules
    that gave 0 points are listed with 0 when `rules` is given)."""
    row = ws.rows("SELECT score, grade, as_of, run_id FROM scores WHERE person_id = ?",
                  [person_id])
    parts = ws.rows("SELECT rule, points FROM score_breakdown WHERE person_id = ? "
                    "ORDER BY points DESC, rule", [person_id])
    got = {p["rule"]: p["points"] for p in parts}
    breakdown = [{"rule": p["rule"], "points": p["points"]} for p in parts]
    if rules is not None and rules.present:
        described = {r.name: r for r in rules.rules}
        for item in breakdown:
            rule = described.get(item["rule"])
            item["description"] = rule.description if rule else ""
            item["when"] = rule.when.value if rule and rule.when else None
        breakdown += [{"rule": r.name, "points": 0.0, "description": r.description,
                       "when": r.when.value if r.when else None}
                      for r in rules.rules if r.name not in got]
    if not row:
        return {"person_id": person_id, "scored": False, "score": None, "grade": None,
                "breakdown": breakdown}
    first = row[0]
    return {"person_id": person_id, "scored": True, "score": first["score"],
            "grade": first["grade"], "as_of": first["as_of"], "run_id": first["run_id"],
            "breakdown": breakdown,
            "thresholds": ([{"grade": g.name, "min": g.min} for g in rules.grades]
                           if rules is not None else None)}


def fixture_values(ws: Workspace, rules_dir, as_of: dt.date) -> dict[str, dict]:
    """`rules test` stage: score the case; expectation keys `score`, `grade`, and
    `points.<rule>` (points that rule gave)."""
    from leadctl.rules.scoring import load_scoring_rules

    rules = load_scoring_rules(rules_dir)
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
