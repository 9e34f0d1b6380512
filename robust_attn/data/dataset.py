"""An in-memory image data set: uint8 tensors plus the metadata the suite needs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from robust_attn.errors import DataError


@dataclass(eq=False)
class ImageDataset(Dataset[tuple[torch.Tensor, int]]):
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
        )

    def batches(
        self, batch_size: int, *, shuffle: bool = False, generator: torch.Generator | None = None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Yield (indices, images in [0, 1] float32, labels) batches."""
        order = torch.randperm(len(self), generator=generator) if shuffle else torch.arange(len(self))
        for start in range(0, len(self), batch_size):
            idx = order[start : start + batch_size]
            yield idx, self.images[idx].float().div_(255), self.labels[idx]
