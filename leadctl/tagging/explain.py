"""Why each tag value: the stored values of one person with the rule that made them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from leadctl.errors import RuleError
from leadctl.rules.load import changed_since_note
from leadctl.sqltext import meta_value_sql
from leadctl.tagging.kinds import KINDS
from leadctl.tagging.model import TagDef
from leadctl.tagging.parse import load_tag_rules
from leadctl.tagging.tables import TAGGED_WITH_KEY, stored_value


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


def explain_tags(ws, person_id: str, rules_dir: Path | None) -> dict:
    """The person's tag values (as stored by the last tag run), each with its rule where
    rules/tags.yaml still parses (else a note); or `{"available": False, "note": ...}`
    when the person has none yet."""
    rows = ws.rows(
        "SELECT t.tag, t.value, t.as_of, d.kind, d.category, d.description "
        "FROM tags t LEFT JOIN tag_definitions d ON d.tag = t.tag "
        "WHERE t.person_id = ? ORDER BY d.position NULLS LAST, t.tag", [person_id])
    if not rows:
        return {"available": False, "note": "no tag values for this person (run `leadctl tag`)"}
    try:
        rules = load_tag_rules(rules_dir)
        rules_note = changed_since_note(ws.scalar(meta_value_sql(TAGGED_WITH_KEY)),
                                        rules.rules_hash, "tags.yaml", "these values were",
                                        "tag")
    except RuleError as exc:
        rules, rules_note = None, f"rule definitions not shown: {str(exc).splitlines()[0]}"
    definitions = {tag.name: rule_summary(tag) for tag in rules.tags} if rules else {}
    values = []
    for r in rows:
        entry = {"tag": r["tag"], "value": stored_value(r["value"]), "kind": r["kind"],
                 "category": r["category"], "description": r["description"]}
        if r["tag"] in definitions:
            entry["rule"] = definitions[r["tag"]]
        values.append(entry)
    as_ofs = [r["as_of"] for r in rows if r["as_of"]]
    out: dict[str, Any] = {"as_of": max(as_ofs) if as_ofs else None, "values": values}
    if rules_note:
        out["note"] = rules_note
    return out
