"""`rules test` runs funnel fixtures (`expect_funnels:`) like tag fixtures."""

from __future__ import annotations

import shutil

from conftest import RULES, Cli

FIXTURE = RULES / "tests" / "app_install_funnel.yaml"


def rules_copy(tmp_path, text: str):
    rules = tmp_path / "rules"
    (rules / "tests").mkdir(parents=True)
    for name in ("tags.yaml", "funnels.yaml"):
        shutil.copy(RULES / name, rules / name)
    (rules / "tests" / FIXTURE.name).write_text(text, encoding="utf-8")
    return Cli(tmp_path / "ws.duckdb", rules)


def test_shipped_funnel_fixture_passes(tmp_path):
    cli = rules_copy(tmp_path, FIXTURE.read_text(encoding="utf-8"))
    result = cli("rules", "test", "--json")
    assert result.exit_code == 0, result.stdout
    assert (result.json()["cases"], result.json()["checks"]) == (1, 19)


def test_a_wrong_funnel_expectation_fails_at_its_line(tmp_path):
    text = FIXTURE.read_text(encoding="utf-8").replace("installed: 3", "installed: 4")
    cli = rules_copy(tmp_path, text)
    result = cli("rules", "test", "--json")
    assert result.exit_code == 1
    [failure] = result.json()["failures"]
    line = text.splitlines().index("        installed: 4") + 1
    assert (failure["line"], failure["person"], failure["tag"], failure["expected"],
            failure["got"]) == (line, "all", "app_install.installed", 4, 3)


def test_an_unknown_step_is_a_rule_error(tmp_path):
    text = FIXTURE.read_text(encoding="utf-8").replace("card_bound: 1\n        joined",
                                                       "card_bund: 1\n        joined")
    result = rules_copy(tmp_path, text)("rules", "test")
    assert result.exit_code == 2
    assert "funnel 'app_install' has no step 'card_bund'" in result.stderr


def test_a_funnel_expectation_that_checks_nothing_is_a_rule_error(tmp_path):
    text = ("as_of: 2026-11-01\npersons:\n  - {id: p1}\nevents:\n"
            "  - {person: p1, event: push, days_ago: 3}\nexpect_funnels:\n"
            "  app_install:\n    groups: {all: {}}\n")
    result = rules_copy(tmp_path, text)("rules", "test")
    path = tmp_path / "rules" / "tests" / FIXTURE.name
    assert (result.exit_code, result.stderr) == (2, (
        f"error: {path}:7:3: {FIXTURE.stem}: funnel 'app_install' expects nothing (give a "
        "step's persons in a group)\n"))
