"""Scoring rules as typed data (what `parse` builds from `rules/scoring.yaml`).

A score is the sum of the points of every rule, each rounded to 2 decimals so the
stored breakdown adds up exactly to the stored score:

    points(rule) = round(coalesce(CASE WHEN <when> THEN <points> END, 0) * decay, 2)
    decay        = 0.5 ^ (age / half_life_days)   (1 when age is unknown or <= 0;
                                                   0 when age > max_days)

The grade is the first grade (listed highest first) whose `min` the score reaches; the
last grade also takes every lower score.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from leadctl.errors import Location
from leadctl.rules.located import LocatedText

SCORING_FILE = "scoring.yaml"
TOP_KEYS = ("grades", "decay", "rules")
RULE_KEYS = ("name", "description", "when", "points", "decay")
DECAY_KEYS = ("age", "half_life_days", "max_days")
GRADE_RE = re.compile(r"^[A-Za-z0-9_+\-]{1,16}$")


@dataclass(frozen=True)
class Decay:
    age: LocatedText  # expression: days since the behaviour (number)
    half_life_days: float
    max_days: float | None = None


@dataclass
class ScoreRule:
    name: str
    loc: Location | None
    description: str = ""
    when: LocatedText | None = None
    points: float | None = None  # fixed points, or
    points_expr: LocatedText | None = None  # points from an expression
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
