"""The Spark reader's pure parts: cluster paths, their source names and formats."""

from __future__ import annotations

from leadctl.spark.ingest import SparkReader, is_remote, reader_rejects_frame_sql


def test_cluster_paths_are_kept_verbatim_and_named_after_the_file_or_folder():
    reader = SparkReader(delimiter=";")
    found = reader.expand(["hdfs://nn:8020/leads/sem_baidu/*.csv", "s3a://b/in/app.parquet"])
    assert [(str(p), p.stem) for p in found] == [
        ("hdfs://nn:8020/leads/sem_baidu/*.csv", "sem_baidu"), ("s3a://b/in/app.parquet", "app")]
    formats = [reader.fingerprint(p, None)[1] for p in found]
    assert [(f.format, f.encoding, f.delimiter) for f in formats] == [
        ("csv", "utf-8", ";"), ("parquet", "utf-8", ";")]


def test_local_paths_are_sniffed_like_on_duckdb(tmp_path):
    path = tmp_path / "leads.csv"
    path.write_bytes("线索ID|手机\nA1|13800000001\n".encode("gb18030"))
    [found] = SparkReader().expand([str(tmp_path)])
    digest, fmt = SparkReader().fingerprint(found, None)
    assert (is_remote(found), fmt.format, fmt.encoding, fmt.delimiter) == \
        (False, "csv", "gb18030", "|")
    assert len(digest) == 64


def test_malformed_lines_get_duckdb_reject_reasons():
    sql = reader_rejects_frame_sql(9, ";")
    assert "size(split(_corrupt, '\\\\;'))" in sql
    assert "'Expected Number of Columns: 9 Found: '" in sql
    assert "row_number + 1 AS line" in sql
