"""The near miss in an "unknown X" message, the same in every rule file and expression:
`unknown pool 'sales_eats' (did you mean 'sales_east'?) (known: ...)`."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any


def did_you_mean(word: Any, known: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for a near miss among `known` (ignoring case), else ''."""
    if not isinstance(word, str):
        return ""
    lowered = {str(k).lower(): str(k) for k in known}  # 'c' → 'C' too
    close = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return f" (did you mean '{lowered[close[0]]}'?)" if close and lowered[close[0]] != word \
        else ""


def one_of(word: Any, known: Iterable[str]) -> str:
    """' (did you mean 'x'?) (known: a, b, …)': the tail of an "unknown X 'word'" message."""
    known = list(known)
    return f"{did_you_mean(word, known)} (known: {', '.join(known) or 'none'})"
