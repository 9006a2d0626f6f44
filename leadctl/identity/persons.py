"""Golden person records: one row per person, field by field by survivorship.

Pure builders, keyed by component (`comp`, the smallest lead key of a person)
until the last join with the person ids. A person with one lead (most of them)
is that lead, projected; only multi-lead persons are aggregated. Their leads
carry a recency key (`members_sql`): `rk` orders them from oldest to newest
(unknown dates oldest; the same time: by source, then lead id — never by the order
files came in, so a rebuild ingesting them in another order picks the same), an
integer rank within the person, so choices are deterministic and cheap.
Methods:
- most_recent: the value of the newest lead that has one;
- earliest: the value of the oldest dated lead that has one (undated ones last);
- most_frequent: the value most leads carry (ties: the most recent);
- source_priority: the value from the first listed source that has one (ties and
  unlisted sources: the most recent).
Identifier fields and the phone/e-mail lists use normalised values that link
(status ok); blocked, capped and invalid values stay in lead_identifiers only.
"""

from __future__ import annotations

from leadctl.identity.config import GOLDEN_FIELDS, IdentityConfig, Survivorship
from leadctl.identity.link import OK
from leadctl.identity.places import place_key_sql, placed_columns
from leadctl.sqltext import NAME_NULL_TOKENS, literal, null_token_sql

LEAD_FIELDS = ("name", "city", "province", "channel", "source")
IDENTIFIER_FIELDS = ("phone", "email", "wechat", "device_id", "id_card")
# Recency key: a rank within the person (priority and frequency keys are structs).
_UNDATED = 1 << 40  # added to an undated lead's rank: after every dated one


def comps_sql(target: str, leads: str, done: str) -> str:
    """`target(lead_key, comp, multi)`: every lead with its component."""
    return f"""
        CREATE OR REPLACE TEMP TABLE {target} AS
        SELECT l.lead_key, coalesce(d.label, l.lead_key) AS comp, d.label IS NOT NULL AS multi
        FROM {leads} l LEFT JOIN {done} d ON d.node = l.lead_key"""


def lead_text_sql(field: str, alias: str = "l") -> str:
    """A lead's text field as the golden record reads it: trimmed; blank or a null token
    (`N/A`, `null`, `-`: what exports write for an empty cell) is no value, so it never
    wins over a real one. A name keeps the tokens people bear as names (`Na`, `Nan`)."""
    text = f"nullif(trim({alias}.{field}), '')"
    tokens = {"tokens": NAME_NULL_TOKENS} if field == "name" else {}
    return f"CASE WHEN {null_token_sql(text, **tokens)} THEN NULL ELSE {text} END"


def members_sql(target: str, leads: str, done: str) -> str:
    """`target(lead_key, comp, rk, <lead fields>, lead_id, created_at)`: leads of
    multi-lead components with their recency key."""
    fields = ", ".join(f"{lead_text_sql(f)} AS {f}" for f in LEAD_FIELDS if f != "source")
    return f"""
        CREATE OR REPLACE TEMP TABLE {target} AS
        SELECT l.lead_key, d.label AS comp, l.source, l.lead_id, l.created_at, {fields},
            row_number() OVER (PARTITION BY d.label ORDER BY l.created_at NULLS FIRST,
                               l.source, l.lead_id) AS rk
        FROM {done} d JOIN {leads} l ON l.lead_key = d.node"""


def _earliness(rk: str = "rk", created_at: str = "created_at") -> str:
    """Oldest first, undated leads last."""
    return f"(CASE WHEN {created_at} IS NULL THEN {rk} + {_UNDATED} ELSE {rk} END)"


def survivor_sql(rule: Survivorship, value: str, where: str | None = None) -> str:
    """Aggregate expression choosing `value` among a person's rows (columns rk,
    created_at, lead_source); `where` restricts the rows (FILTER clause)."""
    filt = f" FILTER (WHERE {where})" if where else ""
    if rule.method == "most_recent":
        return f"arg_max({value}, rk){filt}"
    if rule.method == "earliest":
        return f"arg_min({value}, {_earliness()}){filt}"
    if rule.method == "source_priority":
        arms = " ".join(f"WHEN {literal(s)} THEN {i}" for i, s in enumerate(rule.sources))
        rank = f"CASE lead_source {arms} ELSE {len(rule.sources)} END"
        return f"arg_min({value}, {{'source_rank': {rank}, 'newest': -rk}}){filt}"
    raise ValueError(f"{rule.method} is computed by most_frequent_sql")


def most_frequent_sql(target: str, rows: str, field: str, value: str,
                      where: str | None = None) -> str:
    """`target(comp, <field>)`: the value most rows carry; ties: the most recent."""
    filt = f" AND ({where})" if where else ""
    return f"""
        CREATE OR REPLACE TEMP TABLE {target} AS
        SELECT comp, arg_max({value}, {{'n': n, 'rk': last_rk}}) AS {field}
        FROM (SELECT comp, {value}, count(*) AS n, max(rk) AS last_rk
              FROM {rows} WHERE {value} IS NOT NULL{filt} GROUP BY comp, {value})
        GROUP BY comp"""


PLACE_FIELDS = ("city", "province")


def most_frequent_place_sql(target: str, rows: str, field: str, places: str) -> str:
    """`target(comp, <field>)` for a place field: the place most rows name, whatever the
    spelling (`上海`, `上海市`, `Shanghai`: one place, as everywhere else; an unknown name
    votes with the spellings differing from it only in case, spaces, `-` and apostrophes);
    ties: the most recent. The value is the winning place's most recent spelling (the raw
    value the record keeps). `places`: the place table (`places.places_table`)."""
    key = place_key_sql(f"r.{field}")
    return f"""
        CREATE OR REPLACE TEMP TABLE {target} AS
        SELECT comp, arg_max(spelling, {{'n': n, 'rk': last_rk}}) AS {field}
        FROM (SELECT r.comp, coalesce(pl.name, {key}) AS place, count(*) AS n,
                     max(r.rk) AS last_rk, arg_max(r.{field}, r.rk) AS spelling
              FROM {rows} r LEFT JOIN {places} pl ON pl.kind = {literal(field)} AND pl.key = {key}
              WHERE r.{field} IS NOT NULL GROUP BY r.comp, coalesce(pl.name, {key}))
        GROUP BY comp"""


def id_rows_sql(target: str, members: str, leads: str | None = None) -> str:
    """Linking identifier values with their component (a single-lead person's component
    is its lead key); member rows also carry their recency key and source. `leads`: a
    table of the lead keys to take (default: all)."""
    some = f" AND i.lead_key IN (SELECT lead_key FROM {leads})" if leads else ""
    return f"""
        CREATE OR REPLACE TEMP TABLE {target} AS
        SELECT coalesce(m.comp, i.lead_key) AS comp, m.comp IS NOT NULL AS multi, i.id_type,
               i.value, m.rk, m.created_at, m.source AS lead_source
        FROM lead_identifiers i LEFT JOIN {members} m ON m.lead_key = i.lead_key
        WHERE i.status = '{OK}'{some}"""


MAX_MASK_SOURCES = 62  # sources per person as a BIGINT bit mask up to this many sources


def source_bits_sql(sources: list[str]) -> str:
    """The bit of a lead's source (sources sorted by name: bit i = sources[i])."""
    if not sources:
        return "CAST(0 AS BIGINT)"
    arms = " ".join(f"WHEN {literal(s)} THEN {1 << i}" for i, s in enumerate(sources))
    return f"CAST(CASE source {arms} ELSE 0 END AS BIGINT)"


def multi_leads_sql(target: str, members: str, config: IdentityConfig,
                    sources: list[str]) -> str:
    """`target(comp, <lead fields>, first_seen, last_seen, lead_count, source_mask,
    sources)`: lead fields of multi-lead persons (most_frequent ones: NULL here). The
    distinct sources are kept as a bit mask (decoded by `source_lists_sql`) when there
    are few sources: list aggregation is much slower."""
    cols = []
    for field in GOLDEN_FIELDS:
        if field in IDENTIFIER_FIELDS:
            continue
        rule = config.survivorship[field]
        cols.append(f"CAST(NULL AS VARCHAR) AS {field}" if rule.method == "most_frequent"
                    else f"{survivor_sql(rule, field)} AS {field}")
    if len(sources) <= MAX_MASK_SOURCES:
        source_cols = (f"bit_or({source_bits_sql(sources)}) AS source_mask, "
                       "CAST(NULL AS VARCHAR[]) AS sources")
    else:
        source_cols = ("CAST(NULL AS BIGINT) AS source_mask, "
                       "list_sort(list_distinct(list(source))) AS sources")
    return f"""
        CREATE OR REPLACE TEMP TABLE {target} AS
        SELECT comp, {', '.join(cols)}, min(created_at) AS first_seen,
            max(created_at) AS last_seen, count(*) AS lead_count, {source_cols}
        FROM (SELECT *, source AS lead_source FROM {members}) GROUP BY comp"""


def source_lists_sql(target: str, multi_leads: str, sources: list[str]) -> str:
    """`target(source_mask, sources)`: each mask present, as the sorted list of sources
    (none past MAX_MASK_SOURCES: the lists were aggregated, and a bit past 63 is no BIGINT)."""
    if not sources or len(sources) > MAX_MASK_SOURCES:
        return f"CREATE OR REPLACE TEMP TABLE {target} (source_mask BIGINT, sources VARCHAR[])"
    values = ", ".join(f"({literal(s)}, {1 << i})" for i, s in enumerate(sources))
    return f"""
        CREATE OR REPLACE TEMP TABLE {target} AS
        SELECT m.source_mask, list_sort(list(s.source)) AS sources
        FROM (SELECT DISTINCT source_mask FROM {multi_leads} WHERE source_mask IS NOT NULL) m
        JOIN (VALUES {values}) AS s(source, bit) ON (m.source_mask & s.bit) <> 0
        GROUP BY m.source_mask"""


def single_ids_sql(target: str, id_rows: str) -> str:
    """`target(comp, <identifier fields>, phones, emails)` of single-lead persons: the
    lead's own linking values. Lists are built from min/max (a cell holds at most a
    couple of values); a lead with more than two phones or e-mails gets NULL, filled in
    by `fill_lists_sql`."""
    fields = ", ".join(f"min(value) FILTER (WHERE id_type = {literal(f)}) AS {f}"
                       for f in IDENTIFIER_FIELDS)
    lists = []
    for kind, name in (("phone", "phones"), ("email", "emails")):
        low, high, n = (f"min(value) FILTER (WHERE id_type = '{kind}')",
                        f"max(value) FILTER (WHERE id_type = '{kind}')",
                        f"count(*) FILTER (WHERE id_type = '{kind}')")
        lists.append(f"CASE {n} WHEN 0 THEN CAST([] AS VARCHAR[]) WHEN 1 THEN [{low}] "
                     f"WHEN 2 THEN CASE WHEN {low} = {high} THEN [{low}] ELSE [{low}, {high}] END "
                     f"END AS {name}")
    return f"""
        CREATE OR REPLACE TEMP TABLE {target} AS
        SELECT comp, {fields}, {', '.join(lists)}
        FROM {id_rows} WHERE NOT multi GROUP BY comp"""


def multi_ids_sql(target: str, id_rows: str, config: IdentityConfig) -> str:
    """`target(comp, <identifier fields>, phones, emails)` of multi-lead persons
    (most_frequent fields: NULL here, see most_frequent_sql)."""
    cols = []
    for field in IDENTIFIER_FIELDS:
        rule = config.survivorship[field]
        cols.append(f"CAST(NULL AS VARCHAR) AS {field}" if rule.method == "most_frequent"
                    else f"{survivor_sql(rule, 'value', f'id_type = {literal(field)}')} "
                         f"AS {field}")
    lists = ("list_sort(list_distinct(list(value) FILTER (WHERE id_type = 'phone'))) AS phones, "
             "list_sort(list_distinct(list(value) FILTER (WHERE id_type = 'email'))) AS emails")
    return f"""
        CREATE OR REPLACE TEMP TABLE {target} AS
        SELECT comp, {', '.join(cols)}, {lists} FROM {id_rows} WHERE multi GROUP BY comp"""


def persons_sql(leads: str, comps: str, members: str, id_rows: str, ids: str,
                config: IdentityConfig, sources: list[str],
                places: str = "places") -> tuple[list[str], str]:
    """(statements preparing the parts, the SELECT of the persons table).

    Single-lead persons: their lead projected plus its identifiers (`single_ids_sql`).
    Multi-lead persons: aggregated lead fields (`multi_leads_sql`) and identifiers
    (`multi_ids_sql`); most_frequent fields come from their own tables (city and
    province vote by place, read in the table `places`).
    """
    t = {k: f"_oneid_p_{k}" for k in ("single_ids", "multi_ids", "multi_leads", "sources")}
    prepare = [single_ids_sql(t["single_ids"], id_rows),
               multi_ids_sql(t["multi_ids"], id_rows, config),
               multi_leads_sql(t["multi_leads"], members, config, sources),
               source_lists_sql(t["sources"], t["multi_leads"], sources)]
    multi_picks = []
    freq_joins = []
    for field in GOLDEN_FIELDS:
        is_id = field in IDENTIFIER_FIELDS
        own = f"iv.{field}" if is_id else f"ml.{field}"
        if config.survivorship[field].method == "most_frequent":
            table = f"_oneid_freq_{field}"
            prepare.append(most_frequent_sql(table, id_rows, field, "value",
                                             f"multi AND id_type = {literal(field)}")
                           if is_id else most_frequent_place_sql(table, members, field, places)
                           if field in PLACE_FIELDS
                           else most_frequent_sql(table, members, field, field))
            freq_joins.append(f"LEFT JOIN {table} ON {table}.comp = ml.comp")
            own = f"{table}.{field}"
        multi_picks.append(f"{own} AS {field}")
    single_picks = [f"iv.{f} AS {f}" if f in IDENTIFIER_FIELDS
                    else "l.source AS source" if f == "source"
                    else f"{lead_text_sql(f)} AS {f}" for f in GOLDEN_FIELDS]
    empty = "CAST([] AS VARCHAR[])"
    query = f"""
        SELECT p.person_id, {', '.join(single_picks)}, l.created_at AS first_seen,
            l.created_at AS last_seen, 1 AS lead_count, [l.source] AS sources,
            CASE WHEN iv.comp IS NULL THEN {empty} ELSE iv.phones END AS phones,
            CASE WHEN iv.comp IS NULL THEN {empty} ELSE iv.emails END AS emails
        FROM {comps} c JOIN {leads} l ON l.lead_key = c.lead_key
        JOIN {ids} p ON p.comp = c.comp
        LEFT JOIN {t['single_ids']} iv ON iv.comp = c.comp
        WHERE NOT c.multi
        UNION ALL
        SELECT p.person_id, {', '.join(multi_picks)}, ml.first_seen, ml.last_seen,
            CAST(ml.lead_count AS INTEGER), coalesce(ml.sources, sl.sources),
            coalesce(iv.phones, {empty}), coalesce(iv.emails, {empty})
        FROM {t['multi_leads']} ml JOIN {ids} p ON p.comp = ml.comp
        LEFT JOIN {t['multi_ids']} iv ON iv.comp = ml.comp
        LEFT JOIN {t['sources']} sl ON sl.source_mask = ml.source_mask
        {' '.join(freq_joins)}"""
    return prepare, query


PERSON_COLUMNS = ("person_id", *GOLDEN_FIELDS, "first_seen", "last_seen", "lead_count",
                  "sources", "phones", "emails")
PLACE_COLUMNS = ("city", "province", "city_raw", "province_raw", "city_source",
                 "province_source")


def placed_sql(golden: str, given: str, phone_places: str) -> str:
    """The persons of `golden` (the `persons_sql` query, stored) with city and province
    normalised (identity/places.py): `given` from `places.given_places_sql`,
    `phone_places(prefix, city, province)` the geocoded mobile prefixes."""
    exprs = placed_columns("g", "ph")
    picks = []
    for column in PERSON_COLUMNS:
        if column == "city":
            picks += [f"{exprs[c]} AS {c}" for c in PLACE_COLUMNS]
        elif column != "province":
            picks.append(f"p.{column}")
    return f"""
        SELECT {', '.join(picks)}
        FROM {golden} p JOIN {given} g ON g.person_id = p.person_id
        LEFT JOIN {phone_places} ph ON ph.prefix = g.phone_prefix"""


def publish_persons_sql(query: str) -> str:
    # Sorted by id: the portrait reads one person by zonemap, not a full scan.
    return f"CREATE OR REPLACE TABLE persons AS SELECT * FROM ({query}) ORDER BY person_id"


# -- golden records of a region (identity/region.py) ----------------------------------------

def update_persons_sql(query: str, region_persons: str, ids: str) -> list[str]:
    """Replaces the rows of the region's previous persons with its persons' new rows; the
    other rows stay as they are."""
    return [f"""DELETE FROM persons WHERE person_id IN (SELECT person_id FROM {region_persons})
                OR person_id IN (SELECT person_id FROM {ids})""",
            f"INSERT INTO persons SELECT * FROM ({query})"]


def fill_lists_sql() -> list[str]:
    """Phone/e-mail lists of single-lead persons with more than two values in a cell."""
    return [f"""
        UPDATE persons SET {name} = f.{name} FROM (
            SELECT pl.person_id, list_sort(list_distinct(list(li.value))) AS {name}
            FROM person_leads pl JOIN lead_identifiers li ON li.lead_key = pl.lead_key
            WHERE pl.person_id IN (SELECT person_id FROM persons WHERE {name} IS NULL)
              AND li.id_type = '{kind}' AND li.status = '{OK}'
            GROUP BY pl.person_id) f
        WHERE persons.person_id = f.person_id""" for kind, name in (("phone", "phones"),
                                                                    ("email", "emails"))]
