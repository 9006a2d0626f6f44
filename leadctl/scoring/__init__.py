"""Lead scoring: `rules/scoring.yaml` → per-person points, score and grade.

- `model`: the typed rules (ScoringRules, ScoreRule, Decay, Grade);
- `parse`: YAML → model with every problem located (and the `rules check` hook);
- `sql`: pure SQL builders (points per rule, grade, the stored layout);
- `fields`: the person_features columns expressions may use, read from a workspace;
- `stage`: the score stage (`run_scores`) and its `rules test` values;
- `explain`: how one person's stored score adds up (`leadctl explain`);
- `tables`: DDL of the tables the stage owns (scores, score_breakdown).
"""
