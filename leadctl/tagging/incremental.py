"""Keeping `event_rollups` and the per-person event tag columns up to date, night by night
(runs the builders of `rollup.py` on a DuckDB workspace).

State, all in the workspace (rebuilt from `events` whenever it does not fit):
  - `event_rollups`: daily rollups per subject (see rollup.py);
  - `tag_rollup_files`: the events files folded in, with their number of events — a
    file whose count changed (or vanished) means the rollups are rebuilt from scratch;
  - `tag_event_features`: per person, one column per event tag (stored form);
  - `tag_subject_persons`: subject → person as of the last tag run;
  - `tag_rollup_state`: the rollup and event-feature definitions (hashes), the as-of and
    the run id of the tag run that left this state.

A night: fold the events of files not folded yet; then recompute the event tag columns
of the affected persons only — persons with a subject whose membership changed, persons
with newly folded events before the as-of (late events included), and persons with
events on days that enter or leave a window as the as-of moves (`moved_days_sql`) —
and keep every other person's row. Anything else (first run, other rules, an as-of
earlier than the stored one, events removed or changed, state left by another run, a
Spark run's results loaded since) recomputes every person from the rollups: the result
is the same, only slower.
"""

from __future__ import annotations

import datetime as dt

from leadctl.sqltext import date_literal, ident, literal
from leadctl.tagging.model import TagRules
from leadctl.tagging.rollup import (
    ROLLUPS,
    event_features_hash,
    event_features_sql,
    fold_select_sql,
    moved_days_sql,
    person_rollups_sql,
    raw_only_tags,
    rollup_def,
    rollup_hash,
)
from leadctl.workspace import Workspace

FEATURES = "tag_event_features"
STATE = "tag_rollup_state"
FILES = "tag_rollup_files"
SUBJECTS = "tag_subject_persons"
AFFECTED = "tag_affected"
FOLD = "tag_fold"
ROWS = "tag_person_rollups"

# A Spark run's results loaded since (`load-results` replaces person_features and tags).
LOADED_SINCE_SQL = ("SELECT count(*) > 0 FROM runs WHERE command = 'load-results' "
                    "AND run_id > ?")

# --------------------------------------------------------------------------- builders


def file_counts_sql() -> str:
    return ("SELECT coalesce(file_id, -1) AS file_id, count(*) AS events FROM events "
            "GROUP BY coalesce(file_id, -1) ORDER BY 1")


def files_in_sql(file_ids: list[int]) -> str:
    return f"coalesce(e.file_id, -1) IN ({', '.join(str(int(f)) for f in file_ids)})"


def store_files_sql(counts: list[tuple[int, int]], replace: bool) -> list[str]:
    out = [f"CREATE OR REPLACE TABLE {FILES} (file_id INTEGER, events BIGINT)"] if replace \
        else []
    if counts:
        out.append(f"INSERT INTO {FILES} VALUES "
                   + ", ".join(f"({int(f)}, {int(n)})" for f, n in counts))
    return out


def affected_sql(rules: TagRules, old: dt.date, new: dt.date, folded: bool) -> str:
    """Persons whose event tags may differ from the stored ones (see the module doc)."""
    moved = moved_days_sql(rules, old, new)
    subjects = [f"SELECT DISTINCT r.subject FROM {ROLLUPS} r WHERE {moved}"]
    if folded:
        subjects.append(f"SELECT DISTINCT r.subject FROM {FOLD} r "
                        f"WHERE r.day < {date_literal(new)}")
    changed = (f"subject_persons n FULL OUTER JOIN {SUBJECTS} o ON o.subject = n.subject "
               "WHERE n.person_id IS DISTINCT FROM o.person_id")
    return (f"CREATE OR REPLACE TEMP TABLE {AFFECTED} AS\n"
            "SELECT DISTINCT person_id FROM (\n"
            "  SELECT sp.person_id FROM (" + "\n    UNION ".join(subjects) + ") s\n"
            "  JOIN subject_persons sp ON sp.subject = s.subject\n"
            f"  UNION ALL SELECT n.person_id FROM {changed}\n"
            f"  UNION ALL SELECT o.person_id FROM {changed}\n"
            ") WHERE person_id IS NOT NULL")


def replace_affected_sql(rules: TagRules, as_of: dt.date) -> list[str]:
    """The affected persons' rollup rows once (every pass reads them), their event tag
    columns replaced; rows of persons gone (merged away) removed."""
    return [f"CREATE OR REPLACE TEMP TABLE {ROWS} AS\n{person_rollups_sql(as_of, AFFECTED)}",
            f"DELETE FROM {FEATURES} WHERE person_id IN (SELECT person_id FROM {AFFECTED}) "
            "OR NOT EXISTS (SELECT 1 FROM persons p "
            f"WHERE p.person_id = {FEATURES}.person_id)",
            f"INSERT INTO {FEATURES}\n{event_features_sql(rules, as_of, rows=ROWS)}",
            f"DROP TABLE {ROWS}"]


def all_persons_sql(rules: TagRules, as_of: dt.date) -> list[str]:
    """Every person's event tag columns (rollup rows joined to persons once)."""
    return [f"CREATE OR REPLACE TEMP TABLE {ROWS} AS\n{person_rollups_sql(as_of)}",
            f"CREATE OR REPLACE TABLE {FEATURES} AS\n"
            f"{event_features_sql(rules, as_of, rows=ROWS)}",
            f"DROP TABLE {ROWS}"]


def state_sql(rules: TagRules, as_of: dt.date, run_id: int) -> list[str]:
    return [f"CREATE OR REPLACE TABLE {STATE} AS SELECT {literal(rollup_hash(rules))} AS "
            f"rollup_hash, {literal(event_features_hash(rules))} AS features_hash, "
            f"{date_literal(as_of)} AS as_of, CAST({int(run_id)} AS INTEGER) AS run_id",
            f"CREATE OR REPLACE TABLE {SUBJECTS} AS "
            "SELECT subject, person_id FROM subject_persons"]


# --------------------------------------------------------------------------- running


def uses_rollups(ws, rules: TagRules) -> bool:
    """Rollups on the DuckDB workspace, unless a tag's filter needs raw events (the Spark
    engine computes tags from raw events: the same values)."""
    return isinstance(ws, Workspace) and not raw_only_tags(rules)


def _state(ws: Workspace) -> dict | None:
    if not all(ws.table_exists(t) for t in (STATE, FILES, ROLLUPS, FEATURES, SUBJECTS)):
        return None
    rows = ws.rows(f"SELECT * FROM {STATE}")
    return rows[0] if rows else None


def refresh_event_features(ws: Workspace, rules: TagRules, as_of: dt.date, run_id: int,
                           previous_run_id: int | None, *, incremental: bool = True) -> dict:
    """Fold new events into the rollups and bring `tag_event_features` to `as_of`.
    Returns what was done: mode (`incremental` or `full`), folded files, affected persons."""
    state = _state(ws) if incremental else None
    current = [(r["file_id"], r["events"]) for r in ws.rows(file_counts_sql())]
    stored = dict(((r["file_id"], r["events"]) for r in ws.rows(f"SELECT * FROM {FILES}"))
                  if state else ())
    now = dict(current)
    rollups_ok = state is not None and state["rollup_hash"] == rollup_hash(rules) and all(
        now.get(f) == n for f, n in stored.items())
    new_files = [(f, n) for f, n in current if f not in stored] if rollups_ok else current
    defn = rollup_def(rules)
    ws.execute(f"DROP TABLE IF EXISTS {FOLD}")
    if not rollups_ok:
        ws.execute(f"CREATE OR REPLACE TABLE {ROLLUPS} AS\n{fold_select_sql(rules, defn)}")
        ws.script(store_files_sql(current, replace=True))
    elif new_files:
        where = files_in_sql([f for f, _ in new_files])
        ws.execute(f"CREATE TEMP TABLE {FOLD} AS\n{fold_select_sql(rules, defn, where)}")
        ws.execute(f"INSERT INTO {ROLLUPS} SELECT * FROM {FOLD}")
        ws.script(store_files_sql(new_files, replace=False))
    features_ok = (rollups_ok and state["features_hash"] == event_features_hash(rules)
                   and state["as_of"] <= as_of and state["run_id"] == previous_run_id
                   and not ws.scalar(LOADED_SINCE_SQL, [state["run_id"]]))
    info = {"mode": "incremental" if features_ok else "full", "folded_files": len(new_files)}
    if features_ok:
        ws.execute(affected_sql(rules, state["as_of"], as_of, bool(new_files)))
        info["affected_persons"] = ws.scalar(f"SELECT count(*) FROM {AFFECTED}")
        ws.script(replace_affected_sql(rules, as_of))
        ws.execute(f"DROP TABLE IF EXISTS {ident(AFFECTED)}")
    else:
        ws.script(all_persons_sql(rules, as_of))
    ws.execute(f"DROP TABLE IF EXISTS {FOLD}")
    ws.script(state_sql(rules, as_of, run_id))
    return info
