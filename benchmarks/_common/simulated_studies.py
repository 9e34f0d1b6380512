"""Simulated studies with known truth, to calibrate the architecture statistics
(``robust_attn.archstats``): two architectures, several training seeds each, on the same test
images. Shared by ``tests/test_archstats.py`` (a small run) and
``benchmarks/archstats_calibration.py`` (the full table)."""

from __future__ import annotations

import numpy as np

from robust_attn.archstats import architecture_difference, architecture_mean

SAMPLE_SD = 1.5  # logit scale: how much test images differ in difficulty
SAMPLE_CORRELATION = 0.6  # the two architectures find the same images hard


def expit(z: np.ndarray) -> np.ndarray:
    """The logistic function."""
    return 1 / (1 + np.exp(-z))


def simulate(tau: float, mu_a: float, mu_b: float, reps: int, seeds: int = 3, n: int = 200, seed: int = 0) -> tuple[float, float, float]:
    """(coverage of the true difference, share of p < 0.05, coverage of A's true accuracy) over
    ``reps`` simulated studies: per-sample outcomes from logit(p) = mu + seed effect (sd ``tau``)
    + sample effect (sd 1.5, correlated 0.6 between the architectures, which see the same
    images); the true accuracies are the population means, taken over a million sample effects."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, np.hypot(tau, SAMPLE_SD), 1_000_000)
    truth_a, truth_b = expit(mu_a + z).mean(), expit(mu_b + z).mean()
    cov = np.array([[1, SAMPLE_CORRELATION], [SAMPLE_CORRELATION, 1]]) * SAMPLE_SD**2
    cover = positive = cover_a = 0
    for _ in range(reps):
        v = rng.multivariate_normal([0, 0], cov, size=n)
        a = rng.random((seeds, n)) < expit(mu_a + rng.normal(0, tau, seeds)[:, None] + v[None, :, 0])
        b = rng.random((seeds, n)) < expit(mu_b + rng.normal(0, tau, seeds)[:, None] + v[None, :, 1])
        d = architecture_difference(a, b)
        cover += d.low <= truth_a - truth_b <= d.high
        positive += d.p_value < 0.05
        m = architecture_mean(a)
        cover_a += m.low <= truth_a <= m.high
    return cover / reps, positive / reps, cover_a / reps
