"""Fold eval-mode BatchNorm into the convolution before it, for faster attack passes."""

from __future__ import annotations

import copy

import torch.nn as nn
from torch.nn.utils.fusion import fuse_conv_bn_eval


def fold_batchnorm(model: nn.Module) -> tuple[nn.Module, int]:
    """An eval-mode copy of ``model`` in which each Conv2d directly followed by a BatchNorm2d
    (with running statistics) inside an ``nn.Sequential`` becomes one biased Conv2d
    (``torch.nn.utils.fuse_conv_bn_eval``), and the BatchNorm an ``nn.Identity``; returns it
    with the number of pairs folded.

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
                seq[i] = fuse_conv_bn_eval(conv, bn)
                seq[i + 1] = nn.Identity()
                count += 1
    return folded, count
