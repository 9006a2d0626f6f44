"""`leadctl explain LEAD`: identity links, tag values with their rules, the score
breakdown, the routing decision — and graceful degradation when parts are missing."""

from __future__ import annotations

import duckdb
import pytest
from conftest import Cli, write
from rich.console import Console
from test_portrait import seed_workspace

from leadctl.cli.explain import _score
from leadctl.views.explain import mask_tree

TAGS_YAML = """\
tags:
  - name: paid_amount_30d
    kind: metric
    category: value
    description: Paid order amount in the last 30 days
    event: order_paid
    agg: sum
    field: amount
    window: 30d
  - name: value_tier
    kind: tiers
    category: value
    levels:
      - name: high
        when: paid_amount_30d >= 500
    default: low
"""
SCORING_YAML = """\
grades:
  A: 70
  D: 0
rules:
  - name: high_value
    description: High value tier
    when: value_tier = 'high'
    points: 60
  - name: recent_spend
    points: paid_amount_30d / 20
"""
ROUTING_YAML = """\
pools:
  - {name: sales_sh, team: east, allocation: claim}
routes:
  - name: high_value
    when: grade = 'A'
    pool: sales_sh
"""
BREAKDOWN_SQL = """
INSERT INTO score_breakdown VALUES ('P1', 'high_value', 60), ('P1', 'recent_spend', 27.5);
INSERT INTO lead_identifiers (lead_key, id_type, raw_value, value, status) VALUES
 (3, 'phone', '13800138000', '+8613800138000', 'blocked');
"""


@pytest.fixture
def ecli(tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    for name, text in (("tags.yaml", TAGS_YAML), ("scoring.yaml", SCORING_YAML),
                       ("routing.yaml", ROUTING_YAML)):
        (rules / name).write_text(text, encoding="utf-8")
    cli = Cli(tmp_path / "ws.duckdb", rules)
    seed_workspace(cli.db, BREAKDOWN_SQL)
    return cli


def explain_json(cli, *args):
    result = cli("explain", *args, "--json")
    assert result.exit_code == 0, result.stderr
    return result.json()


def test_identity_part_masks_values(ecli):
    data = explain_json(ecli, "L002")
    assert (data["person_id"], data["query"]) == (
        "P1", {"text": "L002", "matched_by": ["lead_id"]})
    identity = data["identity"]
    assert (identity["source"], identity["lead"]["lead_id"], identity["person_leads"]) == (
        "identity.explain", "L002", 3)
    assert [(i["id_type"], i["raw_value"], i["value"]) for i in identity["identifiers"]] == [
        ("phone", "138****5678", "138****5678"), ("wechat", "Zh****88", "zh****88")]
    assert [p["lead"] for p in identity["paths"]] == ["sem:L001", "agent:L003"]


def test_reveal_shows_identifier_values(ecli):
    identity = explain_json(ecli, "L002", "--reveal")["identity"]
    assert [(i["raw_value"], i["value"]) for i in identity["identifiers"]] == [
        ("+86 138-1234-5678", "+8613812345678"), ("ZhangSan_88", "zhangsan_88")]


def test_tags_with_their_rule_definitions(ecli):
    tags = {t["tag"]: t for t in explain_json(ecli, "L001")["tags"]["values"]}
    assert tags["value_tier"]["value"] == "high"
    assert tags["value_tier"]["rule"]["levels"] == [
        {"level": "high", "when": "paid_amount_30d >= 500"}]
    assert tags["value_tier"]["rule"]["default"] == "low"
    assert tags["value_tier"]["rule"]["at"].endswith("tags.yaml:10:5")
    assert {k: tags["paid_amount_30d"]["rule"][k] for k in ("agg", "field", "events",
                                                            "window_days")} == {
        "agg": "sum", "field": "amount", "events": ["order_paid"], "window_days": 30}
    assert tags["avg_order_amount"] == {"tag": "avg_order_amount", "value": 183.33,
                                        "kind": None, "category": None, "description": None}


def test_score_breakdown_adds_up(ecli):
    score = explain_json(ecli, "L001")["score"]
    assert (score["score"], score["grade"], score["points_total"]) == (87.5, "A", 87.5)
    assert [(b["rule"], b["points"], b["when"]) for b in score["breakdown"]] == [
        ("high_value", 60.0, "value_tier = 'high'"), ("recent_spend", 27.5, None)]
    assert score["breakdown"][1]["points_expr"] == "paid_amount_30d / 20"
    assert score["grades"] == [{"grade": "A", "min": 70.0}, {"grade": "D", "min": 0.0}]


def test_routing_decision(ecli):
    routing = explain_json(ecli, "L001")["routing"]
    assert (routing["state"]["pool"], routing["state"]["owner"], routing["state"]["reason"]) == (
        "sales_sh", "rep_li", "route high_value")
    assert routing["route"]["route"] == "high_value"
    assert routing["route"]["when"] == "grade = 'A'"
    assert [row["rule"] for row in routing["log"]] == ["high_value", "default"]


def test_missing_parts_degrade(ecli):
    # P3 has a lead but no tags, score or routing yet.
    data = explain_json(ecli, "P3")
    assert data["tags"] == {"available": False,
                            "note": "no tag values for this person (run `leadctl tag`)"}
    assert data["score"] == {"available": False, "note": "not scored yet (run `leadctl score`)"}
    assert data["routing"] == {"available": False, "note": "not routed yet (run `leadctl route`)"}
    text = ecli("explain", "P3").stdout
    assert "not scored yet (run `leadctl score`)" in text and "not routed yet" in text


def test_broken_rules_still_explain(ecli):
    (ecli.rules / "tags.yaml").write_text("tags: [{name: x, kind: nope}]\n")
    tags = explain_json(ecli, "L001")["tags"]
    assert tags["available"] is True
    assert tags["note"].startswith("rule definitions not shown: ")
    assert "rule" not in tags["values"][0]


def test_rule_files_edited_since_the_stored_values_are_said(ecli):
    with duckdb.connect(str(ecli.db)) as con:  # as a tag and a score run with other files
        con.execute("INSERT INTO meta VALUES ('tags_rules_hash', 'before'), "
                    "('scoring_rules_hash', 'before')")
    got = explain_json(ecli, "L001")
    assert (got["tags"]["note"], got["score"]["note"]) == (
        "tags.yaml has changed since these values were computed: the definitions shown are "
        "the file's now; run `leadctl tag` (or `tag --dry-run` to preview) to recompute",
        "scoring.yaml has changed since this score was computed: the definitions shown are "
        "the file's now; run `leadctl score` (or `score --dry-run` to preview) to recompute")
    text = " ".join(ecli("explain", "L001").stdout.split())
    assert "tags.yaml has changed since these values were computed" in text
    assert "scoring.yaml has changed since this score was computed" in text


def test_text_output_and_unknown_lead(ecli):
    result = ecli("explain", "L001")
    assert result.exit_code == 0, result.stderr
    for expected in ("explain P1", "its identifier values:", "138****5678", "high_value",
                     "+60", "route high_value", "grade = 'A'"):
        assert expected in result.stdout, expected
    assert "13812345678" not in result.stdout
    missing = ecli("explain", "L404")
    assert (missing.exit_code, missing.stderr) == (
        1, "error: no lead or person matches 'L404' (tried lead id, person id)\n")


def test_mask_tree():
    assert mask_tree({"id_type": "email", "value": "zhang@qq.com", "reason": "shared "
                      "13812345678", "phone": "+8613900001111", "lead": "L1"}) == {
        "id_type": "email", "value": "z***@qq.com", "reason": "shared 138****5678",
        "phone": "139****1111", "lead": "L1"}


def test_explain_after_resolve_shows_the_joining_value(tmp_path):

    cli = Cli(tmp_path / "ws.duckdb")
    write(tmp_path / "a.csv", "lead_id,phone,email\nA1,13912345678,x@y.cn\n")
    write(tmp_path / "b.csv", "lead_id,phone,email\nB1,,X@Y.CN \n")
    assert cli("ingest", tmp_path / "a.csv", tmp_path / "b.csv").exit_code == 0
    assert cli("resolve").exit_code == 0
    out = cli("explain", "A1").stdout
    assert "its identifier values" in out
    assert "b/B1" in out and "x***@y.cn" in out


def test_score_points_are_written_out_in_the_text_breakdown():
    # `:+g` wrote 1234571.1 as +1.23457e+06: the rows did not add up to the header's sum


    part = {"score": 1234613.23, "grade": "A", "points_total": 1234613.23, "breakdown": [
        {"rule": "loyalty", "points": 1234571.1, "points_expr": "paid * 587.891"},
        {"rule": "recent", "points": 42.13, "when": "x > 1"},
        {"rule": "penalty", "points": -0.0 - 0.5, "when": "y"}]}
    console = Console(width=120, record=True)
    console.print(_score(part))
    text = console.export_text()
    assert "+1234571.1" in text and "+42.13" in text and "-0.5" in text
    assert "e+06" not in text
