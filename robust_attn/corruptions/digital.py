"""Digital corruptions: contrast, elastic transform, pixelate and JPEG.

Elastic's parameters are fractions of the image side and pixelate's of the image size; the
parameter set (:mod:`.parameters`) gives the fractions, the contrast factors and JPEG qualities.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from robust_attn.corruptions import filters, geometry
from robust_attn.corruptions._common import Generators, per_image, to_unit, unit_to_uint8
from robust_attn.corruptions.parameters import ParameterSet


def contrast(images: np.ndarray, severity: int, rngs: Generators, params: ParameterSet) -> np.ndarray:
    """(x - m) c + m with m each image's per-channel mean."""
    c = params.contrast[severity - 1]
    x = to_unit(images)
    means = x.mean(axis=(1, 2), keepdims=True)
    return unit_to_uint8((x - means) * c + means)


def elastic_transform(images: np.ndarray, severity: int, rngs: Generators, params: ParameterSet) -> np.ndarray:
    """A random affine warp of three points (OpenCV, reflect-101 border), then a displacement
    field of Gaussian-smoothed U(-1, 1) noise times alpha, resampled bilinearly with scipy's
    ``map_coordinates(order=1, mode='reflect')``."""
    n, h, w = images.shape[:3]
    alpha, sigma, affine = params.elastic(severity, min(h, w))
    centre = np.array([h, w], dtype=np.float32) // 2
    side = min(h, w) // 3
    src = np.array([centre + side, [centre[0] + side, centre[1] - side], centre - side], dtype=np.float32)
    jitter = per_image(rngs, lambda rng: rng.uniform(-affine, affine, size=(3, 2)).astype(np.float32))
    noise = per_image(rngs, lambda rng: rng.uniform(-1, 1, size=(2, h, w)))
    maps = geometry.affine_from_points(np.broadcast_to(src, jitter.shape), src + jitter)
    warped = geometry.warp_affine(to_unit(images, np.float32), maps)
    field = filters.gaussian_blur(noise.reshape(n * 2, h, w), sigma, mode="reflect", truncate=3) * alpha
    dx, dy = field.reshape(n, 2, h, w).astype(np.float32).transpose(1, 0, 2, 3)
    y, x = np.mgrid[0:h, 0:w]
    out = geometry.bilinear(warped, y + dy.astype(np.float64), x + dx.astype(np.float64), "reflect")
    return unit_to_uint8(out)


def _pil_images(images: np.ndarray) -> list[Image.Image]:
    """One Pillow image per (H, W, C) array: mode L for one channel, RGB for three."""
    return [Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img) for img in images]


def _stack(pictures: list[Image.Image], channels: int) -> np.ndarray:
    arrays = np.stack([np.asarray(p) for p in pictures])
    return arrays[..., None] if channels == 1 else arrays


def pixelate(images: np.ndarray, severity: int, rngs: Generators, params: ParameterSet) -> np.ndarray:
    """Pillow's BOX resize to int(size * c) pixels and back (30, 28, 27, 24, 20 at 32x32; 134,
    112, 89, 67, 56 at 224x224)."""
    c = params.pixelate[severity - 1]
    h, w = images.shape[1:3]
    small = (int(w * c), int(h * c))
    out = [p.resize(small, Image.Resampling.BOX).resize((w, h), Image.Resampling.BOX) for p in _pil_images(images)]
    return _stack(out, images.shape[-1])


def jpeg_compression(images: np.ndarray, severity: int, rngs: Generators, params: ParameterSet) -> np.ndarray:
    """A Pillow JPEG round trip at the severity's quality (Pillow's default 4:2:0 chroma
    subsampling for RGB; a grey image is saved as a one-channel JPEG)."""
    quality = params.jpeg_compression[severity - 1]
    out = []
    for picture in _pil_images(images):
        buffer = io.BytesIO()
        picture.save(buffer, format="JPEG", quality=quality)
        buffer.seek(0)
        out.append(Image.open(buffer).convert(picture.mode))
    return _stack(out, images.shape[-1])
