"""A corrected re-delivery of an events file with event ids replaces, it does not add: the
stored events with those ids leave for rejects ('superseded'), an id repeated within a
file keeps its first row, and the nights after equal a full rebuild."""

from __future__ import annotations

import duckdb
import pytest

from leadctl.ingest.sql import same_event_id_sql
from tests.conftest import Cli, write

LEADS = "lead_id,name,phone\nL1,张三,13811112222\nL2,李四,13933334444\n"
ORDERS = "event_id,phone,event_type,ts,amount\n"
NIGHT1 = (ORDERS + "E1,13811112222,order_paid,2026-10-30 10:00:00,100\n"
          "E2,13811112222,order_paid,2026-10-30 11:00:00,50\n"
          "E2,13811112222,order_paid,2026-10-30 11:00:00,50\n"
          "E3,13933334444,order_paid,2026-10-30 12:00:00,10\n")
# E1's amount corrected, E3 moved to the other lead, E4 new; E2 is not sent again.
NIGHT2 = (ORDERS + "E1,13811112222,order_paid,2026-10-30 10:00:00,120\n"
          "E3,13811112222,order_paid,2026-10-30 12:00:00,10\n"
          "E4,13933334444,order_paid,2026-10-31 09:00:00,7\n")


def _nights(tmp_path, *extra: str) -> Cli:
    cli = Cli(tmp_path / f"ws{len(extra)}.duckdb")
    for night, (text, as_of) in enumerate(((NIGHT1, "2026-11-01"), (NIGHT2, "2026-11-02"))):
        inbox = tmp_path / f"in{night}"
        inbox.mkdir(exist_ok=True)
        write(inbox / "leads.csv", LEADS)
        write(inbox / "orders.csv", text)
        result = cli("run", "--inbox", str(inbox), "--as-of", as_of, "--max-reject-share", "1",
                     "--json", *extra)
        assert result.exit_code == 0, result.stderr
    return cli


def _rows(cli: Cli, sql: str) -> list[tuple]:
    with duckdb.connect(str(cli.db), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_a_corrected_redelivery_replaces_the_events_it_carries_again(tmp_path):
    cli = _nights(tmp_path)
    assert _rows(cli, "SELECT json_extract_string(attributes, '$.event_id'), subject, amount "
                      "FROM events ORDER BY ALL") == [
        ("E1", "phone:13811112222", 120.0), ("E2", "phone:13811112222", 50.0),
        ("E3", "phone:13811112222", 10.0), ("E4", "phone:13933334444", 7.0)]
    assert _rows(cli, "SELECT reason, detail, json_extract(raw, '$.amount') FROM rejects "
                      "ORDER BY row_number, reason") == [
        ("superseded", "replaced by file 3", "100.0"),
        ("duplicate_event_id", "event_id E2 already on row 2", "50.0"),
        ("superseded", "replaced by file 3", "10.0")]
    assert _rows(cli, "SELECT p.name, f.paid_orders_7d, f.paid_amount_7d "
                      "FROM person_features f JOIN persons p USING (person_id) ORDER BY 1") == [
        ("张三", 3, 180.0), ("李四", 1, 7.0)]


def test_the_night_after_a_redelivery_equals_a_full_rebuild(tmp_path):
    incremental, full = _nights(tmp_path), _nights(tmp_path, "--full")
    for table in ("person_features", "tag_event_state", "subject_persons", "scores"):
        sql = f"SELECT * EXCLUDE (run_id) FROM {table} ORDER BY ALL" if table == "scores" \
            else f"SELECT * FROM {table} ORDER BY ALL"
        assert _rows(incremental, sql) == _rows(full, sql), table


def _one_order_parquet(path, event_id: str, amount: float):
    duckdb.execute(f"COPY (SELECT {event_id} AS event_id, '13811112222' AS phone, "
                   f"'order_paid' AS event_type, TIMESTAMP '2026-10-30' AS ts, {amount} AS amount)"
                   f" TO '{path}'")
    return path


def test_event_ids_agree_across_deliveries_as_written_not_as_typed(tmp_path):
    # `N/A` and `-` are no ids (they replaced and deduplicated other persons' events),
    # `E1 ` is E1, and a float column's 1.0 is the id 1 (an order counted twice).
    cli = Cli(tmp_path / "ws.duckdb")
    first = write(tmp_path / "a.csv", ORDERS + "N/A,13811112222,order_paid,2026-10-30,100\n"
                  "-,13933334444,order_paid,2026-10-30,50\nE1,13811112222,login,2026-10-30,\n")
    again = write(tmp_path / "b.csv", ORDERS + "n/a,13955556666,login,2026-10-31,\n"
                  "N/A,13955556666,order_paid,2026-10-31,7\nE1 ,13811112222,login,2026-10-31,\n")
    for text, (event_id, amount) in ((first, ("1", 5.0)), (again, ("1.0", 6.0))):
        typed = _one_order_parquet(tmp_path / f"{text.stem}.parquet", event_id, amount)
        assert cli("ingest", text, typed, "--source", "orders").exit_code == 0
    assert _rows(cli, "SELECT file_id, row_number, reason FROM rejects ORDER BY ALL") == [
        (1, 3, "superseded"), (2, 1, "superseded")]
    assert _rows(cli, "SELECT subject, amount FROM events WHERE amount IS NOT NULL "
                      "ORDER BY ALL") == [("phone:13811112222", 6.0), ("phone:13811112222", 100.0),
                                          ("phone:13933334444", 50.0),
                                          ("phone:13955556666", 7.0)]


@pytest.mark.parametrize(("given", "same"), [
    ("20261030", "20261030"), ("20261030.0", "20261030"), ("2.026103E7", "20261030"),
    ("1.0E7", "10000000"), ("1.5E7", "15000000"), ("-3.0E8", "-300000000"),
    ("1.234567890123456E15", "1234567890123456"),
    # not Java's spelling of an integral double from 1e7 to 1e16: ids as they are
    ("1.5E0", "1.5E0"), ("1.00000005E7", "1.00000005E7"), ("9.9E20", "9.9E20"),
    ("1E5", "1E5"), ("0e12", "0e12"), ("1e05", "1e05"), ("2.026103e7", "2.026103e7"),
    ("E1", "E1"), ("N/A", None)])
def test_an_event_id_in_any_float_spelling_is_its_whole_number(given, same):
    # Spark's attribute JSON writes a double id of 1e7 or more as Java does: 2.026103E7.
    sql = f"SELECT {same_event_id_sql('g')} FROM (SELECT ? AS g)"
    assert duckdb.execute(sql, [given]).fetchall() == [(same,)]
