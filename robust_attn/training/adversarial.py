"""Adversarial training steps built on the native attack engine's geometry: FGSM from a uniform
random start with step 1.25 eps (Wong et al., ICLR 2020, "Fast is better than free"), PGD with a
random start (Madry et al., ICLR 2018) and TRADES (Zhang et al., ICML 2019), all L-inf, plus the
held-out PGD accuracy that guards FGSM training against catastrophic overfitting."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from robust_attn.training.recipes import Recipe


def _input_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(model(x), y), x)
    return grad


def adversarial_batch(model: nn.Module, x: torch.Tensor, y: torch.Tensor, recipe: Recipe, generator: torch.Generator) -> torch.Tensor:
    """The training points of one batch: FGSM-RS or PGD within ``recipe.train_eps`` of ``x``, in
    [0, 1]. The model stays in training mode, as in both papers' code."""
    eps = recipe.train_eps
    delta = (torch.rand(x.shape, generator=generator) * 2 - 1).to(x.device, x.dtype) * eps
    delta = (x + delta).clamp(0, 1) - x
    steps, step = (1, 1.25 * eps) if recipe.adversarial == "fgsm" else (recipe.attack_steps, 2.5 * eps / recipe.attack_steps)
    for _ in range(steps):
        grad = _input_gradient(model, x + delta, y)
        delta = (delta + step * grad.sign()).clamp(-eps, eps)
        delta = (x + delta).clamp(0, 1) - x
    return (x + delta).detach()


def guard_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float) -> float:
    """PGD-10 accuracy (no random start, eval mode) on held-out images: FGSM training that
    overfits catastrophically keeps its clean accuracy while this falls to about 0."""
    from robust_attn.attacks import create_attack

    was_training = model.training
    attack = create_attack("pgd", model.eval(), steps=10, random_start=False)
    accuracy = float(attack.sweep(x, y, [eps], mode="independent").correct.float().mean())
    model.train(was_training)
    return accuracy


def trades_points(model: nn.Module, x: torch.Tensor, recipe: Recipe, generator: torch.Generator) -> torch.Tensor:
    """TRADES's inner maximisation (Zhang et al. 2019, ``trades.py``): from x + 0.001 N(0, 1), K
    signed-gradient steps of size ``2.5 eps / K`` on KL(f(x) || f(x')), projected on the eps-ball
    and [0, 1], with the model in eval mode (as the reference does)."""
    eps, steps = recipe.train_eps, recipe.attack_steps
    step = 2.5 * eps / steps
    was_training = model.training
    model.eval()
    with torch.no_grad():
        clean = F.softmax(model(x), dim=1)
    adv = x.detach() + 0.001 * torch.randn(x.shape, generator=generator).to(x.device, x.dtype)
    for _ in range(steps):
        adv = adv.detach().requires_grad_(True)
        loss = F.kl_div(F.log_softmax(model(adv), dim=1), clean, reduction="sum")
        (grad,) = torch.autograd.grad(loss, adv)
        adv = torch.min(torch.max(adv.detach() + step * grad.sign(), x - eps), x + eps).clamp(0, 1)
    model.train(was_training)
    return adv.detach()


def trades_loss(logits_clean: torch.Tensor, logits_adv: torch.Tensor, y: torch.Tensor, beta: float) -> torch.Tensor:
    """CE(f(x), y) + beta * KL(f(x) || f(x')) / batch: the KL term is taken against the model's own
    clean prediction (not the label), the reference's ``(1/B) * KLDivLoss(sum)``."""
    natural = F.cross_entropy(logits_clean, y)
    robust = F.kl_div(F.log_softmax(logits_adv, dim=1), F.softmax(logits_clean, dim=1), reduction="sum") / len(y)
    return natural + beta * robust
