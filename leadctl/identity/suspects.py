"""Suspects (`leadctl identity suspects`): linking identifier values that look shared by
strangers — a shop's phone, an office's device, an agent's own number — below the cap.

For every value that links (status ok, two or more records, so at most the cap), set-based:
- `names`: distinct names among the leads carrying it, as suggest compares them
  (no spaces, lower-case; bare honorifics and one-character names left out), not counting
  a name that is the end of another one there (`颖婷` within `彭颖婷`: a given name alone);
- `cities`: distinct cities (official names where the spelling is known: 上海, Shanghai,
  SH are one city; else the spelling without spaces, lower-case).
A value is a suspect when names >= `min_distinct` or cities >= `min_distinct`; its score
is `(names - 1) + (cities - 1)`; ranked by score, then records, type and value.

`write_fragment` writes the suspects as a reviewable YAML fragment for
`rules/identity.yaml` (`blocklist: values: {phone: [...]}`), real values with their
counts in comments (a rule file: ops staff own it; terminal output stays masked).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from leadctl import pii
from leadctl.identity import places
from leadctl.identity.suggest_sql import name_key_sql
from leadctl.sqltext import null_token_sql
from leadctl.textfile import write_text_file, yaml_quoted
from leadctl.workspace import Workspace

DEFAULT_MIN_DISTINCT = 3
PLACES = "_suspects_places"


def suspects_sql(places_table: str, min_distinct: int) -> str:
    """(id_type, value, records, names, cities, score, name_list, city_list, total) of
    every suspect value, ranked; `total`: how many there are (also under a LIMIT)."""
    return f"""
        WITH carriers AS (
            SELECT li.id_type, li.value, li.records, {name_key_sql('l.name')} AS name_key,
                -- a city, else a place only a province names (香港, 内蒙古), else the
                -- spelling; a null token (N/A) is no city
                CASE WHEN NOT {null_token_sql('trim(l.city)')} THEN coalesce(
                    p.name, pp.name, nullif({places.place_key_sql('l.city')}, '')) END AS city
            FROM lead_identifiers li JOIN leads l ON l.lead_key = li.lead_key
            LEFT JOIN {places_table} p ON p.kind = 'city'
                 AND p.key = {places.place_key_sql('l.city')}
            LEFT JOIN {places_table} pp ON pp.kind = 'province'
                 AND pp.key = {places.place_key_sql('l.city')}
            WHERE li.status = 'ok' AND li.records > 1),
        names AS (SELECT DISTINCT id_type, value, name_key FROM carriers
                  WHERE name_key IS NOT NULL),
        full_names AS (  -- a name that ends another one of the value is a given name alone
            SELECT n.id_type, n.value, n.name_key FROM names n
            WHERE NOT EXISTS (SELECT 1 FROM names m WHERE m.id_type = n.id_type
                              AND m.value = n.value AND m.name_key <> n.name_key
                              AND ends_with(m.name_key, n.name_key))),
        counted AS (
            SELECT c.id_type, c.value, any_value(c.records) AS records,
                count(DISTINCT c.city) AS cities,
                list_sort(list_distinct(list(c.city))) AS city_list
            FROM carriers c GROUP BY c.id_type, c.value),
        named AS (
            SELECT id_type, value, count(*) AS names, list_sort(list(name_key)) AS name_list
            FROM full_names GROUP BY id_type, value)
        SELECT c.id_type, c.value, c.records, coalesce(n.names, 0) AS names, c.cities,
            greatest(coalesce(n.names, 0) - 1, 0) + greatest(c.cities - 1, 0) AS score,
            coalesce(n.name_list, []) AS name_list, c.city_list, count(*) OVER () AS total
        FROM counted c LEFT JOIN named n ON n.id_type = c.id_type AND n.value = c.value
        WHERE coalesce(n.names, 0) >= {int(min_distinct)} OR c.cities >= {int(min_distinct)}
        ORDER BY score DESC, c.records DESC, c.id_type, c.value"""


def find_suspects(ws: Workspace, *, min_distinct: int = DEFAULT_MIN_DISTINCT,
                  limit: int | None = None, reveal: bool = False,
                  out: Path | None = None) -> dict:
    """`{"suspects": [{type, value, records, names, cities, score, name_list, city_list}],
    "total", "min_distinct", "file"}`; with `out`, also writes the blocklist fragment
    (every suspect, real values)."""
    ws.register(PLACES, places.places_table())
    try:
        rows = ws.rows(suspects_sql(PLACES, min_distinct)
                       + (f" LIMIT {int(limit)}" if limit and out is None else ""))
    finally:
        ws.unregister(PLACES)
    file = (str(write_fragment(out, rows, min_distinct, ws.today())) if out is not None
            else None)
    shown = rows[:limit] if limit else rows
    return {"suspects": [{
        "type": r["id_type"], "value": pii.shown(r["id_type"], r["value"], reveal),
        "records": r["records"], "names": r["names"], "cities": r["cities"],
        "score": r["score"], "name_list": pii.shown("name", r["name_list"], reveal),
        # a city no place name reads is its cell's text, which may quote a phone
        "city_list": pii.text_shown(r["city_list"], reveal)} for r in shown],
        "total": rows[0]["total"] if rows else 0,
        "min_distinct": min_distinct, "file": file}


def fragment_text(rows: list[dict], min_distinct: int, today: dt.date | None = None) -> str:
    """The YAML fragment (real values, quoted as YAML reads them back)."""
    lines = [
        f"# Suspects found by `leadctl identity suspects` on {(today or dt.date.today())}:",
        f"# linking values carried by {min_distinct} or more different names or cities.",
        "# REAL, UNMASKED VALUES: this is a rule file for ops staff, keep it like one.",
        "# Review each value; paste the ones that are not one person's under",
        "# `blocklist: values:` in rules/identity.yaml, next to the entries already there",
        "# (listing a type there replaces that type's default junk values).",
        "blocklist:",
        "  values:",
    ]
    by_type: dict[str, list[dict]] = {}
    for r in rows:
        by_type.setdefault(r["id_type"], []).append(r)
    if not by_type:
        lines[-1] = "  values: {}"
    for id_type in sorted(by_type):
        lines.append(f"    {id_type}:")
        for r in by_type[id_type]:
            lines.append(f"      - {yaml_quoted(r['value'])}"
                         f"  # {r['records']} records, {r['names']} names, "
                         f"{r['cities']} cities")
    return "\n".join(lines) + "\n"


def write_fragment(out: Path, rows: list[dict], min_distinct: int,
                   today: dt.date | None = None) -> Path:
    return write_text_file(out, fragment_text(rows, min_distinct, today))

