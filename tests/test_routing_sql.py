"""The route stage's SQL builders: DuckDB text that the Spark engine translates."""

from __future__ import annotations

import datetime as dt

from routing_cases import AS_OF, ROUTED, rules

from leadctl.routing import allocation, sql
from leadctl.spark.translate import translate


def test_routing_sql_builders_transpile_to_spark(tmp_path):
    r = rules(tmp_path, ROUTED.format(reassign="\n    reassign: true", default=""))
    fields = {"region": "string"}
    statements = [*sql.config_sql(r), sql.activity_sql(r, AS_OF),
                  sql.decide_sql(r, fields, AS_OF, with_activity=True),
                  allocation.dealt_table_sql(),
                  allocation.deal_sql(["sales"], AS_OF, r.period_start(AS_OF), r.period_end(AS_OF)),
                  sql.new_state_sql(AS_OF), sql.summary_sql(),
                  *sql.apply_sql(AS_OF, 1, dt.datetime(2026, 11, 4, 2, 0))]
    actions = [translate(s) for s in statements]
    assert [(a.kind, a.name) for a in actions] == [
        ("materialize", "route_cfg_pools"), ("materialize", "route_cfg_reps"),
        ("materialize", "route_cfg_members"), ("materialize", "route_activity"),
        ("materialize", "route_decided"), ("empty", "route_dealt"), ("append", "route_dealt"),
        ("view", "route_new"), ("query", None), ("append", "assignments"),
        ("delete", "ownership"), ("append", "ownership")]
    deal = actions[6].sql
    assert "EXPLODE(SEQUENCE(1, slots))" in deal
    assert ("ROW_NUMBER() OVER (PARTITION BY pool ORDER BY slot_key NULLS LAST, rep_pos NULLS "
            "LAST) AS slot_no") in deal
    assert "as_of >= CAST('2026-11-02' AS DATE) AND as_of <= CAST('2026-11-08' AS DATE)" in deal
