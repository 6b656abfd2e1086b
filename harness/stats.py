"""The statistics of the harness, in one place: means with standard errors, pass@k, significance.

Two sources of noise make a leaderboard score: **evaluation** noise (which examples the split
holds: each record's binomial standard error over its examples) and **training** noise (the seed:
data order and initialization; measured only when a configuration was trained with several seeds).
:func:`over_seeds` averages the replicates of one configuration and adds the two as independent
variances; :func:`welch_p_value` tests a difference of two such means with Welch's t-test
(Welch-Satterthwaite degrees of freedom, the evaluation terms taken as known) and refuses to call
anything significant while the training variance is unmeasured. A page that compares many cells
controls the false-discovery rate over them (:func:`discoveries`, Benjamini-Hochberg) instead of
testing each at 5%.

>>> mean_and_stderr([1.0, 0.0, 1.0, 0.0])
(0.5, 0.28867513459481287)
>>> round(pass_at_k(n=10, c=3, k=1), 3), round(pass_at_k(n=10, c=3, k=10), 3)
(0.3, 1.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Two-sided z-test at 5%: a difference is significant when it exceeds 1.96 of its standard error.
Z = 1.96
# The false-discovery rate of a page's many differences (Benjamini-Hochberg): the expected share of
# starred differences that are not real.
FDR = 0.05
ALPHA = 0.05  # one comparison's significance level


def mean_and_stderr(values: list[float]) -> tuple[float, float]:
    """Mean and standard error of the mean (sample standard deviation, ddof = 1)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, 0.0
    variance = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(variance / n)


def mean_of_independent(scores: list[tuple[float, float]]) -> tuple[float, float]:
    """``(mean, stderr)`` of ``k`` independent ``(value, stderr)`` scores (different examples):
    the stderr of their mean is √(Σ se²) / k."""
    k = len(scores)
    return sum(v for v, _ in scores) / k, math.sqrt(sum(se**2 for _, se in scores)) / k


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k (Chen et al. 2021): the chance that at least one of k samples drawn without
    replacement from n, of which c pass, passes: ``1 - C(n - c, k) / C(n, k)``."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


@dataclass(frozen=True)
class Estimate:
    """A score averaged over the replicates (seeds) of one configuration.

    ``stderr`` is √(evaluation variance + seed variance / seeds): the evaluation variance is the mean
    of the replicates' own squared standard errors (they share the examples, so it is not divided
    by the seeds: conservative), the seed variance the sample variance of their scores (ddof 1).
    """

    value: float
    stderr: float
    seeds: int
    seed_term: float  # seed variance / seeds: the training part of stderr², 0 when unmeasured
    seed_dof: int = 0  # degrees of freedom of the seed variance: seeds - 1, or a pooled variance's

    @property
    def training_measured(self) -> bool:
        """Whether the seed-to-seed variance was measured (two or more seeds)."""
        return self.seeds >= 2


Pooled = tuple[float, int]  # a seed variance pooled over configurations, and its degrees of freedom


def pooled_seed_variance(groups: list[list[float]]) -> Pooled:
    """The seed variance of one method pooled over configurations (each a list of its seeds'
    scores): Σ Σ (x − mean of its configuration)² / Σ (n − 1), and its degrees of freedom; a
    configuration of one seed adds nothing. ``(0.0, 0)`` when none has two.

    >>> variance, dof = pooled_seed_variance([[25.0, 26.0, 25.0], [20.0, 30.0, 25.0], [40.0]])
    >>> round(variance, 4), dof
    (12.6667, 4)
    """
    measured = [g for g in groups if len(g) > 1]
    dof = sum(len(g) - 1 for g in measured)
    squares = sum(sum((v - sum(g) / len(g)) ** 2 for v in g) for g in measured)
    return (squares / dof, dof) if dof else (0.0, 0)


def over_seeds(scores: list[tuple[float, float]], pooled: Pooled | None = None) -> Estimate:
    """The :class:`Estimate` of one configuration from its replicates' ``(value, stderr)``. With
    ``pooled`` (the method's seed variance pooled over a page's configurations,
    :func:`pooled_seed_variance`), a seed variance below it is taken as the pooled one, with its
    degrees of freedom: three seeds that happen to agree (25.0, 26.0, 25.0 where ten seeds spread by
    2.9) cannot make a difference look surer than the method's runs are.

    >>> one = over_seeds([(0.70, 0.03)])
    >>> one.value, one.stderr, one.training_measured
    (0.7, 0.03, False)
    >>> three = over_seeds([(0.60, 0.03), (0.70, 0.03), (0.80, 0.03)])
    >>> round(three.value, 3), round(three.stderr, 4), round(three.seed_term, 5), three.seed_dof
    (0.7, 0.0651, 0.00333, 2)
    >>> agreeing = over_seeds([(0.25, 0.0), (0.26, 0.0), (0.25, 0.0)], pooled=(0.0012, 24))
    >>> round(agreeing.seed_term, 6), agreeing.seed_dof
    (0.0004, 24)
    """
    if not scores:
        raise ValueError("over_seeds needs at least one score")
    m = len(scores)
    mean = sum(v for v, _ in scores) / m
    evaluation = sum(se**2 for _, se in scores) / m
    variance = 0.0 if m < 2 else sum((v - mean) ** 2 for v, _ in scores) / (m - 1)
    dof = m - 1
    larger = (
        pooled is not None and pooled[0] > variance and not math.isclose(pooled[0], variance, rel_tol=1e-9)
    )
    if m >= 2 and larger and pooled[1]:  # equal up to rounding: the configuration's own
        variance, dof = pooled
    seed_term = variance / m
    return Estimate(mean, math.sqrt(evaluation + seed_term), m, seed_term, dof)


def welch_p_value(a: Estimate, b: Estimate) -> float | None:
    """The two-sided p-value of ``a - b`` in Welch's t-test over the seeds, the evaluation variance
    of both added as known (Welch-Satterthwaite degrees of freedom from the seed terms alone); None
    when either side's training variance is unmeasured (one seed).

    >>> sft = over_seeds([(0.60, 0.0), (0.62, 0.0), (0.61, 0.0)])
    >>> round(welch_p_value(over_seeds([(0.70, 0.0), (0.72, 0.0), (0.71, 0.0)]), sft), 6)
    0.000255
    """
    if not (a.training_measured and b.training_measured):
        return None
    spread = math.hypot(a.stderr, b.stderr)
    if spread == 0:
        return 1.0 if a.value == b.value else 0.0
    estimated = sum(term**2 / est.seed_dof for term, est in ((a.seed_term, a), (b.seed_term, b)))
    dof = math.inf if estimated == 0 else spread**4 / estimated
    statistic = abs(a.value - b.value) / spread
    if math.isinf(dof):
        return math.erfc(statistic / math.sqrt(2))
    from scipy.stats import t  # import cost: scipy.stats, only when seeds were measured

    return float(2 * t.sf(statistic, dof))


def benjamini_hochberg(p_values: list[float | None], rate: float = FDR) -> list[float | None]:
    """Benjamini-Hochberg adjusted p-values (q-values) of a family of tests, in the input's order:
    a difference is a discovery at false-discovery rate ``rate`` when its q-value is at most it.
    The family is the p-values given (None: a test not made, left out of the family and of the
    count). ``q_(i) = min over j >= i of p_(j) * m / j`` over the sorted p-values, capped at 1.

    >>> [None if q is None else round(q, 4) for q in benjamini_hochberg([0.01, 0.04, 0.03, None, 0.2])]
    [0.04, 0.0533, 0.0533, None, 0.2]
    """
    tested = sorted((p, index) for index, p in enumerate(p_values) if p is not None)
    m = len(tested)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 1.0
    for rank in range(m, 0, -1):
        p, index = tested[rank - 1]
        running = min(running, p * m / rank)
        adjusted[index] = running
    return adjusted


def discoveries(p_values: list[float | None], rate: float = FDR) -> list[bool | None]:
    """Which tests of a family are discoveries at false-discovery rate ``rate`` (Benjamini-Hochberg
    step-up: the largest k with p_(k) <= k rate / m, and every p at most p_(k)); None for a test
    not made.

    >>> discoveries([0.01, 0.04, 0.03, None, 0.2])
    [True, False, False, None, False]
    """
    return [None if q is None else q <= rate for q in benjamini_hochberg(p_values, rate)]


def significant_difference(a: Estimate, b: Estimate) -> bool | None:
    """Whether ``a - b`` is significant at 5% (two-sided Welch t-test over the seeds, with the
    evaluation variance of both added); None when either side's training variance is unmeasured
    (one seed): the difference may be seed noise, so nothing is claimed.

    >>> sft = over_seeds([(0.60, 0.03), (0.62, 0.03), (0.61, 0.03)])
    >>> significant_difference(over_seeds([(0.75, 0.03), (0.77, 0.03), (0.76, 0.03)]), sft)
    True
    >>> significant_difference(over_seeds([(0.55, 0.03), (0.75, 0.03), (0.65, 0.03)]), sft)
    False
    >>> significant_difference(over_seeds([(0.90, 0.03)]), sft) is None
    True
    """
    p = welch_p_value(a, b)
    return None if p is None else p < ALPHA
