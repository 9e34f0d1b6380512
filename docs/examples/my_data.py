"""Your own data set in one file, swept as ``dataset = "my_data:make"`` (with this folder on
PYTHONPATH). The protocol robust-attn reads:

* ``make()``, called with no arguments, returns a ``torch.utils.data.Dataset`` with a length;
* item ``i`` is ``(image, label)`` or ``(image, label, mask)``: the image a float tensor
  (C, H, W) in [0, 1] (normalise inside the model, not here), the label an int, the mask a bool
  (H, W) tensor of the object (optional: it turns on the weakly supervised segmentation probe);
* ``classes``: the class names, in the order of the labels (the order of the model's logits);
* ``targets`` (optional): every label, so that they are known without reading every item.

Items are read batch by batch by DataLoader worker processes, so item ``i`` must be the same
image on every read (here: drawn from a seed of its own) and the data set must be picklable.

This one: ten colours, a square of the class's colour on grey noise, 32x32. Run as a script,
``python docs/examples/my_data.py DIR`` writes the same images as an image folder,
``DIR/<class>/<i>.png``, for ``dataset = {name = "imagefolder"}``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch.utils.data import Dataset

COLOURS = {
    "red": (0.9, 0.1, 0.1),
    "orange": (1.0, 0.55, 0.0),
    "yellow": (0.95, 0.9, 0.1),
    "lime": (0.6, 0.95, 0.2),
    "green": (0.1, 0.6, 0.2),
    "cyan": (0.1, 0.85, 0.9),
    "blue": (0.1, 0.2, 0.9),
    "purple": (0.5, 0.1, 0.7),
    "pink": (1.0, 0.5, 0.75),
    "brown": (0.45, 0.25, 0.1),
}


class Colours(Dataset[tuple[torch.Tensor, int, torch.Tensor]]):
    """``n`` images of ``size`` x ``size`` pixels; item i is of class i % 10 (so the first n of
    any n are spread over the classes) and is drawn from the seed (``seed``, i)."""

    def __init__(self, n: int = 400, size: int = 32, seed: int = 0) -> None:
        self.n, self.size, self.seed = n, size, seed
        self.classes = list(COLOURS)
        self.targets = [i % len(self.classes) for i in range(n)]

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, torch.Tensor]:
        if not 0 <= i < self.n:
            raise IndexError(i)
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + i)
        image = (0.5 + 0.15 * torch.randn(3, self.size, self.size, generator=g)).clamp(0, 1)
        side = int(torch.randint(self.size // 4, self.size // 2 + 1, (1,), generator=g))
        top, left = (int(v) for v in torch.randint(0, self.size - side + 1, (2,), generator=g))
        mask = torch.zeros(self.size, self.size, dtype=torch.bool)
        mask[top : top + side, left : left + side] = True
        colour = torch.tensor(COLOURS[self.classes[self.targets[i]]]).view(3, 1, 1)
        return torch.where(mask, colour, image), self.targets[i], mask


def make() -> Colours:
    """The factory a spec names: ``dataset = "my_data:make"``."""
    return Colours()


def write_folder(root: Path, data: Colours | None = None) -> int:
    """The images as PNG files ``root/<class>/<i>.png`` (8-bit: each value rounded to a 255th);
    returns how many were written."""
    from PIL import Image

    data = data if data is not None else make()
    for i in range(len(data)):
        image, label, _ = data[i]
        path = root / data.classes[label] / f"{i:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        pixels = image.mul(255).round().to(torch.uint8).permute(1, 2, 0).numpy()
        Image.fromarray(pixels).save(path)
    return len(data)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python docs/examples/my_data.py DIR   (writes DIR/<class>/<i>.png)")
    print(f"wrote {write_folder(Path(sys.argv[1]))} images under {sys.argv[1]}")
