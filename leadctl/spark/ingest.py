"""Ingest on Spark: Spark's readers stage each file; the shared ingest code does the
rest with the same builders as on DuckDB (leadctl.ingest.load)."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from leadctl.errors import InputError
from leadctl.ingest.load import (
    DATA_SUFFIXES,
    DuckDBReader,
    NoDataFiles,
    StagedFile,
    copies_folder,
    expand_paths,
    parquet_names,
)
from leadctl.ingest.sniff import (
    UTF8,
    FileFormat,
    codec_name,
    csv_header,
    transcode_to_utf8,
    without_eof_mark,
)
from leadctl.ingest.sql import (
    free_names,
    header_names,
    micros_of_nanos_sql,
    nested_type,
    parquet_value_types,
    parquet_values_sql,
    zoned_text_sql,
)
from leadctl.sqltext import ident, literal
from leadctl.workspace import open_memory, temp_copy

_SCHEMES = ("hdfs://", "s3://", "s3a://", "s3n://", "gs://", "abfs://", "abfss://",
            "wasb://", "wasbs://", "dbfs:/", "file://")


def is_remote(path: str | Path) -> bool:
    return str(path).startswith(_SCHEMES)


class SparkReader(DuckDBReader):
    """Local paths are found and sniffed as on DuckDB. Cluster paths (hdfs://, s3a://,
    file://, …: files, folders, globs) are listed through Hadoop's FileSystem, one source
    per data file as for a local folder; a file is known by path, size and modification
    time; Parquet by suffix, anything else is read as UTF-8 CSV with `delimiter`."""

    def __init__(self, spark, delimiter: str = ","):
        self.spark = spark
        self.delimiter = delimiter

    def expand(self, paths: list[str]) -> list[Path]:
        local = [p for p in paths if not is_remote(p)]
        remote = [p for p in paths if is_remote(p)]
        try:
            found: list[Path] = expand_paths(local) if local else []
        except NoDataFiles:
            if not remote:
                raise
            found = []
        for pattern in remote:
            found += list_cluster_files(self.spark, pattern)
        if not found:  # folders with no data file: for `run`'s inbox a quiet night
            raise NoDataFiles(f"no CSV or Parquet files found in {', '.join(paths)}")
        return list(dict.fromkeys(found))

    def fingerprint(self, path: Path, encoding: str | None) -> tuple[str, FileFormat]:
        if not isinstance(path, ClusterPath):
            return super().fingerprint(path, encoding)
        fmt = "parquet" if path.suffix.lower() in (".parquet", ".pq") else "csv"
        if path.size == 0:  # as a local one: `empty` (Spark's reader fails on it)
            fmt = "empty"
        digest = hashlib.sha256(f"{path}|{path.size}|{path.mtime}".encode()).hexdigest()
        return digest, FileFormat(fmt, encoding or "utf-8", self.delimiter)

    def stage(self, ws, path: Path, fmt: FileFormat, file_id: int) -> StagedFile:
        from pyspark.sql import Window
        from pyspark.sql import functions as F
        from pyspark.sql.types import (
            ArrayType,
            BinaryType,
            DoubleType,
            FloatType,
            MapType,
            StringType,
            StructField,
            StructType,
            TimestampType,
        )

        spark, location = ws.spark, _location(path)
        if fmt.format == "parquet":
            temp, decoded, written = None, [], None
            try:
                raw = spark.read.parquet(location)
                written = list(raw.columns)
                raw.schema  # noqa: B018 — an unreadable column type fails here
                if len({c.lower() for c in raw.columns}) < len(raw.columns):
                    raise ValueError("column names that differ only in case")
                # 32-bit floats and bytes as the DuckDB engine reads them (the shortest
                # text of a float: 19.9, not 19.899999618530273; bytes that are UTF-8 as
                # their text, others as DuckDB's escaped text): a local file through its
                # copy (a cluster file's are read as Spark reads them)
                # and nested values as DuckDB's text (`{'color': red}`, not `{red}`)
                # Doubles too, as DuckDB's text of them (Java's is not always the
                # shortest: 2.82879384806159008e+17 for DuckDB's 2.82879384806159e+17)
                copied = not isinstance(path, ClusterPath) and any(
                    isinstance(f.dataType, FloatType | DoubleType | BinaryType | ArrayType
                               | MapType | StructType) for f in raw.schema.fields)
            except Exception:
                if isinstance(path, ClusterPath):
                    raise
                # Types Spark cannot read (pandas' nanosecond timestamps, TIME, FLOAT16)
                # or `phone` beside `Phone`: a copy as the DuckDB engine reads the file.
                copied = True
            if copied:  # (its names are DuckDB's: `Phone` beside `phone` is Phone_1)
                temp, decoded = _spark_readable_copy(path)
                raw = spark.read.parquet(str(temp))
                written = parquet_names(path)
            renames = free_names(raw.columns)  # a file's own `row_number` is an attribute
            as_text = {f.name: _duckdb_text if isinstance(f.dataType, DoubleType)
                       else _utc_text for f in raw.schema.fields
                       if isinstance(f.dataType, DoubleType | TimestampType)}
            frame = raw.select(*((as_text[c](F.col(_quoted(c))) if c in as_text
                                  else F.col(_quoted(c))).alias(renames.get(c, c))
                                 for c in raw.columns),
                               (F.col("_metadata.row_index") + 1).alias("row_number"))
            ws.store_frame("_stage", frame, materialise=temp is not None)  # reads are cheap
            return StagedFile("SELECT * FROM _stage", *_columns(ws, "_stage"), temp=temp,
                              decoded=tuple(renames.get(c, c) for c in decoded),
                              schema_names=written)
        temp, encoding = None, fmt.encoding
        codec = "utf-8-sig" if fmt.encoding in UTF8 else fmt.encoding
        if not isinstance(path, ClusterPath):
            # a header whose quote is left open fails its file, as on DuckDB (Spark would
            # end the quote at the line's end)
            csv_header(path, fmt.delimiter, codec)
        # (a local file: a cluster file is not sniffed)
        # Spark counts the columns on a line of white space before the header; its line
        # reader splits lines at the bytes of LF and CR, which in UTF-16 or UTF-32 are
        # halves of characters (`Li\ufffd` and a short line): a UTF-8 copy, as on DuckDB.
        if fmt.white_before_header or not ascii_compatible(codec):
            temp, _ = transcode_to_utf8(path, codec, delimiter=fmt.delimiter,
                                        eof_mark=fmt.eof_mark,
                                        blank_leading=fmt.white_before_header)
            location, encoding = _location(temp), "utf-8"
        elif fmt.eof_mark:
            temp = without_eof_mark(path, fmt.encoding)
            location = _location(temp)
        # A local file with no quote at all has no quoting to mend or check: its quote
        # passes (a Python scan, and a Spark scan of every line) are skipped.
        quoted = isinstance(path, ClusterPath) or has_quote(temp or path)
        if quoted and not isinstance(path, ClusterPath):
            # ` "Bei, Chao"` is a quoted value on DuckDB: a copy with `"Bei, Chao"`
            joined = without_space_before_quotes(temp or path, fmt.delimiter)
            if joined is not None:
                if temp:
                    temp.unlink(missing_ok=True)
                temp, location = joined, _location(joined)
        # RFC 4180 quoting, as DuckDB reads: `""` is a quote (Spark's default escape is `\`)
        options = {"header": "true", "sep": fmt.delimiter, "encoding": encoding,
                   "quote": '"', "escape": '"',
                   "mode": "PERMISSIVE", "columnNameOfCorruptRecord": "_corrupt"}
        # The header record as fields (Spark would rename `phone,phone` to phone1, phone2
        # and an empty name to _c1): named as DuckDB names them.
        first = spark.read.options(**{**options, "header": "false"}).csv(location).first()
        found = header_names(list(first) if first is not None else [])
        renames = free_names(found)  # the schema names the columns, by position
        header = [renames.get(c, c) for c in found]
        schema = StructType([StructField(c, StringType()) for c in header]
                            + [StructField("_corrupt", StringType())])
        rows = spark.read.options(**options).schema(schema).csv(location)
        # One file's partitions are byte ranges in order, so this is the record number.
        ws.store_frame("_stage_all", rows.withColumn(
            "row_number", F.row_number().over(Window.orderBy(F.monotonically_increasing_id()))))
        strays = _store_stray_quote_lines(ws, path, fmt, location, options, len(header)) \
            if quoted else None
        cols = ", ".join(_quoted(c) for c in header)
        # Filters of the materialised _stage_all: short lineage, not materialised again.
        usable = _usable_sql(len(header), fmt.delimiter, strays)
        ws.store_frame("_stage", spark.sql(
            f"SELECT {cols}, row_number FROM _stage_all WHERE {usable}"), materialise=False)
        rejects = f"_rej_{file_id}"
        ws.store_frame(rejects, spark.sql(reader_rejects_frame_sql(len(header), fmt.delimiter,
                                                                   strays)),
                       materialise=False)
        columns, types = _columns(ws, "_stage")
        return StagedFile("SELECT * FROM _stage", columns, types, rejects_table=rejects,
                          temp=temp, header_fields=[
                              "" if f is None else str(f) for f in (first or [])])

    def release(self, ws, staged: StagedFile) -> None:
        for table in ("_stage_all", "_stage", "_stage_strays", staged.rejects_table):
            if table:
                ws.execute(f"DROP TABLE IF EXISTS {table}")
        if staged.temp:
            staged.temp.unlink(missing_ok=True)


_CHUNK = 4 * 1024 * 1024


def _spaced_quote(delimiter: str) -> re.Pattern:
    """A quoted value at a field's start (kept), or one after one space there and
    followed by spaces at most before the field's end (group 2: the value without the
    space). A quoted value does not span lines (Spark reads a record per line)."""
    d = re.escape(delimiter.encode())
    start = rb"(?<![^" + d + rb"\r\n])"
    value = rb'"(?:[^"\r\n]|"")*"'
    return re.compile(start + rb"(?:(" + value + rb")| (" + value + rb")(?= *(?:" + d
                      + rb"|\r|\n|\Z)))")


def has_quote(path: Path) -> bool:
    """Whether a local file (in an ASCII-compatible encoding, where a quote is only ever
    its ASCII byte) holds a `"` anywhere."""
    with open(path, "rb") as fh:
        return any(b'"' in chunk for chunk in iter(lambda: fh.read(_CHUNK), b""))


def without_space_before_quotes(path: Path, delimiter: str) -> Path | None:
    """A temporary copy of a CSV file (in an ASCII-compatible encoding) where one space
    before a quoted value at a field's start is taken out, outside quoted values: DuckDB's
    reader opens a quoted value after one space (`G0, "Bei, Chao"` is two fields, `Bei,
    Chao` the second), Spark's reads the quotes as text (with ignoreLeadingWhiteSpace it
    would also trim unquoted values, which DuckDB keeps). Two spaces or a tab before the
    quote, a quote inside a value, or text after the closing quote: text on both (kept as
    written). None (no copy) when no line has a space then a quote at a field's start."""
    first = re.compile(rb"(?:\A|[" + re.escape(delimiter.encode()) + rb'\r\n]) "')
    with open(path, "rb") as fh:
        tail, found = b"", False
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            if first.search(tail + chunk):
                found = True
                break
            tail = chunk[-2:]
    if not found:
        return None
    quoted = _spaced_quote(delimiter)

    def joined(m: re.Match) -> bytes:
        return m.group(1) if m.group(1) is not None else m.group(2)

    fd, name = temp_copy(".csv")
    with open(path, "rb") as src, os.fdopen(fd, "wb") as dst:
        held = b""  # a last line that may go on in the next chunk
        for chunk in iter(lambda: src.read(_CHUNK), b""):
            text = held + chunk
            cut = max(text.rfind(b"\n"), text.rfind(b"\r")) + 1
            held = text[cut:]
            dst.write(quoted.sub(joined, text[:cut]))
        dst.write(quoted.sub(joined, held))
    return Path(name)


def _fields_sql(delimiter: str) -> tuple[str, str]:
    """(fields of a `_corrupt` line, its trailing empty fields) as Spark SQL: a quoted
    field counts once whatever delimiters it holds (RFC 4180, `""` a quote); the trailing
    run of delimiters, each followed by nothing or `""`, holds that many empty fields."""
    sep = "\\\\" + delimiter if not delimiter.isalnum() else delimiter
    unquoted = """regexp_replace(_corrupt, '"([^"]|"")*"', 'q')"""
    found = f"size(split({unquoted}, '{sep}'))"
    run = f"""regexp_extract(_corrupt, '(({sep}(""|))+)$', 1)"""
    return found, f"(size(split({run}, '{sep}')) - 1)"


def _usable_sql(expected: int, delimiter: str, strays: str | None = None) -> str:
    """A row of `_stage_all` that DuckDB's reader loads: well formed, or whose only extra
    fields are empty ones at its end (`a,b,c,,` under a 3-column header: DuckDB loads its
    three values, and Spark kept them beside the line as `_corrupt`); not one of the
    record numbers in `strays` (a stray quote, stray_quote_pattern)."""
    found, trailing_empty = _fields_sql(delimiter)
    kept = f" AND row_number NOT IN (SELECT row_number FROM {strays})" if strays else ""
    return (f"((_corrupt IS NULL OR ({found} > {expected} "
            f"AND {trailing_empty} >= {found} - {expected})){kept})")


# DuckDB's reader's message for a quoted value followed by text (`"Jo"e"`)
UNQUOTED_VALUE_MESSAGE = "Value with unterminated quote found."


def reader_rejects_frame_sql(expected: int, delimiter: str, strays: str | None = None) -> str:
    """Malformed lines of `_stage_all` in the shape of DuckDB's reader rejects table, with
    the message DuckDB's first error gives: the fields found on a short line, the first
    extra field (expected + 1) on a long one; a line in `strays` (row_number, csv_line:
    a stray quote in one of its first `expected` fields, DuckDB's first error there) as
    UNQUOTED VALUE."""
    found, _ = _fields_sql(delimiter)
    malformed = (f"SELECT row_number + 1 AS line, "
                 f"CASE WHEN {found} < {expected} THEN 'MISSING COLUMNS' "
                 f"ELSE 'TOO MANY COLUMNS' END AS error_type, "
                 f"concat('Expected Number of Columns: {expected} Found: ', "
                 f"CASE WHEN {found} < {expected} THEN {found} ELSE {expected + 1} END) "
                 f"AS error_message, _corrupt AS csv_line, 0 AS column_idx "
                 f"FROM _stage_all WHERE NOT ({_usable_sql(expected, delimiter)})")
    if not strays:
        return malformed
    return (f"SELECT * FROM ({malformed}) WHERE line - 1 NOT IN "
            f"(SELECT row_number FROM {strays}) UNION ALL "
            f"SELECT row_number + 1, 'UNQUOTED VALUE', {literal(UNQUOTED_VALUE_MESSAGE)}, "
            f"csv_line, 0 FROM {strays}")


def stray_quote_pattern(delimiter: str, expected: int) -> str:
    """A (Java) regular expression for a line that DuckDB's reader, quoting as RFC 4180,
    rejects as UNQUOTED VALUE: a quoted value followed by text other than spaces (`"Jo"e"`,
    `"Jo" e`, `""e`, a tab) in one of its first `expected` fields (a stray quote further
    on comes after the TOO MANY COLUMNS error DuckDB reports first). Fields are split as
    DuckDB splits them: a quoted value opens at a field's start or after one space there,
    `""` inside it is a quote, and spaces may follow its closing quote; a quote inside an
    unquoted value is text (`Jo"e`, `x"`). A quote left open to the line's end (a value
    that would span lines) is not matched. Possessive throughout: one reading of a line."""
    d = re.escape(delimiter)
    quoted = ' ?"[^"]*+(?:""[^"]*+)*+"'  # unrolled: Java recurses per repeat of a group
    field = f'(?:{quoted} *+|(?! ?")[^{d}]*+)'
    return f"^(?:{field}{d}){{0,{expected - 1}}}+{quoted} *+[^{d}]"


def _store_stray_quote_lines(ws, path: Path, fmt: FileFormat, location: str, options: dict,
                             expected: int) -> str | None:
    """Stores the record numbers and text of the lines DuckDB's reader rejects for a stray
    quote (stray_quote_pattern) in `_stage_strays`; Spark's reader keeps such a value as
    text (univocity's RAISE_ERROR would fail the whole file instead). None (no table)
    when there are none, or when the DuckDB engine reads this local file without
    quoting after all (duckdb_rejects_stray_quotes)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    # Each line as one value, decoded, its blank lines skipped, as the CSV read takes them
    # (no quoting; a separator no line holds).
    lines = (ws.spark.read.options(**{**options, "header": "false", "sep": "\x00\x01",
                                      "quote": ""})
             .schema("csv_line STRING").csv(location))
    pattern = stray_quote_pattern(fmt.delimiter, expected)
    if lines.filter(F.col("csv_line").rlike(pattern)).isEmpty():  # the common case
        return None
    if not isinstance(path, ClusterPath) and not duckdb_rejects_stray_quotes(path, fmt):
        return None
    number = F.row_number().over(Window.orderBy(F.monotonically_increasing_id())) - 1
    ws.store_frame("_stage_strays", lines.withColumn("row_number", number)
                   .filter((F.col("row_number") > 0) & F.col("csv_line").rlike(pattern))
                   .select("row_number", "csv_line"))
    return "_stage_strays"


def duckdb_rejects_stray_quotes(path: Path, fmt: FileFormat) -> bool:
    """Whether the DuckDB engine rejects a line of this local file for a stray quote, as
    its reader does when it quotes as RFC 4180 (Spark's reading). Its sniffer decides for
    the whole file: it may read it without quoting (`"Jo" e` then is a value, in a file
    with no other quoted value) or take `\\` for the escape (`"Jo\\"e"` then is Jo"e)."""
    ws = open_memory()
    reader = DuckDBReader()
    try:
        staged = reader.stage(ws, path, fmt, 0)
        try:
            return bool(ws.scalar(f"SELECT count(*) FROM {staged.rejects_table} "
                                  "WHERE error_type = 'UNQUOTED VALUE'"))
        finally:
            reader.release(ws, staged)
    finally:
        ws.con.close()


class ClusterPath(type(Path())):
    """A cluster file: its URI kept verbatim (Path would collapse 'hdfs://' to 'hdfs:/'),
    with the size and modification time the listing gave."""

    def __new__(cls, uri: str, size: int = 0, mtime: int = 0):
        self = super().__new__(cls, uri.split("://", 1)[-1])
        self.uri, self.size, self.mtime = uri, size, mtime
        return self

    def __str__(self) -> str:
        return self.uri

    def is_file(self) -> bool:
        """Hadoop listed it as a file (list_cluster_files): the local check would stat
        the URI text as a local path, and refused every cluster file."""
        return True


def list_cluster_files(spark, pattern: str) -> list[ClusterPath]:
    """Data files under a cluster path, folder or glob (Hadoop FileSystem), sorted."""
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(pattern)
    fs = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    statuses = []
    matched = fs.globStatus(path) or []
    if not matched:
        raise InputError(f"no files match {pattern}" if _CLUSTER_GLOB.search(pattern)
                         else f"no such file or folder: {pattern}")
    for status in matched:
        if status.isDirectory():
            if copies_folder(str(status.getPath().getName())):  # a glob's `.stversions`
                continue
            root = str(status.getPath().toString()).rstrip("/") + "/"
            files = fs.listFiles(status.getPath(), True)
            while files.hasNext():
                listed = files.next()
                folders = str(listed.getPath().toString())[len(root):].split("/")[:-1]
                if not any(copies_folder(f) for f in folders):  # as a local folder
                    statuses.append(listed)
        else:
            statuses.append(status)
    found = [ClusterPath(str(s.getPath().toString()), s.getLen(), s.getModificationTime())
             for s in statuses]
    # as a local folder's: hidden files are left out (`_x.csv` is a delivery)
    return sorted((f for f in found if f.suffix.lower() in DATA_SUFFIXES
                   and not f.name.startswith(".")), key=str)


_CLUSTER_GLOB = re.compile(r"[*?\[{]")


def _quoted(column: str) -> str:
    """A column name as a Spark SQL identifier."""
    return f"`{column.replace('`', '``')}`"


def _spark_readable_copy(path: Path) -> tuple[Path, list[str]]:
    """A temporary copy of a local Parquet file that Spark can read, made by DuckDB:
    column names as DuckDB gives them (`Phone_1`), nanosecond timestamps as microseconds
    (what the DuckDB engine's timestamps keep; zoned ones as the text it reads them from),
    TIME as its text, FLOAT16 as FLOAT; doubles as DuckDB's text of them; 32-bit floats (as that
    text) and bytes as the DuckDB engine reads
    them (`parquet_values_sql`); lists, structs and maps as the DuckDB engine's text of them
    (zoned values inside in UTC). With the columns it decoded from bytes (the row's text
    for a generated lead id reads their bytes again)."""
    import duckdb

    fd, name = temp_copy(".parquet")
    os.close(fd)
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")  # as the workspace's (workspace._connect)
        source = f"read_parquet({literal(str(path))})"
        described = con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
        casts = {"TIME": "VARCHAR", "TIME WITH TIME ZONE": "VARCHAR"}
        # a zoned one (pandas writes a zone's column so) as the text the DuckDB engine
        # stages it as (zoned_as_text_sql), nanoseconds and all
        converted = {"TIMESTAMP_NS": micros_of_nanos_sql, "TIMESTAMPTZ_NS": zoned_text_sql}
        columns = ", ".join(
            f"{converted[t](ident(c))} AS {ident(c)}" if t in converted
            else f"CAST({ident(c)} AS {casts[t]}) AS {ident(c)}" if t in casts
            else f"CAST({ident(c)} AS VARCHAR) AS {ident(c)}" if nested_type(t) else ident(c)
            for c, t, *_ in described)
        kinds = parquet_value_types({c: t for c, t, *_ in described})
        decoded = [c for c, kind in kinds.items() if kind == "text"]
        rows = parquet_values_sql(f"SELECT {columns} FROM {source}", kinds) if kinds \
            else f"SELECT {columns} FROM {source}"
        # doubles (and floats, widened) as DuckDB's text of them, the DuckDB engine's
        doubles = [c for c, t, *_ in con.execute(f"DESCRIBE {rows}").fetchall()
                   if t == "DOUBLE"]
        if doubles:
            texts = ", ".join(f"CAST({ident(c)} AS VARCHAR) AS {ident(c)}" for c in doubles)
            rows = f"SELECT * REPLACE ({texts}) FROM ({rows})"
        con.execute(f"COPY ({rows}) TO {literal(name)} (FORMAT parquet)")
    return Path(name), decoded


def _duckdb_text(x):
    """A double column as the text DuckDB gives it (`CAST(x AS VARCHAR)`), so that the
    shared SQL reads the same phone, id or attribute on both engines: Java writes
    13812345670.0 as `1.381234567E10` (which no longer reads as that phone), DuckDB as
    `13812345670.0`; DuckDB's exponents look like `1e+16`, `1e-05`. Amounts read from the
    text are the same doubles (both are round-trip forms)."""
    from pyspark.sql import functions as F

    def digits(decimal_type: str):  # plain notation, trailing zeros dropped
        return F.regexp_replace(F.regexp_replace(x.cast(decimal_type).cast("string"),
                                                 "0+$", ""), "[.]$", ".0")

    java, size = x.cast("string"), F.abs(x)
    exponent = F.regexp_extract(java, "E-?([0-9]+)$", 1)
    scientific = F.concat(
        F.regexp_replace(F.regexp_extract(java, "^(-?[0-9.]+)E", 1), "[.]0$", ""), F.lit("e"),
        F.when(F.regexp_extract(java, "E(-?)", 1) == "-", "-").otherwise("+"),
        F.when(F.length(exponent) < 2, F.lpad(exponent, 2, "0")).otherwise(exponent))
    return (F.when(F.isnan(x), "nan").when(x == float("inf"), "inf")
            .when(x == float("-inf"), "-inf")
            .when((size >= 1e7) & (size < 1e16), digits("decimal(38,10)"))
            .when((size >= 1e-4) & (size < 1e-3), digits("decimal(38,24)"))
            .when(F.instr(java, "E") > 0, scientific)
            .otherwise(java))


def _utc_text(x):
    """A zoned timestamp column as the DuckDB engine stages it: UTC text with its offset
    (ingest.sql.zoned_as_text_sql); the session time zone is UTC."""
    from pyspark.sql import functions as F

    return F.concat(x.cast("string"), F.lit("+00"))


def ascii_compatible(codec: str) -> bool:
    """Whether the encoding writes line ends, delimiters and quotes as their ASCII bytes
    (UTF-8, GB18030, Latin-1: Spark's line reader can read it; not UTF-16 or UTF-32)."""
    if codec in UTF8:
        return True
    probe = "\r\n\t ,;|\"'azAZ09"
    try:
        return probe.encode(codec_name(codec)) == probe.encode("ascii")
    except (UnicodeError, LookupError, InputError):
        return False


def _location(path: Path) -> str:
    """The file as Spark's readers take it (exact_location)."""
    return exact_location(str(path) if isinstance(path, ClusterPath)
                          else str(Path(path).resolve()))


def exact_location(uri: str) -> str:
    """`uri` for Spark's readers, which take each path for a (Hadoop) glob pattern: a `[`,
    `{`, `*`, `?` or `\\` in it (`leads[1].csv`, a folder `night[1]`) is escaped."""
    return re.sub(r"([\\\[\]{}*?])", r"\\\1", uri)


def _columns(ws, table: str) -> tuple[list[str], dict[str, str]]:
    described = ws.columns(table)
    return [c for c, _ in described], dict(described)
