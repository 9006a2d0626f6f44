"""`leadctl audience export` and `leadctl report ab` on a crafted workspace whose outcomes
are worked out by hand: the file, the recorded experiment, window edges, a merge after
the export, attribute experiments and the errors."""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import subprocess
import sys

import duckdb
import pytest
from conftest import Cli
from test_ab_assign import reference_bucket

from leadctl import clock, workspace
from leadctl.campaigns import stats
from leadctl.workspace import open_writer, reading

# P1..P8 live in Shanghai (the audience), P9 in Beijing. With seed t1 (md5 buckets, see
# test_ab_assign.reference_bucket): A = P4 P6 P7 P8, B = P1 P2 P3 P5.
SEED_VARIANTS = {"P1": "B", "P2": "B", "P3": "B", "P4": "A", "P5": "B", "P6": "A", "P7": "A",
                 "P8": "A"}
PERSONS = [(f"P{i}", f"张{i}", f"+86138000000{i:02d}", "上海") for i in range(1, 9)] + [
    ("P9", "李九", "+8613900000009", "北京")]

# The experiment starts 2026-10-01, window 14d: register events in [10-01, 10-15) count.
EVENTS = [
    ("P1", "register", "2026-10-03 10:00", None),
    ("P2", "register", "2026-09-30 23:59", None),  # before the start
    ("P3", "register", "2026-10-15 00:00", None),  # the window's end: not inside
    ("P5", "register", "2026-10-14 23:59", None),
    ("P6", "register", "2026-10-01 00:00", None),  # on the start
    ("P8", "register", "2026-10-05 09:00", None),
    ("P9", "register", "2026-10-02 09:00", None),  # not in the audience
    ("P4", "login", "2026-10-02 09:00", None),  # not the goal
    # campaign clicks carrying utm_content (attribute experiments)
    ("P1", "click", "2026-09-29 08:00", "red"),
    ("P1", "click", "2026-10-02 08:00", "blue"),  # not the first: P1 stays red
    ("P2", "click", "2026-09-29 08:00", "blue"),
    ("P3", "click", "2026-10-10 08:00", "red"),
    ("P4", "click", "2026-10-01 08:00", "blue"),
    ("P5", "click", "2026-10-20 08:00", "red"),  # registered before the click
    ("P6", "click", "2026-09-25 08:00", "red"),
]


def _sql() -> str:
    persons = ", ".join(f"('{p}', '{n}', '{ph}', '{c}', 1)" for p, n, ph, c in PERSONS)
    subjects = ", ".join(f"('person:{p}', '{p}', 'matched')" for p, *_ in PERSONS)
    events = ", ".join(
        f"(1, {i}, 'ev', 'person:{p}', '{t}', '{ts}', "
        + ("NULL" if v is None else f"'{json.dumps({'utm_content': v})}'") + ")"
        for i, (p, t, ts, v) in enumerate(EVENTS))
    return (f"INSERT INTO persons (person_id, name, phone, city, lead_count) VALUES {persons};"
            f"INSERT INTO subject_persons VALUES {subjects};"
            "INSERT INTO events (file_id, row_number, source, subject, event_type, ts, "
            f"attributes) VALUES {events};")


# P8 merged into P7 after the export: resolve retires P8 and maps its events to P7.
MERGE_SQL = """
DELETE FROM persons WHERE person_id = 'P8';
INSERT INTO person_aliases VALUES ('P8', 'P7');
UPDATE subject_persons SET person_id = 'P7' WHERE subject = 'person:P8';
"""


@pytest.fixture
def acli(cli):
    with open_writer(cli.db, create=True) as ws:
        ws.execute(_sql())
    return cli


def export(cli, *args, name="spring", env=None):
    out = cli.db.parent / f"{name}.csv"
    result = cli("audience", "export", name, "city = '上海'", "-o", out, "--seed", "t1",
                 "--as-of", "2026-10-01", *args, env=env)
    return result, out


def rows(path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_export_writes_the_variants_masked_and_records_the_experiment(acli):
    result, out = export(acli, "--goal", "register", "--json",
                         env={"LEADCTL_USER": "ops_li"})
    assert result.exit_code == 0, result.stderr
    data = result.json()
    assert {k: data[k] for k in ("experiment", "persons", "rows", "start", "seed", "control",
                                 "goal", "created_by")} == {
        "experiment": "spring", "persons": 8, "rows": 8, "start": "2026-10-01", "seed": "t1",
        "control": "A", "goal": "register", "created_by": "ops_li"}
    assert data["variants"] == [{"variant": "A", "planned": 0.5, "persons": 4},
                                {"variant": "B", "planned": 0.5, "persons": 4}]
    lines = rows(out)
    assert list(lines[0]) == ["person_id", "variant", "bucket", "name", "phone", "email",
                              "wechat"]
    assert {r["person_id"]: r["variant"] for r in lines} == SEED_VARIANTS
    assert all(int(r["bucket"]) == reference_bucket(r["person_id"], "t1") for r in lines)
    assert (lines[0]["name"], lines[0]["phone"]) == ("张*", "138****0001")
    with reading(acli.db) as ws:
        assert ws.rows("SELECT name, kind, created_by, expression, starts_on, seed, control, "
                       "holdout, goal, persons FROM experiments") == [{
            "name": "spring", "kind": "audience", "created_by": "ops_li",
            "expression": "city = '上海'", "starts_on": dt.date(2026, 10, 1),
            "seed": "t1", "control": "A", "holdout": 0.0, "goal": "register", "persons": 8}]
        assert ws.rows("SELECT command, as_of::VARCHAR AS as_of, outcome FROM runs") == [
            {"command": "audience export", "as_of": "2026-10-01", "outcome": "ok"}]
    # `inputs` is the array of files read (none here): what was exported is in `counts`
    [run] = acli("runs", "--json").json()
    assert (run["inputs"], run["counts"]) == (None, {
        "experiment": "spring", "persons": 8, "expr": "city = '上海'", "file": str(out)})


def test_reveal_holdout_rows_and_re_export(acli):
    result, out = export(acli, "--holdout", "50%", "--variants", "mail:1", "--reveal")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("experiment spring: 8 persons from 2026-10-01")
    lines = {r["person_id"]: r for r in rows(out)}
    # one variant against a 50% holdout: the holdout is the control, its rows carry no contact
    held = {p for p, r in lines.items() if r["variant"] == "holdout"}
    assert held == {p for p in lines if reference_bucket(p, "t1") < 5000} == {
        "P4", "P6", "P7", "P8"}
    assert (lines["P4"]["phone"], lines["P1"]["phone"]) == ("", "+8613800000001")
    data = ab(acli, "spring", "--goal", "register", "--as-of", "2026-11-01")
    assert data["variants"] == [arm("holdout", 4, 2, control=True), arm("mail", 4, 2)]
    assert [(c["variant"], c["vs"]) for c in data["comparisons"]] == [("mail", "holdout")]
    again, _ = export(acli, "--json")
    assert again.exit_code == 2
    assert "experiment 'spring' already exists" in again.json()["error"]["message"]
    replaced, out = export(acli, "--replace", "--json")
    assert (replaced.exit_code, replaced.json()["replaced"]) == (0, True)
    assert {r["person_id"]: r["variant"] for r in rows(out)} == SEED_VARIANTS


def ab(cli, name, *args):
    result = cli("report", "ab", name, "--json", *args)
    assert result.exit_code == 0, result.stderr
    return result.json()


def arm(variant, persons, converted, planned=0.5, control=False):
    ci = stats.wilson(converted, persons)
    return {"variant": variant, "persons": persons, "converted": converted,
            "rate": converted / persons, "ci": list(ci), "planned": planned,
            "control": control}


def test_report_ab_counts_conversions_inside_the_window(acli):
    assert export(acli, "--goal", "register")[0].exit_code == 0
    data = ab(acli, "spring", "--as-of", "2026-11-01")
    # A: P6 (on the start), P8; B: P1, P5 — P2 before the start, P3 at the window's end
    assert data["variants"] == [arm("A", 4, 2, control=True), arm("B", 4, 2)]
    assert (data["experiment"], data["goal"], data["window_days"], data["open_windows"]) == (
        "spring", "register", 14, 0)
    [comparison] = data["comparisons"]
    assert {k: comparison[k] for k in ("variant", "vs", "diff", "p_value", "test")} == {
        "variant": "B", "vs": "A", "diff": 0.0, "p_value": 1.0, "test": "fisher"}
    assert data["verdict"].startswith("No winner yet, too little data (B 2/4, A 2/4;")
    assert data["srm"]["mismatch"] is False
    # a longer window takes in P3; an earlier as-of leaves out what happened after it
    assert [a["converted"] for a in ab(acli, "spring", "--window", "15d",
                                       "--as-of", "2026-11-01")["variants"]] == [2, 3]
    early = ab(acli, "spring", "--as-of", "2026-10-05")
    assert ([a["converted"] for a in early["variants"]], early["open_windows"]) == ([1, 1], 8)
    # --goal overrides the experiment's
    assert [a["converted"] for a in ab(acli, "spring", "--goal", "login",
                                       "--as-of", "2026-11-01")["variants"]] == [1, 0]


def test_a_merge_after_the_export_keeps_the_membership(acli):
    assert export(acli, "--goal", "register")[0].exit_code == 0
    with open_writer(acli.db) as ws:
        ws.execute(MERGE_SQL)
    data = ab(acli, "spring", "--as-of", "2026-11-01")
    # P8 now is P7, one person of A (not two units that both convert through P8's
    # register event, which would count one human's conversion twice)
    assert data["variants"] == [arm("A", 3, 2, control=True), arm("B", 4, 2)]
    assert data["warnings"] == []  # P7 and P8 were both in A


def test_a_merge_across_arms_is_warned_about(acli):
    assert export(acli, "--goal", "register")[0].exit_code == 0
    with open_writer(acli.db) as ws:  # P5 (B, converted) merged into P4 (A)
        ws.execute(MERGE_SQL.replace("P8", "P5").replace("P7", "P4"))
    data = ab(acli, "spring", "--as-of", "2026-11-01")
    assert data["variants"] == [arm("A", 4, 3, control=True), arm("B", 4, 2)]
    assert data["warnings"] == [
        "1 person is in more than one variant: a later merge joined members of different "
        "arms, and each arm counts them"]


def test_attribute_experiment_from_utm_content(acli):
    data = ab(acli, "cta", "--variant-from", "utm_content", "--goal", "register",
              "--as-of", "2026-11-01")
    # red: P1 P3 P6 convert, P5 registered before its click; blue: P2 converts, P4 not
    assert data["variants"] == [arm("blue", 2, 1, control=True), arm("red", 4, 3)]
    assert (data["source"], data["control"], data["comparisons"][0]["test"]) == (
        "attribute", "blue", "fisher")
    planned = ab(acli, "cta", "--variant-from", "utm_content", "--goal", "register",
                 "--variants", "red:1,blue:3", "--entry", "click", "--as-of", "2026-11-01")
    assert planned["variants"] == [arm("red", 4, 3, 0.25, True), arm("blue", 2, 1, 0.75)]
    since = ab(acli, "cta", "--variant-from", "utm_content", "--goal", "register",
               "--since", "2026-09-30", "--as-of", "2026-11-01")
    # entries from 09-30 on: P1's first is blue (10-02, registered 10-03), P2 and P6 drop out
    assert since["variants"] == [arm("blue", 2, 1, control=True), arm("red", 2, 1)]
    # A --since after the as-of is named, not blamed on the attribute's name.
    late = ab(acli, "cta", "--variant-from", "utm_content", "--goal", "register",
              "--since", "2026-12-01", "--as-of", "2026-11-01")
    assert [w for w in late["warnings"] if "since" in w or "attribute" in w] == [
        "--since 2026-12-01 is after the as-of 2026-11-01: nobody can have entered"]


@pytest.mark.parametrize(("args", "code", "message"), [
    (("nope",), 1, "no experiment named 'nope'"),
    (("spring", "--window", "0d"), 2, "--window must be a number of days"),
    (("spring", "--window", "\uff11\uff14d"), 2, "--window must be a number of days"),
    (("spring", "--control", "Z"), 2, "--control 'Z' is not one of A, B"),
    (("spring", "--variant-from", "utm_content"), 2, "recorded by audience export"),
    (("other", "--variant-from", "utm content", "--goal", "register"), 2,
     "--variant-from must name an attribute"),
    (("other", "--variant-from", "utm_content", "--control", "x"), 2,
     "--control 'x' is not one of blue, red"),
])
def test_report_ab_errors(acli, args, code, message):
    assert export(acli)[0].exit_code == 0
    result = acli("report", "ab", *args, "--json")
    assert result.exit_code == code
    assert message in result.json()["error"]["message"]


def test_default_goal_and_bad_export_options(acli):
    assert export(acli)[0].exit_code == 0  # no --goal: report ab counts register
    data = ab(acli, "spring", "--as-of", "2026-11-01")
    assert (data["goal"], [a["converted"] for a in data["variants"]]) == ("register", [2, 2])
    result = acli("report", "ab", "spring", "--goal", "signup", "--as-of", "2026-11-01")
    assert result.exit_code == 0
    assert result.stderr == "warning: no event of type 'signup' in the workspace\n"
    bad, _ = export(acli, "--variants", "A:abc", "--json", name="bad")
    assert (bad.exit_code, bad.json()["error"]["message"]) == (
        2, "--variants: the weight of A must be a number, not 'abc'")
    wrong = acli("audience", "export", "bad", "citx = 'x'", "-o", acli.db.parent / "b.csv")
    assert wrong.exit_code == 2
    assert "unknown field 'citx'" in wrong.stderr
    with reading(acli.db) as ws:
        assert ws.scalar("SELECT count(*) FROM experiments") == 1


def test_report_ab_table(acli):
    assert export(acli, "--goal", "register")[0].exit_code == 0
    result = acli("report", "ab", "spring", "--as-of", "2026-11-01")
    assert result.exit_code == 0, result.stderr
    assert "A/B spring: register within 14d, from 2026-10-01" in result.stdout
    assert result.stdout.rstrip().endswith(
        "No winner yet, too little data (B 2/4, A 2/4; a verdict needs 100 persons per "
        "variant and 20 conversions): B and A convert the same, 95% CI -49.5–49.5, "
        "p = 1.")


def test_an_attribute_or_entry_nobody_carries_is_warned_about(acli):
    result = acli("report", "ab", "cta", "--variant-from", "utm_contnet", "--goal",
                  "register", "--entry", "clik", "--as-of", "2026-11-01", "--json")
    assert result.exit_code == 0
    assert result.json()["warnings"] == [
        "no event of type 'clik' in the workspace (--entry)",
        "no person has an entry carrying 'utm_contnet' before 2026-11-01: check the "
        "attribute's name (--variant-from)"]
    assert result.stderr == (
        "warning: no event of type 'clik' in the workspace (--entry)\n"
        "warning: no person has an entry carrying 'utm_contnet' before 2026-11-01: check "
        "the attribute's name (--variant-from)\n")


def test_an_audience_whose_expression_overflows_is_exit_2_and_records_nothing(acli):
    out = acli.db.parent / "big.csv"
    result = acli("audience", "export", "big", "(lead_count + 1) * 9223372036854775807 > 1",
                  "-o", out, "--as-of", "2026-10-01")
    assert result.exit_code == 2
    assert result.stderr == (
        "error: cannot compute the expression: overflow in multiplication of INT64 "
        "(2 * 9223372036854775807); whole numbers must stay from -9223372036854775808 to "
        "9223372036854775807\n  (lead_count + 1) * 9223372036854775807 > 1\n")
    assert not out.exists()
    with reading(acli.db) as ws:
        assert ws.scalar("SELECT count(*) FROM experiments") == 0


def test_an_audience_stopped_before_its_record_is_published_leaves_no_file(acli, monkeypatch):

    export(acli)
    before = (acli.db.parent / "spring.csv").read_bytes()

    def stopped(*args, **kwargs):  # the file was written, the workspace not yet published
        raise KeyboardInterrupt
    monkeypatch.setattr(workspace, "_fsync", stopped)
    result, out = export(acli, "--replace", "--holdout", "50%")
    assert result.exit_code == 130
    assert out.read_bytes() == before
    assert [p.name for p in out.parent.iterdir() if p.name.endswith(".part")] == []
    with reading(acli.db) as ws:
        assert ws.scalar("SELECT count(*) FROM experiment_members WHERE variant = 'holdout'") == 0


def test_an_audience_stopped_after_its_record_is_published_puts_its_file_in_place(acli):
    """SIGTERM during the workspace's publishing rename: the experiment is recorded, so
    its file lands with it (it was left out, and the old file stood for the new record)."""
    export(acli)
    out = acli.db.parent / "spring.csv"
    stopped = subprocess.run(
        [sys.executable, "-m", "leadctl", "--db", str(acli.db), "--rules", str(acli.rules),
         "audience", "export", "spring", "city = '上海'", "-o", str(out), "--seed", "t1",
         "--as-of", "2026-10-01", "--replace", "--holdout", "50%"],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "LEADCTL_TEST_KILL_AFTER": "rename",
             "LEADCTL_TEST_KILL_SIGNAL": "TERM"})
    assert stopped.returncode == 143, stopped.stderr
    holdout = [r["person_id"] for r in rows(out) if r["variant"] == "holdout"]
    with reading(acli.db) as ws:
        assert ws.scalar("SELECT list(person_id ORDER BY person_id) FROM experiment_members "
                         "WHERE variant = 'holdout'") == sorted(holdout)
    assert len(holdout) == 4
    assert [p.name for p in out.parent.iterdir() if p.name.endswith(".part")] == []


def test_an_audience_without_as_of_starts_today_and_says_so(acli):
    out = acli.db.parent / "today.csv"
    data = acli("audience", "export", "today", "city = '上海'", "-o", out, "--json").json()
    assert (data["start"], data["as_of"], data["as_of_source"]) == (
        clock.today("Asia/Shanghai").isoformat(),) * 2 + ("today",)
    assert export(acli, "--json")[0].json()["as_of_source"] == "option"


def test_an_audience_drawn_from_tags_of_another_date_says_so(acli):
    result, _ = export(acli, "--json")
    assert (result.json()["tags_as_of"], result.json()["as_of_differs"]) == (None, [])
    with open_writer(acli.db) as ws:
        ws.execute("INSERT INTO runs (run_id, command, started_at, as_of, outcome) "
                   "VALUES (9, 'run', TIMESTAMP '2026-10-06 02:00', DATE '2026-10-05', 'ok')")
    result, _ = export(acli, "--json", name="autumn")
    data = result.json()
    assert (data["start"], data["tags_as_of"], data["as_of_differs"]) == (
        "2026-10-01", "2026-10-05", ["tags"])
    result, _ = export(acli, name="winter")
    assert result.exit_code == 0
    assert result.stderr.splitlines()[-1] == (
        "warning: the audience was drawn from the stored tags as of 2026-10-05, not "
        "recomputed for the start 2026-10-01")


def test_report_ab_masks_the_recorded_expression_unless_reveal(acli):
    # a phone typed in the audience expression: echoed masked by the export, and by the
    # report of its experiment
    out = acli.db.parent / "vip.csv"
    made = acli("audience", "export", "vip", "city = '上海' OR name = '13800000009'",
                "-o", out, "--seed", "t1", "--as-of", "2026-10-01", "--json")
    assert made.json()["expr"] == "city = '上海' OR name = '138****0009'"
    args = ("report", "ab", "vip", "--goal", "register", "--as-of", "2026-11-01", "--json")
    assert acli(*args).json()["expr"] == "city = '上海' OR name = '138****0009'"
    assert acli(*args, "--reveal").json()["expr"] == "city = '上海' OR name = '13800000009'"


def test_variants_masked_alike_keep_their_own_figures_and_arm_numbers(acli):
    # Phone-like variant values that all mask to 139****5678: each row shows its own
    # comparison (paired by arm number, not by the masked name), the verdict numbers them.
    groups = {"13900005678": ("P1", "P2", "P6"), "13911115678": ("P3", "P4", "P9"),
              "13922225678": ("P5", "P7", "P8")}
    values = ", ".join(
        f"(2, {i}, 'ev', 'person:{p}', 'visit', '2026-09-20 00:00', "
        f"'{json.dumps({'utm_term': value})}')"
        for i, (value, p) in enumerate((v, p) for v, ps in groups.items() for p in ps))
    with open_writer(acli.db) as ws:
        ws.execute("INSERT INTO events (file_id, row_number, source, subject, event_type, ts, "
                   f"attributes) VALUES {values}")
    args = ("report", "ab", "t", "--variant-from", "utm_term", "--as-of", "2026-11-01")
    # registers within 14d of 09-20: P1, P2, P6 (3/3); P9 (1/3); none (0/3)
    data = ab(acli, *args[2:])
    assert [(a["variant"], a["converted"]) for a in data["variants"]] == [
        ("139****5678", 3), ("139****5678", 1), ("139****5678", 0)]
    assert [(c["variant"], c["vs"], c["arm"], c["vs_arm"], round(c["diff"], 4))
            for c in data["comparisons"]] == [("139****5678", "139****5678", 2, 1, -0.6667),
                                              ("139****5678", "139****5678", 3, 1, -1.0)]
    assert data["verdict"] == (
        "No winner yet, too little data (139****5678 #2 1/3, 139****5678 #1 3/3; a verdict "
        "needs 100 persons per variant and 20 conversions): 139****5678 #1 converts 66.7 pts "
        "better than 139****5678 #2, 95% CI -5.9–93.9, p = 0.4. No winner yet, too little "
        "data (139****5678 #3 0/3, 139****5678 #1 3/3; a verdict needs 100 persons per "
        "variant and 20 conversions): 139****5678 #1 converts 100.0 pts better than "
        "139****5678 #3, 95% CI 20.6–100.0, p = 0.1.")
    table = acli(*args)
    assert table.exit_code == 0, table.stderr
    rows = [line for line in table.stdout.splitlines() if line.startswith("│ 139")]
    assert [[cell.strip() for cell in row.split("│")[1:-1]] for row in rows] == [
        ["139****5678 #1", "3", "3", "100.0%", "43.9–100.0%", "33.3%", "", "", ""],
        ["139****5678 #2", "3", "1", "33.3%", "6.1–79.2%", "33.3%", "-66.7 pts",
         "-93.9–5.9 pts", "0.4 (fisher)"],
        ["139****5678 #3", "3", "0", "0.0%", "0.0–56.1%", "33.3%", "-100.0 pts",
         "-100.0–-20.6", "0.1 (fisher)"]]
    revealed = ab(acli, *args[2:], "--reveal")
    assert [c["variant"] for c in revealed["comparisons"]] == ["13911115678", "13922225678"]
    assert "13911115678 1/3, 13900005678 3/3" in revealed["verdict"]


def night(cli, folder, name, text, as_of, *extra):
    inbox = cli.db.parent / folder
    inbox.mkdir()
    (inbox / name).write_text(text, encoding="utf-8")
    result = cli("run", "--inbox", inbox, "--as-of", as_of, *extra)
    assert result.exit_code == 0, result.stderr


def persons_of(cli) -> dict[str, str]:
    with reading(cli.db) as ws:
        return {r["lead_id"]: r["person_id"] for r in ws.rows(
            "SELECT l.lead_id, pl.person_id FROM leads l JOIN person_leads pl USING (lead_key)")}


def test_a_split_after_a_merge_follows_each_member_by_its_earliest_lead(tmp_path, rules_copy):
    """Alice (A) and Bob (holdout) merge by a shared e-mail, then a steward splits them:
    Bob's part keeps Alice's old id (it holds most leads). The members are followed by
    their earliest leads: Alice counts in A with her conversion, Bob in the holdout."""
    cli = Cli(tmp_path / "ws.duckdb", rules_copy)
    leads = "lead_id,name,phone,email,created_at\n"
    night(cli, "n1", "web.csv", leads + "W1,Alice,13900001001,a@ex.com,2026-09-01 10:00:00\n"
          "W2,Bob,13900001002,b@ex.com,2026-09-02 10:00:00\n", "2026-10-01")
    first = persons_of(cli)
    result = cli("audience", "export", "exp", "grade in ('A','B','C','D')", "-o",
                 tmp_path / "exp.csv", "--variants", "A:1", "--holdout", "50%", "--seed", "s1",
                 "--goal", "register", "--as-of", "2026-10-01")
    assert result.exit_code == 0, result.stderr
    assert {r["person_id"]: r["variant"] for r in rows(tmp_path / "exp.csv")} == {
        first["W1"]: "A", first["W2"]: "holdout"}
    night(cli, "n2", "bridge.csv", leads + "X1,Bob,13900001002,a@ex.com,2026-10-01 12:00:00\n",
          "2026-10-02")
    assert len(set(persons_of(cli).values())) == 1  # one person: Bob's id retired
    assert cli("identity", "unlink", "W2", "W1", "--reason", "two people").exit_code == 0
    night(cli, "n3", "ev.csv", "phone,event_type,ts\n13900001001,register,2026-10-03 15:00:00\n",
          "2026-10-04")
    split = persons_of(cli)
    assert (split["W2"], split["X1"]) == (first["W1"], first["W1"])  # Bob holds Alice's id
    assert split["W1"] not in first.values()  # Alice: a new id
    expected = [arm("holdout", 1, 0, control=True), arm("A", 1, 1)]
    data = ab(cli, "exp", "--as-of", "2026-10-10")
    assert (data["variants"], data["warnings"]) == (expected, [])
    # a full rebuild of the same nights reads the same
    assert cli("run", "--full", "--as-of", "2026-10-04").exit_code == 0
    again = ab(cli, "exp", "--as-of", "2026-10-10")
    assert (again["variants"], again["warnings"]) == (expected, [])


def test_members_recorded_without_anchors_follow_merges_by_person_id(acli):
    """A workspace whose experiment_members predates the anchor columns, only read since:
    report ab maps members through person_aliases; a writer adds the columns (NULL)."""
    assert export(acli, "--goal", "register")[0].exit_code == 0
    with open_writer(acli.db) as ws:
        ws.execute(MERGE_SQL)
    with duckdb.connect(str(acli.db)) as con:  # as a workspace made before the columns
        con.execute("ALTER TABLE experiment_members DROP COLUMN anchor_source")
        con.execute("ALTER TABLE experiment_members DROP COLUMN anchor_lead_id")
    data = ab(acli, "spring", "--as-of", "2026-11-01")
    assert data["variants"] == [arm("A", 3, 2, control=True), arm("B", 4, 2)]
    with open_writer(acli.db) as ws:
        assert ws.rows("SELECT count(*) AS n, count(anchor_lead_id) AS anchored "
                       "FROM experiment_members") == [{"n": 8, "anchored": 0}]
    assert ab(acli, "spring", "--as-of", "2026-11-01")["variants"] == data["variants"]
