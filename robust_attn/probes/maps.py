"""Attention maps and the measurements made on them: binarisation, top regions, Jaccard index,
cosine similarity, input-gradient saliency and the centred-box baseline."""

from __future__ import annotations

import torch
import torch.nn as nn

TOP_FRACTION = 0.1  # drift IoU compares the top 10% most-attended pixels
BOX_SIDE = 0.5  # centred-box baseline: a square covering the middle half of each side


def has_attention(model: nn.Module) -> bool:
    """Whether ``model`` exposes LTPA attention maps (``forward_with_attention``)."""
    return bool(getattr(model, "attention_stages", 0)) and hasattr(model, "forward_with_attention")


@torch.no_grad()
def attention_maps(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(maps (S, B, H, W) upsampled to the input size and renormalised to sum 1, predictions)."""
    out = model.forward_with_attention(x, upsample=True)  # type: ignore[operator]
    maps = torch.stack([m.squeeze(1) for m in out.maps])
    maps = maps / maps.sum(dim=(2, 3), keepdim=True).clamp_min(1e-12)
    return maps, out.logits.argmax(dim=1)


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
    """|d logit_y / d x| maxed over channels (Simonyan et al. 2014), (B, H, W)."""
    x = x.clone().requires_grad_(True)
    logits = model(x)
    (grad,) = torch.autograd.grad(logits.gather(1, y[:, None]).sum(), x)
    return grad.abs().amax(dim=1)


def centred_box(batch: int, size: int) -> torch.Tensor:
    """A centred square covering the middle half of each side, (batch, size, size)."""
    lo, hi = round(size * (1 - BOX_SIDE) / 2), round(size * (1 + BOX_SIDE) / 2)
    box = torch.zeros(batch, size, size, dtype=torch.bool)
    box[:, lo:hi, lo:hi] = True
    return box
