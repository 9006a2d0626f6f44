"""Identifier normalisation: SQL expression builders plus `phonenumbers` for leftovers.

Every identifier value gets a `key_value` and a `valid` flag: the key is the
normalised identifier when valid (E.164 phone, lower-case e-mail/WeChat/device
id, 18-digit ID card), else the raw text tidied (full-width → ASCII, separators
removed, case folded) — what the blocklist compares, valid or not.

Phones: SQL turns every spelling of a plain CN mobile into E.164
(`+8613812345678`) and rejects what cannot be a number (valid = false); only the
distinct remaining values (valid = NULL: landlines, foreign numbers) go through
`phonenumbers`, in Python, moved out and back in through Arrow
(`normalize_phone_leftovers`). `normalize_phone` is the same pipeline for one
value (lookups, tests).
"""

from __future__ import annotations

import re
import string
from typing import Any

from leadctl.sqltext import literal, null_token_sql

# phonenumbers' CN mobile pattern (metadata 9.x). `resolve` reads the installed
# library's own pattern at run time (`cn_mobile_pattern()`); this is the fallback.
CN_MOBILE_PATTERN = (r"1(?:610\d|740[0-5])\d{6}|1(?:[38]\d|4[57]|[59][0-35-9]|6[25-7]|"
                     r"7[0-35-8])\d{8}")
# What a multi-value cell separates its values with ("138…/139…", "a@x.com; b@y.com").
MULTI_VALUE_SEPARATORS = "[,;/|、，；]"
# The Unicode space separators (Zs) but ' ': NBSP, the thin and narrow no-break spaces
# typeset text groups a number with, the ideographic space of Chinese input. Every reader
# takes them as ' ' (through FULL_WIDTH_FROM), in SQL and in Python alike: written out, as
# RE2's `\s` is ASCII only and Python's any Unicode whitespace.
UNICODE_SPACES = "\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009" \
                 "\u200a\u202f\u205f\u3000"
FULL_WIDTH_FROM = "０１２３４５６７８９＋（）－．＠ｘＸ" + UNICODE_SPACES
FULL_WIDTH_TO = "0123456789+()-.@xX" + " " * len(UNICODE_SPACES)
# What a phone may be grouped by once read through FULL_WIDTH_FROM: the ASCII whitespace
# (written out: `\s` is not the same set in RE2, Java and Python), brackets, dots, dashes.
# One pattern for the SQL and its Python mirror.
PHONE_SEPARATORS = r"[ \t\n\f\r()\[\].\-]"
_EMAIL_RE = (r"[a-z0-9_%+\-]+(\.[a-z0-9_%+\-]+)*@([a-z0-9]([a-z0-9\-]*[a-z0-9])?\.)+"
             r"[a-z]{2,}")
ID_CARD_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CARD_CHECK_CHARS = "10X98765432"


def cn_mobile_pattern() -> str:
    """The installed phonenumbers' CN mobile pattern (so SQL and library agree)."""
    try:
        from phonenumbers import PhoneMetadata

        metadata = PhoneMetadata.metadata_for_region("CN")
        return metadata.mobile.national_number_pattern or CN_MOBILE_PATTERN
    except Exception:  # metadata layout changed: the pinned pattern is still right
        return CN_MOBILE_PATTERN


_UPPER, _LOWER = string.ascii_uppercase, string.ascii_lowercase
ASCII_LOWER_TABLE = str.maketrans(_UPPER, _LOWER)


# -- SQL expression builders (pure) --------------------------------------------------------

def ascii_sql(expr: str, lower: bool = False) -> str:
    """Full-width digits/punctuation → ASCII, trimmed (translate only runs on the rare
    values with a non-ASCII character: it is slow). `lower`: with the ASCII letters
    lower-cased, the others kept: Spark's lower() maps a few of them in full (`İ` → `i̇`,
    two letters) where DuckDB maps each alone, and an identifier must key the same on
    both engines (a WeChat id `İabc` would link to `iabc` on one only)."""
    wide = f"trim(translate({expr}, {literal(FULL_WIDTH_FROM)}, {literal(FULL_WIDTH_TO)}))"
    plain = f"trim({expr})"
    if lower:
        wide = f"translate({wide}, {literal(_UPPER)}, {literal(_LOWER)})"
        plain = f"lower({plain})"
    # More bytes than characters: a non-ASCII character (much cheaper than a regex).
    return f"(CASE WHEN strlen({expr}) <> length({expr}) THEN {wide} ELSE {plain} END)"


def phone_clean_sql(expr: str) -> str:
    """Raw phone text → digits with an optional leading '+'.

    Drops spaces, dashes, dots and brackets, a spreadsheet `.0` suffix, and
    expands a full-precision spreadsheet exponent (`1.3812345678E+10`; a shortened
    one such as `1.38123E+10` has lost digits and stays invalid). Values that are
    digits already skip all of it.
    """
    text = ascii_sql(expr)
    exponent = (f"(regexp_full_match({text}, '[0-9]\\.[0-9]+[eE]\\+?[0-9]{{1,2}}') AND "
                f"length(regexp_extract({text}, '\\.([0-9]+)', 1)) = "
                f"CAST(regexp_extract({text}, '[eE]\\+?([0-9]+)', 1) AS INTEGER))")
    return (f"(CASE WHEN regexp_full_match({expr}, '\\+?[0-9]+') THEN {expr} "
            f"WHEN regexp_full_match({text}, '\\+?[0-9]+\\.0+') "
            f"THEN regexp_replace({text}, '\\.0+$', '') "
            f"WHEN {exponent} THEN CAST(CAST(CAST({text} AS DOUBLE) AS BIGINT) AS VARCHAR) "
            f"ELSE regexp_replace({text}, {literal(PHONE_SEPARATORS)}, '', 'g') END)")


def cn_prefix(cn_default: bool) -> str:
    """How a CN number may start: with the default region CN the country code is optional."""
    return r"(?:\+86|0086|86)?0?" if cn_default else r"(?:\+86|0086)0?"


def cn_mobile_national_sql(clean: str, mobile_pattern: str = CN_MOBILE_PATTERN,
                           cn_default: bool = True) -> str:
    """The 11-digit CN mobile in a cleaned phone (+86/0086/86/0 prefixes allowed), or ''."""
    pattern = "^" + cn_prefix(cn_default) + "(" + mobile_pattern + ")$"
    return f"regexp_extract({clean}, {literal(pattern)}, 1)"


def phone_valid_sql(clean: str, national: str, cn_default: bool = True) -> str:
    """TRUE (a CN mobile), FALSE (cannot be a number, or a CN 1xx… that is not a
    mobile), or NULL: undecided, for phonenumbers."""
    eleven = literal(cn_prefix(cn_default) + "1[0-9]{10}")
    return (f"CASE WHEN {national} <> '' THEN true "
            f"WHEN NOT regexp_full_match({clean}, '\\+?[0-9]{{5,17}}') THEN false "
            f"WHEN regexp_full_match({clean}, {eleven}) THEN false END")


def ascii_lower(text: str) -> str:
    """Python mirror of `ascii_sql(…, lower=True)`'s lower-casing (a lookup keys as
    resolve did)."""
    return text.translate(ASCII_LOWER_TABLE)


def email_clean_sql(expr: str) -> str:
    text = ascii_sql(expr, lower=True)
    return f"(CASE WHEN starts_with({text}, 'mailto:') THEN substr({text}, 8) ELSE {text} END)"


def email_valid_sql(clean: str) -> str:
    return f"regexp_full_match({clean}, {literal(_EMAIL_RE)})"


def lower_trim_sql(expr: str) -> str:
    """WeChat ids and device ids: trimmed, lower-cased (ASCII letters)."""
    return ascii_sql(expr, lower=True)


def id_card_clean_sql(expr: str) -> str:
    return f"upper(replace({ascii_sql(expr)}, ' ', ''))"


def id_card_check_digit_sql(first17: str) -> str:
    """ISO 7064 MOD 11-2 check character of the 17 digits in `first17`."""
    terms = " + ".join(f"{w} * CAST(substr({first17}, {i + 1}, 1) AS INTEGER)"
                       for i, w in enumerate(ID_CARD_WEIGHTS))
    return f"substr('{ID_CARD_CHECK_CHARS}', CAST(({terms}) % 11 AS INTEGER) + 1, 1)"


def id_card_18_valid_sql(clean: str) -> str:
    # CASE, not AND: the check digit may only be computed over 17 digits.
    return (f"(CASE WHEN regexp_full_match({clean}, '[0-9]{{17}}[0-9X]') "
            f"THEN {id_card_check_digit_sql(clean)} = substr({clean}, 18, 1) ELSE false END)")


def id_card_15_sql(clean: str) -> str:
    """A 15-digit (pre-1999) ID card upgraded to 18 digits: '19' + check digit."""
    upgraded = f"(substr({clean}, 1, 6) || '19' || substr({clean}, 7, 9))"
    return f"{upgraded} || {id_card_check_digit_sql(upgraded)}"


# A cell holds several values only when each side of a separator looks like one.
_NOT_SEP = MULTI_VALUE_SEPARATORS.replace("[", "[^", 1)
SPLIT_WHEN = {  # phones: five digits or more (any spelling) on each side
    "phone": f"([0-9]{_NOT_SEP}*){{5}}{MULTI_VALUE_SEPARATORS}.*([0-9]{_NOT_SEP}*){{5}}",
    "email": f"@.*{MULTI_VALUE_SEPARATORS}.*@",
}


def cell_rows_sql(source: str, key: str, column: str, id_type: str) -> str:
    """(key, raw_value, split): one row per value of `column`; a cell holding several
    values (phones and e-mails only) gives one row per distinct part, split = true."""
    # A null token (`nan`, `N/A`: what exports write for nothing) is no value, as ingest
    # reads it, whatever the blocklist says: two leads never link on it.
    present = f"{column} IS NOT NULL AND NOT {null_token_sql(column)}"
    if id_type not in SPLIT_WHEN:
        return f"SELECT {key}, {column} AS raw_value, false AS split FROM {source} " \
               f"WHERE {present}"
    seps = literal(MULTI_VALUE_SEPARATORS)
    return f"""
        SELECT {key}, cell AS raw_value, false AS split FROM (
            SELECT {key}, {column} AS cell, CASE WHEN regexp_matches({column}, {seps})
                THEN regexp_matches({column}, {literal(SPLIT_WHEN[id_type])}) ELSE false END
                AS multi
            FROM {source} WHERE {present}) WHERE NOT multi
        UNION ALL
        SELECT DISTINCT {key}, trim(piece), true FROM (
            SELECT {key}, unnest(regexp_split_to_array({column}, {seps})) AS piece
            FROM {source}
            WHERE {column} IS NOT NULL AND regexp_matches({column}, {seps})
              AND regexp_matches({column}, {literal(SPLIT_WHEN[id_type])}))
        WHERE trim(piece) <> '' AND NOT {null_token_sql('trim(piece)')}"""


def keyed_sql(id_type: str, cells: str, key: str = "lead_key",
              mobile_pattern: str = CN_MOBILE_PATTERN, cn_default: bool = True) -> str:
    """(key, id_type, raw_value, split, key_value, valid) over `cells` (key, raw_value,
    split): `key_value` is the normalised value when valid, else the cleaned text;
    `valid` is NULL for phones left to phonenumbers."""
    t = literal(id_type)
    if id_type == "phone":
        # Most phones are a bare 11-digit mobile: one regex decides them.
        plain = (f"regexp_full_match(raw_value, {literal(mobile_pattern)})" if cn_default
                 else "false")
        national = (f"CASE WHEN plain THEN raw_value ELSE "
                    f"{cn_mobile_national_sql('clean', mobile_pattern, cn_default)} END")
        return f"""
            SELECT {key}, {t} AS id_type, raw_value, split,
                CASE WHEN national <> '' THEN '+86' || national ELSE clean END AS key_value,
                {phone_valid_sql('clean', 'national', cn_default)} AS valid
            FROM (SELECT *, {national} AS national FROM (
                SELECT *, CASE WHEN plain THEN raw_value ELSE {phone_clean_sql('raw_value')} END
                    AS clean
                FROM (SELECT {key}, raw_value, split, {plain} AS plain FROM ({cells}))))"""
    if id_type == "email":
        return f"""
            SELECT {key}, {t} AS id_type, raw_value, split, clean AS key_value,
                {email_valid_sql('clean')} AS valid
            FROM (SELECT {key}, raw_value, split, {email_clean_sql('raw_value')} AS clean
                  FROM ({cells}))"""
    if id_type == "id_card":
        return f"""
            SELECT {key}, {t} AS id_type, raw_value, split,
                CASE WHEN NOT valid18 AND fifteen THEN {id_card_15_sql('clean')} ELSE clean END
                    AS key_value,
                valid18 OR fifteen AS valid
            FROM (SELECT *, {id_card_18_valid_sql('clean')} AS valid18,
                         regexp_full_match(clean, '[1-9][0-9]{{14}}') AS fifteen FROM (
                  SELECT {key}, raw_value, split, {id_card_clean_sql('raw_value')} AS clean
                  FROM ({cells})))"""
    return f"""
        SELECT {key}, {t} AS id_type, raw_value, split, clean AS key_value, clean <> '' AS valid
        FROM (SELECT {key}, raw_value, split, {lower_trim_sql('raw_value')} AS clean
              FROM ({cells}))"""


# -- table builders --------------------------------------------------------------------------

def identifiers_sql(target: str, leads: str, id_types: tuple[str, ...],
                    mobile_pattern: str = CN_MOBILE_PATTERN, cn_default: bool = True) -> str:
    """`target(lead_key, id_type, raw_value, split, key_value, valid)`: every identifier
    value of every lead."""
    parts = [keyed_sql(t, cell_rows_sql(leads, "lead_key", t, t), "lead_key",
                       mobile_pattern, cn_default) for t in id_types]
    return f"CREATE OR REPLACE TEMP TABLE {target} AS " + "\nUNION ALL\n".join(parts)


def keyed_values_sql(target: str, values_sql: str, mobile_pattern: str = CN_MOBILE_PATTERN,
                     cn_default: bool = True) -> str:
    """`target(ref, id_type, raw_value, split, key_value, valid)` for (ref, id_type, raw)
    rows such as identity.yaml's blocklist or event subjects' phones."""
    parts = []
    for id_type in ("phone", "email", "wechat", "device_id", "id_card"):
        cells = (f"SELECT ref, raw AS raw_value, false AS split FROM ({values_sql}) "
                 f"WHERE id_type = {literal(id_type)} AND raw IS NOT NULL")
        parts.append(keyed_sql(id_type, cells, "ref", mobile_pattern, cn_default))
    return f"CREATE OR REPLACE TEMP TABLE {target} AS " + "\nUNION ALL\n".join(parts)


def values_table_sql(rows: list[tuple[str, str, str]]) -> str:
    """(ref, id_type, raw) literal rows as a query."""
    if not rows:
        return ("SELECT CAST(NULL AS VARCHAR) AS ref, CAST(NULL AS VARCHAR) AS id_type, "
                "CAST(NULL AS VARCHAR) AS raw WHERE false")
    body = ", ".join(f"({literal(a)}, {literal(b)}, {literal(c)})" for a, b, c in rows)
    return f"SELECT * FROM (VALUES {body}) AS v(ref, id_type, raw)"


def leftover_phones_sql(tables: list[str]) -> str:
    """Distinct cleaned phones nobody decided yet (valid IS NULL)."""
    union = " UNION ".join(f"SELECT key_value AS clean FROM {t} "
                           "WHERE id_type = 'phone' AND valid IS NULL" for t in tables)
    return f"SELECT clean FROM ({union}) ORDER BY clean"


def apply_leftovers_sql(table: str, results: str) -> str:
    return f"""
        UPDATE {table} SET key_value = coalesce(r.value, {table}.key_value),
            valid = r.value IS NOT NULL
        FROM {results} r
        WHERE {table}.id_type = 'phone' AND {table}.valid IS NULL
          AND {table}.key_value = r.clean"""


def dedupe_split_sql(table: str) -> str:
    """Two parts of one cell that normalise to the same value: keep one row."""
    return f"""
        DELETE FROM {table} WHERE split AND EXISTS (
            SELECT 1 FROM {table} d WHERE d.split AND d.lead_key = {table}.lead_key
              AND d.id_type = {table}.id_type AND d.key_value = {table}.key_value
              AND d.raw_value < {table}.raw_value)"""


# -- Python side: phonenumbers over distinct leftovers ------------------------------------

def parse_phone(clean: str, region: str = "CN") -> str | None:
    """E.164 of a cleaned phone when phonenumbers says it is a valid number."""
    import phonenumbers

    try:
        number = phonenumbers.parse(clean, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_phone_leftovers(ws: Any, tables: list[str], region: str = "CN") -> int:
    """Runs phonenumbers over the distinct undecided phones of `tables` (Arrow out of
    DuckDB, Arrow back in) and writes the results into each table. Returns how many
    distinct values it parsed."""
    import pyarrow as pa

    values = ws.arrow(leftover_phones_sql(tables)).column("clean").to_pylist()
    if not values:
        return 0
    results = pa.table({"clean": pa.array(values, pa.string()),
                        "value": pa.array([parse_phone(v, region) for v in values],
                                          pa.string())})
    ws.register("_oneid_phone_results", results)
    try:
        for table in tables:
            ws.execute(apply_leftovers_sql(table, "_oneid_phone_results"))
    finally:
        ws.unregister("_oneid_phone_results")
    return len(values)


# -- Python mirror of the SQL (one value at a time: lookups and tests) -----------------------

# Full-width digits, signs and spaces as ASCII (as the SQL's translate): lookups too.
FULL_WIDTH_TABLE = str.maketrans(FULL_WIDTH_FROM, FULL_WIDTH_TO)
_EXPONENT = re.compile(r"[0-9]\.([0-9]+)[eE]\+?([0-9]{1,2})")
_DIGITS = re.compile(r"\+?[0-9]+")
_SUFFIX = re.compile(r"\+?[0-9]+\.0+")
_SEPARATORS = re.compile(PHONE_SEPARATORS)
_NUMBER = re.compile(r"\+?[0-9]{5,17}")


def clean_phone(text: str) -> str:
    if _DIGITS.fullmatch(text):
        return text
    text = text.translate(FULL_WIDTH_TABLE).strip(" ")
    if _SUFFIX.fullmatch(text):
        return text[:text.index(".")]
    exp = _EXPONENT.fullmatch(text)
    if exp and len(exp.group(1)) == int(exp.group(2)):
        return str(int(float(text)))
    return _SEPARATORS.sub("", text)


def cn_mobile_national(clean: str, mobile_pattern: str = CN_MOBILE_PATTERN,
                       cn_default: bool = True) -> str | None:
    """The 11-digit CN mobile in a cleaned phone (`clean_phone`), or None: Python mirror of
    `cn_mobile_national_sql` (+86/0086/86 and a trunk 0 allowed)."""
    mobile = re.fullmatch(cn_prefix(cn_default) + "(" + mobile_pattern + ")", clean)
    return mobile.group(1) if mobile else None


def normalize_phone(text: str, region: str = "CN",
                    mobile_pattern: str = CN_MOBILE_PATTERN) -> str | None:
    """One phone text → E.164, or None when it is not a valid number (same rules as SQL)."""
    clean = clean_phone(text)
    prefix = cn_prefix(region.upper() == "CN")
    national = cn_mobile_national(clean, mobile_pattern, region.upper() == "CN")
    if national:
        return "+86" + national
    if not _NUMBER.fullmatch(clean) or re.fullmatch(prefix + "1[0-9]{10}", clean):
        return None
    return parse_phone(clean, region)


def id_card_check_digit(first17: str) -> str:
    total = sum(int(d) * w for d, w in zip(first17, ID_CARD_WEIGHTS, strict=True))
    return ID_CARD_CHECK_CHARS[total % 11]
