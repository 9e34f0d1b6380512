"""Linear probes on frozen features: the paper's generalisation claim (attention models' global
descriptors transfer better to unseen data sets).

For each unseen set, the model's descriptors (:mod:`robust_attn.probes.features`) of the train
split are standardised (mean and scale of the train split, applied to both splits) and a
multinomial logistic regression is fitted (scikit-learn, lbfgs, L2 penalty with the fixed
``PROBE_C``; lbfgs is deterministic); its per-sample correctness on the test split is the result.
Rows are per test sample, so reports can compare architectures over seeds with
:mod:`robust_attn.archstats` (the same test images for every model).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn

from robust_attn.data.unseen import Skipped, UnseenSplits
from robust_attn.errors import DataError
from robust_attn.probes.features import FeatureProtocolError, extract_features
from robust_attn.stats import wilson_interval

# Inverse L2 strength on standardised features, fixed for every model and data set (no tuning on
# test data): chosen once on a validation split of the unseen train sets (README of the probe).
PROBE_C = 0.1
MAX_ITER = 2000  # lbfgs iterations; a fit that needs more is flagged (converged = False), not hidden
TOL = 1e-4


@dataclass(frozen=True)
class ProbeFit:
    """Test-split predictions of one fitted probe, and whether lbfgs converged."""

    pred: np.ndarray
    converged: bool
    n_iter: int


def fit_linear_probe(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, c: float = PROBE_C) -> ProbeFit:
    """Standardise with the train split's statistics, fit a multinomial logistic regression, predict test."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    if len(np.unique(train_y)) < 2:
        raise DataError(f"a linear probe needs at least 2 classes in the train split, got {len(np.unique(train_y))}")
    scaler = StandardScaler().fit(train_x)
    clf = LogisticRegression(C=c, max_iter=MAX_ITER, tol=TOL, solver="lbfgs")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # reported as converged = False
        clf.fit(scaler.transform(train_x), train_y)
    n_iter = int(np.max(clf.n_iter_))
    return ProbeFit(clf.predict(scaler.transform(test_x)), n_iter < MAX_ITER, n_iter)


def _finite(features: np.ndarray, model: nn.Module, name: str) -> np.ndarray:
    if not np.isfinite(features).all():
        raise FeatureProtocolError(f"{type(model).__name__}'s features on {name} contain NaN or inf; check the model's weights")
    return features


def probe_dataset(model: nn.Module, data: UnseenSplits, device: torch.device | str | None = None) -> dict[str, np.ndarray]:
    """Per-sample rows of the linear probe of ``model`` on one unseen set (test split)."""
    train_x = _finite(extract_features(model, data.train, device), model, data.name)
    test_x = _finite(extract_features(model, data.test, device), model, data.name)
    train_y, test_y = data.train.labels.numpy(), data.test.labels.numpy()
    fit = fit_linear_probe(train_x, train_y, test_x)
    n = len(test_y)
    return {
        "dataset": np.full(n, data.name, dtype=object),
        "sample": np.arange(n, dtype=np.int32),
        "label": test_y.astype(np.int16),
        "pred": fit.pred.astype(np.int16),
        "correct": fit.pred == test_y,
        "feature_dim": np.full(n, train_x.shape[1], dtype=np.int32),
        "n_train": np.full(n, len(train_y), dtype=np.int32),
        "n_classes": np.full(n, len(data.train.classes), dtype=np.int16),
        "converged": np.full(n, fit.converged, dtype=bool),
    }


ROW_COLUMNS = ("dataset", "sample", "label", "pred", "correct", "feature_dim", "n_train", "n_classes", "converged")


def generalisation_rows(
    model: nn.Module, datasets: Sequence[UnseenSplits], device: torch.device | str | None = None
) -> dict[str, np.ndarray]:
    """Per-sample rows (ROW_COLUMNS) of the linear probes of ``model`` on every set of ``datasets``."""
    parts = [probe_dataset(model, d, device) for d in datasets]
    if not parts:
        return {k: np.zeros(0, dtype=object if k == "dataset" else None) for k in ROW_COLUMNS}
    return {k: np.concatenate([p[k] for p in parts]) for k in ROW_COLUMNS}


def generalisation_summary(rows: dict[str, np.ndarray], skipped: Sequence[Skipped] = ()) -> dict[str, np.ndarray]:
    """Per data set: n, correct, accuracy with its 95% Wilson interval, feature_dim, converged; and a
    row (accuracy nan) with the reason for every skipped set."""
    names = list(dict.fromkeys(rows["dataset"].tolist()))
    out: dict[str, list[object]] = {
        k: [] for k in ("dataset", "n", "correct", "accuracy", "ci_low", "ci_high", "feature_dim", "converged", "skipped")
    }
    for name in names:
        sel = rows["dataset"] == name
        k, n = int(rows["correct"][sel].sum()), int(sel.sum())
        low, high = wilson_interval(k, n)
        values = (name, n, k, k / n, low, high, int(rows["feature_dim"][sel][0]), bool(rows["converged"][sel].all()), "")
        for key, value in zip(out, values):
            out[key].append(value)
    for s in skipped:
        for key, value in zip(out, (s.name, 0, 0, np.nan, np.nan, np.nan, 0, False, s.reason)):
            out[key].append(value)
    return {k: np.asarray(v, dtype=object if k in ("dataset", "skipped") else None) for k, v in out.items()}
