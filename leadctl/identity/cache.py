"""Normalisation cache: what `resolve` keeps between runs so that only new or changed
leads and new event subjects are normalised again (pure builders).

- `lead_identifier_cells`: the raw identifier cells each cached lead had when it
  was normalised; a lead whose cells differ now (a newer file superseded its row,
  same lead_key) is normalised again, one that is gone is forgotten.
- `lead_identifier_values`: the normalised rows of those leads (before blocklist,
  cap and status, which are recomputed on every run).
- `subject_keys`: the normalised phone of every distinct 'phone:<raw>' subject.

Normalising depends only on the raw text and `normalisation_key` (default region,
CN mobile pattern, phonenumbers version and the normalisation SQL itself); when the
key stored in `meta` differs, the whole cache is emptied first.
"""

from __future__ import annotations

import hashlib
import json

from leadctl.identity.config import ID_TYPES
from leadctl.identity.subjects import distinct_subjects_sql
from leadctl.sqltext import absent_sql, literal, meta_value_sql, set_meta_sql

EVENT_SUBJECTS = "event_subjects"
EVENT_SUBJECTS_KEY = "identity_event_subjects"  # meta: events file and row count seen
LEAD_CELLS = "lead_identifier_cells"
LEAD_VALUES = "lead_identifier_values"
SUBJECT_KEYS = "subject_keys"
META_KEY = "identity_normalisation"
# Bump when the Python side of normalising (parse_phone) changes meaning.
PYTHON_NORMALISER_VERSION = "1"


def normalisation_key(default_region: str, mobile_pattern: str, normalising_sql: str) -> str:
    """Hash of everything a normalised value depends on besides the raw text."""
    try:
        from importlib.metadata import version  # slow to import: only when resolving

        library = version("phonenumbers")
    except Exception:  # not installed as a distribution: the pattern still pins it
        library = "unknown"
    text = json.dumps([default_region, mobile_pattern, library, PYTHON_NORMALISER_VERSION,
                       normalising_sql])
    return hashlib.sha256(text.encode()).hexdigest()


def stored_key_sql() -> str:
    return meta_value_sql(META_KEY)


def store_key_sql(key: str) -> list[str]:
    return set_meta_sql(META_KEY, key)


def clear_sql() -> list[str]:
    """Empties the whole cache (and its key): the next resolve normalises everything."""
    return [f"DELETE FROM {LEAD_CELLS}", f"DELETE FROM {LEAD_VALUES}",
            f"DELETE FROM {SUBJECT_KEYS}", f"DELETE FROM meta WHERE key = {literal(META_KEY)}"]


def changed_leads_sql(target: str, leads: str = "leads") -> str:
    """`target(lead_key, phone, …, id_card)`: leads not cached, or whose identifier
    cells differ from the cached ones."""
    differs = " OR ".join(f"c.{t} IS DISTINCT FROM l.{t}" for t in ID_TYPES)
    return f"""
        CREATE OR REPLACE TEMP TABLE {target} AS
        SELECT l.lead_key, {", ".join(f"l.{t}" for t in ID_TYPES)}
        FROM {leads} l LEFT JOIN {LEAD_CELLS} c ON c.lead_key = l.lead_key
        WHERE c.lead_key IS NULL OR {differs}"""


def forget_leads_sql(changed: str, leads: str = "leads") -> list[str]:
    """Drops the cached cells of changed and vanished leads, then every cached value
    row without cells (cells go first: a lead with cells always has its values)."""
    return [
        f"""DELETE FROM {LEAD_CELLS} WHERE lead_key IN (SELECT lead_key FROM {changed})
            OR {absent_sql(f"{LEAD_CELLS}.lead_key", leads)}""",
        f"DELETE FROM {LEAD_VALUES} WHERE {absent_sql(f'{LEAD_VALUES}.lead_key', LEAD_CELLS)}",
    ]


def touched_values_sql(target: str, changed: str, leads: str = "leads") -> str:
    """`target(id_type, key_value)`: the cached values of changed and vanished leads (run
    before `forget_leads_sql`; the changed leads' new values are added after normalising):
    the values whose record counts, and so statuses, can differ from the last resolve."""
    return f"""
        CREATE OR REPLACE TEMP TABLE {target} AS
        SELECT DISTINCT id_type, key_value FROM {LEAD_VALUES}
        WHERE lead_key IN (SELECT lead_key FROM {changed})
           OR {absent_sql(f"{LEAD_VALUES}.lead_key", leads)}"""


def add_leads_sql(changed: str, identifiers: str) -> list[str]:
    """Caches the freshly normalised rows, then the cells they came from."""
    return [
        f"""INSERT INTO {LEAD_VALUES} (lead_key, id_type, raw_value, split, key_value, valid)
            SELECT lead_key, id_type, raw_value, split, key_value, valid FROM {identifiers}""",
        f"""INSERT INTO {LEAD_CELLS} (lead_key, {", ".join(ID_TYPES)})
            SELECT lead_key, {", ".join(ID_TYPES)} FROM {changed}""",
    ]


def events_seen_sql() -> str:
    """(last events file, events rows) now, to compare with what `EVENT_SUBJECTS` saw."""
    return "SELECT coalesce(max(file_id), 0) AS file_id, count(*) AS events FROM events"


def event_subjects_sql(added: str, seen: dict | None, now: dict) -> list[str]:
    """Brings `EVENT_SUBJECTS(subject, kind, ref)` up to date, the subjects it did not have
    into `added`: those of the events files ingested since `seen`. When nothing was seen
    or events went missing (the rows then are not the rows seen plus the new files' rows)
    it is rebuilt from every event, and `added` is not made: every subject is new."""
    store = set_meta_sql(EVENT_SUBJECTS_KEY, json.dumps(now, sort_keys=True))
    if seen is None:  # written once, not staged and copied (at 1M: 3.4M subjects)
        return [f"CREATE OR REPLACE TABLE {EVENT_SUBJECTS} AS {distinct_subjects_sql()}",
                *store]
    if seen == now:
        new = f"SELECT * FROM {EVENT_SUBJECTS} WHERE false"
    else:
        # The new files' subjects first, then those of them already known. Read twice:
        # MATERIALIZED, or Spark would scan the events for them twice.
        new = (f"WITH fresh_subjects AS MATERIALIZED (SELECT DISTINCT subject FROM events "
               f"WHERE file_id > {int(seen['file_id'])})\n"
               + distinct_subjects_sql("fresh_subjects", absent_sql(
                   "fresh_subjects.subject", EVENT_SUBJECTS, "subject",
                   among="SELECT subject FROM fresh_subjects")))
    return [f"CREATE OR REPLACE TEMP TABLE {added} AS {new}",
            f"INSERT INTO {EVENT_SUBJECTS} SELECT subject, kind, ref FROM {added}", *store]


def unmapped_events_sql() -> str:
    """How many events name a subject no resolve has mapped yet (`subject_persons` has no
    row for it, not even 'unmatched'): no screen counts them. Only files ingested after
    the last resolve can hold such events, so only they are read."""
    seen = (f"SELECT CAST(json_extract(value, '$.file_id') AS INTEGER) FROM meta "
            f"WHERE key = {literal(EVENT_SUBJECTS_KEY)}")
    return (f"SELECT count(*) FROM events e WHERE e.file_id > coalesce(({seen}), 0) "
            f"AND {absent_sql('e.subject', 'subject_persons', 'subject')}")


def unmapped_events_warning(count: int) -> str | None:
    return (f"{count} events ingested since the last resolve are not mapped to persons yet, "
            "so not counted: run `leadctl resolve` (or `leadctl run`)") if count else None


def events_seen_state_sql() -> str:
    return meta_value_sql(EVENT_SUBJECTS_KEY)


def new_events_rows_sql(seen: dict) -> str:
    return f"SELECT count(*) FROM events WHERE file_id > {int(seen['file_id'])}"


def new_subjects_sql(target: str, subjects: str) -> str:
    """`target(subject, kind, ref)`: phone subjects whose key is not cached yet."""
    return f"""
        CREATE OR REPLACE TEMP TABLE {target} AS
        SELECT s.subject, s.kind, s.ref FROM {subjects} s
        WHERE s.kind = 'phone' AND {absent_sql("s.subject", SUBJECT_KEYS, "subject",
                                               among=f"SELECT subject FROM {subjects}")}"""


def add_subjects_sql(subject_phones: str) -> str:
    return f"""INSERT INTO {SUBJECT_KEYS} (subject, key_value, valid)
               SELECT subject, key_value, valid FROM {subject_phones}"""


def cached_subjects_sql() -> str:
    return f"SELECT count(*) FROM {SUBJECT_KEYS}"


def phone_subjects_sql(subjects: str) -> str:
    return f"SELECT count(*) FROM {subjects} WHERE kind = 'phone'"


def prune_subjects_sql(subjects: str) -> str:
    """Forgets subjects no longer in `events` (run only when the counts differ: every
    current phone subject is cached, so equal counts mean equal sets)."""
    return f"""DELETE FROM {SUBJECT_KEYS} WHERE subject NOT IN (
                   SELECT subject FROM {subjects} WHERE kind = 'phone')"""
