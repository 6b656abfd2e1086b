"""The statistics of the harness, in one place: means with standard errors, pass@k, significance.

Two sources of noise make a leaderboard score: **evaluation** noise (which examples the split
holds: each record's binomial standard error over its examples) and **training** noise (the seed:
data order and initialization; measured only when a configuration was trained with several seeds).
:func:`over_seeds` averages the replicates of one configuration and adds the two as independent
variances; :func:`significant_difference` tests a difference of two such means with Welch's t-test
(Welch-Satterthwaite degrees of freedom, the evaluation terms taken as known) and refuses to call
anything significant while the training variance is unmeasured.

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

    @property
    def training_measured(self) -> bool:
        """Whether the seed-to-seed variance was measured (two or more seeds)."""
        return self.seeds >= 2


def over_seeds(scores: list[tuple[float, float]]) -> Estimate:
    """The :class:`Estimate` of one configuration from its replicates' ``(value, stderr)``.

    >>> one = over_seeds([(0.70, 0.03)])
    >>> one.value, one.stderr, one.training_measured
    (0.7, 0.03, False)
    >>> three = over_seeds([(0.60, 0.03), (0.70, 0.03), (0.80, 0.03)])
    >>> round(three.value, 3), round(three.stderr, 4), round(three.seed_term, 5)
    (0.7, 0.0651, 0.00333)
    """
    if not scores:
        raise ValueError("over_seeds needs at least one score")
    m = len(scores)
    mean = sum(v for v, _ in scores) / m
    evaluation = sum(se**2 for _, se in scores) / m
    seed_term = 0.0 if m < 2 else sum((v - mean) ** 2 for v, _ in scores) / (m - 1) / m
    return Estimate(mean, math.sqrt(evaluation + seed_term), m, seed_term)


def t_critical(dof: float) -> float:
    """The two-sided 5% critical value of Student's t with ``dof`` degrees of freedom (:data:`Z` at
    infinity).

    >>> round(t_critical(2), 3), round(t_critical(math.inf), 2)
    (4.303, 1.96)
    """
    if math.isinf(dof):
        return Z
    from scipy.stats import t  # import cost: scipy.stats, only when seeds were measured

    return float(t.ppf(0.975, dof))


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
    if not (a.training_measured and b.training_measured):
        return None
    spread = math.hypot(a.stderr, b.stderr)
    if spread == 0:
        return a.value != b.value
    # Welch-Satterthwaite: only the seed terms are estimated from few replicates.
    estimated = sum(term**2 / (est.seeds - 1) for term, est in ((a.seed_term, a), (b.seed_term, b)))
    dof = math.inf if estimated == 0 else spread**4 / estimated
    return abs(a.value - b.value) > t_critical(dof) * spread
