"""Scoring rules (`rules/scoring.yaml`): typed model, validation with file:line:col, SQL.

Pure: YAML in, `ScoringRules` (or a RuleError listing every problem) out; rules + the
person_features fields + as-of in, SQL strings out.

A score is the sum of the points of every rule, each rounded to 2 decimals so the
stored breakdown adds up exactly to the stored score:

    points(rule) = round(coalesce(CASE WHEN <when> THEN <points> END, 0) * decay, 2)
    decay        = 0.5 ^ (age / half_life_days)   (1 when age is unknown or <= 0;
                                                   0 when age > max_days)

The grade is the first grade (listed highest first) whose `min` the score reaches; the
last grade also takes every lower score.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from leadctl.errors import Location, RuleError
from leadctl.sqlfn import round_sql

SCORING_FILE = "scoring.yaml"
TOP_KEYS = ("grades", "decay", "rules")
RULE_KEYS = ("name", "description", "when", "points", "decay")
DECAY_KEYS = ("age", "half_life_days", "max_days")
NAME_RE = re.compile(r"^[a-z_][a-z0-9_]*$")
GRADE_RE = re.compile(r"^[A-Za-z0-9_+\-]{1,16}$")

Problems = list[tuple[Location | None, str]]


# --------------------------------------------------------------------------- located text


@dataclass(frozen=True)
class RuleText:
    """An expression from a rule file, and how to find each of its characters there."""

    value: str
    loc: Location | None
    node: Any = None  # the YDict/YList holding it (for text_loc), if any
    key: Any = None

    def loc_at(self, offset: int) -> Location | None:
        getter = getattr(self.node, "text_loc", None)
        if getter is not None:
            try:
                return getter(self.key, offset)
            except Exception:  # a node without marks (built in memory): the value's start
                return self.loc
        return self.loc


class RuleDoc:
    """Collects problems and answers "where is this?" for loader nodes (YDict/YList)."""

    def __init__(self, path: Path):
        self.path = path
        self.problems: Problems = []

    def here(self) -> Location:
        return Location(str(self.path), 1, 1)

    def loc(self, node: Any) -> Location:
        return getattr(node, "loc", None) or self.here()

    def key_loc(self, mapping: Any, key: Any) -> Location:
        getter = getattr(mapping, "key_loc", None)
        return (getter(key) if getter else None) or self.loc(mapping)

    def value_loc(self, mapping: Any, key: Any) -> Location:
        getter = getattr(mapping, "value_loc", None)
        if getter is None or key not in mapping:
            return self.key_loc(mapping, key)
        return getter(key) or self.key_loc(mapping, key)

    def item_loc(self, seq: Any, index: int) -> Location:
        getter = getattr(seq, "item_loc", None)
        return (getter(index) if getter else None) or self.loc(seq)

    def text(self, mapping: Any, key: Any) -> RuleText:
        value = mapping[key]
        return RuleText(_expr_text(value), self.value_loc(mapping, key), mapping, key)

    def add(self, loc: Location | None, message: str) -> None:
        self.problems.append((loc, message))

    def unknown_keys(self, mapping: Mapping, allowed: tuple[str, ...], what: str) -> None:
        for key in mapping:
            if key not in allowed:
                self.add(self.key_loc(mapping, key),
                         f"{what}: unknown key '{key}' (allowed: {', '.join(allowed)})")

    def named_items(self, raw: Any, kind: str, allowed: tuple[str, ...], shape: str):
        """Yield (item, name, name_loc) for each mapping of `raw` with a valid, unique
        lower_snake_case `name:`; everything else is recorded as a problem."""
        seen: dict[str, Location] = {}
        for index, item in enumerate(raw):
            where = self.item_loc(raw, index)
            if not isinstance(item, Mapping):
                self.add(where, f"each {kind} must be a mapping with {shape}")
                continue
            name = item.get("name")
            if not isinstance(name, str) or not NAME_RE.match(name):
                self.add(self.value_loc(item, "name") if "name" in item else where,
                         f"{kind} needs a `name:` in lower_snake_case" if name is None
                         else f"{kind} name '{name}' must be lower_snake_case "
                              "(letters, digits, _)")
                continue
            self.unknown_keys(item, allowed, f"{kind} '{name}'")
            loc = self.key_loc(item, "name")
            if name in seen:
                self.add(loc, f"{kind} '{name}' is defined twice (first at {seen[name]})")
                continue
            seen[name] = loc
            yield item, name, loc

    def raise_if_problems(self) -> None:
        if self.problems:
            raise RuleError(sorted_problems(self.problems))


def _expr_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def sorted_problems(problems: Problems) -> Problems:
    unique = list(dict.fromkeys(problems))
    return sorted(unique, key=lambda p: (p[0].file, p[0].line, p[0].col) if p[0]
                  else ("", 0, 0))


def compile_located(text: RuleText, fields: Mapping[str, str], expect: str | None,
                    as_of: dt.date, what: str, column_sql: Callable[[str], str] | None = None,
                    problems: Problems | None = None):
    """compile_expr with errors turned into located problems (appended, or raised)."""
    from leadctl.rules.expr import ExprError, compile_expr

    try:
        return compile_expr(text.value, fields, expect=expect, as_of=as_of,
                            column_sql=column_sql)
    except ExprError as exc:
        offset = getattr(exc, "offset", 0) or 0
        problem = (text.loc_at(offset), f"{what}: {getattr(exc, 'message', None) or exc}")
        if problems is None:
            raise RuleError([problem]) from None
        problems.append(problem)
        return None


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.exists() else ""


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class Decay:
    age: RuleText  # expression: days since the behaviour (number)
    half_life_days: float
    max_days: float | None = None


@dataclass
class ScoreRule:
    name: str
    loc: Location | None
    description: str = ""
    when: RuleText | None = None
    points: float | None = None  # fixed points, or
    points_expr: RuleText | None = None  # points from an expression
    decay: Decay | None = None


@dataclass(frozen=True)
class Grade:
    name: str
    min: float
    loc: Location | None


@dataclass
class ScoringRules:
    path: Path
    rules: list[ScoreRule] = field(default_factory=list)
    grades: list[Grade] = field(default_factory=list)  # highest first
    rules_hash: str = ""
    present: bool = True  # False: no scoring.yaml (the score stage is skipped)

    @property
    def grade_names(self) -> list[str]:
        return [g.name for g in self.grades]

    def rule(self, name: str) -> ScoreRule | None:
        return next((r for r in self.rules if r.name == name), None)


# --------------------------------------------------------------------------- loading


def scoring_path(rules_dir: Path | str | None) -> Path:
    return Path(rules_dir or "rules") / SCORING_FILE


def load_scoring_rules(rules_dir: Path | str | None,
                       fields: Mapping[str, str] | None = None) -> ScoringRules:
    """Parse and validate `rules_dir/scoring.yaml`. With `fields` (name → type of the
    person_features columns) every expression is compiled too. A missing file gives
    empty rules with `present=False`."""
    path = scoring_path(rules_dir)
    if not path.exists():
        return ScoringRules(path=path, present=False)
    from leadctl.rules.load import load_yaml

    return parse_scoring_rules(load_yaml(path), path, fields)


def parse_scoring_rules(doc: Any, path: Path,
                        fields: Mapping[str, str] | None = None) -> ScoringRules:
    """Validate a loaded scoring.yaml; with `fields`, compile its expressions too. Every
    problem is collected and raised together as one RuleError."""
    d = RuleDoc(path)
    rules = ScoringRules(path=path, rules_hash=file_hash(path))
    if doc is None:
        doc = {}
    if not isinstance(doc, Mapping):
        raise RuleError([(d.loc(doc), "scoring.yaml must be a mapping with `grades:` and "
                          "`rules:`")])
    d.unknown_keys(doc, TOP_KEYS, "scoring.yaml")
    default_decay = _parse_decay(d, doc, "decay", "scoring.yaml", None) \
        if doc.get("decay") is not None else None
    rules.grades = _parse_grades(d, doc)
    raw_rules = doc.get("rules")
    if raw_rules is None:
        d.add(d.loc(doc), "scoring.yaml: missing `rules:` (a list of {name, when, points})")
        raw_rules = []
    elif not isinstance(raw_rules, list):
        d.add(d.value_loc(doc, "rules"), "`rules:` must be a list of {name, when, points}")
        raw_rules = []
    seen: dict[str, Location | None] = {}
    for index, raw in enumerate(raw_rules):
        rule = _parse_rule(d, raw, d.item_loc(raw_rules, index), default_decay)
        if rule is None:
            continue
        if rule.name in seen:
            d.add(rule.loc, f"score rule '{rule.name}' is defined twice (first at "
                  f"{seen[rule.name]})")
            continue
        seen[rule.name] = rule.loc
        rules.rules.append(rule)
    if fields is not None:
        check_scoring_expressions(rules, fields, problems=d.problems)
    d.raise_if_problems()
    return rules


def _parse_grades(d: RuleDoc, doc: Mapping) -> list[Grade]:
    raw = doc.get("grades")
    if raw is None:
        d.add(d.loc(doc), "scoring.yaml: missing `grades:` (grade → minimum score, highest "
              "first, e.g. A: 70)")
        return []
    if not isinstance(raw, Mapping) or not raw:
        d.add(d.value_loc(doc, "grades"), "`grades:` must map grade → minimum score, highest "
              "first (e.g. A: 70, B: 45, C: 20, D: 0)")
        return []
    grades: list[Grade] = []
    for name, minimum in raw.items():
        where = d.key_loc(raw, name)
        if not isinstance(name, str) or not GRADE_RE.match(name):
            d.add(where, f"grade name '{name}' must be a short word (letters, digits, _ + -)")
            continue
        if not is_number(minimum):
            d.add(d.value_loc(raw, name), f"grade '{name}': minimum score must be a number, "
                  f"not '{minimum}'")
            continue
        if grades and minimum >= grades[-1].min:
            d.add(d.value_loc(raw, name), f"grade '{name}': minimum {minimum} must be below "
                  f"the {grades[-1].min:g} of grade '{grades[-1].name}' above it (list grades "
                  "highest first)")
            continue
        grades.append(Grade(name, float(minimum), where))
    return grades


def _parse_rule(d: RuleDoc, raw: Any, where: Location, default_decay: Decay | None
                ) -> ScoreRule | None:
    if not isinstance(raw, Mapping):
        d.add(where, "each score rule must be a mapping with `name:` and `points:`")
        return None
    name = raw.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        d.add(d.value_loc(raw, "name") if "name" in raw else where,
              "score rule needs a `name:` in lower_snake_case" if name is None
              else f"score rule name '{name}' must be lower_snake_case (letters, digits, _)")
        return None
    what = f"score rule '{name}'"
    d.unknown_keys(raw, RULE_KEYS, what)
    rule = ScoreRule(name=name, loc=d.key_loc(raw, "name"),
                     description=str(raw.get("description") or ""))
    if raw.get("when") is not None:
        rule.when = d.text(raw, "when")
    points = raw.get("points")
    if points is None:
        d.add(rule.loc, f"{what}: missing `points:` (a number, or an expression such as "
              "min(paid_amount_30d / 100, 30))")
    elif is_number(points):
        rule.points = float(points)
    elif isinstance(points, str) and points.strip():
        rule.points_expr = d.text(raw, "points")
    else:
        d.add(d.value_loc(raw, "points"), f"{what}: `points:` must be a number or an "
              "expression")
    decay = raw.get("decay")
    if decay is True:
        if default_decay is None:
            d.add(d.value_loc(raw, "decay"), f"{what}: `decay: true` needs a top-level "
                  "`decay:` (age, half_life_days)")
        rule.decay = default_decay
    elif decay is not None and decay is not False:
        rule.decay = _parse_decay(d, raw, "decay", what, default_decay)
    return rule


def _parse_decay(d: RuleDoc, parent: Mapping, key: str, what: str,
                 default: Decay | None) -> Decay | None:
    raw = parent[key]
    if not isinstance(raw, Mapping):
        d.add(d.value_loc(parent, key), f"{what}: `decay:` must be a mapping {{age, "
              "half_life_days, max_days}} (or `true` for the top-level decay)")
        return None
    d.unknown_keys(raw, DECAY_KEYS, f"{what} decay")
    age = d.text(raw, "age") if raw.get("age") is not None else (default.age if default
                                                                   else None)
    if age is None:
        d.add(d.loc(raw), f"{what}: decay needs `age:` (an expression giving the behaviour's "
              "age in days, e.g. days_since_last_login)")
    half_life = raw.get("half_life_days", default.half_life_days if default else None)
    if not is_number(half_life) or half_life <= 0:
        d.add(d.value_loc(raw, "half_life_days") if "half_life_days" in raw else d.loc(raw),
              f"{what}: decay needs `half_life_days:`, a number of days above 0")
        half_life = None
    max_days = raw.get("max_days", default.max_days if default else None)
    if max_days is not None and (not is_number(max_days) or max_days < 0):
        d.add(d.value_loc(raw, "max_days"), f"{what}: decay `max_days:` must be a number of "
              "days (0 or more)")
        max_days = None
    if age is None or half_life is None:
        return None
    return Decay(age, float(half_life), None if max_days is None else float(max_days))


def check_scoring_expressions(rules: ScoringRules, fields: Mapping[str, str],
                              as_of: dt.date | None = None,
                              problems: Problems | None = None) -> None:
    """Compile every expression against `fields`; raise RuleError with every problem, or
    append them to `problems` when given."""
    collect = problems is not None
    problems = problems if problems is not None else []
    probe = as_of or dt.date(2000, 1, 1)
    for rule in rules.rules:
        for text, expect, what in _expressions(rule):
            compile_located(text, fields, expect, probe, what, problems=problems)
    if problems and not collect:
        raise RuleError(sorted_problems(problems))


def _expressions(rule: ScoreRule) -> list[tuple[RuleText, str, str]]:
    what = f"score rule '{rule.name}'"
    out = []
    if rule.when is not None:
        out.append((rule.when, "boolean", f"{what} when"))
    if rule.points_expr is not None:
        out.append((rule.points_expr, "number", f"{what} points"))
    if rule.decay is not None:
        out.append((rule.decay.age, "number", f"{what} decay age"))
    return out


# --------------------------------------------------------------------------- SQL builders


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def number(value: float) -> str:
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def points_column(rule: ScoreRule) -> str:
    """Column name of a rule's points in the per-person points table."""
    return ident("p_" + rule.name)


def rule_points_sql(rule: ScoreRule, fields: Mapping[str, str], as_of: dt.date,
                    column_sql: Callable[[str], str] | None = None) -> str:
    """Points one rule gives one person (a DOUBLE, never NULL, rounded to 2 decimals)."""

    def compiled(text: RuleText, expect: str, what: str) -> str:
        return compile_located(text, fields, expect, as_of, f"score rule '{rule.name}' {what}",
                               column_sql).sql

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
            f"DATE '{as_of.isoformat()}' AS as_of, {run} AS run_id{points}\nFROM (\n"
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


def rule_hits_sql(rules: ScoringRules, source: str) -> str | None:
    if not rules.rules:
        return None
    cols = ",\n       ".join(
        f"count(*) FILTER (WHERE {points_column(r)} <> 0) AS {ident('n_' + r.name)}, "
        f"sum({points_column(r)}) AS {ident('s_' + r.name)}" for r in rules.rules)
    return f"SELECT {cols}\nFROM {ident(source)}"


# --------------------------------------------------------------------------- rules check


def check_scoring(ctx) -> Problems:
    """`rules check` checker: scoring.yaml parses, and its expressions compile against the
    fields of person_features (attributes + tags of tags.yaml)."""
    path = scoring_path(ctx.rules_dir)
    if not path.exists():
        ctx.warnings.append(f"{path}: not found (the score stage is skipped)")
        return []
    ctx.files.append(str(path))
    ctx.loaded["scoring"] = load_scoring_rules(ctx.rules_dir, ctx.fields())
    return []
