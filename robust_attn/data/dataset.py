"""Image data as the suite consumes it: :class:`ImageData`, the interface every stage reads
(batches of sample ids, images in [0, 1] and labels; the first images with their masks for the
probes; a view at a model's own preprocessing), and :class:`ImageDataset`, the in-memory
implementation (uint8 tensors), fastest for data that fits in memory. Data read from files
batch by batch is :class:`robust_attn.data.streamed.StreamedDataset`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from robust_attn.errors import DataError

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # sample ids, images (B, C, H, W) float in [0, 1], labels


class ImageData(ABC):
    """What every stage of a sweep reads of its data; memory follows the batch, not the data set."""

    name: str
    split: str
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    published_corruptions: Callable[[str, int, np.ndarray], np.ndarray] | None
    trained_as: str | None
    labels: torch.Tensor  # (N,) int64: every label (N integers, whatever the images' size)

    @abstractmethod
    def __len__(self) -> int: ...

    @property
    @abstractmethod
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of every image a batch holds."""

    @property
    @abstractmethod
    def has_masks(self) -> bool:
        """Whether object masks come with the images (weakly supervised segmentation)."""

    @abstractmethod
    def batches(self, batch_size: int, *, shuffle: bool = False, generator: torch.Generator | None = None) -> Iterator[Batch]:
        """(sample ids, images in [0, 1] float32, labels), in sample order unless ``shuffle``."""

    @abstractmethod
    def subset(self, n: int | None, offset: int = 0) -> ImageData:
        """The first ``n`` samples from ``offset`` (all when ``n`` is None)."""

    @abstractmethod
    def head(self, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """The first ``n`` images, labels and masks (None without masks), in one batch: the probes'."""

    def for_model(self, preprocessing: Any) -> ImageData:
        """The same samples as a model that declares its own preprocessing sees them; data that is
        not decoded from files has one form only."""
        return self

    @property
    def streamed(self) -> bool:
        return False

    def identity(self) -> str:
        """What distinguishes these images from another copy of the same name, split and n ("" for
        data that the name, split, n and seed determine: generated or torchvision's)."""
        return ""

    def record(self) -> dict[str, Any]:
        """What the run directory keeps of the data (manifest ``dataset``)."""
        pre = getattr(self, "preprocessing", None)
        return {"name": self.name, "split": self.split, "n": len(self), "classes": list(self.classes),
                "image_shape": list(self.image_shape), "has_masks": self.has_masks, "streamed": self.streamed,
                **({"preprocessing": pre.record()} if pre is not None else {})}  # fmt: skip


@dataclass(eq=False)
class ImageDataset(ImageData, Dataset[tuple[torch.Tensor, int]]):
    """Images (N, C, H, W) uint8, labels (N,), optional object masks (N, H, W) bool.

    Items are float images in [0, 1]; :meth:`batches` streams whole tensors without a
    DataLoader, which is several times faster for data that fits in memory.
    """

    name: str
    split: str
    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    masks: torch.Tensor | None = None
    # data sets with published corrupted copies (CIFAR-10-C): (corruption, severity, sample ids) -> uint8 images
    published_corruptions: Callable[[str, int, np.ndarray], np.ndarray] | None = None
    trained_as: str | None = None  # the data set models are trained on to be evaluated here (cifar10 for cifar10c)
    preprocessing: Any = None  # how its images were decoded from files (a Preprocessing), when they were
    decoded_from: Any = None  # the streamed set its images were decoded from: a model's own preprocessing decodes them again

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise DataError(f"images must be uint8 (N, C, H, W), got {self.images.dtype} {tuple(self.images.shape)}")
        if len(self.labels) != len(self.images):
            raise DataError(f"{len(self.images)} images but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index].float().div_(255), int(self.labels[index])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        c, h, w = self.images.shape[1:]
        return int(c), int(h), int(w)

    @property
    def has_masks(self) -> bool:
        return self.masks is not None

    def identity(self) -> str:
        return "" if self.decoded_from is None else str(self.decoded_from.identity())

    def for_model(self, preprocessing: Any) -> ImageData:
        """Images decoded from files are decoded again at a model's own preprocessing (held in
        memory again when they fit); generated and in-memory sets have one form."""
        if preprocessing is None or preprocessing == self.preprocessing or self.decoded_from is None:
            return self
        return self.decoded_from.for_model(preprocessing).held_if_small()

    def head(self, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        k = min(n, len(self))
        return self.images[:k].float().div_(255), self.labels[:k], None if self.masks is None else self.masks[:k]

    def subset(self, n: int | None, offset: int = 0) -> ImageDataset:
        """The first ``n`` samples from ``offset`` (all when ``n`` is None)."""
        end = len(self) if n is None else min(len(self), offset + n)
        sl = slice(offset, end)
        published = self.published_corruptions
        shifted = None if published is None else (lambda c, s, idx: published(c, s, np.asarray(idx) + offset))
        return ImageDataset(
            self.name,
            self.split,
            self.images[sl],
            self.labels[sl],
            self.classes,
            self.mean,
            self.std,
            None if self.masks is None else self.masks[sl],
            shifted,
            self.trained_as,
            self.preprocessing,
            None if self.decoded_from is None else self.decoded_from.subset(n, offset),
        )

    def batches(
        self, batch_size: int, *, shuffle: bool = False, generator: torch.Generator | None = None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Yield (indices, images in [0, 1] float32, labels) batches."""
        order = torch.randperm(len(self), generator=generator) if shuffle else torch.arange(len(self))
        for start in range(0, len(self), batch_size):
            idx = order[start : start + batch_size]
            yield idx, self.images[idx].float().div_(255), self.labels[idx]
