"""The region a resolve relinks: the persons the news can change, and all their leads.

Between two resolves with the same rules, a person can only change if one of its leads
is new (or was not resolved), changed (other identifier cells), re-delivered by a newer
file or gone, or holds a
value such a lead carries or carried (its record count, so its status, may differ). The
region is every lead of those persons plus the new leads. It is closed under linking: a
lead outside it that shares a linking value with a lead inside was in the same person
(the value links now only if it linked before: otherwise a changed lead carries it and
every holder is inside). So linking, person ids, history, golden records and subjects are
computed for the region alone, and everything outside keeps its rows.

Pure builders; identity/resolve.py runs them.
"""

from __future__ import annotations

from leadctl.sqltext import absent_sql


def region_sql(persons: str, leads: str, previous: str, changed_keys: str,
               touched_values: str, identifiers: str, leads_file_id: int) -> list[str]:
    """`persons(person_id)`: the previous persons the news touches; `leads(lead_key)`:
    their current leads and the new ones. `previous(lead_key, person_id)`: the last
    resolve's person_leads."""
    return [
        f"""CREATE OR REPLACE TEMP TABLE {leads} AS
            SELECT lead_key FROM {changed_keys}
            UNION
            SELECT v.lead_key FROM {identifiers} v JOIN {touched_values} t
              ON t.id_type = v.id_type AND t.key_value = v.key_value
            UNION
            SELECT lead_key FROM leads WHERE file_id > {int(leads_file_id)}
               OR {absent_sql("leads.lead_key", previous)}""",
        f"""CREATE OR REPLACE TEMP TABLE {persons} AS
            SELECT DISTINCT person_id FROM {previous}
            WHERE lead_key IN (SELECT lead_key FROM {leads})
               OR {absent_sql(f"{previous}.lead_key", "leads")}""",
        f"""INSERT INTO {leads}
            SELECT lead_key FROM {previous}
            WHERE person_id IN (SELECT person_id FROM {persons})
              AND lead_key IN (SELECT lead_key FROM leads)
              AND {absent_sql(f"{previous}.lead_key", leads)}""",
    ]


def region_leads_sql(leads: str) -> str:
    """The `leads` rows of the region (a parenthesised query)."""
    return f"(SELECT * FROM leads WHERE lead_key IN (SELECT lead_key FROM {leads}))"


def shared_values_sql(target: str, identifiers: str, leads: str) -> str:
    """`link.shared_values_sql` for the values the region's leads carry (counted over
    every lead: all holders of a linking value are in the region)."""
    return f"""
        CREATE OR REPLACE TEMP TABLE {target} AS
        SELECT v.id_type, v.key_value, count(*) AS records, min(v.lead_key) AS anchor,
               list(v.lead_key) AS members
        FROM {identifiers} v JOIN (
            SELECT DISTINCT id_type, key_value FROM {identifiers}
            WHERE valid AND lead_key IN (SELECT lead_key FROM {leads})) r
          ON r.id_type = v.id_type AND r.key_value = v.key_value
        WHERE v.valid GROUP BY v.id_type, v.key_value HAVING count(*) > 1"""


def person_leads_sql(comps: str, ids: str, persons: str) -> list[str]:
    """Replaces the region's rows of person_leads (those of its previous persons, gone
    leads included) with its new ones."""
    return [f"DELETE FROM person_leads WHERE person_id IN (SELECT person_id FROM {persons})",
            f"""INSERT INTO person_leads
                SELECT c.lead_key, i.person_id FROM {comps} c JOIN {ids} i ON i.comp = c.comp"""]


def taken_ids_sql(persons: str) -> str:
    """The current ids outside the region: a new id must not be one of them."""
    return f"""SELECT DISTINCT person_id FROM person_leads
               WHERE {absent_sql("person_leads.person_id", persons, "person_id")}"""
