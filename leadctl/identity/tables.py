"""Tables owned by identity resolution.

`resolve` rebuilds every table here except `identity_history` (append-only)
and the normalisation cache (updated in place) with CREATE OR REPLACE ... AS,
keeping these columns; keys are unique by construction (noted per table) rather
than by index, which keeps a 1M-lead rebuild fast.
"""

# Working table of a resolve (temp, dropped with the others): `(old_id, comp)`, the
# component each id of the previous run goes to (history.moves_sql). Public: the
# `preferred` query a caller gives resolve_identities may read it.
ID_MOVES = "_oneid_moves"

IDENTITY_DDL: list[str] = [
    # One row per (lead, identifier type, value in the cell). `value` is the
    # normalised form (E.164 phone, lower-case e-mail/WeChat/device id, 18-digit
    # ID card) or NULL when invalid. `status`: ok (may link) | invalid | blocked
    # (blocklist) | capped (more than the cap of records share it); `records`:
    # how many leads carry the value; `reason` says why it does not link.
    """CREATE TABLE IF NOT EXISTS lead_identifiers (
        lead_key BIGINT, id_type VARCHAR, raw_value VARCHAR, value VARCHAR,
        status VARCHAR, records BIGINT, reason VARCHAR)""",
    # Values that look usable but do not link (status blocked or capped);
    # `value` is the normalised value (the cleaned text when also invalid).
    """CREATE TABLE IF NOT EXISTS blocked_identifiers (
        id_type VARCHAR, value VARCHAR, reason VARCHAR, records BIGINT, status VARCHAR)""",
    # lead_key unique.
    "CREATE TABLE IF NOT EXISTS person_leads (lead_key BIGINT, person_id VARCHAR)",
    # person_id unique. Golden record; phones/emails: every linking value. city and
    # province: official names (identity/places.py); *_raw: the values survivorship
    # chose; *_source: given | id_card | phone (NULL: unknown).
    """CREATE TABLE IF NOT EXISTS persons (
        person_id VARCHAR, name VARCHAR, phone VARCHAR, email VARCHAR,
        wechat VARCHAR, device_id VARCHAR, id_card VARCHAR, city VARCHAR,
        province VARCHAR, city_raw VARCHAR, province_raw VARCHAR, city_source VARCHAR,
        province_source VARCHAR, channel VARCHAR, source VARCHAR, first_seen TIMESTAMP,
        last_seen TIMESTAMP, lead_count INTEGER, sources VARCHAR[],
        phones VARCHAR[], emails VARCHAR[])""",
    # subject unique: every distinct events.subject; person_id NULL when the
    # subject matches no person (status unmatched) or several (ambiguous).
    """CREATE TABLE IF NOT EXISTS subject_persons (
        subject VARCHAR, person_id VARCHAR, status VARCHAR)""",
    # The subjects whose person changed (either side NULL: none), appended by each
    # resolve that moved them; tagging recomputes those persons from it and empties it
    # once a tag run is stored (so it holds what no stored tag run has seen).
    """CREATE TABLE IF NOT EXISTS subject_moves (
        run_id INTEGER, subject VARCHAR, old_person_id VARCHAR, new_person_id VARCHAR)""",
    # old_person_id unique: a person id retired by a merge → the current person.
    """CREATE TABLE IF NOT EXISTS person_aliases (
        old_person_id VARCHAR, person_id VARCHAR)""",
    # Append-only. change: merge (person_id absorbed old_person_ids) | split
    # (`leads` leads of old_person_ids[1] now belong to person_id).
    """CREATE TABLE IF NOT EXISTS identity_history (
        run_id INTEGER, changed_at TIMESTAMP, change VARCHAR, person_id VARCHAR,
        old_person_ids VARCHAR[], leads INTEGER, reason VARCHAR)""",
    # The leads each identity override names, as the last resolve applied it
    # (identity/overrides_sql.py): must_link members (named, or carrying one of its
    # values) and the two leads of a cannot_link. `entry`: its index (identity.yaml's
    # overrides, then identity_overrides.yaml's); `location`: file:line:col of the entry.
    """CREATE TABLE IF NOT EXISTS identity_override_leads (
        entry INTEGER, kind VARCHAR, lead_key BIGINT, reason VARCHAR, location VARCHAR)""",
    # Normalisation cache (identity/cache.py), kept between runs so that only new or
    # changed leads and new event subjects are normalised. lead_key unique: the raw
    # identifier cells each cached lead was normalised from.
    """CREATE TABLE IF NOT EXISTS lead_identifier_cells (
        lead_key BIGINT, phone VARCHAR, email VARCHAR, wechat VARCHAR, device_id VARCHAR,
        id_card VARCHAR)""",
    # One row per identifier value of a cached lead: `key_value` the normalised value
    # when `valid`, else the cleaned text (before blocklist, cap and status).
    """CREATE TABLE IF NOT EXISTS lead_identifier_values (
        lead_key BIGINT, id_type VARCHAR, raw_value VARCHAR, split BOOLEAN,
        key_value VARCHAR, valid BOOLEAN)""",
    # subject unique: every distinct 'phone:<raw>' events.subject, normalised.
    """CREATE TABLE IF NOT EXISTS subject_keys (
        subject VARCHAR, key_value VARCHAR, valid BOOLEAN)""",
    # Every distinct events.subject, kept up to date from the newly ingested events files
    # (identity/cache.py): resolve does not read all events for them.
    # kind: person | lead | phone | other; ref: the rest after 'kind:'.
    "CREATE TABLE IF NOT EXISTS event_subjects (subject VARCHAR, kind VARCHAR, ref VARCHAR)",
]

# The `meta` key of the last resolve's state: its rules key, the last leads file it saw and
# the default phone region (JSON; identity/resolve.py writes it, lookups read the region).
IDENTITY_STATE_KEY = "identity_state"
