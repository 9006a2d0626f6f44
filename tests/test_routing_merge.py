"""Ownership through identity merges and splits (issue 15): the merged person's pool,
owner, status and sale lock follow `on_merge` in routing.yaml, two reps' locks are a
conflict (`leadctl identity conflicts`), a split leaves the state with the part keeping
the id, and every decision is one assignment row (rule merge / split)."""

from __future__ import annotations

import datetime as dt
import hashlib
import textwrap
from pathlib import Path

import pytest

from leadctl.identity.config import IdentityConfig
from leadctl.identity.resolve import resolve_identities
from leadctl.identity.tables import ID_MOVES
from leadctl.routing.merge import (
    apply_merge_sql,
    candidates_sql,
    conflicts_insert_sql,
    fold_intent_sql,
    kept_sql,
    locks_before_sql,
    preferred_ids_sql,
    split_joins_apply_sql,
    split_joins_sql,
    split_log_sql,
)
from leadctl.routing.model import DEFAULT_MERGE_KEEP
from leadctl.routing.sql import rep_period_load_sql
from leadctl.ruleset import load_rules
from leadctl.spark.translate import translate
from leadctl.workspace import open_memory, reading
from tests import test_identity_support as support
from tests.conftest import Cli, write
from tests.scoring_cases import TAGS

ROUTING = """\
pools:
  - name: sales
    allocation: round_robin
    reps: [ann, bob]
routes:
  - {name: all, pool: sales}
lifecycle:
  lock_days: 180
"""
HEADER = "lead_id,phone,email,created_at\n"
X_PHONE, Y_EMAIL = "13811112222", "y@qq.com"
# x1 is X's lead (phone), y1 is Y's (e-mail, older: without a preference Y's id survives).
FIRST = f"x1,{X_PHONE},,2026-10-01 10:00\ny1,,{Y_EMAIL},2026-09-02 10:00\n"
BRIDGE = f"b1,{X_PHONE},{Y_EMAIL},2026-10-20 10:00\n"


def pid(lead_id: str, source: str = "leads") -> str:
    return "P" + hashlib.md5(f"{source}|{lead_id}".encode()).hexdigest()[:12]


X, Y = pid("x1"), pid("y1")


def rules_dir(folder: Path, on_merge: str = "") -> Path:
    folder.mkdir()
    (folder / "tags.yaml").write_text(TAGS, encoding="utf-8")
    (folder / "scoring.yaml").write_text("grades: {A: 0}\nrules:\n  - {name: base, points: 10}\n",
                                         encoding="utf-8")
    (folder / "routing.yaml").write_text(ROUTING + textwrap.dedent(on_merge), encoding="utf-8")
    return folder


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "ws.duckdb", rules_dir(tmp_path / "rules"))


def night(cli: Cli, rows: str | None, day: str, name: str = "leads") -> dict:
    """One `leadctl run` over a new inbox file `name.csv` (no inbox when `rows` is None)."""
    inbox = []
    if rows is not None:
        folder = cli.db.parent / f"inbox_{day}_{name}"
        folder.mkdir()
        write(folder / f"{name}.csv", HEADER + rows)
        inbox = ["--inbox", folder]
    result = cli("run", *inbox, "--as-of", day, "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    return result.json()


def state(cli: Cli, query: str) -> tuple:
    p = cli("portrait", query, "--json").json()
    return p["person_id"], p["owner"], p["status"], p["locked"]


def query(cli: Cli, sql: str) -> list[tuple]:
    with reading(cli.db) as ws:
        return [tuple(r.values()) for r in ws.rows(sql)]


def identity_log(cli: Cli) -> list[tuple]:
    return query(cli, "SELECT person_id, old_pool, new_pool, old_owner, new_owner, old_status, "
                      "new_status, rule, reason FROM assignments WHERE rule IN ('merge', 'split')"
                      " ORDER BY logged_at, person_id")


def states_logged(cli: Cli) -> list[tuple]:
    """(person, ownership reason, the state reason of its latest log row) of every person."""
    return query(cli, "SELECT o.person_id, o.reason, a.state_reason FROM ownership o "
                      "JOIN assignments a ON a.person_id = o.person_id QUALIFY row_number() "
                      "OVER (PARTITION BY o.person_id ORDER BY a.logged_at DESC, a.run_id DESC)"
                      " = 1 ORDER BY 1")


def sold(cli: Cli, query_text: str, rep: str, day: str) -> None:
    result = cli("sale", query_text, "--rep", rep, "--as-of", day, "--json")
    assert result.exit_code == 0, result.stdout + result.stderr


def test_a_sold_person_merged_into_another_reps_person_keeps_the_sale_and_lock(cli):
    night(cli, FIRST, "2026-11-01")
    assert state(cli, "x1") == (X, "ann", "pending", False)
    assert state(cli, "y1") == (Y, "bob", "pending", False)
    sold(cli, "x1", "ann", "2026-11-02")
    sales = query(cli, "SELECT * FROM sales")

    summary = night(cli, BRIDGE, "2026-11-03", "bridge")

    # The locked person's id survives (preferred over the older Y); either old id finds it.
    for old in ("x1", "y1", "b1", X, Y):
        assert state(cli, old) == (X, "ann", "closed", True)
    assert cli("portrait", Y, "--json").json()["locked_until"] == "2027-05-01"
    assert query(cli, "SELECT * FROM sales") == sales
    assert identity_log(cli) == [(X, "sales", "sales", "ann", "ann", "closed", "closed", "merge",
                                  f"merge: {Y} into {X}; kept the state of {X} (by lock)")]
    assert summary["conflicts"] == 0
    assert summary["stages"]["resolve"]["ownership"] == {"merged": 1, "split": 0,
                                                         "conflicts": 0}
    assert states_logged(cli) == [(X, "sale", "sale")]  # the merge row: the kept state's
    assert summary["stages"]["route"]["changes"] == 0  # routing found nothing left to fix
    result = cli("identity", "conflicts", "--json")
    assert (result.exit_code, result.json()) == (0, {"conflicts": []})


def test_resolve_alone_carries_the_state_before_any_route(cli):
    night(cli, FIRST, "2026-11-01")
    sold(cli, "x1", "ann", "2026-11-02")
    assert cli("ingest", write(cli.db.parent / "bridge.csv", HEADER + BRIDGE)).exit_code == 0
    result = cli("resolve", "--as-of", "2026-11-03", "--json")
    assert result.exit_code == 0
    assert (result.json()["merges"], result.json()["conflicts"]) == (1, 0)
    assert state(cli, Y) == (X, "ann", "closed", True)
    assert query(cli, "SELECT person_id, owner FROM ownership ORDER BY person_id") == [
        (X, "ann")]


def test_two_locks_of_different_reps_keep_the_earlier_sale_and_are_a_conflict(cli):
    night(cli, FIRST, "2026-11-01")
    sold(cli, "x1", "ann", "2026-11-02")
    sold(cli, "y1", "bob", "2026-11-03")

    summary = night(cli, BRIDGE, "2026-11-04", "bridge")

    # Both ids are locked: the earlier sale (ann's on X) is kept, and so is X's id (though
    # Y is older): the rep who keeps the customer keeps the id her records name.
    assert state(cli, Y) == state(cli, "y1") == (X, "ann", "closed", True)
    assert summary["conflicts"] == 1
    assert identity_log(cli) == [(
        X, "sales", "sales", "ann", "ann", "closed", "closed", "merge",
        f"merge: {Y} into {X}; kept the state of {X} (by lock); conflict: active lock of bob "
        "not kept, see leadctl identity conflicts")]
    result = cli("identity", "conflicts", "--json")
    assert result.exit_code == 0
    conflicts = result.json()["conflicts"]
    for c in conflicts:
        assert c.pop("detected_at").startswith(str(dt.date.today().year))
    assert conflicts == [{
        "person_id": X,
        "kept": {"rep": "ann", "sold_at": "2026-11-02", "locked_until": "2027-05-01",
                 "from_person_id": X},
        "other": {"rep": "bob", "sold_at": "2026-11-03", "locked_until": "2027-05-02",
                  "from_person_id": Y},
        "old_person_ids": [Y], "recorded_as": X, "run_id": summary["run_id"],
        "as_of": "2026-11-04", "status": "open"}]
    text = cli("identity", "conflicts")
    assert text.exit_code == 0
    assert "1 ownership conflict(s)" in text.stdout and "bob" in text.stdout
    assert len(query(cli, "SELECT * FROM sales")) == 2


@pytest.mark.parametrize("json_out", [False, True])
def test_resolve_dry_run_warns_of_the_ownership_conflicts_it_would_make(cli, json_out):
    # the dry run's summary keeps them under "resolve": they were never warned about
    night(cli, FIRST, "2026-11-01")
    sold(cli, "x1", "ann", "2026-11-02")
    sold(cli, "y1", "bob", "2026-11-03")
    assert cli("ingest", write(cli.db.parent / "bridge.csv", HEADER + BRIDGE)).exit_code == 0
    dry = cli("resolve", "--as-of", "2026-11-04", "--dry-run", *(["--json"] if json_out else []))
    assert dry.exit_code == 0
    assert dry.stderr.splitlines()[0] == (
        "warning: 1 ownership conflict(s): a merge would keep one state and not another "
        "rep's active sale lock (on_merge: keep); see `leadctl identity conflicts`")
    if json_out:
        assert dry.json()["resolve"]["conflicts"] == 1


def test_without_locks_the_owner_with_the_most_advanced_status_wins_and_intent_follows(cli):
    night(cli, FIRST, "2026-11-01")
    assert cli("status", "x1", "appointment", "--as-of", "2026-11-02").exit_code == 0
    night(cli, BRIDGE, "2026-11-03", "bridge")
    # No lock: both are held by a rep; ann's appointment wins, and with it X's id (not the
    # older Y's).
    assert state(cli, "y1") == (X, "ann", "appointment", False)
    assert identity_log(cli)[0][-1] == (f"merge: {Y} into {X}; kept the state of {X} "
                                        "(by sales_pool_status)")
    assert query(cli, "SELECT * FROM lead_intent") == [(X, dt.date(2026, 11, 2))]


def test_a_tie_under_the_policy_keeps_the_oldest_id_and_its_state(cli):
    night(cli, FIRST, "2026-11-01")  # both dealt that day, both pending: the policy ties
    night(cli, BRIDGE, "2026-11-03", "bridge")
    assert state(cli, "x1") == (Y, "bob", "pending", False)  # Y is older (first seen 09-02)
    assert identity_log(cli)[0][-1] == f"merge: {X} into {Y}; kept the state of {Y} (tie)"


def test_the_preferred_ids_rank_every_routed_state_as_the_policy_does():
    ws = open_memory()
    ws.execute("INSERT INTO ownership (person_id, pool, owner, status, assigned_at) VALUES "
               "('Pa', 'nurture', NULL, 'pending', '2026-10-25'), "
               "('Pb', 'sales', 'ann', 'closed', '2026-10-27'), "
               "('Pc', 'sales', 'bob', 'pending', '2026-10-25')")
    day = dt.date(2026, 11, 1)
    ws.execute(locks_before_sql(day))  # as resolve_with_ownership takes it, and nothing moves
    ws.execute(f"CREATE TEMP TABLE {ID_MOVES} (old_id VARCHAR, comp BIGINT)")
    ranks = {keep: dict(ws.execute(preferred_ids_sql(day, keep)).fetchall()) for keep in (
        ("earliest_assignment",), ("sales_pool_status", "earliest_assignment"))}
    # an unowned state ranks too (the policy may keep it), and a tie is a tie
    assert ranks == {("earliest_assignment",): {"Pa": 1, "Pc": 1, "Pb": 2},
                     ("sales_pool_status", "earliest_assignment"): {"Pb": 1, "Pc": 2, "Pa": 3}}


def test_the_policy_is_configurable_and_a_lock_it_drops_is_a_conflict(tmp_path):
    cli = Cli(tmp_path / "ws.duckdb", rules_dir(tmp_path / "rules", """\
        on_merge:
          keep: [earliest_assignment, lock]
        """))
    x, y = pid("x1", "x"), pid("y1", "y")
    night(cli, f"y1,,{Y_EMAIL},2026-09-02 10:00\n", "2026-11-01", "y")  # ann, 11-01
    night(cli, f"x1,{X_PHONE},,2026-10-01 10:00\n", "2026-11-02", "x")  # ann, 11-02
    sold(cli, "x1", "bob", "2026-11-02")  # bob takes it over: assigned 11-02, locked

    summary = night(cli, BRIDGE, "2026-11-03", "bridge")

    # the kept state's id survives (not the locked one: the policy put assignment first)
    assert state(cli, x) == (y, "ann", "pending", False)
    assert identity_log(cli) == [(
        y, "sales", "sales", "ann", "ann", "pending", "pending", "merge",
        f"merge: {x} into {y}; kept the state of {y} (by earliest_assignment); conflict: "
        "active lock of bob not kept, see leadctl identity conflicts")]
    assert summary["conflicts"] == 1
    # the day before, the state the merge kept: ann's, without bob's lock (it was shown)
    before = cli("portrait", x, "--as-of", "2026-11-02", "--json").json()
    assert (before["owner"], before["locked"], before["locked_until"]) == ("ann", False, None)
    assert cli("find", "locked_until is not null", "--as-of", "2026-11-02",
               "--count").stdout == "0\n"
    (conflict,) = cli("identity", "conflicts", "--json").json()["conflicts"]
    assert (conflict["kept"], conflict["other"]) == (
        {"rep": "ann", "sold_at": None, "locked_until": None, "from_person_id": y},
        {"rep": "bob", "sold_at": "2026-11-02", "locked_until": "2027-05-01",
         "from_person_id": x})


def test_the_surviving_id_and_the_kept_state_are_one_persons_with_a_sale_on_a_retired_id(
        tmp_path):
    """A lock's sale is the earliest of its rep's on the person or an id it retired, for
    the id that survives as for the state kept: P (bob's sale on R, retired into P, 11-02;
    again on P 11-04) against Q (ann's, 11-03) keeps P's id and bob's lock, not Q's."""
    first = Cli(tmp_path / "ws.duckdb", rules_dir(tmp_path / "first", """\
        on_merge:
          keep: [earliest_assignment]
        """))
    p, q = pid("p1"), pid("q1")
    night(first, "r1,13811120001,,2026-10-03 10:00\np1,13811120002,p@qq.com,2026-10-01 10:00\n"
                 "q1,,q@qq.com,2026-10-02 10:00\n", "2026-11-01")
    sold(first, "r1", "bob", "2026-11-02")
    night(first, "l1,13811120001,p@qq.com,2026-10-20 10:00\n", "2026-11-03", "b1")
    assert state(first, "r1") == (p, "ann", "pending", False)  # R merged in, bob's lock lost
    sold(first, "q1", "ann", "2026-11-03")
    sold(first, "p1", "bob", "2026-11-04")
    cli = Cli(first.db, rules_dir(tmp_path / "second"))  # the default policy: lock first

    night(cli, "l2,13811120002,q@qq.com,2026-10-21 10:00\n", "2026-11-05", "b2")

    assert state(cli, "l2") == (p, "bob", "closed", True)
    assert identity_log(cli)[-1] == (
        p, "sales", "sales", "bob", "bob", "closed", "closed", "merge",
        f"merge: {q} into {p}; kept the state of {p} (by lock); conflict: active lock of ann "
        "not kept, see leadctl identity conflicts")
    (conflict,) = [c for c in cli("identity", "conflicts", "--json").json()["conflicts"]
                   if c["run_id"] == 6]
    assert (conflict["kept"], conflict["other"]) == (
        {"rep": "bob", "sold_at": "2026-11-02", "locked_until": "2027-05-03",
         "from_person_id": p},
        {"rep": "ann", "sold_at": "2026-11-03", "locked_until": "2027-05-02",
         "from_person_id": q})


def test_a_sale_that_leaves_with_a_split_part_ranks_neither_the_id_nor_the_state(tmp_path):
    """P's earliest lock (bob, 11-02) is a sale under R, retired into P; the night R's lead
    splits off P (an unlink) and the rest of P merges with Q (ann's sale, 11-03), that
    sale goes with R: both rankings count only P's own (11-04), so Q's id survives with
    Q's state (P's id survived with ann's: the id was ranked by R's sale, the state not)."""
    first = Cli(tmp_path / "ws.duckdb", rules_dir(tmp_path / "first", """\
        on_merge:
          keep: [earliest_assignment]
        """))
    p, q, r = pid("p1"), pid("q1"), pid("r1")
    night(first, "r1,13811120001,,2026-10-03 10:00\np1,13811120002,p@qq.com,2026-10-01 10:00\n"
                 "q1,,q@qq.com,2026-10-02 10:00\n", "2026-11-01")
    sold(first, "r1", "bob", "2026-11-02")
    night(first, "l1,13811120001,p@qq.com,2026-10-20 10:00\n", "2026-11-03", "b1")
    sold(first, "q1", "ann", "2026-11-03")
    sold(first, "p1", "bob", "2026-11-04")
    assert state(first, "r1") == (p, "bob", "closed", True)
    cli = Cli(first.db, rules_dir(tmp_path / "second"))  # the default policy: lock first
    assert cli("identity", "unlink", "r1", "l1", "--reason", "two people").exit_code == 0

    night(cli, "l2,13811120002,q@qq.com,2026-10-21 10:00\n", "2026-11-05", "b2")

    assert state(cli, "p1") == state(cli, "q1") == (q, "ann", "closed", True)
    assert state(cli, "r1") == (r, "bob", "closed", True)  # R takes its sale's lock along
    assert [row[-1] for row in identity_log(cli)[-2:]] == [
        f"merge: {p} into {q}; kept the state of {q} (by lock); conflict: active lock of bob "
        "not kept, see leadctl identity conflicts",
        f"split: from {p} (now {q}); pool, owner, status and lock stay with {q} (the part "
        "holding most of its leads); this part keeps its own sale lock: bob, until 2027-05-01"]
    (conflict,) = cli("identity", "conflicts", "--json").json()["conflicts"]
    assert (conflict["kept"], conflict["other"]) == (
        {"rep": "ann", "sold_at": "2026-11-03", "locked_until": "2027-05-02",
         "from_person_id": q},
        {"rep": "bob", "sold_at": "2026-11-04", "locked_until": "2027-05-03",
         "from_person_id": p})


def block_email(cli: Cli, email: str) -> None:
    """identity.yaml: from now on `email` never links (a split on the next resolve)."""
    (cli.rules / "identity.yaml").write_text(f"blocklist:\n  values:\n    email: ['{email}']\n",
                                             encoding="utf-8")


def test_a_split_that_takes_the_other_lock_out_again_ends_the_conflict(cli):
    night(cli, FIRST, "2026-11-01")
    sold(cli, "x1", "ann", "2026-11-02")
    sold(cli, "y1", "bob", "2026-11-03")
    night(cli, BRIDGE, "2026-11-04", "bridge")  # X keeps ann's lock; bob's on Y: a conflict
    assert len(cli("identity", "conflicts", "--json").json()["conflicts"]) == 1
    block_email(cli, Y_EMAIL)  # the bridge's e-mail no longer links: Y is on its own again
    assert cli("resolve", "--as-of", "2026-11-05").exit_code == 0
    # Y takes bob's lock back with it (it was routed as new: the lock was lost)
    assert state(cli, "y1") == (Y, "bob", "closed", True)
    assert state(cli, "x1") == (X, "ann", "closed", True)
    assert cli("identity", "conflicts", "--json").json() == {"conflicts": []}
    assert identity_log(cli)[-1] == (
        Y, "sales", "sales", "ann", "bob", "closed", "closed", "split",
        f"split: from {X}; pool, owner, status and lock stay with {X} (the part holding most "
        "of its leads); this part keeps its own sale lock: bob, until 2027-05-02")
    night(cli, None, "2026-11-06")  # routing leaves both locks alone
    assert (state(cli, "y1"), state(cli, "x1")) == ((Y, "bob", "closed", True),
                                                    (X, "ann", "closed", True))


def test_a_conflict_a_split_ended_does_not_come_back_with_a_new_merge(cli):
    night(cli, FIRST, "2026-11-01")
    sold(cli, "x1", "ann", "2026-11-02")
    sold(cli, "y1", "bob", "2026-11-03")
    night(cli, BRIDGE, "2026-11-04", "bridge")  # X keeps ann's lock; bob's on Y: a conflict
    block_email(cli, Y_EMAIL)
    night(cli, None, "2026-11-05")  # split: the conflict ends
    (cli.rules / "identity.yaml").write_text("", encoding="utf-8")
    night(cli, None, "2026-11-06")  # merged again: one conflict, this night's
    assert [(c["run_id"], c["kept"]["rep"], c["other"]["rep"]) for c in
            cli("identity", "conflicts", "--json").json()["conflicts"]] == [(6, "ann", "bob")]
    assert query(cli, "SELECT run_id, status FROM ownership_conflicts ORDER BY 1") == [
        (4, "ended"), (6, "open")]


def test_a_split_part_under_a_new_id_takes_its_lock_back_through_its_old_id(cli):
    # y0, older than y1, joined Y's side while merged: the part {y1, y0} leaves under y0's
    # id, and Y (bob's sale) aliased to the part that stayed: bob's lock was dropped
    night(cli, "x1,13811112222,,2026-10-01 10:00\ny1,13833334444,y@qq.com,2026-10-02 10:00\n",
          "2026-11-01")
    sold(cli, "x1", "ann", "2026-11-02")
    sold(cli, "y1", "bob", "2026-11-03")
    night(cli, "b1,13811112222,y@qq.com,2026-10-20 10:00\n", "2026-11-04", "bridge")
    night(cli, "y0,13833334444,,2026-08-01 10:00\n", "2026-11-05", "older")
    assert cli("identity", "unlink", "y1", "b1", "--reason", "two people").exit_code == 0
    night(cli, None, "2026-11-06")
    y1 = pid("y1")
    assert (state(cli, "y1"), state(cli, "x1")) == ((pid("y0", "older"), "bob", "closed", True),
                                                    (X, "ann", "closed", True))
    assert query(cli, f"SELECT person_id FROM person_aliases WHERE old_person_id = '{y1}'") \
        == [(pid("y0", "older"),)]
    assert cli("identity", "conflicts", "--json").json() == {"conflicts": []}
    assert states_logged(cli) == sorted([(X, "sale", "sale"),
                                         (pid("y0", "older"), "sale", "sale")])


def test_a_split_leaves_the_state_with_the_larger_part_and_routes_the_other_as_new(cli):
    a = pid("a1")
    night(cli, f"a1,{X_PHONE},{Y_EMAIL},2026-10-01 10:00\na2,{X_PHONE},,2026-10-02 10:00\n"
               f"a3,,{Y_EMAIL},2026-10-03 10:00\n", "2026-11-01")
    assert cli("status", "a3", "contacting", "--as-of", "2026-11-02").exit_code == 0
    assert state(cli, "a3") == (a, "ann", "contacting", False)
    block_email(cli, Y_EMAIL)

    result = cli("resolve", "--as-of", "2026-11-03", "--json")

    assert (result.exit_code, result.json()["splits"]) == (0, 1)
    assert result.json()["ownership"] == {"merged": 0, "split": 1, "conflicts": 0}
    a3 = pid("a3")
    assert state(cli, "a1") == state(cli, "a2") == (a, "ann", "contacting", False)
    assert state(cli, "a3") == (a3, None, None, False)
    assert identity_log(cli) == [(
        a3, "sales", None, "ann", None, "contacting", None, "split",
        f"split: from {a}; pool, owner, status and lock stay with {a} (the part holding most "
        "of its leads); this part is routed as new")]
    run = night(cli, None, "2026-11-03")  # tag, score, route
    assert run["stages"]["route"]["causes"] == {"new": 1, "sticky": 1}
    assert state(cli, "a3") == (a3, "ann", "pending", False)  # dealt afresh (a new week)
    assert query(cli, f"SELECT rule, reason FROM assignments WHERE person_id = '{a3}' "
                      "ORDER BY logged_at") == [("split", identity_log(cli)[0][-1]),
                                                ("all", "dealt")]


def test_a_merge_then_a_split_keeps_the_sale_on_the_sold_part(cli):
    night(cli, FIRST, "2026-11-01")
    sold(cli, "x1", "ann", "2026-11-02")
    night(cli, BRIDGE, "2026-11-03", "bridge")
    assert state(cli, "y1") == (X, "ann", "closed", True)
    block_email(cli, Y_EMAIL)  # the bridge no longer joins y1

    summary = night(cli, None, "2026-11-04")

    assert summary["stages"]["resolve"]["splits"] == 1
    # {x1, b1} keeps X and ann's lock; y1 alone derives its old id again, routed as new.
    assert state(cli, "x1") == state(cli, "b1") == state(cli, X) == (X, "ann", "closed", True)
    assert state(cli, "y1") == (Y, "ann", "pending", False)  # dealt afresh: not locked
    assert identity_log(cli)[1:] == [(
        Y, "sales", None, "ann", None, "closed", None, "split",
        f"split: from {X}; pool, owner, status and lock stay with {X} (the part holding most "
        "of its leads); this part is routed as new")]
    assert query(cli, "SELECT person_id, rep, sold_at FROM sales") == [
        (X, "ann", dt.date(2026, 11, 2))]
    assert query(cli, "SELECT * FROM person_aliases") == []


# --------------------------------------------------------------------------- policy file


def test_on_merge_problems_are_located(tmp_path):
    rules = rules_dir(tmp_path / "rules", """\
        on_merge:
          keep: [lock, sales_pool_stat, lock]
          when: always
        """)
    result = Cli(tmp_path / "ws.duckdb", rules)("rules", "check")
    path = rules / "routing.yaml"
    assert result.exit_code == 2
    assert f"{path}:11:3: on_merge: unknown key 'when' (allowed: keep)" in result.stderr
    assert (f"{path}:10:16: on_merge: keep: unknown criterion 'sales_pool_stat' (did you mean "
            "'sales_pool_status'?) (known: lock, sales_pool_status, earliest_assignment, "
            "latest_assignment)") in result.stderr
    assert f"{path}:10:33: on_merge: keep: 'lock' is listed twice" in result.stderr


def test_on_merge_defaults_to_the_issue_policy_and_parses_a_list(tmp_path):
    assert load_rules(rules_dir(tmp_path / "a")).routing.merge_keep == DEFAULT_MERGE_KEEP == (
        "lock", "sales_pool_status", "earliest_assignment")
    given = rules_dir(tmp_path / "b", "on_merge: {keep: [latest_assignment]}\n")
    assert load_rules(given).routing.merge_keep == ("latest_assignment",)


# --------------------------------------------------------------------------- builders


def test_identity_keeps_the_preferred_id_on_a_merge():
    leads = [{"lead_id": "A", "phone": "13812345678", "created_at": "2026-01-01"},
             {"lead_id": "B", "email": "b@qq.com", "created_at": "2026-02-01"}]
    for preferred, survivor in ((None, "A"), ("SELECT 'PB' AS person_id, 1 AS priority", "B")):
        ws = support.workspace(*leads)
        support.resolve(ws, run_id=1)
        ids = support.person_of(ws)
        ws.execute("UPDATE person_leads SET person_id = 'PB' WHERE person_id = ?", [ids["B"]])
        ws.execute("UPDATE persons SET person_id = 'PB' WHERE person_id = ?", [ids["B"]])
        support.add_leads(ws, {"lead_id": "C", "phone": "13812345678", "email": "b@qq.com"})
        resolve_identities(ws, IdentityConfig(), 2, preferred=preferred)
        assert set(support.person_of(ws).values()) == {ids["A"] if survivor == "A" else "PB"}


def test_merge_carry_over_does_not_count_towards_capacity():
    ws = open_memory()
    ws.execute("INSERT INTO assignments (as_of, person_id, new_owner, rule) VALUES "
               "(DATE '2026-11-03', 'p1', 'ann', 'merge'), (DATE '2026-11-03', 'p2', 'ann', "
               "'split'), (DATE '2026-11-03', 'p3', 'ann', 'all')")
    assert ws.scalar(rep_period_load_sql("ann", dt.date(2026, 11, 2), dt.date(2026, 11, 3))) == 1


def test_the_builders_translate_to_spark():
    day, at, keep = dt.date(2026, 11, 3), dt.datetime(2026, 11, 3, 1, 2, 3), DEFAULT_MERGE_KEEP
    statements = [locks_before_sql(day), preferred_ids_sql(day), candidates_sql(keep, day),
                  kept_sql(keep, 7), conflicts_insert_sql(day, 7, at),
                  *apply_merge_sql(day, 7, at),
                  *fold_intent_sql(), split_log_sql(day, 7, at),
                  split_joins_sql(day, 7, {"ann": "sales"}), *split_joins_apply_sql()]
    kinds = [translate(sql).kind for sql in statements]
    assert kinds == ["materialize", "query", "materialize", "materialize", "append", "append",
                     "delete", "append", "materialize", "delete", "append", "append",
                     "materialize", "append", "append"]


def test_a_sale_after_a_merge_knows_the_merged_persons_earlier_sale(cli):
    night(cli, FIRST, "2026-11-01")
    result = cli("sale", "x1", "--rep", "ann", "--lock-days", "1", "--as-of", "2026-11-02")
    assert result.exit_code == 0
    for lead, status in (("x1", "contacting"), ("y1", "appointment")):  # bob's ranks first
        assert cli("status", lead, status, "--as-of", "2026-11-03").exit_code == 0
    night(cli, BRIDGE, "2026-11-04", "bridge")  # lock over: bob's state and Y's id are kept
    assert state(cli, "x1") == (Y, "bob", "appointment", False)
    result = cli("sale", X, "--rep", "ann", "--as-of", "2026-11-05", "--json")
    assert (result.json()["person_id"], result.json()["first_sale"]) == (Y, False)
    assert query(cli, "SELECT person_id, rep FROM sales ORDER BY sold_at") == [
        (X, "ann"), (Y, "ann")]


def test_two_locks_of_one_rep_are_no_conflict_and_the_later_lock_end_is_kept(cli):
    night(cli, FIRST, "2026-11-01")
    sold(cli, "x1", "ann", "2026-11-02")  # locked until 2027-05-01
    assert cli("sale", "y1", "--rep", "ann", "--lock-days", "300",
               "--as-of", "2026-11-03").exit_code == 0  # bob's lead, not locked: ann sells
    summary = night(cli, BRIDGE, "2026-11-04", "bridge")
    assert summary["conflicts"] == 0
    portrait = cli("portrait", "x1", "--json").json()
    assert (portrait["person_id"], portrait["owner"], portrait["locked_until"]) == (
        X, "ann", str(dt.date(2026, 11, 3) + dt.timedelta(days=300)))  # the first sale's id
    assert identity_log(cli)[0][-1] == f"merge: {Y} into {X}; kept the state of {X} (by lock)"


def test_a_split_part_that_joins_a_routed_person_brings_its_lock_to_the_merge(cli):
    # Y's lock (bob) lost to X's (ann) on the bridge night: a conflict. Unlinked from X and
    # linked to C (routed, ann, pending) before the next night, Y's part keeps C's id (the
    # only routed id: identity records a split, no merge) and bob's sales, under Y's retired
    # id, now lead to C: the merge policy decides bob's lock against C's own state.
    night(cli, FIRST + "c1,13855556666,,2026-10-05 10:00\n", "2026-11-01")
    c = pid("c1")
    assert state(cli, "c1") == (c, "ann", "pending", False)
    sold(cli, "x1", "ann", "2026-11-02")
    sold(cli, "y1", "bob", "2026-11-03")
    night(cli, BRIDGE, "2026-11-04", "bridge")  # X keeps ann's lock; bob's on Y: a conflict
    assert len(cli("identity", "conflicts", "--json").json()["conflicts"]) == 1
    assert cli("identity", "unlink", "y1", "b1", "--reason", "two people").exit_code == 0
    assert cli("identity", "link", "y1", "c1", "--reason", "one person").exit_code == 0

    summary = night(cli, None, "2026-11-05")

    assert query(cli, f"SELECT * FROM ownership WHERE person_id = '{c}'") == [
        (c, "sales", "bob", "closed", dt.date(2026, 11, 3), dt.date(2026, 11, 3),
         dt.date(2027, 5, 2), False, "sale")]
    assert state(cli, "y1") == state(cli, Y) == (c, "bob", "closed", True)
    assert state(cli, "x1") == (X, "ann", "closed", True)
    assert identity_log(cli)[-1] == (
        c, "sales", "sales", "ann", "bob", "pending", "closed", "merge",
        f"merge: {Y} into {c}; kept the state of {Y} (by lock)")
    assert query(cli, "SELECT count(*) FROM assignments WHERE as_of = DATE '2026-11-05' "
                      "AND rule IN ('merge', 'split')") == [(1,)]  # one decision
    assert summary["conflicts"] == 0  # C's own state held no lock
    assert cli("identity", "conflicts", "--json").json() == {"conflicts": []}
    assert query(cli, "SELECT status FROM ownership_conflicts") == [("ended",)]
    assert cli("sale", "c1", "--rep", "ann", "--as-of", "2026-11-06").exit_code != 0
    night(cli, None, "2026-11-06")  # routing leaves the lock alone
    assert state(cli, "c1") == (c, "bob", "closed", True)


@pytest.mark.parametrize("cat_day", ["2026-11-02", "2026-11-04"])
def test_a_split_part_that_joins_a_person_locked_by_a_third_rep_is_a_conflict(tmp_path,
                                                                              cat_day):
    # As above, but C is locked by cat (another team's rep: neither bob, whose lock the
    # part brings, nor ann, who keeps X): two reps' active locks, decided as a merge
    # decides them. The earlier sale is kept, the other lock is a conflict; C's id stays.
    rules = rules_dir(tmp_path / "rules")
    routing = rules / "routing.yaml"
    routing.write_text(routing.read_text().replace(
        "routes:", "  - {name: vip, allocation: round_robin, reps: [cat]}\nroutes:"))
    cli = Cli(tmp_path / "ws.duckdb", rules)
    night(cli, FIRST + "c1,13855556666,,2026-10-05 10:00\n", "2026-11-01")
    c = pid("c1")
    sold(cli, "x1", "ann", "2026-11-02")
    sold(cli, "y1", "bob", "2026-11-03")  # locked until 2027-05-02
    sold(cli, "c1", "cat", cat_day)  # C moves to cat's pool, vip
    night(cli, BRIDGE, "2026-11-04", "bridge")  # X keeps ann's lock; bob's on Y: a conflict
    assert cli("identity", "unlink", "y1", "b1", "--reason", "two people").exit_code == 0
    assert cli("identity", "link", "y1", "c1", "--reason", "one person").exit_code == 0

    summary = night(cli, None, "2026-11-05")

    cat_first = cat_day == "2026-11-02"
    cat_until = "2027-05-01" if cat_first else "2027-05-03"
    bob = {"rep": "bob", "sold_at": "2026-11-03", "locked_until": "2027-05-02",
           "from_person_id": Y}
    cat = {"rep": "cat", "sold_at": cat_day, "locked_until": cat_until, "from_person_id": c}
    kept, other, kept_from, pool = (cat, bob, c, "vip") if cat_first else \
        (bob, cat, Y, "sales")
    assert query(cli, f"SELECT pool, owner, status, locked_until FROM ownership "
                      f"WHERE person_id = '{c}'") == [
        (pool, kept["rep"], "closed", dt.date.fromisoformat(kept["locked_until"]))]
    assert state(cli, "y1") == state(cli, Y) == state(cli, "c1") == (
        c, kept["rep"], "closed", True)
    assert state(cli, "x1") == (X, "ann", "closed", True)
    assert identity_log(cli)[-1] == (
        c, "vip", pool, "cat", kept["rep"], "closed", "closed", "merge",
        f"merge: {Y} into {c}; kept the state of {kept_from} (by lock); conflict: active "
        f"lock of {other['rep']} not kept, see leadctl identity conflicts")
    assert query(cli, "SELECT count(*) FROM assignments WHERE as_of = DATE '2026-11-05' "
                      "AND rule IN ('merge', 'split')") == [(1,)]  # one decision
    assert summary["conflicts"] == 1
    (conflict,) = cli("identity", "conflicts", "--json").json()["conflicts"]
    assert (conflict["person_id"], conflict["kept"], conflict["other"],
            conflict["old_person_ids"], conflict["run_id"]) == (
        c, kept, other, [Y], summary["run_id"])
    assert query(cli, "SELECT run_id, status FROM ownership_conflicts ORDER BY 1") == [
        (5, "ended"), (6, "open")]  # the X/Y conflict ended with the split
    night(cli, None, "2026-11-06")  # routing leaves the lock and the conflict alone
    assert state(cli, "c1") == (c, kept["rep"], "closed", True)
    assert len(cli("identity", "conflicts", "--json").json()["conflicts"]) == 1


def _refused_out_of_order(cli: Cli, result, person: str, rule: str, what: str) -> None:
    assert result.exit_code == 2, result.stdout + result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: person {person} last changed on 2026-12-01 ({rule}): {what} cannot be logged "
        "as of 2026-11-05, before it (the log stays in date order); run as of 2026-12-01 or "
        "later (--as-of), or preview with --dry-run")


def test_a_run_dated_before_a_later_rep_action_on_a_person_it_merges_is_refused(cli):
    night(cli, FIRST, "2026-11-01")
    assert cli("status", "x1", "contacting", "--as-of", "2026-12-01").exit_code == 0
    log = query(cli, "SELECT * FROM assignments ORDER BY ALL")
    folder = cli.db.parent / "bridge"
    folder.mkdir()
    write(folder / "bridge.csv", HEADER + BRIDGE)

    # Merged on 11-05 from the state X took on 12-01, the merge row would say X was
    # contacting on 11-05: refused, nothing written but the failed run's row.
    result = cli("run", "--inbox", folder, "--as-of", "2026-11-05")
    _refused_out_of_order(cli, result, X, "status", "an identity merge")
    assert query(cli, "SELECT * FROM assignments ORDER BY ALL") == log
    assert cli("portrait", "b1", "--json").exit_code == 1
    assert query(cli, "SELECT outcome, as_of FROM runs ORDER BY run_id DESC LIMIT 1") == [
        ("failed", dt.date(2026, 11, 5))]
    assert cli("run", "--inbox", folder, "--as-of", "2026-11-05", "--dry-run").exit_code == 0
    assert cli("ingest", folder).exit_code == 0
    _refused_out_of_order(cli, cli("resolve", "--as-of", "2026-11-05"), X, "status",
                          "an identity merge")
    assert cli("resolve", "--as-of", "2026-11-05", "--dry-run").exit_code == 0

    assert cli("resolve", "--as-of", "2026-12-01").exit_code == 0
    assert query(cli, "SELECT as_of, person_id, old_status, new_status FROM assignments "
                      "WHERE rule = 'merge'") == [(dt.date(2026, 12, 1), X, "contacting",
                                                   "contacting")]


def test_a_route_dated_before_a_later_rep_action_on_a_person_it_moves_is_refused(cli):
    night(cli, FIRST, "2026-11-01")
    assert cli("status", "x1", "contacting", "--as-of", "2026-12-01").exit_code == 0
    log = query(cli, "SELECT * FROM assignments ORDER BY ALL")
    (cli.rules / "routing.yaml").write_text(ROUTING.replace("[ann, bob]", "[cid]"),
                                            encoding="utf-8")
    # Both persons' reps left the pool: X's move on 11-05 would follow its 12-01 status.
    result = cli("route", "--as-of", "2026-11-05")
    _refused_out_of_order(cli, result, X, "status", "the routing")
    assert query(cli, "SELECT * FROM assignments ORDER BY ALL") == log
    assert cli("route", "--as-of", "2026-11-05", "--dry-run").exit_code == 0
    assert cli("route", "--as-of", "2026-12-01").exit_code == 0
    assert query(cli, "SELECT person_id, new_owner FROM assignments WHERE as_of = "
                      "'2026-12-01' AND rule <> 'status' ORDER BY 1") == [(X, "cid"), (Y, "cid")]


def test_a_split_dated_before_a_later_rep_action_on_the_person_it_splits_is_refused(cli):
    # The part split off carries the state of the person it left (kept_by): a status set
    # on 12-01 would be logged in the split row as of 11-05.
    a = pid("a1")
    night(cli, f"a1,{X_PHONE},{Y_EMAIL},2026-10-01 10:00\na2,{X_PHONE},,2026-10-02 10:00\n"
               f"a3,,{Y_EMAIL},2026-10-03 10:00\n", "2026-11-01")
    assert cli("status", "a3", "contacting", "--as-of", "2026-12-01").exit_code == 0
    log = query(cli, "SELECT * FROM assignments ORDER BY ALL")
    block_email(cli, Y_EMAIL)
    _refused_out_of_order(cli, cli("resolve", "--as-of", "2026-11-05"), a, "status",
                          "an identity split")
    assert query(cli, "SELECT * FROM assignments ORDER BY ALL") == log
    assert cli("resolve", "--as-of", "2026-12-01").exit_code == 0
    assert query(cli, "SELECT as_of, old_status FROM assignments WHERE rule = 'split'") == [
        (dt.date(2026, 12, 1), "contacting")]
