"""Statistics for robustness numbers: Wilson intervals, exact McNemar tests, curve summaries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, overload

import numpy as np


@overload
def wilson_interval(correct: int, n: int, confidence: float = 0.95) -> tuple[float, float]: ...
@overload
def wilson_interval(correct: np.ndarray, n: np.ndarray, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]: ...
def wilson_interval(correct: Any, n: Any, confidence: float = 0.95) -> tuple[Any, Any]:
    """Wilson score interval for binomial proportions (statsmodels), scalars or arrays; nan where n = 0."""
    from statsmodels.stats.proportion import proportion_confint

    k, m = np.asarray(correct, float), np.asarray(n, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        low, high = proportion_confint(k, np.where(m > 0, m, np.nan), alpha=1 - confidence, method="wilson")
    low, high = np.clip(low, 0, 1), np.clip(high, 0, 1)
    if np.ndim(correct) == 0 and np.ndim(n) == 0:
        return float(low), float(high)
    return low, high


def mcnemar_exact(a_correct: np.ndarray, b_correct: np.ndarray) -> tuple[int, int, float]:
    """Exact McNemar test on paired outcomes: (only A right, only B right, two-sided p).

    Under H0 the discordant pairs split 50/50, so p is a two-sided binomial test on them.
    """
    a, b = np.asarray(a_correct, bool), np.asarray(b_correct, bool)
    if a.shape != b.shape:
        raise ValueError(f"paired outcomes differ in shape: {a.shape} vs {b.shape}")
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    if only_a + only_b == 0:
        return 0, 0, 1.0
    from scipy import stats

    return only_a, only_b, float(stats.binomtest(only_a, only_a + only_b, 0.5).pvalue)


def normalised_auc(eps: Sequence[float], accuracy: Sequence[float]) -> float:
    """Trapezoid area under accuracy vs eps divided by the eps range (1.0 = perfect at every eps)."""
    e, a = np.asarray(eps, float), np.asarray(accuracy, float)
    if len(e) < 2 or e[-1] == e[0]:
        return float(a[0]) if len(a) else float("nan")
    return float(np.trapezoid(a, e) / (e[-1] - e[0]))


def eps_at_half(eps: Sequence[float], accuracy: Sequence[float], clean: float) -> float:
    """Smallest eps where accuracy falls to half of clean (linear interpolation); nan if never."""
    e, a = np.asarray(eps, float), np.asarray(accuracy, float)
    target = clean / 2
    below = np.nonzero(a <= target)[0]
    if len(below) == 0:
        return float("nan")
    i = int(below[0])
    if i == 0 or a[i - 1] == a[i]:
        return float(e[i])
    return float(e[i - 1] + (a[i - 1] - target) * (e[i] - e[i - 1]) / (a[i - 1] - a[i]))
