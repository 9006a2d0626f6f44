"""Ingest: files whose encoding, line ends or damaged bytes misled the reading."""

from __future__ import annotations

import duckdb
import pytest

from tests.conftest import Cli, db_rows


def ingest(cli: Cli, path, *args: str) -> dict:
    result = cli("ingest", path, "--json", *args)
    return {"exit_code": result.exit_code, **result.json()["files"][0]}


@pytest.mark.parametrize("data, leads, rejects", [
    # a file of more columns: the line of damaged bytes was left out of the lines read
    # (they no longer accounted for the records) and the reader's numbers, which count
    # the blank line, stood: G4 was 2 and G3 3
    (b"lead_id,name,phone\nG1,Ann,13800000101\n\nG3,B\xffb,13800000103\n"
     b"G4,Cy,13800000104\nG5,Dee,13800000105\n",
     [("G1", 1), ("G4", 3), ("G5", 4)], [(2, "invalid_encoding")]),
    # a phone list: its blank lines were rejected as no_identifier with numbers of their own
    (b"phone\n13812345671\n\n1381\xff345673\n\n13812345675\n",
     [("13812345671", 1), ("13812345675", 3)], [(2, "invalid_encoding")]),
])
def test_a_line_of_damaged_bytes_after_a_blank_line_keeps_the_record_numbers(
        cli, tmp_path, data, leads, rejects):
    path = tmp_path / "c3.csv"
    path.write_bytes(data)
    assert ingest(cli, path)["exit_code"] == 0
    key = "lead_id" if data.startswith(b"lead_id") else "phone"
    assert db_rows(cli, f"SELECT {key}, row_number FROM leads ORDER BY row_number") == leads
    assert db_rows(cli, "SELECT row_number, reason FROM rejects ORDER BY 1") == rejects


@pytest.mark.parametrize("data, value", [
    (b'lead_id,name,phone\rA1,"x\ry",13800000061\rA2,"Bob,13800000062\r'
     b"A3,Cy,13800000063\r", "x\ry"),
    (b'lead_id,name,phone\nA1,"multi\r\nline",13800000061\nA2,"Bob,13800000062\n'
     b"A3,Cy,13800000063\n", "multi\r\nline"),
])
def test_a_cr_inside_a_quoted_value_beside_a_quote_left_open_rejects_that_line_only(
        cli, tmp_path, data, value):
    """The copy with LF line ends keeps the CR inside the quoted value; DuckDB's sniffer
    gave up on it and the whole file failed (`Error when sniffing file
    "/tmp/leadctl-….csv"`, a temporary file's name). Read with RFC 4180 quoting instead,
    as the same file without the CR is: the open quote's line is rejected."""
    path = tmp_path / "crq.csv"
    path.write_bytes(data)
    file = ingest(cli, path)
    assert (file["exit_code"], file["status"], file["loaded"], file["rejected"],
            file["message"]) == (0, "loaded", 1, 1, "")
    assert db_rows(cli, "SELECT lead_id, name, phone, row_number FROM leads") == [
        ("A1", value, "13800000061", 1)]
    assert db_rows(cli, "SELECT row_number, reason, detail FROM rejects") == [
        (2, "unquoted_value", "Value with unterminated quote found.")]


def test_a_reader_error_names_the_file_not_its_temporary_copy(cli, tmp_path, monkeypatch):
    from leadctl.ingest import load

    def failing(ws, path, *args, **kwargs):
        raise duckdb.InvalidInputException(f'Error when sniffing file "{path}".\nmore')

    monkeypatch.setattr(load, "_stage_csv", failing)
    path = tmp_path / "mixed.csv"
    path.write_bytes(b"lead_id,phone\r\nA1,13800000061\nA2,13800000062\n")
    file = ingest(cli, path)
    assert (file["exit_code"], file["status"], file["message"]) == (
        2, "failed", f'Error when sniffing file "{path}".')


LATIN1_DETAIL = ("bytes that are not utf-8 (the file was read as utf-8); they look like "
                 "latin-1: --encoding latin-1 reads them")
LATIN1_MESSAGE = ("its bytes that are not utf-8 look like latin-1: --encoding latin-1 reads "
                  "them (their rows are rejected, invalid_encoding)")


def test_a_latin1_file_is_read_as_utf8_its_accented_rows_rejected_never_gb18030(cli,
                                                                                tmp_path):
    """Its only non-ASCII bytes Latin-1 letters, no UTF-8 beside them: GB18030 decoded
    them with no failure and the file loaded as `Ram髇`, `Mu駉z Pe馻`, exit 0, no reject."""
    ramon = tmp_path / "ramon.csv"
    ramon.write_bytes(b"lead_id,name,phone\nL1,Ana,13800000021\nL2,Ram\xf3n,13800000022\n"
                      b"L3,Luis,13800000023\n")
    spanish = tmp_path / "spanish.csv"
    spanish.write_bytes("lead_id,name,phone\nS1,Muñoz Peña,13800000031\n"
                        "S2,Ramón Ibáñez,13800000032\nS3,Begoña Núñez,13800000033\n"
                        "S4,Luis,13800000034\n".encode("latin-1"))
    result = cli("ingest", ramon, spanish, "--json")
    assert result.exit_code == 0, result.stderr
    assert [(f["encoding"], f["status"], f["loaded"], f["rejected"], f["message"])
            for f in result.json()["files"]] == [
        ("utf-8", "loaded", 2, 1, LATIN1_MESSAGE), ("utf-8", "loaded", 1, 3, LATIN1_MESSAGE)]
    assert db_rows(cli, "SELECT lead_id, name, row_number FROM leads ORDER BY lead_key") == [
        ("L1", "Ana", 1), ("L3", "Luis", 3), ("S4", "Luis", 4)]
    assert db_rows(cli, "SELECT source, row_number, reason, detail FROM rejects "
                      "ORDER BY file_id, row_number") == [
        ("ramon", 2, "invalid_encoding", LATIN1_DETAIL),
        *[("spanish", n, "invalid_encoding", LATIN1_DETAIL) for n in (1, 2, 3)]]
    # as the hint says
    named = ingest(Cli(tmp_path / "named.duckdb"), spanish, "--encoding", "latin-1")
    assert (named["encoding"], named["loaded"], named["rejected"]) == ("latin-1", 4, 0)


def test_a_gbk_file_stays_gbk_and_its_damaged_row_names_gb18030(cli, tmp_path):
    """A rare hanzi between ASCII letters (`Ram髇`) among Chinese names is no Latin-1;
    a damaged row's detail named utf-8 (the transcoded copy's), not what was read."""
    path = tmp_path / "agent.csv"
    path.write_bytes(("lead_id|name|phone\n" + "".join(
        f"G{i}|{name}|1370000000{i}\n" for i, name in enumerate(
            ("张三", "李四", "王五", "Ram髇", "赵六"))) + "G5|").encode("gbk")
        + b"\xc0\xff|13700000005\n")
    file = ingest(cli, path)
    assert (file["exit_code"], file["encoding"], file["loaded"], file["rejected"]) == (
        0, "gb18030", 5, 1)
    assert db_rows(cli, "SELECT name FROM leads ORDER BY lead_key") == [
        ("张三",), ("李四",), ("王五",), ("Ram髇",), ("赵六",)]
    assert db_rows(cli, "SELECT row_number, reason, detail FROM rejects") == [
        (6, "invalid_encoding", "bytes that are not gb18030 (the file was read as gb18030)")]
