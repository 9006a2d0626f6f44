"""Masking of personal data: exact masks, free text (logs), and SQL ≡ Python."""

from __future__ import annotations

import logging
import shutil

import pytest

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
    ("email", "zhang.san@qq.com", "z***@qq.com"),
    ("email", " Zhang@Example.COM ", "Z***@Example.COM"),
    ("email", "a@b@c.com", "a***@c.com"),
    ("email", "@qq.com", "****@qq.com"),
    ("email", "not-an-email", "no****il"),
    ("name", "张三", "张*"),
    ("name", "张三丰", "张**"),
    ("name", "欧阳娜娜", "欧***"),
    ("name", "李", "****"),  # first character kept would show it all
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


def test_mask_text_leaves_numbers_that_are_no_phone():
    line = ("order 202611010001, amount 1395555000.25, date 2026.11.01, ip 139.55.0.6, "
            "ten digits 139.5555.000, twelve １３９５５５５０００２１, version 139.5555.00061, "
            "price 139.12345678, lng 134.12345678, amount 13912345678.5, mixed 139-1234 5678")
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
