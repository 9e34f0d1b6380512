"""One entry point for every data set the suite knows, registered by name.

A data set declares what it can do (``has_masks``: object masks for weakly supervised
segmentation; ``splits``; ``generated``: made on the fly, so any seed is a new draw; ``streams``:
read from files batch by batch; its image shape, or None when it varies; the ``options`` a
spec's data table may set) and how to load a split; nothing here matches on a data set's name.
A ``package.module:factory`` name is the user's own data set (:mod:`robust_attn.data.custom`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robust_attn.data.dataset import ImageData, ImageDataset
from robust_attn.data.shapes import SHAPE_CLASSES, generate_shapes
from robust_attn.data.torchvision_sets import TORCHVISION_SETS, load_torchvision
from robust_attn.errors import DataError, DataNotFound
from robust_attn.import_spec import is_import_spec

BUILTIN = "builtin"
BUILTIN_MEAN = (0.5, 0.5, 0.5)
BUILTIN_STD = (0.22, 0.22, 0.22)  # measured on 60,000 generated images
BUILTIN_SIZES = {"train": 50_000, "test": 10_000}  # what the built-in set offers (any n above is capped, with a note)

# (split, n, data_dir, download, verify, seed, **options) -> data set
Loader = Callable[..., ImageData]

PREPROCESSING_OPTIONS = {
    "resize": "resize each image: its shorter side to this many pixels, or [height, width] exactly",
    "crop": "then crop its centre: a side in pixels, or [height, width]",
    "interpolation": "of the resize: bilinear (default), bicubic, nearest, lanczos, box or hamming",
}
FILE_OPTIONS = {
    **PREPROCESSING_OPTIONS,
    "classes": "the class names in the model's order (default: the folder names, sorted)",
    "order": "stratified (default: the classes in turn, so the first n are spread over them) or folder (class by class)",
    "stream": "auto (default: held in memory when it fits 256 MiB), true (decoded batch by batch) or false (held)",
    "loader_workers": "DataLoader worker processes decoding images (default 2)",
}


@dataclass(frozen=True)
class DataSource:
    """A registered data set."""

    name: str
    load: Loader
    splits: tuple[str, ...] = ("train", "test")
    has_masks: bool = False
    generated: bool = False
    description: str = ""
    image_shape: tuple[int, int, int] | None = None  # (C, H, W) before loading (None: varies, set by preprocessing)
    num_classes: int | None = None  # classes before loading (None: the folders say): a hub model's classifier is checked against it
    streams: bool = False  # read from files batch by batch (memory follows the batch)
    options: dict[str, str] = field(default_factory=dict)  # option -> what it does, for a spec's data table
    run_only: frozenset[str] = frozenset({"stream", "loader_workers"})  # options that change how it is read, not the numbers

    def result_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """The options that change the images (what a run's units and fingerprint are keyed on)."""
        return {k: v for k, v in options.items() if k not in self.run_only}

    def check_options(self, options: dict[str, Any]) -> None:
        """A data table's options against those the data set declares."""
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            takes = ", ".join(self.options) if self.options else "none"
            raise DataError(f"data set {self.name!r} takes no option {unknown[0]!r}; it takes: {takes}")


_DATASETS: dict[str, DataSource] = {}


def register_dataset(source: DataSource) -> None:
    _DATASETS[_key(source.name)] = source


def _key(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


def list_datasets() -> list[str]:
    """Names accepted by :func:`load_dataset` (besides package.module:factory, your own)."""
    return [s.name for s in _DATASETS.values()]


def load_in_memory(name: str, split: str = "test", **kwargs: Any) -> ImageDataset:
    """:func:`load_dataset`, decoded into memory: what training and the linear probes hold."""
    from robust_attn.data.streamed import StreamedDataset

    data = load_dataset(name, split, **kwargs)
    if isinstance(data, StreamedDataset):
        return data.in_memory()
    assert isinstance(data, ImageDataset)
    return data


def dataset_source(name: str) -> DataSource:
    if is_import_spec(name):  # the user's own: package.module:factory
        return DataSource(name, _custom(name), splits=("train", "test", "val"), streams=True,
                          options={"loader_workers": "DataLoader worker processes reading its items (default 0: in the main process)"},
                          description="your own data set: a factory returning a torch Dataset of (image, label[, mask]) with classes")  # fmt: skip
    try:
        return _DATASETS[_key(name)]
    except KeyError:
        raise DataError(f"unknown data set {name!r}; known: {', '.join(list_datasets())}, or package.module:factory (your own)") from None


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
    **options: Any,
) -> ImageData:
    """Load ``split`` of data set ``name``; ``n`` keeps the first n samples (at most what the split
    holds); ``options`` are those the data set declares (``resize``, ``crop``, ``classes``, ...).

    ``builtin`` is generated (``seed`` picks the draw); the torchvision sets are read from
    ``data_dir``; image folders and ImageNet are decoded from files (streamed when they do not fit
    in memory); ``package.module:factory`` is your own data set.
    """
    source = dataset_source(name)
    if split not in source.splits:
        raise DataError(f"data set {source.name!r} has no split {split!r}; use one of {', '.join(source.splits)}")
    source.check_options(options)
    return source.load(split, n, data_dir, download, verify, seed, **options)


def _builtin(split: str, n: int | None, data_dir: Any, download: bool, verify: bool, seed: int) -> ImageDataset:
    return load_builtin(split, n, seed)


def _torchvision(name: str) -> Loader:
    def load(split: str, n: int | None, data_dir: str | Path | None, download: bool, verify: bool, seed: int) -> ImageDataset:
        return load_torchvision(name, split, data_dir, download=download, verify=verify).subset(n)

    return load


def _files(load: Callable[..., ImageData]) -> Loader:
    """A loader of files: download, verify and seed do not apply."""

    def run(split: str, n: int | None, data_dir: str | Path | None, download: bool, verify: bool, seed: int, **options: Any) -> ImageData:
        return load(split, n, data_dir, **options)

    return run


def _custom(ref: str) -> Loader:
    def run(split: str, n: int | None, data_dir: Any, download: bool, verify: bool, seed: int, **options: Any) -> ImageData:
        from robust_attn.data.custom import load_custom

        return load_custom(ref, split, n, **options)

    return run


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


def _register_files() -> None:
    from robust_attn.data import folders

    any_split = ("train", "test", "val")
    register_dataset(DataSource("imagefolder", _files(folders.load_imagefolder), splits=any_split, streams=True, options=FILE_OPTIONS,
                                description="your images in data_dir/<class>/<image> (torchvision ImageFolder), decoded batch by batch"))  # fmt: skip
    imagenet = {**{k: v for k, v in FILE_OPTIONS.items() if k != "classes"}, "subset": "robustbench: RobustBench's 5,000 test images, in its order",
                "subset_file": "a copy of RobustBench's id list (wnid/file lines), if robustbench is not installed"}  # fmt: skip
    register_dataset(DataSource("imagenet", _files(folders.load_imagenet), splits=("val", "test"), streams=True, options=imagenet, num_classes=1000,
                                description="ILSVRC2012 validation in data_dir/val/<wnid>/*.JPEG; Res256Crop224 unless set"))  # fmt: skip
    register_dataset(DataSource("imagenet-c", _files(folders.load_imagenet_c), splits=("val", "test"), streams=True, options=imagenet, num_classes=1000,
                                description="ImageNet validation with ImageNet-C's published corruptions in data_dir/ImageNet-C"))  # fmt: skip
    with_c = {**FILE_OPTIONS, "corrupted_dir": "the folder of published corruptions: <corruption>/<severity>/<class>/<image>"}
    register_dataset(DataSource("imagefolder-c", _files(folders.load_imagefolder_c), splits=any_split, streams=True, options=with_c,
                                description="an image folder with published corrupted copies in corrupted_dir"))  # fmt: skip


_register_files()
