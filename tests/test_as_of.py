"""One as-of per screen (portrait, find, explain, report channels) and tag changes visible
from the second run, through `leadctl run` on a small sample-like inbox."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import duckdb
import pytest

from leadctl import clock
from leadctl.routing.screens import ownership_as_of_sql
from leadctl.workspace import open_memory
from tests.conftest import RULES, Cli, write

LEADS = """lead_id,name,phone,city,created_at
L1,张三,13812345678,上海,2026-10-01 10:00
L2,李四,13900001111,北京,2026-10-05 10:00
"""
# Run 1 (as of 11-01) counts two orders; run 2 (as of 11-02) also the one of 11-01.
EVENTS = """phone,event_type,ts,amount,category
13812345678,order_paid,2026-10-20 10:00,100,fresh
13812345678,order_paid,2026-10-31 10:00,300,apparel
13812345678,order_paid,2026-11-01 12:00,500,fresh
13900001111,login,2026-10-30 09:00,,
"""


@pytest.fixture
def inbox(tmp_path):
    folder = tmp_path / "inbox"
    folder.mkdir()
    write(folder / "leads.csv", LEADS)
    write(folder / "events.csv", EVENTS)
    return folder


@pytest.fixture
def ran(cli, inbox):
    result = cli("run", "--inbox", inbox, "--as-of", "2026-11-01")
    assert result.exit_code == 0, result.stderr
    return cli


def test_portrait_is_as_of_the_tag_run_and_as_of_moves_it(ran):
    data = ran("portrait", "13812345678", "--json").json()
    assert {k: data[k] for k in ("as_of", "as_of_source", "tags_as_of", "as_of_differs")} == {
        "as_of": "2026-11-01", "as_of_source": "tags", "tags_as_of": "2026-11-01",
        "as_of_differs": []}
    assert (data["tags"]["paid_orders_30d"], data["activity"]["events"]) == (2, [
        {"event_type": "order_paid", "total": 2, "last_30d": 2, "amount_30d": 400.0,
         "last_at": "2026-10-31T10:00:00"}])
    text = ran("portrait", "13812345678").stdout
    assert "· as of 2026-11-01 ─" in text and "order_paid 2 in 30d · 2 all" in text

    moved = ran("portrait", "13812345678", "--json", "--as-of", "2026-10-25").json()
    assert (moved["as_of"], moved["as_of_source"], moved["as_of_differs"]) == (
        "2026-10-25", "option", ["tags", "score"])
    assert [(e["last_30d"], e["total"]) for e in moved["activity"]["events"]] == [(1, 1)]
    text = ran("portrait", "13812345678", "--as-of", "2026-10-25").stdout
    assert "as of 2026-10-25 (tags, score as of 2026-11-01)" in text
    assert "tags  as of 2026-11-01 (stored)" in text


def test_before_any_tag_run_the_screen_is_as_of_today(cli, inbox):
    assert cli("ingest", inbox).exit_code == 0
    assert cli("resolve").exit_code == 0
    data = cli("portrait", "13812345678", "--json").json()
    # today in the workspace zone (Asia/Shanghai), not the machine's (tests/test_clock.py)
    assert (data["as_of"], data["as_of_source"], data["tags_as_of"]) == (
        clock.today("Asia/Shanghai").isoformat(), "today", None)
    assert "(today: no tag run yet)" in cli("portrait", "13812345678").stdout


def test_find_explain_and_report_state_their_as_of(ran):
    def as_of(*args):
        data = ran(*args, "--json").json()
        return (data["as_of"], data["as_of_source"], data["as_of_differs"])

    assert as_of("find", "paid_orders_30d >= 2") == ("2026-11-01", "tags", [])
    assert as_of("explain", "L1") == ("2026-11-01", "tags", [])
    assert as_of("report", "channels") == ("2026-11-01", "tags", [])
    assert as_of("explain", "L1", "--as-of", "2026-10-25") == (
        "2026-10-25", "option", ["tags", "score"])
    # days_since() counts to the screen's as-of; report counts leads up to it.
    assert ran("find", "days_since(first_seen) >= 31", "--count").stdout == "1\n"
    assert ran("find", "days_since(first_seen) >= 31", "--count",
               "--as-of", "2026-10-25").stdout == "0\n"
    report = ran("report", "channels", "--as-of", "2026-10-03", "--json").json()
    assert report["total"]["leads"] == 1
    assert ran("report", "channels").stdout.startswith("channels by source, as of 2026-11-01")


def test_changes_show_from_the_second_run(ran, inbox):
    result = ran("run", "--inbox", inbox, "--as-of", "2026-11-02")
    assert result.exit_code == 0, result.stderr
    groups = ran("portrait", "13812345678", "--json").json()["tag_groups"]
    tags = {t["tag"]: t for g in groups for t in g["tags"]}
    assert [(t["value"], t["changed"], t["previous"]) for t in (
        tags["paid_orders_30d"], tags["paid_amount_30d"])] == [(3, True, 2), (900, True, 400)]
    assert "paid_orders_30d 3 ▲ was 2" in ran("portrait", "13812345678").stdout


def test_the_first_run_marks_nothing_as_changed(ran):
    groups = ran("portrait", "13812345678", "--json").json()["tag_groups"]
    assert not any(t["changed"] for g in groups for t in g["tags"])


def test_routing_is_shown_as_of_the_screens_date(ran):
    routed = ran("portrait", "L1", "--json").json()
    assert (routed["pool"], routed["owner"], routed["routing_as_of"]) == (
        "nurture", None, "2026-11-01")
    assert ran("claim", "nurture", "--rep", "ops_xu", "--n", "2",
               "--as-of", "2026-11-02").exit_code == 0
    assert ran("status", "L1", "contacting", "--as-of", "2026-11-03").exit_code == 0
    assert ran("sale", "L1", "--rep", "ops_xu", "--as-of", "2026-11-04").exit_code == 0

    def routing(*args):
        data = ran("portrait", "L1", "--json", *args).json()
        return ({k: data[k] for k in ("pool", "owner", "status", "status_since", "locked",
                                      "routing_as_of", "as_of_differs")},
                [row["new_status"] for row in data["history"]])

    assert routing("--as-of", "2026-10-31") == (
        {"pool": None, "owner": None, "status": None, "status_since": None, "locked": False,
         "routing_as_of": None, "as_of_differs": ["tags", "score"]}, [])
    assert routing("--as-of", "2026-11-03") == (
        {"pool": "nurture", "owner": "ops_xu", "status": "contacting",
         "status_since": "2026-11-03", "locked": False, "routing_as_of": "2026-11-03",
         "as_of_differs": ["tags", "score"]}, ["contacting", "pending", None])
    # The default as-of (the tag run's) shows the sale made since at once, and says so.
    now, log = routing()
    assert (now["status"], now["locked"], now["routing_as_of"], now["as_of_differs"]) == (
        "closed", True, "2026-11-04", ["routing"])
    assert log == ["closed", "contacting", "pending", None]
    assert "as of 2026-11-01 (routing as of 2026-11-04)" in ran("portrait", "L1").stdout
    state = ran("explain", "L1", "--as-of", "2026-11-03", "--json").json()["routing"]["state"]
    assert (state["status"], state["locked"]) == ("contacting", False)
    # find reads the same routing: as of --as-of, else the stored one.
    counts = [ran("find", expr, "--count", *args).stdout for expr, args in [
        ("status = 'contacting'", ["--as-of", "2026-11-03"]), ("status = 'contacting'", []),
        ("owner = 'ops_xu'", ["--as-of", "2026-10-31"]), ("owner = 'ops_xu'", []),
        ("pool = 'nurture' and owner is null", ["--as-of", "2026-11-01"])]]
    assert counts == ["1\n", "0\n", "0\n", "2\n", "2\n"]
    # and says so as the portrait does: the routing holds the actions made since
    found = [ran("find", "owner = 'ops_xu'", "--json", *args).json() for args in (
        [], ["--as-of", "2026-11-03"])]
    assert [(f["routing_as_of"], f["as_of_differs"]) for f in found] == [
        ("2026-11-04", ["routing"]), ("2026-11-03", ["tags", "score"])]
    assert "as of 2026-11-01 (routing as of 2026-11-04)" in ran("find", "owner = 'ops_xu'").stdout
    # and so does an audience drawn from a start in the past
    audience = ran("audience", "export", "calls", "status = 'contacting'", "-o",
                   ran.db.parent / "calls.csv", "--as-of", "2026-11-03", "--json").json()
    assert audience["persons"] == 1


def test_a_past_screen_shows_no_later_sale_lock_and_no_since_date_for_no_status(ran):
    # A sale of a closed lead logs nothing (pool, owner, status stay): its lock is still
    # not there the day before it. A lead waiting with no status has no since-date, also
    # once a later claim makes its routing be rebuilt from the log.
    assert ran("claim", "nurture", "--rep", "ops_xu", "--n", "2",
               "--as-of", "2026-11-02").exit_code == 0
    assert ran("status", "L1", "closed", "--as-of", "2026-11-03").exit_code == 0
    assert ran("sale", "L1", "--rep", "ops_xu", "--as-of", "2026-11-05").exit_code == 0

    def seen(query, day):
        data = ran("portrait", query, "--json", "--as-of", day).json()
        return data["status"], data["status_since"], data["locked_until"], data["locked"]

    assert seen("L1", "2026-11-04") == ("closed", "2026-11-03", None, False)
    assert seen("L1", "2026-11-05")[2:] == ("2027-05-04", True)  # lock_days: 180
    assert seen("L2", "2026-11-01") == (None, None, None, False)
    assert [ran("find", "locked_until >= '2026-11-04'", "--count", "--as-of", day).stdout
            for day in ("2026-11-04", "2026-11-05")] == ["0\n", "1\n"]


def test_two_persons_a_later_merge_joined_show_the_survivors_routing_before_it():
    # Routed apart by one run (log rows tied on date, time and run), merged later: as of
    # before the merge, the pick between the two rows was arbitrary (find and portrait
    # disagreed, find with itself), and a later row of the retired id won over the state
    # the merge kept

    ws = open_memory()
    at = "TIMESTAMP '2026-11-01 02:00'"
    for pid, pool, owner in (("Pold", "nurture", None), ("Pnew", "sales", "ann")):
        ws.execute(f"INSERT INTO assignments VALUES ({at}, 1, DATE '2026-11-01', '{pid}', "
                   f"NULL, '{pool}', NULL, {repr(owner) if owner else 'NULL'}, NULL, "
                   "'pending', 'all', 'dealt', 'dealt')")
    ws.execute("INSERT INTO assignments VALUES (TIMESTAMP '2026-11-02 09:00', 0, "
               "DATE '2026-11-02', 'Pold', 'nurture', 'nurture', NULL, 'bob', 'pending', "
               "'pending', 'claim', 'claimed', 'claimed')")  # a later row of the retired id
    ws.execute("INSERT INTO assignments VALUES (TIMESTAMP '2026-11-03 02:00', 2, "
               "DATE '2026-11-03', 'Pnew', 'sales', 'sales', 'ann', 'ann', 'pending', "
               "'contacting', 'merge', 'merge: Pold into Pnew', 'merge')")
    ws.execute("INSERT INTO person_aliases VALUES ('Pold', 'Pnew')")
    ws.execute("INSERT INTO ownership VALUES ('Pnew', 'sales', 'ann', 'contacting', "
               "'2026-11-03', '2026-11-01', NULL, FALSE, 'merge')")
    for _ in range(5):
        assert ws.execute(f"SELECT person_id, pool, owner, status, assigned_at "
                          f"FROM ({ownership_as_of_sql(dt.date(2026, 11, 2))})").fetchall() == [
            ("Pnew", "sales", "ann", "pending", dt.date(2026, 11, 1))]


def test_a_sale_dated_after_today_shows_with_its_lock_at_the_default_as_of(cli, inbox):
    """A night's as-of can be later than the real date (`run --as-of`), and so can a sale:
    its owner showed at the default as-of, its lock did not."""
    night = dt.date.today() + dt.timedelta(days=5)
    sold = (night + dt.timedelta(days=1)).isoformat()
    assert cli("run", "--inbox", inbox, "--as-of", night.isoformat()).exit_code == 0
    assert cli("sale", "L1", "--rep", "ops_xu", "--as-of", sold).exit_code == 0
    for command in ("portrait", "explain"):
        data = cli(command, "L1", "--json").json()
        state = data if command == "portrait" else data["routing"]["state"]
        assert (state["owner"], state["locked"], data["routing_as_of"],
                data["as_of_differs"]) == ("ops_xu", True, sold, ["routing"]), command


def test_a_past_screen_shows_the_reason_the_state_had_then(ran, inbox):
    # An SLA return logs why (sla_expired); the state's reason is sla_returned. As of that
    # night, once more happened since, the state was rebuilt from the log with the log's
    # reason: the screens contradicted what they had shown that night
    assert ran("claim", "nurture", "--rep", "ops_xu", "--n", "2",
               "--as-of", "2026-11-02").exit_code == 0
    assert ran("run", "--inbox", inbox, "--as-of", "2026-11-06").exit_code == 0

    def seen(*args):
        data = ran("portrait", "L1", "--json", *args).json()
        state = ran("explain", "L1", "--json", *args).json()["routing"]["state"]
        return (data["pool"], data["routing_reason"], state["reason"],
                data["history"][0]["reason"])

    that_night = seen()
    assert that_night == ("public_sea", "sla_returned", "sla_returned", "sla_expired")
    assert ran("claim", "public_sea", "--rep", "rep_wang", "--n", "2",
               "--as-of", "2026-11-07").exit_code == 0
    assert seen()[:3] == ("public_sea", "claimed", "claimed")
    assert seen("--as-of", "2026-11-06") == that_night


def test_a_workspace_whose_log_predates_state_reason_still_shows_and_then_gets_it(ran):
    assert ran("claim", "nurture", "--rep", "ops_xu", "--n", "2",
               "--as-of", "2026-11-02").exit_code == 0
    with duckdb.connect(str(ran.db)) as con:  # as a workspace made before the column
        con.execute("ALTER TABLE assignments DROP COLUMN state_reason")
    # read only, not upgraded: a past state takes its log row's reason
    data = ran("portrait", "L1", "--json", "--as-of", "2026-11-01").json()
    state = ran("explain", "L1", "--json", "--as-of", "2026-11-01").json()["routing"]["state"]
    assert (data["pool"], data["owner"], data["routing_reason"], state["reason"]) == (
        "nurture", None, "claim_pool", "claim_pool")
    assert ran("find", "pool = 'nurture' and owner is null", "--count",
               "--as-of", "2026-11-01").stdout == "2\n"
    # the next writer adds the column: its rows carry the state's reason, older ones none
    assert ran("status", "L1", "contacting", "--as-of", "2026-11-03").exit_code == 0
    with duckdb.connect(str(ran.db), read_only=True) as con:
        assert con.execute("SELECT rule, state_reason FROM assignments WHERE person_id = "
                           "(SELECT person_id FROM assignments WHERE rule = 'status') "
                           "ORDER BY logged_at").fetchall() == [
            ("default_pool", None), ("claim", None), ("status", "claimed")]


def test_a_past_screen_shows_no_lock_of_a_later_sale_with_no_owner_or_another_rep(ran):
    # L1 waits in nurture with no owner, L2 is claimed by ops_xu; both are sold on 11-04,
    # L2 by another rep. The day before, the stored lock of the later sale showed: with no
    # owner, and with ops_xu as the owner (rep_wang's lock)
    assert ran("claim", "nurture", "--rep", "ops_xu", "--n", "1",
               "--as-of", "2026-11-02").exit_code == 0
    claimed = ran("find", "owner = 'ops_xu'", "--json").json()["persons"][0]["person_id"]
    waiting = ran("find", "owner is null", "--json").json()["persons"][0]["person_id"]
    for person, rep in ((waiting, "ops_xu"), (claimed, "rep_wang")):
        result = ran("sale", person, "--rep", rep, "--as-of", "2026-11-04")
        assert result.exit_code == 0, result.stderr

    def seen(person, day):
        data = ran("portrait", person, "--json", "--as-of", day).json()
        state = ran("explain", person, "--json", "--as-of", day).json()["routing"]["state"]
        return (data["owner"], data["locked_until"], data["locked"],
                state["locked_until"], state["locked"])

    assert seen(waiting, "2026-11-03") == (None, None, False, None, False)
    assert seen(claimed, "2026-11-03") == ("ops_xu", None, False, None, False)
    assert seen(waiting, "2026-11-04") == ("ops_xu", "2027-05-03", True, "2027-05-03", True)
    assert seen(claimed, "2026-11-04") == ("rep_wang", "2027-05-03", True, "2027-05-03",
                                           True)
    assert [ran("find", "locked_until is not null", "--count", "--as-of", day).stdout
            for day in ("2026-11-03", "2026-11-04")] == ["0\n", "2\n"]
    # A lock with no sale on record at all (a Spark run loaded into a new workspace)
    # shows as it stands
    with duckdb.connect(str(ran.db)) as con:
        con.execute("DELETE FROM sales")
    assert seen(claimed, "2026-11-04")[:2] == ("rep_wang", "2027-05-03")


def test_report_channels_counts_no_sale_made_after_the_as_of_of_a_lead_closed_before(ran):
    # L1 closed on 11-03, sold on 11-05 (a sale of a closed lead logs nothing): as of
    # 11-04 the report counted it sold by its lock, dated by the closing
    assert ran("claim", "nurture", "--rep", "ops_xu", "--n", "2",
               "--as-of", "2026-11-02").exit_code == 0
    assert ran("status", "L1", "closed", "--as-of", "2026-11-03").exit_code == 0
    assert ran("sale", "L1", "--rep", "ops_xu", "--amount", "100",
               "--as-of", "2026-11-05").exit_code == 0

    def sold(day):
        total = ran("report", "channels", "--as-of", day, "--json").json()["total"]
        return total["sold"], total["new_sold"], total["sold_amount"]

    assert [sold(day) for day in ("2026-11-04", "2026-11-05")] == [
        (0, 0, 0.0), (1, 1, 100.0)]
    # A lock with no sale on record at all (a Spark run loaded into a new workspace)
    # counts from the closing, the date it has
    with duckdb.connect(str(ran.db)) as con:
        con.execute("DELETE FROM sales")
    assert [sold(day) for day in ("2026-11-02", "2026-11-04")] == [(0, 0, 0.0), (1, 1, 0.0)]


def test_routing_as_of_holds_a_sale_of_a_closed_lead(ran):
    # A sale of a closed lead logs no row: the screens showed its lock ("routed: sale")
    # under the date of the closing
    assert ran("claim", "nurture", "--rep", "ops_xu", "--n", "2",
               "--as-of", "2026-11-02").exit_code == 0
    assert ran("status", "L1", "closed", "--as-of", "2026-11-03").exit_code == 0
    assert ran("sale", "L1", "--rep", "ops_xu", "--as-of", "2026-11-05").exit_code == 0

    def routing_as_of(*args):
        portrait = ran("portrait", "L1", "--json", *args).json()
        explain = ran("explain", "L1", "--json", *args).json()
        found = ran("find", "owner = 'ops_xu'", "--json", *args).json()
        return [(view["routing_as_of"], view["as_of_differs"])
                for view in (portrait, explain, found)] + [
            (portrait["locked"], explain["routing"]["state"]["as_of"])]

    assert routing_as_of("--as-of", "2026-11-04") == [
        ("2026-11-03", ["tags", "score"])] * 3 + [(False, "2026-11-03")]
    assert routing_as_of("--as-of", "2026-11-05") == [
        ("2026-11-05", ["tags", "score"])] * 3 + [(True, "2026-11-05")]
    assert routing_as_of() == [("2026-11-05", ["routing"])] * 3 + [(True, "2026-11-05")]
    assert "as of 2026-11-01 (routing as of 2026-11-05)" in ran("portrait", "L1").stdout


# -- a split after the as-of ---------------------------------------------------------------

SPLIT_FILES = {
    "n1/s1.csv": "lead_id,name,phone,city,created_at\n"
                 "L1,王小明,13912340001,上海,2026-10-20 10:00:00\n",
    "n1/s2.csv": "lead_id,name,wechat,city,created_at\n"
                 "L2,王小明,WxBob88,上海,2026-10-22 11:00:00\n",
    "n1/ev1.csv": "phone,event_type,ts,amount,category\n"
                  "13912340001,order_paid,2026-10-25 10:00:00,1200,apparel\n"
                  "13912340001,form_submit,2026-10-26 10:00:00,,\n",
    "n1/ev2.csv": "lead_id,event_type,ts,amount,category\n"
                  "L2,order_paid,2026-10-28 10:00:00,2000,digital\n"
                  "L2,form_submit,2026-10-28 11:00:00,,\n",
    # carries both values: L2's person is merged into L1's
    "n2/s3.csv": "lead_id,name,phone,wechat,city,created_at\n"
                 "L3,王小明,13912340001,wxbob88,上海,2026-11-02 09:00:00\n",
}


def split_cli(tmp: Path) -> Cli:
    rules = tmp / "rules"  # `identity unlink` writes its override there
    shutil.copytree(RULES, rules, ignore=shutil.ignore_patterns("tests"))
    for name, text in SPLIT_FILES.items():
        (tmp / name).parent.mkdir(exist_ok=True)
        write(tmp / name, text)
    return Cli(tmp / "ws.duckdb", rules)


def routing_seen(cli: Cli, query: str, day: str | None) -> tuple:
    """(person, pool, owner, status, since) of `query` in portrait and explain as of `day`."""
    args = ("--as-of", day) if day else ()
    portrait = cli("portrait", query, "--json", *args).json()
    explain = cli("explain", query, "--json", *args).json()
    state = explain["routing"].get("state") or {}
    seen = {(portrait["person_id"], portrait["pool"], portrait["owner"], portrait["status"],
             portrait["status_since"]),
            (explain["person_id"], state.get("pool"), state.get("owner"), state.get("status"),
             state.get("status_since"))}
    assert len(seen) == 1, seen
    return seen.pop()


def owned_by(cli: Cli, rep: str, day: str) -> list[str]:
    found = cli("find", f"owner = '{rep}'", "--as-of", day, "--json").json()
    return sorted(p["person_id"] for p in found["persons"])


@pytest.fixture(scope="module")
def split_later(tmp_path_factory):
    """11-01 L1 dealt to rep_li, L2 to rep_wang; 11-02 L1 contacting; 11-03 L3 merges
    L2's person into L1's (which keeps rep_li, contacting); then `identity unlink L3 L2`
    and the night of 11-07 split L2 off again under its old id. Returns the cli, the two
    ids, and what the screens showed as of 11-05 before the split."""
    tmp = tmp_path_factory.mktemp("split_later")
    cli = split_cli(tmp)
    steps = [("run", "--inbox", tmp / "n1", "--as-of", "2026-11-01"),
             ("status", "L1", "contacting", "--as-of", "2026-11-02"),
             ("run", "--inbox", tmp / "n2", "--as-of", "2026-11-03")]
    for step in steps:
        assert cli(*step).exit_code == 0, step
    kept, retired = (cli("portrait", q, "--as-of", "2026-11-01", "--json").json()["person_id"]
                     for q in ("L1", "L3"))
    before = routing_seen(cli, "L2", "2026-11-05"), owned_by(cli, "rep_li", "2026-11-05")
    assert cli("identity", "unlink", "L3", "L2", "--reason", "test").exit_code == 0
    assert cli("run", "--as-of", "2026-11-07").exit_code == 0
    left = cli("portrait", "L2", "--json").json()["person_id"]
    return cli, kept, left, before


def test_a_later_split_does_not_rewrite_the_days_its_part_was_inside_another(split_later):
    # L2's part takes back its old id on 11-07; as of a day between the merge and the
    # split, the screens showed that id's routing from before the merge (rep_wang,
    # pending), not the state L2's person had then (rep_li, contacting), which the
    # split's own log row records as the state it left
    cli, kept, left, before = split_later
    assert before == ((kept, "sales_east", "rep_li", "contacting", "2026-11-02"), [kept])
    assert routing_seen(cli, "L2", "2026-11-02") == (
        left, "sales_east", "rep_wang", "pending", "2026-11-01")  # before the merge: its own
    for day in ("2026-11-03", "2026-11-05", "2026-11-06"):
        assert routing_seen(cli, "L2", day) == (
            left, "sales_east", "rep_li", "contacting", "2026-11-02"), day
        assert routing_seen(cli, "L1", day) == (
            kept, "sales_east", "rep_li", "contacting", "2026-11-02"), day
        assert (owned_by(cli, "rep_li", day), owned_by(cli, "rep_wang", day)) == (
            sorted([kept, left]), []), day
    assert routing_seen(cli, "L2", "2026-11-07") == (
        left, "sales_east", "rep_wang", "pending", "2026-11-07")
    assert owned_by(cli, "rep_wang", "2026-11-07") == [left]
    # the log rows listed as of 11-05 are those the person's screen listed that day
    log = cli("portrait", "L2", "--as-of", "2026-11-05", "--json").json()["history"]
    assert [(r["as_of"], r["rule"], r["recorded_as"]) for r in log] == [
        ("2026-11-03", "merge", kept), ("2026-11-02", "status", kept),
        ("2026-11-01", "hot_east", None), ("2026-11-01", "hot_east", kept)]


def test_a_past_portrait_lists_the_identity_changes_made_by_then(split_later):
    # The portrait as of 11-02 listed the split of 11-07, and flagged no identity change
    # although the person's leads were joined on 11-03 and parted on 11-07
    cli, kept, left, _ = split_later

    def seen(query, *args):
        data = cli("portrait", query, "--json", *args).json()
        return ([(h["run_id"], h["change"], h["person_id"], h["old_person_ids"])
                 for h in data["identity_history"]], data["identity_history_count"],
                "identity" in data["as_of_differs"], data["identity_as_of"])

    merge, split = (3, "merge", kept, [left]), (4, "split", left, [kept])
    assert seen("L2", "--as-of", "2026-11-02") == ([], 0, True, "2026-11-07")
    assert seen("L1", "--as-of", "2026-11-02") == ([], 0, True, "2026-11-07")
    assert seen("L2", "--as-of", "2026-11-05") == ([merge], 1, True, "2026-11-07")
    assert seen("L1", "--as-of", "2026-11-05") == ([merge], 1, True, "2026-11-07")
    assert seen("L2") == ([split, merge], 2, False, None)  # the merge that retired its id
    assert seen("L1") == ([split, merge], 2, False, None)
    explain = cli("explain", "L1", "--as-of", "2026-11-05", "--json").json()
    assert (explain["as_of_differs"], explain["identity_as_of"]) == (
        ["tags", "score", "identity"], "2026-11-07")


def test_a_part_split_off_under_a_new_id_shows_the_routing_it_had_inside(tmp_path):
    # L5 joined L1's person when it arrived (11-02): split off on 11-05 under an id of
    # its own, it showed no routing at all before the split
    cli = split_cli(tmp_path)
    write(tmp_path / "n2" / "s3.csv", "lead_id,name,phone,wechat,city,created_at\n"
          "L5,王小明,13912340001,wxother5,上海,2026-11-02 09:00:00\n")
    for step in [("run", "--inbox", tmp_path / "n1", "--as-of", "2026-11-01"),
                 ("run", "--inbox", tmp_path / "n2", "--as-of", "2026-11-02"),
                 ("status", "L1", "contacting", "--as-of", "2026-11-03"),
                 ("identity", "unlink", "L1", "L5", "--reason", "test"),
                 ("run", "--as-of", "2026-11-05")]:
        assert cli(*step).exit_code == 0, step
    kept, new = (cli("portrait", q, "--json").json()["person_id"] for q in ("L1", "L5"))
    assert routing_seen(cli, "L5", "2026-11-01") == (new, None, None, None, None)
    for day in ("2026-11-02", "2026-11-04"):
        expected = routing_seen(cli, "L1", day)
        assert routing_seen(cli, "L5", day) == (new, *expected[1:]), day
    assert routing_seen(cli, "L1", "2026-11-04")[1:4] == ("sales_east", "rep_li",
                                                          "contacting")
    assert routing_seen(cli, "L5", "2026-11-05")[1:] == (
        "sales_east", "rep_wang", "pending", "2026-11-05")
    assert owned_by(cli, "rep_li", "2026-11-04") == sorted([kept, new])


def test_a_part_split_off_a_part_split_off_later_shows_the_first_persons_routing():
    # X and F merged into H on 11-03; F split off H on 11-06, X off F on 11-08: as of
    # 11-04 all three show H's routing, as of 11-07 X shows F's, before 11-03 their own
    ws = open_memory()

    def log(run, day, pid, owner, rule, old_owner=None):  # a route after the split's row
        at = dt.datetime.fromisoformat(day) + dt.timedelta(hours=rule == "dealt")
        ws.execute("INSERT INTO assignments VALUES (?, ?, ?, ?, NULL, ?, ?, ?, NULL, "
                   "'pending', ?, ?, NULL)",
                   [at, run, dt.date.fromisoformat(day), pid, "sales" if owner else None,
                    old_owner, owner, rule, rule])

    for pid, owner in (("X", "xia"), ("F", "fan"), ("H", "hu")):
        log(1, "2026-11-01", pid, owner, "dealt")
    log(2, "2026-11-03", "H", "hu", "merge", "hu")
    log(3, "2026-11-06", "F", None, "split", "hu")
    log(3, "2026-11-06", "F", "fay", "dealt")
    log(4, "2026-11-08", "X", None, "split", "fay")
    log(4, "2026-11-08", "X", "xu", "dealt")
    ws.execute("INSERT INTO identity_history VALUES (2, NULL, 'merge', 'H', ['F', 'X'], 3, "
               "''), (3, NULL, 'split', 'F', ['H'], 2, ''), (4, NULL, 'split', 'X', ['F'], 1, '')")
    for pid, owner in (("X", "xu"), ("F", "fay"), ("H", "hu")):
        ws.execute("INSERT INTO ownership VALUES (?, 'sales', ?, 'pending', NULL, NULL, NULL, "
                   "FALSE, 'dealt')", [pid, owner])

    def owners(day):
        until = dt.date.fromisoformat(day)
        rows = ws.execute(f"SELECT person_id, owner FROM ({ownership_as_of_sql(until)}) "
                          "ORDER BY 1").fetchall()
        alone = [ws.execute(f"SELECT owner FROM ({ownership_as_of_sql(until, pid)})"
                            ).fetchone()[0] for pid in ("F", "H", "X")]
        assert [owner for _, owner in rows] == alone, day
        return dict(rows)

    assert owners("2026-11-02") == {"F": "fan", "H": "hu", "X": "xia"}
    assert owners("2026-11-04") == {"F": "hu", "H": "hu", "X": "hu"}
    assert owners("2026-11-07") == {"F": "fay", "H": "hu", "X": "fay"}
    assert owners("2026-11-08") == {"F": "fay", "H": "hu", "X": "xu"}


# -- find and report channels flag a later merge or split of the persons they show ------

@pytest.fixture(scope="module")
def merged_then_split(tmp_path_factory):
    """L1 and L2 are two persons on 11-01; L3 (created 10-23: no late arrival) merges them
    the night of 11-03; `identity unlink L3 L2` splits them the night of 11-07. L4, in
    北京, is a third person no change touches. Returns what `find` (by city) and `report
    channels` said as of a few days (as_of_differs, identity_as_of) after each night."""
    tmp = tmp_path_factory.mktemp("merged_then_split")
    cli = split_cli(tmp)
    write(tmp / "n1" / "s1.csv", "lead_id,name,phone,city,created_at\n"
          "L1,王小明,13912340001,上海,2026-10-20 10:00:00\n"
          "L4,赵六,13700002222,北京,2026-10-21 10:00:00\n")
    write(tmp / "n2" / "s3.csv", "lead_id,name,phone,wechat,city,created_at\n"
          "L3,王小明,13912340001,wxbob88,上海,2026-10-23 09:00:00\n")

    def flags(*args):
        data = cli(*args, "--json").json()
        # the persons listed (find) or counted (report): the check is not of an empty set
        assert (data.get("count") or data.get("total", {}).get("persons")), args
        return data["as_of_differs"], data["identity_as_of"]

    def seen(*days):
        return {(what, day): flags(*args, "--as-of", day) for day in days
                for what, args in (("上海", ("find", "city = '上海市'")),
                                   ("北京", ("find", "city = '北京市'")),
                                   ("channels", ("report", "channels")))}

    nights = {}
    assert cli("run", "--inbox", tmp / "n1", "--as-of", "2026-11-01").exit_code == 0
    nights["before"] = seen("2026-11-02")
    assert cli("run", "--inbox", tmp / "n2", "--as-of", "2026-11-03").exit_code == 0
    nights["merged"] = seen("2026-11-02", "2026-11-03")
    assert cli("identity", "unlink", "L3", "L2", "--reason", "test").exit_code == 0
    assert cli("run", "--as-of", "2026-11-07").exit_code == 0
    nights["split"] = seen("2026-11-02", "2026-11-05", "2026-11-07")
    # the merge and the split did happen, and touched only the 上海 persons
    history = cli("portrait", "L2", "--json").json()["identity_history"]
    assert [h["change"] for h in history] == ["split", "merge"]
    return nights


STORED = ["tags", "score"]  # the stored parts, of another date than the --as-of asked


def test_find_as_of_flags_identity_when_a_later_merge_or_split_changed_a_listed_person(
        merged_then_split):
    # find listed the merged persons as of 11-02 (or 11-05, before the split) and said
    # nothing: only a lead arriving later flagged `identity`, not a later merge or split
    nights = merged_then_split
    assert nights["before"][("上海", "2026-11-02")] == (STORED, None)
    assert nights["merged"][("上海", "2026-11-02")] == ([*STORED, "identity"], "2026-11-03")
    assert nights["merged"][("上海", "2026-11-03")] == ([], None)  # the merge's own night
    assert nights["split"][("上海", "2026-11-02")] == ([*STORED, "identity"], "2026-11-07")
    assert nights["split"][("上海", "2026-11-05")] == ([*STORED, "identity"], "2026-11-07")
    assert nights["split"][("上海", "2026-11-07")] == ([], None)
    # a list without a person the merge or split changed: nothing to flag
    for night, days in (("before", ["2026-11-02"]), ("merged", ["2026-11-02"]),
                        ("split", ["2026-11-02", "2026-11-05"])):
        for day in days:
            assert nights[night][("北京", day)] == (STORED, None), (night, day)


def test_report_channels_as_of_flags_identity_when_a_later_merge_or_split_changed_a_person(
        merged_then_split):
    nights = merged_then_split
    assert nights["before"][("channels", "2026-11-02")] == (STORED, None)
    assert nights["merged"][("channels", "2026-11-02")] == (
        [*STORED, "identity"], "2026-11-03")
    assert nights["merged"][("channels", "2026-11-03")] == ([], None)
    assert nights["split"][("channels", "2026-11-02")] == ([*STORED, "identity"], "2026-11-07")
    assert nights["split"][("channels", "2026-11-05")] == ([*STORED, "identity"], "2026-11-07")
    assert nights["split"][("channels", "2026-11-07")] == ([], None)
