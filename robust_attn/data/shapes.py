"""The built-in data set: ten shape classes on cluttered, textured 32x32 backgrounds.

Each image holds one object (the label) of random colour, scale, position and rotation,
drawn over a background of random coloured gratings and pixel noise that is strewn with
distractor fragments (line segments and ring arcs). Every image comes with its object's
ground-truth mask, used to score attention maps as the paper does on Object Discovery.

Generation is vectorised over chunks of images and seeded per (seed, split, chunk), so
the first N images of a split are the same whatever the split's total size. The scene renderer
(:func:`generate_scenes`: a background, then one object placed and coloured) takes the background
and the class masks as arguments, so the unseen sets (:mod:`robust_attn.data.unseen`) draw their
objects exactly as this set does.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from robust_attn.errors import DataError

SHAPE_CLASSES: tuple[str, ...] = ("disk", "square", "triangle", "plus", "ring", "diamond", "star", "tee", "half-disk", "bars")
CHUNK = 1000
_SPLIT_IDS = {"train": 0, "test": 1}
_MAX_ROTATION = np.deg2rad(20.0)  # square/diamond and plus/cross must stay distinct

MaskFn = Callable[[int, np.ndarray, np.ndarray], np.ndarray]  # (label, u, v) -> mask, as _shape_mask
ColourFn = Callable[[np.random.Generator], np.ndarray]  # draws the objects' colours (m, 3) after their geometry
Background = Callable[[np.random.Generator, int, np.ndarray, np.ndarray], tuple[np.ndarray, ColourFn]]  # (rng, m, x, y) -> images, colours


def _shape_mask(label: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Mask of class ``label`` at object-frame coordinates (u right, v down, unit radius)."""
    au, av = np.abs(u), np.abs(v)
    r = np.hypot(u, v)
    name = SHAPE_CLASSES[label]
    if name == "disk":
        return r <= 1.0
    if name == "square":
        return np.maximum(au, av) <= 0.8
    if name == "triangle":
        return (v <= 0.7) & (v >= -0.9 + (1.6 / 0.9) * au)
    if name == "plus":
        return ((au <= 0.3) & (av <= 0.95)) | ((av <= 0.3) & (au <= 0.95))
    if name == "ring":
        return (r >= 0.5) & (r <= 1.0)
    if name == "diamond":
        return au + av <= 1.05
    if name == "star":
        return r <= 0.55 + 0.4 * np.cos(5 * np.arctan2(u, -v))
    if name == "tee":
        return ((v >= -0.95) & (v <= -0.5) & (au <= 0.95)) | ((au <= 0.25) & (v >= -0.95) & (v <= 0.95))
    if name == "half-disk":
        return (r <= 1.0) & (v >= -0.15)
    return (au <= 0.95) & (av >= 0.2) & (av <= 0.65)  # bars


def _uniform(
    rng: np.random.Generator, low: float | np.ndarray, high: float | np.ndarray, shape: int | tuple[int, ...] | None = None
) -> np.ndarray:
    """Uniform draws as float32, so that all image arithmetic stays in float32."""
    return rng.uniform(low, high, shape).astype(np.float32)


def _rotate(x: np.ndarray, y: np.ndarray, cx: np.ndarray, cy: np.ndarray, angle: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates (H, W) into per-image frames (m, H, W) centred at (cx, cy)."""
    dx = x[None] - cx[:, None, None]
    dy = y[None] - cy[:, None, None]
    c, s = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    return c * dx + s * dy, -s * dx + c * dy


def grating_background(rng: np.random.Generator, m: int, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The built-in background of ``m`` images on the pixel grid ``x``, ``y``: a base colour plus
    three random gratings per image, and pixel noise (drawn from ``rng`` in this order); returns the
    images and their base colours (the objects' colours are drawn relative to them)."""
    base = _uniform(rng, 0.25, 0.75, (m, 3))
    k = 3
    theta = _uniform(rng, 0, np.pi, (m, k))
    freq = _uniform(rng, 0.15, 0.9, (m, k))
    phase = _uniform(rng, 0, 2 * np.pi, (m, k))
    amp = _uniform(rng, -0.18, 0.18, (m, k, 3))
    proj = np.cos(theta)[..., None, None] * x + np.sin(theta)[..., None, None] * y
    waves = np.sin(freq[..., None, None] * proj + phase[..., None, None]).astype(np.float32)
    img = base[:, :, None, None] + np.einsum("mkc,mkhw->mchw", amp, waves)
    img += 0.04 * rng.standard_normal(img.shape, dtype=np.float32)
    return img, base


def paint(img: np.ndarray, mask: np.ndarray, colour: np.ndarray) -> None:
    """Set the pixels of ``mask`` (m, H, W) in images ``img`` (m, 3, H, W) to each image's ``colour`` (m, 3)."""
    np.copyto(img, colour[:, :, None, None], where=mask[:, None])


def distractors(rng: np.random.Generator, img: np.ndarray, x: np.ndarray, y: np.ndarray, colours: Callable[[], np.ndarray]) -> None:
    """Paint the built-in distractors over ``img``: four thin segments and three ring arcs, each
    smaller than any object, each in a colour ``colours()`` draws after its geometry."""
    m, size = len(img), x.shape[-1]
    for _ in range(4):
        u, v = _rotate(x, y, _uniform(rng, 0, size, m), _uniform(rng, 0, size, m), _uniform(rng, 0, np.pi, m))
        half_len = _uniform(rng, 2.0, 5.0, m)[:, None, None]
        half_wid = _uniform(rng, 0.5, 1.1, m)[:, None, None]
        paint(img, (np.abs(u) <= half_len) & (np.abs(v) <= half_wid), colours())
    for _ in range(3):
        u, v = _rotate(x, y, _uniform(rng, 0, size, m), _uniform(rng, 0, size, m), _uniform(rng, -np.pi, np.pi, m))
        radius = _uniform(rng, 2.5, 5.0, m)[:, None, None]
        r = np.hypot(u, v)
        arc = (r >= radius - 1.0) & (r <= radius) & (np.arctan2(v, u) >= 0) & (np.arctan2(v, u) <= 1.8)
        paint(img, arc, colours())


def builtin_background(rng: np.random.Generator, m: int, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, ColourFn]:
    """The built-in set's background (base colour, three gratings, pixel noise, distractors) and its
    object colour rule (a colour that contrasts with the base), drawing from ``rng`` in that order."""
    img, base = grating_background(rng, m, x, y)
    distractors(rng, img, x, y, lambda: _uniform(rng, 0, 1, (m, 3)))

    def colour(rng: np.random.Generator) -> np.ndarray:
        sign = rng.choice(np.array([-1.0, 1.0], np.float32), (m, 3))
        return np.clip(base + sign * _uniform(rng, 0.15, 0.5, (m, 3)), 0, 1).astype(np.float32)

    return img, colour


def place_objects(
    rng: np.random.Generator, m: int, x: np.ndarray, y: np.ndarray, mask_fn: MaskFn, n_classes: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where each of ``m`` images' object lies on the pixel grid ``x``, ``y``: its class (of
    ``n_classes``), scale, position (inside the image) and rotation, drawn in that order; returns
    the labels, the object-frame coordinate u (m, H, W; the shading runs along it) and the masks."""
    size = x.shape[-1]
    labels = rng.integers(0, n_classes, m)
    scale = _uniform(rng, 4.5, 9.0, m)
    cx = _uniform(rng, scale + 1, size - scale - 1)
    cy = _uniform(rng, scale + 1, size - scale - 1)
    u, v = _rotate(x, y, cx, cy, _uniform(rng, -_MAX_ROTATION, _MAX_ROTATION, m))
    u, v = u / scale[:, None, None], v / scale[:, None, None]
    masks = np.zeros((m, size, size), dtype=bool)
    for label in range(n_classes):
        idx = np.flatnonzero(labels == label)
        masks[idx] = mask_fn(label, u[idx], v[idx])
    return labels, u, masks


def render_scenes(
    rng: np.random.Generator, m: int, size: int, background: Background, mask_fn: MaskFn, n_classes: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One chunk of images (m, 3, size, size) uint8, labels and masks: ``background``, then one
    object of ``mask_fn``'s class (:func:`place_objects`) in the background's object colour, shaded."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) + np.float32(0.5)
    img, object_colour = background(rng, m, x, y)
    labels, u, masks = place_objects(rng, m, x, y, mask_fn, n_classes)
    colour = object_colour(rng)
    shading = 1.0 + 0.15 * u[:, None].astype(np.float32)  # a gentle gradient across the object
    np.copyto(img, np.clip(colour[:, :, None, None] * shading, 0, 1), where=masks[:, None])
    images = np.round(np.clip(img, 0, 1) * 255).astype(np.uint8)
    return images, labels.astype(np.int64), masks


def generate_scenes(
    n: int, split: str, seed: int, background: Background, mask_fn: MaskFn, n_classes: int, set_id: int | None, size: int = 32
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` images of ``split`` in chunks of CHUNK, seeded per (seed, split, chunk[, set_id]), so
    the first N images do not depend on n; ``set_id=None`` with the built-in background and masks
    is the built-in set (:func:`generate_shapes`)."""
    if split not in _SPLIT_IDS:
        raise DataError(f"unknown split {split!r}; use 'train' or 'test'")
    if n < 0:
        raise DataError(f"n must be non-negative, got {n}")
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for chunk, start in enumerate(range(0, n, CHUNK)):
        key = [seed, _SPLIT_IDS[split], chunk] + ([] if set_id is None else [set_id])
        images, labels, masks = render_scenes(np.random.default_rng(key), CHUNK, size, background, mask_fn, n_classes)
        take = min(CHUNK, n - start)
        parts.append((images[:take], labels[:take], masks[:take]))
    if not parts:
        return np.zeros((0, 3, size, size), np.uint8), np.zeros(0, np.int64), np.zeros((0, size, size), bool)
    return tuple(np.concatenate(p) for p in zip(*parts))  # type: ignore[return-value]


def generate_shapes(n: int, split: str = "train", seed: int = 0, size: int = 32) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Images (n, 3, size, size) uint8, labels (n,) int64 and object masks (n, size, size) bool."""
    return generate_scenes(n, split, seed, builtin_background, _shape_mask, len(SHAPE_CLASSES), None, size)
