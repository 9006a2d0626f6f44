"""Ingest: files whose encoding, line ends or damaged bytes misled the reading."""

from __future__ import annotations

import duckdb
import pytest

from tests.conftest import Cli


def table(cli: Cli, sql: str) -> list[tuple]:
    con = duckdb.connect(str(cli.db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


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
    assert table(cli, f"SELECT {key}, row_number FROM leads ORDER BY row_number") == leads
    assert table(cli, "SELECT row_number, reason FROM rejects ORDER BY 1") == rejects
