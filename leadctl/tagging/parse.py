"""`rules/tags.yaml` → `TagRules`: validation with file:line:col, dependency order
(cycles are errors), and every expression compiled once against typed fields.

Pure: YAML in, TagRules (or a RuleError listing every problem) out. Each kind's own
keys are parsed by its class in `kinds.py`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from leadctl.errors import Location, RuleError
from leadctl.identity.persons import PERSON_COLUMNS, PLACE_COLUMNS
from leadctl.ingest.sources import load_sources_config
from leadctl.routing.model import ROUTE_FIELDS
from leadctl.rules.bounds import written
from leadctl.rules.expr import element_of, list_of
from leadctl.rules.load import rule_path
from leadctl.rules.located import (
    Fields,
    Problems,
    RuleDoc,
    declared_names,
    named_in,
    one_of,
)
from leadctl.tagging.fields import compile_event_filter
from leadctl.tagging.kinds import KINDS
from leadctl.tagging.model import (
    ATTRIBUTE_TYPES,
    COMMON_KEYS,
    DEFAULT_CATEGORIES,
    EVENT_COLUMNS,
    NAME_RE,
    PERSON_FIELDS,
    RESERVED_NAMES,
    TAGS_FILE,
    TOP_KEYS,
    TYPES,
    TagDef,
    TagRules,
)
from leadctl.views.find import EXTRA_FIELDS

# Fields `find` (and a funnel's `entry:`) and route conditions read beside the tags: the
# score, the grade and the routing state. A tag of one of these names would hide the field
# from `find` (a tag column wins there) or be hidden by it in route conditions (the field
# wins there), so it is refused. Taken from those two places, which define them.
BUILTIN_FIELDS: dict[str, str] = {
    name: ("find and route conditions" if name in ROUTE_FIELDS else "find")
    for name in EXTRA_FIELDS}
BUILTIN_FIELDS.update({name: "route conditions" for name in ROUTE_FIELDS
                       if name not in EXTRA_FIELDS})


def _workspace_timezone(rules_dir: Path | str | None) -> str:
    """sources.yaml's time zone; its default while the file has problems (reported where
    sources.yaml is loaded, with every other rule file's)."""
    try:
        return load_sources_config(rules_dir).timezone
    except RuleError:
        return TagRules.timezone


def load_tag_rules(rules_dir: Path | str | None, problems: Problems | None = None) -> TagRules:
    """Parse, validate and order `rules_dir/tags.yaml`; RuleError lists every problem.
    With `problems`, the problems are appended there instead and the rules returned,
    their broken names marked (what scoring and routing check against). A file that
    cannot be read at all still raises."""
    path = rule_path(rules_dir, TAGS_FILE)
    if not path.exists():
        raise RuleError([(Location(str(path), 1, 1), "tags.yaml not found")])
    rule_doc, doc = RuleDoc.read(path, "a `tags:` list", TOP_KEYS)
    rules = TagRules(path=path, tags=[], rules_hash=rule_doc.file_hash(),
                     timezone=_workspace_timezone(rules_dir))
    rules.event_attributes = _parse_event_attributes(rule_doc, doc, rules)
    rules.categories = _parse_categories(rule_doc, doc)
    raw_tags = rule_doc.list_at(doc, "tags", "missing `tags:` (a list of tag definitions)",
                                "`tags:` must be a list")
    seen: dict[str, Location | None] = {}
    twice: list[TagDef] = []
    for index, raw in enumerate(raw_tags):
        tag = _parse_tag(rule_doc, raw, rule_doc.item_loc(raw_tags, index), rules)
        if tag is None:
            continue
        if tag.name in seen:
            rule_doc.add(rule_doc.value_loc(raw, "name"),
                         f"tag '{tag.name}' is defined twice (first at {seen[tag.name]})")
            twice.append(tag)
            continue
        seen[tag.name] = tag.loc
        rules.tags.append(tag)
    _resolve(rule_doc, rules, twice)
    if problems is not None:
        problems.extend(rule_doc.found())
    else:
        rule_doc.raise_if_problems()
    return rules


def _parse_event_attributes(doc: RuleDoc, top: Mapping, rules: TagRules) -> dict[str, str]:
    raw = top.get("event_attributes")
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        doc.add(doc.value_loc(top, "event_attributes"),
                "event_attributes must map attribute name → type")
        return {}
    out: dict[str, str] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not NAME_RE.match(key):
            rules.broken_attributes.update(declared_names(key))
            doc.add(doc.key_loc(raw, key), f"event attribute name '{key}' must be "
                    "lower_snake_case (letters, digits, _)")
        elif key in EVENT_COLUMNS:
            doc.add(doc.key_loc(raw, key), f"'{key}' is an event column already; do not "
                    "declare it")
        elif value not in ATTRIBUTE_TYPES:
            rules.broken_attributes.add(key)
            doc.add(doc.value_loc(raw, key), f"unknown type '{value}' for event attribute "
                    f"'{key}'{one_of(value, ATTRIBUTE_TYPES)}")
        else:
            out[key] = str(value)
    return out


def _parse_categories(doc: RuleDoc, top: Mapping) -> list[str]:
    raw = top.get("categories")
    if raw is None:
        return list(DEFAULT_CATEGORIES)
    if not isinstance(raw, list) or not all(isinstance(c, str) and NAME_RE.match(c) for c in raw):
        doc.add(doc.value_loc(top, "categories"),
                "categories must be a list of lower_snake_case names")
        return list(DEFAULT_CATEGORIES)
    return [str(c) for c in raw]


def _parse_tag(doc: RuleDoc, raw: Any, item_loc: Location | None,
               rules: TagRules) -> TagDef | None:
    """The keys every kind shares, then the kind's own. A tag with a problem is kept,
    marked broken, so tags that refer to it report no second, misleading error; one
    that cannot be kept (bad name, unknown kind) goes to `rules.broken`."""
    if not isinstance(raw, Mapping):
        doc.add(item_loc, "each tag must be a mapping with name, kind, ...")
        return None
    name = raw.get("name")
    if name is None:
        doc.add(doc.loc(raw) or item_loc, "tag without `name:`")
        return None
    name = str(name)
    if not NAME_RE.match(name) or name in RESERVED_NAMES:
        rules.broken.update(declared_names(name))
        doc.add(doc.value_loc(raw, "name"), f"tag name '{name}' must be lower_snake_case "
                "(letters, digits, _) and not a reserved word")
        return None
    if name in PERSON_FIELDS or name in PERSON_COLUMNS or name in PLACE_COLUMNS:
        # (a tag named like a column of persons, `phones`, was left out of `export persons`)
        doc.add(doc.value_loc(raw, "name"),
                f"tag name '{name}' is a person attribute; choose another name")
        return None
    if name in BUILTIN_FIELDS:
        rules.broken.add(name)  # expressions naming it report nothing more
        doc.add(doc.value_loc(raw, "name"), f"tag name '{name}' is a built-in field of "
                f"{BUILTIN_FIELDS[name]}; choose another name")
        return None
    kind = raw.get("kind")
    if not named_in(kind, KINDS):
        rules.broken.add(name)
        where = doc.value_loc(raw, "kind") if "kind" in raw else doc.key_loc(raw, "name")
        doc.add(where, f"tag '{name}': unknown kind '{kind}'{one_of(kind, KINDS)}"
                if kind is not None
                else f"tag '{name}': missing `kind:`")
        return None
    allowed = COMMON_KEYS + KINDS[kind].keys
    for key in raw:
        if key not in allowed:
            doc.add(doc.key_loc(raw, key), f"tag '{name}': unknown field "
                    f"'{key}'{doc.near_miss(raw, key, allowed)} for kind {kind} "
                    f"(allowed: {', '.join(allowed)})")
    category = str(raw.get("category") or "other")
    if category not in rules.categories and category != "other":
        doc.add(doc.value_loc(raw, "category"), f"tag '{name}': unknown category "
                f"'{category}'{one_of(category, rules.categories)}")
    description = raw.get("description")
    if description is not None and not isinstance(description, str):
        doc.add(doc.value_loc(raw, "description"),
                f"tag '{name}': description must be a text, not {written(raw, 'description')}")
    tag = TagDef(name=name, kind=kind, category=category,
                 description=description if isinstance(description, str) else "",
                 loc=doc.key_loc(raw, "name"))
    highlight = raw.get("highlight", False)
    if not isinstance(highlight, bool):
        doc.add(doc.value_loc(raw, "highlight"),
                f"tag '{name}': highlight must be true or false")
    tag.highlight = highlight is True
    before = len(doc.problems)
    KINDS[kind].parse(doc, raw, tag, rules)
    # a mistyped key the kind needs: its "needs" is not reported, but the tag is broken
    tag.broken = len(doc.problems) != before or any(doc.mistyped(raw, k) for k in allowed)
    if tag.type == "list" and element_of(tag.type) is None and tag.field is not None:
        # a list of an event field's values (top): `contains(tag, value)` checks the value
        element = rules.event_fields().get(tag.field)
        if element in ATTRIBUTE_TYPES:
            tag.type = list_of(element)
    return tag


# ------------------------------------------------------------- dependencies and types


def _resolve(doc: RuleDoc, rules: TagRules, duplicates: list[TagDef]) -> None:
    """Dependencies → order (cycles are errors) → compile every expression with types,
    those of the `duplicates` (tags defined twice, not computed) too."""
    names = [t.name for t in rules.tags]
    for tag in rules.tags:
        tag.deps = KINDS[tag.kind].dependencies(doc, tag, names, rules.broken)
    ordered, cycles = _topological(rules.tags)
    by_name = rules.by_name
    for cycle in cycles:
        doc.add(by_name[cycle[0]].loc, "dependency cycle: " + " -> ".join(cycle + [cycle[0]]))
    rules.tags = ordered
    _check_types(doc, rules, {n for c in cycles for n in c}, names, duplicates)


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


def _check_types(doc: RuleDoc, rules: TagRules, cyclic: set[str], names: list[str],
                 duplicates: list[TagDef]) -> None:
    """Compile every expression once (as of an arbitrary date) to check names and types.
    An expr tag whose type stays unknown (its expression failed, or it is in a cycle)
    is broken: expressions naming it report nothing more. A tag defined twice
    (`duplicates`) is checked last, against every kept tag, changing none: what is wrong
    inside it is said with the duplicate, not only once its name is fixed."""
    fields = Fields(PERSON_FIELDS)
    fields.broken = rules.broken  # the same set (Fields copies one given): it grows below
    for tag in rules.tags:
        if tag.kind != "expr" and tag.type in TYPES:  # broken ones too: no misleading 2nd error
            fields[tag.name] = tag.type
        elif tag.kind == "expr" and not tag.type and tag.name in cyclic:
            rules.broken.add(tag.name)
    probe = dt.date(2000, 1, 1)
    for tag in rules.tags:
        if tag.where is not None:
            compile_event_filter(rules, tag, probe, problems=doc.problems)
        if tag.name not in cyclic:
            KINDS[tag.kind].check_types(doc, tag, fields, probe)
        if tag.kind == "expr" and not tag.type:
            rules.broken.add(tag.name)
            tag.type = "string"  # only when its expression failed; the run refuses anyway
    for tag in duplicates:
        KINDS[tag.kind].dependencies(doc, tag, names, rules.broken)
        if tag.where is not None:
            compile_event_filter(rules, tag, probe, problems=doc.problems)
        KINDS[tag.kind].check_types(doc, tag, Fields(fields, fields.broken), probe)
