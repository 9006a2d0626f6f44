"""The typed tag model: what `rules/tags.yaml` means once parsed and checked."""

from __future__ import annotations

import re
from dataclasses import dataclass
from dataclasses import field as dc_field
from pathlib import Path

from leadctl.errors import Location
from leadctl.rules.expr import list_of
from leadctl.rules.located import Fields, LocatedText

TAGS_FILE = "tags.yaml"

TYPES = ("number", "string", "boolean", "date", "timestamp", "list")
ATTRIBUTE_TYPES = ("number", "string", "boolean", "date", "timestamp")
DEFAULT_CATEGORIES = ("value", "behaviour", "preference", "lifecycle")

# Person attributes (columns of `persons`) usable in expressions and kept in person_features.
# A list type says what its values are (`list_of`; it is still the type 'list').
PERSON_FIELDS: dict[str, str] = {
    "name": "string", "city": "string", "province": "string", "channel": "string",
    "source": "string", "sources": list_of("string"), "lead_count": "number",
    "first_seen": "timestamp", "last_seen": "timestamp",
}
# Event columns usable in event filters (`where:`) and as `field:`.
EVENT_COLUMNS: dict[str, str] = {
    "amount": "number", "category": "string", "event_type": "string", "ts": "timestamp",
}

COMMON_KEYS = ("name", "kind", "category", "description", "highlight")
TOP_KEYS = ("categories", "event_attributes", "tags")

# RFM: R "up" = fewer days since the last purchase than average; F/M "up" = above average.
RFM_SEGMENTS: dict[tuple[bool, bool, bool], str] = {
    (True, True, True): "important_value",
    (False, True, True): "important_retain",
    (True, False, True): "important_develop",
    (False, False, True): "important_win_back",
    (True, True, False): "general_value",
    (False, True, False): "general_retain",
    (True, False, False): "general_develop",
    (False, False, False): "general_win_back",
}

NAME_RE = re.compile(r"^[a-z_][a-z0-9_]*$")
EVENT_NAME_RE = re.compile(r"^[a-z0-9_][a-z0-9_.:\-]*$")
# Names that would shadow SQL keywords or the table's key if used as tag names.
RESERVED_NAMES = frozenset({
    "person_id", "and", "or", "not", "in", "is", "null", "true", "false", "like", "between",
    "case", "when", "then", "else", "end", "select", "from", "where", "as", "all", "any",
})


@dataclass(frozen=True)
class Level:
    name: str
    when: LocatedText


@dataclass
class TagDef:
    """One tag rule. Which fields are set depends on the kind (see `kinds.py`)."""

    name: str
    kind: str
    category: str
    description: str
    loc: Location | None
    type: str = "number"
    events: tuple[str, ...] = ()
    agg: str | None = None
    field: str | None = None  # metric / top: the event field; first / last: `value` if a field
    window_days: int | None = None
    where: LocatedText | None = None
    days_since: bool = False  # first / last: value is days since the event
    current: bool = False  # streak: the run that reaches the as-of day, not the longest
    n: int | None = None
    levels: tuple[Level, ...] = ()
    default: str | None = None
    rfm: dict[str, str] = dc_field(default_factory=dict)  # recency/frequency/monetary -> name
    rfm_locs: dict[str, Location] = dc_field(default_factory=dict, compare=False)  # -> its place
    labels: dict[str, str] = dc_field(default_factory=dict)
    expr: LocatedText | None = None
    deps: tuple[str, ...] = ()
    highlight: bool = False
    broken: bool = False  # has a problem (reported); kept so references to it still check

    def level_names(self) -> list[str]:
        """Ordered values of a tiers / rfm tag (best first), else []."""
        if self.kind == "tiers":
            return [lv.name for lv in self.levels] + (
                [self.default] if self.default is not None else [])
        if self.kind == "rfm":
            return [self.labels.get(s, s) for s in RFM_SEGMENTS.values()]
        return []

    def to_dict(self) -> dict:
        return {"tag": self.name, "kind": self.kind, "category": self.category,
                "description": self.description, "type": self.type,
                "levels": self.level_names() or None, "highlight": self.highlight}


@dataclass
class TagRules:
    path: Path
    tags: list[TagDef]  # in dependency order (definition order where free)
    event_attributes: dict[str, str] = dc_field(default_factory=dict)
    # the workspace time zone (sources.yaml): zoned date/timestamp attributes are read in it
    timezone: str = "Asia/Shanghai"
    categories: list[str] = dc_field(default_factory=lambda: list(DEFAULT_CATEGORIES))
    rules_hash: str = ""
    # The hash of the whole rules folder read with it (the run log's rules_hash), for a
    # workspace whose meta predates tags_rules_hash (tagging.stage._same_file)
    folder_hash: str = ""
    # Declared but broken (their problem is reported where they are declared): tags that
    # did not parse or whose type is unknown, and event attributes of an unknown type.
    # Expressions naming them report nothing more (rules.located.Fields).
    broken: set[str] = dc_field(default_factory=set)
    broken_attributes: set[str] = dc_field(default_factory=set)

    @property
    def by_name(self) -> dict[str, TagDef]:
        return {t.name: t for t in self.tags}

    def definition_order(self) -> list[TagDef]:
        return sorted(self.tags, key=lambda t: (t.loc.line if t.loc else 0, t.name))

    def fields(self) -> Fields:
        """Names usable in expressions over person_features, with their types."""
        return Fields({**PERSON_FIELDS, **{t.name: t.type for t in self.definition_order()
                                           if t.name not in self.broken}}, self.broken)

    def event_fields(self) -> Fields:
        return Fields({**EVENT_COLUMNS, **self.event_attributes}, self.broken_attributes)
