"""One as-of per screen: `portrait`, `find`, `explain` and `report channels` show
everything as of one date.

By default that is the as-of of the last published tag run (stored with the tags);
`--as-of D` moves it; without any tag run yet it is today. What the views compute
(activity, "last 30 days", locks, `days_since` in `find`, leads counted by `report`) is
computed at that date; stored values (tags, scores) cannot be recomputed for another
date, so a view lists those whose own as-of differs (`as_of_differs`).

Imports only the stdlib (and tagging.tables, which does too): `leadctl portrait` uses it
and must start fast.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from leadctl.tagging.tables import last_tag_run_sql

SOURCES = {"tags": "the last tag run", "option": "--as-of", "today": "today: no tag run yet"}


@dataclass(frozen=True)
class ScreenAsOf:
    as_of: dt.date
    source: str  # "tags" (the last tag run), "option" (--as-of) or "today" (no tag run)
    tags_as_of: dt.date | None

    @property
    def actions_until(self) -> dt.date:
        """The last day whose rep actions (a sale, its lock) the screen counts: the as-of
        `--as-of` asked for; by default every action on record, as the default as-of is
        the last night's and an action made since must show at once (one dated after
        today too, as `sale --as-of` allows: its owner shows, so must its lock)."""
        return self.as_of if self.source == "option" else dt.date.max

    @property
    def routing_until(self) -> dt.date | None:
        """The date a person's routing is rebuilt for from the assignment log
        (`routing.screens.ownership_as_of_sql`), under `--as-of`; None: the stored routing
        (the default as-of counts every rep action on record)."""
        return self.as_of if self.source == "option" else None

    def differs(self, **stored: dt.date | str | None) -> list[str]:
        """Names of the stored parts (name=their as-of) shown as of another date."""
        return [name for name, day in stored.items()
                if day is not None and str(day)[:10] != self.as_of.isoformat()]

    def to_dict(self, **stored: dt.date | str | None) -> dict:
        """`as_of`, where it comes from, the as-of of each stored part (`tags_as_of`,
        `<name>_as_of`) and the parts shown as of another date (`as_of_differs`)."""
        parts = {"tags": self.tags_as_of, **stored}
        return {"as_of": self.as_of.isoformat(), "as_of_source": self.source,
                **{f"{name}_as_of": str(day)[:10] if day else None
                   for name, day in parts.items()},
                "as_of_differs": self.differs(**parts)}

    def with_routing(self, routing: dt.date | None, **stored: dt.date | str | None) -> dict:
        """to_dict for a screen that shows a person's routing, with `routing_as_of`: the
        date of its latest log row. The routing is as of the screen's date unless that is
        later, which happens under the default as-of only (rep actions since the last
        night show at once: `actions_until`); then `routing` is in `as_of_differs`."""
        view = self.to_dict(**stored)
        view["routing_as_of"] = str(routing)[:10] if routing else None
        if routing is not None and routing > self.as_of:
            view["as_of_differs"].append("routing")
        return view


def last_tag_as_of(ws) -> dt.date | None:
    """The as-of of the published tags: that of the last `tag`/`run`/`load-results` in the
    run log (a small table: the portrait's lookup stays fast), else the one stored with
    the tags (a workspace filled by other means); None before any tag run."""
    row = ws.execute(last_tag_run_sql()).fetchone()
    if row is None:
        row = ws.execute("SELECT as_of FROM tags WHERE as_of IS NOT NULL LIMIT 1").fetchone()
    return _date(row[0]) if row else None


def stored_as_of(ws, table: str) -> dt.date | None:
    """The as-of stored with a stage's rows (`scores`): one run writes one as-of."""
    row = ws.execute(f"SELECT as_of FROM {table} WHERE as_of IS NOT NULL LIMIT 1").fetchone()
    return _date(row[0]) if row else None


def screen_as_of(ws, requested: dt.date | None) -> ScreenAsOf:
    """The screen's one as-of: `requested` (--as-of), else the last tag run's, else today."""
    tags_as_of = last_tag_as_of(ws)
    if requested is not None:
        return ScreenAsOf(requested, "option", tags_as_of)
    if tags_as_of is not None:
        return ScreenAsOf(tags_as_of, "tags", tags_as_of)
    return ScreenAsOf(ws.today(), "today", None)  # in the workspace time zone


def describe(view: dict) -> str:
    """`as of 2026-11-01`, plus where a part is as of another date, or why it is today."""
    text = f"as of {view['as_of']}"
    notes = []
    if view.get("as_of_source") == "today":
        notes.append(SOURCES["today"])
    by_day: dict[str, list[str]] = {}
    for part in view.get("as_of_differs") or []:
        by_day.setdefault(view[f"{part}_as_of"], []).append(part)
    notes += [f"{', '.join(parts)} as of {day}" for day, parts in by_day.items()]
    return text + (f" ({'; '.join(notes)})" if notes else "")


def _date(value) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])
