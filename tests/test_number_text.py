"""Large doubles on screens and in summaries: the digits --json writes, none made up."""

from __future__ import annotations

from leadctl.cli.output import value_text
from leadctl.cli.tag import _num
from leadctl.tagging.stage import _number


def test_a_whole_double_from_10_to_the_15_shows_as_json_writes_it():
    # f"{1e41:.0f}" was 100000000000000000620008645040778319495168
    assert [value_text(v) for v in (1e41, 1.5e308, 9.99e17, -1e15, 999999999999999.0,
                                    1234572.54)] == [
        "1e+41", "1.5e+308", "9.99e+17", "-1000000000000000", "999999999999999", "1234572.54"]
    assert [_num(v) for v in (1e41, 1.5e308, 1234567.0, 12.5)] == [
        "1e+41", "1.5e+308", "1234567", "12.50"]


def test_tag_stats_keep_a_large_whole_double_a_double():
    assert _number(1e41) == 1e41 and isinstance(_number(1e41), float)
    assert _number(12.0) == 12 and isinstance(_number(12.0), int)
