"""How a stored score adds up (`leadctl.scoring.explain`): the rules that gave points with
their definitions, the total, the grade thresholds; broken rules only hide definitions."""

from __future__ import annotations

from scoring_cases import AS_OF, rules_dir, workspace

from leadctl.scoring.explain import explain_score
from leadctl.scoring.parse import load_scoring_rules
from leadctl.scoring.stage import run_scores

GRADES = [{"grade": "A", "min": 70.0}, {"grade": "B", "min": 45.0},
          {"grade": "C", "min": 20.0}, {"grade": "D", "min": 0.0}]


def test_explain_lists_the_rules_that_gave_points(tmp_path):
    ws = workspace()
    folder = rules_dir(tmp_path)
    run_scores(ws, load_scoring_rules(folder), AS_OF, run_id=1)
    got = explain_score(ws, "p3", folder)
    assert (got["score"], got["grade"]) == (10.0, "D")
    # Rules that gave no points are not listed: the breakdown adds up to the score.
    assert [(b["rule"], b["points"]) for b in got["breakdown"]] == [("active", 10.0)]
    assert got["breakdown"][0]["when"] == "login_days_30d >= 10"
    path = tmp_path / "scoring.yaml"
    assert got == {
        "score": 10.0, "grade": "D", "as_of": AS_OF,
        "breakdown": [{"rule": "active", "points": 10.0, "at": f"{path}:16:5",
                       "description": None, "when": "login_days_30d >= 10",
                       "decay_half_life_days": 10.0}],
        "points_total": 10.0, "grades": GRADES}
    assert explain_score(ws, "nobody", folder) == {
        "available": False, "note": "not scored yet (run `leadctl score`)"}


def test_explain_shows_points_from_expressions_most_first(tmp_path):
    ws = workspace()
    folder = rules_dir(tmp_path)
    run_scores(ws, load_scoring_rules(folder), AS_OF, run_id=1)
    got = explain_score(ws, "p1", folder)
    assert [(b["rule"], b["points"]) for b in got["breakdown"]] == [
        ("high_value", 40.0), ("spend", 30.0), ("active", 20.0), ("in_shanghai", -5.0)]
    assert got["breakdown"][1]["points_expr"] == "min(paid_amount_30d / 100, 30)"
    assert got["points_total"] == got["score"] == 85.0


def test_broken_rules_leave_the_stored_score_with_a_note(tmp_path):
    ws = workspace()
    folder = rules_dir(tmp_path)
    run_scores(ws, load_scoring_rules(folder), AS_OF, run_id=1)
    (folder / "scoring.yaml").write_text("grades: [A]\n", encoding="utf-8")
    got = explain_score(ws, "p3", folder)
    assert got["breakdown"] == [{"rule": "active", "points": 10.0}]
    assert got["grades"] == []
    assert got["note"].startswith("rule definitions not shown: ")


def test_an_edited_scoring_file_is_said_beside_the_stored_score(tmp_path):
    ws = workspace()
    folder = rules_dir(tmp_path)
    run_scores(ws, load_scoring_rules(folder), AS_OF, run_id=1)
    path = folder / "scoring.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("A: 70", "A: 90"),
                    encoding="utf-8")
    got = explain_score(ws, "p1", folder)
    assert (got["score"], got["grade"], got["grades"][0]) == (
        85.0, "A", {"grade": "A", "min": 90.0})
    assert got["note"] == (
        "scoring.yaml has changed since this score was computed: the definitions shown are "
        "the file's now; run `leadctl score` (or `score --dry-run` to preview) to recompute")
    run_scores(ws, load_scoring_rules(folder), AS_OF, run_id=2)
    assert "note" not in explain_score(ws, "p1", folder)
