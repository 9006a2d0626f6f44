"""Linking: blocklist, per-value cap, chains of shared values, the blocked report."""

from __future__ import annotations

import dataclasses
import random

import pytest

from leadctl.identity import link
from leadctl.identity.config import IdentityConfig
from tests.test_identity_support import clusters, groups, identifier, resolve, workspace


def blocked_report(ws) -> list[tuple]:
    return [tuple(r.values()) for r in ws.rows(
        "SELECT id_type, value, reason, records, status FROM blocked_identifiers "
        "ORDER BY id_type, value")]


def test_default_blocklist_values_never_link_and_are_reported():
    ws = workspace(
        {"lead_id": "A", "phone": "13800138000", "email": "a@qq.com"},
        {"lead_id": "B", "phone": "138 0013 8000", "email": "test@test.com"},
        {"lead_id": "C", "phone": "11111111111", "email": "TEST@test.com"},
        {"lead_id": "D", "phone": "11111111111",
         "device_id": "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF"},
        {"lead_id": "E", "wechat": "Unknown",
         "device_id": "ffffffff-ffff-ffff-ffff-ffffffffffff"},
        {"lead_id": "F", "wechat": "unknown", "email": "null@163.com"},
        {"lead_id": "G", "email": "null@163.com"},
    )
    summary = resolve(ws)
    assert clusters(ws) == groups(*({x} for x in "ABCDEFG"))
    assert blocked_report(ws) == [
        ("device_id", "ffffffff-ffff-ffff-ffff-ffffffffffff", "repeated character", 2,
         "blocked"),
        ("email", "null@163.com", "blocklist pattern ^(test|null|none|nobody|unknown|noreply|"
         "no-reply|donotreply)@", 2, "blocked"),
        ("email", "test@test.com", "blocklist", 2, "blocked"),
        ("phone", "+8613800138000", "blocklist", 2, "blocked"),
        ("phone", "11111111111", "repeated character", 2, "blocked"),
        ("wechat", "unknown", "blocklist", 2, "blocked"),
    ]
    assert identifier(ws, "C", "phone") == {"value": "11111111111", "status": "blocked",
                                            "records": None, "reason": "repeated character"}
    assert summary.blocked_values == 6
    assert summary.top_blocked[0] == {"id_type": "device_id", "value": "ff****ff",
                                      "status": "blocked", "reason": "repeated character",
                                      "records": 2}


def test_one_repeated_character_is_junk_whatever_separators_end_it():
    # A trailing brace or separator failed the cheap last-two-characters test, and a
    # 15-digit card was tested after its upgrade to 18 digits: each pair was linked
    ws = workspace(
        {"lead_id": "A1", "device_id": "{00000000-0000-0000-0000-000000000000}"},
        {"lead_id": "A2", "device_id": "{00000000-0000-0000-0000-000000000000}"},
        {"lead_id": "B1", "device_id": "(000000000000)"},
        {"lead_id": "B2", "device_id": "(000000000000)"},
        {"lead_id": "C1", "wechat": "aaaaaa."},
        {"lead_id": "C2", "wechat": "aaaaaa."},
        {"lead_id": "D1", "id_card": "111111111111111"},
        {"lead_id": "D2", "id_card": "111111111111111"},
        {"lead_id": "E1", "wechat": "wx_abcabc"},  # not one character: links
        {"lead_id": "E2", "wechat": "wx_abcabc"},
    )
    resolve(ws)
    assert clusters(ws) == groups({"E1", "E2"}, *({x} for x in (
        "A1", "A2", "B1", "B2", "C1", "C2", "D1", "D2")))
    assert [(t, reason) for t, _, reason, _, _ in blocked_report(ws)] == [
        ("device_id", "repeated character"), ("device_id", "repeated character"),
        ("id_card", "repeated character"), ("wechat", "repeated character")]


def test_a_null_token_is_no_identifier_whatever_the_blocklist():
    # pandas writes a missing cell as `nan`; the blocklist (emptied here) never sees it
    config = dataclasses.replace(IdentityConfig(), blocked_any=())
    ws = workspace({"lead_id": "A", "phone": "13912345671", "device_id": "nan"},
                   {"lead_id": "B", "phone": "13912345672", "device_id": "NaN"},
                   {"lead_id": "C", "phone": "13912345673", "wechat": "N/A"},
                   {"lead_id": "D", "phone": "13912345674", "wechat": "n/a",
                    "email": "nan"})
    resolve(ws, config)
    assert clusters(ws) == groups(*({x} for x in "ABCD"))
    assert ws.scalar("SELECT count(*) FROM lead_identifiers WHERE id_type <> 'phone'") == 0


def test_an_any_word_blocks_its_spellings_in_either_case_as_keys_read_it():
    # keys lower-case ASCII letters only: `Ünbekannt` was listed as ünbekannt/ÜNBEKANNT
    config = dataclasses.replace(IdentityConfig(), blocked_any=("Ünbekannt",))
    ws = workspace(*({"lead_id": k, "phone": f"1391234567{n}", "wechat": w}
                     for n, (k, w) in enumerate(zip("ABC", ("Ünbekannt", "ÜNBEKANNT",
                                                            "ünbekannt"), strict=True))))
    resolve(ws, config)
    assert [identifier(ws, k, "wechat")["status"] for k in "ABC"] == ["blocked"] * 3


def test_a_configured_blocklist_replaces_the_defaults_of_its_type():
    config = IdentityConfig()
    config.blocked_values = {**config.blocked_values, "phone": ("139-1234-5678",)}
    ws = workspace({"lead_id": "A", "phone": "13800138000"},
                   {"lead_id": "B", "phone": "+86 138 0013 8000"},
                   {"lead_id": "C", "phone": "13912345678"},
                   {"lead_id": "D", "phone": "0086 139 1234 5678"})
    resolve(ws, config)
    assert clusters(ws) == groups({"A", "B"}, {"C"}, {"D"})
    assert blocked_report(ws) == [("phone", "+8613912345678", "blocklist", 2, "blocked")]


def test_a_value_shared_by_more_records_than_the_cap_does_not_link():
    config = dataclasses.replace(IdentityConfig(), max_records_per_value=3)
    ws = workspace(
        *({"lead_id": f"S{i}", "phone": "13912345678", "email": f"s{i}@qq.com"}
          for i in range(4)),
        *({"lead_id": f"T{i}", "phone": "13712345678"} for i in range(3)),
        {"lead_id": "U", "email": "s0@qq.com"},
    )
    summary = resolve(ws, config)
    assert clusters(ws) == groups({"S0", "U"}, {"S1"}, {"S2"}, {"S3"}, {"T0", "T1", "T2"})
    assert blocked_report(ws) == [
        ("phone", "+8613912345678", "shared by 4 records, over the cap of 3", 4, "capped")]
    assert identifier(ws, "S1", "phone")["status"] == "capped"
    assert identifier(ws, "T1", "phone") == {"value": "+8613712345678", "status": "ok",
                                             "records": 3, "reason": None}
    assert summary.capped_values == 1


def test_the_cap_can_differ_per_identifier_type():
    config = dataclasses.replace(IdentityConfig(), cap_by_type={"device_id": 2})
    ws = workspace(*({"lead_id": f"D{i}", "device_id": "dev-1"} for i in range(3)),
                   *({"lead_id": f"P{i}", "phone": "13612345678"} for i in range(3)))
    resolve(ws, config)
    assert clusters(ws) == groups({"D0"}, {"D1"}, {"D2"}, {"P0", "P1", "P2"})


def test_records_chained_through_different_identifiers_are_one_person():
    ws = workspace(
        {"lead_id": "A", "phone": "13812345678"},
        {"lead_id": "B", "phone": "13812345678", "email": "b@163.com"},
        {"lead_id": "C", "email": "b@163.com", "wechat": "wx_c1"},
        {"lead_id": "D", "wechat": "WX_C1", "id_card": "11010519491231002X"},
        {"lead_id": "E", "id_card": "11010519491231002X", "device_id": "dev-e"},
        {"lead_id": "F", "device_id": "dev-f"},
    )
    resolve(ws)
    assert clusters(ws) == groups({"A", "B", "C", "D", "E"}, {"F"})


def chain(n: int) -> list[dict]:
    """A path of n leads: lead i shares an e-mail with lead i-1 (odd i) or a phone (even i)."""
    return [{"lead_id": f"L{i:03d}", "phone": f"1381234{(i + 1) // 2:04d}",
             "email": f"e{i // 2}@qq.com"} for i in range(n)]


def test_a_long_chain_is_one_person_found_in_few_rounds():
    n = 200
    # Lead keys in a scrambled order, so the smallest label has far to travel.
    leads = sorted(chain(n), key=lambda lead: (int(lead["lead_id"][1:]) * 37) % n)
    ws = workspace(*leads)
    summary = resolve(ws)
    assert clusters(ws) == groups({f"L{i:03d}" for i in range(n)})
    assert summary.largest_person == n
    assert summary.rounds <= 8  # min-label propagation would need ~n rounds


@pytest.mark.parametrize("seed", range(6))
def test_components_match_a_union_find_on_random_graphs(seed):
    rng = random.Random(seed)
    n = 120
    leads = [{"lead_id": f"L{i:03d}", "phone": f"1391234{rng.randrange(90):04d}",
              "email": f"e{rng.randrange(150)}@qq.com" if rng.random() < 0.7 else None,
              "wechat": f"wx{rng.randrange(200)}" if rng.random() < 0.5 else None}
             for i in range(n)]
    ws = workspace(*leads)
    resolve(ws)
    parent = list(range(n))

    def find(i):
        while parent[i] != i:
            i = parent[i]
        return i

    owner: dict = {}
    for i, lead in enumerate(leads):
        for key in ("phone", "email", "wechat"):
            if lead[key] is not None:
                j = owner.setdefault((key, lead[key]), i)
                parent[find(i)] = find(j)
    expected: dict[int, set] = {}
    for i in range(n):
        expected.setdefault(find(i), set()).add(f"L{i:03d}")
    assert clusters(ws) == groups(*expected.values())


def test_builders_are_plain_sql_strings():
    config = dataclasses.replace(IdentityConfig(), cap_by_type={"device_id": 5})
    assert link.cap_sql(IdentityConfig()) == "20"
    assert link.cap_sql(config) == "(CASE id_type WHEN 'device_id' THEN 5 ELSE 20 END)"
    assert link.blocked_reason_sql(dataclasses.replace(
        IdentityConfig(), blocked_any=(), repeated_character=(), blocked_patterns={}), {}) \
        == "CAST(NULL AS VARCHAR)"
    assert "'+8613800138000'" in link.blocked_reason_sql(IdentityConfig(),
                                                         {"phone": ["+8613800138000"]})
