"""`leadctl resolve --dry-run` (and the identity part of `leadctl run --dry-run`): what
resolving would change, against the published state.

The preview is the real thing on a private copy of the workspace (workspace.open_private):
`snapshot_sql` keeps the published identity and ownership tables, the real resolve runs,
`identity_diff` compares; the copy is then thrown away. So its counts are by construction
what the real run does: `merges`, `splits`, `ids_retired`, `ids_new` are the resolve
summary's own, and the lists come from the identity_history rows that run appended.

- `owner_changes`: persons (after) holding a lead that was a person's before whose pool,
  owner or lock (ownership.locked_until) is not the one that lead had: a diff of the
  ownership tables read through each state's person_leads, so it follows whatever
  ownership policy resolve applies to merges and splits.
- `largest_new_clusters`: the 5 largest persons whose set of leads is new (a merge, a
  split part, new leads), with the person ids their leads had.
- `blocked`: values that stop or start being blocked, capped or cut (masked).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from leadctl.pii import mask, mask_text

PREFIX = "_preview_"
SNAPSHOT = {"person_leads": "lead_key, person_id",
            "ownership": "person_id, pool, owner, locked_until",
            "blocked_identifiers": "id_type, value, status, reason, records"}
TOP = 5
LISTED = 10


def snapshot_sql() -> list[str]:
    """The published state, kept in temp tables `_preview_<table>`."""
    return [f"CREATE OR REPLACE TEMP TABLE {PREFIX}{t} AS SELECT {cols} FROM {t}"
            for t, cols in SNAPSHOT.items()]


def history_rows_sql(run_id: int, change: str, limit: int) -> str:
    return f"""
        SELECT person_id, old_person_ids, leads, reason FROM identity_history
        WHERE run_id = {int(run_id)} AND change = '{change}'
        ORDER BY leads DESC, person_id LIMIT {int(limit)}"""


def owner_changes_sql(limit: int | None = None) -> str:
    """Per person (after): leads whose (pool, owner, lock) changed; with `limit` the
    persons with most, else their count."""
    body = f"""
        WITH before AS (
            SELECT p.lead_key, o.pool, o.owner, o.locked_until
            FROM {PREFIX}person_leads p LEFT JOIN {PREFIX}ownership o
              ON o.person_id = p.person_id),
        after AS (
            SELECT p.lead_key, p.person_id, o.pool, o.owner, o.locked_until
            FROM person_leads p LEFT JOIN ownership o ON o.person_id = p.person_id),
        changed AS (
            SELECT a.person_id, b.pool AS pool_before, b.owner AS owner_before,
                a.pool AS pool_after, a.owner AS owner_after
            FROM before b JOIN after a ON a.lead_key = b.lead_key
            WHERE b.pool IS DISTINCT FROM a.pool OR b.owner IS DISTINCT FROM a.owner
               OR b.locked_until IS DISTINCT FROM a.locked_until)"""
    if limit is None:
        return body + " SELECT count(DISTINCT person_id) FROM changed"
    return body + f"""
        SELECT person_id, count(*) AS leads,
            list_sort(list_distinct(list(coalesce(owner_before, '-') || '@'
                                         || coalesce(pool_before, '-')))) AS before,
            min(coalesce(owner_after, '-') || '@' || coalesce(pool_after, '-')) AS after
        FROM changed GROUP BY person_id ORDER BY leads DESC, person_id LIMIT {int(limit)}"""


def new_clusters_sql(limit: int | None = None) -> str:
    """Persons whose lead set is not exactly a published person's: the `limit` largest,
    or their count."""
    body = f"""
        WITH j AS (
            SELECT c.person_id, c.lead_key, p.person_id AS old
            FROM person_leads c LEFT JOIN {PREFIX}person_leads p ON p.lead_key = c.lead_key),
        per AS (
            SELECT person_id, count(*) AS leads, count(DISTINCT old) AS olds,
                count(old) AS known, min(old) AS old,
                list_sort(list_distinct(list(old))) AS was
            FROM j GROUP BY person_id),
        sizes AS (SELECT person_id, count(*) AS n FROM {PREFIX}person_leads GROUP BY person_id),
        fresh AS (
            SELECT per.person_id, per.leads, per.was FROM per
            LEFT JOIN sizes s ON s.person_id = per.old
            WHERE NOT (per.olds = 1 AND per.known = per.leads
                       AND coalesce(s.n, 0) = per.leads))"""
    if limit is None:
        return body + " SELECT count(*) FROM fresh"
    return body + f" SELECT * FROM fresh ORDER BY leads DESC, person_id LIMIT {int(limit)}"


def blocked_changes_sql(limit: int | None = None) -> str:
    """Values blocked, capped or cut before or after but not both alike: `change`
    added | removed, per status; the first `limit`, or counts per (change, status)."""
    body = f"""
        WITH d AS (
            SELECT coalesce(a.id_type, b.id_type) AS id_type,
                coalesce(a.value, b.value) AS value,
                coalesce(a.status, b.status) AS status,
                CASE WHEN b.value IS NULL THEN 'added' ELSE 'removed' END AS change,
                coalesce(a.reason, b.reason) AS reason,
                coalesce(a.records, b.records) AS records
            FROM blocked_identifiers a FULL OUTER JOIN {PREFIX}blocked_identifiers b
              ON b.id_type = a.id_type AND b.value = a.value AND b.status = a.status
            WHERE a.value IS NULL OR b.value IS NULL)"""
    if limit is None:
        return body + " SELECT change, status, count(*) AS n FROM d GROUP BY change, status " \
                      "ORDER BY change, status"
    return body + (" SELECT change, id_type, value, status, reason, records FROM d "
                   f"ORDER BY change, records DESC, id_type, value LIMIT {int(limit)}")


def identity_diff(ws, summary: dict, run_id: int) -> dict:
    """What resolving changed on `ws` (a private copy, snapshot taken before) — the
    dry-run document. `summary`: the resolve summary (ResolveSummary.to_dict())."""
    ids = summary.get("ids", {})
    blocked: dict[str, dict[str, int]] = {"added": {}, "removed": {}}
    for row in ws.rows(blocked_changes_sql()):
        blocked[row["change"]][row["status"]] = row["n"]
    return {
        "dry_run": True,
        "merges": summary.get("merges", 0),
        "splits": summary.get("splits", 0),
        "ids_retired": ids.get("retired", 0),
        "ids_new": ids.get("new", 0),
        "ids_kept": ids.get("kept", 0),
        "owner_changes": ws.scalar(owner_changes_sql()),
        "persons_before": ws.scalar(f"SELECT count(DISTINCT person_id) FROM "
                                    f"{PREFIX}person_leads"),
        "persons_after": summary.get("persons", 0),
        "leads": summary.get("leads", 0),
        "changed_persons": ws.scalar(new_clusters_sql()),
        "merged": [{"person_id": r["person_id"], "absorbed": list(r["old_person_ids"]),
                    "leads": r["leads"]}
                   for r in ws.rows(history_rows_sql(run_id, "merge", LISTED))],
        "split": [{"person_id": r["person_id"], "from": r["old_person_ids"][0],
                   "leads": r["leads"]}
                  for r in ws.rows(history_rows_sql(run_id, "split", LISTED))],
        "owners_changed": [{**r, "before": list(r["before"])}
                           for r in ws.rows(owner_changes_sql(LISTED))],
        "largest_new_clusters": [{"person_id": r["person_id"], "leads": r["leads"],
                                  "was": [w for w in r["was"] if w is not None]}
                                 for r in ws.rows(new_clusters_sql(TOP))],
        "blocked": {**blocked, "values": [
            {**r, "value": mask(r["id_type"], r["value"]),
             "reason": mask_text(r.get("reason"))}
            for r in ws.rows(blocked_changes_sql(LISTED))]},
        "overrides": summary.get("overrides", {}),
    }


def preview_resolve(ws, resolve: Callable[[Any, int], dict], rules_hash: str | None = None,
                    as_of: dt.date | None = None) -> dict:
    """`resolve(ws, run_id)` (the real resolve step, ownership included) on `ws` (a
    private copy: workspace.open_private), reported against the published state; the run
    row and history it writes stay in the copy."""
    ws.script(snapshot_sql())
    run_id = ws.start_run("resolve", as_of, rules_hash)
    summary = resolve(ws, run_id)
    return {**identity_diff(ws, summary, run_id), "resolve": summary}
