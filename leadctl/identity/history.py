"""Stable person ids across runs, and the append-only identity history.

Pure builders. Inputs: this run's components (`comp` = smallest lead key) and
the previous run's `person_leads` / `persons` / `person_aliases`.

- A previous person id goes to the component holding most of its leads (ties: the
  one holding its first-ingested lead, the smallest of its own lead keys there — not
  the component's label, which a lead merged in from another person can set); that
  component keeps it.
- A component that gets several previous ids keeps the one the caller prefers
  (`preferred(person_id, priority)`, lowest priority first: routing passes the
  persons a rep holds, locked ones first), then the oldest (earliest first_seen,
  then the smaller anchor of its oldest lead in the component, so that a tie names the
  person as a fresh workspace does); the others are retired: a 'merge' row.
- Leads of a previous person that ended up elsewhere: a 'split' row for each
  such part (the part keeping most leads kept the id).
- A component with no previous id gets 'P' + 12 hex of md5 of its anchor lead
  (the oldest: earliest created_at, then source, lead_id: `oldest_lead_sql`) as
  `source|lead_id`,
  so a fresh workspace with the same data derives the same ids. On a collision
  the id is derived again with a salt ('#1', '#2', ...).
Retired ids stay reachable through `person_aliases` (old id → current person).
"""

from __future__ import annotations

import datetime as dt

from leadctl.sqltext import absent_sql, ts_literal

ID_PREFIX = "P"
ID_HEX = 12
_UNDATED = (1 << 63) - 1  # undated leads sort after every dated one


def anchors_sql(target: str, comps: str, members: str, leads: str, ids: str) -> str:
    """`target(comp, anchor)` for components without an id yet: the `source|lead_id`
    of the component's oldest lead (`oldest_lead_sql`). Nothing here depends on lead
    keys, so a fresh workspace with the same data finds the same anchors."""
    return f"""
        CREATE OR REPLACE TEMP TABLE {target} AS
        SELECT c.comp, l.source || '|' || l.lead_id AS anchor
        FROM {comps} c JOIN {leads} l ON l.lead_key = c.lead_key
        WHERE NOT c.multi AND {absent_sql("c.comp", ids, "comp")}
        UNION ALL
        SELECT comp, oldest.source || '|' || oldest.lead_id FROM (
            SELECT comp, {oldest_lead_sql()} AS oldest
            FROM {members} WHERE {absent_sql(f"{members}.comp", ids, "comp")}
            GROUP BY comp)"""


def oldest_lead_sql(leads: str = "") -> str:
    """The oldest lead of a group as a struct (`at`, `source`, `lead_id`): dated before
    undated, then by source and lead id, as `earliest` and `explain` order leads (the
    pair, not the `source|lead_id` text: `web2|…` sorts before `web|…`). `leads`: the
    table's alias."""
    col = f"{leads}." if leads else ""
    return (f"min({{'at': coalesce(epoch_us({col}created_at), {_UNDATED}), "
            f"'source': {col}source, 'lead_id': {col}lead_id}})")


def new_id_sql(anchor: str, salt: int) -> str:
    seed = anchor if salt == 0 else f"{anchor} || '#{salt}'"
    return f"'{ID_PREFIX}' || substr(md5({seed}), 1, {ID_HEX})"


def lead_derived_id_sql(leads: str = "") -> str:
    """The (unsalted) id a person anchored by a `leads` row is named: what a retired id
    is matched against in a workspace without its aliases. `leads`: the table's alias."""
    col = f"{leads}." if leads else ""
    return new_id_sql(f"{col}source || '|' || {col}lead_id", 0)


def overlap_sql(target: str, comps: str, previous: str, leads: str = "leads") -> str:
    """`target(comp, old_id, n, first_key, anchor_source, anchor_lead_id)`: how many
    leads of each previous person are in each component, the oldest of them (as
    `anchors_sql` orders) and the smallest of their lead keys (the one ingested first)."""
    return f"""
        CREATE OR REPLACE TEMP TABLE {target} AS
        SELECT comp, old_id, n, first_key, oldest.source AS anchor_source,
               oldest.lead_id AS anchor_lead_id
        FROM (
            SELECT c.comp, p.person_id AS old_id, count(*) AS n,
                   min(c.lead_key) AS first_key, {oldest_lead_sql("l")} AS oldest
            FROM {comps} c JOIN {previous} p ON p.lead_key = c.lead_key
            JOIN {leads} l ON l.lead_key = c.lead_key
            GROUP BY c.comp, p.person_id)"""


def homes_sql(overlap: str) -> str:
    """`(old_id, comp, anchor_source, anchor_lead_id)`: the component each previous person
    id goes to — the one holding most of its leads; on a tie, the one holding its
    first-ingested lead."""
    return f"""
            SELECT old_id, comp, anchor_source, anchor_lead_id FROM (
                SELECT old_id, comp, anchor_source, anchor_lead_id,
                    row_number() OVER (PARTITION BY old_id ORDER BY n DESC, first_key) AS r
                FROM {overlap}) WHERE r = 1"""


def moves_sql(target: str, overlap: str, comps: str, previous: str, previous_aliases: str,
              leads: str = "leads") -> str:
    """`target(old_id, comp)`: the component each id of the previous run goes to this run —
    a person's id the one holding most of its leads (`homes_sql`); a retired id, when the
    person it led to splits, the one holding the lead it was derived from (the person its
    records, say a sale, were about; a rebuild maps it so too), else its person's. Ids of
    persons outside this run's components (a region resolve) have none. Known before the
    ids are assigned, so a `preferred` query can read it (ID_MOVES): `aliases_sql` maps the
    retired ids by it."""
    return f"""
        CREATE OR REPLACE TEMP TABLE {target} AS
        WITH homes AS ({homes_sql(overlap)}),
        split AS (SELECT old_id FROM {overlap} GROUP BY old_id HAVING count(*) > 1),
        derived AS (
            SELECT DISTINCT {lead_derived_id_sql("l")} AS old_id, c.comp
            FROM {previous} p JOIN {comps} c ON c.lead_key = p.lead_key
            JOIN {leads} l ON l.lead_key = p.lead_key
            WHERE p.person_id IN (SELECT old_id FROM split)),
        retired AS (
            SELECT a.old_person_id AS old_id, coalesce(d.comp, h.comp) AS comp
            FROM {previous_aliases} a
            LEFT JOIN derived d ON d.old_id = a.old_person_id
                 AND a.person_id IN (SELECT old_id FROM split)
            LEFT JOIN homes h ON h.old_id = a.person_id)
        SELECT old_id, comp FROM homes
        UNION ALL
        SELECT old_id, comp FROM retired WHERE comp IS NOT NULL"""


def winners_sql(target: str, overlap: str, previous_persons: str,
                preferred: str | None = None) -> str:
    """`target(old_id, comp, first_seen, survives)`: the component each previous id
    goes to (most of its leads; on a tie, the part holding its first-ingested lead);
    `survives` marks the id a component keeps (preferred — lowest `priority` of
    the table `preferred(person_id, priority)` when given —, then oldest, then the one
    whose oldest lead there has the smaller anchor: the lead a fresh workspace would name
    the merged person after)."""
    prefer = "q.priority NULLS LAST, " if preferred else ""
    join = f"\n            LEFT JOIN {preferred} q ON q.person_id = w.old_id" if preferred else ""
    return f"""
        CREATE OR REPLACE TEMP TABLE {target} AS
        WITH w AS ({homes_sql(overlap)}),
        f AS (
            SELECT w.old_id, w.comp, p.first_seen,
                row_number() OVER (PARTITION BY w.comp
                                   ORDER BY {prefer}p.first_seen NULLS LAST, w.anchor_source,
                                            w.anchor_lead_id, w.old_id) AS r
            FROM w LEFT JOIN {previous_persons} p ON p.person_id = w.old_id{join})
        SELECT old_id, comp, first_seen, r = 1 AS survives FROM f"""


def kept_ids_sql(target: str, winners: str) -> str:
    """`target(comp, person_id, how)`: components that keep a previous id."""
    return f"""
        CREATE OR REPLACE TEMP TABLE {target} AS
        SELECT comp, old_id AS person_id, 'kept' AS how FROM {winners} WHERE survives"""


def propose_new_ids_sql(target: str, anchors: str, ids: str, salt: int,
                        taken: str | None = None) -> str:
    """Candidate ids for components still without one: `target(comp, person_id)`,
    keeping only candidates not already taken (in `ids`, or by the query `taken`); for a
    candidate derived twice in this round, only the smaller anchor keeps it (the other
    tries the next salt)."""
    return f"""
        CREATE OR REPLACE TEMP TABLE {target} AS
        WITH c AS (
            SELECT comp, anchor, {new_id_sql('anchor', salt)} AS person_id FROM {anchors}
            WHERE {absent_sql(f"{anchors}.comp", ids, "comp")}),
        twice AS (SELECT person_id, min(anchor) AS first FROM c GROUP BY person_id
                  HAVING count(*) > 1)
        SELECT c.comp, c.person_id FROM c LEFT JOIN twice t ON t.person_id = c.person_id
        WHERE (t.person_id IS NULL OR c.anchor = t.first)
          AND {absent_sql("c.person_id", ids, "person_id")}{
              f" AND {absent_sql('c.person_id', f'({taken})', 'person_id')}" if taken else ""}"""


def accept_new_ids_sql(ids: str, proposed: str) -> str:
    return f"INSERT INTO {ids} SELECT comp, person_id, 'new' FROM {proposed}"


def unassigned_sql(anchors: str, ids: str) -> str:
    return f"SELECT count(*) FROM {anchors} WHERE {absent_sql(f'{anchors}.comp', ids, 'comp')}"


def empty_history_tables_sql(overlap: str, winners: str, moves: str) -> list[str]:
    """First run (no previous persons): nothing to keep, merge, split or move."""
    return [
        f"CREATE OR REPLACE TEMP TABLE {moves} (old_id VARCHAR, comp BIGINT)",
        f"CREATE OR REPLACE TEMP TABLE {overlap} (comp BIGINT, old_id VARCHAR, n BIGINT, "
        "first_key BIGINT, anchor_source VARCHAR, anchor_lead_id VARCHAR)",
        f"""CREATE OR REPLACE TEMP TABLE {winners} (old_id VARCHAR, comp BIGINT,
            first_seen TIMESTAMP, survives BOOLEAN)""",
    ]


def person_leads_sql(comps: str, ids: str) -> str:
    return f"""
        CREATE OR REPLACE TABLE person_leads AS
        SELECT c.lead_key, i.person_id FROM {comps} c JOIN {ids} i ON i.comp = c.comp
        ORDER BY i.person_id"""  # sorted: the portrait reads one person's rows by zonemap


def merge_rows_sql(winners: str, ids: str, comps: str, reasons: str,
                   run_id: int | None, *, at: dt.datetime) -> str:
    """One 'merge' row per component that absorbed previous ids it did not keep. Its
    reason names the identifier types that join them (`merge_reasons_sql`); where no
    linking value does, only a must_link override can have."""
    run = "NULL" if run_id is None else str(int(run_id))
    return f"""
        INSERT INTO identity_history
        WITH merged AS (SELECT comp, list_sort(list(old_id)) AS old_ids
                        FROM {winners} WHERE NOT survives GROUP BY comp),
        sizes AS (SELECT comp, count(*) AS leads FROM {comps}
                  WHERE comp IN (SELECT comp FROM merged) GROUP BY comp)
        SELECT {run}, {ts_literal(at)}, 'merge', i.person_id, m.old_ids,
            CAST(s.leads AS INTEGER), coalesce(r.reason, 'linked by a must_link override')
        FROM merged m JOIN {ids} i ON i.comp = m.comp JOIN sizes s ON s.comp = m.comp
        LEFT JOIN {reasons} r ON r.comp = m.comp"""


def split_rows_sql(overlap: str, winners: str, ids: str, run_id: int | None, *,
                   at: dt.datetime) -> str:
    """One 'split' row per part of a previous person that left the component that
    kept (or absorbed) its id. `at` (as in merge_rows_sql): the stamp, a wall-clock time
    of the workspace zone (not the engine's clock, the machine's zone)."""
    run = "NULL" if run_id is None else str(int(run_id))
    return f"""
        INSERT INTO identity_history
        SELECT {run}, {ts_literal(at)}, 'split', i.person_id, [o.old_id], o.n,
            'no longer shares a usable identifier with the other leads of ' || o.old_id
        FROM {overlap} o JOIN {winners} w ON w.old_id = o.old_id
        JOIN {ids} i ON i.comp = o.comp
        WHERE o.comp <> w.comp"""


def merge_reasons_sql(target: str, identifiers: str, comps: str, previous: str,
                      winners: str) -> str:
    """`target(comp, reason)`: for components with a merge, the identifier types of the
    values that join leads of different previous persons (or new leads to them)."""
    return f"""
        CREATE OR REPLACE TEMP TABLE {target} AS
        WITH merged AS (SELECT DISTINCT comp FROM {winners} WHERE NOT survives),
        rows AS (
            SELECT c.comp, i.id_type, i.value,
                coalesce(p.person_id, 'lead:' || CAST(i.lead_key AS VARCHAR)) AS origin
            FROM {identifiers} i JOIN {comps} c ON c.lead_key = i.lead_key
            LEFT JOIN {previous} p ON p.lead_key = i.lead_key
            WHERE i.status = 'ok' AND c.comp IN (SELECT comp FROM merged)),
        bridges AS (
            SELECT comp, id_type FROM rows GROUP BY comp, id_type, value
            HAVING count(DISTINCT origin) > 1)
        SELECT comp, 'linked by shared '
            || array_to_string(list_sort(list_distinct(list(id_type))), ', ') AS reason
        FROM bridges GROUP BY comp"""


def aliases_sql(winners: str, ids: str, previous_aliases: str, moves: str) -> str:
    """`person_aliases(old_person_id, person_id)`: every retired id → its current person.
    A retired id goes where `moves_sql` moves it (with the lead it was derived from when
    its person split, else with the part that kept the person's id; of several such
    leads' persons, the smallest id), else stays with its person."""
    return f"""
        CREATE OR REPLACE TABLE person_aliases AS
        WITH moved AS (
            SELECT w.old_id, i.person_id FROM {winners} w JOIN {ids} i ON i.comp = w.comp),
        merged AS (SELECT old_id, person_id FROM moved WHERE old_id <> person_id),
        carried AS (
            SELECT a.old_person_id AS old_id, coalesce(min(i.person_id), a.person_id) AS person_id
            FROM {previous_aliases} a LEFT JOIN {moves} m ON m.old_id = a.old_person_id
            LEFT JOIN {ids} i ON i.comp = m.comp
            GROUP BY a.old_person_id, a.person_id)
        SELECT old_id AS old_person_id, person_id FROM (
            SELECT * FROM merged UNION SELECT * FROM carried) AS aliases
        WHERE {absent_sql("aliases.old_id", ids, "person_id")}
        ORDER BY old_person_id"""
