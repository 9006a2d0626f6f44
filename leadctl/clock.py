"""The workspace's clock: wall-clock time of the workspace time zone.

Times in a workspace are wall-clock times of its zone (sources.yaml `timezone:`, stored
in the workspace's meta once rows are stored): created_at, the ingest time, the stamps of
rejects, the run log and identity history, and "today" (the default as-of). The machine's
own time zone changes none of them.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo

DEFAULT_ZONE = "Asia/Shanghai"  # sources.yaml without `timezone:`
ZONE_KEY = "timezone"  # meta: the zone the workspace's times were read in


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def iso_date(text: str) -> dt.date:
    """A YYYY-MM-DD date, nothing else (ValueError): Python's fromisoformat also takes
    20261101 and the week date 2026-W40-1, which a mistyped date would silently become."""
    if not _ISO_DATE.fullmatch(text):
        raise ValueError(f"not a YYYY-MM-DD date: {text!r}")
    return dt.date.fromisoformat(text)


def utc_now() -> dt.datetime:
    """Now, an aware instant: the one reading of the clock (tests freeze it here)."""
    return dt.datetime.now(dt.UTC)


def wall_clock(zone: str, instant: dt.datetime | None = None) -> dt.datetime:
    """`instant` (an aware datetime; None: now) as the wall-clock time of `zone`: from the
    system's zone database, else from ICU's (a machine without one; 0.2 s to start)."""
    instant = instant or utc_now()
    try:
        return instant.astimezone(zoneinfo.ZoneInfo(zone)).replace(tzinfo=None)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        import duckdb  # noqa: PLC0415 (only without a zone database)

        with duckdb.connect() as con:
            return con.execute("SELECT timezone(?, CAST(? AS TIMESTAMPTZ))",
                               [zone, instant.astimezone(dt.UTC).isoformat()]).fetchone()[0]


def wall_clock_now(zone: str) -> dt.datetime:
    """Now as the wall-clock time of `zone`."""
    return wall_clock(zone)


def today(zone: str) -> dt.date:
    """Today in `zone`: the default as-of."""
    return wall_clock_now(zone).date()
