"""Text a person types or a file carries: any reason text round-trips through the
overrides file, a character YAML refuses is a rule error with its place, bytes that are
not UTF-8 are a usage error that writes nothing, and control characters in a message
reach the terminal escaped."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys

import pytest
from conftest import RULES, Cli
from hypothesis import given, settings
from hypothesis import strategies as st

from leadctl.cli import output
from leadctl.identity import overrides_file
from leadctl.rules.load import load_yaml_text
from tests.test_identity_overrides import env  # noqa: F401  (the fixture)


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1))
def test_any_reason_text_reads_back_as_written(reason):
    entry = overrides_file.override_entry("must_link", leads=[
        {"source": "web", "lead_id": "L1"}, {"source": "web", "lead_id": "L2"}],
        reason=reason, by="ops_xu", at=dt.datetime(2026, 12, 2, 6, 30))
    text = "overrides:\n" + overrides_file.entry_text(entry)
    assert load_yaml_text(text)["overrides"][0]["reason"] == reason


def test_a_reason_with_del_and_c1_controls_is_written_escaped_and_rules_stay_loadable(env):  # noqa: F811
    cli, rules = env["cli"], env["rules"]
    reason = "ok\x7f \x85 \u2028 \x9e end"
    assert cli("identity", "link", "L1", "L5", "--reason", reason).exit_code == 0
    text = (rules / "identity_overrides.yaml").read_text(encoding="utf-8")
    assert '  reason: "ok\\u007f \\u0085 \\u2028 \\u009e end"\n' in text
    checked = cli("rules", "check")
    assert checked.exit_code == 0, checked.stderr
    assert cli("resolve").exit_code == 0


def test_bidi_overrides_in_a_reason_and_by_are_escaped_on_screen_and_read_back(env):  # noqa: F811
    # they were printed raw: `x\u202egnp.exe` showed as `xexe.png` (and so in the file)
    cli, rules = env["cli"], env["rules"]
    reason = "x\u202egnp.exe \u202a\u202b\u202c\u202d \u2066\u2067\u2068\u2069"
    result = cli("identity", "unlink", "L1", "L5", "--reason", reason,
                 env={"LEADCTL_USER": "ops\u202exu"})
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[2:4] == [
        '  reason: "x\\u202egnp.exe \\u202a\\u202b\\u202c\\u202d '
        '\\u2066\\u2067\\u2068\\u2069"',
        '  by: "ops\\u202exu"']
    assert result.stdout in (rules / "identity_overrides.yaml").read_text(encoding="utf-8")
    entry = load_yaml_text((rules / "identity_overrides.yaml").read_text(encoding="utf-8"))
    assert [(e["reason"], e["by"]) for e in entry["overrides"]] == [(reason, "ops\u202exu")]


def test_a_phone_quoted_in_a_reason_is_kept_in_the_file_and_masked_on_screen(env):  # noqa: F811
    cli, rules = env["cli"], env["rules"]
    reason = "called 13812345679, wrote z.unique@example.com"
    shown = [cli("identity", "link", "L1", "L5", "--reason", reason),
             cli("identity", "unlink", "L1", "L3", "--reason", reason, "--json")]
    assert [r.exit_code for r in shown] == [0, 0]
    assert "called 138****5679, wrote z***@example.com" in shown[0].stdout
    assert shown[1].json()["written"]["reason"] == "called 138****5679, wrote z***@example.com"
    assert reason in (rules / "identity_overrides.yaml").read_text(encoding="utf-8")


def test_bytes_that_are_not_utf8_are_a_usage_error_and_nothing_is_written(env):  # noqa: F811
    cli, rules = env["cli"], env["rules"]
    bad = b"ok\x85".decode("utf-8", "surrogateescape")  # how Python hands such argv over
    result = cli("identity", "link", "L1", "L5", "--reason", bad)
    assert (result.exit_code, result.stderr) == (
        2, "error: --reason is not valid UTF-8 text: 'ok\\udc85'\n")
    assert sorted(p.name for p in rules.iterdir() if "overrides" in p.name) == []
    named = cli("identity", "link", "L1", "L5", "--reason", "r", "--by", bad)
    assert (named.exit_code, named.stderr) == (
        2, "error: --by is not valid UTF-8 text: 'ok\\udc85'\n")


def test_a_character_yaml_refuses_is_a_rule_error_at_its_place(tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "tags.yaml").write_text("tags:\n  - name: a\x7fb\n", encoding="utf-8")
    result = Cli(tmp_path / "ws.duckdb", rules)("rules", "check")
    assert (result.exit_code, result.stderr) == (2, (
        f"error: {rules}/tags.yaml:2:12: character U+007F is not allowed in YAML; write it "
        "as an escape (\\u007f) in a double-quoted string or remove it\n"))


def test_control_characters_in_a_message_reach_the_terminal_escaped(capsys):
    output.error("no rep '\x1b[31mred' (\u202eevil)")
    output.warn("tab\tand\nnew line stay")
    assert capsys.readouterr().err == (
        "error: no rep '\\x1b[31mred' (\\u202eevil)\n"
        "warning: tab\tand\nnew line stay\n")


@pytest.mark.parametrize("args", [
    [b"find", b"city = '\xff'", b"--json"], [b"portrait", b"13\xff"],
    [b"audience", b"export", b"n\xff", b"grade = 'A'", b"-o", b"u.csv"],
    [b"report", b"ab", b"x\xff", b"--json"], [b"identity", b"why", b"x\xff", b"P1"]])
def test_an_argument_that_is_not_utf8_is_refused_before_any_work(tmp_path, args):
    # argv bytes reach Python as lone surrogates, which DuckDB cannot take (exit 3 before)
    result = subprocess.run([sys.executable.encode(), b"-m", b"leadctl", b"--db",
                             str(tmp_path / "ws.duckdb").encode(), *args],
                            capture_output=True, cwd=tmp_path, timeout=120)
    bad = next(a for a in args if b"\xff" in a).decode("utf-8", "backslashreplace")
    message = f"an argument is not valid UTF-8 text: {bad}"
    assert (result.returncode, result.stderr.decode()) == (2, f"error: {message}\n")
    if b"--json" in args:
        assert json.loads(result.stdout) == {"error": {
            "type": "UsageError", "message": message, "location": None}, "exit_code": 2}
    assert list(tmp_path.iterdir()) == []


def test_control_characters_of_the_data_show_as_signs_on_every_screen_and_in_the_log(
        tmp_path):
    # a lead's values, a source (file) name and an event attribute with escape sequences
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    esc = "\x1b[31m"
    rows = [f"A1,{esc}RED,13911112222,2026-10-01 10:00,u{esc}c\u202eexe.txt"] + [
        f"F{i},客户{i},158{i:08d},2026-09-01 10:00,s" for i in range(200)]
    (inbox / f"vendor{esc}A.csv").write_text(
        "lead_id,name,phone,created_at,utm_content\n" + "\n".join(rows) + "\n")
    cli = Cli(tmp_path / "ws.duckdb")
    assert cli("run", "--inbox", inbox, "--as-of", "2026-11-01").exit_code == 0
    log = tmp_path / "log.txt"
    for args in (("find", "lead_count >= 1", "--limit", "300"), ("explain", "A1"),
                 ("identity", "why", "A1", "F1"), ("report", "channels", "--by", "utm_content"),
                 ("report", "channels"), ("--log-file", log, "-v", "portrait", "A1")):
        result = cli(*args)
        assert result.exit_code == 0, (args, result.stderr)
        shown = result.stdout + result.stderr
        assert "\x1b" not in shown and "␛" in shown, (args, shown)
        assert "\u202e" not in shown, (args, shown)  # a bidi override reorders the line
    assert "\x1b" not in log.read_text(encoding="utf-8")


@pytest.mark.filterwarnings("error::UserWarning")  # DuckDB's notes reached the user's stderr
def test_a_phone_quoted_in_a_report_label_is_masked_unless_reveal(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "web.csv").write_text(
        "lead_id,phone,created_at,utm_source\n"
        "A1,13911112222,2026-10-01 10:00,call_13955556666\n"
        "A2,13933334444,2026-10-01 10:00,mail\n")
    (inbox / "events.csv").write_text(
        "phone,event_type,ts\n13911112222,register,2026-10-03 10:00\n")
    # a source named after a phone, whose earlier lead A2 duplicates (dup_from's key)
    (inbox / "13977778888.csv").write_text(
        "lead_id,phone,created_at\nB1,13933334444,2026-09-01 10:00\n")
    cli = Cli(tmp_path / "ws.duckdb")
    assert cli("run", "--inbox", inbox, "--as-of", "2026-11-01").exit_code == 0
    channels = cli("report", "channels", "--by", "utm_source", "--json").json()["channels"]
    assert [(c["channel"], c["dup_from"]) for c in channels] == [
        ("(none)", {}), ("call_139****6666", {}), ("mail", {"139****8888": 1})]
    for reveal in ((), ("--reveal",)):
        out = tmp_path / f"channels{len(reveal)}.csv"
        written = cli("report", "channels", "--by", "utm_source", "-o", out, *reveal)
        assert (written.exit_code, written.stderr) == (0, f"wrote 4 rows to {out}\n")
        text = out.read_text(encoding="utf-8")
        assert ("13955556666" in text, "13977778888" in text) == (bool(reveal),) * 2, text
        assert ("call_139****6666" in text) != bool(reveal)
    ab = ("report", "ab", "x", "--variant-from", "lead.utm_source", "--goal", "register",
          "--as-of", "2026-11-01", "--json")
    assert [v["variant"] for v in cli(*ab).json()["variants"]] == ["call_139****6666", "mail"]
    assert [v["variant"] for v in cli(*ab, "--reveal").json()["variants"]] == [
        "call_13955556666", "mail"]


def test_a_line_break_inside_a_value_keeps_its_table_row_one_line(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "web.csv").write_text('lead_id,name,phone,created_at\n'
                                   'A1,"Wang\nLi",13911112222,2026-10-01 10:00\n')
    cli = Cli(tmp_path / "ws.duckdb")
    assert cli("run", "--inbox", inbox, "--as-of", "2026-11-01").exit_code == 0
    shown = cli("find", "lead_count >= 1", "--reveal", env={"COLUMNS": "200"}).stdout
    rows = [line for line in shown.splitlines() if "Wang" in line or "Li " in line]
    assert len(rows) == 1 and "Wang␊Li" in rows[0], shown


def test_a_phone_quoted_in_a_tag_value_is_masked_in_the_tag_summary(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "leads.csv").write_text("lead_id,name,phone,created_at\n"
                                     "L1,Test A,13812345679,2026-10-20 10:00:00\n")
    (inbox / "events.csv").write_text("phone,event_type,ts,amount,category\n13812345679,"
                                      "order_paid,2026-10-25 10:00:00,100,call 13812345679\n")
    cli = Cli(tmp_path / "ws.duckdb")
    ran = cli("run", "--inbox", inbox, "--as-of", "2026-11-01", "--json")
    top = {t["tag"]: t.get("top_values") for t in ran.json()["stages"]["tag"]["tags"]}
    assert top["first_order_category"] == [{"value": "call 138****5679", "persons": 1}]
    shown = [ran.stdout, cli("tag", "--dry-run", "--as-of", "2026-11-01").stdout,
             cli("runs", "--json").stdout]
    assert not any("13812345679" in text for text in shown)


CONTROL_SOURCES = {"s\x1b[31mred\x1b]0;T\x07": "FN0", "tab\tnl\nx": "FN4"}


@pytest.fixture
def control_sources(tmp_path):
    """Two leads from files whose names carry an escape sequence, a BEL, a tab and a
    line break; a rules copy that `identity link` may write into."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for i, (source, lead) in enumerate(CONTROL_SOURCES.items()):
        (inbox / f"{source}.csv").write_text(
            f"lead_id,phone,created_at\n{lead},1390013900{i},2026-10-03 10:00:00\n")
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules, ignore=shutil.ignore_patterns("tests"))
    cli = Cli(tmp_path / "ws.duckdb", rules)
    assert cli("run", "--inbox", inbox, "--as-of", "2026-11-01").exit_code == 0
    return cli


SIGNED_FN0, SIGNED_FN4 = "s␛[31mred␛]0;T␇/FN0", "tab␉nl␊x/FN4"


def test_a_link_note_shows_a_source_names_control_characters_as_signs(control_sources):
    cli = control_sources
    result = cli("identity", "link", "FN4", "FN0", "--reason", "r")
    assert (result.exit_code, result.stderr) == (0, (
        f"must_link of {SIGNED_FN4} and {SIGNED_FN0}: appended to "
        f"{cli.rules / 'identity_overrides.yaml'}; applied by the next `leadctl resolve`\n"))


def test_explain_and_why_show_a_source_names_control_characters_as_signs(control_sources):
    cli = control_sources
    why = cli("identity", "why", "FN4", "FN0")
    assert why.exit_code == 0, why.stderr
    persons = {lead: cli("portrait", lead, "--json").json()["person_id"]
               for lead in ("FN0", "FN4")}
    assert why.stdout.splitlines()[0] == (
        f"NOT LINKED: {SIGNED_FN4} ({persons['FN4']}) and {SIGNED_FN0} ({persons['FN0']}): "
        "they share no identifier value")
    assert why.stdout.splitlines()[2] == (
        f"  phone_typo (one digit different, 0.6): {SIGNED_FN0} 139****9000 ~ "
        f"{SIGNED_FN4} 139****9001")
    for lead, signed in (("FN0", SIGNED_FN0), ("FN4", SIGNED_FN4)):
        shown = cli("explain", lead).stdout.splitlines()
        assert shown[2].startswith(f"│ lead {signed} created 2026-10-03 10:00 is one of 1 "
                                   f"lead(s) of {persons[lead]} "), shown[:3]


def test_rules_test_fail_lines_show_control_characters_as_signs(tmp_path):
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules, ignore=shutil.ignore_patterns("tests"))
    (rules / "tests").mkdir()
    (rules / "tests" / "h.yaml").write_text(
        'name: "case \\e[31mRED\\e]0;PWNED\\a [bold]x[/] \\u202eevil"\n'
        "as_of: 2026-11-01\n"
        "persons:\n"
        '  - {id: "p\\e[2J1", source: "src", channel: "ch"}\n'
        "expect:\n"
        '  "p\\e[2J1": {acquisition_channel: "want"}\n', encoding="utf-8")
    cli = Cli(tmp_path / "ws.duckdb", rules)
    result = cli("rules", "test")
    assert (result.exit_code, result.stdout.splitlines()[0]) == (1, (
        f"FAIL {rules / 'tests' / 'h.yaml'}:6: case ␛[31mRED␛]0;PWNED␇ [bold]x[/] �evil: "
        'acquisition_channel for p␛[2J1: expected "want", got "ch"'))
    failure = cli("rules", "test", "--json").json()["failures"][0]
    assert (failure["case"], failure["person"]) == (
        "case \x1b[31mRED\x1b]0;PWNED\x07 [bold]x[/] \u202eevil", "p\x1b[2J1")


def test_a_printed_string_shows_a_bel_cr_and_tab_as_signs_not_dropped_or_expanded(capsys):
    # rich drops a BEL or CR and expands a tab when it makes a string a Text
    output.stderr_console().print("a\x07b\tc\rd\x1be\nf", markup=False, highlight=False)
    assert capsys.readouterr().err == "a␇b␉c␍d␛e\nf\n"


def _inbox_with_a_name_not_utf8(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "good.csv").write_text("lead_id,phone\nG1,13711110003\n", encoding="utf-8")
    bad = os.fsdecode(os.fsencode(inbox) + b"/b\xffd.csv")
    with open(bad, "w", encoding="utf-8") as out:
        out.write("lead_id,phone\nG2,13711110004\n")
    return inbox


def test_a_file_name_not_utf8_fails_that_file_alone_and_the_run_log_names_it(cli, tmp_path):
    # it was an internal error (exit 3) that lost the good file: DuckDB takes no lone
    # surrogate (Python's reading of the byte \xff), neither as a file name nor stored
    inbox = _inbox_with_a_name_not_utf8(tmp_path)
    result = cli("ingest", inbox, "--json")
    assert result.exit_code == 2, result.stderr
    files = [(f["file"], f["source"], f["status"], f["loaded"], f["message"])
             for f in result.json()["files"]]
    assert files == [
        (f"{inbox}/b\\xffd.csv", "b\\xffd", "failed", 0,
         "its name is not valid UTF-8 text: rename it to load it"),
        (f"{inbox}/good.csv", "good", "loaded", 1, "")]
    assert [(r["outcome"], r["error"]) for r in cli("runs", "--json").json()] == [
        ("partial", "1 file(s) not loaded: b\\xffd.csv: its name is not valid UTF-8 text: "
                    "rename it to load it")]


def test_a_run_over_a_file_name_not_utf8_is_refused_with_its_run_log_row(cli, tmp_path):
    inbox = _inbox_with_a_name_not_utf8(tmp_path)
    result = cli("run", "--inbox", inbox, "--as-of", "2026-11-02")
    why = (f"1 inbox file(s) could not be read or used, nothing was changed: "
           f"{inbox}/b\\xffd.csv: its name is not valid UTF-8 text: rename it to load it")
    assert (result.exit_code, result.stderr) == (2, f"error: {why}\n")
    assert [(r["command"], r["outcome"], r["error"])
            for r in cli("runs", "--json").json()] == [("run", "failed", why)]
