"""Applying identity overrides in the linking SQL: pure builders (inputs → SQL), run by
identity/resolve.py on either engine.

- must_link: every entry is a (virtual) node joined to its leads — the leads it names,
  or every lead carrying one of its values (whatever that value's status: an override
  says these are one person) — and adds edges from them to its smallest lead key.
- cannot_link of one value: the value never links, like a blocklisted one; it is
  recorded in lead_identifiers / blocked_identifiers with status `cut` and reason
  `cannot_link: <reason>`.
- cannot_link of two leads: checked after linking. When a component holds both leads,
  a breadth-first search from the first of them (by source, lead id: not by lead key,
  so a rebuild from an empty workspace chooses the same) over the lead–value graph of
  that component (a lead is joined to each linking value it carries) numbers every node
  by its distance. Leads that must_link entries join (also through a chain) are one node
  of that graph (`must_groups_*`): no cut can part them, so every edge left is a row
  that can be cut. An edge joins nodes whose distances differ by at most one, so every
  path from one lead to the other crosses each layer of edges from distance k to k + 1
  (k below the other lead's distance): cutting one whole layer separates the two leads
  whatever other paths exist. Of a layer only the edges whose far end (distance k + 1)
  still reaches the second lead without going back below k + 1 are cut (`reach_back`):
  an edge into a branch that leads nowhere but back stays, so a lead on such a branch
  keeps its links. The layer cut is the one with the fewest rows (ties: nearest the
  middle of the path, then nearest the first lead). An edge is one lead's row of one
  value (of a must_link group, the row of each of its leads carrying the value): that
  row gets status `cut` (reason `cannot_link: <reason>`) and no longer links, while the
  value still links the value's other leads — a family phone shared by four leads, one
  of them kept apart from another, cuts only that one lead's phone. Then the components
  are computed again, and no component holds both leads. When the two leads are one
  node — must_link entries alone join them — there is no layer to cut and the overrides
  conflict (a rule error naming the cannot_link entry).
  Pairs found in one round are all cut in that round (each by its own layer), so one
  extra linking pass suffices.

Cuts: `cuts(id_type, key_value, lead_key, reason)`, lead_key NULL for a whole value.
"""

from __future__ import annotations

from leadctl.identity.overrides import CANNOT_LINK, MUST_LINK, Override
from leadctl.sqltext import literal

CUT = "cut"  # lead_identifiers / blocked_identifiers status of a value a cannot_link cut


def _rows(rows: list[str], columns: str, empty: str) -> str:
    if not rows:
        return f"SELECT {empty} WHERE false"
    return f"SELECT * FROM (VALUES {', '.join(rows)}) AS v({columns})"


def entries_sql(target: str, overrides: list[Override]) -> str:
    """`target(entry, kind, reason, location)`: one row per override (entry = its
    index)."""
    rows = [f"({i}, {literal(o.kind)}, {literal(o.reason)}, {literal(str(o.loc or ''))})"
            for i, o in enumerate(overrides)]
    return (f"CREATE OR REPLACE TEMP TABLE {target} AS "
            + _rows(rows, "entry, kind, reason, location",
                    "CAST(NULL AS INTEGER) AS entry, CAST(NULL AS VARCHAR) AS kind, "
                    "CAST(NULL AS VARCHAR) AS reason, CAST(NULL AS VARCHAR) AS location"))


PUBLISHED = "identity_override_leads"


def publish_sql(entries: str | None, members: str | None = None,
                refs: str | None = None) -> str:
    """Publishes `identity_override_leads` (empty without overrides)."""
    if entries is None:
        return (f"CREATE OR REPLACE TABLE {PUBLISHED} AS SELECT CAST(NULL AS INTEGER) AS "
                "entry, CAST(NULL AS VARCHAR) AS kind, CAST(NULL AS BIGINT) AS lead_key, "
                "CAST(NULL AS VARCHAR) AS reason, CAST(NULL AS VARCHAR) AS location WHERE false")
    return f"""
        CREATE OR REPLACE TABLE {PUBLISHED} AS
        SELECT m.entry, e.kind, m.lead_key, e.reason, e.location
        FROM {members} m JOIN {entries} e ON e.entry = m.entry
        UNION ALL
        SELECT r.entry, e.kind, r.lead_key, e.reason, e.location
        FROM {refs} r JOIN {entries} e ON e.entry = r.entry
        WHERE e.kind = {literal(CANNOT_LINK)} AND r.matches = 1
        ORDER BY entry, lead_key"""


def value_refs(overrides: list[Override]) -> list[tuple[str, str, str]]:
    """(ref, id_type, raw) rows for the normaliser: `ov:<entry>` per override value."""
    return [(f"ov:{i}", v.id_type, v.value) for i, o in enumerate(overrides) for v in o.values]


def lead_refs_sql(target: str, overrides: list[Override], leads: str) -> str:
    """`target(entry, pos, source, lead_id, lead_key, matches)`: each lead an override
    names, with the lead it matches (`matches` = how many leads it matches: 0 not in the
    data, 2+ a plain lead id found in several sources; only 1 is applied)."""
    rows = [f"({i}, {p}, {literal(lead.source) if lead.source else 'CAST(NULL AS VARCHAR)'}, "
            f"{literal(lead.lead_id)})"
            for i, o in enumerate(overrides) for p, lead in enumerate(o.leads)]
    refs = _rows(rows, "entry, pos, source, lead_id",
                 "CAST(NULL AS INTEGER) AS entry, CAST(NULL AS INTEGER) AS pos, "
                 "CAST(NULL AS VARCHAR) AS source, CAST(NULL AS VARCHAR) AS lead_id")
    return f"""
        CREATE OR REPLACE TEMP TABLE {target} AS
        SELECT r.entry, r.pos, r.source, r.lead_id, l.lead_key,
            count(l.lead_key) OVER (PARTITION BY r.entry, r.pos) AS matches
        FROM ({refs}) r LEFT JOIN {leads} l
          ON l.lead_id = r.lead_id AND (r.source IS NULL OR l.source = r.source)"""


def members_sql(target: str, entries: str, refs: str, keys: str, identifiers: str) -> str:
    """`target(entry, lead_key)`: the leads each must_link joins — those it names (found
    once) and those carrying one of its values (`keys`: the normalised override values,
    ref `ov:<entry>`)."""
    return f"""
        CREATE OR REPLACE TEMP TABLE {target} AS
        SELECT DISTINCT r.entry, r.lead_key FROM {refs} r
        JOIN {entries} e ON e.entry = r.entry
        WHERE e.kind = {literal(MUST_LINK)} AND r.matches = 1
        UNION
        SELECT DISTINCT e.entry, i.lead_key FROM {keys} k
        JOIN {entries} e ON k.ref = 'ov:' || CAST(e.entry AS VARCHAR)
        JOIN {identifiers} i ON i.id_type = k.id_type AND i.value = k.key_value
        WHERE e.kind = {literal(MUST_LINK)} AND k.valid AND i.status <> 'invalid'"""


def pairs_sql(target: str, entries: str, refs: str, leads: str) -> str:
    """`target(pair, x, y, reason)`: each cannot_link of two leads both found, `x` the
    first of the two by (source, lead_id)."""
    return f"""
        CREATE OR REPLACE TEMP TABLE {target} AS
        WITH found AS (
            SELECT r.entry, r.lead_key,
                row_number() OVER (PARTITION BY r.entry ORDER BY l.source, l.lead_id) AS rk
            FROM {refs} r JOIN {entries} e ON e.entry = r.entry
            JOIN {leads} l ON l.lead_key = r.lead_key
            WHERE e.kind = {literal(CANNOT_LINK)} AND r.matches = 1)
        SELECT f.entry AS pair, min(CASE WHEN f.rk = 1 THEN f.lead_key END) AS x,
            min(CASE WHEN f.rk = 2 THEN f.lead_key END) AS y,
            min(e.reason) AS reason
        FROM found f JOIN {entries} e ON e.entry = f.entry
        GROUP BY f.entry HAVING count(DISTINCT f.lead_key) = 2"""


def value_cuts_sql(target: str, entries: str, keys: str) -> str:
    """`target(id_type, key_value, lead_key, reason)`: the cuts, starting with the values
    a cannot_link names (every row of the value: lead_key NULL)."""
    return f"""
        CREATE OR REPLACE TEMP TABLE {target} AS
        SELECT DISTINCT k.id_type, k.key_value, CAST(NULL AS BIGINT) AS lead_key,
            'cannot_link: ' || e.reason AS reason
        FROM {keys} k JOIN {entries} e ON k.ref = 'ov:' || CAST(e.entry AS VARCHAR)
        WHERE e.kind = {literal(CANNOT_LINK)} AND k.valid"""


def _cut(row: str, cuts: str) -> str:
    """Join condition: the cut of a lead_identifiers row `row`, if any."""
    return (f"c.id_type = {row}.id_type AND c.key_value = {row}.value "
            f"AND (c.lead_key IS NULL OR c.lead_key = {row}.lead_key)")


def uncut_sql(shared: str, cuts: str, identifiers: str) -> str:
    """`shared` (id_type, key_value, records, anchor, members) without the cut rows (a
    query): values without a cut as they are; values with a cut row from their rows left."""
    return f"""
        SELECT s.* FROM {shared} s LEFT JOIN (SELECT DISTINCT id_type, key_value FROM {cuts}) c
          ON c.id_type = s.id_type AND c.key_value = s.key_value
        WHERE c.key_value IS NULL
        UNION ALL
        SELECT i.id_type, i.value AS key_value, max(i.records) AS records,
            min(i.lead_key) AS anchor, list(i.lead_key) AS members
        FROM {identifiers} i
        JOIN (SELECT DISTINCT id_type, key_value FROM {cuts} WHERE lead_key IS NOT NULL) v
          ON v.id_type = i.id_type AND v.key_value = i.value
        LEFT JOIN {cuts} c ON {_cut('i', cuts)}
        WHERE i.status = 'ok' AND i.records > 1 AND c.id_type IS NULL
        GROUP BY i.id_type, i.value"""


def must_link_edges_sql(edges: str, members: str) -> str:
    """Adds each must_link's edges (every member → the smallest member), a > b."""
    return f"""
        CREATE OR REPLACE TEMP TABLE {edges} AS
        SELECT a, b FROM {edges}
        UNION
        SELECT m.lead_key AS a, f.first AS b FROM {members} m
        JOIN (SELECT entry, min(lead_key) AS first FROM {members} GROUP BY entry) f
          ON f.entry = m.entry
        WHERE m.lead_key <> f.first"""


def violated_sql(target: str, pairs: str, done: str) -> str:
    """`target(pair, x, y, reason, label)`: cannot_link pairs in one component."""
    return f"""
        CREATE OR REPLACE TEMP TABLE {target} AS
        SELECT p.pair, p.x, p.y, p.reason, dx.label FROM {pairs} p
        JOIN {done} dx ON dx.node = p.x JOIN {done} dy ON dy.node = p.y
        WHERE dx.label = dy.label"""


def must_groups_start_sql(target: str, violated: str, done: str, members: str) -> str:
    """`target(entry, lead_key, grp)`: the must_link members in the components holding a
    violated pair, each in a group of its own to start with."""
    return f"""
        CREATE OR REPLACE TEMP TABLE {target} AS
        SELECT DISTINCT m.entry, m.lead_key, m.lead_key AS grp FROM {members} m
        JOIN {done} d ON d.node = m.lead_key
        WHERE d.label IN (SELECT label FROM {violated})"""


def must_groups_step_sql(target: str) -> str:
    """One step of joining must_link groups: each entry takes its members' smallest group,
    each lead its entries' smallest, then the group its group's lead is in (a jump: a
    chain of n entries settles in about log2(n) steps, not n); run until
    `must_groups_total_sql` stops falling."""
    return f"""
        CREATE OR REPLACE TEMP TABLE {target} AS
        WITH by_entry AS (SELECT entry, min(grp) AS grp FROM {target} GROUP BY entry),
        by_lead AS (
            SELECT t.lead_key, min(b.grp) AS grp FROM {target} t
            JOIN by_entry b ON b.entry = t.entry GROUP BY t.lead_key),
        jumped AS (
            SELECT l.lead_key, least(l.grp, coalesce(g.grp, l.grp)) AS grp FROM by_lead l
            LEFT JOIN by_lead g ON g.lead_key = l.grp)
        SELECT t.entry, t.lead_key, j.grp FROM {target} t
        JOIN jumped j ON j.lead_key = t.lead_key"""


def must_groups_total_sql(target: str) -> str:
    """The groups' sum: it only falls, so an equal sum means nothing moved."""
    return f"SELECT coalesce(sum(grp), 0) FROM {target}"


def _lead_groups_sql(groups: str) -> str:
    """Each must_link member's group (settled: one per lead; its smallest lead key)."""
    return f"SELECT lead_key, min(grp) AS grp FROM {groups} GROUP BY lead_key"


def graph_sql(target: str, violated: str, done: str, identifiers: str, cuts: str,
              groups: str) -> str:
    """`target(lead_key, node, id_type, value)`: the lead–value graph of the components
    holding a violated pair, its linking rows not cut; `node` is the lead's must_link
    group (its smallest lead key; the lead itself outside any)."""
    return f"""
        CREATE OR REPLACE TEMP TABLE {target} AS
        WITH comp AS (
            SELECT d.node AS lead_key FROM {done} d
            WHERE d.label IN (SELECT label FROM {violated})),
        grp AS ({_lead_groups_sql(groups)})
        SELECT DISTINCT i.lead_key, coalesce(gr.grp, i.lead_key) AS node, i.id_type, i.value
        FROM {identifiers} i JOIN comp ON comp.lead_key = i.lead_key
        LEFT JOIN grp gr ON gr.lead_key = i.lead_key
        LEFT JOIN {cuts} c ON {_cut('i', cuts)}
        WHERE i.status = 'ok' AND i.records > 1 AND c.id_type IS NULL"""


def ends_sql(target: str, violated: str, groups: str) -> str:
    """`target(pair, x, y, reason)`: each violated pair with its leads' nodes (must_link
    groups) as the search's ends; x = y when must_link entries alone join them."""
    return f"""
        CREATE OR REPLACE TEMP TABLE {target} AS
        WITH grp AS ({_lead_groups_sql(groups)})
        SELECT v.pair, coalesce(gx.grp, v.x) AS x, coalesce(gy.grp, v.y) AS y, v.reason
        FROM {violated} v LEFT JOIN grp gx ON gx.lead_key = v.x
        LEFT JOIN grp gy ON gy.lead_key = v.y"""


def search_start_sql(seen_leads: str, seen_nodes: str, ends: str) -> list[str]:
    """The search's start: each violated pair's first lead (its node) at distance 0.
    `seen_leads(pair, lead_key, dist)`: lead_key is a graph node (a must_link group)."""
    return [
        f"CREATE OR REPLACE TEMP TABLE {seen_leads} AS "
        f"SELECT pair, x AS lead_key, 0 AS dist FROM {ends}",
        f"""CREATE OR REPLACE TEMP TABLE {seen_nodes} (pair INTEGER, id_type VARCHAR,
            value VARCHAR, dist INTEGER)""",
    ]


def search_step_sql(seen_leads: str, seen_nodes: str, graph: str, dist: int) -> str:
    """One step of the search: odd distances reach values, even ones leads."""
    if dist % 2:
        return f"""
            INSERT INTO {seen_nodes}
            SELECT DISTINCT s.pair, g.id_type, g.value, {dist}
            FROM {seen_leads} s JOIN {graph} g ON g.node = s.lead_key
            LEFT JOIN {seen_nodes} n
              ON n.pair = s.pair AND n.id_type = g.id_type AND n.value = g.value
            WHERE s.dist = {dist - 1} AND n.pair IS NULL"""
    return f"""
        INSERT INTO {seen_leads}
        SELECT DISTINCT n.pair, g.node, {dist}
        FROM {seen_nodes} n JOIN {graph} g ON g.id_type = n.id_type AND g.value = n.value
        LEFT JOIN {seen_leads} s ON s.pair = n.pair AND s.lead_key = g.node
        WHERE n.dist = {dist - 1} AND s.pair IS NULL"""


def seen_count_sql(seen_leads: str, seen_nodes: str) -> str:
    """How many (pair, node) the search has numbered: it goes on until this stops
    growing, so the whole component is numbered, beyond the second lead too."""
    return (f"SELECT (SELECT count(*) FROM {seen_leads}) "
            f"+ (SELECT count(*) FROM {seen_nodes})")


# -- how far back towards the second lead each node reaches ---------------------------------
# back(v): the highest b such that v reaches the pair's second lead y along nodes all at
# distance >= b (a widest-path bottleneck): back(y) = dist(y), back(v) = the max over its
# neighbours w of least(back(w), dist(v)). An edge of layer k whose far end v has
# back(v) = dist(v) = k + 1 lies on a path to y that never comes back below k + 1.

def back_start_sql(back_leads: str, back_nodes: str, violated: str, seen_leads: str) -> list[str]:
    return [
        f"""CREATE OR REPLACE TEMP TABLE {back_leads} AS
            SELECT v.pair, v.y AS lead_key, s.dist AS back FROM {violated} v
            JOIN {seen_leads} s ON s.pair = v.pair AND s.lead_key = v.y""",
        f"""CREATE OR REPLACE TEMP TABLE {back_nodes} (pair INTEGER, id_type VARCHAR,
            value VARCHAR, back INTEGER)""",
    ]


def back_step_sql(back_leads: str, back_nodes: str, seen_leads: str, seen_nodes: str,
                  graph: str) -> list[str]:
    """One relaxation both ways (leads → their values → their leads), each node keeping
    its best bound; run until `back_total_sql` stops growing."""
    return [f"""
        CREATE OR REPLACE TEMP TABLE {back_nodes} AS
        SELECT pair, id_type, value, max(back) AS back FROM (
            SELECT pair, id_type, value, back FROM {back_nodes}
            UNION ALL
            SELECT b.pair, g.id_type, g.value, least(b.back, n.dist)
            FROM {back_leads} b JOIN {graph} g ON g.node = b.lead_key
            JOIN {seen_nodes} n ON n.pair = b.pair AND n.id_type = g.id_type
                 AND n.value = g.value) c
        GROUP BY pair, id_type, value""", f"""
        CREATE OR REPLACE TEMP TABLE {back_leads} AS
        SELECT pair, lead_key, max(back) AS back FROM (
            SELECT pair, lead_key, back FROM {back_leads}
            UNION ALL
            SELECT b.pair, g.node, least(b.back, l.dist)
            FROM {back_nodes} b JOIN {graph} g ON g.id_type = b.id_type AND g.value = b.value
            JOIN {seen_leads} l ON l.pair = b.pair AND l.lead_key = g.node) c
        GROUP BY pair, lead_key"""]


def back_total_sql(back_leads: str, back_nodes: str) -> str:
    """Rows and bounds so far: they only grow, so an equal total means nothing moved."""
    return (f"SELECT (SELECT count(*) + coalesce(sum(back), 0) FROM {back_leads}) "
            f"+ (SELECT count(*) + coalesce(sum(back), 0) FROM {back_nodes})")


def unreached_sql(violated: str, seen_leads: str) -> str:
    """How many violated pairs' second lead the search has not reached yet."""
    return f"""
        SELECT count(*) FROM {violated} v LEFT JOIN {seen_leads} s
          ON s.pair = v.pair AND s.lead_key = v.y
        WHERE s.pair IS NULL"""


def layer_edges_sql(target: str, violated: str, seen_leads: str, seen_nodes: str,
                    graph: str, back_leads: str, back_nodes: str) -> str:
    """`target(pair, k, lead_key, id_type, value)`: the graph's rows on the edges of each
    pair's search, `k` the smaller distance of their two ends (below the second lead's),
    whose far end reaches the second lead without going back below it (`back_*`)."""
    return f"""
        CREATE OR REPLACE TEMP TABLE {target} AS
        WITH reach AS (
            SELECT v.pair, s.dist AS d FROM {violated} v
            JOIN {seen_leads} s ON s.pair = v.pair AND s.lead_key = v.y)
        SELECT l.pair, least(l.dist, n.dist) AS k, g.lead_key, g.id_type, g.value
        FROM {graph} g JOIN {seen_leads} l ON l.lead_key = g.node
        JOIN {seen_nodes} n ON n.pair = l.pair AND n.id_type = g.id_type AND n.value = g.value
        JOIN reach r ON r.pair = l.pair
        LEFT JOIN {back_leads} bl ON bl.pair = l.pair AND bl.lead_key = l.lead_key
        LEFT JOIN {back_nodes} bn ON bn.pair = n.pair AND bn.id_type = n.id_type
             AND bn.value = n.value
        WHERE abs(l.dist - n.dist) = 1 AND least(l.dist, n.dist) < r.d
          AND CASE WHEN n.dist > l.dist THEN bn.back = n.dist ELSE bl.back = l.dist END"""


def chosen_layers_sql(target: str, edges: str, violated: str, seen_leads: str) -> str:
    """`target(pair, k)`: the layer each pair cuts (fewest rows; ties: nearest the
    middle, then nearest the first lead); no row when the two leads are one node."""
    return f"""
        CREATE OR REPLACE TEMP TABLE {target} AS
        WITH reach AS (
            SELECT v.pair, s.dist AS d FROM {violated} v
            JOIN {seen_leads} s ON s.pair = v.pair AND s.lead_key = v.y),
        layers AS (
            SELECT e.pair, e.k, count(*) AS size, r.d
            FROM {edges} e JOIN reach r ON r.pair = e.pair GROUP BY e.pair, e.k, r.d),
        ranked AS (
            SELECT pair, k, row_number() OVER (
                PARTITION BY pair ORDER BY size, abs(2 * k + 1 - d), k) AS r
            FROM layers)
        SELECT pair, k FROM ranked WHERE r = 1"""


def add_cuts_sql(cuts: str, chosen: str, edges: str, violated: str) -> str:
    return f"""
        INSERT INTO {cuts}
        SELECT DISTINCT e.id_type, e.value, e.lead_key, 'cannot_link: ' || v.reason
        FROM {edges} e JOIN {chosen} c ON c.pair = e.pair AND c.k = e.k
        JOIN {violated} v ON v.pair = e.pair"""


def uncuttable_sql(violated: str, chosen: str) -> str:
    """The violated pairs without a layer to cut (must_link entries alone join them)."""
    return f"SELECT pair FROM {violated} WHERE pair NOT IN (SELECT pair FROM {chosen}) " \
           "ORDER BY pair"


def mark_cuts_sql(target: str, cuts: str) -> list[str]:
    """Cut rows in lead_identifiers: status `cut` with the cannot_link's reason (`target`:
    a working table of the rows' cuts)."""
    return [f"""
        CREATE OR REPLACE TEMP TABLE {target} AS
        SELECT i.lead_key, i.id_type, i.value, min(c.reason) AS reason
        FROM lead_identifiers i JOIN {cuts} c ON {_cut('i', cuts)}
        WHERE i.status = 'ok' GROUP BY i.lead_key, i.id_type, i.value""", f"""
        UPDATE lead_identifiers SET status = '{CUT}', reason = c.reason
        FROM {target} c
        WHERE lead_identifiers.lead_key = c.lead_key AND lead_identifiers.id_type = c.id_type
          AND lead_identifiers.value = c.value AND lead_identifiers.status = 'ok'"""]


def problems_sql(entries: str, refs: str, keys: str, identifiers: str) -> str:
    """What cannot be applied (a small result): leads not in the data or in several
    sources, values that are not valid or that no lead carries."""
    return f"""
        SELECT entry, 'lead' AS what, coalesce(source || '/', '') || lead_id AS item,
            CASE WHEN matches = 0 THEN 'not in the data' ELSE 'in ' || CAST(matches AS VARCHAR)
                 || ' sources: name its source' END AS problem
        FROM (SELECT DISTINCT entry, pos, source, lead_id, matches FROM {refs}) r
        WHERE matches <> 1
        UNION ALL
        SELECT e.entry, k.id_type, k.key_value,
            CASE WHEN NOT k.valid THEN 'not a valid value' ELSE 'no lead carries it' END
        FROM {keys} k JOIN {entries} e ON k.ref = 'ov:' || CAST(e.entry AS VARCHAR)
        WHERE NOT k.valid OR NOT EXISTS (
            SELECT 1 FROM {identifiers} i WHERE i.id_type = k.id_type AND i.value = k.key_value)
        ORDER BY entry, what, item"""
