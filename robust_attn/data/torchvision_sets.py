"""Natural-image data sets through torchvision, read from a user's data directory."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robust_attn.data.dataset import ImageDataset
from robust_attn.errors import DataError, DataNotFound


@dataclass(frozen=True)
class TorchvisionSpec:
    """How to build and unpack one torchvision data set. The class is named, not imported:
    importing torchvision costs seconds (it loads torch's compiler), which every run on the
    built-in data would pay for nothing."""

    class_name: str  # in torchvision.datasets
    folder: str  # what torchvision creates under the root, for error messages
    mean: tuple[float, ...]
    std: tuple[float, ...]
    split_kwargs: Callable[[str], dict[str, Any]]
    class_names: Callable[[Any], tuple[str, ...]]
    image_shape: tuple[int, int, int] = (3, 32, 32)  # (C, H, W), known before the files are read: a spec's eps is checked against it
    num_classes: int = 10

    @property
    def cls(self) -> type:
        import torchvision.datasets

        return getattr(torchvision.datasets, self.class_name)


def _train_flag(split: str) -> dict[str, Any]:
    return {"train": split == "train"}


def _svhn_split(split: str) -> dict[str, Any]:
    return {"split": split}


TORCHVISION_SETS: dict[str, TorchvisionSpec] = {
    "cifar10": TorchvisionSpec(
        "CIFAR10", "cifar-10-batches-py", (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616), _train_flag, lambda d: tuple(d.classes)
    ),
    "cifar100": TorchvisionSpec(
        "CIFAR100",
        "cifar-100-python",
        (0.5071, 0.4865, 0.4409),
        (0.2673, 0.2564, 0.2762),
        _train_flag,
        lambda d: tuple(d.classes),
        num_classes=100,
    ),
    "svhn": TorchvisionSpec(
        "SVHN",
        "train_32x32.mat / test_32x32.mat",
        (0.4377, 0.4438, 0.4728),
        (0.1980, 0.2010, 0.1970),
        _svhn_split,
        lambda d: tuple(str(i) for i in range(10)),
    ),
    "mnist": TorchvisionSpec("MNIST", "MNIST/raw", (0.1307,), (0.3081,), _train_flag, lambda d: tuple(d.classes), (1, 28, 28)),
    "fashionmnist": TorchvisionSpec(
        "FashionMNIST", "FashionMNIST/raw", (0.2860,), (0.3530,), _train_flag, lambda d: tuple(d.classes), (1, 28, 28)
    ),
}


def _images_nchw(data: Any) -> torch.Tensor:
    """torchvision keeps CIFAR as NHWC numpy, SVHN as NCHW numpy and MNIST as NHW tensors."""
    arr = data.numpy() if isinstance(data, torch.Tensor) else np.asarray(data)
    if arr.ndim == 3:
        arr = arr[:, None]
    elif arr.shape[-1] in (1, 3) and arr.shape[1] not in (1, 3):
        arr = arr.transpose(0, 3, 1, 2)
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.uint8))


def load_torchvision(name: str, split: str, data_dir: str | Path | None, *, download: bool = False, verify: bool = True) -> ImageDataset:
    """Load a torchvision data set into memory as an :class:`ImageDataset`.

    ``verify=False`` skips torchvision's MD5 check of the archive files (CIFAR, SVHN), for
    locally re-packed copies whose bytes differ from the published ones.
    """
    spec = TORCHVISION_SETS[name]
    if split not in ("train", "test"):
        raise DataError(f"unknown split {split!r} for {name}; use 'train' or 'test'")
    if data_dir is None:
        raise DataNotFound(f"{name} needs --data-dir DIR (the folder that holds {spec.folder}); add --download to fetch it")
    root = check_data_dir(Path(data_dir).expanduser(), spec.folder, download)
    cls = spec.cls
    if not verify:
        cls = _without_checksums(cls)
    try:
        ds = cls(str(root), download=download, **spec.split_kwargs(split))
    except RuntimeError as err:
        raise DataNotFound(
            f"{name} {split} split not found or corrupted under {str(root)!r} (expected {spec.folder}); "
            f"add --download, or --no-verify for a re-packed copy ({err})"
        ) from None
    except OSError as err:  # a file that cannot be read or written, or a download that could not connect
        doing = "download" if download else "read"
        raise DataError(
            f"could not {doing} {name} under {str(root)!r}: {err.strerror or err}; check the folder's permissions"
            + (" and the network (or download it elsewhere and copy it there)" if download else "")
        ) from None
    labels = torch.as_tensor(np.asarray(ds.labels if hasattr(ds, "labels") else ds.targets), dtype=torch.int64)
    return ImageDataset(name, split, _images_nchw(ds.data), labels, spec.class_names(ds), spec.mean, spec.std)


def check_data_dir(root: Path, folder: str, download: bool) -> Path:
    """``root`` if torchvision can read (or, with ``download``, create) a data set there; else a
    one-line error saying what it is instead (a file, a path under a file, missing)."""
    if root.is_dir():
        return root
    if root.exists():
        raise DataError(f"data dir {str(root)!r} is a file, not a folder; point --data-dir at the folder holding {folder}")
    above = next((p for p in root.parents if p.exists()), None)
    if above is not None and not above.is_dir():
        raise DataError(f"data dir {str(root)!r} lies under {str(above)!r}, which is a file; point --data-dir at a folder")
    if not download:
        raise DataNotFound(f"data dir {str(root)!r} does not exist; point --data-dir at the folder holding {folder}, or add --download")
    return root


def _without_checksums(cls: type) -> type:
    """A subclass whose integrity checks only test that files exist.

    torchvision's CIFAR and SVHN classes compare MD5 sums against the published archives;
    ``check_integrity(path, None)`` tests existence only, so blanking the sums keeps every
    other part of torchvision's loading code (formats, pickles, .mat parsing) unchanged.
    """
    overrides: dict[str, Any] = {}
    for attr in ("train_list", "test_list"):
        if hasattr(cls, attr):
            overrides[attr] = [[f, None] for f, _ in getattr(cls, attr)]
    if hasattr(cls, "meta"):
        overrides["meta"] = {**cls.meta, "md5": None}
    if hasattr(cls, "split_list"):
        overrides["split_list"] = {k: [url, f, None] for k, (url, f, _) in cls.split_list.items()}
    return type(cls.__name__, (cls,), overrides) if overrides else cls
