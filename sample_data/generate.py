"""Synthetic multi-channel lead data for leadctl: sample_data/inbox/ + truth.csv.

Everything here is invented: names come from lists of common surname and
given-name characters, phone numbers, e-mails, WeChat ids, device ids and ID
cards are random. Deterministic for a given (n_persons, seed, as_of).

    python sample_data/generate.py [--out sample_data] [--persons N] [--seed S]

Writes into OUT/inbox/ (the folder `leadctl run --inbox` reads, nothing else
goes there) five lead files in different layouts plus events.parquet and
campaign_events.csv (a two-batch app campaign with UTM fields, for funnels), and
OUT/truth.csv (`source,lead_id,person`) and OUT/stats.json next to it.

How the true persons are built, so that a perfect resolver is measurable:
- identifier values (after normalisation) are never shared by two true persons,
  except junk values that are shared by many (blocked or over the cap of 20);
- leads of one person are connected through usable identifier values, except
  for a few deliberately unlinkable persons (a new phone number used once, a
  junk or invalid phone only, or two groups of leads with disjoint identifiers);
- junk and invalid values are placed so they never disconnect a person's leads
  beyond those deliberate cases, hence the recall ceiling in stats.json is exact.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

SOURCES = ("sem_baidu", "feed_douyin", "agent_list", "app_signups", "seo_forms")
SOURCE_WEIGHTS = (0.28, 0.25, 0.12, 0.18, 0.17)
# Lead ids: prefix + a number from the base up; deliberately broken rows use
# prefix + 099999, below every base, so they never collide with a real lead.
LEAD_ID_FORMAT = {"sem_baidu": ("BD", 100000), "feed_douyin": ("DY", 500000),
                  "agent_list": ("AG", 300000), "app_signups": ("APP", 7000000),
                  "seo_forms": ("SEO", 200000)}
# Which identifier columns each channel's layout has, and how often a lead fills them.
CHANNEL_FIELDS = {
    "sem_baidu": {"phone": 0.95, "email": 0.6},
    "feed_douyin": {"phone": 0.9, "email": 0.4, "wechat": 0.6},
    "agent_list": {"phone": 0.9, "id_card": 0.85, "wechat": 0.5},
    "app_signups": {"phone": 0.85, "email": 0.5, "device_id": 0.95},
    "seo_forms": {"phone": 0.9, "email": 0.6, "wechat": 0.4},
}
LEADS_PER_PERSON = ((1, 0.52), (2, 0.16), (3, 0.12), (4, 0.09), (5, 0.06), (6, 0.05))
UNLINKABLE_SHARE = 0.05  # of multi-lead persons
MAX_SHARED = 20  # a real value never reaches the resolver's per-value cap

JUNK_PHONES = ("13800138000", "00000000000", "12345678901")
JUNK_EMAIL = "test@test.com"
JUNK_DEVICE = "00000000-0000-0000-0000-000000000000"
# (id_type, value, how many lead rows carry it at 1,500 persons)
JUNK_PLAN = (("phone", "13800138000", 30), ("phone", "00000000000", 25),
             ("phone", "12345678901", 25), ("email", JUNK_EMAIL, 30),
             ("device_id", JUNK_DEVICE, 25))
N_INVALID_PHONES = 16
N_BAD_ID_CARDS = 8

SURNAMES = ("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余"
            "杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙"
            "史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤")
GIVEN_MALE = "伟强磊军洋勇杰涛明超刚平辉力成东建文浩宇轩博俊鹏飞斌海峰亮志睿哲晨皓然"
GIVEN_FEMALE = "芳娜秀敏静丽艳娟霞桂英华玉兰萍红梅琳欣怡涵萱琪瑶婷悦诺雪倩颖慧佳晶妍"
CITIES = (("上海", "上海", "Shanghai", 14), ("北京", "北京", "Beijing", 12),
          ("广州", "广东", "Guangzhou", 8), ("深圳", "广东", "Shenzhen", 8),
          ("杭州", "浙江", "Hangzhou", 7), ("南京", "江苏", "Nanjing", 5),
          ("苏州", "江苏", "Suzhou", 5), ("成都", "四川", "Chengdu", 7),
          ("武汉", "湖北", "Wuhan", 5), ("西安", "陕西", "Xi'an", 4),
          ("重庆", "重庆", "Chongqing", 5), ("天津", "天津", "Tianjin", 4),
          ("长沙", "湖南", "Changsha", 4), ("郑州", "河南", "Zhengzhou", 4),
          ("青岛", "山东", "Qingdao", 3), ("合肥", "安徽", "Hefei", 3),
          ("厦门", "福建", "Xiamen", 3), ("沈阳", "辽宁", "Shenyang", 3))
# Plausible county-level region codes for ID cards (birthplace, not residence).
REGION_CODES = ("110101", "110105", "310101", "310115", "440103", "440305", "330102",
                "330106", "320102", "320506", "510104", "420102", "610102", "500103",
                "120101", "370102", "430102", "410102", "340102", "350203", "210102")
CN_PREFIXES = ("130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151",
               "152", "153", "155", "156", "157", "158", "159", "166", "176", "177", "178",
               "180", "181", "182", "183", "185", "186", "187", "188", "189", "198", "199")
# Hong Kong mobile ranges valid for every 6-digit suffix (phonenumbers metadata).
HK_MOBILE_PREFIXES = ("61", "63", "64", "65", "69", "94", "96", "97")
EMAIL_DOMAINS = (("qq.com", 30), ("163.com", 20), ("126.com", 8), ("gmail.com", 6),
                 ("outlook.com", 6), ("sina.com", 5), ("foxmail.com", 5), ("139.com", 3))
PINYIN = ("wang", "li", "zhang", "liu", "chen", "yang", "huang", "zhao", "wu", "zhou", "xu", "sun",
          "ma", "zhu", "hu", "guo", "he", "gao", "lin", "luo", "wei", "fang", "na", "xiu", "min",
          "jing", "li", "qiang", "lei", "jun", "yang", "yong", "jie", "tao", "ming", "chao", "xia",
          "yu", "hao", "xin", "yi", "han", "xuan", "qi", "yao", "ting", "yue", "nuo", "xue")
CATEGORIES = (("maternal", 22), ("apparel", 20), ("fresh", 18), ("digital", 10),
              ("daily", 20), ("other", 10))
EVENT_TYPES = (("page_view", 50), ("login", 25), ("order_paid", 15), ("form_submit", 10))
SEM_CAMPAIGNS = ("brand_2026q4", "maternal_search", "double11_presale", "competitor_terms")
SEM_KEYWORDS = ("婴儿奶粉推荐", "婴儿车 哪个牌子好", "孕妇装", "纸尿裤 优惠", "早教课程",
                "双十一 母婴", "有机蔬菜配送", "儿童安全座椅")
LANDING_PAGES = ("/lp/maternal-a", "/lp/maternal-b", "/lp/double11", "/lp/brand")
DOUYIN_CAMPAIGNS = ("dy_live_1015", "dy_feed_maternal", "dy_feed_fresh", "dy_double11")
AGENTS = ("华东代理-上海明达", "华南代理-广州乐购", "西南代理-成都启航", "华北代理-北京优选")
APP_CHANNELS = (("app_ios", 4), ("app_android", 5), ("mini_program", 3))
SEO_SOURCES = (("baidu", 5), ("google", 2), ("bing", 1), ("sogou", 1))

FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
KEYPAD = str.maketrans("abcdefghijklmnopqrstuvwxyz", "22233344455566677778889999")
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def id_card_check_digit(first17: str) -> str:
    """ISO 7064 MOD 11-2 check character of an 18-digit PRC ID card."""
    total = sum(int(d) * w for d, w in zip(first17, ID_WEIGHTS, strict=True))
    return "10X98765432"[total % 11]


def id_card_is_valid(value: str) -> bool:
    value = value.strip().upper()
    return (len(value) == 18 and value[:17].isdigit()
            and id_card_check_digit(value[:17]) == value[17])


@dataclass
class Value:
    """One identifier value: its normalised form, and whether it may link."""

    id_type: str
    canonical: str  # E.164 phone, lower-case email/wechat/device, upper-case ID card
    usable: bool = True
    raw: str | None = None  # fixed rendering (junk, invalid); None: rendered later

    @property
    def key(self) -> tuple[str, str] | None:
        return (self.id_type, self.canonical) if self.usable else None


@dataclass(eq=False)  # identity: a lead and its person refer to each other
class Lead:
    source: str
    person: Person
    created: datetime
    ids: dict[str, Value] = field(default_factory=dict)
    lead_id: str = ""


@dataclass(eq=False)
class Person:
    pid: str
    surname: str
    given: str
    male: bool
    city: tuple
    phone1: Value
    phone2: Value | None = None
    email: Value | None = None
    wechat: Value | None = None
    id_card: Value | None = None
    device_id: Value | None = None
    leads: list[Lead] = field(default_factory=list)
    unlinkable: str = ""  # how its leads were split, when deliberately unlinkable


def _weighted(rng: random.Random, pairs) -> object:
    values = [p[0] for p in pairs]
    weights = [p[-1] for p in pairs]
    return rng.choices(values, weights)[0]


class _Gen:
    def __init__(self, n_persons: int, seed: int, as_of: date):
        self.rng = random.Random(seed)
        self.n = n_persons
        self.as_of = datetime.combine(as_of, datetime.min.time())
        # Values taken so far (lower case); demo values are reserved up front.
        self.used: set[str] = set(JUNK_PHONES) | {JUNK_EMAIL, JUNK_DEVICE, "13800000001",
                                                   "+85291234567"}
        self.persons: list[Person] = []
        self.scale = n_persons / 1500

    # ---- identifier values -------------------------------------------------
    def _unique(self, make) -> str:
        while True:
            value = make()
            if value.lower() not in self.used:
                self.used.add(value.lower())
                return value

    def cn_phone(self) -> Value:
        rng = self.rng
        digits = self._unique(lambda: rng.choice(CN_PREFIXES) + f"{rng.randrange(10**8):08d}")
        return Value("phone", "+86" + digits)

    def foreign_phone(self) -> Value:
        rng = self.rng
        if rng.random() < 0.6:
            e164 = self._unique(lambda: f"+852{rng.choice(HK_MOBILE_PREFIXES)}"
                                        f"{rng.randrange(10**6):06d}")
        else:  # 555-01xx: the range reserved for fiction
            e164 = self._unique(lambda: f"+1{rng.choice(('415', '650', '212'))}5550"
                                        f"{rng.randrange(100, 200)}")
        return Value("phone", e164)

    def email(self) -> Value:
        rng = self.rng

        def make() -> str:
            domain = _weighted(rng, EMAIL_DOMAINS)
            if domain == "qq.com" and rng.random() < 0.7:
                local = str(rng.randrange(10**7, 10**10))
            else:
                local = rng.choice(PINYIN) + rng.choice(("", ".", "_")) + rng.choice(PINYIN)
                local += str(rng.randrange(1, 9999)) if rng.random() < 0.7 else ""
            return f"{local}@{domain}"

        return Value("email", self._unique(make))

    def wechat(self) -> Value:
        rng = self.rng

        def make() -> str:
            if rng.random() < 0.4:
                return "wxid_" + "".join(rng.choices("abcdefghijklmnopqrstuvwxyz0123456789",
                                                     k=12))
            word = rng.choice(PINYIN).capitalize() + rng.choice(("", "_", "-"))
            word += rng.choice(PINYIN).capitalize()
            return word + str(rng.randrange(10, 9999))

        raw = self._unique(make)
        return Value("wechat", raw.lower(), raw=raw)  # raw keeps the person's own casing

    def id_card(self, male: bool) -> Value:
        rng = self.rng

        def make() -> str:
            born = date(1965, 1, 1) + timedelta(days=rng.randrange(40 * 365))
            seq = rng.randrange(0, 100) * 10 + rng.choice((1, 3, 5, 7, 9) if male
                                                           else (0, 2, 4, 6, 8))
            first17 = f"{rng.choice(REGION_CODES)}{born:%Y%m%d}{seq:03d}"
            return first17 + id_card_check_digit(first17)

        return Value("id_card", self._unique(make))

    def device_id(self) -> Value:
        return Value("device_id", self._unique(
            lambda: str(uuid.UUID(int=self.rng.getrandbits(128), version=4))))

    # ---- persons and leads -------------------------------------------------
    def person(self, index: int) -> Person:
        rng = self.rng
        male = rng.random() < 0.48
        given = "".join(rng.choices(GIVEN_MALE if male else GIVEN_FEMALE,
                                    k=1 if rng.random() < 0.35 else 2))
        phone1 = self.foreign_phone() if rng.random() < 0.02 else self.cn_phone()
        city = rng.choices(CITIES, [c[3] for c in CITIES])[0]
        p = Person(f"T{index:05d}", rng.choice(SURNAMES), given, male, city, phone1)
        if rng.random() < 0.08:
            p.phone2 = self.cn_phone()
        if rng.random() < 0.55:
            p.email = self.email()
        if rng.random() < 0.5:
            p.wechat = self.wechat()
        if rng.random() < 0.4:
            p.id_card = self.id_card(male)
        if rng.random() < 0.45:
            p.device_id = self.device_id()
        return p

    def make_leads(self, p: Person, n_leads: int) -> None:
        rng = self.rng
        channels: list[str] = []
        pool = list(SOURCES)
        weights = list(SOURCE_WEIGHTS)
        for _ in range(n_leads):
            if not pool:  # more leads than channels: repeats are re-submissions
                pool, weights = list(SOURCES), list(SOURCE_WEIGHTS)
            pick = rng.choices(range(len(pool)), weights)[0]
            channels.append(pool.pop(pick))
            weights.pop(pick)
        first = self.as_of - timedelta(days=rng.uniform(1, 90))
        for i, source in enumerate(channels):
            created = first if i == 0 else first + timedelta(days=rng.uniform(0, 30))
            created = min(created, self.as_of - timedelta(minutes=rng.randrange(60, 600)))
            created = created.replace(hour=rng.randrange(8, 23), microsecond=0)
            if created >= self.as_of:
                created -= timedelta(days=1)
            lead = Lead(source, p, created)
            for id_type, share in CHANNEL_FIELDS[source].items():
                if rng.random() >= share:
                    continue
                if id_type == "phone":
                    use_second = p.phone2 is not None and rng.random() < 0.4
                    lead.ids["phone"] = p.phone2 if use_second else p.phone1
                    continue
                if id_type == "device_id" and p.device_id is None:
                    p.device_id = self.device_id()  # every app user has a device
                value = getattr(p, id_type)
                if value is not None:
                    lead.ids[id_type] = value
            if not lead.ids:
                lead.ids["phone"] = p.phone1
            p.leads.append(lead)

    # ---- connectivity ------------------------------------------------------
    @staticmethod
    def components(leads: list[Lead]) -> list[list[int]]:
        parent = list(range(len(leads)))

        def find(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        owner: dict[tuple, int] = {}
        for i, lead in enumerate(leads):
            for value in lead.ids.values():
                if value.key is None:
                    continue
                if value.key in owner:
                    parent[find(i)] = find(owner[value.key])
                else:
                    owner[value.key] = i
        groups: dict[int, list[int]] = {}
        for i in range(len(leads)):
            groups.setdefault(find(i), []).append(i)
        return list(groups.values())

    def connect(self, p: Person) -> None:
        """Makes a person's leads one component: every group gets phone1."""
        # Ends: each round gives phone1 to at least one more lead, none loses it.
        while len(groups := self.components(p.leads)) > 1:
            for group in groups:
                if not any(p.leads[i].ids.get("phone") is p.phone1 for i in group):
                    lead = next((p.leads[i] for i in group if "phone" not in p.leads[i].ids),
                                p.leads[group[0]])
                    lead.ids["phone"] = p.phone1

    def break_apart(self, p: Person) -> None:
        """A deliberately unlinkable person: some leads share nothing with the rest."""
        rng = self.rng
        leads = p.leads
        how = rng.choice(("new_phone", "junk_phone", "invalid_phone", "two_groups")
                         if len(leads) >= 4 else ("new_phone", "junk_phone", "invalid_phone"))
        p.unlinkable = how
        if how == "two_groups":
            second = p.phone2 if p.phone2 and p.phone2 != p.phone1 else self.cn_phone()
            p.phone2 = second
            cut = len(leads) // 2
            for lead in leads[cut:]:
                lead.ids = {"phone": second}
            for lead in leads[:cut]:
                if lead.ids.get("phone") is second:
                    lead.ids["phone"] = p.phone1
                if not any(v.usable for v in lead.ids.values()):
                    lead.ids["phone"] = p.phone1
            return
        lead = leads[-1]
        if how == "new_phone":
            lead.ids = {"phone": self.cn_phone()}
        elif how == "junk_phone":
            lead.ids = {"phone": Value("phone", "13800138000", usable=False)}
        else:
            lead.ids = {"phone": self.invalid_phone(p.phone1)}

    def invalid_phone(self, base: Value) -> Value:
        rng = self.rng
        digits = base.canonical[-11:] if base.canonical.startswith("+86") else "13912345678"
        if rng.random() < 0.5:  # one digit missing
            cut = rng.randrange(3, 11)
            raw = digits[:cut] + digits[cut + 1:]
        else:  # typed letters for digits (o for 0, l for 1, ...)
            # A resolver that maps letters like a phone keypad would see another
            # number: keep that away from every real person's phone.
            while True:
                raw = digits[:3] + "".join(rng.choice("olsbz") for _ in range(4)) + digits[7:]
                if raw.translate(KEYPAD) not in self.used:
                    break
            self.used.add(raw.translate(KEYPAD))
        return Value("phone", raw, usable=False, raw=raw)

    def degrade(self, lead: Lead, id_type: str, value: Value) -> bool:
        """Puts a junk/invalid value on a lead unless that disconnects its person."""
        p = lead.person
        before = len(self.components(p.leads))
        old = lead.ids.get(id_type)
        lead.ids[id_type] = value
        if len(p.leads) > 1 and len(self.components(p.leads)) > before:
            if old is None:
                del lead.ids[id_type]
            else:
                lead.ids[id_type] = old
            return False
        return True

    def build(self) -> None:
        rng = self.rng
        for index in range(1, self.n + 1):
            p = self.person(index)
            n_leads = _weighted(rng, LEADS_PER_PERSON)
            self.make_leads(p, n_leads)
            self.persons.append(p)
        self._demo_persons()
        for p in self.persons:
            self.connect(p)
        multi = [p for p in self.persons[3:] if len(p.leads) > 1]  # demo persons stay whole
        for p in rng.sample(multi, round(len(multi) * UNLINKABLE_SHARE)):
            self.break_apart(p)
        self._place_junk()

    def _demo_persons(self) -> None:
        """The first three persons are hand-made for demos and the README."""
        demo = self.persons[0]  # four channels, every kind of identifier
        demo.phone1 = Value("phone", "+8613800000001")
        demo.email = demo.email or self.email()
        demo.wechat = demo.wechat or self.wechat()
        demo.id_card = demo.id_card or self.id_card(demo.male)
        demo.device_id = demo.device_id or self.device_id()
        demo.leads = []
        self.make_leads(demo, 4)
        for lead in demo.leads:
            lead.ids["phone"] = demo.phone1
        two_phones = self.persons[1]  # two numbers, linked only through WeChat
        two_phones.phone2 = two_phones.phone2 or self.cn_phone()
        two_phones.wechat = two_phones.wechat or self.wechat()
        two_phones.leads = []
        for source, phone in (("feed_douyin", two_phones.phone1),
                              ("seo_forms", two_phones.phone2)):
            created = self.as_of - timedelta(days=20 + len(two_phones.leads), hours=5)
            two_phones.leads.append(Lead(source, two_phones, created,
                                         {"phone": phone, "wechat": two_phones.wechat}))
        foreign = self.persons[2]  # a Hong Kong mobile, plus an e-mail
        foreign.phone1 = Value("phone", "+85291234567")
        foreign.email = foreign.email or self.email()
        foreign.leads = []
        for source in ("sem_baidu", "app_signups"):
            created = self.as_of - timedelta(days=30 - len(foreign.leads), hours=3)
            foreign.leads.append(Lead(source, foreign, created,
                                      {"phone": foreign.phone1, "email": foreign.email}))

    def _place_junk(self) -> None:
        rng = self.rng
        leads = [lead for p in self.persons[3:] for lead in p.leads]
        for id_type, value, count in JUNK_PLAN:
            target = max(2, round(count * self.scale))
            candidates = [lead for lead in leads if id_type in CHANNEL_FIELDS[lead.source]]
            placed = sum(1 for lead in leads if (v := lead.ids.get(id_type))
                         and not v.usable and v.canonical == value)
            for lead in rng.sample(candidates, len(candidates)):
                if placed >= target:
                    break
                current = lead.ids.get(id_type)
                if current is not None and not current.usable:
                    continue
                if self.degrade(lead, id_type, Value(id_type, value, usable=False)):
                    placed += 1
        phones = [lead for lead in leads if (v := lead.ids.get("phone")) and v.usable
                  and v.canonical.startswith("+86")]
        placed = 0
        for lead in rng.sample(phones, len(phones)):
            if placed >= max(1, round(N_INVALID_PHONES * self.scale)):
                break
            if self.degrade(lead, "phone", self.invalid_phone(lead.ids["phone"])):
                placed += 1
        cards = [lead for lead in leads if (v := lead.ids.get("id_card")) and v.usable]
        placed = 0
        for lead in rng.sample(cards, len(cards)):
            if placed >= max(1, round(N_BAD_ID_CARDS * self.scale)):
                break
            good = lead.ids["id_card"].canonical
            wrong = rng.choice([d for d in "0123456789X" if d != good[17]])
            if self.degrade(lead, "id_card", Value("id_card", good[:17] + wrong, usable=False)):
                placed += 1

    # ---- statistics --------------------------------------------------------
    def stats(self) -> dict:
        owners: dict[tuple, set[str]] = {}
        counts: dict[tuple, int] = {}
        for p in self.persons:
            for lead in p.leads:
                for value in lead.ids.values():
                    if value.key:
                        owners.setdefault(value.key, set()).add(p.pid)
                        counts[value.key] = counts.get(value.key, 0) + 1
        shared = [k for k, v in owners.items() if len(v) > 1]
        assert not shared, f"identifier values shared by two persons: {shared[:3]}"
        assert max(counts.values()) <= MAX_SHARED
        true_pairs = linkable = 0
        unlinkable: dict[str, int] = {}
        for p in self.persons:
            n = len(p.leads)
            true_pairs += n * (n - 1) // 2
            groups = self.components(p.leads)
            linkable += sum(len(g) * (len(g) - 1) // 2 for g in groups)
            if len(groups) > 1:
                reason = p.unlinkable or "junk_or_invalid"
                unlinkable[reason] = unlinkable.get(reason, 0) + 1
        multi = sum(1 for p in self.persons if len(p.leads) > 1)
        return {
            "persons": len(self.persons),
            "leads": sum(len(p.leads) for p in self.persons),
            "multi_lead_persons": multi,
            "unlinkable_persons": sum(unlinkable.values()),
            "unlinkable_by_reason": dict(sorted(unlinkable.items())),
            "true_pairs": true_pairs,
            "linkable_pairs": linkable,
            "recall_ceiling": round(linkable / true_pairs, 4) if true_pairs else 1.0,
            "linkable_clusters": sum(len(self.components(p.leads)) for p in self.persons),
        }


# ---- rendering ---------------------------------------------------------------
# Phone styles per channel: (style, weight).
PHONE_STYLES = {
    "sem_baidu": (("plain", 60), ("spaced", 8), ("dashed", 8), ("plus86", 8), ("plus86_tight", 6),
                  ("dot0", 10)),
    "feed_douyin": (("plain", 55), ("plus86", 10), ("plus86_tight", 10), ("86", 8),
                    ("paren86", 8), ("spaced", 9)),
    "agent_list": (("plain", 40), ("dashed", 12), ("spaced", 10), ("0086", 10),
                   ("fullwidth", 12), ("dot0", 8), ("paren86", 8)),
    "app_signups": (("plus86_tight", 60), ("plain", 30), ("plus86", 10)),
    "seo_forms": (("plain", 55), ("spaced", 10), ("dashed", 10), ("plus86", 8), ("0086", 7),
                  ("fullwidth", 5), ("86", 5)),
    "events": (("plain", 60), ("plus86_tight", 15), ("spaced", 8), ("dashed", 7), ("86", 5),
               ("fullwidth", 3), ("dot0", 2)),
}


def render_cn(digits: str, style: str) -> str:
    a, b, c = digits[:3], digits[3:7], digits[7:]
    return {
        "plain": digits, "spaced": f"{a} {b} {c}", "dashed": f"{a}-{b}-{c}",
        "plus86": f"+86 {a} {b} {c}", "plus86_tight": f"+86{digits}", "0086": f"0086 {digits}",
        "86": f"86{digits}", "paren86": f"(+86){digits}", "fullwidth": digits.translate(FULLWIDTH),
        "dot0": f"{digits}.0",
    }[style]


def render_phone(value: Value, channel: str, rng: random.Random) -> str:
    if value.raw is not None:
        return value.raw
    e164 = value.canonical
    if e164.startswith("+86") or not value.usable:
        digits = e164[3:] if e164.startswith("+86") else e164
        if not value.usable and digits != "13800138000":
            return digits
        return render_cn(digits, _weighted(rng, PHONE_STYLES[channel]))
    if e164.startswith("+852"):
        n = e164[4:]
        return rng.choice((f"+852 {n[:4]} {n[4:]}", f"+852{n}", f"00852 {n[:4]} {n[4:]}"))
    n = e164[2:]
    return rng.choice((f"+1 {n[:3]} {n[3:6]} {n[6:]}", f"+1 ({n[:3]}) {n[3:6]}-{n[6:]}",
                       f"+1{n}"))


def render_value(value: Value, channel: str, rng: random.Random) -> str:
    if value.id_type == "phone":
        return render_phone(value, channel, rng)
    if value.id_type == "email":
        text = value.canonical
        roll = rng.random()
        if roll < 0.12:
            text = text.upper() if rng.random() < 0.3 else text[:1].upper() + text[1:]
        elif roll < 0.2:
            text = text.replace(text.split("@")[1], text.split("@")[1].upper())
        if rng.random() < 0.1:
            text = " " + text + "  "
        return text
    if value.id_type == "wechat":
        if not value.raw:
            return value.canonical
        roll = rng.random()
        return value.raw if roll < 0.7 else value.raw.lower() if roll < 0.9 else value.raw.upper()
    if value.id_type == "device_id":
        return value.canonical.upper() if rng.random() < 0.3 else value.canonical
    text = value.canonical  # id_card
    return text[:17] + "x" if text.endswith("X") and rng.random() < 0.5 else text


def render_name(p: Person, rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.72:
        return p.surname + p.given
    if roll < 0.8:
        return f"{p.surname} {p.given}"
    if roll < 0.87:
        return p.surname + ("先生" if p.male else "女士")
    if roll < 0.92:
        return f" {p.surname}{p.given} "
    if roll < 0.96:
        return p.given
    return ""


CITY_ABBREVIATIONS = {"上海": "SH", "北京": "BJ", "广州": "GZ", "深圳": "SZ"}


def render_city(p: Person, channel: str, rng: random.Random) -> str:
    """The city as channels write it: 上海, 上海市, Shanghai, shanghai, SH."""
    city, province, english, _ = p.city
    if channel == "app_signups":  # typed in lower case by one person in five
        return english.lower() if int(p.pid[1:]) % 5 == 0 else english
    if channel in ("feed_douyin", "seo_forms"):
        roll = rng.random()
        if roll < 0.3:
            return city + "市"
        if roll < 0.4 and city in CITY_ABBREVIATIONS:
            return CITY_ABBREVIATIONS[city]
    return city


def render_province(p: Person, rng: random.Random) -> str:
    province = p.city[1]
    if province in ("上海", "北京", "天津", "重庆"):
        return province + ("市" if rng.random() < 0.5 else "")
    return province + ("省" if rng.random() < 0.5 else "")


def _value(lead: Lead, id_type: str, rng: random.Random) -> str:
    value = lead.ids.get(id_type)
    return render_value(value, lead.source, rng) if value else ""


def lead_rows(lead: Lead, rng: random.Random) -> list[str]:
    p, t, s = lead.person, lead.created, lead.source
    if s == "sem_baidu":
        return [lead.lead_id, render_name(p, rng), _value(lead, "phone", rng),
                _value(lead, "email", rng), render_city(p, s, rng), render_province(p, rng),
                f"{t:%Y-%m-%d %H:%M:%S}", "baidu", "cpc", rng.choice(SEM_CAMPAIGNS),
                rng.choice(SEM_KEYWORDS), rng.choice(LANDING_PAGES)]
    if s == "feed_douyin":
        return [lead.lead_id, render_name(p, rng), _value(lead, "phone", rng),
                _value(lead, "email", rng), _value(lead, "wechat", rng), render_city(p, s, rng),
                f"{t:%Y/%m/%d} {t.hour}:{t:%M}", rng.choice(DOUYIN_CAMPAIGNS),
                str(rng.randrange(1780000000000000, 1789999999999999))]
    if s == "agent_list":
        return [lead.lead_id, render_name(p, rng), _value(lead, "phone", rng),
                _value(lead, "id_card", rng), _value(lead, "wechat", rng),
                render_city(p, s, rng), f"{t:%Y-%m-%d %H:%M}", rng.choice(AGENTS)]
    if s == "app_signups":
        if rng.random() < 0.1:
            stamp = f"{t - timedelta(hours=8):%Y-%m-%dT%H:%M:%S}Z"
        else:
            stamp = f"{t:%Y-%m-%dT%H:%M:%S}+08:00"
        return [lead.lead_id, _value(lead, "phone", rng), _value(lead, "email", rng),
                _value(lead, "device_id", rng), render_city(p, s, rng), stamp,
                _weighted(rng, APP_CHANNELS)]
    return [lead.lead_id, render_name(p, rng), _value(lead, "phone", rng),
            _value(lead, "email", rng), _value(lead, "wechat", rng), render_city(p, s, rng),
            render_province(p, rng), f"{t:%Y-%m-%d %H:%M:%S}", _weighted(rng, SEO_SOURCES),
            "organic"]


HEADERS = {
    "sem_baidu": ["线索ID", "姓名", "手机号", "邮箱", "城市", "省份", "创建时间", "utm_source",
                  "utm_medium", "utm_campaign", "关键词", "落地页"],
    "feed_douyin": ["LeadID", "full_name", "Mobile", "mail", "wx", "city", "create_time",
                    "utm_campaign", "ad_id"],
    "agent_list": ["线索ID", "姓名", "手机", "身份证号", "微信号", "城市", "创建时间", "代理商"],
    "app_signups": ["Lead_Id", "mobile", "email", "device_id", "city", "create_time", "channel"],
    "seo_forms": ["lead_id", "name", "phone", "email", "wechat", "city", "province",
                  "created_at", "utm_source", "utm_medium"],
}
# (delimiter, encoding, BOM, line end)
CSV_LAYOUT = {
    "sem_baidu": (",", "utf-8", True, "\r\n"),
    "feed_douyin": (";", "utf-8", False, "\n"),
    "agent_list": ("|", "gb18030", False, "\r\n"),
    "seo_forms": ("\t", "utf-8", False, "\n"),
}


def _bad_rows(gen: _Gen) -> dict[str, list[tuple[int, str | list[str]]]]:
    """Deliberately broken rows: (position in the file, row fields or a raw line)."""
    t = gen.as_of - timedelta(days=3, hours=6)
    no_identifier = ["BD099999", "孙丽", "", "", "杭州", "浙江", f"{t:%Y-%m-%d %H:%M:%S}",
                     "baidu", "cpc", "brand_2026q4", "孕妇装", "/lp/brand"]
    bad_date = ["SEO099999", "钱伟", gen.cn_phone().canonical[3:], "", "", "上海", "上海",
                "not-a-date", "baidu", "organic"]
    ragged = "DY099999;周敏;" + gen.cn_phone().canonical[3:] + ";;杭州"
    return {"sem_baidu": [(17, no_identifier)], "seo_forms": [(23, bad_date)],
            "feed_douyin": [(31, ragged)]}


def _write_csv(path: Path, source: str, rows: list[list[str]], bad) -> None:
    delimiter, encoding, bom, line_end = CSV_LAYOUT[source]
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator=line_end)
    writer.writerow(HEADERS[source])
    placed = {pos: row for pos, row in bad}
    for i, row in enumerate(rows):
        if i in placed:
            extra = placed[i]
            if isinstance(extra, str):
                buffer.write(extra + line_end)
            else:
                writer.writerow(extra)
        writer.writerow(row)
    data = buffer.getvalue().encode(encoding)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)


def _write_parquet(path: Path, columns: dict[str, list], types: dict | None = None) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    types = types or {}
    table = pa.table({name: pa.array(values, type=types.get(name, pa.string()))
                      for name, values in columns.items()})
    pq.write_table(table, path, compression="zstd")


# ---- events ------------------------------------------------------------------
def _event_subjects(p: Person) -> tuple[list[Value], list[str]]:
    """Phones (usable, seen on a lead of the person) and lead ids events may use."""
    phones: list[Value] = []
    for lead in p.leads:
        value = lead.ids.get("phone")
        if value and value.usable and value not in phones:
            phones.append(value)
    return phones, [lead.lead_id for lead in p.leads]


def build_events(gen: _Gen) -> tuple[dict[str, list], dict]:
    rng = random.Random(gen.rng.random())
    as_of = gen.as_of
    # (phone, lead_id, event_type, ts, amount, category, true person or None)
    rows: list[tuple] = []

    def subject(p: Person) -> tuple[str | None, str | None]:
        phones, lead_ids = _event_subjects(p)
        if phones and rng.random() < 0.5:
            return render_phone(rng.choice(phones), "events", rng), None
        return None, rng.choice(lead_ids)

    def add(p: Person, event_type: str, ts: datetime, amount: float | None = None,
            category: str | None = None) -> None:
        if event_type == "order_paid" and amount is None:
            amount = round(min(rng.lognormvariate(4.6, 0.9), 5000.0), 2)
            category = _weighted(rng, CATEGORIES)
        rows.append((*subject(p), event_type, ts.replace(microsecond=0), amount, category,
                     p.pid))

    def window_ts(start: datetime, end: datetime) -> datetime:
        return start + timedelta(seconds=rng.randrange(int((end - start).total_seconds())))

    day = timedelta(days=1)
    for p in gen.persons:
        if rng.random() < 0.25:
            continue
        start = max(as_of - 90 * day, min(lead.created for lead in p.leads))
        if start >= as_of - timedelta(hours=1):
            continue
        for _ in range(min(int(rng.expovariate(1 / 24)) + 1, 200)):
            add(p, _weighted(rng, EVENT_TYPES), window_ts(start, as_of))
        if rng.random() < 0.04:  # decoys: logins on the (incomplete) as-of day
            for _ in range(rng.randrange(1, 4)):
                add(p, "login", window_ts(as_of, as_of + day))

    # Heavy buyers (value_tier high: >= 30 paid orders and >= 6000 paid in the
    # 7 days before as-of) and near misses that only a wrong window would tip over.
    eligible = [p for p in gen.persons[3:] if not p.unlinkable and len(p.leads) >= 2
                and len(gen.components(p.leads)) == 1]
    picks = rng.sample(eligible, 8)
    heavy = [gen.persons[0], *picks[:5]]
    week = (as_of - 7 * day, as_of)
    for p in heavy:
        for _ in range(rng.randrange(30, 41)):
            add(p, "order_paid", window_ts(*week), round(rng.uniform(200, 420), 2),
                _weighted(rng, CATEGORIES))
    near_misses = {}
    amount_short, count_short, window_edge = picks[5:8]
    # Their own random orders near the window would blur the near miss.
    quiet = {amount_short.pid, count_short.pid, window_edge.pid}
    rows[:] = [r for r in rows if not (r[6] in quiet and r[2] == "order_paid"
                                       and r[3] >= as_of - 8 * day)]
    for _ in range(34):  # enough orders, 34 x 170 = 5780 < 6000
        add(amount_short, "order_paid", window_ts(*week), 170.0, "fresh")
    near_misses[amount_short.pid] = "34 orders but 5780 paid in the last 7 days"
    for _ in range(29):  # 29 orders; 3 more on the as-of day do not count
        add(count_short, "order_paid", window_ts(*week), 320.0, "digital")
    for _ in range(3):
        add(count_short, "order_paid", window_ts(as_of, as_of + day), 320.0, "digital")
    near_misses[count_short.pid] = "29 orders in the last 7 days, 3 more on the as-of day"
    for _ in range(28):  # 28 in the window, 4 on the day just before it
        add(window_edge, "order_paid", window_ts(*week), 300.0, "maternal")
    for _ in range(4):
        add(window_edge, "order_paid", window_ts(as_of - 8 * day, as_of - 7 * day), 300.0,
            "maternal")
    near_misses[window_edge.pid] = "28 orders in the last 7 days, 4 on the day before"

    for _ in range(max(1, round(12 * gen.scale))):  # events of people with no lead
        phone = gen.cn_phone().canonical[3:]
        rows.append((phone, None, rng.choice(("page_view", "login")),
                     window_ts(as_of - 30 * day, as_of), None, None, None))
    rows.append((None, None, "page_view", as_of - 2 * day, None, None, None))  # no subject
    rows.sort(key=lambda r: (r[3], r[2], r[1] or "", r[0] or ""))
    columns = {name: [r[i] for r in rows] for i, name in enumerate(
        ("phone", "lead_id", "event_type", "ts", "amount", "category"))}
    expected = _expected_value_tiers(gen, heavy, rows, near_misses)
    return columns, expected


# ---- campaign events (rules/funnels.yaml) --------------------------------------
# A credit-card app campaign in two batches: each person gets a push through one channel
# (UTM fields, two creatives A/B) and may go on: receipt (delivered or failed), a click on
# the short link (carrying the link's UTM fields), app-store visit, install, registration,
# card binding, joining the activity or applying. Independent random stream: the other
# files stay as they were.
CAMPAIGN_HEADERS = ("phone", "lead_id", "event_type", "ts", "utm_source", "utm_medium",
                    "utm_campaign", "utm_content", "batch", "status")
CAMPAIGN_CHANNELS = (("sms", "sms", 35, 0.95, 1.0), ("wechat", "social", 25, 0.9, 1.2),
                     ("app_push", "push", 25, 0.8, 1.0), ("edm", "email", 15, 0.7, 0.02))
CAMPAIGN_BATCHES = (("2026_10_b1", date(2026, 10, 6)), ("2026_10_b2", date(2026, 10, 14)))
CAMPAIGN_NAME = "card_autumn_2026"
CAMPAIGN_SHARE = 0.32  # of the persons


def build_campaign_events(gen: _Gen, seed: int) -> list[list[str]]:
    """Rows of inbox/campaign_events.csv (CAMPAIGN_HEADERS), in time order."""
    rng = random.Random(seed * 1_000_003 + 16)
    rows: list[tuple] = []
    eligible = [p for p in gen.persons if _event_subjects(p)[0] or p.leads]
    chosen = rng.sample(eligible, round(len(eligible) * CAMPAIGN_SHARE))

    def subject(p: Person) -> tuple[str, str]:
        phones, lead_ids = _event_subjects(p)
        if phones and rng.random() < 0.6:
            value = phones[0].canonical
            return (value[3:] if value.startswith("+86") else value), ""
        return "", rng.choice(lead_ids)

    def add(p: Person, who: tuple[str, str], event_type: str, ts: datetime,
            utm: tuple[str, str, str] | None = None, batch: str = "",
            status: str = "") -> None:
        source, medium, content = utm or ("", "", "")
        rows.append((*who, event_type, ts.replace(microsecond=0), source, medium,
                     CAMPAIGN_NAME if utm else "", content, batch, status))

    def later(ts: datetime, low: float, high: float) -> datetime:
        return ts + timedelta(seconds=rng.randrange(int(low * 60), int(high * 60) + 1))

    for p in chosen:
        who = subject(p)
        batch, day = rng.choice(CAMPAIGN_BATCHES)
        source, medium, _, delivery, appeal = _weighted(
            rng, [(c, c[2]) for c in CAMPAIGN_CHANNELS])
        content = rng.choice("AB")
        utm = (source, medium, content)
        ts = datetime.combine(day + timedelta(days=rng.randrange(3)), datetime.min.time()) \
            + timedelta(hours=9, seconds=rng.randrange(10 * 3600))
        if rng.random() < 0.03:  # an organic install before the campaign: out of order
            add(p, who, "install", ts - timedelta(days=rng.randrange(1, 4)))
        add(p, who, "push", ts, utm, batch)
        delivered = rng.random() < delivery
        ts = later(ts, 0, 2)
        add(p, who, "push_receipt", ts, None, batch, "delivered" if delivered else "failed")
        if rng.random() < 0.1:  # a second push through another channel: two channels
            other = rng.choice([c for c in CAMPAIGN_CHANNELS if c[0] != source])
            utm = (other[0], other[1], content)
            ts = later(ts, 24 * 60, 48 * 60)
            add(p, who, "push", ts, utm, batch)
            add(p, who, "push_receipt", later(ts, 0, 2), None, batch, "delivered")
            delivered, appeal = True, other[4]
        click = (0.25 if content == "A" else 0.35) * appeal
        if not delivered or rng.random() >= click:
            continue
        ts = later(ts, 10, 3 * 24 * 60)
        add(p, who, "click", ts, utm, batch)
        steps = (("store_visit", 0.75, 1, 10), ("install", 0.65, 2, 30),
                 ("register", 0.7, 5, 5 * 24 * 60), ("bind_card", 0.5, 60, 6 * 24 * 60))
        reached = True
        for event_type, rate, low, high in steps:
            if rng.random() >= rate:
                reached = False
                break
            ts = later(ts, low, high)
            if event_type == "register" and rng.random() < 0.05:  # too late: after 14 days
                ts = later(ts, 15 * 24 * 60, 16 * 24 * 60)
            add(p, who, event_type, ts)
        if reached and rng.random() < 0.6:
            add(p, who, "join_activity" if rng.random() < 0.7 else "apply",
                later(ts, 60, 5 * 24 * 60))
    rows.sort(key=lambda r: (r[3], r[2], r[1], r[0]))
    return [[*r[:3], r[3].strftime("%Y-%m-%d %H:%M:%S"), *r[4:]] for r in rows]


def _expected_value_tiers(gen: _Gen, heavy: list[Person], rows: list[tuple],
                          near_misses: dict) -> dict:
    start, end = gen.as_of - timedelta(days=7), gen.as_of
    orders_7d: dict[str, list[tuple]] = {}
    for r in rows:
        if r[2] == "order_paid" and start <= r[3] < end:
            orders_7d.setdefault(r[6], []).append(r)

    def summary(p: Person) -> dict:
        phones, lead_ids = _event_subjects(p)
        orders = orders_7d.get(p.pid, [])
        phone = phones[0].canonical if phones else None
        return {"person": p.pid, "phone": phone, "lead_ids": lead_ids,
                "paid_orders_7d": len(orders),
                "paid_amount_7d": round(sum(r[4] for r in orders), 2)}

    high = [s for p in gen.persons
            if (s := summary(p))["paid_orders_7d"] >= 30 and s["paid_amount_7d"] >= 6000]
    assert [s["person"] for s in high] == sorted(p.pid for p in heavy)
    return {"value_tier_high": high,
            "near_misses": [{**summary(p), "why_not": why}
                            for p in gen.persons if (why := near_misses.get(p.pid))]}


# ---- entry points ------------------------------------------------------------
def generate(out_dir: Path, n_persons: int = 1500, seed: int = 7,
             as_of: date = date(2026, 11, 1)) -> dict:
    """Writes OUT/inbox/* (leads and events), OUT/truth.csv and OUT/stats.json."""
    if n_persons < 40:
        raise ValueError("n_persons must be at least 40")
    out_dir = Path(out_dir)
    inbox = out_dir / "inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    gen = _Gen(n_persons, seed, as_of)
    gen.build()
    render_rng = random.Random(seed * 7919 + 1)

    by_source: dict[str, list[Lead]] = {s: [] for s in SOURCES}
    for p in gen.persons:
        for lead in p.leads:
            by_source[lead.source].append(lead)
    for source, leads in by_source.items():
        leads.sort(key=lambda lead: (lead.created, lead.person.pid))
        prefix, base = LEAD_ID_FORMAT[source]
        for i, lead in enumerate(leads, start=1):
            lead.lead_id = f"{prefix}{base + i}"

    bad = _bad_rows(gen)
    files: dict[str, str] = {}
    rows_written: dict[str, int] = {}
    for source in SOURCES:
        rows = [lead_rows(lead, render_rng) for lead in by_source[source]]
        if source == "app_signups":
            path = inbox / f"{source}.parquet"
            _write_parquet(path, {h: [r[i] for r in rows]
                                  for i, h in enumerate(HEADERS[source])})
        else:
            path = inbox / f"{source}.csv"
            _write_csv(path, source, rows, bad.get(source, []))
        files[source] = str(path)
        rows_written[source] = len(rows) + len(bad.get(source, []))

    import pyarrow as pa

    events, expected = build_events(gen)
    events_path = inbox / "events.parquet"
    # Parquet has no seconds unit: milliseconds, naive local (Asia/Shanghai) time.
    _write_parquet(events_path, events, {"ts": pa.timestamp("ms"), "amount": pa.float64()})
    files["events"] = str(events_path)
    rows_written["events"] = len(events["event_type"])

    campaign = build_campaign_events(gen, seed)
    campaign_path = inbox / "campaign_events.csv"
    with open(campaign_path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(CAMPAIGN_HEADERS)
        writer.writerows(campaign)
    files["campaign_events"] = str(campaign_path)
    rows_written["campaign_events"] = len(campaign)

    truth_path = out_dir / "truth.csv"
    with open(truth_path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["source", "lead_id", "person"])
        for source in sorted(SOURCES):
            for lead in sorted(by_source[source], key=lambda lead: lead.lead_id):
                writer.writerow([source, lead.lead_id, lead.person.pid])

    stats = gen.stats()
    event_types: dict[str, int] = {}
    for t in events["event_type"]:
        event_types[t] = event_types.get(t, 0) + 1
    summary = {
        "seed": seed, "as_of": as_of.isoformat(), **stats,
        "leads_by_source": {s: len(by_source[s]) for s in SOURCES},
        "rows_written": rows_written,
        "bad_rows": {"sem_baidu": "BD099999: no identifier",
                     "seo_forms": "SEO099999: created_at not-a-date",
                     "feed_douyin": "DY099999: ragged row (5 of 9 fields)",
                     "events": "one row with neither phone nor lead_id"},
        "events": len(events["event_type"]), "events_by_type": dict(sorted(event_types.items())),
        "campaign_events_by_type": dict(sorted(
            (t, sum(1 for r in campaign if r[2] == t)) for t in {r[2] for r in campaign})),
        "demo_persons": {"T00001": "phone 13800000001, 4 channels, value_tier high",
                         "T00002": "two phones linked only through WeChat",
                         "T00003": "Hong Kong mobile +852 9123 4567 and an e-mail"},
        **expected,
    }
    stats_path = out_dir / "stats.json"
    stats_path.write_text(json.dumps(summary, ensure_ascii=False, indent=1) + "\n",
                          encoding="utf-8")
    return {"inbox": str(inbox), "files": files, "truth": str(truth_path),
            "stats_file": str(stats_path), **summary}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument("--persons", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--as-of", type=date.fromisoformat, default=date(2026, 11, 1))
    args = parser.parse_args(argv)
    result = generate(args.out, args.persons, args.seed, args.as_of)
    keys = ("persons", "leads", "multi_lead_persons", "unlinkable_persons", "true_pairs",
            "linkable_pairs", "recall_ceiling", "events", "rows_written")
    print(json.dumps({k: result[k] for k in keys}, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
