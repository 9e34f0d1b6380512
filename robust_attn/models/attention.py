"""The Learn-To-Pay-Attention block: score local features against a global one."""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from robust_attn.errors import ModelError

Compatibility = Literal["pc", "dp"]
Normalisation = Literal["softmax", "sigmoid"]


class Attended(NamedTuple):
    """What one attention stage produces."""

    feature: torch.Tensor  # (B, C) attention-weighted sum of local features
    attention: torch.Tensor  # (B, 1, H, W) normalised attention map
    scores: torch.Tensor  # (B, 1, H, W) raw compatibility scores c_i


class AttentionBlock(nn.Module):
    """Compatibility c_i = <u, l_i + g> (``pc``) or <l_i, g> (``dp``), normalised over space.

    ``softmax`` follows the paper (the map sums to 1 over H*W); ``sigmoid`` follows the
    reference PyTorch re-implementation (each position in (0, 1), features averaged).
    """

    def __init__(
        self,
        channels: int,
        compatibility: Compatibility = "pc",
        normalisation: Normalisation = "softmax",
    ) -> None:
        super().__init__()
        if compatibility not in ("pc", "dp"):
            raise ModelError(f"unknown compatibility {compatibility!r}; use 'pc' or 'dp'")
        if normalisation not in ("softmax", "sigmoid"):
            raise ModelError(f"unknown normalisation {normalisation!r}; use 'softmax' or 'sigmoid'")
        self.compatibility = compatibility
        self.normalisation = normalisation
        self.u = nn.Conv2d(channels, 1, kernel_size=1, bias=False) if compatibility == "pc" else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Start ``u`` at zero: the first maps are uniform (global average pooling) and
        sharpen as training finds where to look. A fan-based init makes the first softmax
        maps nearly one-hot at random positions, which slows training several-fold."""
        if self.u is not None:
            nn.init.zeros_(self.u.weight)

    def forward(self, local: torch.Tensor, glob: torch.Tensor) -> Attended:
        b, c, h, w = local.shape
        g = glob.view(b, c, 1, 1)
        scores = self.u(local + g) if self.u is not None else (local * g).sum(dim=1, keepdim=True)
        flat = scores.view(b, 1, h * w)
        if self.normalisation == "softmax":
            attention = F.softmax(flat, dim=2).view(b, 1, h, w)
            feature = (attention * local).sum(dim=(2, 3))
        else:
            attention = torch.sigmoid(scores)
            feature = (attention * local).mean(dim=(2, 3))
        return Attended(feature, attention, scores)
