"""Attention maps and the measurements made on them: binarisation, top regions, Jaccard index,
cosine similarity, input-gradient saliency and the centred-box baseline (class activation maps:
:mod:`robust_attn.probes.cam`)."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from robust_attn.errors import ModelError
from robust_attn.protocols import attention_names, has_attention  # noqa: F401  (has_attention: the probes' public name)

TOP_FRACTION = 0.1  # drift IoU compares the top 10% most-attended pixels
BOX_SIDE = 0.5  # centred-box baseline: a square covering the middle half of each side


class AttentionProtocolError(ModelError):
    """``attention_maps`` returned something other than a list of (B, H, W) maps."""


@torch.no_grad()
def attention_maps(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(maps (S, B, H, W) upsampled to the input size and renormalised to sum 1, predictions)."""
    raw = model.attention_maps(x)  # type: ignore[operator]
    if (
        not isinstance(raw, (list, tuple))
        or not raw
        or not all(isinstance(m, torch.Tensor) and m.dim() == 3 and m.shape[0] == len(x) for m in raw)
    ):
        got = (
            [tuple(m.shape) if isinstance(m, torch.Tensor) else type(m).__name__ for m in raw]
            if isinstance(raw, (list, tuple))
            else type(raw).__name__
        )
        raise AttentionProtocolError(
            f"{type(model).__name__}.attention_maps(x) must return a non-empty list of (B, H, W) tensors, got {got}; "
            "see docs/extending.md, 'Adding a model'"
        )
    size = x.shape[-2:]
    maps = torch.stack([F.interpolate(m[:, None].float(), size=size, mode="bilinear", align_corners=False)[:, 0] for m in raw])
    maps = maps.clamp_min(0)
    maps = maps / maps.sum(dim=(2, 3), keepdim=True).clamp_min(1e-12)
    return maps, model(x).argmax(dim=1)


def binarise(maps: torch.Tensor) -> torch.Tensor:
    """Foreground where attention exceeds the uniform level 1/(H*W), i.e. the map's mean."""
    return maps > maps.mean(dim=(-2, -1), keepdim=True)


def top_region(maps: torch.Tensor, fraction: float = TOP_FRACTION) -> torch.Tensor:
    """The ``fraction`` most-attended pixels of each map, as a boolean mask."""
    flat = maps.flatten(-2)
    k = max(1, round(fraction * flat.shape[-1]))
    idx = flat.topk(k, dim=-1).indices
    return torch.zeros_like(flat, dtype=torch.bool).scatter_(-1, idx, True).view_as(maps)


def jaccard(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image intersection over union of boolean masks (..., H, W); 1 when both are empty."""
    inter = (a & b).flatten(-2).sum(-1).float()
    union = (a | b).flatten(-2).sum(-1).float()
    return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))


def cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cosine_similarity(a.flatten(-2), b.flatten(-2), dim=-1)


def gradient_saliency(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """|d logit_y / d x| maxed over channels (Simonyan et al. 2014), (B, H, W). captum's
    ``Saliency(abs=True)`` gives the per-channel |gradient| (B, C, H, W); the max over channels is
    Simonyan's reduction, applied here."""
    from captum.attr import Saliency

    with torch.enable_grad():
        grad = Saliency(model).attribute(x.detach().clone().requires_grad_(True), target=y, abs=True)
    return grad.detach().amax(dim=1)


def centred_box(batch: int, size: int) -> torch.Tensor:
    """A centred square covering the middle half of each side, (batch, size, size)."""
    lo, hi = round(size * (1 - BOX_SIDE) / 2), round(size * (1 + BOX_SIDE) / 2)
    box = torch.zeros(batch, size, size, dtype=torch.bool)
    box[:, lo:hi, lo:hi] = True
    return box
