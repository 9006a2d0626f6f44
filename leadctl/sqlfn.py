"""SQL fragments whose meaning must not depend on the engine (DuckDB or Spark).

DuckDB rounds a DOUBLE by its exact binary value (3.925 is 3.92499… → 3.92);
Spark by its shortest decimal text (3.925 → 3.93). Sums of doubles also differ in
the last bit with summation order. Rounding through a DECIMAL removes both: the
value is first fixed at 9 decimals (from 10^6 on, at 15 significant digits: see
`round_sql`), then rounded half away from zero, the same on both engines (and what a
person reading "3.925" expects).

The value goes through an 18-digit DECIMAL first (a 64-bit integer on both engines:
3.5x faster than the 38-digit one over a score pass), and only what that cannot hold
(beyond 1e9 at 9 decimals) through the 38-digit one; both fix the same 9 decimals, so
the result is the 38-digit one's. Values a DECIMAL cannot hold at all (infinity from
x / 0, beyond 1e29) stay as they are: rounding means nothing there, and the cast must
not fail the run. `coalesce` evaluates a later argument only where the earlier ones
are NULL, on both engines.
"""

from __future__ import annotations

import re

ROUND_SCALE = 9
# Narrow first, wide for the rest (a DECIMAL's scale cannot exceed its width).
ROUND_WIDTHS = (18, 38)


def round_scale(digits: int) -> int:
    return max(ROUND_SCALE, int(digits) + 1)


def round_widths(digits: int) -> tuple[int, ...]:
    """The DECIMAL widths a value is tried at, in order, to round it to `digits`; none
    past 37 digits, where a DOUBLE (17 significant digits) is kept as it is."""
    return tuple(w for w in ROUND_WIDTHS if w >= round_scale(digits))


def _rounded_tries(value: str, digits: int, widths: tuple[int, ...], as_type: str) -> list[str]:
    """`value` fixed at `round_scale(digits)` decimals in each DECIMAL width, narrow first,
    rounded to `digits` there and cast to `as_type`: NULL where a width cannot hold it."""
    scale = round_scale(digits)
    return [f"CAST(round(TRY_CAST({value} AS DECIMAL({width}, {scale})), {int(digits)}) "
            f"AS {as_type})" for width in widths]


# Fixed at 9 decimals, a value from 10^6 on can land on the wrong side of a half: the
# DOUBLE 8532953.155 is 8532953.154999999329…, fixed as …154999999, then rounded down.
# A DOUBLE holds any decimal of 15 significant digits exactly, so from 10^6 to 10^15 a
# value is fixed at 15 significant digits instead (8 decimals below 10^7 … 0 below
# 10^15); beyond that a DOUBLE has no decimals to speak of.
SIGNIFICANT_DIGITS = 15
FIXED_FROM, FIXED_UNTIL = 6, 15  # powers of ten


# A value written as a name or a number is read in place; anything else is computed once
# and read under ROUNDED (`bound_sql`): the rounding reads its value 34 times, so
# round(round(round(x, 1), 1), 1) in a rule was 39,304 copies of x (36 s and 1.1 GB to
# plan one `find`).
_PLAIN_VALUE = re.compile(r'[\w."]+')
ROUNDED = "rounded__"


def bound_sql(value: str, name: str, body: str) -> str:
    """`body`, an expression reading `name`, of `value` computed once: a lambda over a
    one-item list (Spark's transform(array(…))[0], as sqlglot translates it)."""
    return f"list_transform([{value}], lambda {name}: {body})[1]"


def round_sql(value: str, digits: int) -> str:
    """`value` rounded to `digits` (negative: tens, hundreds …), the same on both engines."""
    if round_widths(digits) and not _PLAIN_VALUE.fullmatch(value.strip()):
        return bound_sql(value, ROUNDED, _round_in_place_sql(ROUNDED, digits))
    return _round_in_place_sql(value, digits)


def _round_in_place_sql(value: str, digits: int) -> str:
    tries = _rounded_tries(value, digits, round_widths(digits), "DOUBLE")
    if not tries:  # more digits than a DECIMAL holds: nothing to round
        return value
    small = f"coalesce({', '.join(tries)}, {value})"
    bands = " ".join(
        f"WHEN abs({value}) < 1e{power} THEN coalesce(CAST(round(TRY_CAST({value} AS "
        f"DECIMAL(18, {SIGNIFICANT_DIGITS - power})), {int(digits)}) AS DOUBLE), {value})"
        for power in range(FIXED_FROM + 1, FIXED_UNTIL + 1))
    # From 10^15 a DOUBLE has no decimal worth rounding to: it is kept (through a DECIMAL,
    # 10^20 came back as 9.999999999999998e19); to tens, hundreds, … it is a whole number
    # rounded as a DOUBLE, half away from zero on both engines.
    large = value if digits >= 0 else f"round({value}, {int(digits)})"
    return (f"CASE WHEN abs({value}) < 1e{FIXED_FROM} OR {value} IS NULL THEN {small} "
            f"WHEN abs({value}) >= 1e{FIXED_UNTIL} THEN {large} {bands} END")


# A sum of money is kept as an exact DECIMAL of millionths: sums of DOUBLEs differ in
# their last bits with the order of the additions, so a nightly fold (old + new - gone)
# and a full pass over the same events could round to different millionths once a
# person's total nears 10^9.
EXACT_SUM = "DECIMAL(38, 6)"


# Widths a summed value is fixed at (9 decimals): the narrow one first. Beyond 10^18 a
# value is no amount, so no sum of fewer than 10^14 of them leaves DECIMAL(38, 6).
EXACT_SUM_WIDTHS = (18, 27)


def exact_millionths_sql(value: str) -> str:
    """`value` at 6 decimals, half away from zero, as an exact DECIMAL(38, 6), the same
    on both engines (fixed at 9 decimals first, as `round_sql` does); NULL from ±10^18
    on (no amount), which a sum, and the count behind an average, then skip."""
    return f"coalesce({', '.join(_rounded_tries(value, 6, EXACT_SUM_WIDTHS, EXACT_SUM))})"
