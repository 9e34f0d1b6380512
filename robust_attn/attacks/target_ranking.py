"""Which class a targeted run should aim at: MALT's linearised distance to each class's decision
boundary (Melamed et al., 2024) with the gradient check that comes with it, and the order in which
``rapid``'s restarts take the remaining classes (the clean logits' and MALT's, in turn)."""

from __future__ import annotations

import math

import torch

from robust_attn.attacks.apgd import _norm
from robust_attn.attacks.base import Attack
from robust_attn.errors import ModelError

# the gradient check at the clean image, per sample
GRAD_OK, GRAD_VANISH, GRAD_NONFINITE = 0, 1, 2
NOT_RANKED = -1  # not measured yet


def dual_norm(t: torch.Tensor, norm: str) -> torch.Tensor:
    """Per sample, the norm dual to the threat model's (L1 for L-inf, else L2): the size of a
    gradient ``t`` that turns into the largest first-order change over the ball."""
    return _norm(t, "l1" if norm == "linf" else "l2").flatten()


def linearised_distances(member: Attack, x: torch.Tensor, y: torch.Tensor, norm: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """MALT's ranking quantity for every class t: (z_y - z_t) / ||grad_x (z_y - z_t)||_* at ``x``
    (L1 for L-inf, L2 for L2; inf for t = y and where the gradient is zero); per sample
    GRAD_VANISH where every such gradient is zero, GRAD_NONFINITE where one is not finite, else
    GRAD_OK; and the logits at ``x``. One forward pass and C backward passes."""
    xg = x.detach().requires_grad_(True)
    logits = member.logits(xg)
    n, classes = logits.shape
    if classes < 4:
        raise ModelError(f"rapid needs at least 4 classes (targeted DLR), the model has {classes}; use apgd or pgd")
    rows = torch.arange(n, device=x.device)
    distance = torch.full((n, classes), math.inf, device=x.device)
    moved = torch.zeros(n, dtype=torch.bool, device=x.device)
    broken = torch.zeros(n, dtype=torch.bool, device=x.device)
    z = logits.detach()
    for t in range(classes):
        seed = torch.zeros_like(logits)
        seed[:, t] += 1.0
        seed[rows, y] -= 1.0  # grad of z_t - z_y (zero on rows whose label is t)
        (grad,) = torch.autograd.grad(logits, xg, seed, retain_graph=t < classes - 1)
        size = dual_norm(grad, norm)
        other = y != t
        finite = torch.isfinite(grad).flatten(1).all(1)
        broken |= other & ~finite
        usable = other & finite & (size > 0)
        moved |= usable
        distance[:, t] = torch.where(usable, (z[rows, y] - z[:, t]) / size.clamp_min(1e-30), distance[:, t])
    gradients = torch.where(broken, GRAD_NONFINITE, torch.where(moved, GRAD_OK, GRAD_VANISH))
    return distance, gradients, z


def restart_order(logit_order: torch.Tensor, distance: torch.Tensor, y: torch.Tensor, tried: torch.Tensor) -> torch.Tensor:
    """Per row, the classes to restart towards, taking turns: the next class by clean logit
    (AutoAttack's order), then the next by linearised distance (MALT's), never the true class, one
    already ``tried`` or one already taken; (n, C - 1 - tried.shape[1])."""
    by_distance = distance.argsort(dim=1)
    width = logit_order.shape[1] - 1 - tried.shape[1]
    rows = [
        _alternate(first, second, {label, *done}, width)
        for first, second, label, done in zip(logit_order.tolist(), by_distance.tolist(), y.tolist(), tried.tolist())
    ]
    return torch.tensor(rows, dtype=torch.long, device=y.device).view(len(rows), width)


def _alternate(first: list[int], second: list[int], seen: set[int], width: int) -> list[int]:
    """``width`` classes not in ``seen``, taken from ``first`` and ``second`` in turn (where one
    order is used up, the other has the rest)."""
    row: list[int] = []
    queues = (iter(first), iter(second))
    while len(row) < width:
        pick = next((c for c in queues[len(row) % 2] if c not in seen), None)
        if pick is None:
            pick = next(c for c in queues[1 - len(row) % 2] if c not in seen)
        seen.add(pick)
        row.append(pick)
    return row
