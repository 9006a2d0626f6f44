"""SQL of the score stage: pure builders, rules + person_features fields + as-of in,
SQL text out (DuckDB dialect; the Spark path transpiles the same text).

`scores` keeps every rule's points as a `p_<rule>` column next to score and grade;
`score_breakdown` is a view giving them in long form.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping

from leadctl.rules.located import LocatedText, compile_located
from leadctl.scoring.model import ScoreRule, ScoringRules
from leadctl.sqlfn import round_sql, rule_guard
from leadctl.sqltext import date_literal, finite_sql, ident, literal, number


def points_column(rule: ScoreRule) -> str:
    """Column name of a rule's points in the per-person points table."""
    return ident("p_" + rule.name)


def rule_points_sql(rule: ScoreRule, fields: Mapping[str, str], as_of: dt.date,
                    column_sql: Callable[[str], str] | None = None) -> str:
    """Points one rule gives one person (a DOUBLE, never NULL, rounded to 2 decimals)."""

    def compiled(text: LocatedText, expect: str, what: str) -> str:
        # A decimal computation past the largest number stops the stage (infinity passes
        # every `when:` and `least()` makes a cap of it); the points themselves are
        # checked after they are computed, saying for whom (`infinite_points_sql`).
        name = f"score rule '{rule.name}' {what}"
        return compile_located(text, fields, expect, as_of, name, column_sql,
                               finite_guard=rule_guard(name), guard_result=what != "points").sql

    if rule.points_expr is not None:
        value = f"CAST(({compiled(rule.points_expr, 'number', 'points')}) AS DOUBLE)"
    else:
        value = number(rule.points or 0)
    if rule.when is not None:
        value = f"CASE WHEN ({compiled(rule.when, 'boolean', 'when')}) THEN {value} END"
    value = f"coalesce({value}, 0)"
    if rule.decay is not None:
        age = f"CAST(({compiled(rule.decay.age, 'number', 'decay age')}) AS DOUBLE)"
        cases = [f"WHEN {age} IS NULL OR {age} <= 0 THEN 1"]
        if rule.decay.max_days is not None:
            cases.append(f"WHEN {age} > {number(rule.decay.max_days)} THEN 0")
        factor = (f"CASE {' '.join(cases)} "
                  f"ELSE power(0.5, {age} / {number(rule.decay.half_life_days)}) END")
        value = f"{value} * {factor}"
    return round_sql(value, 2)


def grade_sql(rules: ScoringRules, score: str = "score") -> str:
    if not rules.grades:
        return "CAST(NULL AS VARCHAR)"
    whens = " ".join(f"WHEN {score} >= {number(g.min)} THEN {literal(g.name)}"
                     for g in rules.grades[:-1])
    last = literal(rules.grades[-1].name)
    return f"CASE {whens} ELSE {last} END" if whens else last


def score_sum_sql(rules: ScoringRules) -> str:
    cols = [points_column(r) for r in rules.rules]
    return round_sql(" + ".join(cols), 2) if cols else "CAST(0 AS DOUBLE)"


def points_table_sql(rules: ScoringRules, fields: Mapping[str, str], as_of: dt.date,
                     target: str, *, run_id: int | None = None, temporary: bool = True,
                     source: str = "person_features") -> str:
    """ONE pass over person_features into `target`: person_id, score, grade, as_of,
    run_id, then each rule's points as a `p_<rule>` column (the layout of `scores`)."""
    cols = [f"{rule_points_sql(r, fields, as_of)} AS {points_column(r)}" for r in rules.rules]
    inner = ",\n           ".join(["person_id", *cols])
    points = "".join(f", {points_column(r)}" for r in rules.rules)
    run = "CAST(NULL AS INTEGER)" if run_id is None else f"CAST({int(run_id)} AS INTEGER)"
    kind = "TEMP TABLE" if temporary else "TABLE"
    return (f"CREATE OR REPLACE {kind} {ident(target)} AS\n"
            f"SELECT person_id, score, {grade_sql(rules)} AS grade, "
            f"{date_literal(as_of)} AS as_of, {run} AS run_id{points}\nFROM (\n"
            f"  SELECT *, {score_sum_sql(rules)} AS score FROM (\n"
            f"    SELECT {inner}\n    FROM {ident(source)}\n  ) AS rule_points\n"
            f") AS scored")


def breakdown_select_sql(rules: ScoringRules, source: str = "scores") -> str:
    """Long form of the points columns: one row per person and rule that gave points."""
    parts = [f"SELECT person_id, {literal(r.name)} AS rule, {points_column(r)} AS points "
             f"FROM {ident(source)} WHERE {points_column(r)} <> 0" for r in rules.rules]
    if not parts:
        return ("SELECT CAST(NULL AS VARCHAR) AS person_id, CAST(NULL AS VARCHAR) AS rule, "
                "CAST(NULL AS DOUBLE) AS points WHERE false")
    return "\nUNION ALL\n".join(parts)


def store_scores_sql(rules: ScoringRules, computed: str, *,
                     scores_is_table: bool = True, breakdown_is_table: bool = False
                     ) -> list[str]:
    """Publish a computed points table (`points_table_sql`, not temporary) as `scores`,
    and make `score_breakdown` the long-form view of its `p_<rule>` columns. One wide
    write instead of a row per person and rule: the points columns compress to almost
    nothing and the person ids are written once."""
    return [
        *(["DROP TABLE scores"] if scores_is_table else ["DROP VIEW IF EXISTS scores"]),
        f"ALTER TABLE {ident(computed)} RENAME TO scores",
        *(["DROP TABLE score_breakdown"] if breakdown_is_table else []),
        f"CREATE OR REPLACE VIEW score_breakdown AS\n{breakdown_select_sql(rules)}",
    ]


def grade_changes_sql(source: str) -> str:
    """New vs stored scores in one join: persons per (old grade, new grade), with whether
    they were / are scored at all (added and removed persons)."""
    return (f"SELECT o.grade AS old_grade, n.grade AS new_grade,\n"
            f"       o.person_id IS NOT NULL AS was_scored, n.person_id IS NOT NULL AS scored,\n"
            f"       count(*) AS persons\n"
            f"FROM {ident(source)} n FULL OUTER JOIN scores o ON o.person_id = n.person_id\n"
            f"GROUP BY o.grade, n.grade, o.person_id IS NOT NULL, n.person_id IS NOT NULL")


def infinite_points_sql(rules: ScoringRules, source: str) -> str | None:
    """Per rule (and for the score): how many persons its points are no finite number for
    (`finite_sql`: one would pass every grade's minimum), and the first such person. NULL,
    no points, is no such row."""
    if not rules.rules:
        return None
    columns = [(r.name, points_column(r)) for r in rules.rules] + [("", "score")]
    cols = ",\n       ".join(
        f"count(*) FILTER (WHERE NOT {finite_sql(c)}) AS {ident('n_' + name)}, "
        f"min(person_id) FILTER (WHERE NOT {finite_sql(c)}) AS {ident('e_' + name)}"
        for name, c in columns)
    return f"SELECT {cols}\nFROM {ident(source)}"


def rule_hits_sql(rules: ScoringRules, source: str) -> str | None:
    """Per rule: how many persons it gave points to, and their sum (None: no rules)."""
    if not rules.rules:
        return None
    cols = ",\n       ".join(
        f"count(*) FILTER (WHERE {points_column(r)} <> 0) AS {ident('n_' + r.name)}, "
        f"sum({points_column(r)}) AS {ident('s_' + r.name)}" for r in rules.rules)
    return f"SELECT {cols}\nFROM {ident(source)}"
