"""Scoring rules: validation with file:line:col, exact points/decay/grades, breakdown,
dry-run, and the `leadctl score` command."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import pytest

from leadctl.errors import RuleError
from leadctl.rules.scoring import (
    check_scoring_expressions,
    load_scoring_rules,
    points_table_sql,
)
from leadctl.stages.score import explain_score, person_features_fields, run_scores
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


def test_points_decay_grades_and_breakdown_add_up(tmp_path):
    ws = workspace()
    rules = load_scoring_rules(rules_dir(tmp_path))
    summary = run_scores(ws, rules, AS_OF, run_id=7)
    scores = ws.rows("SELECT person_id, score, grade, as_of, run_id FROM scores "
                     "ORDER BY person_id")
    assert [(r["person_id"], r["score"], r["grade"]) for r in scores] == [
        ("p1", 85.0, "A"),   # 40 + 30 (capped) + 20 (age 0: no decay) - 5
        ("p2", 5.5, "D"),    # 550 / 100
        ("p3", 10.0, "D"),   # 0 spend + 20 * 0.5^(10/10)
        ("p4", 12.34, "D"),  # 1234 / 100; login points 0: age 70 > max_days 60
    ]
    assert {(r["as_of"], r["run_id"]) for r in scores} == {(AS_OF, 7)}
    parts = ws.rows("SELECT person_id, rule, points FROM score_breakdown "
                    "ORDER BY person_id, rule")
    assert [(r["person_id"], r["rule"], r["points"]) for r in parts] == [
        ("p1", "active", 20.0), ("p1", "high_value", 40.0), ("p1", "in_shanghai", -5.0),
        ("p1", "spend", 30.0), ("p2", "spend", 5.5), ("p3", "active", 10.0),
        ("p4", "spend", 12.34)]
    assert summary["grades"] == [
        {"grade": "A", "persons": 1, "previous": 0}, {"grade": "B", "persons": 0, "previous": 0},
        {"grade": "C", "persons": 0, "previous": 0}, {"grade": "D", "persons": 3, "previous": 0}]
    assert summary["grade_changes"] == {"changed": 0, "added": 4, "removed": 0}
    assert summary["rules"][0] == {"rule": "high_value", "persons": 1, "points": 40.0}


def test_dry_run_reports_grade_changes_and_stores_nothing(tmp_path):
    ws = workspace()
    rules = load_scoring_rules(rules_dir(tmp_path))
    run_scores(ws, rules, AS_OF, run_id=1)
    ws.execute("UPDATE person_features SET value_tier = 'high' WHERE person_id IN ('p2', 'p4')")
    ws.execute("DELETE FROM person_features WHERE person_id = 'p3'")
    preview = run_scores(ws, rules, AS_OF, dry_run=True)
    assert preview["grade_changes"] == {"changed": 2, "added": 0, "removed": 1}
    assert preview["grade_moves"] == [{"from": "D", "to": "B", "persons": 2}]
    assert preview["run_id"] is None and preview["dry_run"] is True
    assert ws.scalar("SELECT count(*) FROM scores WHERE grade = 'D'") == 3  # unchanged
    assert ws.scalar("SELECT count(*) FROM score_breakdown") == 7


def test_explain_lists_every_rule_with_its_points(tmp_path):
    ws = workspace()
    rules = load_scoring_rules(rules_dir(tmp_path))
    run_scores(ws, rules, AS_OF, run_id=1)
    got = explain_score(ws, "p3", rules)
    assert (got["score"], got["grade"]) == (10.0, "D")
    assert [(b["rule"], b["points"]) for b in got["breakdown"]] == [
        ("active", 10.0), ("high_value", 0.0), ("spend", 0.0), ("in_shanghai", 0.0)]
    assert got["breakdown"][0]["when"] == "login_days_30d >= 10"
    assert explain_score(ws, "nobody")["scored"] is False


def test_structural_errors_have_file_line_col(tmp_path):
    bad = """\
    grades:
      A: 50
      B: 60
    rules:
      - name: x
        points: 10
      - name: x
        points: 1
      - name: Bad-Name
        points: 1
      - name: no_points
        when: true
      - name: decays
        points: 1
        decay: true
        colour: red
    """
    with pytest.raises(RuleError) as exc:
        load_scoring_rules(rules_dir(tmp_path, bad))
    path = tmp_path / "scoring.yaml"
    assert [f"{loc}: {msg}" for loc, msg in exc.value.problems] == [
        f"{path}:3:6: grade 'B': minimum 60 must be below the 50 of grade 'A' above it "
        "(list grades highest first)",
        f"{path}:7:5: score rule 'x' is defined twice (first at {path}:5:5)",
        f"{path}:9:11: score rule name 'Bad-Name' must be lower_snake_case (letters, digits, _)",
        f"{path}:11:5: score rule 'no_points': missing `points:` (a number, or an expression "
        "such as min(paid_amount_30d / 100, 30))",
        f"{path}:15:12: score rule 'decays': `decay: true` needs a top-level `decay:` (age, "
        "half_life_days)",
        f"{path}:16:5: score rule 'decays': unknown key 'colour' (allowed: name, description, "
        "when, points, decay)",
    ]


def test_expression_errors_point_at_the_character(tmp_path):
    rules = load_scoring_rules(rules_dir(tmp_path, """\
    grades: {A: 1, B: 0}
    rules:
      - name: typo
        when: login_dayz_30d >= 10
        points: 5
      - name: text_points
        points: city
    """))
    fields = {"login_days_30d": "number", "city": "string"}
    with pytest.raises(RuleError) as exc:
        check_scoring_expressions(rules, fields)
    path = tmp_path / "scoring.yaml"
    messages = [f"{loc}: {msg}" for loc, msg in exc.value.problems]
    assert len(messages) == 2
    assert messages[0].startswith(f"{path}:4:11: score rule 'typo' when: ")
    assert "login_dayz_30d" in messages[0]
    assert messages[1] == (f"{path}:7:13: score rule 'text_points' points: expression must be "
                           "a number, got string")


def test_fields_come_from_the_person_features_columns():
    ws = workspace()
    assert person_features_fields(ws) == {
        "city": "string", "value_tier": "string", "paid_amount_30d": "number",
        "login_days_30d": "number", "days_since_last_login": "number"}


def test_points_sql_is_one_pass_and_transpiles_to_spark(tmp_path):
    import sqlglot

    rules = load_scoring_rules(rules_dir(tmp_path))
    fields = {"city": "string", "value_tier": "string", "paid_amount_30d": "number",
              "login_days_30d": "number", "days_since_last_login": "number"}
    sql = points_table_sql(rules, fields, AS_OF, "pts")
    assert sql.count("FROM \"person_features\"") == 1 and "JOIN" not in sql
    assert "power(0.5, CAST((\"days_since_last_login\") AS DOUBLE) / 10)" in sql
    assert sqlglot.transpile(sql, read="duckdb", write="spark")


def test_missing_scoring_file_skips_the_stage(tmp_path):
    rules = load_scoring_rules(tmp_path)
    assert rules.present is False
    assert run_scores(workspace(), rules, AS_OF)["skipped"].startswith("no scoring.yaml")


# --------------------------------------------------------------------------- CLI

TAGS = """\
tags:
  - name: paid_amount_30d
    kind: metric
    event: order_paid
    agg: sum
    field: amount
    window: 30d
"""


def cli_workspace(tmp_path: Path, cli) -> None:
    from leadctl.workspace import open_writer

    (tmp_path / "tags.yaml").write_text(TAGS, encoding="utf-8")
    (tmp_path / "scoring.yaml").write_text("grades: {A: 10, B: 0}\nrules:\n"
                                           "  - {name: spend, points: paid_amount_30d / 100}\n",
                                           encoding="utf-8")
    with open_writer(cli.db, create=True) as ws:
        ws.execute("CREATE OR REPLACE TABLE person_features AS SELECT * FROM (VALUES "
                   "('p1', 2000.0), ('p2', 300.0)) AS t(person_id, paid_amount_30d)")


def test_cli_score_json_dry_run_then_store(tmp_path, cli):
    cli.rules = tmp_path
    cli_workspace(tmp_path, cli)
    preview = cli("score", "--as-of", "2026-11-01", "--dry-run", "--json")
    assert preview.exit_code == 0, preview.stderr
    assert preview.json()["grades"] == [{"grade": "A", "persons": 1, "previous": 0},
                                        {"grade": "B", "persons": 1, "previous": 0}]
    stored = cli("score", "--as-of", "2026-11-01", "--json")
    assert stored.exit_code == 0 and stored.json()["run_id"] == 1
    again = cli("score", "--as-of", "2026-11-01", "--dry-run", "--json").json()
    assert again["grades"][0] == {"grade": "A", "persons": 1, "previous": 1}
    assert again["grade_changes"] == {"changed": 0, "added": 0, "removed": 0}
    text = cli("score", "--as-of", "2026-11-01", "--dry-run")
    assert "0 persons would change grade, 0 new, 0 no longer scored" in text.stdout


def test_cli_score_bad_rule_exits_2_and_changes_nothing(tmp_path, cli):
    cli.rules = tmp_path
    cli_workspace(tmp_path, cli)
    (tmp_path / "scoring.yaml").write_text("grades: {A: 10, B: 0}\nrules:\n"
                                           "  - {name: spend, points: paid_amount_7d / 100}\n",
                                           encoding="utf-8")
    result = cli("score", "--as-of", "2026-11-01")
    assert result.exit_code == 2
    assert f"{tmp_path / 'scoring.yaml'}:3:27: score rule 'spend' points:" in result.stderr
    assert cli("runs", "--json").json() == []


def test_changed_rules_replace_the_breakdown(tmp_path):
    ws = workspace()
    run_scores(ws, load_scoring_rules(rules_dir(tmp_path)), AS_OF, run_id=1)
    other = tmp_path / "other"
    other.mkdir()
    rules = load_scoring_rules(rules_dir(other, """\
    grades: {hot: 10, cold: 0}
    rules:
      - {name: logins, points: login_days_30d}
    """))
    summary = run_scores(ws, rules, AS_OF, run_id=2)
    assert summary["grades"] == [{"grade": "hot", "persons": 3, "previous": 0},
                                 {"grade": "cold", "persons": 1, "previous": 0},
                                 {"grade": "A", "persons": 0, "previous": 1},
                                 {"grade": "D", "persons": 0, "previous": 3}]
    assert ws.rows("SELECT rule, count(*) AS n, sum(points) AS total FROM score_breakdown "
                   "GROUP BY rule") == [{"rule": "logins", "n": 4, "total": 50.0}]
    assert ws.rows("SELECT person_id, score, grade, run_id FROM scores WHERE person_id = 'p2'"
                   ) == [{"person_id": "p2", "score": 3.0, "grade": "cold", "run_id": 2}]
