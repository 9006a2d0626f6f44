"""The route stage: lifecycle + routes + allocation → ownership and the assignment log.

Everything is computed into temporary tables first (`routing.sql` has the statements,
`routing.allocation` the allocation method); `dry_run` stops there and reports what
would move where and why. A real run appends one `assignments` row per person whose
pool, owner or status changes (none when nothing changes) and replaces the changed
`ownership` rows.

Deterministic: for the same person_features, scores, ownership, log, rules and as-of
the result is the same. Ties are broken in a documented order: persons by score
(highest first, unscored last) then person_id; reps by their slot key then their
position in the pool's `reps:` list; pools sharing reps in routing.yaml order.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from leadctl.routing.allocation import (
    deal_sql,
    dealt_table_sql,
    merge_dealt_sql,
    period_counts_sql,
)
from leadctl.routing.lifecycle import keep_log_order, log_stamp
from leadctl.routing.model import RoutingRules
from leadctl.routing.parse import check_routing_expressions
from leadctl.routing.sql import (
    activity_sql,
    apply_sql,
    config_sql,
    decide_sql,
    drop_temp_sql,
    new_state_sql,
    summary_sql,
)
from leadctl.routing.tables import CFG_POOLS, CFG_REPS, DEALT, NEW, ROUTED_WITH_KEY
from leadctl.sqltext import set_meta_sql
from leadctl.tagging.fields import person_features_fields
from leadctl.workspace import Workspace, rule_computation

DETAILS_SHOWN = 50


@rule_computation("route")  # an overflow for this data: exit 2
def run_routing(ws: Workspace, rules: RoutingRules, as_of: dt.date, *, dry_run: bool = False,
                run_id: int | None = None, fields: Mapping[str, str] | None = None,
                limit: int = DETAILS_SHOWN, in_order: bool = False) -> dict:
    """Route every person of person_features as of `as_of`; store unless `dry_run`.
    `in_order` (a DuckDB route or run that publishes): a row for a person with a row dated
    after `as_of` is refused (UsageError) before any is written. Returns the summary
    (with up to `limit` individual moves)."""
    summary: dict = {"as_of": as_of.isoformat(), "dry_run": dry_run,
                     "run_id": None if dry_run else run_id if run_id is not None
                     else ws.run_id or 0, "rules_hash": rules.rules_hash}
    if not rules.present:
        return {**summary, "skipped": f"no {rules.path.name}: nothing routed", "persons": 0}
    fields = dict(fields) if fields is not None else person_features_fields(ws)
    check_routing_expressions(rules, fields, as_of)
    if not ws.scalar("SELECT count(*) > 0 FROM (SELECT 1 FROM person_features LIMIT 1)"):
        # Not tagged yet: routing now would look like every owned person vanished.
        tagged = not ws.scalar("SELECT count(*) > 0 FROM (SELECT 1 FROM persons LIMIT 1)")
        return {**summary, "persons": 0, "skipped": "no persons to route" if tagged
                else "person_features is empty (run `leadctl tag` first)"}
    period_from, period_to = rules.period_start(as_of), rules.period_end(as_of)
    try:
        ws.script(config_sql(rules))
        with_activity = bool(rules.lifecycle.dormant_pool) and bool(
            ws.scalar("SELECT count(*) > 0 FROM ownership WHERE dormant"))
        if with_activity:
            ws.execute(activity_sql(rules, as_of))
        ws.execute(decide_sql(rules, fields, as_of, with_activity=with_activity))
        ws.execute(dealt_table_sql())
        for wave in rules.waves():
            ws.execute(deal_sql(wave, as_of, period_from, period_to))
        if ws.scalar(f"SELECT count(*) > 0 FROM {DEALT}"):
            ws.execute(merge_dealt_sql())
        ws.execute(new_state_sql(as_of))
        if in_order:
            keep_log_order(ws, f"SELECT person_id FROM {NEW} WHERE logged", as_of,
                           "the routing")
        groups = ws.rows(summary_sql())
        summary.update(_summary(ws, rules, groups, as_of, period_from, period_to, limit))
        if not dry_run:
            ws.script(apply_sql(as_of, summary["run_id"], log_stamp(ws, as_of),
                                logged=any(g["logged"] for g in groups),
                                changed=any(g["changed"] for g in groups)))
            ws.script(set_meta_sql(ROUTED_WITH_KEY, rules.rules_hash))
    finally:
        ws.script(drop_temp_sql())
    return summary


def _summary(ws: Workspace, rules: RoutingRules, groups: list[dict], as_of: dt.date,
             period_from: dt.date, period_to: dt.date, limit: int) -> dict:
    """Moves, causes, unassigned reasons, per-pool and per-rep counts of a computed run
    (`groups`: the rows of `summary_sql`), with up to `limit` individual moves."""
    details = ws.rows(f"SELECT person_id, old_pool, pool, old_owner, owner, old_status, status,"
                      f" rule, log_reason AS reason FROM {NEW} WHERE logged "
                      f"ORDER BY person_id LIMIT {int(limit)}"
                      ) if any(g["logged"] for g in groups) else []
    dealt = {(r["pool"], r["owner"]): int(r["n"]) for r in ws.rows(
        f"SELECT pool, owner, count(*) AS n FROM {DEALT} GROUP BY pool, owner")}
    period = {r["rep"]: int(r["n"]) for r in ws.rows(
        period_counts_sql(period_from, period_to, by_pool=False))}
    reps = ws.rows(f"SELECT r.rep, min(r.capacity) AS capacity FROM {CFG_REPS} r "
                   f"JOIN {CFG_POOLS} c ON c.pool = r.pool GROUP BY r.rep "
                   f"ORDER BY min(c.pool_pos), min(r.rep_pos), r.rep")

    present = [g for g in groups if g["present"]]
    moves: dict[tuple, int] = {}
    for g in groups:
        if g["logged"]:
            key = (g["old_pool"], g["pool"], g["log_reason"])
            moves[key] = moves.get(key, 0) + int(g["persons"])
    causes: dict[str, int] = {}
    unassigned: dict[str, int] = {}
    open_leads: dict[str, int] = {}
    for g in groups:
        causes[g["cause"]] = causes.get(g["cause"], 0) + int(g["persons"])
        if g["present"] and g["owner"] is None:
            reason = g["reason"] or "unknown"
            unassigned[reason] = unassigned.get(reason, 0) + int(g["persons"])
        if g["owner"] is not None and not g["closed"]:
            open_leads[g["owner"]] = open_leads.get(g["owner"], 0) + int(g["persons"])
    # Then the pools and reps routing.yaml no longer has that still hold persons (a
    # locked or closed lead stays with its rep whatever the file says): the lists add up
    # to the totals.
    listed = {pool.name: pool for pool in rules.pools}
    held = sorted({g["pool"] for g in present if g["pool"] is not None} - set(listed))
    pools = []
    for name in [*listed, *held]:
        pool = listed.get(name)
        in_pool = [g for g in present if g["pool"] == name]
        owned = sum(int(g["persons"]) for g in in_pool if g["owner"] is not None)
        persons = sum(int(g["persons"]) for g in in_pool)
        pools.append({"pool": name, "allocation": pool and pool.allocation,
                      "team": pool and pool.team, "in_rules": pool is not None,
                      "persons": persons, "owned": owned, "unowned": persons - owned,
                      "dealt": sum(n for (p, _), n in dealt.items() if p == name)})
    named = {r["rep"] for r in reps}
    reps = [{**r, "in_rules": True} for r in reps] + [
        {"rep": rep, "capacity": None, "in_rules": False}
        for rep in sorted({g["owner"] for g in present if g["owner"] is not None} - named)]
    return {
        "persons": sum(int(g["persons"]) for g in present),
        "changes": sum(moves.values()),
        "owned": sum(int(g["persons"]) for g in present if g["owner"] is not None),
        "removed": causes.get("person_removed", 0),
        "capacity_period": {"period": rules.capacity_period, "from": period_from.isoformat()},
        "causes": {c: causes[c] for c in sorted(causes)},
        "moves": [{"from": f, "to": t, "reason": r, "persons": n} for (f, t, r), n in sorted(
            moves.items(), key=lambda kv: (-kv[1], str(kv[0][0]), str(kv[0][1]), kv[0][2]))],
        "details": [{"person_id": d["person_id"],
                     "from": {"pool": d["old_pool"], "owner": d["old_owner"],
                              "status": d["old_status"]},
                     "to": {"pool": d["pool"], "owner": d["owner"], "status": d["status"]},
                     "rule": d["rule"], "reason": d["reason"]} for d in details],
        "details_shown": len(details),
        "unassigned": {k: unassigned[k] for k in sorted(unassigned)},
        "pools": pools,
        "reps": [{"rep": r["rep"], "capacity": r["capacity"], "in_rules": r["in_rules"],
                  "period_load": period.get(r["rep"], 0),
                  "room": None if r["capacity"] is None
                  else max(int(r["capacity"]) - period.get(r["rep"], 0), 0),
                  "dealt": sum(n for (_, o), n in dealt.items() if o == r["rep"]),
                  "open_leads": open_leads.get(r["rep"], 0)} for r in reps],
    }


def fixture_values(ws: Workspace, rules: RoutingRules, as_of: dt.date) -> dict[str, dict]:
    """`rules test` stage: route the case; expectation keys `pool`, `owner`, `status`,
    `route` (the rule that placed the person) and `reason`."""
    if not rules.present:
        return {}
    run_routing(ws, rules, as_of, run_id=ws.run_id or 0)
    rules_by_person = {r["person_id"]: r["rule"] for r in ws.rows(
        "SELECT person_id, rule FROM assignments ORDER BY logged_at, run_id")}
    return {r["person_id"]: {"pool": r["pool"], "owner": r["owner"], "status": r["status"],
                             "reason": r["reason"], "route": rules_by_person.get(r["person_id"])}
            for r in ws.rows("SELECT person_id, pool, owner, status, reason FROM ownership")}
