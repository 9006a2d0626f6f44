"""The near miss in an "unknown X" message, the same in every rule file and expression:
`unknown pool 'sales_eats' (did you mean 'sales_east'?) (known: ...)`."""

from __future__ import annotations

import difflib
from collections.abc import Container, Iterable, Mapping
from typing import Any


def near_miss(word: Any, known: Iterable[str]) -> str | None:
    """The one of `known` that `word` most likely misspells (ignoring case), else None."""
    if not isinstance(word, str):
        return None
    lowered = {str(k).lower(): str(k) for k in known}  # 'c' → 'C' too
    close = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[close[0]] if close and lowered[close[0]] != word else None


def named_in(value: Any, names: Container[str]) -> bool:
    """Whether `value` is one of `names`: a list or mapping YAML read where a name belongs
    is none (and cannot be looked up in a dict of names: it is unhashable)."""
    return isinstance(value, str) and value in names


def did_you_mean(word: Any, known: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for a near miss among `known` (ignoring case), else ''."""
    meant = near_miss(word, known)
    return f" (did you mean '{meant}'?)" if meant is not None else ""


def mistyped_keys(mapping: Mapping, allowed: Iterable[str]) -> set[str]:
    """The keys of `allowed` that `mapping` lacks but one of its unknown keys misspells
    (`feild:` → {'field'}). One typo, one error: the unknown key is reported with its near
    miss, so what only follows from the key it meant being absent ("needs `field:`",
    "`from:` only applies with `reassign: true`") is not reported as well."""
    allowed = [str(k) for k in allowed]
    out = set()
    for key in mapping:
        if key not in allowed and (meant := near_miss(key, allowed)) is not None \
                and meant not in mapping:
            out.add(meant)
    return out


def one_of(word: Any, known: Iterable[str]) -> str:
    """' (did you mean 'x'?) (known: a, b, …)': the tail of an "unknown X 'word'" message."""
    known = list(known)
    return f"{did_you_mean(word, known)} (known: {', '.join(known) or 'none'})"
