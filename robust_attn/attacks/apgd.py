"""Auto-PGD (Croce & Hein, ICML 2020): step-size-free PGD with momentum, the DLR loss and the
targeted multi-class variant APGD-T, in L-inf and L2, and APGD-L1 (Croce & Hein, "Mind the box",
ICML 2021) in L1; with Expectation over Transformation (``eot``) for randomized models.

The update rule, step-size checkpoints, oscillation test and random start follow the authors'
implementation (``autopgd_base.py`` of AutoAttack) step for step, so per-sample outcomes agree
with it and with torchattacks' ``APGD``/``APGDT`` when both start from the same point (tested).
The loss is summed over samples, so each sample's trajectory is independent of the others:
a sample is dropped as soon as an iterate fools it (its outcome is "fooled" either way), which
is where most of the speed comes from.

L1 differs from L-inf/L2 in three places: the step moves along the sign of the gradient's
largest coordinates only (their share, the sparsity, adapts at each checkpoint to that of the
best point so far), there is no momentum, and the projection is onto the L1 ball intersected
with the [0, 1] box (:func:`l1_box_projection`), which is what makes L1 attacks on images work.

With ``eot > 1`` each step's gradient is the mean of ``eot`` forward-backward passes (AutoAttack's
``eot_iter``), and no sample is dropped early: one pass of a randomized model saying "fooled" is
a draw, not an outcome, so every sample takes every step and keeps its last fooling iterate, as
in the reference.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Literal, Unpack

import torch
import torch.nn.functional as F

from robust_attn.attacks.base import Attack, AttackOptions, AttackTraits, Norm, bad_param, check_targets, positive_int
from robust_attn.attacks.registry import register_attack

Loss = Literal["ce", "dlr"]
MOMENTUM = 0.75  # the paper's alpha: x_{k+1} = x_k + 0.75 (z_{k+1} - x_k) + 0.25 (x_k - x_{k-1})
L1_TOPK_START = 0.2  # APGD-L1 first steps along the gradient's largest 20% of coordinates
L1_STEP_DECAY = 1.5  # a checkpoint that did not make the best point sparser divides the step by this ...
L1_STEP_FLOOR = 10.0  # ... down to eps / 10


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


def l1_box_projection(x: torch.Tensor, delta: torch.Tensor, eps: float) -> torch.Tensor:
    """The correction ``c`` that makes ``x + delta + c`` the Euclidean projection of ``x + delta``
    onto {z : ||z - x||_1 <= eps, 0 <= z <= 1}, per sample (``x`` in the box; float32).

    Each coordinate's perturbation a_i = |delta_i| shrinks by clamp(lam, lo_i, a_i), where lo_i is
    its overshoot of the box and lam >= 0 the smallest shrinkage that brings the L1 norm down to
    eps (0 when clipping to the box is enough). The total shrinkage T(lam) = sum_i clamp(lam, lo_i,
    a_i) is piecewise linear, with slope the number of coordinates between their two kinks lo_i and
    a_i: sorting the 2d kinks gives T at each of them, and lam lies on the segment where T crosses
    sum(a) - eps. The correction is returned (not the projected point) so that the caller forms
    ``x + delta + c`` with the reference's rounding."""
    n = x.shape[0]
    center, d = x.reshape(n, -1).float(), delta.reshape(n, -1).float()
    size = d.shape[1]
    a = d.abs()
    room = torch.where(d > 0, 1.0 - center, center)  # how far each coordinate may move in its direction
    lo = (a - room).clamp_min(0.0)  # shrinkage the box forces
    slack = eps - a.sum(dim=1)  # L1 budget left by the unshrunk perturbation (< 0: over budget)
    need = lo.sum(dim=1) + slack < 0  # still over budget once clipped to the box
    kinks, order = torch.sort(torch.cat((lo, a), dim=1), dim=1)
    active = torch.where(order < size, 1.0, -1.0).cumsum(dim=1)  # coordinates shrinking on each segment
    gaps = torch.cat((kinks[:, 1:], torch.zeros(n, 1, device=x.device)), dim=1) - kinks
    shrunk = lo.sum(dim=1, keepdim=True) + torch.cumsum(gaps * active, dim=1)  # T at the segment's right end
    j = ((shrunk + slack[:, None] < 0).sum(dim=1) - 1).clamp(0, 2 * size - 2)[:, None]  # last kink below the root
    lam = (-shrunk.gather(1, j) - slack[:, None]) / active.gather(1, j + 1) + kinks.gather(1, j + 1)
    lam = torch.where(need[:, None], lam, torch.zeros_like(lam))
    return (-torch.sign(d) * torch.minimum(torch.maximum(lo, lam), a)).view(delta.shape)


def l0_norm(t: torch.Tensor) -> torch.Tensor:
    """Nonzero coordinates per sample, as float32 (APGD-L1's sparsity)."""
    return (t != 0).flatten(1).sum(dim=1).float()


def large_eps_schedule(eps: float, steps: int) -> list[tuple[float, int]]:
    """AutoAttack's L1 schedule (``use_largereps``): 30% of the steps at 3 eps, 30% at 2 eps, the
    rest at eps, each stage from the previous one's highest-loss point."""
    first = math.ceil(0.3 * steps)
    return [(3.0 * eps, first), (2.0 * eps, first), (1.0 * eps, steps - 2 * first)]


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
    topk: torch.Tensor  # (B,) L1: share of coordinates the next step moves
    sparsity: torch.Tensor  # (B,) L1: nonzero coordinates of the best point at the previous checkpoint
    hit: torch.Tensor  # (B,) bool: some iterate fooled the sample (eot > 1, where samples are not dropped)

    def keep(self, mask: torch.Tensor) -> None:
        """Drop the samples where ``mask`` is False (from every per-sample tensor)."""
        for name, value in vars(self).items():
            if isinstance(value, torch.Tensor):
                setattr(self, name, value[:, mask] if name == "loss_steps" else value[mask])


def _norm(t: torch.Tensor, p: str) -> torch.Tensor:
    flat = t.flatten(1)
    if p == "linf":
        n = flat.abs().amax(dim=1)
    elif p == "l1":
        n = flat.abs().sum(dim=1)
    else:
        n = flat.square().sum(dim=1).sqrt()
    return n.view(-1, *([1] * (t.dim() - 1)))


def project_ball(z: torch.Tensor, x: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    """``z`` projected onto the eps-ball around ``x`` (L-inf; any other norm: L2) and the box [0, 1]."""
    if norm == "linf":
        return torch.clamp(torch.min(torch.max(z, x - eps), x + eps), 0.0, 1.0)
    d = z - x
    n = _norm(d, "l2")
    return torch.clamp(x + d / (n + 1e-12) * torch.clamp(n, max=eps), 0.0, 1.0)


@register_attack("apgd", "native")
class APGD(Attack):
    """APGD with the cross-entropy (``loss="ce"``, APGD-CE) or DLR loss (``"dlr"``), L-inf.

    Parameters: ``steps`` (100), ``restarts`` (1; each restart attacks the samples not fooled
    yet from a new random start), ``loss``, ``rho`` (0.75: a checkpoint halves the step size when
    fewer than this share of the steps since the last one raised the loss), ``eot`` (1: the
    gradient of each step averages this many forward-backward passes, for randomized models).
    """

    name = "apgd"
    norm: ClassVar[Norm] = "linf"
    traceable = True
    strength = 30
    probe = True

    def __init__(
        self,
        model: Any,
        *,
        steps: int = 100,
        restarts: int = 1,
        loss: Loss = "ce",
        rho: float = 0.75,
        eot: int = 1,
        **options: Unpack[AttackOptions],
    ) -> None:
        super().__init__(model, **options)
        positive_int(steps=steps, restarts=restarts, eot=eot)
        if loss not in ("ce", "dlr"):
            raise bad_param("loss", f"unknown APGD loss {loss!r}; use 'ce' or 'dlr'")
        if not 0 < rho < 1:
            raise bad_param("rho", f"rho must be in (0, 1), got {rho}")
        self.steps, self.restarts, self.loss, self.rho, self.eot = steps, restarts, loss, rho, eot
        self.large_eps = False  # L1 only: AutoAttack's 3 eps / 2 eps / eps schedule (see APGDL1)
        # checkpoints p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06) (in steps)
        self.first_interval = max(int(0.22 * steps), 1)
        self.min_interval = max(int(0.06 * steps), 1)
        self.interval_decrease = max(int(0.03 * steps), 1)

    def params(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "restarts": self.restarts,
            "loss": self.loss,
            "rho": self.rho,
            "eot": self.eot,
            "targeted": self.targeted,
        }

    def traits(self) -> AttackTraits:
        """The class's traits; ``randomized`` when the gradient averages several passes."""
        return replace(super().traits(), randomized=self.randomized or self.eot > 1)

    def check_data(self, classes: int, image_shape: Sequence[int]) -> None:
        if self.loss == "dlr":
            self._check_classes(classes, targeted_dlr=False)

    # -- losses -----------------------------------------------------------------------------
    def _check_classes(self, n_classes: int, targeted_dlr: bool) -> None:
        need = 4 if targeted_dlr else 3
        if n_classes < need:
            what = "targeted DLR (APGD-T)" if targeted_dlr else "the DLR loss"
            raise bad_param("loss", f"{what} needs at least {need} classes, the model has {n_classes}; use loss = 'ce' (apgd)")

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
        """Per-sample loss, input gradient and logits; with ``eot > 1`` the gradient is the mean
        over ``eot`` passes and the loss and logits are the last pass's (as in the reference)."""
        adv = adv.detach().requires_grad_(True)
        logits = self.logits(adv)
        loss = self.sample_loss(logits, y, target)
        (grad,) = torch.autograd.grad(loss.sum(), adv)
        if self.eot > 1:
            for _ in range(self.eot - 1):
                logits = self.logits(adv)
                loss = self.sample_loss(logits, y, target)
                grad = grad + torch.autograd.grad(loss.sum(), adv)[0]
            grad = grad / float(self.eot)
        # an expanded gradient (stride 0: a model whose output ignores or pools its input): the checkpoints write rows into it
        if any(st == 0 and n > 1 for st, n in zip(grad.stride(), grad.shape, strict=True)):
            grad = grad.clone(memory_format=torch.contiguous_format)
        return loss.detach(), grad.detach(), logits.detach()

    # -- geometry ---------------------------------------------------------------------------
    def random_start(self, x: torch.Tensor, eps: float) -> torch.Tensor:
        """The authors' start, clipped to [0, 1]: a point on the surface of the eps-ball (L-inf,
        L2), or Gaussian noise projected onto the L1 ball within the box (L1)."""
        if self.norm == "linf":
            t = (2 * torch.rand(x.shape, generator=self.generator) - 1).to(x.device, x.dtype)
        else:
            t = torch.randn(x.shape, generator=self.generator).to(x.device, x.dtype)
        if self.norm == "l1":
            return (x + t + l1_box_projection(x, t, eps)).clamp(0.0, 1.0)
        return (x + eps * t / (_norm(t, self.norm) + 1e-12)).clamp(0.0, 1.0)

    def _project(self, z: torch.Tensor, x: torch.Tensor, eps: float) -> torch.Tensor:
        return project_ball(z, x, eps, self.norm)

    def _ascend(self, s: _Active, eps: float, a: float) -> torch.Tensor:
        direction = torch.sign(s.grad) if self.norm == "linf" else s.grad / (_norm(s.grad, "l2") + 1e-12)
        z = self._project(s.adv + s.step * direction, s.x, eps)
        return self._project(s.adv + (z - s.adv) * a + (s.adv - s.adv_old) * (1 - a), s.x, eps)

    def _ascend_l1(self, s: _Active, eps: float) -> torch.Tensor:
        """APGD-L1's step: the sign of the gradient on its ``topk`` largest coordinates, scaled to
        L1 length ``step``, then projected onto the L1 ball within the box (no momentum)."""
        magnitude = s.grad.abs().flatten(1)
        size = magnitude.shape[1]
        rank = torch.clamp((1.0 - s.topk) * size, min=0, max=size - 1).long()
        threshold = magnitude.sort(dim=1)[0].gather(1, rank[:, None]).view(-1, *([1] * (s.x.dim() - 1)))
        direction = (s.grad * (s.grad.abs() >= threshold).float()).sign()
        moved = s.adv + s.step * direction / (_norm(direction, "l1") + 1e-10) - s.x
        return s.x + moved + l1_box_projection(s.x, moved, eps)

    # -- checkpoints --------------------------------------------------------------------------
    def _check_step(self, s: _Active, i: int, k: int) -> int:
        """L-inf/L2 checkpoint: halve the step (and restart from the best point) where the loss
        oscillated or stalled since the last one; returns the next interval."""
        steps = s.loss_steps.shape[0]
        # share of the steps since the last checkpoint that raised the loss (with the reference's
        # index arithmetic, wrap-around at the first checkpoint included)
        raised = sum((s.loss_steps[(i - c) % steps] > s.loss_steps[(i - c - 1) % steps]).float() for c in range(k))
        halve = (raised <= k * self.rho) | (~s.reduced_last & (s.loss_best_last >= s.loss_best))
        s.reduced_last, s.loss_best_last = halve, s.loss_best.clone()
        s.step[halve] /= 2.0
        s.adv[halve], s.grad[halve] = s.best[halve], s.grad_best[halve]
        return max(k - self.interval_decrease, self.min_interval)

    def _check_sparsity(self, s: _Active, eps: float, features: int) -> None:
        """L1 checkpoint: the next steps move as many coordinates as the best point has nonzero
        (divided by 1.5); where the best point got sparser, restart from it at the full step,
        elsewhere shrink the step (to no less than eps / 10)."""
        sparsity = l0_norm(s.best - s.x)
        sparser = sparsity / s.sparsity < 0.95
        s.topk = sparsity / features / L1_STEP_DECAY
        s.step[sparser] = eps
        s.step[~sparser] /= L1_STEP_DECAY
        s.step.clamp_(eps / L1_STEP_FLOOR, eps)
        s.sparsity = sparsity
        s.adv[sparser], s.grad[sparser] = s.best[sparser], s.grad_best[sparser]

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
    ) -> None:
        """One APGD run on samples ``ids`` of the batch (``x``, ``y`` already gathered), from a
        random start (L1 with ``large_eps``: AutoAttack's schedule of three stages)."""
        if not self.large_eps:
            self._descend(x, y, eps, target, self.steps, None, result, fooled, ids, final=True)
            return
        stages = large_eps_schedule(eps, self.steps)
        start = x + torch.randn(x.shape, generator=self.generator).to(x.device, x.dtype)
        start = start + l1_box_projection(x, start - x, stages[0][0])
        for i, (stage_eps, stage_steps) in enumerate(stages):
            start = start + l1_box_projection(x, start - x, stage_eps)
            torch.randn(x.shape, generator=self.generator)  # the reference draws a start per stage and discards it
            final = i == len(stages) - 1
            reached = self._descend(x, y, stage_eps, target, stage_steps, start, result, fooled, ids, final)
            start = reached if reached is not None else start

    def _descend(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        eps: float,
        target: torch.Tensor | None,
        steps: int,
        init: torch.Tensor | None,
        result: torch.Tensor,
        fooled: torch.Tensor,
        ids: torch.Tensor,
        final: bool,
    ) -> torch.Tensor | None:
        """``steps`` APGD steps from ``init`` (None: a random start). In a ``final`` run a sample's
        fooling iterate goes into ``result`` (``fooled`` marks it) and the sample is dropped (the
        reference keeps stepping, but a fooled sample stays fooled and the other samples'
        trajectories do not depend on it); samples never fooled get their highest-loss iterate.
        A run that is not final (an early stage of the L1 schedule, at a larger eps) records
        nothing and returns every sample's highest-loss iterate."""
        adv = self.random_start(x, eps) if init is None else init.clamp(0.0, 1.0)
        loss, grad, logits = self._value_and_grad(adv, y, target)
        n, l1 = x.shape[0], self.norm == "l1"
        if init is None or not l1:
            topk, sparsity = torch.full((n,), L1_TOPK_START, device=x.device), torch.full((n,), float(x[0].numel()), device=x.device)
        else:
            sparsity = l0_norm(adv - x)
            topk = sparsity / x[0].numel() / L1_STEP_DECAY
        s = _Active(
            ids,
            x,
            y,
            target,
            adv,
            adv.clone(),
            grad,
            adv.clone(),
            grad.clone(),
            loss.clone(),
            loss.clone(),
            torch.ones(n, dtype=torch.bool, device=x.device),  # as the reference: the first checkpoint halves on oscillation only
            torch.full((n, 1, 1, 1), (1.0 if l1 else 2.0) * eps, device=x.device, dtype=x.dtype),
            torch.zeros(steps, n, device=x.device),
            topk,
            sparsity,
            torch.zeros(n, dtype=torch.bool, device=x.device),
        )
        if final:
            self._drop_fooled(s, logits, loss, result, fooled)
        k, since_check = (max(int(0.04 * steps), 1) if l1 else self.first_interval), 0
        for i in range(steps):
            if s.ids.numel() == 0:
                return None
            with torch.no_grad():
                new = self._ascend_l1(s, eps) if l1 else self._ascend(s, eps, MOMENTUM if i > 0 else 1.0)
                s.adv_old, s.adv = s.adv, new
            loss, s.grad, logits = self._value_and_grad(s.adv, s.y, s.target)
            s.loss_steps[i] = loss
            improved = loss > s.loss_best
            s.best[improved], s.grad_best[improved], s.loss_best[improved] = s.adv[improved], s.grad[improved], loss[improved]
            if final:
                self._drop_fooled(s, logits, loss, result, fooled)
            since_check += 1
            if since_check == k:
                if l1:
                    self._check_sparsity(s, eps, x[0].numel())
                else:
                    k = self._check_step(s, i, k)
                since_check = 0
                if final:
                    self._after_checkpoint(s, i + 1, result)
        if not final:
            return s.best
        result[s.ids[~s.hit]] = s.best[~s.hit]
        return None

    def _after_checkpoint(self, s: _Active, done: int, result: torch.Tensor) -> None:
        """A hook after each checkpoint (``done`` steps so far) of a final run: a subclass may stop
        samples there, their highest-loss iterate going into ``result``; APGD runs every sample
        to the end."""

    def _drop_fooled(self, s: _Active, logits: torch.Tensor, loss: torch.Tensor, result: torch.Tensor, fooled: torch.Tensor) -> None:
        hit = self._fooled_by(logits, s.y)
        if self.trace is not None:
            self.trace.step(s.ids, loss, hit)
        if hit.any():
            result[s.ids[hit]] = s.adv[hit]
            fooled[s.ids[hit]] = True
            if self.eot == 1:
                s.keep(~hit)
            else:  # a randomized model: keep stepping, the last fooling iterate is the answer
                s.hit |= hit

    # -- the attack ---------------------------------------------------------------------------
    def perturb(self, x: torch.Tensor, y: torch.Tensor, eps: float, stop_early: bool = False) -> torch.Tensor:
        """Adversarial images: a fooling iterate where some run fooled the sample, else the
        highest-loss point of the last run (inside the eps-ball). Samples the model already
        gets wrong are returned unchanged, as in the reference. Restarts attack the samples not
        fooled yet, each from a new random start. (APGD always stops a sample at its first
        fooling iterate when ``eot`` is 1, and never when it is larger; ``stop_early`` changes
        nothing.)"""
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


def _check_large_eps(large_eps: bool, steps: int) -> None:
    if not isinstance(large_eps, bool):
        raise bad_param("large_eps", f"large_eps must be true or false, got {large_eps!r}")
    if large_eps and steps < 3:
        raise bad_param("steps", f"large_eps runs three stages and needs steps >= 3, got {steps}; raise steps or set large_eps = false")


@register_attack("apgd-l1", "native")
class APGDL1(APGD):
    """APGD-L1 (Croce & Hein, ICML 2021): eps is the L1 radius in pixel units (a budget summed
    over every channel and pixel). ``large_eps`` (false) runs AutoAttack's L1 schedule: 30% of
    the steps at 3 eps, 30% at 2 eps, the rest at eps, each from the previous stage's
    highest-loss point (only the last stage's iterates count as adversarial). ``rho`` plays no
    part: L1 checkpoints adapt the step's sparsity and size instead (every 4% of the steps)."""

    name = "apgd-l1"
    norm = "l1"

    def __init__(self, model: Any, *, large_eps: bool = False, **params: Any) -> None:
        super().__init__(model, **params)
        _check_large_eps(large_eps, self.steps)
        self.large_eps = large_eps

    def params(self) -> dict[str, Any]:
        return {**super().params(), "large_eps": self.large_eps}


@register_attack("apgd-t", "native")
class APGDT(APGD):
    """APGD-T: targeted DLR against each of the ``targets`` classes the model ranks highest after
    the true one (9 by default, fewer when the model has fewer classes), one after the other on
    the samples not fooled yet; success is any misclassification, as in AutoAttack."""

    name = "apgd-t"
    norm: ClassVar[Norm] = "linf"
    strength = 35
    probe = False  # nine targeted runs per sample: too costly for the probe's independent runs at every eps

    def __init__(
        self,
        model: Any,
        *,
        steps: int = 100,
        restarts: int = 1,
        targets: int = 9,
        rho: float = 0.75,
        eot: int = 1,
        **options: Unpack[AttackOptions],
    ) -> None:
        if options.get("targeted"):
            raise bad_param("targeted", "apgd-t picks its own target classes; for a given target use apgd with targeted = true")
        super().__init__(model, steps=steps, restarts=restarts, loss="dlr", rho=rho, eot=eot, **options)
        positive_int(targets=targets)
        self.targets = targets

    def params(self) -> dict[str, Any]:
        return {"steps": self.steps, "restarts": self.restarts, "targets": self.targets, "rho": self.rho, "eot": self.eot}

    def check_data(self, classes: int, image_shape: Sequence[int]) -> None:
        self._check_classes(classes, targeted_dlr=True)
        check_targets(self.targets, classes, self.name)

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


@register_attack("apgd-t-l1", "native")
class APGDTL1(APGDT):
    """APGD-T in L1 (APGD-L1's step, projection and sparsity schedule; ``large_eps`` as in
    :class:`APGDL1`)."""

    name = "apgd-t-l1"
    norm = "l1"

    def __init__(self, model: Any, *, large_eps: bool = False, **params: Any) -> None:
        super().__init__(model, **params)
        _check_large_eps(large_eps, self.steps)
        self.large_eps = large_eps

    def params(self) -> dict[str, Any]:
        return {**super().params(), "large_eps": self.large_eps}
