"""Your own data set, named in a spec as ``package.module:factory`` (like a model): ``factory()``
returns a ``torch.utils.data.Dataset`` whose items are ``(image, label)`` or ``(image, label,
mask)``: image a float tensor (C, H, W) in [0, 1], label an int, mask a bool (H, W) tensor of
the object (for the segmentation probes); with an attribute ``classes`` (the class names, in the
order of the labels) and, optionally, ``targets`` (every label, so they are not read by loading
every item). It is streamed: the factory's items are read batch by batch by DataLoader workers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from robust_attn.data.dataset import ImageData
from robust_attn.data.preprocessing import Preprocessing
from robust_attn.data.streamed import StreamedDataset
from robust_attn.errors import DataError, UserCodeError, first_line, user_frames
from robust_attn.import_spec import import_object


@dataclass(frozen=True)
class UserItems:
    """The items of the factory's data set, checked as they are read."""

    dataset: Any
    ref: str

    def __len__(self) -> int:
        return len(self.dataset)

    def load(self, index: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        item = self.dataset[index]
        if not isinstance(item, tuple | list) or len(item) not in (2, 3):
            raise DataError(f"data set {self.ref!r}: item {index} is {type(item).__name__}, not (image, label) or (image, label, mask); "
                            "return a tuple from __getitem__")  # fmt: skip
        image, mask = item[0], item[2] if len(item) == 3 else None
        if not isinstance(image, torch.Tensor) or image.dim() != 3 or not image.is_floating_point():
            got = f"{image.dtype} {tuple(image.shape)}" if isinstance(image, torch.Tensor) else type(image).__name__
            raise DataError(f"data set {self.ref!r}: item {index}'s image is {got}; return a float tensor (C, H, W) in [0, 1]")
        if float(image.min()) < 0 or float(image.max()) > 1:
            raise DataError(f"data set {self.ref!r}: item {index}'s image is not in [0, 1]; divide 8-bit images by 255")
        return image, mask

    def describe(self, index: int) -> str:
        return f"{self.ref}[{index}]"

    def size(self, index: int) -> int:
        return 0  # the factory's items: identified by its reference and the items' count

    def failure(self, index: int, err: Exception) -> str:
        from robust_attn.errors import first_line

        return f"data set {self.ref!r}: item {index} raised {first_line(err)}; fix its __getitem__ in your code"

    def with_preprocessing(self, preprocessing: Preprocessing) -> UserItems:
        if not preprocessing.identity:
            raise DataError(f"data set {self.ref!r} makes its own tensors: resize and crop them in the factory, not with preprocessing")
        return self


def _build(ref: str) -> Any:
    try:
        factory = import_object(ref, "data set", DataError)
        return factory() if callable(factory) and not isinstance(factory, torch.utils.data.Dataset) else factory
    except UserCodeError:
        raise
    except Exception as err:
        if isinstance(err, DataError):
            raise
        raise UserCodeError(f"data set {ref!r}: the factory raised {first_line(err)}; fix it in your code", user_frames(err)) from err


def _labels(dataset: Any, ref: str) -> torch.Tensor:
    targets = getattr(dataset, "targets", None)
    labels = list(targets) if targets is not None else [dataset[i][1] for i in range(len(dataset))]
    if len(labels) != len(dataset) or not all(isinstance(int(lbl), int) for lbl in labels):
        raise DataError(f"data set {ref!r}: its targets do not give one integer label per item")
    return torch.tensor([int(lbl) for lbl in labels], dtype=torch.long)


def load_custom(ref: str, split: str, n: int | None, **options: Any) -> ImageData:
    """The factory's data set, streamed; ``n`` keeps the first n items."""
    dataset = _build(ref)
    if not isinstance(dataset, torch.utils.data.Dataset) or not hasattr(dataset, "__len__"):
        raise DataError(
            f"data set {ref!r} returned {type(dataset).__name__}, not a torch.utils.data.Dataset with a length; "
            "return a Dataset (with __len__ and __getitem__) from the factory"
        )
    classes = getattr(dataset, "classes", None)
    if not isinstance(classes, list | tuple) or not classes or not all(isinstance(c, str) for c in classes):
        raise DataError(f"data set {ref!r} has no classes attribute (a list of class names in label order); add one")
    if len(dataset) == 0:
        raise DataError(f"data set {ref!r} is empty")
    labels = _labels(dataset, ref)
    if int(labels.min()) < 0 or int(labels.max()) >= len(classes):
        raise DataError(
            f"data set {ref!r}: a label is outside 0..{len(classes) - 1} (its {len(classes)} classes); labels index its classes attribute"
        )
    items = UserItems(dataset, ref)
    first = items.load(0)
    workers = options.get("loader_workers", 0)
    data = StreamedDataset(ref, split, items, labels, tuple(classes), (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), workers=workers,
                           masked=first[1] is not None)  # fmt: skip
    return data.subset(n)
