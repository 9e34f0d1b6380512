"""What a model expects an image file to be made into before its own normalisation: resize, centre
crop, interpolation. Declared by the data set (a spec's data table) or by the model (RobustBench's
per-model ``preprocessing``, timm's ``pretrained_cfg``), applied when files are decoded, so that
two models of one sweep see the same sample ids each at its own input size.

The attack perturbs the preprocessed image (RobustBench's protocol): eps is measured in the
model's input space, after resize and crop.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from robust_attn.errors import DataError, SpecError

INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "lanczos", "box", "hamming")


@dataclass(frozen=True)
class Preprocessing:
    """``resize``: the shorter side (an int) or the exact (height, width); ``crop``: the side of the
    centre crop (an int) or (height, width); ``interpolation`` of the resize. All None: decode as is."""

    resize: int | tuple[int, int] | None = None
    crop: int | tuple[int, int] | None = None
    interpolation: str = "bilinear"

    def __post_init__(self) -> None:
        for name in ("resize", "crop"):
            value = getattr(self, name)
            sizes = value if isinstance(value, tuple) else (value,)
            if value is not None and (
                len(sizes) not in (1, 2) or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in sizes)
            ):
                raise SpecError(
                    f"dataset.{name} must be a positive integer or [height, width], got {list(value) if isinstance(value, tuple) else value!r}"
                )
        if self.interpolation not in INTERPOLATIONS:
            raise SpecError(f"dataset.interpolation must be one of {', '.join(INTERPOLATIONS)}, got {self.interpolation!r}")

    @property
    def identity(self) -> bool:
        return self.resize is None and self.crop is None

    def output_size(self) -> tuple[int, int] | None:
        """(height, width) of every image after it, when it fixes one (a crop or an exact resize)."""
        if self.crop is not None:
            return self.crop if isinstance(self.crop, tuple) else (self.crop, self.crop)
        return self.resize if isinstance(self.resize, tuple) else None

    def record(self) -> dict[str, Any]:
        """What the run directory keeps of it."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def apply(self, image: Any) -> torch.Tensor:
        """A PIL image -> uint8 (C, H, W) tensor, RGB, resized and cropped as declared."""
        from torchvision.transforms import InterpolationMode
        from torchvision.transforms import functional as tvf

        if self.resize is not None:
            size = list(self.resize) if isinstance(self.resize, tuple) else self.resize
            image = tvf.resize(image, size, interpolation=InterpolationMode(self.interpolation), antialias=True)
        if self.crop is not None:
            crop = self.crop if isinstance(self.crop, tuple) else (self.crop, self.crop)
            if crop[0] > image.height or crop[1] > image.width:
                raise DataError(f"crop {list(crop)} is larger than the image ({image.height}x{image.width} after resize); "
                                "set a resize at least as large as the crop, or a smaller crop")  # fmt: skip
            image = tvf.center_crop(image, list(crop))
        array = np.asarray(image, dtype=np.uint8)
        return torch.from_numpy(array.copy()).permute(2, 0, 1)


def from_options(options: dict[str, Any]) -> Preprocessing:
    """A data table's ``resize``, ``crop`` and ``interpolation`` (lists become tuples)."""

    def size(value: Any) -> Any:
        return tuple(value) if isinstance(value, list) else value

    return Preprocessing(size(options.get("resize")), size(options.get("crop")), str(options.get("interpolation", "bilinear")))


# RobustBench's named preprocessings (robustbench/data.py, PREPROCESSINGS): what its ImageNet models declare.
ROBUSTBENCH = {
    "Res256Crop224": Preprocessing(256, 224),
    "Crop288": Preprocessing(None, 288),
    "Res224": Preprocessing((224, 224), None),
    "BicubicRes256Crop224": Preprocessing(256, 224, "bicubic"),
}


def from_timm(cfg: dict[str, Any]) -> Preprocessing:
    """timm's evaluation transform for a ``pretrained_cfg``: resize the shorter side to
    input_size / crop_pct, centre crop input_size, with its interpolation (timm.data.transforms_factory)."""
    _, height, width = cfg.get("input_size", (3, 224, 224))
    crop_pct = float(cfg.get("crop_pct") or 0.875)
    interpolation = str(cfg.get("interpolation") or "bilinear")
    side = int(np.floor(height / crop_pct)) if height == width else (int(np.floor(height / crop_pct)), int(np.floor(width / crop_pct)))
    return Preprocessing(
        side, (height, width) if height != width else height, interpolation if interpolation in INTERPOLATIONS else "bilinear"
    )
