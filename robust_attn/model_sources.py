"""The registry of model sources: each kind of model reference (a zoo name, a checkpoint file, an
import spec, another hub's name) is a :class:`ModelSource` that declares which references it
serves and how to check, load and describe them. :mod:`robust_attn.resolve` holds the built-in
sources, resolves references through this registry, and turns each source's record into the
model's card (:class:`robust_attn.card.ModelCard`), which is all the rest of the suite reads."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch.nn as nn


@dataclass(frozen=True)
class ModelSource:
    """One kind of model reference."""

    name: str
    matches: Callable[[str], bool]
    check: Callable[[str], None]  # cheap validation before any work; raises ModelError naming the fix
    load: Callable[..., tuple[nn.Module, dict[str, Any]]]  # (ref, device, **options) -> (eval-mode model, its record)
    recorded: Callable[[str], dict[str, Any] | None]  # its record without weights (dataset, image_shape, classes, ...); None: unknown
    skeleton: Callable[[str], nn.Module | None]  # the architecture without trained weights (None: only by loading)
    # a spec's model table -> (the reference that names the model exactly, the options left for load); context holds the
    # spec's data set and threat models, for sources whose references default to them
    qualify: Callable[[str, dict[str, Any], dict[str, Any]], tuple[str, dict[str, Any]]] | None = None
    user_code: bool = False  # loading runs the user's code (an import spec): built once, in the sweep's checks, kept until its turn
    kind: str = ""  # what the model card names as its source (zoo, checkpoint, import, timm, robustbench)


_SOURCES: list[ModelSource] = []


def register_source(source: ModelSource) -> None:
    """Add a model source; later registrations are tried first (they may serve narrower references)."""
    _SOURCES[:] = [s for s in _SOURCES if s.name != source.name]
    _SOURCES.insert(0, source)
