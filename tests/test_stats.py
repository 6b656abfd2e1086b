"""Statistics against closed forms: the standard error of a mean, unbiased pass@k by enumeration,
the z-test of a difference and the stderr of a mean of independent scores."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from harness.stats import (
    Z,
    benjamini_hochberg,
    discoveries,
    mean_and_stderr,
    mean_of_independent,
    over_seeds,
    pass_at_k,
    significant_difference,
    welch_p_value,
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


def test_welch_p_value_is_scipys_without_evaluation_noise():
    from scipy.stats import ttest_ind

    a, b = [0.52, 0.61, 0.55, 0.58], [0.50, 0.49, 0.56]
    ours = welch_p_value(over_seeds([(v, 0.0) for v in a]), over_seeds([(v, 0.0) for v in b]))
    assert ours == pytest.approx(ttest_ind(a, b, equal_var=False).pvalue, rel=1e-9)
    assert welch_p_value(over_seeds([(0.5, 0.01)]), over_seeds([(0.5, 0.01)] * 3)) is None
    # No seed variance on either side: a z-test on the evaluation terms (erfc of z / sqrt 2).
    z = over_seeds([(0.5 + 1.96 * math.hypot(0.03, 0.03), 0.03)] * 3)
    assert welch_p_value(z, over_seeds([(0.5, 0.03)] * 3)) == pytest.approx(0.05, abs=1e-4)


# Benjamini & Hochberg (1995), section 4's example: 15 p-values of one study. At q = 0.05 the
# step-up procedure rejects the four smallest (Bonferroni at 0.05/15 rejects three).
BH_1995 = [
    0.0001,
    0.0004,
    0.0019,
    0.0095,
    0.0201,
    0.0278,
    0.0298,
    0.0344,
    0.0459,
    0.3240,
    0.4262,
    0.5719,
    0.6528,
    0.7590,
    1.0000,
]


def test_benjamini_hochberg_reproduces_the_papers_example():
    assert discoveries(BH_1995) == [True] * 4 + [False] * 11
    shuffled = [BH_1995[i] for i in (14, 3, 0, 9, 2, 7, 1, 13, 5, 8, 4, 12, 6, 11, 10)]
    assert [p for p, found in zip(shuffled, discoveries(shuffled)) if found] == [
        0.0095,
        0.0001,
        0.0019,
        0.0004,
    ]


def test_benjamini_hochberg_adjusted_values_in_closed_form():
    # m = 4, sorted 0.01 0.02 0.03 0.5: p * m / rank = 0.04 0.04 0.04 0.5, monotone from the top.
    assert benjamini_hochberg([0.03, 0.5, 0.01, 0.02]) == pytest.approx([0.04, 0.5, 0.04, 0.04])
    # Every p at 0.05 with m of them: each q = 0.05 (rank m: 0.05 * m / m), all discoveries at 5%.
    assert discoveries([0.05] * 7) == [True] * 7
    # One p just under 0.05 among 10 nulls is no discovery (q = 0.049 * 11), alone it is one.
    assert discoveries([0.049] + [0.9] * 10) == [False] + [False] * 10
    assert discoveries([0.049]) == [True]
    # Tests not made (one seed) are neither in the family nor discoveries.
    assert discoveries([None, 0.01, None, 0.04]) == [None, True, None, True]
    assert benjamini_hochberg([]) == [] and discoveries([None]) == [None]


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
