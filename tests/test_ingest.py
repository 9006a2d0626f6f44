"""Ingest: every input form, aliases, rejects with reasons, idempotence, bad input."""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from leadctl.cli.app import app
from leadctl.ingest import sniff
from leadctl.ingest.columns import build_alias_map, field_columns, fold_header, map_columns
from leadctl.ingest.sql import LEADS_TABLE_COLUMNS, parse_timestamp_sql
from leadctl.workspace import open_memory
from tests.conftest import REPO, RULES, Cli, db_rows, write

HEADER_ZH = "线索ID,姓名,手机号,邮箱,城市,创建时间,关键词\n"


def leads_in(cli, *columns: str) -> list[tuple]:
    con = duckdb.connect(str(cli.db), read_only=True)
    try:
        cols = ", ".join(columns)
        return con.execute(f"SELECT {cols} FROM leads ORDER BY lead_key").fetchall()
    finally:
        con.close()


def files_in(cli) -> list[tuple]:
    con = duckdb.connect(str(cli.db), read_only=True)
    try:
        return con.execute("SELECT source, status, message FROM ingested_files "
                           "ORDER BY file_id").fetchall()
    finally:
        con.close()


def rejects_in(cli) -> list[tuple]:
    con = duckdb.connect(str(cli.db), read_only=True)
    try:
        return con.execute("SELECT source, row_number, reason FROM rejects "
                           "ORDER BY file_id, row_number").fetchall()
    finally:
        con.close()


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_each_delimiter_is_detected(cli, tmp_path, delimiter):
    text = delimiter.join(["lead_id", "name", "phone"]) + "\n" + \
        delimiter.join(["L1", "张三", "138 1234 5678"]) + "\n"
    result = cli("ingest", write(tmp_path / "x.csv", text), "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json()["files"][0]["delimiter"] == delimiter
    assert leads_in(cli, "lead_id", "name", "phone") == [("L1", "张三", "138 1234 5678")]


def test_chinese_headers_with_bom_map_to_canonical_columns(cli, tmp_path):
    path = write(tmp_path / "sem.csv", HEADER_ZH + "A1,李雷,13900001111,LI@x.cn,上海,"
                 "2026/10/03 8:15,二手车\n", bom=True)
    assert cli("ingest", path).exit_code == 0
    assert leads_in(cli, "source", "lead_id", "name", "phone", "email", "city",
                    "strftime(created_at, '%Y-%m-%d %H:%M')", "utm_term") == [
        ("sem", "A1", "李雷", "13900001111", "LI@x.cn", "上海", "2026-10-03 08:15", "二手车")]


def test_gbk_file_is_detected_and_decoded(cli, tmp_path):
    path = write(tmp_path / "agent.csv",
                 "线索ID|姓名|手机|代理商\nG1|韩梅梅|13700002222|华东代理\n", encoding="gb18030")
    result = cli("ingest", path, "--json")
    assert result.json()["files"][0]["encoding"] == "gb18030"
    assert leads_in(cli, "name", "attributes") == [("韩梅梅", '{"代理商":"华东代理"}')]


def test_gbk_file_whose_first_rows_are_ascii_is_judged_where_its_chinese_starts(
        cli, tmp_path):
    ascii_rows = "".join(f"A{i},13900{i:06d},Beijing\n" for i in range(20000))  # > 256 KB
    path = write(tmp_path / "late.csv", "lead_id,phone,city\n" + ascii_rows
                 + "Z1,13700002222,上海\n", encoding="gb18030")
    result = cli("ingest", path, "--json")
    assert result.json()["files"][0]["encoding"] == "gb18030"
    assert leads_in(cli, "city") == [("Beijing",)] * 20000 + [("上海",)]


def test_a_stray_quote_in_a_quoted_csv_rejects_its_line_only(cli, tmp_path):
    # DuckDB's sniffer gives quoting up for the whole file over one such line
    names = {3: 'Zhang "Big" San', 4: 'Li ""Q"" Si'}
    rows = "".join(f'"L{i}","{names.get(i, f"N{i}")}","1390000000{i}","Beijing, CN","x"\n'
                   for i in range(1, 7))
    path = write(tmp_path / "web.csv", '"lead_id","name","phone","city","city"\n' + rows)
    result = cli("ingest", path, "--json")
    assert [(f["status"], f["loaded"], f["rejected"]) for f in result.json()["files"]] == [
        ("loaded", 5, 1)]
    assert rejects_in(cli) == [("web", 3, "unquoted_value")]
    assert leads_in(cli, "lead_id", "row_number", "name", "city", "attributes")[2:4] == [
        ("L4", 4, 'Li "Q" Si', "Beijing, CN", '{"city_1":"x"}'),
        ("L5", 5, "N5", "Beijing, CN", '{"city_1":"x"}')]


def test_apostrophes_are_text_not_quotes(cli, tmp_path):
    # DuckDB's sniffer took ' for the quote character here: 'Tom' loaded as Tom
    path = write(tmp_path / "x.csv", ("lead_id,phone,name\nA1,13900000001,'Tom'\n"
                                      "A2,13900000002,O'Brien\nA3,13900000003,'Li, Si'\n"))
    assert cli("ingest", path).exit_code == 0
    assert leads_in(cli, "lead_id", "name") == [("A1", "'Tom'"), ("A2", "O'Brien")]
    assert rejects_in(cli) == [("x", 3, "too_many_columns")]


@pytest.mark.parametrize("text, leads", [
    # only some fields quoted
    ('lead_id,phone,name,city\nA1,13900000001,Ann,"Beijing, Chaoyang"\n'
     'A2,13900000002,"Jo"e",Shanghai\nA3,13900000003,Bo,"Tianjin, Hexi"\n',
     [("A1", "Ann", "Beijing, Chaoyang"), ("A3", "Bo", "Tianjin, Hexi")]),
    # `"id", "name"`: the header's names kept a space and their quotes, and the whole file
    # was invalid (no identifier column)
    ('"lead_id", "name", "phone"\n"L1", "Ann", "13900000001"\n'
     '"L2", "Jo"e", "13900000002"\n"L3", "Bo", "13900000003"\n',
     [("L1", "Ann", None), ("L3", "Bo", None)]),
    # one line rejected either way: the sniffed read (no quoting) rejected the valid
    # "Wang, Li" line and loaded '"Jo"e"' with its quotes
    ('lead_id,name,phone\nQ3,"Wang, Li",13900000003\nQ25,"Jo"e",13900000025\n'
     'Q10,N10,13900000010\n', [("Q3", "Wang, Li", None), ("Q10", "N10", None)]),
    # the sniffed read rejected nothing here, and kept the quotes of every value: "A1"
    # was stored as '"A1"' and could never match a later A1
    ('lead_id,phone,name\n"A1",13800000001,"Li"\n"A2",13800000002,"Jo"e"\n',
     [("A1", "Li", None)]),
])
def test_a_stray_quote_rejects_its_line_only(cli, tmp_path, text, leads):
    path = write(tmp_path / "q.csv", text)
    assert cli("ingest", path).exit_code == 0
    assert rejects_in(cli) == [("q", 2, "unquoted_value")]
    assert leads_in(cli, "lead_id", "name", "city") == leads


def test_parquet_with_alias_headers_and_typed_columns(cli, tmp_path):
    path = tmp_path / "app.parquet"
    duckdb.execute(f"""COPY (SELECT 'P1' AS Lead_Id, 13812345678.0 AS mobile,
        'a@b.cn' AS mail, '2026-10-03T08:15:00+00:00' AS create_time)
        TO '{path}' (FORMAT parquet)""")
    assert cli("ingest", path, "--source", "app").exit_code == 0
    assert leads_in(cli, "source", "lead_id", "phone", "email",
                    "strftime(created_at, '%H:%M')") == [
        ("app", "P1", "13812345678.0", "a@b.cn", "16:15")]  # UTC → Asia/Shanghai


def test_a_file_named_like_a_pattern_is_that_file_and_a_pattern_still_matches(cli, tmp_path):
    write(tmp_path / "leads[1].csv", "lead_id,phone\nA1,13800000001\n")
    write(tmp_path / "leads2.csv", "lead_id,phone\nB1,13800000002\n")
    assert cli("ingest", tmp_path / "leads[1].csv").exit_code == 0  # was "no files match"
    assert cli("ingest", tmp_path / "leads[2].csv").exit_code == 0  # a pattern: leads2.csv
    missing = cli("ingest", tmp_path / "leads[3].csv")
    assert (missing.exit_code, missing.stderr) == (
        2, f"error: no files match {tmp_path / 'leads[3].csv'}\n")
    assert leads_in(cli, "source", "lead_id") == [("leads[1]", "A1"), ("leads2", "B1")]


def test_a_glob_reads_the_folders_it_matches_and_only_data_files(cli, tmp_path):
    # `inbox/*` loaded only the top-level files (sub-folders dropped, exit 0),
    # `inbox/2026-*` matching folders only found "no CSV or Parquet files", and the
    # glob's notes.md was ingested (invalid, exit 2).
    inbox = tmp_path / "inbox"
    for day in (1, 2):
        (inbox / f"2026-11-0{day}" / "sem").mkdir(parents=True)
        write(inbox / f"2026-11-0{day}" / "sem" / f"s{day}.csv",
              f"lead_id,phone\nS{day},1390000000{day}\n")
        write(inbox / f"2026-11-0{day}" / "readme.md", "# notes\n")
    write(inbox / "top.csv", "lead_id,phone\nT1,13900000009\n")
    write(inbox / "notes.md", "# notes\n")
    write(inbox / ".hidden.csv", "lead_id,phone\nH1,13900000008\n")
    dated = cli("ingest", str(inbox / "2026-*"), "--json")
    assert dated.exit_code == 0, dated.stderr
    assert [f["source"] for f in dated.json()["files"]] == ["s1", "s2"]
    every = cli("ingest", str(inbox / "*"), "--json")
    assert every.exit_code == 0, every.stderr
    assert [(f["source"], f["status"]) for f in every.json()["files"]] == [
        ("s1", "skipped_duplicate"), ("s2", "skipped_duplicate"), ("top", "loaded")]
    only_notes = cli("ingest", str(inbox / "*.md"))
    assert (only_notes.exit_code, only_notes.stderr) == (
        2, f"error: no CSV or Parquet files found in {inbox / '*.md'}\n")
    assert leads_in(cli, "lead_id") == [("S1",), ("S2",), ("T1",)]


def test_a_parquet_lead_without_an_id_keeps_the_id_its_raw_values_give(cli, tmp_path):
    # the generated id hashes the row's text as DuckDB reads the file (bytes as escapes,
    # nanoseconds in full): the same as before bytes were decoded, so a lead delivered
    # again after an upgrade is the same lead, not a duplicate

    path = tmp_path / "app.parquet"
    pq.write_table(pa.table({
        "phone": ["13911100000"], "name": pa.array(["名0".encode()], pa.binary()),
        "created_at": pa.array([1790000000123456789], pa.timestamp("ns"))}), path)
    raw = duckdb.execute(
        "SELECT 'h' || substr(md5(concat_ws(chr(31), CAST(phone AS VARCHAR), "
        f"CAST(name AS VARCHAR), CAST(created_at AS VARCHAR))), 1, 16) FROM '{path}'"
    ).fetchone()[0]
    assert cli("ingest", path).exit_code == 0
    assert leads_in(cli, "lead_id", "name", "CAST(created_at AS VARCHAR)") == [
        (raw, "名0", "2026-09-21 14:13:20.123456")]


def test_parquet_values_are_read_as_their_csv_twin(cli, tmp_path):
    # a legacy writer's unmarked UTF-8 bytes are text; nanoseconds are cut, not rounded
    # (23:59:59.999999999 stayed on 10-31); a 32-bit float amount is its own text

    pq.write_table(pa.table({
        "lead_id": ["L1", "L2"], "phone": ["13800000001", "13800000002"],
        "name": pa.array(["张三".encode(), b"\xff\xfe"], pa.binary()),
        "created_at": pa.array([1793491199999999999, -500], pa.timestamp("ns"))}),
        tmp_path / "web.parquet")
    pq.write_table(pa.table({
        "phone": ["13800000001"], "event_type": ["order_paid"],
        "ts": pa.array([1793491199999999999], pa.timestamp("ns")),
        "amount": pa.array([19.9], pa.float32())}), tmp_path / "app.parquet")
    assert cli("ingest", tmp_path / "web.parquet", tmp_path / "app.parquet").exit_code == 0
    assert leads_in(cli, "lead_id", "name", "CAST(created_at AS VARCHAR)") == [
        ("L1", "张三", "2026-10-31 23:59:59.999999"),
        ("L2", "\\xFF\\xFE", "1969-12-31 23:59:59.999999")]  # bytes that are no text
    with duckdb.connect(str(cli.db), read_only=True) as con:
        assert con.execute("SELECT CAST(ts AS VARCHAR), amount FROM events").fetchall() == [
            ("2026-10-31 23:59:59.999999", 19.9)]


@pytest.mark.parametrize("header", ["LeadID", "Lead_Id", "lead id", "线索ID"])
def test_lead_id_aliases(header):
    mapped, extra = map_columns([header, "wx", "Mobile", "full_name", "其他"], build_alias_map())
    assert mapped == {"lead_id": header, "wechat": "wx", "phone": "Mobile", "name": "full_name"}
    assert extra == ["其他"]


def test_the_header_named_as_the_field_is_read_first_then_its_aliases_in_file_order():
    headers = ["Mobile", "手机号", "Phone", "name"]
    assert field_columns(headers, build_alias_map()) == {
        "phone": ["Phone", "Mobile", "手机号"], "name": ["name"]}
    assert map_columns(headers, build_alias_map()) == (
        {"phone": "Phone", "name": "name"}, ["Mobile", "手机号"])


def test_a_header_differing_only_in_case_is_matched_as_written_an_exact_repeat_is_not():
    # The reader names `Phone` beside `phone` Phone_1: it was matched as Phone_1, no column.
    aliases = build_alias_map()
    assert map_columns(["phone", "Phone_1", "x"], aliases, ["phone", "Phone", "x"]) == (
        {"phone": "phone"}, ["Phone_1", "x"])
    assert field_columns(["phone", "Phone_1"], aliases, ["phone", " Phone "]) == {
        "phone": ["phone", "Phone_1"]}
    assert field_columns(["phone", "phone_1"], aliases, ["phone", "phone"]) == {
        "phone": ["phone"]}


def test_a_phone_under_a_header_differing_only_in_case_loads(cli, tmp_path):
    # Was rejected no_identifier on both formats: `Phone` read as `Phone_1`, no column.
    write(tmp_path / "case.csv", "phone,Phone\n,13900000032\n")
    pq.write_table(pa.table({"phone": [None], "Phone": ["13900000033"]}),
                   tmp_path / "case.parquet")
    write(tmp_path / "again.csv", "phone,phone\n,13900000034\n")  # an exact repeat
    result = cli("ingest", tmp_path / "case.csv", tmp_path / "case.parquet",
                 tmp_path / "again.csv", "--json")
    assert [(f["status"], f["loaded"], f["rejected"]) for f in result.json()["files"]] == [
        ("loaded", 1, 0), ("loaded", 1, 0), ("rejected", 0, 1)]
    assert leads_in(cli, "phone", "attributes") == [
        ("13900000032", '{"Phone_1":"13900000032"}'),
        ("13900000033", '{"Phone_1":"13900000033"}')]


def _nested_zoned(path) -> None:
    """Zoned timestamps in a list and in a struct: attributes, as text."""
    seen = dt.datetime(2026, 10, 1, 0, 30, tzinfo=dt.UTC)
    zoned = pa.timestamp("us", tz="UTC")
    pq.write_table(pa.table({
        "phone": ["13900000011", "13900000012"],
        "visits": pa.array([[seen], None], pa.list_(zoned)),
        "meta": pa.array([{"seen": seen}, {"seen": None}], pa.struct([("seen", zoned)]))}),
        path)


NESTED_ZONED_ATTRIBUTES = [
    ("13900000011", '{"visits":"[\'2026-10-01 00:30:00+00\']",'
                    '"meta":"{\'seen\': \'2026-10-01 00:30:00+00\'}"}'),
    ("13900000012", '{"visits":null,"meta":"{\'seen\': NULL}"}')]


def test_a_list_or_struct_of_zoned_timestamps_is_an_attribute(cli, tmp_path):
    # A list of them failed the file: Binder Error timezone(STRING_LITERAL, TIMESTAMP WITH
    # TIME ZONE[]) (it was taken for a zoned column).
    _nested_zoned(tmp_path / "nested.parquet")
    result = cli("ingest", tmp_path / "nested.parquet", "--json")
    assert (result.exit_code, result.json()["files"][0]["status"]) == (0, "loaded")
    assert leads_in(cli, "phone", "attributes") == NESTED_ZONED_ATTRIBUTES


def test_zoned_attributes_and_lead_ids_are_the_same_in_any_machine_time_zone(tmp_path):
    # They were in the machine's zone: other attributes and lead ids under New York's.
    _nested_zoned(tmp_path / "nested.parquet")
    rows = []
    for zone in ("UTC", "America/New_York"):
        db = tmp_path / f"{zone.replace('/', '_')}.duckdb"
        done = subprocess.run(
            [sys.executable, "-m", "leadctl", "--db", str(db), "--rules", str(RULES),
             "ingest", str(tmp_path / "nested.parquet")],
            capture_output=True, text=True, cwd=REPO, env={**os.environ, "TZ": zone},
            timeout=300)
        assert done.returncode == 0, done.stderr
        with duckdb.connect(str(db), read_only=True) as con:
            rows.append(con.execute("SELECT phone, attributes, lead_id FROM leads "
                                    "ORDER BY lead_key").fetchall())
    assert rows[0] == rows[1]
    assert [r[:2] for r in rows[1]] == NESTED_ZONED_ATTRIBUTES


def test_a_field_several_columns_give_takes_the_first_usable_value_of_each_row(cli, tmp_path):
    # `Mobile` and `手机号` are both the phone: row A has it in the second one only (it was
    # rejected, no_identifier: the first column alone was read); `N/A` is no value. `ts`
    # is read before `时间` (a file whose `时间` came first was refused, no_timestamp).
    leads = write(tmp_path / "two.csv", "Mobile,手机号,name\n,13800138801,A\n"
                  "13800138802,,B\nN/A,13800138803,C\n 13800138804 ,13800138805,D\n")
    events = write(tmp_path / "ev2.csv", "phone,event_type,时间,ts\n"
                   "13800139101,visit,,2026-10-02 10:00:00\n"
                   "13800139101,visit,2026-10-03 10:00:00, \n"
                   "13800139101,visit,2026-10-04 10:00:00,2026-10-05 10:00:00\n"
                   "13800139101,visit,,\n")
    stamps = pa.array([None, dt.datetime(2026, 10, 7, 10)], pa.timestamp("us"))
    base = {"phone": ["13800139102"] * 2, "event_type": ["visit"] * 2, "ts": stamps}
    pq.write_table(pa.table({**base, "time": pa.array([dt.datetime(2026, 10, 6, 10)] * 2,
                                                      pa.timestamp("us"))}),
                   tmp_path / "ev3.parquet")  # two timestamp columns
    pq.write_table(pa.table({**base, "时间": ["2026-10-08 10:00:00", None]}),
                   tmp_path / "ev4.parquet")  # a timestamp column and a text one
    result = cli("ingest", leads, events, tmp_path / "ev3.parquet", tmp_path / "ev4.parquet",
                 "--json")
    assert result.exit_code == 0, result.stderr
    assert [(f["status"], f["loaded"], f["rejected"]) for f in result.json()["files"]] == [
        ("loaded", 4, 0), ("loaded", 3, 1), ("loaded", 2, 0), ("loaded", 2, 0)]
    assert leads_in(cli, "name", "phone", "attributes") == [
        ("A", "13800138801", '{"手机号":"13800138801"}'), ("B", "13800138802", '{"手机号":null}'),
        ("C", "13800138803", '{"手机号":"13800138803"}'),
        ("D", "13800138804", '{"手机号":"13800138805"}')]
    with duckdb.connect(str(cli.db), read_only=True) as con:
        assert con.execute("SELECT subject, CAST(ts AS VARCHAR), attributes FROM events "
                           "ORDER BY file_id, row_number").fetchall() == [
            ("phone:13800139101", "2026-10-02 10:00:00", '{"时间":null}'),
            ("phone:13800139101", "2026-10-03 10:00:00", '{"时间":"2026-10-03 10:00:00"}'),
            ("phone:13800139101", "2026-10-05 10:00:00", '{"时间":"2026-10-04 10:00:00"}'),
            ("phone:13800139102", "2026-10-06 10:00:00", '{"time":"2026-10-06 10:00:00"}'),
            ("phone:13800139102", "2026-10-07 10:00:00", '{"time":"2026-10-06 10:00:00"}'),
            ("phone:13800139102", "2026-10-08 10:00:00", '{"时间":"2026-10-08 10:00:00"}'),
            ("phone:13800139102", "2026-10-07 10:00:00", '{"时间":null}')]
    assert [r[1:] for r in rejects_in(cli)] == [(4, "no_timestamp")]


def test_configured_aliases_win():
    alias_map = build_alias_map({"phone": ["客户电话"]})
    assert alias_map[fold_header("客户电话")] == "phone"


@pytest.mark.parametrize("text,expected", [
    ("2026-10-03 08:15:00", "2026-10-03 08:15:00"),
    ("2026/10/03 8:15", "2026-10-03 08:15:00"),
    ("2026-10-03T08:15:00+08:00", "2026-10-03 08:15:00"),
    ("2026-10-03T00:15:00Z", "2026-10-03 08:15:00"),
    ("2026年10月3日", "2026-10-03 00:00:00"),
    ("2026-10-03", "2026-10-03 00:00:00"),
    ("not-a-date", None),
    ("2026-10-03T08:15:00+14:00", "2026-10-03 02:15:00"),  # Kiribati, the farthest east
    ("2026-10-03T08:15:00-12:00", "2026-10-04 04:15:00"),
    ("2026-10-03 08:15+0530", "2026-10-03 10:45:00"),
    ("2026-10-03 08:15:00 +0530", "2026-10-03 10:45:00"),  # a space before the offset
    ("2026-10-03T16:30:00 +08:00", "2026-10-03 16:30:00"),
    ("2026-10-03 08:15  Z", "2026-10-03 16:15:00"),
    ("2026-10-03 08:15:00 UTC", "2026-10-03 16:15:00"),
    ("2026-10-03T08:15:00+25:00", None),  # no zone is that far: bad, not shifted a day
    ("2026-10-03T08:15:00+99", None),
    ("2026-10-03T08:15:00+08:61", None),
    ("2026-10-03 08:15:00 gmt", "2026-10-03 16:15:00"),  # UTC and GMT in any case
    ("2026-10-03T08:15:00z", "2026-10-03 16:15:00"),
    ("2026-10-03 08:15 Asia/Tokyo", "2026-10-03 07:15:00"),  # a region name
    ("2026-10-03 08:15:00.5 America/Argentina/Buenos_Aires", "2026-10-03 19:15:00.5"),
    ("2026-10-03 24:00:00 Asia/Tokyo", "2026-10-03 23:00:00"),
    # the hour that repeats when clocks go back: its earlier instant, as Spark reads it
    ("2026-11-01 01:30 America/New_York", "2026-11-01 13:30:00"),
    ("2026-11-01 02:30 America/New_York", "2026-11-01 15:30:00"),
    ("2026-11-01 00:30 America/New_York", "2026-11-01 12:30:00"),
    ("2026-04-05 01:45:00 Australia/Lord_Howe", "2026-04-04 22:45:00"),  # a 30-min one
    ("2026-10-25 01:30 Antarctica/Troll", "2026-10-25 07:30:00"),  # a 2-hour one
    ("2026-03-08 02:30 America/New_York", "2026-03-08 15:30:00"),  # skipped: as DuckDB
    # a zone not read is no time, never the local one: CST is China's and US Central
    ("2026-10-03 08:15:00 CST", None),
    ("2026-10-03 08:15:00 Mars/Olympus", None),
    ("2026-10-03 08:15:00 asia/tokyo", None),
    ("2026-10-03 08:15:00 UTC+08:00", None),  # each was read as local time
    ("2026-10-03 08:15:00 +01:00:00", None),
    ("2026-10-03 08:15:00 CET+01:00", None),
    ("2026-10-03 08:15:00 Asia/Tokyo+09:00", None),
    ("2026-10-03T08:15:00.+01:00", None),
    ("2026-10-03T08:15:00Z+01:00", None),
    ("2026-10-03 08:15:00.123456", "2026-10-03 08:15:00.123456"),  # naive: as it is
])
def test_timestamp_forms(text, expected):
    sql = parse_timestamp_sql("x", "Asia/Shanghai")
    value = duckdb.execute(f"SELECT CAST(({sql}) AS VARCHAR) FROM (SELECT ? AS x)",
                           [text]).fetchone()[0]
    assert value == expected


def test_rejects_carry_reasons_and_good_rows_survive(cli, tmp_path):
    path = write(tmp_path / "mixed.csv", HEADER_ZH +
                 "1,甲,13900000001,,北京,2026-10-01,\n"
                 "2,乙,,,北京,2026-10-01,\n"            # no identifier
                 "3,丙,13900000003,,北京,not-a-date,\n"  # bad date
                 "4,丁,13900000004\n"                    # ragged
                 "1,戊,13900000005,,北京,2026-10-01,\n"  # duplicate lead id in file
                 "6,己,13900000006,,北京,,\n")
    result = cli("ingest", path, "--json")
    assert result.exit_code == 0
    totals = result.json()["totals"]
    assert (totals["rows_read"], totals["leads"], totals["rejects"]) == (6, 2, 4)
    assert leads_in(cli, "lead_id", "row_number") == [("1", 1), ("6", 6)]
    assert rejects_in(cli) == [("mixed", 2, "no_identifier"), ("mixed", 3, "bad_date"),
                               ("mixed", 4, "missing_columns"),
                               ("mixed", 5, "duplicate_lead_id")]


def test_strict_exits_1_when_rows_are_rejected(cli, tmp_path):
    path = write(tmp_path / "x.csv", "lead_id,phone\n1,13900000001\n2,\n")
    result = cli("ingest", path, "--strict")
    assert result.exit_code == 1
    assert "1 rows rejected (--strict)" in result.stderr


def test_reingesting_same_content_is_a_noop(cli, tmp_path):
    path = write(tmp_path / "x.csv", "lead_id,phone\n1,13900000001\n")
    assert cli("ingest", path).exit_code == 0
    again = cli("ingest", path, "--json").json()
    assert again["files"][0]["status"] == "skipped_duplicate"
    assert len(leads_in(cli, "lead_id")) == 1


def test_newer_file_supersedes_lead_and_keeps_old_row_in_rejects(cli, tmp_path):
    write(tmp_path / "crm.csv", "lead_id,phone,city\n1,13900000001,北京\n")
    assert cli("ingest", tmp_path / "crm.csv").exit_code == 0
    write(tmp_path / "crm.csv", "lead_id,phone,city\n1,13900000001,上海\n")
    assert cli("ingest", tmp_path / "crm.csv").exit_code == 0
    assert leads_in(cli, "lead_key", "lead_id", "city") == [(1, "1", "上海")]
    assert rejects_in(cli) == [("crm", 1, "superseded")]


def test_one_command_supersedes_and_skips_what_it_loaded_itself(cli, tmp_path):
    """The file log is read once per command: what its own earlier files loaded still
    counts (a later file of the same source supersedes, the same content is skipped)."""
    (tmp_path / "in").mkdir()
    write(tmp_path / "in" / "a.csv", "lead_id,phone,city\n1,13900000001,北京\n")
    write(tmp_path / "in" / "b.csv", "lead_id,phone,city\n1,13900000001,上海\n")
    write(tmp_path / "in" / "c.csv", "lead_id,phone,city\n1,13900000001,上海\n")
    out = cli("ingest", tmp_path / "in", "--source", "crm", "--json").json()
    assert [f["status"] for f in out["files"]] == ["loaded", "loaded", "skipped_duplicate"]
    assert out["files"][1]["superseded"] == 1
    assert out["files"][2]["duplicate_of"]["file"].endswith("b.csv")
    assert leads_in(cli, "lead_key", "lead_id", "city") == [(1, "1", "上海")]
    assert rejects_in(cli) == [("crm", 1, "superseded")]


def test_an_earlier_delivery_sent_again_takes_back_the_correction_that_replaced_it(
        cli, tmp_path):
    # The channel retracts a bad correction by sending the earlier file again: it was
    # skipped as a duplicate, and the retracted row (and any merge it made) stayed
    for day, city in ((1, "北京"), (2, "上海"), (3, "北京")):
        (tmp_path / f"d{day}").mkdir()
        write(tmp_path / f"d{day}" / "crm.csv", f"lead_id,phone,city\n1,13900000001,{city}\n")
    statuses = [cli("ingest", tmp_path / f"d{day}" / "crm.csv", "--json").json()["files"][0]
                ["status"] for day in (1, 2, 3)]
    assert statuses == ["loaded", "loaded", "loaded"]
    assert [row[2] for row in leads_in(cli, "lead_key", "lead_id", "city")] == ["北京"]
    again = cli("ingest", tmp_path / "d3" / "crm.csv", "--json").json()["files"][0]
    assert (again["status"], again["duplicate_of"]["file"]) == (
        "skipped_duplicate", str(tmp_path / "d1" / "crm.csv"))
    # a folder delivered again whole: its files' rows were not replaced, still skipped
    other = write(tmp_path / "web.csv", "lead_id,phone\n7,13900000007\n")
    assert cli("ingest", other).exit_code == 0
    assert cli("ingest", other, "--json").json()["files"][0]["status"] == "skipped_duplicate"


def stored_tables(cli) -> dict[str, list[tuple]]:
    """Every ingest table row for row, without the clock (ingested_at, rejected_at)."""
    con = duckdb.connect(str(cli.db), read_only=True)
    try:
        return {table: con.execute(f"SELECT {columns} FROM {table} ORDER BY ALL").fetchall()
                for table, columns in (
                    ("leads", "*"), ("events", "*"),
                    ("rejects", "* EXCLUDE (rejected_at)"),
                    ("ingested_files", "* EXCLUDE (ingested_at, run_id, path)"))}
    finally:
        con.close()


@pytest.mark.parametrize("times", [2, 3])
def test_a_folder_delivered_again_whole_equals_it_delivered_once(tmp_path, times):
    # A file and the later file that replaced some of its rows (leads by lead id, events by
    # event id), sent again together in their order: every night re-ingested both (the
    # old one as a correction taken back, the new one as taking it back again), and the
    # superseded rejects grew night after night.

    inbox = tmp_path / "inbox"
    for day, (name, city, kind) in enumerate((("Old", "北京", "signup"),
                                               ("New", "上海", "login")), start=1):
        (inbox / f"d{day}").mkdir(parents=True)
        write(inbox / f"d{day}" / "leads.csv", f"lead_id,phone,name,city\n"
              f"L1,13912345678,{name},{city}\n" + ("L2,13912345679,Keep,\n" if day == 1 else ""))
        write(inbox / f"d{day}" / "ev.csv", "event_id,phone,event_type,ts\n"
              f"E1,13912345678,{kind},2026-10-0{day}\n"
              + ("E2,13912345679,login,2026-10-01\n" if day == 1 else ""))
    once, again = Cli(tmp_path / "once.duckdb"), Cli(tmp_path / "again.duckdb")
    assert once("ingest", inbox).exit_code == 0
    for night in range(times):
        out = again("ingest", inbox, "--json").json()
        if night:
            assert [f["status"] for f in out["files"]] == ["skipped_duplicate"] * 4
    assert stored_tables(again) == stored_tables(once)
    assert [row[2] for row in leads_in(again, "lead_id", "name", "city")] == ["上海", None]
    # the old file sent again alone still takes the correction back
    out = again("ingest", inbox / "d1", "--json").json()
    assert [f["status"] for f in out["files"]] == ["loaded", "loaded"]
    assert [row[1] for row in leads_in(again, "lead_id", "name")] == ["Old", "Keep"]


def test_lead_keys_follow_file_and_record_order_rejected_records_keep_their_number(
        cli, tmp_path):
    """A new lead's key is the base of its file + its record number; the next file's base
    is past every record of this one, loaded or not (no max over the stored leads)."""
    (tmp_path / "in").mkdir()
    write(tmp_path / "in" / "a.csv", "lead_id,phone\n1,13900000001\n2,13900000002\n3,\n")
    write(tmp_path / "in" / "b.csv", "lead_id,phone\n4,13900000004\n")
    assert cli("ingest", tmp_path / "in").exit_code == 0
    write(tmp_path / "c.csv", "lead_id,phone\n5,13900000005\n")
    assert cli("ingest", tmp_path / "c.csv").exit_code == 0
    assert leads_in(cli, "lead_key", "lead_id") == [(1, "1"), (2, "2"), (4, "4"), (5, "5")]


def test_events_file_is_detected_and_typed(cli, tmp_path):
    path = write(tmp_path / "ev.csv", "phone,lead_id,event_type,ts,amount,category,sku\n"
                 "13812345678,,order_paid,2026-10-30 10:00:00,\"1,200.5\",fresh,S1\n"
                 ",L9,Login,2026-10-30,,,\n"
                 ",,login,2026-10-30,,,\n"
                 "13812345678,,login,yesterday,,,\n"
                 "13812345678,,order_paid,2026-10-30,abc,,\n")
    result = cli("ingest", path, "--json")
    assert result.json()["files"][0]["kind"] == "events"
    con = duckdb.connect(str(cli.db), read_only=True)
    assert con.execute("SELECT subject, event_type, CAST(ts AS VARCHAR), amount, category, "
                       "attributes FROM events ORDER BY row_number").fetchall() == [
        ("phone:13812345678", "order_paid", "2026-10-30 10:00:00", 1200.5, "fresh",
         '{"sku":"S1"}'),
        ("lead:L9", "login", "2026-10-30 00:00:00", None, None, '{"sku":null}')]
    con.close()
    assert [r[2] for r in rejects_in(cli)] == ["no_subject", "bad_timestamp", "bad_amount"]


def test_an_events_files_id_column_is_an_attribute_not_a_lead_id(cli, tmp_path):
    # `id` (a leads file's lead id alias) made an event's subject `lead:E1` in place of its
    # phone; beside `lead_id` it took the lead id and pushed the lead_id column out to the
    # attributes. The README names phone, lead_id or person_id as an event's person.
    ev = write(tmp_path / "ev.csv", "id,phone,event_type,ts\nE1,13812345678,login,2026-10-30\n"
                                    "E2,,login,2026-10-30\n")
    ev2 = write(tmp_path / "ev2.csv", "id,lead_id,event_type,ts\nE3,L9,login,2026-10-30\n")
    only = write(tmp_path / "only.csv", "id,event_type,ts\nE4,login,2026-10-30\n")
    leads = write(tmp_path / "leads.csv", "id,phone\nL1,13812345679\n")
    result = cli("ingest", ev, ev2, only, leads, "--json")
    assert result.exit_code == 2
    assert [(f["kind"], f["status"], f["message"]) for f in result.json()["files"]] == [
        ("events", "loaded", ""), ("events", "loaded", ""),
        ("events", "invalid", "missing event columns: person_id/lead_id/phone (have: id, "
                              "event_type, ts); an id naming the lead: `lead_id: [id]` under "
                              "aliases in sources.yaml"), ("leads", "loaded", "")]
    with duckdb.connect(str(cli.db), read_only=True) as con:
        assert con.execute("SELECT source, row_number, subject, attributes FROM events "
                           "ORDER BY ALL").fetchall() == [
            ("ev", 1, "phone:13812345678", '{"id":"E1"}'),
            ("ev2", 1, "lead:L9", '{"id":"E3"}')]
    assert [r[1:3] for r in rejects_in(cli) if r[0] == "ev"] == [(2, "no_subject")]
    assert leads_in(cli, "lead_id", "phone") == [("L1", "13812345679")]


def test_null_tokens_are_no_ids_and_no_dates(cli, tmp_path):
    # `N/A` twice is not one lead id (the second row was a duplicate_lead_id reject), a
    # `null` created_at is no date (was bad_date), and an event's `null` person id falls
    # through to its phone (was the subject 'person:null').
    leads = write(tmp_path / "a.csv", "lead_id,name,phone,created_at\n"
                  "N/A,甲,13811112222,null\nn/a,乙,13933334444,2026-10-01\n"
                  "-,丙,13755556666,N/A\nL4,丁,13677778888,\n")
    events = write(tmp_path / "ev.csv", "person_id,lead_id,phone,event_type,ts\n"
                   "null,N/A,13811112222,login,2026-10-30\n"
                   "-,-,NULL,login,2026-10-30\n"
                   ",L4,,None,2026-10-30\n"
                   ",L4,,login,n/a\n"
                   ",L4,,login,   \n")
    assert cli("ingest", leads, events).exit_code == 0
    assert [(name, lead_id.startswith("h")) for lead_id, name in leads_in(
        cli, "lead_id", "name")] == [("甲", True), ("乙", True), ("丙", True), ("丁", False)]
    assert rejects_in(cli) == [("ev", 2, "no_subject"), ("ev", 3, "no_event_type"),
                               ("ev", 4, "no_timestamp"), ("ev", 5, "no_timestamp")]
    con = duckdb.connect(str(cli.db), read_only=True)
    assert con.execute("SELECT subject FROM events").fetchall() == [("phone:13811112222",)]
    con.close()


def test_a_row_without_lead_id_the_same_in_every_cell_is_one_lead_exported_twice(
        cli, tmp_path):
    # Its id derives from the row's text, so an identical row repeats that id: a
    # duplicate_lead_id (the README said two such rows were always two leads), whose
    # detail named a lead id the file never held.
    path = write(tmp_path / "a.csv", "lead_id,phone,name\nN/A,13900000001,Wang\n"
                 "N/A,13900000001,Wang\n,13900000001,Wang\nN/A,13900000001,Li\n")
    assert cli("ingest", path).exit_code == 0
    assert [(row, name) for _, row, name in leads_in(cli, "lead_id", "row_number", "name")] == [
        (1, "Wang"), (3, "Wang"), (4, "Li")]
    con = duckdb.connect(str(cli.db), read_only=True)
    (lead_id,) = con.execute("SELECT lead_id FROM leads WHERE row_number = 1").fetchone()
    assert con.execute("SELECT row_number, reason, detail FROM rejects").fetchall() == [
        (2, "duplicate_lead_id",
         f"no lead id, and the same text as row 1 (one lead: its id {lead_id} derives "
         "from the text)")]
    con.close()


def test_a_lead_column_named_like_an_event_field_is_kept_as_an_attribute(cli, tmp_path):
    # `price` (an alias of amount) and `time` (of ts) were dropped from leads.
    path = write(tmp_path / "a.csv", "lead_id,phone,price,time\nL1,13811112222,99,9点\n")
    assert cli("ingest", path).exit_code == 0
    assert leads_in(cli, "lead_id", "attributes") == [("L1", '{"price":"99","time":"9点"}')]


def test_kind_auto_needs_an_event_type_and_a_timestamp_unless_named_event_type(cli, tmp_path):
    # A leads file's `action` column (an alias of event_type) made it an events file,
    # refused as invalid (no ts): `run`, without --kind, exited 2 for the whole night.
    crm = write(tmp_path / "crm.csv", "lead_id,phone,name,action\nL1,13912340001,Zhang,call back\n")
    ev = write(tmp_path / "ev.csv", "phone,事件,时间\n13912340001,login,2026-10-01\n")
    no_ts = write(tmp_path / "no_ts.csv", "phone,Event Type\n13912340001,login\n")
    result = cli("ingest", crm, ev, no_ts, "--json")
    assert result.exit_code == 2
    assert [(f["kind"], f["status"]) for f in result.json()["files"]] == [
        ("leads", "loaded"), ("events", "loaded"), ("events", "invalid")]
    assert leads_in(cli, "lead_id", "attributes") == [("L1", '{"action":"call back"}')]


def test_missing_identifier_columns_is_an_input_error_rows_kept_other_files_load(cli,
                                                                                 tmp_path):
    (tmp_path / "in").mkdir()
    noid = write(tmp_path / "in" / "noid.csv", "姓名,电话号码x,city\n甲,139,北京\n乙,138,上海\n")
    write(tmp_path / "in" / "ok.csv", "lead_id,phone\n1,13900000001\n")
    result = cli("ingest", tmp_path / "in", "--json")
    message = ("no identifier column (found: 姓名, 电话号码x, city; "
               "did you mean 电话 for 电话号码x?)")
    assert (result.exit_code, result.stderr) == (2, f"error: {noid}: {message}\n")
    by_file = {f["source"]: (f["status"], f["loaded"], f["rejected"]) for f in
               result.json()["files"]}
    assert by_file == {"noid": ("invalid", 0, 2), "ok": ("loaded", 1, 0)}
    assert rejects_in(cli) == [("noid", 1, "missing_identifier_columns"),
                               ("noid", 2, "missing_identifier_columns")]
    assert files_in(cli) == [("noid", "invalid", message), ("ok", "loaded", "")]


def test_an_invalid_file_is_tried_again_once_an_alias_makes_it_usable(cli, tmp_path):
    path = write(tmp_path / "noid.csv", "lead_id,买家手机\n1,13900000001\n")
    assert cli("ingest", path).exit_code == 2
    (tmp_path / "rules").mkdir()
    write(tmp_path / "rules" / "sources.yaml", "aliases:\n  phone: [买家手机]\n")
    cli.rules = tmp_path / "rules"
    assert cli("ingest", path).exit_code == 0
    assert files_in(cli) == [("noid", "loaded", "")]
    assert (leads_in(cli, "phone"), rejects_in(cli)) == ([("13900000001",)], [])


def test_binary_junk_fails_that_file_only(cli, tmp_path):
    (tmp_path / "junk.csv").write_bytes(b"\x00\x01\x02garbage\x00" * 100)
    write(tmp_path / "good.csv", "lead_id,phone\n1,13900000001\n")
    result = cli("ingest", tmp_path, "--json")
    assert result.exit_code == 2
    by_file = {f["source"]: f for f in result.json()["files"]}
    assert by_file["good"]["loaded"] == 1
    assert by_file["junk"]["status"] == "failed"
    assert "binary content" in result.stderr
    assert "Traceback" not in result.stderr


def test_truncated_parquet_fails_cleanly(cli, tmp_path):
    path = tmp_path / "t.parquet"
    duckdb.execute(f"COPY (SELECT range AS lead_id, '139' || range AS phone FROM range(1000)) "
                   f"TO '{path}' (FORMAT parquet)")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    result = cli("ingest", path)
    assert result.exit_code == 2
    assert "t.parquet" in result.stderr and "Traceback" not in result.stderr


def test_empty_file_and_huge_field(cli, tmp_path):
    (tmp_path / "empty.csv").write_bytes(b"")
    write(tmp_path / "big.csv", "lead_id,phone,note\n1,13900000001," + "x" * 1_000_000 + "\n")
    result = cli("ingest", tmp_path, "--json")
    assert result.exit_code == 0
    status = {f["source"]: f["status"] for f in result.json()["files"]}
    assert status == {"big": "loaded", "empty": "empty"}
    assert len(leads_in(cli, "attributes")[0][0]) > 1_000_000


def test_missing_path_exits_2(cli):
    result = cli("ingest", "/no/such/file.csv")
    assert (result.exit_code, result.stderr) == (2, "error: no such file or folder: "
                                                    "/no/such/file.csv\n")


@pytest.mark.parametrize("args", [("ingest", ""), ("ingest", " ", "{tmp}/sub"),
                                  ("run", "--inbox", "", "--as-of", "2026-11-01")])
def test_an_empty_path_is_refused_not_read_as_the_working_folder(cli, tmp_path, monkeypatch,
                                                                  args):
    # `ingest "$INBOX"` with INBOX unset loaded every data file below the working folder
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub" / "other.csv", "lead_id,phone\nZ1,13912345670\n")
    monkeypatch.chdir(tmp_path)
    result = cli(*[a.format(tmp=tmp_path) for a in args])
    assert (result.exit_code, result.stderr.splitlines()[-1]) == (
        2, "error: an empty path was given (an unset variable?): name a file or folder")
    with duckdb.connect(str(cli.db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM leads").fetchone() == (0,)


@pytest.mark.parametrize("args", [("ingest", "/"), ("ingest", "//"), ("ingest", "/*"),
                                  ("ingest", "/**/*.csv"),
                                  ("run", "--inbox", "/", "--as-of", "2026-11-01")])
def test_the_root_folder_is_refused_not_walked(cli, args):
    # `ingest "$INBOX/"` with INBOX unset walked the whole machine (then exit 3 on /proc)
    result = cli(*args)
    assert (result.exit_code, result.stderr.splitlines()[-1]) == (
        2, f"error: {args[-1] if args[0] == 'ingest' else '/'} is the root folder (an unset "
           "variable before a /?): name the folder of the files")


def test_a_folder_below_that_cannot_be_listed_is_an_input_error(cli, tmp_path, monkeypatch):
    # Path.rglob passed over a folder it could not list: its files were left out, exit 0
    (tmp_path / "ok").mkdir()
    write(tmp_path / "ok" / "a.csv", "lead_id,phone\nA1,13912340001\n")
    (tmp_path / "locked").mkdir()
    listing = os.scandir

    def scandir(path="."):
        if os.fspath(path) == str(tmp_path / "locked"):  # root reads what mode 000 hides
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return listing(path)
    monkeypatch.setattr(os, "scandir", scandir)
    result = cli("ingest", tmp_path)
    assert (result.exit_code, result.stderr) == (
        2, f"error: cannot read the folder {tmp_path}/locked: Permission denied (the files in "
           "it would be left out)\n")
    assert leads_in(cli, "lead_id") == []


def test_an_empty_rules_path_is_refused(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # `rules check` read the working folder as the rules
    result = CliRunner().invoke(app, ["--db", str(cli.db), "--rules", "", "rules", "check"])
    assert (result.exit_code, result.stderr.splitlines()[-1]) == (
        2, "Error: Invalid value for '--rules' (env var: 'LEADCTL_RULES'): an empty path (an "
           "unset variable?): name the rules folder")


def test_a_path_that_is_no_file_nor_folder_is_named_so(cli):
    result = cli("ingest", "/dev/null")
    assert (result.exit_code, result.stderr) == (
        2, "error: /dev/null is neither a file nor a folder (a device, a pipe)\n")


def test_export_leads_csv_and_parquet(cli, tmp_path):
    write(tmp_path / "a.csv", "lead_id,phone\nA,13900000001\nB,13900000002\n")
    assert cli("ingest", tmp_path / "a.csv", "--source", "crm").exit_code == 0
    assert cli("export", "leads", "-o", tmp_path / "out.csv").exit_code == 0
    with open(tmp_path / "out.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["lead_id"], r["source"], r["person_id"]) for r in rows] == [
        ("A", "crm", ""), ("B", "crm", "")]
    assert cli("export", "rejects", "-o", tmp_path / "rej.parquet").exit_code == 0
    assert duckdb.execute(f"SELECT count(*) FROM '{tmp_path / 'rej.parquet'}'").fetchone() == (0,)
    bad = cli("export", "leads", "-o", tmp_path / "out.xlsx")
    assert bad.exit_code == 2 and "use a .csv or .parquet" in bad.stderr


def test_json_output_parses_and_stdout_has_only_the_result(cli, tmp_path):
    write(tmp_path / "a.csv", "lead_id,phone\nA,13900000001\n")
    result = cli("ingest", tmp_path / "a.csv", "--json")
    assert json.loads(result.stdout)["totals"]["leads"] == 1


def test_full_width_digits_count_as_an_identifier(cli, tmp_path):
    path = write(tmp_path / "fw.csv", "lead_id,phone\n1,１３８１２３４５６７８\n2,--\n")
    result = cli("ingest", path, "--json")
    assert result.json()["totals"]["leads"] == 1
    assert rejects_in(cli) == [("fw", 2, "no_identifier")]


def test_a_transcoded_file_that_fails_to_load_leaves_no_temp_copy(cli, tmp_path, monkeypatch):

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    path = write(tmp_path / "long.csv", "lead_id,phone,city\n1,13900000001,北京\n"
                 f"2,13900000002,{'x' * (9 * 1024 * 1024)}\n", "gb18030")
    result = cli("ingest", path, "--json")
    assert result.exit_code == 2 and result.stderr.endswith(
        "long.csv: a line of 9,437,199 bytes is over the 8 MB limit for one line (a quote "
        "left open makes the rest of a file one line): nothing of the file was loaded\n")
    assert list((tmp_path / "tmp").iterdir()) == []


def test_superseded_row_keeps_the_leads_columns_in_table_order():

    assert tuple(c for c, _ in open_memory().columns("leads")) == LEADS_TABLE_COLUMNS


def test_record_numbers_with_and_without_reader_rejects_in_one_command(cli, tmp_path):
    """A clean CSV numbers its rows by position, a ragged one around its rejected lines;
    both in one command (one file after another in the same workspace session)."""
    (tmp_path / "in").mkdir()
    write(tmp_path / "in" / "a.csv", HEADER_ZH + "".join(
        f"A{i},甲,1390000{i:04d},,北京,2026-10-01,\n" for i in range(1, 6)))
    write(tmp_path / "in" / "b.csv", HEADER_ZH + "B1,乙,13911110001,,北京,2026-10-01,\n"
          "B2,乙\n" "B3,乙,13911110003,,北京,2026-10-01,\n" "B4,乙,x,y,z,w,v,u\n"
          "B5,乙,13911110005,,北京,2026-10-01,\n")
    write(tmp_path / "in" / "c.csv", HEADER_ZH + "C1,丙,13922220001,,北京,2026-10-01,\n"
          "C2,丙,13922220002,,北京,2026-10-01,\n")
    write(tmp_path / "in" / "d.csv", "phone,event_type,ts\n" + "".join(
        f"1390000{i:04d},login,2026-10-0{i}\n" for i in range(1, 4)))
    assert cli("ingest", tmp_path / "in").exit_code == 0
    assert leads_in(cli, "lead_id", "row_number") == [
        ("A1", 1), ("A2", 2), ("A3", 3), ("A4", 4), ("A5", 5),
        ("B1", 1), ("B3", 3), ("B5", 5), ("C1", 1), ("C2", 2)]
    assert rejects_in(cli) == [("b", 2, "missing_columns"), ("b", 4, "too_many_columns")]
    con = duckdb.connect(str(cli.db), read_only=True)
    assert con.execute("SELECT subject, row_number FROM events ORDER BY row_number"
                       ).fetchall() == [("phone:13900000001", 1), ("phone:13900000002", 2),
                                        ("phone:13900000003", 3)]
    con.close()


UTF16_ROWS = ("lead_id\tphone\tname\tcreated_at\r\n"
              "U1\t13911112222\t张三\t2026-10-01\r\n"
              "U2\t13911113333\t李四\t2026-10-02\r\n")


def test_excel_unicode_text_utf16_with_its_mark_loads_as_is(cli, tmp_path):
    (tmp_path / "excel.txt").write_bytes(UTF16_ROWS.encode("utf-16"))
    result = cli("ingest", tmp_path / "excel.txt", "--json")
    assert result.exit_code == 0, result.stderr
    file = result.json()["files"][0]
    assert (file["status"], file["loaded"], file["encoding"], file["delimiter"]) == (
        "loaded", 2, "utf-16", "\t")
    assert leads_in(cli, "lead_id", "phone", "name") == [
        ("U1", "13911112222", "张三"), ("U2", "13911113333", "李四")]


def test_utf16_without_a_mark_needs_encoding_and_then_loads(cli, tmp_path):
    path = tmp_path / "bare.csv"
    path.write_bytes(UTF16_ROWS.replace("\t", ",").encode("utf-16-le"))
    refused = cli("ingest", path)
    assert refused.exit_code == 2
    assert refused.stderr == (f"error: {path}: binary content (NUL bytes): not a CSV or "
                              "Parquet file (it looks like UTF-16 text without its byte order "
                              "mark: --encoding utf-16le)\n")
    forced = cli("ingest", path, "--encoding", "utf-16le", "--json")
    assert (forced.exit_code, forced.json()["files"][0]["loaded"]) == (0, 2)
    assert leads_in(cli, "lead_id", "name") == [("U1", "张三"), ("U2", "李四")]


def test_mixed_line_endings_load_as_lines(cli, tmp_path):
    """One CRLF line among LF ones, or lone CRs, made DuckDB's sniffer fail the whole file:
    every line ending now ends a line, as Python's csv reads it (a CR inside an unquoted
    field splits its row, and both halves are rejected as ragged, raw text kept)."""
    write(tmp_path / "a.csv", "lead_id,phone\nG0,13900000000\r\nG1,13900000001\n")
    write(tmp_path / "b.csv", "lead_id,phone,city\rG2,13900000002,北京\rG3,139000\r00003,上海\r")
    result = cli("ingest", tmp_path / "a.csv", tmp_path / "b.csv", "--json")
    assert result.exit_code == 0, result.stderr
    assert [(f["status"], f["rows_read"], f["loaded"], f["rejected"])
            for f in result.json()["files"]] == [("loaded", 2, 2, 0), ("loaded", 3, 1, 2)]
    assert leads_in(cli, "lead_id", "phone") == [
        ("G0", "13900000000"), ("G1", "13900000001"), ("G2", "13900000002")]
    assert rejects_in(cli) == [("b", 2, "missing_columns"), ("b", 3, "missing_columns")]


def test_line_breaks_inside_a_quoted_value_are_its_text_in_a_mixed_file(cli, tmp_path):
    # the copy with LF line endings wrote them as LF too: "a\r\nb" loaded as "a\nb"
    write(tmp_path / "a.csv", 'lead_id,phone,note\nQ1,13900000001,"a\r\nb"\r\n'
          'Q2,13900000002, "c\rd"\nQ3,13900000003,"e""\r""f"\r')
    result = cli("ingest", tmp_path / "a.csv", "--json")
    assert [(f["loaded"], f["rejected"]) for f in result.json()["files"]] == [(3, 0)]
    assert leads_in(cli, "lead_id", "attributes ->> 'note'") == [
        ("Q1", "a\r\nb"), ("Q2", "c\rd"), ("Q3", 'e"\r"f')]


@given(st.text(st.sampled_from('ab,"\r\n '), max_size=40), st.data())
def test_line_endings_are_the_same_however_the_file_is_cut_in_chunks(text, data):
    ends = sniff.LineEnds(",")
    whole = sniff._lf(text, ends, final=True)[0]
    assert whole == sniff._lf_tokens(text, ends.tokens, True, 0)[0]  # split = token loop
    cut = data.draw(st.integers(0, len(text)))
    first, last, held = sniff._lf(text[:cut], ends)
    rest = sniff._lf(last + held + text[cut:], ends, final=True, start=len(last))[0]
    assert first + rest == whole


def test_an_events_file_keeps_every_column(cli, tmp_path):
    # 来源/渠道 are aliases of utm_source/channel, which the file also has: both kept
    path = write(tmp_path / "ev.csv", "phone,event_type,ts,来源,utm_source,渠道,channel\n"
                 "13812345678,login,2026-10-30,SRC_A,SRC_B,CH_A,CH_B\n")
    assert cli("ingest", path).exit_code == 0
    con = duckdb.connect(str(cli.db), read_only=True)
    ((subject, attributes),) = con.execute("SELECT subject, attributes FROM events").fetchall()
    assert (subject, json.loads(attributes)) == (
        "phone:13812345678",
        {"utm_source": "SRC_B", "channel": "CH_B", "来源": "SRC_A", "渠道": "CH_A"})
    con.close()


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize("name", ["row_number", "rowid", "file_row_number", "_k", "_corrupt"])
def test_a_column_named_like_a_record_number_is_kept_as_an_attribute(cli, tmp_path, fmt,
                                                                        name):
    # its values (1 on every row) must never become the record numbers, hence lead keys
    csv_text = f"lead_id,phone,{name}\nL1,13800000001,1\nL2,13800000002,1\nL3,13800000003,1\n"
    path = write(tmp_path / "page2.csv", csv_text)
    if fmt == "parquet":
        duckdb.execute(f"COPY (SELECT * FROM read_csv('{path}', all_varchar = true)) "
                       f"TO '{tmp_path / 'page2.parquet'}' (FORMAT parquet)")
        path.unlink()
        path = tmp_path / "page2.parquet"
    assert cli("ingest", path).exit_code == 0
    assert leads_in(cli, "lead_key", "lead_id", "row_number", "attributes") == [
        (k, f"L{k}", k, json.dumps({f"{name}_1": "1"}, separators=(",", ":")))
        for k in (1, 2, 3)]


def test_a_stray_nul_is_a_character_and_a_csv_named_parquet_is_a_csv(cli, tmp_path):
    with_nul = "张\x00三"
    rows = "".join(f"L{i},1390000{i:04d},{with_nul if i == 7 else '李四'}\n" for i in range(300))
    nul = write(tmp_path / "feed.csv", "lead_id,phone,name\n" + rows)
    named = write(tmp_path / "web.parquet", "lead_id,phone\nW1,13700000001\n")
    result = cli("ingest", nul, named, "--json")
    assert result.exit_code == 0, result.stderr
    assert [(f["status"], f["loaded"]) for f in result.json()["files"]] == [
        ("loaded", 300), ("loaded", 1)]
    assert leads_in(cli, "name")[7] == ("张\x00三",)


def test_a_damaged_byte_in_a_gbk_or_utf16_file_rejects_its_row_and_keeps_the_others(cli,
                                                                                     tmp_path):
    rows = "".join(f"G{i}|韩梅梅{i}|1370000{i:04d}\n" for i in range(50))
    data = ("线索ID|姓名|手机\n" + rows).encode("gb18030")
    at = data.index(b"13700000007") + 3
    gbk = tmp_path / "agent.csv"
    gbk.write_bytes(data[:at] + b"\xff" + data[at + 1:])  # inside G7's phone
    text = "lead_id\tname\tphone\r\n" + "".join(f"U{i}\t名{i}\t1380000{i:04d}\r\n"
                                                for i in range(20))
    wide = text.encode("utf-16-le")
    cut = wide.index("名7".encode("utf-16-le"))
    excel = tmp_path / "excel.txt"
    excel.write_bytes(b"\xff\xfe" + wide[:cut] + b"\x00\xd8" + wide[cut:])  # a lone surrogate
    result = cli("ingest", gbk, excel, "--json")
    assert result.exit_code == 0, result.stderr
    assert [(f["encoding"], f["loaded"], f["rejected"]) for f in result.json()["files"]] == [
        ("gb18030", 49, 1), ("utf-16", 19, 1)]
    assert "G7" not in [r[0] for r in leads_in(cli, "lead_id")]
    assert [r[2] for r in rejects_in(cli)] == ["invalid_encoding", "invalid_encoding"]


def test_a_utf16_file_cut_by_one_byte_rejects_its_last_row(cli, tmp_path):
    """Half a UTF-16 unit was written as U+FFFD, valid UTF-8: `Bob\ufffd` loaded."""
    text = ("lead_id,phone,name\n" + "".join(f"A{i},138{i:08d},name{i}\n" for i in range(100))
            + "Z1,13899999999,Bob\n")
    path = tmp_path / "cut.csv"
    path.write_bytes(text.encode("utf-16")[:-1])
    result = cli("ingest", path, "--json")
    assert result.exit_code == 0, result.stderr
    [file] = result.json()["files"]
    assert (file["encoding"], file["loaded"], file["rejected"], file["message"]) == (
        "utf-16", 100, 1, "1 undecodable byte(s): their rows are rejected (invalid_encoding)")
    assert rejects_in(cli) == [("cut", 101, "invalid_encoding")]
    assert "Z1" not in {lead_id for (lead_id,) in leads_in(cli, "lead_id")}


def test_a_damaged_character_in_a_utf8_file_rejects_its_row_and_the_file_stays_utf8(
        cli, tmp_path):
    # GB18030 decodes almost any bytes: it won on "fewer undecodable bytes" and every
    # 张三 was stored as 寮犱笁, with no reject.
    rows = [f"B{i},139{i:08d},张三\n".encode() for i in range(300)]
    rows[150] = b"B150,13900000150," + "王".encode()[:2] + b"x\n"
    path = tmp_path / "feed.csv"
    path.write_bytes(b"lead_id,phone,name\n" + b"".join(rows))
    short = tmp_path / "short.csv"  # 18 good characters, one damaged
    short.write_bytes(b"lead_id,phone,name\n" + b"".join(rows[145:155]))
    # GBK whose 太原 passes as UTF-8 (two combining marks): still GBK
    gbk = tmp_path / "ty.csv"
    gbk.write_bytes(("lead_id,phone,city\n" + "".join(
        f"T{i},139{i:08d},太原\n" for i in range(300)) + "T300,13900000300,张三\n"
    ).encode("gbk"))
    # GBK whose 眉山 passes as a two-letter UTF-8 word (üɽ): still GBK
    gbk_word = tmp_path / "ms.csv"
    gbk_word.write_bytes(("lead_id,phone,city\n" + "".join(
        f"M{i},139{i:08d},眉山\n" for i in range(300))).encode("gbk")
                         + "M300,13900000300,张三\n".encode("gbk"))
    # UTF-8 in accented Latin and Cyrillic (2-byte letters) with one damaged character
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"lead_id,phone,name\n" + "".join(
        f"R{i},139{i:08d},{('José Müller', 'Ангелина Петрова', 'Łukasz Żółć')[i % 3]}\n"
        for i in range(30)).encode() + b"R30,13900000030," + "Ж".encode()[:1] + b"x\n")
    result = cli("ingest", path, short, gbk, gbk_word, latin, "--json")
    assert [(f["encoding"], f["loaded"], f["rejected"]) for f in result.json()["files"]] == [
        ("utf-8", 299, 1), ("utf-8", 9, 1), ("gb18030", 301, 0), ("gb18030", 301, 0),
        ("utf-8", 30, 1)]
    assert {name for (name,) in leads_in(cli, "name") if name} == {
        "张三", "José Müller", "Ангелина Петрова", "Łukasz Żółć"}
    assert {city for (city,) in leads_in(cli, "city") if city} == {"太原", "张三", "眉山"}
    assert [r[1:] for r in rejects_in(cli)] == [(151, "invalid_encoding"),
                                                (6, "invalid_encoding"),
                                                (31, "invalid_encoding")]


def test_a_latin1_byte_in_a_utf8_spanish_file_rejects_its_row_and_the_file_stays_utf8(
        cli, tmp_path):
    # Spanish has a dozen distinct accented letters, never the 10 per failure the distinct
    # count asked for: the file went to GB18030 whole, José stored as Jos茅, no reject.
    short = tmp_path / "es.csv"
    short.write_bytes(b"lead_id,name,phone,city\n" + "S1,José García,13800000001,Málaga\n"
                      "S2,Ana Núñez,13800000002,A Coruña\n".encode()
                      + b"S3,Ram\xf3n P\xc3\xa9rez,13800000003,Le\xc3\xb3n\n"
                      b"S4,Luis,13800000004,Madrid\n")
    names = ("José García", "Ana Núñez", "Íñigo Peña", "Luis", "Begoña Muñoz")
    rows = [f"E{i},{names[i % 5]},138{i:08d},Málaga\n".encode() for i in range(1000)]
    rows[300] = b"E300,Ram\xf3n,13800000300,M\xe1laga\n"  # two Latin-1 bytes
    large = tmp_path / "es_large.csv"
    large.write_bytes(b"lead_id,name,phone,city\n" + b"".join(rows))
    # GBK with an ASCII word before a hanzi that passes as a UTF-8 letter (iPad平 as
    # iPadƽ) and 太原 as two combining marks: still GBK
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes(("lead_id,phone,city,product\n" + "".join(
        f"P{i},139{i:08d},太原,iPad平板\n" for i in range(300))).encode("gbk"))
    # GBK brand + hanzi names that pass as UTF-8 letters of other blocks, repeated (Zara女装
    # as ZaraŮװ): were counted as accented words, the file read as UTF-8, its cities
    # rejected and its products garbled
    shop = tmp_path / "shop.csv"
    products = ("Nike女鞋", "Zara女装", "Adidas女鞋", "Uniqlo女装", "Vero Moda女装")
    shop.write_bytes(("lead_id,name,phone,product,city\n" + "".join(
        f"W{i},Lily Chen,139{i:08d},{products[i % 5]},{'上海' if i % 25 == 0 else 'Shanghai'}\n"
        for i in range(200))).encode("gbk"))
    result = cli("ingest", short, large, gbk, shop, "--json")
    assert result.exit_code == 0, result.stderr
    assert [(f["encoding"], f["loaded"], f["rejected"]) for f in result.json()["files"]] == [
        ("utf-8", 3, 1), ("utf-8", 999, 1), ("gb18030", 300, 0), ("gb18030", 200, 0)]
    assert {name for (name,) in leads_in(cli, "name") if name} == {*names, "Lily Chen"}
    assert {city for (city,) in leads_in(cli, "city")} == {"Málaga", "A Coruña", "Madrid",
                                                           "太原", "上海", "Shanghai"}
    assert rejects_in(cli) == [("es", 3, "invalid_encoding"),
                               ("es_large", 301, "invalid_encoding")]


def test_a_comma_in_an_amount_groups_thousands_or_the_amount_is_rejected(cli, tmp_path):
    amounts = ["1,200.5", "12,345,678", "-1,000", "12,5", "1.234,56", "1,2,3", "1200,50"]
    path = write(tmp_path / "orders.csv", "phone;event_type;ts;amount\n" + "".join(
        f"1380000000{i};order_paid;2026-10-01 08:00:00;{a}\n" for i, a in enumerate(amounts)))
    assert cli("ingest", path).exit_code == 0
    con = duckdb.connect(str(cli.db), read_only=True)
    assert con.execute("SELECT amount FROM events ORDER BY row_number").fetchall() == [
        (1200.5,), (12345678.0,), (-1000.0,)]
    con.close()
    assert [(r[1], r[2]) for r in rejects_in(cli)] == [
        (4, "bad_amount"), (5, "bad_amount"), (6, "bad_amount"), (7, "bad_amount")]


def test_the_header_line_again_is_a_reject_not_a_lead(cli, tmp_path):
    first = "lead_id,phone,name\nL1,13800000001,张三\n"
    path = write(tmp_path / "joined.csv", first + "\ufeff" + first.replace("L1,", "L2,")
                 .replace("13800000001", "13800000002"))  # two exports joined, BOMs and all
    assert cli("ingest", path).exit_code == 0
    assert leads_in(cli, "lead_id") == [("L1",), ("L2",)]
    assert [(r[1], r[2]) for r in rejects_in(cli)] == [(2, "repeated_header")]


def test_the_header_line_again_in_an_events_file_is_a_repeated_header(cli, tmp_path):
    # it was a `bad_timestamp` (its `ts` cell is no time), unlike a leads file's
    first = "phone,event_type,ts,amount\n13800000001,order_paid,2026-10-01 08:00,100\n"
    path = write(tmp_path / "joined_events.csv", first + "\ufeff" + first.replace(
        "13800000001", "13800000002"))  # two exports joined, BOMs and all
    result = cli("ingest", path, "--json")
    assert result.exit_code == 0, result.stderr
    assert (result.json()["files"][0]["kind"], result.json()["files"][0]["loaded"]) == (
        "events", 2)
    con = duckdb.connect(str(cli.db), read_only=True)
    try:
        assert con.execute("SELECT row_number, subject FROM events ORDER BY 1").fetchall() == [
            (1, "phone:13800000001"), (3, "phone:13800000002")]
        assert con.execute("SELECT row_number, reason, detail FROM rejects").fetchall() == [
            (2, "repeated_header", "the header line again (files joined?)")]
    finally:
        con.close()


def test_a_leads_file_of_600_columns_loads_its_unknown_ones_as_attributes(cli, tmp_path):
    # the row's text for a generated id was a chain of 600 `||`: over DuckDB's depth limit
    names = [f"c{j}" for j in range(598)]
    write(tmp_path / "wide.csv", "phone,created_at," + ",".join(names) + "\n"
          "13912345601,2026-10-01," + ",".join(f"v{j}" for j in range(598)) + "\n")
    assert cli("ingest", tmp_path / "wide.csv").exit_code == 0
    [(lead_id, attributes)] = leads_in(cli, "lead_id", "attributes")
    assert lead_id.startswith("h") and len(json.loads(attributes)) == 598


def test_a_file_named_like_a_pattern_is_that_file(cli, tmp_path):
    """DuckDB's reader took `leads[1].csv` for a pattern: it read leads1.csv beside it."""
    (tmp_path / "leads1.csv").write_text("lead_id,phone\nW1,13922220071\n")
    for name in ("leads[1].csv", "leads?.csv", "leads*.csv"):
        (tmp_path / name).write_text(f"lead_id,phone\n{name[5]}1,13922220072\n")
    assert cli("ingest", *(tmp_path / n for n in ("leads[1].csv", "leads?.csv", "leads*.csv"))
               ).exit_code == 0
    assert db_rows(cli, "SELECT source, lead_id FROM leads ORDER BY lead_id") == [
        ("leads*", "*1"), ("leads?", "?1"), ("leads[1]", "[1")]


def test_a_folder_named_tilde_is_that_folder(cli, tmp_path, monkeypatch):
    """DuckDB's reader took `~/x.csv` (pathlib's `./~/x.csv`) for the home folder's."""
    home, here = tmp_path / "home", tmp_path / "here"
    (here / "~").mkdir(parents=True)
    home.mkdir()
    (home / "x.csv").write_text("lead_id,phone\nH1,13922220101\n")
    (here / "~" / "x.csv").write_text("lead_id,phone\nT1,13922220102\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(here)
    assert cli("ingest", "./~/x.csv").exit_code == 0
    assert db_rows(cli, "SELECT lead_id FROM leads") == [("T1",)]
