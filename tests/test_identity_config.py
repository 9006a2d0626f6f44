"""identity.yaml: defaults, the shipped file, and errors with file:line:col."""

from __future__ import annotations

from pathlib import Path

import pytest

from leadctl.errors import RuleError
from leadctl.identity.config import IdentityConfig, Survivorship, load_identity_config

REPO = Path(__file__).resolve().parent.parent


def load(tmp_path: Path, text: str) -> IdentityConfig:
    (tmp_path / "identity.yaml").write_text(text, encoding="utf-8")
    return load_identity_config(tmp_path)


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(RuleError) as err:
        load(tmp_path, text)
    prefix = str(tmp_path / "identity.yaml")
    return [line.replace(prefix, "F") for line in str(err.value).splitlines()]


def test_missing_file_means_defaults(tmp_path):
    assert load_identity_config(tmp_path) == IdentityConfig()


def test_the_shipped_file_documents_exactly_the_defaults():
    config = load_identity_config(REPO / "rules")
    assert dataclass_fields(config) == dataclass_fields(IdentityConfig())


def dataclass_fields(config: IdentityConfig) -> dict:
    return {k: v for k, v in vars(config).items() if k != "path"}


def test_settings_are_read(tmp_path):
    config = load(tmp_path, """
default_region: hk
cap:
  max_records_per_value: 5
  by_type: {device_id: 2}
blocklist:
  values:
    phone: ['13912345678']
  repeated_character: [phone]
survivorship:
  city: {method: source_priority, sources: [agent_list, sem_baidu]}
  name: earliest
""")
    assert config.default_region == "HK"
    assert (config.cap("phone"), config.cap("device_id")) == (5, 2)
    assert config.blocked_values["phone"] == ("13912345678",)
    assert config.blocked_values["email"] == IdentityConfig().blocked_values["email"]
    assert config.repeated_character == ("phone",)
    assert config.survivorship["city"] == Survivorship("source_priority",
                                                       ("agent_list", "sem_baidu"))
    assert config.survivorship["name"] == Survivorship("earliest")


@pytest.mark.parametrize(("pattern", "reason"), [
    (r"^\+86(?>13611110001)$", "invalid perl operator: (?>"),
    ("1*+", "bad repetition operator: *+"),
    (r"0000\Z", r"invalid escape sequence: \Z"),
    ("0{1001}", "invalid repetition size: {1001}"),
])
def test_a_pattern_python_reads_but_re2_does_not_is_refused_at_its_place(tmp_path, pattern,
                                                                         reason):
    """The engine runs the patterns (RE2): one it cannot compile would stop every night
    with an internal error, so `rules check` refuses it where it is written."""
    assert problems(tmp_path, f"blocklist:\n  patterns:\n    phone: ['{pattern}']\n") == [
        f"F:3:13: invalid regular expression {pattern!r}: {reason} (patterns are RE2's, as "
        "the engine runs them)"]


@pytest.mark.parametrize(("pattern", "what"), [
    ("^[[:digit:]]+$", "a POSIX class such as [[:digit:]]"),
    ("^[a-c&&[^b]]+$", "&&, an intersection of classes in Java"),
    ("^(?P<junk>x)+$", "a (?P…) group"),
    ("a{,3}", "a { that is no repetition {n,m}"),
    ("[^[]", "a [ inside a class (a union in Java)"),
    ("(?i)^ÄBC@", "case-insensitive matching of letters beyond ASCII (Java folds ASCII only)"),
    ("(?i:ärger)", "case-insensitive matching of letters beyond ASCII (Java folds ASCII only)"),
    ("a{,3}", "a { that is no repetition {n,m}"),
])
def test_a_pattern_java_reads_otherwise_is_refused_so_both_engines_block_alike(tmp_path,
                                                                              pattern, what):
    """Spark runs the patterns with Java's regular expressions: `[[:digit:]]` blocked on
    DuckDB and linked on Spark (another person partition), `(?P<…>)` stopped the night."""
    [problem] = problems(tmp_path, f"blocklist:\n  patterns:\n    email: ['{pattern}']\n")
    assert problem.startswith(f"F:3:13: regular expression {pattern!r} uses {what}, which "
                              "the Spark engine (Java) reads otherwise: ")


@pytest.mark.parametrize("pattern", [
    "(?i)^(unknown|未知)$", "[{}]", r"\\0", r"\(?Pabc", r"[\[]", r"^\+861[3-9][0-9]0{8}$"])
def test_a_pattern_both_engines_read_alike_is_kept(tmp_path, pattern):
    """Chinese has no case; a { or [ escaped or inside a class is itself; `\\0` is a
    backslash and a 0: the engines agree on each."""
    config = load(tmp_path, f"blocklist:\n  patterns:\n    email: ['{pattern}']\n")
    assert pattern in config.blocked_patterns["email"]


def test_every_problem_is_reported_with_its_place(tmp_path):
    assert problems(tmp_path, """
cap:
  max_records_per_value: 0
  by_type: {fax: 3}
blocklist:
  values:
    phone: [13800138000, '13888888888']
  patterns:
    email: ['(?<=x)@', '[']
survivorship:
  city: newest
  colour: most_recent
  name: {method: source_priority}
unknown: 1
""") == [
        "F:3:26: cap.max_records_per_value must be a whole number >= 1, got 0",
        "F:4:13: cap.by_type: unknown identifier type 'fax' (known: phone, email, wechat, "
        "device_id, id_card)",
        "F:7:13: blocklist.values.phone: write 13800138000 in quotes ('...'): unquoted digits "
        "are read as a number and lose leading zeros",
        "F:9:13: regular expression '(?<=x)@' uses look-around or a back-reference, which are "
        "not supported",
        "F:9:24: invalid regular expression '[': unterminated character set at position 0",
        "F:11:9: unknown survivorship method 'newest' for 'city' (known: most_recent, "
        "most_frequent, source_priority, earliest)",
        "F:12:3: unknown person field 'colour' (known: name, phone, email, wechat, device_id, "
        "id_card, city, province, channel, source)",
        "F:13:18: survivorship.name: source_priority needs `sources:`, a list of sources, "
        "most trusted first",
        "F:14:1: unknown key 'unknown' (known: default_region, cap, blocklist, survivorship, "
        "overrides)",
    ]


def test_a_file_that_is_not_a_mapping(tmp_path):
    assert problems(tmp_path, "- a\n- b\n") == ["F:1:1: identity.yaml must be a mapping of "
                                                 "settings"]


def test_a_cap_past_a_billion_records_is_refused(tmp_path):
    assert problems(tmp_path, """
cap:
  max_records_per_value: 99999999999999999999
  by_type: {phone: 1000000001}
""") == [
        "F:3:26: cap.max_records_per_value must be at most 1000000000, got "
        "99999999999999999999",
        "F:4:20: cap.by_type.phone must be at most 1000000000, got 1000000001"]


def test_a_region_phonenumbers_does_not_know_is_a_rule_error(tmp_path):
    assert problems(tmp_path, "default_region: XX\n") == [
        "F:1:17: default_region 'XX' is not a region phonenumbers knows (CN, HK, TW, US, …): "
        "every number without a country code would be invalid"]
    assert load(tmp_path, "default_region: tw\n").default_region == "TW"
