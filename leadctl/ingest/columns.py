"""Header aliases (English and Chinese) → canonical column names.

Matching ignores case, spaces, `_`, `-` and `.`, so `Lead_Id`, `lead id` and
`LEADID` are the same header. `rules/sources.yaml` can add aliases.
"""

from __future__ import annotations

import difflib
import re

LEAD_COLUMNS = (
    "lead_id", "name", "phone", "email", "wechat", "device_id", "id_card", "city",
    "province", "created_at", "utm_source", "utm_medium", "utm_campaign", "utm_content",
    "utm_term", "channel",
)
IDENTIFIER_COLUMNS = ("phone", "email", "wechat", "device_id", "id_card")
EVENT_COLUMNS = ("person_id", "lead_id", "phone", "event_type", "ts", "amount", "category")

DEFAULT_ALIASES: dict[str, tuple[str, ...]] = {
    "lead_id": ("线索ID", "线索编号", "线索id", "LeadID", "Lead_Id", "lead no", "id"),
    "name": ("姓名", "客户姓名", "名字", "full_name", "fullname", "customer_name", "contact_name"),
    "phone": ("手机号", "手机", "手机号码", "电话", "联系电话", "mobile", "mobile_phone",
              "cellphone", "tel", "telephone", "phone_number"),
    "email": ("邮箱", "电子邮箱", "邮件", "mail", "e-mail", "email_address"),
    "wechat": ("微信号", "微信", "wx", "weixin", "wechat_id", "wxid"),
    "device_id": ("设备ID", "设备号", "设备id", "device", "idfa", "imei", "oaid"),
    "id_card": ("身份证号", "身份证", "身份证号码", "idcard", "ID_Card", "id_number"),
    "city": ("城市", "所在城市"),
    "province": ("省份", "省", "state"),
    "created_at": ("创建时间", "注册时间", "留资时间", "提交时间", "create_time", "created",
                   "createtime", "created_time", "submit_time", "signup_time"),
    "utm_source": ("来源", "渠道来源"),
    "utm_medium": ("媒介",),
    "utm_campaign": ("活动", "推广计划", "campaign"),
    "utm_content": ("创意",),
    "utm_term": ("关键词", "keyword", "search_term"),
    "channel": ("渠道",),
    # event-only columns
    "person_id": ("人员ID", "personid"),
    "event_type": ("事件类型", "事件", "event", "eventtype", "action"),
    "ts": ("事件时间", "时间", "timestamp", "event_time", "time", "occurred_at"),
    "amount": ("金额", "支付金额", "订单金额", "price", "value"),
    "category": ("品类", "类目", "分类", "product_category"),
    "event_id": ("事件ID", "事件编号", "eventid"),  # kept as an attribute; see ingest.load
}

# Built-in aliases a leads file only has: there `id` is the lead's own id; in an events
# file it is the event's (or anything's) id, no lead's: kept as an attribute.
LEADS_ONLY_ALIASES = {"lead_id": ("id",)}

_FOLD = re.compile(r"[\s_\-.]+")


def fold_header(name: str) -> str:
    return _FOLD.sub("", name.strip().lstrip("\ufeff")).lower()


def build_alias_map(extra: dict[str, list[str]] | None = None,
                    events: bool = False) -> dict[str, str]:
    """folded header → canonical name (canonical names are their own aliases); `events`:
    an events file's, without LEADS_ONLY_ALIASES (unless sources.yaml gives them)."""
    mapping: dict[str, str] = {}
    for canonical, aliases in DEFAULT_ALIASES.items():
        for alias in (canonical, *aliases):
            if not (events and alias in LEADS_ONLY_ALIASES.get(canonical, ())):
                mapping.setdefault(fold_header(alias), canonical)
    for canonical, aliases in (extra or {}).items():
        for alias in (canonical, *aliases):
            mapping[fold_header(alias)] = canonical  # configured aliases win
    return mapping


def matched_headers(columns: list[str], written: list[str] | None) -> list[str]:
    """The header each column is matched by, one per column: as written in the file
    (`Phone` beside `phone`, which the reader names `Phone_1`, is a phone column), but an
    empty name or an exact repeat of an earlier header (`phone` again: `phone_1`) by the
    reader's name, an attribute. `written`: the header record (a CSV's) or the schema's
    names (a Parquet file's), one per column; without it, the column names."""
    if not written or len(written) != len(columns):
        return list(columns)
    seen: set[str] = set()
    matched = []
    for column, header in zip(columns, written, strict=True):
        name = (header or "").strip().lstrip("\ufeff").strip()
        matched.append(column if not name or name in seen else name)
        seen.add(name)
    return matched


def field_columns(headers: list[str], alias_map: dict[str, str],
                  written: list[str] | None = None) -> dict[str, list[str]]:
    """{canonical: the columns that map to it}, in the order they are read: a header that
    is the canonical name itself (`phone`, `Phone`, `event type`) first, then the
    aliases in file order. Loading reads the first usable value of a row among them
    (`ingest.sql.first_value_sql`). `headers`: the column names; `written`: the header as
    written, which is matched (`matched_headers`)."""
    fields: dict[str, list[str]] = {}
    matched = dict(zip(headers, matched_headers(headers, written), strict=True))
    for header in headers:
        canonical = alias_map.get(fold_header(matched[header]))
        if canonical:
            fields.setdefault(canonical, []).append(header)
    for canonical, mapped in fields.items():
        own = [h for h in mapped if fold_header(matched[h]) == fold_header(canonical)]
        fields[canonical] = own + [h for h in mapped if h not in own]
    return fields


def map_columns(headers: list[str], alias_map: dict[str, str],
                written: list[str] | None = None) -> tuple[dict[str, str], list[str]]:
    """Returns ({canonical: column}, [unmapped columns kept as attributes]).

    When several headers map to the same canonical column, the one named as the column
    itself, else the first in file order, is its header (`field_columns`); the others
    are kept as attributes so nothing is lost.
    """
    mapped = {canonical: names[0] for canonical, names in
              field_columns(headers, alias_map, written).items()}
    chosen = set(mapped.values())
    return mapped, [h for h in headers if h not in chosen]


def missing_identifier_message(headers: list[str], unmapped: list[str],
                               extra: dict[str, list[str]] | None = None) -> str:
    """Why a leads file cannot be used, with the nearest identifier alias (difflib) of each
    header that matched no column: `no identifier column (found: 姓名, 电话号码x, city; did
    you mean 电话 for 电话号码x?)`."""
    names: dict[str, str] = {}  # folded → the alias as spelled
    meant = build_alias_map(extra)  # a sources.yaml alias may take a built-in one away
    for canonical in IDENTIFIER_COLUMNS:
        for alias in (canonical, *DEFAULT_ALIASES[canonical], *(extra or {}).get(canonical, [])):
            if meant.get(fold_header(alias)) == canonical:
                names.setdefault(fold_header(alias), alias)
    hints = []
    for header in unmapped:
        near = difflib.get_close_matches(fold_header(header), list(names), n=1, cutoff=0.5)
        if near:
            hints.append(f"{names[near[0]]} for {header}")
    found = f"found: {', '.join(headers) or 'no columns'}"
    if hints:
        return f"no identifier column ({found}; did you mean {', '.join(hints)}?)"
    return (f"no identifier column ({found}; expected one of {', '.join(IDENTIFIER_COLUMNS)} "
            "or an alias of one, see rules/sources.yaml)")
