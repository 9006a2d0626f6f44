"""How one person's stored score adds up: the score part of `leadctl explain`.

Reads what the score stage stored (scores, score_breakdown) and, where
rules/scoring.yaml still parses, each rule's definition next to its points. Broken
rules do not hide the stored score: they become a note.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from leadctl.errors import RuleError
from leadctl.rules.load import changed_since_note
from leadctl.scoring.parse import load_scoring_rules
from leadctl.scoring.tables import SCORED_WITH_KEY
from leadctl.sqltext import meta_value_sql
from leadctl.workspace import Workspace


def explain_score(ws: Workspace, person_id: str, rules_dir: Path | None) -> dict:
    """Score, grade and as-of of the person, its breakdown (rules that gave points, most
    first, with their definitions), the points total and the grade thresholds; or
    `{"available": False, "note": ...}` when it is not scored yet."""
    score = ws.rows("SELECT score, grade, as_of FROM scores WHERE person_id = ?", [person_id])
    if not score:
        return {"available": False, "note": "not scored yet (run `leadctl score`)"}
    breakdown = ws.rows("SELECT rule, points FROM score_breakdown WHERE person_id = ? "
                        "ORDER BY points DESC, rule", [person_id])
    rules, grades, note, file_hash = rule_definitions(rules_dir)
    note = note or changed_since_note(ws.scalar(meta_value_sql(SCORED_WITH_KEY)), file_hash,
                                      "scoring.yaml", "this score was", "score")
    lines = []
    for row in breakdown:
        line = {"rule": row["rule"], "points": row["points"]}
        if row["rule"] in rules:
            line.update(rules[row["rule"]])
        lines.append(line)
    out = {**score[0], "breakdown": lines,
           "points_total": round(sum(r["points"] or 0 for r in breakdown), 6),
           "grades": grades}
    if note:
        out["note"] = note
    return out


def rule_definitions(rules_dir: Path | None
                     ) -> tuple[dict[str, dict], list[dict], str | None, str | None]:
    """Each score rule's definition by name, the grade thresholds, a note when
    scoring.yaml does not parse (then both are empty), and the file's hash."""
    try:
        rules = load_scoring_rules(rules_dir)
    except RuleError as exc:
        return {}, [], f"rule definitions not shown: {str(exc).splitlines()[0]}", None
    by_name = {}
    for rule in rules.rules:
        item: dict[str, Any] = {"at": str(rule.loc) if rule.loc else None,
                                "description": rule.description or None,
                                "when": rule.when.value if rule.when else None}
        if rule.points_expr is not None:
            item["points_expr"] = rule.points_expr.value
        if rule.decay is not None:
            item["decay_half_life_days"] = rule.decay.half_life_days
        by_name[rule.name] = item
    return by_name, [{"grade": g.name, "min": g.min} for g in rules.grades], None, rules.rules_hash
