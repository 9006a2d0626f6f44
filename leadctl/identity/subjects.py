"""Events name their person as 'person:<id>' | 'lead:<lead_id>' | 'phone:<raw phone>';
`subject_persons` maps each distinct subject to a current person (pure builders).

- person ids map to themselves, or through `person_aliases` when merged away, or else
  (`derived_subjects_sql`) to the person holding the lead the id was derived from
  (`md5(source|lead_id)`, identity/history.py): a workspace rebuilt from the files has
  no aliases, yet finds the person an event names by an id a merge retired;
- lead ids match `leads.lead_id` in any source;
- phones are normalised like lead phones and matched to linking phone values
  (status ok) in `lead_identifiers` — such a value belongs to exactly one person.
A subject that matches several persons (a lead id used by two sources for two
persons) is 'ambiguous', one that matches none 'unmatched'; both get person_id
NULL: reported, never guessed.
"""

from __future__ import annotations

from leadctl.identity.history import lead_derived_id_sql
from leadctl.identity.normalize import CN_MOBILE_PATTERN, keyed_sql

PERSON_PREFIX = "person:"


def distinct_subjects_sql(events: str = "events", where: str = "true") -> str:
    """SELECT (subject, kind, ref) of the distinct subjects of `events` rows."""
    return f"""
        SELECT subject, split_part(subject, ':', 1) AS kind,
               substr(subject, strpos(subject, ':') + 1) AS ref
        FROM (SELECT DISTINCT subject FROM {events} WHERE {where})"""


def subject_phones_sql(target: str, subjects: str, mobile_pattern: str = CN_MOBILE_PATTERN,
                       cn_default: bool = True) -> str:
    """`target(subject, id_type, raw_value, split, key_value, valid)`: the phone of each
    phone subject, normalised like lead phones."""
    cells = (f"SELECT subject, ref AS raw_value, false AS split FROM {subjects} "
             "WHERE kind = 'phone'")
    return (f"CREATE OR REPLACE TEMP TABLE {target} AS "
            f"{keyed_sql('phone', cells, 'subject', mobile_pattern, cn_default)}")


def subject_persons_sql(subjects: str, subject_phones: str) -> str:
    """subject_persons of every subject (`subjects`: all of them)."""
    return ("CREATE OR REPLACE TABLE subject_persons AS "
            + subject_persons_select_sql(subjects, subject_phones, every=True))


def subject_persons_select_sql(subjects: str, subject_phones: str,
                               every: bool = False) -> str:
    """(subject, person_id, status) of every subject in `subjects`. Unless `every` (the
    subjects are all of them), the lead and phone maps are first cut down to the lead ids
    and phones these subjects name; for all subjects that cut keeps nearly every row and
    cost 2–3 s of 7–8 at 1M leads."""
    some_leads = "" if every else (
        f"WHERE l.lead_id IN (SELECT ref FROM {subjects} WHERE kind = 'lead')")
    some_phones = "" if every else (
        f"AND li.value IN (SELECT key_value FROM {subject_phones} WHERE valid)")
    return f"""
        WITH lead_map AS (
            SELECT l.lead_id, min(pl.person_id) AS first, max(pl.person_id) AS last
            FROM leads l JOIN person_leads pl ON pl.lead_key = l.lead_key
            {some_leads}
            GROUP BY l.lead_id),
        phone_map AS (
            SELECT DISTINCT li.value, pl.person_id
            FROM lead_identifiers li JOIN person_leads pl ON pl.lead_key = li.lead_key
            WHERE li.id_type = 'phone' AND li.status = 'ok'
              {some_phones}),
        matched AS (
            SELECT s.subject, coalesce(p.person_id, a.person_id) AS person_id, false AS twice
            FROM {subjects} s LEFT JOIN persons p ON p.person_id = s.ref
            LEFT JOIN person_aliases a ON a.old_person_id = s.ref
            WHERE s.kind = 'person'
            UNION ALL
            SELECT s.subject, CASE WHEN m.first = m.last THEN m.first END,
                   coalesce(m.first <> m.last, false)
            FROM {subjects} s LEFT JOIN lead_map m ON m.lead_id = s.ref
            WHERE s.kind = 'lead'
            UNION ALL
            SELECT k.subject, m.person_id, false
            FROM {subject_phones} k LEFT JOIN phone_map m ON m.value = k.key_value AND k.valid
            UNION ALL
            SELECT subject, CAST(NULL AS VARCHAR), false FROM {subjects}
            WHERE kind NOT IN ('person', 'lead', 'phone'))
        SELECT subject, person_id,
            CASE WHEN twice THEN 'ambiguous' WHEN person_id IS NULL THEN 'unmatched'
                 ELSE 'matched' END AS status
        FROM matched"""


def unmatched_person_subjects_sql(table: str) -> str:
    """How many person subjects of `table(subject, person_id, status)` name no person."""
    return (f"SELECT count(*) FROM {table} WHERE status = 'unmatched' "
            f"AND subject LIKE '{PERSON_PREFIX}%'")


def derived_subjects_sql(table: str) -> str:
    """Matches the person subjects of `table(subject, person_id, status)` that name no
    current or merged person to the person holding the lead their id was derived from
    (only when exactly one person does). Run only when `unmatched_person_subjects_sql`
    finds some: it derives the id of every lead."""
    return f"""
        UPDATE {table} SET person_id = d.person_id, status = 'matched'
        FROM (
            SELECT u.subject, min(pl.person_id) AS person_id
            FROM (SELECT subject, substr(subject, {len(PERSON_PREFIX) + 1}) AS ref
                  FROM {table} WHERE status = 'unmatched'
                    AND subject LIKE '{PERSON_PREFIX}%') u
            JOIN leads l ON {lead_derived_id_sql('l')} = u.ref
            JOIN person_leads pl ON pl.lead_key = l.lead_key
            GROUP BY u.subject HAVING count(DISTINCT pl.person_id) = 1) d
        WHERE {table}.subject = d.subject"""


# -- the subjects a resolve can have re-mapped ------------------------------------------------
# With the same rules, a subject maps elsewhere only if it is new, or it names (or mapped
# to) a person whose leads changed: its lead id, its phone value or its person id belongs
# to such a person, or the person it mapped to is gone.

def changed_subjects_sql(target: str, subjects: str, added: str, subject_keys: str,
                         changed: str, retired: str) -> str:
    """`target(subject)`: subjects to map again. `added`: subjects new in events;
    `changed(person_id)`: current persons whose leads changed; `retired`: a query of the
    person ids that are gone."""
    return f"""
        CREATE OR REPLACE TEMP TABLE {target} AS
        WITH changed_leads AS (
            SELECT lead_key FROM person_leads
            WHERE person_id IN (SELECT person_id FROM {changed}))
        SELECT subject FROM {added}
        UNION
        SELECT subject FROM subject_persons
        WHERE person_id IN (SELECT person_id FROM {changed})
           OR person_id IN ({retired})
        UNION
        SELECT subject FROM {subjects} WHERE kind = 'lead' AND ref IN (
            SELECT lead_id FROM leads WHERE lead_key IN (SELECT lead_key FROM changed_leads))
        UNION
        SELECT subject FROM {subjects} WHERE kind = 'person'
          AND ref IN (SELECT person_id FROM {changed})
        UNION
        SELECT subject FROM {subject_keys} WHERE key_value IN (
            SELECT value FROM lead_identifiers WHERE id_type = 'phone'
              AND lead_key IN (SELECT lead_key FROM changed_leads))
        UNION
        SELECT subject FROM subject_persons
        WHERE status = 'unmatched' AND subject LIKE '{PERSON_PREFIX}%'
          AND substr(subject, {len(PERSON_PREFIX) + 1}) IN (
            SELECT {lead_derived_id_sql()} FROM leads
            WHERE lead_key IN (SELECT lead_key FROM changed_leads))"""


def some_subjects_sql(target: str, table: str, changed_subjects: str) -> str:
    return f"""
        CREATE OR REPLACE TEMP TABLE {target} AS
        SELECT * FROM {table} WHERE subject IN (SELECT subject FROM {changed_subjects})"""


def remap_subjects_sql(subjects: str, subject_phones: str, changed_subjects: str,
                       before: str, after: str) -> list[str]:
    """Maps the changed subjects again (`subjects`, `subject_phones`: only theirs) into
    `after`, their mapping until now kept in `before`, their rows taken out of
    subject_persons; every other row of it stays. `store_subjects_sql` puts them back."""
    theirs = f"subject IN (SELECT subject FROM {changed_subjects})"
    return [f"CREATE OR REPLACE TEMP TABLE {before} AS "
            f"SELECT subject, person_id FROM subject_persons WHERE {theirs}",
            f"DELETE FROM subject_persons WHERE {theirs}",
            f"CREATE OR REPLACE TEMP TABLE {after} AS "
            + subject_persons_select_sql(subjects, subject_phones)]


def store_subjects_sql(before: str, after: str, run_id: int | None) -> list[str]:
    """The re-mapped subjects back into subject_persons, their moves logged from `before`
    and `after`: no second scan of the table."""
    return [f"INSERT INTO subject_persons SELECT subject, person_id, status FROM {after}",
            log_moves_sql(run_id, before, after)]


def log_moves_sql(run_id: int | None, before: str, after: str) -> str:
    """Appends to subject_moves every subject whose person differs between `before` and
    `after` (relations of subject, person_id; a subject missing from one has none there)."""
    run = "CAST(NULL AS INTEGER)" if run_id is None else str(int(run_id))
    return f"""
        INSERT INTO subject_moves (run_id, subject, old_person_id, new_person_id)
        SELECT {run}, coalesce(a.subject, b.subject), b.person_id, a.person_id
        FROM {after} a FULL OUTER JOIN {before} b ON b.subject = a.subject
        WHERE a.person_id IS DISTINCT FROM b.person_id"""
