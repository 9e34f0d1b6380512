"""Blur corruptions: defocus, glass, motion and zoom blur.

Their radii and sigmas are in pixels, as the parameter set gives them (:mod:`.parameters`); glass
blur visits the image's own rows and columns and zoom blur's factors are relative to the image.
"""

from __future__ import annotations

import numpy as np
import scipy.ndimage as ndi

from robust_attn.corruptions import filters
from robust_attn.corruptions._common import Generators, imagemagick_to_uint8, per_image, to_unit, unit_to_uint8
from robust_attn.corruptions.parameters import ParameterSet


def disk_kernel(radius: float, alias_blur: float) -> np.ndarray:
    """The reference's ``disk``: a normalised disk of the radius on a 17x17 grid (radii up to 8)
    or a (2 radius + 1)-square grid (larger radii), anti-aliased with ``cv2.GaussianBlur`` of
    sigma ``alias_blur`` over 3x3 or 5x5 pixels (OpenCV's reflect-101 border)."""
    half_grid, half_blur = (8, 1) if radius <= 8 else (radius, 2)
    grid = np.arange(-half_grid, half_grid + 1)
    xx, yy = np.meshgrid(grid, grid)
    disk = (xx**2 + yy**2 <= radius**2).astype(np.float64)
    disk /= disk.sum()
    g = np.exp(-(np.arange(-half_blur, half_blur + 1) ** 2) / (2 * alias_blur**2))
    g /= g.sum()  # OpenCV's getGaussianKernel(ksize, sigma) for sigma > 0
    return ndi.correlate(disk, np.outer(g, g), mode="mirror").astype(np.float32)


def defocus_blur(images: np.ndarray, severity: int, rngs: Generators, params: ParameterSet) -> np.ndarray:
    """Correlation of each channel with the anti-aliased disk, OpenCV's reflect-101 border."""
    kernel = disk_kernel(*params.defocus_blur[severity - 1])
    return unit_to_uint8(filters.correlate_image_axes(to_unit(images), kernel))


def glass_positions(size: int, delta: int) -> np.ndarray:
    """The rows (or columns) the reference's glass-blur loop visits, in its order:
    ``range(size - delta, delta, -1)``."""
    return np.arange(size - delta, delta, -1)


def glass_shuffle(images: np.ndarray, offsets: np.ndarray, delta: int = 1) -> np.ndarray:
    """The reference's local pixel "swap", vectorised over the batch with the same result.

    For h, then w, from the bottom-right corner upwards, the reference runs
    ``x[h, w], x[h', w'] = x[h', w'], x[h, w]`` with (h', w') = (h + dy, w + dx) and dx, dy in
    [-delta, delta). On an (H, W, 3) array both right-hand sides are views, so this copies
    pixel (h', w') into (h, w) and leaves (h', w') as it was: each step writes only its own
    pixel. A pixel therefore ends up with its partner's value at the time of its step: the
    partner's final value if the loop visited the partner before (a later pixel in raster
    order), its value before the pass otherwise. Those chains are resolved by pointer jumping;
    at max delta 1 (all CIFAR severities) partners lie up or left, and a pass is one gather.
    ``offsets`` holds (N, passes, positions, 2) draws of (dx, dy).
    """
    n, h, w = images.shape[:3]
    rows, cols = glass_positions(h, delta), glass_positions(w, delta)
    here = (rows[:, None] * w + cols[None, :]).ravel()
    visited = np.zeros(h * w, dtype=bool)
    visited[here] = True
    base = (np.arange(n) * (h * w))[:, None]
    flat = images.reshape(n * h * w, -1)
    for sweep in range(offsets.shape[1]):
        partner = here[None, :] + offsets[:, sweep, :, 1] * w + offsets[:, sweep, :, 0]
        source = np.tile(np.arange(h * w), (n, 1))
        source[:, here] = partner
        pending = np.zeros((n, h * w), dtype=bool)
        pending[:, here] = visited[partner] & (partner > here[None, :])
        source, pending = (source + base).ravel(), pending.ravel()
        while pending.any():  # pointer jumping: follow partners that were written before
            step = np.flatnonzero(pending)
            source[step], pending[step] = source[source[step]], pending[source[step]]
        flat = flat[source]
    return flat.reshape(images.shape)


def glass_blur(images: np.ndarray, severity: int, rngs: Generators, params: ParameterSet) -> np.ndarray:
    """Gaussian blur, truncation to uint8, local pixel shuffle, Gaussian blur again."""
    sigma, delta, passes = params.glass_blur[severity - 1]
    h, w = images.shape[1:3]
    positions = len(glass_positions(h, delta)) * len(glass_positions(w, delta))
    offsets = per_image(rngs, lambda rng: rng.integers(-delta, delta, size=(passes, positions, 2)))
    blurred = unit_to_uint8(filters.gaussian_blur(to_unit(images), sigma))
    shuffled = glass_shuffle(blurred, offsets, delta)
    return unit_to_uint8(filters.gaussian_blur(to_unit(shuffled), sigma))


def motion_blur(images: np.ndarray, severity: int, rngs: Generators, params: ParameterSet) -> np.ndarray:
    """ImageMagick's ``MotionBlurImage`` (what the reference calls through Wand) at a random
    angle in [-45, 45) degrees, brought back to 8 bits as ImageMagick's PNG output is."""
    radius, sigma = params.motion_blur[severity - 1]
    angles = np.array([rng.uniform(-45, 45) for rng in rngs])
    blurred = filters.motion_blur(images, radius, sigma, angles)
    return imagemagick_to_uint8(blurred)


def zoom_factors(params: ParameterSet, severity: int) -> np.ndarray:
    """The zoom factors exactly as the reference's ``np.arange(1, stop, step)`` produces them."""
    stop, step = params.zoom_blur[severity - 1]
    return np.arange(1, stop, step)


def zoom_blur(images: np.ndarray, severity: int, rngs: Generators, params: ParameterSet) -> np.ndarray:
    """Mean of the image and its centre zoomed by each factor (``clipped_zoom``), applied as one
    sparse linear operator on the flattened pixels."""
    n, h, w, c = images.shape
    operator = filters.zoom_blur_operator(h, w, tuple(float(f) for f in zoom_factors(params, severity)))
    pixels = to_unit(images).transpose(1, 2, 0, 3).reshape(h * w, n * c)
    out = np.asarray(operator @ pixels).reshape(h, w, n, c).transpose(2, 0, 1, 3)
    return unit_to_uint8(out)
