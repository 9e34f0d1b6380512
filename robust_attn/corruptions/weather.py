"""Weather corruptions: snow, frost, fog and brightness.

Snow's noise field, the frost crop and the fog map take the image's own size; snow's motion blur
is in pixels, as the parameter set gives it (:mod:`.parameters`).
"""

from __future__ import annotations

import numpy as np

from robust_attn.corruptions import filters
from robust_attn.corruptions._common import Generators, imagemagick_to_uint8, levels_to_uint8, luma, per_image, to_unit, unit_to_uint8
from robust_attn.corruptions.fractal import draws_needed, plasma_fractal
from robust_attn.corruptions.frost import OVERLAY_COUNT, frost_overlays
from robust_attn.corruptions.parameters import ParameterSet

FROST_GREY = np.array([0.2989, 0.5870, 0.1140])  # imagecorruptions' rgb2gray for grey images


def snow(images: np.ndarray, severity: int, rngs: Generators, params: ParameterSet) -> np.ndarray:
    """Thresholded, zoomed Gaussian flakes, motion-blurred (ImageMagick) at an angle in
    [-135, -45) degrees, added twice (once rotated by 180 degrees) to a whitened image."""
    mean, std, zoom, threshold, radius, sigma, weight = params.snow[severity - 1]
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


def frost(images: np.ndarray, severity: int, rngs: Generators, params: ParameterSet) -> np.ndarray:
    """c0 x + c1 frost: a random crop of one of five frost photographs at the set's scale,
    blended in grey levels (the overlay is converted to grey for one-channel images)."""
    image_weight, frost_weight = params.frost[severity - 1]
    h, w, c = images.shape[1:]
    overlays = frost_overlays(h, w, params.frost_scale)
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
    """The fractal's side: the next power of two of the longer side, at least 32. This gives
    every reference script's own ``mapsize``: 32 (CIFAR), 64 (64x64), 256 (224) and 512 (299)."""
    return max(32, 1 << (max(height, width) - 1).bit_length())


def fog(images: np.ndarray, severity: int, rngs: Generators, params: ParameterSet) -> np.ndarray:
    """x + c0 * plasma fractal on every channel, rescaled by max(x) / (max(x) + c0)."""
    strength, decay = params.fog[severity - 1]
    h, w = images.shape[1:3]
    size = fog_mapsize(h, w)
    uniforms = per_image(rngs, lambda rng: rng.random(draws_needed(size)))
    haze = plasma_fractal(uniforms, size, decay)[:, :h, :w, None]
    x = to_unit(images)
    peak = x.max(axis=(1, 2, 3), keepdims=True)
    return unit_to_uint8((x + strength * haze) * peak / (peak + strength))


def brightness(images: np.ndarray, severity: int, rngs: Generators, params: ParameterSet) -> np.ndarray:
    """V + c in HSV space (``skimage.color.rgb2hsv`` / ``hsv2rgb``), V clipped to 1.

    Hue and saturation are kept, and every RGB channel is V times a function of them, so the
    round trip equals scaling each pixel by V' / V (black pixels become grey V' = c). For one
    channel V is the value itself: clip(x + c, 0, 1), as ``imagecorruptions`` does.
    """
    c = params.brightness[severity - 1]
    x = to_unit(images)
    value = x.max(axis=3, keepdims=True)
    brighter = np.minimum(value + c, 1)
    scale = np.divide(brighter, value, out=np.zeros_like(value), where=value > 0)
    return unit_to_uint8(np.where(x == value, brighter, x * scale))  # the channel holding V becomes V' exactly
