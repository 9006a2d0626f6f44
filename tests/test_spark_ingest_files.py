"""Small files staged by the Spark reader load as on the DuckDB engine: the same leads
and the same rejects (record number, reason, detail). Each file is ingested into a
Spark workspace in this process (one local session for the module) and into a DuckDB
workspace through the CLI."""

from __future__ import annotations

import pytest

from tests.conftest import Cli, db_rows
from tests.test_spark_parity import MISSING

pytestmark = [pytest.mark.spark, pytest.mark.skipif(MISSING is not None, reason=MISSING or "")]

LEADS = ("SELECT lead_id, name, phone, CAST(created_at AS VARCHAR), row_number "
         "FROM leads ORDER BY row_number")
REJECTS = "SELECT row_number, reason, detail FROM rejects ORDER BY row_number"
ATTRIBUTES = "SELECT lead_id, CAST(attributes AS VARCHAR) FROM leads ORDER BY lead_id"


@pytest.fixture(scope="module")
def spark_ws():
    from leadctl.schema import all_ddl
    from leadctl.spark.executor import SparkWorkspace, spark_session

    ws = SparkWorkspace(spark_session("local[1]"))
    for statement in all_ddl():
        ws.execute(statement)
    yield ws
    ws.close()


def _both(spark_ws, tmp_path, path, leads=LEADS):
    """(leads, rejects) of `path` ingested on DuckDB and on Spark."""
    from leadctl.ingest.load import ingest_paths
    from leadctl.spark.ingest import SparkReader

    duck = Cli(tmp_path / "duck.duckdb")
    assert duck("ingest", path).exit_code == 0
    for table in ("leads", "rejects", "ingested_files"):
        spark_ws.execute(f"DELETE FROM {table}")
    ingest_paths(spark_ws, [str(path)], reader=SparkReader(spark_ws.spark))
    return [(db_rows(duck, leads), db_rows(duck, REJECTS)),
            tuple([tuple(r) for r in spark_ws.execute(sql).fetchall()]
                  for sql in (leads, REJECTS))]


@pytest.mark.parametrize("codec, bom", [("utf-16-le", b"\xff\xfe"), ("utf-16-be", b"\xfe\xff")])
@pytest.mark.parametrize("delimiter", [",", "\t"])
def test_a_utf16_file_is_read_as_on_duckdb(spark_ws, tmp_path, codec, bom, delimiter):
    """Spark's line reader split UTF-16 text at raw 0x0A bytes: `Li\\ufffd` and a
    missing_columns reject (a tab-separated file was wholly rejected)."""
    path = tmp_path / "u16.csv"
    text = "lead_id,phone,name\nUL1,13922220002,Li\nUL2,13922220003,王五\n"
    path.write_bytes(bom + text.replace(",", delimiter).encode(codec))
    expected = ([("UL1", "Li", "13922220002", None, 1), ("UL2", "王五", "13922220003", None, 2)],
                [])
    assert _both(spark_ws, tmp_path, path) == [expected, expected]


def test_a_quote_after_one_space_opens_a_quoted_value_as_on_duckdb(spark_ws, tmp_path):
    """Spark read the quotes as text: G0 was rejected (too_many_columns), G1's name was
    `"Wang"`. Two spaces or a tab before a quote, or a quote inside a value keep the
    quotes as text on both engines."""
    path = tmp_path / "spacequote.csv"
    path.write_text('lead_id,name,phone,city\nG0, "Bei, Chao",13922220003,x\n'
                    'G1, "Wang" ,13922220004, "y"\n G2,  "Wang",13922220005,y\n'
                    'G3,\t"Wang",13922220006,y\nG4,Wa "ng",13922220007,y\n'
                    'G6,  "Bei, Chao",13922220009,y\n "G7", "",13922220010,y\n')
    expected = ([("G0", "Bei, Chao", "13922220003", None, 1),
                 ("G1", "Wang", "13922220004", None, 2),
                 ("G2", '"Wang"', "13922220005", None, 3),
                 ("G3", '\t"Wang"', "13922220006", None, 4),
                 ("G4", 'Wa "ng"', "13922220007", None, 5),
                 ("G7", None, "13922220010", None, 7)],
                [(6, "too_many_columns", "Expected Number of Columns: 4 Found: 5")])
    assert _both(spark_ws, tmp_path, path) == [expected, expected]


def test_a_zone_right_after_the_minutes_reads_as_on_duckdb(spark_ws):
    """Spark's cast reads a zone only after the seconds: `08:15Z` and `08:15+08:00` were
    bad dates on Spark (the times DuckDB reads are converted to the workspace zone)."""
    import duckdb

    from leadctl.ingest.sql import parse_timestamp_sql

    values = ["2026-08-03 08:15Z", "2026-08-03 08:15z", "2026-08-03 08:15 Z",
              "2026-08-03 08:15+08:00", "2026-08-03 08:15+0800", "2026-08-03T08:15-05",
              "2026-08-03 8:15 gmt", "2026-08-03 08:15:30Z", "2026-08-03 08:15UTC",
              "2026-08-03 08:15+15:00", "2026-08-03 08:15:00 UTC+08:00",
              "2026-08-03 08:15:00 +01:00:00", "2026-08-03T08:15:00.123"]
    table = "CREATE OR REPLACE TABLE zoned_times AS " + " UNION ALL ".join(
        f"SELECT {i} AS i, '{v}' AS v" for i, v in enumerate(values))
    sql = (f"SELECT CAST({parse_timestamp_sql('v', 'Asia/Shanghai')} AS VARCHAR) "
           "FROM zoned_times ORDER BY i")
    duck = duckdb.connect()
    duck.execute("SET TimeZone = 'UTC'")
    read = []
    for con in (duck, spark_ws):
        con.execute(table)
        read.append([row[0] for row in con.execute(sql).fetchall()])
    assert read[0] == read[1] == [
        "2026-08-03 16:15:00", "2026-08-03 16:15:00", "2026-08-03 16:15:00",
        "2026-08-03 08:15:00", "2026-08-03 08:15:00", "2026-08-03 21:15:00",
        "2026-08-03 16:15:00", "2026-08-03 16:15:30", None, None, None, None,
        "2026-08-03 08:15:00.123"]


def test_parquet_doubles_are_duckdbs_text_on_spark(spark_ws, tmp_path):
    """Java's text of a double is not always the shortest: the attribute was
    2.82879384806159008e+17 on Spark (another row hash)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "dbl.parquet"
    pq.write_table(pa.table({"lead_id": ["D1", "D2", "D3"],
                             "phone": ["13922220040", "13922220041", "13922220042"],
                             "score": [2.82879384806159e17, 0.1, 1e-5],
                             "budget": pa.array([19.9, 1.2345679e7, None], pa.float32())}),
                   path)
    duck = Cli(tmp_path / "duck.duckdb")
    assert duck("ingest", path).exit_code == 0
    sql = "SELECT lead_id, attributes, row_hash FROM leads ORDER BY lead_id"
    from leadctl.ingest.load import ingest_paths
    from leadctl.spark.ingest import SparkReader

    spark_ws.execute("DELETE FROM leads")
    ingest_paths(spark_ws, [str(path)], reader=SparkReader(spark_ws.spark))
    loaded = [db_rows(duck, sql), [tuple(r) for r in spark_ws.execute(sql).fetchall()]]
    assert loaded[0] == loaded[1]
    assert [row[1] for row in loaded[0]] == [
        '{"score":"2.82879384806159e+17","budget":"19.9"}',
        '{"score":"0.1","budget":"12345679.0"}', '{"score":"1e-05","budget":null}']


def test_a_stray_quote_rejects_its_line_as_on_duckdb(spark_ws, tmp_path):
    """Spark kept a quoted value followed by text as text (S2's name was `"Jo"e"`, S8 a
    too_many_columns reject): DuckDB's reader rejects such a line (unquoted_value); `""`
    inside a quoted value is a quote, a quote inside an unquoted value or ending the
    line is text on both."""
    path = tmp_path / "stray.csv"
    path.write_text('lead_id,name,phone,city\nS1,"Wang, Li",13922220011,x\n'
                    'S2,"Jo"e",13922220012,x\nS3,"Jo""e",13922220013,x\n'
                    'S4,Jo"e,13922220014,x\nS5,Joe,13922220015,x"\n'
                    'S6,"Jo" e,13922220016,"y"\nS7,""e,13922220017,y\n'
                    'S8,"Jo"e, Li",13922220018,y\n\nS9,"Zhao",13922220019,y\n')
    stray = "Value with unterminated quote found."
    expected = ([("S1", "Wang, Li", "13922220011", None, 1),
                 ("S3", 'Jo"e', "13922220013", None, 3),
                 ("S4", 'Jo"e', "13922220014", None, 4),
                 ("S5", "Joe", "13922220015", None, 5),
                 ("S9", "Zhao", "13922220019", None, 9)],
                [(2, "unquoted_value", stray), (6, "unquoted_value", stray),
                 (7, "unquoted_value", stray), (8, "unquoted_value", stray)])
    assert _both(spark_ws, tmp_path, path) == [expected, expected]


def test_a_stray_quote_in_a_file_duckdb_reads_unquoted_loads_as_on_duckdb(spark_ws,
                                                                         tmp_path):
    """DuckDB's sniffer reads a file whose only quoted value is followed by text without
    quoting: that value loads as written, on Spark too (the rule is DuckDB's for the
    file, not the line's)."""
    path = tmp_path / "unquoted.csv"
    path.write_text('lead_id,name,phone\nU1,Li,13922220021\nU2,"Jo" e,13922220022\n')
    expected = ([("U1", "Li", "13922220021", None, 1), ("U2", '"Jo" e', "13922220022", None, 2)],
                [])
    assert _both(spark_ws, tmp_path, path) == [expected, expected]


def test_a_file_with_no_quote_skips_the_quote_passes(spark_ws, tmp_path, monkeypatch):
    """A quote-free file (the common case) is not scanned again for quoting on Spark;
    one quote anywhere (here in the last line) and it is."""
    from leadctl.ingest.load import ingest_paths
    from leadctl.spark import ingest
    from leadctl.spark.ingest import SparkReader

    scanned = []
    checked = ingest._store_stray_quote_lines
    monkeypatch.setattr(ingest, "_store_stray_quote_lines",
                        lambda ws, path, *a: scanned.append(path.name) or checked(ws, path, *a))
    for name, last in (("plain.csv", "Q2,Li,13922220032"), ("quoted.csv", 'Q2,"Li",1392')):
        path = tmp_path / name
        path.write_text(f"lead_id,name,phone\nQ1,Wang,13922220031\n{last}\n")
        spark_ws.execute("DELETE FROM leads")
        ingest_paths(spark_ws, [str(path)], reader=SparkReader(spark_ws.spark))
        assert spark_ws.execute("SELECT count(*) FROM leads").fetchall()[0][0] == 2
    assert scanned == ["quoted.csv"]
    assert not ingest.has_quote(tmp_path / "plain.csv")
    assert ingest.has_quote(tmp_path / "quoted.csv")


def test_an_unnamed_column_with_no_value_is_no_attribute_as_on_duckdb(spark_ws, tmp_path):
    path = tmp_path / "ends.csv"
    path.write_text("lead_id,name,phone,,\nT1,Li,13922220041,,\nT2,Wang,13922220042,,x\n")
    duck, spark = _both(spark_ws, tmp_path, path, leads=ATTRIBUTES)
    assert duck == spark == ([("T1", '{"column4":null}'), ("T2", '{"column4":"x"}')], [])


def test_a_cluster_file_loads_as_the_same_local_file(spark_ws, tmp_path):
    """A file:// (hdfs://, s3a://) inbox is listed through Hadoop: every such file failed
    as "not a readable file" (the local check stat'ed the URI as a path)."""
    from leadctl.ingest.load import ingest_paths
    from leadctl.spark.ingest import SparkReader

    path = tmp_path / "inbox" / "leads.csv"
    path.parent.mkdir()
    path.write_text("lead_id,name,phone\nC1,Li,13922220051\nC2,Wang,13922220052\n")
    (path.parent / "zero.csv").write_bytes(b"")  # as a local one (Spark's reader failed)
    spark_ws.execute("DELETE FROM leads")
    result = ingest_paths(spark_ws, [f"file://{path.parent}"],
                          reader=SparkReader(spark_ws.spark))
    assert [(f.status, f.loaded) for f in result.files] == [("loaded", 2), ("empty", 0)]
    assert [tuple(r) for r in spark_ws.execute(LEADS).fetchall()] == [
        ("C1", "Li", "13922220051", None, 1), ("C2", "Wang", "13922220052", None, 2)]


@pytest.mark.parametrize("name", ["leads[1].csv", "leads?.csv", "leads{1}.csv", "leads*.csv"])
def test_a_file_named_like_a_pattern_is_that_file_as_on_duckdb(spark_ws, tmp_path, name):
    """Both engines' readers took `leads[1].csv` for a pattern and read leads1.csv beside
    it (its rows lost, the other's loaded twice)."""
    (tmp_path / "leads1.csv").write_text("lead_id,name,phone\nW1,Wrong,13922220061\n")
    path = tmp_path / name
    path.write_text("lead_id,name,phone\nR1,Right,13922220062\n")
    expected = ([("R1", "Right", "13922220062", None, 1)], [])
    assert _both(spark_ws, tmp_path, path) == [expected, expected]


def test_a_cluster_inbox_is_listed_as_a_local_one(spark_ws, tmp_path):
    """An empty cluster folder is a quiet night as an empty local one (it was exit 2), a
    missing one says so; `_x.csv` is a delivery (it was skipped) and a glob's hidden
    folder holds copies (its files were loaded)."""
    from leadctl.errors import InputError
    from leadctl.ingest.load import NoDataFiles
    from leadctl.spark.ingest import SparkReader

    reader = SparkReader(spark_ws.spark)
    (tmp_path / "empty").mkdir()
    with pytest.raises(NoDataFiles):
        reader.expand([f"file://{tmp_path / 'empty'}"])
    with pytest.raises(InputError, match="^no such file or folder: file://"):
        reader.expand([f"file://{tmp_path / 'gone'}"])
    drop = tmp_path / "drop"
    (drop / ".stversions").mkdir(parents=True)
    for path in (drop / "_2026-11-01.csv", drop / ".stversions" / "old.csv", drop / "a.csv"):
        path.write_text("lead_id,phone\nD1,13922220081\n")
    for inbox in (f"file://{drop}", f"file://{drop}/*"):
        assert [p.name for p in reader.expand([inbox])] == ["_2026-11-01.csv", "a.csv"]
