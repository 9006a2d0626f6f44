"""Identity overrides, the read side: must-link and cannot-link entries parsed from the
`overrides:` key of `rules/identity.yaml` and from `rules/identity_overrides.yaml` (the
file `leadctl identity link / unlink / accept / reject` append to; its format is in
identity/overrides_file.py), checked with file:line:col.

Problems (rule errors): an unknown kind or key; neither or both of `leads` / `values`;
a must_link naming fewer than two leads (or no value); a cannot_link naming other than
two leads, or more than one value; a lead or value written as a number or empty; a value
that is a null token (`nan`, `N/A`: no identifier); no `reason:`; and conflicting
overrides: a cannot_link whose two leads a chain of must_link entries joins, or a
cannot_link value that a must_link names. Whether a lead exists is not checked here
(the data may arrive later): `resolve` warns about leads it cannot find.

How `resolve` applies them: identity/overrides_sql.py.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from leadctl.errors import Location
from leadctl.identity.normalize import FULL_WIDTH_TABLE, ascii_lower, normalize_phone
from leadctl.identity.overrides_file import KINDS
from leadctl.rules.located import RuleDoc, one_of
from leadctl.sqltext import NULL_TOKENS

MUST_LINK, CANNOT_LINK = KINDS
ENTRY_KEYS = ("kind", "leads", "values", "reason", "by", "at")
LEAD_KEYS = ("source", "lead_id")
VALUE_KEYS = ("type", "value")
ID_TYPES = ("phone", "email", "wechat", "device_id", "id_card")  # as identity/config.py


@dataclass(frozen=True)
class LeadRef:
    """One lead: `source` None when written as a plain lead id (unique across sources)."""

    source: str | None
    lead_id: str

    def __str__(self) -> str:
        return f"{self.source}/{self.lead_id}" if self.source else self.lead_id


@dataclass(frozen=True)
class ValueRef:
    id_type: str
    value: str


@dataclass(frozen=True)
class Override:
    kind: str  # must_link | cannot_link
    leads: tuple[LeadRef, ...] = ()
    values: tuple[ValueRef, ...] = ()
    reason: str = ""
    by: str | None = None
    at: str | None = None
    loc: Location | None = field(default=None, compare=False)

    def describe(self) -> str:
        what = ", ".join(str(lead) for lead in self.leads) or ", ".join(
            f"{v.id_type} value" for v in self.values)
        return f"{self.kind} of {what}" + (f" ({self.loc})" if self.loc else "")


def parse_overrides(ctx: RuleDoc, seq: Any, owner: Mapping, key: str) -> list[Override]:
    """The entries of the list at owner[key]; every problem added to `ctx`."""
    if seq is None:
        return []
    if not isinstance(seq, list):
        ctx.add(ctx.value_loc(owner, key), f"`{key}:` must be a list of entries "
                "(kind: must_link | cannot_link, leads or values, reason)")
        return []
    result = []
    for index, item in enumerate(seq):
        entry = _entry(ctx, item, ctx.item_loc(seq, index))
        if entry is not None:
            result.append(entry)
    return result


def _entry(ctx: RuleDoc, item: Any, where: Location) -> Override | None:
    if not isinstance(item, Mapping):
        ctx.add(where, "an override must be a mapping with kind, leads or values, reason")
        return None
    before = len(ctx.problems)
    for key in item:
        if key not in ENTRY_KEYS:
            ctx.add(ctx.key_loc(item, key), f"override: unknown key '{key}'"
                    f"{one_of(key, ENTRY_KEYS)}")
    kind = item.get("kind")
    if kind not in KINDS:
        ctx.add(ctx.value_loc(item, "kind") if "kind" in item else where,
                "override needs `kind: must_link` or `kind: cannot_link`" if kind is None
                else f"unknown override kind {kind!r}{one_of(str(kind), KINDS)}")
    has_leads, has_values = "leads" in item, "values" in item
    if has_leads == has_values:
        ctx.add(where, "an override names either `leads:` or `values:`, not "
                + ("both" if has_leads else "neither"))
    leads = _leads(ctx, item) if has_leads else ()
    values = _values(ctx, item) if has_values else ()
    if kind in KINDS and has_leads != has_values:
        _check_counts(ctx, item, kind, leads, values)
    reason = item.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        ctx.add(ctx.value_loc(item, "reason") if "reason" in item else where,
                "override needs a `reason:` (why, for the reviewer)")
    by, at = item.get("by"), item.get("at")
    if len(ctx.problems) > before:
        return None
    if isinstance(at, dt.datetime | dt.date):
        at = at.isoformat()
    return Override(kind, leads, values, reason.strip(), None if by is None else str(by),
                    None if at is None else str(at), where)


def _text(ctx: RuleDoc, mapping: Any, key: str, loc: Location, what: str) -> str | None:
    value = mapping.get(key) if isinstance(mapping, Mapping) else mapping
    if isinstance(value, bool) or value is None or (isinstance(value, str) and not value.strip()):
        ctx.add(loc, f"{what} must be a non-empty text value")
        return None
    if isinstance(value, (int, float)):
        ctx.add(loc, f"{what}: write {value!r} in quotes ('...'): unquoted digits are read "
                "as a number and lose leading zeros")
        return None
    if not isinstance(value, str):
        ctx.add(loc, f"{what} must be a text value, not a structure")
        return None
    return value.strip()


def _leads(ctx: RuleDoc, item: Mapping) -> tuple[LeadRef, ...]:
    seq = item["leads"]
    if not isinstance(seq, list):
        ctx.add(ctx.value_loc(item, "leads"), "`leads:` must be a list of lead ids or "
                "{source, lead_id}")
        return ()
    result = []
    for index, lead in enumerate(seq):
        loc = ctx.item_loc(seq, index)
        if isinstance(lead, Mapping):
            for key in lead:
                if key not in LEAD_KEYS:
                    ctx.add(ctx.key_loc(lead, key), f"lead: unknown key '{key}'"
                            f"{one_of(key, LEAD_KEYS)}")
            source = _text(ctx, lead, "source", ctx.value_loc(lead, "source"), "lead source")
            lead_id = _text(ctx, lead, "lead_id", ctx.value_loc(lead, "lead_id"), "lead_id")
            if source and lead_id:
                result.append(LeadRef(source, lead_id))
        else:
            lead_id = _text(ctx, lead, "", loc, "lead id")
            if lead_id:
                result.append(LeadRef(None, lead_id))
    return tuple(result)


def _values(ctx: RuleDoc, item: Mapping) -> tuple[ValueRef, ...]:
    seq = item["values"]
    if not isinstance(seq, list):
        ctx.add(ctx.value_loc(item, "values"), "`values:` must be a list of {type, value}")
        return ()
    result = []
    for index, value in enumerate(seq):
        loc = ctx.item_loc(seq, index)
        if not isinstance(value, Mapping):
            ctx.add(loc, "each value must be a mapping {type: phone, value: '...'}")
            continue
        for key in value:
            if key not in VALUE_KEYS:
                ctx.add(ctx.key_loc(value, key), f"value: unknown key '{key}'"
                        f"{one_of(key, VALUE_KEYS)}")
        id_type = value.get("type")
        if id_type not in ID_TYPES:
            ctx.add(ctx.value_loc(value, "type") if "type" in value else loc,
                    f"unknown identifier type {id_type!r}{one_of(str(id_type), ID_TYPES)}")
            continue
        text = _text(ctx, value, "value", ctx.value_loc(value, "value"), f"{id_type} value")
        if text and text.strip().lower() in NULL_TOKENS:
            ctx.add(ctx.value_loc(value, "value"), f"{id_type} value {text!r} is a null token: "
                    "no identifier (resolve never reads it as a value)")
        elif text:
            result.append(ValueRef(id_type, text))
    return tuple(result)


def _check_counts(ctx: RuleDoc, item: Mapping, kind: str, leads: tuple[LeadRef, ...],
                  values: tuple[ValueRef, ...]) -> None:
    if "leads" in item and isinstance(item["leads"], list):
        where = ctx.value_loc(item, "leads")
        distinct = len(set(lead_nodes(list(leads)).values()))  # K1 and src/K1: one lead
        if len(leads) != len(item["leads"]):
            return  # a broken lead is already reported
        if kind == MUST_LINK and distinct < 2:
            ctx.add(where, "must_link names two or more different leads")
        elif kind == CANNOT_LINK and (len(leads) != 2 or distinct != 2):
            ctx.add(where, "cannot_link names exactly two different leads (or one value)")
    if "values" in item and isinstance(item["values"], list):
        where = ctx.value_loc(item, "values")
        if len(values) != len(item["values"]):
            return
        if kind == MUST_LINK and not values:
            ctx.add(where, "must_link names one or more values")
        elif kind == CANNOT_LINK and len(values) != 1:
            ctx.add(where, "cannot_link names exactly one value (that value never links); "
                    "to keep two leads apart, name the two `leads:`")


# -- conflicts -----------------------------------------------------------------------------

def _value_key(value: ValueRef, region: str = "CN") -> tuple[str, str]:
    text = value.value.strip()
    if value.id_type == "phone":  # as resolve reads it: 021-62345678 is +86 21 6234 5678
        text = normalize_phone(text, region) or text
    # as resolve keys it: full-width forms read as ASCII, ASCII letters lower-cased
    return value.id_type, text.upper() if value.id_type == "id_card" else ascii_lower(
        text.translate(FULL_WIDTH_TABLE))


def lead_nodes(leads: list[LeadRef]) -> dict[LeadRef, tuple[str | None, str]]:
    """Which of `leads` name one lead: a plain id stands for the one lead of that id (the
    data must have one, or resolve applies nothing), so it is the lead `source/id` names
    where the others name that id in one source only; two sources are two leads, whatever
    a plain id elsewhere says."""
    sources: dict[str, set[str]] = {}
    for lead in leads:
        if lead.source is not None:
            sources.setdefault(lead.lead_id, set()).add(lead.source)

    def node(lead: LeadRef) -> tuple[str | None, str]:
        named = sources.get(lead.lead_id, set())
        if lead.source is None and len(named) == 1:
            return next(iter(named)), lead.lead_id
        return lead.source, lead.lead_id
    return {lead: node(lead) for lead in leads}


def root(parent: dict, node: Any) -> Any:
    """The representative of `node` in a union-find forest of override entries and the
    leads they join (`parent`: node → parent; a new node is its own), halving paths."""
    parent.setdefault(node, node)
    while parent[node] != node:
        parent[node] = parent[parent[node]]
        node = parent[node]
    return node


def conflicts(overrides: list[Override],
              region: str = "CN") -> list[tuple[Location | None, str]]:
    """Overrides that contradict each other: a cannot_link of two leads that must_link
    entries join (directly or through a chain), a cannot_link value a must_link names."""
    node_of = lead_nodes([lead for o in overrides for lead in o.leads])
    parent: dict[tuple, tuple] = {}
    via: dict[tuple, list[Override]] = {}

    def find(node: tuple) -> tuple:
        return root(parent, node)

    for override in overrides:
        if override.kind != MUST_LINK or not override.leads:
            continue
        nodes = [node_of[lead] for lead in override.leads]
        for node in nodes[1:]:
            a, b = find(nodes[0]), find(node)
            if a != b:
                parent[b] = a
                via[a] = via.get(a, []) + via.pop(b, [])
        top = find(nodes[0])
        via[top] = via.get(top, []) + [override]
    must_values = {}
    for override in overrides:
        if override.kind == MUST_LINK:
            for value in override.values:
                must_values.setdefault(_value_key(value, region), override)
    problems = []
    for override in overrides:
        if override.kind != CANNOT_LINK:
            continue
        if override.leads:
            first, second = (node_of[lead] for lead in override.leads)
            if first == second:
                problems.append((override.loc, f"cannot_link names one lead twice: "
                                 f"{override.leads[0]} and {override.leads[1]}"))
                continue
            a, b = find(first), find(second)
            if a == b:
                joined = "; ".join(str(o.loc) for o in via.get(a, []) if o.loc)
                problems.append((override.loc, f"conflicting overrides: cannot_link of "
                                 f"{override.leads[0]} and {override.leads[1]}, but must_link "
                                 f"entries join them (at {joined})"))
        for value in override.values:
            other = must_values.get(_value_key(value, region))
            if other is not None:
                problems.append((override.loc, f"conflicting overrides: cannot_link of a "
                                 f"{value.id_type} value that must_link at {other.loc} names"))
    return problems
