"""Campaign funnels as typed data (what `funnels_parse` builds from `rules/funnels.yaml`).

A funnel is an ordered list of steps, each a set of event types with an optional
`where:` over event fields. Per person (see `funnels_sql` for the SQL):

- entry: the person's first event of step 1 in the report period (`--since` on/after,
  events before the as-of day only), for persons of the `entry:` population (an
  audience expression over person_features, scores and routing state, as in `find`;
  default: every person with a step-1 event). Broken down by event fields under first
  touch, a person enters once per combination of those fields' values among their
  step-1 events (from the first event of each), so that every batch or channel is
  measured over its own window;
- step k (k > 1): the entry's earliest event of step k at or after the event that
  counted for step k-1 (the same event never counts twice) and before entry + window;
  a step reached out of order does not count, and a person counts at most once per step
  of a group;
- attribution of event dimensions (utm_*, source, batch attributes): `first` (default)
  takes them from the entry event; `last` from the latest event of the person's path
  that carries the dimension; tags are person values (the published tag run).
- conversion = persons of the step / persons entering (the article's "response rate",
  what `min_conversion` compares); of_previous = over the previous step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from leadctl.errors import Location
from leadctl.rules.located import LocatedText

FUNNELS_FILE = "funnels.yaml"
TOP_KEYS = ("event_attributes", "funnels")
FUNNEL_KEYS = ("name", "description", "window", "steps", "entry", "by", "min_conversion",
               "attribution")
STEP_KEYS = ("name", "event", "where", "description")
ATTRIBUTIONS = ("first", "last")
# Event fields every funnel may read besides tags.yaml's: the UTM fields ingest keeps as
# attributes of events, and the events file's source.
UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")
# Dimensions `--by` accepts when a funnel declares no `by:`.
DEFAULT_BY = (*UTM_FIELDS, "source")
TAG_PREFIX = "tag:"


@dataclass(frozen=True)
class Step:
    name: str
    events: tuple[str, ...]
    where: LocatedText | None = None
    loc: Location | None = None


@dataclass(frozen=True)
class Dimension:
    """A breakdown: an event field (attributed per person) or a tag (a person value)."""

    name: str  # as written and shown (`utm_source`, `batch`, `tag:value_tier`)
    kind: str  # "event" | "tag"
    field: str  # the event field or the tag's name


@dataclass
class Funnel:
    name: str
    loc: Location | None
    window_days: int = 14
    steps: list[Step] = field(default_factory=list)
    description: str = ""
    entry: LocatedText | None = None
    by: list[Dimension] = field(default_factory=list)  # the breakdowns --by may choose
    min_conversion: dict[str, float] = field(default_factory=dict)  # step → minimum
    attribution: str = "first"

    @property
    def step_names(self) -> list[str]:
        return [s.name for s in self.steps]


@dataclass
class FunnelRules:
    path: Path
    funnels: list[Funnel] = field(default_factory=list)
    event_attributes: dict[str, str] = field(default_factory=dict)  # funnels.yaml's own
    present: bool = True  # False without funnels.yaml

    def events_used(self) -> dict[str, Location | None]:
        """Each event type the steps name → the first step naming it."""
        used: dict[str, Location | None] = {}
        for funnel in self.funnels:
            for step in funnel.steps:
                for event in step.events:
                    used.setdefault(event, step.loc)
        return used

    @property
    def by_name(self) -> dict[str, Funnel]:
        return {f.name: f for f in self.funnels}
