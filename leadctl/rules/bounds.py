"""The ranges the numbers and dates of rule files must fall in, checked when they are parsed.

Every number a rule file gives ends up in SQL or in date arithmetic: a NaN or an infinity
pasted into a query, a count beyond BIGINT, or a number of days that carries a date out
of the calendar would fail a run (exit 3) long after `rules check` passed the file. So
each numeric key is checked against its range here, at `rules check` time, and a value
outside it is a rule problem at its file:line:col naming the key, the value as written
and the range.

The bounds shared with the CLI live in `leadctl/limits.py`: every length in days is at most
`MAX_DAYS`, the 100 years `--lock-days` allows, so a window before (or a lock after) any
date from `FIRST_DATE` to `LAST_DATE` stays inside the calendar; counts are at most
`MAX_COUNT`, the bound of `--limit`/`--n`.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

# Dates a command computes with (fixture `as_of:` too); windows, lock, dormancy and SLA
# lengths, decay half-lives and ages (up to 100 years); counts (a rep's capacity).
from leadctl.limits import FIRST_DATE, LAST_DATE, MAX_COUNT, MAX_DAYS  # noqa: F401

# Score points of a rule and grade minimums, either sign.
MAX_POINTS = 1_000_000_000
# A rep's weight: from 1e-6 to this, with at most 6 decimals (weights are relative to
# each other; dealing takes them as whole millionths, see `weight_units`).
MAX_WEIGHT = 1_000_000
WEIGHT_DECIMALS = 6
# Money (costs; a fixture amount is any finite number, as ingest loads it): below 2**53,
# so whole amounts and their sums stay exact in a DOUBLE.
MAX_MONEY = 1_000_000_000_000_000


def is_number(value: Any) -> bool:
    """An int or a float from YAML (a boolean is not a number)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def finite(value: Any) -> float | None:
    """`value` as a finite float; None for a non-number, NaN, ±infinity (1e400 reads as
    infinity) and an integer too large for a float."""
    if not is_number(value):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def number_in(value: Any, low: float, high: float, *, above: bool = False) -> float | None:
    """`value` as a float when it is a finite number from `low` (above it, with `above`)
    to `high`; else None."""
    number = finite(value)
    if number is None or number > high or number < low or (above and number == low):
        return None
    return number


def whole_in(value: Any, low: int, high: int) -> int | None:
    """`value` when it is a whole number (an int, not a boolean) from `low` to `high`."""
    if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
        return value
    return None


def weight_units(value: Any) -> int | None:
    """A weight in whole millionths (0.3 → 300000), from the decimal YAML read (`repr` of
    the float: 0.3 is 0.3, not the double nearest it); None unless it is a number from
    0.000001 to MAX_WEIGHT with at most WEIGHT_DECIMALS decimals."""
    if finite(value) is None:
        return None
    try:
        exact = Decimal(value) if isinstance(value, int) else Decimal(repr(value))
        units = exact.scaleb(WEIGHT_DECIMALS)
    except (InvalidOperation, ValueError, OverflowError):
        return None
    if units != units.to_integral_value() or not 1 <= units <= MAX_WEIGHT * 10**WEIGHT_DECIMALS:
        return None
    return int(units)


def date_in(value: dt.date) -> bool:
    """Whether a date lies from FIRST_DATE to LAST_DATE."""
    return FIRST_DATE <= value <= LAST_DATE


def written(mapping: Any, key: Any) -> str:
    """mapping[key] as the file writes it (`.nan`, `1.0e+400`, `99999999999999999999`),
    for a message to quote; a string value in quotes; a long value cut short (…)."""
    value = mapping[key]
    if isinstance(value, str):
        return repr(_cut(value))
    text = plain_text(mapping, key)
    return _cut(text) if text else shown(value)


def plain_text(mapping: Any, key: Any) -> str | None:
    """mapping[key]'s text in the file when it is a plain (unquoted) scalar, which YAML
    may have read as a number (`010` is 8, `1.50` is 1.5); None when not at hand (also
    when the mapping lacks the key: a pool with no `name:` at all)."""
    if key not in mapping:
        return None
    return _plain_source(getattr(mapping, "_value_marks", {}).get(key), mapping[key])


def item_text(seq: Any, index: int) -> str | None:
    """seq[index]'s text in the file when it is a plain scalar (as `plain_text`)."""
    marks = getattr(seq, "_item_marks", ())
    return _plain_source(marks[index], seq[index]) if index < len(marks) else None


def key_text(mapping: Any, key: Any) -> str:
    """A key as the file writes it (`yes`, `0x1F`, `1.50`: what YAML read as no text)."""
    text = _plain_source(getattr(mapping, "_key_marks", {}).get(key), key)
    return _cut(text) if text else shown(key)


def _plain_source(mark: Any, value: Any) -> str | None:
    """The file's text of a plain scalar (`mark`: where a YDict, loaded from a file, has
    it); None for a quoted or block one, a collection, or no mark."""
    if mark is None or isinstance(value, (list, dict)):
        return None
    # an alias (`*r`) reads its anchor's text; the rest, their own if plain
    span = mark.anchor_span or (None if mark.style else (mark.start, mark.end))
    if span is None:
        return None
    # the node's mark starts at its properties: an anchor (`&r 010`) or a tag is not text
    return _NODE_PROPERTIES.sub("", mark.source.text[span[0]:span[1]].strip()) or None


_NODE_PROPERTIES = re.compile(r"^(?:[&!]\S*\s+)*")


def read_as(value: Any) -> str:
    """What YAML read a plain scalar as, in a message: `a number`, `true/false`, …"""
    if isinstance(value, bool):
        return "true/false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, (dt.date, dt.datetime)):
        return "a date"
    return "no text"


def shown(value: Any) -> str:
    """A number in a message when the file's text is not at hand."""
    if isinstance(value, float) and not math.isfinite(value):
        return {"nan": ".nan", "inf": ".inf", "-inf": "-.inf"}[repr(value)]
    return _cut(str(value))


def _cut(text: str) -> str:
    return text if len(text) <= 40 else text[:20] + "…"


def read_digits(text: str) -> int:
    """int() of a run of decimal digits (the `30` of `window: 30d`), however long: past the
    digits int() reads (4300), a number above every bound here stands in."""
    try:
        return int(text)
    except ValueError:
        return 10**18


WINDOW_RE = re.compile(r"^\s*(\d+)\s*(d|day|days)\s*$")


def window_days(doc, raw: Mapping, what: str, like: str, other: str | None = None
                ) -> int | None:
    """The days of raw's `window:` (30, 30d, 30 days) from 1 to MAX_DAYS; otherwise an
    error at the value, naming the example `like` and an `other` word it may also be."""
    window = raw["window"]
    match = WINDOW_RE.match(str(window)) if isinstance(window, (str, int)) and \
        not isinstance(window, bool) else None
    days = int(window) if isinstance(window, int) and not isinstance(window, bool) else (
        read_digits(match.group(1)) if match else None)
    if days is None or days < 1:
        alternative = f" (or `{other}`)" if other else ""
        doc.add(doc.value_loc(raw, "window"), f"{what}: window must be a number of days like "
                f"{like}{alternative}, not '{window}'")
    elif days > MAX_DAYS:
        alternative = f", or `{other}`" if other else ""
        doc.add(doc.value_loc(raw, "window"), f"{what}: window must be from 1 to {MAX_DAYS} "
                f"days (like {like}{alternative}), not {written(raw, 'window')}")
    else:
        return days
    return None
