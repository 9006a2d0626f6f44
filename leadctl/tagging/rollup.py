"""Daily event rollups and the event tags computed from them (pure SQL builders).

`event_rollups` holds, per event SUBJECT (not person: person ids change with identity
merges and splits, subjects do not), day and event type, the aggregates the tag rules
read — so the table survives identity changes and is joined to `subject_persons` when
tags are computed. Its grouping columns come from the rules:
  - `subject, day, event_type` (only event types some tag uses);
  - one boolean flag per distinct `where:` filter (`w0`, `w1`, …), evaluated on each
    event when it is folded in, so every filter stays exact (`amount > 300` cannot be
    answered from daily sums);
  - the value of each field a per-value tag reads (`k_category`: top, count_distinct,
    the category of the first order);
and its aggregates: `n` (events), and per field what the tags need: `c_` count of
values, `s_` exact sum (DECIMAL, so partial sums of different nights add up to the very
total a single pass gives), `mn_` / `mx_` min / max (`mn_ts` / `mx_ts`: first and last
event time, which orders "the value of the first event").
The columns are the rules' business: `rollup_hash` names the definition; a workspace
whose rollups were built for another definition rebuilds them.

Rollups are append-only: each night folds the events of the files not folded yet into
new rows (a key may then have several rows, one per fold); every read aggregates, and
every aggregate here is decomposable (sum of counts and sums, min of mins, distinct
days), so the result never depends on how the events were split into folds.

A tag whose filter depends on the as-of date (`days_since(...)` in `where:`) cannot be
folded once: with such a tag every tag is computed from raw events each night
(`raw_only_tags`, reported by `leadctl rules check`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from leadctl.sqltext import date_literal, ident
from leadctl.tagging.fields import compile_event_filter, event_field_sql, events_in_sql
from leadctl.tagging.kinds import (
    EXACT_SUM_TYPE,
    PASS_DERIVED,
    PASS_OWN,
    ValuePassTag,
    kind_of,
    rollup_col,
)
from leadctl.tagging.model import TagDef, TagRules

ROLLUPS = "event_rollups"
_PROBES = (dt.date(2001, 2, 3), dt.date(2003, 4, 5))


def event_tags(rules: TagRules) -> list[TagDef]:
    return [t for t in rules.tags if kind_of(t).computed_by(t) != PASS_DERIVED]


def _filter_sql(rules: TagRules, tag: TagDef, as_of: dt.date) -> str:
    return compile_event_filter(rules, tag, as_of).sql


def raw_only_tags(rules: TagRules) -> list[TagDef]:
    """Tags whose filter depends on the as-of date: they need raw events each night."""
    return [t for t in event_tags(rules) if t.where is not None and not t.broken
            and len({_filter_sql(rules, t, d) for d in _PROBES}) > 1]


def raw_events_warnings(rules: TagRules) -> list[str]:
    """What `rules check` says when tags cannot be computed from daily rollups."""
    return [f"{t.loc}: tag '{t.name}': its `where:` depends on the as-of date, so it "
            "cannot be folded into daily event rollups: every tag is computed from raw "
            "events each night (no incremental tags)" for t in raw_only_tags(rules)]


@dataclass(frozen=True)
class RollupDef:
    events: tuple[str, ...]  # event types folded
    flags: tuple[str, ...]  # `where:` filters over events `e` (column w0, w1, …)
    columns: tuple[tuple[str, str], ...]  # (agg, field): k (key), c, s, mn, mx

    @property
    def keys(self) -> list[str]:
        return [f for agg, f in self.columns if agg == "k"]

    def flag(self, rules: TagRules, tag: TagDef) -> str | None:
        if tag.where is None:
            return None
        return f"w{self.flags.index(_filter_sql(rules, tag, _PROBES[0]))}"


def rollup_def(rules: TagRules) -> RollupDef:
    tags = event_tags(rules)
    events = tuple(sorted({e for t in tags for e in t.events}))
    flags = tuple(dict.fromkeys(_filter_sql(rules, t, _PROBES[0])
                                for t in tags if t.where is not None))
    columns = {("mn", "ts"), ("mx", "ts")}
    for tag in tags:
        columns |= set(kind_of(tag).rollup_needs(tag))
    return RollupDef(events, flags, tuple(sorted(columns)))


def _agg_sql(agg: str, value: str) -> str:
    return {"c": f"count({value})", "s": f"sum(TRY_CAST({value} AS {EXACT_SUM_TYPE}))",
            "mn": f"min({value})", "mx": f"max({value})"}[agg]


def fold_select_sql(rules: TagRules, defn: RollupDef, where: str = "true") -> str:
    """Rollup rows of the events matching `where` (over events `e`)."""
    keys = (["e.subject", "CAST(e.ts AS DATE)", "e.event_type"]
            + [f"coalesce(({f}), false)" for f in defn.flags]
            + [event_field_sql(rules, f) for f in defn.keys])
    names = (["subject", "day", "event_type"] + [f"w{i}" for i in range(len(defn.flags))]
             + [f"k_{f}" for f in defn.keys])
    aggs = ["count(*) AS n"] + [f"{_agg_sql(agg, event_field_sql(rules, f))} AS "
                                f"{rollup_col(agg, f)}" for agg, f in defn.columns if agg != "k"]
    select = [f"{sql} AS {ident(name)}" for sql, name in zip(keys, names, strict=True)]
    scope = events_in_sql(defn.events) if defn.events else "false"
    return (f"SELECT {', '.join(select + aggs)}\nFROM events e\n"
            f"WHERE {scope} AND ({where})\nGROUP BY {', '.join(keys)}")


def rollup_hash(rules: TagRules) -> str:
    return hashlib.sha256(fold_select_sql(rules, rollup_def(rules)).encode()).hexdigest()[:16]


def rollup_condition_sql(rules: TagRules, defn: RollupDef, tag: TagDef,
                         as_of: dt.date) -> str:
    """Which rollup rows `r` a tag reads (every pass already keeps only days < as-of)."""
    parts = [events_in_sql(tag.events, "r")]
    if tag.window_days is not None:
        start = as_of - dt.timedelta(days=tag.window_days)
        parts.append(f"r.day >= {date_literal(start)}")
    flag = defn.flag(rules, tag)
    if flag:
        parts.append(f"r.{flag}")
    return " AND ".join(parts)


def person_rollups_sql(as_of: dt.date, affected: str | None = None) -> str:
    """Rollup rows before the as-of with their person (of the persons in the table
    `affected` when given)."""
    persons = "sp.person_id IS NOT NULL" + (
        f" AND sp.person_id IN (SELECT person_id FROM {ident(affected)})" if affected else "")
    return (f"SELECT sp.person_id, r.* FROM {ROLLUPS} r\n"
            f"  JOIN subject_persons sp ON sp.subject = r.subject\n"
            f"  WHERE {persons} AND r.day < {date_literal(as_of)}")


def event_features_sql(rules: TagRules, as_of: dt.date, affected: str | None = None,
                       rows: str | None = None) -> str:
    """One row per person with rollup rows before the as-of: person_id + one column per
    event tag in its stored form (`Kind.rollup_final_sql` turns it into the value; days
    since an event are kept as the event's date). `affected`: a table of person_id to
    restrict the persons to; `rows`: a table holding `person_rollups_sql` already."""
    defn = rollup_def(rules)
    tags = event_tags(rules)
    ctes = [f"tag_r AS (\n  SELECT * FROM {ident(rows)}\n)" if rows else
            f"tag_r AS (\n  {person_rollups_sql(as_of, affected)}\n)"]
    conds = {t.name: rollup_condition_sql(rules, defn, t, as_of) for t in tags}
    main, values, own = [], {}, {}
    for tag in tags:
        kind = kind_of(tag)
        if kind.computed_by(tag) == PASS_OWN:
            own.setdefault((tag.kind, conds[tag.name]), []).append(tag)
        elif (sql := kind.rollup_sql(tag, conds[tag.name], as_of)) is not None:
            main.append(f"{sql} AS {ident(tag.name)}")
        else:
            values.setdefault(tag.field, []).append(tag)
    joins: list[str] = []
    if main:
        ctes.append("tag_main AS (\n  SELECT person_id, " + ",\n         ".join(main)
                    + "\n  FROM tag_r r GROUP BY person_id\n)")
        joins.append("tag_main")
    for index, (field, group) in enumerate(values.items()):
        key = f"r.{ident('k_' + field)}"
        stage, finals = [], []
        for k, tag in enumerate(group):
            part = ValuePassTag(k, conds[tag.name], rollup=True)
            finals.append(f"{kind_of(tag).value_final_sql(tag, part)} AS {ident(tag.name)}")
            stage += part.stage1
        ctes.append(f"tag_v{index} AS (\n  SELECT person_id, " + ", ".join(finals) + "\n"
                    f"  FROM (SELECT person_id, {key} AS v, " + ", ".join(stage) + "\n"
                    f"        FROM tag_r r WHERE {key} IS NOT NULL GROUP BY person_id, {key})\n"
                    "  GROUP BY person_id\n)")
        joins.append(f"tag_v{index}")
    for index, ((_, cond), group) in enumerate(own.items()):
        days = f"SELECT DISTINCT r.person_id, r.day FROM tag_r r WHERE {cond}"
        ctes.append(f"tag_o{index} AS (\n"
                    f"{kind_of(group[0]).own_pass_sql(group, cond, as_of, days)}\n)")
        joins.append(f"tag_o{index}")
    ctes.append("tag_rp AS (SELECT DISTINCT person_id FROM tag_r)")
    cols = ["tag_rp.person_id"] + [f"{ident(t.name)}" for t in tags]
    body = "\n".join(f"LEFT JOIN {j} ON {j}.person_id = tag_rp.person_id" for j in joins)
    return ("WITH " + ",\n".join(ctes) + "\nSELECT " + ", ".join(cols)
            + f"\nFROM tag_rp\n{body}")


def event_features_hash(rules: TagRules) -> str:
    """Names what the stored per-person event columns mean (rules and rollup columns)."""
    text = event_features_sql(rules, _PROBES[0]) + fold_select_sql(rules, rollup_def(rules))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def window_events(rules: TagRules) -> dict[int, tuple[str, ...]]:
    """Window length in days → the event types tags with that window read."""
    out: dict[int, set[str]] = {}
    for tag in event_tags(rules):
        if tag.window_days is not None:
            out.setdefault(tag.window_days, set()).update(tag.events)
    return {n: tuple(sorted(out[n])) for n in sorted(out)}


def moved_days_sql(rules: TagRules, old: dt.date, new: dt.date, alias: str = "r") -> str:
    """Rollup rows whose days enter or leave a tag's view when the as-of moves from `old`
    to `new` (>= old): [old - 1, new) enters "before the as-of" (and moves yesterday, for
    current streaks), and for each window of N days [old - N, new - N) slides out (rows of
    the event types that windows of N days read)."""
    if new <= old:
        return "false"

    def days(a: dt.date, b: dt.date) -> str:
        return f"{alias}.day >= {date_literal(a)} AND {alias}.day < {date_literal(b)}"

    parts = [f"({days(old - dt.timedelta(days=1), new)})"]
    for n, events in window_events(rules).items():
        shift = dt.timedelta(days=n)
        parts.append(f"({days(old - shift, new - shift)} AND {events_in_sql(events, alias)})")
    return " OR ".join(parts)
