"""The score stage: exact points/decay/grades, breakdown, dry-run, the fields it reads,
its one-pass SQL, and the `leadctl score` command."""

from __future__ import annotations

from pathlib import Path

from scoring_cases import AS_OF, TAGS, rules_dir, workspace

from leadctl.scoring.parse import load_scoring_rules
from leadctl.scoring.sql import points_table_sql
from leadctl.scoring.stage import run_scores
from leadctl.spark.translate import translate
from leadctl.tagging.fields import person_features_fields
from leadctl.workspace import open_writer


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


def test_a_division_by_zero_gives_no_points_not_the_top_grade(tmp_path):
    # p1 logged in on 12 days: 5000 / 0 (infinity in DuckDB, graded A) is empty, so it
    # counts 0 like any empty value
    scoring = """\
        grades: {A: 70, B: 45, C: 20, D: 0}
        rules:
          - name: per_login_day
            points: paid_amount_30d / (login_days_30d - 12) + 1
        """
    ws = workspace()
    run_scores(ws, load_scoring_rules(rules_dir(tmp_path, scoring)), AS_OF, run_id=1)
    assert ws.rows("SELECT person_id, score, grade FROM scores ORDER BY person_id") == [
        {"person_id": "p1", "score": 0.0, "grade": "D"},
        {"person_id": "p2", "score": -60.11, "grade": "D"},  # 550 / -9 + 1
        {"person_id": "p3", "score": 1.0, "grade": "D"},
        {"person_id": "p4", "score": 412.33, "grade": "A"}]  # 1234 / 3 + 1


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


def test_fields_come_from_the_person_features_columns():
    ws = workspace()
    assert person_features_fields(ws) == {
        "city": "string", "value_tier": "string", "paid_amount_30d": "number",
        "login_days_30d": "number", "days_since_last_login": "number"}


def test_points_sql_is_one_pass_and_transpiles_to_spark(tmp_path):
    rules = load_scoring_rules(rules_dir(tmp_path))
    fields = {"city": "string", "value_tier": "string", "paid_amount_30d": "number",
              "login_days_30d": "number", "days_since_last_login": "number"}
    sql = points_table_sql(rules, fields, AS_OF, "pts")
    assert sql.count("FROM \"person_features\"") == 1 and "JOIN" not in sql
    assert "power(0.5, CAST((\"days_since_last_login\") AS DOUBLE) / 10)" in sql
    spark = translate(sql)
    assert (spark.kind, spark.name, spark.ctes) == ("materialize", "pts", ())
    assert spark.sql.count("FROM `person_features`") == 1
    assert "ELSE POWER(0.5, CAST((`days_since_last_login`) AS DOUBLE) / 10) END" in spark.sql
    assert "CAST('2026-11-01' AS DATE) AS as_of, CAST(NULL AS INT) AS run_id" in spark.sql


def test_missing_scoring_file_skips_the_stage(tmp_path):
    rules = load_scoring_rules(tmp_path)
    assert rules.present is False
    assert run_scores(workspace(), rules, AS_OF)["skipped"].startswith("no scoring.yaml")


# --------------------------------------------------------------------------- CLI



def cli_workspace(tmp_path: Path, cli) -> None:
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


def test_score_and_route_before_any_tag_run_say_to_run_tag_not_that_rules_are_wrong(cli):
    with open_writer(cli.db, create=True):
        pass
    scoring_reads = ("paid_amount_30d, value_tier, login_days_30d, days_since_last_login, "
                     "page_views_30d and 3 more")
    for command, behind in ((("score",), scoring_reads), (("score", "--dry-run"), scoring_reads),
                            (("route", "--dry-run"), "value_tier")):
        result = cli(*command, "--as-of", "2026-11-01")
        assert (result.exit_code, result.stderr) == (2, (
            f"error: tags.yaml defines tags no tag run has computed yet ({behind}): run "
            "`leadctl tag` first (or the nightly `leadctl run`)\n")), command
    assert cli("tag", "--as-of", "2026-11-01").exit_code == 0
    assert cli("score", "--as-of", "2026-11-01").exit_code == 0


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
