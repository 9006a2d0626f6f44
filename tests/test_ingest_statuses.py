"""Ingest statuses tell the truth: rejected / empty / invalid files, junk text, forced
encodings that contradict the file, duplicates naming the earlier file; never a crash."""

from __future__ import annotations

import io
import random
import re
import struct
import tempfile
import zipfile
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Cli, db_rows, write

UTF8_ZH = "线索ID,手机号\n1,13900000001\n"



def test_a_file_of_which_no_row_loaded_is_rejected_or_empty_in_json_and_table(cli, tmp_path):
    write(tmp_path / "allbad.csv", "lead_id,phone\n1,\n2,--\n")
    write(tmp_path / "header.csv", "lead_id,phone\n")
    write(tmp_path / "blank.csv", "\n\n")
    write(tmp_path / "good.csv", "lead_id,phone\n1,13900000001\n")
    result = cli("ingest", tmp_path, "--json")
    assert result.exit_code == 0
    assert [(f["source"], f["status"], f["message"]) for f in result.json()["files"]] == [
        ("allbad", "rejected", "no row loaded: all 2 rejected"),
        ("blank", "empty", "empty file: nothing to ingest"),
        ("good", "loaded", ""),
        ("header", "empty", "no rows")]
    assert db_rows(cli, "SELECT source, status, rows_read, rows_loaded, rows_rejected "
                      "FROM ingested_files ORDER BY file_id") == [
        ("allbad", "rejected", 2, 0, 2), ("blank", "empty", 0, 0, 0),
        ("good", "loaded", 1, 1, 0), ("header", "empty", 0, 0, 0)]
    totals = result.json()["totals"]
    assert (totals["rejected_files"], totals["empty_files"]) == (1, 2)


@pytest.mark.parametrize("header", ["phone, city", "phone,note,note", "phone,,city",
                                    "phone,row_number", "\n\nphone,city"])
def test_the_header_line_again_is_known_as_written(cli, tmp_path, header):
    # compared with the header as written, not with the reader's names for it (trimmed,
    # `note_1`, `column1`, `row_number_1`): the line loaded as a lead with phone 'phone'
    first = header.strip().split(",")
    row = ",".join(["13900000001"] + ["x"] * (len(first) - 1))
    (tmp_path / "a.csv").write_text(f"{header}\n{row}\n{header.strip()}\n"
                                    f"{row.replace('01', '02')}\n", encoding="utf-8")
    assert cli("ingest", tmp_path).exit_code == 0
    assert db_rows(cli, "SELECT row_number, reason FROM rejects") == [(2, "repeated_header")]
    assert db_rows(cli, "SELECT phone FROM leads ORDER BY 1") == [("13900000001",),
                                                                ("13900000002",)]


def test_a_rejected_line_keeps_its_text_as_written_in_a_crlf_file(cli, tmp_path):
    (tmp_path / "a.csv").write_bytes(b"phone,city\r\n13900000001,a\r\n13900000002\r\n")
    assert cli("ingest", tmp_path).exit_code == 0
    assert db_rows(cli, "SELECT row_number, reason, raw FROM rejects") == [
        (2, "missing_columns", "13900000002")]  # was '\n13900000002'


def test_a_byte_order_mark_or_an_end_of_file_mark_alone_is_an_empty_file(cli, tmp_path):
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbf")
    (tmp_path / "bom_lines.csv").write_bytes(b"\xef\xbb\xbf\r\n\x1a")
    (tmp_path / "wide_bom.csv").write_bytes(b"\xff\xfe\n\x00")
    result = cli("ingest", tmp_path, "--json")
    assert result.exit_code == 0
    assert {(f["source"], f["status"], f["message"]) for f in result.json()["files"]} == {
        (name, "empty", "empty file: nothing to ingest")
        for name in ("bom", "bom_lines", "wide_bom")}


def test_the_delimiter_is_not_counted_inside_a_quoted_header_name(cli, tmp_path):
    (tmp_path / "semi.csv").write_bytes(b'"landing page, utm, x";phone\n"x";13900000001\n')
    files = cli("ingest", tmp_path, "--json").json()["files"]
    assert [(f["status"], f["delimiter"], f["loaded"]) for f in files] == [("loaded", ";", 1)]


def test_the_delimiter_is_told_from_the_header_after_blank_lines(cli, tmp_path):
    # the readers skip blank lines before the header; the sniffer read `,` off the empty one
    (tmp_path / "semi.csv").write_bytes(b"\n\nlead_id;phone;name\nb1;13900000055;Li\n")
    # and after a byte order mark (DuckDB's reader took the blank line for the header)
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbf\r\nlead_id,phone\nb2,13900000056\n")
    files = cli("ingest", tmp_path, "--json").json()["files"]
    assert [(f["source"], f["status"], f["delimiter"], f["loaded"]) for f in files] == [
        ("bom", "loaded", ",", 1), ("semi", "loaded", ";", 1)]


def test_a_dos_end_of_file_mark_is_not_read_as_data(cli, tmp_path):
    # Ctrl-Z (0x1A) after the last line, or right after its last value; a time of 24:00
    # is the next day's 00:00.
    (tmp_path / "a.csv").write_bytes(b"lead_id,phone,created_at\n"
                                     b"1,13900000001,2026-10-01 24:00:00\n\x1a")
    (tmp_path / "b.csv").write_bytes("线索ID,手机号\n2,13900000002\x1a".encode("gb18030"))
    for n, order in ((3, "le"), (4, "be")):  # UTF-16: the mark is two bytes
        (tmp_path / f"c{order}.csv").write_bytes(("\ufeff线索ID\t手机号\r\n"
                                                  f"{n}\t1390000000{n}\r\n\x1a")
                                                 .encode(f"utf-16-{order}"))
    result = cli("ingest", tmp_path, "--json")
    assert [(f["source"], f["status"], f["loaded"], f["rejected"])
            for f in result.json()["files"]] == [("a", "loaded", 1, 0), ("b", "loaded", 1, 0),
                                                 ("cbe", "loaded", 1, 0), ("cle", "loaded", 1, 0)]
    assert db_rows(cli, "SELECT lead_id, phone, CAST(created_at AS VARCHAR) FROM leads "
                      "ORDER BY ALL") == [("1", "13900000001", "2026-10-02 00:00:00"),
                                          ("2", "13900000002", None),
                                          ("3", "13900000003", None),
                                          ("4", "13900000004", None)]


def test_skipped_duplicate_names_the_earlier_file_and_when(cli, tmp_path):
    first = write(tmp_path / "a.csv", "lead_id,phone\n1,13900000001\n")
    assert cli("ingest", first).exit_code == 0
    (at,), = db_rows(cli, "SELECT strftime(ingested_at, '%Y-%m-%d %H:%M:%S') FROM ingested_files")
    copy = write(tmp_path / "copy.csv", "lead_id,phone\n1,13900000001\n")
    result = cli("ingest", copy, "--json")
    assert result.json()["files"][0]["duplicate_of"] == {"file": str(first), "ingested_at": at}
    text = cli("ingest", copy, env={"COLUMNS": "400"})
    assert "│ skipped_duplicate │ " in text.stdout
    assert f"│ same content as {first}, ingested {at} │" in text.stdout


def test_run_treats_a_file_that_loaded_nothing_as_a_data_check(cli, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    write(inbox / "good.csv", "lead_id,phone\n1,13900000001\n2,13900000002\n")
    write(inbox / "allbad.csv", "lead_id,phone\n1,\n")
    write(inbox / "header.csv", "lead_id,phone\n")
    result = cli("run", "--inbox", inbox, "--as-of", "2026-11-01", "--max-reject-share", "1")
    assert (result.exit_code, result.stderr) == (
        1, "warning: ingest: 1 of 3 rows rejected (33.3%; allowed 100%), see `leadctl "
           f"export rejects`\nerror: no row loaded from {inbox}/allbad.csv (rejected), "
           f"{inbox}/header.csv (empty)\n")
    assert db_rows(cli, "SELECT outcome FROM runs") == [("data_check_failed",)]
    assert db_rows(cli, "SELECT count(*) FROM leads") == [(2,)]  # the work is published


def test_run_with_an_invalid_file_exits_2_and_changes_nothing(cli, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    write(inbox / "good.csv", "lead_id,phone\n1,13900000001\n")
    write(inbox / "sem.csv", "姓名,city\n甲,北京\n")
    result = cli("run", "--inbox", inbox, "--as-of", "2026-11-01")
    assert result.exit_code == 2
    assert (f"1 inbox file(s) could not be read or used, nothing was changed: {inbox}/sem.csv: "
            "no identifier column (found: 姓名, city; expected one of phone, email, wechat, "
            "device_id, id_card or an alias of one, see rules/sources.yaml)") in result.stderr
    assert db_rows(cli, "SELECT count(*) FROM ingested_files") == [(0,)]


def test_text_junk_is_refused_like_binary_junk(cli, tmp_path):
    ctl = tmp_path / "ctl.csv"
    ctl.write_bytes(b"lead_id,phone\n\x01\x02\x03\x04,\x05\x06\x07\x08\n")  # 8: JUNK_MIN
    ragged = write(tmp_path / "ragged.csv", "a,b,c\nx;y\nq|w|e|r\nzz\n1,2\nfoo bar\n")
    write(tmp_path / "good.csv", "lead_id,phone\n1,13900000001\n")
    result = cli("ingest", tmp_path, "--json")
    assert result.exit_code == 2
    assert {f["source"]: f["status"] for f in result.json()["files"]} == {
        "ctl": "failed", "good": "loaded", "ragged": "failed"}
    assert result.stderr == (
        f"error: {ctl}: not a text table (8 of 24 characters are control characters or "
        "undecodable)\n"
        f"error: {ragged}: no consistent delimiter (the header has 3 fields split by ',', but "
        "only 0 of 5 sampled lines do)\n")


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_data_lines_ending_in_a_delimiter_load_whatever_their_number(cli, tmp_path, delimiter):
    # 4 such lines or more failed the file (`no consistent delimiter ... only 0 of 4
    # sampled lines do`), 3 loaded: the junk check counted only lines of 3 fields
    def csv_text(header: str, rows: int, end: str) -> str:
        return (header.replace(",", delimiter) + "\n" + "".join(
            delimiter.join((f"A{i}", f"n{i}", f"138{i:08d}")) + end + "\n"
            for i in range(rows)))
    short = write(tmp_path / "short.csv", csv_text("lead_id,name,phone", 3, delimiter))
    trailing = write(tmp_path / "trailing.csv", csv_text("lead_id,name,phone", 300, delimiter))
    result = cli("ingest", short, trailing, "--json")
    assert result.exit_code == 0, result.stderr
    assert [(f["status"], f["loaded"], f["rejected"]) for f in result.json()["files"]] == [
        ("loaded", 3, 0), ("loaded", 300, 0)]
    assert db_rows(cli, "SELECT count(*), count(attributes), max(row_number) FROM leads "
                      "WHERE source = 'trailing'") == [(300, 0, 300)]
    # The header's own trailing delimiter: its rows are read as a small file's are (one
    # value short of the header: missing_columns), the file is not refused as junk
    header_end = write(tmp_path / "header_end.csv", csv_text("lead_id,name,phone,", 5, ""))
    result = cli("ingest", header_end, "--json")
    assert [(f["status"], f["rejected"]) for f in result.json()["files"]] == [("rejected", 5)]


UNREADABLE_HEADER = ("its header line cannot be read: a quote left open (the rest of the file "
                     "reads as one field) or a header field over 131,072 characters")


@pytest.mark.parametrize("header, rows", [
    ('phone,"name,city', 10_000),  # the rest of the file one field
    ('phone,"' + "x" * 140_000 + '"', 10_000),
    # a small file: DuckDB loaded a column `"name` (Spark reads `phone`, `name,city`)
    ('phone,"name,city', 1),
    ('phone,"name,city', 3),  # closed by a later quote that ends no field: `,"W"x`
])
def test_an_unreadable_header_fails_its_file_and_the_others_load(cli, tmp_path,
                                                                 header, rows):
    """Python's csv gives up on a field over 128 KB: that raised out of the command
    (exit 3) and the good files of the command were not loaded either. A header whose
    quote is left open fails its file whatever the file's size."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    bad = write(inbox / "bad.csv", header + "\n" + "".join(
        f'139{i:08d},"W"x,c\n' if (i, rows) == (1, 3) else f"139{i:08d},n{i},c\n"
        for i in range(rows)))
    write(inbox / "good.csv", "lead_id,phone\nG1,13812345671\n")
    result = cli("ingest", inbox, "--json")
    assert (result.exit_code, result.stderr) == (2, f"error: {bad}: {UNREADABLE_HEADER}\n")
    assert [(f["source"], f["status"], f["loaded"], f["message"])
            for f in result.json()["files"]] == [
        ("bad", "failed", 0, UNREADABLE_HEADER), ("good", "loaded", 1, "")]
    run = Cli(tmp_path / "run.duckdb")("run", "--inbox", inbox, "--as-of", "2026-11-01",
                                       "--json")
    assert run.exit_code == 2
    assert [(f["source"], f["status"]) for f in run.json()["ingest"]["files"]] == [
        ("bad", "failed"), ("good", "loaded")]
    assert run.json()["error"]["message"] == (
        "1 inbox file(s) could not be read or used, nothing was changed: "
        f"{bad}: {UNREADABLE_HEADER}")


def test_a_header_name_spanning_lines_after_a_space_past_a_quote_loads(cli, tmp_path):
    """`"phone" ,"home\ncity"`: the space after a closing quote sent the header to the
    lenient read, which took any name with a line break for a quote left open (the file
    `failed`, exit 2); DuckDB reads it as phone and `home\ncity`. A quote the same spaces
    follow that is really left open (closed by a quote ending no field) still fails."""
    ok = write(tmp_path / "ok.csv", '"phone" ,"home\ncity"\n13800000001,北京\n'
                                    '13800000002,"上海"\n')
    result = cli("ingest", ok, "--json")
    assert (result.exit_code, result.stderr) == (0, "")
    assert [(f["status"], f["loaded"]) for f in result.json()["files"]] == [("loaded", 2)]
    assert db_rows(cli, "SELECT phone, attributes::VARCHAR, row_number FROM leads "
                      "ORDER BY row_number") == [
        ("13800000001", '{"home\\ncity":"北京"}', 1),
        ("13800000002", '{"home\\ncity":"上海"}', 2)]
    bad = write(tmp_path / "bad.csv", '"phone" ,"name,city\n13800000001,"W"x,c\n')
    result = cli("ingest", bad, "--json")
    assert (result.exit_code, result.stderr) == (2, f"error: {bad}: {UNREADABLE_HEADER}\n")


def _png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00\x00")) + chunk(b"IEND", b""))


def _zip() -> bytes:
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as archive:
        archive.writestr("leads.csv", "lead_id,phone\n1,13900000001\n")
    return data.getvalue()


@pytest.mark.parametrize("data, message", [
    (_png(), "binary content (NUL bytes): not a CSV or Parquet file"),  # 67 bytes
    (_zip(), "binary content (NUL bytes): not a CSV or Parquet file"),
    (random.Random(7).randbytes(64),
     "not a text table (20 of 50 characters are control characters or undecodable)"),
    (b"\x00\x01\x02garbage\x00" * 3,  # 6 NULs, 12 control characters
     "not a text table (12 of 33 characters are control characters or undecodable)"),
])
def test_small_binary_files_are_still_refused(cli, tmp_path, data, message):
    path = tmp_path / "x.csv"
    path.write_bytes(data)
    assert (cli("ingest", path).stderr) == f"error: {path}: {message}\n"


def test_one_bad_byte_in_a_small_file_rejects_its_row_only(cli, tmp_path):
    """One NUL or one damaged byte in 55 characters was over 1%: the whole file failed
    (exit 2), its good rows with it, where in a file of 40 rows only its row went."""
    nul = tmp_path / "nul.csv"
    nul.write_bytes(b"lead_id,phone,name\nN1,13812345671,a\x00b\nN2,13812345672,ok\n")
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes("lead_id,phone,name\nK1,13812345671,张三\nK2,13812345672,李四\n"
                    .encode("gbk").replace("李四".encode("gbk"), b"\xc0\xff"))
    result = cli("ingest", nul, gbk, "--json")
    assert (result.exit_code, result.stderr) == (0, "")
    assert [(f["source"], f["status"], f["encoding"], f["loaded"], f["rejected"])
            for f in result.json()["files"]] == [
        ("nul", "loaded", "utf-8", 2, 0), ("gbk", "loaded", "gb18030", 1, 1)]
    assert db_rows(cli, "SELECT lead_id, name FROM leads ORDER BY 1") == [
        ("K1", "张三"), ("N1", "a\x00b"), ("N2", "ok")]  # the NUL a character of its cell
    assert db_rows(cli, "SELECT source, row_number, reason FROM rejects") == [
        ("gbk", 2, "invalid_encoding")]


@pytest.mark.parametrize("header, names", [
    ('phone,"home\ncity"', ["phone", "home\ncity"]),  # a name with a line break is one
    ('"phone" ,note', ["phone", "note"]),  # a space after a closing quote
])
def test_a_header_whose_quotes_close_loads(cli, tmp_path, header, names):
    path = write(tmp_path / "x.csv", f"{header}\n13812345671,SH\n")
    assert cli("ingest", path).exit_code == 0
    assert db_rows(cli, "SELECT phone, attributes FROM leads") == [
        ("13812345671", '{"' + names[1].replace("\n", "\\n") + '":"SH"}')]


def test_a_few_ragged_rows_are_still_rejected_row_by_row(cli, tmp_path):
    path = write(tmp_path / "x.csv", "lead_id,phone,city\n1,13900000001,北京\n2,13900000002\n"
                 "3,13900000003,上海\n4,13900000004,x,y\n5,13900000005,广州\n")
    result = cli("ingest", path, "--json")
    assert (result.exit_code, result.json()["files"][0]["status"]) == (0, "loaded")
    assert db_rows(cli, "SELECT lead_id FROM leads ORDER BY 1") == [("1",), ("3",), ("5",)]
    assert db_rows(cli, "SELECT row_number, reason FROM rejects ORDER BY 1") == [
        (2, "missing_columns"), (4, "too_many_columns")]


@pytest.mark.parametrize("eol", ["\n", "\r\n"])
def test_blank_lines_use_no_record_number(cli, tmp_path, eol):
    lines = ["", "lead_id,phone,city", "1,13900000001,北京", "", "", "2,13900000002",
             "3,13900000003,上海", "", "4,13900000004,x,y", "5,13900000005,广州", ""]
    path = tmp_path / "x.csv"
    path.write_bytes(eol.join(lines).encode())
    assert cli("ingest", path).exit_code == 0
    assert db_rows(cli, "SELECT lead_id, row_number FROM leads ORDER BY 1") == [
        ("1", 1), ("3", 3), ("5", 5)]
    assert db_rows(cli, "SELECT row_number, reason FROM rejects ORDER BY 1") == [
        (2, "missing_columns"), (4, "too_many_columns")]


@pytest.mark.parametrize("eol", ["\n", "\r\n"])
@pytest.mark.parametrize("lines, leads, rejects", [
    (["lead_id,phone,city", "1,13900000001,北京", "   ", "2,13900000002", "\t \t",
      "3,13900000003,上海", "  "], [("1", 1), ("3", 3)], [(2, "missing_columns")]),
    (["lead_id,phone,city", "1,13900000001,北京", " ", "3,13900000003,上海", "\t"],
     [("1", 1), ("3", 2)], []),
    # a line of spaces inside a quoted value is text of it
    (["lead_id,phone,note", '1,13900000001,"a', "   ", 'b"', "  ", "2,13900000002", "",
      "3,13900000003,c"], [("1", 1), ("3", 3)], [(2, "missing_columns")]),
    # before the header (DuckDB's reader took the first for the header: an invalid file)
    (["  ", "\t", "", "lead_id,phone,city", "1,13900000001,北京", " ", "2,13900000002",
      "3,13900000003,上海"], [("1", 1), ("3", 3)], [(2, "missing_columns")]),
])
def test_a_line_of_white_space_alone_is_a_blank_line(cli, tmp_path, eol, lines, leads,
                                                     rejects):
    """DuckDB's reader rejected a line of spaces or tabs alone in a file of more columns
    (`missing_columns`), numbered it and shifted the rows after it; Spark skips it."""
    path = tmp_path / "x.csv"
    path.write_bytes(eol.join(lines).encode())
    result = cli("ingest", path, "--strict", "--json")
    assert result.exit_code == (1 if rejects else 0), result.stderr
    assert result.json()["totals"]["rows_read"] == len(leads) + len(rejects)
    assert db_rows(cli, "SELECT lead_id, row_number FROM leads ORDER BY 1") == leads
    assert db_rows(cli, "SELECT row_number, reason FROM rejects ORDER BY 1") == rejects


def test_a_line_of_tabs_alone_in_a_tab_separated_file_is_a_blank_line(cli, tmp_path):
    # too few fields: rejected by DuckDB's reader, skipped by Spark's
    path = write(tmp_path / "x.tsv", "lead_id\tphone\tcity\n1\t13900000001\t北京\n"
                 "\t\n \t \n2\t13900000002\n3\t13900000003\t上海\n")
    assert cli("ingest", path).exit_code == 0
    assert db_rows(cli, "SELECT lead_id, row_number FROM leads ORDER BY 1") == [
        ("1", 1), ("3", 3)]
    assert db_rows(cli, "SELECT row_number, reason FROM rejects") == [(2, "missing_columns")]


@pytest.mark.parametrize("text", [
    'lead_id\tphone\tsize\n\n""\t""\t""\nB\t13800000002\t5in"\nC\t13800000003\t6in"\n',
    'lead_id\tphone\tcity\nL1\t13900000001\tA\n\t\t\nL3\t13900000003\tC\n\n'])
def test_a_tab_separated_row_of_empty_values_is_rejected_never_lost(cli, tmp_path, text):
    # a line of empty quotes or of tabs alone (the header's fields) beside an empty line:
    # matching lines to rows had dropped the first and numbered the rows after it wrong
    path = write(tmp_path / "x.tsv", text)
    assert cli("ingest", path).exit_code == 0
    first = "B" if "B" in text else "L1"
    assert db_rows(cli, "SELECT row_number, reason FROM rejects") == [
        (1 if first == "B" else 2, "no_identifier")]
    assert db_rows(cli, "SELECT lead_id, row_number FROM leads ORDER BY 1") == (
        [("B", 2), ("C", 3)] if first == "B" else [("L1", 1), ("L3", 3)])


@pytest.mark.parametrize("text, leads, rejects", [
    ("phone\n13812345671\n\n13812345673\n\n", [("13812345671", 1), ("13812345673", 2)], []),
    # `""` is a record (an empty value); a line of spaces is blank, as Spark skips it; a
    # rejected line and blank lines before the header keep the numbering
    ('\nphone\n13812345671\n\n13812345673,x\n""\n   \n13812345676\n\n',
     [("13812345671", 1), ("13812345676", 4)], [(2, "too_many_columns"), (3, "no_identifier")]),
    (" \t\n  \nphone\n13812345671\n \n13812345673\n",  # white space before the header
     [("13812345671", 1), ("13812345673", 2)], []),
    ('phone\n"1381\n\n2345671"\n\n13812345673\n',  # a blank line inside a quoted value
     [("1381\n\n2345671", 1), ("13812345673", 2)], []),
])
def test_blank_lines_of_a_one_column_file_use_no_record_number(cli, tmp_path, text, leads,
                                                               rejects):
    """DuckDB's reader gives a blank line of a one-column file as a row of one NULL: a
    purchased phone list's blank lines were rejected (`no_identifier`) and shifted the
    numbers of the rows after them."""
    result = cli("ingest", write(tmp_path / "list.csv", text), "--strict", "--json")
    assert result.exit_code == (1 if rejects else 0), result.stderr
    assert result.json()["totals"]["rows_read"] == len(leads) + len(rejects)
    assert db_rows(cli, "SELECT phone, row_number FROM leads ORDER BY 2") == leads
    assert db_rows(cli, "SELECT row_number, reason FROM rejects ORDER BY 1") == rejects


@pytest.mark.parametrize("text, leads", [
    ('phone\n"1381\n2345671"\n\n13812345673\n', [("1381\n2345671", 1), ("13812345673", 2)]),
    ('phone\n13812345671\n\n"1381\n2345672"\n  \n13812345673\n',
     [("13812345671", 1), ("1381\n2345672", 2), ("13812345673", 3)]),
    # DuckDB's sniffer named the column `column0` (an invalid file, no identifier column)
    ("\r\nphone\r\n13812345671\r\n", [("13812345671", 1)]),
])
def test_a_one_column_file_with_a_value_spanning_lines_loses_no_record(cli, tmp_path, text,
                                                                      leads):
    """The blank lines were told from the file's every line, not the lines the reader
    counts: the wrong row was dropped (13812345673 neither loaded nor rejected) and a
    blank line rejected as no_identifier."""
    result = cli("ingest", write(tmp_path / "list.csv", text), "--strict", "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json()["totals"]["rows_read"] == len(leads)
    assert db_rows(cli, "SELECT phone, row_number FROM leads ORDER BY 2") == leads
    assert db_rows(cli, "SELECT * FROM rejects") == []


_BLANK = st.sampled_from(["", " ", "  ", "\t", " \t "])
# one-column records: a value, a quoted value spanning lines (a blank line inside it or
# not), `""` (an empty value: a record, rejected), or a blank line (no record)
_PHONE_LIST_LINE = st.one_of(st.just(("value",)), st.tuples(st.just("spanning"), st.none()),
                             st.tuples(st.just("spanning"), _BLANK), st.just(("empty",)),
                             st.tuples(st.just("blank"), _BLANK))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["\n", "\r\n"]), st.lists(_BLANK, max_size=2),
       st.lists(_PHONE_LIST_LINE, max_size=10), st.booleans())
def test_every_record_of_a_one_column_file_is_loaded_or_rejected(newline, before, lines,
                                                                 last_newline):
    records, written = [], [*before, "phone"]
    for i, line in enumerate(lines):
        phone = f"138{i:08d}"
        if line[0] == "value":
            written.append(phone)
            records.append(phone)
        elif line[0] == "spanning":
            inside = [phone[:4]] + ([] if line[1] is None else [line[1]]) + [phone[4:]]
            written.append('"' + newline.join(inside) + '"')
            records.append(newline.join(inside))
        elif line[0] == "empty":
            written.append('""')
            records.append(None)
        else:
            written.append(line[1])
    text = newline.join(written) + (newline if last_newline else "")
    result, leads, rejected = _ingest(text.encode())
    file = result.json()["files"][0]
    assert result.exit_code == 0, result.stderr
    # every record stored or rejected, numbered as the records (blank lines use none)
    assert (file["rows_read"], file["loaded"], file["rejected"]) == (
        len(records), sum(r is not None for r in records), records.count(None))
    assert sorted((phone, n) for _, phone, n in leads) == sorted(
        (r, n) for n, r in enumerate(records, 1) if r is not None)
    assert sorted(rejected) == [n for n, r in enumerate(records, 1) if r is None]


def test_a_cr_in_a_quoted_value_with_blank_lines_and_a_ragged_row_loads(cli, tmp_path):
    # the look at the file's blank lines read the CR as a broken line: the whole file failed
    path = tmp_path / "x.csv"
    path.write_bytes(b'lead_id,phone,name\nL0,13800000000,Ann,EXTRA\n\nL6,13800000006,"a\rb"\n')
    assert cli("ingest", path).exit_code == 0
    assert db_rows(cli, "SELECT lead_id, row_number, name FROM leads") == [("L6", 2, "a\rb")]
    assert db_rows(cli, "SELECT row_number, reason FROM rejects") == [(1, "too_many_columns")]


def test_blank_lines_use_no_number_in_a_file_whose_quoted_values_span_lines(cli, tmp_path):
    # The rejected line's number counted the blank line (3) while good rows took the
    # numbers left: L3 was numbered 2, below the reject on the line before it.
    path = write(tmp_path / "x.csv", 'lead_id,phone,note\nL1,13900000001,"multi\nline"\n\n'
                 'L2,13900000002,x,extra\nL3,13900000003,"a\n\nb"\n\n\n'
                 'L5,13900000005,x,y\nL4,13900000004,z\n')
    assert cli("ingest", path).exit_code == 0
    assert db_rows(cli, "SELECT lead_id, row_number FROM leads ORDER BY 2") == [
        ("L1", 1), ("L3", 3), ("L4", 5)]
    assert db_rows(cli, "SELECT row_number, reason, raw LIKE 'L2,%' FROM rejects ORDER BY 1") == [
        (2, "too_many_columns", True), (4, "too_many_columns", False)]


@pytest.mark.parametrize("note", ['"multi\nline"', '"\nline"', '"multi\n"', '"\n"'])
def test_a_value_that_starts_or_ends_with_a_line_break_pairs_its_quotes(cli, tmp_path, note):
    # `…,"` ending a line and a line that is one `"` each hold one quote, not two
    path = write(tmp_path / "x.csv", f'lead_id,phone,note\nL1,13900000001,{note}\n\n'
                 'L2,13900000002,x,extra\nL3,13900000003,z\n')
    assert cli("ingest", path).exit_code == 0
    assert (db_rows(cli, "SELECT lead_id, row_number FROM leads ORDER BY 2"),
            db_rows(cli, "SELECT row_number FROM rejects")) == ([("L1", 1), ("L3", 3)], [(2,)])


@pytest.mark.parametrize("note, numbers", [
    # a quote inside an unquoted value is text: the lines still tell the records apart
    ('12"screen', ([("L1", 1), ("L3", 3), ("L4", 4)], [(2,)])),
    # one at a value's end looks like a closing quote: the quotes do not pair up, so the
    # rejected line keeps the reader's number (counting the blank line) and the good
    # rows take the numbers left, as the README says
    ('5in"', ([("L1", 1), ("L3", 2), ("L4", 4)], [(3,)]))])
def test_a_stray_quote_in_a_file_whose_values_span_lines(cli, tmp_path, note, numbers):
    path = write(tmp_path / "x.csv", 'lead_id,phone,note\nL1,13900000001,"multi\nline"\n\n'
                 f'L2,13900000002,x,extra\nL3,13900000003,{note}\nL4,13900000004,z\n')
    assert cli("ingest", path).exit_code == 0
    assert (db_rows(cli, "SELECT lead_id, row_number FROM leads ORDER BY 2"),
            db_rows(cli, "SELECT row_number FROM rejects")) == numbers


def test_forced_encoding_that_garbles_utf8_is_refused_without_force(cli, tmp_path):
    path = write(tmp_path / "zh.csv", UTF8_ZH)
    refused = cli("ingest", path, "--encoding", "gbk")
    assert (refused.exit_code, refused.stderr) == (2, (
        f"error: {path}: the file is valid UTF-8 and --encoding gbk would garble it ('线索' "
        "would read as '绾跨储'); drop --encoding, or add --force to read it as gbk anyway\n"))
    assert db_rows(cli, "SELECT count(*) FROM ingested_files") == [(0,)]
    forced = cli("ingest", path, "--encoding", "gbk", "--force", "--json")
    assert forced.json()["files"][0]["warning"] == (
        "the file is valid UTF-8 and --encoding gbk would garble it ('线索' would read as "
        "'绾跨储'); read as gbk (--force)")
    assert forced.stderr.startswith(f"warning: {path}: the file is valid UTF-8")


def test_forced_encoding_is_judged_where_the_text_leaves_ascii(cli, tmp_path):
    rows = "".join(f"A{i},13900{i:06d},x\n" for i in range(20000))  # 300 KB of ASCII first
    path = write(tmp_path / "late.csv", "lead_id,phone,name\n" + rows + "Z1,13700002222,张三\n")
    result = cli("ingest", path, "--encoding", "gbk")
    assert result.exit_code == 2 and result.stderr.endswith(
        "the file is valid UTF-8 and --encoding gbk would garble it ('张三' would read as "
        "'寮犱笁'); drop --encoding, or add --force to read it as gbk anyway\n")


def test_forced_encoding_that_contradicts_a_bom_is_refused(cli, tmp_path):
    path = write(tmp_path / "bom.csv", "lead_id,phone\n1,13900000001\n", bom=True)
    result = cli("ingest", path, "--encoding", "gb18030")
    assert (result.exit_code, result.stderr) == (2, (
        f"error: {path}: the file starts with a UTF-8 byte order mark but --encoding is "
        "gb18030; drop --encoding, or add --force to read it as gb18030 anyway\n"))


def test_forced_encoding_that_fits_is_quiet(cli, tmp_path):
    write(tmp_path / "gbk.csv", UTF8_ZH, encoding="gbk")
    write(tmp_path / "ascii.csv", "lead_id,phone\n2,13900000002\n")
    result = cli("ingest", tmp_path, "--encoding", "gbk")
    assert (result.exit_code, result.stderr) == (0, "")
    assert db_rows(cli, "SELECT phone FROM leads ORDER BY phone") == [
        ("13900000001",), ("13900000002",)]


def test_a_quote_after_spaces_opens_a_quoted_field(cli, tmp_path):
    path = write(tmp_path / "x.csv", 'lead_id,phone,city\nG0, "13900000000", "北京, 朝阳"\n')
    assert cli("ingest", path).exit_code == 0
    assert db_rows(cli, "SELECT lead_id, phone, city FROM leads") == [
        ("G0", "13900000000", "北京, 朝阳")]


# Generated junk: random bytes, control characters, random delimiters.
JUNK_TEXT = st.lists(st.sampled_from(list("ab1 ,;|\t\n\r\"'\x01\x02\x0b\x1f\x7f手机\ufffd")
                                     + ["lead_id", "phone", "13900000001"]),
                     max_size=200).map("".join)
JUNK = st.one_of(st.binary(max_size=600), JUNK_TEXT.map(lambda t: t.encode("utf-8")),
                 JUNK_TEXT.map(lambda t: t.encode("gb18030")))
# Lines that are junk to a 3-column comma file but never a good row's lead id (no 'G'),
# with quotes, carriage returns, NULs and non-ASCII text now and then. A quote never opens
# a field (at a line's start or after a comma or a CR, one space between or none: as in
# DuckDB's reader `a, "b, c"` is two fields): a quoted field may span lines.
JUNK_LINE = st.text(st.sampled_from([*"abc xyz019,;|\t" * 6, '"', "\r", "\x00", "手", "é", "🙂"]),
                    max_size=30).filter(lambda line: not re.search('(^|[,\r]) ?"', line))


def _ingest(data: bytes, *args: str):
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "x.csv").write_bytes(data)
        cli = Cli(Path(tmp) / "ws.duckdb")
        result = cli("ingest", Path(tmp) / "x.csv", "--json", *args)
        leads = db_rows(cli, "SELECT lead_id, phone, row_number FROM leads") \
            if cli.db.exists() else []
        rejected = db_rows(cli, "SELECT row_number FROM rejects") if cli.db.exists() else []
    return result, leads, [n for (n,) in rejected]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(JUNK)
def test_junk_files_never_crash(data):
    result, _, _ = _ingest(data)
    assert result.exit_code in (0, 2), result.stderr
    assert "Traceback" not in result.stderr
    assert result.json()["files"][0]["status"] in ("loaded", "rejected", "empty", "invalid",
                                                   "failed")


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(3, 12).flatmap(lambda n: st.tuples(
    st.just(n), st.lists(st.tuples(st.integers(0, n), JUNK_LINE), max_size=n - 1))))
def test_the_good_rows_of_a_mixed_file_are_kept(case):
    n, junk = case
    lines = [f"G{i},1390000{i:04d},北京" for i in range(n)]
    for position, line in sorted(junk, reverse=True):
        lines.insert(position, line)
    text = "lead_id,phone,city\n" + "\n".join(lines) + "\n"
    result, leads, rejected = _ingest(text.encode())
    file = result.json()["files"][0]
    if file["status"] == "failed":  # NULs or control characters over 1%: refused whole
        assert "\x00" in text and (result.exit_code, file["rows_read"], leads) == (2, 0, [])
        assert file["message"].startswith(("binary content (NUL bytes)", "not a text table ("))
        return
    assert result.exit_code == 0, result.stderr
    # Every line is a row, loaded or rejected; a CR ends a line (as in any text reader),
    # blank lines (also of spaces or tabs alone, as Spark skips them) are no rows.
    rows = [line for line in re.split("\r\n|\r|\n", text)[1:] if line.strip(" \t")]
    assert (file["loaded"] + file["rejected"], file["rows_read"]) == (len(rows), len(rows))
    assert {lead for lead in leads if lead[0].startswith("G")} == {
        (f"G{i}", f"1390000{i:04d}", rows.index(f"G{i},1390000{i:04d},北京") + 1)
        for i in range(n)}
    # Record numbers: each row its position among the rows, blank lines counting none.
    assert sorted([lead[2] for lead in leads] + rejected) == list(range(1, len(rows) + 1))


def test_a_failed_ingest_is_logged_failed_or_partial_with_why(cli, tmp_path):
    junk, good = tmp_path / "junk.csv", tmp_path / "good.csv"
    junk.write_bytes(bytes(range(256)) * 40)
    write(good, "lead_id,phone\nL1,13800000001\n")
    assert cli("ingest", junk).exit_code == 2
    assert cli("ingest", junk, good).exit_code == 2  # good.csv is loaded and published
    runs = cli("runs", "--json").json()
    why = "1 file(s) not loaded: junk.csv: not a text table"
    assert [(r["outcome"], r["error"][:len(why)]) for r in runs] == [
        ("partial", why), ("failed", why)]


def test_an_unknown_encoding_is_refused_before_anything_is_read(cli, tmp_path):
    write(tmp_path / "good.csv", "lead_id,phone\nL1,13800000001\n")
    result = cli("ingest", tmp_path / "good.csv", "--encoding", "bogus-enc")
    assert (result.exit_code, result.stderr) == (
        2, "error: --encoding: unknown encoding 'bogus-enc'\n")
    assert not cli.db.exists()


@pytest.mark.parametrize("encoding", ["rot13", "base64", "hex", "zlib", "undefined", "idna",
                                      "punycode"])
def test_a_codec_that_reads_no_text_is_an_unknown_encoding(cli, tmp_path, encoding):
    # they ended in an internal error (exit 3): LookupError 'rot-13' is not a text
    # encoding, UnicodeError unsupported error handling
    write(tmp_path / "good.csv", "lead_id,phone\nL1,13800000001\n")
    result = cli("ingest", tmp_path / "good.csv", "--encoding", encoding)
    assert (result.exit_code, result.stderr) == (
        2, f"error: --encoding: unknown encoding '{encoding}'\n")


def test_a_forced_utf16_without_a_byte_order_mark_fails_its_file_only(cli, tmp_path):
    # UnicodeError: UTF-16 stream does not start with BOM, exit 3, nothing loaded
    bare = tmp_path / "a_bare.csv"
    bare.write_bytes("lead_id,phone\nW1,13800000009\n".encode("utf-16-le"))
    ascii_ = write(tmp_path / "b_ascii.csv", "lead_id,phone\nK1,13800000001\n")
    marked = write(tmp_path / "c_bom.csv", "lead_id,phone\nB1,13800000008\n", "utf-16")
    result = cli("ingest", bare, ascii_, marked, "--encoding", "utf16", "--json")
    assert result.exit_code == 2
    need = ("--encoding utf16 needs a byte order mark, and the file starts without one: "
            "name its byte order, --encoding utf-16le or utf-16be")
    assert [(f["status"], f["loaded"], f["message"]) for f in result.json()["files"]] == [
        ("failed", 0, need + " (it looks like utf-16le)"), ("failed", 0, need),
        ("loaded", 1, "")]
    utf32 = cli("ingest", ascii_, "--encoding", "utf-32")
    assert (utf32.exit_code, utf32.stderr) == (2, (
        f"error: {ascii_}: --encoding utf-32 needs a byte order mark, and the file starts "
        "without one: name its byte order, --encoding utf-32le or utf-32be\n"))


def test_a_codec_giving_up_while_transcoding_is_an_input_error(tmp_path):
    from leadctl.errors import InputError
    from leadctl.ingest.sniff import transcode_to_utf8
    from leadctl.workspace import TEMP_COPY_PREFIX
    bare = tmp_path / "bare.csv"
    bare.write_bytes("lead_id,phone\nW1,13800000009\n".encode("utf-16-le"))
    before = set(Path(tempfile.gettempdir()).glob(f"{TEMP_COPY_PREFIX}*"))
    with pytest.raises(InputError, match="^cannot be read as utf-16: UTF-16 stream does not "
                                         "start with BOM$"):
        transcode_to_utf8(bare, "utf-16")
    assert set(Path(tempfile.gettempdir()).glob(f"{TEMP_COPY_PREFIX}*")) <= before


def test_a_file_misread_by_a_forced_encoding_is_read_again_when_sent_again(cli, tmp_path):
    leads = write(tmp_path / "web.csv", "name,phone\n张三,13900000001\n李四,13900000002\n")
    events = write(tmp_path / "ev.csv",
                   "phone,event_type,ts,category\n13900000001,order_paid,2026-10-01 10:00,家居\n")
    for path in (leads, events):
        assert cli("ingest", path, "--encoding", "gbk", "--force").exit_code == 0
    assert cli("run", "--as-of", "2026-10-02").exit_code == 0
    skipped = cli("ingest", leads, "--json").json()["files"][0]
    assert skipped["status"] == "skipped_duplicate"
    assert re.fullmatch(rf"same content as {re.escape(str(leads))}, ingested [0-9: -]+ \(read "
                        r"as gbk: --encoding utf-8 reads it again as utf-8\)",
                        skipped["message"])
    again = cli("ingest", leads, events, "--encoding", "utf-8", "--json")
    assert [(f["status"], f["encoding"], f["superseded"], f["message"])
            for f in again.json()["files"]] == [
        ("loaded", "utf-8", 2, "read again as utf-8: replaces what file(s) 1 loaded"),
        ("loaded", "utf-8", 1, "read again as utf-8: replaces what file(s) 2 loaded")]
    assert db_rows(cli, "SELECT file_id, kind, row_number, reason, detail FROM rejects "
                      "ORDER BY ALL") == [
        (1, "leads", 1, "superseded", "read again as utf-8 by file 3"),
        (1, "leads", 2, "superseded", "read again as utf-8 by file 3"),
        (2, "events", 1, "superseded", "read again as utf-8 by file 4")]
    assert cli("run", "--as-of", "2026-10-02").exit_code == 0
    assert db_rows(cli, "SELECT p.name, f.first_order_category FROM persons p "
                      "JOIN person_features f USING (person_id) ORDER BY p.phone") == [
        ("张三", "家居"), ("李四", None)]
    for forced in ((), ("--encoding", "utf8")):
        assert cli("ingest", leads, *forced, "--json").json()["files"][0]["status"] == (
            "skipped_duplicate")
    misread = cli("ingest", leads, "--encoding", "gbk", "--force", "--json").json()["files"][0]
    assert (misread["status"], misread["superseded"]) == ("loaded", 2)


def test_a_misread_file_sent_again_to_take_a_correction_back_leaves_no_garbled_lead(
        cli, tmp_path):
    # Read again without --encoding because a later file replaced one of its leads, the
    # file's GBK read leaves whole: its garbled 王五 (a lead id hashed from garbled text)
    # stayed beside the right one.
    web = write(tmp_path / "web.csv", "lead_id,name,phone\nL1,张三,13900000001\n"
                                      ",王五,13900000003\n")
    fix = write(tmp_path / "fix.csv", "lead_id,name,phone\nL1,张三丰,13900000001\n")
    assert cli("ingest", web, "--encoding", "gbk", "--force").exit_code == 0
    assert cli("ingest", fix, "--source", "web").exit_code == 0
    again = cli("ingest", web, "--json").json()["files"][0]
    assert (again["status"], again["superseded"], again["message"]) == (
        "loaded", 2, "read again as utf-8: replaces what file(s) 1 loaded")
    assert db_rows(cli, "SELECT lead_key, file_id, name FROM leads ORDER BY 1") == [
        (1, 3, "张三"), (4, 3, "王五")]
    assert db_rows(cli, "SELECT file_id, row_number, detail FROM rejects ORDER BY ALL") == [
        (1, 1, "replaced by file 2"), (1, 2, "read again as utf-8 by file 3"),
        (2, 1, "replaced by file 3")]


def test_a_misread_file_with_no_row_left_says_it_replaced_none(cli, tmp_path):
    """Read again when later files have replaced all its rows, a misread file said it
    `replaces what file(s) 1 loaded` though nothing of file 1 was left to replace."""
    web = write(tmp_path / "web.csv", "lead_id,name,phone\nL1,张三,13900000001\n")
    fix = write(tmp_path / "fix.csv", "lead_id,name,phone\nL1,张三丰,13900000001\n")
    assert cli("ingest", web, "--encoding", "gbk", "--force").exit_code == 0
    assert cli("ingest", fix, "--source", "web").exit_code == 0
    again = cli("ingest", web, "--json").json()["files"][0]
    assert (again["status"], again["superseded"], again["message"]) == (
        "loaded", 1, "read again as utf-8: file(s) 1 had no row stored any more (replaced "
        "by later files): none replaced")
    assert db_rows(cli, "SELECT file_id, row_number, detail FROM rejects ORDER BY ALL") == [
        (1, 1, "replaced by file 2"), (2, 1, "replaced by file 3")]


def test_an_ingest_that_raised_is_logged_failed_with_what_it_was_given(cli, tmp_path):
    # it left no row at all; then a row without its inputs
    missing = tmp_path / "nowhere.csv"
    assert cli("init").exit_code == 0
    assert cli("ingest", missing).exit_code == 2
    run = cli("runs", "--json").json()[0]
    assert (run["command"], run["outcome"], run["inputs"], run["error"]) == (
        "ingest", "failed", [str(missing)], f"no such file or folder: {missing}")


def test_files_in_hidden_folders_are_left_out(cli, tmp_path):
    inbox = tmp_path / "inbox"
    (inbox / ".stversions").mkdir(parents=True)
    write(inbox / "a.csv", "lead_id,phone\nA1,13900000001\n")
    write(inbox / ".stversions" / "a~20261101.csv", "lead_id,phone\nOLD1,13900000002\n")
    result = cli("ingest", inbox, "--json")
    assert [f["source"] for f in result.json()["files"]] == ["a"]


def _reading_changes(monkeypatch, change):
    """`change(path)` runs on each file as the reader stages it (after it was hashed)."""
    from leadctl.ingest.load import DuckDBReader

    stage = DuckDBReader.stage

    def staged(self, ws, path, fmt, file_id):
        change(path)
        return stage(self, ws, path, fmt, file_id)

    monkeypatch.setattr(DuckDBReader, "stage", staged)


def test_a_file_that_vanishes_while_read_fails_alone(cli, tmp_path, monkeypatch):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    write(inbox / "a.csv", "lead_id,phone\nA1,13900000001\n")
    write(inbox / "z.csv", "lead_id,phone\nZ1,13900000009\n")
    _reading_changes(monkeypatch, lambda p: p.unlink() if p.name == "z.csv" else None)
    result = cli("ingest", inbox, "--json")
    assert result.exit_code == 2
    assert [(f["source"], f["status"], f["loaded"], f["message"])
            for f in result.json()["files"]] == [
        ("a", "loaded", 1, ""), ("z", "failed", 0, "cannot read: No such file or directory")]


def test_a_file_that_grows_while_read_loads_nothing_until_read_whole(cli, tmp_path,
                                                                     monkeypatch):
    """Its digest was of fewer rows than it loaded: the next night loaded it again."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    events = write(inbox / "ev.csv", "phone,event_type,ts\n13900000001,visit,2026-10-30 09:00\n")

    def grow(path):
        with path.open("a") as f:
            f.write("13900000001,visit,2026-10-30 10:00\n")

    with monkeypatch.context() as m:
        _reading_changes(m, grow)
        first = cli("ingest", inbox, "--json")
    assert first.exit_code == 2
    assert [(f["status"], f["loaded"]) for f in first.json()["files"]] == [("failed", 0)]
    assert first.json()["files"][0]["message"].startswith("changed while it was read")
    assert [(f["status"], f["loaded"]) for f in cli("ingest", inbox, "--json").json()[
        "files"]] == [("loaded", 2)]
    assert [f["status"] for f in cli("ingest", inbox, "--json").json()["files"]] == [
        "skipped_duplicate"]
    assert events.read_text().count("visit") == 2


def test_an_unnamed_column_with_no_value_is_no_attribute(cli, tmp_path):
    """A header's trailing delimiters (a spreadsheet's export) named columns the reader
    calls column3, column4: every lead had `{"column3": null}` among its attributes. An
    unnamed column that holds a value somewhere stays, under the reader's name."""
    path = write(tmp_path / "ends.csv", "lead_id,name,phone,,\nT1,Li,13922220041,,\n"
                                        "T2,Wang,13922220042,,x\n")
    assert cli("ingest", path).exit_code == 0
    assert db_rows(cli, "SELECT lead_id, CAST(attributes AS VARCHAR) FROM leads "
                        "ORDER BY lead_id") == [("T1", '{"column4":null}'),
                                                ("T2", '{"column4":"x"}')]
