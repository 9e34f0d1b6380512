"""Fast Minimum-Norm attack (Pintor et al., NeurIPS 2021), L-inf and L2: each sample's smallest
fooling perturbation, so one run gives the whole accuracy-vs-eps curve
(accuracy(eps) = share of samples whose minimal norm exceeds eps).

The update follows foolbox's ``LInfFMNAttack`` / ``L2FMNAttack`` step for step (cosine-annealed
step size and epsilon factor, L2-normalised gradient steps on the logit difference, the epsilon
rule that shrinks on adversarial iterates and extrapolates to the boundary before the first
one), except that the L2 form projects onto the epsilon-ball, which foolbox 3.3's L2 version
does not (its projection factor is ``norms / norms``).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Unpack

import torch

from robust_attn.attacks.base import AttackOptions, Norm, bad_param, positive_int
from robust_attn.attacks.minnorm import MinimumNormAttack
from robust_attn.attacks.minnorm import lp_norm as _lp
from robust_attn.attacks.registry import register_attack


@register_attack("fmn", "native")
class FMN(MinimumNormAttack):
    """FMN in L-inf. Parameters: ``steps`` (100), ``max_stepsize`` (1.0, the L2 length of the first
    step), ``min_stepsize`` (max_stepsize / 100, the last), ``gamma`` (0.05, the first epsilon factor,
    annealed to 0.001)."""

    name = "fmn"
    norm: ClassVar[Norm] = "linf"
    strength = 25

    def __init__(
        self,
        model: Any,
        *,
        steps: int = 100,
        max_stepsize: float = 1.0,
        min_stepsize: float | None = None,
        gamma: float = 0.05,
        **options: Unpack[AttackOptions],
    ) -> None:
        super().__init__(model, **options)
        positive_int(steps=steps)
        if max_stepsize <= 0 or (min_stepsize is not None and not 0 < min_stepsize <= max_stepsize):
            raise bad_param("min_stepsize", f"need 0 < min_stepsize <= max_stepsize, got {min_stepsize} and {max_stepsize}")
        if not 0 < gamma < 1:
            raise bad_param("gamma", f"gamma must be in (0, 1), got {gamma}")
        self.steps, self.max_stepsize, self.gamma = steps, max_stepsize, gamma
        self.min_stepsize = max_stepsize / 100 if min_stepsize is None else min_stepsize
        self.p = math.inf if self.norm == "linf" else 2.0
        self.dual = 1.0 if self.norm == "linf" else 2.0

    def params(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "max_stepsize": self.max_stepsize,
            "min_stepsize": self.min_stepsize,
            "gamma": self.gamma,
            "targeted": self.targeted,
        }

    def _project(self, delta: torch.Tensor, epsilon: torch.Tensor) -> torch.Tensor:
        eps = epsilon.view(-1, *([1] * (delta.dim() - 1)))
        if self.norm == "linf":
            return torch.maximum(torch.minimum(delta, eps), -eps)
        norms = _lp(delta, 2).clamp_min(1e-12).view_as(eps)
        return delta * torch.clamp(eps / norms, max=1.0)

    def _margin_and_grad(self, x: torch.Tensor, delta: torch.Tensor, goal: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The logit difference to push below zero, z_goal - max_other (untargeted) or
        max_other - z_target (targeted), its gradient w.r.t. delta (descent direction negated),
        and the logits."""
        delta = delta.detach().requires_grad_(True)
        logits = self.logits(x + delta)
        margin = self.margin(logits, goal)
        (grad,) = torch.autograd.grad((-margin).sum(), delta)
        return margin.detach(), grad.detach(), logits.detach()

    def minimise(
        self, x: torch.Tensor, goal: torch.Tensor, stop_below: float | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(smallest fooling images found, their norms (inf where none), predictions there). Every
        sample runs all steps (the step and epsilon schedules are shared by the batch), so
        ``stop_below`` changes nothing."""
        n = x.shape[0]
        delta = torch.zeros_like(x)
        epsilon = torch.full((n,), math.inf, device=x.device)
        worst = _lp(torch.maximum(x, 1 - x), self.p)
        best_norm = worst.clone()
        best_delta = torch.zeros_like(x)
        best_pred = torch.zeros(n, dtype=torch.long, device=x.device)
        found = torch.zeros(n, dtype=torch.bool, device=x.device)
        for i in range(self.steps):
            cosine = (1 + math.cos(math.pi * i / self.steps)) / 2
            stepsize = self.min_stepsize + (self.max_stepsize - self.min_stepsize) * cosine
            gamma = 0.001 + (self.gamma - 0.001) * cosine
            margin, grad, logits = self._margin_and_grad(x, delta, goal)
            pred = logits.argmax(dim=1)
            adversarial = pred == goal if self.targeted else pred != goal
            norm = _lp(delta, self.p)
            better = adversarial & (norm <= best_norm)
            found |= adversarial
            best_norm = torch.where(better, norm, best_norm)
            best_delta[better] = delta[better]
            best_pred = torch.where(better, pred, best_pred)
            to_boundary = margin.abs() / _lp(grad, self.dual)
            epsilon = torch.where(
                adversarial,
                torch.minimum(epsilon * (1 - gamma), _lp(best_delta, self.p)),
                torch.where(found, epsilon * (1 + gamma), norm + to_boundary),
            )
            epsilon = torch.minimum(epsilon, worst)
            step = grad / _lp(grad, 2).clamp_min(1e-12).view(-1, *([1] * (x.dim() - 1))) * stepsize
            delta = self._project(delta + step, epsilon)
            delta = (x + delta).clamp(0, 1) - x
        norms = torch.where(found, best_norm, torch.full_like(best_norm, math.inf))
        return x + best_delta, norms, best_pred


@register_attack("fmn-l2", "native")
class FMNL2(FMN):
    """FMN in L2."""

    name = "fmn-l2"
    norm: ClassVar[Norm] = "l2"
