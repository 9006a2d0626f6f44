"""`leadctl report funnel NAME`: a funnel of `rules/funnels.yaml` over the published
events, per group of the chosen dimensions.

Reads the published state like the other views (one as-of per screen, `views.asof`):
events before the as-of day, tags as stored, the entry population as `find` reads it
(`pool`, `owner`, `status`… as of an `--as-of`). The result:

    {"funnel": NAME, "window_days": 14, "attribution": "first", "by": [...],
     "since": ..., "as_of": ..., "steps": [names],
     "groups": [{"key": {DIM: VALUE|null}, "entered": N, "open_windows": N,
                 "steps": [{"step", "persons", "conversion", "of_previous",
                            "median_hours_from_previous", "min_conversion",
                            "below_min"}, ...]}, ...]}

`conversion` is the step's persons over the persons entering (step 1), the share the
article's "under 1% registration response" rule reads and `min_conversion` compares;
`of_previous` over the previous step. Both rounded to 4 decimals, null without entries.
"""

from __future__ import annotations

import datetime as dt

from leadctl.campaigns.funnels import ATTRIBUTIONS, DEFAULT_BY, Dimension, Funnel
from leadctl.campaigns.funnels_parse import funnel_event_fields, resolve_dimension
from leadctl.campaigns.funnels_sql import (
    FunnelQuery,
    event_field_sql,
    funnel_sql,
    step_condition_sql,
)
from leadctl.errors import RuleError, UsageError
from leadctl.identity.cache import unmapped_events_sql, unmapped_events_warning
from leadctl.routing.screens import has_state_reason, latest_action_sql
from leadctl.rules.located import compile_located, did_you_mean
from leadctl.sqlfn import finite_guard
from leadctl.views.asof import screen_as_of
from leadctl.views.find import person_expression_fields, relation_sql
from leadctl.workspace import rule_computation


def find_funnel(rules, name: str) -> Funnel:
    """The funnel called `name` in the RuleSet (funnels.yaml missing: a rule error)."""
    funnels = rules.funnels
    if not funnels.present:
        raise RuleError([(None, f"{funnels.path} not found: define funnels in "
                          f"{funnels.path.name} (see the README, Campaign funnels)")])
    found = funnels.by_name.get(name)
    if found is None:
        known = list(funnels.by_name)
        raise UsageError(f"no funnel '{name}' in {funnels.path}{did_you_mean(name, known)} "
                         f"(funnels: {', '.join(known) or 'none'})")
    return found


def choose_dimensions(funnel: Funnel, by: list[str], rules) -> list[Dimension]:
    """`--by` names as dimensions: one of the funnel's `by:` when it declares them, else
    any event field or tag (`tag:NAME`). Comma-separated names are split."""
    names = [n.strip() for item in by for n in item.split(",") if n.strip()]
    fields = funnel_event_fields(rules.tags, rules.funnels.event_attributes)
    tag_names = {t.name for t in rules.tags.tags}
    allowed = {d.name: d for d in funnel.by}
    out: list[Dimension] = []
    for name in names:
        if funnel.by:
            dim = allowed.get(name) or allowed.get(f"tag:{name}")
            if dim is None:
                offered = list(allowed)
                raise UsageError(f"funnel '{funnel.name}' is not broken down by '{name}'"
                                 f"{did_you_mean(name, offered)} (its by: {', '.join(offered)})")
        else:
            dim = resolve_dimension(name, fields, tag_names)
            if isinstance(dim, str):
                raise UsageError(f"--by: {dim} (usual: {', '.join(DEFAULT_BY)})")
        if dim.name in {d.name for d in out}:
            raise UsageError(f"--by {dim.name} is given twice")
        out.append(dim)
    return out


def build_query(ws, rules, funnel: Funnel, dims: list[Dimension], as_of: dt.date,
                since: dt.date | None, attribution: str,
                routing_until: dt.date | None = None) -> FunnelQuery:
    """Compile the funnel's conditions (events) and entry population (the workspace's
    person fields, as `find` reads them: `pool`, `owner`, `status`… as of `routing_until`,
    the screen's, else the stored ones) into a FunnelQuery."""
    fields = funnel_event_fields(rules.tags, rules.funnels.event_attributes)

    def column_sql(name: str) -> str:
        return event_field_sql(name, fields, rules.tags.timezone)

    conditions = []
    for step in funnel.steps:
        where = None
        if step.where is not None:
            where = compile_located(step.where, fields, "boolean", as_of,
                                    f"funnel '{funnel.name}' step '{step.name}' where",
                                    column_sql=column_sql, finite_guard=finite_guard).sql
        conditions.append(step_condition_sql(step.events, where))
    entry_sql = None
    if funnel.entry is not None:
        types, options = person_expression_fields(ws)
        where = compile_located(funnel.entry, types, "boolean", as_of,
                                f"funnel '{funnel.name}' entry", **options).sql
        logged = routing_until is None or has_state_reason(ws)  # as find reads it
        entry_sql = f"SELECT p.person_id {relation_sql(where, routing_until, state_reason=logged)}"
    step_events = [e for step in funnel.steps for e in step.events]
    return FunnelQuery(conditions, funnel.window_days, as_of, since, dims, attribution,
                       entry_sql, exclusive_steps=len(step_events) == len(set(step_events)))


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def shape_groups(funnel: Funnel, dims: list[Dimension], rows: list[dict]) -> list[dict]:
    """Query rows → the report's groups (conversions, medians, flags)."""
    groups = []
    for row in rows:
        counts = [int(row[f"n{k}"]) for k in range(1, len(funnel.steps) + 1)]
        steps = []
        for k, step in enumerate(funnel.steps, start=1):
            persons = counts[k - 1]
            conversion = _share(persons, counts[0])
            minimum = funnel.min_conversion.get(step.name)
            steps.append({
                "step": step.name, "persons": persons, "conversion": conversion,
                "of_previous": conversion if k == 1 else _share(persons, counts[k - 2]),
                "median_hours_from_previous": None if k == 1 else row[f"h{k}"],
                "min_conversion": minimum,
                # the share itself, not its rounding (99 of 9,901 is below 1%); the
                # margin keeps 7 of 100 at a 7% minimum (0.07 is not exact in binary)
                "below_min": bool(minimum is not None and counts[0]
                                  and persons / counts[0] < minimum - 1e-12),
            })
        groups.append({"key": {d.name: row[f"g{i}"] for i, d in enumerate(dims)},
                       "entered": counts[0], "open_windows": int(row["open_windows"]),
                       "steps": steps})
    return groups


def funnel_report(ws, rules, name: str, *, by: list[str] | None = None,
                  since: dt.date | None = None, as_of: dt.date | None = None,
                  attribution: str | None = None) -> dict:
    funnel = find_funnel(rules, name)
    attribution = attribution or funnel.attribution
    if attribution not in ATTRIBUTIONS:
        raise UsageError(f"--attribution must be first or last, not '{attribution}'")
    dims = choose_dimensions(funnel, by or [], rules)
    screen = screen_as_of(ws, as_of)
    query = build_query(ws, rules, funnel, dims, screen.as_of, since, attribution,
                        routing_until=screen.routing_until)
    # a number its entry or a step's where: cannot compute for someone: exit 2, as in find
    with rule_computation(f"report funnel '{funnel.name}'"):
        rows = ws.rows(funnel_sql(query))  # one row per group: small
    # An entry reads routing as `find` does: a rep action since the last night shows at
    # the default as-of, and then `routing` is in as_of_differs, as there.
    as_of_view = screen.to_dict() if funnel.entry is None else screen.with_routing(
        ws.scalar(latest_action_sql(screen.routing_until)))
    warnings = []
    unmapped = unmapped_events_warning(ws.scalar(unmapped_events_sql()))
    if unmapped:
        warnings.append(unmapped)
    if since is not None and since > screen.as_of:
        warnings.append(f"--since {since.isoformat()} is after the as-of "
                        f"{screen.as_of.isoformat()}: nobody can have entered")
    return {"funnel": funnel.name, "description": funnel.description,
            "window_days": funnel.window_days, "attribution": attribution,
            "by": [d.name for d in dims], "since": since.isoformat() if since else None,
            **as_of_view, "steps": funnel.step_names,
            "min_conversion": funnel.min_conversion,
            "groups": shape_groups(funnel, dims, rows), "warnings": warnings}
