"""SQL text helpers: identifiers and literals, built from values that code (not rule
files) chose or that the rule parser validated. One place, so every builder quotes
the same way (and the Spark translator sees one form)."""

from __future__ import annotations

import datetime as dt
import os
import unicodedata

# Text that means "no value" where an id, identifier or date is read (exports write them).
NULL_TOKENS = ("null", "none", "nan", "n/a", "na", "undefined", "nil", "-", "--")
NULL_TOKEN_BYTES = max(len(t) for t in NULL_TOKENS)


def trimmed(text: str) -> str:
    """`text` as DuckDB's trim() leaves it (the Python mirror of SQL that trims): without
    the spaces (Unicode Zs: ' ', NBSP, the ideographic space) at either end; a tab or a
    line break stays, as DuckDB keeps it."""
    start, end = 0, len(text)
    while start < end and unicodedata.category(text[start]) == "Zs":
        start += 1
    while end > start and unicodedata.category(text[end - 1]) == "Zs":
        end -= 1
    return text[start:end]


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def file_literal(path: str) -> str:
    """A file's path as a string literal for DuckDB's readers, which take `[`, `*` and `?`
    in it for a pattern (`leads[1].csv` read leads1.csv): each is its own class; and
    absolute, as they take a leading `~` for the home folder (a folder named `~`)."""
    exact = os.path.abspath(path).replace("[", "[[]").replace("*", "[*]").replace("?", "[?]")
    return literal(exact)


def opt_literal(value: str | None) -> str:
    """A string literal, or a typed NULL."""
    return "CAST(NULL AS VARCHAR)" if value is None else literal(value)


def date_literal(day: dt.date) -> str:
    return f"DATE '{day.isoformat()}'"


def ts_literal(moment: dt.datetime | dt.date) -> str:
    """A TIMESTAMP literal; a date means its midnight."""
    if isinstance(moment, dt.datetime):
        return f"TIMESTAMP '{moment.isoformat(sep=' ', timespec='microseconds')}'"
    return f"TIMESTAMP '{moment.isoformat()} 00:00:00'"


def meta_value_sql(key: str) -> str:
    """The value stored under `key` in the workspace's key/value table `meta`."""
    return f"SELECT value FROM meta WHERE key = {literal(key)}"


def set_meta_sql(key: str, value: str) -> list[str]:
    """Stores `value` under `key` in `meta` (DELETE + INSERT: both engines run it)."""
    return [f"DELETE FROM meta WHERE key = {literal(key)}",
            f"INSERT INTO meta (key, value) VALUES ({literal(key)}, {literal(value)})"]


def number(value: float) -> str:
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def absent_sql(key: str, table: str, column: str = "lead_key", among: str | None = None) -> str:
    """`key NOT IN (SELECT column FROM table)` for a non-NULL key and column, written as
    NOT EXISTS: beside an OR, Spark runs a NOT IN as a nested loop over both tables, a
    correlated NOT EXISTS as a hash join. `among`: a query of the few keys asked about;
    the big `table` is cut to those first, so Spark scans it once against that short list
    instead of shuffling all of it for the anti-join (a night's new event subjects against
    3.4M known ones: 6.4–8.2 s against 12–16 s)."""
    source = table if among is None else (
        f"(SELECT {column} FROM {table} WHERE {column} IN ({among}))")
    return f"NOT EXISTS (SELECT 1 FROM {source} _absent WHERE _absent.{column} = {key})"


def finite_sql(expr: str) -> str:
    """True when a number is finite: NaN and ±infinity (DuckDB computes them past the
    largest double, silently) pass every threshold. x - x = 0 is false for exactly those,
    on DuckDB and Spark alike; NULL stays NULL."""
    return f"({expr} - {expr} = 0)"


def finite_or_null_sql(expr: str) -> str:
    """A number, NULL where it is NaN or ±infinity (no value: one passes every threshold
    and turns sums and averages into NaN)."""
    return f"CASE WHEN {finite_sql(expr)} THEN {expr} END"


# A number as text: digits with an optional sign, decimal point and exponent. Each
# engine's own cast accepts more, and not the same more (DuckDB `1_000`, Spark's Java
# `1.5d` and `0x1p3`): the same file would load other values on each.
PLAIN_NUMBER_RE = "^[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?$"


def plain_number_sql(text: str) -> str:
    """A text as DOUBLE when it is a plain number (`PLAIN_NUMBER_RE`) between spaces (an
    attribute is stored as written: ` 12` is 12, as both engines' casts read it), else
    NULL."""
    trimmed = f"trim({text})"
    return (f"CASE WHEN regexp_matches({trimmed}, {literal(PLAIN_NUMBER_RE)}) "
            f"THEN TRY_CAST({trimmed} AS DOUBLE) END")


# A comma groups thousands (1,200.5) only between groups of three digits; any other comma
# (12,5 as a decimal comma, 1,2,3) makes no number rather than a wrong one.
GROUPED_NUMBER_RE = "^[+-]?[0-9]{1,3}(,[0-9]{3})+([.][0-9]*)?$"


def number_sql(text: str) -> str:
    """A text as DOUBLE when it is a plain number or one grouped by thousands
    (`GROUPED_NUMBER_RE`), between spaces, else NULL: an amount and a `number` attribute
    alike."""
    trimmed = f"trim({text})"
    return (f"CASE WHEN regexp_matches({trimmed}, {literal(GROUPED_NUMBER_RE)}) "
            f"THEN TRY_CAST(replace({trimmed}, ',', '') AS DOUBLE) "
            f"ELSE {plain_number_sql(text)} END")


NULL_TOKENS_SQL = ", ".join(literal(t) for t in NULL_TOKENS)


# Null tokens that are also names people bear (那 Na, 南 Nan, Nil): a name cell keeps them.
NAME_NULL_TOKENS = tuple(t for t in NULL_TOKENS if t not in ("na", "nan", "nil"))


def null_token_sql(expr: str, tokens: tuple[str, ...] = NULL_TOKENS) -> str:
    """True when a text value is a null token (`N/A`, `null`, `-`, …), in any case."""
    # The byte length first: lower() over every value of a 10M-row file costs seconds,
    # and no token is longer than NULL_TOKEN_BYTES.
    listed = NULL_TOKENS_SQL if tokens == NULL_TOKENS else ", ".join(map(literal, tokens))
    return (f"CASE WHEN strlen({expr}) <= {NULL_TOKEN_BYTES} "
            f"THEN lower({expr}) IN ({listed}) ELSE false END")
