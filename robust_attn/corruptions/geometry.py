"""Batched bilinear resampling: OpenCV's ``warpAffine`` and scipy's ``map_coordinates(order=1)``."""

from __future__ import annotations

from typing import Literal

import numpy as np

_NUMPY_PAD: dict[str, Literal["reflect", "symmetric", "edge"]] = {"mirror": "reflect", "reflect": "symmetric", "nearest": "edge"}
"""Border modes by their scipy names: ``mirror`` is OpenCV's reflect-101 (d c b | a b c d | c b a),
``reflect`` scipy's half-sample symmetric (c b a | a b c d | d c b), ``nearest`` repeats the edge."""


def bilinear(images: np.ndarray, rows: np.ndarray, cols: np.ndarray, mode: str) -> np.ndarray:
    """Sample a batch (N, H, W, C) at per-image coordinates ``rows``, ``cols`` (N, H', W') by
    linear interpolation of the border-extended image; returns (N, H', W', C) float32.

    The batch is padded (numpy's pad modes match the border modes) by as much as the
    coordinates leave the image, so the four neighbours are plain ``np.take`` gathers.
    """
    n, h, w, c = images.shape
    r0, c0 = np.floor(rows), np.floor(cols)
    fr, fc = (rows - r0).astype(np.float32)[..., None], (cols - c0).astype(np.float32)[..., None]
    pad = int(max(1, -r0.min(), r0.max() + 2 - h, -c0.min(), c0.max() + 2 - w))
    padded = np.pad(images.astype(np.float32, copy=False), [(0, 0), (pad, pad), (pad, pad), (0, 0)], mode=_NUMPY_PAD[mode])
    hp, wp = h + 2 * pad, w + 2 * pad
    base = (np.arange(n) * (hp * wp)).reshape((n,) + (1,) * (rows.ndim - 1))
    idx = base + (r0.astype(np.int64) + pad) * wp + (c0.astype(np.int64) + pad)
    flat = padded.reshape(-1, c)

    def at(offset: int) -> np.ndarray:
        return np.take(flat, idx + offset, axis=0)

    top, bottom = at(0), at(wp)
    top += (at(1) - top) * fc
    bottom += (at(wp + 1) - bottom) * fc
    return top + (bottom - top) * fr


def affine_from_points(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """``cv2.getAffineTransform`` for a batch: (N, 3, 2) point triples (x, y) -> (N, 2, 3) maps."""
    ones = np.ones((*src.shape[:-1], 1))
    a = np.concatenate([src, ones], axis=-1).astype(np.float64)  # (N, 3, 3)
    return np.linalg.solve(a, dst.astype(np.float64)).transpose(0, 2, 1)


def warp_affine(images: np.ndarray, maps: np.ndarray) -> np.ndarray:
    """``cv2.warpAffine(img, M, (W, H), borderMode=BORDER_REFLECT_101)`` (bilinear) for a batch.

    OpenCV inverts M and samples the source at M^-1 (x, y) on a 1/32-pixel grid: it rounds
    the coordinate to 1/1024 pixel in fixed point, adds half a grid step and shifts down to
    1/32. That grid is reproduced here; it matches OpenCV 4.8 to 1e-7 (OpenCV up to 4.10, as
    used for CIFAR-10-C; OpenCV 5 samples at the exact coordinate instead).
    """
    h, w = images.shape[1:3]
    linear, shift = maps[:, :, :2], maps[:, :, 2:]
    inv = np.linalg.inv(linear)
    inv_shift = -inv @ shift  # (N, 2, 1)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)

    def coordinate(k: int) -> np.ndarray:
        along_x = np.rint(inv[:, k, 0, None, None] * x * 1024)
        along_y = np.rint((inv[:, k, 1, None, None] * y + inv_shift[:, k, 0, None, None]) * 1024)
        return np.floor((along_x + along_y + 16) / 32) / 32

    return bilinear(images, coordinate(1), coordinate(0), "mirror")
