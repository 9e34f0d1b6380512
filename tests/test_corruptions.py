"""Common corruptions (CIFAR-10-C) against the formulas and CIFAR parameters of make_cifar_c.py.

The parameter values below are written out from make_cifar_c.py (Hendrycks & Dietterich), not
imported from the package, and each corruption is checked against an independent statement of
its formula: a statistic the parameters pin down, scipy / Pillow / colorsys doing the same
operation, or a literal transcription of the reference's pixel loop.
"""

from __future__ import annotations

import colorsys
import io
import math
import zlib

import numpy as np
import pytest
import scipy.ndimage as ndi
import scipy.stats
from PIL import Image

import robust_attn as ra
from robust_attn.corruptions import CORRUPTION_FAMILIES, CORRUPTIONS, FAMILIES, blur, corrupt, filters, frost, geometry, registry
from robust_attn.errors import DataError, SpecError

SEVERITIES = (1, 2, 3, 4, 5)


def cases(values: tuple) -> list[tuple]:
    """(severity, CIFAR parameter) pairs for parametrize."""
    return list(zip(SEVERITIES, values))


RANDOM = {"gaussian_noise", "shot_noise", "impulse_noise", "glass_blur", "motion_blur", "snow", "frost", "fog", "elastic_transform"}


@pytest.fixture(scope="module")
def natural() -> np.ndarray:
    """32 built-in 32x32 RGB test images."""
    return ra.load_dataset("builtin", "test", n=32).images.numpy()


def run(images: np.ndarray, name: str, severity: int, seed: int = 0, ids: np.ndarray | None = None) -> np.ndarray:
    return corrupt(images, name, severity, seed=seed, sample_ids=np.arange(len(images)) if ids is None else ids)


def assert_truncation_of(out: np.ndarray, levels: np.ndarray, slack: float = 1e-6) -> None:
    """``out`` is ``np.uint8`` of ``levels`` (floats in grey levels), up to floating-point noise of
    ``slack`` levels: where a level is an integer in exact arithmetic, either neighbour is allowed."""
    levels = np.clip(levels, 0, 255)
    lo, hi = np.floor(levels - slack), np.floor(levels + slack)
    assert ((out == lo) | (out == hi)).all(), np.abs(out - levels).max()


def constant(value: int, n: int = 16, channels: int = 3, size: int = 32) -> np.ndarray:
    return np.full((n, channels, size, size), value, np.uint8)


def test_names_families_and_order() -> None:
    assert CORRUPTIONS == (
        "gaussian_noise",
        "shot_noise",
        "impulse_noise",
        "defocus_blur",
        "glass_blur",
        "motion_blur",
        "zoom_blur",
        "snow",
        "frost",
        "fog",
        "brightness",
        "contrast",
        "elastic_transform",
        "pixelate",
        "jpeg_compression",
    )
    assert FAMILIES == ("noise", "blur", "weather", "digital")
    by_family = {f: [n for n in CORRUPTIONS if CORRUPTION_FAMILIES[n] == f] for f in FAMILIES}
    assert by_family == {
        "noise": ["gaussian_noise", "shot_noise", "impulse_noise"],
        "blur": ["defocus_blur", "glass_blur", "motion_blur", "zoom_blur"],
        "weather": ["snow", "frost", "fog", "brightness"],
        "digital": ["contrast", "elastic_transform", "pixelate", "jpeg_compression"],
    }
    assert {n for n in CORRUPTIONS if registry.REGISTRY[n].random} == RANDOM


# ---------------------------------------------------------------- noise


@pytest.mark.parametrize("severity,std", cases((0.04, 0.06, 0.08, 0.09, 0.10)))
def test_gaussian_noise_is_additive_with_the_cifar_std(severity: int, std: float) -> None:
    out = run(constant(128), "gaussian_noise", severity).astype(np.float64)
    noise = (out + 0.5 - 128) / 255  # +0.5: the reference truncates to uint8, a bias of half a level
    n = noise.size
    assert abs(noise.mean()) < 4 * std / math.sqrt(n)
    expected = math.sqrt(std**2 + 1 / (12 * 255**2))  # plus the uniform truncation error
    assert abs(noise.std() / expected - 1) < 0.02


@pytest.mark.parametrize("severity,photons", cases((500, 250, 100, 75, 50)))
def test_shot_noise_is_poisson_with_the_cifar_rate(severity: int, photons: int) -> None:
    """The output levels follow floor(255 min(K / c, 1)) with K ~ Poisson(c x), computed exactly."""
    for level in (60, 200):
        out = run(constant(level), "shot_noise", severity).astype(np.float64)
        k = np.arange(4 * photons)
        pmf = scipy.stats.poisson.pmf(k, photons * level / 255)
        levels = np.floor(np.minimum(255 * k / photons, 255) + 1e-9)
        mean = (pmf * levels).sum()
        variance = (pmf * levels**2).sum() - mean**2
        assert abs(out.mean() - mean) < 4 * math.sqrt(variance / out.size)
        assert abs(out.var() / variance - 1) < 0.03
        assert set(np.unique(out)) <= set(levels)
    low, high = (run(constant(v), "shot_noise", severity).var() for v in (60, 200))
    assert 2.5 < high / low < 4.5  # variance proportional to intensity (200 / 60 = 3.3), unlike Gaussian noise


@pytest.mark.parametrize("severity,amount", cases((0.01, 0.02, 0.03, 0.05, 0.07)))
def test_impulse_noise_flips_the_cifar_share_per_channel(severity: int, amount: float) -> None:
    out = run(constant(128, n=32), "impulse_noise", severity)
    n = out.size
    salt, pepper = (out == 255).mean(), (out == 0).mean()
    tolerance = 5 * math.sqrt(amount / 2 / n)
    assert abs(salt - amount / 2) < tolerance and abs(pepper - amount / 2) < tolerance
    assert set(np.unique(out)) <= {0, 128, 255}
    flipped = out != 128
    both = (flipped[:, 0] & flipped[:, 1]).mean()  # channels flip independently: amount^2, not amount
    assert abs(both - amount**2) < 5 * math.sqrt(amount**2 / flipped[:, 0].size) + 1e-4


# ---------------------------------------------------------------- blur


def reference_disk(radius: float, alias_blur: float) -> np.ndarray:
    """make_cifar_c.py's disk: 17x17 aliased disk, normalised, then a 3x3 Gaussian of sigma alias_blur."""
    grid = np.arange(-8, 9)
    xx, yy = np.meshgrid(grid, grid)
    disk = (xx**2 + yy**2 <= radius**2).astype(np.float64)
    disk /= disk.sum()
    g = np.exp(-(np.array([-1.0, 0.0, 1.0]) ** 2) / (2 * alias_blur**2))
    g /= g.sum()
    padded = np.pad(disk, 1)
    return sum(g[i] * g[j] * padded[i : i + 17, j : j + 17] for i in range(3) for j in range(3))


@pytest.mark.parametrize("severity,params", cases(((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1))))
def test_defocus_blur_impulse_response_is_the_cifar_disk(severity: int, params: tuple[float, float]) -> None:
    image = np.zeros((1, 3, 32, 32), np.uint8)
    image[0, :, 16, 16] = 255
    out = run(image, "defocus_blur", severity)[0, 0].astype(int)
    assert_truncation_of(out[8:25, 8:25], 255 * reference_disk(*params), slack=1e-4)  # kernel centre at (8, 8)
    assert out.sum() > 0 and out[:6].sum() == 0
    if severity == 1:  # a one-pixel disk: the centre weight is the squared 1-D Gaussian centre weight
        assert out[16, 16] == math.floor(255 / (1 + 2 * math.exp(-1 / (2 * 0.4**2))) ** 2)


def test_gaussian_blur_is_skimage_nearest_truncate_4() -> None:
    rng = np.random.default_rng(0)
    x = rng.random((2, 20, 20, 3))
    for sigma in (0.05, 0.25, 0.4):
        radius = int(4 * sigma + 0.5)
        k = np.exp(-(np.arange(-radius, radius + 1) ** 2) / (2 * sigma**2))
        k /= k.sum()
        padded = np.pad(x, [(0, 0), (radius, radius), (radius, radius), (0, 0)], mode="edge")
        rows = sum(k[i] * padded[:, i : i + 20] for i in range(2 * radius + 1))
        expected = sum(k[j] * rows[:, :, j : j + 20] for j in range(2 * radius + 1))
        np.testing.assert_allclose(filters.gaussian_blur(x, sigma), expected, atol=1e-12)


def reference_glass_loop(image: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """make_cifar_c.py's shuffle, statement for statement (max delta 1), on one (H, W, C) image."""
    x = image.copy()
    h, w = x.shape[:2]
    for sweep in range(offsets.shape[0]):
        step = 0
        for row in range(h - 1, 1, -1):
            for col in range(w - 1, 1, -1):
                dx, dy = offsets[sweep, step]
                step += 1
                r2, c2 = row + dy, col + dx
                x[row, col], x[r2, c2] = x[r2, c2], x[row, col]  # views: a copy, not a swap
    return x


def test_glass_shuffle_matches_the_reference_loop() -> None:
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (3, 20, 24, 3), dtype=np.uint8)
    offsets = rng.integers(-1, 1, size=(3, 2, 18 * 22, 2))
    expected = np.stack([reference_glass_loop(img, off) for img, off in zip(images, offsets)])
    assert np.array_equal(blur.glass_shuffle(images, offsets), expected)


def test_glass_blur_severity_1_moves_pixels_one_step_up_or_left(natural: np.ndarray) -> None:
    x = natural[:8].transpose(0, 2, 3, 1)
    out = run(natural[:8], "glass_blur", 1).transpose(0, 2, 3, 1)  # sigma 0.05: both blurs are the identity
    candidates = np.stack([x[:, 2:, 2:], x[:, 1:-1, 2:], x[:, 2:, 1:-1], x[:, 1:-1, 1:-1]])
    assert (candidates == out[None, :, 2:, 2:]).all(axis=-1).any(axis=0).all()
    assert np.array_equal(out[:, :2], x[:, :2]) and np.array_equal(out[:, :, :2], x[:, :, :2])
    moved = (out[:, 2:, 2:] != x[:, 2:, 2:]).any(axis=-1).mean()
    assert 0.5 < moved < 0.8  # offsets (0, 0) a quarter of the time, and some neighbours are equal


@pytest.mark.parametrize("severity,params", cases(((6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5))))
def test_motion_blur_kernel_is_imagemagicks(severity: int, params: tuple[int, float]) -> None:
    radius, sigma = params
    i = np.arange(2 * radius + 1)
    expected = np.exp(-(i**2) / (2 * sigma**2))
    np.testing.assert_allclose(filters.motion_kernel(radius, sigma), expected / expected.sum(), rtol=1e-12)
    # Angle 0 samples the pixels to the right, repeating the last column past the border.
    image = np.random.default_rng(2).random((1, 8, 24, 1))
    out = filters.motion_blur(image, radius, sigma, np.array([0.0]))
    k = expected / expected.sum()
    cols = np.minimum(np.arange(24)[:, None] + i[None, :], 23)
    np.testing.assert_allclose(out[0, :, :, 0], (image[0][:, cols, 0] * k).sum(axis=-1), atol=1e-5)
    down = filters.motion_blur(image.transpose(0, 2, 1, 3), radius, sigma, np.array([90.0]))
    np.testing.assert_allclose(down[0, :, :, 0].T, out[0, :, :, 0], atol=1e-5)


def test_motion_blur_streaks_at_angles_within_45_degrees() -> None:
    image = np.zeros((40, 3, 33, 33), np.uint8)
    image[:, :, 16, 16] = 255
    out = run(image, "motion_blur", 5)[:, 0].astype(np.float64)
    rows, cols = np.mgrid[0:33, 0:33] - 16
    weight = out / out.sum(axis=(1, 2), keepdims=True)
    dr, dc = (weight * rows).sum(axis=(1, 2)), (weight * cols).sum(axis=(1, 2))
    angles = np.degrees(np.arctan2(-dr, -dc))  # the streak trails opposite to the motion
    assert (np.abs(angles) <= 46).all() and angles.std() > 15


ZOOM_STOPS = (1.06, 1.11, 1.16, 1.21, 1.26)


def reference_clipped_zoom(img: np.ndarray, factor: float) -> np.ndarray:
    h = img.shape[0]
    ch = int(np.ceil(h / factor))
    top = (h - ch) // 2
    img = ndi.zoom(img[top : top + ch, top : top + ch], (factor, factor, 1), order=1)
    trim = (img.shape[0] - h) // 2
    return img[trim : trim + h, trim : trim + h]


@pytest.mark.parametrize("severity", SEVERITIES)
def test_zoom_blur_matches_scipy_zoom_at_the_cifar_factors(severity: int, natural: np.ndarray) -> None:
    factors = np.arange(1, ZOOM_STOPS[severity - 1], 0.01)
    assert len(factors) == (7, 12, 16, 21, 26)[severity - 1]  # np.arange's float end point keeps 1.06 and 1.11
    images = natural[:3]
    expected = []
    for img in images.transpose(0, 2, 3, 1):
        x = (img / 255.0).astype(np.float32)
        acc = x + sum(reference_clipped_zoom(x, f) for f in factors)
        expected.append((np.clip(acc / (len(factors) + 1), 0, 1) * 255).astype(np.uint8))
    out = run(images, "zoom_blur", severity).transpose(0, 2, 3, 1).astype(int)
    diff = np.abs(out - np.stack(expected))
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01


# ---------------------------------------------------------------- weather


@pytest.mark.parametrize("severity,weight", cases((0.95, 0.9, 0.9, 0.85, 0.8)))
def test_snow_whitens_a_black_image_to_the_cifar_base_level(severity: int, weight: float) -> None:
    out = run(constant(0, n=8), "snow", severity)
    levels, counts = np.unique(out, return_counts=True)
    assert levels[counts.argmax()] == math.floor(255 * (1 - weight) * 0.5)  # max(x, 1.5 grey + 0.5) = 0.5
    assert out.min() == levels[counts.argmax()]
    flakes = out[:, 0].astype(np.float64) - levels[counts.argmax()]
    vertical = (flakes[:, 1:] * flakes[:, :-1]).mean()
    horizontal = (flakes[:, :, 1:] * flakes[:, :, :-1]).mean()
    assert vertical > horizontal  # streaks blurred at -135..-45 degrees, within 45 degrees of vertical


FROST = ((1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45))


def test_frost_overlays_are_the_cifar_crops() -> None:
    shapes = [o.shape for o in frost.frost_overlays(32, 32)]
    assert shapes == [(120, 180, 3), (63, 112, 3), (63, 112, 3), (70, 105, 3), (99, 132, 3)]  # the photos at 0.2
    means = [round(float(o.mean()), 2) for o in frost.frost_overlays(32, 32)]
    assert means == [130.76, 206.9, 206.9, 152.29, 123.42]
    big = frost.frost_overlays(80, 90)
    assert all(o.shape[0] > 80 and o.shape[1] > 90 for o in big)


@pytest.mark.parametrize("severity", SEVERITIES)
def test_frost_blends_image_and_overlay_with_the_cifar_weights(severity: int, natural: np.ndarray) -> None:
    image_weight, frost_weight = FROST[severity - 1]
    x = (natural[:8] // 2).astype(np.uint8)  # at most 127: no clipping
    ids = np.arange(100, 108)
    with_image = run(x, "frost", severity, ids=ids).astype(np.float64)
    black = run(np.zeros_like(x), "frost", severity, ids=ids).astype(np.float64)
    slope = ((with_image - black) * x).sum() / (x.astype(np.float64) ** 2).sum()  # same ids: same crop
    assert abs(slope - image_weight) < 0.01
    # The black image is frost_weight times the crop its generator picks (documented seeding).
    for k, sample in enumerate(ids):
        rng = np.random.default_rng([0, zlib.crc32(b"frost"), severity, int(sample)])
        overlay = frost.frost_overlays(32, 32)[int(rng.integers(5))]
        top, left = int(rng.integers(0, overlay.shape[0] - 32)), int(rng.integers(0, overlay.shape[1] - 32))
        crop = overlay[top : top + 32, left : left + 32].transpose(2, 0, 1)
        assert np.abs(black[k] - np.floor(frost_weight * crop)).max() <= 1
        if k == 0:  # a grey image gets the overlay's grey value (imagecorruptions' rgb2gray weights)
            grey = run(np.zeros((1, 1, 32, 32), np.uint8), "frost", severity, ids=ids[:1])[0, 0]
            assert np.abs(grey - np.floor(frost_weight * (crop.transpose(1, 2, 0) @ [0.2989, 0.587, 0.114]))).max() <= 1


@pytest.mark.parametrize("severity,strength", cases((0.2, 0.5, 0.75, 1, 1.5)))
def test_fog_spans_the_cifar_range_on_a_flat_image(severity: int, strength: float) -> None:
    v = 160 / 255
    out = run(constant(160, n=6), "fog", severity).astype(int)
    # (v + c f) v / (v + c) with the 32x32 fractal f spanning [0, 1] over the image
    assert (np.abs(out.max(axis=(1, 2, 3)) - 160) <= 1).all()
    assert (np.abs(out.min(axis=(1, 2, 3)) - math.floor(255 * v * v / (v + strength))) <= 1).all()


def test_fog_fractal_gets_rougher_as_the_decay_falls() -> None:
    from robust_attn.corruptions.fractal import draws_needed, plasma_fractal

    u = np.random.default_rng(3).random((64, draws_needed(32)))
    roughness = []
    for decay in (3, 2.5, 2, 1.75):  # the CIFAR wibble decays
        maps = plasma_fractal(u, 32, decay)
        assert np.allclose(maps.min(axis=(1, 2)), 0) and np.allclose(maps.max(axis=(1, 2)), 1)
        roughness.append(np.abs(np.diff(maps, axis=2)).mean())
    assert all(np.diff(roughness) > 0)


@pytest.mark.parametrize("severity,shift", cases((0.05, 0.1, 0.15, 0.2, 0.3)))
def test_brightness_adds_to_the_hsv_value(severity: int, shift: float, natural: np.ndarray) -> None:
    x = natural[:4]
    out = run(x, "brightness", severity).transpose(0, 2, 3, 1).reshape(-1, 3).astype(int)
    expected = []
    for r, g, b in x.transpose(0, 2, 3, 1).reshape(-1, 3) / 255.0:
        h, s, v = colorsys.rgb_to_hsv(r, g, b)
        expected.append(colorsys.hsv_to_rgb(h, s, min(v + shift, 1.0)))
    assert_truncation_of(out, np.array(expected) * 255)
    assert_truncation_of(run(x[:, :1], "brightness", severity), np.minimum(x[:, :1] / 255 + shift, 1) * 255)


# ---------------------------------------------------------------- digital


@pytest.mark.parametrize("severity,factor", cases((0.75, 0.5, 0.4, 0.3, 0.15)))
def test_contrast_pulls_towards_each_channel_mean(severity: int, factor: float, natural: np.ndarray) -> None:
    x = natural / 255.0
    means = x.mean(axis=(2, 3), keepdims=True)
    assert_truncation_of(run(natural, "contrast", severity), ((x - means) * factor + means) * 255)


def test_bilinear_matches_scipy_map_coordinates() -> None:
    rng = np.random.default_rng(4)
    x = rng.random((3, 20, 24, 2)).astype(np.float32)
    rows, cols = rng.uniform(-4, 27, (3, 20, 24)), rng.uniform(-4, 27, (3, 20, 24))
    for mode in ("reflect", "mirror", "nearest"):
        expected = np.stack(
            [
                np.stack([ndi.map_coordinates(img[..., c], [r, q], order=1, mode=mode) for c in range(2)], -1)
                for img, r, q in zip(x, rows, cols)
            ]
        )
        np.testing.assert_allclose(geometry.bilinear(x, rows, cols, mode), expected, atol=1e-6)


def test_warp_affine_samples_opencvs_one_32nd_pixel_grid() -> None:
    x = np.random.default_rng(5).random((1, 16, 16, 1)).astype(np.float32)
    shift = np.array([[[1.0, 0.0, 1.5], [0.0, 1.0, -2.0]]])  # dst(x, y) = src(x - 1.5, y + 2)
    y, c = np.mgrid[0:16, 0:16].astype(np.float64)
    expected = ndi.map_coordinates(x[0, ..., 0], [y + 2, c - 1.5], order=1, mode="mirror")
    np.testing.assert_allclose(geometry.warp_affine(x, shift)[0, ..., 0], expected, atol=1e-6)
    tiny = np.array([[[1.0, 0.0, 0.01], [0.0, 1.0, 0.0]]])  # below half a grid step: no motion at all
    assert np.array_equal(geometry.warp_affine(x, tiny), x)


def test_elastic_displacement_and_affine_follow_the_cifar_parameters() -> None:
    """On ramp images (red = 8 x column, green = 8 x row) the output reads back the sampled source
    coordinates: an affine fit gives the affine jitter, its residual the smooth displacement field,
    whose rms is alpha * std(Gaussian-smoothed U(-1, 1)) = alpha * sqrt(1/3) * sum(w^2)."""
    params = [(0, 0, 0.08), (0.05, 0.2, 0.07), (0.08, 0.06, 0.06), (0.1, 0.04, 0.05), (0.1, 0.03, 0.03)]
    n = 12
    cols, rows = np.meshgrid(np.arange(32), np.arange(32))
    ramp = np.zeros((n, 3, 32, 32), np.uint8)
    ramp[:, 0], ramp[:, 1] = cols * 8, rows * 8
    inner = (slice(6, 26), slice(6, 26))
    design = np.stack([cols[inner].ravel(), rows[inner].ravel(), np.ones(400)], 1)
    controls = np.array([[26.0, 26, 1], [26, 6, 1], [6, 6, 1]])
    residuals, jitters = [], []
    for severity, (alpha, sigma, affine) in zip(SEVERITIES, params):
        out = run(ramp, "elastic_transform", severity).astype(np.float64)
        source = (out[:, :2, inner[0], inner[1]].reshape(n, 2, -1) + 0.5) / 8
        fits = [np.linalg.lstsq(design, s.T, rcond=None)[0] for s in source]
        residuals.append(np.mean([np.sqrt(((s.T - design @ a) ** 2).mean()) for s, a in zip(source, fits)]))
        jitters.append(np.mean([np.abs(controls @ a - controls[:, :2]).max() for a in fits]))
        assert jitters[-1] < 1.5 * 32 * affine
        if sigma:
            r = int(3 * 32 * sigma + 0.5)
            w = np.exp(-(np.arange(-r, r + 1) ** 2) / (2 * (32 * sigma) ** 2))
            predicted = 32 * alpha * math.sqrt(1 / 3) * ((w / w.sum()) ** 2).sum()
            if predicted > 0.1:  # above the 1/8-pixel read-out resolution
                assert abs(residuals[-1] / predicted - 1) < 0.15
    assert residuals[0] < 0.06  # alpha = 0: a pure affine warp
    assert all(np.diff(residuals) > 0) and all(np.diff(jitters) < 0)


@pytest.mark.parametrize("severity,size", cases((30, 28, 27, 24, 20)))
def test_pixelate_is_a_pillow_box_round_trip(severity: int, size: int, natural: np.ndarray) -> None:
    x = natural[:6]
    expected = [
        np.asarray(Image.fromarray(img).resize((size, size), Image.Resampling.BOX).resize((32, 32), Image.Resampling.BOX))
        for img in x.transpose(0, 2, 3, 1)
    ]
    assert np.array_equal(run(x, "pixelate", severity), np.stack(expected).transpose(0, 3, 1, 2))


def pillow_jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(img).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(buffer))


@pytest.mark.parametrize("severity,quality", cases((80, 65, 58, 50, 40)))
def test_jpeg_is_a_pillow_round_trip_at_the_cifar_quality(severity: int, quality: int, natural: np.ndarray) -> None:
    x = natural[:6].transpose(0, 2, 3, 1)
    out = run(natural[:6], "jpeg_compression", severity).transpose(0, 2, 3, 1)
    assert np.array_equal(out, np.stack([pillow_jpeg(img, quality) for img in x]))
    assert not np.array_equal(out, np.stack([pillow_jpeg(img, quality + 5) for img in x]))


# ---------------------------------------------------------------- across corruptions


def test_distortion_grows_with_severity(natural: np.ndarray) -> None:
    """Mean absolute change from the clean image rises with severity, except where the CIFAR
    parameters trade two effects: glass blur (more blur softens the shuffle until a second pass),
    motion blur (severities 3 and 4 differ only in kernel taps beyond sigma 2 x 3), frost (the
    image weight falls as the frost weight rises) and elastic (the affine jitter shrinks from
    0.08 to 0.03 of the image while the displacement field grows; tested above)."""
    mae = {name: [np.abs(run(natural, name, s).astype(int) - natural).mean() for s in SEVERITIES] for name in CORRUPTIONS}
    for name in set(CORRUPTIONS) - {"glass_blur", "motion_blur", "frost", "elastic_transform"}:
        assert all(np.diff(mae[name]) > 0), (name, mae[name])
    motion = mae["motion_blur"]
    assert motion[0] < motion[1] < motion[2] < motion[4] and abs(motion[3] / motion[2] - 1) < 0.03
    glass = mae["glass_blur"]
    assert min(glass[3:]) > 1.2 * max(glass[:3])
    assert all(np.diff(mae["elastic_transform"]) < 0)


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_deterministic_and_independent_of_batching(name: str, natural: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    x, ids = natural[:6], np.arange(40, 46)
    full = run(x, name, 3, ids=ids)
    parts = np.concatenate([run(x[:1], name, 3, ids=ids[:1]), run(x[1:4], name, 3, ids=ids[1:4]), run(x[4:], name, 3, ids=ids[4:])])
    assert np.array_equal(full, parts)
    assert np.array_equal(run(x[::-1], name, 3, ids=ids[::-1]), full[::-1])
    monkeypatch.setattr(registry, "CHUNK", 4)
    assert np.array_equal(run(x, name, 3, ids=ids), full)
    other_seed, other_ids = run(x, name, 3, seed=1, ids=ids), run(x, name, 3, ids=ids + 1)
    assert (not np.array_equal(other_seed, full)) == (name in RANDOM)
    assert (not np.array_equal(other_ids, full)) == (name in RANDOM)


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_shapes_and_dtype_for_grey_and_colour(name: str) -> None:
    rng = np.random.default_rng(6)
    for shape in ((3, 1, 28, 28), (2, 3, 16, 20)):
        x = rng.integers(0, 256, shape, dtype=np.uint8)
        for severity in (1, 5):
            out = run(x, name, severity)
            assert out.shape == x.shape and out.dtype == np.uint8 and out.flags.c_contiguous


@pytest.mark.parametrize("name", ["defocus_blur", "zoom_blur", "brightness", "contrast", "pixelate"])
def test_grey_images_match_colour_images_with_equal_channels(name: str, natural: np.ndarray) -> None:
    grey = natural[:4, :1]
    assert np.array_equal(run(grey, name, 4), run(np.repeat(grey, 3, axis=1), name, 4)[:, :1])


def test_errors_are_one_line_and_name_the_known_values(natural: np.ndarray) -> None:
    ids = np.arange(2)
    with pytest.raises(SpecError, match="unknown corruption 'fogg'; known: gaussian_noise, shot_noise") as err:
        corrupt(natural[:2], "fogg", 1, seed=0, sample_ids=ids)
    assert "\n" not in str(err.value)
    for bad in (0, 6, 2.5, True, "3"):
        with pytest.raises(SpecError, match="severity must be one of 1, 2, 3, 4, 5"):
            corrupt(natural[:2], "fog", bad, seed=0, sample_ids=ids)  # type: ignore[arg-type]
    with pytest.raises(SpecError, match="seed must be a non-negative integer"):
        corrupt(natural[:2], "fog", 1, seed=-1, sample_ids=ids)
    for images in (natural[:2].astype(np.float32), natural[:2, :2], natural[0], np.zeros((2, 3, 15, 32), np.uint8)):
        with pytest.raises(DataError):
            corrupt(images, "fog", 1, seed=0, sample_ids=ids)
    for bad_ids in (np.arange(3), np.array([0, -1]), np.array([0.0, 1.0])):
        with pytest.raises(ValueError, match="sample_ids must be 2 non-negative integers"):
            corrupt(natural[:2], "fog", 1, seed=0, sample_ids=bad_ids)
