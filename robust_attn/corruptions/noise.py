"""Noise corruptions: Gaussian, shot (Poisson) and impulse (salt and pepper) noise.

Their strength comes from the parameter set (:mod:`.parameters`); none depends on the image
size. Every pixel and channel gets its own independent draw.
"""

from __future__ import annotations

import numpy as np

from robust_attn.corruptions._common import Generators, per_image, to_unit, unit_to_uint8
from robust_attn.corruptions.parameters import ParameterSet


def gaussian_noise(images: np.ndarray, severity: int, rngs: Generators, params: ParameterSet) -> np.ndarray:
    """x + N(0, c^2), clipped to [0, 1]."""
    std = params.gaussian_noise[severity - 1]
    shape = images.shape[1:]
    noise = per_image(rngs, lambda rng: rng.standard_normal(shape, dtype=np.float32))
    return unit_to_uint8(to_unit(images) + std * noise)


def shot_noise(images: np.ndarray, severity: int, rngs: Generators, params: ParameterSet) -> np.ndarray:
    """Poisson(c x) / c: photon noise whose variance x / c grows with the intensity."""
    rate = params.shot_noise[severity - 1]
    x = to_unit(images)
    counts = np.stack([rng.poisson(img * rate) for rng, img in zip(rngs, x)])
    return unit_to_uint8(counts / rate)


def impulse_noise(images: np.ndarray, severity: int, rngs: Generators, params: ParameterSet) -> np.ndarray:
    """scikit-image's ``random_noise(mode='s&p', amount=c)``: each value becomes, with
    probability c, 0 or 1 with equal odds (salt_vs_pepper = 0.5)."""
    amount = params.impulse_noise[severity - 1]
    draws = per_image(rngs, lambda rng: rng.random((2, *images.shape[1:])))
    flipped, salted = draws[:, 0] < amount, draws[:, 1] < 0.5
    out = images.copy()
    out[flipped & salted] = 255
    out[flipped & ~salted] = 0
    return out
