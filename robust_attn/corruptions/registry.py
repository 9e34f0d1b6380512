"""The 15 common corruptions of CIFAR-10-C and ImageNet-C and the one entry point that applies them.

Hendrycks & Dietterich, "Benchmarking Neural Network Robustness to Common Corruptions and
Perturbations" (ICLR 2019), with the parameters of their script for the image size
(:mod:`.parameters`: CIFAR's for 32x32, ImageNet-C's for 224x224, ...). Each image's random
draws come from its own generator, seeded by (seed, corruption, severity, sample id), so an
image is corrupted the same way whatever batch or rank it is processed in.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from robust_attn.corruptions import blur, digital, noise, weather
from robust_attn.corruptions._common import CorruptionFn
from robust_attn.corruptions.parameters import get_parameter_set, nearest_set
from robust_attn.errors import DataError, SpecError

SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)
FAMILIES: tuple[str, ...] = ("noise", "blur", "weather", "digital")
MIN_SIZE = 16
CHUNK = 512  # 32x32 images per inner call (fewer larger ones): keeps the float working copies in cache-sized blocks


@dataclass(frozen=True)
class Corruption:
    """One corruption: its CIFAR-10-C / ImageNet-C name, family, function and whether it draws noise."""

    name: str
    family: str
    apply: CorruptionFn
    random: bool


_TABLE: tuple[Corruption, ...] = (
    Corruption("gaussian_noise", "noise", noise.gaussian_noise, True),
    Corruption("shot_noise", "noise", noise.shot_noise, True),
    Corruption("impulse_noise", "noise", noise.impulse_noise, True),
    Corruption("defocus_blur", "blur", blur.defocus_blur, False),
    Corruption("glass_blur", "blur", blur.glass_blur, True),
    Corruption("motion_blur", "blur", blur.motion_blur, True),
    Corruption("zoom_blur", "blur", blur.zoom_blur, False),
    Corruption("snow", "weather", weather.snow, True),
    Corruption("frost", "weather", weather.frost, True),
    Corruption("fog", "weather", weather.fog, True),
    Corruption("brightness", "weather", weather.brightness, False),
    Corruption("contrast", "digital", digital.contrast, False),
    Corruption("elastic_transform", "digital", digital.elastic_transform, True),
    Corruption("pixelate", "digital", digital.pixelate, False),
    Corruption("jpeg_compression", "digital", digital.jpeg_compression, False),
)
REGISTRY: dict[str, Corruption] = {c.name: c for c in _TABLE}
CORRUPTIONS: tuple[str, ...] = tuple(REGISTRY)
CORRUPTION_FAMILIES: dict[str, str] = {c.name: c.family for c in _TABLE}


def get_corruption(name: str) -> Corruption:
    """The registry entry of ``name``; a one-line SpecError naming the known ones otherwise."""
    if name not in REGISTRY:
        raise SpecError(f"unknown corruption {name!r}; known: {', '.join(CORRUPTIONS)}")
    return REGISTRY[name]


def check_severity(severity: object) -> int:
    """``severity`` as an int in 1..5, or a one-line SpecError."""
    if isinstance(severity, bool) or not isinstance(severity, int | np.integer) or int(severity) not in SEVERITIES:
        raise SpecError(f"corruption severity must be one of 1, 2, 3, 4, 5, got {severity!r}")
    return int(severity)


def _check_images(images: object) -> np.ndarray:
    arr = np.asarray(images)
    if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[1] not in (1, 3):
        raise DataError(
            f"corruptions need uint8 images (N, C, H, W) with C = 1 or 3, got {arr.dtype} {arr.shape}; convert with .numpy() or np.uint8"
        )
    if min(arr.shape[2:]) < MIN_SIZE:
        raise DataError(f"corruptions need images of at least {MIN_SIZE}x{MIN_SIZE} pixels, got {arr.shape[2]}x{arr.shape[3]}")
    return arr


def _check_ids(sample_ids: object, n: int) -> np.ndarray:
    ids = np.asarray(sample_ids)
    if ids.shape != (n,) or (n and (ids.dtype.kind not in "iu" or ids.min() < 0)):
        raise ValueError(f"sample_ids must be {n} non-negative integers, one per image, got {ids.dtype} {ids.shape}")
    return ids.astype(np.int64)


def corruption_key(name: str) -> int:
    """A stable integer for the name (CRC-32), so seeds do not depend on the table's order."""
    return zlib.crc32(name.encode())


def generators(seed: int, name: str, severity: int, sample_ids: np.ndarray) -> list[np.random.Generator]:
    """One PCG64 generator per image, from the entropy (seed, corruption, severity, sample id)."""
    key = corruption_key(name)
    return [np.random.default_rng([seed, key, severity, int(i)]) for i in sample_ids]


def chunk_size(height: int, width: int) -> int:
    """Images per inner call: ``CHUNK`` at 32x32, as many pixels at other sizes (10 at 224x224)."""
    return max(1, CHUNK * 32 * 32 // (height * width))


def corrupt(
    images: np.ndarray, name: str, severity: int, *, seed: int, sample_ids: np.ndarray, parameters: str | None = None
) -> np.ndarray:
    """Corrupt uint8 images (N, C, H, W), C = 1 or 3, H and W >= 16, with ``name`` at ``severity``.

    Returns uint8 (N, C, H, W). The parameters are those of the reference script whose image side
    is nearest to min(H, W) (``parameter_set(images.shape)``: CIFAR-10-C's up to 45 pixels,
    ImageNet-C's from 120 to 258, ...), or the set named by ``parameters``. Image i's random
    draws come from (seed, name, severity, sample_ids[i]) alone, so any split of a data set into
    batches or ranks gives the same images.
    """
    entry = get_corruption(name)
    severity = check_severity(severity)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise SpecError(f"corruption seed must be a non-negative integer, got {seed!r}")
    arr = _check_images(images)
    ids = _check_ids(sample_ids, len(arr))
    params = nearest_set(min(arr.shape[2:])) if parameters is None else get_parameter_set(parameters)
    hwc = np.ascontiguousarray(arr.transpose(0, 2, 3, 1))
    out = np.empty_like(hwc)
    chunk = chunk_size(*hwc.shape[1:3])
    for start in range(0, len(hwc), chunk):
        part = slice(start, start + chunk)
        rngs = generators(int(seed), name, severity, ids[part]) if entry.random else []
        out[part] = entry.apply(hwc[part], severity, rngs, params)
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))
