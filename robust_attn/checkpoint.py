"""Checkpoints: safetensors weights with JSON metadata in the same file; never unpickled.

The metadata carries the sha256 of the weights (and of any extra tensors, such as a resumable
run's optimiser state); every load checks it (:mod:`robust_attn.verified`), so a file damaged
on disk is a one-line :class:`CheckpointError`, never a model with wrong weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from robust_attn import verified
from robust_attn.errors import CheckpointError
from robust_attn.models import create_model, list_models
from robust_attn.verified import file_sha256 as file_sha256  # re-exported: callers hash checkpoint files
from robust_attn.verified import tensors_sha256

METADATA_KEY = "robust_attn"
FORMAT_VERSION = 1
EXTRA_PREFIX = "extra."


def weights_sha256(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 over tensor names, dtypes, shapes and bytes in name order."""
    return tensors_sha256(state)


def split_weights(tensors: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(the model's weights, without a DataParallel ``module.`` prefix; the ``extra.`` tensors)."""
    weights = {k.removeprefix("module."): v for k, v in tensors.items() if not k.startswith(EXTRA_PREFIX)}
    return weights, {k: v for k, v in tensors.items() if k.startswith(EXTRA_PREFIX)}


CHECKPOINT = verified.Entry(
    METADATA_KEY, "checkpoint", "delete it and retrain", "make it readable (chmod a+r), or copy it somewhere you can read", split_weights
)
"""A checkpoint file the user names; the zoo describes its cached ones with its own fix."""


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}


def save_checkpoint(
    path: str | Path, model: nn.Module, metadata: dict[str, Any], extra: dict[str, torch.Tensor] | None = None
) -> dict[str, Any]:
    """Write ``model``'s weights (and ``extra`` tensors, e.g. optimiser state) with metadata, atomically.

    The model must come from :func:`robust_attn.create_model` so its name and kwargs can be
    recorded. Returns the metadata as written (with ``weights_sha256``, and ``extra_sha256``
    when there are extra tensors).
    """
    meta = {
        "format": FORMAT_VERSION,
        "model": getattr(model, "model_name", None),
        "model_kwargs": getattr(model, "model_kwargs", {}),
        **metadata,
    }
    if meta["model"] is None:
        raise CheckpointError("model has no registry name; build it with robust_attn.create_model")
    tensors = _state(model)
    for k, v in (extra or {}).items():
        tensors[f"{EXTRA_PREFIX}{k}"] = v
    return verified.write(path, tensors, meta, CHECKPOINT)


def _missing(path: Path) -> CheckpointError:
    return CheckpointError(f"checkpoint {str(path)!r} does not exist; train it first (robust-attn train / zoo train)")


def read_metadata(path: str | Path, entry: verified.Entry = CHECKPOINT) -> dict[str, Any]:
    """The JSON metadata of a checkpoint, read from the header only (its structure and size are
    checked; its weights are not read: :func:`verify_checkpoint` does that)."""
    meta = verified.read_header(path, entry)
    if meta is None:
        raise _missing(Path(path))
    return meta


def verify_checkpoint(path: str | Path, entry: verified.Entry = CHECKPOINT) -> dict[str, Any]:
    """The metadata of a checkpoint whose weights pass their sha256 check (remembered until the file changes)."""
    meta = verified.verify(path, entry)
    if meta is None:
        raise _missing(Path(path))
    return meta


def load_checkpoint(
    path: str | Path, device: str | torch.device = "cpu", entry: verified.Entry = CHECKPOINT
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model a checkpoint describes, verify its weights, and load them (eval mode)."""
    model, meta, _ = load_checkpoint_with_extra(path, device, entry)
    return model, meta


def load_checkpoint_with_extra(
    path: str | Path, device: str | torch.device = "cpu", entry: verified.Entry = CHECKPOINT
) -> tuple[nn.Module, dict[str, Any], dict[str, torch.Tensor]]:
    """As :func:`load_checkpoint`, plus the extra tensors saved beside the weights."""
    meta = read_metadata(path, entry)
    name = meta.get("model")
    if name not in list_models():
        raise CheckpointError(f"checkpoint {str(path)!r} is for unknown architecture {name!r}; known: {', '.join(list_models())}")
    got = verified.read_tensors(path, entry)
    if got is None:
        raise _missing(Path(path))
    state, extra = split_weights(got[0])
    model = create_model(name, **meta.get("model_kwargs", {}))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        first = str(err).strip().splitlines()
        raise CheckpointError(f"checkpoint {str(path)!r} does not fit {name} {meta.get('model_kwargs')}: {' '.join(first[:2])}") from None
    model.to(device).eval()
    return model, meta, {k[len(EXTRA_PREFIX) :]: v for k, v in extra.items()}
