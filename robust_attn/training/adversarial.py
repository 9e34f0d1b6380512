"""Adversarial training steps built on the native attack engine's geometry: FGSM from a uniform
random start with step 1.25 eps (Wong et al., ICLR 2020, "Fast is better than free") and PGD with
a random start (Madry et al., ICLR 2018), both L-inf, plus the held-out PGD accuracy that guards
FGSM training against catastrophic overfitting."""

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
