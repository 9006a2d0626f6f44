"""rules/sources.yaml: configured aliases reach ingest; mistakes point at file:line:col."""

from __future__ import annotations

import datetime as dt
import shutil

import duckdb
import pytest

from leadctl.errors import RuleError
from leadctl.ingest.columns import missing_identifier_message
from leadctl.ingest.sources import load_sources_config
from tests.conftest import RULES, Cli, write
from tests.test_ingest import leads_in


def test_shipped_sources_config_loads(tmp_path):

    config = load_sources_config(RULES)
    assert config.aliases["phone"] == ["客户电话", "contact_mobile"]
    assert config.timezone == "Asia/Shanghai"


def test_unknown_column_and_key_are_located(tmp_path):
    write(tmp_path / "sources.yaml", "aliases:\n  phonee: [x]\ncolour: red\n")
    with pytest.raises(RuleError) as err:
        load_sources_config(tmp_path)
    assert str(err.value).splitlines() == [  # in file order, as rules check gives them
        f"{tmp_path}/sources.yaml:2:3: unknown canonical column 'phonee' (did you mean 'phone'?)",
        f"{tmp_path}/sources.yaml:3:1: unknown key 'colour' (known: aliases, timezone)",
    ]


def test_an_alias_names_one_column_and_is_a_header_name(tmp_path):
    # `channel: [phone]` made every file's phone column a channel (the file then `invalid`);
    # one alias under two columns went to whichever the file listed last; `[]` and `'-'`
    # passed (a header of punctuation became the phone)
    write(tmp_path / "sources.yaml", "aliases:\n  channel: [Phone]\n  phone: [联系方式, '-']\n"
                                     "  email: [联系 方式]\n")
    with pytest.raises(RuleError) as err:
        load_sources_config(tmp_path)
    assert str(err.value).splitlines() == [
        f"{tmp_path}/sources.yaml:2:13: alias 'Phone' of 'channel' already names the column "
        "'phone': a header can mean one column",
        f"{tmp_path}/sources.yaml:3:17: alias '-' of 'phone' is no header name (nothing is "
        "left of it once case, spaces, _, - and . are set aside)",
        f"{tmp_path}/sources.yaml:4:11: alias '联系 方式' of 'email' already names the column "
        "'phone': a header can mean one column"]
    for empty in ("[]", "0", "false", "''"):
        write(tmp_path / "sources.yaml", f"aliases: {empty}\n")
        with pytest.raises(RuleError) as err:
            load_sources_config(tmp_path)
        assert str(err.value) == f"{tmp_path}/sources.yaml:1:1: aliases must map column → list"


def test_an_alias_that_is_another_columns_built_in_alias_overrides_it_with_a_warning(
        tmp_path):
    # `city: [Tel]` passed rules check silently and made every file's `tel` (a phone alias)
    # a city column: meant (a channel's own header) or a slip, it is now said where it is
    # written, by rules check, ingest and run. An alias of its own column's built-ins
    # (`phone: [mobile]`) says nothing.
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    write(rules / "sources.yaml", "aliases:\n  phone: [mobile, 客户电话]\n  city: [Tel]\n")
    cli = Cli(tmp_path / "ws.duckdb", rules=rules)
    warning = (f"{rules}/sources.yaml:3:10: alias 'Tel' of 'city' is a built-in alias of "
               "'phone': every file's Tel column is read as city, not phone")
    result = cli("rules", "check", "--json")
    assert (result.exit_code, result.json()["warnings"][-1]) == (0, warning)
    result = cli("ingest", write(tmp_path / "x.csv", "mobile,tel\n13812345678,上海\n"))
    assert (result.exit_code, f"warning: rules: {warning}" in result.stderr) == (0, True)
    assert leads_in(cli, "phone", "city") == [("13812345678", "上海")]
    # the hint of a file without an identifier no longer offers the header it took
    assert missing_identifier_message(["name", "tell"], ["tell"], {"city": ["Tel"]}) == (
        "no identifier column (found: name, tell; expected one of phone, email, wechat, "
        "device_id, id_card or an alias of one, see rules/sources.yaml)")
    assert missing_identifier_message(["name", "tell"], ["tell"]).endswith(
        "did you mean tel for tell?)")
    write(rules / "sources.yaml", "aliases:\n  phone: [mobile, 客户电话]\n")
    assert load_sources_config(rules).warnings == []


@pytest.mark.parametrize(("zone", "message"), [
    ("Asia/Shangha", "unknown time zone 'Asia/Shangha' (did you mean 'Asia/Shanghai'?)"),
    ("'+08:00'", "unknown time zone '+08:00' (an IANA name like Asia/Shanghai, or UTC)"),
    ("8", "timezone must be a time zone name like Asia/Shanghai, not 8"),
    # ICU knows CST as US Central time: China Standard Time data would shift by 13 hours
    ("CST", "time zone 'CST' is a legacy alias or an abbreviation (CST is China's and US "
            "Central time): write an IANA region name like Asia/Shanghai, or UTC"),
    ("''", "timezone must be a time zone name like Asia/Shanghai, not ''"),
    ("SystemV/CST6", "time zone 'SystemV/CST6' is a legacy alias or an abbreviation (CST is "
                     "China's and US Central time): write an IANA region name like "
                     "Asia/Shanghai, or UTC"),
])
def test_a_time_zone_the_engines_do_not_know_is_a_rule_error(tmp_path, zone, message):
    # (it passed rules check, then failed every inbox file, blaming the file)
    write(tmp_path / "sources.yaml", f"timezone: {zone}\n")
    with pytest.raises(RuleError) as err:
        load_sources_config(tmp_path)
    assert str(err.value) == f"{tmp_path}/sources.yaml:1:11: {message}"
    write(tmp_path / "sources.yaml", "timezone: Europe/Madrid\n")
    assert load_sources_config(tmp_path).timezone == "Europe/Madrid"


def test_configured_alias_is_used_by_ingest(tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    write(rules / "sources.yaml", "aliases:\n  phone: [客户电话]\n")
    cli = Cli(tmp_path / "ws.duckdb", rules=rules)
    write(tmp_path / "x.csv", "lead_id,客户电话\n1,13900000001\n")
    result = cli("ingest", tmp_path / "x.csv", "--json")
    assert result.json()["totals"]["leads"] == 1
    con = duckdb.connect(str(tmp_path / "ws.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT source, lead_id, phone FROM leads").fetchall() == [
            ("x", "1", "13900000001")]
    finally:
        con.close()


def test_broken_sources_yaml_exits_2_with_location(tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    write(rules / "sources.yaml", "aliases:\n  phone: [客户电话\n")
    cli = Cli(tmp_path / "ws.duckdb", rules=rules)
    write(tmp_path / "x.csv", "lead_id,phone\n1,13900000001\n")
    result = cli("ingest", tmp_path / "x.csv")
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", (
        f"error: {rules}/sources.yaml:3:1: invalid YAML: expected ',' or ']', but got "
        "'<stream end>' (while parsing a flow sequence started at line 2, column 10)\n"))


def test_rules_check_reports_identity_and_sources_problems_with_locations(tmp_path):


    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    write(rules / "identity.yaml", "cap:\n  max_records_per_value: -3\n")
    write(rules / "sources.yaml", "timezone: UTC\ncolour: red\n")
    result = Cli(tmp_path / "ws.duckdb", rules=rules)("rules", "check")
    assert (result.exit_code, result.stdout, result.stderr.splitlines()) == (2, "", [
        f"error: {rules}/identity.yaml:2:26: cap.max_records_per_value must be a whole "
        "number >= 1, got -3",
        f"error: {rules}/sources.yaml:2:1: unknown key 'colour' (known: aliases, timezone)"])


def test_another_zone_than_the_stored_times_were_read_in_is_refused(tmp_path):


    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    write(inbox / "leads.csv", "lead_id,phone,created_at\nL1,13800000401,2026-10-20T20:00:00Z\n")
    cli = Cli(tmp_path / "ws.duckdb", rules=rules)
    assert cli("run", "--inbox", inbox, "--as-of", "2026-11-01").exit_code == 0
    text = (rules / "sources.yaml").read_text()
    (rules / "sources.yaml").write_text(text.replace("timezone: Asia/Shanghai", "timezone: UTC"))
    line = text.splitlines().index("timezone: Asia/Shanghai") + 1
    (tmp_path / "empty").mkdir()
    # `run` checks it once: without an inbox itself, with one as ingest does (files or none)
    # and so does every writer using the rules, reading times or not
    persons = cli("find", "lead_count >= 1", "--json").json()["persons"]
    for args in (("ingest", inbox / "leads.csv"), ("run", "--as-of", "2026-11-02"),
                 ("run", "--inbox", inbox, "--as-of", "2026-11-02"),
                 ("run", "--inbox", tmp_path / "empty", "--as-of", "2026-11-02"),
                 ("rules", "check"), ("resolve", "--as-of", "2026-11-02"),
                 ("score", "--as-of", "2026-11-01"), ("route", "--as-of", "2026-11-02"),
                 ("status", persons[0]["person_id"], "contacted", "--rep", "r1")):
        result = cli(*args)
        assert (result.exit_code, result.stderr.splitlines()[-1]) == (2, (
            f"error: {rules}/sources.yaml:{line}:11: timezone is UTC, but this workspace "
            "holds times read in Asia/Shanghai (times are converted once, as their file is "
            "read): keep timezone: Asia/Shanghai, or read the files into a new workspace"))
    with duckdb.connect(str(cli.db), read_only=True) as con:  # read in Shanghai time
        assert con.execute("SELECT created_at FROM leads").fetchall() == [
            (dt.datetime(2026, 10, 21, 4, 0),)]


def test_the_default_zone_against_other_stored_times_is_refused_at_sources_yaml(tmp_path):
    # a sources.yaml without `timezone:` (or none at all) is the default zone: the refusal
    # had no place (rules check --json: file, line and col null)
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    text = (rules / "sources.yaml").read_text()
    (rules / "sources.yaml").write_text(text.replace("timezone: Asia/Shanghai", "timezone: UTC"))
    leads = write(tmp_path / "z.csv", "phone\n13800138111\n")
    cli = Cli(tmp_path / "ws.duckdb", rules=rules)
    assert cli("ingest", leads).exit_code == 0
    (rules / "sources.yaml").write_text(text.replace("timezone: Asia/Shanghai\n", ""))
    said = ("timezone is Asia/Shanghai, the default ({}), but this workspace holds times "
            "read in UTC (times are converted once, as their file is read): write timezone: "
            "UTC in sources.yaml, or read the files into a new workspace")
    result = cli("rules", "check", "--json")
    assert result.exit_code == 2
    assert [(p["file"], p["line"], p["col"], p["message"])
            for p in result.json()["problems"]] == [
        (f"{rules}/sources.yaml", 1, 1, said.format("sources.yaml has no `timezone:`"))]
    (rules / "sources.yaml").unlink()
    for args in (("ingest", leads), ("run", "--as-of", "2026-11-02"), ("rules", "check")):
        result = cli(*args)
        assert (result.exit_code, result.stderr.splitlines()[-1]) == (
            2, f"error: {rules}/sources.yaml:1:1: " + said.format("there is no sources.yaml"))
