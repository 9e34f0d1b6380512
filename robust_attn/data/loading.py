"""One entry point for every data set the suite knows, registered by name.

A data set declares what it can do (``has_masks``: object masks for weakly supervised
segmentation; ``splits``; ``generated``: made on the fly, so any seed is a new draw) and how to
load a split; nothing here matches on a data set's name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from robust_attn.data.dataset import ImageDataset
from robust_attn.data.shapes import SHAPE_CLASSES, generate_shapes
from robust_attn.data.torchvision_sets import TORCHVISION_SETS, load_torchvision
from robust_attn.errors import DataError

BUILTIN = "builtin"
BUILTIN_MEAN = (0.5, 0.5, 0.5)
BUILTIN_STD = (0.22, 0.22, 0.22)  # measured on 60,000 generated images
BUILTIN_SIZES = {"train": 50_000, "test": 10_000}  # what the built-in set offers (any n above is capped, with a note)

# (split, n, data_dir, download, verify, seed) -> data set
Loader = Callable[[str, int | None, str | Path | None, bool, bool, int], ImageDataset]


@dataclass(frozen=True)
class DataSource:
    """A registered data set."""

    name: str
    load: Loader
    splits: tuple[str, ...] = ("train", "test")
    has_masks: bool = False
    generated: bool = False
    description: str = ""


_DATASETS: dict[str, DataSource] = {}


def register_dataset(source: DataSource) -> None:
    _DATASETS[source.name] = source


def _key(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


def list_datasets() -> list[str]:
    """Names accepted by :func:`load_dataset`."""
    return list(_DATASETS)


def dataset_source(name: str) -> DataSource:
    try:
        return _DATASETS[_key(name)]
    except KeyError:
        raise DataError(f"unknown data set {name!r}; known: {', '.join(list_datasets())}") from None


def load_builtin(split: str = "train", n: int | None = None, seed: int = 0) -> ImageDataset:
    """The generated shapes data set (see :mod:`robust_attn.data.shapes`), with masks; at most
    ``BUILTIN_SIZES[split]`` images (a larger ``n`` is capped: callers say so)."""
    offered = BUILTIN_SIZES.get(split, 0)
    count = offered if n is None else min(n, offered)
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
    """Load ``split`` of data set ``name``; ``n`` keeps the first n samples (at most what the split holds).

    ``builtin`` is generated (``seed`` picks the draw); the others are read with torchvision
    from ``data_dir``.
    """
    source = dataset_source(name)
    if split not in source.splits:
        raise DataError(f"data set {source.name!r} has no split {split!r}; use one of {', '.join(source.splits)}")
    return source.load(split, n, data_dir, download, verify, seed)


def _builtin(split: str, n: int | None, data_dir: Any, download: bool, verify: bool, seed: int) -> ImageDataset:
    return load_builtin(split, n, seed)


def _torchvision(name: str) -> Loader:
    def load(split: str, n: int | None, data_dir: str | Path | None, download: bool, verify: bool, seed: int) -> ImageDataset:
        return load_torchvision(name, split, data_dir, download=download, verify=verify).subset(n)

    return load


register_dataset(DataSource(BUILTIN, _builtin, has_masks=True, generated=True, description="ten shape classes on cluttered 32x32 backgrounds, with object masks"))
for _name, _spec in TORCHVISION_SETS.items():
    register_dataset(DataSource(_name, _torchvision(_name), description=f"torchvision {_spec.cls.__name__}, read from data_dir"))
