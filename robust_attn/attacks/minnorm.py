"""Minimum-norm attacks: each sample's smallest fooling perturbation, so one run answers every
eps (accuracy(eps) = share of samples whose smallest fooling norm exceeds eps).

Subclasses implement :meth:`MinimumNormAttack.minimise`; the sweep, the per-sample ``min_norm``
column and the fixed-eps :meth:`perturb` are shared here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch

from robust_attn.attacks.base import Attack


def lp_norm(t: torch.Tensor, p: float) -> torch.Tensor:
    """Per-sample Lp norm of a batch."""
    return t.flatten(1).norm(p=p, dim=1)


@dataclass
class _MinNormState:
    clean_pred: torch.Tensor
    norms: torch.Tensor  # (B,) smallest fooling norm found; 0 = clean mistake, inf = none
    adv_pred: torch.Tensor  # (B,) prediction at the smallest fooling point


class MinimumNormAttack(Attack):
    """An attack whose search does not depend on eps: it returns, per sample, the smallest fooling
    point it found and that point's norm."""

    minimum_norm: ClassVar[bool] = True

    def minimise(
        self, x: torch.Tensor, goal: torch.Tensor, stop_below: float | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(smallest fooling images found, their norms (inf where none), predictions there).

        ``stop_below``: a sample may stop once it has a fooling point of norm <= stop_below (its
        norm is then an upper bound, enough to answer every eps >= stop_below)."""
        raise NotImplementedError

    def perturb(self, x: torch.Tensor, y: torch.Tensor, eps: float, stop_early: bool = False) -> torch.Tensor:
        """The smallest fooling point where its norm is at most ``eps``, else the clean image."""
        adv, norms, _ = self.minimise(x, y, stop_below=eps if stop_early else None)
        inside = (norms <= eps).view(-1, *([1] * (x.dim() - 1)))
        return torch.where(inside, adv, x)

    def _start_sweep(self, x: torch.Tensor, goal: torch.Tensor, epsilons: Sequence[float]) -> _MinNormState:
        """One minimisation per batch serves every eps; clean mistakes get norm 0 without work."""
        clean_pred = self.predict(x)
        norms = torch.zeros(x.shape[0], device=x.device)
        adv_pred = clean_pred.clone()
        todo = (~self._fooled(clean_pred, goal, goal)).nonzero().squeeze(1)
        if todo.numel():
            _, norms[todo], adv_pred[todo] = self.minimise(x[todo], goal[todo])
        return _MinNormState(clean_pred, norms, adv_pred)

    def _sweep_columns(self, state: _MinNormState, worst_case: bool) -> dict[str, torch.Tensor]:
        return {"min_norm": state.norms}

    def _attack_at(
        self, state: _MinNormState, idx: torch.Tensor | None, x: torch.Tensor, goal: torch.Tensor, eps: float, stop_early: bool
    ) -> torch.Tensor:
        sel = slice(None) if idx is None else idx
        return torch.where(state.norms[sel] <= eps, state.adv_pred[sel], state.clean_pred[sel])
