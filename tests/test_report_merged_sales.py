"""`report channels` counts a sale recorded under a person id that a later merge retired
for the person the id went to (person_aliases), also after a second merge; the
person's portrait and explain show the log rows written under that id, marked. As of a
date before a sale, no screen shows it: not its lock, not its amount."""

from __future__ import annotations

import pytest
from conftest import SAMPLE_INBOX, Cli

from leadctl.views.report import current_person_sql
from leadctl.workspace import open_writer

COLUMNS = ("channel", "sold", "new_sold", "new_sold_amount", "sold_amount")
# Two persons of the sample data, each sold once, then joined by two new leads sharing a
# WeChat id; P1dd05a5bb198 (sold first) keeps its id, P7fb1e778ed99 is retired.
MERGE_CSV = ("lead_id,phone,wechat,name,created_at\n"
             "M1,19964634501,wx_shared_qa,a,2026-11-04 10:00:00\n"
             "M2,18686933403,wx_shared_qa,b,2026-11-04 10:00:00\n")


def channels(cli, *options) -> list[tuple]:
    result = cli("report", "channels", *options, "--json")
    assert result.exit_code == 0, result.stderr
    data = result.json()
    return [tuple(r[c] for c in COLUMNS) for r in data["channels"] + [data["total"]]]


def inbox(tmp_path, name: str, text: str):
    folder = tmp_path / name
    folder.mkdir()
    (folder / f"{name}.csv").write_text(text, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def merged(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("merged_sales")
    cli = Cli(tmp / "ws.duckdb")
    assert cli("run", "--inbox", SAMPLE_INBOX, "--as-of", "2026-11-01").exit_code == 0
    assert cli("sale", "P1dd05a5bb198", "--rep", "rep_zhao", "--amount", "500",
               "--as-of", "2026-11-02").exit_code == 0
    assert cli("sale", "P7fb1e778ed99", "--rep", "rep_sun", "--amount", "700",
               "--as-of", "2026-11-03").exit_code == 0
    ran = cli("run", "--inbox", inbox(tmp, "x", MERGE_CSV), "--as-of", "2026-11-05")
    assert ran.exit_code == 0, ran.stderr
    return cli, tmp


def test_a_sale_under_a_retired_id_counts_for_its_person(merged):
    cli, _ = merged
    assert channels(cli) == [
        ("sem_baidu", 1, 1, 1200.0, 1200.0),   # the person's first lead: BD100623
        ("feed_douyin", 1, 0, 0.0, 1200.0),
        ("app_signups", 1, 0, 0.0, 1200.0),
        ("seo_forms", 1, 0, 0.0, 1200.0),
        ("agent_list", 0, 0, 0.0, 0.0),
        ("x", 1, 0, 0.0, 1200.0),
        ("(total)", 1, 1, 1200.0, 1200.0),
    ]


# The survivor's log, newest first: its own rows and the retired id's (recorded_as).
MERGED_LOG = [
    ("2026-11-05", "merge", "rep_zhao", None),
    ("2026-11-03", "sale", "rep_sun", "P7fb1e778ed99"),
    ("2026-11-02", "sale", "rep_zhao", None),
    ("2026-11-01", "hot_other", "rep_zhao", None),
    ("2026-11-01", "hot_other", "rep_sun", "P7fb1e778ed99"),
]


def log_rows(rows: list[dict]) -> list[tuple]:
    return [(r["as_of"], r["rule"], r["new_owner"], r["recorded_as"]) for r in rows]


def test_portrait_and_explain_show_the_retired_ids_log(merged):
    cli, _ = merged
    portrait = cli("portrait", "P1dd05a5bb198", "--json")
    explain = cli("explain", "P1dd05a5bb198", "--json")
    assert (portrait.exit_code, explain.exit_code) == (0, 0)
    assert log_rows(portrait.json()["history"]) == MERGED_LOG
    assert log_rows(explain.json()["routing"]["log"]) == MERGED_LOG
    text = cli("explain", "P1dd05a5bb198")
    assert "sale (as P7fb1e778ed99)" in text.stdout
    assert text.stdout.count("(as P7fb1e778ed99)") == 2


def test_a_sale_counts_from_its_day_on(merged):
    cli, _ = merged
    totals = [channels(cli, "--as-of", day)[-1] for day in ("2026-11-01", "2026-11-02",
                                                              "2026-11-03")]
    assert totals == [("(total)", 0, 0, 0.0, 0.0), ("(total)", 1, 1, 500.0, 500.0),
                      ("(total)", 1, 1, 1200.0, 1200.0)]


@pytest.mark.parametrize(("day", "locked"), [
    ("2026-11-01", False), ("2026-11-02", True), ("2027-05-01", True), ("2027-05-02", False)])
def test_the_lock_shows_from_the_sale_to_its_end(merged, day, locked):
    cli, _ = merged
    portrait = cli("portrait", "P1dd05a5bb198", "--as-of", day, "--json").json()
    explain = cli("explain", "P1dd05a5bb198", "--as-of", day, "--json").json()
    # (before the sale of 11-02 there was no lock to show)
    assert (portrait["locked"], portrait["locked_until"]) == (
        locked, None if day == "2026-11-01" else "2027-05-01")
    assert explain["routing"]["state"]["locked"] is locked
    text = cli("explain", "P1dd05a5bb198", "--as-of", day).stdout
    assert ("locked until 2027-05-01 (sale)" in text) is locked


def test_a_screen_before_a_lead_arrived_says_its_identity_is_later(merged):
    # the leads arrived on 11-04, the night of 11-05 merged the two persons: the identity
    # shown is that of 11-05
    cli, _ = merged
    for day, differs in (("2026-11-03", True), ("2026-11-04", True), ("2026-11-05", False)):
        for command in ("portrait", "explain"):
            data = cli(command, "P1dd05a5bb198", "--as-of", day, "--json").json()
            assert ("identity" in data["as_of_differs"], data["identity_as_of"]) == (
                differs, "2026-11-05" if differs else None), (command, day)
    text = cli("portrait", "P1dd05a5bb198", "--as-of", "2026-11-03").stdout
    assert "identity as of 2026-11-05" in text


def test_at_the_default_as_of_a_sale_made_since_shows_its_lock(tmp_path):
    """The default as-of is the last night's; a sale made the day after locks at once."""
    cli = Cli(tmp_path / "ws.duckdb")
    assert cli("run", "--inbox", SAMPLE_INBOX, "--as-of", "2026-11-01").exit_code == 0
    assert cli("sale", "P1dd05a5bb198", "--rep", "rep_zhao", "--as-of", "2026-11-02"
               ).exit_code == 0
    portrait = cli("portrait", "P1dd05a5bb198", "--json").json()
    explain = cli("explain", "P1dd05a5bb198", "--json").json()
    assert (portrait["as_of"], portrait["locked"]) == ("2026-11-01", True)
    assert explain["routing"]["state"]["locked"] is True
    asked = cli("portrait", "P1dd05a5bb198", "--as-of", "2026-11-01", "--json").json()
    assert asked["locked"] is False


def test_a_second_merge_keeps_every_sale(merged, tmp_path):
    cli, _ = merged
    copy = Cli(tmp_path / "ws.duckdb")
    copy.db.write_bytes(cli.db.read_bytes())
    # P66a1730ee114 (first seen earlier, locked by this sale) absorbs the merged person:
    # both ids sold before now lead to it.
    assert copy("sale", "P66a1730ee114", "--rep", "rep_li", "--amount", "300",
                "--as-of", "2026-11-06").exit_code == 0
    third = "lead_id,phone,wechat,name,created_at\nM3,15661732897,wx_shared_qa,c,2026-11-07\n"
    assert copy("run", "--inbox", inbox(tmp_path, "y", third),
                "--as-of", "2026-11-08").exit_code == 0
    assert channels(copy) == [
        ("sem_baidu", 1, 0, 0.0, 1500.0),
        ("feed_douyin", 1, 0, 0.0, 1500.0),
        ("app_signups", 1, 0, 0.0, 1500.0),
        ("seo_forms", 1, 1, 1500.0, 1500.0),   # the person's first lead now: SEO200001
        ("agent_list", 0, 0, 0.0, 0.0),
        ("x", 1, 0, 0.0, 1500.0),
        ("y", 1, 0, 0.0, 1500.0),
        ("(total)", 1, 1, 1500.0, 1500.0),
    ]


# A crafted workspace: P1 absorbed P1a; P2 absorbed P2a, whose sale only the assignment
# log has (no sales row, no lock).
CRAFTED = """
INSERT INTO leads (lead_key, source, lead_id, created_at) VALUES
 (1, 'sem', 'S1', '2026-10-01'), (2, 'feed', 'F1', '2026-10-02'), (3, 'feed', 'F2', '2026-10-03');
INSERT INTO person_leads VALUES (1, 'P1'), (2, 'P1'), (3, 'P2');
INSERT INTO persons (person_id) VALUES ('P1'), ('P2');
INSERT INTO person_aliases VALUES ('P1a', 'P1'), ('P2a', 'P2');
INSERT INTO sales (sold_at, person_id, amount) VALUES
 ('2026-10-10', 'P1', 100), ('2026-10-11', 'P1a', 250);
INSERT INTO assignments (person_id, rule) VALUES ('P2a', 'sale'), ('P2a', 'merge');
"""


def test_sales_and_logged_sales_of_retired_ids(tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    cli = Cli(tmp_path / "ws.duckdb", rules)
    with open_writer(cli.db, create=True) as ws:
        ws.execute(CRAFTED)
    assert channels(cli) == [
        ("feed", 2, 1, 0.0, 350.0),
        ("sem", 1, 1, 350.0, 350.0),
        ("(total)", 2, 2, 350.0, 350.0),
    ]


def test_current_person_sql_is_one_alias_join():
    assert current_person_sql("assignments", ("rule",), "rule = 'sale'") == (
        "SELECT coalesce(a.person_id, t.person_id) AS person_id, t.rule "
        "FROM (SELECT * FROM assignments WHERE rule = 'sale') t "
        "LEFT JOIN person_aliases a ON a.old_person_id = t.person_id")


def test_to_sales_counts_the_pools_as_of_the_date_as_find_does(tmp_path):
    """A later sale's move (public_sea → sales_east on 12-01) is not in a report as of
    11-10: its pools are rebuilt from the log as find's are."""
    cli = Cli(tmp_path / "ws.duckdb")
    assert cli("run", "--inbox", SAMPLE_INBOX, "--as-of", "2026-11-01").exit_code == 0
    in_sales = "pool in ('key_accounts','sales_east','sales_south','sales_other')"

    def to_sales(*options) -> tuple:
        data = cli("report", "channels", *options, "--json").json()
        found = cli("find", in_sales, "--count", *options, "--json").json()
        return (data["total"]["new_to_sales"], data["total"]["sales_share"],
                data["as_of_differs"], data["routing_as_of"], found["count"])

    before = to_sales("--as-of", "2026-11-10")
    assert before == (362, 0.2358, ["tags", "score"], "2026-11-01", 362)
    assert cli("sale", "P1c6bc82cb833", "--rep", "rep_wang", "--as-of", "2026-12-01"
               ).exit_code == 0
    assert to_sales("--as-of", "2026-11-10") == before
    assert to_sales("--as-of", "2026-12-01") == (
        363, 0.2365, ["tags", "score"], "2026-12-01", 363)
    # At the default as-of (the night's) a sale since shows at once, and the report says so.
    assert to_sales() == (363, 0.2365, ["routing"], "2026-12-01", 363)
    text = cli("report", "channels")
    assert text.stdout.splitlines()[0] == (
        "channels by source, as of 2026-11-01 (routing as of 2026-12-01)")
