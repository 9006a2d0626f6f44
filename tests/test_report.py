"""`leadctl report channels` on a crafted data set whose numbers are worked out by hand."""

from __future__ import annotations

import duckdb
import pytest
from conftest import Cli
from test_find import big_score_workspace

from leadctl.cli.report import _pct, grade_headers
from leadctl.schema import all_ddl
from leadctl.views.report import (
    channel_report_sql,
    grade_columns,
    is_sales_pool_name,
    report_columns,
)
from leadctl.workspace import open_writer

# Persons: P1 came through sem, feed and agent (cross-channel); P2, P3 only sem; P4 only
# feed; P5 only agent (two leads). L4 is not resolved to a person.
DATA_SQL = """
INSERT INTO leads (lead_key, source, lead_id, created_at, utm_source, channel) VALUES
 (1, 'sem', 'L1', '2026-10-01 09:00', 'baidu', 'SEM'),
 (2, 'sem', 'L2', '2026-10-02 09:00', 'baidu', 'SEM'),
 (3, 'sem', 'L3', '2026-10-03 09:00', NULL, 'SEM'),
 (4, 'sem', 'L4', '2026-10-04 09:00', '', 'SEM'),
 (5, 'feed', 'F1', '2026-10-05 09:00', 'douyin', 'feed'),
 (6, 'feed', 'F2', '2026-10-06 09:00', 'douyin', 'feed'),
 (7, 'agent', 'A1', '2026-09-01 09:00', NULL, NULL),
 (8, 'agent', 'A2', '2026-09-15 09:00', NULL, NULL),
 (9, 'agent', 'A3', '2026-10-10 09:00', 'baidu', NULL);
INSERT INTO person_leads VALUES (1, 'P1'), (2, 'P2'), (3, 'P3'), (5, 'P1'), (6, 'P4'),
                                (7, 'P1'), (8, 'P5'), (9, 'P5');
INSERT INTO persons (person_id) VALUES ('P1'), ('P2'), ('P3'), ('P4'), ('P5');
INSERT INTO scores VALUES ('P1', 90, 'A', '2026-11-01', 1), ('P2', 60, 'B', '2026-11-01', 1),
 ('P3', 10, 'D', '2026-11-01', 1), ('P4', 40, 'C', '2026-11-01', 1),
 ('P5', 80, 'A', '2026-11-01', 1);
INSERT INTO ownership (person_id, pool, owner, locked_until) VALUES
 ('P1', 'sales_sh', 'rep_li', '2027-01-01'), ('P2', 'nurture', NULL, NULL),
 ('P3', 'public', NULL, NULL), ('P4', 'sales_bj', 'rep_wu', NULL),
 ('P5', 'dormant', NULL, NULL);
INSERT INTO sales VALUES ('2026-10-20', 1, 'P4', 'rep_wu', 999, NULL);
INSERT INTO rejects (source, kind, reason, rejected_at) VALUES
 ('sem', 'leads', 'no_contact', '2026-10-02 00:00'),
 ('sem', 'leads', 'superseded', '2026-10-03 00:00'),  -- a corrected re-delivery's old row
 ('agent', 'leads', 'no_contact', '2026-09-20 00:00'),
 ('agent', 'leads', 'no_contact', '2026-10-03 00:00'),
 ('purchased', 'leads', 'bad_phone', '2026-09-30 00:00'),
 ('purchased', 'leads', 'bad_phone', '2026-09-30 00:00'),
 ('purchased', 'leads', 'bad_phone', '2026-09-30 00:00'),
 ('app', 'events', 'no_subject', '2026-10-05 00:00');
"""
COLUMNS = ("channel", "leads", "persons", "dup_rate", "rejects", "reject_rate", "grade_a",
           "grade_b", "grade_c", "grade_d", "avg_score", "sales_share", "sold")


@pytest.fixture
def rcli(tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()  # no routing.yaml: sales pools by name
    cli = Cli(tmp_path / "ws.duckdb", rules)
    with open_writer(cli.db, create=True) as ws:
        ws.execute(DATA_SQL)
    return cli


def table(data: dict) -> list[tuple]:
    return [tuple(row[c] for c in COLUMNS) for row in data["channels"] + [data["total"]]]


def report(cli, *args) -> dict:
    result = cli("report", "channels", "--json", *args)
    assert result.exit_code == 0, result.stderr
    return result.json()


def test_by_source(rcli):
    data = report(rcli)
    assert (data["by"], data["since"], data["sales_pools"]) == ("source", None, None)
    assert table(data) == [
        # channel, leads, persons, dup, rejects, reject rate, A, B, C, D, avg, sales, sold
        ("sem", 4, 3, 0.25, 1, 0.2, 1, 1, 0, 1, 53.33, 0.3333, 1),
        ("agent", 3, 2, 0.3333, 2, 0.4, 2, 0, 0, 0, 85.0, 0.5, 1),
        ("feed", 2, 2, 0.5, 0, 0.0, 1, 0, 1, 0, 65.0, 1.0, 2),
        ("purchased", 0, 0, None, 3, 1.0, 0, 0, 0, 0, None, None, 0),
        ("(total)", 9, 5, 0.3333, 6, 0.4, 2, 1, 1, 1, 56.0, 0.4, 2),
    ]


def test_since_filters_leads_and_rejects(rcli):
    data = report(rcli, "--since", "2026-10-01")
    # A1/A2 and three rejects are older; L1 stays a duplicate (P1's older agent lead).
    assert table(data) == [
        ("sem", 4, 3, 0.25, 1, 0.2, 1, 1, 0, 1, 53.33, 0.3333, 1),
        ("feed", 2, 2, 0.5, 0, 0.0, 1, 0, 1, 0, 65.0, 1.0, 2),
        ("agent", 1, 1, 0.0, 1, 0.5, 1, 0, 0, 0, 80.0, 0.0, 0),
        ("(total)", 7, 5, 0.2857, 2, 0.2222, 2, 1, 1, 1, 56.0, 0.4, 2),
    ]


def test_by_utm_source_has_no_reject_numbers(rcli):
    data = report(rcli, "--by", "utm_source")
    assert table(data) == [
        ("(none)", 4, 3, 0.5, None, None, 2, 0, 0, 1, 60.0, 0.3333, 1),
        ("baidu", 3, 3, 0.6667, None, None, 2, 1, 0, 0, 76.67, 0.3333, 1),
        ("douyin", 2, 2, 0.5, None, None, 1, 0, 1, 0, 65.0, 1.0, 2),
        ("(total)", 9, 5, 0.5556, None, None, 2, 1, 1, 1, 56.0, 0.4, 2),
    ]


def test_sales_pools_come_from_routing_yaml(rcli):
    (rcli.rules / "routing.yaml").write_text(
        "pools:\n"
        "  - {name: sales_sh, team: east, allocation: claim}\n"
        "  - {name: sales_bj, team: nurture, allocation: claim}\n"
        "  - {name: public_sea, allocation: claim}\n"
        "routes:\n"
        "  - {name: everyone, pool: sales_sh}\n", encoding="utf-8")
    data = report(rcli)
    assert data["sales_pools"] == ["sales_sh"]
    assert [(r["channel"], r["sales_share"]) for r in data["channels"]] == [
        ("sem", 0.3333), ("agent", 0.5), ("feed", 0.5), ("purchased", None)]
    assert data["total"]["sales_share"] == 0.2


def test_an_invalid_routing_yaml_refuses_the_report(rcli):
    # the report reads its sales pools there: invalid, it refuses as a broken costs.yaml
    # does, at the problem's place (it had fallen back to pool names without a word)
    (rcli.rules / "routing.yaml").write_text(
        "pools:\n  - {name: sales_sh, allocation: lottery}\n"
        "routes:\n  - {name: everyone, pool: sales_sh}\n", encoding="utf-8")
    result = rcli("report", "channels")
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", (
        f"error: {rcli.rules / 'routing.yaml'}:2:34: pool 'sales_sh': allocation must be one "
        "of round_robin, weighted, least_loaded, claim, not 'lottery'\n"))


def test_rich_table_and_csv(rcli, tmp_path):
    result = rcli("report", "channels", "--as-of", "2026-11-01")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].rstrip() == "channels by source, as of 2026-11-01"
    assert any(line.split("│")[1].strip() == "(total)" for line in lines if "│" in line)
    assert "53.33" in result.stdout and "33.3%" in result.stdout
    out = tmp_path / "channels.csv"
    result = rcli("report", "channels", "--by", "channel", "-o", str(out))
    assert result.exit_code == 0, result.stderr
    # The channel-value columns (issue 16) follow the original ones.
    assert out.read_text().splitlines() == [
        ",".join(COLUMNS) + ",new_persons,dup_other_source,dup_same_source,dup_from,"
        "new_to_sales,new_sold,new_sold_amount,sold_amount,cost,costed_leads,cost_per_lead,"
        "cost_per_new",
        "SEM,4,3,0.25,,,1,1,0,1,53.33,0.3333,1" + ',2,1,0,"{""agent"":1}",0,0,0.0,0.0,,,,',
        "(none),3,2,0.3333,,,2,0,0,0,85.0,0.5,1" + ",2,0,1,{},1,1,0.0,0.0,,,,",
        "feed,2,2,0.5,,,1,0,1,0,65.0,1.0,2" + ',1,1,0,"{""agent"":1}",1,1,999.0,999.0,,,,',
        "(total),9,5,0.3333,,,2,1,1,1,56.0,0.4,2" + ',5,2,1,"{""agent"":2}",2,2,999.0,999.0,,,,']
    parquet = tmp_path / "channels.parquet"
    result = rcli("report", "channels", "--since", "2026-10-01", "-o", str(parquet), "--json")
    assert result.json()["rows"] == 4
    rows = duckdb.connect().execute(f"SELECT channel, leads, rejects FROM '{parquet}'").fetchall()
    assert rows == [
        ("sem", 4, 1), ("feed", 2, 0), ("agent", 1, 1), ("(total)", 7, 2)]


def test_bad_options_exit_2(rcli):
    result = rcli("report", "channels", "--by", "city")
    assert (result.exit_code, result.stderr) == (
        2, "error: cannot report by 'city': choose one of source, utm_source, utm_medium, "
        "utm_campaign, utm_content, utm_term, channel\n")
    result = rcli("report", "channels", "--since", "yesterday")
    assert (result.exit_code, result.stderr) == (
        2, "error: --since must be a date like 2026-10-01, not 'yesterday'\n")


def test_builder_is_pure_and_portable_sql():
    sql = channel_report_sql("utm_campaign", None, ["sales_sh"])
    assert "l.utm_campaign" in sql and "sales_sh" in sql
    # The builder's SQL runs on an empty workspace schema too.
    con = duckdb.connect()

    for ddl in all_ddl():
        con.execute(ddl)
    assert con.execute(channel_report_sql()).fetchall() == [
        ("(total)", 0, 0, None, 0, None, 0, 0, 0, 0, None, None, 0,
         0, 0, 0, "{}", 0, 0, 0.0, 0.0, None, None, None, None)]


def test_sales_pool_names():
    assert [is_sales_pool_name(n, t) for n, t in (
        ("sales_east", "east"), ("public_sea", "inside_sales"), ("vip", "nurture"),
        ("dormant", None), ("publicity", None))] == [True, False, False, False, True]


def test_a_large_average_score_shows_every_digit_as_json_has_it(tmp_path):
    cli = big_score_workspace(tmp_path)
    data = cli("report", "channels", "--as-of", "2026-11-01", "--json").json()
    assert (data["channels"][0]["channel"], data["channels"][0]["avg_score"],
            data["total"]["avg_score"]) == ("web", 1234572.54, 1234572.54)
    table = cli("report", "channels", "--as-of", "2026-11-01", env={"COLUMNS": "120"})
    assert table.exit_code == 0, table.stderr
    rows = [line.split("│") for line in table.stdout.splitlines() if line.startswith("│")]
    header = next(line for line in table.stdout.splitlines() if line.startswith("┃"))
    assert [cell.strip() for cell in header.split("┃")][5] == "avg score"
    assert {row[1].strip(): row[5].strip() for row in rows} == {
        "web": "1234572.54", "agent_list": "—", "feed_douyin": "—", "sem_baidu": "—",
        "(total)": "1234572.54"}


def grade_rules(cli, grades: str) -> None:
    (cli.rules / "scoring.yaml").write_text(
        f"grades: {grades}\nrules:\n  - {{name: base, points: 1}}\n", encoding="utf-8")


def grade_mix(data: dict) -> list[tuple]:
    keys = [f"grade_{grade.lower()}" for grade in data["grades"]]
    return [(row["channel"], row["persons"], *(row[k] for k in keys))
            for row in data["channels"] + [data["total"]]]


def wide_table(cli, *args) -> list[list[str]]:
    """The rich table's header and rows as cells."""
    result = cli("report", "channels", "--as-of", "2026-11-01", *args, env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.stderr
    return [[cell.strip() for cell in line.split(line[0])[1:-1]]
            for line in result.stdout.splitlines() if line[:1] in ("┃", "│")]


def test_a_fifth_grade_has_its_column(rcli):
    # Grade E was missing from the mix: sem's P3 was in persons but in no grade column.
    grade_rules(rcli, "{A: 70, B: 45, C: 20, D: 10, E: -10}")
    with open_writer(rcli.db) as ws:
        ws.execute("UPDATE scores SET score = 5, grade = 'E' WHERE person_id = 'P3'")
    data = report(rcli)
    assert (data["grades"], data["warnings"]) == (["A", "B", "C", "D", "E"], [])
    assert list(data["total"]) == [*COLUMNS[:10], "grade_e", *report_columns()[10:]]
    assert grade_mix(data) == [
        # channel, persons, A, B, C, D, E
        ("sem", 3, 1, 1, 0, 0, 1), ("agent", 2, 2, 0, 0, 0, 0), ("feed", 2, 1, 0, 1, 0, 0),
        ("purchased", 0, 0, 0, 0, 0, 0), ("(total)", 5, 2, 1, 1, 0, 1)]
    header, *rows = wide_table(rcli)
    assert header[6:12] == ["A", "B", "C", "D", "E", "avg score"]
    assert [(row[0], *row[6:11]) for row in rows] == [
        ("sem", "1", "1", "0", "0", "1"), ("agent", "2", "0", "0", "0", "0"),
        ("feed", "1", "0", "1", "0", "0"), ("purchased", "0", "0", "0", "0", "0"),
        ("(total)", "2", "1", "1", "0", "1")]
    narrow = rcli("report", "channels", "--as-of", "2026-11-01", env={"COLUMNS": "80"})
    assert "persons, rejects, A, B, C, D, E, avg score" in " ".join(
        narrow.stdout.splitlines()[-2:])  # the grade mix still goes first, all of it


def test_custom_grade_names_have_their_columns(rcli, tmp_path):
    grade_rules(rcli, "{hot: 70, warm: 30, cold: 0}")
    with open_writer(rcli.db) as ws:
        ws.execute("UPDATE scores SET grade = CASE WHEN score >= 70 THEN 'hot' "
                   "WHEN score >= 30 THEN 'warm' ELSE 'cold' END")
    data = report(rcli)
    assert (data["grades"], data["warnings"]) == (["hot", "warm", "cold"], [])
    assert list(data["total"]) == [*COLUMNS[:6], "grade_hot", "grade_warm", "grade_cold",
                                   *report_columns()[10:]]
    assert grade_mix(data) == [
        ("sem", 3, 1, 1, 1), ("agent", 2, 2, 0, 0), ("feed", 2, 1, 1, 0),
        ("purchased", 0, 0, 0, 0), ("(total)", 5, 2, 2, 1)]
    header, *rows = wide_table(rcli)
    assert header[6:10] == ["hot", "warm", "cold", "avg score"]
    assert rows[-1][:10] == ["(total)", "9", "5", "33.3%", "6", "40.0%", "2", "2", "1",
                             "56"]
    out = tmp_path / "grades.csv"
    result = rcli("report", "channels", "-o", out, "--json")
    assert result.json()["grades"] == ["hot", "warm", "cold"]
    assert out.read_text().splitlines()[0].split(",")[5:10] == [
        "reject_rate", "grade_hot", "grade_warm", "grade_cold", "avg_score"]
    assert out.read_text().splitlines()[-1].split(",")[6:9] == ["2", "2", "1"]


def test_a_to_d_rules_keep_the_columns(rcli):
    grade_rules(rcli, "{A: 70, B: 45, C: 20, D: 0}")
    data = report(rcli)
    assert (data["grades"], data["warnings"]) == (["A", "B", "C", "D"], [])
    assert tuple(data["total"]) == report_columns() == COLUMNS + (
        "new_persons", "dup_other_source", "dup_same_source", "dup_from", "new_to_sales",
        "new_sold", "new_sold_amount", "sold_amount", "cost", "costed_leads",
        "cost_per_lead", "cost_per_new")
    assert table(data)[-1] == ("(total)", 9, 5, 0.3333, 6, 0.4, 2, 1, 1, 1, 56.0, 0.4, 2)
    assert wide_table(rcli)[0][6:11] == ["A", "B", "C", "D", "avg score"]


def test_grades_the_rules_do_not_define_are_shown_with_a_warning(rcli):
    # scored with other rules: those persons stay in the mix, after the rules' grades
    grade_rules(rcli, "{A: 70, B: 45, C: 20}")
    result = rcli("report", "channels", "--json")
    assert result.exit_code == 0
    assert result.json()["grades"] == ["A", "B", "C", "D"]
    assert result.stderr == (
        f"warning: the stored scores have grade D, which {rcli.rules / 'scoring.yaml'} does "
        "not define (scored with other rules?): the grade mix shows it after its own; run "
        "`leadctl score` to grade again\n")


def test_an_invalid_scoring_yaml_refuses_the_report(rcli):
    # the grade mix follows its grades: invalid, the report refuses as for routing.yaml
    (rcli.rules / "scoring.yaml").write_text("grades: {A: x}\nrules: []\n", encoding="utf-8")
    result = rcli("report", "channels", "--json")
    assert result.exit_code == 2
    assert result.json()["error"]["message"] == (
        f"{rcli.rules / 'scoring.yaml'}:1:13: grade 'A': minimum score must be a number, "
        "not 'x'")


def test_grade_columns_and_headers_stay_apart():
    assert grade_columns(["A", "a", "a_2", "hot", "A+"]) == [
        "grade_a", "grade_a_2", "grade_a_2_2", "grade_hot", "grade_a+"]
    assert grade_headers(["A", "sold", "source", "leads"], "source") == [
        "A", "grade sold", "grade source", "grade leads"]
    con = duckdb.connect()
    for ddl in all_ddl():
        con.execute(ddl)
    con.execute("INSERT INTO scores VALUES ('P1', 1, 'a+', '2026-11-01', 1)")
    names = [d[0] for d in con.execute(
        channel_report_sql(grades=["A", "a", "A+"])).description]
    assert names[6:10] == ["grade_a", "grade_a_2", "grade_a+", "avg_score"]


@pytest.mark.parametrize("share, shown", [(0.0625, "6.3%"), (0.0125, "1.3%"), (1 / 80, "1.3%"),
                                          (0.00049, "0.0%"), (1.0, "100.0%"), (None, "—")])
def test_a_percentage_rounds_its_json_value_half_up_as_the_sql_does(share, shown):
    # Python's format rounds a half to even: 6.2% beside the JSON's 0.0625
    assert _pct(share) == shown
