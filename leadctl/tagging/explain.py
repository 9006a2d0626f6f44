"""Why each tag value: the stored values of one person with the rule that made them."""

from __future__ import annotations

import json
from typing import Any

from leadctl.errors import NotFound
from leadctl.tagging.kinds import KINDS
from leadctl.tagging.model import TagDef, TagRules


def rule_summary(tag: TagDef) -> dict:
    """The parts of a tag rule that decide its value, where it is defined, and the
    kind's one-line reading of it (`text`)."""
    out: dict[str, Any] = {"at": str(tag.loc) if tag.loc else None, "kind": tag.kind}
    for key in ("events", "agg", "field", "window_days", "n", "default", "days_since",
                "current"):
        value = getattr(tag, key, None)
        if value not in (None, (), [], False, ""):
            out[key] = list(value) if isinstance(value, tuple) else value
    for key in ("where", "expr"):
        text = getattr(tag, key, None)
        if text is not None:
            out[key] = text.value
    if tag.levels:
        out["levels"] = [{"level": level.name, "when": level.when.value}
                         for level in tag.levels]
    if tag.rfm:
        out["rfm"] = dict(tag.rfm)
    out["text"] = KINDS[tag.kind].explain(tag)
    return out


def explain_tags(ws, person_id: str, rules: TagRules | None,
                 rules_note: str | None = None) -> dict:
    """The person's tag values (as stored by the last tag run) with their rules; raises
    a LeadctlError when the person has none yet."""
    rows = ws.rows(
        "SELECT t.tag, t.value, t.as_of, d.kind, d.category, d.description "
        "FROM tags t LEFT JOIN tag_definitions d ON d.tag = t.tag "
        "WHERE t.person_id = ? ORDER BY d.position NULLS LAST, t.tag", [person_id])
    if not rows:
        raise NotFound("no tag values for this person (run `leadctl tag`)")
    definitions = {tag.name: rule_summary(tag) for tag in rules.tags} if rules else {}
    values = []
    for r in rows:
        entry = {"tag": r["tag"], "value": json_value(r["value"]), "kind": r["kind"],
                 "category": r["category"], "description": r["description"]}
        if r["tag"] in definitions:
            entry["rule"] = definitions[r["tag"]]
        values.append(entry)
    as_ofs = [r["as_of"] for r in rows if r["as_of"]]
    out: dict[str, Any] = {"as_of": max(as_ofs) if as_ofs else None, "values": values}
    if rules_note:
        out["note"] = rules_note
    return out


def json_value(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text
