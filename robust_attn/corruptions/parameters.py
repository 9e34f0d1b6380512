"""The parameter sets of the reference scripts, and the rule that picks one for an image size.

Hendrycks & Dietterich wrote one script per image size, each with its own table of severities
(hendrycks/robustness, ``ImageNet-C/create_c/``): ``make_cifar_c.py`` for 32x32,
``make_tinyimagenet_c.py`` for 64x64 (``make_imagenet_64_c.py`` holds the same table),
``make_imagenet_c.py`` for the published 224x224 ImageNet-C and ``make_imagenet_c_inception.py``
for 299x299. Each :class:`ParameterSet` below copies one script's table; a corruption reads its
row with ``params.<corruption>[severity - 1]``.

Which set: the one whose reference side is nearest to the image's shorter side on a log scale
(:func:`parameter_set`). Sides up to 45 get ``cifar``, 46-119 ``tiny-imagenet``, 120-258
``imagenet`` and 259 or more ``imagenet-299``. Within a set, the parameters in pixels (blur radii
and sigmas, glass blur's shift) are used as the set gives them; wherever the reference uses the
image size itself (glass blur's loop, the fog map, the frost crop, snow's noise field, pixelate's
thumbnail, elastic's fractions of the side), the image's own size is used. That is what the
scripts do at their own size and what ``imagecorruptions`` (Michaelis et al., 2019) does with the
ImageNet-C parameters at any size; scaling the pixel parameters would invent values none of the
scripts has (the authors' own 224 -> 299 step retunes them rather than scaling by 299 / 224).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from robust_attn.errors import SpecError

Row2 = tuple[float, float]
Row3 = tuple[float, float, float]
Row7 = tuple[float, float, float, float, float, float, float]
Five = tuple[float, float, float, float, float]


@dataclass(frozen=True)
class ParameterSet:
    """One reference script's severity tables, one entry per severity 1-5 in each field."""

    name: str
    size: int  # the side of the images the script corrupts
    source: str  # the script, in hendrycks/robustness ImageNet-C/create_c/
    gaussian_noise: Five  # std in [0, 1] units
    shot_noise: Five  # Poisson rate of a white pixel
    impulse_noise: Five  # share of values replaced by 0 or 1
    defocus_blur: tuple[Row2, ...]  # disk radius, alias blur (pixels)
    glass_blur: tuple[tuple[float, int, int], ...]  # sigma, max delta, iterations
    motion_blur: tuple[Row2, ...]  # ImageMagick radius, sigma (pixels); angle ~ U(-45, 45)
    zoom_blur: tuple[Row2, ...]  # the stop and step of np.arange(1, stop, step): the zoom factors
    snow: tuple[Row7, ...]  # flake mean, flake std, zoom, threshold, blur radius, blur sigma, image weight
    frost: tuple[Row2, ...]  # image weight, frost weight
    frost_scale: float  # the script's cv2.resize factor of the frost photographs (1: none)
    fog: tuple[Row2, ...]  # fog strength, wibble decay
    brightness: Five  # added to the HSV value
    contrast: Five  # factor towards each channel's mean
    elastic_transform: tuple[Row3, ...]  # alpha, sigma, affine: fractions of elastic_size
    elastic_size: float  # the script's IMSIZE (244 in the 224 script: "should have been 224")
    pixelate: Five  # size factor of the box-filtered thumbnail
    jpeg_compression: tuple[int, int, int, int, int]  # Pillow quality

    def elastic(self, severity: int, side: int) -> Row3:
        """(alpha, sigma, affine) in pixels for images whose shorter side is ``side``: the
        script's values at its own size, in proportion to the side otherwise."""
        alpha, sigma, affine = (f * self.elastic_size * side / self.size for f in self.elastic_transform[severity - 1])
        return alpha, sigma, affine


CIFAR = ParameterSet(
    name="cifar",
    size=32,
    source="make_cifar_c.py",  # lines 131-389
    gaussian_noise=(0.04, 0.06, 0.08, 0.09, 0.10),
    shot_noise=(500, 250, 100, 75, 50),
    impulse_noise=(0.01, 0.02, 0.03, 0.05, 0.07),
    defocus_blur=((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)),
    glass_blur=((0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)),
    motion_blur=((6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)),
    zoom_blur=((1.06, 0.01), (1.11, 0.01), (1.16, 0.01), (1.21, 0.01), (1.26, 0.01)),
    snow=(
        (0.1, 0.2, 1, 0.6, 8, 3, 0.95),
        (0.1, 0.2, 1, 0.5, 10, 4, 0.9),
        (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
        (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
        (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8),
    ),
    frost=((1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)),
    frost_scale=0.2,
    fog=((0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)),
    brightness=(0.05, 0.1, 0.15, 0.2, 0.3),
    contrast=(0.75, 0.5, 0.4, 0.3, 0.15),
    elastic_transform=((0, 0, 0.08), (0.05, 0.2, 0.07), (0.08, 0.06, 0.06), (0.1, 0.04, 0.05), (0.1, 0.03, 0.03)),
    elastic_size=32,
    pixelate=(0.95, 0.9, 0.85, 0.75, 0.65),
    jpeg_compression=(80, 65, 58, 50, 40),
)

TINY_IMAGENET = ParameterSet(
    name="tiny-imagenet",
    size=64,
    source="make_tinyimagenet_c.py",  # lines 249-507; make_imagenet_64_c.py has the same table
    gaussian_noise=(0.04, 0.08, 0.12, 0.15, 0.18),
    shot_noise=(250, 100, 50, 30, 15),
    impulse_noise=(0.01, 0.02, 0.05, 0.08, 0.14),
    defocus_blur=((0.5, 0.6), (1, 0.1), (1.5, 0.1), (2.5, 0.01), (3, 0.1)),
    glass_blur=((0.1, 1, 1), (0.5, 1, 1), (0.6, 1, 2), (0.7, 2, 1), (0.9, 2, 2)),
    motion_blur=((10, 1), (10, 1.5), (10, 2), (10, 2.5), (12, 3)),
    zoom_blur=((1.06, 0.01), (1.11, 0.01), (1.16, 0.01), (1.21, 0.01), (1.26, 0.01)),
    snow=(
        (0.1, 0.2, 1, 0.6, 8, 3, 0.8),
        (0.1, 0.2, 1, 0.5, 10, 4, 0.8),
        (0.15, 0.3, 1.75, 0.55, 10, 4, 0.7),
        (0.25, 0.3, 2.25, 0.6, 12, 6, 0.65),
        (0.3, 0.3, 1.25, 0.65, 14, 12, 0.6),
    ),
    frost=((1, 0.3), (0.9, 0.4), (0.8, 0.45), (0.75, 0.5), (0.7, 0.55)),
    frost_scale=0.3,
    fog=((0.4, 3), (0.7, 3), (1, 2.5), (1.5, 2), (2, 1.75)),
    brightness=(0.1, 0.2, 0.3, 0.4, 0.5),
    contrast=(0.4, 0.3, 0.2, 0.1, 0.05),
    elastic_transform=((0, 0, 0.08), (0.05, 0.3, 0.06), (0.1, 0.08, 0.06), (0.1, 0.03, 0.03), (0.16, 0.03, 0.02)),
    elastic_size=64,
    pixelate=(0.9, 0.8, 0.7, 0.6, 0.5),
    jpeg_compression=(65, 58, 50, 40, 25),
)

IMAGENET = ParameterSet(
    name="imagenet",
    size=224,
    source="make_imagenet_c.py",  # lines 250-544: the published ImageNet-C
    gaussian_noise=(0.08, 0.12, 0.18, 0.26, 0.38),
    shot_noise=(60, 25, 12, 5, 3),
    impulse_noise=(0.03, 0.06, 0.09, 0.17, 0.27),
    defocus_blur=((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)),
    glass_blur=((0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2)),
    motion_blur=((10, 3), (15, 5), (15, 8), (15, 12), (20, 15)),
    zoom_blur=((1.11, 0.01), (1.16, 0.01), (1.21, 0.02), (1.26, 0.02), (1.31, 0.03)),
    snow=(
        (0.1, 0.3, 3, 0.5, 10, 4, 0.8),
        (0.2, 0.3, 2, 0.5, 12, 4, 0.7),
        (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
        (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
        (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55),
    ),
    frost=((1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75)),
    frost_scale=1,
    fog=((1.5, 2), (2, 2), (2.5, 1.7), (2.5, 1.5), (3, 1.4)),
    brightness=(0.1, 0.2, 0.3, 0.4, 0.5),
    contrast=(0.4, 0.3, 0.2, 0.1, 0.05),
    elastic_transform=((2, 0.7, 0.1), (2, 0.08, 0.2), (0.05, 0.01, 0.02), (0.07, 0.01, 0.02), (0.12, 0.01, 0.02)),
    elastic_size=244,
    pixelate=(0.6, 0.5, 0.4, 0.3, 0.25),
    jpeg_compression=(25, 18, 15, 10, 7),
)

IMAGENET_299 = ParameterSet(
    name="imagenet-299",
    size=299,
    source="make_imagenet_c_inception.py",  # lines 299-558
    gaussian_noise=(0.09, 0.13, 0.19, 0.27, 0.40),
    shot_noise=(50, 20, 10, 5, 3),
    impulse_noise=(0.04, 0.07, 0.10, 0.18, 0.28),
    defocus_blur=((4, 0.1), (5, 0.5), (7, 0.5), (10, 0.5), (12, 0.5)),
    glass_blur=((0.8, 1, 3), (1, 3, 1), (1.1, 2, 4), (1.2, 4, 2), (1.6, 5, 2)),
    motion_blur=((12, 4), (17, 6), (17, 9), (17, 13), (22, 16)),
    zoom_blur=((1.11, 0.01), (1.16, 0.01), (1.21, 0.02), (1.26, 0.02), (1.31, 0.03)),
    snow=(
        (0.1, 0.3, 3, 0.5, 10, 4, 0.8),
        (0.2, 0.3, 2, 0.5, 12, 4, 0.7),
        (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
        (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
        (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55),
    ),
    frost=((1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75)),
    frost_scale=1,
    fog=((1.5, 2), (2, 2), (2.5, 1.8), (2.5, 1.6), (3, 1.5)),
    brightness=(0.1, 0.2, 0.3, 0.4, 0.5),
    contrast=(0.4, 0.3, 0.2, 0.1, 0.05),
    elastic_transform=((2, 0.7, 0.1), (2, 0.08, 0.2), (0.05, 0.01, 0.02), (0.07, 0.01, 0.02), (0.12, 0.01, 0.02)),
    elastic_size=360,
    pixelate=(0.5, 0.4, 0.3, 0.25, 0.2),
    jpeg_compression=(23, 16, 13, 8, 5),
)

PARAMETER_SETS: dict[str, ParameterSet] = {p.name: p for p in (CIFAR, TINY_IMAGENET, IMAGENET, IMAGENET_299)}


def nearest_set(side: int) -> ParameterSet:
    """The set whose reference side is nearest to ``side`` in ratio (log scale); the boundaries
    are the geometric means of neighbouring sides: 45.3, 119.7 and 258.8."""
    return min(PARAMETER_SETS.values(), key=lambda p: abs(math.log(side / p.size)))


def parameter_set(image_shape: tuple[int, ...]) -> str:
    """The name of the set :func:`~robust_attn.corruptions.corrupt` uses for images of this shape,
    (C, H, W) or (N, C, H, W): nearest reference side to min(H, W). A run records it next to the
    corrupted images."""
    if len(image_shape) < 2 or min(image_shape[-2:]) < 1:
        raise ValueError(f"an image shape ends with (H, W), got {image_shape}")
    return nearest_set(int(min(image_shape[-2:]))).name


def get_parameter_set(name: str) -> ParameterSet:
    """The set called ``name``; a one-line SpecError naming the known ones otherwise."""
    if name not in PARAMETER_SETS:
        raise SpecError(f"unknown corruption parameter set {name!r}; known: {', '.join(PARAMETER_SETS)}")
    return PARAMETER_SETS[name]
