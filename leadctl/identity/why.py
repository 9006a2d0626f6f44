"""Why / why-not between two leads (`leadctl identity why A B`).

Each of A and B is a lead id (`source/lead_id` too) or any portrait query (phone, e-mail,
person id…); a query that is not a lead id stands for its person's earliest lead.

- One person: `path` is the shortest chain of shared linking values from A's lead to B's
  (breadth-first, one SQL statement per hop over the person's own leads; ties: the
  smaller identifier type, value, then lead). Each item: `{lead_id, source, created_at,
  via}`, `via` `{type, value}` (value masked unless reveal) the value shared with the
  previous item (null for the first). A must_link override between two leads is a hop
  with type `must_link` and its reason as value. `reason`: `same_lead`, `shared_values`
  or `must_link` (the path uses an override).
- Two persons: `path` is empty and `reason` says why, first of: `cannot_link` (a
  cannot-link override names a lead of each, or the value that would join them is cut:
  status `cut` in blocked_identifiers), `blocked`, `capped` (with the records count),
  `invalid` (which check failed), `no_shared_value`. `values` lists every value the two
  persons share and why it does not link; `overrides` the cannot-link entries.
- `suggestion`: the suggested match between the two persons (identity/suggest.py), or null;
  its `reviewed` is the kind of the override that reviewed the pair (`cannot_link` before
  `must_link` when both did: then `suggest` no longer lists it and `accept` refuses it), or
  null while it is open.
"""

from __future__ import annotations

from leadctl import pii
from leadctl.errors import NotFound
from leadctl.identity.config import IdentityConfig
from leadctl.identity.explain import AmbiguousLead, find_lead
from leadctl.identity.lookup import earliest_lead, masked_query, resolve_person
from leadctl.identity.suggest import (
    group_suggestions,
    override_persons,
    read_overrides,
    suggestion_rows,
)
from leadctl.workspace import Workspace

EDGES, SEEN = "_why_edges", "_why_seen"
REASON_ORDER = ("cannot_link", "blocked", "capped", "invalid")


# -- SQL builders (pure) --------------------------------------------------------------------

def edges_sql(override_pairs: str | None) -> str:
    """`_why_edges(a, b, id_type, value)`: both directions of every pair of the person's
    (parameter 1) leads sharing a linking value, plus the must_link pairs of
    `override_pairs(a, b, reason)` (lead keys)."""
    overrides = (f"""
        UNION ALL SELECT a, b, 'must_link', reason FROM {override_pairs}
        UNION ALL SELECT b, a, 'must_link', reason FROM {override_pairs}"""
                 if override_pairs else "")
    return f"""
        CREATE OR REPLACE TEMP TABLE {EDGES} AS
        WITH mine AS (
            SELECT li.lead_key, li.id_type, li.value FROM person_leads p
            JOIN lead_identifiers li ON li.lead_key = p.lead_key
            WHERE p.person_id = ? AND li.status = 'ok' AND li.records > 1)
        SELECT x.lead_key AS a, y.lead_key AS b, x.id_type, x.value
        FROM mine x JOIN mine y ON y.id_type = x.id_type AND y.value = x.value
         AND y.lead_key <> x.lead_key{overrides}"""


def start_sql() -> list[str]:
    return [f"CREATE OR REPLACE TEMP TABLE {SEEN} (lead_key BIGINT, depth INTEGER, "
            "prev BIGINT, id_type VARCHAR, value VARCHAR)",
            f"INSERT INTO {SEEN} VALUES (?, 0, NULL, NULL, NULL)"]


def hop_sql() -> str:
    """Leads one hop from the frontier (depth = parameter 1) not reached yet, each with
    one predecessor (the smallest type, value, lead: source and lead id)."""
    return f"""
        INSERT INTO {SEEN}
        SELECT e.b, s.depth + 1, e.a, e.id_type, e.value
        FROM {EDGES} e JOIN {SEEN} s ON s.lead_key = e.a AND s.depth = ?
        JOIN leads l ON l.lead_key = e.a  -- ties by lead, not by the order of arrival
        WHERE e.b NOT IN (SELECT lead_key FROM {SEEN})
        QUALIFY row_number() OVER (PARTITION BY e.b ORDER BY e.id_type, e.value, l.source,
                                   l.lead_id, e.a) = 1"""


def shared_values_sql() -> str:
    """Every identifier value a lead of person A (parameter 1) and a lead of person B
    (parameter 2) both carry, linking or not (invalid values compared by their cleaned
    text), with its status, reason, records and the first lead of each side."""
    key = ("coalesce(li.value, CASE li.id_type WHEN 'phone' THEN regexp_replace(li.raw_value, "
           "'[\\s\\-().]', '', 'g') WHEN 'id_card' THEN upper(trim(li.raw_value)) "
           "ELSE lower(trim(li.raw_value)) END)")
    side = (f"SELECT li.*, {key} AS key, l.source, l.lead_id FROM person_leads p "
            "JOIN lead_identifiers li ON li.lead_key = p.lead_key "
            "JOIN leads l ON l.lead_key = p.lead_key WHERE p.person_id = ?")
    return f"""
        WITH a AS ({side}), b AS ({side})
        SELECT a.id_type, a.key AS value,
            CASE WHEN bi.status = 'cut' OR a.status = 'cut' OR b.status = 'cut' THEN 'cut'
                 ELSE a.status END AS status,
            coalesce(CASE WHEN bi.status = 'cut' THEN bi.reason END, a.reason, b.reason)
                AS reason,
            greatest(a.records, b.records) AS records,
            a.source AS source_a, a.lead_id AS lead_id_a, b.source AS source_b,
            b.lead_id AS lead_id_b
        FROM a JOIN b ON a.id_type = b.id_type AND a.key = b.key
        LEFT JOIN blocked_identifiers bi ON bi.id_type = a.id_type AND bi.value = a.value
             AND bi.status = 'cut'
        QUALIFY row_number() OVER (PARTITION BY a.id_type, a.key
                                   ORDER BY a.source, a.lead_id, b.source, b.lead_id) = 1
        ORDER BY a.id_type, a.key"""


# -- running ----------------------------------------------------------------------------------

def _endpoint(ws: Workspace, query: str, reveal: bool) -> dict:
    """The lead a query names: a lead id, else its person's earliest lead."""
    try:
        lead = find_lead(ws, query)
        chosen, shown = "lead", query.strip()
    except AmbiguousLead:
        raise
    except NotFound:
        person, matched_by = resolve_person(ws, query, reveal=reveal)
        shown = masked_query(query, matched_by[0], reveal)  # a phone, e-mail…: masked
        first = earliest_lead(ws, person)  # its row: a source named `sem baidu` is no query
        lead = {k: first[k] for k in ("lead_key", "source", "lead_id", "created_at")}
        chosen = f"earliest lead of the person matched by {', '.join(matched_by)}"
    person = ws.scalar("SELECT person_id FROM person_leads WHERE lead_key = ?", [lead["lead_key"]])
    if person is None:
        raise NotFound(f"lead {lead['source']}/{lead['lead_id']} is not resolved yet: run "
                       "`leadctl resolve` (or the nightly `leadctl run`)")
    return {**lead, "person_id": person, "chosen": chosen, "query": shown}


def _override_pairs(ws: Workspace, person: str) -> list[tuple]:
    """(lead_key a, lead_key b, reason) of the must_link entries the last resolve applied
    within the person (`identity_override_leads`: the leads an entry names, or every lead
    carrying one of its values)."""
    found = ws.rows(
        "SELECT o.entry, o.lead_key, o.reason FROM identity_override_leads o "
        "JOIN person_leads pl ON pl.lead_key = o.lead_key "
        "WHERE o.kind = 'must_link' AND pl.person_id = ? ORDER BY o.entry, o.lead_key",
        [person])
    return [(first["lead_key"], second["lead_key"], str(first["reason"] or "must_link"))
            for first, second in zip(found, found[1:], strict=False)
            if first["entry"] == second["entry"]]


def _path(ws: Workspace, a: dict, b: dict) -> list[dict]:
    """The lead path from a to b inside their person ([] when none is found)."""
    pairs = _override_pairs(ws, a["person_id"])
    try:
        if pairs:
            ws.execute("CREATE OR REPLACE TEMP TABLE _why_overrides (a BIGINT, b BIGINT, "
                       "reason VARCHAR)")
            ws.execute("INSERT INTO _why_overrides VALUES " + ", ".join(
                "(?, ?, ?)" for _ in pairs), [v for p in pairs for v in p])
        ws.execute(edges_sql("_why_overrides" if pairs else None), [a["person_id"]])
        first, insert = start_sql()
        ws.execute(first)
        ws.execute(insert, [a["lead_key"]])
        depth = 0  # as long as it takes: each hop reaches a lead or the search ends
        while not ws.scalar(f"SELECT count(*) FROM {SEEN} WHERE lead_key = ?",
                            [b["lead_key"]]):
            before = ws.scalar(f"SELECT count(*) FROM {SEEN}")
            ws.execute(hop_sql(), [depth])
            if ws.scalar(f"SELECT count(*) FROM {SEEN}") == before:
                return []
            depth += 1
        rows = ws.rows(f"""
            WITH RECURSIVE back(lead_key, prev, id_type, value, depth) AS (
                SELECT lead_key, prev, id_type, value, depth FROM {SEEN} WHERE lead_key = ?
                UNION ALL
                SELECT s.lead_key, s.prev, s.id_type, s.value, s.depth
                FROM {SEEN} s JOIN back ON s.lead_key = back.prev)
            SELECT back.depth, l.lead_id, l.source, l.created_at, back.id_type, back.value
            FROM back JOIN leads l ON l.lead_key = back.lead_key ORDER BY back.depth""",
                       [b["lead_key"]])
    finally:
        for name in (EDGES, SEEN, "_why_overrides"):
            ws.execute(f"DROP TABLE IF EXISTS {name}")
    return rows


def _via(row: dict, reveal: bool) -> dict | None:
    if row["id_type"] is None:
        return None
    if row["id_type"] == "must_link":  # its reason: free text that may quote a phone
        return {"type": "must_link", "value": row["value"] if reveal
                else pii.mask_text(row["value"])}
    return {"type": row["id_type"], "value": pii.shown(row["id_type"], row["value"], reveal)}


def _lead(lead: dict) -> dict:
    return {"query": lead["query"], "lead_id": lead["lead_id"], "source": lead["source"],
            "created_at": lead["created_at"], "person_id": lead["person_id"],
            "chosen": lead["chosen"]}


def why(ws: Workspace, config: IdentityConfig, rules_dir, a_query: str, b_query: str, *,
        reveal: bool = False) -> dict:
    a, b = _endpoint(ws, a_query, reveal), _endpoint(ws, b_query, reveal)
    entries = read_overrides(rules_dir)
    result: dict = {"a": _lead(a), "b": _lead(b)}
    if a["person_id"] == b["person_id"]:
        if a["lead_key"] == b["lead_key"]:
            rows = [{**a, "id_type": None, "value": None}]
        else:
            rows = _path(ws, a, b)
        path = [{"lead_id": r["lead_id"], "source": r["source"], "created_at": r["created_at"],
                 "via": _via(r, reveal)} for r in rows]
        reason = ("same_lead" if len(path) == 1 else
                  "must_link" if any((p["via"] or {}).get("type") == "must_link" for p in path)
                  else "shared_values" if path else "no_path_found")
        hops = max(len(path) - 1, 0)
        message = {"same_lead": "A and B are the same lead",
                   "shared_values": f"one person: {hops} hop(s) of shared values",
                   "must_link": f"one person: {hops} hop(s), through a must_link override",
                   "no_path_found": "one person, but no chain of shared values was found "
                                    "(run `leadctl resolve` again)"}[reason]
        return {"linked": True, "person_id": a["person_id"], "path": path, "reason": reason,
                "message": message, **result}
    shared = ws.rows(shared_values_sql(), [a["person_id"], b["person_id"]])
    def text(reason: str | None) -> str | None:  # a reason may quote a phone, an e-mail…
        return pii.text_shown(reason, reveal)
    values = [{"type": v["id_type"], "value": pii.shown(v["id_type"], v["value"], reveal),
               "status": v["status"], "reason": text(v["reason"]), "records": v["records"],
               "a": {"source": v["source_a"], "lead_id": v["lead_id_a"]},
               "b": {"source": v["source_b"], "lead_id": v["lead_id_b"]}} for v in shared]
    cut_by = [{**c, "reason": text(c["reason"])}
              for c in _cannot_links(ws, entries, a["person_id"], b["person_id"])]
    statuses = {"cannot_link" if v["status"] == "cut" else v["status"] for v in values}
    if cut_by:
        statuses.add("cannot_link")
    reason = next((r for r in REASON_ORDER if r in statuses), None) or (
        "separated" if values else "no_shared_value")
    rows, reviewed = suggestion_rows(ws, config, rules_dir,
                                     persons=[a["person_id"], b["person_id"]],
                                     skip_reviewed=False)
    suggestion = next(iter(group_suggestions(rows, reveal)), None)
    if suggestion is not None:  # as `suggest` and `accept` see it
        kinds = {kind for x, y, kind, _ in reviewed if (x, y) == (suggestion["a"],
                                                                   suggestion["b"])}
        suggestion["reviewed"] = next((k for k in ("cannot_link", "must_link") if k in kinds),
                                      None)
    return {"linked": False, "person_id": None, "path": [], "reason": reason,
            "message": _why_not_message(reason, values, cut_by), "values": values,
            "overrides": cut_by, "suggestion": suggestion, **result}


def _cannot_links(ws: Workspace, entries: list[dict], a: str, b: str) -> list[dict]:
    persons = override_persons(ws, [e for e in entries if e["kind"] == "cannot_link"])
    cannot = [e for e in entries if e["kind"] == "cannot_link"]
    hits = {}
    for row in persons:
        hits.setdefault(row["entry"], set()).add(row["person_id"])
    return [{"kind": "cannot_link", "reason": cannot[i].get("reason"), "file": cannot[i]["file"]}
            for i, found in sorted(hits.items()) if {a, b} <= found]


def _why_not_message(reason: str, values: list[dict], cut_by: list[dict]) -> str:
    first = next((v for v in values if v["status"] == reason
                  or (reason == "cannot_link" and v["status"] == "cut")), None)
    what = f"{first['type']} {first['value']}" if first else ""
    if reason == "cannot_link":
        why = cut_by[0]["reason"] if cut_by else first["reason"]
        return f"a cannot-link override separates them ({why})"
    if reason == "blocked":
        return f"the {what} they share is blocked ({first['reason']})"
    if reason == "capped":
        return (f"the {what} they share is carried by {first['records']} records, over the "
                "cap, so it does not link")
    if reason == "invalid":
        return f"the {what} they share is invalid ({first['reason']})"
    if reason == "separated":
        return "they share a linking value yet are two persons: run `leadctl resolve`"
    return "they share no identifier value"
