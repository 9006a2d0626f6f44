"""Workspace tables. Pure DDL strings; `workspace` executes them.

Every derived table can be rebuilt from leads/events + rules + as-of;
`*_history`, `assignments`, `identity_history` and `runs` are append-only.
Stage modules may create extra derived tables of their own with CREATE OR REPLACE.
"""

from leadctl.campaigns.tables import CAMPAIGN_DDL
from leadctl.identity.tables import IDENTITY_DDL
from leadctl.routing.tables import ROUTING_DDL
from leadctl.scoring.tables import SCORING_DDL
from leadctl.sqltext import meta_value_sql
from leadctl.tagging.tables import TAG_DDL

SCHEMA_VERSION = "1"

CORE_DDL: list[str] = [
    "CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)",
    # One row per ingested file; content_hash makes re-ingest a no-op; status as in
    # `ingest --json` (loaded, rejected, empty, invalid).
    """CREATE TABLE IF NOT EXISTS ingested_files (
        file_id INTEGER PRIMARY KEY, path VARCHAR, source VARCHAR, kind VARCHAR,
        content_hash VARCHAR, format VARCHAR, encoding VARCHAR, delimiter VARCHAR,
        columns JSON, rows_read BIGINT, rows_loaded BIGINT, rows_rejected BIGINT,
        ingested_at TIMESTAMP, run_id INTEGER, status VARCHAR, message VARCHAR)""",
    # Leads as ingested: raw text values of the canonical columns (normalised
    # values live in lead_identifiers), unknown columns in `attributes`.
    """CREATE TABLE IF NOT EXISTS leads (
        lead_key BIGINT NOT NULL, source VARCHAR NOT NULL, lead_id VARCHAR NOT NULL,
        file_id INTEGER, row_number BIGINT,
        name VARCHAR, phone VARCHAR, email VARCHAR, wechat VARCHAR, device_id VARCHAR,
        id_card VARCHAR, city VARCHAR, province VARCHAR,
        created_at TIMESTAMP, created_at_raw VARCHAR,
        utm_source VARCHAR, utm_medium VARCHAR, utm_campaign VARCHAR,
        utm_content VARCHAR, utm_term VARCHAR, channel VARCHAR,
        attributes JSON, row_hash VARCHAR)""",
    # Events: `subject` is how the event names its person:
    # 'person:<id>' | 'lead:<lead_id>' | 'phone:<raw phone>'; resolve maps
    # distinct subjects to persons in subject_persons.
    """CREATE TABLE IF NOT EXISTS events (
        file_id INTEGER, row_number BIGINT, source VARCHAR,
        subject VARCHAR NOT NULL, event_type VARCHAR NOT NULL, ts TIMESTAMP NOT NULL,
        amount DOUBLE, category VARCHAR, attributes JSON)""",
    # Rows that could not be used, with the reason and the raw values/line.
    """CREATE TABLE IF NOT EXISTS rejects (
        file_id INTEGER, source VARCHAR, kind VARCHAR, row_number BIGINT,
        reason VARCHAR, detail VARCHAR, raw VARCHAR, rejected_at TIMESTAMP)""",
    # Run log: one row per writing command (ingest, resolve, tag, ..., run).
    """CREATE TABLE IF NOT EXISTS runs (
        run_id INTEGER PRIMARY KEY, command VARCHAR, started_at TIMESTAMP,
        ended_at TIMESTAMP, as_of DATE, rules_hash VARCHAR, inputs JSON,
        counts JSON, outcome VARCHAR, error VARCHAR)""",
]


# Columns added after a table first shipped (last in its DDL), by table: a workspace made
# before gets them (UPGRADES, DuckDB: a Spark run builds its tables from all_ddl()); a
# Spark state or output written before reads them as NULL (spark/pipeline.py).
UPGRADED_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "ingested_files": (("status", "VARCHAR"), ("message", "VARCHAR")),
    "assignments": (("state_reason", "VARCHAR"),),
    "experiment_members": (("anchor_source", "VARCHAR"), ("anchor_lead_id", "VARCHAR")),
}
UPGRADES: list[str] = [f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {kind}"
                       for table, columns in UPGRADED_COLUMNS.items()
                       for column, kind in columns]


def all_ddl() -> list[str]:
    """Core DDL plus the tables each domain owns (its `tables.py`: data only)."""
    return CORE_DDL + IDENTITY_DDL + TAG_DDL + SCORING_DDL + ROUTING_DDL + CAMPAIGN_DDL


# Runs of the nightly job between two compactions of the workspace (DuckDB's vacuum at
# the publishing checkpoint; see workspace.open_writer).
COMPACT_EVERY_RUNS = 7
COMPACTED_KEY = "compacted_run"


def compaction_due_sql(every: int = COMPACT_EVERY_RUNS) -> str:
    """Whether the nightly runs (`run`, `load-results`) since the last compaction, counting
    the current one, number `every` or more. A refused or failed attempt published nothing
    and is no night (a week of broken rules must not make the next real night compact)."""
    last = f"coalesce(CAST(({meta_value_sql(COMPACTED_KEY)}) AS INTEGER), 0)"
    return (f"SELECT count(*) >= {int(every)} FROM runs "
            f"WHERE command IN ('run', 'load-results') AND run_id > {last} "
            "AND outcome NOT IN ('refused', 'failed')")
