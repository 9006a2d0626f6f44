"""`leadctl explain LEAD`: why this lead belongs to its person, why each tag value, how
the score adds up, why this pool.

Assembles what the stages store and explain: identity (`leadctl.identity.explain`,
else a summary of the shared identifier values), tag values with their rule
definitions (rules/tags.yaml, else tag_definitions), the score breakdown
(`leadctl.scoring.explain`) and the routing decision (`leadctl.routing.explain`). A
part that is missing — no module, no rules file, nothing computed yet — becomes
`{"available": false, "note": ...}`; the rest is still shown.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from leadctl import pii
from leadctl.errors import LeadctlError
from leadctl.routing.explain import explain_routing
from leadctl.scoring.explain import explain_score
from leadctl.views.portrait import masked_query, resolve_person

_PII_KEYS = {"phone": "phone", "phones": "phone", "email": "email", "emails": "email",
             "wechat": "wechat", "id_card": "id_card", "device_id": "device_id",
             "name": "name", "raw_value": None}


def unavailable(note: str) -> dict:
    return {"available": False, "note": note}


def mask_tree(value: Any, kind: str | None = None) -> Any:
    """Masks personal data anywhere in a nested result: values under PII keys, and the
    `value`/`raw_value` of identifier rows (by their `id_type`/`type`)."""
    if isinstance(value, dict):
        row_kind = value.get("id_type") or value.get("type")
        out = {}
        for key, item in value.items():
            if key in ("value", "raw_value", "values") and row_kind in pii.PII_KINDS:
                out[key] = mask_tree(item, row_kind)
            elif key in _PII_KEYS:
                out[key] = mask_tree(item, _PII_KEYS[key] or row_kind or "device_id")
            else:
                out[key] = mask_tree(item, None)
        return out
    if isinstance(value, list | tuple):
        return [mask_tree(item, kind) for item in value]
    if kind and isinstance(value, str):
        return pii.mask(kind, value)
    if isinstance(value, str):
        return pii.mask_text(value)  # free text (reasons, notes) may quote an identifier
    return value


def explain_lead(ws, query: str, *, reveal: bool = False,
                 rules_dir: Path | None = None) -> dict:
    person_id, matched_by = resolve_person(ws, query, reveal=reveal)
    result = {
        "query": {"text": masked_query(query, matched_by[0], reveal), "matched_by": matched_by},
        "person_id": person_id,
        "masked": not reveal,
        "identity": _part(lambda: identity_part(ws, query, person_id)),
        "tags": _part(lambda: tags_part(ws, person_id, rules_dir)),
        "score": _part(lambda: explain_score(ws, person_id, rules_dir)),
        "routing": _part(lambda: explain_routing(ws, person_id, rules_dir)),
    }
    return result if reveal else {**mask_tree({k: v for k, v in result.items()
                                               if k != "query"}), "query": result["query"]}


def _part(build) -> dict:
    try:
        return {"available": True, **build()}
    except LeadctlError as exc:
        return unavailable(str(exc))


# -- identity -------------------------------------------------------------------------

def identity_part(ws, query: str, person_id: str) -> dict:
    try:
        from leadctl.identity.explain import explain_lead_identity
    except ImportError:
        return {"source": "lead_identifiers", **shared_identifiers(ws, person_id)}
    return {"source": "identity.explain",
            **explain_lead_identity(ws, query, person_id=person_id)}


def shared_identifiers(ws, person_id: str) -> dict:
    """The person's leads and the identifier values that tie them together (a value on
    two or more of its leads) or that could not link (blocked, capped, invalid)."""
    leads = ws.rows(
        "SELECT l.lead_key, l.lead_id, l.source, l.created_at FROM person_leads pl "
        "JOIN leads l ON l.lead_key = pl.lead_key WHERE pl.person_id = ? "
        "ORDER BY l.created_at NULLS LAST, l.lead_key", [person_id])
    if not leads:
        return {"leads": [], "links": [], "not_linking": []}
    names = {lead["lead_key"]: f"{lead['source']}/{lead['lead_id']}" for lead in leads}
    marks = ", ".join("?" for _ in leads)
    rows = ws.rows(
        "SELECT id_type, coalesce(value, raw_value) AS value, status, "
        "list(DISTINCT lead_key ORDER BY lead_key) AS keys "
        f"FROM lead_identifiers WHERE lead_key IN ({marks}) "
        "GROUP BY id_type, coalesce(value, raw_value), status ORDER BY id_type, value",
        [lead["lead_key"] for lead in leads])
    links = [{"type": r["id_type"], "value": r["value"],
              "leads": [names[k] for k in r["keys"]]}
             for r in rows if r["status"] == "ok" and len(r["keys"]) > 1]
    not_linking = [{"type": r["id_type"], "value": r["value"], "status": r["status"],
                    "leads": [names[k] for k in r["keys"]]}
                   for r in rows if r["status"] not in (None, "ok")]
    return {"leads": [{"lead_id": lead["lead_id"], "source": lead["source"],
                       "created_at": lead["created_at"]} for lead in leads],
            "links": links, "not_linking": not_linking}


# -- tags ------------------------------------------------------------------------------

def tags_part(ws, person_id: str, rules_dir: Path | None) -> dict:
    from leadctl.errors import RuleError
    from leadctl.tagging.explain import explain_tags
    from leadctl.tagging.parse import load_tag_rules

    try:
        rules, note = load_tag_rules(rules_dir), None
    except RuleError as exc:
        rules, note = None, f"rule definitions not shown: {str(exc).splitlines()[0]}"
    return explain_tags(ws, person_id, rules, note)


def _json(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text
