"""`rules/funnels.yaml` → `FunnelRules`, or one RuleError listing every problem with its
file:line:col. Step `where:` conditions are compiled against the event fields (those of
tags.yaml, the UTM fields, `source`, and funnels.yaml's own `event_attributes:`), the
`entry:` population against the person fields `leadctl find` reads, and every `by:`
dimension is resolved (an event field, or a tag: `tag:NAME` or a plain tag name).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from leadctl.campaigns.funnels import (
    ATTRIBUTIONS,
    FUNNEL_KEYS,
    FUNNELS_FILE,
    STEP_KEYS,
    TAG_PREFIX,
    TOP_KEYS,
    UTM_FIELDS,
    Dimension,
    Funnel,
    FunnelRules,
    Step,
)
from leadctl.rules.bounds import window_days
from leadctl.rules.load import rule_path
from leadctl.rules.located import (
    NAME_RE,
    Fields,
    Problems,
    RuleDoc,
    compile_located,
    declared_names,
    did_you_mean,
)
from leadctl.tagging.kinds import event_names
from leadctl.tagging.model import ATTRIBUTE_TYPES, EVENT_COLUMNS
from leadctl.views.find import EXTRA_FIELDS

PROBE = dt.date(2000, 1, 1)


def funnel_event_fields(tags=None, own: Mapping[str, str] | None = None) -> Fields:
    """Event fields a funnel's `where:` and `by:` may name: event columns, `source`, the
    UTM fields, tags.yaml's event attributes and funnels.yaml's own."""
    base = dict(tags.event_fields()) if tags is not None else dict(EVENT_COLUMNS)
    broken = set(tags.event_fields().broken) if tags is not None else set()
    return Fields({**base, "source": "string", **{u: "string" for u in UTM_FIELDS},
                   **(own or {})}, broken)


def entry_fields(tags=None) -> Fields:
    """What an `entry:` expression may use at check time (the tags, person attributes,
    score, grade and routing state), as `leadctl find` reads them."""
    fields = tags.fields() if tags is not None else Fields()
    return Fields({**fields, **{n: t for n, (_, t) in EXTRA_FIELDS.items() if n not in fields}},
                  getattr(fields, "broken", ()))


def resolve_dimension(name: Any, event_fields: Mapping[str, str],
                      tag_names: set[str] | None) -> Dimension | str:
    """A `by:` / `--by` name as a Dimension, or why it is not one. Event fields win over
    a tag of the same name; `tag:NAME` always names a tag."""
    text = str(name).strip() if isinstance(name, str) else None
    if not text:
        return f"a dimension must be a field or tag name, not {name!r}"
    if text.startswith(TAG_PREFIX):
        tag = text[len(TAG_PREFIX):].strip()
        if tag_names is not None and tag not in tag_names:
            return f"unknown tag '{tag}'{did_you_mean(tag, tag_names)}"
        return Dimension(text, "tag", tag)
    if text in event_fields and text not in ("ts", "amount", "event_type"):
        return Dimension(text, "event", text)
    if tag_names is not None and text in tag_names:
        return Dimension(text, "tag", text)
    known = [n for n in event_fields if n not in ("ts", "amount", "event_type")]
    return (f"unknown dimension '{text}'{did_you_mean(text, [*known, *(tag_names or ())])} "
            f"(event fields: {', '.join(known)}; or a tag as tag:NAME)")


def load_funnel_rules(rules_dir: Path | str | None, tags=None,
                      problems: Problems | None = None) -> FunnelRules:
    """Parse and validate `rules_dir/funnels.yaml` (with the tag rules `tags`, also its
    expressions and tag dimensions). Without the file: `present=False`, no funnels."""
    path = rule_path(rules_dir, FUNNELS_FILE)
    if not path.exists():
        return FunnelRules(path=path, present=False)
    d, doc = RuleDoc.read(path, "a `funnels:` list", TOP_KEYS)
    rules = FunnelRules(path=path)
    broken: set[str] = set()  # attributes declared with a problem: reported there only
    rules.event_attributes = _parse_attributes(d, doc, broken)
    event_fields = funnel_event_fields(tags, rules.event_attributes)
    event_fields.broken |= broken
    tag_names = {t.name for t in tags.tags} | set(tags.broken) if tags is not None else None
    raw = d.list_at(doc, "funnels", "missing `funnels:` (a list of funnels)",
                    "`funnels:` must be a list of funnels")
    twice: list = []
    for item, name, loc in d.named_items(raw, "funnel", FUNNEL_KEYS,
                                         "`name:`, `window:` and `steps:`", duplicates=twice):
        rules.funnels.append(_parse_funnel(d, item, name, loc, event_fields, tag_names, tags))
    for item, name, loc in twice:  # not kept: checked only
        _parse_funnel(d, item, name, loc, event_fields, tag_names, tags)
    if problems is not None:
        problems.extend(d.found())
    else:
        d.raise_if_problems()
    return rules


def _parse_attributes(d: RuleDoc, doc: Mapping, broken: set[str]) -> dict[str, str]:
    raw = doc.get("event_attributes")
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        d.add(d.value_loc(doc, "event_attributes"), "`event_attributes:` must map attribute "
              "name → type (string, number, boolean, date, timestamp)")
        return {}
    out = {}
    for name, kind in raw.items():
        if not isinstance(name, str) or not NAME_RE.match(name) or kind not in ATTRIBUTE_TYPES:
            broken.update(declared_names(name))
        if not isinstance(name, str) or not NAME_RE.match(name):
            d.add(d.key_loc(raw, name), f"event attribute '{name}' must be lower_snake_case")
        elif kind not in ATTRIBUTE_TYPES:
            d.add(d.value_loc(raw, name), f"event attribute '{name}': type must be one of "
                  f"{', '.join(ATTRIBUTE_TYPES)}{did_you_mean(kind, ATTRIBUTE_TYPES)}")
        else:
            out[name] = kind
    return out


def _parse_funnel(d: RuleDoc, raw: Mapping, name: str, loc, event_fields: Fields,
                  tag_names: set[str] | None, tags) -> Funnel:
    what = f"funnel '{name}'"
    funnel = Funnel(name=name, loc=loc, description=str(raw.get("description") or ""))
    if d.absent(raw, "window"):
        d.add(loc, f"{what}: missing `window:` (days from the first step, like 14d)")
    elif raw.get("window") is not None and (days := window_days(d, raw, what, "14d")) is not None:
        funnel.window_days = days
    raw_steps = d.list_at(raw, "steps", f"{what}: missing `steps:` (a list of {{name, event}})",
                          f"{what}: `steps:` must be a list of {{name, event, where}}")
    twice: list = []
    for step, step_name, step_loc in d.named_items(raw_steps, f"{what} step", STEP_KEYS,
                                                   "`name:` and `event:`", duplicates=twice):
        funnel.steps.append(_parse_step(d, step, step_name, step_loc, what, event_fields))
    for step, step_name, step_loc in twice:  # not kept: checked only
        _parse_step(d, step, step_name, step_loc, what, event_fields)
    if raw.get("steps") == []:  # (list_at gives [] for a missing or wrong key too)
        d.add(d.value_loc(raw, "steps"), f"{what}: `steps:` is an empty list")
    elif raw_steps and not funnel.steps:
        d.add(d.value_loc(raw, "steps"), f"{what}: no usable step")
    if raw.get("entry") is not None:
        funnel.entry = d.text(raw, "entry")
        if tags is not None:
            compile_located(funnel.entry, entry_fields(tags), "boolean", PROBE,
                            f"{what} entry", problems=d.problems)
    attribution = raw.get("attribution", "first")
    if attribution not in ATTRIBUTIONS:
        d.add(d.value_loc(raw, "attribution"), f"{what}: attribution must be first or last"
              f"{did_you_mean(attribution, ATTRIBUTIONS)}")
    else:
        funnel.attribution = attribution
    funnel.by = _parse_by(d, raw, what, event_fields, tag_names)
    funnel.min_conversion = _parse_min(d, raw, what, funnel.step_names)
    return funnel


def _parse_step(d: RuleDoc, raw: Mapping, name: str, loc, what: str,
                event_fields: Fields) -> Step:
    if d.absent(raw, "event"):
        d.add(loc, f"{what} step '{name}': missing `event:` (an event type or a list)")
    events = event_names(d, raw, f"{what} step '{name}'")
    where = None
    if raw.get("where") is not None:
        where = d.text(raw, "where")
        compile_located(where, event_fields, "boolean", PROBE,
                        f"{what} step '{name}' where", column_sql=lambda n: n,
                        problems=d.problems)
    return Step(name, events, where, loc)


def _parse_by(d: RuleDoc, raw: Mapping, what: str, event_fields: Fields,
              tag_names: set[str] | None) -> list[Dimension]:
    value = raw.get("by")
    if value is None:
        return []
    if not isinstance(value, list):
        value = [value]
    out: list[Dimension] = []
    for index, item in enumerate(value):
        dim = resolve_dimension(item, event_fields, tag_names)
        where = d.item_loc(raw["by"], index) if isinstance(raw["by"], list) \
            else d.value_loc(raw, "by")
        if isinstance(dim, str):
            if not (isinstance(item, str) and item.removeprefix(TAG_PREFIX) in
                    event_fields.broken):
                d.add(where, f"{what} by: {dim}")
        elif dim.name in {o.name for o in out}:
            d.add(where, f"{what} by: '{dim.name}' is listed twice")
        else:
            out.append(dim)
    return out


def _parse_min(d: RuleDoc, raw: Mapping, what: str, steps: list[str]) -> dict[str, float]:
    value = raw.get("min_conversion")
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        d.add(d.value_loc(raw, "min_conversion"), f"{what}: `min_conversion:` must map step "
              "→ minimum share of the entering persons (0.01 or 1%)")
        return {}
    out = {}
    for step, minimum in value.items():
        if step not in steps:
            d.add(d.key_loc(value, step), f"{what} min_conversion: unknown step '{step}'"
                  f"{did_you_mean(step, steps)}")
            continue
        share = _share(minimum)
        if share is None:
            d.add(d.value_loc(value, step), f"{what} min_conversion '{step}': must be a share "
                  f"from 0 to 1 (0.01) or a percentage (1%), not '{minimum}'")
            continue
        out[step] = share
    return out


def _share(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            value = float(value.strip()[:-1]) / 100
        except ValueError:
            return None
    if not isinstance(value, (int, float)) or not 0 <= value <= 1:
        return None
    return float(value)
