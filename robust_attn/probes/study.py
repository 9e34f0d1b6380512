"""The attention probe of one model, run inside a sweep: maps on clean and adversarial images,
their drift, and weakly supervised segmentation against ground-truth masks (the paper's
Object Discovery test), with input-gradient saliency, Grad-CAM, Grad-CAM++ (models without
attention) and a centred box as baselines.

Everything is returned as data (per-sample rows and small example arrays), so reports can be
drawn later without the model.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn as nn

from robust_attn.attacks import Attack
from robust_attn.probes.cam import cam_layer, grad_cam, grad_cam_plusplus
from robust_attn.probes.maps import (
    attention_maps,
    binarise,
    centred_box,
    cosine,
    gradient_saliency,
    has_attention,
    jaccard,
    top_region,
)
from robust_attn.protocols import attention_names
from robust_attn.rundir import ProbeOutcome


def _rows(columns: dict[str, list[np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate(v) if v else np.zeros(0) for k, v in columns.items()}


def _add(columns: dict[str, list[np.ndarray]], n: int, **values: str | float | np.ndarray | torch.Tensor) -> None:
    """Append ``n`` rows: scalars are repeated, arrays taken as they are."""
    for key, value in values.items():
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy()
        if isinstance(value, np.ndarray):
            columns.setdefault(key, []).append(value)
        else:
            columns.setdefault(key, []).append(np.full(n, value, dtype=object if isinstance(value, str) else None))


def example_eps(eps_grid: Sequence[float]) -> list[float]:
    """The eps shown in example grids: clean plus the smallest, middle and largest non-zero eps."""
    nonzero = sorted(e for e in eps_grid if e > 0)
    return [0.0, *sorted({nonzero[0], nonzero[len(nonzero) // 2], nonzero[-1]})] if nonzero else [0.0]


def baseline_maps(model: nn.Module, x: torch.Tensor, y: torch.Tensor, layer: nn.Module | None) -> dict[str, torch.Tensor]:
    """The saliency maps (B, H, W) of a model without attention, for class ``y``: input-gradient
    saliency, and Grad-CAM and Grad-CAM++ on ``layer`` (omitted when the model has no CAM layer)."""
    maps = {"gradient saliency": gradient_saliency(model, x, y)}
    if layer is not None:
        maps["grad-cam"] = grad_cam(model, x, y, layer)
        maps["grad-cam++"] = grad_cam_plusplus(model, x, y, layer)
    return maps


def probe_model(
    model: nn.Module,
    attack: Attack,
    x: torch.Tensor,
    y: torch.Tensor,
    masks: torch.Tensor | None,
    eps_grid: Sequence[float],
    n_examples: int = 3,
) -> ProbeOutcome:
    """Attack ``x`` independently at each eps of ``eps_grid`` (0 included) and measure.

    Attention models: per-stage maps, drift from the clean maps (1 - IoU of the top-10% regions,
    cosine) and, with ``masks``, the Jaccard index of each binarised stage map and of their mean.
    Models without attention: the Jaccard index of their binarised input-gradient saliency, Grad-CAM
    and Grad-CAM++ (on :func:`~robust_attn.probes.cam.cam_layer`; the CAM rows are omitted for a
    model without one), all for the true class and binarised by the same rule as attention.
    With ``masks`` the centred box is scored too (eps = 0 rows only: it does not change).
    """
    grid = sorted({0.0, *eps_grid})
    shown = example_eps(grid)
    samples = np.arange(x.shape[0], dtype=np.int32)
    n = len(samples)
    drift: dict[str, list[np.ndarray]] = {}
    seg: dict[str, list[np.ndarray]] = {}
    examples: dict[str, list[torch.Tensor]] = {"images": [], "maps": [], "preds": []}
    attentive = has_attention(model)
    layer = cam_layer(model, x) if not attentive and masks is not None else None
    stages: list[str] = []
    clean_maps: torch.Tensor | None = None
    for eps in grid:
        adv = x if eps == 0 else attack(x, y, eps).detach().to(x.device)
        if attentive:
            maps, pred = attention_maps(model, adv)
            if clean_maps is None:
                clean_maps, stages = maps, list(attention_names(model, len(maps)))
            for s, stage in enumerate(stages):
                iou = jaccard(top_region(clean_maps[s]), top_region(maps[s]))
                _add(drift, n, stage=stage, eps=eps, sample=samples, one_minus_iou=1 - iou, cosine=cosine(clean_maps[s], maps[s]))
            if masks is not None:
                for s, stage in enumerate(stages):
                    _add(seg, n, method="attention", stage=stage, eps=eps, sample=samples, jaccard=jaccard(binarise(maps[s]), masks))
                _add(seg, n, method="attention", stage="mean", eps=eps, sample=samples, jaccard=jaccard(binarise(maps.mean(0)), masks))
            if eps in shown:
                examples["images"].append(adv[:n_examples].cpu())
                examples["maps"].append(maps[:, :n_examples].cpu())
                examples["preds"].append(pred[:n_examples].cpu())
        elif masks is not None:
            for method, saliency in baseline_maps(model, adv, y, layer).items():
                _add(seg, n, method=method, stage="-", eps=eps, sample=samples, jaccard=jaccard(binarise(saliency), masks))
    if masks is not None:
        box = centred_box(n, x.shape[-1]).to(masks.device)
        _add(seg, n, method="centred box", stage="-", eps=0.0, sample=samples, jaccard=jaccard(box, masks))
    example_arrays: dict[str, np.ndarray] = {}
    if attentive and examples["images"]:
        example_arrays = {
            "images": torch.stack(examples["images"]).numpy().astype(np.float16),
            "maps": torch.stack(examples["maps"]).numpy().astype(np.float16),
            "preds": torch.stack(examples["preds"]).numpy().astype(np.int16),
            "eps": np.asarray(shown),
        }
    return ProbeOutcome(_rows(drift), _rows(seg), example_arrays, stages)
