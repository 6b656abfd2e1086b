"""The statistics of the harness, in one place: means with standard errors, pass@k, significance.

>>> mean_and_stderr([1.0, 0.0, 1.0, 0.0])
(0.5, 0.28867513459481287)
>>> round(pass_at_k(n=10, c=3, k=1), 3), round(pass_at_k(n=10, c=3, k=10), 3)
(0.3, 1.0)
>>> significant((0.60, 0.03), (0.50, 0.03)), significant((0.52, 0.03), (0.50, 0.03))
(True, False)
"""

from __future__ import annotations

import math

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


def significant(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Whether ``a - b`` exceeds :data:`Z` standard errors of the difference, √(se₁² + se₂²)
    (a two-sided z-test at 5% that treats the two scores as independent)."""
    spread = math.hypot(a[1], b[1])
    return spread > 0 and abs(a[0] - b[0]) > Z * spread


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k (Chen et al. 2021): the chance that at least one of k samples drawn without
    replacement from n, of which c pass, passes: ``1 - C(n - c, k) / C(n, k)``."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)
