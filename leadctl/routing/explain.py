"""One person's routing: the routing part of `leadctl explain`.

Reads what the route stage and the lifecycle commands stored (ownership, the latest
assignment log rows) and, where rules/routing.yaml still parses, the definition of
the route that last placed the person. Broken rules only hide that definition.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from leadctl.errors import RuleError
from leadctl.routing.model import RoutingRules
from leadctl.routing.parse import load_routing_rules
from leadctl.routing.screens import locked_at, person_log, placing_route, routing_state
from leadctl.routing.tables import ROUTED_WITH_KEY
from leadctl.rules.load import changed_since_note
from leadctl.sqltext import meta_value_sql
from leadctl.workspace import Workspace


def explain_routing(ws: Workspace, person_id: str, rules_dir: Path | None,
                    as_of: dt.date, actions_until: dt.date | None = None,
                    rebuild: bool = True) -> dict:
    """The person's routing state as of `actions_until` (default `as_of`;
    `screens.routing_state`), with `locked`: its sale lock active at `as_of` from a sale
    made by then (`screens.locked_at`); its latest assignment log rows dated by then
    (newest first) and the route that last placed it; or `{"available": False, "note":
    ...}` when it was not routed by then. `rebuild`: as `routing_state`'s."""
    until = actions_until or as_of
    log = person_log(ws, person_id, until=until)
    state = routing_state(ws, person_id, until, log, rebuild)
    if state:
        state["locked"] = locked_at(ws, person_id, state["locked_until"], as_of, until)
    if not state and not log:
        routed_later = bool(person_log(ws, person_id, 1))
        return {"available": False, "note": f"not routed by {until}" if routed_later
                else "not routed yet (run `leadctl route`)"}
    out: dict[str, Any] = {"state": state, "log": log}
    try:
        rules = load_routing_rules(rules_dir)
    except RuleError as exc:  # broken rules only hide the definition, and say so
        return {**out, "note": f"rule definitions not shown: {str(exc).splitlines()[0]}"}
    placed_by = placing_route(ws, person_id, [r.name for r in rules.routes],
                              (state or {}).get("pool"), until)
    route = route_definition(rules, placed_by) if placed_by else None
    if route:
        out["route"] = route
    note = changed_since_note(ws.scalar(meta_value_sql(ROUTED_WITH_KEY)), rules.rules_hash,
                              "routing.yaml", "this route was", "route")
    if note:
        out["note"] = note
    return out


def route_definition(rules: RoutingRules, name: str) -> dict | None:
    """Where and how route `name` is defined in routing.yaml (None: no such route)."""
    for route in rules.routes:
        if route.name == name:
            return {"route": route.name, "at": str(route.loc) if route.loc else None,
                    "when": route.when.value if route.when else None, "pool": route.pool,
                    "description": route.description or None}
    return None
