"""`rules/scoring.yaml` → `ScoringRules`, or one RuleError listing every problem with
its file:line:col. With the person_features fields, every expression is compiled too,
so a typo points at its character.

Also the `rules check` hook (`check`), which compiles against the fields of the tag
rules that parsed before it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from leadctl.errors import Location, RuleError
from leadctl.rules.bounds import (
    MAX_DAYS,
    MAX_POINTS,
    is_number,
    key_text,
    number_in,
    read_as,
    written,
)
from leadctl.rules.load import rule_path
from leadctl.rules.located import (
    NAME_RE,
    LocatedText,
    Problems,
    RuleDoc,
    compile_located,
    sorted_problems,
)
from leadctl.scoring.model import (
    DECAY_KEYS,
    GRADE_RE,
    RULE_KEYS,
    SCORING_FILE,
    TOP_KEYS,
    Decay,
    Grade,
    ScoreRule,
    ScoringRules,
)


def load_scoring_rules(rules_dir: Path | str | None,
                       fields: Mapping[str, str] | None = None) -> ScoringRules:
    """Parse and validate `rules_dir/scoring.yaml`; with `fields` (person_features name →
    type) compile its expressions too. Every problem is raised together as one RuleError.
    Without the file: empty rules with `present=False` (the score stage is skipped)."""
    path = rule_path(rules_dir, SCORING_FILE)
    if not path.exists():
        return ScoringRules(path=path, present=False)
    d, doc = RuleDoc.read(path, "`grades:` and `rules:`", TOP_KEYS)
    rules = ScoringRules(path=path, rules_hash=d.file_hash())
    default_decay = _parse_decay(d, doc, "decay", "scoring.yaml", None) \
        if doc.get("decay") is not None else None
    rules.grades = _parse_grades(d, doc)
    raw_rules = d.list_at(doc, "rules", "scoring.yaml: missing `rules:` (a list of {name, "
                          "when, points})", "`rules:` must be a list of {name, when, points}")
    # Not RuleDoc.named_items: a rule defined twice is still parsed, so the problems
    # inside it are reported in the same run as the duplicate.
    seen: dict[str, Location | None] = {}
    twice: list[ScoreRule] = []
    for index, raw in enumerate(raw_rules):
        rule = _parse_rule(d, raw, d.item_loc(raw_rules, index), default_decay,
                           doc.get("decay") is not None)
        if rule is None:
            continue
        if rule.name in seen:
            d.add(rule.loc, f"score rule '{rule.name}' is defined twice (first at "
                  f"{seen[rule.name]})")
            twice.append(rule)
            continue
        seen[rule.name] = rule.loc
        rules.rules.append(rule)
    if fields is not None:
        check_scoring_expressions(rules, fields, problems=d.problems, duplicates=twice)
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
        if not isinstance(name, str):  # `5: 0`, `yes: 0`: YAML reads the key as no text
            text = key_text(raw, name)
            d.add(where, f"grade name {text} is read as {read_as(name)}, not a name: quote "
                  f"it ('{text}')")
            continue
        if not GRADE_RE.match(name):
            d.add(where, f"grade name '{name}' must be a short word (letters, digits, _ + -)")
            continue
        if not is_number(minimum):
            d.add(d.value_loc(raw, name), f"grade '{name}': minimum score must be a number, "
                  f"not '{minimum}'")
            continue
        if number_in(minimum, -MAX_POINTS, MAX_POINTS) is None:
            d.add(d.value_loc(raw, name), f"grade '{name}': minimum score must be a finite "
                  f"number from {-MAX_POINTS} to {MAX_POINTS}, not {written(raw, name)}")
            continue
        if grades and minimum >= grades[-1].min:
            d.add(d.value_loc(raw, name), f"grade '{name}': minimum {minimum} must be below "
                  f"the {grades[-1].min:g} of grade '{grades[-1].name}' above it (list grades "
                  "highest first)")
            continue
        grades.append(Grade(name, float(minimum), where))
    return grades


def _parse_rule(d: RuleDoc, raw: Any, where: Location, default_decay: Decay | None,
                declared_decay: bool) -> ScoreRule | None:
    """One rule; `declared_decay`: the file has a top-level decay (broken when
    `default_decay` is None: `decay: true` then says nothing more)."""
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
        if d.absent(raw, "points"):  # else its mistyped key is the one problem
            d.add(rule.loc, f"{what}: missing `points:` (a number, or an expression such "
                  "as min(paid_amount_30d / 100, 30))")
    elif is_number(points):
        if number_in(points, -MAX_POINTS, MAX_POINTS) is None:
            d.add(d.value_loc(raw, "points"), f"{what}: `points:` must be a finite number "
                  f"from {-MAX_POINTS} to {MAX_POINTS} (or an expression), not "
                  f"{written(raw, 'points')}")
        else:
            rule.points = float(points)
    elif isinstance(points, str) and points.strip():
        rule.points_expr = d.text(raw, "points")
    else:
        d.add(d.value_loc(raw, "points"), f"{what}: `points:` must be a number or an "
              "expression")
    decay = raw.get("decay")
    if decay is True:
        if default_decay is None and not declared_decay:
            d.add(d.value_loc(raw, "decay"), f"{what}: `decay: true` needs a top-level "
                  "`decay:` (age, half_life_days)")
        rule.decay = default_decay
    elif decay is not None and decay is not False:
        rule.decay = _parse_decay(d, raw, "decay", what, default_decay,
                                  inherits_broken=default_decay is None and declared_decay)
    return rule


def _parse_decay(d: RuleDoc, parent: Mapping, key: str, what: str,
                 default: Decay | None, inherits_broken: bool = False) -> Decay | None:
    """`inherits_broken`: the top-level decay a key left out here would come from has a
    problem of its own (said there, not again here)."""
    raw = parent[key]
    if not isinstance(raw, Mapping):
        d.add(d.value_loc(parent, key), f"{what}: `decay:` must be a mapping {{age, "
              "half_life_days, max_days} (or `true` for the top-level decay)")
        return None
    d.unknown_keys(raw, DECAY_KEYS, f"{what} decay")
    age = d.text(raw, "age") if raw.get("age") is not None else (default.age if default
                                                                   else None)
    if age is None and not d.mistyped(raw, "age") and not inherits_broken:
        d.add(d.loc(raw), f"{what}: decay needs `age:` (an expression giving the behaviour's "
              "age in days, e.g. days_since_last_login)")
    half_life = raw.get("half_life_days", default.half_life_days if default else None)
    if half_life is None and (d.mistyped(raw, "half_life_days") or inherits_broken):
        pass  # its unknown key, or the top-level decay's, is the one problem
    elif not is_number(half_life) or half_life <= 0:
        d.add(d.value_loc(raw, "half_life_days") if "half_life_days" in raw else d.loc(raw),
              f"{what}: decay needs `half_life_days:`, a number of days from 1 to {MAX_DAYS}")
        half_life = None
    elif number_in(half_life, 1, MAX_DAYS) is None:  # under a day (0.5 for 5?), NaN, too long
        # (an inherited value was checked with the top-level decay: this one is written here)
        d.add(d.value_loc(raw, "half_life_days"), f"{what}: decay `half_life_days:` must be "
              f"a number of days from 1 to {MAX_DAYS}, not {written(raw, 'half_life_days')}")
        half_life = None
    max_days = raw.get("max_days", default.max_days if default else None)
    if max_days is not None and (not is_number(max_days) or max_days < 0):
        d.add(d.value_loc(raw, "max_days"), f"{what}: decay `max_days:` must be a number of "
              "days (0 or more)")
        max_days = None
    elif max_days is not None and number_in(max_days, 0, MAX_DAYS) is None:
        d.add(d.value_loc(raw, "max_days"), f"{what}: decay `max_days:` must be a number of "
              f"days from 0 to {MAX_DAYS}, not {written(raw, 'max_days')}")
        max_days = None
    if age is None or half_life is None:
        return None
    return Decay(age, float(half_life), None if max_days is None else float(max_days))


def check_scoring_expressions(rules: ScoringRules, fields: Mapping[str, str],
                              as_of: dt.date | None = None,
                              problems: Problems | None = None,
                              duplicates: Sequence[ScoreRule] = ()) -> None:
    """Compile every expression against `fields`, those of the `duplicates` (rules defined
    twice, not scored) too; raise RuleError with every problem, or append them to
    `problems` when given."""
    collect = problems is not None
    problems = problems if problems is not None else []
    probe = as_of or dt.date(2000, 1, 1)
    for rule in (*rules.rules, *duplicates):
        for text, expect, what in rule_expressions(rule):
            compile_located(text, fields, expect, probe, what, problems=problems)
    if problems and not collect:
        raise RuleError(sorted_problems(problems))


def rule_expressions(rule: ScoreRule) -> list[tuple[LocatedText, str, str]]:
    """Each expression of a rule: (text, expected type, what it is for messages)."""
    what = f"score rule '{rule.name}'"
    out = []
    if rule.when is not None:
        out.append((rule.when, "boolean", f"{what} when"))
    if rule.points_expr is not None:
        out.append((rule.points_expr, "number", f"{what} points"))
    if rule.decay is not None:
        out.append((rule.decay.age, "number", f"{what} decay age"))
    return out
