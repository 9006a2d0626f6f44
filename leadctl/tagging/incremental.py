"""Incremental tag runs: recompute only the tags that can have changed, for whom.

The shared events pass is folded forward from its stored partials (event_state.py); what
follows is about the other passes over events (value passes, passes of their own).
A tag computed from events changes for a person only when
  - events arrived for the person (files ingested since the last tag run),
  - an event entered at the day boundary ([previous as-of, as-of): every pass reads
    `ts < as_of`),
  - an event slid out of one of the tags' N-day windows ([previous − N days,
    as-of − N days)),
  - the person's subjects changed (identity merged, split or re-mapped them: resolve logs
    each move in `subject_moves`, emptied once a tag run is stored), or the person is new.
Such a person gets every tag computed from events recomputed (the events of the first
three come from `event_state.CHANGES`, the night's changing events with their person).
Every other value is the stored one, carried to the new as-of by its kind
(`carried_sql`: days-since values grow by the days passed, a current streak ends).
Derived tags (tiers, expr, rfm: averages over everyone) are recomputed for everyone, which
is cheap: column expressions over person_features.

The recomputed persons' value passes and passes of their own, and the shared pass's
refold, read their events from one table (`SCOPED_EVENTS`: the events in scope of the
recomputed and refolded persons, each with its person, in the columns tags read), made by
one join of events to their subjects: each pass joining events to them on its own cost
1.4–1.7 s in all on a 1M night, against 1.05–1.15 s (the join 0.65–0.8 s). They
are one set of passes for all of them, whichever window made each one recomputed: a pass
costs mostly its scan of events, so one set per window group (until the twelfth session)
cost more than a full run. Worth it only while it recomputes at most half the persons
(`MAX_WORK_SHARE`); past that the run is full.

The result equals a full run row for row (tests/test_nights_incremental.py). A full run
is used when there is nothing to carry from: the first run, other tag rules or code (the
state key is a hash of the compiled SQL), an earlier as-of than the stored one, or an
event filter that reads the as-of date.

Pure builders; tagging/stage.py runs them.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field

from leadctl.sqltext import absent_sql, ident, meta_value_sql, set_meta_sql
from leadctl.tagging.event_state import Fold, changing_sql
from leadctl.tagging.fields import (
    event_types,
    events_in_sql,
    events_scope_sql,
    some_persons_events_sql,
)
from leadctl.tagging.model import TagDef

META_KEY = "tag_state"
MOVES = "subject_moves"  # identity's log of moved subjects since the last stored tag run
# Part of the state key: stored state kept another way (before `subject_moves`, a copy of
# subject_persons) is not folded from; the next run is full.
STATE_FORMAT = "subject-moves-1"
AFFECTED = "tag_affected"  # (person_id): whose tags computed from events are recomputed
SCOPED_EVENTS = "tag_scoped_events"  # (person_id, event columns): those persons' events
MOVED = "tag_moved"  # (subject, new_id, old_id): subjects whose person changed
MAX_WORK_SHARE = 0.5  # incremental while it recomputes at most this share of the persons


@dataclass(frozen=True)
class Increment:
    """What a run recomputes, `days` after the stored run: the tags computed from events
    of the `persons` in `affected` (every other person's are carried), reading their
    events from SCOPED_EVENTS; with no persons, nobody's: every value is carried."""

    days: int
    persons: int = 0
    affected: str = AFFECTED


@dataclass(frozen=True)
class TagState:
    """What the last stored tag run computed: its SQL's hash, as-of and last events file,
    and how many events corrected re-deliveries had replaced by then (more now: events
    it folded left, so there is nothing to fold from)."""

    key: str
    as_of: dt.date
    events_file_id: int
    superseded_events: int = 0
    # per tag from events, what its value depends on (stage.aging_keys): after a change
    # of other tags' rules, a days-since value stored under the same key still ages
    aging: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({"key": self.key, "as_of": self.as_of.isoformat(),
                           "events_file_id": self.events_file_id,
                           "superseded_events": self.superseded_events,
                           "aging": self.aging})

    @classmethod
    def from_json(cls, text: str | None) -> TagState | None:
        try:
            raw = json.loads(text or "")
            return cls(str(raw["key"]), dt.date.fromisoformat(raw["as_of"]),
                       int(raw["events_file_id"]), int(raw.get("superseded_events", 0)),
                       {str(k): str(v) for k, v in dict(raw.get("aging", {})).items()})
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


def superseded_events_sql() -> str:
    """Events replaced by corrected re-deliveries so far (ingest keeps each in rejects)."""
    return "SELECT count(*) FROM rejects WHERE kind = 'events' AND reason = 'superseded'"


def moved_sql() -> str:
    """Subjects whose person changed since the last stored run (either side; a subject
    that moved twice has a row per move: both sides are recomputed either way). Read from
    identity's log: a full diff of subject_persons against a stored copy took 0.8 s at 1M
    leads (12.5 s on Spark) and the copy 2.1 s on a first night."""
    return (f"CREATE OR REPLACE TEMP TABLE {MOVED} AS SELECT subject, "
            f"new_person_id AS new_id, old_person_id AS old_id FROM {MOVES}")


def affected_sql(tags: list[TagDef], fold: Fold, as_of: dt.date) -> str:
    """`AFFECTED(person_id)` (after `moved_sql` and `event_state.changes_sql`): the persons
    with an event that can change one of `tags` (new files, the day boundary, sliding out
    of a window), moved subjects, and the new persons."""
    return f"""CREATE OR REPLACE TEMP TABLE {AFFECTED} AS
        SELECT DISTINCT person_id FROM (
            SELECT e.person_id FROM {fold.changes} e
            WHERE {events_in_sql(event_types(tags))} AND ({changing_sql(fold, as_of, tags)})
            UNION ALL SELECT new_id FROM {MOVED}
            UNION ALL SELECT old_id FROM {MOVED}
            UNION ALL SELECT p.person_id FROM persons p
            WHERE {absent_sql("p.person_id", "person_features", "person_id")})
        WHERE person_id IS NOT NULL"""


def recomputed_sql() -> str:
    return f"SELECT count(*) FROM {AFFECTED}"


def scoped_events_sql(tags: list[TagDef], columns: list[str], as_of: dt.date,
                      also: str | None = None) -> str:
    """The SELECT of SCOPED_EVENTS: the events in scope of `tags` (every tag computed from
    events) of the recomputed persons (AFFECTED) and of those in `also` (person_id: the
    refolded), each with its person, in the event `columns` tags read."""
    persons = f"SELECT person_id FROM {AFFECTED}" + (
        f" UNION SELECT person_id FROM {also}" if also else "")
    cols = ", ".join(f"e.{ident(c)}" for c in columns)
    return (f"SELECT sp.person_id, {cols}\nFROM {some_persons_events_sql(persons)}\n"
            f"WHERE {events_scope_sql(tags, as_of)} AND sp.person_id IS NOT NULL")


def consume_moves_sql() -> list[str]:
    """After a stored run: every logged move is seen. (The copy of subject_persons that
    earlier versions kept instead goes too.)"""
    return [f"DELETE FROM {MOVES}", "DROP TABLE IF EXISTS tag_subject_persons"]


def working_tables() -> tuple[str, ...]:
    return (MOVED, AFFECTED, SCOPED_EVENTS)
