"""The tag stage: compile tag rules → build person_features → store tags and history.

A run computes every tag into a temporary wide table first; `dry_run` stops there and
only reports (per tag: persons with a value, value distribution, difference against
the last stored run). A real run then appends changed values to `tag_history` (the
first run: every initial value, old NULL → new, so the second run already shows what
changed), and replaces `person_features` (the new table renamed into place), the long-form
`tags` and `tag_definitions`.

Changes are found wide: the new features joined once to the stored person_features,
one IS DISTINCT FROM per tag column (no join of ~20M long-form rows).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import math
from dataclasses import dataclass
from typing import Any

from leadctl import pii
from leadctl.sqlfn import avg_sql
from leadctl.sqltext import (
    date_literal,
    finite_sql,
    ident,
    literal,
    meta_value_sql,
    set_meta_sql,
)
from leadctl.tagging import event_state
from leadctl.tagging import incremental as inc
from leadctl.tagging.fields import names_in
from leadctl.tagging.kinds import kind_of
from leadctl.tagging.model import TagRules
from leadctl.tagging.sql import (
    compile_tag_rules,
    dated_filter_tag,
    features_select_sql,
    recomputed_per_person,
    same_rules_as_last_tags_sql,
    tag_definitions_sql,
    tags_from_events,
)
from leadctl.tagging.tables import TAGGED_WITH_KEY, last_tag_run_sql
from leadctl.workspace import RuleComputationFailed, Workspace, rule_computation

log = logging.getLogger("leadctl")

NEW_FEATURES = "tag_new_features"
COMPARE = "tag_compare"
HIDDEN = "tag_hidden"
TOP_VALUES_SHOWN = 5


@dataclass(frozen=True)
class StoredTag:
    """A tag column of the stored person_features (from the previous run)."""

    name: str
    type: str  # expression type from tag_definitions
    sql_type: str  # the column's SQL type


# --------------------------------------------------------------------------- builders


def json_value_sql(type_: str, column: str) -> str:
    """A typed column as a JSON value: numbers stay numbers (whole numbers without .0),
    lists stay arrays, text becomes a JSON string."""
    if type_ != "number":
        return f"to_json({column})"
    # A fraction is a double's: the cast tells the Spark engine to write DuckDB's text of
    # it. A whole number past 1e15 keeps its own type (a BIGINT's every digit), a DOUBLE's
    # cast too (Spark's own text of 2e15 is Java's `2.0E15`). typeof() is a constant per
    # column: both engines fold it when they plan, so it costs nothing per row.
    return (f"CASE WHEN {column} = trunc({column}) AND abs({column}) < 1e15 "
            f"THEN to_json(CAST({column} AS BIGINT)) WHEN {column} = trunc({column}) "
            f"AND lower(typeof({column})) <> 'double' THEN to_json({column}) "
            f"ELSE to_json(CAST({column} AS DOUBLE)) END")


def tags_table_sql(rules: TagRules, as_of: dt.date, run_id: int) -> str:
    """Long form `tags` over person_features: one row per person and tag with a value.

    A view, not a copy: materialising ~20 rows per person cost more than the tags
    themselves, and readers (portrait: one person; export: a stream) do not need it."""
    tags = rules.definition_order()
    if not tags:
        return ("CREATE OR REPLACE VIEW tags AS SELECT CAST(NULL AS VARCHAR) AS person_id, "
                "CAST(NULL AS VARCHAR) AS tag, CAST(NULL AS JSON) AS value, "
                "CAST(NULL AS DATE) AS as_of, CAST(NULL AS INTEGER) AS run_id WHERE false")
    # One scan of person_features (UNPIVOT drops NULLs = tags without a value), so a
    # one-person lookup reads one row, not one row per tag.
    values = ", ".join(f"CAST({json_value_sql(t.type, ident(t.name))} AS VARCHAR) "
                       f"AS {ident(t.name)}" for t in tags)
    names = ", ".join(ident(t.name) for t in tags)
    return ("CREATE OR REPLACE VIEW tags AS\n"
            "SELECT CAST(person_id AS VARCHAR) AS person_id, CAST(tag AS VARCHAR) AS tag, "
            f"CAST(value AS JSON) AS value, {date_literal(as_of)} AS as_of, "
            f"CAST({run_id} AS INTEGER) AS run_id\n"
            f"FROM (SELECT person_id, {values} FROM person_features)\n"
            f"UNPIVOT (value FOR tag IN ({names}))")


def compare_sql(new: list[StoredTag], old: list[StoredTag],
                aged: dict[str, str] | None = None, hidden: bool = False) -> str:
    """New and stored value of every tag side by side, one row per person with a value
    that changed (the counts and the history read only those). `aged`: per tag, the
    stored value as of today by the calendar alone (`Kind.aged_sql` over `o.<tag>`, and
    over `h.<tag>` of `HIDDEN` when `hidden`), compared instead of the stored one."""
    new_names, old_names = {t.name for t in new}, {t.name for t in old}
    aged = aged or {}
    cols = ["coalesce(n.person_id, o.person_id) AS person_id"]
    compared = _compared_tags(new, old)
    for name in compared:
        stored = aged.get(name) or ('o.' + ident(name) if name in old_names else 'NULL')
        cols.append(f"{stored} AS {ident('o_' + name)}")
        cols.append(f"{'n.' + ident(name) if name in new_names else 'NULL'} "
                    f"AS {ident('n_' + name)}")
    changed = " OR ".join(_differs_sql(new, old, name) for name in compared) or "false"
    return (f"CREATE OR REPLACE TEMP TABLE {COMPARE} AS\n"
            f"SELECT * FROM (\n  SELECT {', '.join(cols)}\n"
            f"  FROM {NEW_FEATURES} n FULL OUTER JOIN person_features o "
            f"ON o.person_id = n.person_id"
            + (f"\n  LEFT JOIN {HIDDEN} h ON h.person_id = coalesce(n.person_id, o.person_id)"
               if hidden else "")
            + f"\n) WHERE {changed}")


def hidden_values_sql(tags: list[StoredTag], stored_as_of: dt.date) -> str:
    """`HIDDEN(person_id, <tag>...)`: per person, the days-since values of `tags` that the
    last recorded history row holds but the stored run left out (its as-of was moved back
    before their event), each as of that run's date (0 or less). The value on a day is
    the last recorded one plus the days since: aged forward past 0, such a value is there
    again, and only aged (`history_sql` records no change when it comes back)."""
    names = ", ".join(literal(t.name) for t in tags)
    stored = date_literal(stored_as_of)
    days = f"date_diff('day', latest.a, {stored})"
    cols = ", ".join(f"max(CAST(latest.v AS {t.sql_type}) + {days}) "
                     f"FILTER (WHERE tag = {literal(t.name)}) AS {ident(t.name)}" for t in tags)
    # The last row as one struct: arg_max passes over a NULL value (a value removed), and
    # the last row then is that removal.
    return f"""
        CREATE OR REPLACE TEMP TABLE {HIDDEN} AS
        SELECT person_id, {cols}
        FROM (SELECT person_id, tag, arg_max({{'v': new_value, 'a': as_of}}, run_id) AS latest
              FROM tag_history WHERE tag IN ({names}) GROUP BY person_id, tag)
        WHERE latest.v IS NOT NULL AND CAST(latest.v AS DOUBLE) + {days} <= 0
        GROUP BY person_id"""


def _compared_tags(new: list[StoredTag], old: list[StoredTag]) -> list[str]:
    return list(dict.fromkeys([t.name for t in new] + [t.name for t in old]))


def _differs_sql(new: list[StoredTag], old: list[StoredTag], name: str) -> str:
    """Whether a tag's value changed; compared as JSON when the column type changed."""
    before = {t.name: t for t in old}.get(name)
    after = {t.name: t for t in new}.get(name)
    o, n = ident("o_" + name), ident("n_" + name)
    if before is None or after is None:
        return f"({o} IS NOT NULL OR {n} IS NOT NULL)"
    if before == after:
        return f"{o} IS DISTINCT FROM {n}"
    return (f"CAST({json_value_sql(before.type, o)} AS VARCHAR) IS DISTINCT FROM "
            f"CAST({json_value_sql(after.type, n)} AS VARCHAR)")


def change_counts_sql(new: list[StoredTag], old: list[StoredTag]) -> str:
    """Per compared tag k: values added (a<k>), removed (r<k>), changed (c<k>)."""
    cols = []
    for k, name in enumerate(_compared_tags(new, old)):
        o, n = ident("o_" + name), ident("n_" + name)
        differs = _differs_sql(new, old, name)
        cols.append(f"count(*) FILTER (WHERE {o} IS NULL AND {n} IS NOT NULL) AS a{k}, "
                    f"count(*) FILTER (WHERE {o} IS NOT NULL AND {n} IS NULL) AS r{k}, "
                    f"count(*) FILTER (WHERE {o} IS NOT NULL AND {n} IS NOT NULL AND "
                    f"{differs}) AS c{k}")
    return f"SELECT {', '.join(cols)} FROM {COMPARE}" if cols else "SELECT 1"


# More changes than this are streamed into history in person order, not sorted: sorting
# ~60M rows at once needed more than 3 GB at 4M persons, and from about a quarter of all
# values changed, streaming is also the faster path. Fewer are sorted: at 4M persons a
# second night's 3.6M changes took 2.4 s sorted against 4.6 s streamed (peak 2.83 GB
# within --memory-limit 3GB).
SORTED_HISTORY_ROWS = 10_000_000


# A night's changes, stored before they are sorted (Spark; see history_sql).
HISTORY_CHANGES = "tag_history_changes"


def history_sql(new: list[StoredTag], old: list[StoredTag], as_of: dt.date,
                run_id: int, in_person_order: bool = False, staged: bool = False
                ) -> list[str]:
    """Append the changed values (old and new as JSON, NULL = no value) to tag_history,
    sorted by person, then tag (the portrait's per-person lookup then reads few row groups
    of this ever-growing table); against nothing stored (the first run), every value is a
    change from NULL.

    `in_person_order` (for many changes: a first run, a change of rules): the compare
    rows are sorted by person, and each person's changed values unnested from one list in
    tag order, so the history rows come out in order with no sort of their own (both
    engines keep a sorted subquery's order through the unnest and the INSERT). A first
    run (every value, ~15M rows at 1M persons), side by side: DuckDB 8.1–9.1 s, where four
    sorted person ranges took 10.0–10.7 s; Spark 27–29 s, where sorting the rows took
    45–48 s. When few values changed, building every person's list costs more than
    sorting the changes (night 2 at 1M, 905k changes: 2.1 s against 1.2 s on DuckDB), so
    otherwise one UNION ALL per tag, sorted.

    `staged` (an engine whose sort samples its input first: Spark): the changes are
    stored, then sorted, so the UNION ALL is not computed twice: a night's 905k changes at
    1M persons took 12–13 s in four runs, stored then sorted 8.0 and 11.6 s (alone,
    alternated: 8.6–15.6 s against 5.3–6.5 s)."""
    types_old = {t.name: t.type for t in old}
    types_new = {t.name: t.type for t in new}
    values = []  # (tag, old JSON, new JSON, whether it changed)
    for name in _compared_tags(new, old):
        o, n = ident("o_" + name), ident("n_" + name)
        old_json = json_value_sql(types_old[name], o) if name in types_old else "NULL"
        new_json = json_value_sql(types_new[name], n) if name in types_new else "NULL"
        values.append((name, f"CAST({old_json} AS JSON)", f"CAST({new_json} AS JSON)",
                       _differs_sql(new, old, name)))
    if not values:
        return []
    insert = ("INSERT INTO tag_history (run_id, as_of, person_id, tag, old_value, new_value)\n"
              f"SELECT {run_id}, {date_literal(as_of)}, ")
    if in_person_order and not old:
        # Nothing stored (a first run): every value is new. An UNPIVOT of the persons in
        # order (a NULL, no value, is no row) gives the rows of the lists below; at 1M
        # persons (15M values) 3.6–3.8 s against 4.2–4.4 s, alternated. The columns are
        # `t_<tag>` (no tag then collides with `tag` or `value`; Spark reads no quoted
        # name with a space there).
        ordered = sorted(values, key=lambda v: v[0])
        cols = ", ".join(f"{new_json} AS {ident('t_' + name)}"
                         for name, _, new_json, _ in ordered)
        names = ", ".join(ident("t_" + name) for name, *_ in ordered)
        return [insert + "person_id, substr(tag, 3), CAST(NULL AS JSON), value FROM (\n"
                f"  SELECT person_id, {cols}\n"
                f"  FROM (SELECT * FROM {COMPARE} ORDER BY person_id))\n"
                f"UNPIVOT (value FOR tag IN ({names}))"]
    if in_person_order:
        entries = ",\n    ".join(
            f"CASE WHEN {differs} THEN {{'tag': {literal(name)}, 'o': {old_json}, "
            f"'n': {new_json}}} END"
            for name, old_json, new_json, differs in sorted(values, key=lambda v: v[0]))
        return [insert + "person_id, c.tag, c.o, c.n FROM (\n"
                f"  SELECT person_id, unnest([\n    {entries}]) AS c\n"
                f"  FROM (SELECT * FROM {COMPARE} ORDER BY person_id))\n"
                "WHERE c IS NOT NULL"]
    parts = [f"SELECT person_id, {literal(name)} AS tag, {old_json} AS o, {new_json} AS n "
             f"FROM {COMPARE} WHERE {differs}" for name, old_json, new_json, differs in values]
    changes = "\nUNION ALL\n".join(parts)
    if not staged:
        return [insert + f"* FROM (\n{changes}\n) ORDER BY person_id, tag"]
    return [f"CREATE OR REPLACE TEMP TABLE {HISTORY_CHANGES} AS\n{changes}",
            insert + f"* FROM {HISTORY_CHANGES} ORDER BY person_id, tag",
            f"DROP TABLE {HISTORY_CHANGES}"]


def publish_sql(rules: TagRules, as_of: dt.date, run_id: int) -> list[str]:
    """Replace person_features (NEW_FEATURES renamed into place: no copy), tags and
    tag_definitions."""
    return [
        "DROP TABLE IF EXISTS person_features",
        f"ALTER TABLE {NEW_FEATURES} RENAME TO person_features",
        tags_table_sql(rules, as_of, run_id),
        *tag_definitions_sql(rules),
    ]


def stats_sql(rules: TagRules, table: str = NEW_FEATURES) -> str:
    """Persons, and per tag: persons with a value; min/avg/max of number tags."""
    cols = ["count(*) AS persons"]
    for k, t in enumerate(rules.definition_order()):
        col = ident(t.name)
        cols.append(f"count({col}) AS w{k}")
        if t.type == "number":
            cols.append(f"min({col}) AS min{k}, {avg_sql(col)} AS avg{k}, max({col}) AS max{k}")
    return f"SELECT {', '.join(cols)} FROM {table}"


def value_counts_sql(tags: list[tuple[str, str]], table: str,
                     limit: int | None = None) -> str | None:
    """Persons per value (as JSON text) of each given (tag, type), most frequent first.
    Grouped by the value itself, then each distinct value written as JSON: the same groups
    (distinct values have distinct JSON texts), without a JSON text per person (on Spark,
    the three summaries of a 1M-person night took 8.9 s)."""
    parts = [f"SELECT {literal(name)} AS tag, CAST({json_value_sql(type_, 'v')} "
             f"AS VARCHAR) AS value, persons FROM (SELECT {ident(name)} AS v, "
             f"count(*) AS persons FROM {table} WHERE {ident(name)} IS NOT NULL GROUP BY 1)"
             for name, type_ in tags]
    if not parts:
        return None
    ranked = ("SELECT *, row_number() OVER (PARTITION BY tag ORDER BY persons DESC, value) "
              "AS r FROM (\n" + "\nUNION ALL\n".join(parts) + "\n)")
    where = f" WHERE r <= {limit}" if limit else ""
    return f"SELECT tag, value, persons FROM ({ranked}){where} ORDER BY tag, r"


# --------------------------------------------------------------------------- running


def _column_types(ws: Workspace, table: str) -> dict[str, str]:
    return dict(ws.columns(table))


def stored_tags(ws: Workspace) -> list[StoredTag]:
    """Tag columns of the stored person_features, as the previous run defined them."""
    columns = _column_types(ws, "person_features")
    rows = ws.rows("SELECT tag, type FROM tag_definitions ORDER BY position")
    return [StoredTag(r["tag"], r["type"], columns[r["tag"]]) for r in rows
            if r["tag"] in columns]


def computed_tags(ws: Workspace, rules: TagRules) -> list[StoredTag]:
    columns = _column_types(ws, NEW_FEATURES)
    return [StoredTag(t.name, t.type, columns[t.name]) for t in rules.definition_order()]


@rule_computation("tag")  # an overflow for this data: exit 2
def run_tags(ws: Workspace, rules: TagRules, as_of: dt.date, *, dry_run: bool = False,
             run_id: int | None = None, progress=None, full: bool = False) -> dict:
    """Compute every tag as of `as_of`; store unless `dry_run`. Returns the run summary.
    Only the persons whose tags can have changed since the stored run are computed from
    events (tagging/incremental.py) unless `full`. `progress(done, total, label)` is
    called between steps when given."""
    steps = 3 if dry_run else 5

    def step(done: int, label: str) -> None:
        if progress is not None:
            progress(done, steps, label)

    step(0, "computing")
    old = stored_tags(ws)
    key = state_key(rules)
    stored = inc.TagState.from_json(ws.scalar(inc.state_sql())) if old else None
    superseded = ws.scalar(inc.superseded_events_sql())
    state = stored if stored is not None and stored.key == key else None
    if state is not None and (state.as_of > as_of or state.superseded_events != superseded):
        state = None  # other rules or code, an earlier day, events gone: nothing to carry
    events_file_id = ws.scalar(inc.last_events_file_sql())
    if state is not None:
        ws.execute(inc.moved_sql())
    fold = None if full else _fold(ws, rules, state)
    from_events = tags_from_events(rules)
    if fold is not None and from_events:  # none: no news to read, nobody to recompute
        ws.script(event_state.changes_sql(from_events, fold, as_of))
    increment = None if fold is None else _increment(ws, rules, as_of, state, fold)
    # A table of the workspace when stored, so publishing renames it instead of copying
    # it (the sorted copy this replaces took 2.1 s at 1M persons); a temp table on a dry
    # run (the workspace is read-only).
    ws.script(compile_tag_rules(rules, as_of, NEW_FEATURES, temporary=dry_run,
                                increment=increment, fold=fold,
                                partials_temporary=dry_run,
                                fold_in_place=not dry_run and ws.changes_rows_in_place))
    step(1, "comparing")
    new = computed_tags(ws, rules)
    previous = _previous_run(ws) if old else None
    aging = aging_keys(rules)
    same_file = _same_file(ws, rules)
    aged = _aged(rules, stored, as_of, key, aging, same_file)
    ws.execute(compare_sql(new, old, aged, _age_hidden(ws, old, aged, stored, as_of)))
    step(2, "summarising")
    summary = _summary(ws, rules, new, old, as_of, dry_run, previous)
    summary["recomputed"] = {
        "incremental": increment is not None,
        "persons": summary["persons"] if increment is None else increment.persons,
        "events_pass": "none" if ws.table_type(event_state.NEXT) is None
        else "folded" if fold is not None else "full"}
    if not dry_run:
        run_id = run_id if run_id is not None else (ws.run_id or 0)
        summary["run_id"] = run_id
        step(3, "history")
        # The first run records every initial value (old NULL → new); a later one its
        # changes (counted in the summary).
        cells = summary["persons"] * len(new)
        rows = summary["changes"] if previous else cells
        many = rows > min(SORTED_HISTORY_ROWS, cells // 4)
        ws.script(history_sql(new, old, as_of, run_id, in_person_order=many,
                              staged=not many and ws.sort_samples_input))
        step(4, "storing")
        if ws.table_type("tags") == "BASE TABLE":
            ws.execute("DROP TABLE tags")  # a new workspace's placeholder; a view from now on
        ws.script(publish_sql(rules, as_of, run_id))
        if ws.table_type(event_state.NEXT) is not None:
            ws.script(event_state.store_sql())
        ws.script(inc.consume_moves_sql())
        ws.script(inc.store_state_sql(inc.TagState(key, as_of, events_file_id, superseded,
                                                   aging)))
        ws.script(set_meta_sql(TAGGED_WITH_KEY, rules.rules_hash))
    step(steps, "done")
    for table in (COMPARE, NEW_FEATURES, HIDDEN, *inc.working_tables(),
                  *event_state.working_tables()):
        ws.execute(f"DROP TABLE IF EXISTS {ident(table)}")
    return summary


def _same_file(ws: Workspace, rules: TagRules) -> bool:
    """Whether the stored tag values were computed with this `tags.yaml`: its hash in meta
    (`TAGGED_WITH_KEY`). A workspace whose last tag run predates that key (a night of an
    older leadctl version) has none: then the run log tells, when that run read the same
    rules folder as this one (also for a dry run, which logs no run); a hash in meta that
    differs says no."""
    tagged_with = ws.scalar(meta_value_sql(TAGGED_WITH_KEY))
    if tagged_with is not None:
        return tagged_with == rules.rules_hash
    return bool(rules.folder_hash) and bool(
        ws.scalar(same_rules_as_last_tags_sql(rules.folder_hash)))


def state_key(rules: TagRules) -> str:
    """What stored tag values depend on besides events and as-of: the compiled SQL (rules
    and code), at a fixed date, and how the state around them is kept."""
    sql = features_select_sql(rules, dt.date(2000, 1, 1))
    return hashlib.sha256((inc.STATE_FORMAT + sql).encode()).hexdigest()


def aging_keys(rules: TagRules) -> dict[str, str]:
    """Per tag computed from events, what its value depends on besides events and the
    as-of: its own definition, the declared attribute types its filter reads, and how the
    state is kept. A stored value of the same key ages with the calendar, whatever else
    in the rules changed."""
    def attributes(t) -> list:  # those it reads: declaring another changes nothing of it
        read = (names_in(t.where.value) if t.where else set()) | {t.field}
        return sorted((k, v) for k, v in rules.event_attributes.items() if k in read)
    return {t.name: hashlib.sha256(json.dumps(
        [inc.STATE_FORMAT, t.kind, t.type, list(t.events), t.agg, t.field, t.window_days,
         t.where.value if t.where else None, t.days_since, t.current, t.n, attributes(t)]
    ).encode()).hexdigest() for t in tags_from_events(rules)}


def _aged(rules: TagRules, stored: inc.TagState | None, as_of: dt.date, key: str,
          aging: dict[str, str], same_file: bool = False) -> dict[str, str]:
    """Per tag that ages with the calendar, its stored value as of `as_of`, when the
    stored value comes from the same rules (`key`), the same definition of the tag
    (`aging`; `stored`: the last stored run's state) or the same tags.yaml (`same_file`:
    a state written by another leadctl version has another key and maybe no `aging`, but
    the file says the tag is the one its stored values are of). Whatever happened since —
    other tags' rules changed, events left, the as-of moved back — a days-since value
    ages, backwards too."""
    days = (as_of - stored.as_of).days if stored is not None else 0
    if not days:
        return {}
    aged = {t.name: kind_of(t).aged_sql(t, f"o.{ident(t.name)}", days)
            for t in tags_from_events(rules)
            if same_file or stored.key == key or stored.aging.get(t.name) == aging[t.name]}
    return {name: sql for name, sql in aged.items() if sql}


def _age_hidden(ws: Workspace, old: list[StoredTag], aged: dict[str, str],
                stored: inc.TagState | None, as_of: dt.date) -> bool:
    """After an as-of moved back, the stored run may have left out days-since values the
    history still holds (their event was after its date); aged forward they are there
    again (`hidden_values_sql`). Adds them to `aged`; whether `HIDDEN` was made. Looked
    for only when a run before the stored one had a later as-of."""
    days = (as_of - stored.as_of).days if stored is not None else 0
    tags = [t for t in old if t.name in aged]
    if days <= 0 or not tags or not ws.scalar(
            f"SELECT max(as_of) > {date_literal(stored.as_of)} FROM tag_history"):
        return False
    ws.execute(hidden_values_sql(tags, stored.as_of))
    for t in tags:
        h = f"h.{ident(t.name)}"
        aged[t.name] = (f"coalesce({aged[t.name]}, "
                        f"CASE WHEN {h} + {days} > 0 THEN {h} + {days} END)")
    return True


def _fold(ws: Workspace, rules: TagRules,
          state: inc.TagState | None) -> event_state.Fold | None:
    """How to fold the stored partials of the shared events pass forward, or None when
    there is nothing to fold from: no stored run of the same rules and code (`state`), no
    stored partials, or an event filter that reads the as-of (then which events a condition
    takes can change for anyone, any day). inc.MOVED is made when `state` is given."""
    if state is None or dated_filter_tag(rules) is not None:
        return None
    if event_state.pass_tags(rules) and ws.table_type(event_state.STATE) is None:
        return None
    return event_state.Fold(state.as_of, state.events_file_id, inc.MOVED)


def _increment(ws: Workspace, rules: TagRules, as_of: dt.date, state: inc.TagState,
               fold: event_state.Fold) -> inc.Increment | None:
    """The persons whose value passes and passes of their own are recomputed (into
    inc.AFFECTED; their events are stored by the tag statements), or None when those passes run
    for everyone. `state`: the stored run's, from the same rules and code, not later than
    `as_of`, with partials to fold from (`fold`, its changes made); inc.MOVED is made."""
    days = (as_of - state.as_of).days
    from_events = recomputed_per_person(rules)
    if not from_events:  # every tag computed from events is folded
        return inc.Increment(days=days)
    persons = max(1, ws.scalar("SELECT count(*) FROM persons"))
    ws.execute(inc.affected_sql(from_events, fold, as_of))
    recomputed = ws.scalar(inc.recomputed_sql())
    log.debug("tag increment: %d of %d persons recomputed", recomputed, persons)
    if recomputed > inc.MAX_WORK_SHARE * persons:
        return None  # most persons touched: one full set of passes is cheaper
    return inc.Increment(days=days, persons=recomputed)


def _previous_run(ws: Workspace) -> dict | None:
    """The stored run (every row of `tags` carries its as-of and run id; a run that stored
    no value at all, leads without events yet, has no row there: the run log says)."""
    rows = ws.rows("SELECT as_of, run_id FROM tags LIMIT 1")
    if not rows or rows[0]["run_id"] is None:
        rows = ws.rows(last_tag_run_sql())
    if not rows or rows[0]["run_id"] is None:
        return None
    persons = ws.scalar("SELECT count(*) FROM person_features")
    return {"as_of": str(rows[0]["as_of"]), "run_id": rows[0]["run_id"], "persons": persons}


def _summary(ws: Workspace, rules: TagRules, new: list[StoredTag], old: list[StoredTag],
             as_of: dt.date, dry_run: bool, previous: dict | None) -> dict:
    ordered = rules.definition_order()
    stats = ws.rows(stats_sql(rules))[0]
    _refuse_infinite_values(ws, ordered, stats)
    changes = ws.rows(change_counts_sql(new, old))[0] if previous else {}
    compared = _compared_tags(new, old)
    levelled = [(t.name, t.type) for t in ordered if t.level_names()]
    others = [(t.name, t.type) for t in ordered if not t.level_names() and t.type != "number"]
    sizes = _value_counts(ws, value_counts_sql(levelled, NEW_FEATURES))
    stored_names = {t.name: t.type for t in old}
    before = _value_counts(ws, value_counts_sql(
        [(n, stored_names[n]) for n, _ in levelled if n in stored_names], "person_features"))
    top = _value_counts(ws, value_counts_sql(others, NEW_FEATURES, TOP_VALUES_SHOWN))
    out_tags = []
    for k, tag in enumerate(ordered):
        item: dict[str, Any] = {"tag": tag.name, "kind": tag.kind, "category": tag.category,
                                "type": tag.type, "persons_with_value": int(stats[f"w{k}"])}
        if tag.level_names():
            now, then = sizes.get(tag.name, {}), before.get(tag.name, {})
            item["levels"] = [{"value": name, "persons": now.get(name, 0),
                               "previous": then.get(name, 0)} for name in tag.level_names()]
        elif tag.type == "number":
            item["stats"] = None if stats[f"min{k}"] is None else {
                "min": _number(stats[f"min{k}"]), "avg": round(float(stats[f"avg{k}"]), 4),
                "max": _number(stats[f"max{k}"])}
        else:
            # masked: a run's summary reaches cron logs and the run log (no --reveal)
            item["top_values"] = [{"value": pii.text_shown(
                list(v) if isinstance(v, tuple) else v, reveal=False),
                "persons": n} for v, n in top.get(tag.name, {}).items()]
        c = compared.index(tag.name)
        item["changes"] = {"added": int(changes.get(f"a{c}", 0)),
                           "removed": int(changes.get(f"r{c}", 0)),
                           "changed": int(changes.get(f"c{c}", 0))}
        out_tags.append(item)
    removed = [n for n in compared if n not in rules.by_name]
    removed_values = sum(int(changes.get(f"r{compared.index(n)}", 0)) for n in removed)
    return {
        "as_of": as_of.isoformat(), "dry_run": dry_run, "run_id": None,
        "persons": int(stats["persons"]), "rules_hash": rules.rules_hash,
        "previous": previous, "tags": out_tags, "removed_tags": removed,
        "changes": sum(sum(t["changes"].values()) for t in out_tags) + removed_values,
    }


def _refuse_infinite_values(ws: Workspace, ordered: list, stats: dict) -> None:
    """A number tag that is no finite number for some person (an expression past the
    largest double, which DuckDB computes as infinity, or NaN from it, silently: either
    passes every threshold) stops the stage as an overflow does: exit 2, nothing stored.
    Seen in the stats' min and max (NaN sorts above every number)."""
    for k, tag in enumerate(ordered):
        low, high = stats.get(f"min{k}"), stats.get(f"max{k}")
        if tag.type != "number" or low is None or (
                math.isfinite(float(low)) and math.isfinite(float(high))):
            continue
        column = ident(tag.name)
        found = ws.rows(f"SELECT count(*) AS n, min(person_id) AS example FROM {NEW_FEATURES} "
                        f"WHERE NOT {finite_sql(column)}")[0]
        raise RuleComputationFailed(
            f"tag: {tag.name} is no finite number for {found['n']} person(s), such as "
            f"{found['example']} (past the largest number, about 1.8e308): check its "
            "expression in tags.yaml")


def _value_counts(ws: Workspace, sql: str | None) -> dict[str, dict]:
    out: dict[str, dict] = {}
    if sql is None:
        return out
    for r in ws.rows(sql):
        out.setdefault(r["tag"], {})[_json_key(r["value"])] = int(r["persons"])
    return out


def _json_key(text: str) -> Any:
    value = json.loads(text)
    return tuple(value) if isinstance(value, list) else value


def _number(value: Any) -> Any:
    """A whole-number float as an int, below 10^15: past that a double has no digit to
    spare, and int(1e41) is 100000000000000000620008645040778319495168."""
    return (int(value) if isinstance(value, float) and value.is_integer() and abs(value) < 1e15
            else value)
