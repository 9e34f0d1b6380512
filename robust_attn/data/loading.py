"""One entry point for every data set the suite knows, registered by name.

A data set declares what it can do (``has_masks``: object masks for weakly supervised
segmentation; ``splits``; ``generated``: made on the fly, so any seed is a new draw) and how to
load a split; nothing here matches on a data set's name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robust_attn.data.dataset import ImageDataset
from robust_attn.data.shapes import SHAPE_CLASSES, generate_shapes
from robust_attn.data.torchvision_sets import TORCHVISION_SETS, load_torchvision
from robust_attn.errors import DataError, DataNotFound

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
    image_shape: tuple[int, int, int] | None = None  # (C, H, W) before loading: a spec's eps grids are checked against it
    num_classes: int | None = None  # classes before loading: a hub model's classifier is checked against it


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
        BUILTIN,
        split,
        torch.from_numpy(images),
        torch.from_numpy(labels),
        SHAPE_CLASSES,
        BUILTIN_MEAN,
        BUILTIN_STD,
        torch.from_numpy(masks),
    )


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


def _cifar_c(name: str) -> Loader:
    """The clean test set a CIFAR-C release was made from (for clean accuracy and eps-ball attacks),
    carrying the release's published corrupted images for the corruption cells."""
    from functools import lru_cache

    from robust_attn.data.cifar_c import CIFAR_C_SETS, load_cifar_c

    spec = CIFAR_C_SETS[name]

    def load(split: str, n: int | None, data_dir: str | Path | None, download: bool, verify: bool, seed: int) -> ImageDataset:
        if data_dir is None:
            raise DataNotFound(
                f"{name} needs data_dir: the folder holding {spec.folder}/ (from {spec.record}) and the clean "
                f"{spec.clean} test set beside it (robust-attn sweep --download fetches the clean set)"
            )
        try:
            clean = load_torchvision(spec.clean, "test", data_dir, download=download, verify=verify).subset(n)
        except DataNotFound as err:
            raise DataNotFound(
                f"{name}: the clean {spec.clean} test set is needed beside {spec.folder}/ for clean accuracy: {err}"
            ) from None

        folder = Path(data_dir).expanduser() / spec.folder
        if not folder.is_dir():  # before any work, not at the first corruption cell
            raise DataNotFound(
                f"{spec.folder} folder {str(folder)!r} not found; download {spec.folder}.tar from {spec.record} "
                f"and unpack it into {str(data_dir)!r}"
            )

        @lru_cache(maxsize=2)
        def block(corruption: str, severity: int) -> np.ndarray:
            published = load_cifar_c(name, data_dir, corruption, severity, n=len(clean))
            if len(published) < len(clean) or not torch.equal(published.labels, clean.labels):
                raise DataError(
                    f"{spec.folder}/labels.npy does not match the first {len(clean)} labels of the clean {spec.clean} "
                    f"test set under {data_dir} (or holds fewer rows); both must be the published files"
                )
            return published.images.numpy()

        return replace(clean, name=name, published_corruptions=lambda c, s, idx: block(c, s)[np.asarray(idx)], trained_as=spec.clean)

    return load


register_dataset(
    DataSource(
        BUILTIN,
        _builtin,
        has_masks=True,
        generated=True,
        image_shape=(3, 32, 32),
        num_classes=len(SHAPE_CLASSES),
        description="ten shape classes on cluttered 32x32 backgrounds, with object masks",
    )
)
for _name, _spec in TORCHVISION_SETS.items():
    register_dataset(
        DataSource(
            _name,
            _torchvision(_name),
            description=f"torchvision {_spec.class_name}, read from data_dir",
            image_shape=_spec.image_shape,
            num_classes=_spec.num_classes,
        )
    )
for _name, _clean in (("cifar10c", "cifar10"), ("cifar100c", "cifar100")):
    register_dataset(
        DataSource(
            _name,
            _cifar_c(_name),
            splits=("test",),
            description="published CIFAR-C corruptions of the clean test set in data_dir",
            image_shape=TORCHVISION_SETS[_clean].image_shape,
            num_classes=TORCHVISION_SETS[_clean].num_classes,
        )
    )
