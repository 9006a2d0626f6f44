"""The Spark engine gives exactly the DuckDB engine's results: same person partition,
tag values, scores and routes, on the sample data and on a generated data set.

Spark runs in local mode (local[2]) through the real CLI (`run --engine spark`,
then `load-results`). Where pyspark or Java is missing these tests are skipped, and
the reason is printed in the test summary (pytest runs with -rs)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, SAMPLE_INBOX, Cli
from tests.test_rep_actions import _a_conflict_recorded_by_a_load, _conflict_and_fold

AS_OF = "2026-11-01"


def _spark_missing() -> str | None:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "pyspark is not installed (pip install 'leadctl[spark]')"
    if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
        return "no Java runtime: java is not on PATH and JAVA_HOME is unset"
    return None


MISSING = _spark_missing()
pytestmark = [pytest.mark.spark, pytest.mark.skipif(MISSING is not None, reason=MISSING or "")]


def _tables(db, names):
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        return {n: con.sql(f"SELECT * FROM {n}").to_arrow_table() for n in names}
    finally:
        con.close()


def _both_engines(tmp, inbox):
    """Runs DuckDB and Spark on `inbox`; returns (duckdb Cli, spark-loaded Cli, spark run)."""
    duck, spark = Cli(tmp / "duck.duckdb"), Cli(tmp / "spark.duckdb")
    assert duck("run", "--inbox", inbox, "--as-of", AS_OF).exit_code == 0
    out = tmp / "spark_out"
    ran = spark("run", "--engine", "spark", "--inbox", inbox, "--output", out,
                "--as-of", AS_OF, "--json")
    assert ran.exit_code == 0, ran.stderr[-2000:]
    loaded = spark("load-results", out, "--json")
    assert loaded.exit_code == 0, loaded.stderr
    return duck, spark, ran.json()


def _column_types(db, table):
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("SELECT column_name, data_type FROM information_schema.columns "
                           "WHERE table_name = ? ORDER BY ordinal_position", [table]).fetchall()
    finally:
        con.close()


def _parity(duck, spark):
    from leadctl.spark.compare import NEEDED, compare_results

    return compare_results(_tables(duck.db, NEEDED), _tables(spark.db, NEEDED))


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return _both_engines(tmp_path_factory.mktemp("sample"), SAMPLE_INBOX)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("generated")
    subprocess.run([sys.executable, str(REPO / "sample_data" / "generate.py"), "--out", str(tmp),
                    "--persons", "900", "--seed", "23"], check=True, capture_output=True)
    _files_with_record_number_columns(tmp / "inbox")
    _files_at_the_edges(tmp / "inbox")
    return _both_engines(tmp, tmp / "inbox")


def _files_with_record_number_columns(inbox: Path) -> None:
    """Two leads each in a CSV and a Parquet file with columns named like the readers'
    record numbers (and Spark's malformed-line column)."""
    import duckdb

    (inbox / "page.csv").write_text("lead_id,phone,row_number,_corrupt\n"
                                    "L1,13800000001,1,x\nL2,13800000002,1,x\n")
    duckdb.execute("COPY (SELECT 'Q' || i AS lead_id, '1390000000' || i AS phone, "
                   "7 AS row_number, 7 AS file_row_number FROM range(1, 3) t(i)) "
                   f"TO '{inbox / 'app.parquet'}' (FORMAT parquet)")


def _files_at_the_edges(inbox: Path) -> None:
    """A file ending in a DOS end-of-file mark, with times of 24:00 (the next day's 00:00
    on DuckDB), one with an offset, one in a region's time, and names between Unicode
    spaces (NBSP, the ideographic space), which DuckDB's trim takes off and Spark's did
    not, and a time of the hour New York repeats in the fall (DuckDB read its later
    instant, Spark its earlier). (A file of only a byte order mark is empty on both
    engines: the same sniffing of a local file, tests/test_ingest_statuses.py.)"""
    (inbox / "dos.csv").write_bytes(
        "lead_id,name,phone,created_at\n"
        "Z1,\u3000王五\u00a0,13700000001,2026-10-01 24:00:00\n"  # Unicode spaces trimmed
        "Z2,李 四,13700000002,2026-10-01T24:00+08:00\n"
        "Z3,\u2003赵六 ,13700000003,2026-10-01 20:00 Asia/Tokyo\n"
        # the hour that repeats when clocks go back: its earlier instant on both engines
        "Z4,赵六,13700000003,2026-11-01 01:30 America/New_York\x1a".encode())
    # Amounts one engine's cast reads and the other's not (DuckDB 1_000, Spark's Java 1.5d)
    (inbox / "amounts.csv").write_text(
        "phone,event_type,ts,amount\n" + "".join(
            f"13700000099,order_paid,2026-10-01 10:00:00,{a}\n"
            for a in ("1_000", "1.5d", "0x1p3", "+.5", "1e3")))
    _files_of_a_legacy_writer(inbox)
    _files_with_two_headers_for_one_field(inbox)


def _files_with_two_headers_for_one_field(inbox: Path) -> None:
    """A field two columns give (phone twice; ts and 时间 as text, ts and time as Parquet
    timestamps): each row's first usable value, the header named as the field first."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    (inbox / "two_phones.csv").write_text("Mobile,手机号,name\n,13700000001,Y1\n"
                                          "13700000002,,Y2\n", encoding="utf-8")
    (inbox / "two_times.csv").write_text(
        "phone,event_type,时间,ts\n13700000004,visit,,2026-10-02 10:00:00\n"
        "13700000004,visit,2026-10-03 10:00:00,\n", encoding="utf-8")
    pq.write_table(pa.table({
        "phone": ["13700000004"] * 2, "event_type": ["visit"] * 2,
        "ts": pa.array([None, 1791280800000000], pa.timestamp("us")),
        "time": pa.array([1791194400000000] * 2, pa.timestamp("us"))}),
        inbox / "two_stamps.parquet")


def _files_of_a_legacy_writer(inbox: Path) -> None:
    """Parquet as an old writer leaves it: text as unmarked bytes (one not UTF-8), no lead
    id (one is generated from the row's text, bytes and all), 32-bit float amounts and
    attributes, a zoned nanosecond timestamp. Spark read the float as 19.899999618530273
    and hashed the bytes' UTF-8, and refused the whole night for the zoned timestamp."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({
        "name": pa.array(["孙七".encode(), b"\xff\xfe"], pa.binary()),
        "phone": ["13700000004", "13700000005"],
        "created_at": ["2026-10-03 09:00:00", "2026-10-03 10:00:00"],
        "budget": pa.array([19.9, 1.2345679e7], pa.float32()),
        # pandas' zoned column: Spark refused the whole night (TIMESTAMP(NANOS,true))
        "seen": pa.array([1790899199999999999, None], pa.timestamp("ns", tz="UTC"))}),
        inbox / "legacy.parquet")
    pq.write_table(pa.table({
        "phone": ["13700000004", "13700000004"], "event_type": ["order_paid"] * 2,
        "ts": pa.array([1792400000000000, 1792500000000000], pa.timestamp("us")),
        "amount": pa.array([19.9, 0.1], pa.float32())}), inbox / "legacy_events.parquet")


def _assert_same(report, expected_rows):
    differences = {t: r for t, r in report.items() if r["only_duckdb"] or r["only_spark"]}
    assert differences == {}
    assert {t: r["rows"] for t, r in report.items()} == expected_rows


def test_sample_data_same_partition_tags_scores_and_routes(sample):
    duck, spark, run = sample
    _assert_same(_parity(duck, spark), {"person_leads": 3154, "tags": 35419, "scores": 1535,
                                        "ownership": 1535, "assignments": 1535})
    assert run["engine"] == "spark" and run["stages"]["resolve"]["persons"] == 1535
    assert run["stages"]["ingest"]["rejects"] == 4  # the same junk rows as on DuckDB


def test_generated_data_same_results(generated):
    duck, spark, run = generated
    _assert_same(_parity(duck, spark), {"person_leads": 1982, "tags": 21325, "scores": 930,
                                        "ownership": 930, "assignments": 930})
    assert run["stages"]["resolve"]["persons"] == 930


def _on_both_engines(generated, sql: str) -> list[list[tuple]]:
    """The rows `sql` reads from the DuckDB engine's workspace and the Spark one's."""
    import duckdb

    loaded = []
    for cli in generated[:2]:
        with duckdb.connect(str(cli.db), read_only=True) as con:
            loaded.append(con.execute(sql).fetchall())
    return loaded


def test_edge_files_load_as_on_duckdb(generated):
    loaded = _on_both_engines(
        generated, "SELECT l.lead_id, l.name, CAST(l.created_at AS VARCHAR), f.status, "
        "f.rows_rejected FROM ingested_files f LEFT JOIN leads l ON l.file_id = f.file_id "
        "WHERE f.source = 'dos' ORDER BY ALL")
    assert loaded[0] == loaded[1] == [
        ("Z1", "王五", "2026-10-02 00:00:00", "loaded", 0),
        ("Z2", "李 四", "2026-10-02 00:00:00", "loaded", 0),
        ("Z3", "赵六", "2026-10-01 19:00:00", "loaded", 0),
        ("Z4", "赵六", "2026-11-01 13:30:00", "loaded", 0)]


def test_a_field_two_columns_give_takes_each_rows_first_value_as_on_duckdb(generated):
    loaded = _on_both_engines(
        generated, "SELECT source, name, phone, attributes FROM leads "
        "WHERE source = 'two_phones' UNION ALL SELECT source, subject, CAST(ts AS VARCHAR), "
        "attributes FROM events WHERE source IN ('two_times', 'two_stamps') ORDER BY ALL")
    assert loaded[0] == loaded[1] == [
        ("two_phones", "Y1", "13700000001", '{"手机号":"13700000001"}'),
        ("two_phones", "Y2", "13700000002", '{"手机号":null}'),
        ("two_stamps", "phone:13700000004", "2026-10-05 10:00:00",
         '{"time":"2026-10-05 10:00:00"}'),
        ("two_stamps", "phone:13700000004", "2026-10-06 10:00:00",
         '{"time":"2026-10-05 10:00:00"}'),
        ("two_times", "phone:13700000004", "2026-10-02 10:00:00", '{"时间":null}'),
        ("two_times", "phone:13700000004", "2026-10-03 10:00:00",
         '{"时间":"2026-10-03 10:00:00"}')]


def test_amounts_are_plain_numbers_on_both_engines(generated):
    loaded = _on_both_engines(
        generated, "SELECT row_number, reason FROM rejects WHERE source = 'amounts' UNION ALL "
        "SELECT row_number, CAST(amount AS VARCHAR) FROM events WHERE source = 'amounts' "
        "ORDER BY ALL")
    assert loaded[0] == loaded[1] == [(1, "bad_amount"), (2, "bad_amount"),
                                      (3, "bad_amount"), (4, "0.5"), (5, "1000.0")]


def test_a_legacy_writers_parquet_loads_as_on_duckdb(generated):
    loaded = _on_both_engines(
        generated, "SELECT l.lead_id, l.name, l.attributes, f.paid_amount_30d FROM leads l "
        "JOIN person_leads pl USING (lead_key) JOIN person_features f USING (person_id) "
        "WHERE l.source = 'legacy' ORDER BY ALL")
    assert loaded[0] == loaded[1]
    assert sorted(row[1:] for row in loaded[0]) == [
        ("\\xFF\\xFE", '{"budget":"12345679.0","seen":null}', 0.0),
        ("孙七", '{"budget":"19.9","seen":"2026-10-01 23:59:59.999999999+00"}', 20.0)]


def test_columns_named_like_record_numbers_are_attributes_as_on_duckdb(generated):
    """A file's own `row_number` (or `_corrupt`) never becomes the record number, nor
    collides with it: an attribute `<name>_1`, on both engines."""
    loaded = _on_both_engines(generated, "SELECT source, lead_id, row_number, attributes "
                              "FROM leads WHERE source IN ('app', 'page') ORDER BY ALL")
    assert loaded[0] == loaded[1] == [
        ("app", "Q1", 1, '{"row_number_1":"7","file_row_number_1":"7"}'),
        ("app", "Q2", 2, '{"row_number_1":"7","file_row_number_1":"7"}'),
        ("page", "L1", 1, '{"row_number_1":"1","_corrupt_1":"x"}'),
        ("page", "L2", 2, '{"row_number_1":"1","_corrupt_1":"x"}')]


def test_same_rejects_and_person_ids(sample):
    duck, spark, _ = sample
    d, s = _tables(duck.db, ["rejects", "persons"]), _tables(spark.db, ["rejects", "persons"])
    cols = ["source", "row_number", "reason"]
    assert sorted(zip(*(d["rejects"][c].to_pylist() for c in cols), strict=True)) == \
        sorted(zip(*(s["rejects"][c].to_pylist() for c in cols), strict=True))
    assert sorted(d["persons"]["person_id"].to_pylist()) == \
        sorted(s["persons"]["person_id"].to_pylist())


def test_loaded_spark_results_serve_portrait_and_export(sample, tmp_path):
    duck, spark, run = sample
    shown = spark("portrait", "13900227857", "--json")
    assert shown.exit_code == 0, shown.stderr
    person = shown.json()
    assert (person["person_id"], person["lead_count"], person["grade"]) == \
        ("Pd312707a6bec", 1, "D")
    # the same ids, so the same exported rows (a score's rows: one per rule that gave points;
    # the assignments' header line is kept)
    for what, rows in (("scores", 4523), ("assignments", 1536)):
        ours, theirs = tmp_path / f"d_{what}.csv", tmp_path / f"s_{what}.csv"
        assert duck("export", what, "--output", ours).exit_code == 0
        assert spark("export", what, "--output", theirs).exit_code == 0
        skip = 1 if what == "scores" else 0
        lines = [sorted(p.read_text().splitlines()[skip:]) for p in (ours, theirs)]
        if what == "assignments":  # logged_at and run_id are the run's own
            lines = [[",".join(x.split(",")[2:]) for x in side] for side in lines]
        assert lines[0] == lines[1] and len(lines[0]) == rows
    types = dict(_column_types(spark.db, "leads"))
    assert (types["attributes"], types["created_at"]) == ("JSON", "TIMESTAMP")
    runs = spark("runs", "--json").json()
    assert [r["command"] for r in runs] == ["load-results"]
    assert run["run_id"] == 1


def test_spark_needs_output_and_a_known_engine(tmp_path):
    cli = Cli(tmp_path / "w.duckdb")
    no_output = cli("run", "--engine", "spark", "--inbox", SAMPLE_INBOX, "--as-of", AS_OF)
    assert no_output.exit_code == 2 and "--engine spark needs --output" in no_output.stderr
    other = cli("run", "--engine", "flink", "--as-of", AS_OF)
    assert other.exit_code == 2 and "--engine must be duckdb or spark" in other.stderr


def test_load_results_rejects_a_folder_that_is_not_a_spark_output(tmp_path):
    result = Cli(tmp_path / "w.duckdb")("load-results", tmp_path)
    assert result.exit_code == 2 and "not a Spark run's output" in result.stderr


def test_blank_lines_and_lines_of_white_space_use_no_record_number_as_on_duckdb(tmp_path):
    """A phone list's blank lines (and one of spaces) are no records on either engine;
    `""` is a record (an empty value) on both. Spark skips a line of spaces or tabs alone
    in a file of more columns too, where DuckDB's reader rejected it as
    `missing_columns`, numbered the rows after it one more, and took one before the header
    for the header. (One run of both engines for the two files.)"""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "list.csv").write_text('phone\n13812345671\n\n   \n13812345673\n\n""\n'
                                    "13812345674\n\n")
    (inbox / "form.csv").write_text(" \t\nlead_id,phone,city\nA1,13800000001,SH\n   \n"
                                    "A2,13800000002,BJ\n\t \nA3,13800000003\n"
                                    "A4,13800000004,GZ\n  \n")
    (inbox / "crm.csv").write_text("lead_id,phone\n" + "".join(
        f"C{i},1390000{i:04d}\n" for i in range(40)))  # the rejects under the allowed share
    both = _both_engines(tmp_path, inbox)
    for source, column, expected in (
            ("list", "phone", [("13812345671", 1), ("13812345673", 2), ("13812345674", 4),
                               ("no_identifier", 3)]),
            ("form", "lead_id", [("A1", 1), ("A2", 2), ("A4", 4), ("missing_columns", 3)])):
        sql = (f"SELECT {column}, row_number FROM leads WHERE source = '{source}' UNION ALL "
               f"SELECT reason, row_number FROM rejects WHERE source = '{source}' ORDER BY ALL")
        loaded = _on_both_engines(both, sql)
        assert loaded[0] == loaded[1] == expected, source


UNREADABLE_HEADER = ("its header line cannot be read: a quote left open (the rest of the file "
                     "reads as one field) or a header field over 131,072 characters")


def test_a_header_with_a_quote_left_open_fails_its_file_on_both_engines(tmp_path):
    """In a small file DuckDB loaded a column `"name`, Spark the columns `phone` and
    `name,city` (ending the quote at the line's end)."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    bad = inbox / "bad.csv"
    bad.write_text('phone,"name,city\n13800000001,Li,SH\n')
    (inbox / "good.csv").write_text("lead_id,phone\nG1,13812345671\n")
    duck = Cli(tmp_path / "duck.duckdb")("run", "--inbox", inbox, "--as-of", AS_OF, "--json")
    spark = Cli(tmp_path / "spark.duckdb")("run", "--engine", "spark", "--inbox", inbox,
                                           "--output", tmp_path / "out", "--as-of", AS_OF,
                                           "--json")
    for ran in (duck, spark):
        assert ran.exit_code == 2, ran.stderr[-2000:]
        assert [(f["source"], f["status"], f["loaded"], f["message"])
                for f in ran.json()["ingest"]["files"]] == [
            ("bad", "failed", 0, UNREADABLE_HEADER), ("good", "loaded", 1, "")]
        assert ran.json()["error"]["message"] == (
            "1 inbox file(s) could not be read or used, nothing was changed: "
            f"{bad}: {UNREADABLE_HEADER}")


def test_unreadable_input_on_spark_is_an_input_error(tmp_path):
    bad = tmp_path / "broken.parquet"
    bad.write_bytes(b"PAR1 not really parquet")
    result = Cli(tmp_path / "w.duckdb")("run", "--engine", "spark", "--inbox", bad,
                                        "--output", tmp_path / "out", "--as-of", AS_OF)
    assert result.exit_code == 2 and "could not be read" in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def two_nights(tmp_path_factory):
    """Night 1 without feed_douyin.csv, night 2 with only it: on DuckDB (one workspace)
    and on Spark (night 2 continues from night 1's output with --state)."""
    tmp = tmp_path_factory.mktemp("nights")
    first, second = tmp / "night1", tmp / "night2"
    first.mkdir(), second.mkdir()
    for path in SAMPLE_INBOX.iterdir():
        shutil.copy(path, second if path.name == "feed_douyin.csv" else first)
    duck, spark = Cli(tmp / "duck.duckdb"), Cli(tmp / "spark.duckdb")
    for inbox, day in ((first, "2026-10-31"), (second, AS_OF)):
        ran = duck("run", "--inbox", inbox, "--as-of", day, "--json")
        assert ran.exit_code == 0
    duck_night2 = ran.json()
    ran = spark("run", "--engine", "spark", "--inbox", first, "--output", tmp / "out1",
                "--as-of", "2026-10-31")
    assert ran.exit_code == 0, ran.stderr[-2000:]
    ran = spark("run", "--engine", "spark", "--inbox", second, "--state", tmp / "out1",
                "--output", tmp / "out2", "--as-of", AS_OF, "--json")
    assert ran.exit_code == 0, ran.stderr[-2000:]
    assert spark("load-results", tmp / "out2").exit_code == 0
    return duck, spark, ran.json(), duck_night2


def _empty_night_from(tmp_path, state, *options):
    """A night with no new files from `state`, in a new workspace, to `tmp_path/out`."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    return Cli(tmp_path / "none.duckdb")("run", "--engine", "spark", "--inbox", inbox,
                                         "--state", state, "--output", tmp_path / "out",
                                         "--as-of", AS_OF, *options)


@pytest.mark.parametrize("copied", ["no folder", "no file"])
def test_a_state_without_a_table_a_night_carries_is_refused(two_nights, tmp_path, copied):
    spark = two_nights[1]
    state = tmp_path / "state"
    shutil.copytree(spark.db.parent / "out1", state)
    shutil.rmtree(state / "ownership")  # every person would be dealt again
    if copied == "no file":  # a copy stopped before the table's files
        (state / "ownership").mkdir()
    ran = _empty_night_from(tmp_path, state)
    assert (ran.exit_code, ran.stderr.splitlines()[-1]) == (2, (
        f"error: --state {state}: incomplete Spark output: no ownership table; give the "
        "whole --output folder of the last night"))
    assert not (tmp_path / "out" / "_leadctl_run.json").exists()


def test_a_state_copied_in_part_is_refused(two_nights, tmp_path):
    spark = two_nights[1]
    state = tmp_path / "state"
    shutil.copytree(spark.db.parent / "out2", state)
    part = _a_table_in_parts(state)[0]
    table = part.parent.name
    part.unlink()  # a copy that lost one file: those rows' persons would start over
    ran = _empty_night_from(tmp_path, state)
    last = ran.stderr.splitlines()[-1]
    assert ran.exit_code == 2 and last.startswith(
        f"error: --state {state}: incomplete Spark output: its {table} table holds ")
    assert last.endswith("; give the whole --output folder of the last night")
    assert not (tmp_path / "out" / "_leadctl_run.json").exists()


def _without_column(part: Path, column: str) -> None:
    """Rewrites Parquet file `part` without `column` (same rows)."""
    _rewrite(part, f"* EXCLUDE ({column})")


def _with_column_as(part: Path, column: str, kind: str) -> None:
    """Rewrites Parquet file `part` with `column` stored as DuckDB type `kind`."""
    _rewrite(part, f"* REPLACE (CAST({column} AS {kind}) AS {column})")


def _rewrite(part: Path, select: str) -> None:
    import duckdb

    duckdb.sql(f"COPY (SELECT {select} FROM read_parquet('{part}')) "
               f"TO '{part}.tmp' (FORMAT parquet)")
    Path(f"{part}.tmp").replace(part)
    (part.parent / f".{part.name}.crc").unlink(missing_ok=True)  # (Hadoop checks it)


def test_a_state_reads_only_the_parquet_files_it_counted(two_nights, tmp_path):
    # Spark's reader of a folder reads every file not named `_…`/`.…`; the row check
    # counts `*.parquet` files only: a backup copy of a part doubled every ownership row.
    import json

    spark = two_nights[1]
    state = tmp_path / "state"
    shutil.copytree(spark.db.parent / "out1", state)
    part = sorted((state / "ownership").glob("*.parquet"))[0]
    shutil.copy(part, f"{part}.bak")
    shutil.copy(part, state / "ownership" / "part-00099")
    (state / "leads" / "README").write_text("copied from the cluster on Monday\n")
    ran = _empty_night_from(tmp_path, state, "--json")
    assert ran.exit_code == 0, ran.stderr[-2000:]
    was = json.loads((state / "_leadctl_run.json").read_text())["tables"]
    assert {n: ran.json()["tables"][n] for n in ("ownership", "leads", "persons")} == {
        n: was[n] for n in ("ownership", "leads", "persons")}


@pytest.mark.parametrize("table, damage, says", [
    # read as the first file's schema: phones lost
    ("leads", lambda part: _without_column(part, "phone"), "has no phone column"),
    # read as it is: the lock dates compared as text, the night exit 0
    ("ownership", lambda part: _with_column_as(part, "locked_until", "VARCHAR"),
     "stores locked_until as VARCHAR, not DATE"),
])
def test_a_state_file_unlike_its_table_is_refused(two_nights, tmp_path, table, damage, says):
    spark = two_nights[1]
    state = tmp_path / "state"
    shutil.copytree(spark.db.parent / "out1", state)
    part = sorted((state / table).glob("*.parquet"))[0]
    damage(part)
    ran = _empty_night_from(tmp_path, state)
    assert (ran.exit_code, ran.stderr.splitlines()[-1]) == (2, (
        f"error: --state {state}: its {table} table's file {part.name} {says}: "
        "not this version's output or a damaged copy; give the whole --output folder of "
        "the last night"))
    assert not (tmp_path / "out" / "_leadctl_run.json").exists()


def test_an_output_that_cannot_be_a_folder_is_refused_before_the_night(tmp_path):
    (tmp_path / "taken").write_text("a file")
    cli = Cli(tmp_path / "w.duckdb")
    for output, says in ((tmp_path / "taken", "is a file"),
                         (tmp_path / "taken" / "out", f"is under the file {tmp_path / 'taken'}")):
        ran = cli("run", "--engine", "spark", "--inbox", SAMPLE_INBOX, "--output", output,
                  "--as-of", AS_OF)
        assert (ran.exit_code, ran.stderr.splitlines()[-1]) == (
            2, f"error: --output {output} {says}: give a new folder")
    assert (tmp_path / "taken").read_text() == "a file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]  # no Spark was started


def _a_table_in_parts(out):
    """The Parquet files of the first table of `out` written in two files or more."""
    return next(files for d in sorted(out.iterdir()) if d.name not in (
        "runs", "meta", "lead_intent", "sales") and len(
        files := sorted(d.glob("*.parquet"))) >= 2)


@pytest.mark.parametrize("lost", ["folder", "sales folder", "file", "half a file",
                                  "half the intents"])
def test_loading_an_output_copied_in_part_loads_nothing(two_nights, tmp_path, lost):
    spark = two_nights[1]
    out = tmp_path / "out2"
    shutil.copytree(spark.db.parent / "out2", out)
    if lost in ("folder", "sales folder"):  # (the run's sales: the workspace takes its new)
        shutil.rmtree(out / ("sales" if lost == "sales folder" else "ownership"))
    elif lost == "half the intents":
        part = sorted((out / "lead_intent").glob("*.parquet"))[0]
        part.write_bytes(part.read_bytes()[:part.stat().st_size // 2])
    elif lost == "file":  # one of the files of a table written in parts
        _a_table_in_parts(out)[0].unlink()
    else:  # a copy still writing it
        part = _a_table_in_parts(out)[0]
        part.write_bytes(part.read_bytes()[:part.stat().st_size // 2])
    db = tmp_path / "w.duckdb"
    shutil.copy(spark.db, db)
    before = db.read_bytes()
    ran = Cli(db)("load-results", out)
    assert ran.exit_code == 2 and ran.stderr.splitlines()[-1].endswith(
        "an incomplete copy; copy the whole --output folder again (nothing was loaded)")
    assert {"folder": "its ownership table is missing",
            "sales folder": "its sales table is missing", "file": "rows where the run wrote",
            "half a file": "table cannot be read",
            "half the intents": "its lead_intent table cannot be read"}[lost] in ran.stderr
    assert db.read_bytes() == before


def test_a_files_columns_are_its_top_level_schema_elements_with_their_types():
    from leadctl.spark.pipeline import foreign_column, top_level_columns

    rows = [("f1", "spark_schema", 3, None), ("f1", "a", None, "INTEGER"),
            ("f2", "spark_schema", 2, None), ("f1", "sources", 1, "VARCHAR[]"),
            ("f1", "list", 1, "VARCHAR[]"), ("f1", "element", None, "VARCHAR"),
            ("f1", "b", None, "DATE"), ("f2", "a", None, "BIGINT"),
            ("f2", "sources", 1, "VARCHAR[]"), ("f2", "list", 1, "VARCHAR[]"),
            ("f2", "element", None, "VARCHAR")]  # (two files' rows may interleave)
    files = top_level_columns(rows)
    assert files == {"f1": (("a", "INTEGER"), ("sources", "VARCHAR[]"), ("b", "DATE")),
                     "f2": (("a", "BIGINT"), ("sources", "VARCHAR[]"))}
    ddl = (("a", "INTEGER"), ("sources", "VARCHAR[]"))
    assert foreign_column("t", files, ddl) == ("f2", "b", None, "")  # one its other file has
    assert foreign_column("t", {"f1": files["f1"]}, (*ddl, ("c", "JSON"))) == (
        "f1", "c", None, "JSON")  # one its DDL gives it
    # a column added since (schema.UPGRADED_COLUMNS) an older output may lack, not mistype
    assert foreign_column("assignments", {"f": (("run_id", "INTEGER"),)},
                          (("run_id", "INTEGER"), ("state_reason", "VARCHAR"))) is None
    assert foreign_column("assignments", {"f": (("state_reason", "DATE"),)},
                          (("state_reason", "VARCHAR"),)) == ("f", "state_reason", "DATE",
                                                              "VARCHAR")


@pytest.mark.parametrize(("stored", "ddl", "holds"), [
    ("BIGINT", "INTEGER", True), ("INTEGER", "BIGINT", True),  # widths as Spark writes them
    ("VARCHAR", "JSON", True), ("INTEGER", "DOUBLE", True), ("DECIMAL(38,6)", "DOUBLE", True),
    ("TIMESTAMP WITH TIME ZONE", "TIMESTAMP", True), ("VARCHAR[]", "VARCHAR[]", True),
    ("VARCHAR", "DATE", False), ("VARCHAR", "INTEGER", False), ("DATE", "TIMESTAMP", False),
    ("DOUBLE", "INTEGER", False), ("VARCHAR", "VARCHAR[]", False),
    ("BIGINT[]", "VARCHAR[]", False),
    ("INTEGER", "BOOLEAN", False), ("BLOB", "VARCHAR", False)])
def test_a_stored_type_holds_its_ddl_types_values_or_not(stored, ddl, holds):
    from leadctl.spark.pipeline import stores_as

    assert stores_as(stored, ddl) is holds


def test_spark_types_are_named_as_duckdb_names_them():
    from leadctl.spark.pipeline import spark_type_name

    assert [spark_type_name(t) for t in (
        "string", "integer", "long", "date", "timestamp_ntz", "decimal(38,6)", "boolean",
        {"type": "array", "elementType": "string", "containsNull": True})] == [
        "VARCHAR", "INTEGER", "BIGINT", "DATE", "TIMESTAMP", "DECIMAL(38,6)", "BOOLEAN",
        "VARCHAR[]"]


def test_a_parquet_source_names_exactly_its_files(tmp_path):
    # DuckDB takes each path as a glob: `a*b` read aXb's file too, `night[1]` none
    import duckdb

    from leadctl.spark.pipeline import parquet_source

    files = []
    for folder, rows in (("a*b?[1]", 1), ("aXbY1", 2)):
        (tmp_path / folder).mkdir()
        files.append(tmp_path / folder / "part-0.parquet")
        duckdb.sql(f"COPY (SELECT range AS n FROM range({rows})) TO '{files[-1]}' "
                   "(FORMAT parquet)")
    assert duckdb.sql(f"SELECT count(*) FROM read_parquet({parquet_source(files[:1])})"
                      ).fetchall() == [(1,)]
    assert duckdb.sql(f"SELECT file_name FROM parquet_file_metadata("
                      f"{parquet_source(files)})").fetchall() == [(str(f),) for f in files]


@pytest.mark.parametrize("lacks", ["a part file its phone column", "a table its owner column"])
def test_loading_an_output_whose_file_lacks_a_column_loads_nothing(two_nights, tmp_path,
                                                                    lacks):
    # DuckDB reads a glob with its first file's columns: a leads table re-created without
    # phone, or a later BinderException for ownership without owner
    spark = two_nights[1]
    out = tmp_path / "out2"
    shutil.copytree(spark.db.parent / "out2", out)
    table, column = ("leads", "phone") if "phone" in lacks else ("ownership", "owner")
    parts = sorted((out / table).glob("*.parquet"))
    for part in parts if table == "ownership" else parts[:1]:
        _without_column(part, column)
    db = tmp_path / "w.duckdb"
    shutil.copy(spark.db, db)
    before = db.read_bytes()
    ran = Cli(db)("load-results", out)
    assert (ran.exit_code, ran.stderr.splitlines()[-1]) == (2, (
        f"error: {out}: its {table} table's file {parts[0].name} has no {column} column: "
        "not this version's output or a damaged copy; nothing was loaded"))
    assert db.read_bytes() == before


@pytest.mark.parametrize(("table", "column", "ddl"), [("ownership", "locked_until", "DATE"),
                                                    ("assignments", "run_id", "INTEGER")])
def test_loading_an_output_whose_file_stores_a_column_as_text_loads_nothing(
        two_nights, tmp_path, table, column, ddl):
    # loaded by name into the table's DATE / INTEGER column, its text cast: exit 0
    spark = two_nights[1]
    out = tmp_path / "out2"
    shutil.copytree(spark.db.parent / "out2", out)
    part = sorted((out / table).glob("*.parquet"))[-1]
    _with_column_as(part, column, "VARCHAR")
    db = tmp_path / "w.duckdb"
    shutil.copy(spark.db, db)
    before = db.read_bytes()
    ran = Cli(db)("load-results", out)
    assert (ran.exit_code, ran.stderr.splitlines()[-1]) == (2, (
        f"error: {out}: its {table} table's file {part.name} stores {column} as VARCHAR, "
        f"not {ddl}: not this version's output or a damaged copy; nothing was loaded"))
    assert db.read_bytes() == before


def test_a_state_and_an_output_from_before_state_reason_still_load(two_nights, tmp_path):
    import duckdb

    spark = two_nights[1]
    state, inbox, log = tmp_path / "state", tmp_path / "inbox", tmp_path / "state/assignments"
    shutil.copytree(spark.db.parent / "out1", state)
    shutil.rmtree(log)
    log.mkdir()
    inbox.mkdir()
    duckdb.sql(f"COPY (SELECT * EXCLUDE (state_reason) FROM read_parquet("
               f"'{spark.db.parent / 'out1' / 'assignments'}/*.parquet')) "
               f"TO '{log / 'part-0.parquet'}' (FORMAT parquet)")
    by_run = ("SELECT run_id, count(*), count(state_reason) FROM assignments "
              "GROUP BY 1 ORDER BY 1")
    # an output loaded as it is: the log's rows have no state reason
    old = Cli(tmp_path / "old.duckdb")
    assert old("load-results", state).exit_code == 0
    assert old("export", "assignments", "-o", tmp_path / "a.csv").exit_code == 0
    assert duckdb.sql(by_run.replace("assignments", f"'{tmp_path / 'a.csv'}'")
                      ).fetchall() == [(1, 1322, 0)]
    # a night from it: the rows it logs have one, the earlier ones none
    night = Cli(tmp_path / "night.duckdb")
    ran = night("run", "--engine", "spark", "--inbox", inbox, "--state", state,
                "--output", tmp_path / "out", "--as-of", "2026-11-10")
    assert ran.exit_code == 0, ran.stderr[-2000:]
    assert night("load-results", tmp_path / "out").exit_code == 0
    with duckdb.connect(str(night.db), read_only=True) as con:
        assert con.execute(by_run).fetchall() == [(1, 1322, 0), (2, 282, 282)]
        assert con.execute("SELECT reason, state_reason, count(*) FROM assignments "
                           "WHERE run_id = 2 GROUP BY ALL ORDER BY ALL").fetchall() == [
            ("dealt", "dealt", 40), ("reassigned", "dealt", 2),
            ("sla_expired", "sla_returned", 240)]


def test_a_db_whose_rep_actions_name_persons_the_state_never_had_is_refused(two_nights,
                                                                            tmp_path):
    # The DuckDB workspace ran night 2 too: a sale on one of its night-2 persons would
    # lock a person night 1's output has never had. It is another workspace's action.
    duck, spark = two_nights[0], two_nights[1]
    import duckdb

    out1 = spark.db.parent / "out1"
    db = tmp_path / "other.duckdb"
    shutil.copy(duck.db, db)
    con = duckdb.connect(str(db), read_only=True)
    person = con.execute(
        "SELECT min(person_id) FROM persons WHERE person_id NOT IN (SELECT person_id FROM "
        f"read_parquet('{out1}/persons/*.parquet'))").fetchone()[0]
    con.close()
    other = Cli(db)
    assert other("sale", person, "--rep", "rep_wang", "--amount", "100",
                 "--as-of", AS_OF).exit_code == 0
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    ran = other("run", "--engine", "spark", "--inbox", inbox, "--state", out1,
                "--output", tmp_path / "out", "--as-of", AS_OF)
    assert (ran.exit_code, ran.stderr.splitlines()[-1]) == (2, (
        f"error: --db {db}: its rep actions name 1 person(s) this --state has never had "
        f"(such as {person}): it is not the workspace this state's nights were loaded "
        "into; give that one, or leave --db out"))
    assert not (tmp_path / "out" / "_leadctl_run.json").exists()


def test_loading_a_run_into_a_workspace_whose_rep_actions_it_never_had_is_refused(
        two_nights, tmp_path):
    # Another workspace (other leads, a sale of its own) would lose its sale's person.
    out2 = two_nights[1].db.parent / "out2"
    subprocess.run([sys.executable, str(REPO / "sample_data" / "generate.py"), "--out",
                    str(tmp_path / "gen"), "--persons", "60", "--seed", "7"], check=True,
                   capture_output=True)
    other = Cli(tmp_path / "other.duckdb")
    assert other("run", "--inbox", tmp_path / "gen" / "inbox", "--as-of", AS_OF
                 ).exit_code == 0
    import duckdb

    con = duckdb.connect(str(other.db), read_only=True)
    person = con.execute("SELECT min(person_id) FROM ownership WHERE owner IS NOT NULL"
                         ).fetchone()[0]
    con.close()
    assert other("sale", person, "--rep", "rep_wang", "--amount", "10", "--as-of", AS_OF
                 ).exit_code == 0
    before = other.db.read_bytes()
    ran = other("load-results", out2)
    assert (ran.exit_code, ran.stderr.splitlines()[-1]) == (2, (
        f"error: {out2}: this workspace's rep actions name 1 person(s) that run has never "
        f"had (such as {person}): it is another workspace's Spark run; load it into that "
        "one (or into a new workspace)"))
    assert other.db.read_bytes() == before


def test_second_night_from_state_matches_duckdb(two_nights):
    duck, spark, run, duck_run = two_nights
    report = _parity(duck, spark)
    _assert_same(report, {"person_leads": 3154, "tags": 35419, "scores": 1535,
                          "ownership": 1535, "assignments": 1553})
    assert run["run_id"] == 2 and run["stages"]["ingest"]["leads"] == 744
    # The tag summary knows the previous run and counts the same changes.
    tags, duck_tags = run["stages"]["tag"], duck_run["stages"]["tag"]
    assert tags["previous"] == duck_tags["previous"] == {
        "as_of": "2026-10-31", "run_id": 1, "persons": 1322}
    assert tags["changes"] == duck_tags["changes"] == 10733
    # Both folded the stored partials of the shared events pass forward.
    assert tags["recomputed"]["events_pass"] == duck_tags["recomputed"]["events_pass"] \
        == "folded"
    names = ["persons", "identity_history", "person_aliases", "assignments"]
    d, s = _tables(duck.db, names), _tables(spark.db, names)
    assert sorted(d["persons"]["person_id"].to_pylist()) == \
        sorted(s["persons"]["person_id"].to_pylist())  # ids kept the same way
    for name, cols in (("identity_history", ["change", "person_id", "leads", "reason"]),
                       ("person_aliases", ["old_person_id", "person_id"]),
                       ("assignments", ["person_id", "new_pool", "new_owner", "reason",
                                        "state_reason"])):
        rows = [sorted(map(repr, zip(*(t[name][c].to_pylist() for c in cols), strict=True)))
                for t in (d, s)]
        assert rows[0] == rows[1], name


def test_each_nights_tag_history_is_written_in_person_and_tag_order(two_nights):
    """Many changes (every value on night 1; here 10,733 of 41,445 on night 2) are
    unnested from the compare rows sorted by person, with no sort of the history rows:
    a run's rows, file after file, are in (person, tag) order, as on DuckDB, so the
    portrait's lookups read few row groups of the loaded table. (Fewer changes are
    stored, then sorted: tests/test_spark_parts.py.)"""
    import duckdb

    _, _, run, _ = two_nights
    out2 = Path(run["output"])
    for folder, run_id, changes in ((out2.parent / "out1", 1, 30276), (out2, 2, 10733)):
        rows = []
        for path in sorted((folder / "tag_history").glob("*.parquet")):
            rows += duckdb.sql(f"SELECT person_id, tag FROM read_parquet('{path}') "
                               f"WHERE run_id = {run_id}").fetchall()
        assert len(rows) == changes and rows == sorted(rows), run_id


def test_second_night_copies_what_it_left_unchanged_and_stands_alone(two_nights):
    """Tables kept from --state are copied as files, new rows appended as new files: each
    output folder holds every row of every table (night 1's folder is not needed)."""
    import duckdb

    _, _, run, _ = two_nights
    assert run["copied_files"]["events"] >= 1 and run["copied_files"]["ingested_files"] >= 1
    assert run["statements"]["materialised"] > 0
    output = run["output"]
    for name, rows in run["tables"].items():
        stored = duckdb.sql(f"SELECT count(*) FROM read_parquet('{output}/{name}/*.parquet')")
        assert stored.fetchall() == [(rows,)], name


def test_a_duckdb_night_continues_from_loaded_spark_results(two_nights, tmp_path):
    """load-results brings the state the tables were made with (identity and tag state in
    meta), so a DuckDB night on that workspace folds from them and gives the DuckDB
    engine's own third night."""
    duck, spark, _, _ = two_nights
    meta = "SELECT value FROM meta WHERE key = 'tag_state'"
    runs = []
    for cli in (duck, spark):
        copy = Cli(tmp_path / cli.db.name)
        shutil.copy(cli.db, copy.db)
        runs.append(copy("run", "--as-of", "2026-11-03", "--json"))
        assert runs[-1].exit_code == 0, runs[-1].stderr
    assert [r.json()["stages"]["tag"]["recomputed"]["events_pass"] for r in runs] == [
        "folded", "folded"]
    names = ["person_features", "tag_event_state"]
    d, s = (_tables(tmp_path / c.db.name, names) for c in (duck, spark))
    for name in names:
        assert d[name].sort_by("person_id") == s[name].sort_by("person_id"), name
    import duckdb

    with duckdb.connect(str(tmp_path / spark.db.name), read_only=True) as con:
        assert '"as_of": "2026-11-03"' in con.execute(meta).fetchone()[0]


def test_cluster_paths_are_listed_file_by_file_through_hadoop(tmp_path):
    from leadctl.ingest.load import expand_paths
    from leadctl.spark.executor import spark_session
    from leadctl.spark.ingest import SparkReader

    reader = SparkReader(spark_session(), delimiter=";")
    found = reader.expand([f"file://{SAMPLE_INBOX}", f"file://{SAMPLE_INBOX}/*.parquet"])
    assert [p.stem for p in found] == ["agent_list", "app_signups", "campaign_events", "events",
                                       "feed_douyin", "sem_baidu", "seo_forms"]
    assert all(p.size > 0 and p.mtime > 0 for p in found)
    # hidden folders hold copies, as in a local folder (.stversions, .Trash, _temporary)
    for folder in ("", ".stversions/", "sub/.Trash/", "_temporary/", "_2024_06/"):
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
        (tmp_path / folder / "a.csv").write_text("lead_id,phone\nA1,13900000001\n")
    assert [str(p)[len(f"file:{tmp_path}"):] for p in reader.expand([f"file://{tmp_path}"])
            ] == ["/_2024_06/a.csv", "/a.csv"]
    assert [str(p)[len(str(tmp_path)):] for p in expand_paths([str(tmp_path)])] == [
        "/_2024_06/a.csv", "/a.csv"]


@pytest.fixture(scope="module")
def rep_actions_between_nights(tmp_path_factory):
    """Night 1, then a claim, a status change and a sale, then night 2 — on DuckDB (one
    workspace) and on Spark (reps work in the workspace `load-results` filled; night 2
    runs from --state with that workspace as --db)."""
    tmp = tmp_path_factory.mktemp("rep_nights")
    first, second = tmp / "night1", tmp / "night2"
    first.mkdir(), second.mkdir()
    for path in SAMPLE_INBOX.iterdir():
        shutil.copy(path, second if path.name == "feed_douyin.csv" else first)
    duck, spark = Cli(tmp / "duck.duckdb"), Cli(tmp / "spark.duckdb")
    day1 = "2026-10-31"
    assert duck("run", "--inbox", first, "--as-of", day1).exit_code == 0
    # outputs named as glob patterns (Spark's and DuckDB's readers took `[1]` as one)
    out1, out2 = tmp / "night[1]{a,b}", tmp / "night*[2]?"
    ran = spark("run", "--engine", "spark", "--inbox", first, "--output", out1,
                "--as-of", day1)
    assert ran.exit_code == 0, ran.stderr[-2000:]
    assert spark("load-results", out1).exit_code == 0
    import duckdb

    con = duckdb.connect(str(duck.db), read_only=True)
    (status_person, _), (sale_person, sale_rep) = con.execute(
        "SELECT person_id, owner FROM ownership WHERE owner IS NOT NULL "
        "AND locked_until IS NULL ORDER BY person_id LIMIT 2").fetchall()
    con.close()
    for cli in (duck, spark):
        assert cli("claim", "nurture", "--rep", "ops_xu", "--n", "2", "--as-of", day1
                   ).exit_code == 0
        assert cli("status", status_person, "appointment", "--as-of", day1).exit_code == 0
        assert cli("sale", sale_person, "--rep", sale_rep, "--amount", "990",
                   "--as-of", day1).exit_code == 0
    assert duck("run", "--inbox", second, "--as-of", AS_OF).exit_code == 0
    ran = spark("run", "--engine", "spark", "--inbox", second, "--state", out1,
                "--output", out2, "--as-of", AS_OF, "--json")
    assert ran.exit_code == 0, ran.stderr[-2000:]
    loaded = spark("load-results", out2, "--json")
    assert loaded.exit_code == 0, loaded.stderr
    return duck, spark, ran.json(), loaded.json(), (status_person, sale_person, sale_rep)


def test_rep_actions_reach_the_next_spark_night(rep_actions_between_nights):
    duck, spark, run, loaded, (status_person, sale_person, sale_rep) = \
        rep_actions_between_nights
    assert run["rep_actions"] == 4  # 2 claims, 1 status change, 1 sale: carried once
    assert loaded["rep_actions_kept"] == 0  # the output has them all
    cols = {"ownership": ["person_id", "pool", "owner", "status", "status_since",
                          "assigned_at", "locked_until"],
            "assignments": ["as_of", "person_id", "old_pool", "new_pool", "old_owner",
                            "new_owner", "old_status", "new_status", "rule", "reason",
                            "state_reason"],
            "sales": ["sold_at", "person_id", "rep", "amount", "locked_until"],
            "lead_intent": ["person_id", "intent_at"]}
    d, s = _tables(duck.db, list(cols)), _tables(spark.db, list(cols))
    for name, names in cols.items():
        rows = [sorted(map(repr, zip(*(t[name][c].to_pylist() for c in names), strict=True)))
                for t in (d, s)]
        assert rows[0] == rows[1], name
    own = {r["person_id"]: r for r in s["ownership"].to_pylist()}
    assert own[sale_person]["owner"] == sale_rep and own[sale_person]["status"] == "closed"
    assert own[sale_person]["locked_until"] is not None
    assert own[status_person]["status"] == "appointment"


def test_a_spark_night_from_a_workspace_takes_a_run_id_past_its_runs(
        rep_actions_between_nights):
    """The night's rows keep its run id in the workspace: a workspace run of the same id
    (night 1's load, a claim) was listed as the run that made them, ordered before them."""
    import duckdb

    _, spark, run, loaded, _ = rep_actions_between_nights
    with duckdb.connect(str(spark.db), read_only=True) as con:
        runs = con.execute("SELECT run_id, command FROM runs ORDER BY run_id").fetchall()
    assert [c for _, c in runs] == ["load-results", "claim", "status", "sale", "load-results"]
    assert run["run_id"] == runs[3][0] + 1 and runs[4][0] == run["run_id"] + 1


def test_a_conflict_a_load_recorded_reaches_the_next_spark_night(tmp_path):
    """load-results folded a sale on X (merged into Y by the night) into Y and recorded
    the lock it did not keep as a conflict, in the workspace only. The next Spark night
    with that workspace as --db carries the conflict and the fold's merge row (Y keeps the
    fold's state) as a DuckDB night on the workspace keeps them; its output loads back
    with them once."""
    import duckdb

    ws, x, y, x_rep, y_rep, out2 = _a_conflict_recorded_by_a_load(tmp_path)
    recorded = _conflict_and_fold(ws, y)
    assert recorded[0] == [(y, y_rep, x, x_rep, "open")]
    inbox = tmp_path / "inbox3"
    inbox.mkdir()
    duck = Cli(tmp_path / "duck.duckdb")
    shutil.copy(ws.db, duck.db)
    assert duck("run", "--inbox", inbox, "--as-of", "2026-11-03").exit_code == 0
    out3 = tmp_path / "out3"
    ran = ws("run", "--engine", "spark", "--spark-master", "local[1]", "--state", out2,
             "--output", out3, "--as-of", "2026-11-03", "--json")
    assert ran.exit_code == 0, ran.stderr[-2000:]
    assert ran.json()["rep_actions"] == 1  # X's sale; the fold's merge row is no rep's
    conflicts = "SELECT * EXCLUDE (run_id) FROM {} ORDER BY ALL"
    folds = "SELECT * EXCLUDE (run_id) FROM {} WHERE rule = 'merge' ORDER BY ALL"
    state = f"SELECT * FROM {{}} WHERE person_id IN ('{x}', '{y}') ORDER BY ALL"
    with duckdb.connect(str(duck.db), read_only=True) as con:
        expected = [con.execute(sql.format(table)).fetchall() for sql, table in (
            (conflicts, "ownership_conflicts"), (folds, "assignments"), (state, "ownership"))]
    with duckdb.connect() as con:
        written = [con.execute(sql.format(f"read_parquet('{out3}/{table}/*.parquet')")
                               ).fetchall() for sql, table in (
            (conflicts, "ownership_conflicts"), (folds, "assignments"), (state, "ownership"))]
    assert written == expected and len(expected[0]) == 1
    loaded = ws("load-results", out3, "--json")
    assert loaded.exit_code == 0, loaded.stderr
    assert [loaded.json()[k] for k in ("rep_actions_kept", "merged_states", "conflicts")] == [
        0, 0, 0]
    assert _conflict_and_fold(ws, y) == recorded


def test_a_full_resolve_on_spark_moves_subjects_as_on_duckdb(tmp_path):
    """The identity cap drops between nights, so night 2 resolves everyone again (subject
    map rebuilt, the moves logged by diffing the old one) while the tag state folds: the
    Spark night from --state gives the DuckDB engine's person partition, tags and stored
    partials, and leaves no move unconsumed."""
    rules = tmp_path / "rules"
    shutil.copytree(REPO / "rules", rules)
    first, second = tmp_path / "night1", tmp_path / "night2"
    first.mkdir(), second.mkdir()
    for path in SAMPLE_INBOX.iterdir():
        shutil.copy(path, second if path.name == "feed_douyin.csv" else first)
    duck, spark = Cli(tmp_path / "duck.duckdb", rules), Cli(tmp_path / "spark.duckdb", rules)
    day1 = "2026-10-31"
    assert duck("run", "--inbox", first, "--as-of", day1).exit_code == 0
    ran = spark("run", "--engine", "spark", "--inbox", first, "--output", tmp_path / "out1",
                "--as-of", day1)
    assert ran.exit_code == 0, ran.stderr[-2000:]
    identity = rules / "identity.yaml"
    identity.write_text(identity.read_text().replace("max_records_per_value: 20",
                                                     "max_records_per_value: 2"))
    duck_run = duck("run", "--inbox", second, "--as-of", AS_OF, "--json")
    assert duck_run.exit_code == 0, duck_run.stderr
    ran = spark("run", "--engine", "spark", "--inbox", second, "--state", tmp_path / "out1",
                "--output", tmp_path / "out2", "--as-of", AS_OF, "--json")
    assert ran.exit_code == 0, ran.stderr[-2000:]
    assert spark("load-results", tmp_path / "out2").exit_code == 0
    resolved, tagged = ran.json()["stages"]["resolve"], ran.json()["stages"]["tag"]
    assert resolved["relinked_leads"] == resolved["leads"] == 3154
    assert (resolved["splits"], resolved["persons"]) == (
        duck_run.json()["stages"]["resolve"]["splits"],
        duck_run.json()["stages"]["resolve"]["persons"]) == (881, 2735)
    assert tagged["recomputed"]["events_pass"] == "folded"
    assert tagged["changes"] == duck_run.json()["stages"]["tag"]["changes"] == 38329
    _assert_same(_parity(duck, spark), {"person_leads": 3154, "tags": 58868, "scores": 2735,
                                        "ownership": 2735, "assignments": 3624})
    names = ["person_features", "tag_event_state", "subject_persons"]
    d, s = _tables(duck.db, names), _tables(spark.db, names)
    for name in names:
        key = "subject" if name == "subject_persons" else "person_id"
        assert d[name].sort_by(key) == s[name].sort_by(key), name
    assert ran.json()["tables"]["subject_moves"] == 0  # the tag stage consumed them


def test_identity_overrides_apply_as_on_duckdb(tmp_path):
    """A must_link of two persons' leads and a cannot_link of one person's two leads
    (rules/identity_overrides.yaml): the Spark engine cuts and joins as DuckDB does."""
    import duckdb

    rules = tmp_path / "rules"
    shutil.copytree(REPO / "rules", rules)
    (rules / "identity_overrides.yaml").write_text(
        "overrides:\n"
        "- kind: must_link\n  leads: [BD100052, DY500148]\n  reason: same person\n"
        "- kind: cannot_link\n  leads: [BD100469, DY500234]\n  reason: two people\n",
        encoding="utf-8")
    duck, spark = Cli(tmp_path / "duck.duckdb", rules), Cli(tmp_path / "spark.duckdb", rules)
    assert duck("run", "--inbox", SAMPLE_INBOX, "--as-of", AS_OF).exit_code == 0
    ran = spark("run", "--engine", "spark", "--inbox", SAMPLE_INBOX, "--output",
                tmp_path / "out", "--as-of", AS_OF)
    assert ran.exit_code == 0, ran.stderr[-2000:]
    assert spark("load-results", tmp_path / "out").exit_code == 0
    _assert_same(_parity(duck, spark), {"person_leads": 3154, "tags": 35419, "scores": 1535,
                                        "ownership": 1535, "assignments": 1535})
    for cli in (duck, spark):
        with duckdb.connect(str(cli.db), read_only=True) as con:
            persons = dict(con.execute(
                "SELECT l.lead_id, pl.person_id FROM person_leads pl JOIN leads l USING "
                "(lead_key) WHERE l.lead_id IN ('BD100052', 'DY500148', 'BD100469', "
                "'DY500234')").fetchall())
        assert persons["BD100052"] == persons["DY500148"]
        assert persons["BD100469"] != persons["DY500234"]


def test_a_score_condition_past_the_largest_double_is_exit_2_as_on_duckdb(tmp_path):
    """finite_guard's error is Spark's raise_error: the same exit 2 and message."""
    rules = tmp_path / "rules"
    shutil.copytree(REPO / "rules", rules, ignore=shutil.ignore_patterns("tests"))
    (rules / "scoring.yaml").write_text(
        "grades: {A: 70, D: 0}\nrules:\n"
        "  - {name: big, when: \"lead_count * 1e300 * 1e300 > 1e308\", points: 80}\n",
        encoding="utf-8")
    inbox = tmp_path / "in"
    inbox.mkdir()
    (inbox / "web.csv").write_text("lead_id,phone\nL1,13812345678\n", encoding="utf-8")
    messages = []
    for engine in ("duckdb", "spark"):
        result = Cli(tmp_path / f"{engine}.duckdb", rules)(
            "run", "--engine", engine, "--inbox", inbox, "--as-of", AS_OF, "--json",
            *(("--output", tmp_path / "out") if engine == "spark" else ()))
        assert result.exit_code == 2, result.stderr[-2000:]
        messages.append(result.json()["error"]["message"])
    assert messages[0] == messages[1] == (
        "score: a rule's expression cannot be computed for some person: a number past the "
        "largest (about 1.8e308), or NaN from it, in score rule 'big' when; decimal numbers "
        "must stay from about -1.8e308 to 1.8e308: check the expressions in rules/")
