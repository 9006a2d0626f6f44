"""identity suggest / accept / reject: evidence, scores, reviewed pairs, the overrides written."""

from __future__ import annotations

import shutil

import pytest
import yaml
from conftest import RULES, Cli, write

from leadctl.errors import NotFound, UsageError
from leadctl.identity.config import IdentityConfig
from leadctl.identity.suggest import parse_pair, review, suggest
from leadctl.workspace import reading
from tests.test_identity_support import person_of, resolve, workspace

LEADS = [
    # one transposition, same name
    {"lead_id": "A1", "name": "王伟", "phone": "13812345678", "created_at": "2026-01-01"},
    {"lead_id": "A2", "name": " 王 伟 ", "phone": "138-1234-5687", "created_at": "2026-01-02"},
    # a digit missing (an invalid number), same name
    {"lead_id": "B1", "name": "李娜", "phone": "13911112222", "created_at": "2026-01-03"},
    {"lead_id": "B2", "name": "李娜", "phone": "1391111222", "created_at": "2026-01-04"},
    # e-mail domain typo, different names: weaker
    {"lead_id": "C1", "name": "张敏", "email": "zhangmin88@qq.com", "created_at": "2026-01-05"},
    {"lead_id": "C2", "name": "赵强", "email": "zhangmin88@QQ.con", "created_at": "2026-01-06"},
    # device id without separators, no names
    {"lead_id": "D1", "device_id": "AB12CD34-EF56-7890-AB12-CD34EF567890",
     "created_at": "2026-01-07"},
    {"lead_id": "D2", "device_id": "ab12cd34ef567890ab12cd34ef567890", "created_at": "2026-01-08"},
    # ID card one digit off (fails its check digit), same birth date, sex and name
    {"lead_id": "E1", "name": "陈静", "id_card": "110105199003071239", "created_at": "2026-01-09"},
    {"lead_id": "E2", "name": "陈静", "id_card": "110105199003071539", "created_at": "2026-01-10"},
    # a phone one digit away but different names: nothing
    {"lead_id": "F1", "name": "刘洋", "phone": "13700001111", "created_at": "2026-01-11"},
    {"lead_id": "F2", "name": "周杰", "phone": "13700001112", "created_at": "2026-01-12"},
    # same name, phone one digit away, but two different valid ID cards: two people
    {"lead_id": "G1", "name": "孙丽", "phone": "13600002222", "id_card": "110105199003071247",
     "created_at": "2026-01-13"},
    {"lead_id": "G2", "name": "孙丽", "phone": "13600002223", "id_card": "310101198506120028",
     "created_at": "2026-01-14"},
    # one side without a name, same city: a weak suggestion
    {"lead_id": "H1", "city": "上海", "phone": "13500003333", "created_at": "2026-01-15"},
    {"lead_id": "H2", "name": "吴刚", "city": "Shanghai", "phone": "13500003334",
     "created_at": "2026-01-16"},
]


@pytest.fixture(scope="module")
def ws():
    ws = workspace(*LEADS)
    resolve(ws)
    return ws


def _pairs(ws, result) -> list[tuple]:
    lead_of = {person: lead for lead, person in person_of(ws).items()}
    return [(lead_of[s["a"]] + ":" + lead_of[s["b"]], s["score"],
             [(e["kind"], e["detail"], e["weight"], e["names"]) for e in s["evidence"]])
            for s in result["suggestions"]]


def _sorted(pairs):  # the pair's leads in lead order, for readable expectations
    return sorted((":".join(sorted(p.split(":"))), score, ev) for p, score, ev in pairs)


def test_each_kind_of_evidence_scored(ws):
    got = _sorted(_pairs(ws, suggest(ws, IdentityConfig(), None, min_score=0)))
    assert got == [
        ("A1:A2", 0.9, [("phone_typo", "two adjacent digits swapped", 0.9, "same")]),
        ("B1:B2", 0.9, [("phone_typo", "a digit missing", 0.9, "same")]),
        ("C1:C2", 0.6, [("email_domain_typo", "same mailbox, domain typo", 0.6, "different")]),
        ("D1:D2", 0.9, [("device_id_format", "same id but for case and separators", 0.9,
                         "nameless")]),
        ("E1:E2", 0.9, [("id_card", "one character off", 0.9, "same")]),
        ("H1:H2", 0.6, [("phone_typo", "one digit different", 0.6, "nameless")]),
    ]


def test_default_min_score_masks_values_and_orders_by_score(ws):
    result = suggest(ws, IdentityConfig(), None)
    assert (result["total"], result["min_score"]) == (4, 0.8)
    first = result["suggestions"][0]
    assert [s["score"] for s in result["suggestions"]] == [0.9] * 4
    person = person_of(ws)
    a_lead = {person["A1"], person["A2"]}
    pair = next(s for s in result["suggestions"] if {s["a"], s["b"]} == a_lead)
    assert pair["name"] == "王*"
    assert {pair["evidence"][0]["a"]["value"], pair["evidence"][0]["b"]["value"]} == {
        "138****5678", "138****5687"}
    assert first["a"] < first["b"]


def _rules(tmp_path, overrides: str | None = None):
    rules = tmp_path / "rules"
    rules.mkdir()
    if overrides:
        write(rules / "identity_overrides.yaml", overrides)
    return rules


def test_reviewed_pairs_are_not_suggested_again(ws, tmp_path):
    rules = _rules(tmp_path, "overrides:\n"
                   "- kind: cannot_link\n  leads: [{source: s, lead_id: A1}, A2]\n  reason: x\n"
                   "- kind: must_link\n  leads: [{source: s, lead_id: B2}, {source: s, "
                   "lead_id: B1}]\n")
    result = suggest(ws, IdentityConfig(), rules)
    assert result["reviewed"] == {"must_link": 1, "cannot_link": 1}
    leads = {frozenset(p.split(":")) for p, _, _ in _pairs(ws, result)}
    assert leads == {frozenset({"D1", "D2"}), frozenset({"E1", "E2"})}


def test_accept_all_above_writes_must_links_of_the_evidence_leads(ws, tmp_path):
    # one lead per person here: the evidence leads (see the split test below for a
    # person whose earliest lead is not the one that matched)
    rules = _rules(tmp_path)
    out = review(ws, IdentityConfig(), rules, "must_link", all_above=0.9, by="ops")
    text = (rules / "identity_overrides.yaml").read_text(encoding="utf-8")
    entries = yaml.safe_load(text)["overrides"]
    assert sorted((e["kind"], [lead["lead_id"] for lead in e["leads"]], e["by"])
                  for e in entries) == [
        ("must_link", ["A1", "A2"], "ops"), ("must_link", ["B1", "B2"], "ops"),
        ("must_link", ["D1", "D2"], "ops"), ("must_link", ["E1", "E2"], "ops")]
    assert all(lead["source"] == "s" for e in entries for lead in e["leads"])
    assert len(out["written"]) == 4
    reason = next(e["reason"] for e in entries if e["leads"][0]["lead_id"] == "B1")
    assert reason == "suggested match accepted (score 0.9: phone_typo a digit missing)"
    # accepted pairs are reviewed: accepting again writes nothing
    again = review(ws, IdentityConfig(), rules, "must_link", all_above=0.9, by="ops")
    assert again["written"] == []
    assert suggest(ws, IdentityConfig(), rules)["total"] == 0


def test_reject_one_pair_writes_a_cannot_link(ws, tmp_path):
    rules = _rules(tmp_path)
    person = person_of(ws)
    pair = f"{person['C2']}:{person['C1']}"  # either order
    out = review(ws, IdentityConfig(), rules, "cannot_link", pairs=[pair], reason="two people",
                 by="ops")
    entries = yaml.safe_load((rules / "identity_overrides.yaml").read_text())["overrides"]
    assert [(e["kind"], e["leads"], e["reason"], e["by"]) for e in entries] == [
        ("cannot_link", [{"source": "s", "lead_id": "C1"}, {"source": "s", "lead_id": "C2"}],
         "two people", "ops")]
    assert out["written"][0]["score"] == 0.6
    with pytest.raises(UsageError, match="reviewed already"):
        review(ws, IdentityConfig(), rules, "cannot_link", pairs=[pair])


def test_pairs_that_are_not_suggestions_or_not_pairs(ws, tmp_path):
    person = person_of(ws)
    with pytest.raises(NotFound, match="is not a suggested match"):
        review(ws, IdentityConfig(), _rules(tmp_path), "must_link",
               pairs=[f"{person['F1']}:{person['F2']}"])
    with pytest.raises(UsageError, match="must be two person ids"):
        parse_pair("A1:A2")
    with pytest.raises(UsageError, match="name the pairs"):
        review(ws, IdentityConfig(), tmp_path, "must_link")
    assert parse_pair("Pbbbbbbbbbbbb, PAAAAAAAAAAAA") == ("Paaaaaaaaaaaa", "Pbbbbbbbbbbbb")


CSV = ("lead_id,name,phone,city,created_at\n"
       "L1,王伟,13812345678,上海,2026-10-01\nL2,王伟,13812345687,上海,2026-10-02\n"
       "L3,李娜,13900001111,北京,2026-10-03\n")


def _rules_and_cli(tmp_path):
    """A copy of the shipped rules (identity_overrides.yaml is written there) and a CLI."""
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    return rules, Cli(tmp_path / "ws.duckdb", rules)


def test_cli_suggest_accept_json(tmp_path):
    rules, cli = _rules_and_cli(tmp_path)
    write(tmp_path / "web.csv", CSV)
    assert cli("ingest", tmp_path / "web.csv").exit_code == 0
    assert cli("resolve").exit_code == 0
    result = cli("identity", "suggest", "--json")
    got = result.json()
    assert (result.exit_code, len(got["suggestions"])) == (0, 1)
    assert set(got["suggestions"][0]) == {"a", "b", "score", "evidence", "name"}
    assert got["suggestions"][0]["score"] == 0.9
    accepted = cli("identity", "accept", "--all-above", "0.9", "--json")
    assert accepted.exit_code == 0
    entries = yaml.safe_load((rules / "identity_overrides.yaml").read_text())["overrides"]
    assert [e["leads"] for e in entries] == [[{"source": "web", "lead_id": "L1"},
                                             {"source": "web", "lead_id": "L2"}]]
    assert cli("identity", "suggest", "--json").json()["suggestions"] == []
    bad = cli("identity", "accept", "--all-above", "1.5", "--json")
    assert (bad.exit_code, bad.json()["error"]["message"]) == (
        2, "--all-above must be a number from 0 to 1, not '1.5'")
    text = cli("identity", "suggest", "--min-score", "0")
    assert (text.exit_code, text.stderr) == (
        0, "reviewed already (overrides, not suggested): 1 pair(s) accepted, 0 rejected\n")


WEB = ("lead_id,name,phone,email,device_id,id_card,city,created_at\n"
       "W1,钱一,13912349999,,AB-CD-EF-12-34-56-78,110101199003071233,北京,2026-10-01 09:00:00\n"
       "W2,孙二,13912349999,,,,上海,2026-09-01 09:00:00\n"
       "W3,钱一,13912348888,,abcdef12345678,110101199003071235,北京,2026-10-03 09:00:00\n")


def _reject_the_suggestion(tmp_path, web_csv: str):
    """A night over `web_csv` (source web) with one suggestion, which qa rejects: (rules,
    cli, env, the pair, the reject's result)."""
    rules, cli = _rules_and_cli(tmp_path)
    (tmp_path / "in").mkdir()
    write(tmp_path / "in" / "web.csv", web_csv)
    env = {"LEADCTL_USER": "qa"}
    assert cli("run", "--inbox", tmp_path / "in", "--as-of", "2026-11-01").exit_code == 0
    [s] = cli("identity", "suggest", "--json").json()["suggestions"]
    pair = f"{s['a']}:{s['b']}"
    return rules, cli, env, pair, cli("identity", "reject", pair, "--reason", "two people",
                                      env=env)


def test_a_rejected_pair_stays_rejected_after_a_split_parts_its_earliest_lead(tmp_path):
    # W1 (evidence) and W2 (earlier: the person's earliest lead) share a phone; W3 matches
    # W1 only. The reject binds W1 + W3, the leads that matched, so unlinking W1 from W2
    # leaves the pair reviewed: not suggested again, and accept refuses it (exit 2).
    rules, cli, env, pair, rejected = _reject_the_suggestion(tmp_path, WEB)
    assert (rejected.exit_code, rejected.stdout) == (
        0, f"cannot_link {pair} (score 0.99): web/W1 + web/W3\n")
    assert cli("resolve", "--as-of", "2026-11-02").exit_code == 0
    assert cli("identity", "unlink", "W1", "W2", "--reason", "shared shop phone",
               env=env).exit_code == 0
    assert cli("resolve", "--as-of", "2026-11-03").exit_code == 0
    again = cli("identity", "suggest", "--json").json()
    assert (again["suggestions"], again["reviewed"]) == (
        [], {"must_link": 0, "cannot_link": 2})
    accepted = cli("identity", "accept", pair, "--json", env=env)
    assert (accepted.exit_code, accepted.json()["error"]["message"]) == (
        2, f"{pair} was reviewed already (an override in identity_overrides.yaml or "
           "identity.yaml names both persons); the next `leadctl resolve` applies it")
    entries = yaml.safe_load((rules / "identity_overrides.yaml").read_text())["overrides"]
    assert [(e["kind"], [x["lead_id"] for x in e["leads"]]) for e in entries] == [
        ("cannot_link", ["W1", "W3"]), ("cannot_link", ["W1", "W2"])]


TYPO = ("lead_id,name,phone,wechat,created_at\n"
        "X1,闫敏,1391234567,,2026-09-01 09:00:00\n"  # a digit missing: invalid, no link
        "Y1,闫敏,13912345670,wx_y1,2026-09-02 09:00:00\n"
        "Y2,闫敏,13912345670,,2026-09-03 09:00:00\n"
        "Y3,闫敏,13912345670,,2026-09-04 09:00:00\n")


def test_a_rejected_pair_stays_rejected_when_the_matched_lead_leaves_with_its_value_behind(
        tmp_path):
    # The reject binds X1 + Y1 (the evidence leads). Unlinking Y1 from Y2 cuts Y1's phone:
    # Y1 leaves, and Y2 + Y3 keep the person's id and the very phone X1's typo matched.
    # The same pair, on the same evidence (X1 ~ Y2, the same two values), stays reviewed:
    # not suggested, `accept` refuses it (exit 2), `why` labels it reviewed.
    rules, cli, env, pair, rejected = _reject_the_suggestion(tmp_path, TYPO)
    assert (rejected.exit_code, rejected.stdout) == (
        0, f"cannot_link {pair} (score 0.90): web/X1 + web/Y1\n")
    assert cli("identity", "unlink", "Y1", "Y2", "--reason", "agent's phone",
               env=env).exit_code == 0
    assert cli("run", "--as-of", "2026-11-02").exit_code == 0
    with reading(tmp_path / "ws.duckdb") as ws:
        assert ws.rows("SELECT l.lead_id, li.status FROM lead_identifiers li JOIN leads l "
                       "USING (lead_key) WHERE li.id_type = 'phone' ORDER BY 1") == [
            {"lead_id": "X1", "status": "invalid"}, {"lead_id": "Y1", "status": "cut"},
            {"lead_id": "Y2", "status": "ok"}, {"lead_id": "Y3", "status": "ok"}]
        person = person_of(ws)
    assert ":".join(sorted((person["X1"], person["Y2"]))) == pair  # the same two ids
    again = cli("identity", "suggest", "--min-score", "0", "--json").json()
    assert (again["suggestions"], again["reviewed"]) == (
        [], {"must_link": 0, "cannot_link": 3})
    accepted = cli("identity", "accept", pair, "--json", env=env)
    assert (accepted.exit_code, accepted.json()["error"]["message"]) == (
        2, f"{pair} was reviewed already (an override in identity_overrides.yaml or "
           "identity.yaml judged the evidence it rests on: it names one of its leads and the "
           "lead whose value the other matches); to link or separate them anyway use "
           "`leadctl identity link / unlink`")
    why = cli("identity", "why", "X1", "Y2", "--json").json()
    assert (why["suggestion"]["score"], why["suggestion"]["reviewed"]) == (0.9, "cannot_link")
    text = cli("identity", "why", "X1", "Y2").stdout.splitlines()
    assert text[1] == f"reviewed match (cannot_link: not suggested again) {pair} score 0.90:"
    entries = yaml.safe_load((rules / "identity_overrides.yaml").read_text())["overrides"]
    assert [(e["kind"], [x["lead_id"] for x in e["leads"]]) for e in entries] == [
        ("cannot_link", ["X1", "Y1"]), ("cannot_link", ["Y1", "Y2"])]


# Keys that more records carry than identity.yaml's cap for their type are no evidence:
# three numbers one digit apart share a key (the 10 digits they have in common).
CAPPED = [
    {"lead_id": "K1", "name": "张伟", "phone": "13912345670", "created_at": "2026-01-01"},
    {"lead_id": "K2", "name": "张伟", "phone": "13912345671", "created_at": "2026-01-02"},
    {"lead_id": "K3", "name": "张伟", "phone": "13912345672", "created_at": "2026-01-03"},
    {"lead_id": "M1", "name": "李娜", "device_id": "99887766-5544-3322-1100-aabbccddeeff",
     "created_at": "2026-01-04"},
    {"lead_id": "M2", "name": "李娜", "device_id": "99887766554433221100AABBCCDDEEFF",
     "created_at": "2026-01-05"},
    {"lead_id": "M3", "name": "李娜", "device_id": "99887766:5544:3322:1100:aabbccddeeff",
     "created_at": "2026-01-06"},
    {"lead_id": "N1", "name": "陈静", "id_card": "110101199003074514", "created_at": "2026-01-07"},
    {"lead_id": "N2", "name": "陈静", "id_card": "110101199003074515", "created_at": "2026-01-08"},
    {"lead_id": "N3", "name": "陈静", "id_card": "110101199003074516", "created_at": "2026-01-09"},
]


@pytest.mark.parametrize("cap, by_type, pairs", [
    (20, {}, ["K1:K2", "K1:K3", "K2:K3", "M1:M2", "M1:M3", "M2:M3", "N1:N2", "N1:N3", "N2:N3"]),
    (2, {}, []),  # every key over the cap
    (20, {"device_id": 2}, ["K1:K2", "K1:K3", "K2:K3", "N1:N2", "N1:N3", "N2:N3"]),
    (20, {"phone": 2, "id_card": 2}, ["M1:M2", "M1:M3", "M2:M3"]),
])
def test_a_key_carried_by_more_records_than_its_types_cap_is_no_evidence(cap, by_type, pairs):
    ws = workspace(*CAPPED)
    resolve(ws)
    config = IdentityConfig(max_records_per_value=cap, cap_by_type=by_type)
    got = _sorted(_pairs(ws, suggest(ws, config, None, min_score=0)))
    assert [p for p, _, _ in got] == pairs


def test_a_domain_typo_one_edit_from_two_common_domains_meets_both():
    # sina.con is one edit from sina.com and sina.cn: it is keyed under each
    ws = workspace(*({"lead_id": f"E{i}", "name": "张伟", "email": f"zhangwei88@{domain}",
                      "created_at": f"2026-01-0{i}"}
                     for i, domain in enumerate(("sina.com", "sina.con", "sina.cn"), start=1)))
    resolve(ws)
    got = _sorted(_pairs(ws, suggest(ws, IdentityConfig(), None, min_score=0)))
    assert got == [(p, 0.9, [("email_domain_typo", "same mailbox, domain typo", 0.9, "same")])
                   for p in ("E1:E2", "E2:E3")]


@pytest.mark.parametrize("kind, message", [
    ("must_link", "name the pairs to review (PERSON_A:PERSON_B) or give --all-above S"),
    ("cannot_link", "name the pairs to review (PERSON_A:PERSON_B)")])  # reject has no option
def test_a_review_naming_no_pair_offers_only_the_commands_own_options(ws, tmp_path, kind,
                                                                     message):
    with pytest.raises(UsageError) as refused:
        review(ws, IdentityConfig(), _rules(tmp_path), kind)
    assert str(refused.value) == message
