"""`--json` on a failing command: one JSON document on stdout, {"error": {type, message,
location}, "exit_code"} (plus the partial result the command has), the message on
stderr; NaN never reaches JSON; summed amounts are rounded at the source."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sys

import pytest
from conftest import RULES, Cli, write
from typer.main import get_command

from leadctl.cli.app import app
from leadctl.cli.main import parse_fast_portrait, run_fast_portrait
from leadctl.cli.output import error_type, failure_document, print_json
from leadctl.errors import LeadctlError, UsageError
from leadctl.spark.pipeline import SparkUnavailable
from leadctl.views.portrait import _activity_from_events
from leadctl.views.report import channel_report_sql
from leadctl.workspace import open_memory

AS_OF = "2026-11-01"
LEADS = ("lead_id,name,phone,city,created_at\n"
         "L1,张三,13900000001,上海,2026-10-01\nL2,李四,13900000002,北京,2026-10-02\n")


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict:
    """A published workspace, a missing one, broken rules, a failing fixture, an inbox
    with rejects."""
    root = tmp_path_factory.mktemp("json_errors")
    inbox = root / "inbox"
    inbox.mkdir()
    write(inbox / "web.csv", LEADS)
    ws = Cli(root / "ws.duckdb")
    assert ws("run", "--inbox", inbox, "--as-of", AS_OF).exit_code == 0
    broken = root / "broken_rules"
    shutil.copytree(RULES, broken)
    (broken / "identity.yaml").write_text("default_region: CN\ncolour: blue\n",
                                          encoding="utf-8")
    failing = root / "failing_rules"
    shutil.copytree(RULES, failing, ignore=shutil.ignore_patterns("tests"))
    (failing / "tests").mkdir()
    write(failing / "tests" / "wrong.yaml", "name: wrong\nas_of: 2026-11-01\n"
          "persons:\n  - {id: p1}\nexpect:\n  p1: {login_days_30d: 5}\n")
    bad_inbox = root / "bad_inbox"
    bad_inbox.mkdir()
    write(bad_inbox / "bad.csv", "lead_id,phone,created_at\n1,13900000001,2026-10-01\n"
          "2,13900000002,not-a-date\n")
    (root / "a_file").write_text("", encoding="utf-8")
    return {"root": root, "ws": ws, "none": Cli(root / "missing.duckdb"),
            "fresh": Cli(root / "fresh.duckdb"), "broken": Cli(root / "ws.duckdb", broken),
            "failing": Cli(root / "ws.duckdb", failing), "bad_inbox": bad_inbox}


NOT_FOUND = "no lead or person matches 'n****y' (tried wechat n****y, lead id, person id)"
# (command, workspace, arguments, exit code, error type, message; {root}: the test folder)
FAILURES = [
    ("init", "ws", ["init", "{root}/a_file"], 2, "InputError",
     "{root}/a_file is a file, not a folder: give a folder for the workspace"),
    ("ingest", "ws", ["ingest", "{root}/nope.csv"], 2, "InputError",
     "no such file or folder: {root}/nope.csv"),
    ("resolve", "broken", ["resolve"], 2, "RuleError",
     "{root}/broken_rules/identity.yaml:2:1: unknown key 'colour' (known: default_region, "
     "cap, blocklist, survivorship, overrides)"),
    ("tag", "ws", ["tag", "--as-of", "2026-13-01"], 2, "UsageError",
     "--as-of must be a date like 2026-11-01, not '2026-13-01'"),
    ("score", "none", ["score"], 2, "WorkspaceError",
     "no workspace at {root}/missing.duckdb: run `leadctl init` first (or pass --db)"),
    ("route", "none", ["route", "--as-of", AS_OF], 2, "WorkspaceError",
     "no workspace at {root}/missing.duckdb: run `leadctl init` first (or pass --db)"),
    ("run", "fresh", ["run", "--inbox", "{root}/bad_inbox", "--as-of", AS_OF], 1,
     "DataCheckFailed", "rejects 1/2 = 50% of rows read, above the allowed 5% (see "
     "`leadctl export rejects`)"),
    ("runs", "none", ["runs"], 2, "WorkspaceError",
     "no workspace at {root}/missing.duckdb: run `leadctl init` first (or pass --db)"),
    ("load-results", "ws", ["load-results", "{root}/nothing"], 2, "InputError",
     "{root}/nothing: not a Spark run's output (no _leadctl_run.json); run `leadctl run "
     "--engine spark --output DIR` first"),
    ("claim", "ws", ["claim", "attic", "--rep", "rep_li"], 2, "UsageError",
     "unknown pool 'attic' (pools: key_accounts, sales_east, sales_south, sales_other, "
     "public_sea, nurture, dormant)"),
    ("status", "ws", ["status", "nobody", "closed"], 1, "NotFound", NOT_FOUND),
    ("sale", "ws", ["sale", "nobody", "--rep", "rep_li"], 1, "NotFound", NOT_FOUND),
    ("rules check", "broken", ["rules", "check"], 2, "RuleError",
     "{root}/broken_rules/identity.yaml:2:1: unknown key 'colour' (known: default_region, "
     "cap, blocklist, survivorship, overrides)"),
    ("rules test", "failing", ["rules", "test"], 1, "DataCheckFailed",
     "rules test: 1 of 1 expectations failed"),
    ("portrait", "ws", ["portrait", "nobody"], 1, "NotFound", NOT_FOUND),
    ("find", "ws", ["find", "grade ="], 2, "UsageError",
     "invalid expression at column 7: syntax error: something is missing after '='\n"
     "  grade =\n        ^"),
    ("explain", "ws", ["explain", "nobody"], 1, "NotFound", NOT_FOUND),
    ("report channels", "ws", ["report", "channels", "--by", "colour"], 2, "UsageError",
     "cannot report by 'colour': choose one of source, utm_source, utm_medium, "
     "utm_campaign, utm_content, utm_term, channel"),
    ("report funnel", "ws", ["report", "funnel", "app_instal"], 2, "UsageError",
     f"no funnel 'app_instal' in {RULES}/funnels.yaml (did you mean 'app_install'?) "
     "(funnels: app_install, app_register_basic)"),
    ("export", "ws", ["export", "leads", "-o", "{root}/leads.txt"], 2, "UsageError",
     "cannot tell the format of {root}/leads.txt: use a .csv or .parquet file name"),
    ("identity suggest", "none", ["identity", "suggest"], 2, "WorkspaceError",
     "no workspace at {root}/missing.duckdb: run `leadctl init` first (or pass --db)"),
    ("identity accept", "ws", ["identity", "accept", "Paaaaaaaaaaaa:Pbbbbbbbbbbbb"], 1,
     "NotFound", "no person Paaaaaaaaaaaa (run `leadctl identity suggest` again for current "
     "ids)"),
    ("identity reject", "ws", ["identity", "reject", "x"], 2, "UsageError",
     "PAIR 'x' must be two person ids joined by ':', as `leadctl identity suggest` prints "
     "them (e.g. P1a2b3c4d5e6f:P0f9e8d7c6b5a)"),
    ("identity why", "ws", ["identity", "why", "nobody", "L1"], 1, "NotFound", NOT_FOUND),
    ("identity suspects", "ws", ["identity", "suspects", "--min-distinct", "0"], 2,
     "UsageError", "--min-distinct must be a whole number from 1 to 1000000000, not 0"),
    ("identity conflicts", "none", ["identity", "conflicts"], 2, "WorkspaceError",
     "no workspace at {root}/missing.duckdb: run `leadctl init` first (or pass --db)"),
    ("audience export", "ws", ["audience", "export", "x", "true", "-o", "{root}/aud.csv",
                               "--variants", "A:abc"], 2, "UsageError",
     "--variants: the weight of A must be a number, not 'abc'"),
    ("report ab", "ws", ["report", "ab", "nothing"], 1, "NotFound",
     "no experiment named 'nothing': record one with `leadctl audience export`, or evaluate "
     "an attribute with --variant-from utm_content"),
    ("identity link", "ws", ["identity", "link", "L1", "nobody", "--reason", "r"], 1,
     "NotFound", NOT_FOUND),
    ("identity unlink", "ws", ["identity", "unlink", "L1", "web/L1", "--reason", "r"], 2,
     "UsageError", "'L1' and 'web/L1' are the same lead (web/L1)"),
]


@pytest.mark.parametrize(("command", "where", "args", "code", "kind", "message"), FAILURES,
                         ids=[f[0] for f in FAILURES])
def test_a_failing_command_prints_one_json_document(env, command, where, args, code, kind,
                                                    message):
    root = str(env["root"])
    result = env[where](*(a.format(root=root) for a in args), "--json")
    message = message.format(root=root)
    doc = json.loads(result.stdout)  # exactly one document: json.loads rejects trailing text
    location = message.split(": ")[0] if kind == "RuleError" else None
    assert (result.exit_code, doc["exit_code"]) == (code, code)
    assert {k: doc["error"][k] for k in ("type", "message", "location")} == {
        "type": kind, "message": message, "location": location}
    assert result.stderr.endswith(f"error: {message}\n")


def test_every_json_command_has_a_failure_case():
    group = get_command(app)
    names = {f"{name} {sub}" if hasattr(cmd, "commands") else name
             for name, cmd in group.commands.items()
             for sub in getattr(cmd, "commands", {"": None})
             if any(p.name == "json_out" for p in (cmd.commands[sub] if sub else cmd).params)}
    assert names == {f[0] for f in FAILURES}


def test_partial_results_stay_in_the_failure_document(env, cli):
    run = cli("run", "--inbox", env["bad_inbox"], "--as-of", AS_OF, "--json").json()
    assert (run["outcome"], run["stages"]["ingest"]["rejects"]) == ("data_check_failed", 1)
    check = env["broken"]("rules", "check", "--json").json()
    assert check["problems"] == check["error"]["problems"] == [{
        "file": str(env["root"] / "broken_rules" / "identity.yaml"), "line": 2, "col": 1,
        "message": "unknown key 'colour' (known: default_region, cap, blocklist, survivorship, "
        "overrides)"}]
    test = env["failing"]("rules", "test", "--json").json()
    assert (test["ok"], test["failed"], test["exit_code"]) == (False, 1, 1)
    folder = env["root"] / "mixed"
    folder.mkdir()
    write(folder / "good.csv", LEADS)
    (folder / "junk.csv").write_bytes(b"\x00\x01junk" * 8)  # 8 NULs: sniff.JUNK_MIN
    ingest = cli("ingest", folder, "--json")
    doc = ingest.json()
    assert (ingest.exit_code, doc["totals"]["leads"], doc["error"]["type"]) == (2, 2, "InputError")
    assert doc["error"]["message"] == (f"1 file(s) could not be read: {folder}/junk.csv: "
                                       "binary content (NUL bytes): not a CSV or Parquet file")


def test_the_fast_portrait_path_prints_the_failure_document(env, capsys):
    code = run_fast_portrait({"db": str(env["ws"].db), "query": "nobody", "reveal": False,
                              "as_of": None, "json_out": True})
    out, err = capsys.readouterr()
    assert (code, json.loads(out), err) == (1, {
        "error": {"type": "NotFound", "message": NOT_FOUND, "location": None},
        "exit_code": 1}, f"error: {NOT_FOUND}\n")


def test_a_bad_memory_limit_reads_the_same_on_the_fast_portrait_path(env):
    # The fast path hands a size it cannot parse (an empty one too) to Typer, so portrait
    # words the error as every other command does.
    for value in ("lots", ""):
        assert parse_fast_portrait(["--db", str(env["ws"].db), "--memory-limit", value,
                                    "portrait", "L1", "--json"]) is None
        for command in (["portrait", "L1"], ["runs"]):
            result = env["ws"]("--memory-limit", value, *command, "--json")
            assert (result.exit_code, result.json()["error"]["message"]) == (
                2, "Invalid value for '--memory-limit' (env var: 'LEADCTL_MEMORY_LIMIT'): "
                f"must be a size such as 3GB, 500MB or 1.5GiB, not {value!r}")


def test_an_internal_error_is_type_internal_error(env, monkeypatch):
    monkeypatch.setattr("leadctl.api.find", lambda *a, **k: 1 / 0)
    result = env["ws"]("find", "grade = 'A'", "--json")
    message = ("internal error: ZeroDivisionError: division by zero (rerun with --debug "
               "for details)")
    assert (result.exit_code, result.json(), result.stderr) == (3, {
        "error": {"type": "InternalError", "message": message, "location": None},
        "exit_code": 3}, f"error: {message}\n")


def test_spark_unavailable_is_a_usage_error(env, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyspark", None)  # `import pyspark` fails
    inbox = write(tmp_path / "web.csv", LEADS)
    result = env["ws"]("run", "--engine", "spark", "--inbox", inbox, "--output", tmp_path / "out",
                       "--json")
    message = "the Spark engine needs pyspark: pip install 'leadctl[spark]'"
    assert (result.exit_code, result.json(), result.stderr) == (2, {
        "error": {"type": "UsageError", "message": message, "location": None},
        "exit_code": 2}, f"error: {message}\n")
    assert issubclass(SparkUnavailable, UsageError)  # the type, whatever its exit code


@pytest.mark.parametrize("code, kind", [(1, "DataCheckFailed"), (2, "UsageError"),
                                        (3, "InternalError")])
def test_an_unnamed_error_is_typed_by_its_exit_code(code, kind):
    odd = type("OddError", (LeadctlError,), {"exit_code": code})("odd")
    assert error_type(odd) == kind
    assert failure_document(odd, code) == {
        "error": {"type": kind, "message": "odd", "location": None}, "exit_code": code}
    assert error_type(UsageError("x"), 3) == "InternalError"  # exit 3 is always internal


def test_nan_and_infinity_are_written_as_null(capsys):
    print_json({"a": float("nan"), "b": [float("inf"), -float("inf"), 1.5]})
    assert json.loads(capsys.readouterr().out) == {"a": None, "b": [None, None, 1.5]}


def test_claim_that_takes_nothing_says_why(env):
    some = env["ws"]("claim", "nurture", "--rep", "ops_xu", "--n", "5", "--as-of", AS_OF)
    assert (some.exit_code, some.stdout, some.stderr) == (0, (
        "ops_xu claimed 2 of 5 from nurture (no limit; 0 still waiting) — fewer than asked: "
        "pool_empty\n  P968a4a9ad176\n  Pfbe6c2289741\n"),
        "warning: ops_xu claimed only 2 from nurture: no leads waiting in the pool "
        "(pool_empty)\n")
    result = env["ws"]("claim", "nurture", "--rep", "ops_xu", "--as-of", AS_OF, "--json")
    assert (result.exit_code, result.json()["reason"], result.json()["count"]) == (
        0, "pool_empty", 0)
    assert result.stderr == ("warning: ops_xu claimed nothing from nurture: no leads waiting "
                             "in the pool (pool_empty)\n")


def test_not_found_is_exit_1_for_every_lookup(env):
    for args in (["portrait", "nobody"], ["explain", "nobody"], ["status", "nobody", "closed"],
                 ["sale", "nobody", "--rep", "rep_li"]):
        result = env["ws"](*args)
        assert (result.exit_code, result.stdout, result.stderr) == (1, "", f"error: {NOT_FOUND}\n")


def test_report_average_score_is_rounded_in_sql():
    ws = open_memory()
    ws.execute("INSERT INTO leads (lead_key, source, lead_id) VALUES (1, 'web', 'a'), "
               "(2, 'web', 'b')")
    ws.execute("INSERT INTO person_leads (lead_key, person_id) VALUES (1, 'p1'), (2, 'p2')")
    ws.execute("INSERT INTO scores (person_id, score) VALUES ('p1', 3.9), ('p2', 3.95)")
    # avg is 3.92499999… as a double: rounded as written (3.925 → 3.93), not 3.92
    assert [r["avg_score"] for r in ws.rows(channel_report_sql("source"))] == [3.93, 3.93]


def test_portrait_amounts_are_rounded_in_sql():
    ws = open_memory()
    ws.execute("INSERT INTO subject_persons (subject, person_id) VALUES ('p1', 'p1')")
    ws.execute("INSERT INTO events (subject, event_type, ts, amount) VALUES "
               "('p1', 'order_paid', TIMESTAMP '2026-10-20', 10000.1), "
               "('p1', 'order_paid', TIMESTAMP '2026-10-21', 406.61)")
    rows = _activity_from_events(ws, "p1", dt.date(2026, 11, 1))
    assert [r["recent_amount"] for r in rows] == [10406.71]  # the sum is 10406.710000000001


@pytest.mark.parametrize(("args", "message"), [
    (["find", "grade = 'A'", "--limit", "1.5"], "Invalid value for '--limit': Input should be "
     "a valid integer, unable to parse string as an integer"),
    (["portrait", "P1", "--bogus"], "No such option: --bogus"),
    (["export", "-o", "x.csv"], "Missing argument 'what'."),
])
def test_command_line_errors_print_the_failure_document_too(env, args, message):
    result = env["ws"](*args, "--json")
    assert (result.exit_code, json.loads(result.stdout)) == (2, {
        "error": {"type": "UsageError", "message": message, "location": None},
        "exit_code": 2})
    assert f"Error: {message}" in result.stderr
