"""City and province of persons: official names whatever the spelling, raw values kept,
missing ones filled from the ID card or the mobile prefix (identity/places.py)."""

from __future__ import annotations

import subprocess
import sys

import duckdb
import pytest

from leadctl.identity.places import (
    official_name,
    place_key,
    place_key_sql,
    place_rows,
    short_name,
)
from tests.conftest import SAMPLE_INBOX, Cli, write

LEADS = """lead_id,phone,id_card,city,province
A1,13812340001,,上海,
A2,13812340002,,上海市,
A3,13812340003,,Shanghai,
A4,13812340004,,SH,
A5,13812340005,, shanghai ,
B1,13812340006,,深圳,
B2,13812340007,,广西,
C1,13812340008,44030519900101123X,,
C2,13712340013,,,
C3,15912340012,,Atlantis,江苏
C4,18912340009,450102198502034568,,
"""
COLUMNS = "city, province, city_raw, province_raw, city_source, province_source"


@pytest.fixture(scope="module")
def places(tmp_path_factory) -> Cli:
    tmp = tmp_path_factory.mktemp("places")
    cli = Cli(tmp / "ws.duckdb")
    assert cli("ingest", write(tmp / "web.csv", LEADS)).exit_code == 0
    assert cli("resolve").exit_code == 0
    return cli


def test_each_spelling_and_fill_in_with_its_source(places):
    con = duckdb.connect(str(places.db), read_only=True)
    rows = con.execute(f"SELECT l.lead_id, {COLUMNS} FROM persons JOIN person_leads "
                       "USING (person_id) JOIN (SELECT lead_key, lead_id FROM leads) l "
                       "USING (lead_key) ORDER BY l.lead_id").fetchall()
    con.close()
    shanghai = ("上海市", "上海市")
    assert rows == [
        ("A1", *shanghai, "上海", None, "given", "given"),
        ("A2", *shanghai, "上海市", None, "given", "given"),
        ("A3", *shanghai, "Shanghai", None, "given", "given"),
        ("A4", *shanghai, "SH", None, "given", "given"),
        ("A5", *shanghai, "shanghai", None, "given", "given"),
        ("B1", "深圳市", "广东省", "深圳", None, "given", "given"),  # a city implies its province
        # a city cell naming a province; the phone's city (北京) disagrees with it: no city
        ("B2", None, "广西壮族自治区", "广西", None, None, "given"),
        ("C1", "深圳市", "广东省", None, None, "id_card", "id_card"),  # area code 4403
        ("C2", "东莞市", "广东省", None, None, "phone", "phone"),  # mobile prefix 1371234
        # unrecognised city; the phone's (云南省) disagrees with the given province
        ("C3", None, "江苏省", "Atlantis", "江苏", None, "given"),
        ("C4", "南宁市", "广西壮族自治区", None, None, "id_card", "id_card"),  # card before phone
    ]


def resolved_places(tmp_path, leads: str, order: str) -> list[tuple]:
    """The persons' places after ingesting `leads` (CSV text) into a new workspace."""
    cli = Cli(tmp_path / "ws.duckdb")
    assert cli("ingest", write(tmp_path / "web.csv", leads)).exit_code == 0
    assert cli("resolve").exit_code == 0
    with duckdb.connect(str(cli.db), read_only=True) as con:
        return con.execute(f"SELECT {COLUMNS} FROM persons ORDER BY {order}").fetchall()


def test_a_city_is_never_placed_in_another_province(tmp_path):
    """Survivorship takes each field from its own lead (the newest city, the newest
    province given), and a row may contradict itself: the ID card, else the mobile
    prefix, says which of the two stands; the city by default."""
    leads = ("lead_id,phone,id_card,city,province,created_at\n"
             "E1,13812340020,,天津,天津,2026-10-01\n"
             "E2,13812340020,,上海,,2026-10-05\n"  # the same person, a newer city only
             "F1,13812340021,,上海,江苏,2026-10-01\n"  # a 江苏 mobile prefix
             "G1,,110105199001011232,朝阳,北京,2026-10-01\n")  # 辽宁's 朝阳市; a 北京 card
    assert resolved_places(tmp_path, leads, "city_raw, province_raw") == [
        ("上海市", "上海市", "上海", "天津", "given", "given"),
        ("连云港市", "江苏省", "上海", "江苏", "phone", "given"),
        ("北京市", "北京市", "朝阳", "北京", "id_card", "given")]


def test_without_card_or_prefix_the_city_stands_with_its_province(tmp_path):
    """Neither an ID card nor a mobile number says which stands: the city does, with its
    province (not the given province without a city)."""
    leads = ("lead_id,email,city,province,created_at\n"
             "R1,r1@x.com,朝阳,北京,2026-10-01 10:00\n"
             "R2,r2@x.com,苏州,广东,2026-10-01 10:00\n"
             "R3,r3@x.com,苏州,江苏,2026-10-01 10:00\n")  # no conflict: unchanged
    assert resolved_places(tmp_path, leads, "province_raw, city_raw") == [
        ("朝阳市", "辽宁省", "朝阳", "北京", "given", "given"),
        ("苏州市", "江苏省", "苏州", "广东", "given", "given"),
        ("苏州市", "江苏省", "苏州", "江苏", "given", "given")]


def test_find_sees_official_names(places):
    assert places("find", "city = '上海市'", "--count").stdout == "5\n"
    assert places("find", "province = '广东省'", "--count").stdout == "3\n"


def test_find_with_another_spelling_says_the_official_name(places):
    result = places("find", "city = 'Shanghai' or province in ('粤', 'nowhere')", "--count")
    assert (result.exit_code, result.stdout, result.stderr) == (
        0, "0\n", "warning: no person matched; cities and provinces are stored by their "
        "official names: 'Shanghai' is '上海市', '粤' is '广东省'\n")
    assert places("find", "city = '上海市'", "--json").json().get("hint") is None


def test_sample_every_shanghai_spelling_is_one_city(tmp_path):
    cli = Cli(tmp_path / "ws.duckdb")
    assert cli("run", "--inbox", SAMPLE_INBOX, "--as-of", "2026-11-01").exit_code == 0
    assert cli("find", "city = '上海市'", "--count").stdout == "216\n"
    con = duckdb.connect(str(cli.db), read_only=True)
    spellings = dict(con.execute(
        "SELECT city_raw, count(*) FROM persons WHERE city = '上海市' GROUP BY city_raw"
        ).fetchall())
    leads_in_shanghai = con.execute(  # persons with a lead in Shanghai, any spelling
        "SELECT count(DISTINCT pl.person_id) FROM leads l JOIN person_leads pl USING (lead_key) "
        "WHERE lower(trim(l.city)) IN ('上海', '上海市', 'shanghai', 'sh')").fetchone()[0]
    con.close()
    assert spellings == {"上海": 149, "上海市": 25, "Shanghai": 25, "shanghai": 7, "SH": 10}
    assert leads_in_shanghai == 216


@pytest.mark.parametrize(("name", "short"), [
    ("上海市", "上海"), ("广西壮族自治区", "广西"), ("内蒙古自治区", "内蒙古"),
    ("新疆维吾尔自治区", "新疆"), ("恩施土家族苗族自治州", "恩施"),
    ("巴音郭楞蒙古自治州", "巴音郭楞"),
    ("大兴安岭地区", "大兴安岭"), ("香港特别行政区", "香港"),
])
def test_short_names(name, short):
    assert short_name(name) == short


def test_a_place_is_keyed_in_python_as_in_sql():
    spaced = "\u3000上海\u00a0"  # an ideographic space and an NBSP: DuckDB's trim takes both
    assert official_name(spaced) == "上海市"
    with duckdb.connect() as con:
        assert con.execute(f"SELECT {place_key_sql('?')}", [spaced]).fetchone()[0] == (
            place_key(spaced))


def test_alias_table():
    table = {(kind, key): (name, province) for kind, key, name, province in place_rows()}
    assert place_key(" Xi'an ") == "xian" and table[("city", "xian")] == ("西安市", "陕西省")
    assert table[("city", "吉林")] == ("吉林市", "吉林省")  # the city, in a city cell
    assert table[("province", "吉林")] == ("吉林省", "吉林省")
    assert ("city", "海南") not in table  # 海南藏族自治州's short name is the province's
    assert table[("area", "3101")] == ("上海市", "上海市")
    assert table[("area", "44")] == (None, "广东省")


def test_no_prefix_to_place_costs_no_geocoder():
    # most nights place nobody by phone: the geocoder's data (0.35 s to import) stays unread
    code = ("import sys; from leadctl.identity.places import geocode_prefixes as g; "
            "t = g([]); print(t.column_names, t.num_rows, 'phonenumbers.geocoder' in sys.modules); "
            "print(g(['+861380013']).to_pylist())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out == ["['prefix', 'city', 'province'] 0 False",
                   "[{'prefix': '+861380013', 'city': '北京市', 'province': '北京市'}]"]


def test_the_place_hint_names_the_kind_of_place_the_field_holds():
    from leadctl.views.find import place_hint

    assert place_hint("province = '吉林' or city = '吉林'") == {
        "hint": "no person matched; cities and provinces are stored by their official "
                "names: '吉林' is '吉林市', '吉林' is '吉林省'"}
    assert place_hint("source = 'GZ' or name = '上海'") == {}  # no place fields
    assert place_hint("'Shanghai' = city or city = 'HK'") == {
        "hint": "no person matched; cities and provinces are stored by their official "
                "names: 'Shanghai' is '上海市', 'HK' is the province '香港特别行政区'"}
