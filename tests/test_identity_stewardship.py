"""Identity stewardship end to end, across its parts (issue 15): a previewed merge is
what the real resolve then does, ownership included; an accepted suggestion is applied
by the next resolve and explained by `identity why`; an unlink survives a rebuild."""

from __future__ import annotations

import csv
import shutil

from tests.conftest import RULES, Cli, write
from tests.test_routing_merge import BRIDGE, FIRST, HEADER, X, Y, night, rules_dir, sold, state


def test_dry_run_of_a_merge_with_a_sale_lock_is_what_resolve_then_does(tmp_path):
    cli = Cli(tmp_path / "ws.duckdb", rules_dir(tmp_path / "rules"))
    night(cli, FIRST, "2026-11-01")
    sold(cli, "x1", "ann", "2026-11-02")
    write(tmp_path / "bridge.csv", HEADER + BRIDGE)
    assert cli("ingest", tmp_path / "bridge.csv").exit_code == 0
    published = cli.db.read_bytes()

    preview = cli("resolve", "--dry-run", "--as-of", "2026-11-03", "--json")
    assert preview.exit_code == 0, preview.stderr
    got = preview.json()
    assert cli.db.read_bytes() == published  # nothing published
    assert {k: got[k] for k in ("dry_run", "merges", "splits", "ids_retired", "ids_new",
                                "owner_changes")} == {
        "dry_run": True, "merges": 1, "splits": 0, "ids_retired": 1, "ids_new": 0,
        "owner_changes": 1}  # Y's lead (bob's, pending) becomes ann's locked person
    assert got["resolve"]["ownership"] == {"merged": 1, "split": 0, "conflicts": 0}

    real = cli("resolve", "--as-of", "2026-11-03", "--json").json()
    assert {k: real[k] for k in ("merges", "splits", "ownership")} == {
        "merges": 1, "splits": 0, "ownership": got["resolve"]["ownership"]}
    assert state(cli, Y) == (X, "ann", "closed", True)


CSV = ("lead_id,name,phone,city,created_at\n"
       "L1,王伟,13812345678,上海,2026-10-01\nL2,王伟,13812345687,上海,2026-10-02\n"
       "L3,李娜,13900001111,北京,2026-10-03\nL4,李娜,13900001111,北京,2026-10-04\n")


def test_accepted_suggestion_is_applied_by_the_next_resolve_and_unlink_survives_rebuild(
        tmp_path):
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    cli = Cli(tmp_path / "ws.duckdb", rules)
    write(tmp_path / "web.csv", CSV)
    assert cli("ingest", tmp_path / "web.csv").exit_code == 0
    assert cli("resolve").exit_code == 0
    assert cli("identity", "why", "L1", "L2", "--json").json()["linked"] is False

    assert cli("identity", "accept", "--all-above", "0.8").exit_code == 0
    assert cli("identity", "unlink", "L3", "L4", "--reason", "twins sharing a phone"
               ).exit_code == 0
    assert cli("resolve").exit_code == 0
    why = cli("identity", "why", "L1", "L2", "--json").json()
    assert (why["linked"], why["reason"]) == (True, "must_link")
    apart = cli("identity", "why", "L3", "L4", "--json").json()
    assert (apart["linked"], apart["reason"]) == (False, "cannot_link")

    def persons(c: Cli) -> list[list[str]]:
        leads = c("export", "leads", "-o", tmp_path / f"{c.db.stem}.csv")
        assert leads.exit_code == 0
        by_person: dict[str, list[str]] = {}
        with open(tmp_path / f"{c.db.stem}.csv", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                by_person.setdefault(row["person_id"], []).append(row["lead_id"])
        return sorted(sorted(v) for v in by_person.values())

    rebuilt = Cli(tmp_path / "rebuilt.duckdb", rules)  # from an empty workspace
    assert rebuilt("ingest", tmp_path / "web.csv").exit_code == 0
    assert rebuilt("resolve").exit_code == 0
    assert persons(cli) == persons(rebuilt) == [["L1", "L2"], ["L3"], ["L4"]]
