"""SQL fragments whose meaning must not depend on the engine (DuckDB or Spark).

DuckDB rounds a DOUBLE by its exact binary value (3.925 is 3.92499… → 3.92);
Spark by its shortest decimal text (3.925 → 3.93). Sums of doubles also differ in
the last bit with summation order. Rounding through a DECIMAL removes both: the
value is first fixed at 9 decimals, then rounded half away from zero, the same
on both engines (and what a person reading "3.925" expects).
"""

ROUND_SCALE = 9


def round_sql(value: str, digits: int) -> str:
    return (f"CAST(round(CAST({value} AS DECIMAL(38, {ROUND_SCALE})), {int(digits)}) "
            f"AS DOUBLE)")
