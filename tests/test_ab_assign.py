"""Audience variant assignment: md5 buckets equal to a Python reference, splits within ±1%
of plan on 100k persons, determinism per seed, bucket plans and bad specs."""

from __future__ import annotations

import hashlib

import duckdb
import pytest

from leadctl.campaigns.audiences import (
    Arm,
    AudienceSpec,
    assign_sql,
    bucket_plan,
    parse_holdout,
    parse_variants,
)
from leadctl.errors import UsageError

PERSONS_100K = "SELECT 'P' || lpad(CAST(i AS VARCHAR), 6, '0') AS person_id FROM range(100000) t(i)"


def reference_bucket(person_id: str, seed: str) -> int:
    """Independent of any engine: md5 hex digest, first 8 hex digits, mod 10000."""
    return int(hashlib.md5(f"{person_id}:{seed}".encode()).hexdigest()[:8], 16) % 10000


def assign(seed: str, arms: list[Arm], persons: str = PERSONS_100K) -> dict[str, str]:
    rows = duckdb.sql(assign_sql(persons, seed, arms)).fetchall()
    return {person: variant for person, _, variant in rows}


def shares(assignment: dict[str, str]) -> dict[str, float]:
    counts: dict[str, int] = {}
    for variant in assignment.values():
        counts[variant] = counts.get(variant, 0) + 1
    return {v: n / len(assignment) for v, n in sorted(counts.items())}


def test_buckets_are_the_md5_reference():
    ids = ["P1", "P0042ee0fbb0e", "张三", "x'y"]
    values = ", ".join("('" + i.replace("'", "''") + "')" for i in ids)
    sql = assign_sql(f"SELECT * FROM (VALUES {values}) v(person_id)", "s1",
                     bucket_plan([("A", 1), ("B", 1)], 0))
    assert {p: b for p, b, _ in duckdb.sql(sql).fetchall()} == {
        i: reference_bucket(i, "s1") for i in ids}


def test_split_within_one_percent_of_plan_on_100k_persons():
    even = assign("spring-2026", bucket_plan(parse_variants("A:50,B:50"), 0))
    assert len(even) == 100_000
    assert all(abs(s - 0.5) <= 0.01 for s in shares(even).values())
    uneven = shares(assign("s", bucket_plan(parse_variants("A:1,B:3"), parse_holdout("10%"))))
    plan = {"holdout": 0.10, "A": 0.225, "B": 0.675}
    assert uneven.keys() == plan.keys()
    assert all(abs(uneven[v] - plan[v]) <= 0.01 for v in plan), uneven


def test_same_seed_same_variants_other_seed_other_variants():
    arms = bucket_plan(parse_variants("A:50,B:50"), 0)
    first, again, other = assign("s1", arms), assign("s1", arms), assign("s2", arms)
    assert first == again
    moved = sum(first[p] != other[p] for p in first) / len(first)
    assert 0.48 <= moved <= 0.52  # independent seeds: about half the persons switch
    # a person's variant depends only on (id, seed): a smaller audience agrees
    some = assign("s1", arms, "SELECT 'P' || lpad(CAST(i AS VARCHAR), 6, '0') AS person_id "
                  "FROM range(0, 100000, 7) t(i)")
    assert all(first[p] == v for p, v in some.items())


def test_bucket_plan():
    assert bucket_plan(parse_variants("A:50,B:50"), 0) == [
        Arm("A", 50, 0, 5000), Arm("B", 50, 5000, 10000)]
    assert bucket_plan(parse_variants("ctl:1,x:1,y:2"), 0.1) == [
        Arm("holdout", 0.1, 0, 1000), Arm("ctl", 1, 1000, 3250), Arm("x", 1, 3250, 5500),
        Arm("y", 2, 5500, 10000)]
    assert parse_variants(None) == [("A", 50.0), ("B", 50.0)]
    # Weights whose sum overflows keep their ratio (the plan was NaN, an internal error).
    assert bucket_plan(parse_variants("A:1e308,B:1e308"), 0) == [
        Arm("A", 1.0, 0, 5000), Arm("B", 1.0, 5000, 10000)]
    assert [parse_holdout(t) for t in ("10%", "0.1", "0", " 2.5% ")] == [0.1, 0.1, 0.0, 0.025]


@pytest.mark.parametrize(("variants", "holdout", "message"), [
    ("A:abc", None, "the weight of A must be a number, not 'abc'"),
    ("A:0,B:1", None, "the weight of A must be more than 0"),
    ("A:-5,B:1", None, "the weight of A must be more than 0"),
    ("A:inf,B:1", None, "the weight of A must be a number, not 'inf'"),
    ("A:1e400,B:1", None, "the weight of A must be a finite number, not '1e400'"),
    ("A:50,A:50", None, "A is listed twice"),
    ("A50,B50", None, "'A50' is not NAME:WEIGHT"),
    ("A:1,holdout:1", None, "'holdout' is reserved"),
    ("A:1,:1", None, "'' is not a variant name"),
    ("A:1", None, "an experiment needs two arms"),
    ("A:1,B:1", "1", "--holdout must be a share like 10% or 0.1"),
    ("A:1,B:1", "10", "--holdout must be a share"),
    ("A:1,B:1", "ten", "--holdout must be a share"),
    ("A:1,B:1", "-0%", "--holdout must be a share"),  # stored as -0.0 before
    ("A:1,B:100000", None, "A gets less than one bucket"),
    # Python's float() reads these; a spec does not (a typo is not a weight)
    ("A:1_0,B:1", None, "the weight of A must be a number, not '1_0'"),
    ("A:\u0661\u0660,B:1", None, "the weight of A must be a number"),
    ("A:nan,B:1", None, "the weight of A must be a number, not 'nan'"),
    ("A:1e-400,B:1", None, "the weight of A is too small to compare"),
    ("A:1,B:1", "1_0%", "--holdout must be a share"),
    ("A:1,B:1", "\u0665%", "--holdout must be a share"),
    ("A:1,B:1", "1e-400", "--holdout 1e-400 is less than one bucket (0.01%)"),
    ("A:1,B:1", "0.00001", "--holdout 0.00001 is less than one bucket (0.01%)"),
    # the default variants fit; the holdout leaves them no room
    (None, "99.99%", "--holdout 99.99% leaves A less than one bucket (0.01%)"),
])
def test_bad_specs_are_usage_errors(variants, holdout, message):
    with pytest.raises(UsageError) as err:
        AudienceSpec.parse("x", "true", start=None, variants=variants, holdout=holdout,
                           seed=None, control=None, goal=None)
    assert message in str(err.value)


def test_control_and_seed_defaults():
    spec = AudienceSpec.parse("spring", "true", start=None, variants="B:1,A:1",
                              holdout=None, seed=None, control=None, goal="register")
    assert (spec.seed, spec.control, spec.goal) == ("spring", "B", "register")
    solo = AudienceSpec.parse("solo", "true", start=None, variants="mail:1", holdout="10%",
                              seed="s", control=None, goal=None)
    assert solo.control == "holdout"  # one variant against its holdout
    with pytest.raises(UsageError, match="--control 'C' is not one of A, B"):
        AudienceSpec.parse("x", "true", start=None, variants=None, holdout=None, seed=None,
                           control="C", goal=None)
