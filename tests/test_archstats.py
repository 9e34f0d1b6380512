"""Architecture-level statistics: the ANOVA pieces against statsmodels, hand-checked small cases,
and calibration on simulated studies with known truth (seed effects and sample effects)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest

from robust_attn.archstats import architecture_difference, architecture_mean


def _load_simulated_studies() -> ModuleType:
    """benchmarks/_common/simulated_studies.py, loaded by path: the simulation this test shares
    with the calibration benchmark (no test imports a benchmark script)."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "_common" / "simulated_studies.py"
    spec = importlib.util.spec_from_file_location("benchmarks_common_simulated_studies", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


simulated = _load_simulated_studies()


def test_variance_parts_match_a_two_way_anova_in_statsmodels() -> None:
    import statsmodels.formula.api as smf
    from statsmodels.stats.anova import anova_lm

    rng = np.random.default_rng(0)
    y = (rng.random((3, 40)) < 0.7).astype(float)
    y[1] = np.maximum(y[1], rng.random(40) < 0.5)  # a seed that is right more often
    long = pd.DataFrame({"y": y.ravel(), "seed": np.repeat(np.arange(3), 40), "sample": np.tile(np.arange(40), 3)})
    table = anova_lm(smf.ols("y ~ C(seed) + C(sample)", long).fit())
    ms_seed, ms_sample, ms_resid = table["mean_sq"].tolist()
    est = architecture_mean(y)
    # seed part MS_seed / (N S) and sample part (MS_sample / S - MS_resid / S) / N, i.e. var(column means) - MS_resid / S over N
    expected = ms_seed / (40 * 3) + max(0.0, ms_sample / 3 - ms_resid / 3) / 40
    assert est.se**2 == pytest.approx(expected, rel=1e-10)
    assert est.value == pytest.approx(y.mean())


def test_hand_computed_small_table() -> None:
    y = np.array([[1, 1, 0, 1], [1, 0, 0, 1], [1, 1, 1, 1]], float)
    est = architecture_mean(y)
    # row means 3/4, 1/2, 1: var 1/16, so the seed part is (4 * 1/16) / (4 * 3) = 1/48; column means 1, 2/3, 1/3, 1
    resid = y - y.mean(1, keepdims=True) - y.mean(0, keepdims=True) + y.mean()
    ms_resid = (resid**2).sum() / (2 * 3)
    sample = max(0.0, np.var([1, 2 / 3, 1 / 3, 1], ddof=1) - ms_resid / 3) / 4
    assert est.value == 0.75 and est.se**2 == pytest.approx(1 / 48 + sample)
    one = architecture_mean(y[:1])  # one seed: only the sample part (no seed-to-seed variation can be seen)
    assert one.se**2 == pytest.approx(np.var(y[0], ddof=1) / 4)
    same = architecture_difference(y, y)
    assert same.value == 0 and same.p_value == pytest.approx(1.0) and same.low < 0 < same.high
    with pytest.raises(ValueError, match="different samples"):
        architecture_difference(y, y[:, :3])


@pytest.mark.parametrize("tau", [0.05, 0.6])  # seeds that barely differ, and seeds that differ a lot (logit scale)
def test_intervals_and_test_are_calibrated(tau: float) -> None:
    """95% intervals for the difference cover the truth 93-97% of the time and the test's false
    positive rate at 5% is at most 6%, with 3 seeds per architecture (800 simulated studies each;
    the larger simulation is benchmarks/archstats_calibration.py; both run benchmarks/_common/simulated_studies.py)."""
    coverage, _, _ = simulated.simulate(tau, 1.2, 1.0, reps=800)
    null_coverage, false_positive, _ = simulated.simulate(tau, 1.0, 1.0, reps=800, seed=1)
    assert 0.93 <= coverage <= 0.97 and 0.93 <= null_coverage <= 0.97
    assert false_positive <= 0.06
