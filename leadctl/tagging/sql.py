"""The shared feature pass: `TagRules` + as-of in, the SELECT of person_features out.

Computation plan for one run (see `features_select_sql`):
  1. ONE conditional-aggregate pass over `events` for every tag a plain aggregate can
     compute (`kinds.PASS_EVENTS`): partials per person, kept between runs and folded
     forward with only the night's news when they can be (tagging/event_state.py);
  2. one scan per value expression for tags that need per-value counts (`PASS_VALUES`:
     top-N, distinct counts, the value of the first/last event);
  3. a pass of its own for each tag that needs one (`PASS_OWN`, e.g. streaks);
  4. tags over tags (`PASS_DERIVED`: tiers, expr, rfm) as layers of plain column
     expressions over `persons` + the pass results, in dependency order.
Windows: "last N days" is `[as_of - N days, as_of)`. No event on or after the as-of
day is ever used (that day is not complete yet), windowed or not.
"""

from __future__ import annotations

import datetime as dt
import json

from leadctl.errors import RuleError
from leadctl.sqltext import ident, literal
from leadctl.tagging import event_state
from leadctl.tagging import incremental as inc
from leadctl.tagging.event_state import Fold
from leadctl.tagging.fields import (
    ALL_EVENTS,
    event_columns,
    event_condition_sql,
    events_scope_sql,
    persons_events_sql,
    reads_as_of,
)
from leadctl.tagging.incremental import Increment
from leadctl.tagging.kinds import (
    PASS_DERIVED,
    PASS_EVENTS,
    PASS_OWN,
    PASS_VALUES,
    ValuePassTag,
    kind_of,
)
from leadctl.tagging.model import PERSON_FIELDS, TagDef, TagRules
from leadctl.tagging.tables import PUBLISHED_OUTCOMES, TAG_COMMANDS


def _computed_by(rules: TagRules, how: str) -> list[TagDef]:
    return [t for t in rules.tags if kind_of(t).computed_by(t) == how]


def event_pass_sql(rules: TagRules, as_of: dt.date) -> str | None:
    """Every `PASS_EVENTS` tag from ONE pass over events: the partials per person
    (tagging/event_state.py), then each tag's value over them."""
    compiled = event_state.compile_pass(rules, as_of)
    return None if compiled is None else _event_pass_sql(compiled)


def _event_pass_sql(compiled: event_state.EventPass) -> str:
    select = event_state.state_select_sql(compiled)
    return event_state.finals_sql(compiled, f"(\n{select}\n) tag_partials")


def _takes_all(tag: TagDef) -> bool:
    return tag.window_days is None and tag.where is None


def value_pass_sql(rules: TagRules, as_of: dt.date,
                   source: str = ALL_EVENTS) -> list[tuple[str, str, list[TagDef]]]:
    """(name, SELECT, tags) per value expression: count / first / last time per (person,
    value) of the events joined to their person, then top-N lists, distinct counts,
    first/last values from those few rows. Grouping by subject first (3.4M subjects at
    1M leads) reduced nothing: 1.5M paid orders made 1.43M (subject, value) groups, then
    1.18M (person, value) groups; one grouping by person saves that pass. `source`: the
    FROM of the events of the persons computed (fields.ALL_EVENTS: everyone's)."""
    groups: dict[str, list[TagDef]] = {}
    for tag in _computed_by(rules, PASS_VALUES):
        groups.setdefault(kind_of(tag).value_sql(tag, rules), []).append(tag)
    out = []
    for index, (value, tags) in enumerate(groups.items()):
        conds = [event_condition_sql(rules, t, as_of) for t in tags]
        counts, finals = [], []
        for k, (tag, cond) in enumerate(zip(tags, conds, strict=True)):
            part = ValuePassTag(k, cond)
            finals.append(kind_of(tag).value_final_sql(tag, part))
            counts += part.counts
        # Keep only rows some tag counts (unless one tag takes every row in scope).
        needed = "" if any(_takes_all(t) for t in tags) else (
            "\n    AND (" + " OR ".join(f"({c})" for c in conds) + ")")
        final_cols = ",\n       ".join(f"{f} AS {ident(t.name)}"
                                       for f, t in zip(finals, tags, strict=True))
        sql = (f"WITH tag_value_persons{index} AS (\n"
               f"  SELECT sp.person_id, {value} AS v,\n         "
               + ",\n         ".join(counts) + "\n"
               f"  FROM {source}\n"
               f"  WHERE {events_scope_sql(tags, as_of)} AND {value} IS NOT NULL{needed}\n"
               f"    AND sp.person_id IS NOT NULL\n"
               f"  GROUP BY sp.person_id, {value}\n"
               f")\nSELECT person_id,\n       {final_cols}\n"
               f"FROM tag_value_persons{index} GROUP BY person_id")
        out.append((f"tag_values{index}", sql, tags))
    return out


def own_pass_sql(rules: TagRules, as_of: dt.date,
                 source: str = ALL_EVENTS) -> list[tuple[str, str, list[TagDef]]]:
    """(name, SELECT person_id + one column per tag, tags) per kind with a pass of its own
    and set of events: tags of one kind over the same events share their pass. `source`:
    as for value_pass_sql."""
    groups: dict[tuple[str, str], list[TagDef]] = {}
    for tag in _computed_by(rules, PASS_OWN):
        groups.setdefault((tag.kind, event_condition_sql(rules, tag, as_of)), []).append(tag)
    return [(f"tag_own{index}", kind_of(tags[0]).own_pass_sql(tags, cond, as_of, source), tags)
            for index, ((_, cond), tags) in enumerate(groups.items())]


def _layers(rules: TagRules) -> list[list[TagDef]]:
    """Derived tags grouped so each layer only uses columns of earlier layers."""
    depth: dict[str, int] = {}
    for tag in rules.tags:  # dependency order: deps come first
        if kind_of(tag).computed_by(tag) != PASS_DERIVED:  # computed from events
            depth[tag.name] = 0
        else:
            depth[tag.name] = 1 + max((depth.get(d, 0) for d in tag.deps), default=0)
    layers: dict[int, list[TagDef]] = {}
    for tag in rules.tags:
        if depth[tag.name] > 0:
            layers.setdefault(depth[tag.name], []).append(tag)
    return [layers[k] for k in sorted(layers)]


def tags_from_events(rules: TagRules) -> list[TagDef]:
    """The tags a pass over events computes (every kind but the derived ones)."""
    return [t for t in rules.tags if kind_of(t).computed_by(t) != PASS_DERIVED]


def dated_filter_tag(rules: TagRules) -> str | None:
    """The first tag computed from events whose filter reads the as-of date, if any: then
    which events a condition takes can change for anyone, any day, and nothing is folded."""
    return next((t.name for t in tags_from_events(rules) if reads_as_of(rules, t)), None)


def recomputed_per_person(rules: TagRules) -> list[TagDef]:
    """The tags computed from events that an incremental run recomputes per person (the
    value passes and passes of their own; the shared events pass is folded)."""
    return [t for t in tags_from_events(rules) if kind_of(t).computed_by(t) != PASS_EVENTS]


def _zero_default(tag: TagDef, column: str) -> str:
    return f"coalesce({column}, 0)" if kind_of(tag).zero_when_no_events(tag) else column


def features_select_sql(rules: TagRules, as_of: dt.date,
                        increment: Increment | None = None) -> str:
    """SELECT of person_features: one row per person, attributes + one typed column per tag.

    With `increment`, the tags computed from events are computed only for the persons it
    lists; the others keep the stored values, carried to `as_of`."""
    return features_sql(rules, as_of, increment, materialize=False)[1]


def features_sql(rules: TagRules, as_of: dt.date, increment: Increment | None = None,
                 materialize: bool = True, fold: Fold | None = None,
                 partials_temporary: bool = False,
                 fold_in_place: bool = False) -> tuple[list[str], str, list[str]]:
    """(statements, SELECT of person_features, temp tables the statements make): with
    `materialize`, each pass over events is a statement storing its own temp table, so one
    pass at a time holds memory (one query joining every pass at once ran out of 3 GB at
    4M persons), and the shared events pass leaves its partials in `event_state.NEXT`
    (a temp table with `partials_temporary`), folded from the stored ones with `fold`
    (changing the stored table into it with `fold_in_place`), else from every event."""
    check_runnable(rules)
    prepare: list[str] = []
    tables: list[str] = []
    fields = rules.fields()
    ctes: dict[str, str] = {}  # name -> body, in order
    materialized: set[str] = set()
    cols = {"person_id": "p.person_id", **{n: f"p.{ident(n)}" for n in PERSON_FIELDS}}
    joins = ""
    def carried(tag: TagDef) -> str:
        return kind_of(tag).carried_sql(tag, f"o.{ident(tag.name)}", increment.days)

    compiled = event_state.compile_pass(rules, as_of)
    # The recomputed persons' events, stored once for all their passes (the refold's too).
    scoped = increment is not None and increment.persons > 0
    refolds = scoped and materialize and compiled is not None and fold is not None
    scope = stored_scope = ""
    if scoped:
        from_events = tags_from_events(rules)
        scope = inc.scoped_events_sql(from_events, event_columns(rules, from_events), as_of,
                                      also=event_state.REFOLD if refolds else None)
        stored_scope = f"CREATE OR REPLACE TEMP TABLE {inc.SCOPED_EVENTS} AS\n{scope}"
    if compiled is not None:  # every person's values from the partials, nothing carried
        if not materialize:
            ctes["tag_events"] = _event_pass_sql(compiled)
        else:
            prepare += (event_state.full_sql(compiled, partials_temporary) if fold is None
                        else event_state.fold_statements(
                            compiled, fold, partials_temporary,
                            events=(stored_scope, inc.SCOPED_EVENTS) if refolds else None,
                            in_place=fold_in_place))
            prepare.append("CREATE OR REPLACE TEMP TABLE tag_events AS\n"
                           + event_state.finals_sql(compiled, event_state.NEXT))
            tables.append("tag_events")
        joins += "\nLEFT JOIN tag_events ON tag_events.person_id = p.person_id"
        for tag in compiled.tags:
            cols[tag.name] = _zero_default(tag, f"tag_events.{ident(tag.name)}")
    if increment is not None and not increment.persons:  # nobody's: all carried
        for tag in recomputed_per_person(rules):
            cols[tag.name] = carried(tag)
    else:
        source = ALL_EVENTS
        if increment is not None:
            joins += (f"\nLEFT JOIN {increment.affected} recomputed "
                      f"ON recomputed.person_id = p.person_id")
            source = persons_events_sql(increment.affected, inc.SCOPED_EVENTS)
            if not materialize:
                ctes[inc.SCOPED_EVENTS] = scope
            else:
                tables.append(inc.SCOPED_EVENTS)
                if not refolds:  # else made by the fold, once it knows whom it refolds
                    prepare.append(stored_scope)
        for name, sql, tags in (value_pass_sql(rules, as_of, source)
                                + own_pass_sql(rules, as_of, source)):
            if materialize:
                prepare.append(f"CREATE OR REPLACE TEMP TABLE {name} AS\n{sql}")
                tables.append(name)
            else:
                ctes[name] = sql
            joins += f"\nLEFT JOIN {name} ON {name}.person_id = p.person_id"
            for tag in tags:
                value = _zero_default(tag, f"{name}.{ident(tag.name)}")
                if increment is not None:
                    value = (f"CASE WHEN recomputed.person_id IS NOT NULL THEN {value} "
                             f"ELSE {carried(tag)} END")
                cols[tag.name] = value
    if increment is not None:
        joins = "\nLEFT JOIN person_features o ON o.person_id = p.person_id" + joins
    base_cols = [f"{expr} AS {ident(name)}" for name, expr in cols.items()]
    ctes["layer0"] = "SELECT " + ",\n       ".join(base_cols) + f"\nFROM persons p{joins}"
    last = "layer0"
    for index, layer in enumerate(_layers(rules), start=1):
        cols = ",\n       ".join(
            f"{kind_of(t).derived_sql(t, fields, as_of)} AS {ident(t.name)}" for t in layer)
        joined = [kind_of(t).cross_join_sql(t, last) for t in layer]
        averages = "".join(f"\nCROSS JOIN {j}" for j in joined if j)
        if averages:  # `last` is read twice: computed once on Spark too (1 s of 3.5–4 s)
            materialized.add(last)
        ctes[f"layer{index}"] = f"SELECT {last}.*,\n       {cols}\nFROM {last}{averages}"
        last = f"layer{index}"
    out_cols = ["person_id"] + list(PERSON_FIELDS) + [t.name for t in rules.definition_order()]
    select = ("WITH " + ",\n".join(
        f"{name} AS {'MATERIALIZED ' if name in materialized else ''}(\n{body}\n)"
        for name, body in ctes.items()) + "\nSELECT "
              + ", ".join(ident(c) for c in out_cols) + f"\nFROM {last}")
    return prepare, select, tables


def check_runnable(rules: TagRules) -> None:
    broken = [t for t in rules.tags if t.broken]
    if broken:
        raise RuleError([(t.loc, f"tag '{t.name}' is invalid") for t in broken])


def compile_tag_rules(rules: TagRules, as_of: dt.date, target: str = "person_features",
                      *, temporary: bool = False, increment: Increment | None = None,
                      fold: Fold | None = None, partials_temporary: bool = False,
                      fold_in_place: bool = False) -> list[str]:
    """Statements that (re)build `target` with every tag of `rules` as of `as_of` (each
    pass over events into a temp table first, dropped at the end; the partials of the
    shared events pass stay in `event_state.NEXT`). Not sorted by person: at 1M persons
    the sort cost a night 0.7 s, and a portrait's lookup reads 10 ms more without it."""
    kind = "TEMP TABLE" if temporary else "TABLE"
    prepare, select, tables = features_sql(rules, as_of, increment, fold=fold,
                                           partials_temporary=partials_temporary,
                                           fold_in_place=fold_in_place)
    return [*prepare, f"CREATE OR REPLACE {kind} {ident(target)} AS\n{select}",
            *(f"DROP TABLE IF EXISTS {name}" for name in tables)]


def tag_definitions_sql(rules: TagRules) -> list[str]:
    """Replace tag_definitions (what the portrait groups by) with the current rules."""

    def levels(tag: TagDef) -> str:
        names = tag.level_names()
        text = json.dumps(names, ensure_ascii=False, separators=(",", ":"))
        return f"CAST({literal(text)} AS JSON)" if names else "CAST(NULL AS JSON)"

    rows = [f"({i}, {literal(t.name)}, {literal(t.kind)}, {literal(t.category)}, "
            f"{literal(t.description)}, {literal(t.type)}, {levels(t)}, "
            f"{'true' if t.highlight else 'false'})"
            for i, t in enumerate(rules.definition_order())]
    statements = ["DELETE FROM tag_definitions"]
    if rows:
        statements.append("INSERT INTO tag_definitions (position, tag, kind, category, "
                          "description, type, levels, highlight) VALUES\n  "
                          + ",\n  ".join(rows))
    return statements


def same_rules_as_last_tags_sql(folder_hash: str) -> str:
    """Whether the last run that published tags read the rules folder of hash
    `folder_hash` (the run log's hash of its *.yaml files): then `tags.yaml` was the same
    file. What a workspace tells of the file its stored values are of when its meta
    predates `TAGGED_WITH_KEY` (a night of a version before it); false when unknown."""
    return (f"SELECT coalesce((SELECT rules_hash FROM runs WHERE command IN {TAG_COMMANDS} "
            f"AND outcome IN {PUBLISHED_OUTCOMES} AND as_of IS NOT NULL "
            f"ORDER BY run_id DESC LIMIT 1) = {literal(folder_hash)}, FALSE)")
