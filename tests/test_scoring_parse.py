"""Scoring rules validation: structure and expressions, each problem with file:line:col."""

from __future__ import annotations

import pytest
from scoring_cases import rules_dir

from leadctl.errors import RuleError
from leadctl.scoring.parse import check_scoring_expressions, load_scoring_rules


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
      - name: decays_once
        points: 1
        decay: 1
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
        f"{path}:19:12: score rule 'decays_once': `decay:` must be a mapping {{age, "
        "half_life_days, max_days} (or `true` for the top-level decay)",
    ]


def test_a_broken_top_level_decay_is_one_problem_not_one_more_per_inheriting_rule(tmp_path):
    bad = """\
    grades: {A: 1, B: 0}
    decay: {age: days_since_last_login, half_life_days: 0.5}
    rules:
      - name: own_age
        points: 1
        decay: {age: days_since_last_payment}
    """
    with pytest.raises(RuleError) as exc:
        load_scoring_rules(rules_dir(tmp_path, bad))
    assert [f"{loc}: {msg}" for loc, msg in exc.value.problems] == [
        f"{tmp_path / 'scoring.yaml'}:2:53: scoring.yaml: decay `half_life_days:` must be a "
        "number of days from 1 to 36500, not 0.5"]


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
    assert messages == [
        f"{path}:4:11: score rule 'typo' when: unknown field 'login_dayz_30d' (did you mean "
        "'login_days_30d'?) (known: city, login_days_30d)",
        f"{path}:7:13: score rule 'text_points' points: expression must be a number, got string"]




def test_a_rule_defined_twice_still_has_its_expressions_checked(tmp_path):
    bad = """\
    grades: {A: 1, D: 0}
    rules:
      - {name: a, points: 1}
      - {name: a, points: 2, when: nosuch > 1}
    """
    with pytest.raises(RuleError) as exc:
        load_scoring_rules(rules_dir(tmp_path, bad), fields={"paid_orders_7d": "number"})
    assert [msg for _, msg in exc.value.problems] == [
        f"score rule 'a' is defined twice (first at {tmp_path / 'scoring.yaml'}:3:6)",
        "score rule 'a' when: unknown field 'nosuch' (known: paid_orders_7d)",
    ]


@pytest.mark.parametrize(("key", "read"), [
    ("5", "a number"), ("0x1F", "a number"), ("1.50", "a number"), ("yes", "true/false"),
    ("null", "null"), ("2026-11-01", "a date")])
def test_a_grade_name_yaml_reads_as_no_text_is_told_to_be_quoted_as_written(
        tmp_path, key, read):
    with pytest.raises(RuleError) as exc:
        load_scoring_rules(rules_dir(tmp_path, f"grades: {{A: 10, {key}: 0}}\nrules: []\n"))
    assert [f"{loc}: {msg}" for loc, msg in exc.value.problems] == [
        f"{tmp_path / 'scoring.yaml'}:1:17: grade name {key} is read as {read}, not a name: "
        f"quote it ('{key}')"]
