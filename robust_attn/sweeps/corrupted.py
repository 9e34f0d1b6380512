"""Corrupted images for the corruption cells of a sweep: made once per (batch, corruption,
severity) and cached on disk under ``$ROBUST_ATTN_HOME/cache/corruptions``, keyed by the clean
images' bytes and everything else that determines them, so a second model (or a resumed run)
reads them instead of making them again. Data sets that carry published corrupted images
(CIFAR-10-C) serve those instead.

Each cache file is verified on every read (:mod:`robust_attn.verified`: its size, the sha256 of
its images, the key and shape it was made for). Images are cheap to make again, so a damaged,
unreadable or mismatched file is remade and replaced, with a printed note naming it and why;
it is never read as if it were right. Files of format ``corruptions-1`` (bare ``.npy``, no
checksum) are not read at all.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from robust_attn import verified
from robust_attn.corruptions.evaluation import CommonCorruptions
from robust_attn.data import ImageData

CACHE_VERSION = (
    "corruptions-3"  # bump when a corruption's implementation changes its images (2: verified safetensors; 3: the parameter set in the key)
)
METADATA_KEY = "robust_attn_corruptions"
IMAGES = "images"
CORRUPTED_IMAGES = verified.Entry(METADATA_KEY, "cached corrupted images", "it is made again", contents="images")


def cache_dir() -> Path:
    from robust_attn.zoo import zoo_home

    return zoo_home() / "cache" / "corruptions"


def cache_key(clean: np.ndarray, sample_ids: np.ndarray, corruption: str, severity: int, seed: int) -> str:
    from robust_attn.corruptions import parameter_set

    h = hashlib.sha256(f"{CACHE_VERSION}|{corruption}|{severity}|{seed}|{clean.shape}|{parameter_set(clean.shape[1:])}".encode())
    h.update(np.ascontiguousarray(clean).tobytes())
    h.update(np.ascontiguousarray(sample_ids, dtype=np.int64).tobytes())
    return h.hexdigest()[:32]


def cache_path(key: str) -> Path:
    return cache_dir() / f"{key}.safetensors"


def read_cached(path: Path, key: str, shape: tuple[int, ...]) -> tuple[np.ndarray | None, str | None]:
    """(the cached images, None) when the file is there and right; (None, why it cannot be used)
    when it is damaged, unreadable or made for something else; (None, None) when there is none."""
    try:
        got = verified.read_tensors(path, CORRUPTED_IMAGES)
    except verified.EntryError as err:
        return None, f"it could not be read ({err.why})" if err.unreadable else f"it was {err.why}"
    if got is None:
        return None, None
    tensors, meta = got
    images = tensors.get(IMAGES)
    if meta.get("key") != key:
        return None, f"it holds the images of another cache entry ({meta.get('key')!r})"
    if images is None or images.dtype != torch.uint8 or tuple(images.shape) != tuple(shape):
        found = f"{str(images.dtype).removeprefix('torch.')} images of shape {tuple(images.shape)}" if images is not None else "no images"
        return None, f"it holds {found}, expected uint8 images of shape {tuple(shape)}"
    return images.numpy(), None


def store(path: Path, key: str, images: np.ndarray, record: dict[str, object], why: str | None) -> None:
    """Write the images (the cache is an optimisation: a full or read-only cache folder only costs
    time); a file that replaces an unusable one is announced with why."""
    try:
        verified.write(path, {IMAGES: torch.from_numpy(np.ascontiguousarray(images))}, {"key": key, **record}, CORRUPTED_IMAGES)
    except OSError as err:
        if why is not None:
            print(
                f"note: the cached corrupted images {path} cannot be used ({why}) nor replaced ({err.strerror or err}); "
                "they are made anew on every run until that file is deleted",
                flush=True,
            )
        return
    if why is not None:
        print(f"note: remade the cached corrupted images {path}: {why}", flush=True)


def corrupted_batch(
    evaluation: CommonCorruptions, data: ImageData, idx: np.ndarray, clean: np.ndarray, corruption: str, severity: int, seed: int
) -> np.ndarray:
    """uint8 (B, C, H, W): the published images when the data set has them, else read from the
    cache (verified) or made."""
    if data.published_corruptions is not None:
        return data.published_corruptions(corruption, severity, idx)
    key = cache_key(clean, idx, corruption, severity, seed)
    path = cache_path(key)
    cached, why = read_cached(path, key, clean.shape)
    if cached is not None:
        return cached
    images = evaluation.corrupted(clean, corruption, severity, idx)
    store(path, key, images, {"corruption": corruption, "severity": int(severity), "seed": int(seed)}, why)
    return images
