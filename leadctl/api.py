"""One library function per CLI command (the CLI only parses and renders).

Writers run inside `open_writer` (locked, atomic publish) and record a row in
`runs`; readers use the published state read-only.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from leadctl.workspace import open_reader, open_writer


def ingest(db: Path | None, paths: list[str], options, progress=None) -> dict:
    from leadctl.ingest import ingest_paths
    from leadctl.sources import load_sources_config

    with open_writer(db, create=True) as ws:
        config = load_sources_config(options.rules_dir)
        options.timezone = options.timezone or config.timezone
        options.aliases = config.aliases
        ws.start_run("ingest", None)
        summary = ingest_paths(ws, paths, options, progress)
        ws.finish_run("ok" if not summary.failed else "partial", summary.totals(), paths)
    return summary.to_dict()


def runs(db: Path | None, limit: int) -> list[dict]:
    ws = open_reader(db)
    try:
        return ws.rows("SELECT run_id, command, started_at, ended_at, as_of, rules_hash, "
                       "outcome, counts, error FROM runs ORDER BY run_id DESC LIMIT ?", [limit])
    finally:
        ws.con.close()


def export(db: Path | None, what: str, out: Path, as_of: dt.date | None = None) -> dict:
    from leadctl.views.export import export_table

    ws = open_reader(db)
    try:
        return export_table(ws, what, out)
    finally:
        ws.con.close()
