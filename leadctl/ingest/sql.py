"""Pure SQL builders for ingest: read → typed rows → leads / events / rejects.

Inputs are file paths, column mappings and ids; outputs are SQL strings. Every
user-supplied name or value goes through `ident()` / `literal()` (`leadctl.sqltext`).
"""

from __future__ import annotations

import datetime as dt
import re

from leadctl.ingest.columns import IDENTIFIER_COLUMNS, LEAD_COLUMNS
from leadctl.sqltext import (
    NULL_TOKENS_SQL,
    file_literal,
    finite_or_null_sql,
    ident,
    literal,
    null_token_sql,
    number_sql,
    ts_literal,
)

BOM = "\ufeff"
TIMESTAMP_FORMATS = (
    "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y/%m/%d", "%Y-%m-%d %H:%M",
    "%Y年%m月%d日 %H:%M:%S", "%Y年%m月%d日 %H:%M", "%Y年%m月%d日", "%Y%m%d %H:%M:%S", "%Y%m%d",
    "%Y.%m.%d %H:%M", "%Y.%m.%d",
)
# The columns of the `leads` table in schema.py's order (a test keeps them in step),
# for a whole row as JSON.
LEADS_TABLE_COLUMNS = (
    "lead_key", "source", "lead_id", "file_id", "row_number", "name", "phone", "email",
    "wechat", "device_id", "id_card", "city", "province", "created_at", "created_at_raw",
    "utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term", "channel",
    "attributes", "row_hash")
MAX_LINE_BYTES = 8 * 1024 * 1024  # a 1 MB field is fine; beyond this a row is rejected


def text_sql(column: str | None) -> str:
    """A column as trimmed text, NULL when missing or empty."""
    if column is None:
        return "CAST(NULL AS VARCHAR)"
    return f"nullif(trim(CAST({ident(column)} AS VARCHAR)), '')"


def id_text_sql(column: str | None) -> str:
    """A lead id column as trimmed text, NULL when missing, empty or a null token: `N/A`
    is no lead id, so two such rows are not one lead."""
    text = text_sql(column)
    if column is None:
        return text
    return f"CASE WHEN {null_token_sql(text)} THEN NULL ELSE {text} END"


def usable_sql(expr: str) -> str:
    """True when a text value carries information (not blank, not a null token)."""
    # Any letter or digit, full-width ones too.
    return (f"({expr} IS NOT NULL AND NOT {null_token_sql(expr)} "
            f"AND regexp_matches({expr}, '[\\p{{L}}\\p{{N}}]'))")


def first_value_sql(rows_sql: str, fields: dict[str, list[str]],
                    types: dict[str, str]) -> tuple[str, dict[str, str]]:
    """The rows plus one column per field several columns give (`{name: [columns]}`, in
    the order they are read, `columns.field_columns`): per row the first value that
    carries information (`usable_sql`), else the first non-blank one; when all of them
    have one type other than text (two timestamp columns), the first non-NULL value of
    that type. Returns (rows SQL, {name: its DuckDB type})."""
    added, typed = [], {}
    for name, columns in fields.items():
        kinds = {types[c].upper() for c in columns}
        if len(kinds) == 1 and kinds != {"VARCHAR"}:
            expr, typed[name] = f"coalesce({', '.join(map(ident, columns))})", types[columns[0]]
        else:
            texts = [text_sql(c) for c in columns]
            firsts = [f"CASE WHEN {usable_sql(t)} THEN {t} END" for t in texts]
            expr, typed[name] = f"coalesce({', '.join(firsts + texts)})", "VARCHAR"
        added.append(f"{expr} AS {ident(name)}")
    if not added:
        return rows_sql, typed
    return f"SELECT *, {', '.join(added)} FROM ({rows_sql})", typed


def parse_timestamp_sql(expr: str, timezone: str) -> str:
    """Text → TIMESTAMP (local time of `timezone`); NULL when unparseable.

    Zoned ISO values are converted to the workspace time zone: an offset, `Z`, `UTC` or
    `GMT` (any case), or a region name (`Asia/Tokyo`) after the time. Another word there
    is no time (NULL: rejected, never read as local time): an abbreviation such as `CST`
    is China's and also the US Central zone, and so is anything else after the time (an
    offset with seconds, a word and an offset). Naive values are local time already.
    """
    formats = "[" + ", ".join(literal(f) for f in TIMESTAMP_FORMATS) + "]"
    # `08:15:00 +0800` (a log's form): the offset joined to the time, which DuckDB's cast
    # needs (` UTC` keeps its space, which it needs); upper case: Spark reads no `utc`
    upper = f"upper({expr})"
    time = "\\d[T ]\\d{1,2}:\\d{2}"
    seconds = "(:\\d{2}(\\.\\d+)?)"
    # `08:15Z`, `08:15+08:00`, `08:15 GMT` with their seconds (`08:15:00Z`): Spark reads
    # a zone only after them (`08:15UTC` is no time on DuckDB: left as it is)
    timed = (f"CASE WHEN regexp_matches({upper}, '{time}(\\s*([+-]|Z$)|\\s+(UTC|GMT)$)') "
             f"THEN regexp_extract({upper}, '^(.*{time})', 1) || ':00' || "
             f"regexp_extract({upper}, '^.*{time}(.*)$', 1) ELSE {upper} END")
    offset = "([+-][0-9]{2}(:?[0-9]{2})?|Z)$"
    zoned = (f"CASE WHEN regexp_matches({timed}, '\\s{offset}') "
             f"THEN regexp_extract({timed}, '^(.*[^\\s])\\s+{offset}', 1) "
             f"|| regexp_extract({timed}, '{offset}', 1) ELSE {timed} END")
    # `… 20:00 Asia/Tokyo` with its seconds: Spark reads a region name only after them
    region = "[A-Z][A-Za-z_-]*(/[A-Za-z0-9_+-]+){1,2}"
    wall = (f"regexp_extract({expr}, '^(.*{time})', 1) || coalesce(nullif("
            f"regexp_extract({expr}, '^.*{time}{seconds}', 1), ''), ':00')")
    zone = f"regexp_extract({expr}, '({region})$', 1)"
    read = f"try_cast({wall} || ' ' || {zone} AS TIMESTAMPTZ)"
    # The hour that repeats when clocks go back: DuckDB reads its later instant, Spark
    # (Java) and Python its earlier one; the earlier one is taken on both (2 h before, as
    # at Antarctica/Troll, 1 h, or 30 min, as on Lord Howe Island, when it reads as the
    # same wall-clock time there).
    earlier = " ".join(
        f"WHEN timezone({zone}, {read} - INTERVAL {gap}) = try_cast({wall} AS TIMESTAMP) "
        f"THEN {read} - INTERVAL {gap}" for gap in ("2 HOUR", "1 HOUR", "30 MINUTE"))
    in_region = f"CASE {earlier} ELSE {read} END"
    local = literal(timezone)
    return (
        f"CASE WHEN {expr} IS NULL THEN NULL "
        f"WHEN regexp_matches({expr}, '^\\d{{10}}$') THEN timezone({local}, "
        f"to_timestamp(CAST({expr} AS BIGINT))) "
        f"WHEN regexp_matches({expr}, '^\\d{{13}}$') THEN timezone({local}, "
        f"to_timestamp(CAST({expr} AS BIGINT) / 1000.0)) "
        f"WHEN regexp_matches({upper}, '{time}{seconds}?"
        f"\\s*([+-]\\d{{2}}(:?\\d{{2}})?|Z|UTC|GMT)$') "
        # an offset no zone has (past ±14:59) is a bad timestamp, not a shifted one
        f"THEN CASE WHEN regexp_matches({upper}, "
        f"'([+-](0\\d|1[0-4])(:?[0-5]\\d)?|Z|UTC|GMT)$') "
        f"THEN timezone({local}, try_cast({zoned} AS TIMESTAMPTZ)) END "
        f"WHEN regexp_matches({expr}, '\\d\\s*[A-Za-z][A-Za-z0-9_/+-]*$') "
        f"THEN CASE WHEN regexp_matches({expr}, '{time}{seconds}?\\s+{region}$') "
        f"THEN timezone({local}, {in_region}) END "
        # Any other zone after the time (`UTC+08:00`, `+01:00:00`, `CET+01:00`): no time.
        # DuckDB's cast drops such a tail, which would make it local time.
        f"WHEN regexp_matches({expr}, '{time}{seconds}?.*[^0-9.:\\s]') THEN NULL "
        f"ELSE coalesce(try_cast({expr} AS TIMESTAMP), try_strptime({expr}, {formats})) END"
    )


ZONED_TYPES = ("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ", "TIMESTAMPTZ_NS",
               "TIMESTAMP_NS WITH TIME ZONE")
NAIVE_TIME_TYPES = ("TIMESTAMP", "TIMESTAMP_S", "TIMESTAMP_MS", "DATE")


def zoned_type(duckdb_type: str) -> bool:
    """TIMESTAMP WITH TIME ZONE (staging turns such columns into text: zoned_as_text_sql);
    a list or struct of them is no such column (an attribute's text)."""
    return duckdb_type.upper() in ZONED_TYPES


def typed_timestamp_sql(column: str, duckdb_type: str, timezone: str) -> str:
    """A source column of any type → TIMESTAMP, without re-parsing naive typed values (a
    zoned one is read from its text, offset included, as staging leaves it)."""
    t = duckdb_type.upper()
    if t == "TIMESTAMP_NS":
        return micros_of_nanos_sql(ident(column))
    if t in NAIVE_TIME_TYPES:  # (not a list of them: read from its text)
        return f"CAST({ident(column)} AS TIMESTAMP)"
    return parse_timestamp_sql(text_sql(column), timezone)


def struct_json_sql(columns: list[str], keys: dict[str, str] | None = None) -> str:
    """The columns as one JSON object; `keys` renames some (header → key)."""
    if not columns:
        return "CAST(NULL AS JSON)"
    keys = keys or {}
    parts = ", ".join(f"{ident(keys.get(c, c))} := CAST({ident(c)} AS VARCHAR)"
                      for c in columns)
    return f"to_json(struct_pack({parts}))"


def values_in_columns_sql(rows_sql: str, columns: list[str]) -> str:
    """One row: per column of `columns`, whether any of the rows has a value in it."""
    found = ", ".join(f"count({ident(c)}) > 0 AS {ident(c)}" for c in columns)
    return f"SELECT {found} FROM ({rows_sql}) AS r"


def read_csv_sql(path: str, delimiter: str, rejects_table: str, rejects_scan: str,
                 columns: list[str] | None = None) -> str:
    """DuckDB's reader, its dialect sniffed; with `columns` (the header's names) the
    dialect is given instead: RFC 4180 quoting, so a line with a stray quote is rejected
    (UNQUOTED VALUE) where the sniffer would turn quoting off for the whole file."""
    dialect = "all_varchar = true"
    if columns is not None:
        names = ", ".join(f"{literal(c)}: 'VARCHAR'" for c in columns)
        dialect = f"auto_detect = false, quote = '\"', escape = '\"', columns = {{{names}}}"
    return (
        f"read_csv({file_literal(path)}, header = true, {dialect}, "
        f"delim = {literal(delimiter)}, store_rejects = true, "
        f"rejects_table = {literal(rejects_table)}, rejects_scan = {literal(rejects_scan)}, "
        f"max_line_size = {MAX_LINE_BYTES}, null_padding = false)"
    )


def sniffed_quote_sql(path: str, delimiter: str) -> str:
    """The quote character DuckDB's sniffer would read the file with."""
    return (f"SELECT Quote FROM sniff_csv({file_literal(path)}, header = true, all_varchar = true, "
            f"delim = {literal(delimiter)}, ignore_errors = true, "
            f"max_line_size = {MAX_LINE_BYTES})")


def stage_csv_sql(stage: str, path: str, delimiter: str, rejects_table: str,
                  rejects_scan: str, columns: list[str] | None = None) -> str:
    # A table (not a view) so rowid follows file order for record numbers.
    return (f"CREATE OR REPLACE TEMP TABLE {stage} AS SELECT * FROM "
            f"{read_csv_sql(path, delimiter, rejects_table, rejects_scan, columns)}")


def quoting_lost(header: list[str]) -> bool:
    """Whether the sniffer read a quoted file without quoting (one stray quote in a
    field makes it give quoting up): every header name still wears its quotes."""
    return bool(header) and all(_QUOTED_NAME.match(n) for n in header)


def quoted_values_sql(stage: str, columns: list[str]) -> str:
    """(whether a staged value still starts with a quote, whether one is still wholly in
    quotes, `"A1"`): the sniffer read the file without quoting."""
    starts = " OR ".join(f"starts_with({ident(c)}, '\"')" for c in columns)
    wholly = " OR ".join(f"(length({ident(c)}) > 1 AND starts_with({ident(c)}, '\"') AND "
                         f"ends_with({ident(c)}, '\"'))" for c in columns)
    return (f"SELECT coalesce(bool_or({starts or 'false'}), false) AS starts, "
            f"coalesce(bool_or({wholly or 'false'}), false) AS wholly FROM {stage}")


# A quoted header name as the sniffer leaves it without quoting (a repeated one gets its
# `_<n>` after the quote: `"note"_1`).
_QUOTED_NAME = re.compile(r'^\s*".*"(_[0-9]+)?$', re.DOTALL)  # `"a", "b"`: after a space


def reader_column_names(fields: list[str]) -> list[str]:
    """Header fields named as DuckDB's reader names them: an empty one `column<i>`, a
    repeated one (any case) `<name>_<n>`."""
    names: list[str] = []
    taken: set[str] = set()
    repeats: dict[str, int] = {}
    for i, field_name in enumerate(fields):
        base = field_name or f"column{i}"
        name = base
        while name.lower() in taken:
            repeats[base.lower()] = repeats.get(base.lower(), 0) + 1
            name = f"{base}_{repeats[base.lower()]}"
        taken.add(name.lower())
        names.append(name)
    return names


def positional_csv_rows_sql(stage: str) -> str:
    """Rows with their record number when the reader rejected no line: their position
    (header = record 0; rowid is offset inside a transaction, hence the subtraction)."""
    return (f"SELECT *, rowid - (SELECT min(rowid) FROM {stage}) + 1 AS row_number "
            f"FROM {stage}")


def quotes_sql(line: str, delimiter: str) -> str:
    """How many quotes of a line open or close a quoted value: `""` (an escaped quote, or
    an empty value) aside, a quote at a field's start (after one space at most) or at its
    end; one inside an unquoted value (`12"screen`) is text."""
    d = "[" + delimiter.replace("\\", "\\\\").replace("]", "\\]") + "]"
    text = f"replace(coalesce({line}, ''), '\"\"', '')"
    opening, closing = literal("(?:^|" + d + ') ?"'), literal('"(?:' + d + "|$)")
    # a quote at a field's start and end at once (`…,"` ending a line: a value that starts
    # with a line break; a line that is one `"`: a value that ends with one) is one quote
    both = literal("(?:^|" + d + ') ?"(?:' + d + "|$)")
    return (f"(len(regexp_extract_all({text}, {opening})) + "
            f"len(regexp_extract_all({text}, {closing})) - "
            f"len(regexp_extract_all({text}, {both})))")


# What Spark's reader trims off a line before it skips it as empty (Scala's trim)
SPARK_TRIMMED = "".join(map(chr, range(1, 0x21)))


def blank_value_sql(value: str) -> str:
    """Whether `value` (a line) is empty or white space alone, as Spark's reader skips a
    line. Never NULL."""
    return f"coalesce(trim({value}, {literal(SPARK_TRIMMED)}) = '', true)"


def white_space_lines_sql(rejects_table: str) -> str:
    """The lines of a file of more columns that the reader rejected (too few fields) and
    are white space alone: blank lines, as Spark skips them."""
    return (f"SELECT DISTINCT line FROM {rejects_table} "
            f"WHERE csv_line IS NOT NULL AND {blank_value_sql('csv_line')}")


def read_lines_sql(path: str, rejects_table: str = "", rejects_scan: str = "") -> str:
    """Every line of the file as one value `l`, in file order (one column, no quoting: a
    line is a line, a CR inside a quoted value ends one too; an empty line is NULL). A
    line the reader cannot take is left out; with `rejects_table`, a line of bytes that
    are no UTF-8 is stored there (DuckDB's line number and text) for file_lines_sql."""
    stored = (f"store_rejects = true, rejects_table = {literal(rejects_table)}, "
              f"rejects_scan = {literal(rejects_scan)}, " if rejects_table else "")
    return (f"SELECT l FROM read_csv({file_literal(path)}, header = false, auto_detect = false, "
            "columns = {'l': 'VARCHAR'}, delim = '\x01\x02\x03\x04', quote = '', "
            f"escape = '', ignore_errors = true, strict_mode = false, {stored}"
            f"max_line_size = {MAX_LINE_BYTES})")


def file_lines_sql(lines: str, rejects_table: str, delimiter: str = ",",
                   spaces: bool = False) -> str:
    """Whether each line of the file is empty (`blank`; with `spaces`, also one of white
    space alone, as Spark skips it) and its `quotes`, in file order: `lines`, stored from
    read_lines_sql, and the lines of bytes that are no UTF-8 it left out (in
    `rejects_table`, by their numbers; the lines read fill the other numbers in order).
    Left out, the lines no longer accounted for the records, and the reader's numbers,
    which count blank lines, stood."""
    blank = blank_value_sql("l") if spaces else "l IS NULL"
    return f"""
        WITH bad AS (SELECT line, arg_min(regexp_replace(csv_line, '^[\r\n]+', ''),
                                          byte_position) AS l
                     FROM {rejects_table} WHERE error_type = 'INVALID ENCODING'
                     GROUP BY line),
        read AS (SELECT l, row_number() OVER (ORDER BY rowid) AS k FROM {lines}),
        free AS (SELECT range AS line, row_number() OVER (ORDER BY range) AS k
                 FROM range(1, (SELECT count(*) FROM {lines}) + (SELECT count(*) FROM bad) + 1)
                 WHERE range NOT IN (SELECT line FROM bad))
        SELECT {blank} AS blank, {quotes_sql('l', delimiter)} AS quotes
        FROM (SELECT f.line, r.l FROM free f JOIN read r USING (k)
              UNION ALL SELECT line, l FROM bad)
        ORDER BY line"""


def lines_outside_quotes_sql(lines: str) -> str:
    """The lines of `lines` (file_lines_sql, stored in file order) that start outside a
    quoted value (an even count of quotes before them): the lines the reader counts, one
    per record and one per blank line, the 2nd, 3rd, … lines of a value spanning lines
    left out. (A running sum, linear; a stray quote breaks the pairing, which the caller's
    check of the record count then tells.)"""
    return f"""
        SELECT blank FROM (
            SELECT rowid AS n, blank,
                   sum(quotes) OVER (ORDER BY rowid ROWS UNBOUNDED PRECEDING) - quotes AS before
            FROM {lines})
        WHERE before % 2 = 0 ORDER BY n"""


def records_of_lines_sql(lines: str) -> str:
    """(line, record) of each non-blank line of `lines`: its record number (header =
    record 0) where blank lines use none up. (A running count with a FILTER clause costs
    DuckDB 2.0 time quadratic in the lines: 80k rejected lines among blank ones took 12 s.)"""
    return f"""
        SELECT line, count(CASE WHEN NOT blank THEN 1 END) OVER (ORDER BY line) - 1 AS record
        FROM (SELECT rowid - min(rowid) OVER () + 1 AS line, blank FROM {lines})
        QUALIFY NOT blank"""


def rejects_past_blank_lines_sql(rejects_table: str, lines: str) -> str:
    """DuckDB counts a blank line as a line in the rejected lines' numbers; renumbered
    here as records, as good rows are numbered (and as on Spark)."""
    return f"""
        UPDATE {rejects_table} r SET line = m.record + 1
        FROM ({records_of_lines_sql(lines)}) m WHERE m.line = r.line"""


def blank_line_rows_sql(stage: str, column: str, lines: str, rejects_table: str) -> str:
    """(row_id, blank, paired) of each row of a one-column file's `stage`: DuckDB's reader
    gives each line after the header that it counts (a value spanning lines is one) as a
    row or a reject, a blank line too (NULL, or its white space), so the k-th row is the
    k-th such line not rejected. `lines`: file_lines_sql or lines_outside_quotes_sql,
    stored in file order, their k-th row the reader's line k (as the rejects number them:
    blank lines before the header count). `paired`, the same on every row: the lines
    account for the rows and rejects exactly and no blank line falls on a value, else
    `lines` are not the lines the reader counted (quotes that do not pair up) and no row
    is known for a blank line. `blank`: the row's line is blank and its value empty."""
    return f"""
        WITH numbered AS (SELECT rowid - min(rowid) OVER () + 1 AS line, blank FROM {lines}),
        body AS (SELECT line, blank FROM numbered
                 WHERE line > (SELECT min(line) FROM numbered WHERE NOT blank)),
        kept AS (SELECT blank, row_number() OVER (ORDER BY line) AS k FROM body
                 WHERE line NOT IN (SELECT line FROM {rejects_table})),
        staged AS (SELECT rowid AS row_id, {blank_value_sql(ident(column))} AS empty,
                          row_number() OVER (ORDER BY rowid) AS k FROM {stage}),
        pairs AS (SELECT s.row_id, k.blank, s.empty FROM staged s FULL JOIN kept k USING (k))
        SELECT row_id, blank AND empty AS blank,
               (SELECT count(*) FROM body) = (SELECT count(*) FROM {stage})
                   + (SELECT count(DISTINCT line) FROM {rejects_table})
               AND NOT coalesce(bool_or(row_id IS NULL OR blank IS NULL OR blank AND NOT empty)
                                OVER (), false) AS paired
        FROM pairs"""


def numbered_csv_rows_sql(stage: str, rejects_table: str) -> str:
    """Good rows with their record number in the file (header = record 0).

    DuckDB drops rejected lines from the scan, so the i-th good row takes the
    i-th record number not used by a reject. (rowid is offset inside a
    transaction, hence the subtraction.)
    """
    return f"""
        SELECT s.* EXCLUDE (_k), f.record AS row_number
        FROM (SELECT *, rowid - (SELECT min(rowid) FROM {stage}) AS _k FROM {stage}) s
        JOIN (
            SELECT record, row_number() OVER (ORDER BY record) - 1 AS k
            FROM (SELECT range + 1 AS record FROM range(
                    (SELECT count(*) FROM {stage}) +
                    (SELECT count(DISTINCT line) FROM {rejects_table})))
            WHERE record NOT IN (SELECT line - 1 FROM {rejects_table})
        ) f ON s._k = f.k"""


# Names the reading SQL gives its own columns (record numbers; Spark's malformed-line
# column): a file column of the same name is renamed like a duplicate header
# (`row_number_1`), never mistaken for them, on either engine.
RESERVED_COLUMNS = ("row_number", "file_row_number", "rowid", "_k", "_corrupt")


def header_names(fields: list[str | None]) -> list[str]:
    """A CSV header's column names as DuckDB's reader gives them (the Spark engine's
    reader mangles them otherwise): an empty field is `column<index>`, and a name an
    earlier column has (in any case) gets `_1`, `_2`, …; spaces around a name go."""
    names: list[str] = []
    taken: set[str] = set()
    for index, field in enumerate(fields):
        name = ((field or "").removeprefix(BOM) if index == 0 else (field or "")).strip()
        name = name or f"column{index}"
        base, n = name, 0
        while name.lower() in taken:
            n += 1
            name = f"{base}_{n}"
        taken.add(name.lower())
        names.append(name)
    return names


def free_names(columns: list[str]) -> dict[str, str]:
    """{reserved file column: its new name}: the first `name_N` no column has."""
    taken = {c.lower() for c in columns}
    renames = {}
    for column in columns:
        if column.lower() in RESERVED_COLUMNS:
            n = 1
            while f"{column}_{n}".lower() in taken:
                n += 1
            renames[column] = f"{column}_{n}"
            taken.add(renames[column].lower())
    return renames


def rename_sql(renames: dict[str, str]) -> str:
    """` RENAME (a AS b, ...)` after a `*` (empty without renames)."""
    pairs = ", ".join(f"{ident(a)} AS {ident(b)}" for a, b in renames.items())
    return f" RENAME ({pairs})" if pairs else ""


def parquet_rows_sql(path: str, renames: dict[str, str] | None = None) -> str:
    return (f"SELECT *{rename_sql(renames or {})}, file_row_number + 1 AS row_number "
            f"FROM read_parquet({file_literal(path)}, file_row_number = true)")


def zoned_text_sql(column_sql: str) -> str:
    """A TIMESTAMP WITH TIME ZONE (any precision) as UTC text with its offset."""
    return f"CAST(timezone('UTC', {column_sql}) AS VARCHAR) || '+00'"


def zoned_as_text_sql(rows_sql: str, columns: list[str]) -> str:
    """The rows with these TIMESTAMP WITH TIME ZONE columns as UTC text with its offset
    (`2026-10-01 08:30:00.123+00`): what Spark writes too, whatever the machine's time
    zone (DuckDB's own text of such a value is in it). A timestamp read from the text
    is the same instant."""
    replaced = ", ".join(f"{zoned_text_sql(ident(c))} AS {ident(c)}" for c in columns)
    return f"SELECT * REPLACE ({replaced}) FROM ({rows_sql})"


def parquet_value_types(types: dict[str, str]) -> dict[str, str]:
    """The Parquet columns whose values DuckDB would not read as the same text in a CSV
    reads, by how `parquet_values_sql` reads them: `text` (BLOB: a writer that does not mark
    its strings UTF-8), `float` (32-bit: widened, 19.9 is 19.899999618530273). (A
    TIMESTAMP_NS is cut where it is typed: `typed_timestamp_sql`.)"""
    kinds = {"BLOB": "text", "FLOAT": "float", "REAL": "float"}
    return {c: kinds[t.upper()] for c, t in types.items() if t.upper() in kinds}


def nested_type(duckdb_type: str) -> bool:
    """A list, array, struct, map or union: an attribute as DuckDB's text of it
    (`{'color': red, 'n': 1}`, `{a=1}`), which Spark writes otherwise."""
    t = duckdb_type.upper()
    return t.endswith("]") or t.startswith(("STRUCT(", "MAP(", "UNION("))


def micros_of_nanos_sql(column_sql: str) -> str:
    """A TIMESTAMP_NS as a TIMESTAMP cut to the microsecond towards the past (a cast
    rounds: 23:59:59.999999999 would be the next day), as a text's extra digits are cut."""
    ns = f"epoch_ns({column_sql})"
    return f"make_timestamp(({ns} - (({ns} % 1000) + 1000) % 1000) // 1000)"


def parquet_values_sql(rows_sql: str, kinds: dict[str, str]) -> str:
    """The rows with those columns as a CSV twin's text reads: bytes that are UTF-8 as
    their text (others as DuckDB's escaped text), a 32-bit float as its shortest text.
    (Their row's text for a generated lead id stays what it was: `raw_text_sql`.)"""
    def read(column: str, kind: str) -> str:
        c = ident(column)
        if kind == "text":
            return f"coalesce(try(decode({c})), CAST({c} AS VARCHAR))"
        return f"CAST(CAST({c} AS VARCHAR) AS DOUBLE)"
    replaced = ", ".join(f"{read(c, k)} AS {ident(c)}" for c, k in kinds.items())
    return f"SELECT * REPLACE ({replaced}) FROM ({rows_sql})"


def stage_parquet_sql(stage: str, path: str, renames: dict[str, str]) -> str:
    """A file that has a `file_row_number` column of its own (which the reader's record
    number option would clash with): staged as a table, its rows in file order."""
    return (f"CREATE OR REPLACE TEMP TABLE {stage} AS "
            f"SELECT *{rename_sql(renames)} FROM read_parquet({file_literal(path)})")


# Rejects go in unsorted: their readers sort (export by file and row), and a sorted
# INSERT costs Spark a sampling job that computes the rows twice.


def invalid_encoding_detail(encoding: str, looks_like: str = "") -> str:
    """An invalid_encoding reject's detail: the encoding the file was read in (the reader
    says `not utf-8` of a GB18030 file's transcoded copy too), and what its bytes look
    like when that is known (`latin-1`)."""
    return (f"bytes that are not {encoding} (the file was read as {encoding})" + (
        f"; they look like {looks_like}: --encoding {looks_like} reads them"
        if looks_like else ""))


def reader_rejects_sql(file_id: int, source: str, kind: str, rejects_table: str, *,
                       at: dt.datetime, encoding: str = "utf-8", looks_like: str = "") -> str:
    """CSV rows the reader could not parse (wrong field count, bad encoding, ...). `at`,
    in this and every reject builder: the stamp, a wall-clock time of the workspace zone
    (the file's ingest time), not the engine's clock (the machine's zone). A line of
    bytes that are not of the file's `encoding` is detailed by invalid_encoding_detail."""
    error_type = "arg_min(error_type, coalesce(column_idx, -1))"
    return f"""
        INSERT INTO rejects
        SELECT {file_id}, {literal(source)}, {literal(kind)}, line - 1,
               lower(replace({error_type}, ' ', '_')),
               CASE WHEN {error_type} = 'INVALID ENCODING'
                    THEN {literal(invalid_encoding_detail(encoding, looks_like))}
                    ELSE arg_min(error_message, coalesce(column_idx, -1)) END,
               -- the line as written: the reader's text of it can begin with the line
               -- break before it (a CRLF file, a blank line before it)
               regexp_replace(arg_min(csv_line, coalesce(column_idx, -1)), '^[\r\n]+', ''),
               {ts_literal(at)}
        FROM {rejects_table}
        GROUP BY line"""


def raw_text_sql(column: str, decoded: bool = False) -> str:
    """A cell's text in its row's text, which a generated lead id hashes: a column decoded
    from bytes (`parquet_values_sql`) as its bytes' text, so a lead delivered again keeps
    the id it got before bytes were decoded."""
    c = ident(column)
    return f"CAST(encode({c}) AS VARCHAR)" if decoded else f"CAST({c} AS VARCHAR)"


REPEATED_HEADER_DETAIL = "the header line again (files joined?)"


def repeated_header_sql(all_columns: list[str], header_fields: list[str] | None) -> str:
    """Whether a row is the header line again (files concatenated, each with its header,
    maybe its BOM): every cell is its column's name as the header record writes it
    (`header_fields`, else the column names), spaces aside. Never NULL. The CASE tests the
    other cells only on rows whose first cell is (a projection evaluates every conjunct of
    an AND on every row)."""
    if not all_columns:
        return "false"
    written = header_fields if header_fields and len(header_fields) == len(all_columns) \
        else all_columns

    def cell(column: str) -> str:  # as the header line holds it: spaces and all
        return f"coalesce(trim(CAST({ident(column)} AS VARCHAR)), '')"

    (first, name), *rest = zip(all_columns, written, strict=True)
    others = " AND ".join(f"{cell(c)} = {literal(n.strip())}" for c, n in rest)
    return (f"coalesce(CASE WHEN {cell(first)} IN ({literal(name.strip())}, "
            f"{literal(BOM + name.strip())}) THEN {others or 'true'} END, false)")


def checked_leads_sql(rows_sql: str, mapping: dict[str, str], extra: list[str],
                      all_columns: list[str], timezone: str,
                      header_fields: list[str] | None = None,
                      decoded: tuple[str, ...] = ()) -> str:
    """Typed lead rows with their final lead id and a reject `reason` (NULL = usable).
    `header_fields`: the header record as written, one per column (the reader renames a
    repeated, empty or reserved name: `note_1`, `column1`, `row_number_1`); `decoded`:
    columns read from bytes as text."""
    cols = {c: text_sql(mapping.get(c)) for c in LEAD_COLUMNS}
    cols["lead_id"] = id_text_sql(mapping.get("lead_id"))
    select = ",\n".join(f"{expr} AS {c}" for c, expr in cols.items()
                        if c not in ("created_at", "lead_id"))
    identifiers = " OR ".join(usable_sql(c) for c in IDENTIFIER_COLUMNS)
    # one call, not a chain of `||` (a file of 500 columns passed DuckDB's expression depth
    # limit of 1000); the same text: every cell is coalesced, so none is skipped
    row_text = ("concat_ws(chr(31), " + ", ".join(
        f"coalesce({raw_text_sql(c, c in decoded)}, '')" for c in all_columns) + ")"
        ) if all_columns else "''"
    kept = ", ".join(c for c in LEAD_COLUMNS if c not in ("created_at", "lead_id"))
    header = repeated_header_sql(all_columns, header_fields)
    return f"""
        WITH src AS ({rows_sql}),
        typed AS (
            SELECT row_number, {cols['lead_id']} AS given_lead_id, {select},
                {cols['created_at']} AS created_at_raw,
                {struct_json_sql(extra)} AS attributes,
                md5({row_text}) AS row_hash, {header} AS is_header
            FROM src),
        parsed AS (
            SELECT *, {parse_timestamp_sql('created_at_raw', timezone)} AS created_at
            FROM typed)
        SELECT row_number, {final_lead_id_sql()} AS lead_id,
            given_lead_id IS NULL AS derived_id, {kept}, created_at_raw,
            attributes, row_hash, created_at,
            CASE WHEN is_header THEN 'repeated_header'
                 WHEN NOT ({identifiers}) THEN 'no_identifier'
                 WHEN created_at_raw IS NOT NULL AND created_at IS NULL
                      AND NOT {null_token_sql('created_at_raw')} THEN 'bad_date'
            END AS reason
        FROM parsed"""


def duplicate_rows_sql(checked: str) -> str:
    """Usable rows whose lead id already appeared earlier in the same file.

    An aggregate finds the (rare) duplicated ids first, so the common case
    needs no window over the whole file.
    """
    return f"""
        SELECT c.row_number, c.lead_id, c.derived_id, d.first_row
        FROM {checked} c
        JOIN (SELECT lead_id, min(row_number) AS first_row FROM {checked}
              WHERE reason IS NULL GROUP BY lead_id HAVING count(*) > 1) d USING (lead_id)
        WHERE c.reason IS NULL AND c.row_number <> d.first_row"""


def insert_lead_rejects_sql(rows_sql: str, checked: str, duplicates: str,
                            all_columns: list[str], file_id: int, source: str, *,
                            at: dt.datetime) -> str:
    """Row-level rejects plus in-file duplicate lead ids (the first row wins),
    with the raw values of the original row."""
    return f"""
        INSERT INTO rejects
        SELECT {file_id}, {literal(source)}, 'leads', bad.row_number, bad.reason, bad.detail,
               {struct_json_sql(all_columns)}, {ts_literal(at)}
        FROM (
            SELECT row_number, reason,
                CASE reason
                    WHEN 'repeated_header' THEN {literal(REPEATED_HEADER_DETAIL)}
                    WHEN 'no_identifier' THEN 'no phone, email, wechat, device id or id card'
                            WHEN 'bad_date' THEN 'cannot parse created_at ' || created_at_raw
                END AS detail
            FROM {checked} WHERE reason IS NOT NULL
            UNION ALL
            SELECT row_number, 'duplicate_lead_id',
                   CASE WHEN derived_id
                        THEN 'no lead id, and the same text as row ' || first_row ||
                             ' (one lead: its id ' || lead_id || ' derives from the text)'
                        ELSE 'lead_id ' || lead_id || ' already on row ' || first_row END
            FROM {duplicates}
        ) bad JOIN ({rows_sql}) src USING (row_number)"""


def final_lead_id_sql() -> str:
    # Rows without a lead id get one derived from their content: stable on re-export.
    return "coalesce(given_lead_id, 'h' || substr(row_hash, 1, 16))"


def kept_keys_sql(checked: str, source: str) -> str:
    """`_kept_keys`: the stored leads of `source` whose lead id a new file's valid rows
    carry again (the new row replaces each, keeping its key)."""
    return f"""CREATE OR REPLACE TEMP TABLE _kept_keys AS
        SELECT l.lead_id, l.lead_key FROM leads l
        JOIN (SELECT DISTINCT lead_id FROM {checked} WHERE reason IS NULL) n
          ON l.lead_id = n.lead_id
        WHERE l.source = {literal(source)}"""


def whole_row_json_sql(alias: str, columns: tuple[str, ...]) -> str:
    """A stored lead or event as one JSON object, for rejects. Its attributes are kept
    as their JSON text (a string value): Spark holds them as text, and the two engines
    then write the same row."""
    fields = ", ".join(f"{c} := CAST({alias}.{c} AS VARCHAR)" if c == "attributes"
                       else f"{c} := {alias}.{c}" for c in columns)
    return f"to_json(struct_pack({fields}))"


def supersede_leads_sql(file_id: int, *, at: dt.datetime) -> list[str]:
    """The leads in `_kept_keys` leave `leads` for rejects as 'superseded', so nothing is
    lost (run only when there are any: most files bring no lead id again)."""
    whole_lead = whole_row_json_sql("l", LEADS_TABLE_COLUMNS)
    return [
        f"""INSERT INTO rejects
            SELECT l.file_id, l.source, 'leads', l.row_number, 'superseded',
                   'replaced by file ' || {file_id}, {whole_lead}, {ts_literal(at)}
            FROM leads l WHERE l.lead_key IN (SELECT lead_key FROM _kept_keys)""",
        "DELETE FROM leads WHERE lead_key IN (SELECT lead_key FROM _kept_keys)",
    ]


def retract_files_sql(file_ids: list[int], by_file: int, encoding: str, *,
                      at: dt.datetime) -> tuple[list[str], str]:
    """The leads and events files `file_ids` still have stored leave for rejects as
    'superseded', whole (file `by_file` read the same content again as `encoding`), and
    the rows their reads rejected give way to this read's; and the query counting the
    rows that leave."""
    files = ", ".join(str(int(f)) for f in file_ids)
    detail = literal(f"read again as {encoding} by file {int(by_file)}")
    statements = [f"DELETE FROM rejects WHERE file_id IN ({files}) AND reason <> 'superseded'"]
    for table, columns in (("leads", LEADS_TABLE_COLUMNS), ("events", EVENTS_TABLE_COLUMNS)):
        statements += [
            f"""INSERT INTO rejects
                SELECT t.file_id, t.source, '{table}', t.row_number, 'superseded', {detail},
                       {whole_row_json_sql("t", columns)}, {ts_literal(at)}
                FROM {table} t WHERE t.file_id IN ({files})""",
            f"DELETE FROM {table} WHERE file_id IN ({files})"]
    counted = (f"SELECT (SELECT count(*) FROM leads WHERE file_id IN ({files})) + "
               f"(SELECT count(*) FROM events WHERE file_id IN ({files}))")
    return statements, counted


def replaced_by_sql(file_ids: list[int], by_file: int) -> str:
    """How many stored rows of files `file_ids` file `by_file` replaced by their ids
    (leads by lead id, events by event id: rejects 'replaced by file N')."""
    files = ", ".join(str(int(f)) for f in file_ids)
    return (f"SELECT count(*) FROM rejects WHERE file_id IN ({files}) AND reason = "
            f"'superseded' AND detail = {literal(f'replaced by file {int(by_file)}')}")


def superseding_files_sql() -> str:
    """Per distinct detail of the rows of file `?` that later files replaced (rejects
    'superseded': 'replaced by file N', 'read again as … by file N', as the builders here
    write them), the file it names (NULL: none) and that file's content hash."""
    return ("SELECT DISTINCT r.by_file, f.content_hash FROM (\n"
            "  SELECT TRY_CAST(regexp_extract(detail, 'by file ([0-9]+)$', 1) AS INTEGER) "
            "AS by_file\n"
            "  FROM rejects WHERE file_id = ? AND reason = 'superseded') r\n"
            "LEFT JOIN ingested_files f ON f.file_id = r.by_file")


def insert_leads_sql(checked: str, duplicates: str, file_id: int, source: str, base: int,
                     kept: bool = True) -> str:
    """The file's usable rows into leads, new keys `base` (at least every stored key) +
    record number; `kept`: a row whose lead id is in `_kept_keys` keeps that key (without
    it, no row is superseded and every key is new)."""
    # Record numbers are unique within a file, so base + record number is a
    # unique new key without a window over the whole file.
    columns = [c for c in LEAD_COLUMNS if c != "lead_id"]
    new_key = f"{int(base)} + c.row_number"
    return f"""
        INSERT INTO leads (lead_key, source, lead_id, file_id, row_number,
            {", ".join(columns)}, created_at_raw, attributes, row_hash)
        SELECT {f"coalesce(k.lead_key, {new_key})" if kept else new_key},
               {literal(source)}, c.lead_id, {file_id}, c.row_number,
               {", ".join("c." + col for col in columns)}, c.created_at_raw, c.attributes,
               c.row_hash
        FROM {checked} c{" LEFT JOIN _kept_keys k ON k.lead_id = c.lead_id" if kept else ""}
        WHERE c.reason IS NULL
          AND c.row_number NOT IN (SELECT row_number FROM {duplicates})"""


def event_columns_sql(mapping: dict[str, str], types: dict[str, str], timezone: str,
                      all_columns: list[str] | None = None,
                      header_fields: list[str] | None = None) -> dict:
    """SQL expressions for the event fields, given source column types, in two layers
    (`all_columns`, `header_fields`: to know the header line again, as a leads file does).

    `base` expressions read source columns once (trimmed texts, the typed timestamp and
    amount); `typed` (the events columns) and `reason` read only `base` names. `reason`
    needs no typed value: an engine that pushes the reject filter below the projection
    (DuckDB, Spark) then repeats only the cheap base tests, not the subject strings or
    `lower()`, and still computes each value once for the rows it keeps.
    """

    def col(name: str) -> str:
        return text_sql(mapping.get(name))

    ts_col = mapping.get("ts")
    ts = typed_timestamp_sql(ts_col, types[ts_col], timezone) if ts_col else "NULL"
    amount_col = mapping.get("amount")
    if amount_col is None:
        amount = amount_raw = "CAST(NULL AS DOUBLE)"
    else:
        numeric = _is_numeric(types[amount_col])
        amount_raw = ident(amount_col) if numeric else col("amount")
        # A comma groups thousands (1,200.5); 12,5 is no amount rather than a wrong one.
        value = f"CAST({amount_raw} AS DOUBLE)" if numeric else number_sql(amount_raw)
        # NaN and ±infinity (a text 'NaN', '1e400', a float column's own) are no amount:
        # one would turn every sum and average over it, and the RFM means of everyone,
        # into NaN.
        amount = finite_or_null_sql(value)
    base = {"_person": col("person_id"), "_lead": col("lead_id"), "_phone": col("phone"),
            "_event_type": f"lower({col('event_type')})", "ts": ts, "amount": amount,
            "category": col("category"),
            "ts_missing": f"{ident(ts_col)} IS NULL" if ts_col else "true",
            "ts_raw": ident(ts_col) if ts_col else "NULL", "amount_raw": amount_raw,
            # Only a text file has header lines (and 10M Parquet rows skip the test).
            "is_header": repeated_header_sql(all_columns or [], header_fields)
            if header_fields else "false"}
    # A null token (`N/A`, `null`, `-`) is no subject and no event type: the next subject
    # column is read, or the row is rejected. Tested on base names, so each text is
    # trimmed once (the byte-length guard keeps lower() off ids and phones).
    usable = {name: f"({name} IS NOT NULL AND NOT {null_token_sql(name)})"
              for name in ("_person", "_lead", "_phone")}
    typed = {"subject": f"CASE WHEN {usable['_person']} THEN 'person:' || _person "
                        f"WHEN {usable['_lead']} THEN 'lead:' || _lead "
                        f"WHEN {usable['_phone']} THEN 'phone:' || _phone END",
             "event_type": "_event_type", "ts": "ts", "amount": "amount",
             "category": "category"}
    ts_text = "nullif(trim(CAST(ts_raw AS VARCHAR)), '')"  # blank or a token: no timestamp
    ts_token = f"({ts_text} IS NULL OR {null_token_sql(ts_text)})"
    reason = ("CASE WHEN is_header THEN 'repeated_header' "
              f"WHEN NOT ({' OR '.join(usable.values())}) THEN 'no_subject' "
              f"WHEN _event_type IS NULL OR _event_type IN ({NULL_TOKENS_SQL}) "
              "THEN 'no_event_type' "
              f"WHEN ts IS NULL THEN CASE WHEN ts_missing OR {ts_token} THEN 'no_timestamp' "
              "ELSE 'bad_timestamp' END "
              "WHEN amount_raw IS NOT NULL AND amount IS NULL THEN 'bad_amount' END")
    return {"base": base, "typed": typed, "reason": reason}


def _base_events_sql(rows_sql: str, fields: dict, extra_select: str) -> str:
    """One read of the rows: record number, the base fields and `extra_select`."""
    base = ", ".join(f"{expr} AS {name}" for name, expr in fields["base"].items())
    return f"SELECT row_number, {base}, {extra_select} FROM ({rows_sql})"


def _is_numeric(duckdb_type: str) -> bool:
    t = duckdb_type.upper()
    return any(t.startswith(p) for p in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT",
                                         "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT",
                                         "FLOAT", "DOUBLE", "DECIMAL", "REAL"))


def insert_events_sql(rows_sql: str, fields: dict, extra: list[str], file_id: int,
                      source: str, keys: dict[str, str] | None = None) -> str:
    """The usable rows of one read of the file, typed, into events (rejects: below);
    `extra` columns become the events' attributes (`keys`: header → attribute name)."""
    base = _base_events_sql(rows_sql, fields, f"{struct_json_sql(extra, keys)} AS attributes")
    typed = fields["typed"]
    return f"""
        INSERT INTO events
        SELECT {file_id}, row_number, {literal(source)}, {typed['subject']},
               {typed['event_type']}, {typed['ts']}, {typed['amount']}, {typed['category']},
               attributes
        FROM ({base})
        WHERE ({fields['reason']}) IS NULL"""


EVENTS_TABLE_COLUMNS = ("file_id", "row_number", "source", "subject", "event_type", "ts",
                        "amount", "category", "attributes")
EVENT_ID_KEY = "event_id"  # the attribute an events file's event id column is kept as


def event_id_sql(alias: str) -> str:
    """An event's id as given: the trimmed text of its `event_id` attribute."""
    return f"nullif(trim(json_extract_string({alias}.attributes, '$.{EVENT_ID_KEY}')), '')"


def same_event_id_sql(given: str) -> str:
    """An event id as two deliveries of one event agree on it: a null token is no id, and
    `1.0` (a float column; pandas turns integers with a gap into floats) is the id 1."""
    # Java writes a double from 1e7 to 1e16 as `2.026103E7` (the attribute JSON of Spark
    # before it read Parquet doubles as DuckDB's text): an integral one is its whole
    # number, as DuckDB's `20261030.0` is. Only that spelling: `1E5`, `0e12` stay ids.
    scientific = f"regexp_matches({given}, '^-?[1-9][.][0-9]+E([7-9]|1[0-5])$')"
    number = f"TRY_CAST({given} AS DOUBLE)"
    return (f"CASE WHEN {null_token_sql(given)} THEN NULL "
            f"WHEN strpos({given}, '.') > 0 AND regexp_matches({given}, '^-?[0-9]+[.]0+$') "
            f"THEN regexp_replace({given}, '[.]0+$', '') "
            f"WHEN {scientific} AND {number} = floor({number}) "
            f"THEN CAST(CAST({number} AS BIGINT) AS VARCHAR) ELSE {given} END")


def replaced_events_sql(target: str, file_id: int, source: str) -> str:
    """`target(file_id, row_number, reason, detail)`: the events an events file with event
    ids replaces: a stored event of its source with an id the file carries again
    ('superseded': a corrected re-delivery replaces, it does not add), and a row of the
    file whose id an earlier row of the file has ('duplicate_event_id': the first wins)."""
    same = same_event_id_sql("given")
    return f"""
        CREATE OR REPLACE TEMP TABLE {target} AS
        WITH fresh AS MATERIALIZED (
            SELECT * FROM (
                SELECT row_number, {same} AS event_id
                FROM (SELECT row_number, {event_id_sql("n")} AS given FROM events n
                      WHERE n.file_id = {int(file_id)}))
            WHERE event_id IS NOT NULL),
        firsts AS (SELECT event_id, min(row_number) AS first_row FROM fresh GROUP BY event_id)
        SELECT o.file_id, o.row_number, 'superseded' AS reason,
               'replaced by file ' || {int(file_id)} AS detail
        FROM (SELECT file_id, row_number, {event_id_sql("o")} AS given FROM events o
              WHERE o.source = {literal(source)} AND o.file_id < {int(file_id)}) o
        WHERE {same} IN (SELECT event_id FROM firsts)
        UNION ALL
        SELECT {int(file_id)}, f.row_number, 'duplicate_event_id',
               'event_id ' || f.event_id || ' already on row ' || d.first_row
        FROM fresh f JOIN firsts d ON d.event_id = f.event_id AND f.row_number <> d.first_row"""


def remove_replaced_events_sql(replaced: str, *, at: dt.datetime) -> list[str]:
    """The events in `replaced` leave `events` for rejects, whole, so nothing is lost."""
    whole_event = whole_row_json_sql("e", EVENTS_TABLE_COLUMNS)
    return [
        f"""INSERT INTO rejects
            SELECT e.file_id, e.source, 'events', e.row_number, r.reason, r.detail,
                   {whole_event}, {ts_literal(at)}
            FROM events e JOIN {replaced} r
              ON r.file_id = e.file_id AND r.row_number = e.row_number""",
        f"""DELETE FROM events WHERE EXISTS (SELECT 1 FROM {replaced} r
              WHERE r.file_id = events.file_id AND r.row_number = events.row_number)""",
    ]


def insert_event_rejects_sql(rows_sql: str, fields: dict, all_columns: list[str],
                             file_id: int, source: str, *, at: dt.datetime) -> str:
    base = _base_events_sql(rows_sql, fields, f"{struct_json_sql(all_columns)} AS raw")
    return f"""
        INSERT INTO rejects
        SELECT {file_id}, {literal(source)}, 'events', row_number, reason,
               CASE WHEN reason = 'repeated_header' THEN {literal(REPEATED_HEADER_DETAIL)}
               END, raw, {ts_literal(at)}
        FROM (SELECT row_number, {fields['reason']} AS reason, raw FROM ({base}))
        WHERE reason IS NOT NULL"""


def whole_file_reject_sql(rows_sql: str, all_columns: list[str], file_id: int, source: str,
                          kind: str, reason: str, detail: str, *, at: dt.datetime) -> str:
    """Every row of a file that cannot be used as a whole (e.g. no identifier columns)."""
    return f"""
        INSERT INTO rejects
        SELECT {file_id}, {literal(source)}, {literal(kind)}, row_number, {literal(reason)},
               {literal(detail)}, {struct_json_sql(all_columns)}, {ts_literal(at)}
        FROM ({rows_sql})"""
