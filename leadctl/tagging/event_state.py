"""The shared events pass, kept per person as partial aggregates (`tag_event_state`) and
folded forward night by night instead of recomputed from every event.

Every tag a plain aggregate can compute (`kinds.PASS_EVENTS`) is a column expression over
a few partial aggregates per person (`kinds.Partial`: counts, sums, minimums, maximums,
day bitmasks), each over the events where one condition holds.

- A run with nothing stored to fold from groups every event in scope by person
  (`state_select_sql`).
- A later run (same rules and code, as-of not earlier: the stored `TagState`) reads only
  the events whose part in a condition can differ (`news_sql`): those of files ingested
  since, those that entered at the day boundary ([stored as-of, as-of)) and those that
  slid out of an N-day window ([stored as-of − N, as-of − N)). Per person and partial
  it aggregates them under this run's conditions (plus) and, for counts and sums, the
  stored run's (minus). `fold_sql` then adds and subtracts them into the stored values; a
  day bitmask drops the days that left its window; a minimum or maximum takes the news
  in. No partial moves with the calendar alone (days are day numbers, days since are
  read off the as-of by the tags' values), so on DuckDB only the rows of the persons
  with news are replaced (`fold_in_place_sql`).
- Recomputed from all their events (`REFOLD`): persons whose subjects moved (identity),
  new persons, and persons with an event leaving the window of a minimum or maximum
  (what the next one is, only their events say).

The result equals a full pass row for row (tests/test_nights_incremental.py compares the
stored partials too). On the bench's second night (1M persons, a new day of events) the
news are 332k events of 10M; the folded pass took 5.2 s in all where the full one took
6.2 s (the fold and the refold are joins over every person). Pure builders, run by
tagging/stage.py on either engine.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from leadctl.sqlfn import EXACT_SUM, exact_millionths_sql
from leadctl.sqltext import absent_sql, ident, ts_literal
from leadctl.tagging.fields import (
    ALL_EVENTS,
    event_condition_sql,
    event_field_sql,
    event_types,
    events_in_sql,
    events_scope_sql,
    persons_events_sql,
    some_persons_events_sql,
)
from leadctl.tagging.kinds import (
    BITMASK_DAYS,
    PASS_EVENTS,
    Conditions,
    Partial,
    Partials,
    day_number,
    day_number_sql,
    exact_field,
    kind_of,
    sums_field,
)
from leadctl.tagging.model import TagDef, TagRules

STATE = "tag_event_state"  # stored: the partials per person as of the stored tag run
NEXT = "tag_event_state_next"  # this run's, renamed to STATE when the run is stored
NEWS = "tag_event_news"  # per person: the news aggregated (plus, minus, leaving flags)
REFOLD = "tag_event_refold"  # persons whose partials are recomputed from all their events
REFOLDED = "tag_event_refolded"  # their partials
FOLDED = "tag_event_folded"  # the folded partials of the persons with news (in place)
CHANGES = "tag_changes"  # the events that can change a value since the stored run + person
CHANGING = "tag_changing_events"  # the same events before their persons are joined


@dataclass(frozen=True)
class Fold:
    """What folding the stored partials forward needs: the stored run's as-of and last
    events file, and the table of subjects whose person changed since (either side)."""

    previous_as_of: dt.date
    events_file_id: int
    moved: str
    changes: str = CHANGES  # made by `changes_sql`


@dataclass(frozen=True)
class EventPass:
    """The shared events pass compiled for one as-of: its tags, conditions, partials and
    the value of each tag over the partials."""

    rules: TagRules
    as_of: dt.date
    tags: list[TagDef]
    conds: Conditions
    cond_of: dict[str, str]  # tag name -> its condition's column
    partials: Partials
    finals: list[tuple[TagDef, str]]
    fields: list[str]
    summed: list[str]  # the fields sums add (their `exact_field` columns)

    def scope_columns(self, person: str = "sp.person_id") -> list[str]:
        return [person, "e.ts", f"{day_number_sql('CAST(e.ts AS DATE)')} AS dn"] + [
            f"{event_field_sql(self.rules, f)} AS {ident('f_' + f)}" for f in self.fields
        ] + [f"{exact_millionths_sql(event_field_sql(self.rules, f))} AS "
             f"{ident(exact_field(f))}" for f in self.summed]


def pass_tags(rules: TagRules) -> list[TagDef]:
    """The tags the shared events pass computes, in rule order."""
    return [t for t in rules.tags if kind_of(t).computed_by(t) == PASS_EVENTS]


def compile_pass(rules: TagRules, as_of: dt.date) -> EventPass | None:
    """The pass for `as_of`, or None when no tag is computed by it. Compiled once per
    run and handed to every builder below."""
    tags = pass_tags(rules)
    if not tags:
        return None
    conds, partials = Conditions("c"), Partials(as_of, "a")
    cond_of, finals = {}, []
    for tag in tags:
        cond = cond_of[tag.name] = conds.add(event_condition_sql(rules, tag, as_of))
        value = ident("f_" + tag.field) if tag.field else None
        finals.append((tag, kind_of(tag).merge_sql(tag, cond, partials, value)))
    fields = sorted({t.field for t in tags if t.field})
    summed = sorted({t.field for t in tags if sums_field(t)})
    return EventPass(rules, as_of, tags, conds, cond_of, partials, finals, fields, summed)


def _nonempty_sql(compiled: EventPass) -> str:
    return " OR ".join(f"NOT ({p.empty_sql(p.name)})" for p in compiled.partials)


def state_select_sql(compiled: EventPass, source: str = ALL_EVENTS) -> str:
    """One row of stored partials per person with something in them, from every event
    in scope in `source` (a FROM of events e with their person sp.person_id: everyone's,
    or some persons'). Grouped by person straight away: 10M events into 600k persons beat
    grouping by subject (3.4M) and merging after: 3.6–4.0 s against 4.7–5.7 s side by
    side, the same on Spark."""
    stored = ",\n         ".join(f"{p.stored_sql()} AS {p.name}" for p in compiled.partials)
    return (f"SELECT * FROM (\n"
            f"  SELECT person_id,\n         {stored}\n  FROM (\n"
            f"    SELECT {', '.join(compiled.scope_columns())},\n"
            f"           {compiled.conds.select_list('           ')}\n"
            f"    FROM {source}\n"
            f"    WHERE {events_scope_sql(compiled.tags, compiled.as_of)} "
            f"AND sp.person_id IS NOT NULL\n"
            f"  ) tag_scope GROUP BY person_id\n) WHERE {_nonempty_sql(compiled)}")


def finals_sql(compiled: EventPass, state: str) -> str:
    """Each tag of the pass over the partials in `state`, one row per person in it."""
    cols = ",\n       ".join(f"{sql} AS {ident(tag.name)}" for tag, sql in compiled.finals)
    return f"SELECT person_id,\n       {cols}\nFROM {state}"


def changing_sql(fold: Fold, as_of: dt.date, tags: list[TagDef]) -> str:
    """Whether an event (e) can change a value of one of `tags` since the stored run: its
    file was ingested since, it entered at the day boundary ([stored as-of, as-of): every
    pass reads ts < as-of) or it slid out of the N-day window of a tag that reads its
    type ([stored as-of − N, as-of − N)). Callers keep only the tags' event types. By
    type: at 1M persons, a night recomputed 161k persons' other passes when any type
    sliding out of any window counted."""
    everything = set(event_types(tags))
    by_window: dict[int, list[TagDef]] = {}
    for t in tags:
        if t.window_days is not None:
            by_window.setdefault(t.window_days, []).append(t)
    parts = [f"e.file_id > {int(fold.events_file_id)}"]
    for n, windowed in [(0, tags), *sorted(by_window.items())]:
        start, end = (fold.previous_as_of - dt.timedelta(days=n),
                      as_of - dt.timedelta(days=n))
        if start >= end:
            continue
        types = event_types(windowed)
        only = "" if set(types) == everything else f" AND {events_in_sql(types)}"
        parts.append(f"(e.ts >= {ts_literal(start)} AND e.ts < {ts_literal(end)}{only})")
    return " OR ".join(parts)


def changes_sql(tags: list[TagDef], fold: Fold, as_of: dt.date) -> list[str]:
    """`fold.changes`: the events that can change a value of one of `tags` (every tag
    computed from events), each with its person. The fold's news and the persons an
    incremental run recomputes are both read from it: one join of the changing events to
    subject_persons, not two (each 1.1–1.4 s at 1M persons).

    The changing events are stored first: from one statement DuckDB cannot tell how few
    they are and hashes the 3.45M subject rows instead of them (a second night at 1M
    persons, 254k events: 0.58–0.75 s stored first, against 0.84–1.57 s)."""
    return [f"CREATE OR REPLACE TEMP TABLE {CHANGING} AS\n"
            f"SELECT * FROM events e\n"
            f"WHERE {events_in_sql(event_types(tags))} AND ({changing_sql(fold, as_of, tags)})",
            f"CREATE OR REPLACE TEMP TABLE {fold.changes} AS\n"
            f"SELECT sp.person_id, e.* FROM {CHANGING} e JOIN subject_persons sp "
            f"ON sp.subject = e.subject WHERE sp.person_id IS NOT NULL",
            f"DROP TABLE {CHANGING}"]


def news_sql(compiled: EventPass, fold: Fold) -> str:
    """NEWS (from `fold.changes`): per person, per partial the aggregate of the news under
    this run's conditions (p<k>), for counts and sums under the stored run's too (m<k>:
    what the stored value holds of them), and for a minimum or maximum whether one of its
    events left (x<k>)."""
    as_of, previous_as_of = compiled.as_of, fold.previous_as_of
    before = Conditions("q")  # the same conditions as of the stored run
    renamed = {}
    for tag in compiled.tags:
        renamed[compiled.cond_of[tag.name]] = before.add(
            f"e.ts < {ts_literal(previous_as_of)} AND "
            + event_condition_sql(compiled.rules, tag, previous_as_of))
    cols = []
    for p in compiled.partials:
        cols.append(f"{p.sql()} AS p{p.name}")
        if p.additive:
            cols.append(f"{p.sql(f'{renamed[p.cond]} AND NOT fresh')} AS m{p.name}")
        elif p.extreme:
            cols.append(f"bool_or({renamed[p.cond]} AND NOT fresh AND NOT "
                        f"coalesce({p.cond}, false)) AS x{p.name}")
    return (f"CREATE OR REPLACE TEMP TABLE {NEWS} AS\n"
            f"SELECT person_id,\n       " + ",\n       ".join(cols) + "\nFROM (\n"
            f"  SELECT {', '.join(compiled.scope_columns('e.person_id'))},\n"
            f"         coalesce(e.file_id > {int(fold.events_file_id)}, false) AS fresh,\n"
            f"         {compiled.conds.select_list('         ')},\n"
            f"         {before.select_list('         ')}\n"
            f"  FROM {fold.changes} e\n"
            f"  WHERE e.ts < {ts_literal(as_of)} AND {events_in_sql(event_types(compiled.tags))}\n"
            f"    AND ({changing_sql(fold, as_of, compiled.tags)})\n"
            f") tag_news GROUP BY person_id")


def refold_persons_sql(compiled: EventPass, moved: str) -> str:
    """REFOLD (after `news_sql`; `moved`: subjects whose person changed, either side): the
    persons whose partials are recomputed from all their events."""
    left = [f"x{p.name}" for p in compiled.partials if p.extreme]
    parts = [f"SELECT new_id AS person_id FROM {moved}",
             f"SELECT old_id FROM {moved}",
             f"SELECT p.person_id FROM persons p WHERE "
             f"{absent_sql('p.person_id', 'person_features', 'person_id')}"]
    if left:
        parts.append(f"SELECT person_id FROM {NEWS} WHERE {' OR '.join(left)}")
    return (f"CREATE OR REPLACE TEMP TABLE {REFOLD} AS SELECT DISTINCT person_id FROM (\n  "
            + "\n  UNION ALL ".join(parts) + "\n) WHERE person_id IS NOT NULL")


def refolded_sql(compiled: EventPass, source: str | None = None) -> str:
    """REFOLDED: the partials of the persons in REFOLD, from `source` (a FROM over events
    with their person that holds all of theirs), else from their subjects joined to
    events (a semi-join of events on those subjects took 4.9 s at 1M persons, this join
    0.9 s)."""
    if source is None:
        source = some_persons_events_sql(f"SELECT person_id FROM {REFOLD}")
    return f"CREATE OR REPLACE TEMP TABLE {REFOLDED} AS\n" + state_select_sql(compiled, source)


def _left_bits(window: int, previous_as_of: dt.date, as_of: dt.date) -> int:
    """The bits of a day bitmask over the last `window` days whose days left it between
    the two as-of dates ([previous as-of − window, as-of − window))."""
    start, end = (day_number(d - dt.timedelta(days=window)) for d in (previous_as_of, as_of))
    if end - start >= BITMASK_DAYS:
        return (1 << BITMASK_DAYS) - 1
    return sum({1 << (n % BITMASK_DAYS) for n in range(start, end)})


def _folded_sql(p: Partial, fold: Fold, as_of: dt.date) -> str:
    """A stored partial as of `as_of` with the news folded in (o: stored, n: news)."""
    old, plus = f"o.{p.name}", f"n.p{p.name}"
    if p.agg == "count":
        return f"coalesce({old}, 0) + coalesce({plus}, 0) - coalesce(n.m{p.name}, 0)"
    if p.agg == "sum":  # exact millionths (a state stored as DOUBLE is cast on its way)
        return (f"CAST(CAST(coalesce({old}, 0) AS {EXACT_SUM}) + coalesce({plus}, 0) "
                f"- coalesce(n.m{p.name}, 0) AS {EXACT_SUM})")
    if p.agg == "bit_or":  # the days that left the window drop, the news come in
        left = _left_bits(p.window, fold.previous_as_of, as_of)
        kept = f"coalesce({old}, 0)" if not left else (
            f"(coalesce({old}, 0) & {((1 << BITMASK_DAYS) - 1) & ~left})")
        return f"{kept} | coalesce({plus}, 0)"
    pick = "least" if p.agg == "min" else "greatest"  # both skip NULLs
    return f"{pick}({old}, {plus})"


def _folded_cols(compiled: EventPass, fold: Fold) -> str:
    return ",\n         ".join(f"{_folded_sql(p, fold, compiled.as_of)} AS {p.name}"
                               for p in compiled.partials)


def fold_sql(compiled: EventPass, fold: Fold, temporary: bool = False) -> str:
    """NEXT: every person's partials as of the run (after `refolded_sql`). No join to
    `persons`: a stored row of a person who is gone names a moved subject's old person,
    who is recomputed (to nothing)."""
    cols = _folded_cols(compiled, fold)
    person = "coalesce(o.person_id, n.person_id)"
    return (f"CREATE OR REPLACE {_kind(temporary)} {NEXT} AS\nSELECT * FROM (\n"
            f"  SELECT {person} AS person_id,\n         {cols}\n"
            f"  FROM {STATE} o FULL OUTER JOIN {NEWS} n ON n.person_id = o.person_id\n"
            f"  WHERE {absent_sql(person, REFOLD, 'person_id')}\n"
            f") WHERE {_nonempty_sql(compiled)}\n"
            f"UNION ALL\nSELECT * FROM {REFOLDED}")


def fold_in_place_sql(compiled: EventPass, fold: Fold) -> list[str]:
    """NEXT made of STATE itself, changed only where the night changed it: the rows of
    the persons with news or refolded are replaced (after `refolded_sql`). A person
    without news keeps the stored row (no partial moves with the calendar alone), so a
    night writes its news, not every person's partials (a rewrite of every row took
    0.98 s at 1M persons). Only where deleting and appending rows costs those rows
    (DuckDB; a Parquet table is rewritten whole)."""
    return [f"CREATE OR REPLACE TEMP TABLE {FOLDED} AS\nSELECT * FROM (\n"
            f"  SELECT n.person_id,\n         {_folded_cols(compiled, fold)}\n"
            f"  FROM {NEWS} n LEFT JOIN {STATE} o ON o.person_id = n.person_id\n"
            f"  WHERE {absent_sql('n.person_id', REFOLD, 'person_id')}\n"
            f") WHERE {_nonempty_sql(compiled)}",
            f"DELETE FROM {STATE} WHERE person_id IN "
            f"(SELECT person_id FROM {NEWS} UNION ALL SELECT person_id FROM {REFOLD})",
            f"INSERT INTO {STATE} SELECT * FROM {FOLDED} UNION ALL SELECT * FROM {REFOLDED}",
            f"ALTER TABLE {STATE} RENAME TO {NEXT}"]


def _kind(temporary: bool) -> str:
    """NEXT is a table, renamed to STATE when stored (no copy: 0.6 s at 1M persons); a
    temp table for a run that stores nothing (a dry run: the workspace is read-only)."""
    return "TEMP TABLE" if temporary else "TABLE"


def fold_statements(compiled: EventPass, fold: Fold, temporary: bool = False,
                    events: tuple[str, str] | None = None,
                    in_place: bool = False) -> list[str]:
    """NEXT folded from STATE (see the module's docstring); `in_place`: STATE changed
    into NEXT (`fold_in_place_sql`). `events`: (a statement, the table it makes) storing
    events with their person, run once REFOLD is made, that holds every event in scope of
    the persons in it: their partials are read from there (where the caller's passes read
    theirs too)."""
    statements = [news_sql(compiled, fold), refold_persons_sql(compiled, fold.moved)]
    source = None
    if events is not None:
        statements.append(events[0])
        source = persons_events_sql(REFOLD, events[1])
    folded = (fold_in_place_sql(compiled, fold) if in_place
              else [fold_sql(compiled, fold, temporary)])
    return [*statements, refolded_sql(compiled, source), *folded]


def full_sql(compiled: EventPass, temporary: bool = False) -> list[str]:
    """NEXT from every event (nothing stored to fold from)."""
    return [f"CREATE OR REPLACE {_kind(temporary)} {NEXT} AS\n{state_select_sql(compiled)}"]


def store_sql() -> list[str]:
    """NEXT becomes STATE."""
    return [f"DROP TABLE IF EXISTS {STATE}", f"ALTER TABLE {NEXT} RENAME TO {STATE}"]


def working_tables() -> tuple[str, ...]:
    return (NEXT, NEWS, REFOLD, REFOLDED, FOLDED, CHANGES)
