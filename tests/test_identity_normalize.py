"""Identifier normalisation: every accepted form links, invalid values never do."""

from __future__ import annotations

import duckdb
import pytest

from leadctl.identity import normalize
from tests.test_identity_support import clusters, groups, identifier, resolve, workspace

PHONE_FORMS = [
    ("plain", "13812345678"),
    ("spaces", "138 1234 5678"),
    ("dashes", "138-1234-5678"),
    ("dots", "138.1234.5678"),
    ("plus86", "+86 138 1234 5678"),
    ("plus86 tight", "+8613812345678"),
    ("0086", "0086 13812345678"),
    ("86", "8613812345678"),
    ("paren +86", "(+86)13812345678"),
    ("full-width paren", "（+86）13812345678"),
    ("full-width digits", "１３８１２３４５６７８"),
    ("spreadsheet .0", "13812345678.0"),
    ("spreadsheet exponent", "1.3812345678E+10"),
    ("trunk 0", "013812345678"),
    ("+86 (0)", "+86 (0)138 1234 5678"),
    # Unicode space separators (Zs): typeset text groups a number with thin spaces
    ("thin spaces", "138\u20091234\u20095678"),
    ("narrow no-break spaces", "138\u202f1234\u202f5678"),
    ("tabs", "138\t1234\t5678"),
]


@pytest.mark.parametrize(("form", "raw"), PHONE_FORMS, ids=[f for f, _ in PHONE_FORMS])
def test_each_phone_form_links_to_the_plain_number(form, raw):
    ws = workspace({"lead_id": "A", "phone": "13812345678"}, {"lead_id": "B", "phone": raw},
                   {"lead_id": "C", "phone": "13912345678"})
    resolve(ws)
    assert clusters(ws) == groups({"A", "B"}, {"C"})
    assert identifier(ws, "B", "phone") == {"value": "+8613812345678", "status": "ok",
                                            "records": 2, "reason": None}


@pytest.mark.parametrize(("a", "b", "e164"), [
    ("+852 9123 4567", "00852 91234567", "+85291234567"),
    ("+1 (415) 555-0123", "+14155550123", "+14155550123"),
    ("010-12345678", "(010)12345678", "+861012345678"),
])
def test_foreign_numbers_and_landlines_are_kept_as_themselves(a, b, e164):
    ws = workspace({"lead_id": "A", "phone": a}, {"lead_id": "B", "phone": b})
    resolve(ws)
    assert clusters(ws) == groups({"A", "B"})
    assert identifier(ws, "A", "phone")["value"] == e164


@pytest.mark.parametrize("raw", ["139oslb5678", "1391234567", "14012345678", "1.38123E+10",
                                 "+852 123", "abc"])
def test_invalid_phones_never_link(raw):
    ws = workspace({"lead_id": "A", "phone": raw}, {"lead_id": "B", "phone": raw})
    resolve(ws)
    assert clusters(ws) == groups({"A"}, {"B"})
    got = identifier(ws, "A", "phone")
    assert (got["value"], got["status"], got["reason"]) == (
        None, "invalid", "not a valid phone number")


def test_a_cell_with_two_phones_links_through_both():
    ws = workspace({"lead_id": "A", "phone": "13812345678/13987654321"},
                   {"lead_id": "B", "phone": "13812345678"},
                   {"lead_id": "C", "phone": "139 8765 4321"},
                   {"lead_id": "D", "phone": "138-1234-5678 / 13812345678"})
    resolve(ws)
    assert clusters(ws) == groups({"A", "B", "C", "D"})
    rows = ws.rows("SELECT raw_value, value FROM lead_identifiers JOIN leads USING (lead_key) "
                   "WHERE lead_id = 'D'")
    assert rows == [{"raw_value": "138-1234-5678", "value": "+8613812345678"}]


def test_only_ascii_letters_are_lower_cased_so_both_engines_key_alike():
    """Spark's lower() maps `İ` to `i̇` (two letters), DuckDB's to `i`: `İabc` linked to
    `iabc` on one engine only. Non-ASCII letters keep their case on both; a full-width
    `ＡＢＣ＠ＱＱ．ＣＯＭ`-style value still reads as ASCII first."""
    ws = workspace({"lead_id": "A", "wechat": "İABC"}, {"lead_id": "B", "wechat": "iabc"},
                   {"lead_id": "C", "wechat": "İabc "},
                   {"lead_id": "D", "email": "\u3000ABC＠QQ．COM"},
                   {"lead_id": "E", "email": "abc@qq.com"})
    resolve(ws)
    assert clusters(ws) == groups({"A", "C"}, {"B"}, {"D", "E"})
    assert identifier(ws, "A", "wechat")["value"] == "İabc"


def test_emails_wechat_and_device_ids_are_trimmed_and_lower_cased():
    ws = workspace(
        {"lead_id": "A", "email": " Zhang.Wei@QQ.com ", "wechat": "WX_Abc123"},
        {"lead_id": "B", "email": "zhang.wei@qq.com"},
        {"lead_id": "C", "wechat": "wx_abc123 ",
         "device_id": "ABCDEF01-2345-4678-9ABC-DEF012345678"},
        {"lead_id": "D", "device_id": "abcdef01-2345-4678-9abc-def012345678"},
        {"lead_id": "E", "email": "mailto:other@163.com"},
        {"lead_id": "F", "email": "OTHER@163.COM"},
        {"lead_id": "G", "email": "not an email"},
        {"lead_id": "H", "email": "not an email"},
    )
    resolve(ws)
    assert clusters(ws) == groups({"A", "B", "C", "D"}, {"E", "F"}, {"G"}, {"H"})
    assert identifier(ws, "A", "email")["value"] == "zhang.wei@qq.com"
    assert identifier(ws, "G", "email") == {"value": None, "status": "invalid", "records": None,
                                            "reason": "not a valid e-mail address"}


def test_id_cards_are_checked_by_their_check_digit():
    ws = workspace(
        {"lead_id": "A", "id_card": "11010519491231002X"},
        {"lead_id": "B", "id_card": "11010519491231002x"},
        {"lead_id": "C", "id_card": "110105491231002"},  # 15 digits: upgraded to 18
        {"lead_id": "D", "id_card": "110105194912310021"},  # wrong check digit
        {"lead_id": "E", "id_card": "110105194912310021"},
    )
    resolve(ws)
    assert clusters(ws) == groups({"A", "B", "C"}, {"D"}, {"E"})
    assert identifier(ws, "C", "id_card")["value"] == "11010519491231002X"
    assert identifier(ws, "D", "id_card") == {
        "value": None, "status": "invalid", "records": None,
        "reason": "not an 18-digit ID card with a valid check digit"}


def test_sql_phone_normalisation_matches_the_python_one():
    values = [raw for _, raw in PHONE_FORMS] + [
        "139oslb5678", "1391234567", "+852 9123 4567", "+1 (415) 555-0123", "010-12345678",
        "00000000000", "12345", "4008001234", "+86 10 1234 5678", "1.38123E+10", "86-10-12345678",
        # whitespace that is no space separator (line separator, a control): no grouping
        "138\u20281234\u20285678", "138\x1c1234\x1c5678"]
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT unnest(?::VARCHAR[]) AS raw", [values])
    cells = "SELECT raw AS lead_key, raw AS raw_value, false AS split FROM t"
    sql = normalize.keyed_sql("phone", cells, "lead_key", normalize.cn_mobile_pattern())
    rows = con.execute(f"SELECT lead_key, key_value, valid FROM ({sql})").fetchall()
    assert len(rows) == len(values) == 31
    decided = {raw: key if valid else None for raw, key, valid in rows if valid is not None}
    assert decided == {**{raw: "+8613812345678" for _, raw in PHONE_FORMS},
                       "139oslb5678": None, "1.38123E+10": None,
                       "138\u20281234\u20285678": None, "138\x1c1234\x1c5678": None}
    # Undecided in SQL (not a mainland mobile): the cleaned value goes to phonenumbers.
    leftovers = {raw: key for raw, key, valid in rows if valid is None}
    assert leftovers == {
        "1391234567": "1391234567", "+852 9123 4567": "+85291234567",
        "+1 (415) 555-0123": "+14155550123", "010-12345678": "01012345678",
        "00000000000": "00000000000", "12345": "12345", "4008001234": "4008001234",
        "+86 10 1234 5678": "+861012345678", "86-10-12345678": "861012345678"}
    outcome = {"1391234567": None, "+852 9123 4567": "+85291234567",
               "+1 (415) 555-0123": "+14155550123", "010-12345678": "+861012345678",
               "00000000000": None, "12345": None, "4008001234": "+864008001234",
               "+86 10 1234 5678": "+861012345678", "86-10-12345678": "+861012345678"}
    assert {raw: normalize.parse_phone(key) for raw, key in leftovers.items()} == outcome
    # and the Python normalisation agrees, value by value
    assert {raw: normalize.normalize_phone(raw) for raw in values} == {**decided, **outcome}


def test_id_card_check_digit_sql_matches_iso_7064():
    con = duckdb.connect()
    first17 = "11010519491231002"
    got = con.execute(f"SELECT {normalize.id_card_check_digit_sql(repr(first17))}").fetchone()[0]
    assert got == normalize.id_card_check_digit(first17) == "X"


def test_cn_prefix_requires_the_country_code_outside_cn():
    assert normalize.cn_prefix(True) == r"(?:\+86|0086|86)?0?"
    assert normalize.cn_prefix(False) == r"(?:\+86|0086)0?"
    assert normalize.normalize_phone("13812345678", region="HK") is None
    assert normalize.normalize_phone("+86 138 1234 5678", region="HK") == "+8613812345678"


def test_values_table_of_nothing_is_an_empty_query():
    con = duckdb.connect()
    assert con.execute(normalize.values_table_sql([])).fetchall() == []
    assert con.execute(normalize.values_table_sql([("r", "phone", "1'3")])).fetchall() == [
        ("r", "phone", "1'3")]
