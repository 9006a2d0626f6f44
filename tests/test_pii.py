"""Masking of personal data: exact masks, free text (logs), and SQL ≡ Python."""

from __future__ import annotations

import logging
import shutil

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadctl import pii
from leadctl.workspace import open_memory
from tests.conftest import RULES, Cli

CASES = [
    ("phone", "13812345678", "138****5678"),
    ("phone", "+8613812345678", "138****5678"),
    ("phone", "+86 138-1234-5678", "138****5678"),
    ("phone", "+16502530000", "165****0000"),
    ("phone", "01012345678", "010****5678"),
    ("phone", "62345678", "62****78"),  # 7 to 10 digits: 3 or more hidden
    ("phone", "1372222", "13***22"),
    ("phone", "0216234567", "02******67"),
    ("phone", "12345", "***45"),
    ("phone", "", "****"),  # under 3 digits: masked as text, never a lone *
    ("phone", "12", "****"),
    ("phone", "abc", "a****c"),
    ("phone", "１３９５５５５０００１", "139****0001"),  # full-width digits: as ASCII ones
    ("phone", "139.5555.0009", "139****0009"),
    ("phone", "0086 139 5555 0008", "139****0008"),
    ("phone", "0086-0139-1234-0127", "139****0127"),
    ("phone", "+86 0139 1234 5678", "139****5678"),
    ("phone", "013812345678", "138****5678"),  # a trunk 0 alone is dropped as after +86
    ("phone", "０１３８-1234-5678", "138****5678"),
    ("phone", "0755-1234-5678", "755****5678"),  # as +86 755 1234 5678 shows
    ("phone", "+86 755 1234 5678", "755****5678"),
    ("email", "zhang.san@qq.com", "z***@qq.com"),
    ("email", " Zhang@Example.COM ", "Z***@Example.COM"),
    ("email", "a@b@c.com", "a***@c.com"),
    ("email", "@qq.com", "****@qq.com"),
    ("email", "not-an-email", "no****il"),
    ("name", "张三", "张*"),
    ("name", "张三丰", "张**"),
    ("name", "欧阳娜娜", "欧***"),
    ("name", "李", "****"),  # first character kept would show it all
    ("name", "李\t", "****"),  # white space is what str.strip() strips, in SQL too
    ("name", "\u2003张三\x1c", "张*"),
    ("name", " 李 ", "****"),
    ("name", "", ""),
    ("name", "John Smith", "J*********"),
    ("id_card", "110101199003071233", "1101**********1233"),
    ("id_card", "11010119900307123X", "1101**********123X"),
    ("id_card", "110101900307123", "1101*******7123"),
    ("id_card", "1234", "1****4"),
    ("wechat", "zhangsan_88", "zh****88"),
    ("wechat", "wx1234", "w****4"),
    ("wechat", "ab", "****"),
    ("device_id", "6F9619FF-8B86-D011-B42D-00C04FC964FF", "6F****FF"),
]


@pytest.mark.parametrize("kind,value,masked", CASES)
def test_masks(kind, value, masked):
    assert pii.mask(kind, value) == masked


def test_none_and_other_kinds_pass_through():
    assert pii.mask("phone", None) is None
    assert pii.mask("city", "上海") == "上海"
    assert pii.mask_values("phone", ["13812345678", "+8613900001111"]) == [
        "138****5678", "139****1111"]


def test_mask_text_for_logs():
    line = ("lead L1: phone 13812345678, alt +86 139-0000-1111, mail zhang@qq.com, "
            "id 110101199003071233, order 202611010001")
    assert pii.mask_text(line) == (
        "lead L1: phone 138****5678, alt 139****1111, mail z***@qq.com, "
        "id 1101**********1233, order 202611010001")


def test_mask_text_finds_a_phone_in_every_spelling_lookup_reads():
    line = ("utm call１３９５５５５０００２, term 139.5555.0006, "
            "alt ＋８６　１３９－５５５５－０００３, tel 139 5555 0004, wx 0086-139.5555.0005, "
            "trunk 0086-0139-1234-0127, +86 0139 1234 5678")
    assert pii.mask_text(line) == (
        "utm call139****0002, term 139****0006, alt 139****0003, tel 139****0004, "
        "wx 139****0005, trunk 139****0127, 139****5678")


def test_mask_text_finds_a_trunk_0_uneven_groups_and_mixed_separators():
    line = ("a 013812345678, b 0138-1234-5678, c 13 812 345 678, d 1381 2345 678, "
            "e 138 1234-5678, f 138 12345678, g １３８　１２３４－５６７８, h 0138.1234.5678, "
            "i 13 812 345 678 2026-11-01")
    assert pii.mask_text(line) == (
        "a 138****5678, b 138****5678, c 138****5678, d 138****5678, e 138****5678, "
        "f 138****5678, g 138****5678, h 138****5678, i 138****5678 2026-11-01")


def test_mask_text_finds_a_full_width_id_card():
    line = "id １１０１０１１９９００３０７１２３Ｘ, ｉｄ １１０１０１１９９００３０７１２３３。"
    assert pii.mask_text(line) == "id 1101**********123X, ｉｄ 1101**********1233。"


def test_mask_text_finds_an_id_card_written_in_groups():
    line = ("id 110101 19900307 123X; 110101-1990-0307-1233 and "
            "１１０１０１　１９９００３０７　１２３Ｘ")
    assert pii.mask_text(line) == ("id 1101**********123X; 1101**********1233 and "
                                   "1101**********123X")
    # beside other groups: a year before (its 18 are no birth date), a phone after
    assert pii.mask_text("2024 110101 19900307 123X; 110101-1990-0307-1233 13812345678; "
                         "no.1234 110101-1990-0307-1233") == (
        "2024 1101**********123X; 1101**********1233 138****5678; no.1234 1101**********1233")


def test_mask_text_leaves_numbers_that_are_no_phone():
    line = ("order 202611010001, amount 1395555000.25, date 2026.11.01, ip 139.55.0.6, "
            "ten digits 139.5555.000, twelve １３９５５５５０００２１, version 139.5555.00061, "
            "price 139.12345678, lng 134.12345678, amount 13912345678.5, 139.1234 5678, "
            "amount 1,234,567.89, date 2026-11-01, ip 13.155.100.200, amount 13.812.345.678, "
            "amount 13 812 345 678 901, price 1381234.5678, groups of two 13 81 23 45 678, "
            "order 1381 2345 6789, time 1500-2000, id 11010119900307123 4, amount 013 812 345 678, "
            "nineteen １１０１０１１９９００３０７１２３３１, card 6222 0212 3456 7890, "
            "bank 6222 0212 3456 7890 1234, short groups 110 101 199 003 071 233, "
            "range 20261101-20261130")
    assert pii.mask_text(line) == line


def _spelled(digits: str, groups: tuple[int, ...], seps: list[str], full_width: bool) -> str:
    parts, at = [], 0
    for size in groups:
        parts.append(digits[at:at + size])
        at += size
    text = parts[0] + "".join(seps[i % len(seps)] + part for i, part in enumerate(parts[1:]))
    return text.translate(_FULL_WIDTH) if full_width else text


_FULL_WIDTH = str.maketrans("0123456789Xx", "０１２３４５６７８９Ｘｘ")
# Groupings a mobile is written in: dots split only 3-4-4, both groups.
_GROUPS = [(11,), (3, 4, 4), (3, 8), (4, 4, 3), (4, 3, 4), (7, 4), (2, 3, 3, 3), (3, 3, 5)]
_SEPS = [" ", "-", "\u00a0", "\u3000", "－"]


def _spelled_mobile(prefix: str, digits: str, groups: tuple[int, ...], seps: list[str],
                    full_width: bool, dots: str) -> tuple[str, str]:
    if prefix in ("0", "０") and groups[0] == 2:
        prefix = ""  # a trunk 0 alone before 13 812 345 678 reads as an amount 013 812 345 678
    seps = [dots] if dots and groups == (3, 4, 4) else seps
    return prefix + _spelled(digits, groups, seps, full_width), digits


_MOBILES = st.builds(
    _spelled_mobile,
    st.sampled_from(["", "+86", "+86 ", "0086-", "+86 0", "0", "０", "86"]),
    st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True), st.sampled_from(_GROUPS),
    st.lists(st.sampled_from(_SEPS), min_size=1, max_size=3), st.booleans(),
    st.sampled_from(["", ".", "．"]))
# Groupings an ID card is written in (area, birth date, sequence and check), each group
# 4 characters or more, spaced or dashed.
_CARD_GROUPS = [(18,), (6, 8, 4), (6, 4, 4, 4), (4, 4, 4, 6), (6, 12)]
_ID_CARDS = st.builds(
    lambda digits, check, groups, sep, full_width: (
        _spelled(digits + check, groups, [sep], full_width), digits + check),
    st.from_regex(r"[1-9][0-9]{16}", fullmatch=True), st.sampled_from("0123456789Xx"),
    st.sampled_from(_CARD_GROUPS), st.sampled_from(_SEPS), st.booleans())
# Text around a value: no digits, dots, @ (an e-mail) or separators that would join it.
_AROUND = st.text(st.sampled_from("abcXYZ:;,()=_电话号码，。"), max_size=8)


@settings(max_examples=300, deadline=None)
@given(_MOBILES, _ID_CARDS, _AROUND, _AROUND, _AROUND)
def test_every_spelled_mobile_and_id_card_in_text_is_masked(mobile, id_card, a, b, c):
    (phone_text, digits), (card_text, card) = mobile, id_card
    assert pii.mask_text(f"{a} {phone_text} {b} {card_text} {c}") == (
        f"{a} {digits[:3]}****{digits[-4:]} {b} {card[:4]}{'*' * 10}{card[-4:]} {c}")


_NO_PHONES = st.one_of(
    st.decimals(0, 10**15, places=2).map(lambda d: f"{d:,}"),
    st.decimals(0, 10**15, places=2).map(str),
    st.integers(10**11, 10**18).map(lambda n: f"{n:,}".replace(",", " ")),  # not 11 digits
    st.integers(10**10, 10**18).map(lambda n: f"{n:,}".replace(",", ".")),
    st.dates().map(lambda d: f"{d:%Y-%m-%d} {d:%Y.%m.%d} {d:%Y%m%d}"),
    st.ip_addresses(v=4).map(str),
    st.from_regex(r"[1-79][0-9]{4,9}|[1-79][0-9]{11,16}|[1-9][0-9]{18,24}", fullmatch=True))


@settings(max_examples=300, deadline=None)
@given(st.lists(_NO_PHONES, min_size=1, max_size=4), _AROUND)
def test_amounts_dates_and_ids_of_other_lengths_are_left_alone(numbers, around):
    line = f"{around} " + f" {around} ".join(numbers)
    assert pii.mask_text(line) == line


def test_logging_filter_masks_records(caplog):

    logger = logging.getLogger("leadctl.test_pii")
    handler = caplog.handler
    handler.addFilter(pii.MaskingFilter())
    try:
        with caplog.at_level(logging.INFO, logger="leadctl.test_pii"):
            logger.info("lookup %s for %s", "13812345678", "zhang@qq.com")
    finally:
        handler.removeFilter(handler.filters[-1])
    assert caplog.messages == ["lookup 138****5678 for z***@qq.com"]


def test_a_caret_line_follows_its_masked_line():
    message = ("find failed (exit 2): invalid expression at column 40: unknown field\n"
               "  email = 'zhang.wei@example.com' AND 上海 nope\n"
               + " " * 43 + "^^^^")
    assert pii.mask_lines(message).split("\n")[1:] == [
        "  email = 'z***@example.com' AND 上海 nope",
        " " * 38 + "^^^^"]


def test_a_caret_into_a_masked_value_marks_the_whole_masked_value():
    message = "  email = 'zhangsan@example.com' and foo\n" + " " * 11 + "^" * 8 + "\r"
    assert pii.mask_lines(message).split("\n")[1] == " " * 11 + "^" * 16


def test_masking_a_long_run_without_an_at_sign_is_linear():
    # the e-mail pattern rescanned the run from each character: minutes at this length
    run = "x" * 200_000
    assert pii.mask_lines(f"a@example.com {run}\n{' ' * 200_010}^") == (
        f"a***@example.com {run}\n{' ' * 200_013}^")


def test_sql_strips_the_white_space_python_strips():
    assert "".join(c for c in map(chr, range(0x110000)) if c.isspace()) == pii.PYTHON_WHITE_SPACE


def test_sql_masks_match_python():
    ws = open_memory()
    for kind, value, masked in CASES:
        sql_value = ws.scalar(f"SELECT {pii.mask_sql(kind, 'v')} FROM (SELECT CAST(? AS VARCHAR) "
                              "AS v)", [value])
        assert (kind, value, sql_value) == (kind, value, masked)
    assert ws.scalar(f"SELECT {pii.mask_sql('phone', 'CAST(NULL AS VARCHAR)')}") is None
    assert pii.mask_sql("city", "city") == "city"


@pytest.mark.parametrize(("query", "shown"), [
    ("440106 19880512031X", "44****1X"), ("13912345678x", "13****8x"),
    ("x@y.com", "x***@y.com"), ("SEO200001", "SEO200001"), ("AG300000002", "AG300000002"),
    ("zz", "zz")])
def test_an_unclassified_query_is_echoed_with_long_numbers_masked(query, shown):
    assert pii.mask_query(query) == shown


def test_an_override_reason_quoting_contacts_is_masked_on_every_screen(tmp_path):


    shutil.copytree(RULES, tmp_path / "rules")
    inbox = tmp_path / "in"
    inbox.mkdir()
    (inbox / "src.csv").write_text("lead_id,name,phone,created_at\n"
                                   "M7,Zhang,13811112222,2026-10-26 10:00\n"
                                   "M8,Li,13811112222,2026-10-27 10:00\n", encoding="utf-8")
    cli = Cli(tmp_path / "ws.duckdb", tmp_path / "rules")
    reason = "shop phone; owner 13922223333 iron.fan@163.com card 11010519491231002X"
    assert cli("run", "--inbox", inbox, "--as-of", "2026-11-01").exit_code == 0
    assert cli("identity", "unlink", "M7", "M8", "--reason", reason).exit_code == 0
    assert cli("run", "--inbox", inbox, "--as-of", "2026-11-02").exit_code == 0
    masked = "shop phone; owner 139****3333 i***@163.com card 1101**********002X"
    shown = [cli(*args) for args in (
        ("identity", "why", "M7", "M8"), ("identity", "why", "M7", "M8", "--json"),
        ("runs", "--json"), ("resolve", "--dry-run", "--json"))]
    for result in shown:
        assert "13922223333" not in result.stdout and masked in result.stdout, result.stdout
    revealed = cli("identity", "why", "M7", "M8", "--reveal", "--json").json()
    assert revealed["overrides"][0]["reason"] == reason


def test_find_echoes_a_phone_or_email_typed_in_its_expression_masked(tmp_path):

    cli = Cli(tmp_path / "ws.duckdb")
    assert cli("init").exit_code == 0
    failed = cli("find", "phone = '13811112222'")
    assert (failed.exit_code, failed.stderr.splitlines()[1]) == (2, "  phone = '138****2222'")
    revealed = cli("find", "phone = '13811112222'", "--reveal")
    assert revealed.stderr.splitlines()[1] == "  phone = '13811112222'"
    found = cli("find", "city = '13811112222' or city = 'a.b@qq.com'", "--json").json()
    assert found["expr"] == "city = '138****2222' or city = 'a***@qq.com'"
    found = cli("find", "city = '0138-1234-5678' or city = '13 812 345 678' or "
                "city = '１１０１０１１９９００３０７１２３Ｘ'", "--json").json()
    assert found["expr"] == ("city = '138****5678' or city = '138****5678' or "
                             "city = '1101**********123X'")


def test_a_full_width_or_dotted_phone_in_a_utm_value_or_expression_is_masked(tmp_path):


    shutil.copytree(RULES, tmp_path / "rules")
    inbox = tmp_path / "in"
    inbox.mkdir()
    (inbox / "src.csv").write_text(
        "lead_id,name,phone,created_at,utm_source,utm_term\n"
        "W1,Wang,13955550001,2026-10-26 10:00,call１３９５５５５０００２,139.5555.0006\n",
        encoding="utf-8")
    cli = Cli(tmp_path / "ws.duckdb", tmp_path / "rules")
    assert cli("run", "--inbox", inbox, "--as-of", "2026-11-01").exit_code == 0
    leads = cli("portrait", "W1", "--json").json()["leads"]
    assert [(lead["utm_source"], lead["utm_term"]) for lead in leads] == [
        ("call139****0002", "139****0006")]
    assert "call139****0002" in cli("portrait", "W1").stdout
    for by, masked in (("utm_source", "call139****0002"), ("utm_term", "139****0006")):
        channels = cli("report", "channels", "--by", by, "--json").json()["channels"]
        assert [c["channel"] for c in channels] == [masked]
        out = tmp_path / f"{by}.csv"
        assert cli("report", "channels", "--by", by, "-o", out).exit_code == 0
        assert out.read_text(encoding="utf-8").splitlines()[1].split(",")[0] == masked
    expr = "city = '139.5555.0006' or city = '１３９５５５５０００２'"
    found = cli("find", expr, "--json").json()
    assert found["expr"] == "city = '139****0006' or city = '139****0002'"
    log = tmp_path / "log.txt"
    failed = cli("--log-file", log, "find", "utm_source = '１３９５５５５０００２' and")
    assert (failed.exit_code, failed.stderr.splitlines()[1]) == (
        2, "  utm_source = '139****0002' and")
    assert "  utm_source = '139****0002' and" in log.read_text(encoding="utf-8").splitlines()
    assert "５" not in failed.stderr + log.read_text(encoding="utf-8")


def test_audience_export_echoes_a_phone_typed_in_its_expression_masked(tmp_path):

    cli = Cli(tmp_path / "ws.duckdb")
    assert cli("init").exit_code == 0
    out = tmp_path / "a.csv"
    failed = cli("audience", "export", "x1", "city = '13909050631' or foo = 1", "-o", out)
    assert (failed.exit_code, failed.stderr.splitlines()[1]) == (
        2, "  city = '139****0631' or foo = 1")
    done = cli("audience", "export", "x2", "city = '13909050631'", "-o", out, "--json")
    assert (done.exit_code, done.json()["expr"]) == (0, "city = '139****0631'")
    runs = cli("runs", "--json")
    assert "city = '139****0631'" in runs.stdout and "13909050631" not in runs.stdout


def test_a_one_character_name_is_masked_whole_on_every_screen(tmp_path):

    inbox = tmp_path / "in"
    inbox.mkdir()
    (inbox / "src.csv").write_text("lead_id,name,phone,created_at\n"
                                   "Z1,张,13955550011,2026-10-26 10:00\n"
                                   "Z2,王五,13955550012,2026-10-26 11:00\n", encoding="utf-8")
    cli = Cli(tmp_path / "ws.duckdb")
    assert cli("run", "--inbox", inbox, "--as-of", "2026-11-01").exit_code == 0
    assert cli("portrait", "Z1", "--json").json()["name"] == "****"
    assert cli("portrait", "Z1").stdout.splitlines()[1].split()[1] == "****"
    found = cli("find", "lead_count >= 1", "--json").json()["persons"]
    assert sorted(p["name"] for p in found) == ["****", "王*"]
    assert cli("portrait", "Z1", "--json", "--reveal").json()["name"] == "张"
