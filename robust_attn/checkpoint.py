"""Checkpoints: safetensors weights with JSON metadata in the same file; never unpickled."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from robust_attn.atomic import atomic_write
from robust_attn.errors import CheckpointError
from robust_attn.models import create_model, list_models

METADATA_KEY = "robust_attn"
FORMAT_VERSION = 1


def weights_sha256(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 over tensor names, dtypes, shapes and bytes in name order."""
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}


def save_checkpoint(
    path: str | Path, model: nn.Module, metadata: dict[str, Any], extra: dict[str, torch.Tensor] | None = None
) -> dict[str, Any]:
    """Write ``model``'s weights (and ``extra`` tensors, e.g. optimiser state) with metadata.

    The model must come from :func:`robust_attn.create_model` so its name and kwargs can be
    recorded. Returns the metadata as written.
    """
    state = _state(model)
    meta = {
        "format": FORMAT_VERSION,
        "model": getattr(model, "model_name", None),
        "model_kwargs": getattr(model, "model_kwargs", {}),
        **metadata,
        "weights_sha256": weights_sha256(state),
    }
    if meta["model"] is None:
        raise CheckpointError("model has no registry name; build it with robust_attn.create_model")
    tensors = dict(state)
    for k, v in (extra or {}).items():
        tensors[f"extra.{k}"] = v.detach().cpu().contiguous()
    atomic_write(Path(path), lambda tmp: save_file(tensors, tmp, metadata={METADATA_KEY: json.dumps(meta)}))
    return meta


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The JSON metadata of a checkpoint, read from the header only."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist; train it first (robust-attn train / zoo train)")
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get(METADATA_KEY)
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"checkpoint {str(path)!r} is corrupt or not a safetensors file ({err}); delete it and retrain") from None
    if raw is None:
        raise CheckpointError(f"checkpoint {str(path)!r} has no robust_attn metadata; it was not written by robust-attn")
    try:
        meta: dict[str, Any] = json.loads(raw)
    except json.JSONDecodeError as err:
        raise CheckpointError(f"checkpoint {str(path)!r} has malformed metadata ({err}); delete it and retrain") from None
    return meta


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model a checkpoint describes, verify its weights, and load them (eval mode)."""
    model, meta, _ = load_checkpoint_with_extra(path, device)
    return model, meta


def load_checkpoint_with_extra(
    path: str | Path, device: str | torch.device = "cpu"
) -> tuple[nn.Module, dict[str, Any], dict[str, torch.Tensor]]:
    """As :func:`load_checkpoint`, plus the extra tensors saved beside the weights."""
    meta = read_metadata(path)
    name = meta.get("model")
    if name not in list_models():
        raise CheckpointError(f"checkpoint {str(path)!r} is for unknown architecture {name!r}; known: {', '.join(list_models())}")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"checkpoint {str(path)!r} is corrupt ({err}); delete it and retrain") from None
    extra = {k[len("extra.") :]: v for k, v in tensors.items() if k.startswith("extra.")}
    state = {k.removeprefix("module."): v for k, v in tensors.items() if not k.startswith("extra.")}
    sha = weights_sha256(state)
    if sha != meta.get("weights_sha256"):
        raise CheckpointError(f"checkpoint {str(path)!r} fails its sha256 check (weights changed or damaged); delete it and retrain")
    model = create_model(name, **meta.get("model_kwargs", {}))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        first = str(err).strip().splitlines()
        raise CheckpointError(f"checkpoint {str(path)!r} does not fit {name} {meta.get('model_kwargs')}: {' '.join(first[:2])}") from None
    model.to(device).eval()
    return model, meta, extra
