"""Tag rules (`rules/tags.yaml`): typed model, validation, dependency order, SQL builders.

Everything here is pure: YAML text in, `TagRules` (or a `RuleError` listing every
problem with file:line:col) out; `TagRules` + as-of in, SQL strings out.

Computation plan for one run (see `features_select_sql`):
  1. ONE conditional-aggregate pass over `events` joined to `subject_persons` for every
     metric / first / last / active_days tag (`agg(...) FILTER (WHERE ...)`);
  2. one more scan for all `top` tags together (count per value, rank, keep N);
  3. tags over tags (tiers, expr, rfm) as layers of plain column expressions over
     `persons` + the pass results, in dependency order.
Windows: "last N days" is `[as_of - N days, as_of)`. No event on or after the as-of
day is ever used (that day is not complete yet), windowed or not.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from dataclasses import field as dc_field
from pathlib import Path
from typing import Any

from leadctl.errors import Location, RuleError
from leadctl.sqlfn import round_sql

TAGS_FILE = "tags.yaml"

KINDS = ("tiers", "metric", "first", "last", "top", "active_days", "rfm", "expr")
EVENT_KINDS = ("metric", "first", "last", "active_days")  # computed in the single events pass
AGGS = ("count", "sum", "avg", "min", "max", "count_distinct")
# Aggregates that mean "0" (not "unknown") for a person without matching events.
ZERO_WHEN_NO_EVENTS = ("count", "count_distinct", "sum")
TYPES = ("number", "string", "boolean", "date", "timestamp", "list")
ATTRIBUTE_TYPES = ("number", "string", "boolean", "date", "timestamp")
DEFAULT_CATEGORIES = ("value", "behaviour", "preference", "lifecycle")

# Person attributes (columns of `persons`) usable in expressions and kept in person_features.
PERSON_FIELDS: dict[str, str] = {
    "name": "string", "city": "string", "province": "string", "channel": "string",
    "source": "string", "sources": "list", "lead_count": "number",
    "first_seen": "timestamp", "last_seen": "timestamp",
}
# Event columns usable in event filters (`where:`) and as `field:`.
EVENT_COLUMNS: dict[str, str] = {
    "amount": "number", "category": "string", "event_type": "string", "ts": "timestamp",
}

COMMON_KEYS = ("name", "kind", "category", "description", "highlight")
KIND_KEYS: dict[str, tuple[str, ...]] = {
    "tiers": ("levels", "default"),
    "metric": ("event", "agg", "field", "window", "where"),
    "first": ("event", "value", "window", "where"),
    "last": ("event", "value", "window", "where"),
    "top": ("event", "field", "n", "window", "where"),
    "active_days": ("event", "window", "where"),
    "rfm": ("recency", "frequency", "monetary", "labels"),
    "expr": ("expr", "type"),
}
TOP_KEYS = ("categories", "event_attributes", "tags")

# RFM: R "up" = fewer days since the last purchase than average; F/M "up" = above average.
RFM_SEGMENTS: dict[tuple[bool, bool, bool], str] = {
    (True, True, True): "important_value",
    (False, True, True): "important_retain",
    (True, False, True): "important_develop",
    (False, False, True): "important_win_back",
    (True, True, False): "general_value",
    (False, True, False): "general_retain",
    (True, False, False): "general_develop",
    (False, False, False): "general_win_back",
}

NAME_RE = re.compile(r"^[a-z_][a-z0-9_]*$")
EVENT_NAME_RE = re.compile(r"^[a-z0-9_][a-z0-9_.:\-]*$")
WINDOW_RE = re.compile(r"^\s*(\d+)\s*(d|day|days)\s*$")
# Names that would shadow SQL keywords or the table's key if used as tag names.
RESERVED_NAMES = frozenset({
    "person_id", "and", "or", "not", "in", "is", "null", "true", "false", "like", "between",
    "case", "when", "then", "else", "end", "select", "from", "where", "as", "all", "any",
})


@dataclass(frozen=True)
class Text:
    """A rule string (an expression) with where it is in the file."""

    value: str
    loc: Location | None
    # Maps a character offset of `value` to its place in the file (from the loader).
    locate: Callable[[int], Location] | None = dc_field(default=None, compare=False)

    def loc_at(self, offset: int) -> Location | None:
        if self.locate is not None:
            return self.locate(offset)
        return self.loc


@dataclass(frozen=True)
class Level:
    name: str
    when: Text


@dataclass
class TagDef:
    name: str
    kind: str
    category: str
    description: str
    loc: Location | None
    type: str = "number"
    events: tuple[str, ...] = ()
    agg: str | None = None
    field: str | None = None  # metric / top: the event field; first / last: `value` if a field
    window_days: int | None = None
    where: Text | None = None
    days_since: bool = False  # first / last: value is days since the event
    n: int | None = None
    levels: tuple[Level, ...] = ()
    default: str | None = None
    rfm: dict[str, str] = dc_field(default_factory=dict)  # recency/frequency/monetary -> name
    labels: dict[str, str] = dc_field(default_factory=dict)
    expr: Text | None = None
    deps: tuple[str, ...] = ()
    highlight: bool = False
    broken: bool = False  # has a problem (reported); kept so references to it still check

    def level_names(self) -> list[str]:
        """Ordered values of a tiers / rfm tag (best first), else []."""
        if self.kind == "tiers":
            return [lv.name for lv in self.levels] + (
                [self.default] if self.default is not None else [])
        if self.kind == "rfm":
            return [self.labels.get(s, s) for s in RFM_SEGMENTS.values()]
        return []

    def to_dict(self) -> dict:
        return {"tag": self.name, "kind": self.kind, "category": self.category,
                "description": self.description, "type": self.type,
                "levels": self.level_names() or None, "highlight": self.highlight}


@dataclass
class TagRules:
    path: Path
    tags: list[TagDef]  # in dependency order (definition order where free)
    event_attributes: dict[str, str] = dc_field(default_factory=dict)
    categories: list[str] = dc_field(default_factory=lambda: list(DEFAULT_CATEGORIES))
    rules_hash: str = ""

    @property
    def by_name(self) -> dict[str, TagDef]:
        return {t.name: t for t in self.tags}

    def definition_order(self) -> list[TagDef]:
        return sorted(self.tags, key=lambda t: (t.loc.line if t.loc else 0, t.name))

    def fields(self) -> dict[str, str]:
        """Names usable in expressions over person_features, with their types."""
        return {**PERSON_FIELDS, **{t.name: t.type for t in self.definition_order()}}

    def event_fields(self) -> dict[str, str]:
        return {**EVENT_COLUMNS, **self.event_attributes}


# --------------------------------------------------------------------------- loading


Problems = list[tuple[Location | None, str]]


def tags_path(rules_dir: Path | str | None) -> Path:
    return Path(rules_dir or "rules") / TAGS_FILE


def load_tag_rules(rules_dir: Path | str | None) -> TagRules:
    """Parse, validate and order `rules_dir/tags.yaml`; RuleError lists every problem."""
    path = tags_path(rules_dir)
    if not path.exists():
        raise RuleError([(Location(str(path), 1, 1), "tags.yaml not found")])
    from leadctl.rules.load import load_yaml

    doc = load_yaml(path)
    return parse_tag_rules(doc, path)


def parse_tag_rules(doc: Any, path: Path) -> TagRules:
    problems: Problems = []
    ctx = _Ctx(path, problems)
    text = path.read_bytes() if path.exists() else b""
    rules = TagRules(path=path, tags=[], rules_hash=hashlib.sha256(text).hexdigest()[:16])
    if doc is None:
        doc = {}
    if not isinstance(doc, Mapping):
        raise RuleError([(ctx.loc(doc), "tags.yaml must be a mapping with a `tags:` list")])
    for key in doc:
        if key not in TOP_KEYS:
            problems.append((ctx.key_loc(doc, key),
                             f"unknown key '{key}' (known: {', '.join(TOP_KEYS)})"))
    rules.event_attributes = _parse_event_attributes(ctx, doc)
    rules.categories = _parse_categories(ctx, doc)
    raw_tags = doc.get("tags")
    if raw_tags is None:
        problems.append((ctx.loc(doc), "missing `tags:` (a list of tag definitions)"))
        raw_tags = []
    elif not isinstance(raw_tags, list):
        problems.append((ctx.value_loc(doc, "tags"), "`tags:` must be a list"))
        raw_tags = []
    tags: list[TagDef] = []
    seen: dict[str, Location | None] = {}
    for index, raw in enumerate(raw_tags):
        tag = _parse_tag(ctx, raw, ctx.item_loc(raw_tags, index), rules)
        if tag is None:
            continue
        if tag.name in seen:
            problems.append((ctx.value_loc(raw, "name"),
                             f"tag '{tag.name}' is defined twice (first at {seen[tag.name]})"))
            continue
        seen[tag.name] = tag.loc
        tags.append(tag)
    rules.tags = tags
    _resolve(ctx, rules)
    if problems:
        raise RuleError(_sorted(problems))
    return rules


def _sorted(problems: Problems) -> Problems:
    def key(p):
        loc = p[0]
        return (loc.file, loc.line, loc.col) if loc else ("", 0, 0)

    unique = list(dict.fromkeys(problems))
    return sorted(unique, key=key)


class _Ctx:
    """Problem collection plus location look-ups on the loader's nodes."""

    def __init__(self, path: Path, problems: Problems):
        self.path = path
        self.problems = problems

    def fallback(self) -> Location:
        return Location(str(self.path), 1, 1)

    def loc(self, node: Any) -> Location | None:
        return getattr(node, "loc", None) or self.fallback()

    def key_loc(self, mapping: Any, key: str) -> Location | None:
        getter = getattr(mapping, "key_loc", None)
        loc = getter(key) if getter else None
        return loc or self.loc(mapping)

    def value_loc(self, mapping: Any, key: str) -> Location | None:
        getter = getattr(mapping, "value_loc", None)
        loc = getter(key) if getter else None
        return loc or self.key_loc(mapping, key)

    def item_loc(self, seq: Any, index: int) -> Location | None:
        getter = getattr(seq, "item_loc", None)
        loc = getter(index) if getter else None
        if loc is None:
            loc = self.loc(seq[index]) if index < len(seq) else self.loc(seq)
        return loc

    def text(self, mapping: Any, key: str) -> Text:
        value = mapping[key]
        if isinstance(value, bool):  # YAML reads a bare true/false as a boolean
            value = "true" if value else "false"
        elif isinstance(value, (Mapping, list)):
            self.problems.append((self.value_loc(mapping, key),
                                  f"`{key}:` must be an expression (text), not a structure"))
            value = "true"  # placeholder that compiles: the problem is reported once
        getter = getattr(mapping, "text_loc", None)
        locate = (lambda offset: getter(key, offset)) if getter else None
        return Text(str(value), self.value_loc(mapping, key), locate)


def _parse_event_attributes(ctx: _Ctx, doc: Mapping) -> dict[str, str]:
    raw = doc.get("event_attributes")
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        ctx.problems.append((ctx.value_loc(doc, "event_attributes"),
                             "event_attributes must map attribute name → type"))
        return {}
    out: dict[str, str] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not NAME_RE.match(key):
            ctx.problems.append((ctx.key_loc(raw, key), f"event attribute name '{key}' must be "
                                 "lower_snake_case (letters, digits, _)"))
        elif key in EVENT_COLUMNS:
            ctx.problems.append((ctx.key_loc(raw, key),
                                 f"'{key}' is an event column already; do not declare it"))
        elif value not in ATTRIBUTE_TYPES:
            ctx.problems.append((ctx.value_loc(raw, key), f"unknown type '{value}' for event "
                                 f"attribute '{key}' (known: {', '.join(ATTRIBUTE_TYPES)})"))
        else:
            out[key] = str(value)
    return out


def _parse_categories(ctx: _Ctx, doc: Mapping) -> list[str]:
    raw = doc.get("categories")
    if raw is None:
        return list(DEFAULT_CATEGORIES)
    if not isinstance(raw, list) or not all(isinstance(c, str) and NAME_RE.match(c) for c in raw):
        ctx.problems.append((ctx.value_loc(doc, "categories"),
                             "categories must be a list of lower_snake_case names"))
        return list(DEFAULT_CATEGORIES)
    return [str(c) for c in raw]


def _parse_tag(ctx: _Ctx, raw: Any, item_loc: Location | None, rules: TagRules) -> TagDef | None:
    p = ctx.problems
    if not isinstance(raw, Mapping):
        p.append((item_loc, "each tag must be a mapping with name, kind, ..."))
        return None
    name = raw.get("name")
    if name is None:
        p.append((ctx.loc(raw) or item_loc, "tag without `name:`"))
        return None
    name = str(name)
    if not NAME_RE.match(name) or name in RESERVED_NAMES:
        p.append((ctx.value_loc(raw, "name"), f"tag name '{name}' must be lower_snake_case "
                  "(letters, digits, _) and not a reserved word"))
        return None
    if name in PERSON_FIELDS:
        p.append((ctx.value_loc(raw, "name"),
                  f"tag name '{name}' is a person attribute; choose another name"))
        return None
    kind = raw.get("kind")
    if kind not in KINDS:
        where = ctx.value_loc(raw, "kind") if "kind" in raw else ctx.key_loc(raw, "name")
        p.append((where, f"tag '{name}': unknown kind '{kind}' (known: {', '.join(KINDS)})"
                  if kind is not None else f"tag '{name}': missing `kind:`"))
        return None
    allowed = COMMON_KEYS + KIND_KEYS[kind]
    for key in raw:
        if key not in allowed:
            p.append((ctx.key_loc(raw, key), f"tag '{name}': unknown field '{key}' for kind "
                      f"{kind} (allowed: {', '.join(allowed)})"))
    category = str(raw.get("category") or "other")
    if category not in rules.categories and category != "other":
        p.append((ctx.value_loc(raw, "category"), f"tag '{name}': unknown category "
                  f"'{category}' (known: {', '.join(rules.categories)})"))
    tag = TagDef(name=name, kind=kind, category=category,
                 description=str(raw.get("description") or ""), loc=ctx.key_loc(raw, "name"))
    highlight = raw.get("highlight", False)
    if not isinstance(highlight, bool):
        p.append((ctx.value_loc(raw, "highlight"),
                  f"tag '{name}': highlight must be true or false"))
    tag.highlight = highlight is True
    before = len(p)
    _PARSERS[kind](ctx, raw, tag, rules)
    return tag if len(p) == before else _broken(tag)


def _broken(tag: TagDef) -> TagDef:
    # Kept so other tags referring to it do not report a second, misleading error.
    tag.broken = True
    return tag


def _require(ctx: _Ctx, raw: Mapping, tag: TagDef, key: str) -> bool:
    if raw.get(key) is None:
        ctx.problems.append((tag.loc, f"tag '{tag.name}': kind {tag.kind} needs `{key}:`"))
        return False
    return True


def _parse_events(ctx: _Ctx, raw: Mapping, tag: TagDef) -> None:
    if not _require(ctx, raw, tag, "event"):
        return
    value = raw["event"]
    names = value if isinstance(value, list) else [value]
    out = []
    for item in names:
        text = str(item).strip().lower() if isinstance(item, str) else None
        if not text or not EVENT_NAME_RE.match(text):
            ctx.problems.append((ctx.value_loc(raw, "event"), f"tag '{tag.name}': event must "
                                 "be an event type name or a list of them"))
            return
        out.append(text)
    tag.events = tuple(dict.fromkeys(out))


def _parse_window(ctx: _Ctx, raw: Mapping, tag: TagDef) -> None:
    value = raw.get("window")
    if value is None or value == "all":
        return
    match = WINDOW_RE.match(str(value)) if not isinstance(value, bool) else None
    days = int(value) if isinstance(value, int) and not isinstance(value, bool) else (
        int(match.group(1)) if match else None)
    if days is None or days < 1:
        ctx.problems.append((ctx.value_loc(raw, "window"), f"tag '{tag.name}': window must be "
                             f"a number of days like 30d (or `all`), not '{value}'"))
        return
    tag.window_days = days


def _parse_where(ctx: _Ctx, raw: Mapping, tag: TagDef) -> None:
    if raw.get("where") is not None:
        tag.where = ctx.text(raw, "where")


def _parse_event_field(ctx: _Ctx, raw: Mapping, tag: TagDef, key: str, rules: TagRules) -> None:
    value = raw.get(key)
    known = rules.event_fields()
    if value not in known:
        ctx.problems.append((ctx.value_loc(raw, key), f"tag '{tag.name}': unknown event field "
                             f"'{value}' (known: {', '.join(known)}; declare others under "
                             "event_attributes)"))
        return
    tag.field = str(value)


def _parse_metric(ctx: _Ctx, raw: Mapping, tag: TagDef, rules: TagRules) -> None:
    _parse_events(ctx, raw, tag)
    _parse_window(ctx, raw, tag)
    _parse_where(ctx, raw, tag)
    agg = raw.get("agg")
    if agg not in AGGS:
        where = ctx.value_loc(raw, "agg") if "agg" in raw else tag.loc
        ctx.problems.append((where, f"tag '{tag.name}': agg must be one of {', '.join(AGGS)}"))
        return
    tag.agg = agg
    if raw.get("field") is None:
        if agg != "count":
            ctx.problems.append((tag.loc, f"tag '{tag.name}': agg {agg} needs `field:`"))
        return
    _parse_event_field(ctx, raw, tag, "field", rules)
    if tag.field is None:
        return
    field_type = rules.event_fields()[tag.field]
    if agg in ("sum", "avg") and field_type != "number":
        ctx.problems.append((ctx.value_loc(raw, "field"), f"tag '{tag.name}': type mismatch: "
                             f"{agg} needs a number field, '{tag.field}' is {field_type}"))
    tag.type = field_type if agg in ("min", "max") else "number"


def _parse_first_last(ctx: _Ctx, raw: Mapping, tag: TagDef, rules: TagRules) -> None:
    _parse_events(ctx, raw, tag)
    _parse_window(ctx, raw, tag)
    _parse_where(ctx, raw, tag)
    value = raw.get("value", "days_since")
    if value == "days_since":
        tag.days_since = True
        tag.type = "number"
        return
    _parse_event_field(ctx, raw, tag, "value", rules)
    if tag.field is not None:
        tag.type = rules.event_fields()[tag.field]


def _parse_top(ctx: _Ctx, raw: Mapping, tag: TagDef, rules: TagRules) -> None:
    _parse_events(ctx, raw, tag)
    _parse_window(ctx, raw, tag)
    _parse_where(ctx, raw, tag)
    if _require(ctx, raw, tag, "field"):
        _parse_event_field(ctx, raw, tag, "field", rules)
    n = raw.get("n", 1)
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 100:
        ctx.problems.append((ctx.value_loc(raw, "n"),
                             f"tag '{tag.name}': n must be a whole number from 1 to 100"))
    else:
        tag.n = n
    tag.type = "list"


def _parse_active_days(ctx: _Ctx, raw: Mapping, tag: TagDef, rules: TagRules) -> None:
    _parse_events(ctx, raw, tag)
    _parse_window(ctx, raw, tag)
    _parse_where(ctx, raw, tag)
    tag.type = "number"


def _parse_tiers(ctx: _Ctx, raw: Mapping, tag: TagDef, rules: TagRules) -> None:
    tag.type = "string"
    levels = raw.get("levels")
    if not isinstance(levels, list) or not levels:
        where = ctx.value_loc(raw, "levels") if "levels" in raw else tag.loc
        ctx.problems.append((where, f"tag '{tag.name}': tiers need `levels:`, a list of "
                             "{name, when} in priority order"))
        return
    out: list[Level] = []
    names: set[str] = set()
    for index, level in enumerate(levels):
        loc = ctx.item_loc(levels, index)
        if not isinstance(level, Mapping) or level.get("name") is None \
                or level.get("when") is None:
            ctx.problems.append((loc, f"tag '{tag.name}': each level needs `name:` and `when:`"))
            continue
        for key in level:
            if key not in ("name", "when"):
                ctx.problems.append((ctx.key_loc(level, key), f"tag '{tag.name}': unknown "
                                     f"field '{key}' in a level (allowed: name, when)"))
        level_name = str(level["name"])
        if level_name in names:
            ctx.problems.append((ctx.value_loc(level, "name"),
                                 f"tag '{tag.name}': level '{level_name}' appears twice"))
        names.add(level_name)
        out.append(Level(level_name, ctx.text(level, "when")))
    tag.levels = tuple(out)
    if "default" not in raw:
        ctx.problems.append((tag.loc, f"tag '{tag.name}': tiers need a `default:` level "
                             "(or `default: null` for no value)"))
    elif raw["default"] is not None:
        tag.default = str(raw["default"])


def _parse_rfm(ctx: _Ctx, raw: Mapping, tag: TagDef, rules: TagRules) -> None:
    tag.type = "string"
    for role in ("recency", "frequency", "monetary"):
        if _require(ctx, raw, tag, role):
            tag.rfm[role] = str(raw[role])
    labels = raw.get("labels")
    if labels is None:
        return
    if not isinstance(labels, Mapping):
        ctx.problems.append((ctx.value_loc(raw, "labels"),
                             f"tag '{tag.name}': labels must map segment → label"))
        return
    for key, value in labels.items():
        if key not in RFM_SEGMENTS.values():
            ctx.problems.append((ctx.key_loc(labels, key), f"tag '{tag.name}': unknown RFM "
                                 f"segment '{key}' (known: {', '.join(RFM_SEGMENTS.values())})"))
        else:
            tag.labels[str(key)] = str(value)


def _parse_expr(ctx: _Ctx, raw: Mapping, tag: TagDef, rules: TagRules) -> None:
    if _require(ctx, raw, tag, "expr"):
        tag.expr = ctx.text(raw, "expr")
    declared = raw.get("type")
    if declared is not None and declared not in TYPES:
        ctx.problems.append((ctx.value_loc(raw, "type"), f"tag '{tag.name}': unknown type "
                             f"'{declared}' (known: {', '.join(TYPES)})"))
    tag.type = str(declared) if declared in TYPES else ""


_PARSERS = {"metric": _parse_metric, "first": _parse_first_last, "last": _parse_first_last,
            "top": _parse_top, "active_days": _parse_active_days, "tiers": _parse_tiers,
            "rfm": _parse_rfm, "expr": _parse_expr}


# ------------------------------------------------------------- dependencies and types

def names_in(text: str) -> set[str]:
    """Field/tag names an expression refers to (for the dependency order). A text the
    expression language rejects has none here; compiling it reports the error."""
    from leadctl.rules.expr import ExprError, expr_names

    try:
        return expr_names(text)
    except ExprError:
        return set()


def _expressions(tag: TagDef) -> list[Text]:
    if tag.kind == "tiers":
        return [level.when for level in tag.levels]
    if tag.kind == "expr" and tag.expr is not None:
        return [tag.expr]
    return []


def _resolve(ctx: _Ctx, rules: TagRules) -> None:
    """Dependencies → order (cycles are errors) → compile every expression with types."""
    by_name = {t.name: t for t in rules.tags}
    for tag in rules.tags:
        if tag.kind == "rfm":
            deps = []
            for role, ref in tag.rfm.items():
                if ref in by_name:
                    deps.append(ref)
                elif ref not in PERSON_FIELDS:
                    ctx.problems.append((tag.loc, f"tag '{tag.name}': {role} refers to unknown "
                                         f"tag '{ref}'"))
            tag.deps = tuple(dict.fromkeys(deps))
        else:
            words: set[str] = set()
            for text in _expressions(tag):
                words |= names_in(text.value)
            tag.deps = tuple(n for n in by_name if n in words)
    ordered, cycles = _topological(rules.tags)
    for cycle in cycles:
        first = by_name[cycle[0]]
        ctx.problems.append((first.loc, "dependency cycle: " + " -> ".join(cycle + [cycle[0]])))
    rules.tags = ordered
    _check_types(ctx, rules, {n for c in cycles for n in c})


def _topological(tags: list[TagDef]) -> tuple[list[TagDef], list[list[str]]]:
    """Stable topological order (definition order among ready tags) and the cycles found."""
    by_name = {t.name: t for t in tags}
    done: set[str] = set()
    ordered: list[TagDef] = []
    remaining = list(tags)
    while remaining:
        ready = [t for t in remaining if all(d in done for d in t.deps)]
        if not ready:
            break
        tag = ready[0]
        ordered.append(tag)
        done.add(tag.name)
        remaining.remove(tag)
    cycles: list[list[str]] = []
    in_cycle: set[str] = set()
    for tag in remaining:
        if tag.name in in_cycle:
            continue
        cycle = _find_cycle(tag.name, by_name, done)
        if cycle and not in_cycle.intersection(cycle):
            cycles.append(cycle)
            in_cycle.update(cycle)
    ordered.extend(remaining)  # kept (unordered) so every tag is still type-checked
    return ordered, cycles


def _find_cycle(start: str, by_name: dict[str, TagDef], done: set[str]) -> list[str] | None:
    path: list[str] = []
    on_path: set[str] = set()
    visited: set[str] = set()

    def visit(name: str) -> list[str] | None:
        if name in on_path:
            return path[path.index(name):]
        if name in visited or name in done:
            return None
        visited.add(name)
        path.append(name)
        on_path.add(name)
        for dep in by_name[name].deps:
            found = visit(dep)
            if found:
                return found
        path.pop()
        on_path.discard(name)
        return None

    return visit(start)


def _check_types(ctx: _Ctx, rules: TagRules, cyclic: set[str]) -> None:
    """Compile every expression once (as of an arbitrary date) to check names and types."""
    fields = dict(PERSON_FIELDS)
    for tag in rules.tags:
        if tag.kind != "expr" and tag.type in TYPES:  # broken ones too: no misleading 2nd error
            fields[tag.name] = tag.type
    probe = dt.date(2000, 1, 1)
    for tag in rules.tags:
        if tag.where is not None:
            compile_event_filter(ctx, rules, tag, probe)
        if tag.name in cyclic:
            continue
        if tag.kind == "tiers":
            for level in tag.levels:
                compile_checked(ctx, level.when, fields, "boolean", probe,
                                f"tag '{tag.name}' level '{level.name}'")
        elif tag.kind == "expr" and tag.expr is not None:
            expect = tag.type if tag.type in TYPES else None
            compiled = compile_checked(ctx, tag.expr, fields, expect, probe, f"tag '{tag.name}'")
            if compiled is None or tag.broken:
                continue
            if compiled.type not in TYPES:
                ctx.problems.append((tag.expr.loc, f"tag '{tag.name}': the expression is "
                                     "always null; give it a value"))
            else:
                tag.type = tag.type or compiled.type
                fields[tag.name] = tag.type
        elif tag.kind == "rfm":
            for role, ref in tag.rfm.items():
                ref_type = fields.get(ref)
                if ref_type is not None and ref_type != "number":
                    ctx.problems.append((tag.loc, f"tag '{tag.name}': type mismatch: {role} "
                                         f"'{ref}' is {ref_type}, needs a number"))
    for tag in rules.tags:
        if tag.kind == "expr" and not tag.type:
            tag.type = "string"  # only when its expression failed; the run refuses anyway


def compile_checked(ctx: _Ctx | None, text: Text, fields: Mapping[str, str], expect: str | None,
                    as_of: dt.date, what: str, column_sql=None):
    """compile_expr, turning ExprError into a located problem (or raising it when ctx is None)."""
    from leadctl.rules.expr import ExprError, compile_expr

    try:
        return compile_expr(text.value, fields, expect=expect, as_of=as_of,
                            column_sql=column_sql)
    except ExprError as exc:
        problem = (text.loc_at(getattr(exc, "offset", 0) or 0),
                   f"{what}: {getattr(exc, 'message', None) or exc}")
        if ctx is None:
            raise RuleError([problem]) from None
        ctx.problems.append(problem)
        return None


def compile_event_filter(ctx: _Ctx | None, rules: TagRules, tag: TagDef, as_of: dt.date):
    return compile_checked(ctx, tag.where, rules.event_fields(), "boolean", as_of,
                           f"tag '{tag.name}' where", column_sql=event_column_sql(rules))


# --------------------------------------------------------------------------- fields


def feature_fields(source: Any) -> dict[str, str]:
    """Columns of person_features usable in expressions → type.

    `source`: TagRules, a rules directory (Path/str), or a Workspace (reads the
    tag_definitions stored by the last tag run)."""
    if isinstance(source, TagRules):
        return source.fields()
    if isinstance(source, (str, Path)):
        return load_tag_rules(source).fields()
    if hasattr(source, "rows"):
        if not source.table_exists("tag_definitions"):
            return dict(PERSON_FIELDS)
        rows = source.rows("SELECT tag, type FROM tag_definitions ORDER BY position")
        return {**PERSON_FIELDS, **{r["tag"]: r["type"] for r in rows}}
    raise TypeError(f"feature_fields: cannot read fields from {type(source).__name__}")


# --------------------------------------------------------------------------- SQL builders


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def ts_literal(day: dt.date) -> str:
    return f"TIMESTAMP '{day.isoformat()} 00:00:00'"


def date_literal(day: dt.date) -> str:
    return f"DATE '{day.isoformat()}'"


_ATTRIBUTE_CASTS = {"number": "DOUBLE", "boolean": "BOOLEAN", "date": "DATE",
                    "timestamp": "TIMESTAMP"}


def event_field_sql(rules: TagRules, name: str, alias: str = "e") -> str:
    if name in EVENT_COLUMNS:
        return f"{alias}.{ident(name)}"
    extracted = f"json_extract_string({alias}.attributes, {literal('$.' + name)})"
    cast = _ATTRIBUTE_CASTS.get(rules.event_attributes.get(name, "string"))
    return f"TRY_CAST({extracted} AS {cast})" if cast else extracted


def event_column_sql(rules: TagRules):
    def column_sql(name: str) -> str:
        return event_field_sql(rules, name)

    return column_sql


def feature_column_sql(name: str) -> str:
    return ident(name)


def _events_in(events: tuple[str, ...], alias: str = "e") -> str:
    if len(events) == 1:
        return f"{alias}.event_type = {literal(events[0])}"
    return f"{alias}.event_type IN ({', '.join(literal(e) for e in events)})"


def event_condition_sql(rules: TagRules, tag: TagDef, as_of: dt.date) -> str:
    """Which events a tag looks at (every pass already keeps only `ts < as_of`)."""
    parts = [_events_in(tag.events)]
    if tag.window_days is not None:
        parts.append(f"e.ts >= {ts_literal(as_of - dt.timedelta(days=tag.window_days))}")
    if tag.where is not None:
        compiled = compile_event_filter(None, rules, tag, as_of)
        parts.append(f"({compiled.sql})")
    return " AND ".join(parts)


# Longest window whose active days fit a BIGINT bitmask (bit d-1 for "d days ago").
BITMASK_DAYS = 63


def in_value_pass(tag: TagDef) -> bool:
    """Tags that need per-value counts: top, count_distinct, the field of the first/last
    event, active_days over windows too long for a bitmask."""
    return (tag.kind == "top"
            or (tag.kind == "metric" and tag.agg == "count_distinct")
            or (tag.kind in ("first", "last") and not tag.days_since and tag.field != "ts")
            or (tag.kind == "active_days"
                and (tag.window_days is None or tag.window_days > BITMASK_DAYS)))


def _event_pass_tags(rules: TagRules) -> list[TagDef]:
    return [t for t in rules.tags if t.kind in EVENT_KINDS and not in_value_pass(t)]


def _value_pass_tags(rules: TagRules) -> list[TagDef]:
    return [t for t in rules.tags if in_value_pass(t)]


def _events_scope_sql(tags: list[TagDef], as_of: dt.date) -> str:
    """Row filter for a pass: only the event types and days any of its tags can use."""
    events = tuple(dict.fromkeys(e for t in tags for e in t.events))
    parts = [f"e.ts < {ts_literal(as_of)}", _events_in(events)]
    windows = [t.window_days for t in tags]
    if all(w is not None for w in windows):
        parts.append(f"e.ts >= {ts_literal(as_of - dt.timedelta(days=max(windows)))}")
    return " AND ".join(parts)


class _Columns:
    """Named SQL expressions, deduplicated by their text (tags share conditions/partials)."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.items: dict[str, str] = {}

    def add(self, sql: str) -> str:
        if sql not in self.items:
            self.items[sql] = f"{self.prefix}{len(self.items)}"
        return self.items[sql]

    def select_list(self, indent: str = "       ") -> str:
        return f",\n{indent}".join(f"{sql} AS {name}" for sql, name in self.items.items())


def event_pass_sql(rules: TagRules, as_of: dt.date) -> str | None:
    """Every metric / first / last / active_days tag from ONE pass over events.

    Two stages, both plain GROUP BYs: conditional aggregates per event subject (no join
    on the 10M-row side), then the few partial rows of each person merged after a join
    to subject_persons. Distinct day counts are bitmasks (bit_or), so they merge too."""
    tags = _event_pass_tags(rules)
    if not tags:
        return None
    conds = _Columns("c")
    partials = _Columns("a")
    merged: list[str] = []
    for tag in tags:
        cond = conds.add(event_condition_sql(rules, tag, as_of))
        merged.append(f"{_merge_sql(rules, tag, cond, partials)} AS {ident(tag.name)}")
    day = f"date_diff('day', CAST(e.ts AS DATE), {date_literal(as_of)})"
    fields = sorted({t.field for t in tags if t.field})
    scope_cols = ["e.subject", "e.ts", f"{day} AS d"] + [
        f"{event_field_sql(rules, f)} AS {ident('f_' + f)}" for f in fields]
    merged_cols = ",\n       ".join(merged)
    return (f"WITH tag_scope AS (\n"
            f"  SELECT {', '.join(scope_cols)},\n         {conds.select_list('         ')}\n"
            f"  FROM events e\n  WHERE {_events_scope_sql(tags, as_of)}\n"
            f"), tag_subjects AS (\n"
            f"  SELECT subject,\n         {partials.select_list('         ')}\n"
            f"  FROM tag_scope GROUP BY subject\n"
            f")\nSELECT sp.person_id,\n       {merged_cols}\n"
            f"FROM tag_subjects s JOIN subject_persons sp ON sp.subject = s.subject\n"
            f"WHERE sp.person_id IS NOT NULL\nGROUP BY sp.person_id")


def _merge_sql(rules: TagRules, tag: TagDef, cond: str, partials: _Columns) -> str:
    """Per-subject partial aggregate(s) of a tag, and how they combine per person."""
    value = ident("f_" + tag.field) if tag.field else None
    where = f"FILTER (WHERE {cond})"
    if tag.kind == "metric":
        if tag.agg == "count":
            counted = value or "*"
            return f"sum({partials.add(f'count({counted}) {where}')})"
        # Sums are rounded to 6 decimals: no float noise (10257.939999999999) in what ops
        # see, and thresholds like `>= 6000` hold for amounts that add up to exactly 6000.
        if tag.agg == "sum":
            return round_sql(f"sum({partials.add(f'sum({value}) {where}')})", 6)
        if tag.agg == "avg":
            total = partials.add(f"sum({value}) {where}")
            count = partials.add(f"count({value}) {where}")
            return round_sql(f"sum({total}) / nullif(sum({count}), 0)", 6)
        return f"{tag.agg}({partials.add(f'{tag.agg}({value}) {where}')})"  # min / max
    if tag.kind == "active_days":
        bit = f"CASE WHEN {cond} THEN CAST(1 AS BIGINT) << CAST(d - 1 AS INTEGER) END"
        return f"CAST(bit_count(bit_or({partials.add(f'bit_or({bit})')})) AS BIGINT)"
    first = tag.kind == "first"
    if tag.days_since:  # the first event is the one with the most days since
        pick = "max" if first else "min"
        return f"{pick}({partials.add(f'{pick}(d) {where}')})"
    pick = "min" if first else "max"  # value: ts, the time of the first/last event
    return f"{pick}({partials.add(f'{pick}(ts) {where}')})"


def _takes_all(tag: TagDef) -> bool:
    return tag.window_days is None and tag.where is None


def value_pass_sql(rules: TagRules, as_of: dt.date) -> list[tuple[str, str, list[TagDef]]]:
    """(name, SELECT, tags) per value expression: count / first / last time per (subject,
    value), merged per (person, value), then top-N lists, distinct counts, first/last
    values from those few rows."""
    groups: dict[str, list[TagDef]] = {}
    for tag in _value_pass_tags(rules):
        value = ("CAST(e.ts AS DATE)" if tag.kind == "active_days"
                 else event_field_sql(rules, tag.field))
        groups.setdefault(value, []).append(tag)
    out = []
    for index, (value, tags) in enumerate(groups.items()):
        conds = [event_condition_sql(rules, t, as_of) for t in tags]
        stage1, stage2, finals = [], [], []
        for k, (tag, cond) in enumerate(zip(tags, conds, strict=True)):
            where = f"FILTER (WHERE {cond})"
            stage1.append(f"count(*) {where} AS n{k}")
            stage2.append(f"sum(n{k}) AS n{k}")
            has = f"n{k} > 0"
            if tag.kind == "top":  # the n smallest (-count, value): count desc, then value
                finals.append(f"arg_min(v, (-n{k}, v), {tag.n}) FILTER (WHERE {has})")
            elif tag.kind in ("metric", "active_days"):
                finals.append(f"count(*) FILTER (WHERE {has})")
            elif tag.kind == "first":  # the earliest value; the same instant: smallest value
                stage1.append(f"min(e.ts) {where} AS t{k}")
                stage2.append(f"min(t{k}) AS t{k}")
                finals.append(f"arg_min(v, (t{k}, v)) FILTER (WHERE {has})")
            else:  # last: the latest value; the same instant: largest value
                stage1.append(f"max(e.ts) {where} AS t{k}")
                stage2.append(f"max(t{k}) AS t{k}")
                finals.append(f"arg_max(v, (t{k}, v)) FILTER (WHERE {has})")
        scope = _events_scope_sql(tags, as_of)
        # Keep only rows some tag counts (unless one tag takes every row in scope).
        needed = "" if any(_takes_all(t) for t in tags) else (
            "\n    AND (" + " OR ".join(f"({c})" for c in conds) + ")")
        final_cols = ",\n       ".join(f"{f} AS {ident(t.name)}"
                                       for f, t in zip(finals, tags, strict=True))
        sql = (f"WITH tag_value_subjects AS (\n"
               f"  SELECT e.subject, {value} AS v,\n         "
               + ",\n         ".join(stage1) + "\n"
               f"  FROM events e\n"
               f"  WHERE {scope} AND {value} IS NOT NULL{needed}\n"
               f"  GROUP BY e.subject, {value}\n"
               f"), tag_value_persons AS (\n"
               f"  SELECT sp.person_id, s.v, " + ", ".join(stage2) + "\n"
               f"  FROM tag_value_subjects s JOIN subject_persons sp ON sp.subject = s.subject\n"
               f"  WHERE sp.person_id IS NOT NULL GROUP BY sp.person_id, s.v\n"
               f")\nSELECT person_id,\n       {final_cols}\n"
               f"FROM tag_value_persons GROUP BY person_id")
        out.append((f"tag_values{index}", sql, tags))
    return out


def derived_tag_sql(rules: TagRules, tag: TagDef, as_of: dt.date,
                    fields: Mapping[str, str]) -> str:
    """Column expression for a tiers / expr / rfm tag over the previous layer's columns."""
    if tag.kind == "tiers":
        conditions = [compile_checked(None, lv.when, fields, "boolean", as_of, tag.name,
                                      feature_column_sql).sql for lv in tag.levels]
        whens = " ".join(f"WHEN {cond} THEN {literal(lv.name)}"
                         for cond, lv in zip(conditions, tag.levels, strict=True))
        default = literal(tag.default) if tag.default is not None else "CAST(NULL AS VARCHAR)"
        return f"CASE {whens} ELSE {default} END"
    if tag.kind == "expr":
        return compile_checked(None, tag.expr, fields, tag.type or None, as_of, tag.name,
                               feature_column_sql).sql
    if tag.kind == "rfm":
        r, f, m = (ident(tag.rfm[k]) for k in ("recency", "frequency", "monetary"))
        averages = rfm_averages_name(tag)
        code = (f"(CASE WHEN {r} < {averages}.r THEN 4 ELSE 0 END + "
                f"CASE WHEN {f} > {averages}.f THEN 2 ELSE 0 END + "
                f"CASE WHEN {m} > {averages}.m THEN 1 ELSE 0 END)")
        whens = " ".join(
            f"WHEN {4 * rr + 2 * ff + mm} THEN {literal(tag.labels.get(seg, seg))}"
            for (rr, ff, mm), seg in RFM_SEGMENTS.items())
        return f"CASE WHEN {_rfm_complete(tag)} THEN CASE {code} {whens} END END"
    raise ValueError(f"not a derived tag kind: {tag.kind}")


def rfm_averages_name(tag: TagDef) -> str:
    return ident(f"avg_{tag.name}")


def _rfm_complete(tag: TagDef) -> str:
    return " AND ".join(f"{ident(tag.rfm[k])} IS NOT NULL"
                        for k in ("recency", "frequency", "monetary"))


def rfm_averages_sql(tag: TagDef, source: str) -> str:
    """One-row averages of R, F and M over the persons that have all three (the buyers)."""
    r, f, m = (ident(tag.rfm[k]) for k in ("recency", "frequency", "monetary"))
    return (f"(SELECT avg({r}) AS r, avg({f}) AS f, avg({m}) AS m FROM {source} "
            f"WHERE {_rfm_complete(tag)}) {rfm_averages_name(tag)}")


def _layers(rules: TagRules) -> list[list[TagDef]]:
    """Derived tags grouped so each layer only uses columns of earlier layers."""
    depth: dict[str, int] = {}
    for tag in rules.tags:  # dependency order: deps come first
        if tag.kind in EVENT_KINDS or tag.kind == "top":  # computed from events
            depth[tag.name] = 0
        else:
            depth[tag.name] = 1 + max((depth.get(d, 0) for d in tag.deps), default=0)
    layers: dict[int, list[TagDef]] = {}
    for tag in rules.tags:
        if depth[tag.name] > 0:
            layers.setdefault(depth[tag.name], []).append(tag)
    return [layers[k] for k in sorted(layers)]


def features_select_sql(rules: TagRules, as_of: dt.date) -> str:
    """SELECT of person_features: one row per person, attributes + one typed column per tag."""
    check_runnable(rules)
    fields = rules.fields()
    ctes: list[str] = []
    base_cols = ["p.person_id"] + [f"p.{ident(n)}" for n in PERSON_FIELDS]
    joins = ""
    event_sql = event_pass_sql(rules, as_of)
    if event_sql:
        ctes.append(f"tag_events AS (\n{event_sql}\n)")
        joins += "\nLEFT JOIN tag_events ev ON ev.person_id = p.person_id"
        for tag in _event_pass_tags(rules):
            base_cols.append(f"{_zero_default(tag, 'ev.' + ident(tag.name))} AS {ident(tag.name)}")
    for name, sql, tags in value_pass_sql(rules, as_of):
        ctes.append(f"{name} AS (\n{sql}\n)")
        joins += f"\nLEFT JOIN {name} ON {name}.person_id = p.person_id"
        for tag in tags:
            col = f"{name}.{ident(tag.name)}"
            base_cols.append(f"{_zero_default(tag, col)} AS {ident(tag.name)}")
    ctes.append("layer0 AS (\nSELECT " + ",\n       ".join(base_cols)
                + f"\nFROM persons p{joins}\n)")
    last = "layer0"
    for index, layer in enumerate(_layers(rules), start=1):
        cols = ",\n       ".join(f"{derived_tag_sql(rules, t, as_of, fields)} AS {ident(t.name)}"
                                 for t in layer)
        averages = "".join(f"\nCROSS JOIN {rfm_averages_sql(t, last)}"
                           for t in layer if t.kind == "rfm")
        ctes.append(f"layer{index} AS (\nSELECT {last}.*,\n       {cols}\nFROM {last}{averages}\n)")
        last = f"layer{index}"
    out_cols = ["person_id"] + list(PERSON_FIELDS) + [t.name for t in rules.definition_order()]
    return ("WITH " + ",\n".join(ctes) + "\nSELECT " + ", ".join(ident(c) for c in out_cols)
            + f"\nFROM {last}")


def _zero_default(tag: TagDef, column: str) -> str:
    """Counts and sums are 0 (not unknown) for a person without matching events."""
    zero = tag.kind == "active_days" or (tag.kind == "metric" and tag.agg in ZERO_WHEN_NO_EVENTS)
    return f"coalesce({column}, 0)" if zero else column


def check_runnable(rules: TagRules) -> None:
    broken = [t for t in rules.tags if t.broken]
    if broken:
        raise RuleError([(t.loc, f"tag '{t.name}' is invalid") for t in broken])


def compile_tag_rules(rules: TagRules, as_of: dt.date, target: str = "person_features",
                      *, temporary: bool = False) -> list[str]:
    """Statements that (re)build `target` with every tag of `rules` as of `as_of`."""
    kind = "TEMP TABLE" if temporary else "TABLE"
    return [f"CREATE OR REPLACE {kind} {ident(target)} AS\n"
            f"{features_select_sql(rules, as_of)}"]


def tag_definitions_sql(rules: TagRules) -> list[str]:
    """Replace tag_definitions (what the portrait groups by) with the current rules."""
    import json

    def levels(tag: TagDef) -> str:
        names = tag.level_names()
        text = json.dumps(names, ensure_ascii=False, separators=(",", ":"))
        return f"CAST({literal(text)} AS JSON)" if names \
            else "CAST(NULL AS JSON)"

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
