"""SQL fragments whose meaning must not depend on the engine (DuckDB or Spark).

DuckDB rounds a DOUBLE by its exact binary value (3.925 is 3.92499… → 3.92);
Spark by its shortest decimal text (3.925 → 3.93). Sums of doubles also differ in
the last bit with summation order. Rounding through a DECIMAL removes both: the
value is first read at 15 significant digits (what a DOUBLE holds: any decimal of 15
significant digits comes back from it exactly), then rounded half away from zero, the
same on both engines (and what a person reading "3.925" expects).

Reading at 15 significant digits means a different DECIMAL scale for each power of ten
(0.4999999999 at 15 decimals, 8532953.155 at 8): a CASE splits the values by magnitude
(halving the range at each step, so a value meets about six comparisons) and casts each
at its own scale, never at one fixed count of decimals (fixed at 9, 0.4999999999 was
0.500000000 and rounded to 1). Up to 17 digits the DECIMAL is 18 digits wide (a 64-bit
integer on both engines: 3.5x faster than the 38-digit one over a score pass); only
values below 10^-2 or from 10^15 on (up to 10^18) need the 38-digit one. The cast inside
a band always fits; NULL, NaN and infinity (x / 0) compare false and land in the last
band, where they are kept.
"""

from __future__ import annotations

import re
from collections.abc import Callable

# A DOUBLE holds any decimal of 15 significant digits exactly.
SIGNIFICANT_DIGITS = 15
MAX_SCALE = 38  # the most decimals, and digits, a DECIMAL has
# The lowest band: below 10^-23, 15 significant digits would need more than 38 decimals.
LOWEST_POWER = SIGNIFICANT_DIGITS - MAX_SCALE


# Up to 10^18 the whole number of a DOUBLE is a 64-bit integer; from there DuckDB's 128-bit
# one came back as a DOUBLE a bit off (1.86185921449556e37 as 1.8618592144955603e37).
WHOLE_UNTIL = 18  # power of ten


def _scale(power: int) -> int:
    """Decimals that read a value below 10^power (from 10^(power-1)) at 15 significant
    digits; negative from 10^15 on (-1: tens)."""
    return min(MAX_SCALE, SIGNIFICANT_DIGITS - power)


def _fixed_sql(value: str, power: int) -> str:
    """`value`, below 10^power, as a DECIMAL at 15 significant digits (18 digits wide
    where that holds it, with room for rounding up to the next power). From 10^15 on, the
    whole number (exact from the DOUBLE on DuckDB, from its text on Spark) rounded to 15
    digits: the text of a large DOUBLE is not the same on both engines (Java 17 writes
    6.6527544136264205E17 where DuckDB writes 6.65275441362642e+17)."""
    scale = _scale(power)
    if scale < 0:
        return f"round(TRY_CAST({value} AS DECIMAL({MAX_SCALE}, 0)), {scale})"
    width = 18 if scale <= 17 else MAX_SCALE
    return f"TRY_CAST({value} AS DECIMAL({width}, {scale}))"


def _by_magnitude(value: str, bands: list[tuple[int | None, str]]) -> str:
    """One SQL expression of `bands`, (power, sql) from the smallest: `sql` where
    abs(value) < 10^power (and no earlier band holds); the last band's power is None, the
    rest (also NULL and NaN). Neighbours with the same `sql` are one band; the CASE
    halves the bands at each step."""
    merged: list[tuple[int | None, str]] = []
    for power, sql in bands:
        if merged and merged[-1][1] == sql:
            merged[-1] = (power, sql)
        else:
            merged.append((power, sql))

    def split(items: list[tuple[int | None, str]]) -> str:
        if len(items) == 1:
            return items[0][1]
        half = len(items) // 2
        return (f"CASE WHEN abs({value}) < 1e{items[half - 1][0]} THEN {split(items[:half])} "
                f"ELSE {split(items[half:])} END")

    return split(merged)


# A value written as a name or a number is read in place; anything else is computed once
# and read under ROUNDED (`bound_sql`): the rounding reads its value some 40 times, so
# round(round(round(x, 1), 1), 1) in a rule would be tens of thousands of copies of x
# (39,304 copies once took 36 s and 1.1 GB to plan one `find`).
_PLAIN_VALUE = re.compile(r'[\w."]+')
ROUNDED = "rounded__"


def bound_sql(value: str, name: str, body: str) -> str:
    """`body`, an expression reading `name`, of `value` computed once: a lambda over a
    one-item list (Spark's transform(array(…))[0], as sqlglot translates it)."""
    return f"list_transform([{value}], lambda {name}: {body})[1]"


# A computation that leaves the decimal numbers (`score * 1e300 * 1e300`): both engines go
# on with infinity or NaN, which pass every threshold (and `least(…, 20)` makes 20 of it).
# `finite_guard` stops the query with this message instead (the text of the engine's
# error, then of the command's: `find` exit 2, a stage's RuleComputationFailed).
# The comment the rule compiler writes into a whole-number `+`, `-` or `*` (`a * /* overflow
# checked */ b`): DuckDB stops the query when it leaves its type (`Overflow in
# multiplication of INT64 (2 * 4611686018427387904)!`), Spark would wrap it around; the
# Spark translation checks such an operation and raises DuckDB's message. A comment, not a
# function (multiply(a, b)): DuckDB reads the same operator, so its plan is unchanged (its
# optimiser decides `w * 9223372036854775807 > 0` as `w > 0`, not so multiply()).
OVERFLOW_CHECKED = "overflow checked"

NOT_FINITE = "a number past the largest (about 1.8e308), or NaN from it"
DECIMAL_RANGE = "decimal numbers must stay from about -1.8e308 to 1.8e308"


def finite_guard(sql: str, what: str = "") -> str:
    """`sql` (a number), computed once, and an error saying NOT_FINITE (then `, in <what>`:
    the rule it is in) when it is NaN or infinite; NULL stays NULL. The list holds the
    value so that it is not computed twice (a CASE would, and nested ones twice per
    level). `v - v = 0` is false for exactly NaN and ±infinity on both engines; `error`
    is Spark's `raise_error`."""
    message = NOT_FINITE + (f", in {what}" if what else "")
    quoted = "'" + message.replace("'", "''") + "'"
    return bound_sql(sql, "v", f"CASE WHEN (v - v = 0) IS false THEN error({quoted}) "
                               "ELSE v END")


def rule_guard(what: str) -> Callable[[str], str]:
    """compile_expr's finite_guard for a rule's expression: its error names `what`
    (`score rule 'big' when`)."""
    return lambda sql: finite_guard(sql, what)


def round_sql(value: str, digits: int) -> str:
    """`value` rounded to `digits` (negative: tens, hundreds …), the same on both engines."""
    in_place = _round_in_place_sql(value, digits)
    if in_place != value and not _PLAIN_VALUE.fullmatch(value.strip()):
        return bound_sql(value, ROUNDED, _round_in_place_sql(ROUNDED, digits))
    return in_place


def _round_in_place_sql(value: str, digits: int) -> str:
    digits = int(digits)
    bands: list[tuple[int | None, str]] = []
    for power in range(LOWEST_POWER, WHOLE_UNTIL + 1):
        scale = _scale(power)
        if power < -digits:  # below 10^-(digits+1): less than half the last digit
            bands.append((power, "CAST(0 AS DOUBLE)"))
        elif scale < digits:  # rounding past the 15th significant digit keeps the value
            bands.append((power, value))
        elif scale == digits:
            bands.append((power, f"CAST({_fixed_sql(value, power)} AS DOUBLE)"))
        else:
            bands.append((power, f"CAST(round({_fixed_sql(value, power)}, {digits}) AS DOUBLE)"))
    # From 10^18 (a 15th significant digit of 10^4 or more): kept, or to 10^4 and more a
    # whole number rounded as a DOUBLE.
    kept = digits > _scale(WHOLE_UNTIL + 1)
    bands.append((None, value if kept else f"round({value}, {digits})"))
    return _by_magnitude(value, bands)


# A sum of money is kept as an exact DECIMAL of millionths: sums of DOUBLEs differ in
# their last bits with the order of the additions, so a nightly fold (old + new - gone)
# and a full pass over the same events could round to different millionths once a
# person's total nears 10^9.
EXACT_SUM = "DECIMAL(38, 6)"
# From ±10^18 on a value is no amount, so no sum of fewer than 10^14 of them leaves
# DECIMAL(38, 6).
EXACT_SUM_UNTIL = WHOLE_UNTIL


def exact_millionths_sql(value: str) -> str:
    """`value` at 6 decimals, half away from zero, as an exact DECIMAL(38, 6), the same
    on both engines: read at 15 significant digits, as `round_sql` reads it (through
    DECIMAL(27, 9) 9.99e17 came out as 998999999999999934.38); NULL from ±10^18 on (no
    amount), which a sum, and the count behind an average, then skip."""
    bands: list[tuple[int | None, str]] = []
    # The lowest band holds all below 10^-6, at 21 decimals (below 10^-7 all is 0).
    for power in range(-6, EXACT_SUM_UNTIL + 1):
        fixed = _fixed_sql(value, power)
        rounded = f"round({fixed}, 6)" if _scale(power) > 6 else fixed
        bands.append((power, f"CAST({rounded} AS {EXACT_SUM})"))
    bands.append((None, f"CAST(NULL AS {EXACT_SUM})"))
    return _by_magnitude(value, bands)


# avg(x) adds the values first: 1e308 and 1.5e308 summed to infinity (a JSON null, `inf`
# on a screen) though both are finite. Each value is scaled by 2^-32 first: exact for
# every DOUBLE from about 1e-289 on, and a sum scales with it bit for bit, so the result
# is avg(x)'s wherever that is finite, for up to 2^32 rows of any finite size.
_AVG_SCALE = 2 ** 32


def avg_sql(value: str) -> str:
    """The average of `value`, finite wherever the values are (`avg` overflows in its sum)."""
    return f"(avg({value} / {_AVG_SCALE}) * {_AVG_SCALE})"
