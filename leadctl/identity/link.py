"""Linking: value status (blocklist, cap), edges, connected components in SQL.

Pure builders returning SQL strings; `resolve` runs them. Records that share a
usable identifier value are one person. Only values carried by two or more
records are grouped (`shared_values_sql`); each such value links its records to
its smallest lead key (a star, so edges ≈ linking identifier rows). Connected
components: alternating large-star / small-star rounds with complete components
set aside before each round (see below).
"""

from __future__ import annotations

from leadctl.identity.config import ID_TYPES, IdentityConfig
from leadctl.identity.normalize import ascii_lower
from leadctl.sqltext import absent_sql, literal

# lead_identifiers.status, in the order they are decided.
BLOCKED, INVALID, CAPPED, OK = "blocked", "invalid", "capped", "ok"
CUT = "cut"  # set after linking: a value a cannot_link override cut (overrides_sql.py)
INVALID_REASONS = {
    "phone": "not a valid phone number",
    "email": "not a valid e-mail address",
    "wechat": "empty WeChat id",
    "device_id": "empty device id",
    "id_card": "not an 18-digit ID card with a valid check digit",
}


def _case_by_type(values: dict[str, str], default: str, column: str = "id_type") -> str:
    arms = " ".join(f"WHEN {literal(t)} THEN {v}" for t, v in values.items())
    return f"(CASE {column} {arms} ELSE {default} END)" if arms else default


def cap_sql(config: IdentityConfig) -> str:
    """The per-value record cap of the row's id_type."""
    return _case_by_type({t: str(config.cap(t)) for t in ID_TYPES if t in config.cap_by_type},
                         str(config.max_records_per_value))


def blocked_reason_sql(config: IdentityConfig, blocked_keys: dict[str, list[str]],
                       key: str = "key_value") -> str:
    """Why a value is blocked (blocklist, pattern, repeated character), or NULL.

    `blocked_keys`: identity.yaml's values per type, already normalised like the data.
    """
    arms = []
    listed = {t: sorted(set(v)) for t, v in blocked_keys.items() if v}
    for id_type, values in listed.items():
        arms.append(f"WHEN id_type = {literal(id_type)} AND {key} IN "
                    f"({', '.join(literal(v) for v in values)}) THEN 'blocklist'")
    if config.blocked_any:
        # Keys have their ASCII letters lower-cased (upper-cased for ID cards): no lower()
        # per row needed; a word's other letters in either case (`Ünbekannt`, `ünbekannt`)
        words = sorted({ascii_lower(w) for v in config.blocked_any
                        for w in (v, v.lower(), v.upper())}
                       | {v.upper() for v in config.blocked_any})
        arms.append(f"WHEN {key} IN ({', '.join(literal(v) for v in words)}) THEN 'blocklist'")
    if config.repeated_character:
        kinds = ", ".join(literal(t) for t in config.repeated_character)
        # Cheap test first, true of every such value: the last two characters are the same
        # or one of them is a separator (`{0000-…-0000}`, `aaaaaa.`).
        last, second = f"right({key}, 1)", f"left(right({key}, 2), 1)"
        core = f"regexp_replace(regexp_replace({key}, '^\\+(86)?', ''), '[^0-9a-z]', '', 'g')"
        arms.append(f"WHEN id_type IN ({kinds}) AND length({key}) >= 2 "
                    f"AND ({last} = {second} OR NOT {_alnum(last)} OR NOT {_alnum(second)}) "
                    f"AND length({core}) >= 2 AND replace({core}, left({core}, 1), '') = '' "
                    f"THEN 'repeated character'")
        if "id_card" in config.repeated_character:
            # A 15-digit card of one digit, upgraded to 18 ('19' and a check digit inserted)
            digits = f"substr({key}, 1, 6) || substr({key}, 9, 9)"
            arms.append(f"WHEN id_type = 'id_card' AND length({key}) = 18 "
                        f"AND substr({key}, 7, 2) = '19' "
                        f"AND replace({digits}, left({key}, 1), '') = '' "
                        f"THEN 'repeated character'")
    for id_type in ID_TYPES:
        for pattern in config.blocked_patterns.get(id_type, ()):
            arms.append(f"WHEN id_type = {literal(id_type)} AND regexp_matches({key}, "
                        f"{literal(pattern)}) THEN {literal('blocklist pattern ' + pattern)}")
    return "(CASE " + " ".join(arms) + " END)" if arms else "CAST(NULL AS VARCHAR)"


def _alnum(char: str) -> str:
    """Whether a one-character text is what a key's core keeps ([0-9a-z])."""
    return f"({char} BETWEEN '0' AND '9' OR {char} BETWEEN 'a' AND 'z')"


def shared_values_sql(target: str, identifiers: str) -> str:
    """`target(id_type, key_value, records, anchor, members)`: valid values carried by two
    or more records, with their smallest lead key and every lead key."""
    return f"""
        CREATE OR REPLACE TEMP TABLE {target} AS
        SELECT id_type, key_value, count(*) AS records, min(lead_key) AS anchor,
               list(lead_key) AS members
        FROM {identifiers} WHERE valid GROUP BY id_type, key_value HAVING count(*) > 1"""


def status_sql(blocked: str, valid: str, records: str, config: IdentityConfig) -> tuple[str, str]:
    """(status, reason) expressions from the blocked reason, validity and record count."""
    invalid_reason = _case_by_type({t: literal(r) for t, r in INVALID_REASONS.items()},
                                   "'invalid'")
    cap = cap_sql(config)
    status = (f"CASE WHEN {blocked} IS NOT NULL THEN '{BLOCKED}' WHEN NOT {valid} "
              f"THEN '{INVALID}' WHEN {records} > {cap} THEN '{CAPPED}' ELSE '{OK}' END")
    reason = (f"CASE WHEN {blocked} IS NOT NULL THEN {blocked} WHEN NOT {valid} "
              f"THEN {invalid_reason} WHEN {records} > {cap} THEN 'shared by ' || {records} "
              f"|| ' records, over the cap of ' || {cap} END")
    return status, reason


def lead_identifiers_sql(identifiers: str, shared: str, config: IdentityConfig,
                         blocked_keys: dict[str, list[str]]) -> str:
    """Publishes `lead_identifiers`: every identifier row with its status."""
    return (f"CREATE OR REPLACE TABLE lead_identifiers AS "
            f"{lead_identifiers_select_sql(identifiers, shared, config, blocked_keys)} "
            "ORDER BY value")  # sorted: a portrait lookup by phone/email reads few row groups


def lead_identifiers_select_sql(identifiers: str, shared: str, config: IdentityConfig,
                                blocked_keys: dict[str, list[str]]) -> str:
    """The `lead_identifiers` rows of the normalised rows in `identifiers`.

    `value` is the normalised value (for a blocked value that is also invalid: its
    cleaned text, so the blocklist report and lookups can show it); NULL when invalid.
    """
    status, reason = status_sql("blocked", "valid", "records", config)
    return f"""
        SELECT lead_key, id_type, raw_value,
            CASE WHEN valid OR blocked IS NOT NULL THEN key_value END AS value,
            {status} AS status, records, {reason} AS reason
        FROM (
            SELECT *, {blocked_reason_sql(config, blocked_keys)} AS blocked FROM (
                SELECT i.lead_key, i.id_type, i.raw_value, i.key_value, i.valid,
                    CASE WHEN i.valid THEN coalesce(s.records, 1) END AS records
                FROM {identifiers} i LEFT JOIN {shared} s
                  ON s.id_type = i.id_type AND s.key_value = i.key_value))"""


def update_lead_identifiers_sql(identifiers: str, shared: str, config: IdentityConfig,
                                blocked_keys: dict[str, list[str]], touched_values: str,
                                changed_leads: str, target: str) -> list[str]:
    """Redoes only the rows whose status can have changed since the last resolve (same
    rules): those of new or changed leads and of every lead holding a value one of them
    carries or carried (its record count changed); drops the rows of vanished leads.
    `target`: a working table for the leads redone."""
    some = f"(SELECT * FROM {identifiers} WHERE lead_key IN (SELECT lead_key FROM {target}))"
    return [
        f"""CREATE OR REPLACE TEMP TABLE {target} AS
            SELECT lead_key FROM {changed_leads}
            UNION
            SELECT v.lead_key FROM {identifiers} v JOIN {touched_values} t
              ON t.id_type = v.id_type AND t.key_value = v.key_value""",
        f"""DELETE FROM lead_identifiers WHERE lead_key IN (SELECT lead_key FROM {target})
            OR {absent_sql("lead_identifiers.lead_key", identifiers)}""",
        "INSERT INTO lead_identifiers "
        + lead_identifiers_select_sql(some, shared, config, blocked_keys),
    ]


def publish_blocked_sql() -> str:
    """Values that look usable but do not link: blocked, capped and cut (by a
    cannot_link override) ones."""
    return f"""
        CREATE OR REPLACE TABLE blocked_identifiers AS
        SELECT id_type, value, min(reason) AS reason, count(*) AS records, status
        FROM lead_identifiers WHERE status IN ('{BLOCKED}', '{CAPPED}', '{CUT}')
        GROUP BY id_type, value, status
        ORDER BY id_type, records DESC, value"""


# -- edges and components ------------------------------------------------------------------

def edges_sql(target: str, shared: str, config: IdentityConfig,
              blocked_keys: dict[str, list[str]]) -> str:
    """Edges (a, b), a > b, between each record of a linking value and the value's
    anchor record (linking: shared, not blocked, not over the cap). `shared` is a table
    or a parenthesised query (the shared values without the cut ones)."""
    return f"""
        CREATE OR REPLACE TEMP TABLE {target} AS
        WITH linking AS (
            SELECT anchor, members FROM {shared} AS s
            WHERE records <= {cap_sql(config)}
              AND {blocked_reason_sql(config, blocked_keys)} IS NULL)
        SELECT DISTINCT a, anchor AS b FROM (
            SELECT anchor, unnest(members) AS a FROM linking) WHERE a <> anchor"""


# Connected components: alternate large-star and small-star (Kiveris et al., "Connected
# Components in MapReduce and Beyond", 2014; what GraphFrames uses) over edges kept
# oriented a > b, until every component is a star around its smallest node:
# O(log² n) rounds in the worst case, a handful in practice. Before every round,
# components that already are complete stars are set aside, so rounds only touch the
# components still changing.

def large_star_sql(edges: str) -> str:
    """Every node's larger neighbours are linked to the smallest node of its neighbourhood."""
    return f"""
        CREATE OR REPLACE TEMP TABLE {edges} AS
        WITH sym AS (SELECT a AS u, b AS v FROM {edges} UNION ALL SELECT b, a FROM {edges}),
        m AS (SELECT u, least(u, min(v)) AS m FROM sym GROUP BY u)
        SELECT DISTINCT s.v AS a, m.m AS b FROM sym s JOIN m ON m.u = s.u WHERE s.v > s.u"""


def small_star_sql(edges: str) -> str:
    """Every node and its smaller neighbours are linked to the smallest of them."""
    return f"""
        CREATE OR REPLACE TEMP TABLE {edges} AS
        WITH m AS (SELECT a AS u, min(b) AS m FROM {edges} GROUP BY a)
        SELECT e.b AS a, m.m AS b FROM {edges} e JOIN m ON m.u = e.a WHERE e.b <> m.m
        UNION
        SELECT u AS a, m AS b FROM m"""


def complete_stars_sql(stars: str, edges: str) -> str:
    """`stars(root)`: roots whose star is a whole component: no leaf has another edge
    and the root points nowhere."""
    return f"""
        CREATE OR REPLACE TEMP TABLE {stars} AS
        WITH out AS (SELECT a, count(*) AS degree FROM {edges} GROUP BY a),
        broken AS (
            SELECT e.b AS root FROM {edges} e JOIN out o ON o.a = e.a WHERE o.degree > 1
            UNION SELECT e.b FROM {edges} e WHERE e.a IN (SELECT b FROM {edges})
            UNION SELECT b FROM {edges} WHERE b IN (SELECT a FROM {edges}))
        SELECT DISTINCT b AS root FROM {edges}
        WHERE {absent_sql(f"{edges}.b", "broken", "root")}"""


def set_aside_sql(done: str, edges: str, stars: str) -> list[str]:
    """Move complete stars to `done(node, label)`; keep the other edges."""
    return [
        f"""INSERT INTO {done}
            SELECT a, b FROM {edges} WHERE b IN (SELECT root FROM {stars})
            UNION ALL SELECT root, root FROM {stars}""",
        f"""CREATE OR REPLACE TEMP TABLE {edges} AS
            SELECT a, b FROM {edges} WHERE {absent_sql(f"{edges}.b", stars, "root")}""",
    ]
