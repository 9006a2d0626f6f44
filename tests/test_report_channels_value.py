"""`leadctl report channels`: duplicate-adjusted channel value (issue 16) on a crafted
data set whose arrival order is known: new persons versus duplicates of an earlier lead
of another source / of the same source, first-touch outcomes, costs from costs.yaml and
the `--duplicates SOURCE` refund evidence."""

from __future__ import annotations

import csv
import shutil

import duckdb
import pytest
from conftest import RULES, Cli

from leadctl.campaigns.costs import load_cost_rules
from leadctl.errors import RuleError
from leadctl.workspace import open_writer

# Arrival order per person (sources sem, feed, agent; S6 is not resolved):
#   P1: S1 sem 10-01 → F1 feed 10-02 → A1 agent 10-03 → S2 sem 10-04
#   P2: F2 feed 10-05 → F3 feed 10-06 (same source again) → S3 sem 10-07
#   P3: A2 agent and S4 sem both at 10-08 10:00 (tie: by source, agent first)
#   P4: A3 agent without created_at, its file ingested 10-02 → F4 feed 10-09
#   P5: S5 sem 09-20
DATA_SQL = """
INSERT INTO ingested_files (file_id, path, source, kind, ingested_at)
VALUES (7, 'agent_late.csv', 'agent', 'leads', '2026-10-02 00:00');
INSERT INTO leads (lead_key, source, lead_id, file_id, created_at) VALUES
 (1, 'sem', 'S1', NULL, '2026-10-01 09:00'), (2, 'feed', 'F1', NULL, '2026-10-02 09:00'),
 (3, 'agent', 'A1', NULL, '2026-10-03 09:00'), (4, 'sem', 'S2', NULL, '2026-10-04 09:00'),
 (5, 'feed', 'F2', NULL, '2026-10-05 09:00'), (6, 'feed', 'F3', NULL, '2026-10-06 09:00'),
 (7, 'sem', 'S3', NULL, '2026-10-07 09:00'), (8, 'sem', 'S4', NULL, '2026-10-08 10:00'),
 (9, 'agent', 'A2', NULL, '2026-10-08 10:00'), (10, 'agent', 'A3', 7, NULL),
 (11, 'feed', 'F4', NULL, '2026-10-09 09:00'), (12, 'sem', 'S5', NULL, '2026-09-20 09:00'),
 (13, 'sem', 'S6', NULL, '2026-10-10 09:00');
INSERT INTO person_leads VALUES (1, 'P1'), (2, 'P1'), (3, 'P1'), (4, 'P1'), (5, 'P2'),
 (6, 'P2'), (7, 'P2'), (8, 'P3'), (9, 'P3'), (10, 'P4'), (11, 'P4'), (12, 'P5');
INSERT INTO persons (person_id) VALUES ('P1'), ('P2'), ('P3'), ('P4'), ('P5');
INSERT INTO lead_identifiers (lead_key, id_type, value, status) VALUES
 (1, 'phone', '+8613800000001', 'ok'), (2, 'phone', '+8613800000001', 'ok'),
 (3, 'phone', '+8613800000001', 'ok'), (4, 'phone', '+8613800000001', 'ok'),
 (5, 'phone', '+8613900000002', 'ok'), (6, 'phone', '+8613900000002', 'ok'),
 (6, 'wechat', 'wx_p2_abc', 'ok'), (7, 'wechat', 'wx_p2_abc', 'ok'),
 (8, 'phone', '+8613700000003', 'ok'), (9, 'phone', '+8613700000003', 'ok'),
 (8, 'email', 'p3@example.com', 'ok'), (9, 'email', 'p3@example.com', 'ok'),
 (10, 'email', 'p4@example.com', 'ok'), (11, 'email', 'p4@example.com', 'ok');
INSERT INTO ownership (person_id, pool) VALUES ('P1', 'sales_sh'), ('P2', 'nurture'),
 ('P3', 'sales_bj'), ('P4', 'public'), ('P5', 'sales_sh');
INSERT INTO sales (sold_at, person_id, amount) VALUES
 ('2026-10-20', 'P1', 1000), ('2026-10-21', 'P5', 500), ('2026-10-25', 'P5', 250);
"""
VALUE = ("channel", "leads", "new_persons", "dup_other_source", "dup_same_source", "dup_from",
         "new_to_sales", "new_sold", "new_sold_amount", "sold_amount")
COST = ("channel", "cost", "costed_leads", "cost_per_lead", "cost_per_new")
COSTS_YAML = """\
currency: CNY
costs:
  - {source: sem, period: 2026-10, cost: 1200}
  - {source: sem, period: 2026-09, cost: 300}
  - {source: feed, from: 2026-10-01, to: 2026-10-05, cost: 400}
  - {source: purchased, period: 2026-10, cost: 999}   # paid, but no lead came
  - {utm_campaign: brand, period: 2026-10, cost: 50}  # another dimension: not by source
"""


@pytest.fixture
def vcli(tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()  # no routing.yaml: sales pools by name
    cli = Cli(tmp_path / "ws.duckdb", rules)
    with open_writer(cli.db, create=True) as ws:
        ws.execute(DATA_SQL)
    return cli


def report(cli, *args) -> dict:
    result = cli("report", "channels", "--json", "--as-of", "2026-11-01", *args)
    assert result.exit_code == 0, result.stderr
    return result.json()


def rows(data: dict, columns) -> list[tuple]:
    return [tuple(row[c] for c in columns) for row in data["channels"] + [data["total"]]]


def test_new_persons_and_duplicates_by_arrival(vcli):
    data = report(vcli)
    assert rows(data, VALUE) == [
        # channel, leads, new, dup other, dup same, dup_from, new→sales, new sold, amounts
        ("sem", 6, 2, 3, 0, {"feed": 2, "agent": 1}, 2, 2, 1750.0, 1750.0),
        ("feed", 4, 1, 2, 1, {"agent": 1, "sem": 1}, 0, 0, 0.0, 1000.0),
        ("agent", 3, 2, 1, 0, {"sem": 1}, 1, 0, 0.0, 1000.0),
        ("(total)", 13, 5, 6, 1, {"agent": 2, "feed": 2, "sem": 2}, 3, 2, 1750.0, 1750.0),
    ]
    # Without costs.yaml there are no cost values.
    assert (data["costs"], data["currency"]) == (None, None)
    assert set(rows(data, COST[1:])) == {(None, None, None, None)}


def test_since_keeps_arrival_against_older_leads(vcli):
    # S3 and S4 stay duplicates of leads from before --since; A3 has no created_at, so
    # --since leaves it out (as it leaves out every lead without a creation time).
    data = report(vcli, "--since", "2026-10-07")
    assert rows(data, VALUE[:6]) == [
        ("sem", 3, 0, 2, 0, {"agent": 1, "feed": 1}),
        ("agent", 1, 1, 0, 0, {}),
        ("feed", 1, 0, 1, 0, {"agent": 1}),
        ("(total)", 5, 1, 3, 0, {"agent": 2, "feed": 1}),
    ]


def test_by_utm_field_keeps_earlier_source(vcli):
    data = report(vcli, "--by", "utm_source")
    assert rows(data, VALUE[:6]) == [
        ("(none)", 13, 5, 6, 1, {"agent": 2, "feed": 2, "sem": 2}),
        ("(total)", 13, 5, 6, 1, {"agent": 2, "feed": 2, "sem": 2}),
    ]


def test_costs_per_lead_and_per_new_person(vcli):
    (vcli.rules / "costs.yaml").write_text(COSTS_YAML, encoding="utf-8")
    data = report(vcli)
    assert (data["costs"], data["currency"]) == (str(vcli.rules / "costs.yaml"), "CNY")
    # sem: October 1200 over S1 S2 S3 S4 S6 (S6 unresolved is paid for too), September
    # 300 over S5; new persons among them: S1, S5. feed: 400 over F1, F2 (new: F2).
    assert rows(data, COST) == [
        ("sem", 1500.0, 6, 250.0, 750.0),
        ("feed", 400.0, 2, 200.0, 400.0),
        ("agent", None, None, None, None),
        ("purchased", 999.0, 0, None, None),
        ("(total)", 2899.0, 8, 362.38, 966.33),
    ]
    # --since: an entry's cost is shared by its leads; those in scope carry their part.
    data = report(vcli, "--since", "2026-10-05")
    # sem: 3 of October's 5 leads (S3 S4 S6), none a new person; feed: F2 of F1, F2.
    assert rows(data, COST) == [
        ("feed", 200.0, 1, 200.0, 200.0),
        ("sem", 720.0, 3, 240.0, None),
        ("agent", None, None, None, None),
        ("purchased", 999.0, 0, None, None),
        ("(total)", 1919.0, 4, 479.75, 1919.0),
    ]
    data = report(vcli, "--by", "utm_campaign")
    assert rows(data, COST) == [
        ("(none)", None, None, None, None), ("brand", 50.0, 0, None, None),
        ("(total)", 50.0, 0, None, None)]


COUNT_COLUMNS = ("leads", "persons", "rejects", "grade_a", "grade_b", "grade_c", "grade_d",
                 "sold", "new_persons", "dup_other_source", "dup_same_source", "new_to_sales",
                 "new_sold", "costed_leads")


@pytest.mark.parametrize("reveal", [(), ("--reveal",)])
def test_parquet_counts_are_integers_masked_or_not(vcli, tmp_path, reveal):
    # rejects and costed_leads were a HUGEINT sum: decimal(38,0) through the masking
    # path's Arrow table, double through a plain COPY (--reveal)
    (vcli.rules / "costs.yaml").write_text(COSTS_YAML, encoding="utf-8")
    with open_writer(vcli.db) as ws:
        ws.execute("INSERT INTO rejects (source, kind, reason, rejected_at) "
                   "VALUES ('sem', 'leads', 'no_contact', '2026-10-02 00:00')")
    out = tmp_path / "channels.parquet"
    result = vcli("report", "channels", "--as-of", "2026-11-01", "-o", out, *reveal)
    assert result.exit_code == 0, result.stderr
    con = duckdb.connect()
    types = {name: kind for name, kind, *_ in
             con.execute(f"DESCRIBE SELECT * FROM '{out}'").fetchall()}
    assert {c: types[c] for c in COUNT_COLUMNS} == dict.fromkeys(COUNT_COLUMNS, "BIGINT")
    assert con.execute(f"SELECT channel, rejects, costed_leads FROM '{out}'").fetchall() == [
        ("sem", 1, 6), ("feed", 0, 2), ("agent", 0, None), ("purchased", 0, 0),
        ("(total)", 1, 8)]


def test_table_shows_value_columns(vcli):
    (vcli.rules / "costs.yaml").write_text(COSTS_YAML, encoding="utf-8")
    result = vcli("report", "channels", "--as-of", "2026-11-01", env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.stderr
    cells = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
             for line in result.stdout.splitlines() if line.startswith("│")}
    header = next([c.strip() for c in line.split("┃")[2:-1]]
                  for line in result.stdout.splitlines() if line.startswith("┃"))
    assert header[-6:] == ["new", "dup other", "cost", "cost/lead", "cost/new", "amount"]
    assert cells["sem"][-6:] == ["2", "3", "1,500", "250.00", "750.00", "1,750"]
    assert cells["purchased"][-4] == "999"
    assert cells["agent"][-6:] == ["2", "1", "—", "—", "—", "0"]
    assert "cost (CNY) from" in result.stdout


def test_duplicates_export(vcli, tmp_path):
    out = tmp_path / "sem_dups.csv"
    result = vcli("report", "channels", "--as-of", "2026-11-01", "--duplicates", "sem",
                  "-o", str(out), "--json")
    assert result.exit_code == 0, result.stderr
    data = result.json()
    assert (data["source"], data["rows"], data["file"]) == ("sem", 3, str(out))
    assert out.read_text().splitlines() == [
        "lead_id,created_at,person_id,earlier_source,earlier_lead_id,earlier_created_at,"
        "matched_on,matched_values",
        "S2,2026-10-04 09:00:00,P1,feed,F1,2026-10-02 09:00:00,phone,phone 138****0001",
        "S3,2026-10-07 09:00:00,P2,feed,F2,2026-10-05 09:00:00,,",
        "S4,2026-10-08 10:00:00,P3,agent,A2,2026-10-08 10:00:00,\"email, phone\","
        "email p***@example.com; phone 137****0003",
    ]
    # A lead without created_at arrived when its file was ingested; --reveal unmasks.
    parquet = tmp_path / "feed_dups.parquet"
    result = vcli("report", "channels", "--duplicates", "feed", "-o", str(parquet), "--reveal")
    assert (result.exit_code, " ".join(result.stderr.split())) == (
        0, f"wrote 2 rows to {parquet} (leads of feed duplicating another source's earlier "
        "lead)")
    assert duckdb.connect().execute(
        f"SELECT lead_id, earlier_source, earlier_lead_id, CAST(earlier_created_at AS VARCHAR), "
        f"matched_values FROM '{parquet}'").fetchall() == [
        ("F1", "sem", "S1", "2026-10-01 09:00:00", "phone +8613800000001"),
        ("F4", "agent", "A3", "2026-10-02 00:00:00", "email p4@example.com")]


def test_duplicates_errors_exit_2(vcli, tmp_path):
    out = tmp_path / "x.csv"
    result = vcli("report", "channels", "--duplicates", "sme", "-o", str(out))
    assert (result.exit_code, result.stderr) == (
        2, "error: unknown source 'sme' (did you mean 'sem'?) (known: agent, feed, sem)\n")
    result = vcli("report", "channels", "--duplicates", "sem", "--json")
    assert result.exit_code == 2
    assert result.json()["error"]["message"] == (
        "--duplicates needs -o FILE (.csv or .parquet): the refund evidence is a file")
    result = vcli("report", "channels", "--duplicates", "sem", "--by", "channel", "-o", str(out))
    assert (result.exit_code, result.stderr) == (
        2, "error: --duplicates takes a source; it cannot be combined with --by channel\n")
    assert not out.exists()


def test_duplicates_of_a_source_whose_every_row_was_rejected_are_none(vcli, tmp_path):
    # (the channel report lists such a source; --duplicates called it unknown)

    with open_writer(vcli.db) as ws:
        ws.execute("INSERT INTO rejects VALUES (9, 'junk', 'leads', 1, 'no_identifier', NULL, "
                   "'{}', TIMESTAMP '2026-10-01 10:00:00')")
    out = tmp_path / "junk.csv"
    result = vcli("report", "channels", "--duplicates", "junk", "-o", out, "--json")
    assert (result.exit_code, result.json()["rows"]) == (0, 0)


BAD_COSTS = """\
costs:
  - {source: sem, period: 2026-13, cost: 100}
  - {source: sem, utm_source: baidu, period: 2026-10, cost: 100}
  - {source: feed, from: 2026-10-05, to: 2026-10-01, cost: 100}
  - {source: feed, period: 2026-10, cots: 100}
  - {source: agent, period: 2026-10, cost: "1,000"}
  - {source: agent, from: 2026-10-31, to: 2026-11-30, cost: 10}
  - {source: agent, period: 2026-10, cost: 10}
  - {source: app, period: 9999-12, cost: 1}
  - {source: app, period: 0000-10, cost: 1}
"""


def test_bad_costs_yaml_is_located(tmp_path):
    path = tmp_path / "costs.yaml"
    path.write_text(BAD_COSTS, encoding="utf-8")
    with pytest.raises(RuleError) as exc:
        load_cost_rules(tmp_path)
    assert str(exc.value).splitlines() == [
        f"{path}:2:27: period must be a month like 2026-10, not '2026-13'",
        f"{path}:3:19: cost entry names source and utm_source: one channel key per entry",
        f"{path}:4:42: to (2026-10-01) is before from (2026-10-05)",
        # one typo, one error: `cots` is not also a missing `cost:`
        f"{path}:5:37: cost entry: unknown key 'cots' (did you mean 'cost'?) (allowed: "
        "source, utm_source, utm_medium, utm_campaign, utm_content, utm_term, channel, "
        "period, from, to, cost, note)",
        f"{path}:6:44: cost must be a number ≥ 0 (no thousands separators), not '1,000'",
        f"{path}:8:6: cost entry (source agent, 2026-10-01..2026-10-31) overlaps the entry at "
        f"{path}:7:6 (source agent, 2026-10-31..2026-11-30): its leads would be paid twice",
        # The month after 9999-12 and year 0 do not exist (both were internal errors).
        f"{path}:9:27: period must be a month like 2026-10, not '9999-12'",
        f"{path}:10:27: period must be a month like 2026-10, not '0000-10'",
    ]


def test_channel_values_are_the_text_written(tmp_path):
    # YAML reads 010 as 8, 1.50 as 1.5, 2026-10-01 as a date and no as false: their costs
    # went to channels that do not exist, or were refused; a tab the report keeps stays
    (tmp_path / "costs.yaml").write_text(
        "costs:\n  - {utm_campaign: 010, period: 2026-10, cost: 1000}\n"
        "  - {utm_campaign: 1.50, period: 2026-10, cost: 500}\n"
        "  - {utm_campaign: '7', period: 2026-10, cost: 5}\n"
        "  - {utm_campaign: 2026-10-01, period: 2026-10, cost: 5}\n"
        "  - {utm_content: no, period: 2026-10, cost: 5}\n"
        '  - {utm_term: " \\ttab ", period: 2026-10, cost: 5}\n', encoding="utf-8")
    assert [e.value for e in load_cost_rules(tmp_path).entries] == [
        "010", "1.50", "7", "2026-10-01", "no", "\ttab"]


def test_a_cost_is_written_as_a_plain_number(tmp_path):
    # YAML 1.1 reads 010 as 8, 1:30 as 90 and 0x10 as 16: amounts paid silently wrong
    path = tmp_path / "costs.yaml"
    path.write_text("costs:\n  - {source: a, period: 2026-10, cost: 010}\n"
                    "  - {source: b, period: 2026-10, cost: 1:30}\n"
                    "  - {source: c, period: 2026-10, cost: 0x10}\n"
                    "  - {source: d, period: 2026-10, cost: 1500.50}\n", encoding="utf-8")
    with pytest.raises(RuleError) as exc:
        load_cost_rules(tmp_path)
    assert str(exc.value).splitlines() == [
        f"{path}:{n}:40: cost must be written as a plain decimal number (like 12000 or "
        f"1500.50), not {text}" for n, text in ((2, "010"), (3, "1:30"), (4, "0x10"))]


def test_a_costs_list_of_comments_only_is_no_entries(tmp_path):
    (tmp_path / "costs.yaml").write_text(
        "currency: CNY\ncosts:\n  # - {source: sem, period: 2026-10, cost: 1}\n",
        encoding="utf-8")
    rules = load_cost_rules(tmp_path)
    assert (rules.present, rules.currency, rules.entries) == (True, "CNY", [])


def test_bad_costs_yaml_exits_2_in_report_and_rules_check(vcli, tmp_path):
    (vcli.rules / "costs.yaml").write_text(
        "costs:\n  - {source: sem, period: 2026-10, cost: -5}\n", encoding="utf-8")
    result = vcli("report", "channels")
    assert (result.exit_code, result.stderr) == (
        2, f"error: {vcli.rules / 'costs.yaml'}:2:42: cost must be a number ≥ 0 (no thousands "
        "separators), not -5\n")
    rules = tmp_path / "full_rules"
    shutil.copytree(RULES, rules)
    (rules / "costs.yaml").write_text("costs:\n  - {sorce: sem, period: 2026-10, cost: 5}\n",
                                      encoding="utf-8")
    result = Cli(tmp_path / "none.duckdb", rules)("rules", "check", "--json")
    assert result.exit_code == 2
    assert [(p["file"], p["line"], p["col"], p["message"])
            for p in result.json()["problems"]] == [
        (str(rules / "costs.yaml"), 2, 6, "cost entry: unknown key 'sorce' (did you mean "
         "'source'?) (allowed: source, utm_source, utm_medium, utm_campaign, utm_content, "
         "utm_term, channel, period, from, to, cost, note)")]


def test_shipped_costs_yaml_passes_and_applies_to_the_sample_sources():
    costs = load_cost_rules(RULES)
    assert costs.present and costs.currency == "CNY"
    assert {e.value for e in costs.for_dimension("source")} == {
        "sem_baidu", "feed_douyin", "agent_list"}


def test_a_lead_without_created_at_arrives_at_its_ingest_on_the_workspace_clock(tmp_path):
    # sem's lead was created an hour before the feed file (no created_at) is ingested; the
    # ingest time was the machine's clock (UTC here: 8 h behind Shanghai) and came first
    (created, today), = duckdb.sql(
        "SELECT strftime(timezone('Asia/Shanghai', now()) - INTERVAL 1 HOUR, '%Y-%m-%d %H:%M:%S'),"
        " CAST(timezone('Asia/Shanghai', now()) AS DATE)::VARCHAR").fetchall()
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "sem.csv").write_text(f"lead_id,phone,created_at\nS1,13800001111,{created}\n")
    (inbox / "feed.csv").write_text("lead_id,phone\nF1,13800001111\n")
    cli = Cli(tmp_path / "ws.duckdb")
    assert cli("run", "--inbox", inbox, "--as-of", today).exit_code == 0
    rows = cli("report", "channels", "--as-of", today, "--json").json()["channels"]
    assert [(r["channel"], r["new_persons"], r["dup_from"]) for r in rows
            if r["leads"]] == [("feed", 0, {"sem": 1}), ("sem", 1, {})]


def test_a_report_as_of_a_day_before_a_merging_lead_says_its_persons_are_todays(tmp_path):
    # A1 (10-08) joins S1 and F1: as of 10-05 the report counts F1 as a duplicate of S1,
    # which it was not yet; `identity` in as_of_differs says the persons are today's,
    # `identity_as_of` the latest change: the night of 10-10 that merged them, as the
    # portrait dates it (A1's arrival, 10-08, is the earlier one)
    nights = {"n1": {"sem": "S1,13800001111,,2026-10-01 09:00",
                     "feed": "F1,13900003333,zs@example.com,2026-10-03 09:00"},
              "n2": {"agent": "A1,13800001111,zs@example.com,2026-10-08 09:00"}}
    cli = Cli(tmp_path / "ws.duckdb")
    for night, as_of in (("n1", "2026-10-05"), ("n2", "2026-10-10")):
        (tmp_path / night).mkdir()
        for source, row in nights[night].items():
            (tmp_path / night / f"{source}.csv").write_text(
                f"lead_id,phone,email,created_at\n{row}\n")
        assert cli("run", "--inbox", tmp_path / night, "--as-of", as_of).exit_code == 0
        report = cli("report", "channels", "--as-of", "2026-10-05", "--json").json()
        assert (report["as_of_differs"], report["identity_as_of"]) == (
            ([], None) if night == "n1" else
            (["tags", "score", "identity"], "2026-10-10"))
    portrait = cli("portrait", "S1", "--as-of", "2026-10-05", "--json").json()
    assert portrait["identity_as_of"] == "2026-10-10"
    refunds = cli("report", "channels", "--as-of", "2026-10-05", "--duplicates", "feed",
                  "-o", tmp_path / "d.csv", "--json").json()
    assert (refunds["rows"], refunds["identity_as_of"]) == (1, "2026-10-10")
    text = cli("report", "channels", "--as-of", "2026-10-05").stdout
    assert "as of 2026-10-05 (tags, score, identity as of 2026-10-10)" in text


def test_the_table_shows_the_cents_of_amounts_and_costs_that_have_them(vcli):
    # sem's amount 1,334.49 showed as 1,334 and its cost 1,500.5 as 1,501
    (vcli.rules / "costs.yaml").write_text(COSTS_YAML.replace("cost: 1200", "cost: 1200.5"),
                                           encoding="utf-8")
    with open_writer(vcli.db) as ws:
        ws.execute("UPDATE sales SET amount = 584.49 WHERE person_id = 'P5' AND amount = 500")
    data = report(vcli)
    assert [(r["channel"], r["cost"], r["new_sold_amount"])
            for r in data["channels"] + [data["total"]]] == [
        ("sem", 1500.5, 1834.49), ("feed", 400.0, 0.0), ("agent", None, 0.0),
        ("purchased", 999.0, 0.0), ("(total)", 2899.5, 1834.49)]
    result = vcli("report", "channels", "--as-of", "2026-11-01", env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.stderr
    cells = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
             for line in result.stdout.splitlines() if line.startswith("│")}
    assert {channel: (row[-4], row[-1]) for channel, row in cells.items()} == {
        "sem": ("1,500.50", "1,834.49"), "feed": ("400", "0"), "agent": ("—", "0"),
        "purchased": ("999", "0"), "(total)": ("2,899.50", "1,834.49")}


def test_a_sale_since_the_night_counts_at_the_default_as_of_with_the_pool_it_moved(tmp_path):
    # The pools counted every rep action on record while `sold` counted only sales up to
    # the night's as-of: a sale made the next day moved its person into `to sales` but
    # was not `sold` (find and portrait showed it closed and locked).
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "web.csv").write_text(
        "lead_id,phone,created_at\nW1,13912340001,2026-10-30 10:00:00\n", encoding="utf-8")
    cli = Cli(tmp_path / "ws.duckdb")
    assert cli("run", "--inbox", tmp_path / "in", "--as-of", "2026-11-01").exit_code == 0
    assert cli("sale", "W1", "--rep", "rep_wang", "--amount", "5000",
               "--as-of", "2026-11-02").exit_code == 0

    def total(*args):
        data = cli("report", "channels", "--json", *args).json()
        return (data["as_of"], data["total"]["sales_share"], data["total"]["sold"],
                data["total"]["sold_amount"], data["total"]["new_sold_amount"])
    assert total() == ("2026-11-01", 1.0, 1, 5000.0, 5000.0)
    assert total("--as-of", "2026-11-01") == ("2026-11-01", 0.0, 0, 0.0, 0.0)
    assert total("--as-of", "2026-11-02") == ("2026-11-02", 1.0, 1, 5000.0, 5000.0)


def test_only_a_later_lead_of_a_counted_person_says_the_persons_are_todays(tmp_path):
    # C1 (11-03) is a later lead of A1's person: counted as of 11-01 without --since, not
    # with --since 11-01 (only B1's person then), nor among web2's duplicates (none)
    cli = Cli(tmp_path / "ws.duckdb")
    nights = {"2026-11-01": {"web1": "A1,13911110001,2026-10-30 10:00:00",
                             "web2": "B1,13911110002,2026-11-01 10:00:00"},
              "2026-11-03": {"web3": "C1,13911110001,2026-11-03 10:00:00"}}
    for as_of, files in nights.items():
        (tmp_path / as_of).mkdir()
        for source, row in files.items():
            (tmp_path / as_of / f"{source}.csv").write_text(
                f"lead_id,phone,created_at\n{row}\n")
        assert cli("run", "--inbox", tmp_path / as_of, "--as-of", as_of).exit_code == 0

    def identity(*args: str) -> tuple:
        got = cli("report", "channels", "--as-of", "2026-11-01", *args, "--json").json()
        return "identity" in got["as_of_differs"], got["identity_as_of"]
    assert identity() == (True, "2026-11-03")
    assert identity("--since", "2026-11-01") == (False, None)
    assert identity("--duplicates", "web2", "-o", str(tmp_path / "d.csv")) == (False, None)
    assert identity("--duplicates", "web3", "-o", str(tmp_path / "d.csv")) == (False, None)


def test_a_source_with_spaces_is_the_channel_its_trimmed_name_is(tmp_path):
    # `vendor ` (a file named "vendor .csv") is the channel `vendor`: V2 re-sends V1's
    # person (a same-source repeat, not a duplicate of another source), and V3 duplicates
    # ` feed`'s X1, named `feed` as the channel table names it
    cli = Cli(tmp_path / "ws.duckdb", tmp_path)
    with open_writer(cli.db, create=True) as ws:
        ws.execute("""
INSERT INTO leads (lead_key, source, lead_id, created_at) VALUES
 (1, 'vendor ', 'V1', '2026-10-01 10:00'), (2, 'vendor', 'V2', '2026-10-03 10:00'),
 (3, ' feed', 'X1', '2026-10-01 10:00'), (4, 'vendor', 'V3', '2026-10-02 10:00');
INSERT INTO person_leads VALUES (1, 'P1'), (2, 'P1'), (3, 'P2'), (4, 'P2');
INSERT INTO persons (person_id) VALUES ('P1'), ('P2');
INSERT INTO lead_identifiers (lead_key, id_type, value, status) VALUES
 (1, 'phone', '+8613800138501', 'ok'), (2, 'phone', '+8613800138501', 'ok'),
 (3, 'phone', '+8613800138502', 'ok'), (4, 'phone', '+8613800138502', 'ok');""")
    assert rows(report(cli), VALUE[:6]) == [
        ("vendor", 3, 1, 1, 1, {"feed": 1}),
        ("feed", 1, 1, 0, 0, {}),
        ("(total)", 4, 2, 1, 1, {"feed": 1}),
    ]
    for asked in ("vendor", "vendor "):
        out = tmp_path / "dups.csv"
        result = cli("report", "channels", "--as-of", "2026-11-01", "--duplicates", asked,
                     "-o", out, "--json")
        assert (result.exit_code, result.json()["source"]) == (0, "vendor")
        assert out.read_text().splitlines()[1:] == [
            "V3,2026-10-02 10:00:00,P2,feed,X1,2026-10-01 10:00:00,phone,phone 138****8502"]


PHONE_SOURCE_SQL = """
INSERT INTO leads (lead_key, source, lead_id, created_at) VALUES
 (1, 'hostile', 'H1', '2026-10-01 10:00'), (2, 'vendor 13911112222', 'D1', '2026-10-20 10:00');
INSERT INTO person_leads VALUES (1, 'P1'), (2, 'P1');
INSERT INTO persons (person_id) VALUES ('P1');
INSERT INTO lead_identifiers (lead_key, id_type, value, status) VALUES
 (1, 'phone', '+8613812345671', 'ok'), (2, 'phone', '+8613812345671', 'ok');"""


def test_a_phone_in_a_source_name_is_masked_by_duplicates_as_in_the_table(tmp_path):
    # the table masked `vendor 139****2222`; --duplicates echoed it in full on stderr, in
    # --json and in the unknown-source near miss
    cli = Cli(tmp_path / "ws.duckdb", tmp_path)
    with open_writer(cli.db, create=True) as ws:
        ws.execute(PHONE_SOURCE_SQL)
    out = tmp_path / "d.csv"
    dups = ("report", "channels", "--as-of", "2026-11-01", "--duplicates")
    result = cli(*dups, "vendor 13911112222", "-o", out)
    assert (result.exit_code, " ".join(result.stderr.split())) == (
        0, f"wrote 1 rows to {out} (leads of vendor 139****2222 duplicating another source's "
        "earlier lead)")
    result = cli(*dups, "vendor 13911112222", "-o", out, "--json")
    assert (result.exit_code, result.json()["source"]) == (0, "vendor 139****2222")
    near_miss = ("unknown source 'vendor 1391111222' (did you mean 'vendor 139****2222'?) "
                 "(known: hostile, vendor 139****2222)")
    result = cli(*dups, "vendor 1391111222", "-o", out)
    assert (result.exit_code, result.stderr) == (2, f"error: {near_miss}\n")
    result = cli(*dups, "vendor 1391111222", "-o", out, "--json")
    assert (result.exit_code, result.json()["error"]["message"]) == (2, near_miss)
    # --reveal shows the name as stored
    result = cli(*dups, "vendor 13911112222", "-o", out, "--json", "--reveal")
    assert (result.exit_code, result.json()["source"]) == (0, "vendor 13911112222")
    result = cli(*dups, "vendor 1391111222", "-o", out, "--reveal")
    assert (result.exit_code, result.stderr) == (
        2, "error: unknown source 'vendor 1391111222' (did you mean 'vendor 13911112222'?) "
        "(known: hostile, vendor 13911112222)\n")


@pytest.mark.parametrize("reveal", [(), ("--reveal",)])
def test_dup_from_without_duplicates_is_an_empty_object_in_a_file(tmp_path, reveal):
    # --json said {} but the file had NULL (an empty CSV cell), the total row too when no
    # lead duplicates another source's; masked (an Arrow table) or not (a plain COPY)
    cli = Cli(tmp_path / "ws.duckdb", tmp_path)
    with open_writer(cli.db, create=True) as ws:
        ws.execute("""
INSERT INTO leads (lead_key, source, lead_id, created_at) VALUES
 (1, 'sem', 'S1', '2026-10-01 10:00'), (2, 'feed', 'F1', '2026-10-02 10:00');
INSERT INTO person_leads VALUES (1, 'P1'), (2, 'P2');
INSERT INTO persons (person_id) VALUES ('P1'), ('P2');""")
    assert [r["dup_from"] for r in report(cli)["channels"]] == [{}, {}]
    csv_out, parquet = tmp_path / "c.csv", tmp_path / "c.parquet"
    for out in (csv_out, parquet):
        result = cli("report", "channels", "--as-of", "2026-11-01", "-o", out, *reveal)
        assert result.exit_code == 0, result.stderr
    assert duckdb.connect().execute(
        f"SELECT channel, dup_from FROM '{parquet}'").fetchall() == [
        ("feed", "{}"), ("sem", "{}"), ("(total)", "{}")]
    with csv_out.open(encoding="utf-8", newline="") as f:
        assert [(r["channel"], r["dup_from"]) for r in csv.DictReader(f)] == [
            ("feed", "{}"), ("sem", "{}"), ("(total)", "{}")]


def test_an_amount_from_10_15_is_shown_as_json_writes_it():
    # (a sale of 1e28 made the text report fail with a traceback; 1e27 showed 28 digits)
    from leadctl.cli.report import _amount

    assert [_amount(v) for v in (35000.0, 1334.485, 1e15, 12345678901234567.5, 1e28)] == [
        "35,000", "1,334.49", "1000000000000000", "1.2345678901234568e+16", "1e+28"]
