"""Incremental tag runs: recompute only the tags that can have changed, for whom.

The shared events pass is folded forward from its stored partials (event_state.py); what
follows is about the other passes over events (value passes, passes of their own).
A tag computed from events changes for a person only when
  - events arrived for the person (files ingested since the last tag run),
  - an event entered at the day boundary ([previous as-of, as-of): every pass reads
    `ts < as_of`),
  - the person's subjects changed (identity merged, split or re-mapped them: resolve logs
    each move in `subject_moves`, emptied once a tag run is stored), or the person is new —
    then every tag of the person is recomputed —, or
  - an event slid out of the tag's N-day window ([previous − N days, as-of − N days)):
    then only the tags with that window.
Every other value is the stored one, carried to the new as-of by its kind
(`carried_sql`: days-since values grow by the days passed, a current streak ends).
Derived tags (tiers, expr, rfm: averages over everyone) are recomputed for everyone, which
is cheap: column expressions over person_features.

Worth it only while few persons are touched: each window group is its own set of passes
over events, so when the estimated work (persons recomputed × passes, summed over the
groups) exceeds half of a full run's, the run is full (`MAX_WORK_SHARE`).

The result equals a full run row for row (tests/test_nights_incremental.py). A full run
is used when there is nothing to carry from: the first run, other tag rules or code (the
state key is a hash of the compiled SQL), an earlier as-of than the stored one, or an
event filter that reads the as-of date.

Pure builders; tagging/stage.py runs them.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from leadctl.sqltext import absent_sql, literal, meta_value_sql, set_meta_sql, ts_literal

META_KEY = "tag_state"
MOVES = "subject_moves"  # identity's log of moved subjects since the last stored tag run
# Part of the state key: stored state kept another way (before `subject_moves`, a copy of
# subject_persons) is not folded from; the next run is full.
STATE_FORMAT = "subject-moves-1"
AFFECTED = "tag_affected"  # (person_id, window_days): whose tags are recomputed
MOVED = "tag_moved"  # (subject, new_id, old_id): subjects whose person changed
MAX_WORK_SHARE = 0.5  # incremental while its estimated work is at most this share of full


@dataclass(frozen=True)
class Increment:
    """What a run recomputes, `days` after the stored run: per window length of the tags
    computed from events (None: no window), the persons in `affected` listed for it or
    for every window (window_days NULL)."""

    days: int
    windows: tuple[int | None, ...]
    untouched: frozenset[int | None] = frozenset()  # windows with nobody to recompute
    affected: str = AFFECTED

    def persons_sql(self, window: int | None) -> str:
        """The persons whose tags of this window are recomputed."""
        mine = "" if window is None else f" OR window_days = {int(window)}"
        return (f"(SELECT DISTINCT person_id FROM {self.affected} "
                f"WHERE window_days IS NULL{mine})")

    def events_sql(self, window: int | None) -> str:
        """Those persons' events (what the passes read instead of all events)."""
        return (f"(SELECT * FROM events WHERE subject IN (SELECT subject FROM subject_persons "
                f"WHERE person_id IN {self.persons_sql(window)}))")


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
    return meta_value_sql(META_KEY)


def store_state_sql(state: TagState) -> list[str]:
    return set_meta_sql(META_KEY, state.to_json())


def last_events_file_sql() -> str:
    """The last events file that loaded rows: every later file's events are news. Read from
    the file log, not the events (on Spark, a scan of every event)."""
    return ("SELECT coalesce(max(file_id), 0) FROM ingested_files "
            "WHERE kind = 'events' AND rows_loaded > 0")


def moved_sql() -> str:
    """Subjects whose person changed since the last stored run (either side; a subject
    that moved twice has a row per move: both sides are recomputed either way). Read from
    identity's log: a full diff of subject_persons against a stored copy took 0.8 s at 1M
    leads (12.5 s on Spark) and the copy 2.1 s on a first night."""
    return (f"CREATE OR REPLACE TEMP TABLE {MOVED} AS SELECT subject, "
            f"new_person_id AS new_id, old_person_id AS old_id FROM {MOVES}")


def affected_sql(event_types: tuple[str, ...], windows: list[int], previous: TagState,
                 as_of: dt.date) -> str:
    """`AFFECTED(person_id, window_days)` (after `moved_sql`): window_days NULL for the
    persons every tag is recomputed for (new events files, events entering at the day
    boundary, moved subjects, new persons), N for those whose events slid out of an
    N-day window. `event_types`: every event type a tag reads."""
    types = ", ".join(literal(t) for t in event_types)
    news = f"e.file_id > {previous.events_file_id}"
    if previous.as_of < as_of:  # entering: every pass reads ts < as_of
        news += (f" OR (e.ts >= {ts_literal(previous.as_of)} "
                 f"AND e.ts < {ts_literal(as_of)})")
    slid = [f"""
            UNION ALL
            SELECT sp.person_id, {n} FROM subject_persons sp WHERE sp.subject IN (
                SELECT e.subject FROM events e WHERE e.event_type IN ({types})
                  AND e.ts >= {ts_literal(previous.as_of - dt.timedelta(days=n))}
                  AND e.ts < {ts_literal(as_of - dt.timedelta(days=n))})"""
            for n in sorted(set(windows)) if previous.as_of < as_of]
    return f"""CREATE OR REPLACE TEMP TABLE {AFFECTED} AS
        SELECT DISTINCT person_id, window_days FROM (
            SELECT sp.person_id, CAST(NULL AS INTEGER) AS window_days
            FROM subject_persons sp WHERE sp.subject IN (
                SELECT e.subject FROM events e
                WHERE e.event_type IN ({types}) AND ({news}))
            UNION ALL SELECT new_id, NULL FROM {MOVED}
            UNION ALL SELECT old_id, NULL FROM {MOVED}
            UNION ALL SELECT p.person_id, NULL FROM persons p
            WHERE {absent_sql("p.person_id", "person_features", "person_id")}{''.join(slid)})
        WHERE person_id IS NOT NULL"""


def group_sizes_sql(windows: tuple[int | None, ...]) -> str:
    """Persons recomputed per window group (as in `Increment.persons_sql`)."""
    cols = [f"count(DISTINCT person_id) FILTER (WHERE window_days IS NULL"
            f"{'' if w is None else f' OR window_days = {int(w)}'}) AS g{i}"
            for i, w in enumerate(windows)]
    return f"SELECT {', '.join(cols)} FROM {AFFECTED}"


def recomputed_sql() -> str:
    return f"SELECT count(DISTINCT person_id) FROM {AFFECTED}"


def new_event_subjects_sql(previous: TagState) -> str:
    """Distinct subjects of the events files ingested since the stored run (their persons
    get every tag recomputed): a cheap first estimate of the work."""
    return (f"SELECT count(DISTINCT subject) FROM events "
            f"WHERE file_id > {previous.events_file_id}")


def consume_moves_sql() -> list[str]:
    """After a stored run: every logged move is seen. (The copy of subject_persons that
    earlier versions kept instead goes too.)"""
    return [f"DELETE FROM {MOVES}", "DROP TABLE IF EXISTS tag_subject_persons"]


def working_tables() -> tuple[str, ...]:
    return (MOVED, AFFECTED)
