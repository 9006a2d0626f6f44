"""Statistics of `leadctl report ab`: small, pure functions over counts (no data access).

- rate interval: Wilson score interval (95%);
- difference interval: Newcombe's hybrid score interval (method 10 of Newcombe 1998),
  built from the two Wilson intervals;
- two-sided p-value: the pooled two-proportion z-test when every expected cell of the
  2x2 table is at least 5, else Fisher's exact test (`test` says which);
- sample ratio mismatch: chi-square goodness of fit of the observed arm sizes against
  the planned split, flagged when p < 0.001.

Distributions come from scipy (imported lazily: it is heavy).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

ALPHA = 0.05
CONFIDENCE = 0.95
SRM_ALPHA = 0.001
MIN_EXPECTED = 5  # every expected cell at least this: z-test, else Fisher's exact test
# A winner is only declared with enough data: each compared arm has at least
# MIN_PERSONS persons and the two arms together at least MIN_CONVERSIONS conversions.
MIN_PERSONS = 100
MIN_CONVERSIONS = 20


def _z(confidence: float = CONFIDENCE) -> float:
    from scipy.stats import norm

    return float(norm.ppf(1 - (1 - confidence) / 2))


def wilson(x: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """Wilson score interval of x successes in n trials; None when n is 0."""
    if n <= 0:
        return None
    z = _z(confidence)
    p = x / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    # At x = 0 (x = n) the bound is 0 (1) exactly; centre - half leaves a rounding residue
    # (2.8e-17 at 0/7) that a script testing `ci[0] == 0` would trip over.
    return (0.0 if x <= 0 else max(0.0, centre - half),
            1.0 if x >= n else min(1.0, centre + half))


def newcombe(x1: int, n1: int, x2: int, n2: int,
             confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """Interval of p1 - p2 (Newcombe's hybrid score method); None when an arm is empty."""
    if n1 <= 0 or n2 <= 0:
        return None
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson(x1, n1, confidence)
    l2, u2 = wilson(x2, n2, confidence)
    d = p1 - p2
    return (d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2),
            d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2))


def expected_cells(x1: int, n1: int, x2: int, n2: int) -> list[float]:
    """Expected counts of the 2x2 table (converted / not, per arm) under no difference."""
    n = n1 + n2
    pooled = (x1 + x2) / n
    return [n1 * pooled, n1 * (1 - pooled), n2 * pooled, n2 * (1 - pooled)]


def two_proportion_p(x1: int, n1: int, x2: int, n2: int) -> tuple[float, str] | None:
    """(two-sided p-value, "z" | "fisher"); None when an arm is empty."""
    if n1 <= 0 or n2 <= 0:
        return None
    if min(expected_cells(x1, n1, x2, n2)) >= MIN_EXPECTED:
        from scipy.stats import norm

        pooled = (x1 + x2) / (n1 + n2)
        se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
        z = (x1 / n1 - x2 / n2) / se
        return float(2 * norm.sf(abs(z))), "z"
    from scipy.stats import fisher_exact

    _, p = fisher_exact([[x1, n1 - x1], [x2, n2 - x2]], alternative="two-sided")
    return float(min(1.0, p)), "fisher"


def power(p1: float, n1: int, p2: float, n2: int, alpha: float = ALPHA) -> float | None:
    """Power of the two-sided z-test at level alpha to detect a true difference p1 - p2 at
    these sizes (unpooled normal approximation); None when it is undefined."""
    if n1 <= 0 or n2 <= 0:
        return None
    se = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    if se == 0:
        return None
    from scipy.stats import norm

    z = _z(1 - alpha)
    shift = abs(p1 - p2) / se
    return float(norm.sf(z - shift) + norm.cdf(-z - shift))


@dataclass(frozen=True)
class Srm:
    chi2: float
    p_value: float
    mismatch: bool

    def to_dict(self) -> dict:
        return {"chi2": self.chi2, "p_value": self.p_value, "mismatch": self.mismatch,
                "threshold": SRM_ALPHA}


def sample_ratio(observed: list[int], shares: list[float]) -> Srm | None:
    """Chi-square goodness of fit of arm sizes against planned shares (normalised);
    None with fewer than two planned arms or nobody at all."""
    total = sum(observed)
    planned = sum(shares)
    if len(observed) < 2 or total == 0 or planned <= 0:
        return None
    from scipy.stats import chisquare

    expected = [total * s / planned for s in shares]
    if any(e == 0 for e in expected):
        # an arm planned at 0% that got persons is a mismatch by definition
        bad = any(o > 0 for o, e in zip(observed, expected, strict=True) if e == 0)
        return Srm(math.inf if bad else 0.0, 0.0 if bad else 1.0, bad)
    chi2, p = chisquare(observed, expected)
    return Srm(float(chi2), float(p), bool(p < SRM_ALPHA))
