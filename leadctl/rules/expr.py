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
                 dialect="duckdb") -> CompiledExpr(sql, type, names)
    expr_names(text) -> set[str]          field/tag names used (for dependency ordering)
    compile_at(container, key, fields, **kw) -> CompiledExpr
                                          the same for a value of a loaded rule file,
                                          errors as RuleError at the exact file:line:col
    ExprError(message, offset, length)    offset is a 0-based character offset into text
    FUNCTIONS                             allowed function names -> usage
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from leadctl.sqlfn import round_scale

__all__ = [
    "FIELD_TYPES",
    "FUNCTIONS",
    "CompiledExpr",
    "ExprError",
    "compile_at",
    "compile_expr",
    "expr_names",
]

NUMBER, STRING, BOOLEAN, DATE, TIMESTAMP, LIST, NULL = (
    "number", "string", "boolean", "date", "timestamp", "list", "null",
)  # fmt: skip
FIELD_TYPES = frozenset({NUMBER, STRING, BOOLEAN, DATE, TIMESTAMP, LIST})

# Allowed functions and how to call them (shown to rule authors in errors and docs).
FUNCTIONS: dict[str, str] = {
    "abs": "abs(number)",
    "ceil": "ceil(number)",
    "coalesce": "coalesce(value, value, ...): the first value that is not null",
    "contains": "contains(text, part) or contains(list, value)",
    "days_since": "days_since(date): whole days from the date to the as-of date",
    "ends_with": "ends_with(text, suffix)",
    "floor": "floor(number)",
    "greatest": "greatest(a, b, ...)",
    "if": "if(condition, value_if_true, value_if_false)",
    "least": "least(a, b, ...)",
    "length": "length(text) or length(list)",
    "lower": "lower(text)",
    "max": "max(a, b, ...): the largest of several values",
    "min": "min(a, b, ...): the smallest of several values",
    "month": "month(date)",
    "nullif": "nullif(a, b): null when a = b, else a",
    "round": "round(number) or round(number, digits)",
    "starts_with": "starts_with(text, prefix)",
    "trim": "trim(text)",
    "upper": "upper(text)",
    "year": "year(date)",
}
_ARITY: dict[str, tuple[int, int | None]] = {
    "abs": (1, 1), "ceil": (1, 1), "coalesce": (1, None), "contains": (2, 2),
    "days_since": (1, 1), "ends_with": (2, 2), "floor": (1, 1), "greatest": (2, None),
    "if": (3, 3), "least": (2, None), "length": (1, 1), "lower": (1, 1), "max": (2, None),
    "min": (2, None), "month": (1, 1), "nullif": (2, 2), "round": (1, 2),
    "starts_with": (2, 2), "trim": (1, 1), "upper": (1, 1), "year": (1, 1),
}  # fmt: skip


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_AGGREGATES = _words(
    "count sum avg mean median mode list array_agg string_agg group_concat any_value "
    "first last arg_min arg_max stddev variance count_distinct approx_count_distinct "
    "bool_and bool_or quantile"
)
# sqlglot node class (by name) -> the function name it must have been written as.
_CALL_CLASSES = {
    "Abs": "abs", "Ceil": "ceil", "Coalesce": "coalesce", "Contains": "contains",
    "EndsWith": "ends_with", "Floor": "floor", "Greatest": "greatest", "If": "if",
    "Least": "least", "Length": "length", "Lower": "lower", "Month": "month",
    "Nullif": "nullif", "Round": "round", "StartsWith": "starts_with", "Trim": "trim",
    "Upper": "upper", "Year": "year",
}  # fmt: skip
# min/max with one argument parse as aggregates; renamed before parsing so any count works.
_RENAMED = {"min": "__leadctl_min", "max": "__leadctl_max"}
_ANONYMOUS = {"days_since": "days_since", **{v: k for k, v in _RENAMED.items()}}

_NUMBER_RE = re.compile(r"(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIMESTAMP_RE = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?")
_SQL_NAME_PART = r'(?:[A-Za-z_]\w*|"(?:[^"]|"")*"|`(?:[^`]|``)*`)'
_SIMPLE_SQL_NAME = re.compile(rf"{_SQL_NAME_PART}(?:\.{_SQL_NAME_PART})*")

# Output precedence levels: an operand is parenthesised when its level is too low.
ATOM, NEG, MUL, ADD, CMP, NOT, AND, OR = 100, 90, 80, 70, 50, 40, 30, 20


@dataclass(frozen=True)
class CompiledExpr:
    sql: str  # SQL fragment; parenthesised unless atomic, so it can be embedded anywhere
    type: str  # 'number' | 'string' | 'boolean' | 'date' | 'timestamp' | 'list' | 'null'
    names: frozenset[str]  # field/tag names referenced


class ExprError(Exception):
    """A rejected expression: `message` for the author, `offset`/`length` in the text."""

    def __init__(self, message: str, offset: int = 0, length: int = 0):
        super().__init__(message)
        self.message = message
        self.offset = offset
        self.length = length


# -- public functions ------------------------------------------------------------------


def compile_expr(
    text: str,
    fields: Mapping[str, str],
    *,
    expect: str | None = None,
    as_of: date | None = None,
    column_sql: Callable[[str], str] | None = None,
    dialect: str = "duckdb",
) -> CompiledExpr:
    """Check `text` and compile it to a SQL fragment for `dialect` ('duckdb', 'spark', ...).

    fields: allowed names -> type ('number', 'string', 'boolean', 'date', 'timestamp',
        'list'); anything else referenced is an error.
    expect: required result type, e.g. 'boolean' for conditions, 'number' for points.
    as_of: the date `days_since()` counts to (an error if used without it).
    column_sql: SQL for a field reference, used verbatim (it comes from code, not rules);
        default: the name as a quoted identifier of the dialect.
    Raises ExprError with the offset of the offending part.
    """
    if not isinstance(text, str):
        raise TypeError(f"expression must be str, not {type(text).__name__}")
    bad = {name: kind for name, kind in fields.items() if kind not in FIELD_TYPES}
    if bad:
        raise ValueError(f"unknown field types: {bad}")
    try:
        return _compile(text, fields, expect, as_of, column_sql, dialect)
    except RecursionError:
        raise ExprError("expression is nested too deeply", 0, len(text)) from None


def _compile(
    text: str,
    fields: Mapping[str, str],
    expect: str | None,
    as_of: date | None,
    column_sql: Callable[[str], str] | None,
    dialect: str,
) -> CompiledExpr:
    parsed = _parse(text)
    compiler = _Compiler(parsed, fields, as_of, column_sql)
    result = compiler.visit(parsed.tree)
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
        return {column.name for column in _parse(text).tree.find_all(exp.Column)}
    except RecursionError:
        raise ExprError("expression is nested too deeply", 0, len(text)) from None


def compile_at(container: Any, key: Any, fields: Mapping[str, str], **kwargs: Any):
    """Compile the expression stored at `container[key]` of a loaded rule file
    (a YDict with a key, or a YList with an index); errors become RuleError at the
    exact file:line:col of the offending character. kwargs as for compile_expr."""
    from leadctl.errors import RuleError

    value = container[key]
    if isinstance(value, bool):  # YAML reads `true`/`yes` as booleans
        value = "true" if value else "false"
    elif isinstance(value, int | float):
        value = str(value)
    if not isinstance(value, str):
        where = container.value_loc(key) if hasattr(container, "value_loc") else None
        where = where or container.item_loc(key)
        raise RuleError([(where, "expected an expression (text), got a nested structure")])
    try:
        return compile_expr(value, fields, **kwargs)
    except ExprError as exc:
        raise RuleError([(container.text_loc(key, exc.offset), exc.message)]) from None


# -- reading: tokens, parse tree, source positions --------------------------------------


@lru_cache(maxsize=512)
def _parse(text: str) -> _Parsed:
    return _Parsed(text)


class _Parsed:
    """Tokens and tree of one expression, and where each tree node is in the text."""

    def __init__(self, text: str):
        from sqlglot.dialects.dialect import Dialect
        from sqlglot.errors import ParseError, TokenError

        self.text = text
        if not text.strip():
            raise ExprError("empty expression", 0, len(text))
        dialect = Dialect.get_or_raise("duckdb")
        try:
            self.tokens = dialect.tokenize(text)
        except TokenError as exc:
            raise _token_error(text, exc) from None
        _check_tokens(text, self.tokens)
        self.by_start = {tok.start: i for i, tok in enumerate(self.tokens)}
        self.by_end = {tok.end: i for i, tok in enumerate(self.tokens)}
        for i, tok in enumerate(self.tokens):
            if tok.text.lower() in _RENAMED and self._is(i + 1, "L_PAREN"):
                tok.text = _RENAMED[tok.text.lower()]
        try:
            trees = dialect.parser().parse(self.tokens, text)
        except ParseError as exc:
            raise _parse_error(text, exc) from None
        if len(trees) != 1 or trees[0] is None:
            raise ExprError("expected one expression", 0, len(text))
        self.tree = trees[0]
        self._spans: dict[int, tuple[int, int] | None] = {}
        self._keyword_spans = self._map_keyword_literals()

    # tokens
    def _is(self, index: int, *kinds: str) -> bool:
        return 0 <= index < len(self.tokens) and self.tokens[index].token_type.name in kinds

    def _matching_paren(self, open_index: int) -> int | None:
        depth = 0
        for i in range(open_index, len(self.tokens)):
            kind = self.tokens[i].token_type.name
            depth += (kind == "L_PAREN") - (kind == "R_PAREN")
            if depth == 0:
                return i
        return None

    def _map_keyword_literals(self) -> dict[int, tuple[int, int]]:
        """true/false/null carry no position in sqlglot: pair them with their tokens."""
        tokens = [t for t in self.tokens if t.token_type.name in ("TRUE", "FALSE", "NULL")]
        nodes = [n for n in _source_order(self.tree) if type(n).__name__ in ("Boolean", "Null")]
        if len(tokens) != len(nodes):
            return {}
        return {id(n): (t.start, t.end + 1) for n, t in zip(nodes, tokens, strict=True)}

    # positions
    def span(self, node: Any) -> tuple[int, int] | None:
        """[start, end) of `node` in the text, or None if unknown."""
        key = id(node)
        if key in self._spans:
            return self._spans[key]
        start = node.meta.get("start") if node.meta else None
        found = (start, node.meta["end"] + 1) if start is not None else None
        found = found or self._keyword_spans.get(key)
        for child in _children(node):
            child_span = self.span(child)
            if child_span:
                found = (
                    child_span
                    if not found
                    else (min(found[0], child_span[0]), max(found[1], child_span[1]))
                )
        if found:
            found = self._extend(node, found)
        self._spans[key] = found
        return found

    def _extend(self, node: Any, found: tuple[int, int]) -> tuple[int, int]:
        """Widen a span to the node's own punctuation: ( ), case/end, unary - and not."""
        start, end = found
        kind = type(node).__name__
        first = self.by_start.get(start)
        last = self.by_end.get(end - 1)
        if self.is_call(node):
            name = self.call_token(node)
            close = self._matching_paren(name + 1) if name is not None else None
            if close is not None:
                return self.tokens[name].start, self.tokens[close].end + 1
        elif kind == "Paren" and first is not None and last is not None:
            if self._is(first - 1, "L_PAREN") and self._is(last + 1, "R_PAREN"):
                return self.tokens[first - 1].start, self.tokens[last + 1].end + 1
        elif kind in ("Neg", "Not") and first is not None and self._is(first - 1, "DASH", "NOT"):
            return self.tokens[first - 1].start, end
        elif kind == "Case" and first is not None and last is not None:
            before = first - 1 - self._is(first - 1, "WHEN")
            if self._is(before, "CASE"):
                start = self.tokens[before].start
            if self._is(last + 1, "END"):
                end = self.tokens[last + 1].end + 1
        elif kind == "In" and last is not None and self._is(last + 1, "R_PAREN"):
            return start, self.tokens[last + 1].end + 1
        elif kind == "Cast" and first is not None and self._is(first - 1, "DATE", "TIMESTAMP"):
            return self.tokens[first - 1].start, end  # date '2026-01-01'
        elif kind == "Window" and last is not None and self._is(last + 1, "OVER"):
            close = self._matching_paren(last + 2) if self._is(last + 2, "L_PAREN") else None
            if close is not None:
                return start, self.tokens[close].end + 1
        return start, end

    def is_call(self, node: Any) -> bool:
        """A function call written as name(...) (not the `when` branches of a case)."""
        kind = type(node).__name__
        return (kind in _CALL_CLASSES or kind == "Anonymous") and node.arg_key != "ifs"

    def call_token(self, node: Any) -> int | None:
        """Index of the token holding the name of a function call."""
        start = node.meta.get("start") if node.meta else None
        if start is not None:
            return self.by_start.get(start)
        children = [self.span(c) for c in _children(node)]
        starts = [c[0] for c in children if c]
        first = self.by_start.get(min(starts)) if starts else None
        if first is not None and self._is(first - 1, "L_PAREN") and first >= 2:
            return first - 2
        return None

    def call_name(self, node: Any) -> str | None:
        index = self.call_token(node)
        return self.tokens[index].text.lower() if index is not None else None

    def snippet(self, node: Any) -> str:
        found = self.span(node)
        text = self.text[found[0] : found[1]] if found else node.sql()
        text = " ".join(text.split())
        return text if len(text) <= 40 else text[:37] + "..."

    def error(self, node: Any, message: str) -> ExprError:
        found = self.span(node)
        if not found:
            return ExprError(message, 0, len(self.text))
        return ExprError(message, found[0], found[1] - found[0])


def _children(node: Any) -> list[Any]:
    """Child nodes in the order they are written (arg_types order)."""
    from sqlglot import exp

    result = []
    for key in node.arg_types:
        value = node.args.get(key)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, exp.Expression):
                result.append(item)
    return result


def _source_order(node: Any):
    yield node
    for child in _children(node):
        yield from _source_order(child)


_STATEMENT_TOKENS = _words(
    "SELECT FROM UNION INTERSECT EXCEPT WITH INSERT UPDATE DELETE DROP CREATE ALTER "
    "TRUNCATE MERGE INTO JOIN WHERE GROUP_BY ORDER_BY HAVING LIMIT PRAGMA COMMAND ATTACH "
    "DETACH COPY DESCRIBE INSTALL LOAD USE SET TABLE VALUES"
)
_PARAMETER_TOKENS = _words("PLACEHOLDER PARAMETER SESSION_PARAMETER COLON COLON_EQ")
_LAMBDA_TOKENS = _words("ARROW DARROW FARROW")
_BRACKET_TOKENS = _words("L_BRACKET R_BRACKET L_BRACE R_BRACE")
# Tokens that may stand before "(" without being a function name.
_NOT_A_FUNCTION = _words(
    "L_PAREN R_PAREN COMMA AND OR NOT IN WHEN THEN ELSE CASE BETWEEN IS EQ NEQ LT LTE GT "
    "GTE PLUS DASH STAR SLASH MOD DPIPE NULLSAFE_EQ STRING NUMBER"
)
# Tokens after which the next word is an operator (`x in (`), not a function name.
_OPERAND_END = _words("VAR IDENTIFIER NUMBER STRING R_PAREN NULL TRUE FALSE END")


def _check_tokens(text: str, tokens: list) -> None:
    """Reject, at their exact place, things an expression can never contain."""
    allowed = ", ".join(sorted(FUNCTIONS))
    position = 0
    for i, tok in enumerate(tokens):
        _check_gap(text, position, tok.start)
        position = tok.end + 1
        kind = tok.token_type.name
        word = text[tok.start : tok.end + 1]
        here = (tok.start, tok.end + 1 - tok.start)
        before = tokens[i - 1] if i else None
        after = tokens[i + 1] if i + 1 < len(tokens) else None
        if kind == "SEMICOLON":
            raise ExprError(
                "';' is not allowed: a rule expression is one expression, not SQL statements",
                *here,
            )
        if kind in _STATEMENT_TOKENS:
            raise ExprError(
                f"'{word}' is not allowed: rule expressions cannot contain SQL statements "
                "or sub-queries",
                *here,
            )
        if kind in _PARAMETER_TOKENS:
            raise ExprError(f"parameters and placeholders ('{word}') are not allowed", *here)
        if kind == "DCOLON":
            raise ExprError("casts ('::') are not allowed", *here)
        if kind in _LAMBDA_TOKENS:
            raise ExprError(f"'{word}' is not allowed (no lambdas or JSON operators)", *here)
        if kind in _BRACKET_TOKENS:
            raise ExprError(
                f"'{word}' is not allowed: write a list of values as x in ('a', 'b')", *here
            )
        if kind == "DOT":
            start = before.start if before else tok.start
            end = after.end + 1 if after else tok.end + 1
            name = after.text if after else ""
            raise ExprError(
                f"table references are not allowed: write the field name alone ({name})",
                start,
                end - start,
            )
        if kind == "STAR" and (before is None or before.token_type.name in ("L_PAREN", "COMMA")):
            raise ExprError("'*' is not allowed", *here)
        is_call = (
            after is not None
            and after.token_type.name == "L_PAREN"
            and kind not in _NOT_A_FUNCTION
            and (before is None or before.token_type.name not in _OPERAND_END)
        )
        if is_call:
            name = word.lower()
            if kind == "IDENTIFIER":
                raise ExprError(f"function names cannot be quoted: {word}", *here)
            if name in _AGGREGATES:
                raise ExprError(
                    f"aggregate function '{name}' is not allowed in expressions "
                    "(aggregates over events belong in metric tags)",
                    *here,
                )
            if name not in FUNCTIONS:
                raise ExprError(f"function '{name}' is not allowed (allowed: {allowed})", *here)
            _check_arity(text, tokens, i, name)
    _check_gap(text, position, len(text))


def _check_arity(text: str, tokens: list, name_index: int, name: str) -> None:
    """Count the arguments of a call by its top-level commas (sqlglot's own messages
    for wrong counts are cryptic)."""
    depth, count, close = 0, 0, None
    for j in range(name_index + 1, len(tokens)):
        kind = tokens[j].token_type.name
        if kind == "L_PAREN":
            depth += 1
        elif kind == "R_PAREN":
            depth -= 1
            if depth == 0:
                close = j
                break
        elif kind == "COMMA" and depth == 1:
            count += 1
        elif count == 0 and depth == 1:
            count = 1
    if close is None:
        return  # unbalanced: the parser reports it
    if tokens[close - 1].token_type.name == "COMMA":
        return  # trailing comma: a syntax error the parser reports
    start = tokens[name_index].start
    where = (start, tokens[close].end + 1 - start)
    low, high = _ARITY[name]
    if name in ("min", "max") and count == 1:
        raise ExprError(
            f"{name}() with one argument is an aggregate, which is not allowed here; "
            f"use {name}(a, b, ...) to pick among values",
            *where,
        )
    if count < low or (high is not None and count > high):
        raise ExprError(f"{name}() takes {_arity_text(low, high)}, got {count}", *where)


def _check_gap(text: str, start: int, end: int) -> None:
    """Text between tokens must be blank; the tokenizer hides comments there."""
    gap = text[start:end]
    if gap.strip():
        offset = start + len(gap) - len(gap.lstrip())
        opener = text[offset : offset + 2]
        if opener in ("--", "/*"):
            raise ExprError(
                f"comments ('{opener}') are not allowed in rule expressions: "
                "they could hide part of a condition",
                offset,
                end - offset,
            )
        raise ExprError(f"unexpected character {text[offset]!r}", offset, 1)


def _token_error(text: str, exc: Exception) -> ExprError:
    """Most tokenizer errors are unclosed quotes: find the opening one."""
    i = 0
    while i < len(text):
        quote = text[i]
        if quote in "'\"":
            j = i + 1
            while True:
                j = text.find(quote, j)
                if j < 0:
                    what = "string" if quote == "'" else "quoted name"
                    return ExprError(f"unterminated {what}: missing closing {quote}", i,
                                     len(text) - i)  # fmt: skip
                if text[j + 1 : j + 2] == quote:  # doubled quote inside
                    j += 2
                    continue
                break
            i = j + 1
            continue
        if text.startswith("--", i):
            break
        i += 1
    return ExprError(f"cannot read expression: {exc}", 0, len(text))


def _parse_error(text: str, exc: Any) -> ExprError:
    info = exc.errors[0] if getattr(exc, "errors", None) else {}
    description = str(info.get("description") or exc)
    highlight = str(info.get("highlight") or "")
    line, col = info.get("line"), info.get("col")
    offset = 0
    if line and col:
        starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]
        offset = max(0, starts[min(line, len(starts)) - 1] + col - len(highlight))
    if description.startswith("Expecting )"):
        return ExprError("syntax error: missing ')'", offset + len(highlight), 0)
    if description.startswith("Required keyword"):
        if "'this'" in description:
            message = "syntax error: missing function argument"
        else:
            message = f"syntax error: something is missing after '{highlight}'"
    elif description.startswith("Invalid expression / Unexpected token"):
        message = f"syntax error: unexpected '{highlight}'"
    else:
        cleaned = re.sub(r"<class '[\w.]*\.(\w+)'>", r"\1", description)
        message = f"syntax error: {cleaned}"
    return ExprError(message, offset, len(highlight))


# -- checking types and building the output tree ----------------------------------------

_NO_LITERAL = object()


@dataclass(frozen=True)
class _Typed:
    node: Any  # the OUTPUT sqlglot node (built here, never taken from the parsed text)
    type: str
    level: int  # precedence of node, for parenthesising
    src: Any  # the parsed node it came from (for positions in errors)
    literal: Any = _NO_LITERAL  # Python value when the source is a literal


_REJECTED = {
    "Select": "sub-queries are not allowed",
    "Subquery": "sub-queries are not allowed",
    "Union": "sub-queries are not allowed",
    "Exists": "sub-queries are not allowed",
    "Star": "'*' is not allowed",
    "Cast": "casts are not allowed (compare dates with 'YYYY-MM-DD' strings)",
    "TryCast": "casts are not allowed",
    "Placeholder": "parameters and placeholders are not allowed",
    "Parameter": "parameters and placeholders are not allowed",
    "Lambda": "lambdas are not allowed",
    "Window": "window functions are not allowed",
    "Like": "'like' is not allowed (use starts_with, ends_with or contains)",
    "ILike": "'ilike' is not allowed (use starts_with, ends_with or contains with lower)",
    "Pow": "'^' (power) is not allowed",
    "Concat": "two strings side by side are not allowed (join strings with ||)",
    "IntDiv": "'//' is not allowed (use floor(a / b))",
}


class _Compiler:
    def __init__(
        self,
        parsed: _Parsed,
        fields: Mapping[str, str],
        as_of: date | None,
        column_sql: Callable[[str], str] | None,
    ):
        from sqlglot import exp

        self.exp = exp
        self.parsed = parsed
        self.fields = fields
        self.as_of = as_of
        self.column_sql = column_sql
        self.names: set[str] = set()

    def visit(self, node: Any) -> _Typed:
        handler = getattr(self, f"_v_{type(node).__name__}", None)
        if handler is None or type(node).__module__.split(".")[0] != "sqlglot":
            raise self._not_allowed(node)
        return handler(node)

    # -- helpers
    def err(self, node: Any, message: str) -> ExprError:
        return self.parsed.error(node, message)

    def what(self, t: _Typed) -> str:
        """How an operand is named in messages: "string 'city'", "number 30", "null"."""
        if t.type == NULL:
            return "null"
        src = t.src
        if type(src).__name__ == "Column":
            return f"{t.type} '{src.name}'"
        return f"{t.type} {self.parsed.snippet(src)}"

    def wrap(self, t: _Typed, min_level: int) -> Any:
        return t.node if t.level >= min_level else self.exp.Paren(this=t.node)

    def need(self, t: _Typed, types: tuple[str, ...], message: str) -> None:
        if t.type not in types:
            raise self.err(t.src, f"{message}, got {self.what(t)}")

    def is_string_literal(self, t: _Typed) -> bool:
        return t.type == STRING and isinstance(t.literal, str)

    def as_date(self, t: _Typed, want: str) -> _Typed:
        """A 'YYYY-MM-DD' (or timestamp) string literal used where a date is expected."""
        value = t.literal
        try:
            if _DATE_RE.fullmatch(value):
                date.fromisoformat(value)
                kind = DATE
            elif want == TIMESTAMP and _TIMESTAMP_RE.fullmatch(value):
                value = datetime.fromisoformat(value).isoformat(sep=" ")
                kind = TIMESTAMP
            else:
                raise ValueError(value)
        except ValueError:
            shape = "'YYYY-MM-DD'" if want == DATE else "'YYYY-MM-DD' or 'YYYY-MM-DD HH:MM:SS'"
            raise self.err(
                t.src, f"{self.parsed.snippet(t.src)} is not a valid {want} (write {shape})"
            ) from None
        exp = self.exp
        node = exp.Cast(this=exp.Literal.string(value), to=exp.DataType.build(kind))
        return _Typed(node, kind, ATOM, t.src)

    def coerce_pair(self, a: _Typed, b: _Typed) -> tuple[_Typed, _Typed]:
        if a.type in (DATE, TIMESTAMP) and self.is_string_literal(b):
            b = self.as_date(b, a.type)
        elif b.type in (DATE, TIMESTAMP) and self.is_string_literal(a):
            a = self.as_date(a, b.type)
        return a, b

    def comparable(
        self, a: _Typed, b: _Typed, node: Any, *, ordered: bool
    ) -> tuple[_Typed, _Typed]:
        if NULL in (a.type, b.type):
            raise self.err(
                node, "comparing with null is never true; use 'is null' or 'is not null'"
            )
        a, b = self.coerce_pair(a, b)
        if not _same_family(a.type, b.type):
            hint = ""
            if LIST in (a.type, b.type):
                hint = " (use contains(list, value) to look inside a list)"
            raise self.err(node, f"cannot compare {self.what(a)} with {self.what(b)}{hint}")
        if a.type == LIST:
            raise self.err(node, f"cannot compare lists ({self.what(a)}); "
                           "use contains(list, value) or length(list)")  # fmt: skip
        if ordered and a.type == BOOLEAN:
            raise self.err(node, "true/false values can only be compared with = or !=")
        return a, b

    def unify(self, items: list[_Typed], what: str) -> tuple[str, list[_Typed]]:
        """Common type of values that may stand in for each other (case/if/coalesce...)."""
        if any(t.type in (DATE, TIMESTAMP) for t in items):
            want = TIMESTAMP if any(t.type == TIMESTAMP for t in items) else DATE
            items = [self.as_date(t, want) if self.is_string_literal(t) else t for t in items]
        typed = [t for t in items if t.type != NULL]
        if not typed:
            return NULL, items
        first = typed[0]
        for t in typed[1:]:
            if not _same_family(first.type, t.type):
                raise self.err(t.src, f"{what} {self.what(first)} and {self.what(t)}")
        kind = TIMESTAMP if any(t.type == TIMESTAMP for t in typed) else first.type
        return kind, items

    def _not_allowed(self, node: Any) -> ExprError:
        exp = self.exp
        kind = type(node).__name__
        if kind == "Alias":
            alias = node.args.get("alias")
            word = alias.name if alias else ""
            message = f"syntax error: unexpected '{word}' (missing operator or quotes?)"
            return self.err(alias or node, message)
        if kind in _REJECTED:
            return self.err(node, _REJECTED[kind])
        if isinstance(node, exp.Func):
            name = self.parsed.call_name(node) or self.parsed.snippet(node)
            if isinstance(node, exp.AggFunc):
                return self.err(node, f"aggregate function '{name}' is not allowed in expressions")
            return self.err(node, f"'{name}' is not allowed in rule expressions")
        return self.err(node, f"'{self.parsed.snippet(node)}' is not allowed in rule expressions")

    # -- leaves
    def _v_Column(self, node: Any) -> _Typed:
        exp = self.exp
        if any(node.args.get(part) for part in ("table", "db", "catalog")):
            raise self.err(node, "table references are not allowed: write the field name alone")
        ident = node.this
        if not isinstance(ident, exp.Identifier):
            raise self._not_allowed(ident)
        name = ident.name
        if name not in self.fields:
            raise self.err(node, _unknown_field_message(name, self.fields, ident.quoted))
        self.names.add(name)
        if self.column_sql is None:
            out = exp.Column(this=exp.Identifier(this=name, quoted=True))
        else:
            raw = self.column_sql(name)
            out = exp.Var(this=raw)
            if not _SIMPLE_SQL_NAME.fullmatch(raw):
                out = exp.Paren(this=out)
        return _Typed(out, self.fields[name], ATOM, node)

    def _v_Literal(self, node: Any) -> _Typed:
        exp = self.exp
        if node.is_string:
            return _Typed(exp.Literal.string(node.this), STRING, ATOM, node, node.this)
        if not _NUMBER_RE.fullmatch(node.this):
            raise self.err(node, f"invalid number {self.parsed.snippet(node)}")
        return _Typed(exp.Literal.number(node.this), NUMBER, ATOM, node, node.this)

    def _v_Boolean(self, node: Any) -> _Typed:
        value = node.this is True
        return _Typed(self.exp.Boolean(this=value), BOOLEAN, ATOM, node, value)

    def _v_Null(self, node: Any) -> _Typed:
        return _Typed(self.exp.Null(), NULL, ATOM, node, None)

    def _v_Paren(self, node: Any) -> _Typed:
        inner = self.visit(node.this)
        return dataclasses.replace(inner, src=node if inner.type != NULL else inner.src)

    # -- operators
    def _comparison(self, node: Any) -> _Typed:
        left, right = self.visit(node.this), self.visit(node.expression)
        ordered = type(node).__name__ not in ("EQ", "NEQ")
        left, right = self.comparable(left, right, node, ordered=ordered)
        out = type(node)(this=self.wrap(left, CMP + 1), expression=self.wrap(right, CMP + 1))
        return _Typed(out, BOOLEAN, CMP, node)

    _v_EQ = _v_NEQ = _v_LT = _v_LTE = _v_GT = _v_GTE = _comparison

    def _logic(self, node: Any) -> _Typed:
        word = type(node).__name__.lower()
        level = AND if word == "and" else OR
        left, right = self.visit(node.this), self.visit(node.expression)
        for t in (left, right):
            self.need(t, (BOOLEAN,), f"'{word}' needs true/false values")
        out = type(node)(this=self.wrap(left, level), expression=self.wrap(right, level))
        return _Typed(out, BOOLEAN, level, node)

    _v_And = _v_Or = _logic

    def _v_Not(self, node: Any) -> _Typed:
        inner = self.visit(node.this)
        self.need(inner, (BOOLEAN,), "'not' needs a true/false value")
        return _Typed(self.exp.Not(this=self.wrap(inner, ATOM)), BOOLEAN, NOT, node)

    def _v_Neg(self, node: Any) -> _Typed:
        inner = self.visit(node.this)
        self.need(inner, (NUMBER,), "'-' needs a number")
        literal = f"-{inner.literal}" if inner.literal is not _NO_LITERAL else _NO_LITERAL
        return _Typed(self.exp.Neg(this=self.wrap(inner, ATOM)), NUMBER, NEG, node, literal)

    _ARITHMETIC = {"Add": ("+", ADD), "Sub": ("-", ADD), "Mul": ("*", MUL), "Div": ("/", MUL),
                   "Mod": ("%", MUL)}  # fmt: skip

    def _arithmetic(self, node: Any) -> _Typed:
        symbol, level = self._ARITHMETIC[type(node).__name__]
        left, right = self.visit(node.this), self.visit(node.expression)
        for t in (left, right):
            if t.type in (DATE, TIMESTAMP):
                raise self.err(t.src, f"'{symbol}' needs numbers, got {self.what(t)} "
                               "(use days_since() for dates)")  # fmt: skip
            self.need(t, (NUMBER,), f"'{symbol}' needs numbers")
        out = type(node)(this=self.wrap(left, level), expression=self.wrap(right, level + 1))
        return _Typed(out, NUMBER, level, node)

    _v_Add = _v_Sub = _v_Mul = _v_Div = _v_Mod = _arithmetic

    def _v_DPipe(self, node: Any) -> _Typed:
        left, right = self.visit(node.this), self.visit(node.expression)
        for t in (left, right):
            self.need(t, (STRING,), "'||' joins strings")
        out = self.exp.DPipe(this=self.wrap(left, ATOM), expression=self.wrap(right, ATOM))
        return _Typed(out, STRING, ADD, node)

    def _v_In(self, node: Any) -> _Typed:
        exp = self.exp
        if any(node.args.get(k) for k in ("query", "unnest", "field")):
            raise self.err(node, "sub-queries are not allowed")
        left = self.visit(node.this)
        items = []
        for item in node.expressions:
            if not _is_literal(item):
                raise self.err(item, "an 'in' list may only hold literal values like 1 or 'text'")
            t = self.visit(item)
            if t.type == NULL:
                raise self.err(item, "null in an 'in' list never matches; use 'is null'")
            if items and t.type != items[0].type:
                raise self.err(item, f"'in' list mixes {self.what(items[0])} and {self.what(t)}")
            items.append(t)
        if not items:
            raise self.err(node, "an 'in' list needs at least one value")
        coerced = [self.comparable(left, t, node, ordered=False) for t in items]
        left = coerced[0][0]
        out = exp.In(this=self.wrap(left, CMP + 1), expressions=[r.node for _, r in coerced])
        return _Typed(out, BOOLEAN, CMP, node)

    def _v_Between(self, node: Any) -> _Typed:
        if node.args.get("symmetric"):
            raise self.err(node, "'between symmetric' is not allowed")
        value = self.visit(node.this)
        low, high = self.visit(node.args["low"]), self.visit(node.args["high"])
        value, low = self.comparable(value, low, node, ordered=True)
        value, high = self.comparable(value, high, node, ordered=True)
        out = self.exp.Between(
            this=self.wrap(value, CMP + 1),
            low=self.wrap(low, CMP + 1),
            high=self.wrap(high, CMP + 1),
        )
        return _Typed(out, BOOLEAN, CMP, node)

    def _v_Is(self, node: Any) -> _Typed:
        exp = self.exp
        if not isinstance(node.expression, exp.Null):
            raise self.err(node, "only 'is null' and 'is not null' are allowed "
                           "(compare true/false values with =)")  # fmt: skip
        value = self.visit(node.this)
        out = exp.Is(this=self.wrap(value, CMP + 1), expression=exp.Null())
        return _Typed(out, BOOLEAN, CMP, node)

    def _v_Case(self, node: Any) -> _Typed:
        exp = self.exp
        operand = self.visit(node.this) if node.this else None
        whens, values = [], []
        for branch in node.args.get("ifs") or []:
            when = self.visit(branch.this)
            if operand is not None:
                _, when = self.comparable(operand, when, branch.this, ordered=False)
            else:
                self.need(when, (BOOLEAN,), "'when' needs a true/false condition")
            whens.append(when)
            values.append(self.visit(branch.args["true"]))
        default = node.args.get("default")
        if default is not None:
            values.append(self.visit(default))
        kind, values = self.unify(values, "case results mix")
        out = exp.Case(
            this=operand.node if operand else None,
            ifs=[exp.If(this=w.node, true=v.node) for w, v in zip(whens, values, strict=False)],
            default=values[-1].node if default is not None else None,
        )
        return _Typed(out, kind, ATOM, node)

    # -- function calls
    def _call(self, node: Any) -> _Typed:
        kind = type(node).__name__
        if kind == "Anonymous":
            name = _ANONYMOUS.get(node.name.lower())
            args = list(node.expressions)
        else:
            name = _CALL_CLASSES.get(kind)
            args = _children(node)
        written = self.parsed.call_name(node)
        if name is None or written is None or _RENAMED.get(name, name) != written:
            raise self._not_allowed(node)
        low, high = _ARITY[name]
        if name in ("min", "max") and len(args) == 1:
            raise self.err(node, f"{name}() with one argument is an aggregate, which is not "
                           f"allowed here; use {name}(a, b, ...) to pick among values")  # fmt: skip
        if len(args) < low or (high is not None and len(args) > high):
            raise self.err(node, f"{name}() takes {_arity_text(low, high)}, got {len(args)}")
        typed = [self.visit(arg) for arg in args]
        return getattr(self, f"_fn_{name}")(node, typed)

    _v_Anonymous = _v_Abs = _v_Ceil = _v_Coalesce = _v_Contains = _v_EndsWith = _call
    _v_Floor = _v_Greatest = _v_If = _v_Least = _v_Length = _v_Lower = _v_Month = _call
    _v_Nullif = _v_Round = _v_StartsWith = _v_Trim = _v_Upper = _v_Year = _call

    def _number_fn(self, cls: Any, name: str, node: Any, args: list[_Typed]) -> _Typed:
        self.need(args[0], (NUMBER,), f"{name}() needs a number")
        return _Typed(cls(this=args[0].node), NUMBER, ATOM, node)

    def _fn_abs(self, node: Any, args: list[_Typed]) -> _Typed:
        return self._number_fn(self.exp.Abs, "abs", node, args)

    def _fn_floor(self, node: Any, args: list[_Typed]) -> _Typed:
        return self._number_fn(self.exp.Floor, "floor", node, args)

    def _fn_ceil(self, node: Any, args: list[_Typed]) -> _Typed:
        return self._number_fn(self.exp.Ceil, "ceil", node, args)

    def _fn_round(self, node: Any, args: list[_Typed]) -> _Typed:
        self.need(args[0], (NUMBER,), "round() needs a number")
        digits = None
        if len(args) == 2:
            if not re.fullmatch(r"-?\d+", str(args[1].literal)):
                raise self.err(args[1].src, "round() digits must be a whole number like 2")
            digits = args[1].node
            # Through a DECIMAL: the same result on DuckDB and Spark (see leadctl.sqlfn).
            scale = round_scale(int(str(args[1].literal)))
            exact = self.exp.TryCast(this=args[0].node.copy(),
                                     to=self.exp.DataType.build(f"DECIMAL(38, {scale})"))
            rounded = self.exp.cast(self.exp.Round(this=exact, decimals=digits), "DOUBLE")
            return _Typed(self.exp.func("coalesce", rounded, args[0].node), NUMBER, ATOM, node)
        return _Typed(self.exp.Round(this=args[0].node, decimals=digits), NUMBER, ATOM, node)

    def _pick(self, cls: Any, name: str, node: Any, args: list[_Typed]) -> _Typed:
        for t in args:
            self.need(t, (NUMBER, STRING, DATE, TIMESTAMP, NULL),
                      f"{name}() needs numbers, strings or dates")  # fmt: skip
        kind, args = self.unify(args, f"{name}() arguments mix")
        out = cls(this=args[0].node, expressions=[t.node for t in args[1:]], ignore_nulls=True)
        return _Typed(out, kind, ATOM, node)

    def _fn_least(self, node: Any, args: list[_Typed]) -> _Typed:
        return self._pick(self.exp.Least, "least", node, args)

    def _fn_greatest(self, node: Any, args: list[_Typed]) -> _Typed:
        return self._pick(self.exp.Greatest, "greatest", node, args)

    def _fn_min(self, node: Any, args: list[_Typed]) -> _Typed:
        return self._pick(self.exp.Least, "min", node, args)

    def _fn_max(self, node: Any, args: list[_Typed]) -> _Typed:
        return self._pick(self.exp.Greatest, "max", node, args)

    def _fn_coalesce(self, node: Any, args: list[_Typed]) -> _Typed:
        kind, args = self.unify(args, "coalesce() arguments mix")
        out = self.exp.Coalesce(this=args[0].node, expressions=[t.node for t in args[1:]])
        return _Typed(out, kind, ATOM, node)

    def _text_fn(self, cls: Any, name: str, node: Any, args: list[_Typed]) -> _Typed:
        self.need(args[0], (STRING,), f"{name}() needs a string")
        return _Typed(cls(this=args[0].node), STRING, ATOM, node)

    def _fn_lower(self, node: Any, args: list[_Typed]) -> _Typed:
        return self._text_fn(self.exp.Lower, "lower", node, args)

    def _fn_upper(self, node: Any, args: list[_Typed]) -> _Typed:
        return self._text_fn(self.exp.Upper, "upper", node, args)

    def _fn_trim(self, node: Any, args: list[_Typed]) -> _Typed:
        return self._text_fn(self.exp.Trim, "trim", node, args)

    def _fn_length(self, node: Any, args: list[_Typed]) -> _Typed:
        self.need(args[0], (STRING, LIST), "length() needs a string or a list")
        cls = self.exp.ArraySize if args[0].type == LIST else self.exp.Length
        return _Typed(cls(this=args[0].node), NUMBER, ATOM, node)

    def _affix(self, cls: Any, name: str, node: Any, args: list[_Typed]) -> _Typed:
        for t in args:
            self.need(t, (STRING,), f"{name}() needs strings")
        return _Typed(cls(this=args[0].node, expression=args[1].node), BOOLEAN, ATOM, node)

    def _fn_starts_with(self, node: Any, args: list[_Typed]) -> _Typed:
        return self._affix(self.exp.StartsWith, "starts_with", node, args)

    def _fn_ends_with(self, node: Any, args: list[_Typed]) -> _Typed:
        return self._affix(self.exp.EndsWith, "ends_with", node, args)

    def _fn_contains(self, node: Any, args: list[_Typed]) -> _Typed:
        exp = self.exp
        haystack, needle = args
        self.need(haystack, (STRING, LIST), "contains() needs a string or a list first")
        if haystack.type == LIST:
            self.need(needle, (NUMBER, STRING, BOOLEAN, DATE, TIMESTAMP),
                      "contains(list, value) needs a single value to look for")  # fmt: skip
            out = exp.ArrayContains(this=haystack.node, expression=needle.node)
            return _Typed(out, BOOLEAN, ATOM, node)
        self.need(needle, (STRING,), "contains(text, part) needs a string to look for")
        # STRPOS (LOCATE in Spark) exists everywhere; CONTAINS on strings does not.
        position = exp.StrPosition(this=haystack.node, substr=needle.node)
        return _Typed(exp.GT(this=position, expression=exp.Literal.number(0)), BOOLEAN, CMP, node)

    def _date_arg(self, name: str, t: _Typed) -> _Typed:
        if self.is_string_literal(t):
            return self.as_date(t, DATE)
        self.need(t, (DATE, TIMESTAMP), f"{name}() needs a date")
        return t

    def _fn_year(self, node: Any, args: list[_Typed]) -> _Typed:
        value = self._date_arg("year", args[0])
        return _Typed(self.exp.Year(this=value.node), NUMBER, ATOM, node)

    def _fn_month(self, node: Any, args: list[_Typed]) -> _Typed:
        value = self._date_arg("month", args[0])
        return _Typed(self.exp.Month(this=value.node), NUMBER, ATOM, node)

    def _fn_days_since(self, node: Any, args: list[_Typed]) -> _Typed:
        exp = self.exp
        if self.as_of is None:
            raise self.err(node, "days_since() needs an as-of date, and none was given")
        value = self._date_arg("days_since", args[0])
        day = value.node
        if value.type == TIMESTAMP:
            day = exp.Cast(this=day, to=exp.DataType.build("date"))
        as_of = date(self.as_of.year, self.as_of.month, self.as_of.day)
        end = exp.Cast(this=exp.Literal.string(as_of.isoformat()), to=exp.DataType.build("date"))
        # No unit: DuckDB writes DATE_DIFF('DAY', d, as_of), Spark DATEDIFF(as_of, d).
        return _Typed(exp.DateDiff(this=end, expression=day), NUMBER, ATOM, node)

    def _fn_nullif(self, node: Any, args: list[_Typed]) -> _Typed:
        value, other = self.comparable(args[0], args[1], node, ordered=False)
        return _Typed(self.exp.Nullif(this=value.node, expression=other.node), value.type,
                      ATOM, node)  # fmt: skip

    def _fn_if(self, node: Any, args: list[_Typed]) -> _Typed:
        exp = self.exp
        condition, *values = args
        self.need(condition, (BOOLEAN,), "if() needs a true/false condition first")
        kind, values = self.unify(values, "if() results mix")
        out = exp.Case(ifs=[exp.If(this=condition.node, true=values[0].node)],
                       default=values[1].node)  # fmt: skip
        return _Typed(out, kind, ATOM, node)


def _same_family(a: str, b: str) -> bool:
    return a == b or {a, b} == {DATE, TIMESTAMP}


def _is_literal(node: Any) -> bool:
    kind = type(node).__name__
    if kind == "Neg":
        return type(node.this).__name__ == "Literal" and not node.this.is_string
    return kind in ("Literal", "Boolean", "Null")


def _arity_text(low: int, high: int | None) -> str:
    if high is None:
        return f"at least {low} arguments"
    if low == high:
        return f"{low} argument" + ("s" if low != 1 else "")
    return f"{low} or {high} arguments" if high == low + 1 else f"{low} to {high} arguments"


def _unknown_field_message(name: str, fields: Mapping[str, str], quoted: bool) -> str:
    known = sorted(fields)
    if not known:
        return f"unknown field '{name}' (no fields are available here)"
    shown = ", ".join(known[:20]) + (", ..." if len(known) > 20 else "")
    lowered = {k.lower(): k for k in known}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
    message = f"unknown field '{name}' (known: {shown}"
    if close:
        message += f"; did you mean '{lowered[close[0]]}'?"
    message += ")"
    if quoted:
        message += f"; write text in single quotes: '{name}'"
    return message
