"""Engine parity: do two result sets (DuckDB's and Spark's) say the same thing?

Person ids are derived per engine, so persons are compared by a canonical key:
the smallest `source:lead_id` among their leads. Builders are pure; `compare_results`
runs them on an in-memory DuckDB holding both sides as `d_<table>` / `s_<table>`.
"""

from __future__ import annotations

from typing import Any

from leadctl.workspace import open_memory

# table → columns compared (person_id is replaced by the canonical person key)
COMPARED = {
    "person_leads": ("source", "lead_id"),
    "tags": ("tag", "value"),
    "scores": ("score", "grade"),
    "ownership": ("pool", "owner", "status", "reason", "dormant", "locked_until"),
    "assignments": ("new_pool", "new_owner", "new_status", "rule", "reason", "state_reason"),
}
NEEDED = ("leads", "person_leads", "tags", "scores", "ownership", "assignments")


def canon_sql(side: str) -> str:
    return (f"CREATE OR REPLACE TEMP TABLE {side}_canon AS "
            f"SELECT pl.person_id, min(l.source || ':' || l.lead_id) AS person "
            f"FROM {side}_person_leads pl JOIN {side}_leads l USING (lead_key) GROUP BY 1")


def keyed_sql(side: str, table: str) -> str:
    cols = ", ".join(f"CAST(t.{c} AS VARCHAR) AS {c}" for c in COMPARED[table])
    if table == "person_leads":
        return (f"SELECT c.person, {cols} FROM {side}_person_leads p "
                f"JOIN {side}_leads t USING (lead_key) JOIN {side}_canon c USING (person_id)")
    return f"SELECT c.person, {cols} FROM {side}_{table} t JOIN {side}_canon c USING (person_id)"


def difference_sql(table: str, left: str, right: str) -> str:
    """Rows of `left` missing from `right` (as a multiset), at most 5 shown."""
    return (f"SELECT * FROM (({keyed_sql(left, table)}) EXCEPT ALL "
            f"({keyed_sql(right, table)})) ORDER BY ALL LIMIT 5")


def count_difference_sql(table: str, left: str, right: str) -> str:
    return (f"SELECT count(*) FROM (({keyed_sql(left, table)}) EXCEPT ALL "
            f"({keyed_sql(right, table)}))")


def compare_results(duckdb_tables: dict[str, Any], spark_tables: dict[str, Any]) -> dict:
    """{table: {"rows": n, "only_duckdb": k, "only_spark": m, "examples": [...]}} for each
    compared table; equal when every only_* count is 0. Inputs are Arrow tables."""
    ws = open_memory()
    try:
        for side, tables in (("d", duckdb_tables), ("s", spark_tables)):
            for name in NEEDED:
                ws.register(f"{side}_{name}", tables[name])
            ws.execute(canon_sql(side))
        report = {}
        for table in COMPARED:
            report[table] = {
                "rows": ws.scalar(f"SELECT count(*) FROM ({keyed_sql('d', table)})"),
                "only_duckdb": ws.scalar(count_difference_sql(table, "d", "s")),
                "only_spark": ws.scalar(count_difference_sql(table, "s", "d")),
                "examples": [list(map(str, r)) for r in
                             ws.execute(difference_sql(table, "d", "s")).fetchall()
                             + ws.execute(difference_sql(table, "s", "d")).fetchall()],
            }
        return report
    finally:
        ws.con.close()
