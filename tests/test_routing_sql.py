"""The route stage's SQL builders: DuckDB text that sqlglot transpiles to Spark."""

from __future__ import annotations

import datetime as dt

import sqlglot
from routing_cases import AS_OF, ROUTED, rules

from leadctl.routing import allocation, sql


def test_routing_sql_builders_transpile_to_spark(tmp_path):
    r = rules(tmp_path, ROUTED.format(reassign="\n    reassign: true", default=""))
    fields = {"region": "string"}
    statements = [*sql.config_sql(r), sql.activity_sql(r, AS_OF),
                  sql.decide_sql(r, fields, AS_OF, with_activity=True),
                  allocation.dealt_table_sql(),
                  allocation.deal_sql(["sales"], AS_OF, r.period_start(AS_OF)),
                  sql.new_state_sql(AS_OF), sql.summary_sql(),
                  *sql.apply_sql(AS_OF, 1, dt.datetime(2026, 11, 4, 2, 0))]
    spark = [sqlglot.transpile(s, read="duckdb", write="spark")[0] for s in statements]
    assert "EXPLODE(SEQUENCE(1, slots))" in spark[6]
    assert "ROW_NUMBER() OVER (PARTITION BY pool ORDER BY slot_key" in spark[6]
