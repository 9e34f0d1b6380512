"""Fold eval-mode BatchNorm into the convolution before it, for faster attack passes."""

from __future__ import annotations

import copy

import torch
import torch.nn as nn


def _folded_conv(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """conv followed by eval-mode bn, as one conv: w' = w * s, b' = (b - mean) * s + beta, s = gamma / sqrt(var + eps)."""
    assert bn.running_mean is not None and bn.running_var is not None
    scale = torch.rsqrt(bn.running_var + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    shift = (bias - bn.running_mean) * scale + (bn.bias if bn.bias is not None else 0)
    folded = copy.deepcopy(conv)
    with torch.no_grad():
        folded.weight.mul_(scale.view(-1, *([1] * (conv.weight.dim() - 1))))
    folded.bias = nn.Parameter(shift.detach().clone())
    return folded


def fold_batchnorm(model: nn.Module) -> tuple[nn.Module, int]:
    """An eval-mode copy of ``model`` in which each Conv2d directly followed by a BatchNorm2d
    (with running statistics) inside an ``nn.Sequential`` becomes one biased Conv2d, and the
    BatchNorm an ``nn.Identity``; returns it with the number of pairs folded.

    In eval mode BatchNorm is a per-channel affine map, so the copy computes the same function;
    it saves one memory pass per folded layer forward and backward, but rounds differently, so
    a sample whose logits nearly tie can change its prediction.
    """
    folded = copy.deepcopy(model).eval()
    count = 0
    for seq in [m for m in folded.modules() if isinstance(m, nn.Sequential)]:
        for i in range(len(seq) - 1):
            conv, bn = seq[i], seq[i + 1]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d) and bn.running_mean is not None:
                seq[i] = _folded_conv(conv, bn)
                seq[i + 1] = nn.Identity()
                count += 1
    return folded, count
