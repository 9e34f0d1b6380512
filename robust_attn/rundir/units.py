"""The units of a sweep and their outcomes: what the planner builds, the runner computes and the
writer stores. Plain data, importing nothing else of the run directory."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

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


@dataclass(kw_only=True)
class Cell:
    """One model under one evaluation over K conditions: the resumable unit of a sweep. Its type
    is its kind (:class:`AttackCell`, :class:`TransferCell`, :class:`CorruptionCell`): the sweep
    runs it, the writer stores it and the reader reads it back by that type."""

    threat_model: ClassVar[str] = "white-box"
    model: ModelInfo
    attack: str  # the spec's id of the evaluation (pgd-10, fgsm@torchattacks, corruptions)
    name: str  # its registered name
    backend: str
    norm: str
    mode: str
    params: dict[str, Any]
    config_hash: str
    traits: dict[str, Any] = field(default_factory=dict)  # the evaluation's declared traits, recorded with its rows

    @property
    def slug(self) -> str:
        return self.config_hash[:16]

    @property
    def size(self) -> int:
        """K: the conditions of the cell."""
        raise NotImplementedError

    def columns(self, n: int) -> dict[str, Any]:
        """The columns that say which condition each of the K x N rows is under (eps-major)."""
        raise NotImplementedError


@dataclass(kw_only=True)
class AttackCell(Cell):
    """One (model, attack, mode) over its eps grid, attacked with the model's own gradients or queries."""

    eps: list[float]

    @property
    def size(self) -> int:
        return len(self.eps)

    def columns(self, n: int) -> dict[str, Any]:
        return {"eps": np.repeat(np.asarray(self.eps, np.float64), n), "norm": self.norm, "source": None}


@dataclass(kw_only=True)
class TransferCell(AttackCell):
    """A target model on adversarial images crafted on ``source`` (a model, or models joined by +
    whose logits were averaged): a cell of a transfer matrix, each eps an independent attack."""

    threat_model: ClassVar[str] = "transfer"
    source: str

    def columns(self, n: int) -> dict[str, Any]:
        return {**super().columns(n), "source": self.source}


@dataclass(kw_only=True)
class CorruptionCell(Cell):
    """A model under common corruptions: each (corruption, severity) condition an evaluation of
    the clean images; no eps, no norm."""

    threat_model: ClassVar[str] = "corruption"
    conditions: list[dict[str, Any]]  # (corruption, severity) pairs, corruption-major

    @property
    def size(self) -> int:
        return len(self.conditions)

    def columns(self, n: int) -> dict[str, Any]:
        return {
            "eps": None,
            "norm": None,
            "source": None,
            "corruption": np.repeat(np.asarray([c["corruption"] for c in self.conditions], dtype=object), n),
            "severity": np.repeat(np.asarray([c["severity"] for c in self.conditions], np.int8), n),
        }


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


Unit = Cell | ProbeCell


@dataclass
class ProbeOutcome:
    """Tables (column name -> array) and example arrays of a probe unit."""

    drift: dict[str, np.ndarray] = field(default_factory=dict)  # one row per sample x stage x eps
    segmentation: dict[str, np.ndarray] = field(default_factory=dict)
    examples: dict[str, np.ndarray] = field(default_factory=dict)  # images (E, B, C, H, W), maps (E, S, B, H, W), preds (E, B), eps (E,)
    stages: list[str] = field(default_factory=list)
    indicators: dict[str, np.ndarray] = field(default_factory=dict)  # one row per (attack, indicator)
    generalisation: dict[str, np.ndarray] = field(default_factory=dict)  # linear-probe rows, one per unseen test sample
