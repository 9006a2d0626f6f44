"""Helpers for the identity tests: tiny lead tables in an in-memory workspace."""

from __future__ import annotations

from leadctl.identity.config import IdentityConfig
from leadctl.identity.resolve import resolve_identities
from leadctl.workspace import Workspace, open_memory

LEAD_COLUMNS = ("source", "lead_id", "phone", "email", "wechat", "device_id", "id_card", "name",
                "city", "created_at")


def add_leads(ws: Workspace, *leads: dict) -> None:
    """Insert leads given as dicts (source defaults to 's', lead_key follows on)."""
    if not leads:
        return
    start = ws.scalar("SELECT coalesce(max(lead_key), 0) FROM leads")
    rows, params = [], []
    for offset, lead in enumerate(leads, start=1):
        values = {"source": "s", **lead}
        rows.append("(" + ", ".join(["?"] * (len(LEAD_COLUMNS) + 1)) + ")")
        params += [start + offset] + [values.get(c) for c in LEAD_COLUMNS]
    ws.execute(f"INSERT INTO leads (lead_key, {', '.join(LEAD_COLUMNS)}) VALUES "
               + ", ".join(rows), params)


def workspace(*leads: dict) -> Workspace:
    ws = open_memory()
    add_leads(ws, *leads)
    return ws


def resolve(ws: Workspace, config: IdentityConfig | None = None, run_id: int | None = None):
    return resolve_identities(ws, config or IdentityConfig(), run_id)


def clusters(ws: Workspace) -> set[frozenset[str]]:
    """Persons as sets of lead ids."""
    rows = ws.rows("SELECT pl.person_id, list(l.lead_id ORDER BY l.lead_id) AS leads "
                   "FROM person_leads pl JOIN leads l USING (lead_key) GROUP BY pl.person_id")
    return {frozenset(r["leads"]) for r in rows}


def person_of(ws: Workspace) -> dict[str, str]:
    """lead_id → person_id."""
    return {r["lead_id"]: r["person_id"] for r in ws.rows(
        "SELECT l.lead_id, pl.person_id FROM person_leads pl JOIN leads l USING (lead_key)")}


def identifier(ws: Workspace, lead_id: str, id_type: str) -> dict:
    rows = ws.rows("SELECT li.value, li.status, li.records, li.reason FROM lead_identifiers li "
                   "JOIN leads l USING (lead_key) WHERE l.lead_id = ? AND li.id_type = ?",
                   [lead_id, id_type])
    assert len(rows) == 1, rows
    return rows[0]


def groups(*sets: set[str]) -> set[frozenset[str]]:
    return {frozenset(s) for s in sets}
