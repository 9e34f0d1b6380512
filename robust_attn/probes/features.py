"""The features protocol: the frozen global descriptor that linear probes read.

A model with a method ``features(x) -> Tensor (B, D)`` declares its descriptor (the zoo's VGG:
the input of its linear classifier(s)). Any other model gets the input of its last ``nn.Linear``
in module order, caught by a forward hook during an ordinary forward pass: for most classifiers
(timm, torchvision, the docs' examples) that is the pooled feature the classifier reads. A
*submodule* named ``features`` (torchvision's and the docs' convolutional trunks, which return
(B, C, H, W) maps) is not the protocol and gets the fallback too.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from robust_attn.data.dataset import ImageDataset
from robust_attn.errors import ModelError
from robust_attn.protocols import has_features

BATCH = 256


class FeatureProtocolError(ModelError):
    """``features(x)`` returned something other than a (B, D) tensor, or the model has no descriptor."""


def last_linear(model: nn.Module) -> nn.Linear | None:
    """The last ``nn.Linear`` in module order (``model.modules()``), or None."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return linears[-1] if linears else None


def _hooked_features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The input of the model's last nn.Linear during ``model(x)``, flattened to (B, D)."""
    layer = last_linear(model)
    if layer is None:
        raise FeatureProtocolError(
            f"{type(model).__name__} has neither a features(x) method nor an nn.Linear layer; add features(x) -> (B, D) (docs/extending.md)"
        )
    seen: list[torch.Tensor] = []
    handle = layer.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0].detach()))
    try:
        model(x)
    finally:
        handle.remove()
    if not seen:
        raise FeatureProtocolError(f"{type(model).__name__}'s last nn.Linear is not called by forward; add features(x) -> (B, D)")
    return seen[-1].flatten(1)


def model_features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The descriptor of a batch, (B, D): ``model.features(x)``, else the last nn.Linear's input."""
    if not has_features(model):
        return _hooked_features(model, x)
    f = model.features(x)  # type: ignore[operator]
    if not isinstance(f, torch.Tensor) or f.dim() != 2 or f.shape[0] != len(x):
        got = tuple(f.shape) if isinstance(f, torch.Tensor) else type(f).__name__
        raise FeatureProtocolError(f"{type(model).__name__}.features(x) must return a (B, D) tensor, got {got}; see docs/extending.md")
    return f


@torch.no_grad()
def extract_features(model: nn.Module, data: ImageDataset, device: torch.device | str | None = None, batch_size: int = BATCH) -> np.ndarray:
    """Descriptors (N, D) float32 of every image of ``data``, in eval mode without gradients (the
    model's mode is restored afterwards)."""
    if device is None:
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
    was_training = model.training
    model.eval()
    try:
        parts = [model_features(model, x.to(device)).float().cpu().numpy() for _, x, _ in data.batches(batch_size)]
    finally:
        model.train(was_training)
    return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)
