"""Lead lifecycle: claim, follow-up status and SLA return, sale lock, dormancy and
reactivation, and the `claim` / `status` / `sale` commands."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from leadctl.errors import InputError, NotFound, UsageError
from leadctl.routing.lifecycle import claim, record_sale, set_status
from leadctl.routing.model import period_end
from leadctl.routing.parse import load_routing_rules
from leadctl.routing.screens import ownership_as_of_sql
from leadctl.routing.stage import run_routing
from leadctl.workspace import open_memory, open_writer

DAY0 = dt.date(2026, 11, 4)

RULES = """\
capacity_period: week
pools:
  - name: sales
    allocation: round_robin
    reps: [ann, bob]
  - name: public_sea
    allocation: claim
  - name: nurture
    allocation: claim
    reps: [{name: ops, capacity: 3}]
  - name: dormant
    allocation: claim
    reps: [ops]
routes:
  - {name: hot, when: grade = 'A', pool: sales}
default_pool: nurture
lifecycle:
  lock_days: 30
  dormant_after_days: 90
  dormant_pool: dormant
  reactivate_on: [login]
  status_sla_days: {pending: 3}
  sla_return_pool: public_sea
"""


def day(n: int) -> dt.date:
    return DAY0 + dt.timedelta(days=n)


@pytest.fixture
def rules(tmp_path: Path):
    (tmp_path / "routing.yaml").write_text(RULES, encoding="utf-8")
    return load_routing_rules(tmp_path)


def make_ws(persons: list[tuple[str, float, str]]):
    ws = open_memory()
    ws.execute("CREATE OR REPLACE TABLE person_features (person_id VARCHAR, "
               "last_seen TIMESTAMP)")
    values = ", ".join(f"('{p}', TIMESTAMP '2026-10-01')" for p, _, _ in persons)
    ws.execute(f"INSERT INTO person_features VALUES {values}")
    ws.execute("INSERT INTO persons (person_id) SELECT person_id FROM person_features")
    ws.execute("INSERT INTO scores (person_id, score, grade) VALUES "
               + ", ".join(f"('{p}', {s}, '{g}')" for p, s, g in persons))
    return ws


def route(ws, rules, on: dt.date) -> dict:
    return run_routing(ws, rules, on, run_id=ws.scalar("SELECT count(*) FROM runs") + 1)


def state(ws, person: str) -> tuple:
    r = ws.rows("SELECT pool, owner, status, dormant, reason FROM ownership "
                "WHERE person_id = ?", [person])[0]
    return (r["pool"], r["owner"], r["status"], r["dormant"], r["reason"])


def last_log(ws, person: str) -> tuple:
    r = ws.rows("SELECT as_of, old_pool, new_pool, old_owner, new_owner, new_status, rule, "
                "reason FROM assignments WHERE person_id = ? ORDER BY logged_at DESC, "
                "as_of DESC, run_id DESC LIMIT 1", [person])[0]
    return tuple(r.values())


# --------------------------------------------------------------------------- claim


def test_claim_takes_the_best_waiting_leads_within_capacity(rules):
    ws = make_ws([(f"c{i}", 50 - i, "C") for i in range(1, 6)])
    route(ws, rules, DAY0)
    got = claim(ws, rules, "nurture", "ops", DAY0, n=5, run_id=9)
    assert (got["claimed"], got["count"], got["room"], got["waiting"], got["reason"]) == (
        ["c1", "c2", "c3"], 3, 0, 2, "no_capacity")
    assert state(ws, "c1") == ("nurture", "ops", "pending", False, "claimed")
    assert state(ws, "c4") == ("nurture", None, None, False, "claim_pool")
    assert last_log(ws, "c2") == (DAY0, "nurture", "nurture", None, "ops", "pending", "claim",
                                  "claimed")
    # Claimed leads are sticky: the next route run changes nothing.
    assert route(ws, rules, day(1))["changes"] == 0
    assert claim(ws, rules, "nurture", "ops", day(1), n=1)["count"] == 0  # same week: full
    assert claim(ws, rules, "nurture", "ops", day(5), n=9)["claimed"] == ["c4", "c5"]


def test_a_claim_dated_earlier_in_the_week_counts_the_whole_week(rules):
    ws = make_ws([(f"c{i}", 50 - i, "C") for i in range(1, 7)])
    route(ws, rules, day(-3))  # in the pool since the Sunday before
    assert claim(ws, rules, "nurture", "ops", DAY0, n=3)["count"] == 3  # Wednesday: full
    monday = claim(ws, rules, "nurture", "ops", day(-2), n=3)
    assert (monday["count"], monday["reason"]) == (0, "no_capacity")
    # a route dated Monday deals no more to a full rep either (ops deals nothing here)
    assert claim(ws, rules, "nurture", "ops", day(5), n=3)["count"] == 3  # next week


def test_a_claim_dated_before_the_leads_entered_the_pool_finds_none_waiting(rules):
    ws = make_ws([(f"c{i}", 50 - i, "C") for i in range(1, 4)])
    route(ws, rules, DAY0)
    early = claim(ws, rules, "nurture", "ops", day(-1), n=1)
    # it said 3 still waiting, though none could be claimed on that day
    assert (early["count"], early["waiting"], early["reason"]) == (0, 0, "pool_empty")


def test_a_claim_dated_before_a_persons_last_logged_change_passes_it_over(rules):
    ws = make_ws([("c1", 50, "C"), ("c2", 40, "C")])
    route(ws, rules, DAY0)
    # A merge on day 2 made c1 as it is now (its log row, pool and owner unchanged).
    ws.execute("INSERT INTO assignments (logged_at, run_id, as_of, person_id, old_pool, "
               "new_pool, rule, reason) VALUES (now(), 9, ?, 'c1', 'nurture', 'nurture', "
               "'merge', 'merge')", [day(2)])
    early = claim(ws, rules, "nurture", "ops", day(1), n=2)
    assert (early["claimed"], early["waiting"]) == (["c2"], 0)
    assert claim(ws, rules, "nurture", "ops", day(2))["claimed"] == ["c1"]


def test_claim_refuses_non_members_dealing_pools_and_unknown_pools(rules):
    ws = make_ws([("c1", 10, "C")])
    route(ws, rules, DAY0)
    with pytest.raises(UsageError, match=r"rep 'ann' is not a rep of pool 'nurture' "
                                         r"\(reps: ops\)"):
        claim(ws, rules, "nurture", "ann", DAY0)
    with pytest.raises(UsageError, match="pool 'sales' deals its leads"):
        claim(ws, rules, "sales", "ann", DAY0)
    with pytest.raises(UsageError, match="unknown pool 'attic'"):
        claim(ws, rules, "attic", "ann", DAY0)
    with pytest.raises(UsageError, match="unknown rep 'zed'"):
        claim(ws, rules, "public_sea", "zed", DAY0)


# --------------------------------------------------------------------------- status + SLA


def test_status_sla_sends_the_lead_back_to_the_pool(rules):
    ws = make_ws([("a1", 90, "A")])
    route(ws, rules, DAY0)
    assert state(ws, "a1") == ("sales", "ann", "pending", False, "dealt")
    assert route(ws, rules, day(3))["changes"] == 0  # held 3 days: within the SLA
    summary = route(ws, rules, day(4))
    assert summary["causes"] == {"sla_expired": 1}
    assert state(ws, "a1") == ("public_sea", None, None, False, "sla_returned")
    assert last_log(ws, "a1") == (day(4), "sales", "public_sea", "ann", None, None,
                                  "lifecycle.status_sla_days.pending", "sla_expired")
    # Any rep may claim it from the public sea.
    assert claim(ws, rules, "public_sea", "bob", day(4))["claimed"] == ["a1"]


def test_a_lead_dealt_to_another_rep_starts_its_status_age_again(rules, tmp_path):
    # ann leaves the pool on day 2: bob is dealt her pending lead, whose SLA (3 days) then
    # counts from day 2, as for a lead new to him; the state rebuilt as of a past date
    # (portrait, explain) dates it the same.
    ws = make_ws([("a1", 90, "A")])
    route(ws, rules, DAY0)
    (tmp_path / "routing.yaml").write_text(RULES.replace("reps: [ann, bob]", "reps: [bob]"),
                                           encoding="utf-8")
    without_ann = load_routing_rules(tmp_path)
    assert route(ws, without_ann, day(2))["causes"] == {"rep_removed": 1}
    assert ws.rows("SELECT owner, status, status_since FROM ownership") == [
        {"owner": "bob", "status": "pending", "status_since": day(2)}]
    assert route(ws, without_ann, day(5))["changes"] == 0  # held 3 days: within the SLA
    rebuilt = ws.rows(f"SELECT owner, status_since FROM ({ownership_as_of_sql(day(3))})")
    assert rebuilt == [{"owner": "bob", "status_since": day(2)}]
    assert route(ws, without_ann, day(6))["causes"] == {"sla_expired": 1}


def test_a_rep_removed_from_a_claim_pool_logs_the_pools_allocation_as_its_rule(rules,
                                                                              tmp_path):
    # The log row's rule was empty for a claim pool (a dealing pool's names its
    # allocation, which deals the lead again): the lead now waits for a claim.
    ws = make_ws([("c1", 50, "C"), ("a1", 90, "A")])
    route(ws, rules, DAY0)
    claim(ws, rules, "nurture", "ops", DAY0, n=1)
    (tmp_path / "routing.yaml").write_text(
        RULES.replace("reps: [{name: ops, capacity: 3}]", "reps: [{name: ed, capacity: 3}]")
        .replace("reps: [ann, bob]", "reps: [bob]"), encoding="utf-8")
    assert route(ws, load_routing_rules(tmp_path), day(1))["causes"] == {"rep_removed": 2}
    assert state(ws, "c1") == ("nurture", None, None, False, "claim_pool")
    assert last_log(ws, "c1") == (day(1), "nurture", "nurture", "ops", None, None,
                                  "allocation.claim", "rep_removed")
    assert last_log(ws, "a1") == (day(1), "sales", "sales", "ann", "bob", "pending",
                                  "allocation.round_robin", "rep_removed")


def test_a_sale_of_a_lead_claimed_from_a_pool_listing_no_reps_moves_it_to_the_sellers(rules):
    # public_sea lists no reps (any rep may claim from it): it is no rep's pool, and the
    # sold person goes to bob's.
    ws = make_ws([("a1", 90, "A")])
    route(ws, rules, DAY0)
    route(ws, rules, day(4))  # the SLA sends it to public_sea
    claim(ws, rules, "public_sea", "bob", day(4))
    sold = record_sale(ws, rules, "a1", "bob", day(5))
    assert (sold["pool"], state(ws, "a1")) == ("sales", ("sales", "bob", "closed", False,
                                                         "sale"))


def test_a_reassigning_route_leaves_a_lead_the_sla_sent_back(tmp_path):
    (tmp_path / "routing.yaml").write_text(
        RULES.replace("pool: sales}", "pool: sales, reassign: true}"), encoding="utf-8")
    rules = load_routing_rules(tmp_path)
    ws = make_ws([("a1", 90, "A"), ("a2", 80, "A")])
    route(ws, rules, DAY0)
    ws.execute("UPDATE ownership SET pool = 'public_sea', owner = NULL, status = NULL, "
               "reason = 'claim_pool' WHERE person_id = 'a2'")  # routed there earlier
    assert route(ws, rules, day(4))["causes"] == {"sla_expired": 1, "reassigned": 1}
    # The same day again, and the next: it waits for a claim (it bounced back to sales,
    # and was dealt again, on every second route).
    assert [route(ws, rules, day(n))["changes"] for n in (4, 5)] == [0, 0]
    assert state(ws, "a1") == ("public_sea", None, None, False, "sla_returned")
    assert claim(ws, rules, "public_sea", "bob", day(5))["claimed"] == ["a1"]
    assert state(ws, "a1")[:2] == ("public_sea", "bob")


def test_set_status_logs_changes_and_checks_the_owner(rules):
    ws = make_ws([("a1", 90, "A"), ("c1", 10, "C")])
    route(ws, rules, DAY0)
    got = set_status(ws, rules, "a1", "contacting", day(1), rep="ann", run_id=5)
    assert (got["old_status"], got["status"], got["changed"]) == ("pending", "contacting", True)
    assert last_log(ws, "a1") == (day(1), "sales", "sales", "ann", "ann", "contacting",
                                  "status", "status_change")
    assert set_status(ws, rules, "a1", "contacting", day(2))["changed"] is False
    assert route(ws, rules, day(6))["changes"] == 0  # contacting has no SLA
    with pytest.raises(InputError, match="person a1 is owned by ann, not bob"):
        set_status(ws, rules, "a1", "appointment", day(2), rep="bob")
    with pytest.raises(InputError, match=r"person c1 has no owner \(it waits in pool nurture"):
        set_status(ws, rules, "c1", "contacting", day(2))
    with pytest.raises(UsageError, match="unknown rep 'nobody'"):
        set_status(ws, rules, "a1", "appointment", day(2), rep="nobody")
    with pytest.raises(UsageError, match="unknown status 'won'"):
        set_status(ws, rules, "a1", "won", day(2))
    with pytest.raises(NotFound,
                       match=r"no lead or person matches 'zz' \(tried lead id, person id\)"):
        set_status(ws, rules, "zz", "closed", day(2))


def test_rep_actions_are_not_dated_before_the_persons_last_change(rules):
    ws = make_ws([("a1", 90, "A"), ("c1", 10, "C")])
    route(ws, rules, day(2))  # a1 dealt to ann, c1 waits in nurture, both on day 2
    with pytest.raises(UsageError, match=r"person a1 last changed on 2026-11-06 \(hot\): a "
                                         r"status change cannot be dated before it"):
        set_status(ws, rules, "a1", "contacting", day(1))
    with pytest.raises(UsageError, match="a sale cannot be dated before it"):
        record_sale(ws, rules, "a1", "ann", day(1))
    assert claim(ws, rules, "nurture", "ops", day(1))["claimed"] == []  # not there yet
    assert claim(ws, rules, "nurture", "ops", day(2))["claimed"] == ["c1"]
    assert set_status(ws, rules, "a1", "contacting", day(2))["changed"] is True  # same day


# --------------------------------------------------------------------------- sale + lock


def test_sale_locks_the_person_to_the_rep(rules):
    ws = make_ws([("a1", 90, "A"), ("a2", 80, "A")])
    route(ws, rules, DAY0)
    sold = record_sale(ws, rules, "a2", "bob", day(1), amount=199.0, run_id=3)
    assert (sold["first_sale"], sold["locked_until"], sold["pool"]) == (True, "2026-12-05",
                                                                         "sales")
    assert state(ws, "a2") == ("sales", "bob", "closed", False, "sale")
    with pytest.raises(InputError, match="person a2 is locked to bob until 2026-12-05 "
                                         r"\(do-not-disturb after a sale\)"):
        record_sale(ws, rules, "a2", "ann", day(10))
    # Once the lock is over, a closed lead still stays (a1 went dormant meanwhile).
    assert route(ws, rules, day(100))["causes"] == {"closed": 1, "no_intent": 1}
    assert state(ws, "a2") == ("sales", "bob", "closed", False, "sale")
    assert ws.rows("SELECT person_id, rep, amount, locked_until FROM sales") == [
        {"person_id": "a2", "rep": "bob", "amount": 199.0,
         "locked_until": dt.date(2026, 12, 5)}]
    # After the lock another rep may sell; a repeat sale is not a first sale.
    again = record_sale(ws, rules, "a2", "ann", day(101))
    assert (again["first_sale"], state(ws, "a2")[1]) == (False, "ann")


def test_a_sale_from_a_pool_the_rep_is_not_in_moves_the_person_to_the_reps_pool(rules):
    ws = make_ws([("c1", 10, "C"), ("c2", 10, "C")])
    route(ws, rules, DAY0)  # grade C: both go to nurture (ops' pool)
    sold = record_sale(ws, rules, "c1", "bob", day(1))
    assert (sold["pool"], sold["previous"]["pool"]) == ("sales", "nurture")
    assert state(ws, "c1") == ("sales", "bob", "closed", False, "sale")
    assert last_log(ws, "c1")[1:3] == ("nurture", "sales")
    record_sale(ws, rules, "c2", "ops", day(1))  # ops works in nurture: it stays there
    assert state(ws, "c2") == ("nurture", "ops", "closed", False, "sale")


def test_locked_persons_are_skipped_by_routing_while_locked(rules, tmp_path):
    ws = make_ws([("a1", 90, "A"), ("a3", 70, "A")])
    route(ws, rules, DAY0)
    assert (state(ws, "a1")[1], state(ws, "a3")[1]) == ("ann", "bob")
    record_sale(ws, rules, "a1", "ann", DAY0)
    set_status(ws, rules, "a3", "contacting", DAY0)
    # ann leaves the sales pool: her unlocked leads are dealt again, the locked one stays.
    (tmp_path / "routing.yaml").write_text(RULES.replace("reps: [ann, bob]",
                                                         "reps: [bob, cy]"), encoding="utf-8")
    summary = route(ws, load_routing_rules(tmp_path), day(1))
    assert summary["causes"] == {"locked": 1, "sticky": 1}
    assert state(ws, "a1") == ("sales", "ann", "closed", False, "sale")


def test_sale_accepts_a_lead_id(rules):
    ws = make_ws([("a1", 90, "A")])
    ws.execute("INSERT INTO leads (lead_key, source, lead_id) VALUES (1, 'sem', 'BD100001')")
    ws.execute("INSERT INTO person_leads VALUES (1, 'a1')")
    assert record_sale(ws, rules, "BD100001", "bob", DAY0)["person_id"] == "a1"
    with pytest.raises(UsageError, match="unknown rep 'eve'"):
        record_sale(ws, rules, "a1", "eve", DAY0)


# --------------------------------------------------------------------------- dormancy


def test_no_clear_intent_for_n_days_moves_to_the_dormant_pool(rules):
    ws = make_ws([("c1", 10, "C"), ("a1", 90, "A")])
    route(ws, rules, DAY0)
    set_status(ws, rules, "a1", "contacting", day(1))
    set_status(ws, rules, "a1", "clear_intent", day(10))
    set_status(ws, rules, "a1", "unclear_intent", day(20))  # intent lost: clock from day 20
    assert route(ws, rules, day(89))["changes"] == 0
    summary = route(ws, rules, day(90))
    assert summary["details"] == [{
        "person_id": "c1", "from": {"pool": "nurture", "owner": None, "status": None},
        "to": {"pool": "dormant", "owner": None, "status": None},
        "rule": "lifecycle.dormant_after_days", "reason": "no_intent"}]
    assert state(ws, "c1") == ("dormant", None, None, True, "dormant")
    assert route(ws, rules, day(109))["changes"] == 0
    route(ws, rules, day(110))
    assert state(ws, "a1") == ("dormant", None, None, True, "dormant")
    assert last_log(ws, "a1")[3:] == ("ann", None, None, "lifecycle.dormant_after_days",
                                      "no_intent")


def test_reactivate_when_keeps_a_person_it_holds_for_out_of_dormancy(tmp_path):
    (tmp_path / "routing.yaml").write_text(RULES.replace(
        "  reactivate_on: [login]", "  reactivate_on: [login]\n  reactivate_when: score >= 30"),
        encoding="utf-8")
    rules = load_routing_rules(tmp_path)
    ws = make_ws([("c1", 10, "C"), ("c2", 20, "C")])
    route(ws, rules, DAY0)
    assert route(ws, rules, day(90))["causes"] == {"no_intent": 2}
    ws.execute("UPDATE scores SET score = 40 WHERE person_id = 'c2'")  # now it holds
    assert route(ws, rules, day(91))["causes"] == {"dormant": 1, "reactivated": 1}
    assert state(ws, "c2") == ("nurture", None, None, False, "claim_pool")
    # it holds still: c2 does not go dormant again, and routing again changes nothing
    assert route(ws, rules, day(181))["causes"] == {"dormant": 1, "waiting": 1}
    assert route(ws, rules, day(181))["changes"] == 0


def test_new_activity_reactivates_a_dormant_person(rules):
    ws = make_ws([("c1", 10, "C"), ("c2", 10, "C"), ("c3", 10, "C")])
    route(ws, rules, DAY0)
    route(ws, rules, day(90))
    assert [state(ws, p)[0] for p in ("c1", "c2", "c3")] == ["dormant"] * 3
    ws.execute("INSERT INTO subject_persons (subject, person_id) VALUES "
               "('person:c1', 'c1'), ('person:c2', 'c2')")
    ws.execute("INSERT INTO events (subject, event_type, ts) VALUES "
               "('person:c1', 'login', TIMESTAMP '2027-01-20 09:00:00'), "  # before dormancy
               "('person:c1', 'login', TIMESTAMP '2027-02-07 09:00:00'), "
               "('person:c2', 'page_view', TIMESTAMP '2027-02-07 09:00:00')")  # not a trigger
    ws.execute("UPDATE scores SET grade = 'A' WHERE person_id = 'c1'")
    # An event on the as-of day itself does not count yet (the day is not complete).
    assert route(ws, rules, dt.date(2027, 2, 7))["changes"] == 0
    summary = route(ws, rules, dt.date(2027, 2, 8))
    assert summary["causes"]["reactivated"] == 1
    assert state(ws, "c1") == ("sales", "ann", "pending", False, "dealt")
    assert last_log(ws, "c1")[1:] == ("dormant", "sales", None, "ann", "pending", "hot",
                                      "reactivated")
    assert state(ws, "c2")[0] == "dormant"
    # A new lead (last_seen) is activity too.
    ws.execute("UPDATE person_features SET last_seen = TIMESTAMP '2027-02-08 10:00:00' "
               "WHERE person_id = 'c3'")
    route(ws, rules, dt.date(2027, 2, 9))
    assert state(ws, "c3") == ("nurture", None, None, False, "claim_pool")


# --------------------------------------------------------------------------- CLI

TAGS = "tags:\n  - {name: n_orders, kind: metric, event: order_paid, agg: count}\n"


def test_lifecycle_commands(tmp_path, cli):
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    (rules_dir / "tags.yaml").write_text(TAGS, encoding="utf-8")
    (rules_dir / "routing.yaml").write_text(RULES, encoding="utf-8")
    cli.rules = rules_dir
    with open_writer(cli.db, create=True) as ws:
        ws.execute("CREATE OR REPLACE TABLE person_features AS SELECT * FROM (VALUES "
                   "('a1', TIMESTAMP '2026-10-01'), ('c1', TIMESTAMP '2026-10-01')) "
                   "AS t(person_id, last_seen)")
        ws.execute("INSERT INTO persons (person_id) VALUES ('a1'), ('c1')")
        ws.execute("INSERT INTO scores (person_id, score, grade) VALUES "
                   "('a1', 90, 'A'), ('c1', 10, 'C')")
    preview = cli("route", "--as-of", "2026-11-04", "--dry-run", "--json")
    assert preview.exit_code == 0, preview.stderr
    assert preview.json()["changes"] == 2
    assert cli("route", "--as-of", "2026-11-04", "--json").json()["changes"] == 2
    assert cli("route", "--as-of", "2026-11-04", "--json").json()["changes"] == 0
    claimed = cli("claim", "nurture", "--rep", "ops", "--n", "2", "--as-of", "2026-11-04",
                  "--json")
    assert claimed.exit_code == 0 and claimed.json()["claimed"] == ["c1"]
    status = cli("status", "a1", "contacting", "--rep", "ann", "--as-of", "2026-11-05")
    assert status.exit_code == 0
    assert status.stdout.strip() == "a1: pending → contacting (owner ann)"
    sold = cli("sale", "a1", "--rep", "ann", "--as-of", "2026-11-06", "--json")
    assert sold.exit_code == 0 and sold.json()["locked_until"] == "2026-12-06"
    refused = cli("sale", "a1", "--rep", "bob", "--as-of", "2026-11-07")
    assert refused.exit_code == 2
    assert refused.stderr == ("error: person a1 is locked to ann until 2026-12-06 "
                              "(do-not-disturb after a sale)\n")
    missing = cli("status", "nobody", "closed")
    assert missing.exit_code == 1
    # a refused or failed rep action is in the run log too (it left none before)
    log = cli("runs", "--json").json()
    assert [(r["command"], r["outcome"]) for r in log] == [
        ("status", "failed"), ("sale", "failed"), ("sale", "ok"), ("status", "ok"),
        ("claim", "ok"), ("route", "ok"), ("route", "ok")]
    assert [r["error"] for r in log[:2]] == [
        missing.stderr.removeprefix("error: ").strip(),
        "person a1 is locked to ann until 2026-12-06 (do-not-disturb after a sale)"]


def test_a_capacity_period_ends_on_its_last_day():
    wednesday = dt.date(2026, 2, 11)
    assert [period_end(p, wednesday) for p in ("day", "week", "month")] == [
        wednesday, dt.date(2026, 2, 15), dt.date(2026, 2, 28)]
    assert period_end("month", dt.date(2026, 12, 31)) == dt.date(2026, 12, 31)
