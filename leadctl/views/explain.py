"""`leadctl explain LEAD`: why this lead belongs to its person, why each tag value, how
the score adds up, why this pool.

Each part is asked of its domain: identity (`identity.explain`), tag values with their
rule definitions (`tagging.explain`), the score breakdown (`scoring.explain`) and the
routing decision (`routing.explain`). A part that is missing — no rules file, nothing
computed yet — becomes `{"available": false, "note": ...}`; the rest is still shown.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from leadctl import pii
from leadctl.errors import LeadctlError
from leadctl.identity.explain import explain_lead_identity
from leadctl.identity.lookup import changed_after, masked_query, resolve_person
from leadctl.routing.explain import explain_routing
from leadctl.scoring.explain import explain_score
from leadctl.tagging.explain import explain_tags
from leadctl.views.asof import screen_as_of, stored_as_of

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


def explain_lead(ws, query: str, *, reveal: bool = False, rules_dir: Path | None = None,
                 as_of: dt.date | None = None) -> dict:
    """Every part of the explanation, as of one date (`leadctl.views.asof`): the tag
    values and score are the stored ones, `as_of_differs` says when that is another."""
    person_id, matched_by = resolve_person(ws, query, reveal=reveal)
    on = screen_as_of(ws, as_of)
    result = {
        "query": {"text": masked_query(query, matched_by[0], reveal), "matched_by": matched_by},
        "person_id": person_id,
        "masked": not reveal,
        "identity": _part(lambda: identity_part(ws, query, person_id)),
        "tags": _part(lambda: explain_tags(ws, person_id, rules_dir)),
        "score": _part(lambda: explain_score(ws, person_id, rules_dir)),
        "routing": _part(lambda: explain_routing(ws, person_id, rules_dir, on.as_of,
                                                 on.actions_until,
                                                 rebuild=on.routing_until is not None)),
    }
    state = result["routing"].get("state") or {}
    screen = on.with_routing(state.get("as_of"), score=stored_as_of(ws, "scores"),
                             identity=changed_after(ws, person_id, on.as_of))
    if not reveal:
        result = {**mask_tree({k: v for k, v in result.items() if k != "query"}),
                  "query": result["query"]}
    return {**screen, **result}


def _part(build) -> dict:
    try:
        return {"available": True, **build()}
    except LeadctlError as exc:
        return unavailable(str(exc))


# -- identity -------------------------------------------------------------------------

def identity_part(ws, query: str, person_id: str) -> dict:
    return {"source": "identity.explain",
            **explain_lead_identity(ws, query, person_id=person_id)}
