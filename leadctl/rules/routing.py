"""Routing rules (`rules/routing.yaml`): pools, ordered routes, lifecycle; SQL builders.

Pure: YAML in, `RoutingRules` (or a RuleError listing every problem with file:line:col)
out; rules + person_features fields + as-of in, SQL strings out. The stage
(`leadctl.stages.route`) runs the statements in order:

  1. `config_sql`      pools, reps and pool membership as small temp tables;
  2. `activity_sql`    dormant persons with new activity since they went dormant;
  3. `decide_sql`      ONE pass over person_features ⟗ ownership (⋈ scores): each person's
                       *cause* (first that applies, see CAUSES), new pool, rule, and new
                       owner/status/reason as if not dealt;
  4. `deal_sql`        per wave of pools, allocation by window functions (below), then
                       `merge_dealt_sql` gives the dealt persons their owner;
  5. `new_state_sql`   a view: what changed, the log reason; `summary_sql` counts it;
  6. `apply_sql`       append the assignment log, replace the changed ownership rows.

Allocation (round_robin, weighted, least_loaded) is one slot matching: every rep of a
pool offers numbered *slots* j = 1, 2, ... (as many as its remaining capacity allows);
slot j of a rep has the key (base + j - 0.5) / weight, where base is what the rep already
has — leads dealt to it in this pool in the current period (round_robin, weighted) or
its open leads (least_loaded) — and weight is 1 except for weighted pools. Slots are
numbered by (key, rep position in routing.yaml); persons by (score desc, person_id);
person n gets slot n. That is exactly "deal one at a time to the rep with the lowest
key": an even rotation for round_robin, a Sainte-Laguë share for weights, water-filling
for least_loaded — and a rep never gets more slots than its capacity has room for.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from leadctl.errors import Location, RuleError
from leadctl.rules.located import LocatedText, RuleDoc, compile_located, sorted_problems
from leadctl.scoring.parse import file_hash, is_number
from leadctl.sqltext import ident, literal, number

ROUTING_FILE = "routing.yaml"
STATUSES = ("pending", "contacting", "unclear_intent", "clear_intent", "appointment", "closed")
INTENT_STATUSES = ("clear_intent", "appointment", "closed")
ALLOCATIONS = ("round_robin", "weighted", "least_loaded", "claim")
DEALING = ("round_robin", "weighted", "least_loaded")
PERIODS = ("day", "week", "month")
DEFAULT_LOCK_DAYS = 180

TOP_KEYS = ("capacity_period", "pools", "routes", "default_pool", "lifecycle")
POOL_KEYS = ("name", "team", "description", "allocation", "reps")
REP_KEYS = ("name", "weight", "capacity")
ROUTE_KEYS = ("name", "description", "when", "pool", "reassign", "from")
LIFECYCLE_KEYS = ("lock_days", "dormant_after_days", "dormant_pool", "reactivate_on",
                  "reactivate_when", "status_sla_days", "sla_return_pool")
NAME_RE = re.compile(r"^[a-z_][a-z0-9_]*$")
REP_RE = re.compile(r"^[A-Za-z0-9_.@\-]{1,64}$")
EVENT_RE = re.compile(r"^[a-z0-9_][a-z0-9_.:\-]*$")

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
UNASSIGNED_REASONS = ("no_capacity", "claim_pool", "no_route", "dormant")

Problems = list[tuple[Location | None, str]]


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class Rep:
    name: str
    weight: float = 1.0
    capacity: int | None = None  # leads per capacity period; None = no limit
    loc: Location | None = None


@dataclass
class Pool:
    name: str
    allocation: str
    team: str | None = None
    description: str = ""
    reps: list[Rep] = field(default_factory=list)
    loc: Location | None = None

    @property
    def deals(self) -> bool:
        return self.allocation in DEALING


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
    rules_hash: str = ""
    present: bool = True  # False: no routing.yaml (the route stage is skipped)

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


def period_start(period: str, as_of: dt.date) -> dt.date:
    if period == "day":
        return as_of
    if period == "month":
        return as_of.replace(day=1)
    return as_of - dt.timedelta(days=as_of.weekday())  # ISO week: Monday


# --------------------------------------------------------------------------- loading


def routing_path(rules_dir: Path | str | None) -> Path:
    return Path(rules_dir or "rules") / ROUTING_FILE


def load_routing_rules(rules_dir: Path | str | None,
                       fields: Mapping[str, str] | None = None) -> RoutingRules:
    """Parse and validate `rules_dir/routing.yaml`. With `fields` (person_features name →
    type) every condition is compiled too. A missing file gives `present=False`."""
    path = routing_path(rules_dir)
    if not path.exists():
        return RoutingRules(path=path, present=False)
    from leadctl.rules.load import load_yaml

    return parse_routing_rules(load_yaml(path), path, fields)


def parse_routing_rules(doc: Any, path: Path,
                        fields: Mapping[str, str] | None = None) -> RoutingRules:
    """Validate a loaded routing.yaml; with `fields`, compile its conditions too. Every
    problem is collected and raised together as one RuleError."""
    d = RuleDoc(path)
    rules = RoutingRules(path=path, rules_hash=file_hash(path))
    if doc is None:
        doc = {}
    if not isinstance(doc, Mapping):
        raise RuleError([(d.loc(doc), "routing.yaml must be a mapping with `pools:` and "
                          "`routes:`")])
    d.unknown_keys(doc, TOP_KEYS, "routing.yaml")
    period = doc.get("capacity_period", "week")
    if period not in PERIODS:
        d.add(d.value_loc(doc, "capacity_period"), f"capacity_period must be one of "
              f"{', '.join(PERIODS)}, not '{period}'")
    else:
        rules.capacity_period = period
    rules.pools = _parse_pools(d, doc)
    known = {p.name for p in rules.pools}
    _check_capacities(d, rules)

    def pool_ref(parent: Mapping, key: str, what: str) -> str | None:
        value = parent.get(key)
        if value is None:
            return None
        if value not in known:
            d.add(d.value_loc(parent, key), f"{what}: unknown pool '{value}' (known: "
                  f"{', '.join(sorted(known)) or 'none'})")
            return None
        return str(value)

    rules.routes = _parse_routes(d, doc, pool_ref, known)
    rules.default_pool = pool_ref(doc, "default_pool", "default_pool")
    catch_all = next((r for r in rules.routes if r.catch_all), None)
    if rules.default_pool and catch_all is not None:
        d.add(d.value_loc(doc, "default_pool"), f"default_pool '{rules.default_pool}' is "
              f"never used: route '{catch_all.name}' ({catch_all.loc}) matches every person")
    if doc.get("lifecycle") is not None:
        rules.lifecycle = _parse_lifecycle(d, doc, pool_ref, rules)
    if fields is not None:
        check_routing_expressions(rules, fields, problems=d.problems)
    d.raise_if_problems()
    return rules


def _parse_pools(d: RuleDoc, doc: Mapping) -> list[Pool]:
    raw = doc.get("pools")
    if raw is None:
        d.add(d.loc(doc), "routing.yaml: missing `pools:` (a list of {name, allocation, reps})")
        return []
    if not isinstance(raw, list):
        d.add(d.value_loc(doc, "pools"), "`pools:` must be a list of {name, allocation, reps}")
        return []
    pools: list[Pool] = []
    for item, name, loc in d.named_items(raw, "pool", POOL_KEYS,
                                         "`name:` and `allocation:`"):
        what = f"pool '{name}'"
        allocation = item.get("allocation", "claim")
        if allocation not in ALLOCATIONS:
            d.add(d.value_loc(item, "allocation"), f"{what}: allocation must be one of "
                  f"{', '.join(ALLOCATIONS)}, not '{allocation}'")
            allocation = "claim"
        team = item.get("team")
        pool = Pool(name=name, allocation=allocation, team=None if team is None else str(team),
                    description=str(item.get("description") or ""), loc=loc)
        pool.reps = _parse_reps(d, item, pool)
        if pool.deals and not pool.reps:
            d.add(d.value_loc(item, "reps") if "reps" in item else loc,
                  f"{what}: allocation {allocation} needs `reps:` (at least one rep)")
        pools.append(pool)
    return pools


def _parse_reps(d: RuleDoc, item: Mapping, pool: Pool) -> list[Rep]:
    raw = item.get("reps")
    what = f"pool '{pool.name}'"
    if raw is None:
        return []
    if not isinstance(raw, list):
        d.add(d.value_loc(item, "reps"), f"{what}: `reps:` must be a list of rep names or "
              "{name, weight, capacity}")
        return []
    reps: list[Rep] = []
    seen: set[str] = set()
    for index, entry in enumerate(raw):
        where = d.item_loc(raw, index)
        spec = entry if isinstance(entry, Mapping) else {"name": entry}
        if isinstance(entry, Mapping):
            d.unknown_keys(entry, REP_KEYS, f"{what} rep")
        name = spec.get("name")
        if isinstance(name, (int, float)) and not isinstance(name, bool):
            name = str(name)
        if not isinstance(name, str) or not REP_RE.match(name):
            d.add(where, f"{what}: rep name '{name}' must be a word (letters, digits, _ . @ -)"
                  if name is not None else f"{what}: each rep needs a `name:`")
            continue
        if name in seen:
            d.add(where, f"{what}: rep '{name}' is listed twice")
            continue
        seen.add(name)
        weight = spec.get("weight", 1)
        if not is_number(weight) or weight <= 0:
            d.add(d.value_loc(spec, "weight") if isinstance(entry, Mapping) else where,
                  f"{what}: rep '{name}': weight must be a number above 0")
            weight = 1
        elif weight != 1 and pool.allocation != "weighted":
            d.add(d.value_loc(spec, "weight"), f"{what}: rep '{name}' has a weight, but the "
                  f"pool's allocation is {pool.allocation} (use allocation: weighted)")
        capacity = spec.get("capacity")
        if capacity is not None and (not isinstance(capacity, int) or isinstance(capacity, bool)
                                     or capacity < 0):
            d.add(d.value_loc(spec, "capacity"), f"{what}: rep '{name}': capacity must be a "
                  "whole number of leads per period (0 or more)")
            capacity = None
        reps.append(Rep(name, float(weight), capacity, where))
    return reps


def _check_capacities(d: RuleDoc, rules: RoutingRules) -> None:
    """A rep's capacity is one number per period, wherever the rep is listed."""
    first: dict[str, tuple[Rep, Pool]] = {}
    for pool in rules.pools:
        for rep in pool.reps:
            if rep.capacity is None:
                continue
            if rep.name not in first:
                first[rep.name] = (rep, pool)
                continue
            other, other_pool = first[rep.name]
            if other.capacity != rep.capacity:
                teams = ""
                if (other_pool.team or "") != (pool.team or ""):
                    teams = (f" (teams '{other_pool.team or '-'}' and '{pool.team or '-'}')")
                d.add(rep.loc, f"rep '{rep.name}' has capacity {rep.capacity} in pool "
                      f"'{pool.name}' but {other.capacity} in pool '{other_pool.name}'{teams} "
                      f"at {other.loc}: a rep has one capacity per period")


def _parse_routes(d: RuleDoc, doc: Mapping, pool_ref, known: set[str]) -> list[Route]:
    raw = doc.get("routes")
    if raw is None:
        d.add(d.loc(doc), "routing.yaml: missing `routes:` (an ordered list of {name, when, "
              "pool}; first match wins)")
        return []
    if not isinstance(raw, list):
        d.add(d.value_loc(doc, "routes"), "`routes:` must be a list of {name, when, pool}")
        return []
    routes: list[Route] = []
    catch_all: Route | None = None
    for item, name, loc in d.named_items(raw, "route", ROUTE_KEYS,
                                         "`name:`, `when:` and `pool:`"):
        what = f"route '{name}'"
        if item.get("pool") is None:
            d.add(loc, f"{what}: missing `pool:`")
        pool = pool_ref(item, "pool", what)
        route = Route(name=name, pool=pool or "", loc=loc,
                      description=str(item.get("description") or ""))
        when = item.get("when")
        if when is False:
            d.add(d.value_loc(item, "when"), f"{what}: `when: false` never matches")
        elif when is not None and when is not True:
            route.when = d.text(item, "when")
        reassign = item.get("reassign", False)
        if not isinstance(reassign, bool):
            d.add(d.value_loc(item, "reassign"), f"{what}: reassign must be true or false")
        route.reassign = reassign is True
        if item.get("from") is not None:
            route.from_pools = _parse_from(d, item, what, route.reassign, known)
        if catch_all is not None:
            d.add(loc, f"{what} can never match: route '{catch_all.name}' above "
                  f"({catch_all.loc}) matches every person")
        elif route.catch_all:
            catch_all = route
        routes.append(route)
    return routes


def _parse_from(d: RuleDoc, item: Mapping, what: str, reassign: bool,
                known: set[str]) -> tuple[str, ...]:
    if not reassign:
        d.add(d.key_loc(item, "from"), f"{what}: `from:` only applies with `reassign: true`")
    raw = item["from"]
    sources = raw if isinstance(raw, list) else [raw]
    out: list[str] = []
    for index, source in enumerate(sources):
        where = d.item_loc(raw, index) if isinstance(raw, list) else d.value_loc(item, "from")
        if not isinstance(source, str) or source not in known:
            d.add(where, f"{what}: from: unknown pool '{source}' (known: "
                  f"{', '.join(sorted(known)) or 'none'})")
        else:
            out.append(source)
    return tuple(dict.fromkeys(out))


def _parse_lifecycle(d: RuleDoc, doc: Mapping, pool_ref, rules: RoutingRules) -> Lifecycle:
    raw = doc["lifecycle"]
    life = Lifecycle()
    if not isinstance(raw, Mapping):
        d.add(d.value_loc(doc, "lifecycle"), "`lifecycle:` must be a mapping")
        return life
    d.unknown_keys(raw, LIFECYCLE_KEYS, "lifecycle")

    def days(key: str, minimum: int) -> int | None:
        value = raw.get(key)
        if value is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            d.add(d.value_loc(raw, key), f"lifecycle: {key} must be a whole number of days "
                  f"({minimum} or more)")
            return None
        return value

    lock = days("lock_days", 0)
    life.lock_days = DEFAULT_LOCK_DAYS if lock is None else lock
    life.dormant_after_days = days("dormant_after_days", 1)
    life.dormant_pool = pool_ref(raw, "dormant_pool", "lifecycle dormant_pool")
    if (life.dormant_after_days is None) != (raw.get("dormant_pool") is None):
        d.add(d.loc(raw), "lifecycle: dormant_after_days and dormant_pool go together")
    dormant = rules.pool(life.dormant_pool)
    if dormant is not None and dormant.deals:
        d.add(d.value_loc(raw, "dormant_pool"), f"lifecycle: dormant_pool '{dormant.name}' "
              f"must be a claim pool, not {dormant.allocation}")
    if raw.get("reactivate_on") is not None:
        value = raw["reactivate_on"]
        events = value if isinstance(value, list) else [value]
        if value == "any":
            events = []
        elif not all(isinstance(e, str) and EVENT_RE.match(e.strip().lower()) for e in events):
            d.add(d.value_loc(raw, "reactivate_on"), "lifecycle: reactivate_on must be `any` "
                  "or a list of event types")
            events = []
        life.reactivate_on = tuple(e.strip().lower() for e in events) or None
    if raw.get("reactivate_when") is not None:
        life.reactivate_when = d.text(raw, "reactivate_when")
    sla = raw.get("status_sla_days")
    if sla is not None:
        if not isinstance(sla, Mapping):
            d.add(d.value_loc(raw, "status_sla_days"), "lifecycle: status_sla_days must map "
                  "status → days")
        else:
            for status, limit in sla.items():
                if status not in STATUSES or status == "closed":
                    d.add(d.key_loc(sla, status), f"lifecycle: status_sla_days: unknown "
                          f"status '{status}' (known: {', '.join(STATUSES[:-1])})")
                elif not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
                    d.add(d.value_loc(sla, status), f"lifecycle: status_sla_days: {status} "
                          "must be a whole number of days (1 or more)")
                else:
                    life.status_sla_days[status] = limit
    life.sla_return_pool = pool_ref(raw, "sla_return_pool", "lifecycle sla_return_pool")
    # Returned leads wait unowned where other reps can claim them: re-dealing them at
    # once could hand them straight back to the rep who let the status expire.
    if life.status_sla_days and raw.get("sla_return_pool") is None:
        d.add(d.key_loc(raw, "status_sla_days"), "lifecycle: status_sla_days needs "
              "`sla_return_pool:` (a claim pool the expired leads go back to)")
    returned = rules.pool(life.sla_return_pool)
    if returned is not None and returned.deals:
        d.add(d.value_loc(raw, "sla_return_pool"), f"lifecycle: sla_return_pool "
              f"'{returned.name}' must be a claim pool, not {returned.allocation}")
    return life


def route_fields(fields: Mapping[str, str]) -> dict[str, str]:
    return {**{k: v for k, v in fields.items() if k != "person_id"}, **ROUTE_FIELDS}


def check_routing_expressions(rules: RoutingRules, fields: Mapping[str, str],
                              as_of: dt.date | None = None,
                              problems: Problems | None = None) -> None:
    """Compile every condition against person_features `fields` (+ ROUTE_FIELDS); raise
    RuleError with every problem, or append them to `problems` when given."""
    collect = problems is not None
    problems = problems if problems is not None else []
    probe = as_of or dt.date(2000, 1, 1)
    names = route_fields(fields)
    for route in rules.routes:
        if route.when is not None:
            compile_located(route.when, names, "boolean", probe, f"route '{route.name}' when",
                            problems=problems)
    if rules.lifecycle.reactivate_when is not None:
        compile_located(rules.lifecycle.reactivate_when, names, "boolean", probe,
                        "lifecycle reactivate_when", problems=problems)
    if problems and not collect:
        raise RuleError(sorted_problems(problems))


# --------------------------------------------------------------------------- SQL builders

CFG_POOLS = "route_cfg_pools"
CFG_REPS = "route_cfg_reps"
CFG_MEMBERS = "route_cfg_members"
ACTIVITY = "route_activity"
DECIDED = "route_decided"
DEALT = "route_dealt"
NEW = "route_new"  # a view
TEMP_TABLES = (CFG_POOLS, CFG_REPS, CFG_MEMBERS, ACTIVITY, DECIDED, DEALT)


def date_literal(day: dt.date) -> str:
    return f"DATE '{day.isoformat()}'"


def ts_literal(moment: dt.datetime | dt.date) -> str:
    if not isinstance(moment, dt.datetime):
        moment = dt.datetime.combine(moment, dt.time(0, 0))
    return f"TIMESTAMP '{moment.isoformat(sep=' ', timespec='microseconds')}'"


def _opt(value: str | None) -> str:
    return "CAST(NULL AS VARCHAR)" if value is None else literal(value)


def _in(values) -> str:
    return ", ".join(literal(v) for v in values)


def _values_table(name: str, columns: list[tuple[str, str]], rows: list[list[str]]) -> str:
    """A small temp table from literal rows (typed even when empty)."""
    casts = ", ".join(f"CAST({c} AS {t}) AS {c}" for c, t in columns)
    if not rows:
        nulls = ", ".join(f"CAST(NULL AS {t}) AS {c}" for c, t in columns)
        return f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT {nulls} WHERE false"
    values = ",\n  ".join("(" + ", ".join(row) + ")" for row in rows)
    names = ", ".join(c for c, _ in columns)
    return (f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT {casts}\n"
            f"FROM (VALUES\n  {values}) AS v({names})")


def config_sql(rules: RoutingRules) -> list[str]:
    pools = [[literal(p.name), literal(p.allocation), str(i), _opt(p.team),
              "TRUE" if p.deals else "FALSE"] for i, p in enumerate(rules.pools)]
    reps = [[literal(p.name), literal(r.name), str(j), number(r.weight),
             "NULL" if rules.capacity(r.name) is None else str(rules.capacity(r.name))]
            for p in rules.pools for j, r in enumerate(p.reps)]
    members = [[literal(p.name), literal(rep)] for p in rules.pools for rep in rules.members(p)]
    return [
        _values_table(CFG_POOLS, [("pool", "VARCHAR"), ("allocation", "VARCHAR"),
                                  ("pool_pos", "INTEGER"), ("team", "VARCHAR"),
                                  ("deals", "BOOLEAN")], pools),
        _values_table(CFG_REPS, [("pool", "VARCHAR"), ("rep", "VARCHAR"),
                                 ("rep_pos", "INTEGER"), ("weight", "DOUBLE"),
                                 ("capacity", "BIGINT")], reps),
        _values_table(CFG_MEMBERS, [("pool", "VARCHAR"), ("rep", "VARCHAR")], members),
    ]


def route_column_sql(as_of: dt.date) -> Callable[[str], str]:
    """SQL of a field in a route condition: person_features is `f`, scores `s`,
    ownership `o`."""
    day = date_literal(as_of)
    builtin = {
        "score": "s.score", "grade": "s.grade", "pool": "o.pool", "owner": "o.owner",
        "status": "o.status",
        "status_days": f"date_diff('day', o.status_since, {day})",
        "days_in_pool": f"date_diff('day', o.assigned_at, {day})",
    }

    def column_sql(name: str) -> str:
        return builtin.get(name) or f"f.{ident(name)}"

    return column_sql


def activity_sql(rules: RoutingRules, as_of: dt.date) -> str:
    """Dormant persons with activity since the day they went dormant (`assigned_at`) and
    before the as-of day: an event (of `reactivate_on` types) or a new lead (last_seen)."""
    life = rules.lifecycle
    types = f" AND e.event_type IN ({_in(life.reactivate_on)})" if life.reactivate_on else ""
    until = ts_literal(as_of)
    return (f"CREATE OR REPLACE TEMP TABLE {ACTIVITY} AS\n"
            f"WITH dormant AS (\n"
            f"  SELECT person_id, CAST(assigned_at AS TIMESTAMP) AS since FROM ownership\n"
            f"  WHERE dormant AND assigned_at IS NOT NULL\n"
            f"), seen AS (\n"
            f"  SELECT sp.person_id, e.ts FROM events e\n"
            f"  JOIN subject_persons sp ON sp.subject = e.subject\n"
            f"  WHERE e.ts < {until}{types}\n"
            f"    AND sp.person_id IN (SELECT person_id FROM dormant)\n"
            f"  UNION ALL\n"
            f"  SELECT person_id, last_seen AS ts FROM person_features\n"
            f"  WHERE last_seen < {until} AND person_id IN (SELECT person_id FROM dormant)\n"
            f")\n"
            f"SELECT DISTINCT d.person_id FROM dormant d JOIN seen x ON x.person_id = d.person_id"
            f"\nWHERE x.ts >= d.since")


def _case_by_route(rules: RoutingRules, value: Callable[[Route], str], column="route_no",
                   default="NULL") -> str:
    if not rules.routes:
        return default
    whens = " ".join(f"WHEN {i} THEN {value(r)}" for i, r in enumerate(rules.routes, 1))
    return f"CASE {column} {whens} ELSE {default} END"


def decide_sql(rules: RoutingRules, fields: Mapping[str, str], as_of: dt.date,
               *, with_activity: bool = False) -> str:
    """ONE pass over person_features ⟗ ownership (⋈ scores, intent, activity): each
    person's cause (CAUSES, first that applies; `person_removed` for ownership rows whose
    person is gone), new pool, rule, and its new owner/status/reason assuming it is not
    dealt (`needs_deal` persons are then dealt and updated by `merge_dealt_sql`)."""
    day = date_literal(as_of)
    names = route_fields(fields)
    column_sql = route_column_sql(as_of)
    life = rules.lifecycle

    def cond(text: LocatedText | None, what: str) -> str:
        if text is None:
            return "TRUE"
        return compile_located(text, names, "boolean", as_of, what, column_sql).sql

    whens = " ".join(f"WHEN {cond(r.when, f'route {r.name!r} when')} THEN {i}"
                     for i, r in enumerate(rules.routes, 1))
    route_no = f"CASE {whens} END" if whens else "CAST(NULL AS INTEGER)"
    active = "a.person_id IS NOT NULL" if with_activity else "FALSE"
    if life.reactivate_when is not None:
        active = f"({active} OR coalesce({cond(life.reactivate_when, 'reactivate_when')}, "\
                 "FALSE))"
    joins = "LEFT JOIN scores s ON s.person_id = f.person_id\n"
    if life.dormant_after_days is not None:
        joins += "  LEFT JOIN lead_intent i ON i.person_id = o.person_id\n"
    if with_activity:
        joins += f"  LEFT JOIN {ACTIVITY} a ON a.person_id = o.person_id\n"
    joins += f"  LEFT JOIN {CFG_MEMBERS} m ON m.pool = o.pool AND m.rep = o.owner\n"
    intent_at = "i.intent_at" if life.dormant_after_days is not None else "CAST(NULL AS DATE)"

    causes = ["WHEN NOT present THEN 'person_removed'",
              f"WHEN old_owner IS NOT NULL AND old_locked_until >= {day} THEN 'locked'",
              "WHEN old_dormant AND active_again THEN 'reactivated'",
              "WHEN old_dormant THEN 'dormant'",
              "WHEN old_status = 'closed' THEN 'closed'"]
    if life.dormant_after_days is not None:
        causes.append(
            f"WHEN old_pool IS NOT NULL AND old_pool <> {literal(life.dormant_pool or '')} "
            f"AND coalesce(old_status, '') NOT IN ({_in(INTENT_STATUSES)}) "
            f"AND date_diff('day', greatest(old_assigned_at, coalesce(intent_at, "
            f"old_assigned_at)), {day}) >= {life.dormant_after_days} THEN 'no_intent'")
    if life.status_sla_days:
        limits = " ".join(f"WHEN {literal(s)} THEN {n}"
                          for s, n in life.status_sla_days.items())
        causes.append(
            f"WHEN old_owner IS NOT NULL AND old_status IN ({_in(life.status_sla_days)}) "
            f"AND date_diff('day', old_status_since, {day}) > CASE old_status {limits} END "
            f"THEN 'sla_expired'")
    reassigning = [(i, r) for i, r in enumerate(rules.routes, 1) if r.reassign]
    if reassigning:
        allowed = " ".join(
            f"WHEN {i} THEN " + (f"old_pool IN ({_in(r.from_pools)})" if r.from_pools
                                 else "TRUE") for i, r in reassigning)
        causes.append(
            f"WHEN route_no IN ({', '.join(str(i) for i, _ in reassigning)}) "
            f"AND old_pool IS NOT NULL AND old_pool <> route_pool "
            f"AND CASE route_no {allowed} ELSE FALSE END THEN 'reassigned'")
    pool_names = _in(p.name for p in rules.pools) or "NULL"
    causes += [f"WHEN old_pool IS NOT NULL AND old_pool NOT IN ({pool_names}) "
               f"THEN 'pool_removed'",
               "WHEN old_owner IS NOT NULL AND NOT is_member THEN 'rep_removed'",
               "WHEN old_owner IS NOT NULL THEN 'sticky'",
               "WHEN old_pool IS NOT NULL THEN 'waiting'",
               "ELSE 'new'"]
    cause = "CASE " + " ".join(causes) + " END"

    routed = _in(ROUTED_CAUSES)
    default_rule = "'default_pool'" if rules.default_pool else "CAST(NULL AS VARCHAR)"
    return f"""CREATE OR REPLACE TEMP TABLE {DECIDED} AS
WITH base AS (
  SELECT coalesce(f.person_id, o.person_id) AS person_id,
         f.person_id IS NOT NULL AS present, o.person_id IS NOT NULL AS known, s.score,
         o.pool AS old_pool, o.owner AS old_owner, o.status AS old_status,
         o.status_since AS old_status_since, o.assigned_at AS old_assigned_at,
         o.locked_until AS old_locked_until, coalesce(o.dormant, FALSE) AS old_dormant,
         o.reason AS old_reason, {intent_at} AS intent_at,
         m.rep IS NOT NULL AS is_member,
         {route_no} AS route_no,
         {active} AS active_again
  FROM person_features f
  FULL OUTER JOIN ownership o ON o.person_id = f.person_id
  {joins}), routed AS (
  SELECT *, {_case_by_route(rules, lambda r: literal(r.pool))} AS route_pool,
         {_case_by_route(rules, lambda r: literal(r.name))} AS route_name
  FROM base
), caused AS (
  SELECT *, {cause} AS cause FROM routed
), targeted AS (
  SELECT *,
         CASE WHEN cause IN ({routed}) THEN coalesce(route_pool, {_opt(rules.default_pool)})
              WHEN cause = 'no_intent' THEN {_opt(life.dormant_pool)}
              WHEN cause = 'sla_expired' THEN {_opt(life.sla_return_pool)}
              WHEN cause = 'person_removed' THEN NULL
              ELSE old_pool END AS new_pool,
         CASE WHEN cause IN ({routed}) THEN coalesce(route_name, CASE WHEN route_pool IS NULL
                   AND {_opt(rules.default_pool)} IS NOT NULL THEN {default_rule} END)
              WHEN cause = 'no_intent' THEN 'lifecycle.dormant_after_days'
              WHEN cause = 'sla_expired' THEN 'lifecycle.status_sla_days.' || old_status
              END AS new_rule,
         cause IN ({_in(RELEASED_CAUSES)}) OR cause = 'person_removed' AS released
  FROM caused
), dealing AS (
  SELECT t.*, t.released AND coalesce(p.deals, FALSE) AS needs_deal, p.allocation
  FROM targeted t LEFT JOIN {CFG_POOLS} p ON p.pool = t.new_pool
)
SELECT person_id, present, known, cause, score, needs_deal,
       old_pool, old_owner, old_status, old_status_since, old_assigned_at,
       old_locked_until, old_dormant, old_reason,
       new_pool AS pool,
       CASE WHEN released THEN CAST(NULL AS VARCHAR) ELSE old_owner END AS owner,
       CASE WHEN released THEN CAST(NULL AS VARCHAR) ELSE old_status END AS status,
       cause IN ('no_intent', 'dormant') AS dormant,
       CASE WHEN needs_deal THEN 'no_capacity'
            WHEN cause IN ('no_intent', 'dormant') THEN 'dormant'
            WHEN cause = 'person_removed' THEN NULL
            WHEN new_pool IS NULL THEN 'no_route'
            WHEN released THEN 'claim_pool'
            ELSE old_reason END AS reason,
       coalesce(new_rule, CASE WHEN needs_deal THEN 'allocation.' || allocation END) AS rule
FROM dealing"""


def dealt_table_sql() -> str:
    return (f"CREATE OR REPLACE TEMP TABLE {DEALT} (person_id VARCHAR, pool VARCHAR, "
            f"owner VARCHAR)")


def period_counts_sql(period_from: dt.date, as_of: dt.date, *, by_pool: bool) -> str:
    """Leads that became each rep's (per pool, or in all pools) in the capacity period:
    the assignment log plus what earlier waves of this run dealt."""
    pool_col = "new_pool AS pool, " if by_pool else ""
    pool_group = ", new_pool" if by_pool else ""
    dealt_col = "pool, " if by_pool else ""
    dealt_group = ", pool" if by_pool else ""
    keys = "rep, pool" if by_pool else "rep"
    return (f"SELECT {keys}, sum(n) AS n FROM (\n"
            f"    SELECT new_owner AS rep, {pool_col}count(*) AS n FROM assignments\n"
            f"    WHERE as_of >= {date_literal(period_from)} AND as_of <= {date_literal(as_of)}"
            f"\n      AND new_owner IS NOT NULL AND new_owner IS DISTINCT FROM old_owner\n"
            f"    GROUP BY new_owner{pool_group}\n"
            f"    UNION ALL\n"
            f"    SELECT owner AS rep, {dealt_col}count(*) AS n FROM {DEALT} "
            f"GROUP BY owner{dealt_group}\n"
            f"  ) AS counted GROUP BY {keys}")


def open_load_sql() -> str:
    """Open (not closed) leads each rep holds after this run's releases + earlier waves."""
    return (f"SELECT rep, count(*) AS n FROM (\n"
            f"    SELECT owner AS rep FROM {DECIDED}\n"
            f"    WHERE owner IS NOT NULL AND coalesce(status, '') <> 'closed'\n"
            f"    UNION ALL SELECT owner AS rep FROM {DEALT}\n"
            f"  ) AS held GROUP BY rep")


def deal_sql(pools: list[str], as_of: dt.date, period_from: dt.date) -> str:
    """Deal the persons waiting in `pools` (one wave) to reps: the slot matching described
    in the module docstring, set-based. Appends (person_id, pool, owner) to DEALT;
    persons beyond the pool's slots stay unassigned (no capacity)."""
    wave = _in(pools)
    return f"""INSERT INTO {DEALT} (person_id, pool, owner)
WITH todo AS (
  SELECT person_id, pool,
         row_number() OVER (PARTITION BY pool
                            ORDER BY score DESC NULLS LAST, person_id) AS person_no
  FROM {DECIDED} WHERE needs_deal AND pool IN ({wave})
), demand AS (
  SELECT pool, CAST(count(*) AS BIGINT) AS n FROM todo GROUP BY pool
), period_rep AS (
  {period_counts_sql(period_from, as_of, by_pool=False)}
), period_pool_rep AS (
  {period_counts_sql(period_from, as_of, by_pool=True)}
), open_rep AS (
  {open_load_sql()}
), reps AS (
  SELECT r.pool, r.rep, r.rep_pos, r.weight, d.n AS demand,
         CASE WHEN r.capacity IS NULL THEN NULL
              ELSE greatest(r.capacity - coalesce(pr.n, 0), 0) END AS room,
         CAST(CASE WHEN p.allocation = 'least_loaded' THEN coalesce(ol.n, 0)
                   ELSE coalesce(ppr.n, 0) END AS DOUBLE) AS base
  FROM {CFG_REPS} r
  JOIN {CFG_POOLS} p ON p.pool = r.pool
  JOIN demand d ON d.pool = r.pool
  LEFT JOIN period_rep pr ON pr.rep = r.rep
  LEFT JOIN period_pool_rep ppr ON ppr.pool = r.pool AND ppr.rep = r.rep
  LEFT JOIN open_rep ol ON ol.rep = r.rep
), unlimited AS (
  SELECT *, sum(CASE WHEN room IS NULL THEN weight END) OVER (PARTITION BY pool) AS free_weight
  FROM reps
), bounded AS (
  -- Reps without a capacity limit alone offer `demand` slots with keys up to top_key, so
  -- no slot above top_key is ever used: generate only those (about demand + reps rows).
  SELECT *, max(CASE WHEN room IS NULL
                     THEN (base + ceil(demand * weight / free_weight) - 0.5) / weight END)
            OVER (PARTITION BY pool) AS top_key
  FROM unlimited
), counted AS (
  SELECT pool, rep, rep_pos, weight, base,
         CAST(least(demand, coalesce(room, demand),
                    coalesce(floor(top_key * weight - base + 0.5) + 1, demand)) AS BIGINT)
           AS slots
  FROM bounded
), slots AS (
  SELECT pool, rep, rep_pos, (base + j - 0.5) / weight AS slot_key
  FROM (SELECT *, unnest(generate_series(1, slots)) AS j FROM counted WHERE slots > 0) AS s
), numbered AS (
  SELECT pool, rep,
         row_number() OVER (PARTITION BY pool ORDER BY slot_key, rep_pos) AS slot_no
  FROM slots
)
SELECT t.person_id, t.pool, n.rep
FROM todo t JOIN numbered n ON n.pool = t.pool AND n.slot_no = t.person_no"""


def merge_dealt_sql() -> str:
    """Dealt persons get their owner, status pending, reason dealt."""
    # UPDATE ... FROM: DuckDB >= 1.2 and Postgres; Spark would use MERGE INTO instead.
    return (f"UPDATE {DECIDED} SET owner = a.owner, status = 'pending', reason = 'dealt'\n"
            f"FROM {DEALT} a WHERE {DECIDED}.person_id = a.person_id")


def new_state_sql(as_of: dt.date) -> str:
    """A view of the decided state with what changed and the log reason."""
    day = date_literal(as_of)
    return f"""CREATE OR REPLACE TEMP VIEW {NEW} AS
SELECT *,
       CASE WHEN status IS DISTINCT FROM old_status THEN {day}
            ELSE old_status_since END AS status_since,
       CASE WHEN pool IS DISTINCT FROM old_pool OR owner IS DISTINCT FROM old_owner
            THEN {day} ELSE old_assigned_at END AS assigned_at,
       old_locked_until AS locked_until,
       CASE WHEN cause IN ('new', 'waiting') THEN reason ELSE cause END AS log_reason,
       (pool IS DISTINCT FROM old_pool OR owner IS DISTINCT FROM old_owner
        OR status IS DISTINCT FROM old_status) AS logged,
       (NOT present OR NOT known OR pool IS DISTINCT FROM old_pool
        OR owner IS DISTINCT FROM old_owner OR status IS DISTINCT FROM old_status
        OR dormant IS DISTINCT FROM old_dormant OR reason IS DISTINCT FROM old_reason)
         AS changed
FROM {DECIDED}"""


def summary_sql() -> str:
    """Everything the run summary counts, from one grouped pass (a few rows per pool)."""
    return (f"SELECT cause, present, old_pool, pool, owner, reason, log_reason, logged,\n"
            f"       changed, coalesce(status, '') = 'closed' AS closed, count(*) AS persons\n"
            f"FROM {NEW}\n"
            f"GROUP BY cause, present, old_pool, pool, owner, reason, log_reason, logged,\n"
            f"         changed, coalesce(status, '') = 'closed'")


OWNERSHIP_COLUMNS = ("person_id", "pool", "owner", "status", "status_since", "assigned_at",
                     "locked_until", "dormant", "reason")
LOG_COLUMNS = ("logged_at", "run_id", "as_of", "person_id", "old_pool", "new_pool",
               "old_owner", "new_owner", "old_status", "new_status", "rule", "reason")


def apply_sql(as_of: dt.date, run_id: int, logged_at: dt.datetime, *,
              logged: bool = True, changed: bool = True) -> list[str]:
    """Append the log, then replace the changed ownership rows (and drop gone ones).
    `logged` / `changed`: whether any row needs it (a quiet night skips the scans)."""
    day, at, cols = date_literal(as_of), ts_literal(logged_at), ", ".join(OWNERSHIP_COLUMNS)
    log = [f"INSERT INTO assignments ({', '.join(LOG_COLUMNS)})\n"
           f"SELECT {at}, {int(run_id)}, {day}, person_id, old_pool, pool, old_owner, owner,\n"
           f"       old_status, status, rule, log_reason\n"
           f"FROM {NEW} WHERE logged"]
    state = [f"DELETE FROM ownership WHERE person_id IN (SELECT person_id FROM {NEW} "
             f"WHERE changed AND known)",
             f"INSERT INTO ownership ({cols})\n"
             f"SELECT {cols} FROM {NEW} WHERE changed AND present"]
    return (log if logged else []) + (state if changed else [])


def drop_temp_sql() -> list[str]:
    return [f"DROP VIEW IF EXISTS {NEW}"] + [f"DROP TABLE IF EXISTS {t}" for t in TEMP_TABLES]


# --------------------------------------------------------------------------- lifecycle SQL


def claim_pick_sql(pool: str, as_of: dt.date, limit: int) -> str:
    """The `limit` best unowned, unlocked persons waiting in `pool` (score desc, id)."""
    return (f"SELECT o.person_id FROM ownership o LEFT JOIN scores s ON s.person_id = "
            f"o.person_id\nWHERE o.pool = {literal(pool)} AND o.owner IS NULL\n"
            f"  AND (o.locked_until IS NULL OR o.locked_until < {date_literal(as_of)})\n"
            f"ORDER BY s.score DESC NULLS LAST, o.person_id LIMIT {int(limit)}")


def rep_period_load_sql(rep: str, period_from: dt.date, as_of: dt.date) -> str:
    return (f"SELECT count(*) FROM assignments WHERE new_owner = {literal(rep)}\n"
            f"  AND new_owner IS DISTINCT FROM old_owner\n"
            f"  AND as_of >= {date_literal(period_from)} AND as_of <= {date_literal(as_of)}")


# --------------------------------------------------------------------------- rules check


def check_routing(ctx) -> Problems:
    """`rules check` checker: routing.yaml parses and validates (pools, reps, capacities,
    reachable routes, lifecycle), and its conditions compile against person_features
    fields + score/grade/pool/owner/status/status_days/days_in_pool."""
    path = routing_path(ctx.rules_dir)
    if not path.exists():
        ctx.warnings.append(f"{path}: not found (the route stage is skipped)")
        return []
    ctx.files.append(str(path))
    rules = load_routing_rules(ctx.rules_dir, ctx.fields())  # RuleError: collected by caller
    ctx.loaded["routing"] = rules
    scoring = ctx.loaded.get("scoring")
    if scoring is not None and scoring.grades:
        _warn_unknown_grades(ctx, rules, set(scoring.grade_names))
    return []


_GRADE_LITERALS = re.compile(
    r"\bgrade\s*(?:=|<>|!=)\s*('(?:[^']|'')*')|\bgrade\s+(?:not\s+)?in\s*\(([^)]*)\)",
    re.IGNORECASE)


def _warn_unknown_grades(ctx, rules: RoutingRules, grades: set[str]) -> None:
    """A route comparing grade with a value scoring.yaml never gives is most likely a typo."""
    for route in rules.routes:
        if route.when is None:
            continue
        for match in _GRADE_LITERALS.finditer(route.when.value):
            listed = match.group(1) or match.group(2) or ""
            for value in re.findall(r"'((?:[^']|'')*)'", listed):
                if value not in grades:
                    ctx.warnings.append(f"{route.loc}: route '{route.name}' compares grade "
                                        f"with '{value}', which scoring.yaml never gives "
                                        f"(grades: {', '.join(sorted(grades))})")
