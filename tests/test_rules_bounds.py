"""Numbers and dates of rule files are range-checked by `rules check` (exit 2, file:line:col,
the key, the value as written and the allowed range), never pasted into SQL or date
arithmetic to fail a later run with exit 3. Each numeric key is swept with hostile values
(NaN, infinities, huge and negative numbers, text, structures): a located RuleError, or a
clean parse whose value lies in its documented range."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from leadctl.campaigns.costs import load_cost_rules
from leadctl.campaigns.funnels_parse import load_funnel_rules
from leadctl.cli import output
from leadctl.errors import Location, RuleError
from leadctl.routing.parse import load_routing_rules
from leadctl.rules.bounds import (
    FIRST_DATE,
    LAST_DATE,
    MAX_COUNT,
    MAX_DAYS,
    MAX_MONEY,
    MAX_POINTS,
    MAX_WEIGHT,
)
from leadctl.rules.load import UnreadableText, UnreadableValues, load_yaml_text
from leadctl.ruletest import load_cases
from leadctl.scoring.parse import load_scoring_rules
from leadctl.tagging.parse import load_tag_rules
from tests.conftest import RULES, Cli

RANGE_POINTS = f"from {-MAX_POINTS} to {MAX_POINTS}"

# file, text of the shipped rules, its replacement, the one error ("line:col: message").
OUT_OF_RANGE = [
    ("scoring.yaml", "  A: 70", "  A: .nan",
     f"14:6: grade 'A': minimum score must be a finite number {RANGE_POINTS}, not .nan"),
    ("scoring.yaml", "  A: 70", "  A: .inf",
     f"14:6: grade 'A': minimum score must be a finite number {RANGE_POINTS}, not .inf"),
    ("scoring.yaml", "points: 40", "points: -1.0e+400",
     f"35:13: score rule 'high_value': `points:` must be a finite number {RANGE_POINTS} (or "
     "an expression), not -1.0e+400"),
    ("scoring.yaml", "half_life_days: 30", "half_life_days: 36501",
     "24:19: scoring.yaml: decay `half_life_days:` must be a number of days from 1 to "
     "36500, not 36501"),
    ("scoring.yaml", "half_life_days: 30", "half_life_days: 0.5",  # 5 meant: points gone
     "24:19: scoring.yaml: decay `half_life_days:` must be a number of days from 1 to "
     "36500, not 0.5"),
    ("scoring.yaml", "max_days: 180", "max_days: .nan",
     "25:13: scoring.yaml: decay `max_days:` must be a number of days from 0 to 36500, "
     "not .nan"),
    ("routing.yaml", "weight: 2,", "weight: .nan,",
     "47:35: pool 'sales_south': rep 'rep_huang': weight must be a number from 0.000001 "
     "to 1000000 with at most 6 decimals, not .nan"),
    ("routing.yaml", "capacity: 30}", "capacity: 99999999999999999999}",
     "32:36: pool 'key_accounts': rep 'vip_chen': capacity must be a whole number of leads "
     "per period from 0 to 1000000000, not 99999999999999999999"),
    ("routing.yaml", "lock_days: 180", "lock_days: 99999999",
     "123:14: lifecycle: lock_days must be a whole number of days from 0 to 36500, "
     "not 99999999"),
    ("routing.yaml", "dormant_after_days: 90", "dormant_after_days: 0x7fffffffffffffff",
     "127:23: lifecycle: dormant_after_days must be a whole number of days from 1 to 36500, "
     "not 0x7fffffffffffffff"),
    ("routing.yaml", "pending: 3", "pending: 36501",
     "136:14: lifecycle: status_sla_days: pending must be a whole number of days from 1 to "
     "36500, not 36501"),
    ("funnels.yaml", "window: 14d", "window: 99999999999d",
     "46:13: funnel 'app_install': window must be from 1 to 36500 days (like 14d), not "
     "'99999999999d'"),
    ("tags.yaml", "window: 7d", "window: 99999999999d",
     "41:13: tag 'paid_orders_7d': window must be from 1 to 36500 days (like 30d, or `all`), "
     "not '99999999999d'"),
    ("costs.yaml", "cost: 5000}", "cost: .inf}",
     "27:67: cost must be a finite number from 0 to 1000000000000000, not .inf"),
    ("costs.yaml", "from: 2026-10-01,", "from: 2026-02-30,",
     "27:33: `from:` 2026-02-30 is not a valid date (day is out of range for month); write "
     "a real one, or quote it to mean text"),
    ("costs.yaml", "from: 2026-10-01,", "from: '2026-W40-1',",
     "27:33: from must be a date like 2026-10-01, not '2026-W40-1'"),
    ("identity.yaml", "max_records_per_value: 20", "max_records_per_value: " + "9" * 5000,
     "22:26: `max_records_per_value:` 99999999999999999999… is a number of 5000 digits, "
     "beyond the range of any setting"),
]


def written_rules(tmp_path: Path, name: str, text: str) -> tuple[Cli, Path]:
    """The shipped rules (without fixtures) with `name` holding `text`."""
    cli, path = edited(tmp_path, name, "", "")
    path.write_text(text, encoding="utf-8")
    return cli, path


def edited(tmp_path: Path, name: str, text: str, replacement: str) -> tuple[Cli, Path]:
    """The shipped rules (without fixtures) with the first `text` of `name` replaced."""
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules, ignore=shutil.ignore_patterns("tests"))
    path = rules / name
    original = path.read_text(encoding="utf-8")
    assert text in original
    path.write_text(original.replace(text, replacement, 1), encoding="utf-8")
    return Cli(tmp_path / "ws.duckdb", rules), path


@pytest.mark.parametrize(("name", "text", "replacement", "error"), OUT_OF_RANGE,
                         ids=[f"{n}-{r.strip()[:30]}" for n, _, r, _ in OUT_OF_RANGE])
def test_rules_check_reports_a_value_out_of_range_at_its_place(tmp_path, name, text,
                                                                replacement, error):
    cli, path = edited(tmp_path, name, text, replacement)
    result = cli("rules", "check")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [f"error: {path}:{error}"]


@pytest.mark.parametrize(("text", "replacement", "error"), [
    ("days_ago: 15,", "days_ago: 99999999999,",
     "10:47: paid amount over the last 30 days: days_ago must be a whole number of days from "
     "-36500 to 36500, not 99999999999"),
    ("as_of: 2026-11-01", "as_of: 2026-13-01",
     "4:8: `as_of:` 2026-13-01 is not a valid date (month must be in 1..12); write a real "
     "one, or quote it to mean text"),
    ("as_of: 2026-11-01", "as_of: 0001-01-01",
     "4:8: paid amount over the last 30 days: `as_of:` must be a date from 1900-01-01 to "
     "2999-12-31, not 0001-01-01"),
    ("amount: 150,", "amount: .nan,",
     "10:59: paid amount over the last 30 days: amount must be a finite number, not .nan "
     "(ingest rejects such a row as bad_amount)"),
])
def test_rules_test_reports_a_fixture_value_out_of_range_at_its_place(tmp_path, text,
                                                                       replacement, error):
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    fixture = rules / "tests" / "paid_amount_30d.yaml"
    original = fixture.read_text(encoding="utf-8")
    assert text in original
    fixture.write_text(original.replace(text, replacement, 1), encoding="utf-8")
    result = Cli(tmp_path / "ws.duckdb", rules)("rules", "test")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [f"error: {fixture}:{error}"]


def test_the_longest_lock_and_window_stay_inside_the_calendar_the_cli_allows():
    """The library bounds are the CLI's: a window before the first date or a lock after the
    last one of `--lock-days`' 100 years is still a date."""
    assert (MAX_DAYS, FIRST_DATE, LAST_DATE) == (
        output.MAX_LOCK_DAYS, output.FIRST_DATE, output.LAST_DATE)
    assert FIRST_DATE - dt.timedelta(days=MAX_DAYS) == dt.date(1800, 1, 25)
    assert LAST_DATE + dt.timedelta(days=MAX_DAYS) == dt.date(3099, 12, 7)


def test_an_impossible_date_in_a_list_or_as_a_key_is_a_rule_error_at_its_place():
    for text, error in [
        ("to:\n  - 2026-10-01\n  - 2026-02-29\n", "f.yaml:3:5: 2026-02-29 is not a valid date "
         "(day is out of range for month); write a real one, or quote it to mean text"),
        ("2026-10-01 24:00:00: x\n", "f.yaml:1:1: 2026-10-01 24:00:00 is not a valid "
         "timestamp (hour must be in 0..23); write a real one, or quote it to mean text"),
        ("at: 2026-10-01T10:00:00+24:00\n", "f.yaml:1:5: `at:` 2026-10-01T10:00:00+24:00 is "
         "not a valid timestamp (its time zone offset is a day or more); write a real one, "
         "or quote it to mean text"),
    ]:
        with pytest.raises(RuleError) as info:
            load_yaml_text(text, "f.yaml")
        assert (info.value.exit_code, str(info.value)) == (2, error)
    assert load_yaml_text("at: '2026-02-30'\nn: 0x7fffffffffffffff\n") == {
        "at": "2026-02-30", "n": 2**63 - 1}


NOT_A_DATE = "is not a valid date (day is out of range for month); write a real one, or " \
    "quote it to mean text"


def test_an_impossible_date_does_not_hide_the_other_problems_of_its_file(tmp_path):
    """rules check reports an unreadable date with every other problem of its file (it
    stopped the file: only the date was reported), and nothing more at the date's place."""
    cli, path = written_rules(tmp_path, "costs.yaml", """currency: CNY
costs:
  - {source: sem_baidu, period: 2026-10, cost: 010}
  - {source: sem_baidu, period: 2026-09, cost: 1:30}
  - {source: feed_douyin, period: 2026-09, cost: 0x10}
  - {source: agent_list, period: 2026-10, cost: 100}
  - {source: agent_list, from: 2026-10-15, to: 2026-11-15, cost: 100}
  - {source: seo_forms, period: 2026-13, cost: 5}
  - {source: app_signups, from: 2026-02-30, to: 2026-03-05, cost: 5}
  - {source: app_signups, period: 2026-05, cost: -1}
""")
    result = cli("rules", "check")
    plain = "cost must be written as a plain decimal number (like 12000 or 1500.50), not"
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [f"error: {path}:{error}" for error in [
        f"3:48: {plain} 010",
        f"4:48: {plain} 1:30",
        f"5:50: {plain} 0x10",
        f"7:6: cost entry (source agent_list, 2026-10-15..2026-11-15) overlaps the entry at "
        f"{path}:6:6 (source agent_list, 2026-10-01..2026-10-31): its leads would be paid "
        "twice",
        "8:33: period must be a month like 2026-10, not '2026-13'",
        f"9:33: `from:` 2026-02-30 {NOT_A_DATE}",
        "10:50: cost must be a number ≥ 0 (no thousands separators), not -1",
    ]]


def test_unreadable_values_are_all_reported_once_and_the_document_read_on():
    """Each unreadable scalar (a value, a list item, a key, a huge number) is one problem;
    an alias of one adds none; the document is read on with each as its text, and what a
    parser says inside one of them (its alias too) is dropped by `merged`."""
    with pytest.raises(UnreadableValues) as info:
        load_yaml_text("a: &d 2026-02-30\nb: *d\nc: [1, 2026-13-01]\n2026-02-31: x\n"
                       f"n: {'9' * 5000}\n", "f.yaml")
    exc = info.value
    assert [(str(loc), message) for loc, message in exc.problems] == [
        ("f.yaml:1:4", f"`a:` 2026-02-30 {NOT_A_DATE}"),
        ("f.yaml:3:8", "2026-13-01 is not a valid date (month must be in 1..12); write a "
         "real one, or quote it to mean text"),
        ("f.yaml:4:1", f"2026-02-31 {NOT_A_DATE}"),
        ("f.yaml:5:4", "`n:` 99999999999999999999… is a number of 5000 digits, beyond the "
         "range of any setting"),
    ]
    assert exc.data == {"a": "2026-02-30", "b": "2026-02-30", "c": [1, "2026-13-01"],
                        "2026-02-31": "x", "n": "9" * 5000}
    assert isinstance(exc.data["c"][1], UnreadableText)
    parser = [(Location("f.yaml", 1, 4), "a must be a date"),
              (Location("f.yaml", 2, 4), "b must be a date"),  # the alias `*d`
              (Location("f.yaml", 3, 9), "inside 2026-13-01"),
              (Location("f.yaml", 3, 1), "c: kept"), (None, "kept too")]
    assert exc.merged(parser) == [*exc.problems, *parser[3:]]
    # The whole document: nothing else to read; a YAML error after one: both
    for text, errors in [
        ("# c\n2026-02-30\n", [f"f.yaml:2:1: 2026-02-30 {NOT_A_DATE}"]),
        ("x: 2026-02-30\ny: {a: 1, a: 2}\n", [f"f.yaml:1:4: `x:` 2026-02-30 {NOT_A_DATE}",
                                             "f.yaml:2:11: duplicate key 'a' (first at line 2)"]),
    ]:
        with pytest.raises(RuleError) as error:
            load_yaml_text(text, "f.yaml")
        assert type(error.value) is RuleError
        assert str(error.value).splitlines() == errors


def test_an_unreadable_value_in_a_list_or_as_the_file_hides_no_other_problem(tmp_path):
    cli, sources = written_rules(tmp_path, "sources.yaml", "timezone: Mars/Base\n"
                                 "aliases:\n  phone:\n    - 2026-02-30\n    - tel_no\n")
    identity = sources.parent / "identity.yaml"
    identity.write_text(f"cap:\n  max_records_per_value: {'9' * 5000}\nblocklst: []\n",
                        encoding="utf-8")
    costs = sources.parent / "costs.yaml"
    costs.write_text("# no costs yet\n2026-02-30\n", encoding="utf-8")
    result = cli("rules", "check")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [
        f"error: {costs}:2:1: 2026-02-30 {NOT_A_DATE}",
        f"error: {identity}:2:26: `max_records_per_value:` 99999999999999999999… is a "
        "number of 5000 digits, beyond the range of any setting",
        f"error: {identity}:3:1: unknown key 'blocklst' (did you mean 'blocklist'?) (known: "
        "default_region, cap, blocklist, survivorship, overrides)",
        f"error: {sources}:1:11: unknown time zone 'Mars/Base' (an IANA name like "
        "Asia/Shanghai, or UTC)",
        f"error: {sources}:4:7: 2026-02-30 {NOT_A_DATE}",
    ]


def test_an_unreadable_fixture_date_hides_no_other_problem_of_the_fixture(tmp_path):
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    fixture = rules / "tests" / "paid_amount_30d.yaml"
    text = fixture.read_text(encoding="utf-8")
    fixture.write_text(text.replace("as_of: 2026-11-01", "as_of: 2026-13-01", 1)
                       .replace("amount: 150,", "amount: .nan,", 1), encoding="utf-8")
    result = Cli(tmp_path / "ws.duckdb", rules)("rules", "test")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [
        f"error: {fixture}:4:8: `as_of:` 2026-13-01 is not a valid date (month must be in "
        "1..12); write a real one, or quote it to mean text",
        f"error: {fixture}:10:59: paid amount over the last 30 days: amount must be a finite "
        "number, not .nan (ingest rejects such a row as bad_amount)",
    ]


# -- sweeps ----------------------------------------------------------------------------


def _float_text(value: float) -> str:
    return yaml.safe_dump(value).removesuffix("\n...\n").strip()


# A value as written after `key: ` in block context.
HOSTILE = st.one_of(
    st.sampled_from([
        ".nan", ".NaN", ".inf", "-.inf", "+.inf", "1.0e+400", "-1.0e+400", "1e400", "0",
        "-0.0", "-1", "1", "2.5", "1_000", "1:30", "0x7fffffffffffffff", "0o777",
        str(MAX_DAYS), str(MAX_DAYS + 1), str(MAX_COUNT + 1), str(2**63), "9" * 5000,
        "99999999999999999999", "99999999999d", "30d", "all", "true", "null", "~", "''",
        "abc", "[1]", "{a: 1}", "2026-02-30", "2026-10-01", "2026-10-01 10:00:00",
    ]),
    st.integers().map(str),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.floats().map(_float_text),
    st.text(max_size=12).map(json.dumps),  # double-quoted YAML strings
)


@dataclasses.dataclass(frozen=True)
class Key:
    file: str  # written into a fresh rules folder; fixtures go to tests/
    template: str  # VALUE is replaced by the hostile text
    load: Callable[[Path], Any]  # the rules folder → the parsed value
    ok: Callable[[Any], bool]  # a parsed value is usable

    def value(self, text: str) -> tuple[Path, Any]:
        with tempfile.TemporaryDirectory() as folder:
            rules = Path(folder)
            path = rules / self.file
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(self.template.replace("VALUE", text), encoding="utf-8")
            try:
                return path, self.load(rules)
            except RuleError as exc:
                return path, exc


def within(low: float, high: float, *, above: bool = False) -> Callable[[Any], bool]:
    def ok(value: Any) -> bool:
        return (isinstance(value, (int, float)) and math.isfinite(value) and low <= value <= high
                and not (above and value == low))
    return ok


def _days_ago(case) -> int:
    return (case.as_of - case.events[0]["ts"].date()).days


SCORING = "grades:\n  A: VALUE\nrules:\n  - name: r\n    points: 1\n"
DECAY = ("grades: {A: 0}\ndecay:\n  age: 1\n  KEY: VALUE\nrules:\n  - name: r\n    points: 1\n"
         "    decay: true\n")
ROUTING = ("pools:\n  - name: sales\n    allocation: weighted\n    reps:\n      - name: ann\n"
           "        KEY: VALUE\n  - {name: sea, allocation: claim}\n"
           "routes:\n  - {name: all, pool: sales}\n")
LIFECYCLE = ("pools:\n  - {name: sales, allocation: round_robin, reps: [ann]}\n"
             "  - {name: sea, allocation: claim}\nroutes:\n  - {name: all, pool: sales}\n"
             "lifecycle:\n  KEY\n")
FIXTURE = ("as_of: 2026-11-01\npersons:\n  - {id: p1}\nevents:\n  - person: p1\n"
           "    event: order_paid\n    KEY: VALUE\nexpect:\n  p1: {x: 1}\n")
FUNNEL = ("funnels:\n  - name: f\n    window: VALUE\n    steps:\n"
          "      - {name: a, event: push}\n")
TAG = ("tags:\n  - name: t\n    kind: metric\n    event: order_paid\n    agg: count\n"
       "    window: VALUE\n")
COST = "costs:\n  - source: sem\n    period: 2026-10\n    cost: VALUE\n"


def _scoring(rules: Path):
    return load_scoring_rules(rules)


def _routing(rules: Path):
    return load_routing_rules(rules)


def _decay(rules: Path):
    return _scoring(rules).rules[0].decay


KEYS = {
    "grade minimum": Key("scoring.yaml", SCORING, lambda r: _scoring(r).grades[0].min,
                         within(-MAX_POINTS, MAX_POINTS)),
    "points": Key("scoring.yaml", SCORING.replace("points: 1", "points: VALUE"),
                  lambda r: _scoring(r).rules[0], lambda rule: rule.points_expr is not None
                  or within(-MAX_POINTS, MAX_POINTS)(rule.points)),
    "half_life_days": Key("scoring.yaml", DECAY.replace("KEY", "half_life_days"),
                          lambda r: _decay(r).half_life_days, within(0, MAX_DAYS, above=True)),
    "max_days": Key("scoring.yaml", DECAY.replace("KEY", "half_life_days: 7\n  max_days"),
                    lambda r: _decay(r).max_days, lambda v: v is None or within(0, MAX_DAYS)(v)),
    "weight": Key("routing.yaml", ROUTING.replace("KEY", "weight"),
                  lambda r: _routing(r).pools[0].reps[0].weight, within(0, MAX_WEIGHT, above=True)),
    "capacity": Key("routing.yaml", ROUTING.replace("KEY", "capacity"),
                    lambda r: _routing(r).pools[0].reps[0].capacity,
                    lambda v: v is None or within(0, MAX_COUNT)(v)),
    "lock_days": Key("routing.yaml", LIFECYCLE.replace("KEY", "lock_days: VALUE"),
                     lambda r: _routing(r).lifecycle.lock_days, within(0, MAX_DAYS)),
    "dormant_after_days": Key("routing.yaml",
                              LIFECYCLE.replace(
                                  "KEY", "dormant_pool: sea\n  dormant_after_days: VALUE"),
                              lambda r: _routing(r).lifecycle.dormant_after_days,
                              within(1, MAX_DAYS)),
    "status_sla_days": Key("routing.yaml", LIFECYCLE.replace(
                               "KEY", "sla_return_pool: sea\n  status_sla_days:\n"
                               "    pending: VALUE"),
                           lambda r: _routing(r).lifecycle.status_sla_days["pending"],
                           within(1, MAX_DAYS)),
    "funnel window": Key("funnels.yaml", FUNNEL,
                         lambda r: load_funnel_rules(r).funnels[0].window_days,
                         within(1, MAX_DAYS)),
    "tag window": Key("tags.yaml", TAG, lambda r: load_tag_rules(r).tags[0].window_days,
                      lambda v: v is None or within(1, MAX_DAYS)(v)),
    "cost": Key("costs.yaml", COST, lambda r: load_cost_rules(r).entries[0].cost,
                within(0, MAX_MONEY)),
    "days_ago": Key("tests/f.yaml", FIXTURE.replace("KEY", "days_ago"),
                    lambda r: _days_ago(load_cases(r / "tests/f.yaml")[0]),
                    within(-MAX_DAYS, MAX_DAYS)),
    "amount": Key("tests/f.yaml", FIXTURE.replace("KEY", "days_ago: 1\n    amount"),
                  lambda r: load_cases(r / "tests/f.yaml")[0].events[0]["amount"],
                  lambda v: v is None or math.isfinite(v)),  # as ingest loads it
}


def assert_located_or_usable(key: Key, text: str) -> None:
    path, result = key.value(text)
    if isinstance(result, RuleError):
        assert result.exit_code == 2
        assert result.problems and all(loc is not None and loc.file == str(path) and message
                                       for loc, message in result.problems), result.problems
    else:
        assert key.ok(result), (text, result)


@pytest.mark.parametrize("name", list(KEYS))
@settings(max_examples=60, deadline=None)
@given(text=HOSTILE)
@example(text=".nan")
@example(text="-.inf")
@example(text="1.0e+400")
@example(text=str(MAX_DAYS + 1))
@example(text="99999999999999999999")
@example(text="9" * 5000)
@example(text="-1")
def test_a_hostile_number_is_a_located_rule_error_or_a_value_in_range(name, text):
    assert_located_or_usable(KEYS[name], text)


DATE_TEXT = st.tuples(st.integers(0, 9999), st.integers(0, 99), st.integers(0, 99)).map(
    lambda ymd: f"{ymd[0]:04d}-{ymd[1]:02d}-{ymd[2]:02d}")
DATES = {
    "cost from": Key("costs.yaml", "costs:\n  - source: sem\n    from: VALUE\n"
                     "    to: 9999-12-31\n    cost: 1\n",
                     lambda r: load_cost_rules(r).entries[0].first_day,
                     lambda day: isinstance(day, dt.date)),
    "fixture as_of": Key("tests/f.yaml", FIXTURE.replace("2026-11-01", "VALUE")
                         .replace("KEY: VALUE", "days_ago: 36500"),
                         lambda r: load_cases(r / "tests/f.yaml")[0],
                         lambda case: FIRST_DATE <= case.as_of <= LAST_DATE
                         and case.events[0]["ts"].year >= 1800),
}


@pytest.mark.parametrize(("key", "good"), [(KEYS[n], "7") for n in KEYS]
                         + [(DATES[n], "2026-10-01") for n in DATES],
                         ids=[*KEYS, *DATES])
def test_each_swept_file_parses_with_a_good_value(key, good):
    """So a sweep's RuleError comes from the hostile value, not from the rest of its file."""
    _, value = key.value(good)
    assert not isinstance(value, RuleError) and key.ok(value)


@pytest.mark.parametrize("name", list(DATES))
@settings(max_examples=100, deadline=None)
@given(text=DATE_TEXT)
@example(text="2026-02-30")
@example(text="2026-13-01")
@example(text="0001-01-01")
@example(text="9999-12-31")
def test_an_impossible_or_far_date_is_a_located_rule_error_or_a_real_date(name, text):
    assert_located_or_usable(DATES[name], text)
