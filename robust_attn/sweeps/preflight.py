"""Model-data compatibility, checked for every model before a sweep does any work.

Checkpoints and zoo entries record the data set, image shape and classes they were trained on;
other models (``package.module:factory``) get one dry forward pass on a batch of the sweep's
data. A mismatch is a one-line error naming both sides and the fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from robust_attn.data import ImageDataset


class ModelDataMismatch(ValueError):
    """A model that cannot be evaluated on the sweep's data."""


def _describe(dataset: str, shape: tuple[int, ...] | list[int] | None, classes: int | None) -> str:
    dims = "x".join(str(d) for d in shape) if shape else "?"
    return f"{dataset} ({dims} images, {classes if classes is not None else '?'} classes)"


def check_recorded(ref: str, meta: dict[str, Any], data: ImageDataset) -> None:
    """Compare what a checkpoint (or zoo entry) was trained on with the sweep's data."""
    shape = meta.get("image_shape")
    classes = meta.get("classes")
    n_classes = len(classes) if isinstance(classes, list) else None
    trained = meta.get("dataset")
    ours = _describe(data.name, list(data.image_shape), len(data.classes))
    theirs = _describe(str(trained), shape, n_classes)
    mismatched = (
        (trained is not None and str(trained) != data.name)
        or (shape is not None and list(shape) != list(data.image_shape))
        or (n_classes is not None and n_classes != len(data.classes))
    )
    if mismatched:
        raise ModelDataMismatch(
            f"model {ref!r} was trained on {theirs} but the sweep's data is {ours}; "
            f"set dataset = {str(trained)!r} in the spec, or sweep a model trained on {data.name}"
        )


def check_forward(ref: str, model: nn.Module, data: ImageDataset, device: torch.device, batch: int = 4) -> None:
    """One dry forward pass: the model must take the data's images and return one logit per class."""
    _, x, _ = next(data.subset(batch).batches(batch))
    ours = _describe(data.name, list(data.image_shape), len(data.classes))
    try:
        with torch.inference_mode():
            out = model(x.to(device))
    except (RuntimeError, ValueError, TypeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelDataMismatch(
            f"model {ref!r} fails on the sweep's data, {ours}: {first}; check the data set or the model's input layer"
        ) from None
    if not isinstance(out, torch.Tensor) or out.shape != (x.shape[0], len(data.classes)):
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ModelDataMismatch(
            f"model {ref!r} returns {got} for a batch of {x.shape[0]}, but the sweep's data {ours} needs logits of shape "
            f"({x.shape[0]}, {len(data.classes)}); return one logit per class (logits only, not a tuple)"
        )


def recorded_metadata(ref: str) -> dict[str, Any] | None:
    """What a zoo entry or checkpoint file records about its training data, without training
    or loading weights; None for import specs."""
    from robust_attn.checkpoint import read_metadata
    from robust_attn.data import load_dataset
    from robust_attn.zoo import get_entry, is_zoo_ref

    if is_zoo_ref(ref):
        entry = get_entry(ref)
        if entry.dataset == "builtin":
            sample = load_dataset("builtin", "test", n=1)
            return {"dataset": "builtin", "image_shape": list(sample.image_shape), "classes": list(sample.classes)}
        return {"dataset": entry.dataset}
    if ref.endswith(".safetensors") and Path(ref).expanduser().is_file():
        return read_metadata(Path(ref).expanduser())
    return None
