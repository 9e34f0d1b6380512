"""Data sets the zoo never saw, for the paper's generalisation claim (linear probes on frozen features).

* ``shapes-unseen-classes``: eight new shape classes (ellipse, crescent, arrow, x-cross, heart,
  hourglass, chevron, frame) drawn exactly as the built-in set draws its objects, over the built-in
  backgrounds (same gratings, noise and distractors, same colour rule). Every new class has IoU
  below 0.7 with every built-in class at any pose the generators produce.
* ``shapes-unseen-backgrounds``: the built-in ten classes over backgrounds the built-in generator
  never makes (smooth colour gradients, rotated checkerboards, low-frequency blobs) in colour
  palettes it never makes (dark, bright, or all-grey images).
* ``mnist``, ``fashionmnist``, ``svhn``, ``cifar10`` through the torchvision loaders when their
  files are in ``data_dir``, as 3 x 32 x 32 images (28 x 28 grey padded by 2 and repeated).

Generated sets are seeded per (seed, split, chunk, set), like the built-in set, so the first N
images of a split do not depend on its total size, and their random streams never coincide with
the built-in set's. A torchvision set whose files are absent is skipped with a one-line reason;
one whose files are present but broken raises its loader's error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from robust_attn.data.dataset import ImageDataset
from robust_attn.data.loading import BUILTIN_MEAN, BUILTIN_STD, load_in_memory
from robust_attn.data.shapes import (  # builtin_background, generate_scenes: also imported from here
    SHAPE_CLASSES,
    ColourFn,
    _rotate,
    _shape_mask,
    _uniform,
    builtin_background,
    distractors,
    generate_scenes,
)
from robust_attn.errors import DataError, DataNotFound

UNSEEN_CLASSES: tuple[str, ...] = ("ellipse", "crescent", "arrow", "x-cross", "heart", "hourglass", "chevron", "frame")
UNSEEN_CLASSES_SET = "shapes-unseen-classes"
UNSEEN_BACKGROUNDS_SET = "shapes-unseen-backgrounds"
REAL_SETS: tuple[str, ...] = ("mnist", "fashionmnist", "svhn", "cifar10")
UNSEEN_SETS: tuple[str, ...] = (UNSEEN_CLASSES_SET, UNSEEN_BACKGROUNDS_SET, *REAL_SETS)
N_TRAIN, N_TEST = 2000, 1000  # CPU-sized defaults
BACKGROUND_STYLES = ("gradient", "checker", "blobs")
PALETTES = ("dark", "bright", "grey")
_SET_IDS = {UNSEEN_CLASSES_SET: 1, UNSEEN_BACKGROUNDS_SET: 2}  # the built-in set draws with no set id
# Files whose presence means "the user has this data set" (torchvision's own names under data_dir).
_IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")  # MNIST's layout
_TORCHVISION_FILES: dict[str, tuple[str, ...]] = {
    "mnist": tuple(f"MNIST/raw/{f}" for f in _IDX_FILES),
    "fashionmnist": tuple(f"FashionMNIST/raw/{f}" for f in _IDX_FILES),
    "svhn": ("train_32x32.mat", "test_32x32.mat"),
    "cifar10": tuple(f"cifar-10-batches-py/{f}" for f in ("data_batch_1", "test_batch", "batches.meta")),
}


class UnseenDataAbsent(DataNotFound):
    """A torchvision set none of whose files are under ``data_dir``: skipped, not an error."""


def unseen_mask(label: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Mask of unseen class ``label`` at object-frame coordinates (u right, v down, unit radius)."""
    au, av = np.abs(u), np.abs(v)
    name = UNSEEN_CLASSES[label]
    if name == "ellipse":
        return (u / 0.95) ** 2 + (v / 0.42) ** 2 <= 1
    if name == "crescent":
        return (np.hypot(u, v) <= 0.95) & (np.hypot(u - 0.45, v) >= 0.72)
    if name == "arrow":
        return ((u >= -0.95) & (u <= 0.1) & (av <= 0.22)) | ((u >= 0.1) & (u <= 0.95) & (av <= 0.8 * (0.95 - u) / 0.85))
    if name == "x-cross":  # a thin plus at 45 degrees: the generators rotate by 20 degrees at most
        a, b = np.abs(u + v) / np.sqrt(2), np.abs(u - v) / np.sqrt(2)
        return ((a <= 0.14) & (b <= 0.95)) | ((b <= 0.14) & (a <= 0.95))
    if name == "heart":
        lobes = (np.hypot(u - 0.45, v + 0.4) <= 0.48) | (np.hypot(u + 0.45, v + 0.4) <= 0.48)
        return lobes | ((v >= -0.4) & (v <= 0.95) & (au <= 0.88 * (0.95 - v) / 1.35))
    if name == "hourglass":
        return (av <= 0.95) & (au <= 0.85 * av + 0.1)
    if name == "chevron":
        return (au <= 0.95) & (np.abs(v + 0.55 - 1.1 * au) <= 0.3)
    edge = np.maximum(au, av)  # frame: a square outline
    return (edge <= 0.9) & (edge >= 0.55)


def _palette_colours(rng: np.random.Generator, palette: np.ndarray, role: str) -> np.ndarray:
    """Colours (m, 3) of each image's palette: ``role`` background or object (contrasting with it)."""
    m = len(palette)
    # (dark, bright, grey) ranges per channel; grey objects are then pushed to the ends
    ranges = {"background": ((0.0, 0.2), (0.8, 1.0), (0.3, 0.7)), "object": ((0.45, 1.0), (0.0, 0.55), (0.0, 1.0))}[role]
    low = np.array([r[0] for r in ranges], np.float32)[palette][:, None]
    high = np.array([r[1] for r in ranges], np.float32)[palette][:, None]
    colours = _uniform(rng, low, high, (m, 3))
    grey = palette == PALETTES.index("grey")
    colours[grey] = colours[grey, :1]  # grey palette: equal channels
    if role == "object":  # grey objects: black-ish or white-ish, never the background's mid grey
        shifted = np.where(colours < 0.5, 0.6 * colours, 0.4 + 0.6 * colours)
        colours[grey] = shifted[grey]
    return colours


def _blob_field(rng: np.random.Generator, m: int, size: int, cells: int = 5) -> np.ndarray:
    """Low-frequency noise in [0, 1]: a random cells x cells grid, bilinearly upsampled to size x size."""
    grid = torch.from_numpy(_uniform(rng, 0, 1, (m, 1, cells, cells)))
    return F.interpolate(grid, size=(size, size), mode="bilinear", align_corners=True)[:, 0].numpy()


def novel_background(rng: np.random.Generator, m: int, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, ColourFn]:
    """Backgrounds the built-in generator never makes: per image one style of BACKGROUND_STYLES
    between two colours of one palette of PALETTES, faint noise, and the built-in distractors in
    object-palette colours. Objects take a colour of their image's palette that contrasts with it."""
    size = x.shape[-1]
    style = rng.integers(0, len(BACKGROUND_STYLES), m)
    palette = rng.integers(0, len(PALETTES), m)
    c1, c2 = _palette_colours(rng, palette, "background"), _palette_colours(rng, palette, "background")
    angle = _uniform(rng, 0, np.pi, m)
    u, v = _rotate(x, y, np.full(m, size / 2, np.float32), np.full(m, size / 2, np.float32), angle)
    gradient = (u + size / np.sqrt(2)) / (size * np.sqrt(2))
    cell = _uniform(rng, 3.0, 6.0, m)[:, None, None]
    checker = ((np.floor(u / cell) + np.floor(v / cell)) % 2).astype(np.float32)
    blobs = _blob_field(rng, m, size)
    t = np.choose(style[:, None, None], [gradient, checker, blobs]).astype(np.float32)
    img = c1[:, :, None, None] + (c2 - c1)[:, :, None, None] * t[:, None]
    noise = 0.02 * rng.standard_normal((m, 3, size, size), dtype=np.float32)
    grey = palette == PALETTES.index("grey")
    noise[grey] = noise[grey, :1]
    img += noise
    distractors(rng, img, x, y, lambda: _palette_colours(rng, palette, "object"))
    return img, lambda rng: _palette_colours(rng, palette, "object")


# Per-channel mean and std of 10,000 generated train images (seed 0); metadata only: models normalise themselves.
_BACKGROUNDS_MEAN, _BACKGROUNDS_STD = (0.50, 0.50, 0.50), (0.33, 0.33, 0.33)


def load_generated(name: str, split: str, n: int, seed: int = 0) -> ImageDataset:
    """``n`` images of generated unseen set ``name`` (with object masks)."""
    if name == UNSEEN_CLASSES_SET:
        arrays = generate_scenes(n, split, seed, builtin_background, unseen_mask, len(UNSEEN_CLASSES), _SET_IDS[name])
        classes, mean, std = UNSEEN_CLASSES, BUILTIN_MEAN, BUILTIN_STD
    elif name == UNSEEN_BACKGROUNDS_SET:
        arrays = generate_scenes(n, split, seed, novel_background, _shape_mask, len(SHAPE_CLASSES), _SET_IDS[name])
        classes, mean, std = SHAPE_CLASSES, _BACKGROUNDS_MEAN, _BACKGROUNDS_STD
    else:
        raise DataError(f"unknown generated unseen set {name!r}; use {UNSEEN_CLASSES_SET} or {UNSEEN_BACKGROUNDS_SET}")
    images, labels, masks = (torch.from_numpy(a) for a in arrays)
    return ImageDataset(name, split, images, labels, classes, mean, std, masks)


def as_rgb32(data: ImageDataset) -> ImageDataset:
    """The set as 3 x 32 x 32 images: grey images repeated over 3 channels, smaller ones zero-padded
    to 32 x 32 (MNIST's 28 x 28 digits keep their scale, as LeNet-5's inputs do)."""
    images = data.images
    c, h, w = data.image_shape
    if (h, w) != (32, 32):
        if h > 32 or w > 32:
            raise DataError(f"{data.name}: images of {h}x{w} are larger than the models' 32x32 input")
        top, left = (32 - h) // 2, (32 - w) // 2
        images = F.pad(images, (left, 32 - w - left, top, 32 - h - top))
    if c == 1:
        images = images.repeat(1, 3, 1, 1)
    elif c != 3:
        raise DataError(f"{data.name}: {c}-channel images cannot be converted to RGB")
    mean, std = (data.mean * 3, data.std * 3) if c == 1 else (data.mean, data.std)
    return ImageDataset(data.name, data.split, images.contiguous(), data.labels, data.classes, mean, std, None)


def _check_present(name: str, data_dir: str | Path | None) -> None:
    """Raise UnseenDataAbsent when none of the set's files are under ``data_dir``."""
    if data_dir is None:
        raise UnseenDataAbsent(f"{name}: skipped, no data_dir given")
    root = Path(data_dir).expanduser()
    if not any((root / f).exists() for f in _TORCHVISION_FILES[name]):
        raise UnseenDataAbsent(f"{name}: skipped, none of its files ({_TORCHVISION_FILES[name][0]}, ...) are under {str(root)!r}")


@dataclass(frozen=True)
class UnseenSplits:
    """The train and test splits of one unseen data set."""

    name: str
    train: ImageDataset
    test: ImageDataset


@dataclass(frozen=True)
class Skipped:
    """An unseen set that was not loaded, and why (one line)."""

    name: str
    reason: str


def load_unseen(
    name: str, *, data_dir: str | Path | None = None, n_train: int = N_TRAIN, n_test: int = N_TEST, seed: int = 0
) -> UnseenSplits:
    """Train and test splits of unseen set ``name`` (one of UNSEEN_SETS), as 3 x 32 x 32 images.

    Generated sets are a draw of ``seed``; torchvision sets are their first n images (``seed`` is
    ignored). Raises UnseenDataAbsent when a torchvision set's files are absent, and the loader's
    DataNotFound / DataError when they are present but broken.
    """
    if name in _SET_IDS:
        return UnseenSplits(name, load_generated(name, "train", n_train, seed), load_generated(name, "test", n_test, seed))
    if name not in _TORCHVISION_FILES:
        raise DataError(f"unknown unseen data set {name!r}; known: {', '.join(UNSEEN_SETS)}")
    _check_present(name, data_dir)
    train, test = (as_rgb32(load_in_memory(name, split, n=k, data_dir=data_dir)) for split, k in (("train", n_train), ("test", n_test)))
    return UnseenSplits(name, train, test)


def unseen_datasets(
    names: Sequence[str] = UNSEEN_SETS,
    *,
    data_dir: str | Path | None = None,
    n_train: int = N_TRAIN,
    n_test: int = N_TEST,
    seed: int = 0,
    exclude: Sequence[str] = (),
) -> tuple[list[UnseenSplits], list[Skipped]]:
    """Every loadable set of ``names`` except ``exclude`` (the models' training sets, say ``cifar10``
    for the paper's CIFAR-10 zoo), and the skipped ones with their reasons."""
    loaded: list[UnseenSplits] = []
    skipped: list[Skipped] = []
    excluded = {n.lower().replace("-", "").replace("_", "") for n in exclude}
    for name in names:
        if name.lower().replace("-", "").replace("_", "") in excluded:
            skipped.append(Skipped(name, f"{name}: skipped, the models were trained on it"))
            continue
        try:
            loaded.append(load_unseen(name, data_dir=data_dir, n_train=n_train, n_test=n_test, seed=seed))
        except UnseenDataAbsent as err:
            skipped.append(Skipped(name, str(err)))
    return loaded, skipped
