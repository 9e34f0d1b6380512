"""The contract of the data-source registry, as tests/test_contract.py is for evaluations: every
registered data set, written here in its real on-disk format (tiny), loads each split it declares
with the image shape, class count and masks it declares, streams when it says it does, yields
batches of images in [0, 1] with labels among its classes, and refuses a split it does not declare
and a missing folder in one line. A new registration without a writer here fails the first test."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.io
import torch
from test_cifar_c import write_release
from test_corruption_sweep import _write_cifar10, _write_cifar10c
from test_data import _write_cifar, write_mnist
from test_your_data import _imagenet, _jpeg, write_folder

import robust_attn as ra
from robust_attn.data.folders import imagenet_wnids
from robust_attn.data.loading import _DATASETS, DataSource
from robust_attn.data.streamed import StreamedDataset
from robust_attn.errors import DataError, DataNotFound


def _cifar100(root: Path) -> dict[str, Any]:
    _write_cifar(root, "cifar-100-python", ["train", "test"], "fine_labels", "meta", "fine_label_names", 100)
    return {"verify": False}


def _svhn(root: Path) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        scipy.io.savemat(
            root / f"{split}_32x32.mat",
            {"X": rng.integers(0, 256, (32, 32, 3, 5), dtype=np.uint8), "y": np.array([[10], [1], [2], [3], [4]], np.uint8)},
        )
    return {"verify": False}


def _mnist(folder: str) -> Callable[[Path], dict[str, Any]]:
    return lambda root: (write_mnist(root, folder), {})[1]


def _cifar10c(root: Path) -> dict[str, Any]:
    _write_cifar10c(root, _write_cifar10(root, 8), ["fog"])
    return {"verify": False}


def _cifar100c(root: Path) -> dict[str, Any]:
    _cifar100(root)
    write_release(root, "CIFAR-100-C", ("fog",), classes=100)
    return {"verify": False}


def _imagenet_c(root: Path) -> dict[str, Any]:
    for rel in _imagenet(root, imagenet_wnids()[:2]):
        _jpeg(root / "ImageNet-C" / "fog" / "1" / rel, seed=7, size=(224, 224))
    return {"resize": 32, "crop": 32}


def _folder_c(root: Path) -> dict[str, Any]:
    write_folder(root / "clean")
    for path in (root / "clean").rglob("*.jpg"):
        _jpeg(root / "corrupted" / "fog" / "1" / path.relative_to(root / "clean"), seed=3, size=(40, 48))
    return {"corrupted_dir": str(root / "corrupted"), "data_dir": root / "clean"}


WRITERS: dict[str, Callable[[Path], dict[str, Any]]] = {
    "builtin": lambda root: {},
    "cifar10": lambda root: (_write_cifar10(root, 8), {"verify": False})[1],
    "cifar100": _cifar100,
    "svhn": _svhn,
    "mnist": _mnist("MNIST"),
    "fashionmnist": _mnist("FashionMNIST"),
    "cifar10c": _cifar10c,
    "cifar100c": _cifar100c,
    "imagefolder": lambda root: (write_folder(root), {})[1],
    "imagenet": lambda root: (_imagenet(root, imagenet_wnids()[:2]), {"resize": 32, "crop": 32})[1],
    "imagenet-c": _imagenet_c,
    "imagefolder-c": _folder_c,
}


def test_every_registered_data_set_has_a_writer_here() -> None:
    assert set(WRITERS) == {s.name for s in _DATASETS.values()}, "write a tiny release of the new data set in WRITERS"


@pytest.mark.parametrize("source", list(_DATASETS.values()), ids=lambda s: s.name)
def test_every_registered_data_set_keeps_its_declarations(source: DataSource, tmp_path: Path) -> None:
    options = WRITERS[source.name](tmp_path)
    data_dir = options.pop("data_dir", None if source.generated else tmp_path)
    for split in source.splits:
        data = ra.load_dataset(source.name, split, n=8, data_dir=data_dir, **options)
        assert 0 < len(data) <= 8
        if source.image_shape is not None:
            assert data.image_shape == source.image_shape
        if source.num_classes is not None:
            assert len(data.classes) == source.num_classes
        assert data.has_masks == source.has_masks
        assert isinstance(data, StreamedDataset) == (source.streams and data.streamed)
        for _, x, y in data.batches(5):
            assert x.dtype == torch.float32 and x.shape[1:] == data.image_shape and x.min() >= 0 and x.max() <= 1
            assert ((y >= 0) & (y < len(data.classes))).all()
    undeclared = next(s for s in ("train", "test", "val", "extra") if s not in source.splits)
    with pytest.raises(DataError, match=undeclared):
        ra.load_dataset(source.name, undeclared, n=8, data_dir=data_dir, **options)
    if not source.generated:
        with pytest.raises(DataNotFound):
            ra.load_dataset(source.name, source.splits[0], n=8, data_dir=tmp_path / "absent", **options)
