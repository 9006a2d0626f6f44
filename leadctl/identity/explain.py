"""Why a lead belongs to its person: the data behind `leadctl explain LEAD` (identity part).

`explain_lead_identity(ws, query)` returns plain data (raw values: the caller masks):
- `identifiers`: every identifier of the lead with its normalised value, status
  (ok | invalid | blocked | capped), how many records carry it and why it does not
  link; linking ones list the other leads that share them (`shared_with`);
- `joined_by`: the linking values alone (what joined the lead to others directly);
- `not_linking`: the invalid, blocked and capped values;
- `paths`: for every other lead of the person, the shortest chain of shared values
  from this lead to it (a person's leads are few: this walks them in Python).
"""

from __future__ import annotations

from collections import deque

from leadctl.errors import NotFound
from leadctl.identity.lookup import earliest_lead, source_lead_sql, source_splits
from leadctl.workspace import Workspace

MAX_SHARED_WITH = 20  # leads listed per value (a linking value has at most the cap)
MAX_PATH_LEADS = 500  # a person larger than this is not walked


class AmbiguousLead(NotFound):
    """The lead id exists in several sources; `candidates` lists them (exit 1)."""

    def __init__(self, message: str, candidates: list[dict]):
        super().__init__(message)
        self.candidates = candidates
        self.details = {"candidates": candidates}  # kept in the --json failure document


def find_lead(ws: Workspace, query: str) -> dict:
    """A lead by `lead_id`, `source/lead_id`, `source:lead_id` or `lead:<lead_id>`; exactly,
    else case-insensitively (`ag300001` finds AG300001)."""
    text = query.strip()
    if text.lower().startswith("lead:"):
        text = text[5:].strip()
    splits = source_splits(text)
    columns = "SELECT lead_key, source, lead_id, created_at FROM leads"
    for fold in (False, True):  # exact point lookups first; folding case scans
        lead_id = "lower(lead_id)" if fold else "lead_id"
        rows = ws.rows(f"{columns} WHERE {lead_id} = ? ORDER BY source",
                       [text.lower() if fold else text])
        if not rows and splits:
            where, params = source_lead_sql(splits, fold_case=fold)
            rows = ws.rows(f"{columns} WHERE {where} ORDER BY source, lead_id", params)
        if rows:
            break
    if not rows:
        raise NotFound(f"no lead with id {text!r} (use the lead id of the input file, "
                       "or SOURCE/LEAD_ID)")
    if len(rows) > 1:
        names = ", ".join(f"{r['source']}/{r['lead_id']}" for r in rows)
        raise AmbiguousLead(f"lead id {text!r} exists in {len(rows)} sources; ask for one of "
                            f"{names}", rows)
    return rows[0]


def _oldest_of_person(ws: Workspace, candidates: list[dict],
                      person_id: str | None) -> dict | None:
    """The oldest of `candidates` (leads of one id in several sources) when they are all
    `person_id`'s leads (the query then names that one person), else None."""
    if person_id is None:
        return None
    keys = [c["lead_key"] for c in candidates]
    owners = ws.rows("SELECT DISTINCT person_id FROM person_leads WHERE lead_key IN "
                     f"({', '.join('?' for _ in keys)})", keys)
    if [o["person_id"] for o in owners] != [person_id]:
        return None
    return min(candidates, key=lambda c: (c["created_at"] is None, c["created_at"] or 0,
                                          c["source"], c["lead_id"]))


def explain_lead_identity(ws: Workspace, query: str, person_id: str | None = None) -> dict:
    """Identity explanation of the lead `query` names. When `query` is not a lead id
    (a phone, a person id...) and the caller already knows the person, pass
    `person_id`: the person's oldest lead is explained (`lead.chosen` says so)."""
    try:
        lead = find_lead(ws, query)
        chosen = "query"
    except AmbiguousLead as many:
        lead = _oldest_of_person(ws, many.candidates, person_id)
        if lead is None:  # leads of several persons: the caller must pick one
            raise
        chosen = "oldest lead with this id"
    except NotFound:
        if person_id is None:
            raise
        lead = earliest_lead(ws, person_id)
        chosen = "oldest lead of the person"
    key = lead["lead_key"]
    person_id = ws.scalar("SELECT person_id FROM person_leads WHERE lead_key = ?", [key])
    if person_id is None:
        raise NotFound(f"lead {lead['source']}:{lead['lead_id']} is not resolved yet: run "
                       "`leadctl resolve` (or the nightly `leadctl run`)")
    identifiers = ws.rows(
        "SELECT id_type, raw_value, value, status, records, reason FROM lead_identifiers "
        "WHERE lead_key = ? ORDER BY id_type, raw_value", [key])
    shared = _shared_with(ws, key)
    for item in identifiers:
        item["shared_with"] = shared.get((item["id_type"], item["value"]), []) \
            if item["status"] == "ok" else []
    person_leads = ws.rows(
        "SELECT l.lead_key, l.source, l.lead_id, l.created_at FROM person_leads pl "
        "JOIN leads l ON l.lead_key = pl.lead_key WHERE pl.person_id = ? "
        "ORDER BY l.created_at NULLS LAST, l.source, l.lead_id", [person_id])
    return {
        "lead": {**{k: lead[k] for k in ("source", "lead_id", "created_at")},
                 "chosen": chosen},
        "person_id": person_id,
        "person_leads": len(person_leads),
        "identifiers": identifiers,
        "joined_by": [{"id_type": i["id_type"], "value": i["value"], "records": i["records"],
                       "leads": i["shared_with"]}
                      for i in identifiers if i["status"] == "ok" and i["shared_with"]],
        "not_linking": [{k: i[k] for k in ("id_type", "raw_value", "value", "status",
                                           "records", "reason")}
                        for i in identifiers if i["status"] != "ok"],
        "paths": _paths(ws, key, person_id, person_leads),
        "overrides": _overrides(ws, key),
    }


def _overrides(ws: Workspace, key: int) -> list[dict]:
    """The identity overrides naming this lead (must_link / cannot_link), as applied."""
    return ws.rows(
        "SELECT o.kind, o.reason, o.location, list_sort(list(l.source || ':' || l.lead_id) "
        "FILTER (WHERE other.lead_key <> ?)) AS leads "
        "FROM identity_override_leads o JOIN identity_override_leads other ON "
        "other.entry = o.entry JOIN leads l ON l.lead_key = other.lead_key "
        "WHERE o.lead_key = ? GROUP BY o.entry, o.kind, o.reason, o.location ORDER BY o.entry",
        [key, key])


def _shared_with(ws: Workspace, key: int) -> dict[tuple[str, str], list[dict]]:
    rows = ws.rows(f"""
        WITH mine AS (SELECT id_type, value FROM lead_identifiers
                      WHERE lead_key = ? AND status = 'ok' AND records > 1),
        other AS (
            SELECT o.id_type, o.value, l.source, l.lead_id, pl.person_id,
                row_number() OVER (PARTITION BY o.id_type, o.value
                                   ORDER BY l.source, l.lead_id) AS n
            FROM lead_identifiers o JOIN mine m ON m.id_type = o.id_type AND m.value = o.value
            JOIN leads l ON l.lead_key = o.lead_key
            LEFT JOIN person_leads pl ON pl.lead_key = o.lead_key
            WHERE o.lead_key <> ? AND o.status = 'ok')  -- cut on the other side: no tie
        SELECT id_type, value, source, lead_id, person_id FROM other
        WHERE n <= {MAX_SHARED_WITH} ORDER BY id_type, value, source, lead_id""", [key, key])
    shared: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        shared.setdefault((r["id_type"], r["value"]), []).append(
            {"source": r["source"], "lead_id": r["lead_id"], "person_id": r["person_id"]})
    return shared


def _paths(ws: Workspace, key: int, person_id: str, person_leads: list[dict]) -> list[dict]:
    """Shortest chain of shared values from the lead to each other lead of the person."""
    if len(person_leads) <= 1 or len(person_leads) > MAX_PATH_LEADS:
        return []
    # A node is (id_type, value, entry): a must_link entry joins its own leads only (two
    # entries with one reason are two nodes); identifiers have no entry (-1).
    rows = ws.rows(
        "SELECT li.lead_key, li.id_type, li.value, -1 AS entry FROM person_leads pl "
        "JOIN lead_identifiers li ON li.lead_key = pl.lead_key "
        "WHERE pl.person_id = ? AND li.status = 'ok' AND li.records > 1 "
        "UNION ALL "  # a must_link override joins its leads like a shared value
        "SELECT o.lead_key, 'must_link', o.reason, o.entry "
        "FROM person_leads pl JOIN identity_override_leads o ON o.lead_key = pl.lead_key "
        "WHERE pl.person_id = ? AND o.kind = 'must_link'", [person_id, person_id])
    by_value: dict[tuple[str, str, int], list[int]] = {}
    values_of: dict[int, list[tuple[str, str, int]]] = {}
    for r in rows:
        value = (r["id_type"], r["value"], r["entry"])
        by_value.setdefault(value, []).append(r["lead_key"])
        values_of.setdefault(r["lead_key"], []).append(value)
    came_from: dict[int, tuple[int, tuple[str, str, int]]] = {}
    seen = {key}
    queue = deque([key])
    while queue:  # breadth-first over this one person's leads
        current = queue.popleft()
        for value in sorted(values_of.get(current, []),
                            key=lambda v: (v[0], v[1] or "", v[2])):
            for other in sorted(by_value[value]):
                if other not in seen:
                    seen.add(other)
                    came_from[other] = (current, value)
                    queue.append(other)
    names = {p["lead_key"]: f"{p['source']}:{p['lead_id']}" for p in person_leads}
    paths = []
    for p in person_leads:
        target = p["lead_key"]
        if target == key:
            continue
        hops = []
        node = target
        while node in came_from:
            previous, (id_type, value, _) = came_from[node]
            hops.append({"from": names[previous], "to": names[node], "id_type": id_type,
                         "value": value})
            node = previous
        paths.append({"lead": names[target], "hops": list(reversed(hops))})
    return paths
