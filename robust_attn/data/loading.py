"""One entry point for every data set the suite knows."""

from __future__ import annotations

from pathlib import Path

import torch

from robust_attn.data.dataset import ImageDataset
from robust_attn.data.shapes import SHAPE_CLASSES, generate_shapes
from robust_attn.data.torchvision_sets import TORCHVISION_SETS, load_torchvision

BUILTIN = "builtin"
BUILTIN_MEAN = (0.5, 0.5, 0.5)
BUILTIN_STD = (0.22, 0.22, 0.22)  # measured on 60,000 generated images
BUILTIN_SIZES = {"train": 50_000, "test": 10_000}


def list_datasets() -> list[str]:
    """Names accepted by :func:`load_dataset`."""
    return [BUILTIN, *TORCHVISION_SETS]


def load_builtin(split: str = "train", n: int | None = None, seed: int = 0) -> ImageDataset:
    """The generated shapes data set (see :mod:`robust_attn.data.shapes`), with masks."""
    count = BUILTIN_SIZES.get(split, 0) if n is None else n
    images, labels, masks = generate_shapes(count, split, seed)
    return ImageDataset(
        BUILTIN, split, torch.from_numpy(images), torch.from_numpy(labels), SHAPE_CLASSES,
        BUILTIN_MEAN, BUILTIN_STD, torch.from_numpy(masks),
    )  # fmt: skip


def load_dataset(
    name: str,
    split: str = "test",
    *,
    n: int | None = None,
    data_dir: str | Path | None = None,
    download: bool = False,
    verify: bool = True,
    seed: int = 0,
) -> ImageDataset:
    """Load ``split`` of data set ``name``; ``n`` keeps the first n samples.

    ``builtin`` is generated (``seed`` picks the draw); the others are read with torchvision
    from ``data_dir``.
    """
    key = name.lower().replace("-", "").replace("_", "")
    if key == BUILTIN:
        return load_builtin(split, n, seed)
    if key not in TORCHVISION_SETS:
        raise ValueError(f"unknown data set {name!r}; known: {', '.join(list_datasets())}")
    return load_torchvision(key, split, data_dir, download=download, verify=verify).subset(n)
