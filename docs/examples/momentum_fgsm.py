"""A one-file attack registered from outside robust-attn: momentum iterative FGSM (MI-FGSM, Dong
et al., CVPR 2018). Importing this module registers it as ``mi-fgsm``; a sweep spec then names it
like any built-in attack, and the probe, the indicators of attack failure and the report read
what it declares (its class attributes) instead of its name."""

from __future__ import annotations

from typing import Any, Unpack

import torch
import torch.nn.functional as F

from robust_attn.attacks import Attack, AttackOptions, register_attack
from robust_attn.attacks.base import positive_int


@register_attack("mi-fgsm", "native")
class MomentumFGSM(Attack):
    """MI-FGSM in L-inf: ``steps`` sign steps of eps/steps along an accumulated, L1-normalised gradient
    (decay ``mu``), each projected onto the eps-box and [0, 1]."""

    name = "mi-fgsm"
    norm = "linf"
    iterative = True  # several gradient steps: the unconstrained-failure indicator applies
    traceable = True  # reports each iterate to self.trace: silent success, incomplete optimisation
    strength = 40  # ranks above APGD-T (35) and below AutoAttack (50): the run's strongest iterative attack
    probe = True  # cheap enough for the attention probe (independent per eps)

    def __init__(self, model: Any, *, steps: int = 10, mu: float = 1.0, **options: Unpack[AttackOptions]) -> None:
        super().__init__(model, **options)
        positive_int(steps=steps)
        self.steps, self.mu = steps, mu

    def params(self) -> dict[str, Any]:
        return {"steps": self.steps, "mu": self.mu, "targeted": self.targeted}

    def perturb(self, x: torch.Tensor, y: torch.Tensor, eps: float, stop_early: bool = False) -> torch.Tensor:
        adv, momentum, alpha = x.clone(), torch.zeros_like(x), eps / self.steps
        ids = torch.arange(len(x), device=x.device)
        for _ in range(self.steps):
            adv.requires_grad_(True)
            logits = self.logits(adv)
            loss = F.cross_entropy(logits, y, reduction="none")
            (grad,) = torch.autograd.grad(loss.sum(), adv)
            if self.trace is not None:
                self.trace.step(ids, loss.detach(), logits.argmax(dim=1) != y)
            momentum = self.mu * momentum + grad / grad.abs().flatten(1).mean(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
            adv = (adv.detach() + alpha * momentum.sign()).clamp(x - eps, x + eps).clamp(0, 1)
        return adv
