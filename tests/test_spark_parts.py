"""The Spark executor's tables are unions of parts: a write costs what it changes.

An INSERT materialises only its rows (a new part) and returns their count, as DuckDB
does; DELETE and UPDATE rewrite only the parts holding a row they match; a table of
more than MAX_PARTS parts is compacted into one; a table created empty is replaced by
its first INSERT's part. `counts["materialised"]` counts
every table write that materialised rows."""

from __future__ import annotations

import pytest

from tests.test_spark_parity import MISSING

pytestmark = [pytest.mark.spark, pytest.mark.skipif(MISSING is not None, reason=MISSING or "")]


@pytest.fixture(scope="module")
def ws():
    from leadctl.spark.executor import SparkWorkspace, spark_session

    workspace = SparkWorkspace(spark_session("local[2]"))
    yield workspace
    workspace.close()


def _rows(ws, table):
    return sorted(ws.execute(f"SELECT * FROM {table}").fetchall())


def _written(ws, statement):
    before = ws.counts.get("materialised", 0)
    ws.execute(statement)
    return ws.counts.get("materialised", 0) - before


def test_writes_rewrite_only_the_parts_they_change(ws):
    ws.execute("CREATE OR REPLACE TABLE t (k INTEGER, v VARCHAR)")
    for i in range(3):
        inserted = ws.execute(f"INSERT INTO t VALUES ({2 * i}, 'a'), ({2 * i + 1}, 'b')")
        assert inserted.fetchone() == (2,)
    assert len(ws.parts["t"]) == 3  # the first insert replaced the empty table

    assert _written(ws, "DELETE FROM t WHERE k = 3") == 1  # one part holds k = 3
    assert _written(ws, "DELETE FROM t WHERE k = 99") == 0
    assert _written(ws, "UPDATE t SET v = 'z' WHERE k = 4") == 1
    ws.execute("CREATE OR REPLACE TABLE s AS SELECT 5 AS k, 'y' AS w")
    assert _written(ws, "UPDATE t SET v = s.w FROM s WHERE t.k = s.k") == 1
    assert len(ws.parts["t"]) == 3
    assert _rows(ws, "t") == [(0, "a"), (1, "b"), (2, "a"), (4, "z"), (5, "y")]

    # a write matching half of the parts or more leaves one
    assert _written(ws, "UPDATE t SET v = 'x' WHERE k >= 0") == 1
    assert len(ws.parts["t"]) == 1
    assert _rows(ws, "t") == [(0, "x"), (1, "x"), (2, "x"), (4, "x"), (5, "x")]


def test_a_table_of_many_parts_is_compacted(ws, monkeypatch):
    from leadctl.spark import executor

    monkeypatch.setattr(executor, "MAX_PARTS", 3)
    ws.execute("CREATE OR REPLACE TABLE m (k INTEGER)")
    for k in range(4):  # the fourth insert makes a fourth part
        ws.execute(f"INSERT INTO m VALUES ({k})")
    assert len(ws.parts["m"]) == 1
    assert _rows(ws, "m") == [(0,), (1,), (2,), (3,)]


def test_renaming_keeps_the_parts(ws):
    ws.execute("CREATE OR REPLACE TABLE a (k INTEGER)")
    ws.execute("INSERT INTO a VALUES (1)")
    ws.execute("ALTER TABLE a RENAME TO b")
    assert not ws.table_exists("a")
    assert len(ws.parts["b"]) == 1
    assert _written(ws, "DELETE FROM b WHERE k = 1") == 1
    assert _rows(ws, "b") == []


def test_a_nights_history_stored_then_sorted_is_duckdbs(ws):
    """The tag history of a night with few changes (`staged`: stored, then sorted, so
    Spark's sort does not compute the UNION ALL twice): DuckDB's rows, in its order."""
    import datetime as dt

    import duckdb

    from leadctl.tagging.stage import NEW_FEATURES, StoredTag, compare_sql, history_sql

    tags = [StoredTag("visits", "number", "BIGINT"), StoredTag("tier", "text", "VARCHAR")]
    new = "('P3', 1, 'a'), ('P1', 2, NULL), ('P2', NULL, 'b'), ('P4', 5, 'c')"
    old = "('P1', 1, 'a'), ('P2', 3, 'b'), ('P4', 5, 'c'), ('P5', 1, 'x')"
    statements = [
        f"CREATE OR REPLACE TABLE {NEW_FEATURES} AS SELECT * FROM (VALUES {new}) "
        "t(person_id, visits, tier)",
        "CREATE OR REPLACE TABLE person_features AS SELECT * FROM (VALUES "
        f"{old}) t(person_id, visits, tier)",
        "CREATE OR REPLACE TABLE tag_history (run_id INTEGER, as_of DATE, person_id VARCHAR, "
        "tag VARCHAR, old_value JSON, new_value JSON)",
        compare_sql(tags, tags),
        *history_sql(tags, tags, dt.date(2026, 11, 2), 2, staged=True)]
    con = duckdb.connect()
    for statement in statements:
        ws.execute(statement)
        con.execute(statement)
    expected = con.execute("SELECT * FROM tag_history").fetchall()
    assert [r[2:4] for r in expected] == [
        ("P1", "tier"), ("P1", "visits"), ("P2", "visits"), ("P3", "tier"), ("P3", "visits"),
        ("P5", "tier"), ("P5", "visits")]
    assert [tuple(r) for r in ws.frame("tag_history").collect()] == expected
    assert not ws.table_exists("tag_history_changes")


def test_to_json_on_spark_is_duckdbs_text(ws):
    """Integers cast for to_json take their decimal text on Spark; everything else goes
    through Spark's to_json with the brackets cut by position: DuckDB's text either way
    (quotes, backslashes, newlines, brackets inside values, lists, nulls)."""
    import duckdb

    setup = ("CREATE OR REPLACE TABLE j AS SELECT k, i, CAST(d AS DOUBLE) AS d, s, l, b, w "
             "FROM (VALUES "
             "(1, CAST(0 AS BIGINT), 0.1916, 'a\"b\\c', ['x', 'y'], true, 3), "
             "(2, CAST(-5 AS BIGINT), -2.25, '上海市\n', ['['], false, -7), "
             "(3, CAST(9007199254740993 AS BIGINT), 1.5, ']', [], NULL, NULL), "
             "(4, NULL, NULL, NULL, NULL, NULL, 1234567)) t(k, i, d, s, l, b, w)")
    query = ("SELECT k, to_json(i), to_json(d), to_json(s), to_json(l), to_json(b), "
             "to_json(CAST(w AS BIGINT)), to_json(CAST(w AS INTEGER)) FROM j ORDER BY k")
    con = duckdb.connect()
    con.execute(setup)
    ws.execute(setup)
    expected = con.execute(query).fetchall()
    assert expected[1] == (2, "-5", "-2.25", '"上海市\\n"', '["["]', "false", "-7", "-7")
    assert [tuple(r) for r in ws.execute(query).fetchall()] == expected


def test_a_doubles_json_on_spark_is_duckdbs_text(ws):
    """Java writes 1.23456785E7 and 1.0E-4 where DuckDB writes 12345678.5 and 0.0001 (a
    tag value's JSON, through json_value_sql): Spark's text is rewritten to DuckDB's."""
    import duckdb

    values = [-5e-7, -2.5e-6, 1e-4, 1.2e-4, 1e-5, 0.001, 0.1, 100.0, 9999999.5, 10000000.5,
              12345678.5, -123456789012.25, 1.5e15, 1.5e16, 1e20, 9.5e20, 1e21, 1.5e-10,
              -1.5e25, 1e-300, None]
    setup = ("CREATE OR REPLACE TABLE dj AS SELECT * FROM (VALUES "
             + ", ".join(f"({k}, CAST({'NULL' if v is None else repr(v)} AS DOUBLE))"
                         for k, v in enumerate(values)) + ") t(k, d)")
    query = "SELECT k, to_json(CAST(d AS DOUBLE)) FROM dj ORDER BY k"
    con = duckdb.connect()
    con.execute(setup)
    ws.execute(setup)
    expected = con.execute(query).fetchall()
    assert [e[1] for e in expected[:3]] == ["-5e-7", "-0.0000025", "0.0001"]
    assert expected[10][1] == "12345678.5" and expected[16][1] == "1e21"
    assert [tuple(r) for r in ws.execute(query).fetchall()] == expected


def test_a_materialized_cte_is_computed_once_and_gives_duckdbs_rows(ws):
    import duckdb

    statement = ("CREATE OR REPLACE TABLE m AS WITH v AS (SELECT * FROM (VALUES (1), (2), (4)) "
                 "t(x)), l0 AS MATERIALIZED (SELECT x * 10 AS x FROM v) "
                 "SELECT l0.x, a.s FROM l0 CROSS JOIN (SELECT sum(x) AS s FROM l0) a")
    assert _written(ws, statement) == 2  # the CTE, then the table
    assert _rows(ws, "m") == duckdb.sql(statement.split(" AS ", 1)[1]).fetchall() == [
        (10, 70), (20, 70), (40, 70)]
    assert not ws.spark.catalog.tableExists("__cte_l0")


def test_values_hidden_by_an_as_of_moved_back_are_duckdbs(ws):
    """`hidden_values_sql` (the days-since values the last history row holds but a run
    whose as-of moved back left out) reads JSON history rows as typed numbers, aged from
    the row's as-of: Spark gives DuckDB's rows."""
    import datetime as dt

    import duckdb

    from leadctl.tagging.stage import HIDDEN, StoredTag, hidden_values_sql

    tags = [StoredTag("last_paid_days", "number", "BIGINT"),
            StoredTag("first_paid_days", "number", "BIGINT")]
    # (run, as_of, person, tag, new_value): P1's last row is 1 as of 11-01, which aged
    # to 10-30 is -1 (hidden); P2's 5 as of 11-01 is 3 then (shown: no row); P3's value
    # was removed (NULL) after it was recorded; P4's first_paid_days 0 as of 10-30 is 0.
    history = ("(1, DATE '2026-11-01', 'P1', 'last_paid_days', '1'), "
               "(1, DATE '2026-11-01', 'P2', 'last_paid_days', '5'), "
               "(1, DATE '2026-11-01', 'P3', 'last_paid_days', '1'), "
               "(2, DATE '2026-11-02', 'P3', 'last_paid_days', NULL), "
               "(1, DATE '2026-10-30', 'P4', 'first_paid_days', '0'), "
               "(1, DATE '2026-11-01', 'P4', 'last_paid_days', '2')")
    statements = [
        "CREATE OR REPLACE TABLE tag_history AS SELECT run_id, as_of, person_id, tag, "
        "CAST(NULL AS JSON) AS old_value, CAST(v AS JSON) AS new_value FROM (VALUES "
        f"{history}) t(run_id, as_of, person_id, tag, v)",
        hidden_values_sql(tags, dt.date(2026, 10, 30))]
    con = duckdb.connect()
    for statement in statements:
        ws.execute(statement)
        con.execute(statement)
    expected = sorted(con.execute(f"SELECT * FROM {HIDDEN}").fetchall())
    assert expected == [("P1", -1, None), ("P4", 0, 0)]
    assert sorted(tuple(r) for r in ws.frame(HIDDEN).collect()) == expected


def test_size_estimates_do_not_compound_from_statement_to_statement(ws):
    """A checkpoint kept its plan's size estimate and a join's is the product of its
    sides': a table rebuilt from three reads of itself tripled its estimate's digits per
    statement (6, 16, 47, …, 1260 after six), and a third Spark night ran out of Java heap
    planning a deal wave. Past what a long holds, an estimate starts again."""
    from leadctl.spark import executor

    ws.execute("CREATE OR REPLACE TABLE g AS SELECT * FROM (VALUES (0), (1), (2), (3), (4), "
               "(5), (6), (7), (8), (9)) AS v(x)")
    for _ in range(8):
        ws.execute("CREATE OR REPLACE TABLE g AS SELECT a.x FROM g a JOIN g b ON a.x = b.x "
                   "JOIN g c ON a.x = c.x")
    estimate = ws.frame("g")._jdf.queryExecution().optimizedPlan().stats().sizeInBytes()
    assert executor._bits(estimate) < 64
    assert _rows(ws, "g") == [(x,) for x in range(10)]
