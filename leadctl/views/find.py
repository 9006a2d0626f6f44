"""`leadctl find EXPR`: persons matching a rule-language expression.

The expression is checked and compiled by `leadctl.rules.expr.compile_expr` against
the fields of one relation: person_features (attributes + one column per tag), the
score and grade, and the routing state. PII (name, phone) is masked in every output
unless `reveal`; file exports stay set-based (COPY) with masking done in SQL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from leadctl import pii
from leadctl.errors import UsageError
from leadctl.identity.lookup import changed_after_sql
from leadctl.identity.places import official_name
from leadctl.routing.screens import has_state_reason, latest_action_sql, ownership_as_of_sql
from leadctl.rules.expr import ExprError, compared_literals, compile_expr, list_of
from leadctl.sqlfn import finite_guard
from leadctl.sqltext import ident
from leadctl.tagging.fields import expression_type
from leadctl.views.asof import screen_as_of, stored_as_of
from leadctl.views.export import check_output_file, copy_to_file
from leadctl.workspace import computation_advice, failed_computation

DEFAULT_LIMIT = 20
# Fields besides the person_features columns (those win on a name clash), with the SQL
# that reads them in `relation_sql` and their expression type.
EXTRA_FIELDS: dict[str, tuple[str, str]] = {
    "person_id": ("p.person_id", "string"),
    "score": ("s.score", "number"),
    "grade": ("s.grade", "string"),
    "pool": ("o.pool", "string"),
    "owner": ("o.owner", "string"),
    "status": ("o.status", "string"),
    "status_since": ("o.status_since", "date"),
    "assigned_at": ("o.assigned_at", "date"),
    "locked_until": ("o.locked_until", "date"),
    "dormant": ("coalesce(o.dormant, false)", "boolean"),
}
# Person columns usable when person_features has not been built yet (no tag run).
PERSON_FIELDS: dict[str, str] = {
    "name": "string", "city": "string", "province": "string", "channel": "string",
    "source": "string", "sources": list_of("string"), "lead_count": "number",
    "first_seen": "timestamp", "last_seen": "timestamp",
}
EXPR_TYPES = ("number", "string", "boolean", "date", "timestamp", "list")
OUTPUT_COLUMNS = ("person_id", "name", "phone", "city", "grade", "score", "pool", "owner",
                  "status")


# DuckDB's integer types: their computations overflow with an error, never to infinity.
WHOLE_TYPES = frozenset({"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT",
                         "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT"})


class ExpressionFailed(UsageError):
    """The EXPR of `find` compiled but cannot be computed for some person: a whole number
    leaves the BIGINT range (`lead_count * 9223372036854775807`), a decimal one the
    DOUBLE range (NOT_FINITE)."""

    def __init__(self, text: str, reason: str, advice: str):
        super().__init__(f"cannot compute the expression: {reason}; "
                         f"{advice}\n  " + text.replace("\n", " ").replace("\t", " "))


@contextmanager
def evaluating(text: str) -> Iterator[None]:
    """Runs queries filtered by the expression `text`; DuckDB's overflow errors and
    `finite_guard`'s become ExpressionFailed, its depth limit an InvalidExpression (exit
    2) instead of an internal error."""
    try:
        yield
    except Exception as exc:
        import duckdb

        if isinstance(exc, (duckdb.BinderException, duckdb.ParserException)) \
                and "expression depth" in str(exc):
            # the guard around each decimal computation nests deeper than the parser sees
            # (DuckDB's binder or, a little deeper, its parser stops it)
            raise InvalidExpression(text, "expression is nested too deeply", 0,
                                    len(text)) from None
        reason = failed_computation(exc)
        if reason is None:
            raise
        raise ExpressionFailed(text, reason, computation_advice(reason)) from None


class InvalidExpression(UsageError):
    """The EXPR of `find` was rejected; the message points at the offending column."""

    def __init__(self, text: str, message: str, offset: int, length: int,
                 unknown: str | None = None):
        self.text, self.offset, self.length, self.unknown = text, offset, length, unknown
        column = pii.display_width(text[:offset]) + 1
        super().__init__(f"invalid expression at column {column}: {message}\n"
                         + "\n".join(caret_lines(text, offset, length)))


def caret_lines(text: str, offset: int, length: int, indent: str = "  ") -> list[str]:
    """The expression and a `^^^` marker under the offending part (wide characters aware)."""
    line = text.replace("\n", " ").replace("\t", " ")
    offset = max(0, min(offset, len(line)))
    marked = line[offset:offset + max(length, 1)] or " "
    return [indent + line, indent + " " * pii.display_width(line[:offset])
            + "^" * max(pii.display_width(marked), 1)]


def searchable_fields(ws) -> tuple[dict[str, str], dict[str, str]]:
    """(name → expression type, name → SQL column) over persons ⋈ person_features ⋈
    scores ⋈ ownership. Tag columns take their type from tag_definitions."""
    features = ws.rows(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_name = 'person_features' ORDER BY ordinal_position")
    declared = {r["tag"]: r["type"] for r in ws.rows("SELECT tag, type FROM tag_definitions")}
    have_features = bool(ws.scalar("SELECT count(*) > 0 FROM person_features"))
    types: dict[str, str] = {}
    columns: dict[str, str] = {}
    for name, field_type in PERSON_FIELDS.items():
        types[name], columns[name] = field_type, f'p."{name}"'
    for row in features if have_features else []:
        name = row["column_name"]
        field_type = declared.get(name)
        if field_type not in EXPR_TYPES:
            field_type = expression_type(row["data_type"])
        if name == "person_id" or field_type is None:
            continue
        if field_type == "list" and row["data_type"].endswith("[]"):  # what the values are
            element = expression_type(row["data_type"][:-2])
            field_type = list_of(element) if element in EXPR_TYPES[:-1] else field_type
        types[name], columns[name] = field_type, 'f."' + name.replace('"', '""') + '"'
    for name, (sql, field_type) in EXTRA_FIELDS.items():
        if name not in types:
            types[name], columns[name] = field_type, sql
    return types, columns


def whole_number_fields(ws, columns: dict[str, str]) -> frozenset[str]:
    """The fields (of `searchable_fields`' columns) whose column holds whole numbers."""
    whole = {f"{alias}.{ident(name)}" for table, alias in (("persons", "p"),
                                                           ("person_features", "f"))
             for name, data_type in ws.columns(table) if data_type in WHOLE_TYPES}
    return frozenset(name for name, sql in columns.items() if sql in whole)


def person_expression_fields(ws) -> tuple[dict, dict]:
    """The fields an expression over persons reads (`find`'s, a funnel's entry) and the
    compile options that read them as `find` does: stored columns, each decimal step
    guarded (past the largest number is an error, not a match), whole-number fields."""
    types, columns = searchable_fields(ws)
    return types, {"column_sql": columns.__getitem__, "finite_guard": finite_guard,
                   "whole_fields": whole_number_fields(ws, columns)}


def compile_filter(ws, text: str, as_of: dt.date) -> str:

    if not text.strip():
        raise UsageError("EXPR is empty: give a condition such as \"grade = 'A'\"")
    types, options = person_expression_fields(ws)
    try:
        compiled = compile_expr(text, types, expect="boolean", as_of=as_of, **options)
    except ExprError as exc:
        raise InvalidExpression(text, exc.message, exc.offset, exc.length,
                                exc.unknown) from None
    return compiled.sql


def not_computed_yet(exc: InvalidExpression, defined_tags: set[str]) -> UsageError | None:
    """For an expression naming a tag the rules define but the stored tags lack: the error
    to give instead of `unknown field` (None when that is not the case)."""
    if exc.unknown is None or exc.unknown not in defined_tags:
        return None
    return UsageError(f"tag '{exc.unknown}' is defined in tags.yaml but no tag run has "
                      "computed it yet: run `leadctl tag` first (or the nightly `leadctl run`)")


def relation_sql(where: str, routing_until: dt.date | None = None, *,
                 state_reason: bool = True) -> str:
    """Persons with their features, score and routing state (the stored one, or as of
    `routing_until`: `ownership_as_of_sql`, `state_reason` whether the log has that
    column), filtered by `where`."""
    ownership = "ownership" if routing_until is None else \
        f"({ownership_as_of_sql(routing_until, state_reason=state_reason)})"
    return ("FROM persons p\n"
            "LEFT JOIN person_features f ON f.person_id = p.person_id\n"
            "LEFT JOIN scores s ON s.person_id = p.person_id\n"
            f"LEFT JOIN {ownership} o ON o.person_id = p.person_id\n"
            f"WHERE {where}")


def select_sql(where: str, *, reveal: bool, limit: int | None,
               routing_until: dt.date | None = None, state_reason: bool = True) -> str:
    name = "p.name" if reveal else pii.mask_sql("name", "p.name")
    phone = "p.phone" if reveal else pii.mask_sql("phone", "p.phone")
    return (f"SELECT p.person_id, {name} AS name, {phone} AS phone, p.city, s.grade, s.score, "
            f"o.pool, o.owner, o.status\n"
            f"{relation_sql(where, routing_until, state_reason=state_reason)}\n"
            "ORDER BY s.score DESC NULLS LAST, p.person_id"
            + (f"\nLIMIT {int(limit)}" if limit is not None else ""))


def count_sql(where: str, routing_until: dt.date | None = None, *,
              state_reason: bool = True) -> str:
    return f"SELECT count(*) {relation_sql(where, routing_until, state_reason=state_reason)}"


def place_hint(text: str) -> dict:
    """When nothing matched: the quoted values of the expression that are spellings of a
    place (cities and provinces are stored by their official names), as {"hint": ...}."""
    respelled = []
    for field in ("city", "province"):
        for _, value in compared_literals(field, text):
            name = official_name(value, (field,))
            if name is not None:
                if name != value:
                    respelled.append(f"'{value}' is '{name}'")
            elif field == "city" and (province := official_name(value, ("province",))):
                respelled.append(f"'{value}' is the province '{province}'")  # 香港, HK
    if not respelled:
        return {}
    return {"hint": "no person matched; cities and provinces are stored by their official "
                    "names: " + ", ".join(dict.fromkeys(respelled))}


def find_persons(ws, text: str, *, as_of: dt.date | None = None, limit: int | None = None,
                 count_only: bool = False, reveal: bool = False,
                 out: Path | None = None) -> dict:
    """Count and list persons matching `text`; with `out`, write them to CSV/Parquet.
    `days_since(...)` counts to the screen's as-of (`leadctl.views.asof`); tags, scores
    and routing are the stored ones."""
    if limit is not None and limit < 0:
        raise UsageError("--limit must be 0 or more")
    if count_only and out is not None:
        raise UsageError("--count prints only the number of matches: give --count or -o, "
                         "not both")
    if out is not None:
        check_output_file(out, ws.path)
    screen = screen_as_of(ws, as_of)
    where = compile_filter(ws, text, screen.as_of)
    until = screen.routing_until  # pool, owner, status... as the portrait reads them
    # the latest rep action the routing shown holds: at the default as-of, one made since
    # the last night puts `routing` in as_of_differs, as on the portrait
    latest = ws.scalar(latest_action_sql(until))
    logged = until is None or has_state_reason(ws)  # an old workspace, only read since
    with evaluating(text):
        # a matched person holding a lead that arrived after the as-of, or whose leads a
        # later merge or split joined or parted: the list is today's persons (golden
        # records), as on the portrait; the latest such day for the list
        matched = f"SELECT p.person_id {relation_sql(where, until, state_reason=logged)}"
        identity = ws.scalar(changed_after_sql(screen.as_of, matched))
    result: dict = {"expr": pii.text_shown(text, reveal),
                    **screen.with_routing(latest, score=stored_as_of(ws, "scores"),
                                          identity=identity)}
    with evaluating(text):
        result["count"] = int(ws.scalar(count_sql(where, until, state_reason=logged)))
        if result["count"] == 0:
            result.update(place_hint(text))
        if count_only:
            return result
        if out is not None:
            written = copy_to_file(ws, select_sql(where, reveal=reveal, limit=limit,
                                                  routing_until=until, state_reason=logged),
                                   out)
            result.update(file=str(out), rows=written)
            return result
        shown = DEFAULT_LIMIT if limit is None else limit
        result["limit"] = shown
        result["persons"] = ws.rows(select_sql(where, reveal=reveal, limit=shown,
                                               routing_until=until, state_reason=logged))
    return result
