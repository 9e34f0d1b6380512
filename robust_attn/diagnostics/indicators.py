"""Indicators of attack failure (Pintor et al., NeurIPS 2022) and AutoAttack's checks, each a
small named function returning an :class:`Indicator` with its measured value, the threshold,
whether it triggered, and what to do.

Model-level: unavailable gradients, probability outputs instead of logits, randomness in the
forward pass, unstable predictions under tiny noise. Attack-level: silent success, incomplete
optimisation, unconstrained attack failure.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from robust_attn.attacks import Attack
from robust_attn.diagnostics.trace import AttackTrace

GRADIENT_SHARE = 0.05  # samples with zero or non-finite input gradients
NOISE = 0.1 / 255  # magnitude of the noise for the stability test
UNSTABLE_CHANGE = 0.05  # median relative loss change under that noise
LATE_GAIN = 0.05  # share of the best-loss gain made in the last 10% of the steps
UNCONSTRAINED_ACCURACY = 0.01  # accuracy an iterative attack must reach without a budget


@dataclass(frozen=True)
class Indicator:
    """One check's outcome, stored as a row of indicators.parquet."""

    indicator: str
    level: str  # model or attack
    value: float
    threshold: float
    triggered: bool
    skipped: bool
    detail: str  # the measurement in words, and what to do when triggered

    def row(self) -> dict[str, object]:
        return asdict(self)


def _skip(name: str, level: str, why: str) -> Indicator:
    return Indicator(name, level, math.nan, math.nan, False, True, why)


@torch.no_grad()
def _logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return model(x).float()


def unavailable_gradients(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Indicator:
    """Share of samples whose input gradient of the cross-entropy is all zero or not finite."""
    xg = x.detach().clone().requires_grad_(True)
    loss = F.cross_entropy(model(xg).float(), y, reduction="sum")
    (grad,) = torch.autograd.grad(loss, xg)
    flat = grad.flatten(1)
    bad = (flat.abs().amax(dim=1) == 0) | ~torch.isfinite(flat).all(dim=1)
    share = float(bad.float().mean())
    hit = share > GRADIENT_SHARE
    return Indicator(
        "unavailable gradients",
        "model",
        share,
        GRADIENT_SHARE,
        hit,
        False,
        f"{share:.0%} of samples have zero or non-finite input gradients"
        + (
            "; gradient attacks cannot work here (quantisation, a non-differentiable layer?): use BPDA or a gradient-free "
            "attack such as Square (autoattack runs it)"
            if hit
            else ""
        ),
    )


def probability_outputs(model: nn.Module, x: torch.Tensor) -> Indicator:
    """AutoAttack's check: outputs that are non-negative and sum to 1 look like softmax probabilities."""
    out = _logits(model, x)
    sums = out.sum(dim=1)
    probabilities = bool((out >= 0).all() and torch.allclose(sums, torch.ones_like(sums), atol=1e-4))
    return Indicator(
        "probability outputs",
        "model",
        float(probabilities),
        0.5,
        probabilities,
        False,
        "outputs are probabilities, not logits: losses saturate and gradients vanish; return the logits (drop the softmax)"
        if probabilities
        else "outputs are logits",
    )


def randomness(model: nn.Module, x: torch.Tensor) -> Indicator:
    """AutoAttack's check: two forward passes on the same input must agree."""
    a, b = _logits(model, x), _logits(model, x)
    diff = float((a - b).abs().max())
    hit = diff > 1e-5 * max(1.0, float(a.abs().max()))
    return Indicator(
        "randomness in the forward pass",
        "model",
        diff,
        1e-5,
        hit,
        False,
        f"two forward passes differ by up to {diff:.3g}"
        + ("; the model is random (dropout left on, model.train()?): evaluate it in eval mode, or attack with EOT" if hit else ""),
    )


def unstable_predictions(model: nn.Module, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> Indicator:
    """Median relative change of the per-sample loss under uniform noise of 0.1/255."""
    noise = (2 * torch.rand(x.shape, generator=generator) - 1).to(x.device, x.dtype) * NOISE
    base = F.cross_entropy(_logits(model, x), y, reduction="none")
    moved = F.cross_entropy(_logits(model, (x + noise).clamp(0, 1)), y, reduction="none")
    change = float(((moved - base).abs() / (base.abs() + 1e-12)).median())
    hit = change > UNSTABLE_CHANGE
    return Indicator(
        "unstable predictions",
        "model",
        change,
        UNSTABLE_CHANGE,
        hit,
        False,
        f"median relative loss change {change:.3g} under noise of 0.1/255"
        + ("; the loss landscape is noisy or random: attacks following its gradient are unreliable" if hit else ""),
    )


def silent_success(attack: Attack, trace: AttackTrace, returned_fooled: torch.Tensor) -> Indicator:
    """Share of samples an iterate fooled while the returned point does not."""
    silent = trace.ever_fooled & ~returned_fooled.cpu()
    share = float(silent.float().mean())
    hit = bool(silent.any())
    return Indicator(
        "silent success",
        "attack",
        share,
        0.0,
        hit,
        False,
        f"{int(silent.sum())} samples were fooled by an intermediate point that the attack did not return"
        + ("; use worst-case mode (it keeps the first fooling point) or an attack that returns its best point (apgd)" if hit else ""),
    )


def incomplete_optimisation(trace: AttackTrace, survivors: torch.Tensor) -> Indicator:
    """Median share of the best-loss gain that survivors made in the last 10% of the steps."""
    losses = trace.losses()[:, survivors.cpu()]
    if losses.shape[0] < 10 or losses.shape[1] == 0:
        return _skip("incomplete optimisation", "attack", "fewer than 10 steps traced or no survivors")
    best = torch.cummax(torch.nan_to_num(losses, nan=-math.inf), dim=0).values
    start, late, end = best[0], best[int(0.9 * len(best)) - 1], best[-1]
    gain = (end - late) / (end - start).clamp_min(1e-12)
    value = float(torch.nan_to_num(gain, nan=0.0, posinf=0.0, neginf=0.0).median())
    hit = value > LATE_GAIN
    return Indicator(
        "incomplete optimisation",
        "attack",
        value,
        LATE_GAIN,
        hit,
        False,
        f"survivors made {value:.0%} (median) of their loss gain in the last 10% of the steps"
        + ("; the loss is still rising: run more steps" if hit else ""),
    )


def unconstrained_failure(attack: Attack, x: torch.Tensor, y: torch.Tensor) -> Indicator:
    """Accuracy under the attack with no effective budget (L-inf eps 1; L2 the diameter of the
    image box, sqrt(C*H*W)): must be about 0."""
    eps = 1.0 if attack.norm == "linf" else math.sqrt(x[0].numel())
    adv = attack(x, y, eps)
    accuracy = float((attack.predict(adv) == y).float().mean())
    hit = accuracy > UNCONSTRAINED_ACCURACY
    return Indicator(
        "unconstrained attack failure",
        "attack",
        accuracy,
        UNCONSTRAINED_ACCURACY,
        hit,
        False,
        f"accuracy {accuracy:.1%} without a budget (eps = {eps:.3g})"
        + (
            "; an attack that cannot fool the model even without a budget is failing (masked gradients, too few steps, "
            "bad step size): results at real budgets overstate robustness"
            if hit
            else ""
        ),
    )
