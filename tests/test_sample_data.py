"""The synthetic sample data set (sample_data/) and the benchmark generator (bench/)."""

from __future__ import annotations

import csv
import importlib.util
import json
import re
import sys
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import phonenumbers
import pyarrow.parquet as pq
import pytest

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "sample_data"
CSV_LAYOUT = {  # stem: (delimiter, encoding)
    "sem_baidu": (",", "utf-8-sig"),
    "feed_douyin": (";", "utf-8"),
    "agent_list": ("|", "gb18030"),
    "seo_forms": ("\t", "utf-8"),
}
BAD_LEAD_IDS = {"BD099999", "SEO099999", "DY099999"}


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


gen = _load("sample_generate", SAMPLE / "generate.py")
datagen = _load("bench_datagen", REPO / "bench" / "datagen.py")


def read_leads(inbox: Path) -> dict[str, list[dict]]:
    """Every lead row of the five files, as {header: value}; ragged rows skipped."""
    leads = {}
    for stem, (delimiter, encoding) in CSV_LAYOUT.items():
        text = (inbox / f"{stem}.csv").read_text(encoding=encoding)
        rows = list(csv.reader(text.splitlines(), delimiter=delimiter))
        leads[stem] = [dict(zip(rows[0], r, strict=True)) for r in rows[1:]
                       if len(r) == len(rows[0])]
    leads["app_signups"] = pq.read_table(inbox / "app_signups.parquet").to_pylist()
    return leads


def lead_id(row: dict) -> str:
    return next(row[k] for k in ("线索ID", "LeadID", "Lead_Id", "lead_id") if k in row)


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> dict:
    return gen.generate(tmp_path_factory.mktemp("small"), n_persons=80, seed=3)


def test_same_seed_gives_identical_files_and_another_seed_does_not(small, tmp_path):
    again = gen.generate(tmp_path / "again", n_persons=80, seed=3)
    other = gen.generate(tmp_path / "other", n_persons=80, seed=4)
    for stem in CSV_LAYOUT:
        first = Path(small["files"][stem]).read_bytes()
        assert Path(again["files"][stem]).read_bytes() == first
        assert Path(other["files"][stem]).read_bytes() != first
    assert Path(again["truth"]).read_bytes() == Path(small["truth"]).read_bytes()
    for stem in ("app_signups", "events"):
        assert pq.read_table(again["files"][stem]).equals(pq.read_table(small["files"][stem]))


def test_encodings_delimiters_and_headers(small):
    inbox = Path(small["inbox"])
    assert sorted(p.name for p in inbox.iterdir()) == [
        "agent_list.csv", "app_signups.parquet", "campaign_events.csv", "events.parquet",
        "feed_douyin.csv", "sem_baidu.csv", "seo_forms.csv"]
    assert (inbox / "campaign_events.csv").read_text(encoding="utf-8").startswith(
        "phone,lead_id,event_type,ts,utm_source,utm_medium,utm_campaign,utm_content,batch,"
        "status\n")
    sem = (inbox / "sem_baidu.csv").read_bytes()
    assert sem.startswith(b"\xef\xbb\xbf" + "线索ID,姓名,手机号,邮箱,城市,省份,创建时间,utm_source,"
                          "utm_medium,utm_campaign,关键词,落地页\r\n".encode())
    douyin = (inbox / "feed_douyin.csv").read_bytes()
    assert douyin.startswith(b"LeadID;full_name;Mobile;mail;wx;city;create_time;utm_campaign;"
                             b"ad_id\n")
    agent = (inbox / "agent_list.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        agent.decode("utf-8")
    assert agent.decode("gb18030").startswith(
        "线索ID|姓名|手机|身份证号|微信号|城市|创建时间|代理商\r\n")
    assert agent.decode("gbk") == agent.decode("gb18030")  # plain GBK, no 4-byte sequences
    seo = (inbox / "seo_forms.csv").read_bytes()
    assert seo.startswith(b"lead_id\tname\tphone\temail\twechat\tcity\tprovince\tcreated_at\t"
                          b"utm_source\tutm_medium\n")
    app = pq.read_schema(inbox / "app_signups.parquet")
    assert app.names == ["Lead_Id", "mobile", "email", "device_id", "city", "create_time",
                         "channel"]
    assert {str(t) for t in app.types} == {"string"}
    events = pq.read_schema(inbox / "events.parquet")
    assert [(f.name, str(f.type)) for f in events] == [
        ("phone", "string"), ("lead_id", "string"), ("event_type", "string"),
        ("ts", "timestamp[ms]"), ("amount", "double"), ("category", "string")]


def test_date_formats_per_channel(small):
    leads = read_leads(Path(small["inbox"]))
    assert all(re.fullmatch(r"2026/\d\d/\d\d \d{1,2}:\d\d", r["create_time"])
               for r in leads["feed_douyin"] if r["LeadID"] != "DY099999")
    assert all(re.fullmatch(r"2026-\d\d-\d\dT\d\d:\d\d:\d\d(\+08:00|Z)", r["create_time"])
               for r in leads["app_signups"])
    dates = [r["created_at"] for r in leads["seo_forms"]]
    assert [d for d in dates if not re.fullmatch(r"2026-\d\d-\d\d \d\d:\d\d:\d\d", d)] == [
        "not-a-date"]


def test_id_card_check_digits():
    # The GB 11643 worked examples.
    assert gen.id_card_check_digit("11010519491231002") == "X"
    assert gen.id_card_check_digit("44052418800101001") == "4"
    assert gen.id_card_is_valid("11010519491231002x")
    assert not gen.id_card_is_valid("110105194912310021")
    cards = [r["身份证号"] for r in read_leads(SAMPLE / "inbox")["agent_list"] if r["身份证号"]]
    invalid = [c for c in cards if not gen.id_card_is_valid(c)]
    assert len(invalid) == gen.N_BAD_ID_CARDS
    assert len(cards) > 150
    assert all(c[:6] in gen.REGION_CODES for c in cards)


def test_truth_covers_every_real_lead_once(small):
    leads = read_leads(Path(small["inbox"]))
    in_files = [(stem, lead_id(r)) for stem, rows in leads.items() for r in rows]
    with open(small["truth"], encoding="utf-8") as fh:
        truth = list(csv.DictReader(fh))
    assert len({(t["source"], t["lead_id"]) for t in truth}) == len(truth) == small["leads"]
    assert {(t["source"], t["lead_id"]) for t in truth} == {
        (s, i) for s, i in in_files if i not in BAD_LEAD_IDS}
    assert {t["person"] for t in truth} == {f"T{i:05d}" for i in range(1, 81)}
    assert Counter(t["source"] for t in truth) == small["leads_by_source"]


def test_shipped_sample_is_what_the_generator_makes(tmp_path):
    fresh = gen.generate(tmp_path)
    for name in ("sem_baidu.csv", "feed_douyin.csv", "agent_list.csv", "seo_forms.csv",
                 "campaign_events.csv"):
        assert (tmp_path / "inbox" / name).read_bytes() == (SAMPLE / "inbox" / name).read_bytes()
    for name in ("app_signups.parquet", "events.parquet"):
        assert pq.read_table(tmp_path / "inbox" / name).equals(
            pq.read_table(SAMPLE / "inbox" / name))
    assert (tmp_path / "truth.csv").read_bytes() == (SAMPLE / "truth.csv").read_bytes()
    assert (tmp_path / "stats.json").read_bytes() == (SAMPLE / "stats.json").read_bytes()
    assert (fresh["persons"], fresh["leads"], fresh["multi_lead_persons"]) == (1500, 3154, 700)


# ---- an independent reference resolver over the rendered files --------------
FULLWIDTH = str.maketrans("０１２３４５６７８９", "0123456789")
BLOCKED = {("phone", "+8613800138000"), ("email", "test@test.com"),
           ("device_id", "00000000-0000-0000-0000-000000000000")}


def norm_phone(raw: str) -> str | None:

    text = raw.translate(FULLWIDTH).strip().removesuffix(".0")
    if not text or re.search(r"[A-Za-z]", text):
        return None
    text = re.sub(r"[\s\-()]", "", text)
    if text.startswith("00"):
        text = "+" + text[2:]
    elif re.fullmatch(r"86\d{11}", text):
        text = "+" + text
    try:
        number = phonenumbers.parse(text, "CN")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def lead_keys(row: dict) -> list[tuple[str, str]]:
    columns = {"phone": ("手机号", "Mobile", "手机", "mobile", "phone"),
               "email": ("邮箱", "mail", "email"), "wechat": ("wx", "微信号", "wechat"),
               "id_card": ("身份证号",), "device_id": ("device_id",)}
    keys = []
    for id_type, names in columns.items():
        raw = next((row[n] for n in names if row.get(n)), "")
        if not raw.strip():
            continue
        if id_type == "phone":
            value = norm_phone(raw)
        elif id_type == "id_card":
            value = raw.strip().upper() if gen.id_card_is_valid(raw) else None
        else:
            value = raw.strip().lower()
        if value and (id_type, value) not in BLOCKED:
            keys.append((id_type, value))
    return keys


def test_reference_resolver_reaches_the_stated_ceiling_with_full_precision():
    stats = json.loads((SAMPLE / "stats.json").read_text(encoding="utf-8"))
    with open(SAMPLE / "truth.csv", encoding="utf-8") as fh:
        truth = {(t["source"], t["lead_id"]): t["person"] for t in csv.DictReader(fh)}
    leads = [((stem, lead_id(r)), lead_keys(r)) for stem, rows in
             read_leads(SAMPLE / "inbox").items() for r in rows if lead_id(r) not in BAD_LEAD_IDS]
    assert len(leads) == len(truth) == stats["leads"]
    records = Counter(k for _, keys in leads for k in keys)
    assert max(records.values()) <= 20  # only the blocked junk values are over the cap
    parent = {lead: lead for lead, _ in leads}

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    owner = {}
    for lead, keys in leads:
        for key in keys:
            parent[find(lead)] = find(owner.setdefault(key, lead))
    clusters = Counter(find(lead) for lead, _ in leads)
    same = Counter((find(lead), truth[lead]) for lead, _ in leads)
    predicted = sum(n * (n - 1) // 2 for n in clusters.values())
    correct = sum(n * (n - 1) // 2 for n in same.values())
    true_pairs = sum(n * (n - 1) // 2 for n in Counter(truth.values()).values())
    assert correct == predicted == stats["linkable_pairs"]  # precision 1.0
    assert true_pairs == stats["true_pairs"]
    assert round(correct / true_pairs, 4) == stats["recall_ceiling"] == 0.9765
    assert len(clusters) == stats["linkable_clusters"]


def test_value_tier_high_persons_from_the_event_file():
    stats = json.loads((SAMPLE / "stats.json").read_text(encoding="utf-8"))
    with open(SAMPLE / "truth.csv", encoding="utf-8") as fh:
        person_of_lead = {t["lead_id"]: t["person"] for t in csv.DictReader(fh)}
    person_of_phone = {}
    for rows in read_leads(SAMPLE / "inbox").values():
        for r in rows:
            keys = dict(lead_keys(r))
            if "phone" in keys and lead_id(r) in person_of_lead:
                person_of_phone[keys["phone"]] = person_of_lead[lead_id(r)]
    as_of = datetime(2026, 11, 1)
    orders: dict[str, list[float]] = {}
    for e in pq.read_table(SAMPLE / "inbox" / "events.parquet").to_pylist():
        if e["event_type"] != "order_paid" or not as_of - timedelta(days=7) <= e["ts"] < as_of:
            continue
        person = (person_of_lead.get(e["lead_id"]) if e["lead_id"]
                  else person_of_phone.get(norm_phone(e["phone"])))
        orders.setdefault(person, []).append(e["amount"])
    high = sorted(p for p, amounts in orders.items() if len(amounts) >= 30
                  and sum(amounts) >= 6000)
    assert high == [h["person"] for h in stats["value_tier_high"]]
    assert high[0] == "T00001" and len(high) == 6


# ---- bench/datagen.py --------------------------------------------------------
def test_bench_datagen_small(tmp_path):
    result = datagen.make_bench_data(tmp_path, n_leads=2000, n_events=10000, seed=5,
                                     extra_fraction=0.01)
    inbox = Path(result["inbox"])
    assert result["leads_by_source"] == dict.fromkeys(datagen.SOURCES, 400)
    assert (inbox / "sem_baidu.csv").read_bytes().startswith(b"\xef\xbb\xbf\xe7\xba\xbf")
    agent = (inbox / "agent_list.csv").read_bytes().decode("gb18030").splitlines()
    assert agent[0] == "线索ID|姓名|手机|身份证号|微信号|城市|创建时间|代理商"
    cards = [line.split("|")[3] for line in agent[1:] if line.split("|")[3]]
    assert len(cards) > 150 and all(gen.id_card_is_valid(c) for c in cards)
    assert pq.read_table(inbox / "events.parquet").num_rows == 10000
    truth = pq.read_table(result["truth"]).to_pylist()
    assert len(truth) == 2000 and len({t["person"] for t in truth}) == result["persons"] == 1200
    # Identifier values (after normalisation) are never shared between persons.
    leads = read_leads(inbox)
    person = {(t["source"], t["lead_id"]): t["person"] for t in truth}
    phones = {}
    for stem, rows in leads.items():
        for r in rows:
            for key in lead_keys(r):  # phones and ID cards
                phones.setdefault(key, set()).add(person[(stem, lead_id(r))])
    cards = {k: v for k, v in phones.items() if k[0] == "id_card"}
    assert len(cards) > 150 and all(len(owners) == 1 for owners in phones.values())
    night = result["second_night"]
    night_rows = Path(night["files"]["feed_douyin"]).read_text(encoding="utf-8").splitlines()
    assert len(night_rows) == 1 + 20 and night_rows[0].startswith("LeadID;full_name;Mobile")
    known = {t["person"] for t in truth}
    assert sorted(t["person"] in known for t in pq.read_table(night["truth"]).to_pylist()) == [
        False] * 10 + [True] * 10
    again = datagen.make_bench_data(tmp_path / "again", n_leads=2000, n_events=10000, seed=5)
    assert (Path(again["inbox"]) / "seo_forms.csv").read_bytes() == (
        inbox / "seo_forms.csv").read_bytes()
