"""Corrupted images for the corruption cells of a sweep: made once per (batch, corruption,
severity) and cached on disk under ``$ROBUST_ATTN_HOME/cache/corruptions``, keyed by the clean
images' bytes and everything else that determines them, so a second model (or a resumed run)
reads them instead of making them again. Data sets that carry published corrupted images
(CIFAR-10-C) serve those instead."""

from __future__ import annotations

import contextlib
import hashlib
import io
from pathlib import Path

import numpy as np

from robust_attn.atomic import atomic_bytes
from robust_attn.data import ImageDataset

CACHE_VERSION = "corruptions-1"  # bump when a corruption's implementation changes its images


def cache_dir() -> Path:
    from robust_attn.zoo import zoo_home

    return zoo_home() / "cache" / "corruptions"


def cache_key(clean: np.ndarray, sample_ids: np.ndarray, corruption: str, severity: int, seed: int) -> str:
    h = hashlib.sha256(f"{CACHE_VERSION}|{corruption}|{severity}|{seed}|{clean.shape}".encode())
    h.update(np.ascontiguousarray(clean).tobytes())
    h.update(np.ascontiguousarray(sample_ids, dtype=np.int64).tobytes())
    return h.hexdigest()[:32]


def corrupted_batch(attack: object, data: ImageDataset, idx: np.ndarray, corruption: str, severity: int, seed: int) -> np.ndarray:
    """uint8 (B, C, H, W): the published images when the data set has them, else made (or read from the cache)."""
    if data.published_corruptions is not None:
        return data.published_corruptions(corruption, severity, idx)
    clean = data.images[idx].numpy()
    path = cache_dir() / f"{cache_key(clean, idx, corruption, severity, seed)}.npy"
    if path.is_file():
        try:
            return np.load(path)
        except (OSError, ValueError):  # a damaged cache file is made again
            pass
    images = attack.corrupted(clean, corruption, severity, idx)  # type: ignore[attr-defined]
    buf = io.BytesIO()
    np.save(buf, images)
    with contextlib.suppress(OSError):  # the cache is an optimisation: a full or read-only cache folder only costs time
        atomic_bytes(path, buf.getvalue())
    return images
