"""Weather corruptions: snow, frost, fog and brightness, at the CIFAR parameters."""

from __future__ import annotations

import numpy as np

from robust_attn.corruptions import filters
from robust_attn.corruptions._common import Generators, imagemagick_to_uint8, levels_to_uint8, luma, per_image, to_unit, unit_to_uint8
from robust_attn.corruptions.fractal import draws_needed, plasma_fractal
from robust_attn.corruptions.frost import OVERLAY_COUNT, frost_overlays

SNOW = (  # flake mean, flake std, zoom, threshold, blur radius, blur sigma, image weight
    (0.1, 0.2, 1, 0.6, 8, 3, 0.95),
    (0.1, 0.2, 1, 0.5, 10, 4, 0.9),
    (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
    (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
    (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8),
)
FROST = ((1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45))  # image weight, frost weight
FOG = ((0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75))  # fog strength, wibble decay
BRIGHTNESS = (0.05, 0.1, 0.15, 0.2, 0.3)  # added to the HSV value
FROST_GREY = np.array([0.2989, 0.5870, 0.1140])  # imagecorruptions' rgb2gray for grey images


def snow(images: np.ndarray, severity: int, rngs: Generators) -> np.ndarray:
    """Thresholded, zoomed Gaussian flakes, motion-blurred (ImageMagick) at an angle in
    [-135, -45) degrees, added twice (once rotated by 180 degrees) to a whitened image."""
    mean, std, zoom, threshold, radius, sigma, weight = SNOW[severity - 1]
    h, w = images.shape[1:3]
    flakes = per_image(rngs, lambda rng: rng.normal(mean, std, size=(h, w)))
    angles = np.array([rng.uniform(-135, -45) for rng in rngs])
    flakes = filters.clipped_zoom(flakes, zoom)
    flakes[flakes < threshold] = 0
    layer = (np.clip(flakes, 0, 1) * 255).astype(np.uint8)[..., None]  # the reference's 8-bit PNG
    layer = imagemagick_to_uint8(filters.motion_blur(layer, radius, sigma, angles)) / 255.0
    x = to_unit(images, np.float32)
    x = weight * x + (1 - weight) * np.maximum(x, luma(x) * np.float32(1.5) + np.float32(0.5))
    return unit_to_uint8(x + layer + layer[:, ::-1, ::-1])


def frost(images: np.ndarray, severity: int, rngs: Generators) -> np.ndarray:
    """c0 x + c1 frost: a random crop of one of five frost photographs, blended in grey levels
    (the overlay is converted to grey for one-channel images)."""
    image_weight, frost_weight = FROST[severity - 1]
    h, w, c = images.shape[1:]
    overlays = frost_overlays(h, w)
    crops = []
    for rng in rngs:
        overlay = overlays[int(rng.integers(OVERLAY_COUNT))]
        top = int(rng.integers(0, overlay.shape[0] - h))
        left = int(rng.integers(0, overlay.shape[1] - w))
        crops.append(overlay[top : top + h, left : left + w])
    layer = np.stack(crops).astype(np.float64)
    if c == 1:
        layer = (layer @ FROST_GREY)[..., None]
    return levels_to_uint8(image_weight * images + frost_weight * layer)


def fog_mapsize(height: int, width: int) -> int:
    """The fractal's side: 32 for CIFAR, the next power of two for larger images."""
    return max(32, 1 << (max(height, width) - 1).bit_length())


def fog(images: np.ndarray, severity: int, rngs: Generators) -> np.ndarray:
    """x + c0 * plasma fractal on every channel, rescaled by max(x) / (max(x) + c0)."""
    strength, decay = FOG[severity - 1]
    h, w = images.shape[1:3]
    size = fog_mapsize(h, w)
    uniforms = per_image(rngs, lambda rng: rng.random(draws_needed(size)))
    haze = plasma_fractal(uniforms, size, decay)[:, :h, :w, None]
    x = to_unit(images)
    peak = x.max(axis=(1, 2, 3), keepdims=True)
    return unit_to_uint8((x + strength * haze) * peak / (peak + strength))


def brightness(images: np.ndarray, severity: int, rngs: Generators) -> np.ndarray:
    """V + c in HSV space (``skimage.color.rgb2hsv`` / ``hsv2rgb``), V clipped to 1.

    Hue and saturation are kept, and every RGB channel is V times a function of them, so the
    round trip equals scaling each pixel by V' / V (black pixels become grey V' = c). For one
    channel V is the value itself: clip(x + c, 0, 1), as ``imagecorruptions`` does.
    """
    c = BRIGHTNESS[severity - 1]
    x = to_unit(images)
    value = x.max(axis=3, keepdims=True)
    brighter = np.minimum(value + c, 1)
    scale = np.divide(brighter, value, out=np.zeros_like(value), where=value > 0)
    return unit_to_uint8(np.where(x == value, brighter, x * scale))  # the channel holding V becomes V' exactly
