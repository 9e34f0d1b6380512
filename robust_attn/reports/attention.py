"""Attention under attack: maps on clean and adversarial inputs, drift between them, and
weakly supervised segmentation from binarised maps (the paper's Object Discovery test)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn as nn

from robust_attn.attacks import Attack

TOP_FRACTION = 0.1  # drift IoU compares the top 10% most-attended pixels
BOX_SIDE = 0.5  # centred-box baseline: a square covering the middle half of each side


def has_attention(model: nn.Module) -> bool:
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
    lo, hi = round(size * (1 - BOX_SIDE) / 2), round(size * (1 + BOX_SIDE) / 2)
    box = torch.zeros(batch, size, size, dtype=torch.bool)
    box[:, lo:hi, lo:hi] = True
    return box


@dataclass
class AttentionStudy:
    """Per-model attention measurements over an eps grid."""

    drift: pd.DataFrame  # model, stage, eps, one_minus_iou, cosine
    segmentation: pd.DataFrame  # method, eps, jaccard
    examples: dict[str, dict[str, np.ndarray]]  # model -> images (E, B, C, H, W), maps (E, S, B, H, W), preds (E, B), eps (E,)


def study(models: dict[str, nn.Module], attack_for: dict[str, Attack], x: torch.Tensor, y: torch.Tensor, masks: torch.Tensor | None,
          eps_grid: list[float], example_eps: list[float], n_examples: int = 3, baseline: nn.Module | None = None) -> AttentionStudy:  # fmt: skip
    """Attack each attention model at every eps, compare maps with the clean ones and score
    binarised maps against ground-truth masks (when the data set has them)."""
    drift_rows, seg_rows = [], []
    examples: dict[str, dict[str, np.ndarray]] = {}
    for name, model in models.items():
        clean_maps, clean_pred = attention_maps(model, x)
        stages = list(getattr(model, "stage_names", [f"l{i + 1}" for i in range(len(clean_maps))]))
        shown_imgs, shown_maps, shown_pred = [x[:n_examples]], [clean_maps[:, :n_examples]], [clean_pred[:n_examples]]
        for eps in eps_grid:
            adv = x if eps == 0 else attack_for[name](x, y, eps).detach().cpu()
            maps, pred = (clean_maps, clean_pred) if eps == 0 else attention_maps(model, adv)
            for s, stage in enumerate(stages):
                iou = jaccard(top_region(clean_maps[s]), top_region(maps[s])).mean().item()
                drift_rows.append(
                    {
                        "model": name,
                        "stage": stage,
                        "eps": eps,
                        "one_minus_iou": 1 - iou,
                        "cosine": cosine(clean_maps[s], maps[s]).mean().item(),
                    }
                )
            if masks is not None:
                for s, stage in enumerate(stages):
                    seg_rows.append(
                        {"method": f"{name} {stage}", "model": name, "eps": eps, "jaccard": jaccard(binarise(maps[s]), masks).mean().item()}
                    )
                seg_rows.append(
                    {
                        "method": f"{name} mean of stages",
                        "model": name,
                        "eps": eps,
                        "jaccard": jaccard(binarise(maps.mean(0)), masks).mean().item(),
                    }
                )
            if eps in example_eps and eps != 0:
                shown_imgs.append(adv[:n_examples])
                shown_maps.append(maps[:, :n_examples])
                shown_pred.append(pred[:n_examples])
        examples[name] = {"images": torch.stack(shown_imgs).numpy(), "maps": torch.stack(shown_maps).numpy(),
                          "preds": torch.stack(shown_pred).numpy(), "eps": np.asarray([0.0, *[e for e in example_eps if e != 0]])}  # fmt: skip
    if masks is not None:
        if baseline is not None:
            base_attack = attack_for.get("__baseline__")
            for eps in eps_grid:
                adv = x if eps == 0 or base_attack is None else base_attack(x, y, eps).detach().cpu()
                sal = gradient_saliency(baseline, adv, y)
                seg_rows.append(
                    {
                        "method": "input-gradient saliency (VGG)",
                        "model": "baseline",
                        "eps": eps,
                        "jaccard": jaccard(binarise(sal), masks).mean().item(),
                    }
                )
        box = centred_box(x.shape[0], x.shape[-1])
        seg_rows += [
            {"method": "centred box", "model": "baseline", "eps": eps, "jaccard": jaccard(box, masks).mean().item()} for eps in eps_grid
        ]
    return AttentionStudy(pd.DataFrame(drift_rows), pd.DataFrame(seg_rows), examples)
