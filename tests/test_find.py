"""`leadctl find EXPR`: matches, counts, limits, masking, JSON, CSV/Parquet export, and
rejected expressions with a caret under the offending column."""

from __future__ import annotations

import shutil

import duckdb
import pytest
from conftest import RULES, Cli, write
from test_portrait import AS_OF, seed_workspace

from leadctl.pii import display_width
from leadctl.tagging.fields import expression_type
from leadctl.views.find import caret_lines

# P4 joins P1 in Shanghai; person_features as a tag run would leave it (wide, typed).
FEATURES_SQL = """
INSERT INTO persons (person_id, name, phone, city, province, first_seen, lead_count) VALUES
 ('P4', '赵四', '+8613500004444', '上海', '上海', '2026-10-15 08:00', 1);
INSERT INTO scores VALUES ('P4', 70, 'B', '2026-11-01', 2);
INSERT INTO ownership VALUES ('P4', 'sales_sh', 'rep_wu', 'pending', '2026-10-21', '2026-10-21',
                              NULL, false, 'route shanghai');
CREATE OR REPLACE TABLE person_features AS
SELECT p.person_id, p.name, p.city, p.province, p.channel, p.source, p.sources, p.lead_count,
       p.first_seen, p.last_seen, v.value_tier, v.paid_amount_30d, v.login_days_30d,
       v.top_categories_7d
FROM persons p LEFT JOIN (VALUES
  ('P1', 'high', 550.0, 16, ['maternal', 'apparel', 'fresh']),
  ('P2', 'low', 0.0, 3, NULL),
  ('P4', 'medium', 120.0, 12, ['fresh'])) v(person_id, value_tier, paid_amount_30d,
                                         login_days_30d, top_categories_7d)
  ON v.person_id = p.person_id;
INSERT INTO tag_definitions (position, tag, kind, category, description, type) VALUES
 (5, 'top_categories_7d', 'top', 'preference', NULL, 'list');
"""


@pytest.fixture
def fcli(cli):
    seed_workspace(cli.db, FEATURES_SQL)
    return cli


def find_json(cli, *args):
    result = cli("find", *args, "--json", "--as-of", AS_OF)
    assert result.exit_code == 0, result.stderr
    return result.json()


# The screen's as-of (--as-of AS_OF, the fixture's tags and scores are as of that day too).
AS_OF_KEYS = {"as_of": AS_OF, "as_of_source": "option", "tags_as_of": AS_OF,
              "score_as_of": AS_OF, "identity_as_of": None, "routing_as_of": "2026-10-22",
              "as_of_differs": []}
P1_MASKED = {"person_id": "P1", "name": "张*", "phone": "138****5678", "city": "上海",
             "grade": "A", "score": 87.5, "pool": "sales_sh", "owner": "rep_li",
             "status": "contacting"}
P4_MASKED = {"person_id": "P4", "name": "赵*", "phone": "135****4444", "city": "上海",
             "grade": "B", "score": 70.0, "pool": "sales_sh", "owner": "rep_wu",
             "status": "pending"}


def test_the_issue_example(fcli):
    data = find_json(fcli, "grade = 'A' and city = '上海' and login_days_30d >= 10")
    assert data == {"expr": "grade = 'A' and city = '上海' and login_days_30d >= 10",
                    **AS_OF_KEYS, "count": 1, "limit": 20, "persons": [P1_MASKED]}


def test_order_by_score_limit_and_count(fcli):
    data = find_json(fcli, "login_days_30d >= 10")
    assert (data["count"], data["persons"]) == (2, [P1_MASKED, P4_MASKED])
    data = find_json(fcli, "city = '上海'", "--limit", "1")
    assert (data["count"], data["limit"], [p["person_id"] for p in data["persons"]]) == (
        2, 1, ["P1"])
    assert find_json(fcli, "city = '上海'", "--count") == {"expr": "city = '上海'",
                                                          **AS_OF_KEYS, "count": 2}
    plain = fcli("find", "city = '上海'", "--count")
    assert (plain.exit_code, plain.stdout) == (0, "2\n")
    both = fcli("find", "city = '上海'", "--count", "-o", "out.csv")
    assert (both.exit_code, both.stdout, both.stderr) == (2, "", (
        "error: --count prints only the number of matches: give --count or -o, not both\n"))


def test_a_tag_the_rules_define_but_no_run_computed_is_said_to_need_a_tag_run(fcli):
    result = fcli("find", "rfm_segment = 'champion'")  # in rules/tags.yaml, not stored here
    assert (result.exit_code, result.stderr) == (2, (
        "error: tag 'rfm_segment' is defined in tags.yaml but no tag run has computed it yet: "
        "run `leadctl tag` first (or the nightly `leadctl run`)\n"))
    typo = fcli("find", "rfm_segmnt = 'champion'")
    assert (typo.exit_code, typo.stderr.split(" (")[0]) == (
        2, "error: invalid expression at column 1: unknown field 'rfm_segmnt'")
    # audience export reads the same language (it said "unknown field")
    audience = fcli("audience", "export", "x", "rfm_segment = 'champion'", "-o",
                    str(fcli.db.parent / "x.csv"))
    assert (audience.exit_code, audience.stderr) == (2, result.stderr)


def test_no_command_writes_its_result_over_the_workspace(fcli, tmp_path):
    link = tmp_path / "link.parquet"
    link.symlink_to(fcli.db)
    for args in (["find", "true", "-o", str(link)], ["export", "persons", "-o", str(link)],
                 ["report", "channels", "-o", str(link)],
                 ["audience", "export", "x", "true", "-o", str(link)]):
        result = fcli(*args)  # exit 3 from DuckDB, or (audience) a lost file reported ok
        assert (result.exit_code, result.stderr) == (2, (
            f"error: -o {link} is the workspace {fcli.db} or one of its files: write the "
            "result to another file\n")), args


def test_fields_of_every_kind(fcli):
    ids = lambda *a: [p["person_id"] for p in find_json(fcli, *a)["persons"]]  # noqa: E731
    assert ids("contains(top_categories_7d, 'fresh')") == ["P1", "P4"]
    assert ids("value_tier in ('high', 'medium') and paid_amount_30d > 100") == ["P1", "P4"]
    assert ids("pool = 'nurture' or owner is null") == ["P2", "P3"]
    assert ids("score < 50") == ["P2"]
    assert ids("person_id in ('P3', 'P2')") == ["P2", "P3"]
    assert ids("locked_until >= '2026-12-01' and not dormant") == ["P1"]
    # days_since counts to --as-of (2026-11-01): P1 first seen 2026-09-01 → 61 days.
    assert ids("days_since(first_seen) > 60") == ["P1"]


AS_OF_KEYS_ORDER = ["as_of", "as_of_source", "tags_as_of", "score_as_of", "identity_as_of",
                    "as_of_differs", "routing_as_of"]


@pytest.mark.parametrize("expr, as_of, identity, differs", [
    # P1's lead of 10-20 arrived after: its golden record and leads are today's
    ("city = '上海'", "2026-10-10", "2026-10-20", ["tags", "score", "identity"]),
    ("city = '北京'", "2026-10-10", None, ["tags", "score"]),  # P2's leads: 10-05, 10-06
    # P3's lead of 10-07 too, but the list says its latest such day: P1's
    ("lead_count >= 1", "2026-10-06", "2026-10-20", ["tags", "score", "identity"]),
    ("lead_count >= 1", "2026-10-20", None, ["tags", "score"]),
])
def test_a_matched_person_with_a_lead_after_the_as_of_flags_the_list(fcli, expr, as_of,
                                                                     identity, differs):
    result = fcli("find", expr, "--as-of", as_of, "--json")
    data = result.json()
    assert (result.exit_code, [k for k in data if k in AS_OF_KEYS_ORDER]) == (
        0, AS_OF_KEYS_ORDER)
    assert (data["identity_as_of"], data["as_of_differs"]) == (identity, differs)
    table = fcli("find", expr, "--as-of", as_of)
    notes = "tags, score as of 2026-11-01" + (f"; identity as of {identity}" if identity
                                              else "")
    assert f"match (as of {as_of} ({notes}))\n" in table.stdout  # as the portrait says it


def test_table_output_masks_unless_reveal(fcli):
    result = fcli("find", "city = '上海'", "--as-of", AS_OF)
    assert result.exit_code == 0, result.stderr
    assert "2 persons match" in result.stdout
    assert "138****5678" in result.stdout and "张*" in result.stdout
    assert "13812345678" not in result.stdout and "张三" not in result.stdout
    revealed = find_json(fcli, "name = '张三'", "--reveal")
    assert (revealed["persons"][0]["name"], revealed["persons"][0]["phone"]) == (
        "张三", "+8613812345678")


def big_score_workspace(tmp_path) -> Cli:
    """Two persons from source `web` scoring 1234572.54: a copy of the rules with a rule of
    1234567.54 points for everyone (the rules give them 5 more)."""
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    with (rules / "scoring.yaml").open("a", encoding="utf-8") as f:
        f.write("\n  - name: big\n    points: 1234567.54\n")
    (tmp_path / "inbox").mkdir()
    write(tmp_path / "inbox" / "web.csv", "lead_id,name,phone,city,created_at\n"
          "L1,张三,13900000001,上海,2026-10-01\nL2,李四,13900000002,北京,2026-10-02\n")
    cli = Cli(tmp_path / "ws.duckdb", rules)
    assert cli("run", "--inbox", tmp_path / "inbox", "--as-of", AS_OF).exit_code == 0
    return cli


def test_a_large_score_shows_every_digit_as_json_has_it(tmp_path):
    cli = big_score_workspace(tmp_path)
    assert [p["score"] for p in find_json(cli, "lead_count = 1")["persons"]] == [
        1234572.54, 1234572.54]
    table = cli("find", "lead_count = 1", "--as-of", AS_OF)
    assert table.exit_code == 0, table.stderr
    rows = [line.split("│") for line in table.stdout.splitlines() if line.startswith("│")]
    assert [row[6].strip() for row in rows] == ["1234572.54", "1234572.54"]  # not 1.23457e+06


def test_export_csv_and_parquet(fcli, tmp_path):
    out = tmp_path / "shanghai.csv"
    result = fcli("find", "city = '上海'", "-o", str(out), "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json() == {"expr": "city = '上海'", **AS_OF_KEYS, "as_of_source": "tags",
                             "count": 2, "file": str(out), "rows": 2}
    assert out.read_text(encoding="utf-8").splitlines() == [
        "person_id,name,phone,city,grade,score,pool,owner,status",
        "P1,张*,138****5678,上海,A,87.5,sales_sh,rep_li,contacting",
        "P4,赵*,135****4444,上海,B,70.0,sales_sh,rep_wu,pending"]
    parquet = tmp_path / "all.parquet"
    result = fcli("find", "true", "-o", str(parquet), "--reveal", "--limit", "3")
    assert result.exit_code == 0, result.stderr
    assert "wrote 3 of 4 matching persons" in result.stderr
    rows = duckdb.connect().execute(
        f"SELECT person_id, name, phone FROM '{parquet}'").fetchall()
    assert rows == [("P1", "张三", "+8613812345678"), ("P4", "赵四", "+8613500004444"),
                    ("P2", "李四", "+8613900001111")]
    bad = fcli("find", "true", "-o", str(tmp_path / "x.xlsx"))
    assert (bad.exit_code, bad.stderr) == (
        2, f"error: cannot tell the format of {tmp_path / 'x.xlsx'}: use a .csv or .parquet "
        "file name\n")


def test_values_and_file_names_print_as_written_not_as_markup(fcli, tmp_path):
    # rich read them as markup: `a[/b]` failed with a traceback, `[red]x.csv` read x.csv
    with duckdb.connect(str(fcli.db)) as con:
        for table in ("persons", "person_features"):
            con.execute(f"UPDATE {table} SET name = 'a[/b]' WHERE person_id = 'P2'")
    result = fcli("find", "true", "--reveal", "--as-of", AS_OF)
    assert (result.exit_code, "│ a[/b] " in result.stdout) == (0, True), result.stderr
    out = tmp_path / "[red]x.csv"
    result = fcli("find", "true", "-o", str(out), "--as-of", AS_OF)
    assert (result.exit_code, result.stderr) == (0, f"wrote 4 of 4 matching persons to {out}\n")


def test_invalid_expressions_exit_2_with_a_caret(fcli):
    result = fcli("find", "gradee = 'A'")
    assert result.exit_code == 2
    assert result.stdout == ""
    first, expr_line, caret = result.stderr.splitlines()
    assert first.startswith("error: invalid expression at column 1: unknown field 'gradee' "
                            "(did you mean 'grade'?) (known: ")
    assert (expr_line, caret) == ("  gradee = 'A'", "  ^^^^^^")
    # Wide characters before the error take two columns each.
    result = fcli("find", "city = '上海' and foo > 1")
    lines = result.stderr.splitlines()
    assert result.exit_code == 2
    assert lines[0].startswith("error: invalid expression at column 19: unknown field 'foo'")
    assert lines[1:] == ["  city = '上海' and foo > 1", "                    ^^^"]
    result = fcli("find", "grade = 'A'; DROP TABLE persons")
    assert (result.exit_code, result.stderr.splitlines()) == (2, [
        "error: invalid expression at column 12: ';' is not allowed: a rule expression is "
        "one expression, not SQL statements",
        "  grade = 'A'; DROP TABLE persons", "             ^"])
    result = fcli("find", "login_days_30d + 1")
    assert (result.exit_code, result.stderr.splitlines()[0]) == (
        2, "error: invalid expression at column 1: condition must be true/false, got number")


def test_a_long_sum_of_decimals_is_nested_too_deeply_not_an_internal_error(fcli, tmp_path):
    """Each decimal computation is guarded (finite_guard), which nests deeper in DuckDB
    than the parser sees: 250 terms passed the parser and hit DuckDB's depth limit in
    its binder, 400 in its parser (exit 3)."""
    for terms in (250, 400):
        expr = " + ".join(["score"] * terms) + " > 0"
        for args in (("find", expr, "--count"),
                     ("audience", "export", "deep", expr, "-o", str(tmp_path / "a.csv"))):
            result = fcli(*args)
            assert (result.exit_code, result.stderr.splitlines()[0]) == (
                2, "error: invalid expression at column 1: expression is nested too deeply")
    assert fcli("find", " + ".join(["score"] * 100) + " > 0", "--count").exit_code == 0


def test_a_number_may_start_with_its_dot(fcli):
    result = fcli("find", "score > .5 and paid_amount_30d >= -.5", "--count", "--as-of", AS_OF)
    assert (result.exit_code, result.stdout, result.stderr) == (0, "3\n", "")
    result = fcli("find", "p.score > .5", "--as-of", AS_OF)
    assert (result.exit_code, result.stdout, result.stderr.splitlines()) == (2, "", [
        "error: invalid expression at column 1: table references are not allowed: write the "
        "field name alone (score)", "  p.score > .5", "  ^^^^^^^"])


def test_the_caret_stays_under_the_expression_as_printed(fcli):
    # stderr writes a control character as its escape (4 or 6 columns): the marker follows;
    # --json keeps the characters, and its marker counts them one column each
    expr = "name = '\x1b\x1b上\u202e' and foo = 1"
    result = fcli("find", expr, "--as-of", AS_OF)
    lines = result.stderr.splitlines()
    assert (result.exit_code, result.stdout) == (2, "")
    assert lines[0].startswith("error: invalid expression at column 20: unknown field 'foo'")
    assert lines[1:] == ["  name = '\\x1b\\x1b上\\u202e' and foo = 1",
                         " " * 32 + "^^^"]
    result = fcli("find", expr, "--as-of", AS_OF, "--json")
    assert result.exit_code == 2
    assert result.json()["error"]["message"].splitlines()[1:] == [
        "  " + expr, " " * 21 + "^^^"]


def test_without_a_tag_run_person_attributes_still_work(cli):
    seed_workspace(cli.db)  # person_features empty
    data = find_json(cli, "city = '北京' and grade = 'C'")
    assert [p["person_id"] for p in data["persons"]] == ["P2"]
    result = cli("find", "login_days_30d > 1")
    assert (result.exit_code, result.stderr) == (2, (
        "error: tag 'login_days_30d' is defined in tags.yaml but no tag run has computed it "
        "yet: run `leadctl tag` first (or the nightly `leadctl run`)\n"))


def test_caret_and_types_are_pure():
    assert display_width("上海a") == 5
    assert caret_lines("a = '上海' and b", 13, 1) == ["  a = '上海' and b", "                 ^"]
    assert [expression_type(t) for t in (
        "BIGINT", "DOUBLE", "DECIMAL(18,3)", "VARCHAR", "VARCHAR[]", "BOOLEAN", "DATE",
        "TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "JSON", "INTERVAL")] == [
        "number", "number", "number", "string", "list", "boolean", "date", "timestamp",
        "timestamp", None, None]


def test_export_persons_has_each_tag_the_score_and_the_routing_as_columns(fcli, tmp_path):
    # issue 7: "persons (golden record + tags + score + owner as columns)"; it had the
    # golden record alone
    out = tmp_path / "persons.parquet"
    assert fcli("export", "persons", "-o", out).exit_code == 0
    con = duckdb.connect()
    names = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM '{out}'").fetchall()]
    assert names[names.index("emails") + 1:] == [
        "value_tier", "paid_amount_30d", "login_days_30d", "top_categories_7d", "score",
        "grade", "pool", "owner", "status", "status_since", "assigned_at", "locked_until",
        "dormant"]
    assert con.execute(
        f"SELECT person_id, name, value_tier, top_categories_7d, score, grade, pool, owner, "
        f"status, dormant FROM '{out}' WHERE person_id IN ('P1', 'P4') ORDER BY 1"
    ).fetchall() == [
        ("P1", "张三", "high", ["maternal", "apparel", "fresh"], 87.5, "A", "sales_sh",
         "rep_li", "contacting", False),
        ("P4", "赵四", "medium", ["fresh"], 70.0, "B", "sales_sh", "rep_wu", "pending", False)]
