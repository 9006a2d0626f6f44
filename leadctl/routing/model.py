"""Routing rules as typed data (what `parse` builds from `rules/routing.yaml`): pools
with their reps and allocation, ordered routes (first match wins), the lifecycle; and
the statuses and causes the route stage works with.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from leadctl.errors import Location
from leadctl.routing.allocation import ALLOCATIONS
from leadctl.rules.located import Fields, LocatedText, broken_names

ROUTING_FILE = "routing.yaml"
STATUSES = ("pending", "contacting", "unclear_intent", "clear_intent", "appointment", "closed")
INTENT_STATUSES = ("clear_intent", "appointment", "closed")
PERIODS = ("day", "week", "month")
DEFAULT_LOCK_DAYS = 180

# What an identity merge keeps of the merged persons' routing states (pool, owner, status,
# lock): `on_merge: keep:` in routing.yaml, an ordered list of these criteria (the first
# that tells the states apart decides; then the surviving person's own state, then the
# smallest person id).
MERGE_CRITERIA: dict[str, str] = {
    "lock": "an active sale lock wins (of several, the earliest sale)",
    "sales_pool_status": "a state with an owner (a rep works it in a pool) wins; of "
                         "several, the most advanced follow-up status",
    "earliest_assignment": "the state assigned first (earliest assigned_at) wins",
    "latest_assignment": "the state assigned last (latest assigned_at) wins",
}
DEFAULT_MERGE_KEEP = ("lock", "sales_pool_status", "earliest_assignment")

# Fields a route condition can use besides the person_features columns (they win on a
# name clash): the current score/grade and the person's routing state.
ROUTE_FIELDS: dict[str, str] = {
    "score": "number", "grade": "string", "pool": "string", "owner": "string",
    "status": "string", "status_days": "number", "days_in_pool": "number",
}

# Why a person's routing state changes, checked in this order (first that applies).
CAUSES = (
    "person_removed",  # no longer in person_features (merged away): its row is dropped
    "locked",        # sold and within the lock period: nothing changes (do-not-disturb)
    "reactivated",   # dormant, with new activity since → routed again
    "dormant",       # dormant, no new activity: stays
    "closed",        # status closed: stays
    "no_intent",     # no clear intent for lifecycle.dormant_after_days → dormant pool
    "sla_expired",   # status held longer than its SLA → back to the pool, owner released
    "reassigned",    # first matching route has reassign: true and another pool
    "pool_removed",  # its pool is no longer in routing.yaml → routed again
    "rep_removed",   # its owner is no longer a rep of the pool → dealt again
    "sticky",        # has an owner: stays
    "waiting",       # in a pool without owner: dealt if the pool deals, else waits
    "new",           # not routed yet (or no route matched before): routed
)
ROUTED_CAUSES = ("reactivated", "new", "pool_removed", "reassigned")
RELEASED_CAUSES = ("reactivated", "new", "pool_removed", "reassigned", "no_intent",
                   "sla_expired", "rep_removed", "waiting")
# ownership.reason of a person without owner after a run.
UNASSIGNED_REASONS = ("no_capacity", "claim_pool", "sla_returned", "no_route", "dormant")
# The reason of a lead a status SLA sent back to sla_return_pool, until a rep claims it:
# reassigning routes leave it there (the next route would take it straight back).
SLA_RETURNED = "sla_returned"


def route_fields(fields: Mapping[str, str]) -> Fields:
    """What a route condition can name: person_features `fields` + ROUTE_FIELDS (and the
    broken names `fields` carries)."""
    return Fields({**{k: v for k, v in fields.items() if k != "person_id"}, **ROUTE_FIELDS},
                  broken_names(fields))


@dataclass(frozen=True)
class Rep:
    name: str
    weight: float = 1.0  # as routing.yaml gives it
    capacity: int | None = None  # leads per capacity period; None = no limit
    loc: Location | None = None
    # The weight as a whole number relative to the pool's other reps (weights × 10**6,
    # divided by their greatest common divisor; at most 10**12, exact in a DOUBLE): what
    # the slot keys divide by, so equal ratios give equal keys (0.3:0.9 deals as 1:3).
    share: int = 1


@dataclass
class Pool:
    name: str
    allocation: str  # a key of ALLOCATIONS
    team: str | None = None
    description: str = ""
    reps: list[Rep] = field(default_factory=list)
    loc: Location | None = None

    @property
    def deals(self) -> bool:
        return ALLOCATIONS[self.allocation].deals


@dataclass
class Route:
    name: str
    pool: str
    when: LocatedText | None = None  # None: matches everyone
    reassign: bool = False
    from_pools: tuple[str, ...] = ()  # reassign only from these pools (empty: any)
    description: str = ""
    loc: Location | None = None

    @property
    def catch_all(self) -> bool:
        return self.when is None or self.when.value.strip().lower() == "true"


@dataclass
class Lifecycle:
    lock_days: int = DEFAULT_LOCK_DAYS
    dormant_after_days: int | None = None
    dormant_pool: str | None = None
    reactivate_on: tuple[str, ...] | None = None  # event types; None = any event
    reactivate_on_locs: dict[str, Location | None] = field(default_factory=dict)  # type → where
    reactivate_when: LocatedText | None = None
    status_sla_days: dict[str, int] = field(default_factory=dict)
    sla_return_pool: str | None = None


@dataclass
class RoutingRules:
    path: Path
    pools: list[Pool] = field(default_factory=list)
    routes: list[Route] = field(default_factory=list)
    default_pool: str | None = None
    capacity_period: str = "week"
    lifecycle: Lifecycle = field(default_factory=Lifecycle)
    merge_keep: tuple[str, ...] = DEFAULT_MERGE_KEEP  # `on_merge: keep:` (MERGE_CRITERIA)
    rules_hash: str = ""
    present: bool = True  # False: no routing.yaml (the route stage is skipped)
    # What `rules check` warns about: valid, but most likely not what was meant.
    warnings: list[str] = field(default_factory=list)

    def pool(self, name: str | None) -> Pool | None:
        return next((p for p in self.pools if p.name == name), None)

    def reps(self) -> dict[str, Rep]:
        """Every rep once, with its capacity from whichever pool declares one."""
        out: dict[str, Rep] = {}
        for pool in self.pools:
            for rep in pool.reps:
                known = out.get(rep.name)
                if known is None:
                    out[rep.name] = Rep(rep.name, 1.0, rep.capacity, rep.loc)
                elif known.capacity is None and rep.capacity is not None:
                    out[rep.name] = Rep(rep.name, 1.0, rep.capacity, known.loc)
        return out

    def rep_first_pools(self) -> dict[str, str]:
        """Each rep's first pool in the file: where a sale puts a person that is in no pool
        of the seller's."""
        out: dict[str, str] = {}
        for pool in self.pools:
            for rep in pool.reps:
                out.setdefault(rep.name, pool.name)
        return out

    def capacity(self, rep: str) -> int | None:
        found = self.reps().get(rep)
        return found.capacity if found else None

    def members(self, pool: Pool) -> list[str]:
        """Reps who may own leads of `pool`: its reps, or every rep when it lists none."""
        return [r.name for r in pool.reps] if pool.reps else list(self.reps())

    def waves(self) -> list[list[str]]:
        """Dealing pools grouped so pools sharing a rep are dealt one after the other
        (routing.yaml order): a shared rep's capacity goes to earlier pools first."""
        wave_of: dict[str, int] = {}
        for index, pool in enumerate(self.pools):
            if not pool.deals:
                continue
            names = {r.name for r in pool.reps}
            wave = 0
            for earlier in self.pools[:index]:
                if earlier.name in wave_of and names & {r.name for r in earlier.reps}:
                    wave = max(wave, wave_of[earlier.name] + 1)
            wave_of[pool.name] = wave
        out: list[list[str]] = [[] for _ in range(max(wave_of.values(), default=-1) + 1)]
        for name, wave in wave_of.items():
            out[wave].append(name)
        return out

    def period_start(self, as_of: dt.date) -> dt.date:
        return period_start(self.capacity_period, as_of)

    def period_end(self, as_of: dt.date) -> dt.date:
        return period_end(self.capacity_period, as_of)


def period_start(period: str, as_of: dt.date) -> dt.date:
    if period == "day":
        return as_of
    if period == "month":
        return as_of.replace(day=1)
    return as_of - dt.timedelta(days=as_of.weekday())  # ISO week: Monday


def period_end(period: str, as_of: dt.date) -> dt.date:
    """The last day of the capacity period holding `as_of`: a rep's load counts the whole
    period, so an action dated earlier in it still sees what came later."""
    if period == "day":
        return as_of
    if period == "month":
        following = (as_of.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        return following - dt.timedelta(days=1)
    return period_start(period, as_of) + dt.timedelta(days=6)
