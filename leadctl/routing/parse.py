"""`rules/routing.yaml` → `RoutingRules`, or one RuleError listing every problem with
its file:line:col: pools and reps (allocation, weights, one capacity per rep), ordered
routes (unknown pools, routes that can never match), the lifecycle. With the
person_features fields, every condition is compiled too.

Also the `rules check` hook (`check`), which warns about routes comparing grade with a
value scoring.yaml never gives.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from leadctl.errors import RuleError
from leadctl.routing.allocation import ALLOCATIONS, DEFAULT_ALLOCATION
from leadctl.routing.model import (
    DEFAULT_LOCK_DAYS,
    MERGE_CRITERIA,
    PERIODS,
    ROUTING_FILE,
    STATUSES,
    Lifecycle,
    Pool,
    Rep,
    Route,
    RoutingRules,
    route_fields,
)
from leadctl.rules.bounds import (
    MAX_COUNT,
    MAX_DAYS,
    MAX_WEIGHT,
    WEIGHT_DECIMALS,
    item_text,
    plain_text,
    weight_units,
    whole_in,
    written,
)
from leadctl.rules.expr import compared_literals
from leadctl.rules.load import rule_path
from leadctl.rules.located import (
    Problems,
    RuleDoc,
    compile_located,
    did_you_mean,
    named_in,
    one_of,
    sorted_problems,
)

TOP_KEYS = ("capacity_period", "pools", "routes", "default_pool", "lifecycle", "on_merge")
ON_MERGE_KEYS = ("keep",)
POOL_KEYS = ("name", "team", "description", "allocation", "reps")
REP_KEYS = ("name", "weight", "capacity")
ROUTE_KEYS = ("name", "description", "when", "pool", "reassign", "from")
LIFECYCLE_KEYS = ("lock_days", "dormant_after_days", "dormant_pool", "reactivate_on",
                  "reactivate_when", "status_sla_days", "sla_return_pool")
REP_RE = re.compile(r"^[A-Za-z0-9_.@\-]{1,64}$")
EVENT_RE = re.compile(r"^[a-z0-9_][a-z0-9_.:\-]*$")



def load_routing_rules(rules_dir: Path | str | None,
                       fields: Mapping[str, str] | None = None) -> RoutingRules:
    """Parse and validate `rules_dir/routing.yaml` (pools, reps, capacities, reachable
    routes, lifecycle); with `fields`, compile its conditions too. Every problem is raised
    together as one RuleError. Without the file: `present=False` (stage skipped)."""
    path = rule_path(rules_dir, ROUTING_FILE)
    if not path.exists():
        return RoutingRules(path=path, present=False)
    d, doc = RuleDoc.read(path, "`pools:` and `routes:`", TOP_KEYS)
    rules = RoutingRules(path=path, rules_hash=d.file_hash())
    period = doc.get("capacity_period", "week")
    if period not in PERIODS:
        d.add(d.value_loc(doc, "capacity_period"), f"capacity_period must be one of "
              f"{', '.join(PERIODS)}, not '{period}'{did_you_mean(period, PERIODS)}")
    else:
        rules.capacity_period = period
    broken: set[str] = set()  # pools declared with a bad name: references say nothing
    rules.pools = _parse_pools(d, doc, broken, rules.warnings)
    known = {p.name for p in rules.pools}
    _check_capacities(d, rules)

    def pool_ref(parent: Mapping, key: str, what: str) -> str | None:
        value = parent.get(key)
        if value is None:
            return None
        if not isinstance(value, str):  # `pool: 010` names 010 (a broken pool), not 8
            value = as_written(value, plain_text(parent, key))
            if value is None:
                d.add(d.value_loc(parent, key), f"{what}: `{key}:` must name one pool")
                return None
        if value not in known:
            if value not in broken:
                d.add(d.value_loc(parent, key), f"{what}: unknown pool "
                      f"'{value}'{one_of(value, sorted(known))}")
            return None
        return str(value)

    rules.routes, unkept = _parse_routes(d, doc, pool_ref, known, broken)
    rules.default_pool = pool_ref(doc, "default_pool", "default_pool")
    catch_all = next((r for r in rules.routes if r.catch_all), None)
    if rules.default_pool and catch_all is not None:
        d.add(d.value_loc(doc, "default_pool"), f"default_pool '{rules.default_pool}' is "
              f"never used: route '{catch_all.name}' ({catch_all.loc}) matches every person")
    if doc.get("lifecycle") is not None:
        rules.lifecycle = _parse_lifecycle(d, doc, pool_ref, rules)
    if "on_merge" in doc:
        rules.merge_keep = _parse_on_merge(d, doc) or rules.merge_keep
    _check_literals(d, rules, known, broken)
    if fields is not None:
        check_routing_expressions(rules, fields, problems=d.problems, also=unkept)
    d.raise_if_problems()
    return rules


def _parse_pools(d: RuleDoc, doc: Mapping, broken: set[str],
                 warnings: list[str]) -> list[Pool]:
    raw = doc.get("pools")
    if raw is None:
        d.add(d.loc(doc), "routing.yaml: missing `pools:` (a list of {name, allocation, reps})")
        return []
    if not isinstance(raw, list):
        d.add(d.value_loc(doc, "pools"), "`pools:` must be a list of {name, allocation, reps}")
        return []
    pools: list[Pool] = []
    twice: list = []
    for item, name, loc in d.named_items(raw, "pool", POOL_KEYS,
                                         "`name:` and `allocation:`", broken, twice):
        pools.append(_parse_pool(d, item, name, loc, warnings))
    for item, name, loc in twice:  # not kept: checked only
        _parse_pool(d, item, name, loc, [])
    return pools


def _parse_pool(d: RuleDoc, item: Mapping, name: str, loc, warnings: list[str]) -> Pool:
    what = f"pool '{name}'"
    allocation = item.get("allocation", DEFAULT_ALLOCATION)
    valid = named_in(allocation, ALLOCATIONS)  # else what depends on it is not checked
    if not valid:
        d.add(d.value_loc(item, "allocation"), f"{what}: allocation must be one of "
              f"{', '.join(ALLOCATIONS)}, not '{allocation}'"
              f"{did_you_mean(allocation, ALLOCATIONS)}")
        allocation = DEFAULT_ALLOCATION
    team = item.get("team")
    if team is not None and not isinstance(team, str):  # `team: 010` is 010, as a rep's name
        team = as_written(team, plain_text(item, "team"))
        if team is None:
            d.add(d.value_loc(item, "team"), f"{what}: `team:` must be a name")
    pool = Pool(name=name, allocation=allocation, team=team,
                description=str(item.get("description") or ""), loc=loc)
    pool.reps = _parse_reps(d, item, pool, valid)
    # The default is claim, but reps listed without an allocation more often mean a
    # forgotten `allocation:` than a claim pool: its leads would never be dealt.
    if "allocation" not in item and pool.reps:
        warnings.append(f"{loc}: pool '{name}' lists reps but no allocation: its leads "
                        "wait for a claim (add allocation: claim to say so, or "
                        f"{', '.join(a for a in ALLOCATIONS if a != 'claim')})")
    if pool.deals and not pool.reps:
        d.add(d.value_loc(item, "reps") if "reps" in item else loc,
              f"{what}: allocation {allocation} needs `reps:` (at least one rep)")
    return pool


def _parse_reps(d: RuleDoc, item: Mapping, pool: Pool, valid_allocation: bool) -> list[Rep]:
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
        if name is not None and not isinstance(name, str):  # `010` is the rep 010, not 8
            name = as_written(name, item_text(raw, index) if spec is not entry
                              else plain_text(spec, "name"))
        if name is None and isinstance(entry, Mapping) and d.mistyped(entry, "name"):
            continue  # its unknown key is the one problem
        if not isinstance(name, str) or not REP_RE.match(name):
            d.add(where, f"{what}: rep name '{name}' must be a word (letters, digits, _ . @ -)"
                  if name is not None else f"{what}: each rep needs a `name:`")
            continue
        if name in seen:
            d.add(where, f"{what}: rep '{name}' is listed twice")
            continue
        seen.add(name)
        weight = spec.get("weight", 1)
        units = weight_units(weight)
        if units is None:  # not a number, 0 or less, NaN, infinite, too large or too fine
            d.add(d.value_loc(spec, "weight"), f"{what}: rep '{name}': weight must be a number "
                  f"from {10**-WEIGHT_DECIMALS:f} to {MAX_WEIGHT} with at most "
                  f"{WEIGHT_DECIMALS} decimals, not {written(spec, 'weight')}")
            weight, units = 1, 10**WEIGHT_DECIMALS
        elif weight != 1 and valid_allocation and not ALLOCATIONS[pool.allocation].weighted:
            d.add(d.value_loc(spec, "weight"), f"{what}: rep '{name}' has a weight, but the "
                  f"pool's allocation is {pool.allocation} (use allocation: weighted)")
        capacity = spec.get("capacity")
        if capacity is not None and (not isinstance(capacity, int) or isinstance(capacity, bool)
                                     or capacity < 0):
            d.add(d.value_loc(spec, "capacity"), f"{what}: rep '{name}': capacity must be a "
                  "whole number of leads per period (0 or more)")
            capacity = None
        elif capacity is not None and capacity > MAX_COUNT:
            d.add(d.value_loc(spec, "capacity"), f"{what}: rep '{name}': capacity must be a "
                  f"whole number of leads per period from 0 to {MAX_COUNT}, not "
                  f"{written(spec, 'capacity')}")
            capacity = None
        reps.append(Rep(name, float(weight), capacity, where, share=units))
    # Whole millionths over their gcd: the smallest whole numbers in the weights' ratio
    divisor = math.gcd(*(r.share for r in reps)) or 1
    return [replace(r, share=r.share // divisor) for r in reps]


def as_written(value, text: str | None) -> str | None:
    """A name YAML read as no text (`010` as 8, `1.50` as 1.5, `no` as false) as the file
    writes it; None for a collection (no name)."""
    if isinstance(value, (Mapping, list)):
        return None
    return text if text is not None else str(value)


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


def _parse_routes(d: RuleDoc, doc: Mapping, pool_ref, known: set[str],
                  broken: set[str]) -> tuple[list[Route], list[Route]]:
    """The routes kept, and those whose name is taken (not kept; checked only)."""
    raw = doc.get("routes")
    if raw is None:
        d.add(d.loc(doc), "routing.yaml: missing `routes:` (an ordered list of {name, when, "
              "pool}; first match wins)")
        return [], []
    if not isinstance(raw, list):
        d.add(d.value_loc(doc, "routes"), "`routes:` must be a list of {name, when, pool}")
        return [], []
    routes: list[Route] = []
    catch_all: Route | None = None
    twice: list = []
    for item, name, loc in d.named_items(raw, "route", ROUTE_KEYS,
                                         "`name:`, `when:` and `pool:`", duplicates=twice):
        route = _parse_route(d, item, name, loc, pool_ref, known, broken)
        if catch_all is not None:
            d.add(loc, f"route '{name}' can never match: route '{catch_all.name}' above "
                  f"({catch_all.loc}) matches every person")
        elif route.catch_all:
            catch_all = route
        routes.append(route)
    unkept = [_parse_route(d, item, name, loc, pool_ref, known, broken)
              for item, name, loc in twice]  # checked only
    return routes, unkept


def _parse_route(d: RuleDoc, item: Mapping, name: str, loc, pool_ref, known: set[str],
                 broken: set[str]) -> Route:
    what = f"route '{name}'"
    if d.absent(item, "pool"):
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
        route.from_pools = _parse_from(d, item, what, route.reassign, known, broken)
    return route


def _parse_from(d: RuleDoc, item: Mapping, what: str, reassign: bool, known: set[str],
                broken: set[str]) -> tuple[str, ...]:
    if not reassign and not d.mistyped(item, "reassign"):
        d.add(d.key_loc(item, "from"), f"{what}: `from:` only applies with `reassign: true`")
    raw = item["from"]
    sources = raw if isinstance(raw, list) else [raw]
    out: list[str] = []
    for index, source in enumerate(sources):
        where = d.item_loc(raw, index) if isinstance(raw, list) else d.value_loc(item, "from")
        if not isinstance(source, str):  # `from: 010` names 010, not 8
            source = as_written(source, item_text(raw, index) if isinstance(raw, list)
                                else plain_text(item, "from"))
        if source is None:
            d.add(where, f"{what}: from: must be a pool name or a list of pool names")
        elif source in known:
            out.append(source)
        elif source not in broken:
            d.add(where, f"{what}: from: unknown pool '{source}'{one_of(source, sorted(known))}")
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
        if whole_in(value, minimum, MAX_DAYS) is None:
            d.add(d.value_loc(raw, key), f"lifecycle: {key} must be a whole number of days "
                  f"from {minimum} to {MAX_DAYS}, not {written(raw, key)}")
            return None
        return value

    lock = days("lock_days", 0)
    life.lock_days = DEFAULT_LOCK_DAYS if lock is None else lock
    life.dormant_after_days = days("dormant_after_days", 1)
    life.dormant_pool = pool_ref(raw, "dormant_pool", "lifecycle dormant_pool")
    if (raw.get("dormant_after_days") is None) != (raw.get("dormant_pool") is None):
        d.add(d.loc(raw), "lifecycle: dormant_after_days and dormant_pool go together")
    dormant = rules.pool(life.dormant_pool)
    if dormant is not None and dormant.deals:
        d.add(d.value_loc(raw, "dormant_pool"), f"lifecycle: dormant_pool '{dormant.name}' "
              f"must be a claim pool, not {dormant.allocation}")
    if raw.get("reactivate_on") is not None:
        value = raw["reactivate_on"]
        events = value if isinstance(value, list) else [value]
        # `any` (any case, alone or in the list) is every event, not an event type 'any'
        if any(isinstance(e, str) and e.strip().lower() == "any" for e in events):
            events = []
        elif not all(isinstance(e, str) and EVENT_RE.match(e.strip().lower()) for e in events):
            d.add(d.value_loc(raw, "reactivate_on"), "lifecycle: reactivate_on must be `any` "
                  "or a list of event types")
            events = []
        life.reactivate_on = tuple(e.strip().lower() for e in events) or None
        for index, event in enumerate(events):
            life.reactivate_on_locs.setdefault(event.strip().lower(), d.item_loc(
                value, index) if isinstance(value, list) else d.value_loc(raw, "reactivate_on"))
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
                          f"status '{status}'{one_of(status, STATUSES[:-1])}")
                elif whole_in(limit, 1, MAX_DAYS) is None:
                    d.add(d.value_loc(sla, status), f"lifecycle: status_sla_days: {status} "
                          f"must be a whole number of days from 1 to {MAX_DAYS}, not "
                          f"{written(sla, status)}")
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


def _parse_on_merge(d: RuleDoc, doc: Mapping) -> tuple[str, ...] | None:
    """`on_merge: {keep: [criterion, ...]}`: what a merge of persons keeps of their routing
    states (model.MERGE_CRITERIA); None when invalid (the problem is recorded)."""
    raw = doc["on_merge"]
    shape = f"a list of criteria: {', '.join(MERGE_CRITERIA)}"
    if not isinstance(raw, Mapping):
        d.add(d.value_loc(doc, "on_merge"), f"on_merge: must be a mapping with `keep:` ({shape})")
        return None
    d.unknown_keys(raw, ON_MERGE_KEYS, "on_merge")
    keep = raw.get("keep")
    if not isinstance(keep, list) or not keep:
        d.add(d.value_loc(raw, "keep") if "keep" in raw else d.loc(raw),
              f"on_merge: `keep:` must be {shape}")
        return None
    out: list[str] = []
    for index, criterion in enumerate(keep):
        where = d.item_loc(keep, index)
        if not isinstance(criterion, str) or criterion not in MERGE_CRITERIA:
            d.add(where, f"on_merge: keep: unknown criterion '{criterion}'"
                  f"{one_of(str(criterion), list(MERGE_CRITERIA))}")
        elif criterion in out:
            d.add(where, f"on_merge: keep: '{criterion}' is listed twice")
        else:
            out.append(criterion)
    return tuple(out) if len(out) == len(keep) else None


def check_routing_expressions(rules: RoutingRules, fields: Mapping[str, str],
                              as_of: dt.date | None = None,
                              problems: Problems | None = None,
                              also: list[Route] = ()) -> None:
    """Compile every condition against person_features `fields` (+ ROUTE_FIELDS), with
    those of routes `also` (defined twice: not kept); raise RuleError with every problem,
    or append them to `problems` when given."""
    collect = problems is not None
    problems = problems if problems is not None else []
    probe = as_of or dt.date(2000, 1, 1)
    names = route_fields(fields)
    for route in [*rules.routes, *also]:
        if route.when is not None:
            compile_located(route.when, names, "boolean", probe, f"route '{route.name}' when",
                            problems=problems)
    if rules.lifecycle.reactivate_when is not None:
        compile_located(rules.lifecycle.reactivate_when, names, "boolean", probe,
                        "lifecycle reactivate_when", problems=problems)
    if problems and not collect:
        raise RuleError(sorted_problems(problems))


def _check_literals(d: RuleDoc, rules: RoutingRules, known: set[str],
                    broken: set[str]) -> None:
    """A condition comparing `pool` with a pool routing.yaml does not declare, or `status`
    with a status leads never have, never holds: an error at the literal, with the near
    miss (a broken pool's problem is reported where it is declared)."""
    conditions = [(f"route '{r.name}' when", r.when) for r in rules.routes]
    conditions.append(("lifecycle reactivate_when", rules.lifecycle.reactivate_when))
    for what, text in conditions:
        if text is None:
            continue
        for offset, value in compared_literals("pool", text.value):
            if value not in known and value not in broken:
                d.add(text.loc_at(offset), f"{what}: unknown pool "
                      f"'{value}'{one_of(value, sorted(known))}")
        for offset, value in compared_literals("status", text.value):
            if value not in STATUSES:
                d.add(text.loc_at(offset), f"{what}: unknown status "
                      f"'{value}'{one_of(value, STATUSES)}")


def unknown_grade_warnings(rules: RoutingRules, grades: set[str]) -> list[str]:
    """A route comparing grade with a value scoring.yaml never gives is most likely a typo."""
    warnings = []
    for route in rules.routes:
        if route.when is None:
            continue
        for _, value in compared_literals("grade", route.when.value):
            if value not in grades:
                warnings.append(f"{route.loc}: route '{route.name}' compares grade "
                                f"with '{value}', which scoring.yaml never gives"
                                f"{did_you_mean(value, sorted(grades))} "
                                f"(grades: {', '.join(sorted(grades))})")
    return warnings
