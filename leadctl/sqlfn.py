"""SQL fragments whose meaning must not depend on the engine (DuckDB or Spark).

DuckDB rounds a DOUBLE by its exact binary value (3.925 is 3.92499… → 3.92);
Spark by its shortest decimal text (3.925 → 3.93). Sums of doubles also differ in
the last bit with summation order. Rounding through a DECIMAL removes both: the
value is first fixed at 9 decimals, then rounded half away from zero, the same
on both engines (and what a person reading "3.925" expects).

Values a DECIMAL cannot hold (infinity from x / 0, beyond 1e29) stay as they are:
rounding means nothing there, and the cast must not fail the run.
"""

ROUND_SCALE = 9


def round_scale(digits: int) -> int:
    return max(ROUND_SCALE, int(digits) + 1)


def round_sql(value: str, digits: int) -> str:
    exact = f"TRY_CAST({value} AS DECIMAL(38, {round_scale(digits)}))"
    return f"coalesce(CAST(round({exact}, {int(digits)}) AS DOUBLE), {value})"
