"""Statistics against closed forms: the standard error of a mean, unbiased pass@k by enumeration,
the z-test of a difference and the stderr of a mean of independent scores."""

from __future__ import annotations

import itertools
import math

import pytest

from harness.stats import Z, mean_and_stderr, mean_of_independent, pass_at_k, significant


@pytest.mark.parametrize(
    ("values", "mean", "stderr"),
    [
        ([1.0, 0.0, 1.0, 0.0], 0.5, math.sqrt((4 * 0.25 / 3) / 4)),  # ddof = 1
        ([1.0, 1.0, 1.0], 1.0, 0.0),
        ([0.25], 0.25, 0.0),  # one example: no spread to estimate
        ([0.0, 0.5, 1.0], 0.5, math.sqrt(0.25 / 3)),
    ],
)
def test_mean_and_stderr_closed_form(values, mean, stderr):
    got_mean, got_stderr = mean_and_stderr(values)
    assert got_mean == pytest.approx(mean)
    assert got_stderr == pytest.approx(stderr)


def test_mean_of_independent_scores_adds_variances():
    mean, stderr = mean_of_independent([(0.2, 0.03), (0.4, 0.04)])
    assert mean == pytest.approx(0.3)
    assert stderr == pytest.approx(math.sqrt(0.03**2 + 0.04**2) / 2)


def test_significance_is_a_two_sided_z_test_on_the_difference():
    se = 0.03
    edge = Z * math.hypot(se, se)
    assert significant((0.5 + edge * 1.01, se), (0.5, se))
    assert significant((0.5, se), (0.5 + edge * 1.01, se))  # two-sided
    assert not significant((0.5 + edge * 0.99, se), (0.5, se))
    assert not significant((0.7, 0.0), (0.5, 0.0))  # no measured spread: never significant


def test_pass_at_k_matches_the_definition_by_enumeration():
    # pass@k is the fraction of the C(n, k) subsets of samples that hold at least one pass.
    for n, c in [(5, 0), (5, 1), (5, 2), (6, 6), (10, 3)]:
        samples = [1] * c + [0] * (n - c)
        for k in range(1, n + 1):
            subsets = list(itertools.combinations(samples, k))
            exact = sum(any(s) for s in subsets) / len(subsets)
            assert pass_at_k(n, c, k) == pytest.approx(exact)


def test_pass_at_1_is_the_pass_fraction_and_the_bounds_hold():
    assert pass_at_k(16, 4, 1) == pytest.approx(0.25)
    assert pass_at_k(16, 0, 10) == 0.0 and pass_at_k(16, 7, 10) == 1.0
    assert pass_at_k(200, 1, 10) == pytest.approx(1 - math.comb(199, 10) / math.comb(200, 10))


@pytest.mark.parametrize(("n", "c", "k"), [(5, 6, 1), (5, -1, 1), (5, 2, 0), (5, 2, 6)])
def test_pass_at_k_refuses_impossible_counts(n, c, k):
    with pytest.raises(ValueError, match="pass@k needs"):
        pass_at_k(n, c, k)
