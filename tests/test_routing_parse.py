"""Routing rules validation: pools, reps, capacities, routes and lifecycle settings,
each problem with file:line:col, through `rules check` (API and CLI)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from leadctl.errors import RuleError
from leadctl.ruleset import load_rules
from tests.scoring_cases import TAGS


def check(tmp_path: Path, routing: str) -> list[str]:
    (tmp_path / "tags.yaml").write_text(TAGS, encoding="utf-8")
    (tmp_path / "routing.yaml").write_text(textwrap.dedent(routing), encoding="utf-8")
    with pytest.raises(RuleError) as exc:
        load_rules(tmp_path)
    return [f"{loc}: {msg}" for loc, msg in exc.value.problems]


def test_rules_check_reports_invalid_routing_with_locations(tmp_path):
    problems = check(tmp_path, """\
    pools:
      - name: east
        team: east
        allocation: round_robin
        reps:
          - {name: ann, capacity: 40}
      - name: west
        team: west
        allocation: weighted
        reps:
          - {name: ann, capacity: 30}
          - {name: bob, weight: 0}
      - name: sea
        allocation: lottery
    routes:
      - name: hot
        when: paid_amount_30d >= 'a lot'
        pool: east
      - name: everyone
        pool: nowhere
      - name: never
        when: city = 'Shanghai'
        pool: west
    default_pool: sea
    """)
    path = tmp_path / "routing.yaml"
    assert problems == [
        f"{path}:11:9: rep 'ann' has capacity 30 in pool 'west' but 40 in pool 'east' "
        f"(teams 'east' and 'west') at {path}:6:9: a rep has one capacity per period",
        f"{path}:12:29: pool 'west': rep 'bob': weight must be a number from 0.000001 to "
        "1000000 with at most 6 decimals, not 0",
        f"{path}:14:17: pool 'sea': allocation must be one of round_robin, weighted, "
        "least_loaded, claim, not 'lottery'",
        f"{path}:17:11: route 'hot' when: cannot compare number 'paid_amount_30d' with "
        "string 'a lot'",
        f"{path}:20:11: route 'everyone': unknown pool 'nowhere' (known: east, sea, west)",
        f"{path}:21:5: route 'never' can never match: route 'everyone' above ({path}:19:5) "
        "matches every person",
        f"{path}:24:15: default_pool 'sea' is never used: route 'everyone' ({path}:19:5) "
        "matches every person",
    ]


def test_rules_check_cli_prints_file_line_and_exits_2(tmp_path, cli):
    (tmp_path / "tags.yaml").write_text(TAGS, encoding="utf-8")
    (tmp_path / "routing.yaml").write_text(
        "pools:\n  - {name: sales, allocation: claim}\nroutes:\n"
        "  - {name: all, pool: sales}\n  - {name: late, when: grade = 'A', pool: sales}\n",
        encoding="utf-8")
    cli.rules = tmp_path
    result = cli("rules", "check")
    assert result.exit_code == 2
    assert (f"{tmp_path / 'routing.yaml'}:5:6: route 'late' can never match: route 'all' "
            f"above ({tmp_path / 'routing.yaml'}:4:6) matches every person") in result.stderr


def test_lifecycle_settings_are_validated(tmp_path):
    problems = check(tmp_path, """\
    pools:
      - {name: sales, allocation: round_robin, reps: [ann]}
    routes:
      - {name: all, pool: sales}
    lifecycle:
      dormant_after_days: 90
      dormant_pool: sales
      status_sla_days: {pending: 3, won: 2}
    """)
    path = tmp_path / "routing.yaml"
    assert problems == [
        f"{path}:7:17: lifecycle: dormant_pool 'sales' must be a claim pool, not round_robin",
        f"{path}:8:3: lifecycle: status_sla_days needs `sla_return_pool:` (a claim pool the "
        "expired leads go back to)",
        f"{path}:8:33: lifecycle: status_sla_days: unknown status 'won' (known: pending, "
        "contacting, unclear_intent, clear_intent, appointment)",
    ]


def test_starter_rules_pass_rules_check():
    ruleset = load_rules(Path(__file__).resolve().parent.parent / "rules")
    assert [p.name for p in ruleset.routing.pools] == [
        "key_accounts", "sales_east", "sales_south", "sales_other", "public_sea", "nurture",
        "dormant"]
    assert ruleset.scoring.grade_names == ["A", "B", "C", "D"]
    assert not [w for w in ruleset.warnings if "routing" in w or "scoring" in w]


def test_a_pool_listing_reps_without_an_allocation_warns_that_it_is_a_claim_pool(tmp_path,
                                                                                   cli):
    """The default allocation is claim: reps listed without one most likely meant a
    dealing pool, whose leads would otherwise never be dealt."""
    (tmp_path / "tags.yaml").write_text(TAGS, encoding="utf-8")
    (tmp_path / "routing.yaml").write_text(
        "pools:\n  - {name: sales_east, reps: [ann]}\n  - {name: sea}\n"
        "  - {name: held, allocation: claim, reps: [bob]}\nroutes:\n"
        "  - {name: all, pool: sales_east}\n", encoding="utf-8")
    cli.rules = tmp_path
    result = cli("rules", "check", "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json()["warnings"] == [
        f"{tmp_path / 'scoring.yaml'}: not found (the score stage is skipped)",
        f"{tmp_path / 'routing.yaml'}:2:6: pool 'sales_east' lists reps but no allocation: "
        "its leads wait for a claim (add allocation: claim to say so, or round_robin, "
        "weighted, least_loaded)"]
    assert load_rules(tmp_path).routing.pool("sales_east").allocation == "claim"


@pytest.mark.parametrize("value", ["any", "ANY", "[any]", "[Any]", "[login, any]"])
def test_reactivate_on_any_means_any_event(tmp_path, value):
    """`any` (any case, alone or as an item) is every event, not events of type 'any'."""
    (tmp_path / "tags.yaml").write_text(TAGS, encoding="utf-8")
    (tmp_path / "routing.yaml").write_text(
        "pools:\n  - {name: sales, allocation: claim}\nroutes:\n  - {name: all, pool: sales}\n"
        f"lifecycle:\n  reactivate_on: {value}\n", encoding="utf-8")
    life = load_rules(tmp_path).routing.lifecycle
    assert (life.reactivate_on, life.reactivate_on_locs) == (None, {})


def test_a_pool_or_route_defined_twice_still_has_its_inner_problems_reported(tmp_path):
    problems = check(tmp_path, """\
    pools:
      - {name: sales, allocation: round_robin, reps: [ann]}
      - {name: sales, allocation: lottery, reps: [ann]}
    routes:
      - {name: all, when: "score >= 0", pool: sales}
      - {name: all, when: "scor >= 0", pool: nowhere}
    """)
    path = tmp_path / "routing.yaml"
    assert problems == [
        f"{path}:3:6: pool 'sales' is defined twice (first at {path}:2:6)",
        f"{path}:3:31: pool 'sales': allocation must be one of round_robin, weighted, "
        "least_loaded, claim, not 'lottery'",
        f"{path}:6:6: route 'all' is defined twice (first at {path}:5:6)",
        f"{path}:6:24: route 'all' when: unknown field 'scor' (did you mean 'score'?) "
        "(known: channel, city, days_in_pool, first_seen, grade, last_seen, lead_count, name, "
        "owner, paid_amount_30d, pool, province, score, source, sources, status, status_days)",
        f"{path}:6:42: route 'all': unknown pool 'nowhere' (known: sales)",
    ]


def test_a_weight_is_a_number_with_at_most_6_decimals(tmp_path):
    """Dealing takes weights as whole millionths: 1.0e-320 (every key infinite: one rep got
    everything) and 7 decimals are refused; 0.3:0.9 is the share 1:3."""
    problems = check(tmp_path, """\
    pools:
      - name: sales
        allocation: weighted
        reps:
          - {name: ann, weight: 1.0e-320}
          - {name: bob, weight: 0.1234567}
          - {name: cat, weight: 1000000.5}
          - {name: dan, weight: '2'}
    routes:
      - {name: all, pool: sales}
    """)
    path = tmp_path / "routing.yaml"
    rule = "weight must be a number from 0.000001 to 1000000 with at most 6 decimals"
    assert problems == [
        f"{path}:5:29: pool 'sales': rep 'ann': {rule}, not 1.0e-320",
        f"{path}:6:29: pool 'sales': rep 'bob': {rule}, not 0.1234567",
        f"{path}:7:29: pool 'sales': rep 'cat': {rule}, not 1000000.5",
        f"{path}:8:29: pool 'sales': rep 'dan': {rule}, not '2'",
    ]
    (tmp_path / "routing.yaml").write_text(
        "pools:\n  - name: sales\n    allocation: weighted\n    reps:\n"
        "      - {name: ann, weight: 0.3}\n      - {name: bob, weight: 0.90}\n"
        "      - {name: cat, weight: 0.000001}\n      - {name: dan, weight: 1000000}\n"
        "routes:\n  - {name: all, pool: sales}\n", encoding="utf-8")
    reps = load_rules(tmp_path).routing.pool("sales").reps
    assert [(r.name, r.weight, r.share) for r in reps] == [
        ("ann", 0.3, 300000), ("bob", 0.9, 900000), ("cat", 0.000001, 1),
        ("dan", 1000000.0, 10**12)]


def test_a_rep_name_yaml_reads_as_a_number_is_the_text_written(tmp_path):
    """`010` is the rep 010 (not 8), `1.50` the rep 1.50, `no` the rep no: in both forms."""
    (tmp_path / "tags.yaml").write_text(TAGS, encoding="utf-8")
    (tmp_path / "routing.yaml").write_text(
        "pools:\n  - name: sales\n    allocation: round_robin\n    reps:\n"
        "      - {name: 010}\n      - {name: 1.50}\n      - no\n      - 0x10\n"
        "  - {name: east, allocation: round_robin, reps: [010, 2026-10-01]}\n"
        "routes:\n  - {name: all, pool: sales}\n", encoding="utf-8")
    routing = load_rules(tmp_path).routing
    assert [r.name for r in routing.pool("sales").reps] == ["010", "1.50", "no", "0x10"]
    assert [r.name for r in routing.pool("east").reps] == ["010", "2026-10-01"]
    problems = check(tmp_path, """\
    pools:
      - {name: sales, allocation: round_robin, reps: [010, '010', 1:30]}
    routes:
      - {name: all, pool: sales}
    """)
    path = tmp_path / "routing.yaml"
    assert problems == [
        f"{path}:2:56: pool 'sales': rep '010' is listed twice",
        f"{path}:2:63: pool 'sales': rep name '1:30' must be a word (letters, digits, _ . @ -)",
    ]


def test_a_rep_name_behind_an_anchor_or_an_alias_is_its_text(tmp_path):
    (tmp_path / "tags.yaml").write_text(TAGS, encoding="utf-8")
    (tmp_path / "routing.yaml").write_text(
        "pools:\n  - {name: sales, allocation: round_robin, reps: [&r 010, {name: &q 0x1F}]}\n"
        "  - {name: more, allocation: round_robin, reps: [*r, {name: *q}, &s 1.50]}\n"
        "  - {name: last, allocation: round_robin, reps: [*s, '011']}\n"
        "routes:\n  - {name: all, pool: sales}\n", encoding="utf-8")
    routing = load_rules(tmp_path).routing
    assert [r.name for r in routing.pool("sales").reps] == ["010", "0x1F"]
    assert [r.name for r in routing.pool("more").reps] == ["010", "0x1F", "1.50"]
    assert [r.name for r in routing.pool("last").reps] == ["1.50", "011"]


def test_a_pool_named_as_yaml_reads_a_number_is_reported_once_as_written(tmp_path):
    """`name: 010` is reported where it is declared, as 010 (not 8); the routes and
    lifecycle naming it (`pool: 010`, `from: [010]`) say nothing of their own."""
    problems = check(tmp_path, """\
    pools:
      - name: 010
        allocation: claim
      - name: no
        allocation: claim
      - name: sales
        allocation: claim
    routes:
      - name: hot
        when: score > 50
        pool: 010
      - {name: back, pool: sales, reassign: true, from: [010, no, 1.50]}
    default_pool: no
    lifecycle: {status_sla_days: {contacting: 3}, sla_return_pool: 010}
    """)
    path = tmp_path / "routing.yaml"
    assert problems == [
        f"{path}:2:11: pool name '010' must be lower_snake_case (letters, digits, _)",
        f"{path}:4:11: pool name no is read as true/false, not a name: quote it ('no')",
        f"{path}:12:63: route 'back': from: unknown pool '1.50' (known: sales)",
    ]


def test_a_pool_reference_that_is_a_list_is_a_problem_not_a_crash(tmp_path):
    problems = check(tmp_path, """\
    pools:
      - {name: sales, allocation: claim}
    routes:
      - {name: hot, when: score > 50, pool: [sales]}
      - {name: all, pool: sales, reassign: true, from: [[sales]]}
    """)
    path = tmp_path / "routing.yaml"
    assert problems == [
        f"{path}:4:41: route 'hot': `pool:` must name one pool",
        f"{path}:5:53: route 'all': from: must be a pool name or a list of pool names",
    ]
