"""The fields scoring and routing expressions can use: the columns person_features
really has in a workspace (what the SQL can bind), by expression type."""

from __future__ import annotations

from leadctl.workspace import Workspace

# DuckDB column types → expression language types.
_NUMBER_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT",
                 "USMALLINT", "UINTEGER", "UBIGINT", "FLOAT", "DOUBLE", "REAL")


def expression_type(sql_type: str) -> str:
    t = sql_type.upper()
    if t.endswith("[]") or t.startswith(("LIST", "STRUCT", "MAP")):
        return "list"
    if t in _NUMBER_TYPES or t.startswith("DECIMAL"):
        return "number"
    if t == "BOOLEAN":
        return "boolean"
    if t == "DATE":
        return "date"
    if t.startswith("TIMESTAMP"):
        return "timestamp"
    return "string"


def person_features_fields(ws: Workspace, table: str = "person_features") -> dict[str, str]:
    """The columns person_features really has (what SQL can bind), as expression types."""
    return {name: expression_type(data_type) for name, data_type in ws.columns(table)
            if name != "person_id"}
