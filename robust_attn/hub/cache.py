"""The suite's cache of converted hub weights: ``$ROBUST_ATTN_HOME/hub/<source>/...safetensors``.

An original file (a RobustBench ``.pt``, a timm checkpoint) is read, verified and fitted once;
the fitted state dict is written as safetensors with JSON metadata (source, name, data set, threat
model, the sha256 of the original file and of the weights, and the original's size and mtime).
Later loads read only the cache: the original is not opened again while its size and mtime are
unchanged (or when it is gone), and the cache's own weights are checked against their sha256.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from robust_attn.atomic import atomic_write
from robust_attn.checkpoint import file_sha256, weights_sha256
from robust_attn.errors import CheckpointError

METADATA_KEY = "robust_attn_hub"
FORMAT_VERSION = 1


def hub_home() -> Path:
    """``$ROBUST_ATTN_HOME/hub`` (see :func:`robust_attn.zoo.zoo_home`)."""
    from robust_attn.zoo import zoo_home

    return zoo_home() / "hub"


def original_stamp(path: Path) -> dict[str, Any]:
    """What identifies an original file without reading it: its path, size and mtime."""
    st = path.stat()
    return {"path": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def original_record(paths: list[Path]) -> dict[str, Any]:
    """Stamps and sha256 of the original files (read once, at conversion)."""
    return {"originals": [original_stamp(p) for p in paths], "original_sha256": [file_sha256(p) for p in paths]}


def read_cache_metadata(cache: Path) -> dict[str, Any] | None:
    """The metadata of a cache file, or None when there is none or it is unreadable (then it is rebuilt)."""
    if not cache.is_file():
        return None
    try:
        with safe_open(str(cache), framework="pt") as f:
            raw = (f.metadata() or {}).get(METADATA_KEY)
        meta = json.loads(raw) if raw else None
    except (SafetensorError, OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) and meta.get("format") == FORMAT_VERSION else None


def is_current(meta: dict[str, Any], originals: list[Path]) -> bool:
    """Whether a cache entry still stands for ``originals``: each is gone, or unchanged since conversion."""
    stamps = meta.get("originals", [])
    if len(stamps) != len(originals):
        return False
    for path, stamp in zip(originals, stamps):
        if path.is_file():
            now = original_stamp(path)
            if (now["size"], now["mtime_ns"]) != (stamp.get("size"), stamp.get("mtime_ns")):
                return False
    return True


def write_cache(cache: Path, state: dict[str, torch.Tensor], metadata: dict[str, Any]) -> dict[str, Any]:
    """Write the fitted ``state`` with ``metadata`` (plus format and weights sha256); returns the metadata."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    meta = {"format": FORMAT_VERSION, **metadata, "weights_sha256": weights_sha256(tensors)}
    atomic_write(cache, lambda tmp: save_file(tensors, tmp, metadata={METADATA_KEY: json.dumps(meta)}))
    return meta


def read_cache(cache: Path, meta: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The cached weights, verified against the sha256 in their metadata."""
    try:
        state = load_file(str(cache))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(
            f"hub cache {str(cache)!r} is corrupt ({str(err).splitlines()[0]}); delete it to convert the original again"
        ) from None
    if weights_sha256(state) != meta.get("weights_sha256"):
        raise CheckpointError(
            f"hub cache {str(cache)!r} fails its sha256 check (weights changed or damaged); delete it to convert the original again"
        )
    return state
