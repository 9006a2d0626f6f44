"""The Spark reader's pure parts: cluster paths, their source names and formats."""

from __future__ import annotations

from leadctl.spark.ingest import ClusterPath, SparkReader, is_remote, reader_rejects_frame_sql


def test_cluster_files_are_known_by_path_size_and_time_and_named_after_the_file():
    reader = SparkReader(spark=None, delimiter=";")
    csv = ClusterPath("hdfs://nn:8020/leads/sem_baidu.csv", size=10, mtime=1)
    parquet = ClusterPath("s3a://b/in/app.parquet", size=10, mtime=1)
    assert [(str(p), p.stem) for p in (csv, parquet)] == [
        ("hdfs://nn:8020/leads/sem_baidu.csv", "sem_baidu"), ("s3a://b/in/app.parquet", "app")]
    (digest, fmt), (_, pq) = reader.fingerprint(csv, None), reader.fingerprint(parquet, None)
    assert [(f.format, f.encoding, f.delimiter) for f in (fmt, pq)] == [
        ("csv", "utf-8", ";"), ("parquet", "utf-8", ";")]
    rewritten = ClusterPath("hdfs://nn:8020/leads/sem_baidu.csv", size=10, mtime=2)
    assert reader.fingerprint(rewritten, None)[0] != digest  # same path, new content


def test_local_paths_are_sniffed_like_on_duckdb(tmp_path):
    path = tmp_path / "leads.csv"
    path.write_bytes("线索ID|手机\nA1|13800000001\n".encode("gb18030"))
    [found] = SparkReader(spark=None).expand([str(tmp_path)])
    digest, fmt = SparkReader(spark=None).fingerprint(found, None)
    assert (is_remote(found), fmt.format, fmt.encoding, fmt.delimiter) == \
        (False, "csv", "gb18030", "|")
    assert len(digest) == 64


def test_malformed_lines_get_duckdb_reject_reasons():
    sql = reader_rejects_frame_sql(9, ";")
    assert """size(split(regexp_replace(_corrupt, '"([^"]|"")*"', 'q'), '\\\\;'))""" in sql
    assert "'Expected Number of Columns: 9 Found: '" in sql
    assert "row_number + 1 AS line" in sql


def test_a_copy_spark_can_read_cuts_nanoseconds_as_the_duckdb_engine_does(tmp_path):
    import duckdb
    import pyarrow as pa
    import pyarrow.parquet as pq

    from leadctl.spark.ingest import _spark_readable_copy

    pq.write_table(pa.table({"ts": pa.array([1793491199999999999, -500], pa.timestamp("ns"))}),
                   tmp_path / "ev.parquet")
    copy, decoded = _spark_readable_copy(tmp_path / "ev.parquet")
    assert decoded == []
    try:  # a cast rounded 23:59:59.999999999 to the next day
        assert duckdb.execute(f"SELECT CAST(ts AS VARCHAR) FROM '{copy}'").fetchall() == [
            ("2026-10-31 23:59:59.999999",), ("1969-12-31 23:59:59.999999",)]
    finally:
        copy.unlink()


def test_a_copy_spark_can_read_has_floats_and_bytes_as_the_duckdb_engine_reads_them(tmp_path):
    import duckdb
    import pyarrow as pa
    import pyarrow.parquet as pq

    from leadctl.spark.ingest import _spark_readable_copy

    pq.write_table(pa.table({"amount": pa.array([19.9], pa.float32()),
                             "name": pa.array(["张".encode()], pa.binary())}),
                   tmp_path / "legacy.parquet")
    copy, decoded = _spark_readable_copy(tmp_path / "legacy.parquet")
    try:
        assert decoded == ["name"]
        assert duckdb.execute(f"SELECT amount, name FROM '{copy}'").fetchall() == [("19.9", "张")]
    finally:
        copy.unlink()


def test_a_copy_spark_can_read_has_nested_values_as_the_duckdb_engines_text(tmp_path):
    # Spark wrote them otherwise ({red, 1}, {a -> 1}): other attributes and lead ids.
    import datetime as dt

    import duckdb
    import pyarrow as pa
    import pyarrow.parquet as pq

    from leadctl.spark.ingest import _spark_readable_copy

    seen = dt.datetime(2026, 10, 1, 0, 30, tzinfo=dt.UTC)
    pq.write_table(pa.table({
        "meta": pa.array([{"color": "red", "n": 1}], pa.struct([("color", pa.string()),
                                                                ("n", pa.int64())])),
        "tags": pa.array([[("a", 1)]], pa.map_(pa.string(), pa.int64())),
        "visits": pa.array([[seen]], pa.list_(pa.timestamp("us", tz="UTC")))}),
        tmp_path / "nested.parquet")
    copy, _ = _spark_readable_copy(tmp_path / "nested.parquet")
    try:
        assert duckdb.execute(f"SELECT * FROM '{copy}'").fetchall() == [
            ("{'color': red, 'n': 1}", "{a=1}", "['2026-10-01 00:30:00+00']")]
    finally:
        copy.unlink()


def test_one_space_before_a_quoted_value_is_taken_out_of_a_copy(tmp_path, monkeypatch):
    import leadctl.spark.ingest as ingest

    plain = tmp_path / "plain.csv"
    plain.write_bytes(b'id;name\nA1;Wa "ng"\nA2;  "x"\n')
    assert ingest.without_space_before_quotes(plain, ";") is None  # no copy
    monkeypatch.setattr(ingest, "_CHUNK", 7)  # lines across chunks
    spaced = tmp_path / "spaced.csv"
    spaced.write_bytes(b' "id"; "name"\r\nA1; "a; ""b"" "; "c" \nA2;"x; "y""; "z"x\n'
                       b'A3;\t"t"; "u\nv"')
    copy = ingest.without_space_before_quotes(spaced, ";")
    try:
        assert copy.read_bytes() == (b'"id";"name"\r\nA1;"a; ""b"" ";"c" \nA2;"x; "y"";'
                                     b' "z"x\nA3;\t"t"; "u\nv"')
    finally:
        copy.unlink()
