"""The units of a sweep and their outcomes: what the planner builds, the runner computes and the
writer stores. Plain data, importing nothing else of the run directory."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ModelInfo:
    """Who a row belongs to, as the model declares it: the reference as written in the spec, its
    architecture, training regime (``clean``, ``fgsm-at``, ... ``unknown``), training seed and
    whether it has attention (the attention protocol, ``attention_maps(x)``)."""

    ref: str
    architecture: str | None = None
    train_seed: int | None = None
    training_regime: str = "unknown"
    has_attention: bool = False


@dataclass
class AttackCell:
    """One (model, attack, mode) over its eps grid: the resumable unit of a sweep."""

    model: ModelInfo
    attack: str  # the spec's attack id
    name: str
    backend: str
    norm: str
    mode: str
    params: dict[str, Any]
    eps: list[float]
    config_hash: str
    traits: dict[str, Any] = field(default_factory=dict)  # the attack's declared AttackTraits, recorded with its rows
    conditions: list[dict[str, Any]] = field(default_factory=list)  # corruption cells: their (corruption, severity) pairs, in order
    source: str | None = None  # transfer cells: the model (or ensemble) the adversarial images were crafted on

    @property
    def threat_model(self) -> str:
        return str(self.traits.get("threat_model", "white-box")) if self.source is None else "transfer"

    @property
    def size(self) -> int:
        """K: the conditions of the cell (its eps grid, or its corruption x severity pairs)."""
        return len(self.conditions) if self.conditions else len(self.eps)

    @property
    def slug(self) -> str:
        return self.config_hash[:16]


@dataclass
class CellOutcome:
    """Per-sample outcomes of one attack cell over K eps and N samples."""

    pred: np.ndarray  # (K, N) predicted labels
    correct: np.ndarray  # (K, N) bool
    clean_pred: np.ndarray  # (N,)
    columns: dict[str, np.ndarray] = field(default_factory=dict)  # optional sample columns, (N,) or (K, N)


@dataclass
class ProbeCell:
    """A per-model measurement unit: the attention / segmentation probe (``kind="attention"``) or
    the indicators of attack failure (``kind="indicators"``)."""

    model: ModelInfo
    attack: str  # attention: the attack that made the adversarial images, e.g. PGD-10
    config_hash: str
    kind: str = "attention"

    @property
    def slug(self) -> str:
        return self.config_hash[:16]


Unit = AttackCell | ProbeCell


@dataclass
class ProbeOutcome:
    """Tables (column name -> array) and example arrays of a probe unit."""

    drift: dict[str, np.ndarray] = field(default_factory=dict)  # one row per sample x stage x eps
    segmentation: dict[str, np.ndarray] = field(default_factory=dict)
    examples: dict[str, np.ndarray] = field(default_factory=dict)  # images (E, B, C, H, W), maps (E, S, B, H, W), preds (E, B), eps (E,)
    stages: list[str] = field(default_factory=list)
    indicators: dict[str, np.ndarray] = field(default_factory=dict)  # one row per (attack, indicator)
    generalisation: dict[str, np.ndarray] = field(default_factory=dict)  # linear-probe rows, one per unseen test sample
