"""Benchmark-scale synthetic leads and events, generated in DuckDB SQL.

    python bench/datagen.py OUT_DIR [--leads N] [--events N] [--seed S] [--extra-fraction F]

Writes OUT_DIR/inbox/ with the five lead layouts of sample_data (sem_baidu.csv
UTF-8+BOM comma, feed_douyin.csv semicolon, agent_list.csv GB18030 pipe,
app_signups.parquet, seo_forms.csv tab) and events.parquet, plus
OUT_DIR/truth.parquet (source, lead_id, person). With --extra-fraction, a
"second night" OUT_DIR/night2/feed_douyin.csv of new leads (half new persons,
half existing persons' phones) and OUT_DIR/truth_night2.parquet.

Every value is a function of the row number and the seed (DuckDB hash()), so
output is deterministic and needs no Python loops over rows. The query
builders are pure functions returning SQL; only make_bench_data executes.
"""

from __future__ import annotations

import argparse
import codecs
import json
import shutil
import time
from datetime import date, timedelta
from pathlib import Path

PERSONS_PER_LEAD = 0.6  # 1M leads come from 600k persons
SOURCES = ("sem_baidu", "feed_douyin", "agent_list", "app_signups", "seo_forms")
LEAD_ID_FORMAT = {"sem_baidu": ("BD", 10**8), "feed_douyin": ("DY", 5 * 10**8),
                  "agent_list": ("AG", 3 * 10**8), "app_signups": ("APP", 7 * 10**8),
                  "seo_forms": ("SEO", 2 * 10**8)}
CN_PREFIXES = ("130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151",
               "152", "153", "155", "156", "157", "158", "159", "166", "176", "177", "178",
               "180", "181", "182", "183", "185", "186", "187", "188", "189", "198", "199")
SURNAMES = ("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯"
            "邓曹彭曾肖田董袁潘于蒋蔡余杜叶程")
GIVEN = "伟芳娜秀敏静丽强磊军洋勇艳杰娟涛明超霞平刚桂英华玉兰萍红梅琳欣怡涵萱琪瑶婷悦宇轩浩然"
CITIES = (("上海", "上海"), ("北京", "北京"), ("广州", "广东"), ("深圳", "广东"),
          ("杭州", "浙江"), ("南京", "江苏"), ("成都", "四川"), ("武汉", "湖北"),
          ("西安", "陕西"), ("重庆", "重庆"), ("天津", "天津"), ("长沙", "湖南"))
REGION_CODES = ("110101", "310101", "440103", "440305", "330102", "320102", "510104",
                "420102", "610102", "500103", "120101", "370102", "430102", "410102",
                "340102", "350203", "210102", "110105", "310115", "330106", "320506")
EMAIL_DOMAINS = ("qq.com", "163.com", "126.com", "gmail.com", "outlook.com", "sina.com")
CATEGORIES = ("maternal", "apparel", "fresh", "digital", "daily", "other")
JUNK_PHONES = ("13800138000", "00000000000", "12345678901")
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
AS_OF = date(2026, 11, 1)


def _list(values) -> str:
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def _pick(values, h: str) -> str:
    """One of `values`, chosen by the hash expression h."""
    return f"list_extract({_list(values)}, CAST(({h}) % {len(values)} AS INTEGER) + 1)"


# One hash input stream per purpose. hash() of distinct integers is well mixed,
# while hash(x, seed, 'salt') leaves the purposes correlated.
SALTS = ("person", "pre", "em", "dom", "wx", "d1", "d2", "sn", "g1", "g2", "city", "junk", "jv",
         "nophone", "fmt", "useem", "emcase", "usewx", "wxcase", "hasid", "ts", "efmt", "ets",
         "amt", "cat", "lead", "by", "type", "night2")


def _h(expr: str, seed: int, salt: str) -> str:
    """A pseudo-random UBIGINT from an integer expression, a seed and a purpose."""
    return f"hash(({expr}) * 64 + {SALTS.index(salt) + (seed << 40)})"


def macros_sql(n_persons: int, seed: int) -> list[str]:
    """Per-person identifier values and the lead → person map, as macros."""
    checks = " + ".join(f"CAST(substr(f17, {i + 1}, 1) AS INTEGER) * {w}"
                        for i, w in enumerate(ID_WEIGHTS))
    return [
        # Leads below n_persons are each person's first lead; the rest are
        # repeat leads of a hashed person (so most persons have one lead).
        f"""CREATE OR REPLACE MACRO person_of(i) AS CASE WHEN i < {n_persons} THEN i
            ELSE CAST({_h('i', seed, 'person')} % {n_persons} AS BIGINT) END""",
        # 8 digits from a bijection of p (odd multiplier, coprime to 10^8): unique.
        f"""CREATE OR REPLACE MACRO phone_of(p) AS CAST(
            list_extract([{", ".join(CN_PREFIXES)}],
                         CAST({_h('p', seed, 'pre')} % {len(CN_PREFIXES)} AS INTEGER) + 1)
            * CAST(100000000 AS BIGINT) + (CAST(p AS BIGINT) * 73939133 + {seed * 7919}) % 100000000
            AS VARCHAR)""",
        f"""CREATE OR REPLACE MACRO email_of(p) AS CASE WHEN {_h('p', seed, 'em')} % 2 = 0
            THEN 'u' || CAST(p AS VARCHAR) || '@' || {_pick(EMAIL_DOMAINS, _h('p', seed, 'dom'))}
            END""",
        f"""CREATE OR REPLACE MACRO wechat_of(p) AS CASE WHEN {_h('p', seed, 'wx')} % 5 < 2
            THEN 'Wx_' || CAST(p AS VARCHAR) || 'Ab' END""",
        """CREATE OR REPLACE MACRO hex16(h) AS lower(lpad(to_hex(h), 16, '0'))""",
        """CREATE OR REPLACE MACRO uuid_of(x) AS substr(x, 1, 8) || '-' || substr(x, 9, 4)
            || '-4' || substr(x, 14, 3) || '-a' || substr(x, 18, 3) || '-' || substr(x, 21, 12)""",
        f"""CREATE OR REPLACE MACRO device_of(p) AS
            uuid_of(hex16({_h('p', seed, 'd1')}) || hex16({_h('p', seed, 'd2')}))""",
        # Unique per p below 3e8: birth day, sequence and region come from p.
        f"""CREATE OR REPLACE MACRO id17_of(p) AS
            {_pick(REGION_CODES, 'p // 14600000')}
            || strftime(DATE '1965-01-01' + CAST(p % 14600 AS INTEGER), '%Y%m%d')
            || lpad(CAST((p // 14600) % 1000 AS VARCHAR), 3, '0')""",
        # ISO 7064 MOD 11-2 check character, over a column holding the 17 digits.
        f"""CREATE OR REPLACE MACRO with_check(f17) AS f17 ||
            list_extract(['1','0','X','9','8','7','6','5','4','3','2'], (({checks}) % 11) + 1)""",
        f"""CREATE OR REPLACE MACRO name_of(p) AS {_pick(SURNAMES, _h('p', seed, 'sn'))}
            || {_pick(GIVEN, _h('p', seed, 'g1'))}
            || CASE WHEN {_h('p', seed, 'g2')} % 3 = 0 THEN ''
                    ELSE {_pick(GIVEN, _h('p', seed, 'g2'))} END""",
        # Messy renderings of an 11-digit CN mobile, chosen by bucket b (0-99).
        """CREATE OR REPLACE MACRO messy_phone(d, b) AS CASE
            WHEN b < 50 THEN d
            WHEN b < 58 THEN substr(d, 1, 3) || ' ' || substr(d, 4, 4) || ' ' || substr(d, 8, 4)
            WHEN b < 65 THEN substr(d, 1, 3) || '-' || substr(d, 4, 4) || '-' || substr(d, 8, 4)
            WHEN b < 71 THEN '+86 ' || substr(d, 1, 3) || ' ' || substr(d, 4, 4) || ' '
                             || substr(d, 8, 4)
            WHEN b < 79 THEN '+86' || d
            WHEN b < 83 THEN '0086 ' || d
            WHEN b < 87 THEN '86' || d
            WHEN b < 91 THEN '(+86)' || d
            WHEN b < 94 THEN translate(d, '0123456789', '０１２３４５６７８９')
            ELSE d || '.0' END""",
    ]


def base_leads_sql(first: int, count: int, seed: int, person_sql: str) -> str:
    """One row per lead i in [first, first+count): person, identifiers, time, channel."""
    as_of = f"TIMESTAMP '{AS_OF.isoformat()} 00:00:00'"
    return f"""
        SELECT * EXCLUDE (real_phone),
            CASE WHEN {_h('i', seed, 'junk')} % 1000 < 4
                 THEN {_pick(JUNK_PHONES, _h('i', seed, 'jv'))}
                 -- some leads without a phone, linked by e-mail (layouts that have one)
                 WHEN {_h('i', seed, 'nophone')} % 100 < 5 AND email IS NOT NULL
                      AND source_no <> 2 THEN NULL
                 ELSE real_phone END AS phone
        FROM (
            SELECT i, p, source_no,
                messy_phone(digits, CAST({_h('i', seed, 'fmt')} % 100 AS INTEGER))
                    AS real_phone,
                CASE WHEN {_h('i', seed, 'useem')} % 10 < 7 THEN
                     CASE WHEN {_h('i', seed, 'emcase')} % 10 = 0 THEN upper(email_of(p))
                          ELSE email_of(p) END END AS email,
                CASE WHEN {_h('i', seed, 'usewx')} % 10 < 7 THEN
                     CASE WHEN {_h('i', seed, 'wxcase')} % 2 = 0 THEN lower(wechat_of(p))
                          ELSE wechat_of(p) END END AS wechat,
                CASE WHEN {_h('p', seed, 'hasid')} % 10 < 6 AND source_no = 2
                     THEN id17_of(p) END AS id17,
                name_of(p) AS name,
                {_pick([c for c, _ in CITIES], _h('p', seed, 'city'))} AS city,
                {as_of} - INTERVAL 1 SECOND * CAST(60 + {_h('i', seed, 'ts')} % (90 * 86400)
                                                    AS BIGINT) AS created_at
            FROM (SELECT *, phone_of(p) AS digits
                  FROM (SELECT range AS i, {person_sql} AS p, range % 5 AS source_no
                        FROM range({first}, {first + count}))))"""


def province_sql(city: str) -> str:
    cases = " ".join(f"WHEN '{c}' THEN '{p}'" for c, p in CITIES)
    return f"CASE {city} {cases} END"


def channel_select_sql(source: str, base: str) -> str:
    """A channel's own layout (headers, date format, columns) over the base leads."""
    prefix, offset = LEAD_ID_FORMAT[source]
    lead_id = f"'{prefix}' || CAST(i + {offset} AS VARCHAR)"
    where = f"WHERE source_no = {SOURCES.index(source)}"
    if source == "sem_baidu":
        return f"""SELECT {lead_id} AS "线索ID", name AS "姓名", phone AS "手机号",
            email AS "邮箱", city AS "城市", {province_sql('city')} AS "省份",
            strftime(created_at, '%Y-%m-%d %H:%M:%S') AS "创建时间",
            'baidu' AS utm_source, 'cpc' AS utm_medium, 'brand_2026q4' AS utm_campaign,
            '婴儿奶粉推荐' AS "关键词" FROM {base} {where} ORDER BY i"""
    if source == "feed_douyin":
        return f"""SELECT {lead_id} AS LeadID, name AS full_name, phone AS Mobile,
            email AS mail, wechat AS wx, city,
            strftime(created_at, '%Y/%m/%d %-H:%M') AS create_time,
            'dy_feed_maternal' AS utm_campaign, CAST(1780000000000000 + i AS VARCHAR) AS ad_id
            FROM {base} {where} ORDER BY i"""
    if source == "agent_list":
        return f"""SELECT {lead_id} AS "线索ID", name AS "姓名", phone AS "手机",
            with_check(id17) AS "身份证号", wechat AS "微信号", city AS "城市",
            strftime(created_at, '%Y-%m-%d %H:%M') AS "创建时间",
            '华东代理-上海明达' AS "代理商" FROM {base} {where} ORDER BY i"""
    if source == "app_signups":
        return f"""SELECT {lead_id} AS Lead_Id, phone AS mobile, email,
            device_of(p) AS device_id, city, strftime(created_at, '%Y-%m-%dT%H:%M:%S') || '+08:00'
            AS create_time, CASE WHEN i % 2 = 0 THEN 'app_ios' ELSE 'app_android' END
            AS channel FROM {base} {where} ORDER BY i"""
    return f"""SELECT {lead_id} AS lead_id, name, phone, email, wechat, city,
        {province_sql('city')} AS province,
        strftime(created_at, '%Y-%m-%d %H:%M:%S') AS created_at, 'baidu' AS utm_source,
        'organic' AS utm_medium FROM {base} {where} ORDER BY i"""


def truth_select_sql(base: str, person_prefix: str = "P") -> str:
    cases = " ".join(
        f"WHEN {n} THEN '{LEAD_ID_FORMAT[s][0]}' || CAST(i + {LEAD_ID_FORMAT[s][1]} AS VARCHAR)"
        for n, s in enumerate(SOURCES))
    names = _list(SOURCES)
    return f"""SELECT list_extract({names}, CAST(source_no AS INTEGER) + 1) AS source,
        CASE source_no {cases} END AS lead_id,
        '{person_prefix}' || lpad(CAST(p AS VARCHAR), 8, '0') AS person
        FROM {base} ORDER BY i"""


def events_sql(n_events: int, n_leads: int, seed: int, end: date = AS_OF,
               days: int = 90) -> str:
    """Events of random leads' persons: by (messy) phone or by lead id, in the `days` days
    before `end`."""
    cases = " ".join(
        f"WHEN {n} THEN '{LEAD_ID_FORMAT[s][0]}' || CAST(l + {LEAD_ID_FORMAT[s][1]} AS VARCHAR)"
        for n, s in enumerate(SOURCES))
    as_of = f"TIMESTAMP '{end.isoformat()} 00:00:00'"
    # Layered so that the phone digits are computed once per row, not once per
    # reference inside messy_phone's CASE.
    return f"""
        SELECT messy_phone(digits, CAST({_h('e', seed, 'efmt')} % 100 AS INTEGER)) AS phone,
               CASE WHEN NOT by_phone THEN CASE l % 5 {cases} END END AS lead_id,
               event_type,
               {as_of} - INTERVAL 1 SECOND * CAST(1 + {_h('e', seed, 'ets')} % ({days} * 86400)
                                                  AS BIGINT) AS ts,
               CASE WHEN event_type = 'order_paid'
                    THEN CAST(({_h('e', seed, 'amt')} % 50000) AS DOUBLE) / 100 + 9.9 END
                    AS amount,
               CASE WHEN event_type = 'order_paid'
                    THEN {_pick(CATEGORIES, _h('e', seed, 'cat'))} END AS category
        FROM (SELECT *, CASE WHEN by_phone THEN phone_of(person_of(l)) END AS digits
              FROM (SELECT range AS e,
                           CAST({_h('range', seed, 'lead')} % {n_leads} AS BIGINT) AS l,
                           {_h('range', seed, 'by')} % 2 = 0 AS by_phone,
                           CASE WHEN {_h('range', seed, 'type')} % 100 < 50 THEN 'page_view'
                                WHEN {_h('range', seed, 'type')} % 100 < 75 THEN 'login'
                                WHEN {_h('range', seed, 'type')} % 100 < 90 THEN 'order_paid'
                                ELSE 'form_submit' END AS event_type
                    FROM range({n_events})))"""


def _copy_csv(con, select: str, path: Path, delimiter: str, encoding: str = "utf-8",
              bom: bool = False) -> None:
    if encoding == "utf-8" and not bom:
        con.execute(f"COPY ({select}) TO '{path}' (HEADER, DELIMITER '{delimiter}')")
        return
    temp = path.with_suffix(".utf8.tmp")
    con.execute(f"COPY ({select}) TO '{temp}' (HEADER, DELIMITER '{delimiter}')")
    encoder = codecs.getincrementalencoder(encoding)()
    with open(temp, encoding="utf-8", newline="") as src, open(path, "wb") as dst:
        if bom:
            dst.write(codecs.BOM_UTF8)
        for chunk in iter(lambda: src.read(4 * 1024 * 1024), ""):
            dst.write(encoder.encode(chunk))
        dst.write(encoder.encode("", final=True))
    temp.unlink()


LAYOUT = {  # source: (delimiter, encoding, BOM)
    "sem_baidu": (",", "utf-8", True),
    "feed_douyin": (";", "utf-8", False),
    "agent_list": ("|", "gb18030", False),
    "seo_forms": ("\t", "utf-8", False),
}


def _write_leads(con, base: str, folder: Path, sources=SOURCES) -> dict[str, str]:
    files = {}
    for source in sources:
        select = channel_select_sql(source, base)
        if source == "app_signups":
            path = folder / f"{source}.parquet"
            con.execute(f"COPY ({select}) TO '{path}' (FORMAT parquet, COMPRESSION zstd)")
        else:
            path = folder / f"{source}.csv"
            _copy_csv(con, select, path, *LAYOUT[source])
        files[source] = str(path)
    return files


def _connect(n_persons: int, seed: int, threads: int | None):
    """An in-memory DuckDB with the generator's macros, rows kept in order."""
    import duckdb

    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads = {threads}")
    con.execute("SET preserve_insertion_order = true")
    con.execute("SET enable_progress_bar = false")
    for statement in macros_sql(n_persons, seed):
        con.execute(statement)
    return con


def make_bench_data(out_dir: Path, n_leads: int = 1_000_000, n_events: int = 10_000_000,
                    seed: int = 1, extra_fraction: float = 0.0, threads: int | None = None
                    ) -> dict:
    """Writes OUT/inbox (5 lead files + events.parquet) and OUT/truth.parquet.

    extra_fraction > 0 also writes the second night (see make_second_night).
    """

    started = time.perf_counter()
    out_dir = Path(out_dir)
    inbox = out_dir / "inbox"
    if inbox.exists():
        shutil.rmtree(inbox)
    inbox.mkdir(parents=True)
    n_persons = max(1, round(n_leads * PERSONS_PER_LEAD))
    con = _connect(n_persons, seed, threads)
    con.execute("CREATE TEMP TABLE base AS "
                + base_leads_sql(0, n_leads, seed, "person_of(range)"))
    files = _write_leads(con, "base", inbox)
    truth = out_dir / "truth.parquet"
    con.execute(f"COPY ({truth_select_sql('base')}) TO '{truth}' (FORMAT parquet)")
    events = inbox / "events.parquet"
    con.execute(f"COPY ({events_sql(n_events, n_leads, seed)}) TO '{events}' "
                "(FORMAT parquet, ROW_GROUP_SIZE 1000000)")
    files["events"] = str(events)
    result = {"inbox": str(inbox), "files": files, "truth": str(truth), "leads": n_leads,
              "persons": n_persons, "events": n_events,
              "leads_by_source": dict(con.execute(
                  "SELECT source_no, count(*) FROM base GROUP BY ALL ORDER BY 1").fetchall())}
    result["leads_by_source"] = {SOURCES[k]: v for k, v in result["leads_by_source"].items()}
    con.close()
    if extra_fraction > 0:
        result["second_night"] = make_second_night(out_dir, n_leads, extra_fraction, seed,
                                                   threads)
    result["seconds"] = round(time.perf_counter() - started, 2)
    return result


def make_second_night(out_dir: Path, n_leads: int, fraction: float = 0.01, seed: int = 1,
                      threads: int | None = None, night: int = 2, n_events: int = 0) -> dict:
    """OUT/night<K>/feed_douyin.csv: fraction*n_leads new leads after make_bench_data (and
    after the nights before K), and with `n_events` OUT/night<K>/events.parquet: a day of
    events (n_events / 90), the day before night K's as-of (AS_OF + K - 1 days).

    Lead numbers continue after n_leads; even ones are new persons, odd ones
    existing persons (so they share a phone with last night's data).
    """

    out_dir = Path(out_dir)
    folder = out_dir / f"night{night}"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    n_persons = max(1, round(n_leads * PERSONS_PER_LEAD))
    count = max(2, round(n_leads * fraction))
    first = n_leads + (night - 2) * count
    con = _connect(n_persons, seed, threads)
    person = (f"CASE WHEN range % 2 = 0 THEN {n_persons} + range // 2 "
              f"ELSE CAST({_h('range', seed, 'night2')} % {n_persons} AS BIGINT) END")
    # Every night-2 lead lands in the feed_douyin layout (source_no 1).
    con.execute("CREATE TEMP TABLE night AS SELECT * REPLACE (1 AS source_no) FROM ("
                + base_leads_sql(first, count, seed, person) + ")")
    files = _write_leads(con, "night", folder, sources=("feed_douyin",))
    if n_events:
        events = folder / "events.parquet"
        day_end = AS_OF + timedelta(days=night - 1)
        day = events_sql(max(1, n_events // 90), n_leads, seed + 1000 * night, day_end, 1)
        con.execute(f"COPY ({day}) TO '{events}' (FORMAT parquet, ROW_GROUP_SIZE 1000000)")
        files["events"] = str(events)
    truth = out_dir / f"truth_night{night}.parquet"
    con.execute(f"COPY ({truth_select_sql('night')}) TO '{truth}' (FORMAT parquet)")
    con.close()
    return {"folder": str(folder), "files": files, "truth": str(truth), "leads": count,
            "new_persons": (count + 1) // 2, "existing_persons": count // 2}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--extra-fraction", type=float, default=0.01)
    args = parser.parse_args(argv)
    result = make_bench_data(args.out_dir, args.leads, args.events, args.seed,
                             args.extra_fraction)
    print(json.dumps(result, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
