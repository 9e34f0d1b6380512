"""Blur corruptions: defocus, glass, motion and zoom blur, at the CIFAR parameters."""

from __future__ import annotations

import numpy as np
import scipy.ndimage as ndi

from robust_attn.corruptions import filters
from robust_attn.corruptions._common import Generators, imagemagick_to_uint8, per_image, to_unit, unit_to_uint8

DEFOCUS_BLUR = ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1))  # disk radius, alias blur
GLASS_BLUR = ((0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2))  # sigma, max delta, iterations
MOTION_BLUR = ((6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5))  # ImageMagick radius, sigma; angle ~ U(-45, 45)
ZOOM_BLUR = (  # zoom factors, exactly as the reference's np.arange calls produce them
    np.arange(1, 1.06, 0.01),
    np.arange(1, 1.11, 0.01),
    np.arange(1, 1.16, 0.01),
    np.arange(1, 1.21, 0.01),
    np.arange(1, 1.26, 0.01),
)


def disk_kernel(radius: float, alias_blur: float) -> np.ndarray:
    """The reference's ``disk``: a normalised 17x17 disk of the radius, anti-aliased with
    ``cv2.GaussianBlur(ksize=3x3, sigmaX=alias_blur)`` (radii up to 8, which covers CIFAR)."""
    if radius > 8:
        raise ValueError(f"disk radius {radius} > 8 is not a CIFAR parameter")
    grid = np.arange(-8, 9)
    xx, yy = np.meshgrid(grid, grid)
    disk = (xx**2 + yy**2 <= radius**2).astype(np.float64)
    disk /= disk.sum()
    g = np.exp(-(np.arange(-1, 2) ** 2) / (2 * alias_blur**2))
    g /= g.sum()  # OpenCV's getGaussianKernel(3, sigma) for sigma > 0
    return ndi.correlate(disk, np.outer(g, g), mode="mirror").astype(np.float32)


def defocus_blur(images: np.ndarray, severity: int, rngs: Generators) -> np.ndarray:
    """Correlation of each channel with the anti-aliased disk, OpenCV's reflect-101 border."""
    kernel = disk_kernel(*DEFOCUS_BLUR[severity - 1])
    return unit_to_uint8(filters.correlate_image_axes(to_unit(images), kernel))


def glass_positions(size: int, delta: int) -> np.ndarray:
    """The rows (or columns) the reference's glass-blur loop visits, in its order:
    ``range(size - delta, delta, -1)``."""
    return np.arange(size - delta, delta, -1)


def glass_shuffle(images: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """The reference's local pixel "swap", vectorised over the batch with the same result.

    For h, then w, from the bottom-right corner upwards, the reference runs
    ``x[h, w], x[h', w'] = x[h', w'], x[h, w]`` with (h', w') = (h + dy, w + dx) and dx, dy in
    {-1, 0} (max delta 1 at every CIFAR severity). On an (H, W, 3) array both right-hand sides
    are views, so this copies pixel (h', w') into (h, w) and leaves (h', w') as it was. (h', w')
    lies up or left of (h, w), so the loop reaches it later: within one pass every visited pixel
    takes the value its neighbour had before the pass. One pass is therefore one gather.
    ``offsets`` holds (N, passes, positions, 2) draws of (dx, dy).
    """
    n, h, w = images.shape[:3]
    rows, cols = glass_positions(h, 1), glass_positions(w, 1)
    here = (rows[:, None] * w + cols[None, :]).ravel()
    flat = images.reshape(n, h * w, -1)
    for sweep in range(offsets.shape[1]):
        source = np.tile(np.arange(h * w), (n, 1))
        source[:, here] = here[None, :] + offsets[:, sweep, :, 1] * w + offsets[:, sweep, :, 0]
        flat = np.take_along_axis(flat, source[:, :, None], axis=1)
    return flat.reshape(images.shape)


def glass_blur(images: np.ndarray, severity: int, rngs: Generators) -> np.ndarray:
    """Gaussian blur, truncation to uint8, local pixel shuffle, Gaussian blur again."""
    sigma, delta, passes = GLASS_BLUR[severity - 1]
    h, w = images.shape[1:3]
    positions = len(glass_positions(h, delta)) * len(glass_positions(w, delta))
    offsets = per_image(rngs, lambda rng: rng.integers(-delta, delta, size=(passes, positions, 2)))
    blurred = unit_to_uint8(filters.gaussian_blur(to_unit(images), sigma))
    shuffled = glass_shuffle(blurred, offsets)
    return unit_to_uint8(filters.gaussian_blur(to_unit(shuffled), sigma))


def motion_blur(images: np.ndarray, severity: int, rngs: Generators) -> np.ndarray:
    """ImageMagick's ``MotionBlurImage`` (what the reference calls through Wand) at a random
    angle in [-45, 45) degrees, brought back to 8 bits as ImageMagick's PNG output is."""
    radius, sigma = MOTION_BLUR[severity - 1]
    angles = np.array([rng.uniform(-45, 45) for rng in rngs])
    blurred = filters.motion_blur(images, radius, sigma, angles)
    return imagemagick_to_uint8(blurred)


def zoom_blur(images: np.ndarray, severity: int, rngs: Generators) -> np.ndarray:
    """Mean of the image and its centre zoomed by each factor (``clipped_zoom``), applied as one
    sparse linear operator on the flattened pixels."""
    n, h, w, c = images.shape
    operator = filters.zoom_blur_operator(h, w, tuple(float(f) for f in ZOOM_BLUR[severity - 1]))
    pixels = to_unit(images).transpose(1, 2, 0, 3).reshape(h * w, n * c)
    out = np.asarray(operator @ pixels).reshape(h, w, n, c).transpose(2, 0, 1, 3)
    return unit_to_uint8(out)
