"""One class per tag kind: its keys, parsing, dependencies, type check, SQL and the
sentence `explain` shows. `KINDS` maps the `kind:` of a rule to its class.

How a kind is computed (see `sql.py` for the passes):
- `PASS_EVENTS`: conditional aggregates in the ONE shared pass over events;
  `merge_sql` names its partial aggregates per person and the tag's value over them.
- `PASS_VALUES`: per-value counts (top-N, distinct counts, the value of the first
  event), one pass per value expression; `value_sql` + `value_final_sql`.
- `PASS_OWN`: a pass of its own (`own_pass_sql`), for what plain aggregates cannot say.
- `PASS_DERIVED`: a column expression over earlier tags and attributes (`derived_sql`).

To add a kind: one class here (and its entry in `KINDS`), one fixture under
`rules/tests/`, one line in the README's list of kinds.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from leadctl.rules.bounds import window_days, written
from leadctl.rules.located import (
    LocatedText,
    RuleDoc,
    compile_located,
    did_you_mean,
    named_in,
    one_of,
)
from leadctl.sqlfn import EXACT_SUM, round_sql, rule_guard
from leadctl.sqltext import date_literal, ident, literal, ts_literal
from leadctl.tagging.fields import ALL_EVENTS, event_field_sql, feature_column_sql, names_in
from leadctl.tagging.model import (
    EVENT_NAME_RE,
    PERSON_FIELDS,
    RFM_SEGMENTS,
    TYPES,
    Level,
    TagDef,
    TagRules,
)

PASS_EVENTS, PASS_VALUES, PASS_OWN, PASS_DERIVED = "events", "values", "own", "derived"
AGGS = ("count", "sum", "avg", "min", "max", "count_distinct")
# Longest window whose active days fit a BIGINT bitmask: a day's bit is its day number
# modulo 63 (a ring: any 63 consecutive days have distinct bits).
BITMASK_DAYS = 63
# Day numbers count from here: an event's day is a fixed number, so a partial over them
# stays what it is from one night to the next (only days since are read off the as-of).
DAY_ZERO = dt.date(2000, 1, 1)


def day_number_sql(day: str) -> str:
    """The day number of a DATE expression."""
    return f"date_diff('day', {date_literal(DAY_ZERO)}, {day})"


def day_number(day: dt.date) -> int:
    return (day - DAY_ZERO).days


def day_bit_sql(day: str, modulo: int = BITMASK_DAYS) -> str:
    """The bit position of a day number in a day bitmask (day numbers before DAY_ZERO
    are negative: the remainder is made non-negative)."""
    return f"((({day}) % {modulo}) + {modulo}) % {modulo}"


class Kind:
    name: ClassVar[str]
    keys: ClassVar[tuple[str, ...]]  # allowed besides name/kind/category/description/highlight

    # -- parse, dependencies, types ----------------------------------------------------
    def parse(self, doc: RuleDoc, raw: Mapping, tag: TagDef, rules: TagRules) -> None:
        raise NotImplementedError

    def expressions(self, tag: TagDef) -> list[LocatedText]:
        """Expressions over person_features (their names are the tag's dependencies)."""
        return []

    def dependencies(self, doc: RuleDoc, tag: TagDef, tag_names: list[str],
                     broken: set[str]) -> tuple[str, ...]:
        """The tags this one uses (`broken`: declared but broken tag names)."""
        words: set[str] = set()
        for text in self.expressions(tag):
            words |= names_in(text.value)
        return tuple(n for n in tag_names if n in words)

    def check_types(self, doc: RuleDoc, tag: TagDef, fields: dict[str, str],
                    probe: dt.date) -> None:
        """Compile the tag's expressions against `fields` (problems go to `doc`)."""

    # -- SQL ----------------------------------------------------------------------------
    def computed_by(self, tag: TagDef) -> str:
        return PASS_DERIVED

    def zero_when_no_events(self, tag: TagDef) -> bool:
        """Counts are 0 (not unknown) for a person without matching events."""
        return False

    def cross_join_sql(self, tag: TagDef, source: str) -> str | None:
        """A one-row relation over the previous layer `source` that `derived_sql` reads."""
        return None

    def carried_sql(self, tag: TagDef, stored: str, days: int) -> str:
        """The value `days` later of a tag computed from events, for a person whose events
        in the tag's scope are the same as when `stored` was computed (incremental runs:
        tagging/incremental.py). Most values do not depend on the as-of date itself."""
        return stored

    def aged_sql(self, tag: TagDef, stored: str, days: int) -> str | None:
        """The stored value `days` later by the calendar alone (a days-since value grows),
        or None when time alone does not change it. History and change counts compare a
        new value with this, so a value that only aged is not recorded as a change."""
        return None

    # -- explain ------------------------------------------------------------------------
    def explain(self, tag: TagDef) -> str:
        """How the value is computed, in one line ('' when the description says it best)."""
        return ""


# --------------------------------------------------------------------------- helpers


def require(doc: RuleDoc, raw: Mapping, tag: TagDef, key: str) -> bool:
    if raw.get(key) is None:
        if not doc.mistyped(raw, key):  # else its unknown key is the one problem
            doc.add(tag.loc, f"tag '{tag.name}': kind {tag.kind} needs `{key}:`")
        return False
    return True


def event_names(doc: RuleDoc, raw: Mapping, what: str) -> tuple[str, ...]:
    """`event:` of `raw` (one event type or a list), lower-cased, each once; a value that
    is not an event type name is a problem of `what` (and no names)."""
    value = raw.get("event")
    if value == []:  # an empty list would match no event, yet read as "any event"
        doc.add(doc.value_loc(raw, "event"), f"{what}: event is an empty list: name at least "
                "one event type")
        return ()
    names = []
    for item in value if isinstance(value, list) else ([] if value is None else [value]):
        text = str(item).strip().lower() if isinstance(item, str) else None
        if not text or not EVENT_NAME_RE.match(text):
            doc.add(doc.value_loc(raw, "event"), f"{what}: event must be an event type name "
                    "or a list of them")
            return ()
        names.append(text)
    return tuple(dict.fromkeys(names))


def parse_event_scope(doc: RuleDoc, raw: Mapping, tag: TagDef) -> None:
    """`event:` (one name or a list), `window:` (30d, or all) and `where:`."""
    if require(doc, raw, tag, "event"):
        tag.events = event_names(doc, raw, f"tag '{tag.name}'")
    window = raw.get("window")
    if window is not None and window != "all" and \
            (days := window_days(doc, raw, f"tag '{tag.name}'", "30d", "all")) is not None:
        tag.window_days = days
    if raw.get("where") is not None:
        tag.where = doc.text(raw, "where")


def parse_event_field(doc: RuleDoc, raw: Mapping, tag: TagDef, key: str,
                      rules: TagRules) -> None:
    value = raw.get(key)
    known = rules.event_fields()
    if not named_in(value, known):
        if not named_in(value, known.broken):
            doc.add(doc.value_loc(raw, key), f"tag '{tag.name}': unknown event field "
                    f"'{value}'{did_you_mean(value, known)} (known: {', '.join(known)}; "
                    "declare others under event_attributes)")
        return
    tag.field = str(value)


def _scope_text(tag: TagDef) -> str:
    events = " or ".join(tag.events) or "any event"
    window = f" in last {tag.window_days}d" if tag.window_days else ""
    where = f" where {tag.where.value}" if tag.where is not None else ""
    return f"{events}{window}{where}"


def exact_field(field: str) -> str:
    """The scope column of an event field at 6 decimals as an exact DECIMAL
    (`exact_millionths_sql`), which sums add: a sum's stored value plus the next nights'
    then equals the sum of every night at once, whatever the digits past the 6th
    (500.0000004 + 499.9999992 is 1000 both ways) and however large. Computed once per
    event, not once per partial that sums it (the first night's pass over 10M events:
    5.5–5.9 CPU-s against 5.8–6.1)."""
    return "m_" + field


def sums_field(tag: TagDef) -> bool:
    """Whether the shared pass sums `tag`'s field (its `exact_field` column is needed)."""
    return tag.kind == "metric" and tag.agg in ("sum", "avg") and tag.field is not None


class Conditions:
    """Event conditions of a pass, named once each (c0, c1 ...: tags share them)."""

    def __init__(self, prefix: str = "c"):
        self.prefix = prefix
        self.items: dict[str, str] = {}

    def add(self, sql: str) -> str:
        if sql not in self.items:
            self.items[sql] = f"{self.prefix}{len(self.items)}"
        return self.items[sql]

    def select_list(self, indent: str = "       ") -> str:
        return f",\n{indent}".join(f"{sql} AS {name}" for sql, name in self.items.items())


@dataclass(frozen=True)
class Partial:
    """One partial aggregate of the shared events pass, per person: `agg` of `arg` over the
    person's events where condition `cond` holds. `window`: the tag's window in days.

    Stored per person (tagging/event_state.py) and folded forward night by night: counts
    and sums add what entered and subtract what left; a day bitmask (a bit per day
    number, `day_bit_sql`) drops the days that left and takes the news in; a minimum or
    maximum (of `dn`, the event's day number, for days since) takes the news in, and when
    an event leaves its window the person's partials are recomputed. None of them moves
    with the calendar alone: a person without news keeps the stored row as it is."""

    name: str
    agg: str  # count | sum | min | max | bit_or
    arg: str  # over a scope row: *, a field column f_<name>, dn (day number), ts, a bit
    cond: str  # the condition column (c<k>)
    window: int | None

    @property
    def additive(self) -> bool:
        return self.agg in ("count", "sum")

    @property
    def extreme(self) -> bool:
        """A minimum or maximum: what replaces one that leaves its window, only the
        person's events say."""
        return self.agg in ("min", "max")

    def sql(self, cond: str | None = None) -> str:
        return f"{self.agg}({self.arg}) FILTER (WHERE {cond or self.cond})"

    def stored_sql(self) -> str:
        """The value kept per person: no NULL for counts, sums and bitmasks (0 instead),
        sums as exact millionths, so adding and subtracting nights stays exact."""
        if self.agg == "sum":
            return f"CAST(coalesce({self.sql()}, 0) AS {EXACT_SUM})"
        return f"coalesce({self.sql()}, 0)" if self.agg == "bit_or" else self.sql()

    def empty_sql(self, column: str) -> str:
        """Whether a stored value says nothing (the person may as well have no row)."""
        return f"{column} IS NULL" if self.extreme else f"{column} = 0"


class Partials:
    """The partial aggregates of the shared events pass, named once each (a0, a1 ...)."""

    def __init__(self, as_of: dt.date, prefix: str = "a"):
        self.prefix = prefix
        self.as_of_day = day_number(as_of)
        self.items: dict[tuple[str, str, str], Partial] = {}

    def add(self, agg: str, arg: str, cond: str, window: int | None) -> str:
        key = (agg, arg, cond)
        if key not in self.items:
            self.items[key] = Partial(f"{self.prefix}{len(self.items)}", agg, arg, cond,
                                      window)
        return self.items[key].name

    def __iter__(self):
        return iter(self.items.values())

    def days_since(self, name: str) -> str:
        """Days from a partial of day numbers to the as-of."""
        return f"({self.as_of_day} - {name})"


class ValuePassTag:
    """What one tag adds to a value pass: aggregates per (person, value) over the events
    (`counts`: n<k>, and t<k> for first/last times), and its final per-person aggregate
    over those rows."""

    def __init__(self, k: int, cond: str):
        self.k = k
        self.where = f"FILTER (WHERE {cond})"
        self.counts = [f"count(*) {self.where} AS n{k}"]
        self.has = f"n{k} > 0"


# --------------------------------------------------------------------------- event kinds


class EventKind(Kind):
    """Kinds computed from events: in the shared pass unless `in_value_pass`."""

    def computed_by(self, tag: TagDef) -> str:
        return PASS_VALUES if self.in_value_pass(tag) else PASS_EVENTS

    def in_value_pass(self, tag: TagDef) -> bool:
        return False

    def merge_sql(self, tag: TagDef, cond: str, partials: Partials, value: str | None) -> str:
        """The tag's partial aggregate(s) per person (`partials.add`, over the events where
        condition column `cond` holds) and its value over them (a column expression);
        `value` is the pass's column of the tag's field."""
        raise NotImplementedError

    def value_sql(self, tag: TagDef, rules: TagRules) -> str:
        return event_field_sql(rules, tag.field)

    def value_final_sql(self, tag: TagDef, part: ValuePassTag) -> str:
        raise NotImplementedError


class Metric(EventKind):
    name = "metric"
    keys = ("event", "agg", "field", "window", "where")

    def parse(self, doc, raw, tag, rules):
        parse_event_scope(doc, raw, tag)
        agg = raw.get("agg")
        if agg not in AGGS:
            doc.add(doc.value_loc(raw, "agg") if "agg" in raw else tag.loc,
                    f"tag '{tag.name}': agg must be one of {', '.join(AGGS)}"
                    f"{did_you_mean(agg, AGGS)}")
            return
        tag.agg = agg
        if raw.get("field") is None:
            if agg != "count" and not doc.mistyped(raw, "field"):
                doc.add(tag.loc, f"tag '{tag.name}': agg {agg} needs `field:`")
            return
        parse_event_field(doc, raw, tag, "field", rules)
        if tag.field is None:
            return
        field_type = rules.event_fields()[tag.field]
        if agg in ("sum", "avg") and field_type != "number":
            doc.add(doc.value_loc(raw, "field"), f"tag '{tag.name}': type mismatch: "
                    f"{agg} needs a number field, '{tag.field}' is {field_type}")
        tag.type = field_type if agg in ("min", "max") else "number"

    def zero_when_no_events(self, tag):
        return tag.agg in ("count", "count_distinct", "sum")

    def in_value_pass(self, tag):
        return tag.agg == "count_distinct"

    def merge_sql(self, tag, cond, partials, value):
        window = tag.window_days
        if tag.agg == "count":
            return partials.add("count", value or "*", cond, window)
        # Sums add the field's exact millionths (`exact_field`): no float noise
        # (10257.939999999999) in what ops see, thresholds like `>= 6000` hold for amounts
        # that add up to exactly 6000, and nights of adding and subtracting stay exact.
        exact = ident(exact_field(tag.field))
        if tag.agg == "sum":
            return f"CAST({partials.add('sum', exact, cond, window)} AS DOUBLE)"
        if tag.agg == "avg":  # over the values the sum takes (not one beyond 10^18)
            total = partials.add("sum", exact, cond, window)
            count = partials.add("count", exact, cond, window)
            return round_sql(f"CAST({total} AS DOUBLE) / nullif({count}, 0)", 6)
        return partials.add(tag.agg, value, cond, window)  # min / max

    def value_final_sql(self, tag, part):  # count_distinct: one row per distinct value
        return f"count(*) FILTER (WHERE {part.has})"

    def explain(self, tag):
        return f"{tag.agg} {tag.field or ''} of {_scope_text(tag)}".replace("  ", " ")


class FirstLast(EventKind):
    """first / last: days since the first/last matching event, or a field of it."""

    keys = ("event", "value", "window", "where")
    first: ClassVar[bool]

    def parse(self, doc, raw, tag, rules):
        parse_event_scope(doc, raw, tag)
        if raw.get("value", "days_since") == "days_since":
            tag.days_since = True
            tag.type = "number"
            return
        parse_event_field(doc, raw, tag, "value", rules)
        if tag.field is not None:
            tag.type = rules.event_fields()[tag.field]

    def in_value_pass(self, tag):
        return not tag.days_since and tag.field != "ts"

    def merge_sql(self, tag, cond, partials, value):
        if tag.days_since:  # the first event is the one with the smallest day number
            return partials.days_since(
                partials.add("min" if self.first else "max", "dn", cond, tag.window_days))
        # value: ts, the time of the first/last event
        return partials.add("min" if self.first else "max", "ts", cond, tag.window_days)

    def value_final_sql(self, tag, part):
        k = part.k
        if self.first:  # the earliest value; the same instant: smallest value
            part.counts.append(f"min(e.ts) {part.where} AS t{k}")
            return f"arg_min(v, (t{k}, v)) FILTER (WHERE {part.has})"
        # last: the latest value; the same instant: largest value
        part.counts.append(f"max(e.ts) {part.where} AS t{k}")
        return f"arg_max(v, (t{k}, v)) FILTER (WHERE {part.has})"

    def carried_sql(self, tag, stored, days):
        return self.aged_sql(tag, stored, days) or stored

    def aged_sql(self, tag, stored, days):
        if not tag.days_since or not days:
            return None
        if days < 0:  # an as-of moved back: an event now after it is no value yet
            return f"CASE WHEN {stored} + {days} > 0 THEN {stored} + {days} END"
        return f"{stored} + {days}"

    def explain(self, tag):
        if tag.days_since:
            return f"days since the {self.name} {_scope_text(tag)}"
        # events without the field are passed over: the first order that has a category
        return f"{tag.field} of the {self.name} {_scope_text(tag)} with one"


class First(FirstLast):
    name = "first"
    first = True


class Last(FirstLast):
    name = "last"
    first = False


class Top(EventKind):
    name = "top"
    keys = ("event", "field", "n", "window", "where")

    def parse(self, doc, raw, tag, rules):
        parse_event_scope(doc, raw, tag)
        if require(doc, raw, tag, "field"):
            parse_event_field(doc, raw, tag, "field", rules)
        n = raw.get("n", 1)
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 100:
            doc.add(doc.value_loc(raw, "n"),
                    f"tag '{tag.name}': n must be a whole number from 1 to 100")
        else:
            tag.n = n
        tag.type = "list"

    def in_value_pass(self, tag):
        return True

    def value_final_sql(self, tag, part):  # the n smallest (-count, value)
        return f"arg_min(v, (-n{part.k}, v), {tag.n}) FILTER (WHERE {part.has})"

    def explain(self, tag):
        return f"top {tag.n or ''} {tag.field} of {_scope_text(tag)}"


class ActiveDays(EventKind):
    name = "active_days"
    keys = ("event", "window", "where")

    def parse(self, doc, raw, tag, rules):
        parse_event_scope(doc, raw, tag)
        tag.type = "number"

    def zero_when_no_events(self, tag):
        return True

    def in_value_pass(self, tag):  # windows too long for a bitmask count distinct days
        return tag.window_days is None or tag.window_days > BITMASK_DAYS

    def merge_sql(self, tag, cond, partials, value):
        # the day's bit (CASE: no shift for rows the filter drops)
        bit = (f"CASE WHEN {cond} THEN CAST(1 AS BIGINT) << "
               f"CAST({day_bit_sql('dn')} AS INTEGER) END")
        return f"CAST(bit_count({partials.add('bit_or', bit, cond, tag.window_days)}) AS BIGINT)"

    def value_sql(self, tag, rules):
        return "CAST(e.ts AS DATE)"

    def value_final_sql(self, tag, part):
        return f"count(*) FILTER (WHERE {part.has})"

    def explain(self, tag):
        return f"days with {_scope_text(tag)}"


class Streak(EventKind):
    """The longest run of consecutive days with a matching event in the window, or with
    `current: true` the run that reaches the last complete day (the day before the
    as-of date; 0 when that day has none)."""

    name = "streak"
    keys = ("event", "window", "where", "current")

    def parse(self, doc, raw, tag, rules):
        parse_event_scope(doc, raw, tag)
        current = raw.get("current", False)
        if not isinstance(current, bool):
            doc.add(doc.value_loc(raw, "current"),
                    f"tag '{tag.name}': current must be true or false")
        tag.current = current is True
        tag.type = "number"

    def computed_by(self, tag):
        return PASS_OWN

    def zero_when_no_events(self, tag):
        return True

    def own_pass_sql(self, tags: list[TagDef], cond: str, as_of: dt.date,
                     source: str = ALL_EVENTS) -> str:
        """Every streak over the same events (`cond`) from one pass. Gaps and islands:
        the days of one run share `day number - rank of the day`."""
        runs = ("SELECT person_id, count(*) AS days, max(day) AS last_day FROM (\n"
                "  SELECT person_id, day, date_diff('day', DATE '1970-01-01', day)"
                " - row_number() OVER (PARTITION BY person_id ORDER BY day) AS island\n"
                "  FROM (SELECT DISTINCT sp.person_id, CAST(e.ts AS DATE) AS day\n"
                f"    FROM {source}\n"
                f"    WHERE e.ts < {ts_literal(as_of)} AND {cond} AND sp.person_id IS NOT NULL)\n"
                ") GROUP BY person_id, island")
        yesterday = date_literal(as_of - dt.timedelta(days=1))
        values = ", ".join(
            (f"max(days) FILTER (WHERE last_day = {yesterday})" if tag.current
             else "max(days)") + f" AS {ident(tag.name)}" for tag in tags)
        return f"SELECT person_id, {values}\nFROM ({runs})\nGROUP BY person_id"

    def carried_sql(self, tag, stored, days):
        # Same events and a later day: no event yesterday, so no current run.
        return "0" if tag.current and days else stored

    def explain(self, tag):
        run = "current run (up to yesterday)" if tag.current else "longest run"
        return f"{run} of consecutive days with {_scope_text(tag)}"


# --------------------------------------------------------------------------- derived kinds


def _level_name(doc: RuleDoc, mapping: Mapping, key: str, what: str) -> str | None:
    """A tiers level name: text (a list or number would be stored as its Python form,
    `['high']`, which no condition on the tag matches)."""
    value = mapping[key]
    if isinstance(value, str) and value.strip():
        return value
    doc.add(doc.value_loc(mapping, key), f"{what} must be a text like high, not "
            f"{written(mapping, key)}")
    return None


class Tiers(Kind):
    name = "tiers"
    keys = ("levels", "default")

    def parse(self, doc, raw, tag, rules):
        tag.type = "string"
        levels = raw.get("levels")
        if not isinstance(levels, list) or not levels:
            if not doc.mistyped(raw, "levels"):
                doc.add(doc.value_loc(raw, "levels") if "levels" in raw else tag.loc,
                        f"tag '{tag.name}': tiers need `levels:`, a list of {{name, when}} in "
                        "priority order")
            return
        out: list[Level] = []
        names: set[str] = set()
        for index, level in enumerate(levels):
            for key in level if isinstance(level, Mapping) else ():
                if key not in ("name", "when"):
                    doc.add(doc.key_loc(level, key), f"tag '{tag.name}': unknown field "
                            f"'{key}' in a level{doc.near_miss(level, key, ('name', 'when'))} "
                            "(allowed: name, when)")
            if not isinstance(level, Mapping) or level.get("name") is None \
                    or level.get("when") is None:
                if not isinstance(level, Mapping) or doc.absent(level, "name") \
                        or doc.absent(level, "when"):
                    doc.add(doc.item_loc(levels, index),
                            f"tag '{tag.name}': each level needs `name:` and `when:`")
                continue
            level_name = _level_name(doc, level, "name", f"tag '{tag.name}': a level's name")
            if level_name is None:
                continue
            if level_name in names:
                doc.add(doc.value_loc(level, "name"),
                        f"tag '{tag.name}': level '{level_name}' appears twice")
            names.add(level_name)
            out.append(Level(level_name, doc.text(level, "when")))
        tag.levels = tuple(out)
        if "default" not in raw:
            doc.add(tag.loc, f"tag '{tag.name}': tiers need a `default:` level "
                    "(or `default: null` for no value)")
        elif raw["default"] is not None:
            tag.default = _level_name(doc, raw, "default", f"tag '{tag.name}': default")

    def expressions(self, tag):
        return [level.when for level in tag.levels]

    def check_types(self, doc, tag, fields, probe):
        for level in tag.levels:
            compile_located(level.when, fields, "boolean", probe,
                            f"tag '{tag.name}' level '{level.name}'", problems=doc.problems)

    def derived_sql(self, tag: TagDef, fields: Mapping[str, str], as_of: dt.date) -> str:
        def condition(level: Level) -> str:
            what = f"tag '{tag.name}' level '{level.name}'"
            return compile_located(level.when, fields, "boolean", as_of, tag.name,
                                   feature_column_sql, finite_guard=rule_guard(what)).sql

        whens = " ".join(f"WHEN {condition(lv)} THEN {literal(lv.name)}" for lv in tag.levels)
        default = literal(tag.default) if tag.default is not None else "CAST(NULL AS VARCHAR)"
        return f"CASE {whens} ELSE {default} END"

    def explain(self, tag):
        text = "; ".join(f"{lv.name} if {lv.when.value}" for lv in tag.levels)
        return text + (f"; else {tag.default}" if tag.default else "")


class Expr(Kind):
    name = "expr"
    keys = ("expr", "type")

    def parse(self, doc, raw, tag, rules):
        if require(doc, raw, tag, "expr"):
            tag.expr = doc.text(raw, "expr")
        declared = raw.get("type")
        if declared is not None and declared not in TYPES:
            doc.add(doc.value_loc(raw, "type"), f"tag '{tag.name}': unknown type "
                    f"'{declared}'{one_of(declared, TYPES)}")
        tag.type = str(declared) if declared in TYPES else ""  # else: the expression's type

    def expressions(self, tag):
        return [tag.expr] if tag.expr is not None else []

    def check_types(self, doc, tag, fields, probe):
        if tag.expr is None:
            return
        expect = tag.type if tag.type in TYPES else None
        compiled = compile_located(tag.expr, fields, expect, probe, f"tag '{tag.name}'",
                                   problems=doc.problems)
        if compiled is None or tag.broken:
            return
        if compiled.type not in TYPES:
            doc.add(tag.expr.loc, f"tag '{tag.name}': the expression is always null; "
                    "give it a value")
        else:
            tag.type = tag.type or compiled.type
            fields[tag.name] = tag.type

    def derived_sql(self, tag, fields, as_of):
        # the value itself is checked after it is computed, saying for whom
        # (`_refuse_infinite_values`); what it is computed from is guarded
        return compile_located(tag.expr, fields, tag.type or None, as_of, tag.name,
                               feature_column_sql, finite_guard=rule_guard(f"tag '{tag.name}'"),
                               guard_result=False).sql

    def explain(self, tag):
        return tag.expr.value if tag.expr is not None else ""


class Rfm(Kind):
    name = "rfm"
    keys = ("recency", "frequency", "monetary", "labels")
    roles = ("recency", "frequency", "monetary")

    def parse(self, doc, raw, tag, rules):
        tag.type = "string"
        for role in self.roles:
            if require(doc, raw, tag, role):
                tag.rfm[role] = str(raw[role])
                tag.rfm_locs[role] = doc.value_loc(raw, role)
        labels = raw.get("labels")
        if labels is None:
            return
        if not isinstance(labels, Mapping):
            doc.add(doc.value_loc(raw, "labels"),
                    f"tag '{tag.name}': labels must map segment → label")
            return
        for key, value in labels.items():
            if key not in RFM_SEGMENTS.values():
                doc.add(doc.key_loc(labels, key), f"tag '{tag.name}': unknown RFM segment "
                        f"'{key}'{one_of(key, RFM_SEGMENTS.values())}")
            else:
                tag.labels[str(key)] = str(value)

    def dependencies(self, doc, tag, tag_names, broken):
        deps = []
        for role, ref in tag.rfm.items():
            if ref in tag_names:
                deps.append(ref)
            elif ref not in PERSON_FIELDS and ref not in broken:
                doc.add(tag.rfm_locs.get(role, tag.loc),
                        f"tag '{tag.name}': {role} refers to unknown tag "
                        f"'{ref}'{did_you_mean(ref, tag_names)}")
        return tuple(dict.fromkeys(deps))

    def check_types(self, doc, tag, fields, probe):
        for role, ref in tag.rfm.items():
            ref_type = fields.get(ref)
            if ref_type is not None and ref_type != "number":
                doc.add(tag.rfm_locs.get(role, tag.loc),
                        f"tag '{tag.name}': type mismatch: {role} '{ref}' is "
                        f"{ref_type}, needs a number")

    def _complete(self, tag: TagDef) -> str:
        return " AND ".join(f"{ident(tag.rfm[k])} IS NOT NULL" for k in self.roles)

    def averages_name(self, tag: TagDef) -> str:
        return ident(f"avg_{tag.name}")

    # The averages' columns: no tag can be named so (a hyphen), so a tag named `r` read
    # bare in the same layer is not ambiguous with them.
    AVERAGES = {"recency": ident("rfm-r"), "frequency": ident("rfm-f"),
                "monetary": ident("rfm-m")}

    def cross_join_sql(self, tag: TagDef, source: str) -> str:
        """One-row averages of R, F and M over the persons that have all three (buyers)."""
        cols = ", ".join(f"avg({ident(tag.rfm[k])}) AS {self.AVERAGES[k]}" for k in self.roles)
        return (f"(SELECT {cols} FROM {source} "
                f"WHERE {self._complete(tag)}) {self.averages_name(tag)}")

    def derived_sql(self, tag, fields, as_of):
        r, f, m = (ident(tag.rfm[k]) for k in self.roles)
        ar, af, am = (f"{self.averages_name(tag)}.{self.AVERAGES[k]}" for k in self.roles)
        code = (f"(CASE WHEN {r} < {ar} THEN 4 ELSE 0 END + "
                f"CASE WHEN {f} > {af} THEN 2 ELSE 0 END + "
                f"CASE WHEN {m} > {am} THEN 1 ELSE 0 END)")
        whens = " ".join(
            f"WHEN {4 * rr + 2 * ff + mm} THEN {literal(tag.labels.get(seg, seg))}"
            for (rr, ff, mm), seg in RFM_SEGMENTS.items())
        return f"CASE WHEN {self._complete(tag)} THEN CASE {code} {whens} END END"


KINDS: dict[str, Kind] = {kind.name: kind for kind in (
    Tiers(), Metric(), First(), Last(), Top(), ActiveDays(), Streak(), Rfm(), Expr())}


def kind_of(tag: TagDef) -> Any:
    return KINDS[tag.kind]

