"""Tables owned by identity resolution."""

IDENTITY_DDL: list[str] = [
    # One row per (lead, identifier kind, raw value); `value` is the normalised
    # form or NULL when invalid; `status` says whether it may link.
    """CREATE TABLE IF NOT EXISTS lead_identifiers (
        lead_key BIGINT, id_type VARCHAR, raw_value VARCHAR, value VARCHAR,
        status VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS blocked_identifiers (
        id_type VARCHAR, value VARCHAR, reason VARCHAR, records BIGINT)""",
    "CREATE TABLE IF NOT EXISTS person_leads (lead_key BIGINT PRIMARY KEY, person_id VARCHAR)",
    """CREATE TABLE IF NOT EXISTS persons (
        person_id VARCHAR PRIMARY KEY, name VARCHAR, phone VARCHAR, email VARCHAR,
        wechat VARCHAR, device_id VARCHAR, id_card VARCHAR, city VARCHAR,
        province VARCHAR, channel VARCHAR, source VARCHAR, first_seen TIMESTAMP,
        last_seen TIMESTAMP, lead_count INTEGER, sources VARCHAR[],
        phones VARCHAR[], emails VARCHAR[])""",
    "CREATE TABLE IF NOT EXISTS subject_persons (subject VARCHAR PRIMARY KEY, person_id VARCHAR)",
    """CREATE TABLE IF NOT EXISTS identity_history (
        run_id INTEGER, changed_at TIMESTAMP, change VARCHAR, person_id VARCHAR,
        old_person_ids VARCHAR[], leads INTEGER, reason VARCHAR)""",
]
