"""`rules test` reads a fixture as README says: events as ingest reads the same data,
a wrong-typed value or a typo is a located error (exit 2) with its near miss, and a
rules folder without fixtures checks nothing, so it does not pass."""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import RULES, Cli


@pytest.fixture
def rules(tmp_path):
    """The shipped rules without their fixtures, and an empty tests/ folder."""
    folder = tmp_path / "rules"
    shutil.copytree(RULES, folder, ignore=shutil.ignore_patterns("tests"))
    (folder / "tests").mkdir()
    return folder


def run(rules, text: str, *args: str):
    fixture = rules / "tests" / "zz.yaml"
    fixture.write_text(text)
    return fixture, Cli(rules.parent / "ws.duckdb", rules)("rules", "test", *args)


def test_an_unknown_expected_tag_or_step_check_names_the_near_miss(rules):
    fixture, result = run(rules, "as_of: 2026-11-01\npersons: [{id: p1}]\n"
                                 "expect: {p1: {paid_amout_30d: 0}}\n")
    assert (result.exit_code, result.stderr) == (2, (
        f"error: {fixture}:3:15: zz: unknown tag or key 'paid_amout_30d' in expect "
        "(did you mean 'paid_amount_30d'?)\n"))
    fixture, result = run(rules, "as_of: 2026-11-01\npersons: [{id: p1}]\n"
                                 "expect_funnels:\n  app_register_basic:\n    groups:\n"
                                 "      all: {pushed: {conversoin: 0}}\n")
    assert (result.exit_code, result.stderr) == (2, (
        f"error: {fixture}:6:13: zz: unknown step check 'conversoin' (did you mean "
        "'conversion'?) (known: persons, conversion, of_previous, median_hours_from_previous,"
        " below_min)\n"))


def test_a_rules_folder_without_fixtures_checks_nothing_and_fails(rules):
    """An empty or missing tests/ passed: `rules test ok: 0/0 expectations passed`, exit 0."""
    cli = Cli(rules.parent / "ws.duckdb", rules)
    for folder in ("empty", "missing"):
        if folder == "missing":
            (rules / "tests").rmdir()
        result = cli("rules", "test")
        assert (result.exit_code, result.stdout, result.stderr) == (
            1, "", f"error: no fixture in {rules / 'tests'}: nothing was checked\n")
        doc = cli("rules", "test", "--json").json()
        assert (doc["ok"], doc["files"], doc["cases"], doc["error"], doc["exit_code"]) == (
            False, [], 0, {"type": "DataCheckFailed", "location": None, "message":
                           f"no fixture in {rules / 'tests'}: nothing was checked"}, 1)
