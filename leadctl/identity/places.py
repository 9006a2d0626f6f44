"""City and province of the golden record, normalised to the official names of China's
administrative divisions (GB/T 2260: `上海市`, `广东省`, `广州市`).

Survivorship picks a person's raw city and province (kept as `city_raw`,
`province_raw`); they are looked up in a small table of aliases joined in SQL:
- `divisions.csv` (data/): provinces (2-digit codes) and prefecture-level divisions
  (4-digit codes) with their official names; their aliases are the official name and the
  name without its suffix (上海 for 上海市, 广西 for 广西壮族自治区, 恩施 for
  恩施土家族苗族自治州), unless that short name is ambiguous;
- `aliases.csv` (data/): curated pinyin/English names and short forms (Shanghai, SH, 沪);
matched ignoring case, spaces, '-' and apostrophes (`place_key_sql`).
A city cell naming a province (`广东`) gives the province only; a recognised city gives
its province when the province is missing. A city in another province than the given
one is never kept beside it: the ID card (else the mobile prefix) decides which stands
(`_keeps_province`), the city by default. What the row gives is `given`; a missing
(or unrecognised) value is filled from the ID card's area code (first 4 digits: the
prefecture, first 2: the province) — `id_card` — else from the mobile number's prefix
(phonenumbers' Chinese geocoder, called on the distinct 7-digit prefixes that are still
needed) — `phone`. An inferred city is used only when its province agrees with the
province known so far. Sources are in `city_source` / `province_source` (NULL: none).
"""

from __future__ import annotations

import csv
import re
from functools import cache
from pathlib import Path
from typing import Any

from leadctl.sqltext import literal, trimmed

DATA = Path(__file__).parent / "data"
# Separators ignored when matching a place name (full-width space included).
_IGNORED = (" ", "-", "'", "\u3000")
_SUFFIXES = ("特别行政区", "自治区", "自治州", "地区", "省", "市", "盟")
# Peoples named in autonomous regions and prefectures (dropped from their short names).
_PEOPLES = re.compile("(?:" + "|".join((
    "土家族", "景颇族", "傈僳族", "哈尼族", "布依族", "朝鲜族", "蒙古族", "壮族", "回族",
    "藏族", "羌族", "苗族", "彝族", "白族", "傣族", "侗族", "维吾尔", "柯尔克孜", "哈萨克",
    "蒙古")) + ")+$")
MUNICIPALITIES = ("北京市", "天津市", "上海市", "重庆市")


def place_key(text: str) -> str:
    """Python mirror of `place_key_sql`."""
    text = trimmed(text)
    for sep in _IGNORED:
        text = text.replace(sep, "")
    return text.lower()


def place_key_sql(expr: str) -> str:
    """The matching key of a place name: lower case, without spaces, '-', apostrophes."""
    inner = f"trim({expr})"
    for sep in _IGNORED:
        inner = f"replace({inner}, {literal(sep)}, '')"
    return f"lower({inner})"


def short_name(name: str) -> str:
    """The official name without its suffix: 上海市 → 上海, 广西壮族自治区 → 广西."""
    for suffix in _SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix) + 1:
            stem = name[:-len(suffix)]
            if suffix.startswith("自治"):
                shorter = _PEOPLES.sub("", stem)
                stem = shorter if len(shorter) >= 2 else stem
            return stem
    return name


def _rows(name: str) -> list[list[str]]:
    with (DATA / name).open(encoding="utf-8") as f:
        rows = list(csv.reader(line for line in f if not line.startswith("#")))
    return rows[1:]


@cache
def place_rows() -> tuple[tuple[str, str, str | None, str], ...]:
    """(kind, key, name, province) rows: kind `city` and `province` map an alias key to
    the official name (a municipality is both); `area` maps a 2- or 4-digit code."""
    provinces = {code: name for code, name in _rows("divisions.csv") if len(code) == 2}
    cities = {code: name for code, name in _rows("divisions.csv") if len(code) == 4}
    rows: dict[tuple[str, str], tuple[str, str]] = {}  # (kind, key) → (name, province)
    ambiguous: set[tuple[str, str]] = set()
    province_shorts = {short_name(n) for n in provinces.values()}

    def add(kind: str, alias: str, name: str, province: str) -> None:
        key = (kind, place_key(alias))
        if rows.get(key, (name, province)) != (name, province):
            ambiguous.add(key)
        rows[key] = (name, province)

    for code, name in provinces.items():
        add("province", name, name, name)
        add("province", short_name(name), name, name)
        rows[("area", code)] = (name if name in MUNICIPALITIES else None, name)
    for code, name in cities.items():
        province = provinces[code[:2]]
        add("city", name, name, province)
        short = short_name(name)
        # 吉林 is 吉林市 as a city; 海南 (海南藏族自治州) is the province's short name.
        if short not in province_shorts or short + "市" == name:
            add("city", short, name, province)
        rows[("area", code)] = (name, province)
    province_of = {n: n for n in provinces.values()} | {
        n: provinces[c[:2]] for c, n in cities.items()}
    for alias, name in _rows("aliases.csv"):
        for kind, names in (("province", provinces.values()), ("city", cities.values())):
            if name in names:
                add(kind, alias, name, province_of[name])
    return tuple(sorted((kind, key, *rows[(kind, key)]) for kind, key in rows
                        if (kind, key) not in ambiguous))


def official_name(text: str, kinds: tuple[str, ...] = ("city", "province")) -> str | None:
    """The official name a spelling of a place of `kinds` stands for (`上海`, `Shanghai`,
    `SH` → `上海市`; `吉林` as a province → `吉林省`), None when it is no known place."""
    key = place_key(text)
    return next((name for kind, alias, name, _ in place_rows()
                 if alias == key and kind in kinds and name), None)


def places_table() -> Any:
    import pyarrow as pa

    columns = list(zip(*place_rows(), strict=True))
    return pa.table({n: pa.array(list(c), pa.string())
                     for n, c in zip(("kind", "key", "name", "province"), columns, strict=True)})


def geocode_prefixes(prefixes: list[str]) -> Any:
    """(prefix, city, province) of each '+86' + 7-digit mobile prefix, by phonenumbers'
    Chinese geocoder ('广东省深圳市', '北京市'); NULLs when it does not know the prefix."""
    import pyarrow as pa

    if not prefixes:  # most nights: the geocoder's data alone takes 0.35 s to import
        return pa.table({k: pa.array([], pa.string()) for k in ("prefix", "city", "province")})
    import phonenumbers
    from phonenumbers import geocoder

    provinces = {name for kind, _, name, _ in place_rows() if kind == "province"}
    cities = {(name, province) for kind, _, name, province in place_rows() if kind == "city"}
    out: dict[str, list] = {"prefix": [], "city": [], "province": []}
    for prefix in prefixes:
        text = geocoder.description_for_number(phonenumbers.parse(prefix + "0000"), "zh")
        province = next((p for p in provinces if text.startswith(p)), None)
        rest = text[len(province):] if province else ""
        city = province if province in MUNICIPALITIES else (
            rest if (rest, province) in cities else None)
        for column, value in (("prefix", prefix), ("city", city), ("province", province)):
            out[column].append(value)
    return pa.table({k: pa.array(v, pa.string()) for k, v in out.items()})


def given_places_sql(target: str, golden: str, places: str) -> str:
    """`target(person_id, city_raw, province_raw, given_city, given_province, city_province,
    conflict, card_city, card_province, phone_prefix)`: what the raw values and the ID
    card say; `conflict`: a recognised city lies in another province than the given one."""
    def join(alias: str, kind: str, key: str) -> str:
        return f"LEFT JOIN {places} {alias} ON {alias}.kind = '{kind}' AND {alias}.key = {key}"
    city_key, province_key = place_key_sql("g.city"), place_key_sql("g.province")
    return f"""
        CREATE OR REPLACE TEMP TABLE {target} AS
        SELECT *, coalesce(given_city IS NOT NULL AND given_province <> city_province, false)
                  AS conflict
        FROM (
        SELECT g.person_id, g.city AS city_raw, g.province AS province_raw,
            gc.name AS given_city, coalesce(gp.name, pc.province) AS given_province,
            coalesce(gc.province, cp.name) AS city_province,
            ac.name AS card_city, coalesce(ac.province, ap.province) AS card_province,
            CASE WHEN g.phone LIKE '+861%' AND length(g.phone) = 14
                 THEN substr(g.phone, 1, 10) END AS phone_prefix
        FROM {golden} g
        {join('gc', 'city', city_key)}
        {join('cp', 'province', city_key)}
        {join('gp', 'province', province_key)}
        {join('pc', 'city', province_key)}
        {join('ac', 'area', 'substr(g.id_card, 1, 4)')}
        {join('ap', 'area', 'substr(g.id_card, 1, 2)')})"""


def _keeps_province(g: str, ph: str) -> str:
    """A city in another province than the given one: the province stands when the ID
    card (else the mobile prefix) places the person there (`朝阳` with `北京` and a
    Beijing card is Beijing's district, not 辽宁's 朝阳市); else the city stands, with its
    province (survivorship may take the newest city from one lead and the province from
    an older one)."""
    # `conflict` is never NULL; the comparison is when neither card nor prefix places the
    # person (NULL would read as "not the city" in `own_city` and as "not the province"
    # in `_given`: the city dropped and the wrong province kept).
    return (f"({g}.conflict AND coalesce(coalesce({g}.card_province, {ph}.province) "
            f"= {g}.given_province, false))")


def _given(g: str, ph: str) -> str:
    """The province the person's own cells give (see `_keeps_province`)."""
    return (f"CASE WHEN {g}.conflict AND NOT {_keeps_province(g, ph)} THEN {g}.city_province "
            f"ELSE coalesce({g}.given_province, {g}.city_province) END")


def _known(g: str, ph: str) -> str:
    """Province known before phone: given (or implied by a given city), or the ID card's."""
    return f"coalesce({_given(g, ph)}, {g}.card_province)"


def card_city_sql(g: str, given: str | None = None) -> str:
    """The ID card's city when its province agrees with the given one (`given`: that
    province; default: the province cell's, else a city's)."""
    given = given or f"coalesce({g}.given_province, {g}.city_province)"
    return f"CASE WHEN {given} IS NULL OR {g}.card_province = {given} THEN {g}.card_city END"


def phone_prefixes_sql(given: str) -> str:
    """Distinct mobile prefixes of persons whose city or province is still unknown, or
    whose city and province disagree (the prefix may settle which stands)."""
    known = "coalesce(g.given_province, g.city_province, g.card_province)"
    return f"""
        SELECT DISTINCT g.phone_prefix FROM {given} g
        WHERE g.phone_prefix IS NOT NULL
          AND (coalesce(g.given_city, {card_city_sql('g')}) IS NULL OR {known} IS NULL
               OR g.conflict)
        ORDER BY g.phone_prefix"""


def placed_columns(given: str, phone: str) -> dict[str, str]:
    """Expressions of city, province, their raw values and sources (tables aliased
    `{given}` and `{phone}` joined by person and prefix)."""
    g, ph = given, phone
    own_city = f"CASE WHEN NOT {_keeps_province(g, ph)} THEN {g}.given_city END"
    card_city = card_city_sql(g, _given(g, ph))
    phone_city = (f"CASE WHEN {_known(g, ph)} IS NULL OR {ph}.province = {_known(g, ph)} "
                  f"THEN {ph}.city END")
    return {
        "city": f"coalesce({own_city}, {card_city}, {phone_city})",
        "province": f"coalesce({_known(g, ph)}, {ph}.province)",
        "city_raw": f"{g}.city_raw",
        "province_raw": f"{g}.province_raw",
        "city_source": (f"CASE WHEN {own_city} IS NOT NULL THEN 'given' "
                        f"WHEN {card_city} IS NOT NULL THEN 'id_card' "
                        f"WHEN {phone_city} IS NOT NULL THEN 'phone' END"),
        "province_source": (f"CASE WHEN {_given(g, ph)} IS NOT NULL THEN 'given' "
                            f"WHEN {g}.card_province IS NOT NULL THEN 'id_card' "
                            f"WHEN {ph}.province IS NOT NULL THEN 'phone' END"),
    }
