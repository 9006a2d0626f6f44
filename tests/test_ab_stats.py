"""`report ab` statistics against values published or computed independently: Wilson and
Newcombe intervals (Newcombe 1998), the z-test by hand (math.erfc), Fisher's exact test
by the hypergeometric sum, the sample ratio chi-square, and the verdict texts."""

from __future__ import annotations

import math

import pytest

from leadctl.campaigns import stats
from leadctl.campaigns.experiments import _arm, _compare, fmt_p, p_text, verdict


@pytest.mark.parametrize(("x", "n", "lo", "hi"), [
    (81, 263, 0.2553, 0.3662),  # Newcombe (1998), Stat Med 17:857, table II
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0, 0.1611),
    (1, 29, 0.0061, 0.1718),
])
def test_wilson_interval_matches_the_published_examples(x, n, lo, hi):
    got = stats.wilson(x, n)
    assert (round(got[0], 4), round(got[1], 4)) == (lo, hi)


@pytest.mark.parametrize("n", [1, 7, 20, 1000, 10**6])
def test_wilson_bounds_of_none_and_all_converted_are_exactly_0_and_1(n):
    assert stats.wilson(0, n)[0] == 0.0
    assert stats.wilson(n, n)[1] == 1.0


@pytest.mark.parametrize(("a", "b", "lo", "hi"), [
    ((56, 70), (48, 80), 0.0524, 0.3339),  # Newcombe (1998), Stat Med 17:873, method 10
    ((9, 10), (3, 10), 0.1705, 0.8090),
])
def test_newcombe_difference_interval_matches_the_published_examples(a, b, lo, hi):
    got = stats.newcombe(*a, *b)
    assert (round(got[0], 4), round(got[1], 4)) == (lo, hi)


def test_z_test_p_value_equals_the_hand_computation():
    # 250/2000 vs 200/2000: pooled 0.1125, se = sqrt(.1125 * .8875 * (2/2000)), z = .025/se
    z = 0.025 / math.sqrt(0.1125 * 0.8875 * (2 / 2000))
    p, test = stats.two_proportion_p(250, 2000, 200, 2000)
    assert test == "z"
    assert p == pytest.approx(math.erfc(z / math.sqrt(2)), rel=1e-9)
    assert round(p, 5) == 0.01235


def test_small_counts_use_fishers_exact_test():
    # 3/4 vs 1/4 (the tea-tasting table): two-sided p = P(3 or more, or 1 or fewer) = 34/70
    hyper = [math.comb(4, k) * math.comb(4, 4 - k) / math.comb(8, 4) for k in range(5)]
    assert sum(hyper[k] for k in (0, 1, 3, 4)) == pytest.approx(34 / 70)
    p, test = stats.two_proportion_p(3, 4, 1, 4)
    assert (test, p) == ("fisher", pytest.approx(34 / 70, rel=1e-12))
    # expected conversions per arm: 10 of 300 → 5.0 (z-test), 9 of 300 → 4.5 (Fisher)
    assert stats.two_proportion_p(2, 150, 8, 150)[1] == "z"
    assert stats.two_proportion_p(2, 150, 7, 150)[1] == "fisher"


def test_sample_ratio_check():
    srm = stats.sample_ratio([5100, 4900], [0.5, 0.5])  # chi2 = 2 * 100² / 5000 = 4
    assert srm.chi2 == pytest.approx(4.0)
    assert srm.p_value == pytest.approx(math.erfc(math.sqrt(2)))  # chi-square, 1 df
    assert srm.mismatch is False
    assert stats.sample_ratio([5300, 4700], [1, 1]).mismatch is True  # chi2 36
    assert stats.sample_ratio([10, 0], [1, 0]) == stats.Srm(0.0, 1.0, False)
    assert stats.sample_ratio([10, 1], [1, 0]).mismatch is True
    assert stats.sample_ratio([0, 0], [1, 1]) is None


def _verdict(a: tuple[int, int], b: tuple[int, int]) -> tuple[dict, str]:
    arm_a = _arm("A", 0.5, {"converted": a[0], "persons": a[1]}, True)
    arm_b = _arm("B", 0.5, {"converted": b[0], "persons": b[1]}, False)
    comparison = _compare(arm_b, arm_a, {"A": 1, "B": 2})
    srm = stats.sample_ratio([a[1], b[1]], [0.5, 0.5])
    return comparison, verdict([arm_a, arm_b], [comparison], srm, "A")


def test_verdict_names_the_better_variant_in_the_issues_style():
    comparison, text = _verdict((200, 2000), (250, 2000))
    assert text == "B converts 2.5 pts better than A, 95% CI 0.5–4.5, p = 0.012"
    assert (comparison["test"], comparison["enough_data"]) == ("z", True)
    assert _verdict((250, 2000), (200, 2000))[1] == \
        "A converts 2.5 pts better than B, 95% CI 0.5–4.5, p = 0.012"


def test_no_winner_without_significance_enough_data_or_a_clean_split():
    assert _verdict((100, 1000), (110, 1000))[1] == (
        "No significant difference between B and A: B converts 1.0 pts better than A, "
        "95% CI -1.7–3.7, p = 0.47.")
    comparison, text = _verdict((2, 150), (9, 150))  # p = 0.03 but 11 conversions
    assert round(comparison["p_value"], 3) == 0.032
    assert text == (
        "No winner yet, too little data (B 9/150, A 2/150; a verdict needs 100 persons per "
        "variant and 20 conversions): B converts 4.7 pts better than A, 95% CI 0.3–9.8, "
        "p = 0.032.")
    assert _verdict((100, 1000), (150, 1300))[1] == (
        "No winner declared: sample ratio mismatch (persons per variant off the planned "
        "split, p < 0.001); check the assignment first.")
    assert _verdict((0, 0), (0, 0))[1] == "No verdict: nobody is in the experiment."


def test_p_value_text():
    assert [fmt_p(p) for p in (0.0004, 0.015, 0.4321, 0.0499, 1.0)] == [
        "p < 0.001", "p = 0.015", "p = 0.43", "p = 0.0499", "p = 1"]


def test_a_p_value_just_under_alpha_is_never_printed_as_alpha():
    assert [fmt_p(p) for p in (0.0499932, 0.04996, 0.0499999999, 0.05)] == [
        "p = 0.04999", "p = 0.04996", "p < 0.05", "p = 0.05"]
    assert p_text(0.0499932, 3) == "0.04999" and p_text(0.1234, 3) == "0.123"


def test_no_winner_when_the_interval_includes_zero_at_the_edge():
    comparison, text = _verdict((59, 232), (77, 228))  # z p = 0.04999, Newcombe lo < 0
    assert round(comparison["p_value"], 7) == 0.0499932 and comparison["ci"][0] < 0
    assert text == (
        "No clear winner between B and A: the 95% CI of the difference includes 0 though "
        "p = 0.04999: B converts 8.3 pts better than A, 95% CI -0.0–16.5, p = 0.04999.")
