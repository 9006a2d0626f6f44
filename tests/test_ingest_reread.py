"""A file misread by a forced encoding and sent again with the right one: after the re-read
and a `run`, the workspace equals one built from scratch from the right reads alone.

Ignored, as they legitimately differ: the file ids of leads, events and rejects (the
re-read is a later file), run ids and log times (scores, tags, assignments: the misread
workspace ran before), lead keys (never reused: a lead whose id the new read carries
keeps the misread's key, the others get new ones; lead-keyed tables are compared by the
lead's source and lead id instead), the misread's own rows in rejects ('superseded', the
record of what was retracted), the logs of the misread's run (identity_history,
tag_history, runs, ingested_files, meta's file pointers) and the routing log's entries
but each current person's last."""

from __future__ import annotations

import duckdb

from tests.conftest import Cli, write

# Read as GBK, the UTF-8 bytes of 李四's row and of 服装 do not decode (those rows are
# rejected); the others load garbled: 王五 and 赵六 with a lead id hashed from garbled text,
# 赵六 known by a garbled wechat id; 刘一 joins 张三 by phone.
LEADS = ("lead_id,name,phone,wechat,city,渠道\n"
         "L1,张三,13900000001,,北京,抖音\n"
         "L2,李四,13900000002,,上海,微信\n"
         ",王五,13900000003,,广州,抖音\n"
         ",赵六,,wx陈七,深圳,抖音\n"
         ",刘一,13900000001,,北京,线下\n")
EVENTS = ("phone,event_type,ts,category,amount\n"
          "13900000001,order_paid,2026-10-01 10:00,家居,100\n"
          "13900000003,order_paid,2026-10-01 11:00,服装,50\n"
          "13900000002,form_submit,2026-10-01 12:00,,\n")
AS_OF = "2026-10-02"
LEAD = "(SELECT source || ':' || lead_id FROM leads l WHERE l.lead_key = t.lead_key) AS lead"
COMPARED = {
    "leads": "SELECT * EXCLUDE (lead_key, file_id) FROM leads ORDER BY ALL",
    "events": "SELECT * EXCLUDE (file_id) FROM events ORDER BY ALL",
    "rejects": "SELECT * EXCLUDE (file_id, rejected_at) FROM rejects "
               "WHERE reason <> 'superseded' ORDER BY ALL",
    **{table: f"SELECT {LEAD}, * EXCLUDE (lead_key) FROM {table} t ORDER BY ALL"
       for table in ("person_leads", "lead_identifiers", "lead_identifier_values",
                     "lead_identifier_cells")},
    **{table: f"SELECT * FROM {table} ORDER BY ALL" for table in (
        "persons", "person_aliases", "blocked_identifiers", "subject_persons",
        "event_subjects", "subject_keys", "person_features", "tag_event_state",
        "score_breakdown", "ownership", "lead_intent")},
    "tags": "SELECT * EXCLUDE (run_id) FROM tags ORDER BY ALL",
    "scores": "SELECT * EXCLUDE (run_id) FROM scores ORDER BY ALL",
    # the log of routing, as each person's last entry: the misread's persons were routed
    # and then removed ('person_removed'), which a fresh workspace never logged
    "assignments": "SELECT * EXCLUDE (logged_at, run_id) FROM assignments WHERE person_id "
                   "IN (SELECT person_id FROM persons) "
                   "QUALIFY run_id = max(run_id) OVER (PARTITION BY person_id) ORDER BY ALL",
}


def _tables(cli: Cli) -> dict[str, list]:
    with duckdb.connect(str(cli.db), read_only=True) as con:
        return {name: con.execute(sql).fetchall() for name, sql in COMPARED.items()}


def test_a_reread_then_run_equals_a_workspace_of_the_right_reads_alone(tmp_path):
    files = [write(tmp_path / "web.csv", LEADS), write(tmp_path / "ev.csv", EVENTS)]
    misread, fresh = Cli(tmp_path / "misread.duckdb"), Cli(tmp_path / "fresh.duckdb")
    for path in files:
        assert misread("ingest", path, "--encoding", "gbk", "--force").exit_code == 0
    assert misread("run", "--as-of", AS_OF).exit_code == 0
    garbled = _tables(misread)
    again = misread("ingest", *files, "--encoding", "utf-8", "--json").json()["files"]
    assert [(f["status"], f["loaded"], f["superseded"]) for f in again] == [
        ("loaded", 5, 4), ("loaded", 3, 2)]
    assert misread("run", "--as-of", AS_OF).exit_code == 0
    assert fresh("ingest", *files).exit_code == 0
    assert fresh("run", "--as-of", AS_OF).exit_code == 0
    expected = _tables(fresh)
    assert garbled["persons"] != expected["persons"]  # the misread mattered
    assert _tables(misread) == expected
    with duckdb.connect(str(misread.db), read_only=True) as con:
        assert con.execute("SELECT lead_id, lead_key FROM leads WHERE lead_id LIKE 'L%' "
                           "ORDER BY 1").fetchall() == [("L1", 1), ("L2", 7)]


def test_a_misread_sent_again_to_take_a_correction_back_equals_the_right_reads(tmp_path):
    # Read again without --encoding (a later file replaced one of its leads): its GBK read
    # leaves too, as in a workspace that read it right each time.
    web = write(tmp_path / "web.csv", LEADS)
    fix = write(tmp_path / "fix.csv", "lead_id,name,phone\nL1,张三丰,13900000001\n")
    misread, fresh = Cli(tmp_path / "misread.duckdb"), Cli(tmp_path / "fresh.duckdb")
    for cli, forced in ((misread, ("--encoding", "gbk", "--force")), (fresh, ())):
        for args in ((web, *forced), (fix, "--source", "web"), (web,)):
            assert cli("ingest", *args).exit_code == 0
            assert cli("run", "--as-of", AS_OF).exit_code == 0
    assert _tables(misread) == _tables(fresh)
