"""`rules/identity.yaml`: blocklist, per-value cap and golden-record survivorship.

The file is optional: a missing file (or a missing key) means the defaults below,
which are also what `leadctl init` writes, documented, into `rules/identity.yaml`.
Every problem is reported as a RuleError with file:line:col.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from leadctl.errors import RuleError
from leadctl.identity.overrides import Override, conflicts, parse_overrides
from leadctl.identity.overrides_file import OVERRIDES_FILE
from leadctl.rules.bounds import MAX_COUNT
from leadctl.rules.load import rule_path
from leadctl.rules.located import RuleDoc, one_of, parse_file, sorted_problems

IDENTITY_FILE = "identity.yaml"
ID_TYPES = ("phone", "email", "wechat", "device_id", "id_card")
# Person fields with a survivorship rule, in `persons` column order.
GOLDEN_FIELDS = ("name", "phone", "email", "wechat", "device_id", "id_card", "city",
                 "province", "channel", "source")
METHODS = ("most_recent", "most_frequent", "source_priority", "earliest")

DEFAULT_CAP = 20
# Values that are junk whatever the identifier type (compared after normalisation).
DEFAULT_BLOCKED_ANY = ("unknown", "null", "none", "n/a", "na", "nil", "undefined", "test",
                       "-", "--", "0", "无", "空", "未知", "暂无")
DEFAULT_BLOCKED_VALUES: dict[str, tuple[str, ...]] = {
    "phone": ("13800138000", "13888888888", "13900000000", "00000000000", "12345678901",
              "12345678910", "01234567890"),
    "email": ("test@test.com", "test@example.com", "a@a.com", "abc@abc.com",
              "123456@qq.com", "10000@qq.com", "noreply@noreply.com", "null@null.com"),
    "wechat": ("wxid_", "wechat", "weixin"),
    # Android's famous shared ANDROID_ID and the MAC address every Android 6+ app sees.
    "device_id": ("9774d56d682e549c", "02:00:00:00:00:00", "00000000-0000-0000-0000-000000000000"),
    "id_card": (),
}
# RE2 regular expressions over the normalised value (E.164 phones, lower-case emails).
DEFAULT_BLOCKED_PATTERNS: dict[str, tuple[str, ...]] = {
    "phone": (r"^\+861[3-9][0-9]0{8}$",),  # 13x00000000-style placeholders
    "email": (r"^(test|null|none|nobody|unknown|noreply|no-reply|donotreply)@",
              r"@(test\.com|localhost)$"),
    "wechat": (),
    "device_id": (),
    "id_card": (),
}
# A value made of one repeated character (separators ignored) is junk:
# 11111111111, 00000000-0000-..., aaaaaa.
DEFAULT_REPEATED_CHARACTER = ("phone", "wechat", "device_id", "id_card")

DEFAULT_SURVIVORSHIP: dict[str, tuple[str, tuple[str, ...]]] = {
    "name": ("most_frequent", ()),
    "phone": ("most_recent", ()),
    "email": ("most_recent", ()),
    "wechat": ("most_recent", ()),
    "device_id": ("most_recent", ()),
    "id_card": ("most_frequent", ()),
    "city": ("most_recent", ()),
    "province": ("most_recent", ()),
    "channel": ("earliest", ()),
    "source": ("earliest", ()),
}

TOP_KEYS = ("default_region", "cap", "blocklist", "survivorship", "overrides")
CAP_KEYS = ("max_records_per_value", "by_type")
BLOCKLIST_KEYS = ("any", "values", "patterns", "repeated_character")
RULE_KEYS = ("method", "sources")


@dataclass(frozen=True)
class Survivorship:
    """How one person field is chosen among the person's leads."""

    method: str
    sources: tuple[str, ...] = ()


@dataclass
class IdentityConfig:
    default_region: str = "CN"
    max_records_per_value: int = DEFAULT_CAP
    cap_by_type: dict[str, int] = field(default_factory=dict)
    blocked_any: tuple[str, ...] = DEFAULT_BLOCKED_ANY
    blocked_values: dict[str, tuple[str, ...]] = field(
        default_factory=lambda: dict(DEFAULT_BLOCKED_VALUES))
    blocked_patterns: dict[str, tuple[str, ...]] = field(
        default_factory=lambda: dict(DEFAULT_BLOCKED_PATTERNS))
    repeated_character: tuple[str, ...] = DEFAULT_REPEATED_CHARACTER
    survivorship: dict[str, Survivorship] = field(
        default_factory=lambda: {k: Survivorship(m, s) for k, (m, s)
                                 in DEFAULT_SURVIVORSHIP.items()})
    path: Path | None = None
    # must_link / cannot_link entries: identity.yaml's `overrides:`, then those of
    # rules/identity_overrides.yaml (identity/overrides.py).
    overrides: tuple[Override, ...] = ()

    def cap(self, id_type: str) -> int:
        return self.cap_by_type.get(id_type, self.max_records_per_value)


def _known_region(region: str) -> bool:
    from phonenumbers import SUPPORTED_REGIONS  # lazy: only when identity.yaml sets one

    return region in SUPPORTED_REGIONS


def load_identity_config(rules_dir: Path | str | None) -> IdentityConfig:
    """`rules_dir/identity.yaml` (or the defaults when the file does not exist), with the
    overrides of `rules_dir/identity_overrides.yaml` when that file exists."""
    path = rule_path(rules_dir, IDENTITY_FILE)
    problems: list = []
    try:
        config = parse_file(path, lambda doc: parse_identity_config(doc, path)) \
            if path.exists() else IdentityConfig()
    except RuleError as exc:
        problems += exc.problems
        config = IdentityConfig()
    extra_path = rule_path(rules_dir, OVERRIDES_FILE)
    extra: list[Override] = []
    if extra_path.exists():
        try:
            extra = parse_file(extra_path, lambda doc: parse_overrides_file(doc, extra_path))
        except RuleError as exc:
            problems += exc.problems
    if not problems:
        config.overrides = (*config.overrides, *extra)
        problems += conflicts(list(config.overrides), config.default_region)
    if problems:
        raise RuleError(sorted_problems(problems))
    return config


def parse_overrides_file(doc: Any, path: Path | str) -> list[Override]:
    """`identity_overrides.yaml`: a mapping with one key, `overrides:` (a list)."""
    ctx = RuleDoc(path)
    root = ctx.root(doc, "`overrides:` (a list of must_link / cannot_link entries)",
                    ("overrides",))
    overrides = parse_overrides(ctx, root.get("overrides"), root, "overrides")
    ctx.raise_if_problems()
    return overrides


def parse_identity_config(doc: Any, path: Path | str) -> IdentityConfig:
    """Validate a loaded identity.yaml; RuleError lists every problem with its place."""
    ctx = _IdentityDoc(path)
    config = IdentityConfig(path=Path(path))
    if doc is None:
        return config
    if not isinstance(doc, Mapping):
        raise RuleError([(ctx.loc(doc), "identity.yaml must be a mapping of settings")])
    ctx.unknown_setting_keys(doc, TOP_KEYS, "")
    if "default_region" in doc:
        region = doc["default_region"]
        if not isinstance(region, str) or not re.fullmatch(r"[A-Za-z]{2}", region):
            ctx.add(ctx.value_loc(doc, "default_region"),
                    "default_region must be a two-letter region code such as CN")
        elif not _known_region(region.upper()):
            ctx.add(ctx.value_loc(doc, "default_region"),
                    f"default_region {region!r} is not a region phonenumbers knows (CN, HK, "
                    "TW, US, …): every number without a country code would be invalid")
        else:
            config.default_region = region.upper()
    _parse_cap(ctx, doc, config)
    _parse_blocklist(ctx, doc, config)
    _parse_survivorship(ctx, doc, config)
    config.overrides = tuple(parse_overrides(ctx, doc.get("overrides"), doc, "overrides"))
    ctx.raise_if_problems()
    return config


def _parse_cap(ctx: _IdentityDoc, doc: Mapping, config: IdentityConfig) -> None:
    if "cap" not in doc:
        return
    cap = doc["cap"]
    if not isinstance(cap, Mapping):
        ctx.add(ctx.value_loc(doc, "cap"),
                "cap must be a mapping (max_records_per_value, by_type)")
        return
    ctx.unknown_setting_keys(cap, CAP_KEYS, "cap.")
    if "max_records_per_value" in cap:
        value = _positive_int(ctx, cap, "max_records_per_value", "cap.max_records_per_value")
        if value is not None:
            config.max_records_per_value = value
    by_type = cap.get("by_type")
    if by_type is None:
        return
    if not isinstance(by_type, Mapping):
        ctx.add(ctx.value_loc(cap, "by_type"),
                "cap.by_type must map an identifier type to a number of records")
        return
    for id_type in by_type:
        if ctx.known_type(by_type, id_type, "cap.by_type"):
            value = _positive_int(ctx, by_type, id_type, f"cap.by_type.{id_type}")
            if value is not None:
                config.cap_by_type[id_type] = value


def _positive_int(ctx: _IdentityDoc, mapping: Mapping, key: str, name: str) -> int | None:
    value = mapping[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        ctx.add(ctx.value_loc(mapping, key), f"{name} must be a whole number >= 1, "
                f"got {value!r}")
        return None
    if value > MAX_COUNT:
        ctx.add(ctx.value_loc(mapping, key), f"{name} must be at most {MAX_COUNT}, "
                f"got {value}")
        return None
    return value


def _parse_blocklist(ctx: _IdentityDoc, doc: Mapping, config: IdentityConfig) -> None:
    if "blocklist" not in doc:
        return
    block = doc["blocklist"]
    if block is None:
        block = {}
    if not isinstance(block, Mapping):
        ctx.add(ctx.value_loc(doc, "blocklist"),
                f"blocklist must be a mapping ({', '.join(BLOCKLIST_KEYS)})")
        return
    ctx.unknown_setting_keys(block, BLOCKLIST_KEYS, "blocklist.")
    if "any" in block:
        config.blocked_any = tuple(_strings(ctx, block, "any", "blocklist.any"))
    for key, target in (("values", config.blocked_values),
                        ("patterns", config.blocked_patterns)):
        if key not in block:
            continue
        per_type = block[key]
        if per_type is None:
            per_type = {}
        if not isinstance(per_type, Mapping):
            ctx.add(ctx.value_loc(block, key),
                    f"blocklist.{key} must map an identifier type to a list")
            continue
        # Listing a type replaces its defaults; unlisted types keep theirs.
        for id_type in per_type:
            if not ctx.known_type(per_type, id_type, f"blocklist.{key}"):
                continue
            items = _strings(ctx, per_type, id_type, f"blocklist.{key}.{id_type}")
            if key == "patterns":
                items = [p for i, p in enumerate(items)
                         if _check_pattern(ctx, per_type[id_type], i, p)]
            target[id_type] = tuple(items)
    if "repeated_character" in block:
        kinds = _strings(ctx, block, "repeated_character", "blocklist.repeated_character")
        seq = block["repeated_character"]
        good = []
        for index, kind in enumerate(kinds):
            if kind in ID_TYPES:
                good.append(kind)
            else:
                ctx.add(ctx.item_loc(seq, index),
                        f"unknown identifier type '{kind}'{one_of(kind, ID_TYPES)}")
        config.repeated_character = tuple(good)


def _strings(ctx: _IdentityDoc, mapping: Mapping, key: str, name: str) -> list[str]:
    """A list of strings; numbers are refused because YAML turns 00000000000 into 0."""
    seq = mapping[key]
    if seq is None:
        return []
    if not isinstance(seq, list):
        ctx.add(ctx.value_loc(mapping, key), f"{name} must be a list")
        return []
    result = []
    for index, item in enumerate(seq):
        if isinstance(item, str) and item.strip():
            result.append(item.strip())
        elif isinstance(item, (int, float)) and not isinstance(item, bool):
            ctx.add(ctx.item_loc(seq, index),
                    f"{name}: write {item!r} in quotes ('...'): unquoted digits are read "
                    "as a number and lose leading zeros")
        else:
            ctx.add(ctx.item_loc(seq, index), f"{name}: expected a non-empty text value, "
                    f"got {item!r}")
    return result


# RE2 (DuckDB's regex engine) has no look-around and no back-references.
_NOT_RE2 = re.compile(r"\(\?[=!<]|\\[1-9]")


# What RE2 and Java (the Spark engine's regular expressions) read differently: refused,
# so both engines block the same values (one Java cannot compile would stop a Spark night).
_POSIX_CLASS = ("a POSIX class such as [[:digit:]]", "write [0-9], [a-zA-Z] …")
_INTERSECTION = ("&&, an intersection of classes in Java", "write \\&\\&")
_NESTED_CLASS = ("a [ inside a class (a union in Java)", "write \\[")
_LOOSE_BRACE = ("a { that is no repetition {n,m}", "write \\{")
_OCTAL = ("an octal escape \\0", "write the character")
_NAMED_GROUP = ("a (?P…) group", "write (…)")
_CASED = ("case-insensitive matching of letters beyond ASCII (Java folds ASCII only)",
          "list both cases, [Ää]")
_REPETITION = re.compile(r"\{[0-9]+(,[0-9]*)?\}")


def java_reads_otherwise(pattern: str) -> tuple[str, str] | None:
    """(what, advice) of the first construct of `pattern` RE2 and Java read differently;
    None when there is none. Escapes are taken in pairs, and classes followed."""
    in_class, i = False, 0
    while i < len(pattern):
        c, rest = pattern[i], pattern[i:]
        if c == "\\":
            if rest[1:2] == "0":
                return _OCTAL
            i += 2
            continue
        if in_class:
            if rest.startswith("[:"):
                return _POSIX_CLASS
            if rest.startswith("&&"):
                return _INTERSECTION
            if c == "[":
                return _NESTED_CLASS
            if c == "]":
                in_class = False
        elif c == "[":
            in_class, i = True, i + (2 if rest[1:2] == "^" else 1)
            i += 1 if pattern[i:i + 1] == "]" else 0  # a leading ] is a member
            continue
        elif c == "{" and not _REPETITION.match(rest):
            return _LOOSE_BRACE
        elif rest.startswith("(?P"):
            return _NAMED_GROUP
        elif rest.startswith("(?") and "i" in rest[2:].split(")")[0].split(":")[0] and any(
                ord(ch) > 127 and ch.lower() != ch.upper() for ch in rest):
            return _CASED
        i += 1
    return None


def _check_pattern(ctx: _IdentityDoc, seq: list, index: int, pattern: str) -> bool:
    other = java_reads_otherwise(pattern)
    if other:
        ctx.add(ctx.item_loc(seq, index), f"regular expression {pattern!r} uses {other[0]}, "
                f"which the Spark engine (Java) reads otherwise: {other[1]}")
        return False
    try:
        re.compile(pattern)
    except re.error as exc:
        ctx.add(ctx.item_loc(seq, index), f"invalid regular expression {pattern!r}: {exc}")
        return False
    if _NOT_RE2.search(pattern):
        ctx.add(ctx.item_loc(seq, index), f"regular expression {pattern!r} uses "
                "look-around or a back-reference, which are not supported")
        return False
    problem = re2_problem(pattern)
    if problem:  # what Python reads and RE2 does not: `(?>…)`, `*+`, `\Z`, `{1001}`
        ctx.add(ctx.item_loc(seq, index), f"invalid regular expression {pattern!r}: "
                f"{problem} (patterns are RE2's, as the engine runs them)")
        return False
    return True


@functools.cache
def _regex_engine() -> Any:
    import duckdb

    return duckdb.connect()


def re2_problem(pattern: str) -> str | None:
    """Why RE2, the engine's regular expressions (DuckDB's `regexp_matches`), cannot
    compile `pattern`; None when it can."""
    import duckdb

    try:
        _regex_engine().execute("SELECT regexp_matches('', ?)", [pattern]).fetchall()
    except duckdb.Error as exc:
        return re.sub(r"^[A-Za-z ]+ Error: ", "", str(exc).splitlines()[0])
    return None


def _parse_survivorship(ctx: _IdentityDoc, doc: Mapping, config: IdentityConfig) -> None:
    if "survivorship" not in doc:
        return
    rules = doc["survivorship"]
    if rules is None:
        return
    if not isinstance(rules, Mapping):
        ctx.add(ctx.value_loc(doc, "survivorship"),
                "survivorship must map a person field to a method")
        return
    for name, rule in rules.items():
        if name not in GOLDEN_FIELDS:
            ctx.add(ctx.key_loc(rules, name),
                    f"unknown person field '{name}'{one_of(name, GOLDEN_FIELDS)}")
            continue
        where = ctx.value_loc(rules, name)
        sources: tuple[str, ...] = ()
        if isinstance(rule, str):
            method = rule
        elif isinstance(rule, Mapping):
            ctx.unknown_setting_keys(rule, RULE_KEYS, f"survivorship.{name}.")
            method = rule.get("method")
            where = ctx.value_loc(rule, "method")
            if "sources" in rule:
                sources = tuple(_strings(ctx, rule, "sources", f"survivorship.{name}.sources"))
        else:
            ctx.add(where, f"survivorship.{name} must be a method name or a mapping with "
                    "`method:` (and `sources:` for source_priority)")
            continue
        if method not in METHODS:
            ctx.add(where, f"unknown survivorship method {method!r} for '{name}'"
                    f"{one_of(method, METHODS)}")
            continue
        if method == "source_priority" and not sources:
            ctx.add(where, f"survivorship.{name}: source_priority needs `sources:`, "
                    "a list of sources, most trusted first")
            continue
        if sources and method != "source_priority":
            ctx.add(ctx.key_loc(rule, "sources"), f"survivorship.{name}: `sources:` is "
                    "only used by method source_priority")
            continue
        config.survivorship[name] = Survivorship(method, sources)


class _IdentityDoc(RuleDoc):
    """RuleDoc with identity.yaml's messages: keys named by their dotted path
    (`cap.by_type`), identifier types checked against ID_TYPES."""

    def unknown_setting_keys(self, mapping: Mapping, known: tuple[str, ...],
                             prefix: str) -> None:
        for key in mapping:
            if key not in known:
                self.add(self.key_loc(mapping, key),
                         f"unknown key '{prefix}{key}'{one_of(key, known)}")

    def known_type(self, mapping: Mapping, id_type: Any, name: str) -> bool:
        if id_type in ID_TYPES:
            return True
        self.add(self.key_loc(mapping, id_type), f"{name}: unknown identifier type "
                 f"'{id_type}'{one_of(id_type, ID_TYPES)}")
        return False
