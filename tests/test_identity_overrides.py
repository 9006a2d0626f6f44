"""Identity overrides (issue 15.3): must_link / cannot_link read from identity.yaml and
rules/identity_overrides.yaml, applied by resolve, surviving a rebuild; identity link /
unlink append to the file."""

from __future__ import annotations

import datetime as real_datetime
import multiprocessing
import re
import shutil
import textwrap
from pathlib import Path

import duckdb
import pytest
import yaml
from conftest import RULES, Cli, write

from leadctl import clock
from leadctl.errors import RuleError
from leadctl.identity import overrides_file
from leadctl.identity.config import IdentityConfig, load_identity_config
from leadctl.identity.explain import explain_lead_identity
from leadctl.identity.lookup import AmbiguousQuery, resolve_person
from leadctl.identity.overrides import LeadRef, Override, ValueRef, _value_key
from leadctl.identity.overrides_cmd import write_override
from leadctl.identity.overrides_file import OVERRIDES_FILE, append_overrides
from leadctl.identity.why import why
from leadctl.spark.translate import translate
from leadctl.workspace import reading
from tests.test_identity_support import (
    clusters,
    groups,
    identifier,
    person_of,
    resolve,
    workspace,
)


def config(*overrides: Override) -> IdentityConfig:
    c = IdentityConfig()
    c.overrides = overrides
    return c


def must(*leads: str, reason: str = "same person") -> Override:
    return Override("must_link", leads=tuple(LeadRef(None, x) for x in leads), reason=reason)


def cannot(a: str, b: str, reason: str = "two people") -> Override:
    return Override("cannot_link", leads=(LeadRef(None, a), LeadRef(None, b)), reason=reason)


def cut_rows(ws) -> list[tuple]:
    return [tuple(r.values()) for r in ws.rows(
        "SELECT l.lead_id, li.id_type, li.reason FROM lead_identifiers li "
        "JOIN leads l USING (lead_key) WHERE li.status = 'cut' ORDER BY 1, 2")]


def blocked(ws) -> list[tuple]:
    return [tuple(r.values()) for r in ws.rows(
        "SELECT id_type, value, reason, records, status FROM blocked_identifiers "
        "WHERE status = 'cut' ORDER BY id_type, value")]


# -- applying them (in-memory workspace) -----------------------------------------------------

CHAIN = [{"lead_id": "A", "phone": "13812345678"},
         {"lead_id": "B", "phone": "13812345678", "email": "b@qq.com"},
         {"lead_id": "C", "email": "b@qq.com", "wechat": "wx_chain"},
         {"lead_id": "D", "wechat": "wx_chain"}]


def test_must_link_joins_leads_without_a_shared_value():
    ws = workspace({"lead_id": "A", "phone": "13812345678"},
                   {"lead_id": "B", "email": "b@qq.com"}, {"lead_id": "C", "email": "b@qq.com"},
                   {"lead_id": "D", "phone": "13912345678"})
    summary = resolve(ws, config(must("A", "B")))
    assert clusters(ws) == groups({"A", "B", "C"}, {"D"})
    assert summary.overrides == {"entries": 1, "must_link": 1, "cannot_link": 0,
                                 "cut_values": 0, "warnings": []}


def test_a_merge_only_a_must_link_makes_says_so_in_the_history():
    ws = workspace({"lead_id": "A", "phone": "13812345678"},
                   {"lead_id": "B", "email": "b@qq.com"})
    resolve(ws, config(), run_id=1)
    resolve(ws, config(must("A", "B")), run_id=2)
    assert [tuple(r.values()) for r in ws.rows(
        "SELECT change, leads, reason FROM identity_history")] == [
        ("merge", 2, "linked by a must_link override")]


def test_must_link_of_values_joins_every_lead_carrying_them():
    ws = workspace({"lead_id": "A", "phone": "13812345678"},
                   {"lead_id": "B", "email": "b@qq.com"}, {"lead_id": "C", "wechat": "wx_c1"})
    resolve(ws, config(Override("must_link", values=(
        ValueRef("phone", "+86 138 1234 5678"), ValueRef("email", "B@QQ.COM")), reason="r")))
    assert clusters(ws) == groups({"A", "B"}, {"C"})


def test_why_explains_a_must_link_of_values_as_a_hop():
    ws = workspace({"lead_id": "A", "phone": "13812345678"},
                   {"lead_id": "B", "email": "b@qq.com"}, {"lead_id": "C", "wechat": "wx_c1"})
    resolve(ws, config(Override("must_link", values=(
        ValueRef("phone", "+86 138 1234 5678"), ValueRef("email", "B@QQ.COM")),
        reason="one household")))
    got = why(ws, IdentityConfig(), None, "A", "B")
    assert (got["linked"], got["reason"]) == (True, "must_link")
    assert [(p["lead_id"], p["via"]) for p in got["path"]] == [
        ("A", None), ("B", {"type": "must_link", "value": "one household"})]


def test_cannot_link_cuts_a_chain_in_the_middle():
    ws = workspace(*CHAIN)
    summary = resolve(ws, config(cannot("A", "D", "different people")))
    assert clusters(ws) == groups({"A", "B"}, {"C", "D"})
    # Layers of rows A–phone, phone–B, B–email, email–C, C–wechat, wechat–D: one row
    # each; the middle ones are B–email and email–C, the first of them is cut.
    assert cut_rows(ws) == [("B", "email", "cannot_link: different people")]
    assert blocked(ws) == [("email", "b@qq.com", "cannot_link: different people", 1, "cut")]
    assert summary.overrides["cut_values"] == 1


def test_a_must_link_on_a_dead_end_branch_does_not_block_the_cut():
    # A-B-X share a phone, B-C an e-mail; Y is joined to X only by a must_link, a branch
    # no A-C path takes: the cut still separates A and C (before: a rule error)
    ws = workspace({"lead_id": "A", "phone": "13812345678"},
                   {"lead_id": "B", "phone": "13812345678", "email": "b@qq.com"},
                   {"lead_id": "X", "phone": "13812345678"},
                   {"lead_id": "C", "email": "b@qq.com"}, {"lead_id": "Y", "wechat": "wx_y1"})
    resolve(ws, config(cannot("A", "C"), must("A", "B"), must("Y", "X")))
    assert clusters(ws) == groups({"A", "B", "X", "Y"}, {"C"})
    # A and B are one node of the search (a must_link): of its layers A/B-e-mail and
    # e-mail-C, one row each, the one nearest A is cut: B's e-mail
    assert cut_rows(ws) == [("B", "email", "cannot_link: two people")]


def test_a_cannot_link_past_a_must_link_cuts_the_rows_beyond_it():
    # F1 and F3 are one person by a must_link; F4 shares F3's phone (F1's too) and e-mail.
    # Every layer of the old search held a must_link edge (F1-M, M-F3), so each resolve
    # refused to run although cutting F4's rows separates them.
    ws = workspace({"lead_id": "F1", "phone": "13900008001"},
                   {"lead_id": "F3", "phone": "13900008001", "email": "q@qq.com"},
                   {"lead_id": "F4", "phone": "13900008001", "email": "q@qq.com"})
    summary = resolve(ws, config(must("F1", "F3", reason="F3 is F1"),
                                 cannot("F1", "F4", "F4 is someone else")))
    assert clusters(ws) == groups({"F1", "F3"}, {"F4"})
    # {F1, F3} to phone and e-mail: 3 rows; on to F4: 2 rows, cut
    assert cut_rows(ws) == [("F4", "email", "cannot_link: F4 is someone else"),
                            ("F4", "phone", "cannot_link: F4 is someone else")]
    assert summary.overrides["cut_values"] == 2


def test_a_long_chain_of_must_link_entries_settles_before_the_cut():
    # L0 - L1 - ... - L299 by 299 must_link entries; X shares L0's phone and may not be
    # L299. The groups moved one entry a step and gave up after 200 steps: every resolve
    # failed.
    n = 300
    leads = [{"lead_id": f"L{i:03d}"} for i in range(n)]
    leads[0]["phone"] = "13900000001"
    ws = workspace(*leads, {"lead_id": "X", "phone": "13900000001"})
    chain = [must(f"L{i:03d}", f"L{i + 1:03d}", reason="chain") for i in range(n - 1)]
    resolve(ws, config(*chain, cannot("X", f"L{n - 1:03d}", "X is someone else")))
    assert clusters(ws) == groups({lead["lead_id"] for lead in leads}, {"X"})


def test_a_cannot_link_of_leads_only_must_link_entries_join_is_a_rule_error():
    # A and C also share a device id, but must_link entries alone join them too (A-B by
    # their values, B-C by name): no cut of values can separate them
    ws = workspace({"lead_id": "A", "phone": "13812345678", "device_id": "dev-1"},
                   {"lead_id": "B", "email": "b@qq.com"},
                   {"lead_id": "C", "wechat": "wx_cccc", "device_id": "dev-1"})
    values = Override("must_link", values=(ValueRef("phone", "13812345678"),
                                           ValueRef("email", "b@qq.com")), reason="r")
    with pytest.raises(RuleError) as refused:
        resolve(ws, config(values, must("B", "C"), cannot("A", "C")))
    assert refused.value.problems == [(None, "conflicting overrides: cannot_link of A, C but "
                                             "must_link entries join the two leads in the data")]


def test_a_lead_on_a_dead_end_branch_keeps_its_links():
    # D shares only a WeChat id with B3, a branch no A-C path needs: it stays with B3
    ws = workspace({"lead_id": "A", "phone": "13600000101/13600000102/13600000103"},
                   {"lead_id": "B1", "phone": "13600000101", "email": "e@qq.com"},
                   {"lead_id": "B2", "phone": "13600000102", "email": "e@qq.com"},
                   {"lead_id": "B3", "phone": "13600000103", "email": "e@qq.com",
                    "wechat": "wx_shared"},
                   {"lead_id": "C", "email": "e@qq.com"}, {"lead_id": "D", "wechat": "wx_shared"})
    resolve(ws, config(cannot("A", "C")))
    assert clusters(ws) == groups({"A", "B1", "B2", "B3", "D"}, {"C"})
    assert cut_rows(ws) == [("C", "email", "cannot_link: two people")]


def test_cannot_link_in_a_shared_family_phone_cuts_only_one_lead():
    ws = workspace(*({"lead_id": x, "phone": "13812345678"} for x in "ABCD"))
    resolve(ws, config(cannot("C", "A", "family phone")))
    assert clusters(ws) == groups({"A"}, {"B", "C", "D"})
    assert identifier(ws, "A", "phone") == {"value": "+8613812345678", "status": "cut",
                                            "records": 4, "reason": "cannot_link: family phone"}
    assert identifier(ws, "B", "phone")["status"] == "ok"
    # the phone still names both persons: a lookup by it offers both, not one silently
    with pytest.raises(AmbiguousQuery) as found:
        resolve_person(ws, "138 1234 5678")
    people = person_of(ws)
    assert sorted(c["person_id"] for c in found.value.candidates) == sorted(
        {people["A"], people["B"]})
    # each with the leads the phone matched (README: the candidates' source/lead_id)
    assert sorted(c["leads"] for c in found.value.candidates) == [
        ["s/A"], ["s/B", "s/C", "s/D"]]


def test_cannot_link_with_several_paths_separates_them_all():
    ws = workspace({"lead_id": "A", "phone": "13812345678", "email": "a@qq.com"},
                   {"lead_id": "B", "phone": "13812345678", "wechat": "wx_bbbb"},
                   {"lead_id": "C", "email": "a@qq.com", "wechat": "wx_bbbb"},
                   {"lead_id": "X", "wechat": "wx_bbbb", "device_id": "dev-1"},
                   {"lead_id": "Y", "device_id": "dev-1"})
    resolve(ws, config(cannot("A", "Y")))
    # From A: two rows to phone and e-mail, two on to B and C, two to the WeChat id, then
    # one each: wechat–X, X–device, device–Y. The single-row layer nearest the middle is
    # X's WeChat row: cut, whatever path went through B or C.
    assert clusters(ws) == groups({"A", "B", "C"}, {"X", "Y"})
    assert cut_rows(ws) == [("X", "wechat", "cannot_link: two people")]


def test_a_cannot_link_value_never_links():
    ws = workspace({"lead_id": "A", "phone": "13812345678"},
                   {"lead_id": "B", "phone": "138-1234-5678"}, {"lead_id": "C"})
    resolve(ws, config(Override("cannot_link", values=(ValueRef("phone", "13812345678"),),
                                reason="shop phone")))
    assert clusters(ws) == groups({"A"}, {"B"}, {"C"})
    assert blocked(ws) == [("phone", "+8613812345678", "cannot_link: shop phone", 2, "cut")]


def test_cannot_link_and_must_link_joined_in_the_data_is_a_rule_error():
    ws = workspace({"lead_id": "A", "phone": "13812345678"}, {"lead_id": "B", "email": "b@qq.com"})
    values = Override("must_link", values=(ValueRef("phone", "13812345678"),
                                           ValueRef("email", "b@qq.com")), reason="r")
    with pytest.raises(RuleError, match="conflicting overrides: cannot_link of A, B but "
                       "must_link entries join the two leads in the data"):
        resolve(ws, config(values, cannot("A", "B")))


def test_leads_not_in_the_data_are_warnings():
    ws = workspace({"lead_id": "A", "source": "s1"}, {"lead_id": "A", "source": "s2"},
                   {"lead_id": "B"})
    summary = resolve(ws, config(must("A", "B"), must("B", "NOPE")))
    assert ws.scalar("SELECT count(*) FROM persons") == 3  # nothing applied
    assert summary.overrides["warnings"] == [
        "must_link at None: A in 2 sources: name its source (not applied)",
        "must_link at None: NOPE not in the data (not applied)"]


def test_override_builders_transpile_for_spark():
    ws = workspace(*CHAIN, {"lead_id": "E", "phone": "13912345678"},
                   {"lead_id": "F", "wechat": "wx_ffff"})
    statements: list[str] = []
    execute = ws.execute

    def recording(sql, params=None):
        statements.append(sql)
        return execute(sql, params)

    ws.execute = recording
    resolve(ws, config(cannot("A", "D"), must("E", "F"), Override(
        "cannot_link", values=(ValueRef("wechat", "wx_ffff"),), reason="r")))
    assert clusters(ws) == groups({"A", "B"}, {"C", "D"}, {"E", "F"})
    ours = [s for s in statements if "_oneid_ov_" in s or "_oneid_cuts" in s
            or "_oneid_seen" in s or "_oneid_row_cuts" in s or "_oneid_back" in s
            or "_oneid_must_groups" in s or "_oneid_ends" in s or "_oneid_graph" in s]
    assert len(ours) > 10 and sum("_oneid_back" in s for s in ours) >= 4
    assert sum("_oneid_must_groups" in s for s in ours) >= 3
    for sql in ours:
        translate(sql)  # raises on what Spark cannot run


# -- the files ---------------------------------------------------------------------------------

def rules_dir(tmp_path: Path, identity: str | None = None, overrides: str | None = None) -> Path:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules, ignore=shutil.ignore_patterns("tests"))
    if identity is not None:
        (rules / "identity.yaml").write_text(identity, encoding="utf-8")
    if overrides is not None:
        (rules / "identity_overrides.yaml").write_text(overrides, encoding="utf-8")
    return rules


def test_both_files_are_read_in_order(tmp_path):
    rules = rules_dir(tmp_path, "overrides:\n  - kind: must_link\n    leads: [A, B]\n"
                      "    reason: one\n",
                      "overrides:\n- kind: cannot_link\n  leads: [{source: s, lead_id: C}, D]\n"
                      "  reason: two\n  by: ops\n  at: 2026-12-01T10:00:00\n")
    overrides = load_identity_config(rules).overrides
    assert overrides == (Override("must_link", (LeadRef(None, "A"), LeadRef(None, "B")),
                                  reason="one"),
                         Override("cannot_link", (LeadRef("s", "C"), LeadRef(None, "D")),
                                  reason="two", by="ops", at="2026-12-01T10:00:00"))
    assert [str(o.loc) for o in overrides] == [f"{rules}/identity.yaml:2:5",
                                               f"{rules}/identity_overrides.yaml:2:3"]


def test_problems_have_their_place(tmp_path):
    rules = rules_dir(tmp_path, overrides=(
        "overrides:\n"
        "- kind: must_lnk\n  leads: [A, B]\n  reason: r\n"                    # 2
        "- kind: cannot_link\n  leads: [A, B, C]\n  reason: r\n"              # 5
        "- kind: cannot_link\n  values: [{type: phone, value: '1'}, {type: email, value: "
        "a@b.cn}]\n  reason: r\n"                                             # 8
        "- kind: must_link\n  leads: [A, 12]\n  values: []\n"                 # 11
        "- kind: must_link\n  leads: [A, B]\n  reason: r\n  colour: red\n"   # 14
        "- kind: cannot_link\n  values: [{type: device_id, value: NaN}]\n  reason: r\n"))  # 18
    with pytest.raises(RuleError) as err:
        load_identity_config(rules)
    f = f"{rules}/identity_overrides.yaml"
    assert str(err.value).splitlines() == [
        f"{f}:2:9: unknown override kind 'must_lnk' (did you mean 'must_link'?) (known: "
        "must_link, cannot_link)",
        f"{f}:6:10: cannot_link names exactly two different leads (or one value)",
        f"{f}:9:11: cannot_link names exactly one value (that value never links); to keep "
        "two leads apart, name the two `leads:`",
        f"{f}:11:3: an override names either `leads:` or `values:`, not both",
        f"{f}:11:3: override needs a `reason:` (why, for the reviewer)",
        f"{f}:12:14: lead id: write 12 in quotes ('...'): unquoted digits are read as a "
        "number and lose leading zeros",
        f"{f}:17:3: override: unknown key 'colour' (known: kind, leads, values, reason, by, at)",
        f"{f}:19:37: device_id value 'NaN' is a null token: no identifier (resolve never "
        "reads it as a value)",
    ]


def test_conflicting_overrides_are_rule_errors_with_their_place(tmp_path):
    rules = rules_dir(tmp_path, "overrides:\n  - kind: must_link\n    leads: [A, B]\n"
                      "    reason: one\n",
                      "overrides:\n- kind: must_link\n  leads: [B, C]\n  reason: two\n"
                      "- kind: cannot_link\n  leads: [A, C]\n  reason: three\n"
                      "- kind: cannot_link\n  values: [{type: phone, value: '13812345678'}]\n"
                      "  reason: four\n"
                      "- kind: must_link\n  values: [{type: phone, value: '+86 138 1234 5678'}]"
                      "\n  reason: five\n")
    cli = Cli(tmp_path / "ws.duckdb", rules)
    result = cli("rules", "check")
    f = f"{rules}/identity_overrides.yaml"
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"error: {f}:5:3: conflicting overrides: cannot_link of A and C, but must_link "
        f"entries join them (at {rules}/identity.yaml:2:5; {f}:2:3)",
        f"error: {f}:8:3: conflicting overrides: cannot_link of a phone value that must_link "
        f"at {f}:11:3 names"]


def test_a_landline_written_two_ways_is_one_value_to_the_conflict_check(tmp_path):
    rules = rules_dir(tmp_path, None,
                      "overrides:\n- kind: must_link\n  values: [{type: phone, value: "
                      "'021-62345678'}]\n  reason: one\n- kind: cannot_link\n  values: "
                      "[{type: phone, value: '+86 21 6234 5678'}]\n  reason: two\n")
    result = Cli(tmp_path / "ws.duckdb", rules)("rules", "check")
    f = f"{rules}/identity_overrides.yaml"
    assert (result.exit_code, result.stderr) == (
        2, f"error: {f}:5:3: conflicting overrides: cannot_link of a phone value that "
        f"must_link at {f}:2:3 names\n")


@pytest.mark.parametrize("kind, message", [
    ("must_link", "must_link names two or more different leads"),
    ("cannot_link", "cannot_link names exactly two different leads (or one value)")])
def test_a_lead_written_plain_and_with_its_source_is_one_lead(tmp_path, kind, message):
    # the must_link was accepted and applied nothing; the cannot_link was refused as
    # joined by must_link entries "at" nowhere
    rules = rules_dir(tmp_path, None, f"overrides:\n- kind: {kind}\n  leads: [K1, "
                      "{source: src_k, lead_id: K1}]\n  reason: typo\n")
    result = Cli(tmp_path / "ws.duckdb", rules)("rules", "check")
    assert (result.exit_code, result.stderr) == (
        2, f"error: {rules}/identity_overrides.yaml:3:10: {message}\n")


def test_a_plain_id_elsewhere_does_not_make_two_sources_leads_one(tmp_path):
    # A1 in two sources: src_a/A1 joined to B1 and src_h/A1 kept from it are no conflict;
    # a stale entry naming plain A1 made every src_x/A1 one lead
    rules = rules_dir(tmp_path, None,
                      "overrides:\n- kind: must_link\n  leads: [{source: src_a, lead_id: A1}, "
                      "B1]\n  reason: same\n- kind: cannot_link\n  leads: [{source: src_h, "
                      "lead_id: A1}, B1]\n  reason: different\n- kind: must_link\n  leads: "
                      "[A1, E1]\n  reason: old entry\n")
    assert Cli(tmp_path / "ws.duckdb", rules)("rules", "check").exit_code == 0


# -- through the command line ------------------------------------------------------------------

LEADS = ("lead_id,phone,email,created_at\n"
         "L1,13812345678,,2026-10-01\n"
         "L2,13812345678,l2@qq.com,2026-10-02\n"
         "L3,,l2@qq.com,2026-10-03\n"
         "L4,13912345678,,2026-10-04\n"
         "L5,,l5@qq.com,2026-10-05\n")


def persons(db: Path) -> dict[str, str]:
    """lead id → person id."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        return dict(con.execute("SELECT l.lead_id, pl.person_id FROM person_leads pl "
                                "JOIN leads l USING (lead_key) ORDER BY 1").fetchall())
    finally:
        con.close()


def cut_rows_of(db: Path) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("SELECT l.lead_id, li.id_type, li.reason FROM lead_identifiers li "
                           "JOIN leads l USING (lead_key) WHERE li.status = 'cut' "
                           "ORDER BY 1, 2").fetchall()
    finally:
        con.close()


@pytest.fixture
def env(tmp_path) -> dict:
    rules = rules_dir(tmp_path)
    write(tmp_path / "web.csv", LEADS)
    cli = Cli(tmp_path / "ws.duckdb", rules)
    assert cli("ingest", tmp_path / "web.csv").exit_code == 0
    assert cli("resolve").exit_code == 0
    return {"cli": cli, "rules": rules, "root": tmp_path}


def fixed_now() -> real_datetime.datetime:
    """2026-12-02 06:30:00.000123 in the workspace zone (Asia/Shanghai)."""
    return real_datetime.datetime(2026, 12, 1, 22, 30, 0, 123, tzinfo=real_datetime.UTC)


def test_link_and_unlink_append_exactly_this_and_resolve_applies_it(env, monkeypatch):
    monkeypatch.setattr(clock, "utc_now", fixed_now)
    cli, rules = env["cli"], env["rules"]
    p1 = persons(cli.db)["L1"]
    assert persons(cli.db)["L3"] == p1  # L1 -phone- L2 -email- L3
    linked = cli("identity", "link", "L1", "L5", "--reason", "same person, confirmed",
                 "--by", "ops_xu", "--json")
    path = rules / "identity_overrides.yaml"
    assert linked.exit_code == 0, linked.stderr
    assert linked.json() == {"written": {
        "kind": "must_link", "leads": [{"source": "web", "lead_id": "L1"},
                                       {"source": "web", "lead_id": "L5"}],
        "reason": "same person, confirmed", "by": "ops_xu", "at": "2026-12-02T06:30:00"},
        "file": str(path)}
    assert linked.stderr == (f"must_link of web/L1 and web/L5: appended to {path}; applied by "
                             "the next `leadctl resolve`\n")
    unlinked = cli("identity", "unlink", p1, "L3", "--reason", "L3 is the wife",
                   env={"LEADCTL_USER": "ops_li"})
    assert unlinked.exit_code == 0, unlinked.stderr
    entry = ('- kind: "cannot_link"\n'
             '  leads: [{source: "web", lead_id: "L1"}, {source: "web", lead_id: "L3"}]\n'
             '  reason: "L3 is the wife"\n  by: "ops_li"\n  at: "2026-12-02T06:30:00"\n')
    assert unlinked.stdout == entry  # a person id is written as its earliest lead
    assert path.read_text(encoding="utf-8") == (
        "# Identity overrides: reviewed corrections to OneID that survive every rebuild.\n"
        "# `leadctl identity link / unlink / accept / reject` append entries here; edit or "
        "delete\n# them by hand like any rule file. Format: see the `overrides:` key in "
        "identity.yaml.\noverrides:\n"
        '- kind: "must_link"\n'
        '  leads: [{source: "web", lead_id: "L1"}, {source: "web", lead_id: "L5"}]\n'
        '  reason: "same person, confirmed"\n  by: "ops_xu"\n  at: "2026-12-02T06:30:00"\n'
        + entry)
    assert cli("resolve").exit_code == 0
    after = persons(cli.db)
    # the must_link to L5 is a dead end for the L1-L3 cut: the layer nearest the middle
    # by the first lead is L2's phone (L2 goes with L3 through their shared e-mail, and
    # that part, holding two of p1's three leads, keeps its id)
    assert after["L2"] == after["L3"] == p1
    assert after["L1"] == after["L5"] not in (p1, after["L4"])
    assert cut_rows_of(cli.db) == [("L2", "phone", "cannot_link: L3 is the wife")]


def test_overrides_survive_a_rebuild_from_an_empty_workspace(env):
    cli, root = env["cli"], env["root"]
    assert cli("identity", "link", "L4", "L5", "--reason", "r").exit_code == 0
    assert cli("identity", "unlink", "L1", "L3", "--reason", "r").exit_code == 0
    assert cli("resolve").exit_code == 0
    fresh = Cli(root / "fresh.duckdb", env["rules"])
    assert fresh("ingest", root / "web.csv").exit_code == 0
    assert fresh("resolve").exit_code == 0
    # The same persons. Their ids may differ: the live workspace keeps an id on the part
    # of a split person that holds most of its leads, a fresh one derives every id.
    assert clusters_of(persons(fresh.db)) == clusters_of(persons(cli.db)) == [
        ["L1"], ["L2", "L3"], ["L4", "L5"]]


def clusters_of(person_of: dict[str, str]) -> list[list[str]]:
    by_person: dict[str, list[str]] = {}
    for lead, person in sorted(person_of.items()):
        by_person.setdefault(person, []).append(lead)
    return sorted(by_person.values())


def test_link_refuses_what_it_cannot_write(env):
    cli = env["cli"]
    assert cli("identity", "link", "L1", "L5").exit_code == 2  # --reason is required
    unknown = cli("identity", "link", "L1", "nobody", "--reason", "r")
    assert (unknown.exit_code, unknown.stderr) == (
        1, "error: no lead or person matches 'n****y' (tried wechat n****y, lead id, "
           "person id)\n")
    same = cli("identity", "unlink", "L1", "web/L1", "--reason", "r", "--json")
    assert (same.exit_code, same.json()["error"]["message"]) == (
        2, "'L1' and 'web/L1' are the same lead (web/L1)")
    assert cli("identity", "link", "L1", "L5", "--reason", "r").exit_code == 0
    conflict = cli("identity", "unlink", "L5", "L1", "--reason", "r")
    assert conflict.exit_code == 2
    assert "conflicting overrides: cannot_link of web/L5 and web/L1" in conflict.stderr
    text = (env["rules"] / "identity_overrides.yaml").read_text(encoding="utf-8")
    assert text.count("- kind:") == 1  # only the link was written


def test_the_same_lead_twice_is_refused_with_the_query_masked(env):
    # a phone or e-mail naming a person (its earliest lead) is echoed masked, as every
    # other identity error echoes a query; a lead id as given
    cli = env["cli"]
    linked = cli("identity", "link", "13912345678", "L4", "--reason", "x", "--json")
    assert (linked.exit_code, linked.json()["error"]["message"]) == (
        2, "'139****5678' and 'L4' are the same lead (web/L4)")
    unlinked = cli("identity", "unlink", "L5", "l5@qq.com", "--reason", "x")
    assert (unlinked.exit_code, unlinked.stderr) == (
        2, "error: 'L5' and 'l***@qq.com' are the same lead (web/L5)\n")
    assert not (env["rules"] / "identity_overrides.yaml").exists()


def test_unlink_refuses_two_leads_a_must_link_of_their_value_joins(env):
    cli, rules = env["cli"], env["rules"]
    path = rules / "identity_overrides.yaml"
    path.write_text("overrides:\n- kind: must_link\n  values: [{type: phone, value: "
                    "'138 1234 5678'}]\n  reason: one household\n", encoding="utf-8")
    assert cli("resolve").exit_code == 0  # applies it: L1 and L2 carry that phone
    before = path.read_text(encoding="utf-8")
    refused = cli("identity", "unlink", "L1", "L2", "--reason", "two people")
    assert refused.exit_code == 2
    assert ("but must_link entries join the two leads in the data (at "
            f"{path}:2:3)") in refused.stderr
    assert path.read_text(encoding="utf-8") == before  # nothing written
    assert cli("identity", "unlink", "L1", "L4", "--reason", "two people").exit_code == 0


def test_unlink_after_the_must_link_was_deleted_by_hand_is_written(env, monkeypatch):
    # the last resolve applied a must_link of L1 and L5 (identity_override_leads still
    # names it); deleted by hand since, it no longer joins them: the unlink is written
    monkeypatch.setattr(clock, "utc_now", fixed_now)
    cli, rules = env["cli"], env["rules"]
    path = rules / "identity_overrides.yaml"
    assert cli("identity", "link", "L1", "L5", "--reason", "same").exit_code == 0
    assert cli("resolve").exit_code == 0
    path.write_text("overrides: []\n", encoding="utf-8")
    unlinked = cli("identity", "unlink", "L1", "L5", "--reason", "two people", "--by", "ops")
    assert unlinked.exit_code == 0, unlinked.stderr
    assert path.read_text(encoding="utf-8") == (
        "overrides:\n"
        '- kind: "cannot_link"\n'
        '  leads: [{source: "web", lead_id: "L1"}, {source: "web", lead_id: "L5"}]\n'
        '  reason: "two people"\n  by: "ops"\n  at: "2026-12-02T06:30:00"\n')
    assert cli("resolve").exit_code == 0
    after = persons(cli.db)
    assert after["L1"] != after["L5"]


def test_the_overrides_file_is_a_rule_file_and_missing_leads_are_warnings(tmp_path):
    rules = rules_dir(tmp_path, overrides="overrides:\n- kind: must_link\n  leads: [L1, L9]\n"
                      "  reason: r\n")
    write(tmp_path / "web.csv", LEADS)
    cli = Cli(tmp_path / "ws.duckdb", rules)
    assert cli("ingest", tmp_path / "web.csv").exit_code == 0
    assert str(rules / "identity_overrides.yaml") in cli("rules", "check", "--json").json()[
        "files"]
    warning = (f"must_link at {rules}/identity_overrides.yaml:2:3: L9 not in the data "
               "(not applied)")
    assert cli("resolve", "--json").json()["overrides"] == {
        "entries": 1, "must_link": 0, "cannot_link": 0, "cut_values": 0, "warnings": [warning]}
    run = cli("run", "--as-of", "2026-11-01")
    assert f"warning: resolve: identity override: {warning}\n" in run.stderr
    # resolve warns too (stderr and the --log-file log), real or dry run, text or --json
    log = tmp_path / "resolve.log"
    for options in ([], ["--json"], ["--dry-run"], ["--dry-run", "--json"]):
        result = cli("--log-file", log, "resolve", "--as-of", "2026-11-02", *options)
        assert result.exit_code == 0
        assert result.stderr.splitlines()[0] == f"warning: identity override: {warning}"
    logged = [line.split(" WARNING ", 1)[1] for line in log.read_text().splitlines()
              if " WARNING " in line]
    assert logged == [f"identity override: {warning}"] * 4


def test_explain_shows_the_overrides_and_a_must_link_as_a_hop(env):
    cli = env["cli"]
    assert cli("identity", "link", "L4", "L5", "--reason", "same person").exit_code == 0
    assert cli("resolve").exit_code == 0
    identity = cli("explain", "L5", "--json").json()["identity"]
    path = env["rules"] / "identity_overrides.yaml"
    assert identity["overrides"] == [{"kind": "must_link", "reason": "same person",
                                      "location": f"{path}:5:3", "leads": ["web:L4"]}]
    assert identity["paths"] == [{"lead": "web:L4", "hops": [
        {"from": "web:L5", "to": "web:L4", "id_type": "must_link", "value": "same person"}]}]


def test_explain_paths_keep_must_links_with_one_reason_apart(tmp_path):
    # two entries with one reason are two links, not one value shared by all four leads
    rules = rules_dir(tmp_path)
    write(tmp_path / "web.csv", "lead_id,phone,created_at\n"
          "K1,13912340401,2026-10-01\nK2,13912340402,2026-10-02\n"
          "K3,13912340402,2026-10-03\nK4,13912340404,2026-10-04\n")
    cli = Cli(tmp_path / "ws.duckdb", rules)
    assert cli("ingest", tmp_path / "web.csv").exit_code == 0
    for a, b in (("K1", "K2"), ("K3", "K4")):
        assert cli("identity", "link", a, b, "--reason", "confirmed by phone call"
                   ).exit_code == 0
    assert cli("resolve").exit_code == 0
    link = {"id_type": "must_link", "value": "confirmed by phone call"}
    k1k2 = {"from": "web:K1", "to": "web:K2", **link}
    k2k3 = {"from": "web:K2", "to": "web:K3", "id_type": "phone", "value": "+8613912340402"}
    assert cli("explain", "K1", "--json", "--reveal").json()["identity"]["paths"] == [
        {"lead": "web:K2", "hops": [k1k2]},
        {"lead": "web:K3", "hops": [k1k2, k2k3]},
        {"lead": "web:K4", "hops": [k1k2, k2k3,
                                    {"from": "web:K3", "to": "web:K4", **link}]}]


def _append_many(rules_dir: str, worker: int, start) -> None:

    start.wait()
    for k in range(15):
        append_overrides(rules_dir, [{"kind": "must_link", "leads": [f"w{worker}|{k}", "x|1"],
                                      "reason": "same person"}])


def _append_at_once(folders: list[Path]) -> None:
    """A process per folder appending 15 entries each, all starting together."""
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(len(folders))
    workers = [context.Process(target=_append_many, args=(str(folder), w, start))
               for w, folder in enumerate(folders)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert [w.exitcode for w in workers] == [0] * len(folders)


def test_appends_from_processes_at_the_same_time_all_stay(tmp_path):
    # two `identity link` at once: each read the file, added its entry, wrote it back


    _append_at_once([tmp_path] * 3)
    text = (tmp_path / OVERRIDES_FILE).read_text(encoding="utf-8")
    assert text.count("- kind:") == 45
    assert sorted(p.name for p in tmp_path.iterdir()) == [OVERRIDES_FILE]  # no temp, no lock


def test_appends_through_a_link_and_to_its_file_at_the_same_time_all_stay(tmp_path):
    # one rules folder's file is a link to another's: each lock was on its own folder
    checkout, shared = tmp_path / "checkout", tmp_path / "shared"
    checkout.mkdir()
    shared.mkdir()
    (shared / OVERRIDES_FILE).write_text("overrides:\n", encoding="utf-8")
    (checkout / OVERRIDES_FILE).symlink_to(shared / OVERRIDES_FILE)
    _append_at_once([checkout, shared, checkout])
    assert (shared / OVERRIDES_FILE).read_text(encoding="utf-8").count("- kind:") == 45
    assert (checkout / OVERRIDES_FILE).is_symlink()


ENTRY = {"kind": "cannot_link", "leads": [{"source": "web", "lead_id": "L1"},
                                          {"source": "web", "lead_id": "L3"}],
         "reason": "two people", "by": "ops", "at": "2026-12-02T06:30:00"}
HAND = "  - kind: must_link\n    values: [{type: phone, value: '13911110002'}]\n"


@pytest.mark.parametrize("text, expected", [
    # a hand-edited list indented under its key: the entry is indented as its items
    ("overrides:\n" + HAND, "overrides:\n" + HAND + textwrap.indent(
        overrides_file.entry_text(ENTRY), "  ")),
    ("overrides: []  # none yet\n", "overrides:  # none yet\n"
     + overrides_file.entry_text(ENTRY)),
    ("", "overrides:\n" + overrides_file.entry_text(ENTRY)),
    ("# reviewed by ops\n", "# reviewed by ops\noverrides:\n"
     + overrides_file.entry_text(ENTRY)),
    # a Windows editor's file: its CRLF line ends and byte order mark stay as they were
    ("overrides:\r\n" + HAND.replace("\n", "\r\n"), "overrides:\r\n" + (
        HAND + textwrap.indent(overrides_file.entry_text(ENTRY), "  ")).replace("\n", "\r\n")),
    ("\ufeffoverrides: []\n", "\ufeffoverrides:\n" + overrides_file.entry_text(ENTRY)),
])
def test_an_entry_is_appended_as_an_item_of_the_list_as_written(tmp_path, text, expected):
    (tmp_path / "identity_overrides.yaml").write_bytes(text.encode("utf-8"))
    path = overrides_file.append_overrides(tmp_path, [ENTRY])
    assert path.read_bytes().decode("utf-8") == expected
    assert yaml.safe_load(expected.lstrip("\ufeff"))["overrides"][-1] == ENTRY


@pytest.mark.parametrize("text, message", [
    ("overrides:\n" + HAND + "note: kept last\n", "cannot append to its `overrides:` list"),
    ("overrides:\n  - kind: [\n", "identity_overrides.yaml:3:1: invalid YAML"),
])
def test_an_append_that_would_not_read_back_writes_nothing(tmp_path, text, message):
    path = tmp_path / "identity_overrides.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RuleError, match=re.escape(message)):
        overrides_file.append_overrides(tmp_path, [ENTRY])
    assert path.read_text(encoding="utf-8") == text


def test_explain_does_not_tie_a_lead_to_the_other_side_of_a_cut_value():
    # The cut is on B's email row; C's row of the same value stays 'ok'. C's explanation
    # named B as sharing it, although B is another person now.
    ws = workspace(*CHAIN)
    resolve(ws, config(cannot("A", "D", "different people")))
    got = explain_lead_identity(ws, "C")
    assert [(j["id_type"], [x["lead_id"] for x in j["leads"]]) for j in got["joined_by"]] \
        == [("wechat", ["D"])]


def test_an_unlink_checked_before_a_link_written_meanwhile_writes_nothing(env):
    # Two stewards at once: the unlink's rules were read before the link was appended.
    # Both were written, and every later command stopped on the contradictory file.

    cli, rules = env["cli"], env["rules"]
    before = load_identity_config(rules)  # what the unlink read
    assert cli("identity", "link", "L1", "L5", "--reason", "same").exit_code == 0
    path = rules / "identity_overrides.yaml"
    written = path.read_text(encoding="utf-8")
    with reading(cli.db) as ws, pytest.raises(
            RuleError, match="conflicting overrides: cannot_link of web/L1 and web/L5"):
        write_override(ws, rules, before, "cannot_link", "L1", "L5", "different")
    assert path.read_text(encoding="utf-8") == written


def test_an_append_keeps_the_files_mode_and_writes_through_a_link(env):
    cli, rules, root = env["cli"], env["rules"], env["root"]
    shared = root / "shared_rules"
    shared.mkdir()
    (shared / "identity_overrides.yaml").write_text("overrides:\n", encoding="utf-8")
    (shared / "identity_overrides.yaml").chmod(0o664)
    (rules / "identity_overrides.yaml").unlink(missing_ok=True)
    (rules / "identity_overrides.yaml").symlink_to(shared / "identity_overrides.yaml")
    assert cli("identity", "link", "L1", "L5", "--reason", "r").exit_code == 0
    assert (rules / "identity_overrides.yaml").is_symlink()
    assert 'lead_id: "L5"' in (shared / "identity_overrides.yaml").read_text(encoding="utf-8")
    assert (shared / "identity_overrides.yaml").stat().st_mode & 0o777 == 0o664


def test_the_run_warning_counts_the_cut_values_its_top_list_names(tmp_path):
    # L1 + L2 share a phone a cannot_link cuts, L6 + L7 a blocklisted one: the warning's
    # top list names both, so its count does too (it said "1 blocklisted and 0 over-shared")
    rules = rules_dir(tmp_path, overrides="overrides:\n- kind: cannot_link\n"
                      "  leads: [L1, L2]\n  reason: shop phone\n"
                      "- kind: must_link\n  leads: [L4, L9]\n  reason: r\n")  # a warning
    write(tmp_path / "web.csv", LEADS + "L6,13800138000,,2026-10-06\nL7,13800138000,,"
          "2026-10-07\n")
    cli = Cli(tmp_path / "ws.duckdb", rules)
    assert cli("ingest", tmp_path / "web.csv").exit_code == 0
    run = cli("run", "--as-of", "2026-11-01")
    assert run.exit_code == 0, run.stderr
    assert run.stderr.splitlines() == [
        f"warning: resolve: identity override: must_link at {rules}/identity_overrides.yaml"
        ":5:3: L9 not in the data (not applied)",
        "warning: resolve: 1 blocklisted, 0 over-shared and 1 cut (cannot_link) identifier "
        "values do not link — top: phone 138****8000 (blocklist, 2 records); phone "
        "138****5678 (cannot_link: shop phone, 1 record); see `leadctl export blocked`"]


def test_an_override_value_keys_as_resolve_keys_it():
    """Full-width forms read as ASCII and only ASCII letters lower-cased, as resolve keys a
    cell: `Ä1` and `ä1` are two values there (not one conflicting pair), `１@X.com` and
    `1@x.com` one."""
    def key(id_type: str, value: str) -> tuple[str, str]:
        return _value_key(ValueRef(id_type, value))
    assert key("wechat", "Ä1") != key("wechat", "ä1")
    assert key("email", "１@X.com") == key("email", "1@x.com") == ("email", "1@x.com")
