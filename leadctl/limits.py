"""The bounds every command and rule file computes within (no imports: the portrait's fast
path reads them too). Dates from FIRST_DATE to LAST_DATE are wide enough for any real
data and narrow enough that a window before (or a lock after) any of them, at most
MAX_DAYS (100 years), stays inside the calendar; counts and limits are at most MAX_COUNT."""

from __future__ import annotations

import datetime as dt

FIRST_DATE = dt.date(1900, 1, 1)
LAST_DATE = dt.date(2999, 12, 31)
MAX_DAYS = 36_500
MAX_COUNT = 1_000_000_000
# Whole-number literals of expressions must fit a BIGINT (SQL would make a wider one a
# HUGEINT or DECIMAL, and Spark a DECIMAL: the engines would disagree about every sum and
# product with it); a computation leaving the range fails (`failed_computation`).
BIGINT_MIN, BIGINT_MAX = -(2**63), 2**63 - 1
