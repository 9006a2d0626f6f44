"""Pure SQL builders of `leadctl report funnel` (inputs → SQL text; nothing executes here).

One pass over the events keeps those of any step (each tagged with the steps it
matches), joined to their persons. The entries are each person's first step-1 event, or
with first touch by event fields the first per combination of their values. Then, per
step, a set-based join of the entries that reached the previous step with their person's
events of this step picks the earliest qualifying event (`min` of a struct ordered by ts,
then the event id — file and row: the tie-break is the load order). Earliest-first is
what lets a person get furthest in an ordered funnel: a later choice can only leave less
room for the next step. When an event type is in more than one step, which event of one
instant serves which step matters too: each entry then carries every distinct way of
having used that instant's events (`shared_paths_sql`), usually one. Finally one GROUP BY
over the entries' paths counts each step per group, with the median time between steps.

Tables read: events, subject_persons (and tags, persons/person_features/scores/ownership
for tag dimensions and the entry population).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

from leadctl.campaigns.funnels import Dimension
from leadctl.sqltext import ident, literal, ts_literal
from leadctl.tagging.fields import attribute_value_sql
from leadctl.tagging.model import EVENT_COLUMNS

# An event's id in the struct of a step's chosen event: its file and row, in load order.
EVENT_ID_SQL = "(CAST(e.file_id AS BIGINT) * 4294967296 + e.row_number)"


def event_field_sql(name: str, attribute_types: Mapping[str, str], timezone: str,
                    alias: str = "e") -> str:
    """An event column (`source` included), or an attribute read from the JSON
    `attributes` as its declared type (as tags read it)."""
    if name in EVENT_COLUMNS or name == "source":
        return f"{alias}.{ident(name)}"
    extracted = f"json_extract_string({alias}.attributes, {literal('$.' + name)})"
    return attribute_value_sql(extracted, attribute_types.get(name, "string"), timezone)


def events_in_sql(events: tuple[str, ...], alias: str = "e") -> str:
    if len(events) == 1:
        return f"{alias}.event_type = {literal(events[0])}"
    return f"{alias}.event_type IN ({', '.join(literal(e) for e in events)})"


def dimension_value_sql(dim: Dimension, alias: str = "e") -> str:
    """The text of an event dimension on an event row (read once, in the events pass)."""
    if dim.field in ("source", "category"):
        return f"{alias}.{ident(dim.field)}"
    return f"json_extract_string({alias}.attributes, {literal('$.' + dim.field)})"


@dataclass(frozen=True)
class FunnelQuery:
    """Everything the funnel SQL depends on, already compiled (conditions are SQL)."""

    step_conditions: list[str]  # per step, a condition over events `e`
    window_days: int
    as_of: dt.date  # events with ts < as_of only
    since: dt.date | None = None  # entries on/after
    dims: list[Dimension] = field(default_factory=list)
    attribution: str = "first"
    entry_sql: str | None = None  # a query returning the person_ids of the population
    # No event can match two steps (their event types are disjoint): each event's step is
    # one CASE instead of a row per step unnested and filtered (0.2-0.3 s of 3.1-3.5 s
    # for app_install's 8 steps over 10M events).
    exclusive_steps: bool = False


def paths_sql(q: FunnelQuery) -> str:
    """One row per entry: person_id, entry_id (names the entry: the id of its first step-1
    event, usually ev1's), t1, ev1..evN,
    the struct of the event that counted for each step (NULL where the entry did not get
    that far). An entry per person, or per combination of event-field values (first
    touch, `entry_dims`)."""
    n = len(q.step_conditions)
    # The struct of an event: ts first, then its id (the tie-break of `min`), then the
    # event dimensions asked for — read from the entry events only with first touch.
    parts = ["ts := e.ts", f"id := {EVENT_ID_SQL}"]
    for i, dim in enumerate(q.dims):
        if dim.kind != "event":
            continue
        value = dimension_value_sql(dim)
        if q.attribution == "first":
            value = f"CASE WHEN {q.step_conditions[0]} THEN {value} END"
        parts.append(f"d{i} := {value}")
    evs = ", ".join(parts)
    if q.exclusive_steps:
        step = "CASE " + " ".join(f"WHEN {cond} THEN {k}" for k, cond
                                  in enumerate(q.step_conditions, start=1)) + " END"
        steps_of_event = f"{step} AS step"
    else:
        matched = ("list_filter([" + ", ".join(
            f"CASE WHEN {cond} THEN {k} END" for k, cond in enumerate(q.step_conditions, 1))
            + "], lambda s: s IS NOT NULL)")
        steps_of_event = f"{matched} AS steps"
    any_step = " OR ".join(f"({c})" for c in q.step_conditions)
    since = f" AND ev.ts >= {ts_literal(q.since)}" if q.since else ""
    entry = f"\n          AND person_id IN ({q.entry_sql})" if q.entry_sql else ""
    window = f"INTERVAL {int(q.window_days)} DAY"
    # step_events is read once per step: materialised, not re-computed each time.
    matching = (f"SELECT sp.person_id, struct_pack({evs}) AS ev, {steps_of_event}\n"
                f"        FROM events e JOIN subject_persons sp ON sp.subject = e.subject\n"
                f"        WHERE e.ts < {ts_literal(q.as_of)} AND ({any_step})\n"
                f"          AND sp.person_id IS NOT NULL")  # an unmatched subject: nobody
    if q.exclusive_steps:
        rows = f"SELECT * FROM (\n        {matching})\n    WHERE step IS NOT NULL"
    else:
        rows = (f"SELECT person_id, ev, unnest(steps) AS step, steps\n"
                f"    FROM (\n        {matching})")
    # Entries: one per person, or with first touch by event fields one per combination
    # of their values among the person's step-1 events (pushed in batch b1 and again in
    # b2: an entry in each, with its own window). An entry is named by its event's id.
    entry_keys = "".join(f", step_events.ev.d{i}" for i in entry_dims(q))
    if not q.exclusive_steps:
        return shared_paths_sql(q, rows, since + entry, entry_keys)
    ctes = [f"""step_events AS MATERIALIZED (
    {rows})""",
            f"""s1 AS (
    SELECT person_id, ev.id AS entry_id, ev, ev.ts AS t1, [ev.id] AS used FROM (
        SELECT person_id, min(step_events.ev) AS ev
        FROM step_events WHERE step = 1{since}{entry}
        GROUP BY person_id{entry_keys}))"""]
    # Steps of disjoint event types cannot share an event: the earliest (then the first
    # loaded) event of each step, other than the previous step's, is the one.
    for k in range(2, n + 1):
        ctes.append(f"""s{k} AS (
    SELECT person_id, entry_id, ev, t1, list_append(used, ev.id) AS used FROM (
        SELECT p.person_id, p.entry_id, min(se.ev) AS ev,
               any_value(p.t1) AS t1, any_value(p.used) AS used
        FROM s{k - 1} p JOIN step_events se ON se.person_id = p.person_id AND se.step = {k}
        WHERE se.ev.ts >= p.ev.ts AND se.ev.ts < p.t1 + {window}
          AND se.ev.id <> p.ev.id
        GROUP BY p.person_id, p.entry_id))""")
    joins = "\n".join(f"LEFT JOIN s{k} ON s{k}.person_id = s1.person_id "
                      f"AND s{k}.entry_id = s1.entry_id" for k in range(2, n + 1))
    columns = ", ".join(f"s{k}.ev AS ev{k}" for k in range(1, n + 1))
    return (f"WITH {', '.join(ctes)}\nSELECT s1.person_id, s1.entry_id, s1.t1, {columns}\n"
            f"FROM s1\n{joins}")


def later_sql(steps: str, k: int) -> str:
    """Of the steps an event matches (`steps`), those after step k: what it can still be
    used for once the path is at step k. Events alike in this are interchangeable."""
    return f"list_filter({steps}, lambda s: s > {k})"


def state_sql(k: int) -> str:
    """A path's columns at step k from `path` (a list of {ev, c}: each event taken and
    `later_sql` of it at its step): the entry's t1, the last event, the ids it took at that
    event's instant (`used`: nothing else there can serve again), and its `key` — what it
    took at that instant, as the sorted uses after step k: two paths with one key can get
    exactly as far."""
    here = "list_filter(path, lambda x: x.ev.ts = path[-1].ev.ts)"
    uses = f"list_transform({here}, lambda x: {later_sql('x.c', k)})"
    return (f"path[1].ev.ts AS t1, path[-1].ev AS ev, "
            f"list_transform({here}, lambda x: x.ev.id) AS used, "
            f"list_sort(list_filter({uses}, lambda c: len(c) > 0)) AS key")


def shared_paths_sql(q: FunnelQuery, rows: str, entry_filter: str, entry_keys: str) -> str:
    """`paths_sql` when an event can match more than one step (shared event types).

    Earliest-first still decides the instant of each step, but among events of one
    instant the step's choice matters (push, click at one instant; steps [push, click],
    [click, push], [push, install], [install, click]: which of them serves which step).
    Each entry carries every path that can still get furthest, told apart by what it
    took at its current instant (`state_sql`'s key): per step, each kind of candidate
    (`later_sql`, the first loaded of each) at the earliest instant any path reaches
    extends a path; paths left at a later instant are dropped (an earlier one can do
    whatever they do), and paths with one key merged (the least path kept). Usually that
    is one path per entry; it is more only while events of one instant leave a choice.
    The least of the paths that got furthest is the entry's."""
    n = len(q.step_conditions)
    window = f"INTERVAL {int(q.window_days)} DAY"
    dims = entry_keys.replace("step_events.ev.", "ev.")
    ctes = [f"""step_events AS MATERIALIZED (
    {rows})""",
            f"""s1 AS (
    SELECT person_id, first.id AS entry_id, path, {state_sql(1)} FROM (
        SELECT person_id, first, [struct_pack(ev := ev, c := c)] AS path
        FROM (
            SELECT person_id, ev, c, min(ev) OVER (PARTITION BY person_id{dims}) AS first
            FROM (
                SELECT person_id, min(ev) AS ev, {later_sql('steps', 1)} AS c
                FROM step_events WHERE step = 1{entry_filter}
                GROUP BY person_id{entry_keys}, c))
        WHERE ev.ts = first.ts))"""]
    for k in range(2, n + 1):
        # candidates: per path and kind, the first of the earliest; kept: those at the
        # entry's earliest instant, then joined to their path (not carried through the
        # grouping of every candidate: 1.6x rather than 2.3x the time of one path per
        # entry on 2M events); then one path per key, the least
        ctes.append(f"""s{k} AS (
    SELECT person_id, entry_id, path, {state_sql(k)} FROM (
        SELECT person_id, entry_id, min(path) AS path FROM (
            SELECT person_id, entry_id, path, {state_sql(k)} FROM (
                SELECT q.person_id, q.entry_id,
                       list_append(p.path, struct_pack(ev := q.ev, c := q.c)) AS path
                FROM (
                    SELECT p.person_id, p.entry_id, p.key, min(se.ev) AS ev,
                           {later_sql('se.steps', k)} AS c
                    FROM s{k - 1} p JOIN step_events se
                      ON se.person_id = p.person_id AND se.step = {k}
                    WHERE se.ev.ts >= p.ev.ts AND se.ev.ts < p.t1 + {window}
                      AND NOT list_contains(p.used, se.ev.id)
                    GROUP BY p.person_id, p.entry_id, p.key, c
                    QUALIFY min(se.ev).ts = min(min(se.ev).ts)
                        OVER (PARTITION BY p.person_id, p.entry_id)) q
                JOIN s{k - 1} p ON p.person_id = q.person_id AND p.entry_id = q.entry_id
                  AND p.key = q.key))
        GROUP BY person_id, entry_id, key))""")
    # the entry's path: the least of those that got furthest
    reached = " UNION ALL ".join(f"SELECT person_id, entry_id, path FROM s{k}"
                                 for k in range(1, n + 1))
    columns = ", ".join(f"best.path[{k}].ev AS ev{k}" for k in range(1, n + 1))
    return (f"WITH {', '.join(ctes)}\n"
            f"SELECT person_id, entry_id, best.path[1].ev.ts AS t1, {columns} FROM (\n"
            f"    SELECT person_id, entry_id,\n"
            f"           min(struct_pack(depth := -len(path), path := path)) AS best\n"
            f"    FROM ({reached})\n    GROUP BY person_id, entry_id)")


def entry_dims(q: FunnelQuery) -> list[int]:
    """The indexes of the dimensions a person enters once per value combination of: the
    event fields under first touch (tags are one value per person; last touch attributes
    one path per person)."""
    if q.attribution != "first":
        return []
    return [i for i, dim in enumerate(q.dims) if dim.kind == "event"]


def group_value_sql(dim_index: int, dim: Dimension, n_steps: int, attribution: str,
                    tag_alias: str) -> str:
    """A group key column: a tag's value, or an event dimension by the attribution rule."""
    if dim.kind == "tag":
        return f"{tag_alias}.v"
    if attribution == "last":
        values = [f"ev{k}.d{dim_index}" for k in range(n_steps, 0, -1)]
        return f"coalesce({', '.join(values)})"
    return f"ev1.d{dim_index}"


def funnel_sql(q: FunnelQuery) -> str:
    """One row per group: g0..gD (the group values), n1..nN (persons per step),
    h2..hN (median hours from the previous step), open_windows (entries whose window
    had not closed by the as-of date). Ordered by entries (desc), then the group."""
    n = len(q.step_conditions)
    tag_joins = []
    keys = []
    for i, dim in enumerate(q.dims):
        alias = f"tag{i}"
        if dim.kind == "tag":
            tag_joins.append(
                f"LEFT JOIN (SELECT person_id, any_value(json_extract_string(value, '$')) AS v "
                f"FROM tags WHERE tag = {literal(dim.field)} GROUP BY person_id) {alias} "
                f"ON {alias}.person_id = p.person_id")
        keys.append(f"{group_value_sql(i, dim, n, q.attribution, alias)} AS g{i}")
    counts = ["count(*) AS n1"] + [f"count(ev{k}) AS n{k}" for k in range(2, n + 1)]
    hours = [f"round(median((epoch(ev{k}.ts) - epoch(ev{k - 1}.ts)) / 3600.0), 2) AS h{k}"
             for k in range(2, n + 1)]
    window = f"INTERVAL {int(q.window_days)} DAY"
    open_windows = (f"count(*) FILTER (WHERE t1 + {window} > {ts_literal(q.as_of)}) "
                    "AS open_windows")
    group_cols = [f"g{i}" for i in range(len(q.dims))]
    select_keys = (", ".join(keys) + ", ") if keys else ""
    group_by = f"GROUP BY {', '.join(group_cols)}" if group_cols else ""
    order = ", ".join(["n1 DESC", *(f"g{i} NULLS LAST" for i in range(len(q.dims)))])
    return f"""
WITH paths AS ({paths_sql(q)}),
keyed AS (
    SELECT {select_keys}p.*
    FROM paths p
    {chr(10).join(tag_joins)})
SELECT {', '.join([*group_cols, *counts, *hours, open_windows])}
FROM keyed
{group_by}
ORDER BY {order}"""


def step_condition_sql(events: tuple[str, ...], where_sql: str | None) -> str:
    parts = [events_in_sql(events)]
    if where_sql:
        parts.append(f"({where_sql})")
    return " AND ".join(parts)
