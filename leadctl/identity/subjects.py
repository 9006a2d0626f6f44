"""Events name their person as 'person:<id>' | 'lead:<lead_id>' | 'phone:<raw phone>';
`subject_persons` maps each distinct subject to a current person (pure builders).

- person ids map to themselves, or through `person_aliases` when merged away;
- lead ids match `leads.lead_id` in any source;
- phones are normalised like lead phones (the same phone map) and matched to
  linking phone values (status ok) in `lead_identifiers`.
A subject that matches several persons (a lead id used by two sources, a phone
on two persons) or none gets person_id NULL: it is reported, never guessed.
"""

from __future__ import annotations


def distinct_subjects_sql(target: str, events: str = "events") -> str:
    return f"""
        CREATE OR REPLACE TEMP TABLE {target} AS
        SELECT subject, split_part(subject, ':', 1) AS kind,
               substr(subject, strpos(subject, ':') + 1) AS ref
        FROM (SELECT DISTINCT subject FROM {events})"""


def subject_phones_sql(subjects: str) -> str:
    """(ref, id_type, raw) rows of phone subjects, for `normalize.keyed_values_sql`."""
    return (f"SELECT subject AS ref, 'phone' AS id_type, ref AS raw FROM {subjects} "
            "WHERE kind = 'phone'")


def subject_persons_sql(subjects: str, phone_keys: str) -> str:
    """`phone_keys(ref, key_value, valid)`: the normalised phone of each phone subject."""
    return f"""
        CREATE OR REPLACE TABLE subject_persons AS
        WITH by_person AS (
            SELECT s.subject, coalesce(p.person_id, a.person_id) AS person_id, 1 AS n
            FROM {subjects} s LEFT JOIN persons p ON p.person_id = s.ref
            LEFT JOIN person_aliases a ON a.old_person_id = s.ref
            WHERE s.kind = 'person'),
        by_lead AS (
            SELECT s.subject, min(pl.person_id) AS person_id,
                   count(DISTINCT pl.person_id) AS n
            FROM {subjects} s JOIN leads l ON l.lead_id = s.ref
            JOIN person_leads pl ON pl.lead_key = l.lead_key
            WHERE s.kind = 'lead' GROUP BY s.subject),
        by_phone AS (
            SELECT s.subject, min(pl.person_id) AS person_id,
                   count(DISTINCT pl.person_id) AS n
            FROM {subjects} s JOIN {phone_keys} k ON k.ref = s.subject AND k.valid
            JOIN lead_identifiers li ON li.id_type = 'phone' AND li.value = k.key_value
                 AND li.status = 'ok'
            JOIN person_leads pl ON pl.lead_key = li.lead_key
            WHERE s.kind = 'phone' GROUP BY s.subject),
        found AS (
            SELECT * FROM by_person UNION ALL SELECT * FROM by_lead
            UNION ALL SELECT * FROM by_phone)
        SELECT s.subject, CASE WHEN f.n = 1 THEN f.person_id END AS person_id,
            CASE WHEN f.n > 1 THEN 'ambiguous' WHEN f.person_id IS NULL THEN 'unmatched'
                 ELSE 'matched' END AS status
        FROM {subjects} s LEFT JOIN found f ON f.subject = s.subject
        ORDER BY s.subject"""
