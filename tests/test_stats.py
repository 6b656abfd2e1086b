"""Statistics against closed forms: the standard error of a mean, unbiased pass@k by enumeration,
the z-test of a difference and the stderr of a mean of independent scores."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from harness.stats import (
    Z,
    mean_and_stderr,
    mean_of_independent,
    over_seeds,
    pass_at_k,
    significant_difference,
    t_critical,
)


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


def test_over_seeds_adds_the_evaluation_and_the_seed_variance():
    scores = [(0.60, 0.03), (0.70, 0.04), (0.65, 0.05)]
    estimate = over_seeds(scores)
    seed_variance = sum((v - 0.65) ** 2 for v, _ in scores) / 2  # ddof 1
    evaluation = (0.03**2 + 0.04**2 + 0.05**2) / 3  # shared examples: not divided by the seeds
    assert estimate.value == pytest.approx(0.65) and estimate.seeds == 3
    assert estimate.stderr == pytest.approx(math.sqrt(evaluation + seed_variance / 3))
    assert estimate.training_measured and not over_seeds(scores[:1]).training_measured
    with pytest.raises(ValueError):
        over_seeds([])


def test_without_evaluation_noise_it_is_welchs_t_test():
    from scipy.stats import ttest_ind

    rng = random.Random(0)
    agreements = 0
    for _ in range(300):
        a = [rng.gauss(0.5, 0.05) for _ in range(rng.randint(2, 5))]
        b = [rng.gauss(0.55, 0.05) for _ in range(rng.randint(2, 5))]
        ours = significant_difference(over_seeds([(v, 0.0) for v in a]), over_seeds([(v, 0.0) for v in b]))
        assert ours == (ttest_ind(a, b, equal_var=False).pvalue < 0.05)
        agreements += ours
    assert 0 < agreements < 300  # both outcomes were exercised


def test_seed_noise_is_required_and_evaluation_noise_is_added():
    one = over_seeds([(0.9, 0.01)])
    three = over_seeds([(0.50, 0.01), (0.51, 0.01), (0.52, 0.01)])
    assert significant_difference(one, three) is None  # a single seed: training variance unmeasured
    same = over_seeds([(0.7, 0.03)] * 3)  # identical seeds: no seed variance, a z-test on the rest
    edge = Z * math.hypot(0.03, 0.03)
    assert significant_difference(over_seeds([(0.7 + edge * 1.01, 0.03)] * 3), same)
    assert not significant_difference(over_seeds([(0.7 + edge * 0.99, 0.03)] * 3), same)
    assert round(t_critical(2), 3) == 4.303 and t_critical(math.inf) == Z


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
