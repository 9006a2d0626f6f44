"""Each tag kind is one class in tagging/kinds.py, one fixture and one line of docs:
the shipped rules use every kind, a fixture expects a value of each, the README's list
of kinds names each."""

from __future__ import annotations

from pathlib import Path

from leadctl.ruletest import fixture_files, load_cases
from leadctl.tagging.kinds import KINDS
from leadctl.tagging.parse import load_tag_rules
from tests.conftest import RULES

README = Path(__file__).resolve().parent.parent / "README.md"


def test_kinds_are_listed_once_in_message_order():
    assert list(KINDS) == ["tiers", "metric", "first", "last", "top", "active_days", "streak",
                           "rfm", "expr"]
    assert all(name == kind.name for name, kind in KINDS.items())


def test_every_kind_has_a_shipped_tag_with_a_fixture_and_a_doc_line():
    tags = load_tag_rules(RULES).tags
    expected = {key for path in fixture_files(RULES) for case in load_cases(path)
                for _, key, _, _ in case.expect}
    readme = README.read_text(encoding="utf-8")
    for kind in KINDS:
        with_fixture = [t.name for t in tags if t.kind == kind and t.name in expected]
        assert with_fixture, f"no shipped tag of kind {kind} has a fixture"
        assert f"kind: {kind}" in readme, f"README does not show kind {kind}"
