"""identity suspects: linking values shared by many names or cities, and the blocklist
fragment written for review."""

from __future__ import annotations

import datetime as dt

import pytest
import yaml
from conftest import Cli, write

import leadctl.textfile as textfile
from leadctl.errors import InputError
from leadctl.identity.config import parse_identity_config
from leadctl.identity.suspects import find_suspects, fragment_text, write_fragment
from tests.test_identity_support import resolve, workspace

SHOP = "13511112222"  # a shop's phone: four customers in two cities
HOME = "13633334444"  # one person written four ways: not a suspect
LEADS = [
    {"lead_id": "S1", "name": "王伟", "phone": SHOP, "city": "上海"},
    {"lead_id": "S2", "name": "李娜", "phone": SHOP, "city": "Shanghai"},
    {"lead_id": "S3", "name": "张敏", "phone": SHOP, "city": "北京"},
    {"lead_id": "S4", "name": "刘洋", "phone": SHOP, "city": "SH"},
    {"lead_id": "H1", "name": "彭颖婷", "phone": HOME, "city": "成都"},
    {"lead_id": "H2", "name": "颖婷", "phone": HOME, "city": "成都市"},
    {"lead_id": "H3", "name": "彭女士", "phone": HOME, "city": "chengdu"},
    {"lead_id": "H4", "name": " 彭 颖婷 ", "phone": HOME},
    {"lead_id": "D1", "name": "赵强", "device_id": "dev-0001-office", "city": "广州"},
    {"lead_id": "D2", "name": "钱进", "device_id": "dev-0001-office", "city": "深圳"},
    {"lead_id": "D3", "name": "孙丽", "device_id": "dev-0001-office", "city": "杭州"},
]


@pytest.fixture(scope="module")
def ws():
    ws = workspace(*LEADS)
    resolve(ws)
    return ws


def test_values_ranked_by_distinct_names_and_cities(ws):
    got = find_suspects(ws, min_distinct=2)
    assert [(s["type"], s["value"], s["records"], s["names"], s["cities"], s["score"])
            for s in got["suspects"]] == [
        ("phone", "135****2222", 4, 4, 2, 4),  # same score: more records first
        ("device_id", "de****ce", 3, 3, 3, 4),
    ]
    assert got["suspects"][0]["name_list"] == ["刘*", "张*", "李*", "王*"]
    assert got["suspects"][0]["city_list"] == ["上海市", "北京市"]
    assert [s["names"] for s in find_suspects(ws, min_distinct=4)["suspects"]] == [4]
    revealed = find_suspects(ws, min_distinct=2, limit=1, reveal=True)
    assert ([s["value"] for s in revealed["suspects"]], revealed["total"]) == (
        ["+8613511112222"], 2)  # the first of 2


def test_the_fragment_is_a_blocklist_with_real_values(ws, tmp_path):
    out = tmp_path / "suspects.yaml"
    got = find_suspects(ws, min_distinct=2, limit=1, out=out)
    text = out.read_text(encoding="utf-8")
    assert got["file"] == str(out) and got["total"] == 2
    assert text.splitlines()[6:] == [
        "blocklist:", "  values:", "    device_id:",
        '      - "dev-0001-office"  # 3 records, 3 names, 3 cities', "    phone:",
        '      - "+8613511112222"  # 4 records, 4 names, 2 cities']
    assert "REAL, UNMASKED VALUES" in text
    config = parse_identity_config(yaml.safe_load(text), out)  # pasteable as it is
    assert list(config.blocked_values["phone"]) == ["+8613511112222"]
    empty = fragment_text([], 3, dt.date(2026, 12, 2))
    assert empty.splitlines()[0] == "# Suspects found by `leadctl identity suspects` on 2026-12-02:"
    assert yaml.safe_load(empty) == {"blocklist": {"values": {}}}


def test_the_fragment_reads_back_every_value_as_itself():
    # DEL stopped YAML reading the file; NEL came back as a space (another value blocked)
    values = ["wx\x7fdel", "wx\x85nel", "x\u202egnp", "wx\u2028ls"]
    rows = [{"id_type": "wechat", "value": v, "records": 3, "names": 3, "cities": 1}
            for v in values]
    text = fragment_text(rows, 3, dt.date(2026, 12, 2))
    assert '      - "wx\\u007fdel"  # 3 records, 3 names, 1 cities' in text.splitlines()
    assert yaml.safe_load(text)["blocklist"]["values"]["wechat"] == values


def test_cli_suspects(tmp_path):
    cli = Cli(tmp_path / "ws.duckdb")
    rows = "\n".join(f"{lead['lead_id']},{lead['name']},{lead.get('phone', '')},"
                     f"{lead.get('city', '')},2026-10-01" for lead in LEADS if "phone" in lead)
    write(tmp_path / "web.csv", "lead_id,name,phone,city,created_at\n" + rows + "\n")
    assert cli("ingest", tmp_path / "web.csv").exit_code == 0
    assert cli("resolve").exit_code == 0
    got = cli("identity", "suspects", "--json")
    assert (got.exit_code, [(s["type"], s["value"], s["names"], s["cities"])
                            for s in got.json()["suspects"]]) == (
        0, [("phone", "135****2222", 4, 2)])
    written = cli("identity", "suspects", "-o", tmp_path / "s.yaml")
    assert written.exit_code == 0 and "+8613511112222" not in written.stdout
    assert "+8613511112222" in (tmp_path / "s.yaml").read_text(encoding="utf-8")
    bad = cli("identity", "suspects", "--min-distinct", "0")
    assert (bad.exit_code, bad.stderr) == (
        2, "error: --min-distinct must be a whole number from 1 to 1000000000, not 0\n")
    (tmp_path / "adir").mkdir()
    for out, message in ((tmp_path / "adir", f"{tmp_path / 'adir'} is a folder: give a file name"),
                         (tmp_path / "nodir" / "s.yaml", f"directory {tmp_path / 'nodir'} "
                                                          "does not exist")):
        failed = cli("identity", "suspects", "-o", out, "--json")
        assert (failed.exit_code, failed.json()["error"]["message"]) == (2, message)
    assert sorted(p.name for p in tmp_path.iterdir() if "yaml" in p.name) == ["s.yaml"]
    assert list((tmp_path / "adir").iterdir()) == []


def test_a_refused_write_leaves_no_half_file(tmp_path, monkeypatch):
    target = tmp_path / "s.yaml"


    real_fdopen = textfile.os.fdopen

    class FullDisk:
        def __init__(self, fd, *args, **kwargs):
            self.out = real_fdopen(fd, "wb")

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.out.close()

        def write(self, text):
            self.out.write(b"blockl")  # what landed before the disk filled up
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(textfile.os, "fdopen", FullDisk)
    with pytest.raises(InputError, match=f"cannot write {target}: No space left on device"):
        write_fragment(target, [], 2)
    assert list(tmp_path.iterdir()) == []


def test_a_place_only_a_province_names_is_one_city_and_a_null_token_none():
    ws = workspace(
        {"lead_id": "K1", "name": "甲", "phone": "13800000081", "city": "香港"},
        {"lead_id": "K2", "name": "甲", "phone": "13800000081", "city": "Hong Kong"},
        {"lead_id": "K3", "name": "甲", "phone": "13800000081", "city": "HK"},
        {"lead_id": "K4", "name": "甲", "phone": "13800000081", "city": "N/A"})
    resolve(ws)
    assert find_suspects(ws, min_distinct=2)["suspects"] == []


def test_a_city_cell_quoting_a_phone_or_e_mail_is_masked_unless_revealed():
    ws = workspace(
        {"lead_id": "Q1", "name": "甲", "phone": "13800000091",
         "city": "call 13912345678 z@qq.com"},
        {"lead_id": "Q2", "name": "乙", "phone": "13800000091", "city": "上海"})
    resolve(ws)
    shown = find_suspects(ws, min_distinct=2)["suspects"]
    assert [s["city_list"] for s in shown] == [["c***@qq.com", "上海市"]]
    revealed = find_suspects(ws, min_distinct=2, reveal=True)["suspects"]
    assert [s["city_list"] for s in revealed] == [["call13912345678z@qq.com", "上海市"]]
