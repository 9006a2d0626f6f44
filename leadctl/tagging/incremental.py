"""Incremental tag runs: recompute only the persons whose tags can have changed.

A tag computed from events changes for a person only when
  - events arrived for the person (files ingested since the last tag run),
  - an event entered a window at the day boundary ([previous as-of, as-of): every pass
    reads `ts < as_of`) or slid out of one ([previous − N days, as-of − N days) for a
    window of N days),
  - the person's subjects changed (identity merged, split or re-mapped them: the stored
    copy `tag_subject_persons` against `subject_persons`), or the person is new.
Every other person keeps the stored values, carried to the new as-of by their kind
(`carried_sql`: days-since values grow by the days passed, a current streak ends).
Derived tags (tiers, expr, rfm: averages over everyone) are recomputed for everyone, which
is cheap: column expressions over person_features.

The result equals a full run row for row (tests/test_tag_incremental.py). A full run is
used when there is nothing to carry from: the first run, other tag rules or code (the
state key is a hash of the compiled SQL), an earlier as-of than the stored one, or an
event filter that reads the as-of date.

Pure builders; tagging/stage.py runs them.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from leadctl.sqltext import literal, ts_literal

META_KEY = "tag_state"
SUBJECTS_SEEN = "tag_subject_persons"  # subject_persons as the last stored tag run saw it
AFFECTED = "tag_affected"  # (person_id) whose tags are recomputed
AFFECTED_SUBJECTS = "tag_affected_subjects"  # (subject) of those persons
MOVED = "tag_moved"  # (subject, new_id, old_id): subjects whose person changed


@dataclass(frozen=True)
class Increment:
    """What a run recomputes: the persons in `affected`, `days` after the stored run."""

    days: int
    affected: str = AFFECTED
    subjects: str = AFFECTED_SUBJECTS

    def affected_sql(self) -> str:
        return f"(SELECT person_id FROM {self.affected})"

    def events_sql(self) -> str:
        """The events of the affected persons (what the passes read instead of events)."""
        return (f"(SELECT * FROM events WHERE subject IN "
                f"(SELECT subject FROM {self.subjects}))")


@dataclass(frozen=True)
class TagState:
    """What the last stored tag run computed: its SQL's hash, as-of and last events file."""

    key: str
    as_of: dt.date
    events_file_id: int

    def to_json(self) -> str:
        return json.dumps({"key": self.key, "as_of": self.as_of.isoformat(),
                           "events_file_id": self.events_file_id})

    @classmethod
    def from_json(cls, text: str | None) -> TagState | None:
        try:
            raw = json.loads(text or "")
            return cls(str(raw["key"]), dt.date.fromisoformat(raw["as_of"]),
                       int(raw["events_file_id"]))
        except (ValueError, KeyError, TypeError):
            return None


def state_sql() -> str:
    return f"SELECT value FROM meta WHERE key = {literal(META_KEY)}"


def store_state_sql(state: TagState) -> list[str]:
    return [f"DELETE FROM meta WHERE key = {literal(META_KEY)}",
            f"INSERT INTO meta (key, value) VALUES ({literal(META_KEY)}, "
            f"{literal(state.to_json())})"]


def last_events_file_sql() -> str:
    return "SELECT coalesce(max(file_id), 0) FROM events"


def moved_sql() -> str:
    """Subjects whose person differs from what the last stored run saw (either side)."""
    return f"""
        CREATE OR REPLACE TEMP TABLE {MOVED} AS
        SELECT coalesce(n.subject, o.subject) AS subject, n.person_id AS new_id,
               o.person_id AS old_id
        FROM subject_persons n FULL OUTER JOIN {SUBJECTS_SEEN} o ON o.subject = n.subject
        WHERE n.person_id IS DISTINCT FROM o.person_id"""


def affected_sql(event_types: tuple[str, ...], windows: list[int], previous: TagState,
                 as_of: dt.date) -> list[str]:
    """`AFFECTED(person_id)` and `AFFECTED_SUBJECTS(subject)` (after `moved_sql`).

    `event_types`: every event type a tag reads; `windows`: their windows in days."""
    bands = [(previous.as_of, as_of)]  # entering: every pass reads ts < as_of
    bands += [(previous.as_of - dt.timedelta(days=n), as_of - dt.timedelta(days=n))
              for n in sorted(set(windows))]  # sliding out of an n-day window
    in_band = " OR ".join(f"(e.ts >= {ts_literal(start)} AND e.ts < {ts_literal(end)})"
                          for start, end in bands if start < end)
    news = f"e.file_id > {previous.events_file_id}" + (f" OR {in_band}" if in_band else "")
    types = ", ".join(literal(t) for t in event_types)
    return [
        f"""CREATE OR REPLACE TEMP TABLE {AFFECTED} AS
        WITH touched AS (
            SELECT DISTINCT e.subject FROM events e
            WHERE e.event_type IN ({types}) AND ({news}))
        SELECT DISTINCT person_id FROM (
            SELECT sp.person_id FROM subject_persons sp
            WHERE sp.subject IN (SELECT subject FROM touched)
            UNION ALL SELECT new_id FROM {MOVED}
            UNION ALL SELECT old_id FROM {MOVED}
            UNION ALL SELECT p.person_id FROM persons p
            WHERE p.person_id NOT IN (SELECT person_id FROM person_features))
        WHERE person_id IS NOT NULL""",
        f"""CREATE OR REPLACE TEMP TABLE {AFFECTED_SUBJECTS} AS
        SELECT subject FROM subject_persons
        WHERE person_id IN (SELECT person_id FROM {AFFECTED})""",
    ]


def remember_subjects_sql(incremental: bool) -> list[str]:
    """Brings `SUBJECTS_SEEN` up to subject_persons: only the moved subjects after an
    incremental run, a fresh copy after a full one."""
    if not incremental:
        return [f"CREATE OR REPLACE TABLE {SUBJECTS_SEEN} AS "
                "SELECT subject, person_id FROM subject_persons"]
    return [f"DELETE FROM {SUBJECTS_SEEN} WHERE subject IN (SELECT subject FROM {MOVED})",
            f"""INSERT INTO {SUBJECTS_SEEN} (subject, person_id)
                SELECT subject, person_id FROM subject_persons
                WHERE subject IN (SELECT subject FROM {MOVED})"""]


def working_tables() -> tuple[str, ...]:
    return (MOVED, AFFECTED, AFFECTED_SUBJECTS)
