"""`leadctl resolve --dry-run` / `leadctl run --dry-run` (issue 15.2): the identity changes
against the published state, counted exactly as the real run then does, nothing published."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import duckdb
import pytest
from conftest import RULES, Cli, write

AS_OF = "2026-11-01"
# L1 -phone- L2 -email- L3 are one person; L4 (WeChat) and L5 (device) are two more.
NIGHT_ONE = ("lead_id,phone,email,wechat,device_id,created_at\n"
             "L1,13812345678,,,,2026-10-01\n"
             "L2,13812345678,two@qq.com,,,2026-10-02\n"
             "L3,,two@qq.com,,,2026-10-03\n"
             "L4,,,wx_four,,2026-10-04\n"
             "L5,,,,dev-five,2026-10-05\n")
# L6 carries L4's WeChat id and L5's device: a merge.
NIGHT_TWO = "lead_id,wechat,device_id,created_at\nL6,wx_four,dev-five,2026-10-06\n"
# Blocking L2/L3's e-mail splits L3 off.
BLOCK_EMAIL = "blocklist:\n  values:\n    email: ['two@qq.com']\n"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def query(db: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def pid(lead: str) -> str:
    return "P" + hashlib.md5(f"web|{lead}".encode()).hexdigest()[:12]


@pytest.fixture
def env(tmp_path) -> dict:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules, ignore=shutil.ignore_patterns("tests"))
    (tmp_path / "one").mkdir()
    write(tmp_path / "one" / "web.csv", NIGHT_ONE)
    cli = Cli(tmp_path / "ws.duckdb", rules)
    assert cli("run", "--inbox", tmp_path / "one", "--as-of", AS_OF).exit_code == 0
    assert cli("sale", "L4", "--rep", "rep_wang", "--as-of", AS_OF).exit_code == 0
    write(tmp_path / "web.csv", NIGHT_TWO)
    assert cli("ingest", tmp_path / "web.csv").exit_code == 0  # ingested, not resolved
    (rules / "identity.yaml").write_text(BLOCK_EMAIL, encoding="utf-8")
    return {"cli": cli, "rules": rules, "root": tmp_path}


def test_dry_run_reports_exactly_what_resolve_then_does(env):
    cli = env["cli"]
    before, runs = digest(cli.db), query(cli.db, "SELECT count(*) FROM runs")
    dry = cli("resolve", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.stderr
    preview = dry.json()
    assert {k: preview[k] for k in (
        "dry_run", "merges", "splits", "ids_retired", "ids_new", "ids_kept", "owner_changes",
        "persons_before", "persons_after", "leads", "changed_persons")} == {
        "dry_run": True, "merges": 1, "splits": 1, "ids_retired": 1, "ids_new": 1,
        "ids_kept": 2, "owner_changes": 2, "persons_before": 3, "persons_after": 3,
        "leads": 6, "changed_persons": 3}
    assert preview["merged"] == [{"person_id": pid("L4"), "absorbed": [pid("L5")], "leads": 3}]
    assert preview["split"] == [{"person_id": pid("L3"), "from": pid("L1"), "leads": 1}]
    assert preview["largest_new_clusters"] == [
        {"person_id": pid("L4"), "leads": 3, "was": sorted([pid("L4"), pid("L5")])},
        {"person_id": pid("L1"), "leads": 2, "was": [pid("L1")]},
        {"person_id": pid("L3"), "leads": 1, "was": [pid("L1")]}]
    assert preview["blocked"]["added"] == {"blocked": 1}
    assert preview["blocked"]["values"] == [
        {"change": "added", "id_type": "email", "value": "t***@qq.com", "status": "blocked",
         "reason": "blocklist", "records": 2}]
    # Nothing published: the same bytes, no row in the run log.
    assert digest(cli.db) == before
    assert query(cli.db, "SELECT count(*) FROM runs") == runs
    assert not list(env["root"].glob(".leadctl-dry-run-*"))  # the private copy is gone

    real = cli("resolve", "--json").json()
    assert (real["merges"], real["splits"], real["ids"]["retired"], real["ids"]["new"]) == (
        preview["merges"], preview["splits"], preview["ids_retired"], preview["ids_new"])
    assert real == preview["resolve"] | {"seconds": real["seconds"],
                                         "timings": real["timings"]}
    again = cli("resolve", "--dry-run", "--json").json()
    assert (again["merges"], again["splits"], again["ids_new"], again["owner_changes"],
            again["changed_persons"], again["blocked"]["added"]) == (0, 0, 0, 0, 0, {})


def test_owner_changes_are_persons_whose_leads_change_owner_pool_or_lock(env):
    owners = dict(query(env["cli"].db, "SELECT person_id, owner FROM ownership"))
    assert owners[pid("L4")] == "rep_wang"
    preview = env["cli"]("resolve", "--dry-run", "--json").json()
    # L5 joins rep_wang's person; L3 leaves for a new person without ownership yet.
    changed = {c["person_id"]: (c["leads"], c["after"].split("@")[0])
               for c in preview["owners_changed"]}
    assert changed == {pid("L4"): (1, "rep_wang"), pid("L3"): (1, "-")}


def test_dry_run_text_says_what_would_change(env):
    result = env["cli"]("resolve", "--dry-run")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0] == (
        "dry run: 3 → 3 persons; merges 1, splits 1; ids retired 1, new 1; owner changes 2; "
        "3 persons with a new set of leads")
    assert result.stderr == "nothing was published (dry run)\n"


def test_run_dry_run_publishes_nothing(env):
    cli = env["cli"]
    before, runs = digest(cli.db), query(cli.db, "SELECT count(*) FROM runs")
    result = cli("run", "--as-of", AS_OF, "--dry-run", "--json")
    assert result.exit_code == 0, result.stderr
    summary = result.json()
    assert (summary["dry_run"], summary["run_id"], summary["outcome"]) == (True, None, "ok")
    assert list(summary["stages"]) == ["ingest", "resolve", "tag", "score", "route"]
    assert (summary["identity"]["merges"], summary["identity"]["splits"]) == (1, 1)
    assert digest(cli.db) == before
    assert query(cli.db, "SELECT count(*) FROM runs") == runs


def test_dry_run_without_a_workspace_is_an_error(tmp_path):
    result = Cli(tmp_path / "none.duckdb")("resolve", "--dry-run", "--json")
    assert result.exit_code == 2
    assert result.json()["error"]["message"] == (
        f"no workspace at {tmp_path / 'none.duckdb'}: run `leadctl init` first (or pass --db)")
    assert not (tmp_path / "none.duckdb").exists()
