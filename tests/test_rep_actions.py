"""Rep actions (claim, status, sale) survive `load-results`: a Spark output made before
them never overwrites them (routing/rep_actions.py). The output here is written from a
DuckDB workspace in the Spark output's layout, so no Spark is needed."""

from __future__ import annotations

import datetime as dt
import json

import duckdb
import pytest

from leadctl.routing.rep_actions import rep_action_selects, stamp_folds_from_sql
from leadctl.schema import all_ddl
from tests.conftest import SAMPLE_INBOX, Cli

AS_OF = "2026-11-01"


def _fake_spark_output(db, folder, run_id=1, with_log=False, as_of=AS_OF):
    """Every table of `db` as <folder>/<table>/part.parquet plus the run summary (of the
    night `run_id` as of `as_of`, the latest run of `db`'s log, as a Spark run's is).
    `with_log`: its `runs` and `meta` too, as a Spark night's `--state` holds them."""
    con = duckdb.connect(str(db), read_only=True)
    kept = "('')" if with_log else "('runs', 'meta')"
    names = [r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
        f"AND table_name NOT IN {kept}").fetchall()]
    for name in names:
        (folder / name).mkdir(parents=True)
        con.execute(f"COPY {name} TO '{folder / name / 'part.parquet'}' (FORMAT parquet)")
    con.close()
    (folder / "_leadctl_run.json").write_text(json.dumps(
        {"as_of": as_of, "run_id": run_id, "outcome": "ok", "tables": {}}))


def _rows(db, sql):
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.fixture(scope="module")
def acted(tmp_path_factory):
    """A night's output loaded into a workspace, then a claim, a status change and a sale
    made there; returns (workspace Cli, output folder, the actions' persons)."""
    tmp = tmp_path_factory.mktemp("rep")
    night = Cli(tmp / "night.duckdb")
    assert night("run", "--inbox", SAMPLE_INBOX, "--as-of", AS_OF).exit_code == 0
    _fake_spark_output(night.db, tmp / "out")
    ws = Cli(tmp / "ws.duckdb")
    assert ws("load-results", tmp / "out").exit_code == 0
    owned = _rows(ws.db, "SELECT person_id, owner FROM ownership WHERE owner IS NOT NULL "
                         "AND locked_until IS NULL ORDER BY person_id LIMIT 2")
    claimed = ws("claim", "nurture", "--rep", "ops_xu", "--n", "2", "--as-of", AS_OF, "--json")
    assert claimed.exit_code == 0, claimed.stderr
    (status_person, status_owner), (sale_person, sale_rep) = owned
    assert ws("status", status_person, "contacting", "--as-of", AS_OF).exit_code == 0
    assert ws("sale", sale_person, "--rep", sale_rep, "--amount", "880",
              "--as-of", AS_OF).exit_code == 0
    return ws, tmp / "out", claimed.json()["claimed"], status_person, sale_person


def test_load_results_keeps_actions_newer_than_the_run(acted):
    ws, out, claimed, status_person, sale_person = acted
    persons = sorted([*claimed, status_person, sale_person])
    where = f"person_id IN ({', '.join(repr(p) for p in persons)})"
    before = {t: _rows(ws.db, f"SELECT * FROM {t} WHERE {where} ORDER BY ALL")
              for t in ("ownership", "assignments", "sales", "lead_intent")}
    assert len(claimed) == 2 and len(before["sales"]) == 1

    loaded = ws("load-results", out, "--json")  # the output predates every action
    assert loaded.exit_code == 0 and loaded.json()["rep_actions_kept"] == 4
    after = {t: _rows(ws.db, f"SELECT * FROM {t} WHERE {where} ORDER BY ALL") for t in before}
    assert after == before
    assert _rows(ws.db, f"SELECT owner, status, locked_until IS NOT NULL FROM ownership "
                        f"WHERE person_id = '{sale_person}'")[0][1:] == ("closed", True)

    again = ws("load-results", out, "--json")  # idempotent: nothing doubled
    assert again.json()["rep_actions_kept"] == 4
    assert {t: _rows(ws.db, f"SELECT * FROM {t} WHERE {where} ORDER BY ALL")
            for t in before} == before



def _a_night_that_merges(tmp_path, rerun: bool = False):
    """A workspace loaded with night 1's output, and night 2's output (made without it),
    in which a bridge lead merges X into Y: two unlocked persons with a rep each, one with
    a phone, one with an e-mail (X, the larger id: on a tie the smaller survives).
    `rerun`: night 2 is run once more from night 1's state, written as out2r (the same
    merge, logged at another time, as run 2 again). Returns (workspace Cli, x, y, x's
    rep)."""
    night = Cli(tmp_path / "night.duckdb")
    assert night("run", "--inbox", SAMPLE_INBOX, "--as-of", AS_OF).exit_code == 0
    _fake_spark_output(night.db, tmp_path / "out1")
    ws = Cli(tmp_path / "ws.duckdb")
    assert ws("load-results", tmp_path / "out1").exit_code == 0
    (y, y_email), (x, x_phone, rep) = _rows(night.db, """
        SELECT p.person_id, p.email FROM persons p JOIN ownership o USING (person_id)
        WHERE o.owner IS NOT NULL AND o.locked_until IS NULL AND p.email IS NOT NULL
          AND p.phone IS NULL AND o.status = 'pending' ORDER BY p.person_id LIMIT 1"""
        )[0], _rows(night.db, """
        SELECT p.person_id, p.phone, o.owner FROM persons p JOIN ownership o USING (person_id)
        WHERE o.owner IS NOT NULL AND o.locked_until IS NULL AND p.phone IS NOT NULL
          AND o.status = 'pending' ORDER BY p.person_id DESC LIMIT 1""")[0]
    assert x > y
    inbox = tmp_path / "inbox2"
    inbox.mkdir()
    (inbox / "bridge.csv").write_text(f"lead_id,phone,email,created_at\nBRIDGE1,{x_phone},"
                                      f"{y_email},2026-11-02 09:00\n", encoding="utf-8")
    again = Cli(tmp_path / "night_r.duckdb")
    if rerun:
        again.db.write_bytes(night.db.read_bytes())
    assert night("run", "--inbox", inbox, "--as-of", "2026-11-02").exit_code == 0
    assert _rows(night.db, f"SELECT person_id FROM person_aliases WHERE old_person_id = '{x}'"
                 ) == [(y,)]
    _fake_spark_output(night.db, tmp_path / "out2", run_id=2)
    if rerun:
        assert again("run", "--inbox", inbox, "--as-of", "2026-11-02").exit_code == 0
        _fake_spark_output(again.db, tmp_path / "out2r", run_id=2)
    return ws, x, y, rep


def test_a_sale_on_a_person_the_loaded_night_merged_away_keeps_its_lock(tmp_path):
    """The workspace sells X while the night (which merges X into Y) runs without it: the
    sale is folded into Y by on_merge (the lock kept), not dropped with X's retired id."""
    ws, x, y, rep = _a_night_that_merges(tmp_path)
    assert ws("sale", x, "--rep", rep, "--as-of", "2026-11-02").exit_code == 0

    loaded = ws("load-results", tmp_path / "out2", "--json")
    assert loaded.exit_code == 0, loaded.stderr
    assert (loaded.json()["rep_actions_kept"], loaded.json()["merged_states"]) == (1, 1)
    assert _rows(ws.db, f"SELECT owner, status, locked_until FROM ownership "
                        f"WHERE person_id = '{y}'") == [(rep, "closed", dt.date(2027, 5, 1))]
    assert _rows(ws.db, f"SELECT count(*) FROM ownership WHERE person_id = '{x}'") == [(0,)]
    # the fold is logged as the merge it is, naming the retired id (it said `merge: ? into`)
    reasons = [r for (r,) in _rows(ws.db, "SELECT reason FROM assignments WHERE rule = "
                                          f"'merge' AND person_id = '{y}' ORDER BY ALL")]
    assert reasons == [f"merge: {x} into {y}; kept the state of {y} (tie)",  # the night's
                       f"merge: {x} into {y}; kept the state of {x} (by lock)"]  # the fold
    other = ws("sale", y, "--rep", "nobody_else", "--as-of", "2026-11-03")
    assert other.exit_code == 2


def test_load_results_of_a_broken_output_is_an_input_error_and_loads_nothing(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    ws = Cli(tmp_path / "ws.duckdb")
    for summary, message in (('{"as_of": "2026-11', "JSONDecodeError"), ("{}", "KeyError")):
        (out / "_leadctl_run.json").write_text(summary, encoding="utf-8")
        result = ws("load-results", out)
        assert (result.exit_code, message in result.stderr) == (2, True), result.stderr
        assert "is not a complete Spark run summary" in result.stderr
    (out / "_leadctl_run.json").write_text(json.dumps({"as_of": AS_OF}), encoding="utf-8")
    (out / "persons").mkdir()
    (out / "persons" / "part-0.parquet").write_bytes(b"PAR1 half a file")
    result = ws("load-results", out)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {out}: its persons table cannot be read (")
    assert not ws.db.exists()


@pytest.mark.parametrize(("edit", "says"), [
    ({"run_id": 2**31}, "ValueError: run_id 2147483648 is not a whole number from 0 to "
                        "2147483647"),
    ({"run_id": "abc"}, "ValueError: run_id 'abc' is not a whole number from 0 to 2147483647"),
    ({"tables": [1]}, "ValueError: tables is a list, not rows per table"),
    ({"tables": {"leads": "3154"}}, "ValueError: tables: leads has '3154' rows, not a whole "
                                    "number")])
def test_load_results_of_a_summary_with_bad_numbers_is_an_input_error(tmp_path, edit, says):
    out = tmp_path / "out"
    out.mkdir()
    (out / "_leadctl_run.json").write_text(json.dumps({"as_of": AS_OF, "run_id": 1, **edit}),
                                           encoding="utf-8")
    ws = Cli(tmp_path / "ws.duckdb")
    result = ws("load-results", out)
    assert (result.exit_code, result.stderr.splitlines()[-1]) == (2, (
        f"error: {out}: _leadctl_run.json is not a complete Spark run summary ({says}); copy "
        "the whole --output folder again"))
    assert not ws.db.exists()


def test_a_repeat_sale_that_logs_nothing_keeps_its_lock_through_load_results(tmp_path):
    """A repeat sale by the owning rep moves the lock and adds a sales row, but writes no
    log row: load-results of a night that predates it kept the night's lock."""
    night = Cli(tmp_path / "night.duckdb")
    assert night("run", "--inbox", SAMPLE_INBOX, "--as-of", AS_OF).exit_code == 0
    person, rep = _rows(night.db, "SELECT person_id, owner FROM ownership WHERE owner IS "
                                  "NOT NULL AND locked_until IS NULL ORDER BY person_id")[0]
    assert night("sale", person, "--rep", rep, "--as-of", AS_OF).exit_code == 0
    _fake_spark_output(night.db, tmp_path / "out")  # the night with the first sale
    ws = Cli(tmp_path / "ws.duckdb")
    assert ws("load-results", tmp_path / "out").exit_code == 0
    assert ws("sale", person, "--rep", rep, "--lock-days", "400",
              "--as-of", "2026-11-02").exit_code == 0
    lock = _rows(ws.db, f"SELECT locked_until FROM ownership WHERE person_id = '{person}'")
    assert lock == [(dt.date(2027, 12, 7),)]
    loaded = ws("load-results", tmp_path / "out", "--json")
    assert (loaded.exit_code, loaded.json()["rep_actions_kept"]) == (0, 1)
    assert _rows(ws.db, f"SELECT locked_until FROM ownership WHERE person_id = '{person}'"
                 ) == lock
    again = ws("load-results", tmp_path / "out", "--json")  # nothing doubled
    assert again.json()["rep_actions_kept"] == 1
    # the night's first sale (taken from the output) and the repeat sale
    assert _rows(ws.db, f"SELECT count(*) FROM sales WHERE person_id = '{person}'") == [(2,)]


def test_an_intent_under_an_id_the_loaded_night_retired_goes_to_its_person(tmp_path):
    """The workspace keeps its own intents through load-results: one held under an id the
    night merged away moves to the survivor, also when no rep action is re-applied."""
    ws, x, y, _ = _a_night_that_merges(tmp_path)
    with duckdb.connect(str(ws.db)) as con:  # as a status change carried earlier leaves it
        con.execute("INSERT INTO lead_intent VALUES (?, DATE '2026-11-02')", [x])
    loaded = ws("load-results", tmp_path / "out2", "--json")
    assert (loaded.exit_code, loaded.json()["rep_actions_kept"]) == (0, 0)
    assert _rows(ws.db, "SELECT person_id, intent_at FROM lead_intent WHERE person_id IN "
                        f"('{x}', '{y}')") == [(y, dt.date(2026, 11, 2))]


def test_a_second_output_of_the_same_night_logs_its_merges_once(tmp_path):
    """Night 2 run twice from night 1's state: both outputs log the merge of X into Y, at
    two times, as run 2 — the id the workspace's load of night 1 took too. Loading one,
    then the other, keeps the other's merge rows only: the first's were taken for that
    load's folds (picked by run id) and logged a second time."""
    ws, x, y, _ = _a_night_that_merges(tmp_path, rerun=True)
    merges = "SELECT logged_at, run_id, person_id, reason FROM assignments WHERE rule = 'merge'"
    for out in ("out2", "out2r"):
        loaded = ws("load-results", tmp_path / out, "--json")
        assert loaded.exit_code == 0, loaded.stderr
        assert [loaded.json()[k] for k in ("rep_actions_kept", "merged_states", "conflicts")
                ] == [0, 0, 0]
        night = _rows(tmp_path / ("night.duckdb" if out == "out2" else "night_r.duckdb"),
                      f"{merges} ORDER BY ALL")  # the output's merge rows, all of them
        assert _rows(ws.db, f"{merges} ORDER BY ALL") == night
        assert [(r, p, reason) for _, r, p, reason in night if p == y] == [
            (2, y, f"merge: {x} into {y}; kept the state of {y} (tie)")]
    assert _rows(ws.db, "SELECT run_id, command FROM runs ORDER BY run_id") == [
        (2, "load-results"), (3, "load-results"), (4, "load-results")]


def test_a_fold_a_load_made_before_folds_were_stamped_stays_its_fold():
    """A load before the first stamping one stamped its fold at the fold's time: its merge
    row is still carried (stamped while it ran; a Spark night's row of its id is not); a
    stamping load's only by its stamp."""
    con = duckdb.connect()
    for statement in all_ddl():
        con.execute(statement)
    con.execute("INSERT INTO runs (run_id, command, started_at, ended_at, as_of, outcome) "
                "VALUES (2, 'load-results', '2026-11-02 01:00:00', '2026-11-02 01:00:30', "
                "'2026-11-01', 'ok'), (3, 'load-results', '2026-11-03 01:00:00', "
                "'2026-11-03 01:00:30', '2026-11-02', 'ok')")
    con.execute("INSERT INTO assignments (logged_at, run_id, as_of, person_id, rule) VALUES "
                "('2026-11-02 01:00:07', 2, '2026-11-01', 'P_old', 'merge'), "
                "('2026-11-02 23:10:00', 2, '2026-11-01', 'P_spark', 'merge'), "
                "('2026-11-03 01:00:09', 3, '2026-11-02', 'P_night', 'merge'), "
                "('2026-11-03 01:00:00', 3, '2026-11-02', 'P_new', 'merge')")
    carried = rep_action_selects()["assignments"] + " ORDER BY person_id"
    # no stamping load yet: every load's rows stamped while it ran
    assert [r[3] for r in con.execute(carried).fetchall()] == ["P_new", "P_night", "P_old"]
    con.execute(stamp_folds_from_sql(3))
    con.execute(stamp_folds_from_sql(9))  # (the first stamping load stays recorded)
    assert [r[3] for r in con.execute(carried).fetchall()] == ["P_new", "P_old"]


def test_a_load_and_every_later_run_take_run_ids_past_the_loaded_rows(tmp_path):
    """Loaded rows keep the Spark run log's ids: a state seven nights old holds rows of run
    7. The load and every later run here take higher ids, so a tag run after the load is
    the latest by run (it was run 3 here, sorting before the loaded night's rows)."""
    ws, x, y, _ = _a_night_that_merges(tmp_path)
    summary = tmp_path / "out2" / "_leadctl_run.json"
    summary.write_text(summary.read_text().replace('"run_id": 2', '"run_id": 7'))
    loaded = ws("load-results", tmp_path / "out2", "--json")
    assert (loaded.exit_code, loaded.json()["merged_states"]) == (0, 0), loaded.stderr
    assert _rows(ws.db, f"SELECT count(*) FROM assignments WHERE rule = 'merge' "
                        f"AND person_id = '{y}'") == [(1,)]
    assert ws("tag", "--as-of", "2026-11-03").exit_code == 0
    assert _rows(ws.db, "SELECT run_id, command FROM runs ORDER BY run_id") == [
        (2, "load-results"), (8, "load-results"), (9, "tag")]


def _a_night_merging_two_sold_persons(tmp_path, x_sold_first: bool):
    """A loaded night, then Y sold by its rep in the workspace (and X by its rep too when
    `x_sold_first`), then a night on a copy of the workspace (as a Spark night with --db
    sees it) that merges X into Y through a bridge lead, written as out2. Returns
    (workspace Cli, night Cli, x, y, x's rep, y's rep)."""
    night = Cli(tmp_path / "night.duckdb")
    assert night("run", "--inbox", SAMPLE_INBOX, "--as-of", AS_OF).exit_code == 0
    _fake_spark_output(night.db, tmp_path / "out1")
    ws = Cli(tmp_path / "ws.duckdb")
    assert ws("load-results", tmp_path / "out1").exit_code == 0
    (y, y_email, y_rep), (x, x_phone, x_rep) = _rows(ws.db, """
        SELECT p.person_id, p.email, o.owner FROM persons p JOIN ownership o USING (person_id)
        WHERE o.owner IS NOT NULL AND o.locked_until IS NULL AND p.email IS NOT NULL
          AND p.phone IS NULL AND o.status = 'pending' ORDER BY p.person_id LIMIT 1""")[0], \
        _rows(ws.db, """
        SELECT p.person_id, p.phone, o.owner FROM persons p JOIN ownership o USING (person_id)
        WHERE o.owner IS NOT NULL AND o.locked_until IS NULL AND p.phone IS NOT NULL
          AND o.status = 'pending' ORDER BY p.person_id DESC LIMIT 1""")[0]
    assert x > y and x_rep != y_rep
    assert ws("sale", y, "--rep", y_rep, "--as-of", AS_OF).exit_code == 0
    if x_sold_first:
        assert ws("sale", x, "--rep", x_rep, "--as-of", "2026-11-02").exit_code == 0
    second = Cli(tmp_path / "night2.duckdb")
    second.db.write_bytes(ws.db.read_bytes())
    inbox = tmp_path / "inbox2"
    inbox.mkdir()
    (inbox / "bridge.csv").write_text(f"lead_id,phone,email,created_at\nBRIDGE1,{x_phone},"
                                      f"{y_email},2026-11-02 09:00\n", encoding="utf-8")
    assert second("run", "--inbox", inbox, "--as-of", "2026-11-02").exit_code == 0
    (run_id,) = _rows(second.db, "SELECT max(run_id) FROM runs")[0]
    _fake_spark_output(second.db, tmp_path / "out2", run_id=run_id, with_log=True)
    return ws, second, x, y, x_rep, y_rep


def _a_conflict_recorded_by_a_load(tmp_path):
    """Y is sold by its rep in the workspace; the night merges X into Y; meanwhile X's rep
    sells X in the workspace; load-results folds that sale into Y: Y's earlier sale keeps
    its lock, X's rep's lock is a conflict. Returns (workspace Cli, x, y, x's rep, y's rep,
    out2)."""
    ws, _, x, y, x_rep, y_rep = _a_night_merging_two_sold_persons(tmp_path, x_sold_first=False)
    assert ws("sale", x, "--rep", x_rep, "--as-of", "2026-11-02").exit_code == 0
    loaded = ws("load-results", tmp_path / "out2", "--json")
    assert loaded.exit_code == 0, loaded.stderr
    assert [loaded.json()[k] for k in ("rep_actions_kept", "merged_states", "conflicts")] == [
        1, 0, 1]  # Y's state as it is: the night's merge row is the merge's one
    return ws, x, y, x_rep, y_rep, tmp_path / "out2"


def _conflict_and_fold(ws, y):
    return (_rows(ws.db, "SELECT person_id, kept_rep, other_person_id, other_rep, status "
                         "FROM ownership_conflicts"),
            _rows(ws.db, f"SELECT reason FROM assignments WHERE rule = 'merge' "
                         f"AND person_id = '{y}' ORDER BY logged_at"),
            _rows(ws.db, f"SELECT owner, status, locked_until FROM ownership "
                         f"WHERE person_id = '{y}'"))


def test_a_conflict_a_load_recorded_survives_loading_that_output_again(tmp_path):
    """The conflict the fold recorded exists only in the workspace: loading the same
    output again (which cannot fold again: X's state is gone) keeps it, once. The fold
    left Y's state as it is: no merge row of its own besides the night's."""
    ws, x, y, x_rep, y_rep, out2 = _a_conflict_recorded_by_a_load(tmp_path)
    recorded = ([(y, y_rep, x, x_rep, "open")],
                [(f"merge: {x} into {y}; kept the state of {y} (by lock)",)],
                [(y_rep, "closed", dt.date(2027, 4, 30))])
    assert _conflict_and_fold(ws, y) == recorded
    for _ in range(2):  # no loss, no duplicate
        again = ws("load-results", out2, "--json")
        assert again.exit_code == 0, again.stderr
        assert [again.json()[k] for k in ("rep_actions_kept", "merged_states", "conflicts")
                ] == [1, 0, 0]
        assert _conflict_and_fold(ws, y) == recorded
    listed = ws("identity", "conflicts", "--json")
    assert [(c["person_id"], c["kept"]["rep"], c["other"]["rep"])
            for c in listed.json()["conflicts"]] == [(y, y_rep, x_rep)]


def test_a_new_workspace_loading_an_output_takes_its_sales(tmp_path):
    """The state folder is the system of record: a workspace made anew from it (a lost
    laptop, a second analyst) shows the sales behind its locks (it had none)."""
    night = Cli(tmp_path / "night.duckdb")
    assert night("run", "--inbox", SAMPLE_INBOX, "--as-of", AS_OF).exit_code == 0
    person, rep = _rows(night.db, "SELECT person_id, owner FROM ownership WHERE owner IS NOT "
                                  "NULL ORDER BY person_id LIMIT 1")[0]
    assert night("sale", person, "--rep", rep, "--amount", "88", "--as-of", AS_OF
                 ).exit_code == 0
    _fake_spark_output(night.db, tmp_path / "out")
    fresh = Cli(tmp_path / "fresh.duckdb")
    loaded = fresh("load-results", tmp_path / "out", "--json")
    assert (loaded.exit_code, loaded.json()["rep_actions_kept"]) == (0, 0)
    sales = "SELECT person_id, rep, amount, locked_until FROM sales"
    assert _rows(fresh.db, sales) == _rows(night.db, sales) == [
        (person, rep, 88.0, dt.date(2027, 4, 30))]
    again = fresh("load-results", tmp_path / "out", "--json")  # once, not twice
    assert again.exit_code == 0 and _rows(fresh.db, sales) == _rows(night.db, sales)


def test_a_workspace_loading_an_output_takes_its_intents_the_later_per_person(tmp_path):
    """The run's clear intents (the dormancy clock) come with it as its sales do: a new
    workspace had none of them, so its next DuckDB night would have judged dormancy
    without them. Of both sides' intents of a person the later is kept."""
    night = Cli(tmp_path / "night.duckdb")
    assert night("run", "--inbox", SAMPLE_INBOX, "--as-of", AS_OF).exit_code == 0
    person = _rows(night.db, "SELECT person_id FROM ownership WHERE owner IS NOT NULL "
                             "AND locked_until IS NULL ORDER BY person_id LIMIT 1")[0][0]
    assert night("status", person, "clear_intent", "--as-of", AS_OF).exit_code == 0
    _fake_spark_output(night.db, tmp_path / "out")
    intents = "SELECT person_id, intent_at FROM lead_intent ORDER BY ALL"
    assert _rows(night.db, intents) == [(person, dt.date(2026, 11, 1))]
    fresh = Cli(tmp_path / "fresh.duckdb")
    loaded = fresh("load-results", tmp_path / "out", "--json")
    assert (loaded.exit_code, loaded.json()["rep_actions_kept"]) == (0, 0), loaded.stderr
    assert _rows(fresh.db, intents) == [(person, dt.date(2026, 11, 1))]
    with duckdb.connect(str(fresh.db)) as con:  # an older intent here: the run's is later
        con.execute("UPDATE lead_intent SET intent_at = DATE '2026-10-20'")
    assert fresh("load-results", tmp_path / "out").exit_code == 0
    assert _rows(fresh.db, intents) == [(person, dt.date(2026, 11, 1))]
    assert fresh("status", person, "appointment", "--as-of", "2026-11-03").exit_code == 0
    assert fresh("load-results", tmp_path / "out").exit_code == 0  # the workspace's is later
    assert _rows(fresh.db, intents) == [(person, dt.date(2026, 11, 3))]


def test_an_experiment_recorded_in_the_workspace_survives_load_results(tmp_path):
    """Experiments are the workspace's (no Spark night makes one): a load replaced them by
    the output's empty tables, and `report ab` then knew no experiment."""
    night = Cli(tmp_path / "night.duckdb")
    assert night("run", "--inbox", SAMPLE_INBOX, "--as-of", AS_OF).exit_code == 0
    _fake_spark_output(night.db, tmp_path / "out")
    ws = Cli(tmp_path / "ws.duckdb")
    assert ws("load-results", tmp_path / "out").exit_code == 0
    exported = ws("audience", "export", "spring", "grade in ('A', 'B')", "-o",
                  tmp_path / "spring.csv", "--seed", "s1", "--as-of", AS_OF, "--json")
    assert exported.exit_code == 0, exported.stderr
    members = _rows(ws.db, "SELECT count(*) FROM experiment_members")
    assert members[0][0] == exported.json()["persons"] > 0
    assert ws("load-results", tmp_path / "out").exit_code == 0
    assert _rows(ws.db, "SELECT name FROM experiments") == [("spring",)]
    assert _rows(ws.db, "SELECT count(*) FROM experiment_members") == members
    assert ws("report", "ab", "spring", "--as-of", AS_OF).exit_code == 0


def test_a_rep_action_on_a_lock_the_night_recorded_as_a_conflict_records_it_once(tmp_path):
    """Both X and Y are sold before the night (run on a copy of the workspace, as a Spark
    night with --db sees it), which merges X into Y: Y's earlier sale keeps its lock, X's
    rep's lock is the night's conflict. X's rep changes X's status while the night runs:
    Y is the other rep's now, so load-results does not apply it (the DuckDB engine refuses
    it after its night) — no second conflict and no second `merge` row (a fold of X's
    state logged the same lock pair twice), as the DuckDB engine has one."""
    ws, second, x, y, x_rep, y_rep = _a_night_merging_two_sold_persons(tmp_path,
                                                                      x_sold_first=True)
    assert ws("status", x, "appointment", "--rep", x_rep, "--as-of", "2026-11-02"
              ).exit_code == 0
    night_fold = _conflict_and_fold(second, y)
    assert night_fold == (
        [(y, y_rep, x, x_rep, "open")],
        [(f"merge: {x} into {y}; kept the state of {y} (by lock); conflict: active lock "
          f"of {x_rep} not kept, see leadctl identity conflicts",)],
        [(y_rep, "closed", dt.date(2027, 4, 30))])
    for not_applied in (1, 0):  # loading the output again changes nothing either
        loaded = ws("load-results", tmp_path / "out2", "--json")
        assert loaded.exit_code == 0, loaded.stderr
        assert [loaded.json()[k] for k in ("rep_actions_kept", "rep_actions_not_applied",
                                           "merged_states", "conflicts")
                ] == [0, not_applied, 0, 0]
        assert _conflict_and_fold(ws, y) == night_fold
        assert _rows(ws.db, f"SELECT count(*) FROM ownership WHERE person_id = '{x}'"
                     ) == [(0,)]
    listed = ws("identity", "conflicts", "--json")
    assert [(c["person_id"], c["kept"]["rep"], c["other"]["rep"], c["other"]["from_person_id"])
            for c in listed.json()["conflicts"]] == [(y, y_rep, x_rep, x)]



def test_a_repeat_sale_on_a_lock_the_night_recorded_as_a_conflict_moves_its_end(tmp_path):
    """X's rep sells X again while the night that merged X into Y runs (the workspace still
    has X as hers): the lock is the same (rep, person, first sale), only longer. Its open
    conflict was recorded a second time, with the new end; now the one conflict shows it."""
    ws, second, x, y, x_rep, y_rep = _a_night_merging_two_sold_persons(tmp_path,
                                                                      x_sold_first=True)
    assert ws("sale", x, "--rep", x_rep, "--as-of", "2026-11-03").exit_code == 0
    for _ in range(2):  # loading the output again changes nothing
        loaded = ws("load-results", tmp_path / "out2", "--json")
        assert loaded.exit_code == 0, loaded.stderr
        assert loaded.json()["conflicts"] == 0
        assert _rows(ws.db, "SELECT person_id, kept_rep, other_person_id, other_rep, "
                            "other_sold_at, other_locked_until, status "
                            "FROM ownership_conflicts") == [
            (y, y_rep, x, x_rep, dt.date(2026, 11, 2), dt.date(2027, 5, 2), "open")]


@pytest.fixture(scope="module")
def acted_while_merging(tmp_path_factory):
    """Night 1 (as of 11-02): X1, X2, Y1 (上海) and Z1 (北京), four persons. Then, in the
    workspace that loaded it, rep_wang sells X1 (11-02, locked until 2027-05-01) and X2
    (11-03, until 2027-05-02), rep_zhang sells Y1. Night 2 (11-03; run on a copy of the
    workspace, as a Spark night with --db sees it) merges X1 with X2 and Y1 with Z1; while
    it runs, rep_zhao sells Z1 and X1 is set to appointment in the workspace, which then
    loads night 2's output. Returns (workspace Cli, the load's --json, out2, the DuckDB
    engine's workspace: night 2 run in it, the sale before, the status after)."""
    tmp = tmp_path_factory.mktemp("acted_while_merging")
    night = Cli(tmp / "night.duckdb")
    inbox1, inbox2 = tmp / "in1", tmp / "in2"
    inbox1.mkdir()
    inbox2.mkdir()
    head = "lead_id,name,phone,email,wechat,city,created_at\n"
    (inbox1 / "l1.csv").write_text(head + (
        "X1,甲,13911110001,,,上海,2026-11-01 09:00:00\n"
        "X2,甲,13911110002,,,上海,2026-11-01 09:01:00\n"
        "Y1,乙,13911110003,,,上海,2026-11-01 09:02:00\n"
        "Z1,丙,13911110004,,,北京,2026-11-01 09:03:00\n"), encoding="utf-8")
    (inbox2 / "l2.csv").write_text(head + (
        "X2b,甲,13911110002,x@x.com,,上海,2026-11-02 10:00:00\n"
        "X1b,甲,13911110001,x@x.com,,上海,2026-11-02 10:01:00\n"
        "Y1b,乙,13911110003,,yzwx01,上海,2026-11-02 10:02:00\n"
        "Z1b,丙,13911110004,,yzwx01,北京,2026-11-02 10:03:00\n"), encoding="utf-8")
    assert night("run", "--inbox", inbox1, "--as-of", "2026-11-02").exit_code == 0
    assert _rows(night.db, "SELECT count(*) FROM persons") == [(4,)]
    _fake_spark_output(night.db, tmp / "out1", as_of="2026-11-02")
    ws = Cli(tmp / "ws.duckdb")
    assert ws("load-results", tmp / "out1").exit_code == 0
    for lead, rep, day in (("X1", "rep_wang", "2026-11-02"), ("X2", "rep_wang", "2026-11-03"),
                           ("Y1", "rep_zhang", "2026-11-02")):
        assert ws("sale", lead, "--rep", rep, "--as-of", day).exit_code == 0
    second, duck = Cli(tmp / "night2.duckdb"), Cli(tmp / "duck.duckdb")
    second.db.write_bytes(ws.db.read_bytes())
    duck.db.write_bytes(ws.db.read_bytes())
    assert second("run", "--inbox", inbox2, "--as-of", "2026-11-03").exit_code == 0
    (run_id,) = _rows(second.db, "SELECT max(run_id) FROM runs")[0]
    _fake_spark_output(second.db, tmp / "out2", run_id=run_id, with_log=True,
                       as_of="2026-11-03")
    assert duck("sale", "Z1", "--rep", "rep_zhao", "--as-of", "2026-11-03").exit_code == 0
    assert duck("run", "--inbox", inbox2, "--as-of", "2026-11-03").exit_code == 0
    assert duck("status", "X1", "appointment", "--as-of", "2026-11-03").exit_code == 0
    assert ws("sale", "Z1", "--rep", "rep_zhao", "--as-of", "2026-11-03").exit_code == 0
    assert ws("status", "X1", "appointment", "--as-of", "2026-11-03").exit_code == 0
    loaded = ws("load-results", tmp / "out2", "--json")
    assert loaded.exit_code == 0, loaded.stderr
    return ws, loaded.json(), tmp / "out2", duck


_LOCKED = ("SELECT owner, status, locked_until FROM ownership WHERE locked_until IS NOT NULL "
           "ORDER BY owner")


def test_a_status_made_while_the_night_merged_keeps_the_merges_lock(acted_while_merging):
    """X1's status change was made on the workspace's X1 (rep_wang's lock until 05-01);
    the night merged X2 in, with rep_wang's later lock (until 05-02). load-results put
    the workspace's row back whole and the lock ended a day early; the status now goes
    over the night's state, as the DuckDB engine's status after its night does."""
    ws, loaded, _, duck = acted_while_merging
    assert loaded["rep_actions_kept"] == 2
    assert _rows(ws.db, _LOCKED) == _rows(duck.db, _LOCKED) == [
        ("rep_wang", "appointment", dt.date(2027, 5, 2)),
        ("rep_zhang", "closed", dt.date(2027, 5, 1))]


def test_a_sale_on_an_id_the_night_merged_away_logs_the_merge_once(acted_while_merging):
    """rep_zhao sold Z1 while the night merged it into Y1, whose earlier sale keeps the
    lock: the fold keeps Y1's state as it is and records rep_zhao's lock as a conflict. It
    logged a second `merge` row (the night's text again, with the conflict); the night's
    row is the merge's one, as the DuckDB engine logs one. A second load keeps it so."""
    ws, loaded, out2, duck = acted_while_merging
    assert [loaded[k] for k in ("merged_states", "conflicts")] == [0, 1]
    merges = ("SELECT person_id, count(*) FROM assignments WHERE rule = 'merge' "
              "GROUP BY person_id ORDER BY ALL")
    conflicts = "SELECT person_id, kept_rep, other_rep, status FROM ownership_conflicts"
    assert [n for _, n in _rows(ws.db, merges)] == [1, 1]
    expected = [_rows(duck.db, merges), _rows(duck.db, conflicts)]
    assert [_rows(ws.db, merges), _rows(ws.db, conflicts)] == expected
    assert [(kept, other) for _, kept, other, _ in expected[1]] == [("rep_zhang", "rep_zhao")]
    again = ws("load-results", out2, "--json")
    assert again.exit_code == 0, again.stderr
    assert [again.json()[k] for k in ("merged_states", "conflicts")] == [0, 0]
    assert [_rows(ws.db, merges), _rows(ws.db, conflicts)] == expected


_STATE = "SELECT pool, owner, status, status_since, locked_until FROM ownership WHERE person_id = "


def test_a_status_made_while_the_night_took_the_person_back_to_the_pool_is_not_applied(
        tmp_path):
    """X is rep's, pending since 11-01; the night as of 11-05 sends it back to the public
    sea (its SLA, 3 days, passed); meanwhile rep sets X to contacting in the workspace.
    load-results put the workspace's row back whole (rep's again, contacting), undoing
    the night's return. The DuckDB engine refuses that status after its night (X has no
    owner): X stays as the night left it, and no status row is logged."""
    night = Cli(tmp_path / "night.duckdb")
    assert night("run", "--inbox", SAMPLE_INBOX, "--as-of", AS_OF).exit_code == 0
    _fake_spark_output(night.db, tmp_path / "out1")
    ws = Cli(tmp_path / "ws.duckdb")
    assert ws("load-results", tmp_path / "out1").exit_code == 0
    x, rep = _rows(ws.db, "SELECT person_id, owner FROM ownership WHERE owner IS NOT NULL "
                          "AND locked_until IS NULL AND status = 'pending' "
                          "ORDER BY person_id LIMIT 1")[0]
    second, duck = Cli(tmp_path / "night2.duckdb"), Cli(tmp_path / "duck.duckdb")
    second.db.write_bytes(ws.db.read_bytes())
    duck.db.write_bytes(ws.db.read_bytes())
    empty = tmp_path / "empty"
    empty.mkdir()
    for db in (second, duck):
        assert db("run", "--inbox", empty, "--as-of", "2026-11-05").exit_code == 0
    (run_id,) = _rows(second.db, "SELECT max(run_id) FROM runs")[0]
    _fake_spark_output(second.db, tmp_path / "out2", run_id=run_id, with_log=True,
                       as_of="2026-11-05")
    refused = duck("status", x, "contacting", "--rep", rep, "--as-of", "2026-11-05")
    assert refused.exit_code == 2 and "has no owner" in refused.stderr
    assert ws("status", x, "contacting", "--rep", rep, "--as-of", "2026-11-05").exit_code == 0
    returned = [("public_sea", None, None, dt.date(2026, 11, 5), None)]
    statuses = f"SELECT count(*) FROM assignments WHERE rule = 'status' AND person_id = '{x}'"
    for not_applied in (1, 0):  # a second load finds the status gone: the same state
        loaded = ws("load-results", tmp_path / "out2", "--json")
        assert loaded.exit_code == 0, loaded.stderr
        assert _rows(ws.db, f"{_STATE}'{x}'") == _rows(duck.db, f"{_STATE}'{x}'") == returned
        assert _rows(ws.db, statuses) == [(0,)]
        assert [loaded.json().get(k) for k in ("rep_actions_kept", "rep_actions_not_applied")
                ] == [0, not_applied]


def test_a_status_on_an_id_the_night_merged_into_another_reps_person_is_not_applied(
        tmp_path):
    """The night merges X (rep's) into Y (another rep's; a tie keeps Y's state); meanwhile
    rep sets X to appointment in the workspace. load-results folded X's row, with that
    status, into Y by on_merge: the more advanced status won and Y went to X's rep. The
    DuckDB engine refuses the status after its night (Y is the other rep's): Y stays the
    night's, and neither a status nor a fold's merge row is logged."""
    ws, x, y, rep = _a_night_that_merges(tmp_path)
    night = Cli(tmp_path / "night.duckdb")  # the DuckDB engine's workspace after night 2
    refused = night("status", x, "appointment", "--rep", rep, "--as-of", "2026-11-02")
    assert refused.exit_code == 2 and "not " + rep in refused.stderr
    assert ws("status", x, "appointment", "--rep", rep, "--as-of", "2026-11-02"
              ).exit_code == 0
    loaded = ws("load-results", tmp_path / "out2", "--json")
    assert loaded.exit_code == 0, loaded.stderr
    (y_rep,) = _rows(night.db, f"SELECT owner FROM ownership WHERE person_id = '{y}'")[0]
    assert y_rep != rep
    assert _rows(ws.db, f"{_STATE}'{y}'") == _rows(night.db, f"{_STATE}'{y}'") == [
        ("sales_other", y_rep, "pending", dt.date(2026, 11, 1), None)]
    assert _rows(ws.db, f"SELECT count(*) FROM ownership WHERE person_id = '{x}'") == [(0,)]
    assert _rows(ws.db, "SELECT rule, count(*) FROM assignments WHERE rule IN "
                        "('status', 'merge') GROUP BY rule") == [("merge", 1)]
    assert [loaded.json().get(k) for k in ("rep_actions_kept", "rep_actions_not_applied",
                                           "merged_states")] == [0, 1, 0]
    # nor the intent it marked (X's, which went to Y as the survivor's latest)
    intents = f"SELECT person_id, intent_at FROM lead_intent WHERE person_id IN ('{x}', '{y}')"
    assert _rows(ws.db, intents) == _rows(night.db, intents) == []
