"""Architecture-level statistics: accuracy of an architecture across training seeds and test
samples, and the difference between two architectures, with intervals that include both sources
of variation.

Per architecture the per-sample outcomes form a seeds x samples table Y[s, i] (1 = correct). The
model is the crossed random-effects one, Y[s, i] = mu + u_s + v_i + w_si: u a seed effect (another
training run), v a sample effect (another test image), w the rest. The architecture's accuracy
is the grand mean G, whose variance is sigma_u^2 / S + (sigma_v^2 + sigma_w^2 / S) / N. The
method of moments of the two-way ANOVA estimates it without fitting anything, split so that the
noisy seed part carries its own few degrees of freedom:

* seed part: MS_seed / (N S) = var_s(row means) / S, with S - 1 degrees of freedom (it holds
  sigma_u^2 / S and the residual's share sigma_w^2 / (N S));
* sample part: (var_i(column means) - MS_resid / S) / N = sigma_v^2 / N, with N - 1.

For two architectures on the same test images (seeds independent, samples paired) the difference
d = G_A - G_B has variance seed_A + seed_B + paired sample part, the last estimated from the
per-sample differences of column means (minus the residual shares), which keeps the pairing. Intervals are t intervals with Satterthwaite's degrees of freedom: with 3 seeds the
seed parts have 2, so when seeds disagree the interval widens accordingly. Calibration on
simulated studies with known truth is in ``tests/test_archstats.py`` and
``benchmarks/archstats_calibration.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Estimate:
    """A mean (or difference of means) with its standard error, degrees of freedom, 95% interval
    and, for differences, the two-sided p-value of 'no difference'."""

    value: float
    se: float
    df: float
    low: float
    high: float
    p_value: float = float("nan")
    seeds: tuple[int, ...] = ()


def _anova(y: np.ndarray) -> tuple[float, float, np.ndarray]:
    """(MS_seed, MS_resid, column means) of a seeds x samples table (MS_resid = 0 for one seed)."""
    s, n = y.shape
    row, col = y.mean(axis=1), y.mean(axis=0)
    if s < 2:
        return 0.0, 0.0, col
    resid = y - row[:, None] - col[None, :] + y.mean()
    return float(n * row.var(ddof=1)), float((resid**2).sum() / ((s - 1) * (n - 1))), col


def _t_estimate(value: float, terms: list[tuple[float, float]], seeds: tuple[int, ...], test: bool) -> Estimate:
    from scipy import stats

    var = sum(t for t, _ in terms)
    se = float(np.sqrt(var))
    denom = sum(t * t / df for t, df in terms if t > 0 and np.isfinite(df))
    df = float(var * var / denom) if denom > 0 else float("inf")
    q = float(stats.t.ppf(0.975, df)) if np.isfinite(df) else 1.959964
    p = float(2 * stats.t.sf(abs(value) / se, df)) if test and se > 0 else (float("nan") if not test else float(value == 0) or 0.0)
    return Estimate(value, se, df, value - q * se, value + q * se, p, seeds)


def _check(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y, dtype=float)
    if y.ndim != 2 or y.shape[0] < 1 or y.shape[1] < 2:
        raise ValueError(f"need a seeds x samples table with at least 2 samples, got shape {y.shape}")
    return y


def architecture_mean(y: np.ndarray, seeds: tuple[int, ...] = ()) -> Estimate:
    """Accuracy of one architecture (seeds x samples outcomes) with a 95% interval over seeds and samples."""
    y = _check(y)
    s, n = y.shape
    ms_seed, ms_resid, col = _anova(y)
    terms = [(ms_seed / (n * s), float(s - 1)), (max(0.0, col.var(ddof=1) - ms_resid / s) / n, float(n - 1))]
    return _t_estimate(float(y.mean()), terms, seeds, test=False)


def architecture_difference(a: np.ndarray, b: np.ndarray) -> Estimate:
    """Accuracy of A minus accuracy of B, outcomes on the same samples (columns aligned), with a 95%
    interval and the two-sided p-value of no difference."""
    a, b = _check(a), _check(b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"the architectures were evaluated on different samples: {a.shape[1]} vs {b.shape[1]}")
    n = a.shape[1]
    ms_a, resid_a, col_a = _anova(a)
    ms_b, resid_b, col_b = _anova(b)
    paired = max(0.0, (col_a - col_b).var(ddof=1) - resid_a / a.shape[0] - resid_b / b.shape[0]) / n
    terms = [(ms_a / (n * a.shape[0]), float(a.shape[0] - 1)), (ms_b / (n * b.shape[0]), float(b.shape[0] - 1)), (paired, float(n - 1))]
    return _t_estimate(float(a.mean() - b.mean()), terms, (), test=True)
