"""Reading a rule expression: tokens, parse tree, where each node is in the text.

`parse(text)` tokenizes and parses with sqlglot (DuckDB syntax) and rejects, at their
exact place, what an expression can never contain: `;`, comments, statements,
parameters, casts, lambdas, brackets, table references, functions outside `FUNCTIONS`
or with the wrong number of arguments. The typed compiler (`expr_compile`) then walks
`Parsed.tree`, using `Parsed.span`/`error` to point at the offending characters.

sqlglot is imported inside functions: importing this module stays cheap.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any


class ExprError(Exception):
    """A rejected expression: `message` for the author, `offset`/`length` in the text;
    `unknown` is the name when the problem is a field name the fields do not have."""

    def __init__(self, message: str, offset: int = 0, length: int = 0,
                 unknown: str | None = None):
        super().__init__(message)
        self.message = message
        self.offset = offset
        self.length = length
        self.unknown = unknown


# -- what may be written ----------------------------------------------------------------

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
ARITY: dict[str, tuple[int, int | None]] = {
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
CALL_CLASSES = {
    "Abs": "abs", "Ceil": "ceil", "Coalesce": "coalesce", "Contains": "contains",
    "EndsWith": "ends_with", "Floor": "floor", "Greatest": "greatest", "If": "if",
    "Least": "least", "Length": "length", "Lower": "lower", "Month": "month",
    "Nullif": "nullif", "Round": "round", "StartsWith": "starts_with", "Trim": "trim",
    "Upper": "upper", "Year": "year",
}  # fmt: skip
# min/max with one argument parse as aggregates; renamed before parsing so any count works.
RENAMED = {"min": "__leadctl_min", "max": "__leadctl_max"}
ANONYMOUS = {"days_since": "days_since", **{v: k for k, v in RENAMED.items()}}


# -- reading: tokens, parse tree, source positions --------------------------------------


@lru_cache(maxsize=512)
def parse(text: str) -> Parsed:
    return Parsed(text)


class Parsed:
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
        self.tokens = _unglued_numbers(_leading_dot_numbers(self.tokens))
        _check_tokens(text, self.tokens)
        self.by_start = {tok.start: i for i, tok in enumerate(self.tokens)}
        self.by_end = {tok.end: i for i, tok in enumerate(self.tokens)}
        for i, tok in enumerate(self.tokens):
            if tok.text.lower() in RENAMED and self._is(i + 1, "L_PAREN"):
                tok.text = RENAMED[tok.text.lower()]
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
        for child in child_nodes(node):
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
        return (kind in CALL_CLASSES or kind == "Anonymous") and node.arg_key != "ifs"

    def call_token(self, node: Any) -> int | None:
        """Index of the token holding the name of a function call."""
        start = node.meta.get("start") if node.meta else None
        if start is not None:
            return self.by_start.get(start)
        children = [self.span(c) for c in child_nodes(node)]
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


def child_nodes(node: Any) -> list[Any]:
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
    for child in child_nodes(node):
        yield from _source_order(child)


# -- checks on the tokens and error messages --------------------------------------------

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


# sqlglot reads `1e3+1` as one number (the sign after an exponent's digits, and what
# follows, glued on), and `1e3+1e2` as `1e3+1` then `e2`.
_GLUED_NUMBER = re.compile(r"((?:\d+\.?\d*|\.\d+)[eE]\d+)([+-])(\d*\.?\d*)")
_EXPONENT = re.compile(r"[eE]\d+")


def _leading_dot_numbers(tokens: list) -> list:
    """`.5` as one number token (sqlglot reads it as `.` then `5`), where a number may
    stand: not after a name or value (`p.5` stays a table reference)."""
    from sqlglot.tokens import Token, TokenType

    out: list = []
    for tok in tokens:
        dot = out[-1] if out else None
        if (tok.token_type.name == "NUMBER" and tok.text[:1].isdigit() and dot is not None
                and dot.token_type.name == "DOT" and dot.end + 1 == tok.start
                and (len(out) < 2 or out[-2].token_type.name not in _OPERAND_END)):
            out[-1] = Token(TokenType.NUMBER, "." + tok.text, tok.line, tok.col, dot.start,
                            tok.end)
            continue
        out.append(tok)
    return out


def _unglued_numbers(tokens: list) -> list:
    """`1e3+1` as three tokens, `1e3`, `+` and `1`, as `1e3 + 1` is."""
    from sqlglot.tokens import Token, TokenType

    out: list = []
    for tok in tokens:
        glued = tok.token_type.name == "NUMBER" and _GLUED_NUMBER.fullmatch(tok.text)
        if (tok.token_type.name == "VAR" and _EXPONENT.fullmatch(tok.text) and out
                and out[-1].token_type.name == "NUMBER" and out[-1].end + 1 == tok.start):
            last = out.pop()  # `1` `e2` of `1e3+1e2`: the number `1e2`
            out.append(Token(TokenType.NUMBER, last.text + tok.text, tok.line, tok.col,
                             last.start, tok.end))
            continue
        if not glued:
            out.append(tok)
            continue
        number, sign, rest = glued.groups()
        first_end = tok.start + len(number) - 1
        parts = [(TokenType.NUMBER, number, tok.start, first_end),
                 (TokenType.PLUS if sign == "+" else TokenType.DASH, sign, first_end + 1,
                  first_end + 1)]
        if rest:
            parts.append((TokenType.NUMBER, rest, first_end + 2, tok.end))
        # a token's col is the column of its last character
        out += [Token(kind, text, tok.line, tok.col - (tok.end - end), start, end)
                for kind, text, start, end in parts]
    return out


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
            if depth > 1 and count == 0:  # a first argument that opens with `(`
                count = 1
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
    low, high = ARITY[name]
    if name in ("min", "max") and count == 1:
        raise ExprError(
            f"{name}() with one argument is an aggregate, which is not allowed here; "
            f"use {name}(a, b, ...) to pick among values",
            *where,
        )
    if count < low or (high is not None and count > high):
        raise ExprError(f"{name}() takes {arity_text(low, high)}, got {count}", *where)


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


def arity_text(low: int, high: int | None) -> str:
    if high is None:
        return f"at least {low} arguments"
    if low == high:
        return f"{low} argument" + ("s" if low != 1 else "")
    return f"{low} or {high} arguments" if high == low + 1 else f"{low} to {high} arguments"

