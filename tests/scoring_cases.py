"""Shared scoring test cases: a scoring.yaml with every kind of rule and a tiny
person_features whose points are worked out by hand in the tests."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

from leadctl.workspace import open_memory

AS_OF = dt.date(2026, 11, 1)

SCORING = """\
grades:
  A: 70
  B: 45
  C: 20
  D: 0
decay:
  age: days_since_last_login
  half_life_days: 10
  max_days: 60
rules:
  - name: high_value
    when: value_tier = 'high'
    points: 40
  - name: spend
    points: min(paid_amount_30d / 100, 30)
  - name: active
    when: login_days_30d >= 10
    points: 20
    decay: true
  - name: in_shanghai
    when: city = 'Shanghai'
    points: -5
"""

FEATURES = """
CREATE OR REPLACE TABLE person_features AS SELECT * FROM (VALUES
  ('p1', 'Shanghai', 'high', 5000.0, 12, 0),
  ('p2', 'Beijing', 'low', 550.0, 3, NULL),
  ('p3', NULL, NULL, 0.0, 20, 10),
  ('p4', 'Beijing', 'medium', 1234.0, 15, 70)
) AS t(person_id, city, value_tier, paid_amount_30d, login_days_30d, days_since_last_login)
"""


def rules_dir(tmp_path: Path, scoring: str = SCORING) -> Path:
    (tmp_path / "scoring.yaml").write_text(textwrap.dedent(scoring), encoding="utf-8")
    return tmp_path


def workspace():
    ws = open_memory()
    ws.execute(FEATURES)
    return ws


# tags.yaml with one metric tag, for cases whose rules refer to paid_amount_30d.
TAGS = """\
tags:
  - name: paid_amount_30d
    kind: metric
    event: order_paid
    agg: sum
    field: amount
    window: 30d
"""
