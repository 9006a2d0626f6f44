"""`rules/costs.yaml`: what each channel cost, per period (optional file).

    currency: CNY                  # optional label for the report
    costs:
      - {source: sem_baidu, period: 2026-10, cost: 12000}          # a calendar month
      - {source: feed_douyin, from: 2026-10-01, to: 2026-10-15, cost: 4000}  # days, inclusive
      - {utm_campaign: maternal_search, period: 2026-10, cost: 3000}

Each entry names exactly one channel dimension (`source`, `utm_source`, `utm_medium`,
`utm_campaign`, `utm_content`, `utm_term` or `channel`) and its value, one period
(`period: YYYY-MM`, or `from:` and `to:` dates, both days included) and `cost` (a
number ≥ 0); `note:` is free text. Two entries of the same dimension and value must
not overlap in time (their leads would be paid twice). `report channels --by D` uses
the entries of dimension D only. Every problem is reported with file:line:col.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from leadctl.clock import iso_date
from leadctl.errors import Location
from leadctl.rules.bounds import MAX_MONEY, number_in, plain_text, written
from leadctl.rules.load import rule_path
from leadctl.rules.located import RuleDoc

COSTS_FILE = "costs.yaml"
# The columns a channel can be reported by (`report channels --by`).
CHANNEL_DIMENSIONS = ("source", "utm_source", "utm_medium", "utm_campaign", "utm_content",
                      "utm_term", "channel")
TOP_KEYS = ("currency", "costs")
ENTRY_KEYS = (*CHANNEL_DIMENSIONS, "period", "from", "to", "cost", "note")
MONTH_RE = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True)
class CostEntry:
    dimension: str  # one of CHANNEL_DIMENSIONS
    value: str  # the channel value, as the report shows it
    first_day: dt.date
    last_day: dt.date  # included
    cost: float
    loc: Location | None = None

    def describe(self) -> str:
        return (f"{self.dimension} {self.value}, {self.first_day.isoformat()}.."
                f"{self.last_day.isoformat()}")


@dataclass
class CostRules:
    path: Path | None = None
    present: bool = False  # False without costs.yaml: reports show no cost values
    currency: str | None = None
    entries: list[CostEntry] = field(default_factory=list)

    def for_dimension(self, dimension: str) -> list[CostEntry]:
        return [e for e in self.entries if e.dimension == dimension]


def load_cost_rules(rules_dir: Path | str | None) -> CostRules:
    """Parse `rules_dir/costs.yaml`; a missing file is no costs. RuleError lists every
    problem of the file with its file:line:col."""
    path = rule_path(rules_dir, COSTS_FILE)
    if not path.exists():
        return CostRules(path=path)
    doc, raw = RuleDoc.read(path, "a `costs:` list", TOP_KEYS)
    rules = CostRules(path=path, present=True)
    currency = raw.get("currency")
    if currency is not None:
        if isinstance(currency, str) and currency.strip():
            rules.currency = currency.strip()
        else:
            doc.add(doc.value_loc(raw, "currency"), "currency must be a text label such as CNY")
    items = raw.get("costs")  # `costs:` with every entry commented out: no entries
    if "costs" not in raw and raw:
        doc.add(doc.loc(raw), "missing `costs:` (a list of cost entries)")
    elif items is not None and not isinstance(items, list):
        doc.add(doc.value_loc(raw, "costs"), "`costs:` must be a list of cost entries")
    else:
        for index, item in enumerate(items or []):
            entry = _entry(doc, item, doc.item_loc(items, index))
            if entry is not None:
                _check_overlap(doc, rules.entries, entry)
                rules.entries.append(entry)
    doc.raise_if_problems()
    return rules


PLAIN_AMOUNT_RE = re.compile(r"(0|[1-9][0-9_]*)(\.[0-9_]*)?([eE][+-]?[0-9]+)?|\.[0-9]+")


def _entry(doc: RuleDoc, item, where: Location) -> CostEntry | None:
    shape = ("a mapping like {source: sem_baidu, period: 2026-10, cost: 12000}")
    if not isinstance(item, Mapping):
        doc.add(where, f"each cost entry must be {shape}")
        return None
    before = len(doc.problems)
    # A misspelt key is one problem: the key it most likely meant is not also "missing".
    doc.unknown_keys(item, ENTRY_KEYS, "cost entry")
    meant = {key for key in ENTRY_KEYS if doc.mistyped(item, key)}
    dimensions = [k for k in item if k in CHANNEL_DIMENSIONS]
    value = None
    if not dimensions:
        if not meant & set(CHANNEL_DIMENSIONS):
            doc.add(where, "cost entry needs one channel key: " + ", ".join(CHANNEL_DIMENSIONS))
    elif len(dimensions) > 1:
        doc.add(doc.key_loc(item, dimensions[1]), f"cost entry names {dimensions[0]} and "
                f"{dimensions[1]}: one channel key per entry")
    else:
        value = item[dimensions[0]]
        if not isinstance(value, str):
            # A campaign named 010, 1.50, 2026-10-01 or no is that text, not the number,
            # date or boolean YAML reads
            value = plain_text(item, dimensions[0]) or (
                str(value) if isinstance(value, (int, float)) and not isinstance(value, bool)
                else None)
        if not isinstance(value, str) or not value.strip(" "):
            doc.add(doc.value_loc(item, dimensions[0]),
                    f"{dimensions[0]} must be a channel value (text)")
            value = None
    days = _period(doc, item, where, meant)
    cost = item.get("cost")
    if "cost" not in item:
        if "cost" not in meant:
            doc.add(where, "cost entry needs `cost:` (a number)")
    elif isinstance(cost, bool) or not isinstance(cost, (int, float)) or cost < 0:
        doc.add(doc.value_loc(item, "cost"),
                f"cost must be a number ≥ 0 (no thousands separators), not {cost!r}")
    elif number_in(cost, 0, MAX_MONEY) is None:  # NaN, infinite, too large
        doc.add(doc.value_loc(item, "cost"), f"cost must be a finite number from 0 to "
                f"{MAX_MONEY}, not {written(item, 'cost')}")
    elif not PLAIN_AMOUNT_RE.fullmatch(plain_text(item, "cost") or "0"):
        # YAML reads 010 as 8, 1:30 as 90, 0x10 as 16: an amount is written plainly
        doc.add(doc.value_loc(item, "cost"), f"cost must be written as a plain decimal "
                f"number (like 12000 or 1500.50), not {written(item, 'cost')}")
    if len(doc.problems) > before or value is None or days is None:
        return None
    # trimmed of spaces only, as the report trims the channel value (a tab stays)
    return CostEntry(dimensions[0], value.strip(" "), days[0], days[1], float(cost),
                     doc.key_loc(item, dimensions[0]))


def _period(doc: RuleDoc, item: Mapping, where: Location,
            meant: set[str]) -> tuple[dt.date, dt.date] | None:
    has_range = "from" in item or "to" in item
    if "period" in item and has_range:
        doc.add(doc.key_loc(item, "from" if "from" in item else "to"),
                "cost entry has `period:` and `from:`/`to:`: give one of them")
        return None
    if "period" in item:
        raw = item["period"]
        match = MONTH_RE.match(raw) if isinstance(raw, str) else None
        year, month = (int(match.group(1)), int(match.group(2))) if match else (0, 0)
        # The month after must exist too: its day before is the period's last.
        if not match or not 1 <= month <= 12 or not (1, 1) <= (year, month) < (9999, 12):
            hint = " (for days use from:/to:)" if isinstance(raw, dt.date) else ""
            doc.add(doc.value_loc(item, "period"),
                    f"period must be a month like 2026-10, not {str(raw)!r}{hint}")
            return None
        first = dt.date(year, month, 1)
        following = dt.date(first.year + first.month // 12, first.month % 12 + 1, 1)
        return first, following - dt.timedelta(days=1)
    if not has_range:
        if not meant & {"period", "from", "to"}:
            doc.add(where, "cost entry needs a period: `period: 2026-10` or `from:` and `to:`")
        return None
    days = []
    for key in ("from", "to"):
        if key not in item:
            if key not in meant:
                doc.add(where, f"cost entry has `{'to' if key == 'from' else 'from'}:` "
                        f"but no `{key}:`")
            return None
        day = _day(item[key])
        if day is None:
            doc.add(doc.value_loc(item, key),
                    f"{key} must be a date like 2026-10-01, not {str(item[key])!r}")
            return None
        days.append(day)
    if days[1] < days[0]:
        doc.add(doc.value_loc(item, "to"), f"to ({days[1]}) is before from ({days[0]})")
        return None
    return days[0], days[1]


def _day(value) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return None
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return iso_date(value.strip())
        except ValueError:
            return None
    return None


def _check_overlap(doc: RuleDoc, entries: list[CostEntry], entry: CostEntry) -> None:
    for other in entries:
        if (other.dimension, other.value) == (entry.dimension, entry.value) and \
                other.first_day <= entry.last_day and entry.first_day <= other.last_day:
            doc.add(entry.loc, f"cost entry ({entry.describe()}) overlaps the entry at "
                    f"{other.loc} ({other.describe()}): its leads would be paid twice")
            return
