"""The native attack engine: FGSM with one shared gradient per sweep, PGD (L-inf, L2) with
per-sample early stopping in worst-case sweeps and Expectation over Transformation (``eot``) for
randomized models.

Update rules follow torchattacks step for step (mean cross-entropy over the batch, the same
projection and clipping order), so per-sample outcomes agree with it exactly in fp32. With
``eot > 1`` each step's gradient is the mean over ``eot`` forward-backward passes, as in
torchattacks' ``EOTPGD`` (whose sum has the same sign).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from robust_attn.attacks.base import Attack, AttackTraits, IterativeAttack, positive_int
from robust_attn.attacks.registry import register_attack


class GradientAttack(Attack):
    """Attacks driven by the input gradient of the cross-entropy loss."""

    def loss_gradient(self, x: torch.Tensor, goal: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Gradient of the (targeted: negated) mean cross-entropy w.r.t. ``x``, and the logits
        of the same forward pass."""
        x = x.detach().requires_grad_(True)
        logits = self.logits(x)
        loss = F.cross_entropy(logits, goal)
        if self.targeted:
            loss = -loss
        (grad,) = torch.autograd.grad(loss, x)
        return grad, logits.detach()


@dataclass
class _FGSMState:
    clean_pred: torch.Tensor
    direction: torch.Tensor  # sign of the input gradient at the clean image


@register_attack("fgsm", "native")
class FGSM(GradientAttack):
    """Fast gradient sign method (Goodfellow et al. 2015): x + eps * sign(grad), clipped to [0, 1].

    A sweep computes the input gradient once per batch and reuses its sign for every eps (it
    does not depend on eps); the clean prediction comes from the same forward pass."""

    name = "fgsm"
    iterative = False
    strength = 10
    probe = True

    def perturb(self, x: torch.Tensor, y: torch.Tensor, eps: float, stop_early: bool = False) -> torch.Tensor:
        grad, _ = self.loss_gradient(x, y)
        return (x + eps * grad.sign()).clamp(0, 1)

    def _start_sweep(self, x: torch.Tensor, goal: torch.Tensor, epsilons: Sequence[float]) -> _FGSMState:
        grad, logits = self.loss_gradient(x, goal)
        return _FGSMState(logits.argmax(dim=1), grad.sign())

    @torch.inference_mode()
    def _attack_at(
        self, state: _FGSMState, idx: torch.Tensor | None, x: torch.Tensor, goal: torch.Tensor, eps: float, stop_early: bool
    ) -> torch.Tensor:
        direction = state.direction if idx is None else state.direction[idx]
        return self.logits((x + eps * direction).clamp_(0, 1)).argmax(dim=1)


class _PGDBase(GradientAttack, IterativeAttack):
    """Projected gradient descent with random start, restarts and optional early stopping.

    ``eot`` (1): the gradient of each step averages this many forward-backward passes, for
    randomized models. With ``eot > 1`` no sample stops early: one pass of a randomized model
    saying "fooled" is a draw, not an outcome, so every sample takes every step and the final
    iterate is returned (as EOTPGD does)."""

    def __init__(self, model: nn.Module, *, eot: int = 1, **params: Any) -> None:
        super().__init__(model, **params)
        positive_int(eot=eot)
        self.eot = eot

    def params(self) -> dict[str, Any]:
        return {**super().params(), "eot": self.eot}

    def traits(self) -> AttackTraits:
        """The class's traits; ``randomized`` when the gradient averages several passes."""
        return replace(super().traits(), randomized=self.randomized or self.eot > 1)

    def loss_gradient(self, x: torch.Tensor, goal: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The mean of ``eot`` input gradients (one pass when ``eot`` is 1), and the last pass's logits."""
        grad, logits = super().loss_gradient(x, goal)
        if self.eot > 1:
            for _ in range(self.eot - 1):
                more, logits = super().loss_gradient(x, goal)
                grad = grad + more
            grad = grad / float(self.eot)
        return grad, logits

    def random_init(self, x: torch.Tensor, eps: float) -> torch.Tensor:
        raise NotImplementedError

    def ascend(self, adv: torch.Tensor, x: torch.Tensor, grad: torch.Tensor, eps: float, alpha: float) -> torch.Tensor:
        raise NotImplementedError

    def perturb(self, x: torch.Tensor, y: torch.Tensor, eps: float, stop_early: bool = False) -> torch.Tensor:
        stop_early = stop_early and self.eot == 1
        result = x.clone()
        todo = torch.arange(x.shape[0], device=x.device)  # samples not fooled by an earlier restart
        alpha = self.step_size(eps)
        for restart in range(self.restarts):
            fooled = self._run(x, y, todo, result, eps, alpha, stop_early)
            if restart + 1 == self.restarts:
                break
            todo = todo[~fooled]
            if todo.numel() == 0:
                break
        return result

    def _run(
        self, x: torch.Tensor, y: torch.Tensor, todo: torch.Tensor, result: torch.Tensor, eps: float, alpha: float, stop_early: bool
    ) -> torch.Tensor:
        """One PGD run on samples ``todo``, writing final (or first fooling) iterates into
        ``result``; returns which of ``todo`` were fooled. The active set is only re-indexed
        when a sample stops, so plain runs do no gather/scatter per step."""
        xs, ys, ids = x[todo], y[todo], todo
        adv = self.random_init(xs, eps) if self.random_start else xs.clone()
        fooled = torch.zeros(todo.shape[0], dtype=torch.bool, device=x.device)
        pos = torch.arange(todo.shape[0], device=x.device)  # position of each active sample in todo
        for _step in range(self.steps):
            grad, logits = self.loss_gradient(adv, ys)
            if self.trace is not None:
                loss = F.cross_entropy(logits, ys, reduction="none")
                self.trace.step(ids, -loss if self.targeted else loss, self._fooled(logits.argmax(dim=1), ys, ys))
            if stop_early:
                hit = self._fooled(logits.argmax(dim=1), ys, ys)
                if hit.any():
                    result[ids[hit]] = adv[hit]
                    fooled[pos[hit]] = True
                    keep = ~hit
                    if not keep.any():
                        return fooled
                    xs, ys, ids, pos, adv, grad = xs[keep], ys[keep], ids[keep], pos[keep], adv[keep], grad[keep]
            adv = self.ascend(adv, xs, grad, eps, alpha)
        result[ids] = adv
        if self.restarts > 1:
            with torch.inference_mode():
                fooled[pos] = self._fooled(self.logits(adv).argmax(dim=1), ys, ys)
        return fooled


@register_attack("pgd", "native")
class PGD(_PGDBase):
    """L-inf PGD (Madry et al. 2018): sign steps, projection onto the eps-box, clip to [0, 1]."""

    name = "pgd"
    norm = "linf"
    traceable = True
    strength = 20
    probe = True

    def random_init(self, x: torch.Tensor, eps: float) -> torch.Tensor:
        noise = torch.rand(x.shape, generator=self.generator).to(x.device, x.dtype)
        return (x + (2 * noise - 1) * eps).clamp(0, 1)

    def ascend(self, adv: torch.Tensor, x: torch.Tensor, grad: torch.Tensor, eps: float, alpha: float) -> torch.Tensor:
        adv = adv + alpha * grad.sign()
        delta = torch.clamp(adv - x, min=-eps, max=eps)
        return torch.clamp(x + delta, min=0, max=1)


@register_attack("pgd-l2", "native")
class PGDL2(_PGDBase):
    """L2 PGD: normalised-gradient steps, projection onto the L2 ball, clip to [0, 1]."""

    name = "pgd-l2"
    norm = "l2"
    traceable = True
    strength = 20
    probe = True

    def random_init(self, x: torch.Tensor, eps: float) -> torch.Tensor:
        b = x.shape[0]
        delta = torch.randn(x.shape, generator=self.generator).to(x.device, x.dtype)
        norms = delta.view(b, -1).norm(p=2, dim=1).view(b, 1, 1, 1)
        radius = torch.rand((b, 1, 1, 1), generator=self.generator).to(x.device, x.dtype)
        return (x + delta * radius / norms * eps).clamp(0, 1)

    def ascend(self, adv: torch.Tensor, x: torch.Tensor, grad: torch.Tensor, eps: float, alpha: float) -> torch.Tensor:
        b = x.shape[0]
        grad_norms = grad.reshape(b, -1).norm(p=2, dim=1) + 1e-10
        adv = adv + alpha * grad / grad_norms.view(b, 1, 1, 1)
        delta = adv - x
        delta_norms = delta.reshape(b, -1).norm(p=2, dim=1)
        factor = torch.clamp(eps / delta_norms, max=1.0)
        return torch.clamp(x + delta * factor.view(b, 1, 1, 1), min=0, max=1)
