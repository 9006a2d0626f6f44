"""An internal error is exit 3 with one line (and with --json the failure document),
with or without --debug; --debug adds the traceback on stderr, nothing else changes. A
workspace path that is a directory is a user error (exit 2), not an internal one."""

from __future__ import annotations

import pytest

from leadctl import api
from tests.conftest import Cli, rules_edited


@pytest.mark.parametrize("debug", [False, True])
def test_an_internal_error_is_exit_3_with_its_document_also_under_debug(cli, monkeypatch,
                                                                         debug):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(api, "find", broken)
    result = cli(*(["--debug"] if debug else []), "find", "lead_count > 1", "--json")
    assert result.exit_code == 3
    assert result.json() == {"error": {
        "type": "InternalError", "location": None,
        "message": "internal error: RuntimeError: boom"
                   + ("" if debug else " (rerun with --debug for details)")}, "exit_code": 3}
    assert ("Traceback (most recent call last)" in result.stderr) is debug
    assert result.stderr.endswith("error: internal error: RuntimeError: boom"
                                  + ("" if debug else " (rerun with --debug for details)")
                                  + "\n")


@pytest.mark.parametrize("command", [
    ["init"], ["ingest", "x.csv"], ["resolve"], ["run", "--inbox", "."], ["find", "a > 1"],
    ["portrait", "x"], ["runs"]])
def test_a_directory_given_as_the_workspace_is_exit_2_for_readers_and_writers(
        tmp_path, command):
    folder = tmp_path / "dir.duckdb"
    folder.mkdir()
    result = Cli(folder)(*command)
    assert result.exit_code == 2
    assert result.stderr.endswith(f"error: {folder} is a directory, not a workspace file: "
                                  "pass --db FILE (e.g. --db leads.duckdb)\n")
    assert list(folder.iterdir()) == []


def test_a_tag_expression_that_overflows_for_some_person_is_exit_2_naming_the_stage(
        tmp_path):
    rules = rules_edited(tmp_path, "tags.yaml", "\ntags:\n", (
        '\ntags:\n  - {name: huge, kind: expr, category: value, '
        'expr: "lead_count * 9223372036854775807"}\n'))
    (tmp_path / "web.csv").write_text("lead_id,phone,email\nL1,13812345678,\n"
                                      "L2,13812345678,a@qq.com\n", encoding="utf-8")
    cli = Cli(tmp_path / "ws.duckdb", rules)
    result = cli("run", "--inbox", tmp_path / "web.csv", "--as-of", "2026-11-01", "--json")
    assert result.exit_code == 2
    assert result.json()["error"] == {
        "type": "InputError", "location": None,
        "message": "tag: a rule's expression cannot be computed for some person: overflow "
                   "in multiplication of INT64 (2 * 9223372036854775807); whole numbers must "
                   "stay from -9223372036854775808 to 9223372036854775807: check the "
                   "expressions in rules/"}


def _ws_with_rules(tmp_path, file: str, old: str, new: str) -> Cli:
    rules = rules_edited(tmp_path, file, old, new)
    (tmp_path / "web.csv").write_text("lead_id,phone,email\nL1,13812345678,\n"
                                      "L2,13912345678,a@qq.com\n", encoding="utf-8")
    return Cli(tmp_path / "ws.duckdb", rules)


@pytest.mark.parametrize("expr, start, end", [
    # the value infinite: for whom, checked after it is computed
    ("lead_count * 1e300 * 1e300", "tag: huge is no finite number for 2 person(s), such as P",
     "(past the largest number, about 1.8e308): check its expression in tags.yaml"),
    # infinity inside it (NaN from it): the computation's guard stops the stage
    ("lead_count * 1e300 * 1e300 - lead_count * 1e300 * 1e300",
     "tag: a rule's expression cannot be computed for some person: a number past the "
     "largest (about 1.8e308), or NaN from it, in tag 'huge'; ",
     "check the expressions in rules/"),
])
def test_a_tag_past_the_largest_double_is_exit_2_and_nothing_is_stored(tmp_path, expr,
                                                                        start, end):
    cli = _ws_with_rules(tmp_path, "tags.yaml", "\ntags:\n", (
        f'\ntags:\n  - {{name: huge, kind: expr, category: value, expr: "{expr}"}}\n'))
    result = cli("run", "--inbox", tmp_path / "web.csv", "--as-of", "2026-11-01", "--json")
    assert result.exit_code == 2
    message = result.json()["error"]["message"]
    assert message.startswith(start) and message.endswith(end)
    assert cli("find", "lead_count >= 1", "--count").stdout == "0\n"


def test_points_past_the_largest_double_are_exit_2_and_nothing_is_stored(tmp_path):
    cli = _ws_with_rules(tmp_path, "scoring.yaml", "\nrules:\n", (
        '\nrules:\n  - {name: huge, points: "lead_count * 1e300 * 1e300"}\n'))
    result = cli("run", "--inbox", tmp_path / "web.csv", "--as-of", "2026-11-01", "--json")
    assert result.exit_code == 2
    message = result.json()["error"]["message"]
    assert message.startswith("score: rule huge's points are no finite number for 2 "
                              "person(s), such as P")
    assert message.endswith("check the expressions in scoring.yaml")
    assert cli("find", "lead_count >= 1", "--count").stdout == "0\n"


@pytest.mark.parametrize("file, old, new, stage, where", [
    ("scoring.yaml", "\nrules:\n",
     '\nrules:\n  - {name: big, when: "lead_count * 1e300 * 1e300 > 1e308", points: 80}\n',
     "score", "score rule 'big' when"),
    ("scoring.yaml", "\nrules:\n",  # least() would make 75 points of infinity
     '\nrules:\n  - {name: cap, points: "least(lead_count * 1e300 * 1e300, 75)"}\n',
     "score", "score rule 'cap' points"),
    ("routing.yaml", "when: grade = 'A' and value_tier = 'high'",
     "when: lead_count * 1e300 * 1e300 > 0", "route", "route 'vip' when"),
    ("tags.yaml", "when: paid_orders_7d >= 30 and paid_amount_7d >= 6000",
     "when: lead_count * 1e300 * 1e300 > 0", "tag", "tag 'value_tier' level 'high'"),
])
def test_a_rule_computation_past_the_largest_double_is_exit_2_naming_the_rule(
        tmp_path, file, old, new, stage, where):
    """Infinity inside a condition would pass every threshold, as in `find`: exit 2."""
    cli = _ws_with_rules(tmp_path, file, old, new)
    result = cli("run", "--inbox", tmp_path / "web.csv", "--as-of", "2026-11-01", "--json")
    assert (result.exit_code, result.json()["error"]["message"]) == (2, (
        f"{stage}: a rule's expression cannot be computed for some person: a number past "
        f"the largest (about 1.8e308), or NaN from it, in {where}; decimal numbers must "
        "stay from about -1.8e308 to 1.8e308: check the expressions in rules/"))
    assert cli("find", "lead_count >= 1", "--count").stdout == "0\n"


@pytest.mark.parametrize("name, problem", [
    ("back\\slash.duckdb", "DuckDB reads a \\ in a path as a folder separator"),
    ("q?x/w.duckdb", "DuckDB cannot keep its log in a folder whose name holds a ?"),
    ("x" * 240 + ".duckdb", "the name is too long (247 bytes; at most 246: DuckDB's log "
                            "beside it adds .work.wal)")])
@pytest.mark.parametrize("command", [["ingest", "x.csv"], ["runs"]])
def test_a_workspace_path_duckdb_cannot_open_as_written_is_exit_2(tmp_path, name, problem,
                                                                   command):
    """`back\\slash.duckdb` opened back/slash.duckdb (another workspace read, a copy
    written into another folder); a `?` in a folder's name and a name of 247-250 bytes
    were exit 3 on a write."""
    path = tmp_path / name
    path.parent.mkdir(exist_ok=True)
    result = Cli(path)(*command)
    assert (result.exit_code, result.stderr) == (2, f"error: {path}: {problem}: nothing was "
                                                    "changed; rename it or pass --db another "
                                                    "path\n")
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == []


def test_a_relative_workspace_named_like_a_scheme_is_read(tmp_path, monkeypatch):
    """DuckDB took a relative `backup:1.duckdb` given to a reader for an extension's
    scheme (the writer made it, every reader failed)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.csv").write_text("lead_id,phone\nK1,13922220091\n")
    ws = Cli("backup:1.duckdb")
    assert ws("ingest", "x.csv").exit_code == 0
    result = ws("runs", "--json")
    assert result.exit_code == 0, result.stderr
    assert [r["command"] for r in result.json()] == ["ingest"]
