"""Rule YAML loading: exact locations of keys, values, items and characters; clear errors."""

from __future__ import annotations

import datetime as dt

import pytest

from leadctl.errors import Location, RuleError
from leadctl.rules.load import YDict, YList, load_yaml, load_yaml_text, rules_hash

TAGS = """\
# starter tags
tags:
  - name: value_tier
    kind: tiers
    levels:
      - {name: high, when: "paid_7d >= 30"}
      - name: low
        when: paid_7d > 0
    since: 2026-01-01
    weight: 1.5
    active: true
    note:
"""


def loc(line: int, col: int, file: str = "tags.yaml") -> Location:
    return Location(file, line, col)


def problems(text: str) -> list[tuple[Location | None, str]]:
    with pytest.raises(RuleError) as info:
        load_yaml_text(text, "f.yaml")
    return info.value.problems


def test_plain_data_with_yaml_types():
    doc = load_yaml_text(TAGS, "tags.yaml")
    tag = doc["tags"][0]
    assert isinstance(doc, YDict) and isinstance(doc["tags"], YList)
    assert doc == {"tags": [tag]}
    assert tag["levels"] == [{"name": "high", "when": "paid_7d >= 30"},
                             {"name": "low", "when": "paid_7d > 0"}]  # fmt: skip
    assert (tag["since"], tag["weight"], tag["active"], tag["note"]) == (
        dt.date(2026, 1, 1), 1.5, True, None,
    )  # fmt: skip


def test_locations_of_keys_values_and_items():
    doc = load_yaml_text(TAGS, "tags.yaml")
    tags = doc["tags"]
    tag = tags[0]
    levels = tag["levels"]
    assert doc.loc == loc(2, 1)
    assert (doc.key_loc("tags"), doc.value_loc("tags")) == (loc(2, 1), loc(3, 3))
    assert (tags.loc, tags.item_loc(0), tag.loc) == (loc(3, 3), loc(3, 5), loc(3, 5))
    assert (tag.key_loc("kind"), tag.value_loc("kind")) == (loc(4, 5), loc(4, 11))
    assert (levels.item_loc(0), levels.item_loc(1)) == (loc(6, 9), loc(7, 9))
    assert (levels[0].key_loc("when"), levels[0].value_loc("when")) == (loc(6, 22), loc(6, 28))
    assert (levels[1].key_loc("when"), levels[1].value_loc("when")) == (loc(8, 9), loc(8, 15))
    assert tag.value_loc("weight") == loc(10, 13)


def test_absent_keys_and_items_point_at_their_container():
    doc = load_yaml_text(TAGS, "tags.yaml")
    tag = doc["tags"][0]
    assert (tag.key_loc("missing"), tag.value_loc("missing")) == (loc(3, 5), loc(3, 5))
    assert doc["tags"].item_loc(5) == loc(3, 3)


def test_flow_collections_and_indentless_sequences():
    doc = load_yaml_text("pools: {a: [x, 'y'], b: 2}\nlist:\n- one\n- two\n", "r.yaml")
    assert doc == {"pools": {"a": ["x", "y"], "b": 2}, "list": ["one", "two"]}
    assert doc["pools"].loc == loc(1, 8, "r.yaml")
    assert doc["pools"].value_loc("b") == loc(1, 25, "r.yaml")
    assert doc["pools"]["a"].item_loc(1) == loc(1, 16, "r.yaml")
    assert doc["list"].item_loc(1) == loc(4, 3, "r.yaml")


def test_merge_keys_may_be_overridden():
    doc = load_yaml_text("base: &b {x: 1, y: 2}\nmine:\n  <<: *b\n  y: 3\n", "m.yaml")
    assert doc["mine"] == {"x": 1, "y": 3}
    assert doc["mine"].value_loc("y") == loc(4, 6, "m.yaml")
    assert doc["mine"].value_loc("x") == loc(1, 14, "m.yaml")


def test_an_alias_is_located_where_it_is_used():
    # `- *t` repeats the anchored item: the copy, and every part of it, is at the alias.
    doc = load_yaml_text("tags:\n  - &t {name: a, when: 'x > 1'}\n  - *t\n", "a.yaml")
    assert doc["tags"][1] == {"name": "a", "when": "x > 1"}
    assert doc["tags"].item_loc(1) == loc(3, 5, "a.yaml")
    assert doc["tags"][1].value_loc("name") == loc(3, 5, "a.yaml")
    assert doc["tags"][1].text_loc("when", 2) == loc(3, 5, "a.yaml")
    assert doc["tags"][0].text_loc("when", 2) == loc(2, 27, "a.yaml")


# -- errors ---------------------------------------------------------------------------


def test_duplicate_key_is_an_error_at_the_second_key():
    assert problems("tags:\n  - name: a\n    kind: tiers\n    name: b\n") == [
        (loc(4, 5, "f.yaml"), "duplicate key 'name' (first at line 2)")
    ]


def test_tab_indentation():
    assert problems("tags:\n\t- name: a\n") == [
        (loc(2, 1, "f.yaml"), "tab characters cannot be used for indentation in YAML; use spaces")
    ]


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("a: [1, 2\nb: 3\n", (2, 2), "invalid YAML: expected ',' or ']', but got ':' "
         "(while parsing a flow sequence started at line 1, column 4)"),
        ("a: 1\n b: 2\n", (2, 3), "invalid YAML: mapping values are not allowed here"),
        ("a: 'abc\n", (2, 1), "invalid YAML: found unexpected end of stream "
         "(while scanning a quoted scalar started at line 1, column 4)"),
        ("a: *nope\n", (1, 4), "invalid YAML: found undefined alias 'nope'"),
        ("a: !!python/object:os.system ls\n", (1, 4), "invalid YAML: could not determine a "
         "constructor for the tag 'tag:yaml.org,2002:python/object:os.system'"),
        ("a: 1\n---\nb: 2\n", (2, 1),
         "a rule file holds a single YAML document; remove the second '---'"),
        ("? [a]\n: 1\n", (1, 3), "a mapping key must be a plain value"),
    ],
)  # fmt: skip
def test_broken_yaml_location_and_message(text, where, message):
    assert problems(text) == [(loc(*where, "f.yaml"), message)]


def test_missing_file(tmp_path):
    with pytest.raises(RuleError) as info:
        load_yaml(tmp_path / "tags.yaml", display_name="rules/tags.yaml")
    assert info.value.problems == [(None, "rule file not found: rules/tags.yaml")]
    assert str(info.value) == "rule file not found: rules/tags.yaml"


def test_invalid_utf8_is_located(tmp_path):
    path = tmp_path / "tags.yaml"
    path.write_bytes(b"a: 1\nb: caf\xe9\n")
    with pytest.raises(RuleError) as info:
        load_yaml(path, display_name="tags.yaml")
    assert info.value.problems == [(loc(2, 7), "file is not valid UTF-8")]


def test_file_with_bom_and_crlf_keeps_columns(tmp_path):
    path = tmp_path / "tags.yaml"
    path.write_bytes(b"\xef\xbb\xbfa: 1\r\nb:\r\n  - x\r\n")
    doc = load_yaml(path)
    assert doc == {"a": 1, "b": ["x"]}
    assert doc["b"].item_loc(0) == Location(str(path), 3, 5)


def test_empty_file_is_none():
    assert load_yaml_text("# nothing yet\n", "e.yaml") is None


# -- character offsets inside string values -------------------------------------------

SCALARS = """\
plain: orders >= 30 and city = 'x'
single: 'it''s = x'
double: "a \\"b\\" \\x41 = c"
literal: |
  orders > 1
    and city = 'x'
folded: >-
  orders > 1
  and bad(1)
multi: first line
  second line
list:
  - "q = 1"
explicit: |2
     indented
   base
"""


def at(container, key, offset):
    """(line, col) of character `offset` of the value at `key`, and that character."""
    where = container.text_loc(key, offset)
    return where.line, where.col, container[key][offset : offset + 1]


def test_offsets_in_plain_and_quoted_scalars():
    doc = load_yaml_text(SCALARS, "s.yaml")
    assert at(doc, "plain", 0) == (1, 8, "o")
    assert at(doc, "plain", 24) == (1, 32, "'")
    assert at(doc, "single", 0) == (2, 10, "i")
    assert at(doc, "single", 3) == (2, 14, "s")  # after the doubled quote
    assert at(doc, "double", 2) == (3, 12, '"')  # \" is two characters in the file
    assert at(doc, "double", 6) == (3, 18, "A")  # \x41
    assert at(doc, "double", 8) == (3, 23, "=")
    assert at(doc["list"], 0, 2) == (13, 8, "=")


def test_offsets_in_block_and_multi_line_scalars():
    doc = load_yaml_text(SCALARS, "s.yaml")
    assert doc["literal"] == "orders > 1\n  and city = 'x'\n"
    assert at(doc, "literal", 0) == (5, 3, "o")
    assert at(doc, "literal", 10) == (5, 13, "\n")
    assert at(doc, "literal", 13) == (6, 5, "a")
    assert doc["folded"] == "orders > 1 and bad(1)"
    assert at(doc, "folded", 10) == (8, 13, " ")  # the folded line break
    assert at(doc, "folded", 15) == (9, 7, "b")
    assert doc["multi"] == "first line second line"
    assert at(doc, "multi", 11) == (11, 3, "s")
    assert doc["explicit"] == "   indented\n base\n"  # |2: indentation is 2, not 5
    assert at(doc, "explicit", 3) == (15, 6, "i")
    assert at(doc, "explicit", 13) == (16, 4, "b")


def test_offsets_are_clamped_to_the_value():
    doc = load_yaml_text(SCALARS, "s.yaml")
    assert doc.text_loc("single", 99) == loc(2, 19, "s.yaml")  # just before the closing quote
    assert doc.text_loc("plain", -3) == loc(1, 8, "s.yaml")


# -- rules_hash -------------------------------------------------------------------------


def test_rules_hash_covers_top_level_yaml_names_and_bytes(tmp_path):
    (tmp_path / "tags.yaml").write_text("tags: []\n")
    (tmp_path / "scoring.yaml").write_text("rules: []\n")
    first = rules_hash(tmp_path)
    assert len(first) == 64 and rules_hash(tmp_path) == first
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "case.yaml").write_text("x: 1\n")
    (tmp_path / "notes.txt").write_text("ignored\n")
    assert rules_hash(tmp_path) == first
    (tmp_path / "tags.yaml").write_text("tags: [] \n")
    assert rules_hash(tmp_path) != first
    (tmp_path / "tags.yaml").write_text("tags: []\n")
    assert rules_hash(tmp_path) == first
    (tmp_path / "scoring.yaml").rename(tmp_path / "score.yaml")
    assert rules_hash(tmp_path) != first


def nested_aliases(levels: int, merge: bool = False) -> str:
    """`a: &a [x, …]` then each level ten aliases of the one before (an alias bomb)."""
    names = "abcdefghij"
    text = "a: &a {" + ", ".join(f"k{i}: [x]" for i in range(10)) + "}\n" if merge \
        else "a: &a [x,x,x,x,x,x,x,x,x,x]\n"
    for level in range(1, levels):
        aliases = ",".join([f"*{names[level - 1]}"] * 10)
        text += f"{names[level]}: &{names[level]} " + (
            f"{{<<: [{aliases}]}}\n" if merge else f"[{aliases}]\n")
    return text


@pytest.mark.parametrize(("levels", "merge", "where"),
                         [(6, False, (5, 29)), (9, False, (5, 29)), (9, True, (5, 19))])
def test_nested_aliases_are_refused_before_they_fill_the_memory(levels, merge, where):
    # 6 levels (218 bytes) took 31 s and 600 MB, 9 levels more than 5 minutes and 7.9 GB
    assert problems(nested_aliases(levels, merge)) == [(loc(*where, "f.yaml"), (
        "too many aliased values: the aliases up to here repeat more than 100,000 values "
        "(nested aliases multiply them); write the values out or nest fewer aliases"))]
    assert len(load_yaml_text(nested_aliases(4))["d"]) == 10  # 10,000 values: no bomb


def test_values_nested_too_deeply_say_so():
    # (it said "recursive YAML alias" of a file without any alias)
    with pytest.raises(RuleError) as err:
        load_yaml_text("a: " + "[" * 300 + "]" * 300 + "\n", "f.yaml")
    assert str(err.value) == ("f.yaml:1:1: values nested too deeply (hundreds of levels of "
                              "[ or {), or an alias inside its own anchor")
