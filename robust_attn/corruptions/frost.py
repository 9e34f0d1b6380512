"""The frost overlays: five photographs of frost on glass, at the scale CIFAR-10-C used.

The reference reads ``frost1.png`` .. ``frost5.jpg`` (``np.random.randint(5)`` never picks the
sixth) with ``cv2.imread`` and shrinks them with ``cv2.resize(fx=0.2, fy=0.2)``. With factor
0.2, OpenCV's bilinear resize samples source pixel 5 i + 2 with weight exactly 1, so the
result is the subsampled photograph ``photo[2::5, 2::5]``; ``frost_overlays.npz`` holds those
five arrays as RGB uint8 (120x180, 63x112, 63x112, 70x105 and 99x132 pixels, 130 kB), checked
pixel for pixel against OpenCV 5.0 (``frost2.png`` and ``frost3.png`` hold the same pixels). The photographs are those of hendrycks/robustness
(Apache-2.0), as shipped in the ``imagecorruptions`` 1.1.2 wheel (Apache-2.0); PNG alpha dropped
as ``cv2.imread`` does.
"""

from __future__ import annotations

import functools
import math
from importlib import resources

import numpy as np
import scipy.ndimage as ndi

OVERLAY_FILE = "frost_overlays.npz"
OVERLAY_COUNT = 5


@functools.cache
def _shipped() -> tuple[np.ndarray, ...]:
    with resources.files(__package__).joinpath(OVERLAY_FILE).open("rb") as f, np.load(f) as npz:
        return tuple(np.array(npz[f"frost{i}"]) for i in range(1, OVERLAY_COUNT + 1))


@functools.cache
def frost_overlays(height: int, width: int) -> tuple[np.ndarray, ...]:
    """The five overlays (rows, cols, 3) uint8, each large enough to crop height x width from.

    The reference draws the crop corner from ``randint(0, rows - height)``, so an overlay needs
    more rows than the image; one that has too few for a large image (over 62 pixels) is
    enlarged bilinearly by 1.1 times the missing ratio, as ``imagecorruptions`` does.
    """
    out = []
    for overlay in _shipped():
        rows, cols = overlay.shape[:2]
        if rows <= height or cols <= width:
            scale = 1.1 * max(height / rows, width / cols)
            size = (math.ceil(rows * scale) + 1, math.ceil(cols * scale) + 1)
            overlay = ndi.zoom(overlay.astype(np.float32), (size[0] / rows, size[1] / cols, 1), order=1)
            overlay = np.clip(np.rint(overlay), 0, 255).astype(np.uint8)
        out.append(overlay)
    return tuple(out)
