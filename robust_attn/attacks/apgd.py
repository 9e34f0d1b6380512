"""Auto-PGD (Croce & Hein, ICML 2020): step-size-free PGD with momentum, the DLR loss and the
targeted multi-class variant APGD-T, in L-inf and L2.

The update rule, step-size checkpoints, oscillation test and random start follow the authors'
implementation (``autopgd_base.py`` of AutoAttack) step for step, so per-sample outcomes agree
with it and with torchattacks' ``APGD``/``APGDT`` when both start from the same point (tested).
The loss is summed over samples, so each sample's trajectory is independent of the others:
a sample is dropped as soon as an iterate fools it (its outcome is "fooled" either way), which
is where most of the speed comes from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Unpack

import torch
import torch.nn.functional as F

from robust_attn.attacks.base import Attack, AttackOptions, Norm, positive_int
from robust_attn.attacks.registry import register_attack

Loss = Literal["ce", "dlr"]
MOMENTUM = 0.75  # the paper's alpha: x_{k+1} = x_k + 0.75 (z_{k+1} - x_k) + 0.25 (x_k - x_{k-1})


def dlr_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Difference of logits ratio: -(z_y - max_{i != y} z_i) / (z_pi1 - z_pi3), per sample."""
    z, order = logits.sort(dim=1)
    rows = torch.arange(len(y), device=y.device)
    top_is_y = (order[:, -1] == y).float()
    return -(logits[rows, y] - z[:, -2] * top_is_y - z[:, -1] * (1.0 - top_is_y)) / (z[:, -1] - z[:, -3] + 1e-12)


def dlr_loss_targeted(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Targeted DLR: -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2), per sample."""
    z, _ = logits.sort(dim=1)
    rows = torch.arange(len(y), device=y.device)
    return -(logits[rows, y] - logits[rows, target]) / (z[:, -1] - 0.5 * (z[:, -3] + z[:, -4]) + 1e-12)


@dataclass
class _Active:
    """Per-sample state of one APGD run, over the samples still being attacked."""

    ids: torch.Tensor  # positions in the batch
    x: torch.Tensor
    y: torch.Tensor
    target: torch.Tensor | None
    adv: torch.Tensor
    adv_old: torch.Tensor
    grad: torch.Tensor
    best: torch.Tensor  # highest-loss iterate
    grad_best: torch.Tensor
    loss_best: torch.Tensor
    loss_best_last: torch.Tensor  # loss_best at the previous checkpoint
    reduced_last: torch.Tensor  # step size halved at the previous checkpoint
    step: torch.Tensor  # (B, 1, 1, 1)
    loss_steps: torch.Tensor  # (steps, B): the loss after each step

    def keep(self, mask: torch.Tensor) -> None:
        """Drop the samples where ``mask`` is False (from every per-sample tensor)."""
        for name, value in vars(self).items():
            if isinstance(value, torch.Tensor):
                setattr(self, name, value[:, mask] if name == "loss_steps" else value[mask])


def _norm(t: torch.Tensor, p: str) -> torch.Tensor:
    flat = t.flatten(1)
    n = flat.abs().amax(dim=1) if p == "linf" else flat.square().sum(dim=1).sqrt()
    return n.view(-1, *([1] * (t.dim() - 1)))


@register_attack("apgd", "native")
class APGD(Attack):
    """APGD with the cross-entropy (``loss="ce"``, APGD-CE) or DLR loss (``"dlr"``), L-inf.

    Parameters: ``steps`` (100), ``restarts`` (1; each restart attacks the samples not fooled
    yet from a new random start), ``loss``, ``rho`` (0.75: a checkpoint halves the step size when
    fewer than this share of the steps since the last one raised the loss).
    """

    name = "apgd"
    norm: ClassVar[Norm] = "linf"

    def __init__(
        self, model: Any, *, steps: int = 100, restarts: int = 1, loss: Loss = "ce", rho: float = 0.75, **options: Unpack[AttackOptions]
    ) -> None:
        super().__init__(model, **options)
        positive_int(steps=steps, restarts=restarts)
        if loss not in ("ce", "dlr"):
            raise ValueError(f"unknown APGD loss {loss!r}; use 'ce' or 'dlr'")
        if not 0 < rho < 1:
            raise ValueError(f"rho must be in (0, 1), got {rho}")
        self.steps, self.restarts, self.loss, self.rho = steps, restarts, loss, rho
        # checkpoints p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06) (in steps)
        self.first_interval = max(int(0.22 * steps), 1)
        self.min_interval = max(int(0.06 * steps), 1)
        self.interval_decrease = max(int(0.03 * steps), 1)

    def params(self) -> dict[str, Any]:
        return {"steps": self.steps, "restarts": self.restarts, "loss": self.loss, "rho": self.rho, "targeted": self.targeted}

    # -- losses -----------------------------------------------------------------------------
    def _check_classes(self, n_classes: int, targeted_dlr: bool) -> None:
        need = 4 if targeted_dlr else 3
        if n_classes < need:
            what = "targeted DLR (APGD-T)" if targeted_dlr else "the DLR loss"
            raise ValueError(f"{what} needs at least {need} classes, the model has {n_classes}; use loss = 'ce' (apgd)")

    def sample_loss(self, logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
        """The per-sample loss APGD ascends (higher = closer to fooling)."""
        if target is not None and not self.targeted:  # APGD-T: a target class, success = any misclassification
            return dlr_loss_targeted(logits, y, target)
        if self.targeted:  # a user-given target: the goal label is the target
            return -F.cross_entropy(logits, y, reduction="none") if self.loss == "ce" else -dlr_loss(logits, y)
        return F.cross_entropy(logits, y, reduction="none") if self.loss == "ce" else dlr_loss(logits, y)

    def _value_and_grad(
        self, adv: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        adv = adv.detach().requires_grad_(True)
        logits = self.logits(adv)
        loss = self.sample_loss(logits, y, target)
        (grad,) = torch.autograd.grad(loss.sum(), adv)
        return loss.detach(), grad.detach(), logits.detach()

    # -- geometry ---------------------------------------------------------------------------
    def random_start(self, x: torch.Tensor, eps: float) -> torch.Tensor:
        """A point on the surface of the eps-ball (the authors' start), clipped to [0, 1]."""
        if self.norm == "linf":
            t = (2 * torch.rand(x.shape, generator=self.generator) - 1).to(x.device, x.dtype)
        else:
            t = torch.randn(x.shape, generator=self.generator).to(x.device, x.dtype)
        return (x + eps * t / (_norm(t, self.norm) + 1e-12)).clamp(0.0, 1.0)

    def _project(self, z: torch.Tensor, x: torch.Tensor, eps: float) -> torch.Tensor:
        if self.norm == "linf":
            return torch.clamp(torch.min(torch.max(z, x - eps), x + eps), 0.0, 1.0)
        d = z - x
        n = _norm(d, "l2")
        return torch.clamp(x + d / (n + 1e-12) * torch.clamp(n, max=eps), 0.0, 1.0)

    def _ascend(self, s: _Active, eps: float, a: float) -> torch.Tensor:
        direction = torch.sign(s.grad) if self.norm == "linf" else s.grad / (_norm(s.grad, "l2") + 1e-12)
        z = self._project(s.adv + s.step * direction, s.x, eps)
        return self._project(s.adv + (z - s.adv) * a + (s.adv - s.adv_old) * (1 - a), s.x, eps)

    # -- one run ----------------------------------------------------------------------------
    def _fooled_by(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        pred = logits.argmax(dim=1)
        return pred == y if self.targeted else pred != y

    def run_once(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        eps: float,
        target: torch.Tensor | None,
        result: torch.Tensor,
        fooled: torch.Tensor,
        ids: torch.Tensor,
        init: torch.Tensor | None = None,
    ) -> None:
        """One APGD run on samples ``ids`` of the batch (``x``, ``y`` already gathered). A sample
        is dropped at its first fooling iterate, which goes into ``result`` (``fooled`` marks it);
        the reference keeps stepping, but a fooled sample stays fooled and the other samples'
        trajectories do not depend on it. Samples never fooled get their highest-loss iterate."""
        adv = init.clone() if init is not None else self.random_start(x, eps)
        loss, grad, logits = self._value_and_grad(adv, y, target)
        n = x.shape[0]
        s = _Active(ids, x, y, target, adv, adv.clone(), grad, adv.clone(), grad.clone(), loss.clone(), loss.clone(),
                    torch.zeros(n, dtype=torch.bool, device=x.device), torch.full((n, 1, 1, 1), 2.0 * eps, device=x.device, dtype=x.dtype),
                    torch.zeros(self.steps, n, device=x.device))  # fmt: skip
        self._drop_fooled(s, logits, loss, result, fooled)
        k, since_check = self.first_interval, 0
        for i in range(self.steps):
            if s.ids.numel() == 0:
                return
            with torch.no_grad():
                new = self._ascend(s, eps, MOMENTUM if i > 0 else 1.0)
                s.adv_old, s.adv = s.adv, new
            loss, s.grad, logits = self._value_and_grad(s.adv, s.y, s.target)
            s.loss_steps[i] = loss
            improved = loss > s.loss_best
            s.best[improved], s.grad_best[improved], s.loss_best[improved] = s.adv[improved], s.grad[improved], loss[improved]
            self._drop_fooled(s, logits, loss, result, fooled)
            since_check += 1
            if since_check == k:
                # share of the steps since the last checkpoint that raised the loss (with the
                # reference's index arithmetic, wrap-around at the first checkpoint included)
                raised = sum((s.loss_steps[(i - c) % self.steps] > s.loss_steps[(i - c - 1) % self.steps]).float() for c in range(k))
                halve = (raised <= k * self.rho) | (~s.reduced_last & (s.loss_best_last >= s.loss_best))
                s.reduced_last, s.loss_best_last = halve, s.loss_best.clone()
                s.step[halve] /= 2.0
                s.adv[halve], s.grad[halve] = s.best[halve], s.grad_best[halve]
                since_check, k = 0, max(k - self.interval_decrease, self.min_interval)
        result[s.ids] = s.best

    def _drop_fooled(self, s: _Active, logits: torch.Tensor, loss: torch.Tensor, result: torch.Tensor, fooled: torch.Tensor) -> None:
        hit = self._fooled_by(logits, s.y)
        if self.trace is not None:
            self.trace.step(s.ids, loss, hit)
        if hit.any():
            result[s.ids[hit]] = s.adv[hit]
            fooled[s.ids[hit]] = True
            s.keep(~hit)

    # -- the attack ---------------------------------------------------------------------------
    def perturb(self, x: torch.Tensor, y: torch.Tensor, eps: float, stop_early: bool = False) -> torch.Tensor:
        """Adversarial images: a fooling iterate where some run fooled the sample, else the
        highest-loss point of the last run (inside the eps-ball). Samples the model already
        gets wrong are returned unchanged, as in the reference. Restarts attack the samples not
        fooled yet, each from a new random start. (APGD always stops a sample at its first
        fooling iterate; ``stop_early`` changes nothing.)"""
        with torch.inference_mode():
            clean_logits = self.logits(x)
        if self.loss == "dlr":
            self._check_classes(clean_logits.shape[1], targeted_dlr=False)
        result = x.clone()
        fooled = self._fooled_by(clean_logits, y)
        for _ in range(self.restarts):
            todo = (~fooled).nonzero().squeeze(1)
            if todo.numel() == 0:
                break
            self.run_once(x[todo], y[todo], eps, None, result, fooled, todo)
        return result


@register_attack("apgd-l2", "native")
class APGDL2(APGD):
    """APGD in L2 (eps is the L2 radius in pixel units)."""

    name = "apgd-l2"
    norm = "l2"


@register_attack("apgd-t", "native")
class APGDT(APGD):
    """APGD-T: targeted DLR against each of the ``targets`` classes the model ranks highest after
    the true one (9 by default, fewer when the model has fewer classes), one after the other on
    the samples not fooled yet; success is any misclassification, as in AutoAttack."""

    name = "apgd-t"
    norm: ClassVar[Norm] = "linf"

    def __init__(
        self, model: Any, *, steps: int = 100, restarts: int = 1, targets: int = 9, rho: float = 0.75, **options: Unpack[AttackOptions]
    ) -> None:
        if options.get("targeted"):
            raise ValueError("apgd-t picks its own target classes; for a given target use apgd with targeted = true")
        super().__init__(model, steps=steps, restarts=restarts, loss="dlr", rho=rho, **options)
        positive_int(targets=targets)
        self.targets = targets

    def params(self) -> dict[str, Any]:
        return {"steps": self.steps, "restarts": self.restarts, "targets": self.targets, "rho": self.rho}

    def perturb(self, x: torch.Tensor, y: torch.Tensor, eps: float, stop_early: bool = False) -> torch.Tensor:
        with torch.inference_mode():
            clean_logits = self.logits(x)
        n_classes = clean_logits.shape[1]
        self._check_classes(n_classes, targeted_dlr=True)
        result = x.clone()
        fooled = self._fooled_by(clean_logits, y)
        for rank in range(2, min(self.targets, n_classes - 1) + 2):
            for _ in range(self.restarts):
                todo = (~fooled).nonzero().squeeze(1)
                if todo.numel() == 0:
                    return result
                with torch.no_grad():  # not inference_mode: the target indexes tensors that need gradients
                    target = self.logits(x[todo]).sort(dim=1)[1][:, -rank]
                self.run_once(x[todo], y[todo], eps, target, result, fooled, todo)
        return result


@register_attack("apgd-t-l2", "native")
class APGDTL2(APGDT):
    """APGD-T in L2."""

    name = "apgd-t-l2"
    norm = "l2"
