"""``rapid``'s bookkeeping: what it keeps per sample over a sweep (:class:`RapidState`), over the
members run at one eps (:class:`Chain`), and whether one APGD run moved its loss (:class:`LossRange`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from robust_attn.attacks.ensemble import NOT_FOOLED, _EnsembleState
from robust_attn.attacks.rapid_decisions import D_CE
from robust_attn.attacks.target_ranking import NOT_RANKED


class LossRange:
    """Stands in for an AttackTrace on one APGD run: per position, the first loss reported and the highest."""

    def __init__(self, n: int, device: torch.device) -> None:
        self.first = torch.full((n,), math.nan, device=device)
        self.top = torch.full((n,), -math.inf, device=device)

    def step(self, ids: torch.Tensor, loss: torch.Tensor, fooled: torch.Tensor) -> None:
        """Record the losses ``loss`` of positions ``ids`` at one step (``fooled`` is not needed)."""
        first = self.first[ids]
        self.first[ids] = torch.where(first.isnan(), loss, first)
        self.top[ids] = torch.maximum(self.top[ids], loss)

    def rose(self) -> torch.Tensor:
        """Where the loss rose above its first value (False where the position was not run)."""
        return self.top > self.first + 1e-6 * (1 + self.first.abs())


@dataclass
class RapidState(_EnsembleState):
    """The ensemble's sweep state (no minimum-norm answers) plus rapid's per-sample records."""

    keys: list[bytes]  # (B,) per-sample keys of the random starts
    decision: torch.Tensor  # (K, B) decision code, -1 where the sample was not attacked there
    gradients: torch.Tensor  # (B,) GRAD_* at the clean image, NOT_RANKED before it is measured
    distance: torch.Tensor  # (B, C) linearised distance to each class's boundary (inf: own class, or no gradient)
    logit_order: torch.Tensor  # (B, C) classes by clean logit, highest first
    carry: torch.Tensor | None = None  # (B, ...) a survivor's perturbation at the last eps it was attacked at
    carry_eps: torch.Tensor | None = None  # (B,) that eps (0: none)

    def keep(self, ids: torch.Tensor, delta: torch.Tensor, eps: float) -> None:
        """Remember the perturbations ``delta`` of the survivors ``ids``, found at ``eps``."""
        if self.carry is None or self.carry_eps is None:
            self.carry = torch.zeros((len(self.clean_pred), *delta.shape[1:]), device=delta.device, dtype=delta.dtype)
            self.carry_eps = torch.zeros(len(self.clean_pred), device=delta.device)
        self.carry[ids], self.carry_eps[ids] = delta.contiguous(), eps

    @classmethod
    def start(cls, clean_pred: torch.Tensor, clean_fooled: torch.Tensor, epsilons: Sequence[float], keys: list[bytes]) -> RapidState:
        """A sweep's state before any eps: nothing fooled, nothing measured."""
        b, dev = len(clean_pred), clean_pred.device
        codes = torch.full((len(epsilons), b), NOT_FOOLED, dtype=torch.long, device=dev)
        return cls(
            clean_pred,
            clean_fooled,
            [float(e) for e in epsilons],
            codes,
            {},
            keys,
            codes.clone(),
            torch.full((b,), NOT_RANKED, dtype=torch.long, device=dev),
            torch.empty(b, 0, device=dev),
            torch.empty(b, 0, dtype=torch.long, device=dev),
        )


@dataclass
class Chain:
    """One eps's bookkeeping over the samples attacked there (positions 0..n-1)."""

    x: torch.Tensor
    y: torch.Tensor
    eps: float
    keys: list[bytes]
    result: torch.Tensor
    fooled: torch.Tensor
    by: torch.Tensor
    plan: torch.Tensor
    last: torch.Tensor  # the member that last moved each sample (NOT_FOOLED: none)
    broken: torch.Tensor  # an APGD run reached a non-finite iterate
    square: torch.Tensor  # goes to the query-only member
    stopped: torch.Tensor  # targeted runs stopped at their first checkpoint (abort_loss)
    retried: torch.Tensor  # retries of the closest class that ran
    closest: torch.Tensor  # first-order distance to the boundary of the closest targeted run's point, in eps (inf: none measured)
    closest_to: torch.Tensor  # that run's target class
    best: torch.Tensor | None = None  # where kept (for extrapolation): each survivor's lowest-margin point so far
    best_margin: torch.Tensor | None = None

    @classmethod
    def start(cls, x: torch.Tensor, y: torch.Tensor, eps: float, keys: list[bytes], keep_best: bool) -> Chain:
        """Before any member: every image its clean self, nothing fooled, every plan APGD-CE;
        ``keep_best``: track each survivor's lowest-margin point."""
        n, dev = x.shape[0], x.device
        flags = torch.zeros(n, dtype=torch.bool, device=dev)
        codes = torch.full((n,), NOT_FOOLED, dtype=torch.long, device=dev)
        counts = torch.zeros_like(codes)
        chain = cls(
            x=x,
            y=y,
            eps=eps,
            keys=keys,
            result=x.clone(),
            fooled=flags,
            by=codes,
            plan=torch.full_like(codes, D_CE),
            last=codes.clone(),
            broken=flags.clone(),
            square=flags.clone(),
            stopped=counts,
            retried=counts.clone(),
            closest=torch.full((n,), math.inf, device=dev),
            closest_to=codes.clone(),
        )
        if keep_best:
            chain.best, chain.best_margin = x.clone(), torch.full((n,), math.inf, device=dev)
        return chain

    def take(self, pos: torch.Tensor) -> list[bytes]:
        """The keys of positions ``pos``."""
        return [self.keys[i] for i in pos.tolist()]
