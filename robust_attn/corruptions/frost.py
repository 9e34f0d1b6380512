"""The frost overlays: photographs of frost on glass, at the scale each reference script uses.

The scripts read ``frost1.png`` .. ``frost5.jpg`` (``np.random.randint(5)`` never picks the sixth)
with ``cv2.imread``, shrink them with ``cv2.resize(fx=scale, fy=scale)`` (0.2 for CIFAR, 0.3 for
Tiny ImageNet, not at all for ImageNet) and crop an image-sized window at random.
``frost_photos.npz`` holds the four distinct photographs as RGB uint8 (``frost3.png`` holds
``frost2.png``'s pixels): 600x900, 315x560, 350x527 and 495x660 pixels, decoded by OpenCV 5.1
(Pillow decodes the same pixels), and their 0.3 reductions made by OpenCV 5.1's ``cv2.resize``.
The 0.2 reduction needs no file: OpenCV's bilinear resize by 0.2 samples source pixel 5 i + 2
with weight exactly 1, so it is ``photo[2::5, 2::5]`` (checked pixel for pixel against OpenCV 5.1,
and equal to the overlays of the earlier ``frost_overlays.npz``). The photographs are those of
hendrycks/robustness (Apache-2.0); PNG alpha dropped as ``cv2.imread`` does.
"""

from __future__ import annotations

import functools
import math
from importlib import resources

import numpy as np
import scipy.ndimage as ndi

PHOTO_FILE = "frost_photos.npz"
OVERLAY_COUNT = 5
PHOTOS = (1, 2, 2, 4, 5)  # the photograph behind each of the reference's five file names
STORED_SCALES = (1, 0.3)


@functools.cache
def _shipped() -> dict[str, np.ndarray]:
    with resources.files(__package__).joinpath(PHOTO_FILE).open("rb") as f, np.load(f) as npz:
        return {key: np.array(npz[key]) for key in npz.files}


def _key(photo: int, scale: float) -> str:
    return f"frost{photo}" if scale == 1 else f"frost{photo}_x{scale}"


@functools.cache
def photographs(scale: float) -> tuple[np.ndarray, ...]:
    """The five photographs (rows, cols, 3) uint8 as ``cv2.resize(fx=scale, fy=scale)`` leaves
    them, for the scales the reference scripts use: 1, 0.3 (stored) and 0.2 (subsampled)."""
    if scale == 0.2:
        return tuple(_shipped()[_key(p, 1)][2::5, 2::5] for p in PHOTOS)
    if scale not in STORED_SCALES:
        raise ValueError(f"no frost photographs at scale {scale}; the reference scripts use 0.2, 0.3 and 1")
    return tuple(_shipped()[_key(p, scale)] for p in PHOTOS)


@functools.cache
def frost_overlays(height: int, width: int, scale: float = 0.2) -> tuple[np.ndarray, ...]:
    """The five overlays (rows, cols, 3) uint8 at ``scale``, each large enough to crop height x
    width from (by default CIFAR's scale, 0.2).

    The reference draws the crop corner from ``randint(0, rows - height)``, so an overlay needs
    more rows than the image; one that has too few for a large image (more than 62 pixels at
    0.2, 93 at 0.3, 314 at full size) is enlarged bilinearly by 1.1 times the missing ratio, as
    ``imagecorruptions`` does.
    """
    out = []
    for overlay in photographs(scale):
        rows, cols = overlay.shape[:2]
        if rows <= height or cols <= width:
            factor = 1.1 * max(height / rows, width / cols)
            size = (math.ceil(rows * factor) + 1, math.ceil(cols * factor) + 1)
            overlay = ndi.zoom(overlay.astype(np.float32), (size[0] / rows, size[1] / cols, 1), order=1)
            overlay = np.clip(np.rint(overlay), 0, 255).astype(np.uint8)
        out.append(overlay)
    return tuple(out)
