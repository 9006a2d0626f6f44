"""The safe rule-expression language, compiled to SQL.

Rule authors write conditions and values such as

    paid_orders_7d >= 30 and city in ('Shanghai', 'Beijing')

`compile_expr` reads the text with sqlglot (DuckDB syntax), then checks it in three passes:
tokens (no `;`, comments, statements, parameters, casts, functions outside the whitelist),
tree nodes (only whitelisted node kinds), and types (against the known fields). SQL is
generated from a NEW sqlglot tree built only from whitelisted constructs: field names come
from the caller's `fields`, numbers are validated, strings are escaped by sqlglot's
generator. Nothing from the rule text is ever pasted into SQL.

Public API:
    compile_expr(text, fields, *, expect=None, as_of=None, column_sql=None,
                 dialect="duckdb", finite_guard=None, whole_fields=())
                                          -> CompiledExpr(sql, type, names)
    expr_names(text) -> set[str]          field/tag names used (for dependency ordering)
    ExprError(message, offset, length)    offset is a 0-based character offset into text
    FUNCTIONS                             allowed function names -> usage
    FIELD_TYPES, NUMBER, STRING, ...      the type names of fields and results
    list_of(element)                      a field type: a list of element values ('list'
                                          alone: values of unknown type, not checked)

For an expression read from a rule file, `leadctl.rules.located.compile_located` turns
an ExprError into a problem at the exact file:line:col.

The work is in two modules: `expr_parse` (tokens, parse tree, source positions, the
checks of what may be written) and `expr_compile` (types, and the new SQL tree).
sqlglot is imported inside functions, so importing these modules stays cheap.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import date

from leadctl.rules.expr_compile import (
    ATOM,
    BOOLEAN,
    DATE,
    FIELD_TYPES,
    LIST,
    NULL,
    NUMBER,
    STRING,
    TIMESTAMP,
    Compiler,
    element_of,
    list_of,
)
from leadctl.rules.expr_parse import FUNCTIONS, ExprError, parse

__all__ = [
    "BOOLEAN",
    "DATE",
    "FIELD_TYPES",
    "FUNCTIONS",
    "LIST",
    "NULL",
    "NUMBER",
    "STRING",
    "TIMESTAMP",
    "CompiledExpr",
    "ExprError",
    "compile_expr",
    "element_of",
    "expr_names",
    "list_of",
]


@dataclass(frozen=True)
class CompiledExpr:
    sql: str  # SQL fragment; parenthesised unless atomic, so it can be embedded anywhere
    type: str  # 'number' | 'string' | 'boolean' | 'date' | 'timestamp' | 'list' | 'null'
    names: frozenset[str]  # field/tag names referenced


# -- public functions ------------------------------------------------------------------


def _quote_hint(exc: ExprError, text: str, fields: Mapping[str, str]) -> ExprError:
    """Fields named like words SQL reserves (`union`, `desc`, `map`), written bare, are no
    fields to the parser: when quoting them makes the text parse, the error says so
    (`"union" = 1` reads the tag named union)."""
    def bare(name: str) -> re.Pattern:
        return re.compile(rf'(?<![\w"\'.]){re.escape(name)}(?![\w"\'])', re.IGNORECASE)

    reserved = [name for name in sorted(fields)
                if bare(name).search(text) and not _parses(f"{name} = 1")]
    quoted = text
    for name in reserved:
        quoted = bare(name).sub(f'"{name}"', quoted)
    if not reserved or not _parses(quoted):
        return exc
    names = ", ".join(f'"{name}"' for name in reserved)
    return ExprError(f"{exc.message}; to name the field{'s' * (len(reserved) > 1)} "
                     f"{', '.join(reserved)}, quote {'them' if len(reserved) > 1 else 'it'}: "
                     f"{names}", exc.offset, exc.length, exc.unknown)


def _parses(text: str) -> bool:
    try:
        parse(text)
    except ExprError:
        return False
    return True


def compile_expr(
    text: str,
    fields: Mapping[str, str],
    *,
    expect: str | None = None,
    as_of: date | None = None,
    column_sql: Callable[[str], str] | None = None,
    dialect: str = "duckdb",
    finite_guard: Callable[[str], str] | None = None,
    whole_fields: Collection[str] = (),
    guard_result: bool = True,
) -> CompiledExpr:
    """Check `text` and compile it to a SQL fragment for `dialect` ('duckdb', 'spark', ...).

    fields: allowed names -> type ('number', 'string', 'boolean', 'date', 'timestamp',
        'list', or `list_of(element)` so `contains(list, value)` checks the value's type);
        anything else referenced is an error.
    expect: required result type, e.g. 'boolean' for conditions, 'number' for points.
    as_of: the date `days_since()` counts to (an error if used without it).
    column_sql: SQL for a field reference, used verbatim (it comes from code, not rules);
        default: the name as a quoted identifier of the dialect.
    finite_guard: SQL around a computation (`+ - * / %`) that may give a decimal number,
        given the computation's SQL in `dialect` (`leadctl find`: one that stops the query
        when it is NaN or infinite); default: none, the rules' SQL (tags and scoring
        check their results after computing them). `whole_fields`: the number fields
        holding whole numbers (their sums, differences, products and remainders overflow
        with an error, never to infinity: not guarded). `guard_result` False: the result
        itself is not guarded, only the computations inside it (a value the caller checks
        after computing it, saying for whom).
    Raises ExprError with the offset of the offending part.
    """
    if not isinstance(text, str):
        raise TypeError(f"expression must be str, not {type(text).__name__}")
    bad = {name: kind for name, kind in fields.items() if kind not in FIELD_TYPES}
    if bad:
        raise ValueError(f"unknown field types: {bad}")
    try:
        return _compile(text, fields, expect, as_of, column_sql, dialect,
                        (finite_guard, frozenset(whole_fields)), guard_result)
    except RecursionError:
        raise ExprError("expression is nested too deeply", 0, len(text)) from None


def _compile(
    text: str,
    fields: Mapping[str, str],
    expect: str | None,
    as_of: date | None,
    column_sql: Callable[[str], str] | None,
    dialect: str,
    guard: tuple[Callable[[str], str] | None, frozenset[str]] = (None, frozenset()),
    guard_result: bool = True,
) -> CompiledExpr:
    try:
        parsed = parse(text)
    except ExprError as exc:
        raise _quote_hint(exc, text, fields) from None
    compiler = Compiler(parsed, fields, as_of, column_sql, dialect=dialect, guard=guard)
    result = compiler.visit(parsed.tree)
    if not guard_result and result.bare is not None:
        result = result.bare
    if expect is not None and not (
        result.type == expect
        or (expect == DATE and result.type == TIMESTAMP)
        or (result.type == NULL and expect != BOOLEAN)
    ):
        if expect == BOOLEAN:
            message = f"condition must be true/false, got {result.type}"
        else:
            message = f"expression must be a {expect}, got {result.type}"
        raise parsed.error(parsed.tree, message)
    from sqlglot import exp

    node = result.node if result.level >= ATOM else exp.Paren(this=result.node)
    return CompiledExpr(node.sql(dialect=dialect), result.type, frozenset(compiler.names))


def expr_names(text: str) -> set[str]:
    """Names of the fields/tags an expression refers to (it is checked for forbidden
    syntax, not for types), so tags can be ordered by dependency before compiling."""
    from sqlglot import exp

    try:
        return {column.name for column in parse(text).tree.find_all(exp.Column)}
    except RecursionError:
        raise ExprError("expression is nested too deeply", 0, len(text)) from None


TEXT_LITERAL = re.compile(r"'((?:[^']|'')*)'")  # a quoted text value, '' for '


def compared_literals(field: str, text: str):
    """(offset, value) of each text literal `text` compares `field` with (`=`, `!=`, `<>`,
    on either side, `in (…)`, `not in (…)`): a value the field never holds is most likely
    a typo."""
    pattern = re.compile(rf"\b{field}\s*(?:==?|<>|!=)\s*('(?:[^']|'')*')"
                         rf"|\b{field}\s+(?:not\s+)?in\s*\(([^)]*)\)"
                         rf"|('(?:[^']|'')*')\s*(?:==?|<>|!=)\s*{field}\b", re.IGNORECASE)
    # matched on the text with every literal's content blanked (same offsets): a text
    # value such as 'status = ''new''' is no comparison
    blanked = TEXT_LITERAL.sub(lambda m: "'" + " " * (len(m.group()) - 2) + "'", text)
    for match in pattern.finditer(blanked):
        group = next(g for g in (1, 2, 3) if match.group(g) is not None)
        start, end = match.span(group)
        for literal in TEXT_LITERAL.finditer(text[start:end]):
            yield start + literal.start(), literal.group(1).replace("''", "'")
