"""Conversions and types shared by every corruption module.

Corruptions work on channels-last batches (N, H, W, C), the layout of the reference code,
which handles one (H, W, C) PIL image at a time. Each image has its own random generator, so
the random draws of an image never depend on the other images of its batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from robust_attn.corruptions.parameters import ParameterSet

Generators = Sequence[np.random.Generator]
CorruptionFn = Callable[[np.ndarray, int, Generators, ParameterSet], np.ndarray]
"""(images uint8 (N, H, W, C), severity 1-5, one generator per image, the parameter set) -> uint8 (N, H, W, C)."""


def to_unit(images: np.ndarray, dtype: type = np.float64) -> np.ndarray:
    """uint8 images as floats in [0, 1]: the reference's ``np.array(x) / 255.``, in float64 as
    there (float32 where the reference converts with ``np.float32``)."""
    return np.divide(images, 255.0, dtype=dtype)


def unit_to_uint8(x: np.ndarray) -> np.ndarray:
    """The reference's ``np.uint8(np.clip(x, 0, 1) * 255)``: clip, scale and truncate."""
    return levels_to_uint8(np.clip(x, 0, 1) * 255)


def levels_to_uint8(x: np.ndarray) -> np.ndarray:
    """``np.uint8`` of a float image in grey levels [0, 255], truncating as the reference does."""
    return np.clip(x, 0, 255).astype(np.uint8)


def imagemagick_to_uint8(x: np.ndarray) -> np.ndarray:
    """How an ImageMagick 6 Q16 result in grey levels comes back from its 8-bit PNG: rounded to
    the 16-bit quantum (v * 257), then truncated to 8 bits (measured with ImageMagick 6.9.11)."""
    return (np.rint(np.clip(x, 0, 255) * 257).astype(np.int32) // 257).astype(np.uint8)


def luma(x: np.ndarray) -> np.ndarray:
    """Grey value (N, H, W, 1) of RGB images with OpenCV's RGB2GRAY weights; grey images as is."""
    if x.shape[-1] == 1:
        return x
    weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return (x @ weights)[..., None]


def per_image(rngs: Generators, draw: Callable[[np.random.Generator], np.ndarray]) -> np.ndarray:
    """Stack one draw per image, each from that image's own generator."""
    return np.stack([draw(rng) for rng in rngs])
