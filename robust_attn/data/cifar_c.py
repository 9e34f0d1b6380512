"""CIFAR-10-C and CIFAR-100-C, read from the published ``.npy`` files.

The releases (Hendrycks & Dietterich, ICLR 2019; zenodo records 2535967 and 3555552) unpack to
``<data_dir>/CIFAR-10-C/`` (or ``CIFAR-100-C/``) holding one ``<corruption>.npy`` per corruption,
shape (50000, 32, 32, 3) uint8 with severities 1-5 in consecutive blocks of 10,000 test images,
and ``labels.npy`` (50,000 labels, the test labels once per block). RobustBench's
``load_cifar10c`` reads the same layout. Files are memory-mapped, so only the rows asked for
are read; the block size is rows / 5, so small files in the same layout work too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from robust_attn.corruptions import CORRUPTIONS, SEVERITIES
from robust_attn.data.dataset import ImageDataset
from robust_attn.data.torchvision_sets import TORCHVISION_SETS
from robust_attn.errors import DataError, DataNotFound

EXTRA_CORRUPTIONS: tuple[str, ...] = ("speckle_noise", "gaussian_blur", "spatter", "saturate")
"""The four held-out corruptions that both releases also ship."""
CIFAR_C_CORRUPTIONS: tuple[str, ...] = CORRUPTIONS + EXTRA_CORRUPTIONS

CIFAR10_CLASSES: tuple[str, ...] = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR100_CLASSES: tuple[str, ...] = (
    "apple",
    "aquarium_fish",
    "baby",
    "bear",
    "beaver",
    "bed",
    "bee",
    "beetle",
    "bicycle",
    "bottle",
    "bowl",
    "boy",
    "bridge",
    "bus",
    "butterfly",
    "camel",
    "can",
    "castle",
    "caterpillar",
    "cattle",
    "chair",
    "chimpanzee",
    "clock",
    "cloud",
    "cockroach",
    "couch",
    "crab",
    "crocodile",
    "cup",
    "dinosaur",
    "dolphin",
    "elephant",
    "flatfish",
    "forest",
    "fox",
    "girl",
    "hamster",
    "house",
    "kangaroo",
    "keyboard",
    "lamp",
    "lawn_mower",
    "leopard",
    "lion",
    "lizard",
    "lobster",
    "man",
    "maple_tree",
    "motorcycle",
    "mountain",
    "mouse",
    "mushroom",
    "oak_tree",
    "orange",
    "orchid",
    "otter",
    "palm_tree",
    "pear",
    "pickup_truck",
    "pine_tree",
    "plain",
    "plate",
    "poppy",
    "porcupine",
    "possum",
    "rabbit",
    "raccoon",
    "ray",
    "road",
    "rocket",
    "rose",
    "sea",
    "seal",
    "shark",
    "shrew",
    "skunk",
    "skyscraper",
    "snail",
    "snake",
    "spider",
    "squirrel",
    "streetcar",
    "sunflower",
    "sweet_pepper",
    "table",
    "tank",
    "telephone",
    "television",
    "tiger",
    "tractor",
    "train",
    "trout",
    "tulip",
    "turtle",
    "wardrobe",
    "whale",
    "willow_tree",
    "wolf",
    "woman",
    "worm",
)


@dataclass(frozen=True)
class CifarCSpec:
    """One release: its folder, where to get it, and the clean data set it was made from."""

    folder: str
    record: str
    clean: str
    classes: tuple[str, ...]


CIFAR_C_SETS: dict[str, CifarCSpec] = {
    "cifar10c": CifarCSpec("CIFAR-10-C", "https://zenodo.org/records/2535967", "cifar10", CIFAR10_CLASSES),
    "cifar100c": CifarCSpec("CIFAR-100-C", "https://zenodo.org/records/3555552", "cifar100", CIFAR100_CLASSES),
}
IMAGE_SHAPE = (32, 32, 3)


def _key(dataset: str) -> str:
    """``dataset`` as a key of CIFAR_C_SETS ("CIFAR-10-C" and "cifar10_c" name "cifar10c")."""
    key = dataset.lower().replace("-", "").replace("_", "")
    if key not in CIFAR_C_SETS:
        raise DataError(f"unknown corrupted data set {dataset!r}; known: {', '.join(CIFAR_C_SETS)}")
    return key


def _fetch_hint(spec: CifarCSpec, data_dir: Path) -> str:
    return f"download {spec.folder}.tar from {spec.record} and unpack it into {str(data_dir)!r}"


def _open(path: Path, spec: CifarCSpec, data_dir: Path) -> np.ndarray:
    """Memory-map one .npy file; a missing file is DataNotFound, an unreadable one DataError."""
    if not path.is_file():
        raise DataNotFound(f"{spec.folder} file {str(path)!r} not found; {_fetch_hint(spec, data_dir)}")
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as err:
        raise DataError(f"{str(path)!r} is not a readable .npy file ({err}); {_fetch_hint(spec, data_dir)} again") from None


def _check_images(images: np.ndarray, path: Path) -> int:
    """The block size (rows / 5) of a well-formed corruption file."""
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != IMAGE_SHAPE:
        raise DataError(f"{str(path)!r} holds {images.dtype} {images.shape}; expected uint8 (5 x N, 32, 32, 3)")
    if len(images) == 0 or len(images) % len(SEVERITIES):
        raise DataError(f"{str(path)!r} has {len(images)} rows, not a positive multiple of 5 (one block per severity)")
    return len(images) // len(SEVERITIES)


def _check_labels(labels: np.ndarray, rows: int, classes: int, path: Path) -> None:
    if labels.ndim != 1 or len(labels) != rows or labels.dtype.kind not in "iu":
        raise DataError(f"{str(path)!r} holds {labels.dtype} {labels.shape}; expected {rows} integer labels, one per image row")
    if rows and (int(labels.min()) < 0 or int(labels.max()) >= classes):
        raise DataError(f"{str(path)!r} has labels outside 0..{classes - 1}")


def load_cifar_c(dataset: str, data_dir: str | Path, corruption: str, severity: int, n: int | None = None) -> ImageDataset:
    """The test images of ``dataset`` ("cifar10c" or "cifar100c") under ``corruption`` at
    ``severity`` (1-5): the first ``n`` of its block (all 10,000 when None), images NCHW uint8."""
    key = _key(dataset)
    spec = CIFAR_C_SETS[key]
    if corruption not in CIFAR_C_CORRUPTIONS:
        raise DataError(f"unknown {spec.folder} corruption {corruption!r}; known: {', '.join(CIFAR_C_CORRUPTIONS)}")
    if isinstance(severity, bool) or not isinstance(severity, int | np.integer) or severity not in SEVERITIES:
        raise DataError(f"{spec.folder} severity must be one of 1, 2, 3, 4, 5, got {severity!r}")
    if n is not None and n < 0:
        raise DataError(f"n must be non-negative, got {n}")
    root = Path(data_dir).expanduser()
    folder = root / spec.folder
    if not folder.is_dir():
        raise DataNotFound(f"{spec.folder} folder {str(folder)!r} not found; {_fetch_hint(spec, root)}")
    images = _open(folder / f"{corruption}.npy", spec, root)
    block = _check_images(images, folder / f"{corruption}.npy")
    labels = _open(folder / "labels.npy", spec, root)
    _check_labels(labels, len(images), len(spec.classes), folder / "labels.npy")
    start = (int(severity) - 1) * block
    stop = start + (block if n is None else min(n, block))
    clean = TORCHVISION_SETS[spec.clean]
    return ImageDataset(
        key,
        "test",
        torch.from_numpy(np.array(images[start:stop].transpose(0, 3, 1, 2), order="C")),  # copies: reads these rows only
        torch.from_numpy(np.array(labels[start:stop], dtype=np.int64)),
        spec.classes,
        clean.mean,
        clean.std,
    )
