"""What a model can expose beyond its logits, as ``typing.Protocol``s: attention maps, a declared
CAM layer, a frozen feature descriptor. A model takes part in a probe because it has the method
or attribute, whatever its name or origin (the zoo's LTPA networks, a user's module, a timm
ViT through its adapter); the sweep checks each protocol once, before any work, and records
what it found in the model's card.
"""

from __future__ import annotations

import inspect
from typing import Protocol, runtime_checkable

import torch
import torch.nn as nn


@runtime_checkable
class AttentionModel(Protocol):
    """``attention_maps(x)`` returns one (B, H, W) map per attended stage (each summing to 1 over
    space, or in [0, 1]); ``attention_stage_names`` (optional) names them."""

    def attention_maps(self, x: torch.Tensor) -> list[torch.Tensor]: ...


@runtime_checkable
class CamModel(Protocol):
    """``cam_layer``: the module whose output maps class activation maps read (else the last conv)."""

    cam_layer: nn.Module


class FeatureModel(Protocol):
    """``features(x)`` returns the frozen global descriptor (B, D) linear probes read (a method:
    torchvision's ``features`` submodule, a convolutional trunk, is not this protocol)."""

    def features(self, x: torch.Tensor) -> torch.Tensor: ...


def has_attention(model: object) -> bool:
    """Whether ``model`` follows the attention protocol (a callable ``attention_maps``)."""
    return isinstance(model, AttentionModel) and callable(getattr(model, "attention_maps", None))


def declares_cam_layer(model: object) -> bool:
    return isinstance(getattr(model, "cam_layer", None), nn.Module)


def has_features(model: object) -> bool:
    """Whether ``model`` declares its descriptor with a method ``features(x)`` (not a submodule)."""
    return inspect.ismethod(getattr(model, "features", None))


def attention_names(model: object, count: int) -> tuple[str, ...]:
    """The model's names for its attended stages (``attention_stage_names``), else s1, s2, ..."""
    names = list(getattr(model, "attention_stage_names", None) or [])
    return tuple(names) if len(names) == count else tuple(f"s{i + 1}" for i in range(count))
