"""Checking the types of a parsed rule expression and building its SQL tree.

`Compiler(parsed, fields, as_of, column_sql).visit(parsed.tree)` checks every node
against the whitelist and the known fields' types, and returns a `_Typed`: a NEW sqlglot
tree built only from whitelisted constructs (field names from the caller's `fields`,
validated numbers, strings escaped by sqlglot's generator), its type and its
precedence. Nothing from the rule text is pasted into SQL.

sqlglot is imported inside functions: importing this module stays cheap.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from leadctl.limits import BIGINT_MAX, BIGINT_MIN
from leadctl.rules.expr_parse import (
    ANONYMOUS,
    ARITY,
    CALL_CLASSES,
    RENAMED,
    ExprError,
    Parsed,
    arity_text,
    child_nodes,
)
from leadctl.rules.hints import did_you_mean
from leadctl.sqlfn import OVERFLOW_CHECKED, round_sql

NUMBER, STRING, BOOLEAN, DATE, TIMESTAMP, LIST, NULL = (
    "number", "string", "boolean", "date", "timestamp", "list", "null",
)  # fmt: skip
FIELD_TYPES = frozenset({NUMBER, STRING, BOOLEAN, DATE, TIMESTAMP, LIST})
ELEMENT_TYPES = (NUMBER, STRING, BOOLEAN, DATE, TIMESTAMP)  # what a list can hold


class ListType(str):
    """The field type 'list' that also knows the type of its values (`list_of`). It IS
    the string 'list': equal to it, hashed, stored, compared and printed as 'list', so
    code that only needs to know "a list" is unchanged, and a plain 'list' field (values
    of unknown type) still works. `contains(list, value)` and values that mix lists
    (coalesce, if, case) check `element`."""

    element: str

    def __new__(cls, element: str) -> ListType:
        if element not in ELEMENT_TYPES:
            raise ValueError(f"unknown list element type: {element!r}")
        self = super().__new__(cls, LIST)
        self.element = element
        return self

    def __reduce__(self) -> tuple:
        return (ListType, (self.element,))


def list_of(element: str) -> str:
    """The type of a list of `element` values ('number', 'string', ...)."""
    return ListType(element)


def element_of(kind: str) -> str | None:
    """The type of the values of a list type made by `list_of`; None for any other type
    (a plain 'list' included)."""
    return getattr(kind, "element", None)


def type_name(kind: str) -> str:
    """A type as messages name it: 'number', 'list', 'list of string'."""
    element = element_of(kind)
    return f"list of {element}" if element else kind


_NUMBER_RE = re.compile(r"(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_WHOLE_RE = re.compile(r"[0-9]+")
ROUND_DIGITS_MAX = 38  # a DECIMAL's digits: past them a place means nothing
_ROUNDED = "rounded_argument__"  # round_sql's argument, replaced by the compiled one
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIMESTAMP_RE = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?")
_SQL_NAME_PART = r'(?:[A-Za-z_]\w*|"(?:[^"]|"")*"|`(?:[^`]|``)*`)'
_SIMPLE_SQL_NAME = re.compile(rf"{_SQL_NAME_PART}(?:\.{_SQL_NAME_PART})*")

# Output precedence levels: an operand is parenthesised when its level is too low.
ATOM, NEG, MUL, ADD, CMP, NOT, AND, OR = 100, 90, 80, 70, 50, 40, 30, 20

_NO_LITERAL = object()


@dataclass(frozen=True)
class _Typed:
    node: Any  # the OUTPUT sqlglot node (built here, never taken from the parsed text)
    type: str
    level: int  # precedence of node, for parenthesising
    src: Any  # the parsed node it came from (for positions in errors)
    literal: Any = _NO_LITERAL  # Python value when the source is a literal
    whole: bool = False  # a whole number: computations on it overflow, never to infinity
    bare: Any = None  # a guarded computation: the node without its finite_guard
    decimal: bool = False  # a DECIMAL number (1.5, w * 1.5): floor() keeps its type


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


# Functions that are one sqlglot node over checked arguments, by family: the name in
# rules → the sqlglot expression class.
_NUMBER_FNS = {"abs": "Abs", "floor": "Floor", "ceil": "Ceil"}  # one number → number
_PICK_FNS = {"least": "Least", "greatest": "Greatest", "min": "Least", "max": "Greatest"}
_TEXT_FNS = {"lower": "Lower", "upper": "Upper", "trim": "Trim"}  # one string → string


class Compiler:
    def __init__(
        self,
        parsed: Parsed,
        fields: Mapping[str, str],
        as_of: date | None,
        column_sql: Callable[[str], str] | None,
        *,
        dialect: str = "duckdb",
        guard: tuple[Callable[[str], str] | None, frozenset[str]] = (None, frozenset()),
    ):
        from sqlglot import exp

        self.exp = exp
        self.parsed = parsed
        self.fields = fields
        self.as_of = as_of
        self.column_sql = column_sql
        self.dialect = dialect
        # compile_expr's finite_guard (None: no guard) and whole_fields
        self.finite_guard, self.whole_fields = guard
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
            return f"{type_name(t.type)} '{src.name}'"
        return f"{type_name(t.type)} {self.parsed.snippet(src)}"

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
        if kind == LIST:  # lists of values of different types cannot stand in for each other
            known = [t for t in typed if element_of(t.type)]
            for t in known[1:]:
                if not _same_family(element_of(known[0].type), element_of(t.type)):
                    raise self.err(t.src, f"{what} {self.what(known[0])} and {self.what(t)}")
            kind = known[0].type if known else kind
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
            error = self.err(node, _unknown_field_message(name, self.fields, ident.quoted))
            error.unknown = name
            raise error
        self.names.add(name)
        if self.column_sql is None:
            out = exp.Column(this=exp.Identifier(this=name, quoted=True))
        else:
            raw = self.column_sql(name)
            out = exp.Var(this=raw)
            if not _SIMPLE_SQL_NAME.fullmatch(raw):
                out = exp.Paren(this=out)
        whole = self.fields[name] == NUMBER and name in self.whole_fields
        return _Typed(out, self.fields[name], ATOM, node, whole=whole)

    def _v_Literal(self, node: Any, negated: Any = None) -> _Typed:
        """A literal; `negated` is the `-` node written before a number (-9223372036854775808
        fits a BIGINT, 9223372036854775808 does not)."""
        exp = self.exp
        if node.is_string:
            return _Typed(exp.Literal.string(node.this), STRING, ATOM, node, node.this)
        if not _NUMBER_RE.fullmatch(node.this):
            raise self.err(node, f"invalid number {self.parsed.snippet(node)}")
        if _WHOLE_RE.fullmatch(node.this):
            value = -int(node.this) if negated is not None else int(node.this)
            if not BIGINT_MIN <= value <= BIGINT_MAX:
                at = negated if negated is not None else node
                raise self.err(at, f"whole number {self.parsed.snippet(at)} is out of range "
                               f"(whole numbers go from {BIGINT_MIN} to {BIGINT_MAX})")
        elif not math.isfinite(float(node.this)):  # 1e999 would be infinity in a DOUBLE
            raise self.err(node, f"number {self.parsed.snippet(node)} is out of range (a "
                           "decimal number must be finite, at most about 1.8e308)")
        number = "0" + node.this if node.this.startswith(".") else node.this  # .5: 0.5
        whole = _WHOLE_RE.fullmatch(node.this) is not None
        return _Typed(exp.Literal.number(number), NUMBER, ATOM, node, node.this,
                      whole=whole, decimal=not whole)

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
        number = type(node.this).__name__ == "Literal" and not node.this.is_string
        inner = self._v_Literal(node.this, negated=node) if number else self.visit(node.this)
        self.need(inner, (NUMBER,), "'-' needs a number")
        literal = f"-{inner.literal}" if inner.literal is not _NO_LITERAL else _NO_LITERAL
        out = self.exp.Neg(this=self.wrap(inner, ATOM))
        if not number and not inner.decimal:  # -(-2^63): as `+ - *` below
            out.add_comments([OVERFLOW_CHECKED])
        return _Typed(out, NUMBER, NEG, node, literal, whole=inner.whole, decimal=inner.decimal)

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
        divisor = self.wrap(right, level + 1)
        if symbol in ("/", "%"):
            # x / 0 and x % 0 are empty (NULL), as on Spark: DuckDB's NaN or infinity would
            # pass every `>=` and count as the highest score, its % by zero stop the stage
            divisor = self.exp.Nullif(this=right.node, expression=self.exp.Literal.number(0))
        dividend = self.wrap(left, level)
        if symbol in ("+", "-", "*") and left.whole and right.whole:
            # Whole numbers are 64-bit: a literal or an INTEGER field (lead_count) is an
            # INT32 to the engines, and `lead_count * 2147483647` overflowed at 2^31
            dividend, divisor = (self._wide(t, wrapped) for t, wrapped in (
                (left, dividend), (right, divisor)))
        if symbol == "/":
            # A quotient is a DOUBLE, as DuckDB's `/` gives it for any numbers; Spark's
            # divides a DECIMAL (1.0, 1.5) to a DECIMAL of a few digits (1.0 / 3 is
            # 0.333333333333 there, and `1.0 / 3 * 3 = 1` false).
            dividend = self.exp.Cast(this=left.node, to=self.exp.DataType.build("double"))
        out = type(node)(this=dividend, expression=divisor)
        if symbol in ("+", "-", "*") and not (left.decimal or right.decimal):
            # Whole numbers (a field's type may be unknown here) overflow with an error,
            # also on Spark: its translation checks what this marks (a DOUBLE: no change)
            out.add_comments([OVERFLOW_CHECKED])
        if left.whole and right.whole:  # overflows with an error; a quotient is finite
            return _Typed(out, NUMBER, level, node, whole=symbol != "/")
        decimal = symbol != "/" and _decimal([left, right])
        if self.finite_guard is None:
            return _Typed(out, NUMBER, level, node, decimal=decimal)
        guarded = self.exp.Var(this=self.finite_guard(out.sql(dialect=self.dialect)))
        return _Typed(guarded, NUMBER, ATOM, node, decimal=decimal,
                      bare=_Typed(out, NUMBER, level, node, decimal=decimal))

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
        return _Typed(out, kind, ATOM, node, decimal=_decimal(values), whole=_whole(values))

    # -- function calls
    def _call(self, node: Any) -> _Typed:
        kind = type(node).__name__
        if kind == "Anonymous":
            name = ANONYMOUS.get(node.name.lower())
            args = list(node.expressions)
        else:
            name = CALL_CLASSES.get(kind)
            args = child_nodes(node)
        written = self.parsed.call_name(node)
        if name is None or written is None or RENAMED.get(name, name) != written:
            raise self._not_allowed(node)
        low, high = ARITY[name]
        if name in ("min", "max") and len(args) == 1:
            raise self.err(node, f"{name}() with one argument is an aggregate, which is not "
                           f"allowed here; use {name}(a, b, ...) to pick among values")  # fmt: skip
        if len(args) < low or (high is not None and len(args) > high):
            raise self.err(node, f"{name}() takes {arity_text(low, high)}, got {len(args)}")
        typed = [self.visit(arg) for arg in args]
        for family, handle in ((_NUMBER_FNS, self._number_fn), (_PICK_FNS, self._pick),
                               (_TEXT_FNS, self._text_fn)):
            if name in family:
                return handle(getattr(self.exp, family[name]), name, node, typed)
        return getattr(self, f"_fn_{name}")(node, typed)

    _v_Anonymous = _v_Abs = _v_Ceil = _v_Coalesce = _v_Contains = _v_EndsWith = _call
    _v_Floor = _v_Greatest = _v_If = _v_Least = _v_Length = _v_Lower = _v_Month = _call
    _v_Nullif = _v_Round = _v_StartsWith = _v_Trim = _v_Upper = _v_Year = _call

    def _number_fn(self, cls: Any, name: str, node: Any, args: list[_Typed]) -> _Typed:
        arg = args[0]
        self.need(arg, (NUMBER,), f"{name}() needs a number")
        if name == "abs" or arg.decimal:  # floor(1.5): a DECIMAL on both engines
            if name == "abs" and not arg.decimal:  # abs(-2^63): as `+ - *`, on its operand
                arg.node.add_comments([OVERFLOW_CHECKED])  # (a mark after `)` is the alias's)
            return _Typed(cls(this=arg.node), NUMBER, ATOM, node, whole=arg.whole,
                          decimal=arg.decimal)
        # DuckDB's floor()/ceil() of a DOUBLE (or a whole number) is a DOUBLE, Spark's a
        # BIGINT (held at 2^63 - 1): the cast tells the Spark engine to keep the DOUBLE.
        double = self.exp.Cast(this=arg.node, to=self.exp.DataType.build("double"))
        return _Typed(cls(this=double), NUMBER, ATOM, node)

    def _fn_round(self, node: Any, args: list[_Typed]) -> _Typed:
        self.need(args[0], (NUMBER,), "round() needs a number")
        digits = None
        if len(args) == 2:
            if not re.fullmatch(r"-?\d+", str(args[1].literal)):
                raise self.err(args[1].src, "round() digits must be a whole number like 2")
            places = int(str(args[1].literal))
            if not -ROUND_DIGITS_MAX <= places <= ROUND_DIGITS_MAX:
                raise self.err(args[1].src, f"round() digits must be between "
                               f"-{ROUND_DIGITS_MAX} and {ROUND_DIGITS_MAX}")
            # Through DECIMALs: the same result on DuckDB and Spark (leadctl.sqlfn.round_sql,
            # whose SQL is read here with the argument in its place).
            import sqlglot

            # A computed argument is computed once (round_sql binds what is not a name).
            plain = isinstance(args[0].node, (self.exp.Column, self.exp.Literal))
            rounded = sqlglot.parse_one(round_sql(_ROUNDED if plain else f"({_ROUNDED})",
                                                  places), read="duckdb")
            rounded = rounded.transform(
                lambda n: args[0].node.copy()
                if isinstance(n, self.exp.Column) and n.name == _ROUNDED else n)
            return _Typed(self.exp.Paren(this=rounded), NUMBER, ATOM, node)
        return _Typed(self.exp.Round(this=args[0].node, decimals=digits), NUMBER, ATOM, node,
                      decimal=args[0].decimal)

    def _pick(self, cls: Any, name: str, node: Any, args: list[_Typed]) -> _Typed:
        for t in args:
            self.need(t, (NUMBER, STRING, DATE, TIMESTAMP, NULL),
                      f"{name}() needs numbers, strings or dates")  # fmt: skip
        kind, args = self.unify(args, f"{name}() arguments mix")
        out = cls(this=args[0].node, expressions=[t.node for t in args[1:]], ignore_nulls=True)
        return _Typed(out, kind, ATOM, node, decimal=_decimal(args), whole=_whole(args))

    def _fn_coalesce(self, node: Any, args: list[_Typed]) -> _Typed:
        kind, args = self.unify(args, "coalesce() arguments mix")
        out = self.exp.Coalesce(this=args[0].node, expressions=[t.node for t in args[1:]])
        return _Typed(out, kind, ATOM, node, decimal=_decimal(args), whole=_whole(args))

    def _text_fn(self, cls: Any, name: str, node: Any, args: list[_Typed]) -> _Typed:
        self.need(args[0], (STRING,), f"{name}() needs a string")
        return _Typed(cls(this=args[0].node), STRING, ATOM, node)

    def _fn_length(self, node: Any, args: list[_Typed]) -> _Typed:
        self.need(args[0], (STRING, LIST), "length() needs a string or a list")
        cls = self.exp.ArraySize if args[0].type == LIST else self.exp.Length
        return self._bigint(cls(this=args[0].node), node)

    def _wide(self, t: _Typed, wrapped: Any) -> Any:
        """A whole operand of `+ - *` (`wrapped`: as written into the operation) as a
        BIGINT (one already is: as it is)."""
        if isinstance(t.node, self.exp.Cast) and t.node.to.is_type("bigint"):
            return wrapped
        return self.exp.Cast(this=t.node, to=self.exp.DataType.build("bigint"))

    def _bigint(self, out: Any, node: Any) -> _Typed:
        """A whole number a function gives: a BIGINT on DuckDB, an INT on Spark, where
        `year(d) * 1000000000` would overflow (checked: exit 2) at 2^31. The cast makes
        it a BIGINT on both (on DuckDB it changes nothing)."""
        out = self.exp.Cast(this=out, to=self.exp.DataType.build("bigint"))
        return _Typed(out, NUMBER, ATOM, node, whole=True)

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
            self.need(needle, ELEMENT_TYPES,
                      "contains(list, value) needs a single value to look for")  # fmt: skip
            element = element_of(haystack.type)  # None: the caller did not say (not checked)
            if element in (DATE, TIMESTAMP) and self.is_string_literal(needle):
                needle = self.as_date(needle, element)
            if element is not None and not _same_family(element, needle.type):
                raise self.err(needle.src, f"contains() cannot look for {self.what(needle)} "
                               f"in {self.what(haystack)}")
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
        return self._bigint(self.exp.Year(this=value.node), node)

    def _fn_month(self, node: Any, args: list[_Typed]) -> _Typed:
        value = self._date_arg("month", args[0])
        return self._bigint(self.exp.Month(this=value.node), node)

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
        return self._bigint(exp.DateDiff(this=end, expression=day), node)

    def _fn_nullif(self, node: Any, args: list[_Typed]) -> _Typed:
        value, other = self.comparable(args[0], args[1], node, ordered=False)
        return _Typed(self.exp.Nullif(this=value.node, expression=other.node), value.type,
                      ATOM, node, decimal=value.decimal, whole=value.whole)  # fmt: skip

    def _fn_if(self, node: Any, args: list[_Typed]) -> _Typed:
        exp = self.exp
        condition, *values = args
        self.need(condition, (BOOLEAN,), "if() needs a true/false condition first")
        kind, values = self.unify(values, "if() results mix")
        out = exp.Case(ifs=[exp.If(this=condition.node, true=values[0].node)],
                       default=values[1].node)  # fmt: skip
        return _Typed(out, kind, ATOM, node, decimal=_decimal(values), whole=_whole(values))


def _decimal(items: list[_Typed]) -> bool:
    """Whether numbers that stand in for each other (or are added, multiplied) are a
    DECIMAL on DuckDB: a decimal literal among whole numbers; one DOUBLE makes a DOUBLE."""
    numbers = [t for t in items if t.type == NUMBER]
    return any(t.decimal for t in numbers) and all(t.decimal or t.whole for t in numbers)


def _whole(items: list[_Typed]) -> bool:
    """Whether numbers that stand in for each other (case, if, coalesce, least...) are
    whole numbers: all of them (a null aside)."""
    numbers = [t for t in items if t.type == NUMBER]
    return bool(numbers) and all(t.whole for t in numbers)


def _same_family(a: str, b: str) -> bool:
    return a == b or {a, b} == {DATE, TIMESTAMP}


def _is_literal(node: Any) -> bool:
    kind = type(node).__name__
    if kind == "Neg":
        return type(node.this).__name__ == "Literal" and not node.this.is_string
    return kind in ("Literal", "Boolean", "Null")



def _unknown_field_message(name: str, fields: Mapping[str, str], quoted: bool) -> str:
    known = sorted(fields)
    if not known:
        return f"unknown field '{name}' (no fields are available here)"
    shown = ", ".join(known[:20]) + (", ..." if len(known) > 20 else "")
    message = f"unknown field '{name}'{did_you_mean(name, known)} (known: {shown})"
    if quoted:
        message += f"; write text in single quotes: '{name}'"
    return message
