"""Data decoded batch by batch: image files (an ImageFolder tree, ImageNet) or the items of a user's
own ``torch.utils.data.Dataset``, read by DataLoader workers as the sweep consumes them, so that
memory follows the batch, not the data set. Labels (N integers) are held; images are not.

A file that cannot be decoded stops the sweep in one line naming it (finished cells stay saved):
a skipped file would change the sample ids one model saw against another's. Grayscale, CMYK,
palette and RGBA images are converted to RGB (alpha dropped). Images of different sizes need a
resize and crop (the data table's, or the model's own preprocessing).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from robust_attn.data.dataset import Batch, ImageData, ImageDataset
from robust_attn.data.preprocessing import Preprocessing
from robust_attn.errors import DataError

IN_MEMORY_BYTES = 256 * 2**20  # stream = "auto": a set whose decoded images fit in this is decoded once and held
TRIM_EVERY = 8  # batches between returns of freed memory to the system (see release_freed_memory)


def release_freed_memory() -> None:
    """Give the memory glibc keeps after a batch is freed back to the system (``malloc_trim``):
    without it the heap of a long streamed sweep grows with the number of batches (1.4x peak RSS
    from 1,000 to 5,000 224-px images, benchmarks/data_scale.py), though nothing is held. A no-op
    where the C library has no malloc_trim."""
    global _TRIM
    if _TRIM is None:
        import ctypes
        import ctypes.util

        try:
            _TRIM = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _TRIM = False
    if _TRIM:
        _TRIM(0)


_TRIM: Any = None


class Items(Protocol):
    """Where the images of a streamed data set come from."""

    def __len__(self) -> int: ...

    def load(self, index: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Image ``index`` (uint8 or float in [0, 1], (C, H, W)) and its mask (or None)."""

    def describe(self, index: int) -> str:
        """The item named for a message (a file path, ``factory[i]``)."""

    def failure(self, index: int, err: Exception) -> str:
        """One line: why item ``index`` could not be read, and the fix."""

    def size(self, index: int) -> int:
        """A cheap fingerprint of item ``index`` (a file's size in bytes; 0 where there is none)."""

    def with_preprocessing(self, preprocessing: Preprocessing) -> Items: ...


@dataclass(frozen=True)
class FileItems:
    """Image files decoded with Pillow, converted to RGB and preprocessed to uint8 (C, H, W)."""

    paths: Sequence[Path]
    preprocessing: Preprocessing = field(default_factory=Preprocessing)

    def __len__(self) -> int:
        return len(self.paths)

    def load(self, index: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        from PIL import Image

        with Image.open(self.paths[index]) as image:
            return self.preprocessing.apply(image.convert("RGB")), None

    def describe(self, index: int) -> str:
        return str(self.paths[index])

    def size(self, index: int) -> int:
        try:
            return self.paths[index].stat().st_size
        except OSError:
            return -1

    def failure(self, index: int, err: Exception) -> str:
        return (f"{self.paths[index]} cannot be read ({type(err).__name__}: {str(err).strip()[:200]}); remove or replace it "
                "(nothing is skipped: every model must see the same samples)")  # fmt: skip

    def with_preprocessing(self, preprocessing: Preprocessing) -> FileItems:
        return replace(self, preprocessing=preprocessing)


class _Indexed(Dataset[tuple[int, Any, Any, str]]):
    """The items at ``item_ids``, each returned with its sample id (its position in the data set's
    view) and, instead of raising (a worker's exception would reach the main process as a
    multi-line message), why it could not be read."""

    def __init__(self, items: Items, item_ids: Sequence[int] | np.ndarray, sample_ids: Sequence[int] | np.ndarray) -> None:
        self.items, self.item_ids, self.sample_ids = items, item_ids, sample_ids

    def __len__(self) -> int:
        return len(self.item_ids)

    def __getitem__(self, i: int) -> tuple[int, Any, Any, str]:
        index, sample = int(self.item_ids[i]), int(self.sample_ids[i])
        try:
            image, mask = self.items.load(index)
        except DataError as err:
            return sample, None, None, f"{self.items.describe(index)}: {err}"
        except Exception as err:  # PIL's UnidentifiedImageError, a truncated JPEG's OSError, a user's item
            return sample, None, None, self.items.failure(index, err)
        return sample, image, mask, ""


def _collate(rows: list[tuple[int, Any, Any, str]]) -> dict[str, Any]:
    """Stack a batch; the first unreadable item, or the first image whose size differs, becomes the
    batch's error (raised in the main process as one line)."""
    for index, _, _, why in rows:
        if why:
            return {"error": why, "index": index}
    first = rows[0][1].shape
    for index, image, _, _ in rows:
        if image.shape != first:
            return {"error": f"shape {tuple(image.shape)} after preprocessing, the batch's first image {tuple(first)}", "index": index}
    masks = [m for _, _, m, _ in rows]
    return {"ids": torch.tensor([r[0] for r in rows]), "images": torch.stack([r[1] for r in rows]),
            "masks": torch.stack(masks) if all(m is not None for m in masks) else None}  # fmt: skip


@dataclass(eq=False)
class StreamedDataset(ImageData):
    """Images read from ``items`` as batches are asked for; labels held in memory. Sample ids are
    positions in this view (0 .. len - 1), as in an in-memory data set."""

    name: str
    split: str
    items: Items
    item_labels: torch.Tensor  # (len(items),) the label of every item
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    indices: np.ndarray | None = None  # the samples of this view (None: all), in order
    workers: int = 2
    masked: bool = False
    published_corruptions: Callable[[str, int, np.ndarray], np.ndarray] | None = None
    trained_as: str | None = None
    _shape: tuple[int, int, int] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.indices is None:
            self.indices = np.arange(len(self.items))

    def __len__(self) -> int:
        assert self.indices is not None
        return len(self.indices)

    @property
    def labels(self) -> torch.Tensor:  # type: ignore[override]
        assert self.indices is not None
        return self.item_labels[torch.as_tensor(self.indices, dtype=torch.long)]

    @property
    def streamed(self) -> bool:
        return True

    @property
    def has_masks(self) -> bool:
        return self.masked

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the first image (decoded once); every later one must match it."""
        if self._shape is None:
            assert self.indices is not None
            self._shape = tuple(int(d) for d in self._read([0])["images"].shape[1:])  # type: ignore[assignment]
        assert self._shape is not None
        return self._shape

    def _read(self, positions: Sequence[int]) -> dict[str, Any]:
        """The samples at ``positions`` of this view, read here (no workers)."""
        assert self.indices is not None
        source = _Indexed(self.items, [int(self.indices[p]) for p in positions], positions)
        batch = _collate([source[i] for i in range(len(positions))])
        self._check(batch)
        return batch

    def _check(self, batch: dict[str, Any]) -> None:
        if "error" in batch:
            why = batch["error"]
            assert self.indices is not None
            if why.startswith("shape"):
                raise DataError(f"{self.items.describe(int(self.indices[batch['index']]))} has {why}: the images differ in size; set resize and crop in the "
                                "data table (e.g. resize = 256, crop = 224), or use a model that declares its preprocessing")  # fmt: skip
            raise DataError(why)

    def batches(self, batch_size: int, *, shuffle: bool = False, generator: torch.Generator | None = None) -> Iterator[Batch]:
        assert self.indices is not None
        positions = torch.randperm(len(self), generator=generator).numpy() if shuffle else np.arange(len(self))
        labels = self.labels
        loader = DataLoader(_Indexed(self.items, self.indices[positions], positions), batch_size=batch_size, shuffle=False,
                            num_workers=self.workers, collate_fn=_collate, prefetch_factor=2 if self.workers else None,
                            pin_memory=torch.cuda.is_available())  # fmt: skip
        shape = self.image_shape
        for step, batch in enumerate(loader):
            if step % TRIM_EVERY == 0:
                release_freed_memory()
            self._check(batch)
            if tuple(batch["images"].shape[1:]) != shape:  # a whole batch of another size than the first image
                first = int(batch["ids"][0])
                self._check({"error": f"shape {tuple(batch['images'].shape[1:])} after preprocessing, the data's first image {shape}",
                             "index": first})  # fmt: skip
            yield batch["ids"], _as_float(batch["images"]), labels[batch["ids"]]

    def subset(self, n: int | None, offset: int = 0) -> StreamedDataset:
        assert self.indices is not None
        end = len(self) if n is None else min(len(self), offset + n)
        published = self.published_corruptions
        shifted = None if published is None or offset == 0 else (lambda c, s, idx: published(c, s, np.asarray(idx) + offset))
        return replace(self, indices=self.indices[offset:end], published_corruptions=shifted or published)

    def head(self, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        batch = self._read(list(range(min(n, len(self)))))
        return _as_float(batch["images"]), self.labels[batch["ids"]], batch["masks"]

    def identity(self) -> str:
        """What distinguishes these images from another folder's (their files' names and sizes);
        a sweep keys its units on it, so a run of one folder is not taken for another's."""
        import hashlib

        digest = hashlib.sha256()
        assert self.indices is not None
        for i in self.indices:
            digest.update(self.items.describe(int(i)).encode())
            digest.update(str(self.items.size(int(i))).encode())
        return digest.hexdigest()[:16]

    def for_model(self, preprocessing: Any) -> ImageData:
        if preprocessing is None or preprocessing == self.preprocessing:
            return self
        return replace(self, items=self.items.with_preprocessing(preprocessing), preprocessing=preprocessing, _shape=None)

    def held_if_small(self) -> ImageData:
        """Decoded once and held when the images fit the in-memory budget, else streamed (stream = "auto")."""
        return self.in_memory() if fits_in_memory(self) else self

    def in_memory(self) -> ImageDataset:
        """Every image decoded once into a uint8 tensor (file items: uint8 already, so the numbers
        are those of the streamed set)."""
        images, masks = [], []
        for start in range(0, len(self), 256):
            batch = self._read(list(range(start, min(len(self), start + 256))))
            images.append(batch["images"])
            masks.append(batch["masks"])
        stacked = torch.cat(images) if images else torch.zeros((0, *self.image_shape), dtype=torch.uint8)
        if stacked.dtype != torch.uint8:
            raise DataError(f"{self.name}: its images are floats, not 8-bit files; it streams (stream = true)")
        held = torch.cat(masks) if masks and all(m is not None for m in masks) else None
        return ImageDataset(self.name, self.split, stacked, self.labels, self.classes, self.mean, self.std, held,
                            self.published_corruptions, self.trained_as, self.preprocessing, self)  # fmt: skip


def _as_float(images: torch.Tensor) -> torch.Tensor:
    return images.float().div_(255) if images.dtype == torch.uint8 else images.float()


def fits_in_memory(data: StreamedDataset, budget: int = IN_MEMORY_BYTES) -> bool:
    """Whether the decoded images would fit the in-memory budget (from the first image's shape)."""
    c, h, w = data.image_shape
    return len(data) * c * h * w <= budget
