"""Batched image filters that the reference applies one image at a time.

Each function treats a batch (N, H, W[, C]) at once and reproduces the library call named in
its docstring (OpenCV, scikit-image, ImageMagick, scipy), so that the corruptions stay faithful
to the reference scripts while running at several thousand 32x32 images per second. Large
kernels (ImageNet's defocus disks, elastic's wide Gaussians) take an equivalent route that costs
less than the direct sum: an FFT or a product with a cached matrix.
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np
import scipy.fft
import scipy.ndimage as ndi
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

DIRECT_MAX_TAPS = 7  # larger 2-D kernels are applied by FFT (CIFAR's are at most 5x5; OpenCV's filter2D also switches to a DFT)
DIRECT_MAX_RADIUS = 32  # wider 1-D Gaussians are applied as a matrix product


def gaussian_blur(x: np.ndarray, sigma: float, *, mode: str = "nearest", truncate: float = 4.0) -> np.ndarray:
    """``skimage.filters.gaussian(img, sigma, multichannel=True)`` over the two image axes
    (axes 1 and 2) of a batch; scikit-image calls scipy's ``gaussian_filter`` with these defaults.

    A kernel wider than ``DIRECT_MAX_RADIUS`` pixels each side (elastic's sigma of 171 pixels at
    224x224 has 513) is applied as ``M_rows @ image @ M_cols.T``, the matrices being scipy's
    filter applied to the identity: the same linear map, borders included, in far fewer
    operations. It runs one image plane at a time, so no plane's result depends on its batch,
    and on one BLAS thread: products this small gain little from more, and on a busy machine
    OpenBLAS's waiting threads made them 30 times slower.
    """
    if int(truncate * float(sigma) + 0.5) <= DIRECT_MAX_RADIUS:
        sigmas = [0.0] * x.ndim
        sigmas[1] = sigmas[2] = sigma
        return ndi.gaussian_filter(x, sigmas, mode=mode, truncate=truncate)
    rows = gaussian_matrix(x.shape[1], float(sigma), mode, truncate)
    cols_t = np.ascontiguousarray(gaussian_matrix(x.shape[2], float(sigma), mode, truncate).T)
    planes = np.moveaxis(x, (1, 2), (-2, -1)).astype(np.float64)
    flat = planes.reshape(-1, *planes.shape[-2:])
    with threadpool_limits(limits=1, user_api="blas"):
        for i, plane in enumerate(flat):
            flat[i] = rows @ plane @ cols_t
    return np.moveaxis(flat.reshape(planes.shape), (-2, -1), (1, 2))


@functools.lru_cache(maxsize=16)
def gaussian_matrix(n: int, sigma: float, mode: str, truncate: float) -> np.ndarray:
    """(n, n) matrix of ``scipy.ndimage.gaussian_filter1d`` along a line of n pixels."""
    return ndi.gaussian_filter1d(np.eye(n), sigma, axis=0, mode=mode, truncate=truncate)


def correlate_image_axes(x: np.ndarray, kernel: np.ndarray, *, mode: str = "mirror") -> np.ndarray:
    """``cv2.filter2D(img, -1, kernel)`` on every image and channel of a batch (N, H, W, C).

    OpenCV's default border, BORDER_REFLECT_101, is scipy's ``mirror``; the kernel is cropped
    to its non-zero support first, which changes no output value. A kernel over
    ``DIRECT_MAX_TAPS`` on a side is applied by FFT to the border-extended images.
    """
    rows, cols = np.nonzero(kernel)
    kernel = kernel[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    if max(kernel.shape) <= DIRECT_MAX_TAPS:
        return ndi.correlate(x, kernel[None, :, :, None].astype(x.dtype), mode=mode)
    return fft_correlate(x, kernel, mode)


def fft_correlate(x: np.ndarray, kernel: np.ndarray, mode: str) -> np.ndarray:
    """``scipy.ndimage.correlate`` over axes 1 and 2 of (N, H, W, C), by FFT of the images padded
    with the border mode (odd kernel sides, centred as scipy centres them)."""
    kh, kw = kernel.shape
    h, w = x.shape[1:3]
    pad = {"mirror": "reflect", "reflect": "symmetric", "nearest": "edge"}[mode]
    shape = [scipy.fft.next_fast_len(h + kh - 1, real=True), scipy.fft.next_fast_len(w + kw - 1, real=True)]
    response = scipy.fft.rfft2(kernel[::-1, ::-1], shape)[:, :, None]
    out = np.empty_like(x)
    for i, image in enumerate(x):  # one image at a time: its result does not depend on the batch
        padded = np.pad(image, [(kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)], mode=pad)  # type: ignore[call-overload]
        full = scipy.fft.irfft2(scipy.fft.rfft2(padded, shape, axes=(0, 1)) * response, shape, axes=(0, 1))
        out[i] = full[kh - 1 : kh - 1 + h, kw - 1 : kw - 1 + w]
    return out


def motion_kernel(radius: float, sigma: float) -> np.ndarray:
    """ImageMagick's one-sided motion-blur kernel: exp(-i^2 / 2 sigma^2) for i = 0 .. 2 ceil(radius),
    normalised (``GetMotionBlurKernel`` with ``GetOptimalKernelWidth1D``)."""
    width = 2 * math.ceil(radius) + 1
    i = np.arange(width, dtype=np.float64)
    k = np.exp(-(i**2) / (2 * sigma**2))
    return k / k.sum()


def motion_offsets(width: int, angles_deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per image and tap, the (row, column) offset ImageMagick's ``MotionBlurImage`` samples:
    ``ceil(i cos(angle) - 0.5)`` columns and ``ceil(i sin(angle) - 0.5)`` rows ahead."""
    theta = np.deg2rad(np.asarray(angles_deg, dtype=np.float64))[:, None]
    px, py = width * np.sin(theta), width * np.cos(theta)
    hyp = np.hypot(px, py)
    i = np.arange(width, dtype=np.float64)[None, :]
    cols = np.ceil(i * py / hyp - 0.5).astype(np.int64)
    rows = np.ceil(i * px / hyp - 0.5).astype(np.int64)
    return rows, cols


def motion_blur(x: np.ndarray, radius: float, sigma: float, angles_deg: np.ndarray) -> np.ndarray:
    """ImageMagick's ``MotionBlurImage(radius, sigma, angle)`` on a batch (N, H, W, C) of grey
    levels, one angle per image; pixels beyond the border repeat the edge (ImageMagick's default
    virtual-pixel method). Returns floats (see ``imagemagick_to_uint8`` for ImageMagick's 8 bits).

    The reference's per-image loop over taps becomes, per tap, one slice for each run of
    images that share that tap's offset; sorted by angle, the images form a few such runs.
    """
    kernel = motion_kernel(radius, sigma)
    order = np.argsort(angles_deg, kind="stable")
    rows, cols = motion_offsets(len(kernel), np.asarray(angles_deg)[order])
    pad = int(max(np.abs(rows).max(), np.abs(cols).max()))
    h, w = x.shape[1:3]
    padded = np.pad(x[order].astype(np.float32), [(0, 0), (pad, pad), (pad, pad), (0, 0)], mode="edge")
    out = np.zeros(x.shape, dtype=np.float32)
    for tap, weight in enumerate(kernel.astype(np.float32)):
        keys = (rows[:, tap] + pad) * (2 * pad + 1) + cols[:, tap] + pad
        starts = np.concatenate([[0], np.flatnonzero(np.diff(keys)) + 1, [len(keys)]])
        for start, stop in itertools.pairwise(starts):
            dy, dx = divmod(int(keys[start]), 2 * pad + 1)
            out[start:stop] += weight * padded[start:stop, dy : dy + h, dx : dx + w]
    result = np.empty_like(out)
    result[order] = out
    return result


def zoom_axis(n: int, factor: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The reference's ``clipped_zoom`` along one axis of length n, as linear interpolation:
    output i = (1 - w[i]) * input[lo[i]] + w[i] * input[hi[i]].

    ``clipped_zoom`` crops the central ceil(n / factor) pixels, enlarges them with
    ``scipy.ndimage.zoom(order=1)`` (which maps the first and last pixel centres onto each other,
    out = round(crop * factor) pixels) and keeps n pixels from ``(out - n) // 2``.
    """
    crop = math.ceil(n / factor)
    top = (n - crop) // 2
    out_len = round(crop * factor)  # scipy rounds the output shape with Python's round()
    trim = (out_len - n) // 2
    ratio = (crop - 1) / (out_len - 1) if out_len > 1 else 0.0
    coord = np.arange(trim, trim + n, dtype=np.float64) * ratio
    lo = np.clip(np.floor(coord), 0, crop - 1).astype(np.int64)
    hi = np.minimum(lo + 1, crop - 1)
    return top + lo, top + hi, coord - lo


def zoom_matrix(n: int, factor: float) -> sp.csr_matrix:
    """``zoom_axis`` as a sparse (n, n) matrix, output pixels by input pixels."""
    lo, hi, w = zoom_axis(n, factor)
    rows = np.arange(n)
    return sp.csr_matrix((np.concatenate([1 - w, w]), (np.concatenate([rows, rows]), np.concatenate([lo, hi]))), shape=(n, n))


@functools.lru_cache(maxsize=5)
def zoom_blur_operator(height: int, width: int, factors: tuple[float, ...]) -> sp.csr_matrix:
    """The linear map image -> (image + sum of clipped zooms) / (count + 1), over flattened
    (row, column) pixels: each zoom is the Kronecker product of its row and column zooms, and
    the whole zoom blur one sparse matrix (12,614 non-zeros for CIFAR's severity 5, 1.7 million
    (21 MB) for ImageNet's at 224x224). The cache keeps one image size's five severities."""
    total = sp.identity(height * width, format="csr")
    for factor in factors:
        total = total + sp.kron(zoom_matrix(height, factor), zoom_matrix(width, factor), format="csr")
    return (total / (len(factors) + 1)).tocsr()


def clipped_zoom(x: np.ndarray, factor: float) -> np.ndarray:
    """``clipped_zoom(img, factor)`` of ``make_cifar_c.py`` on axes 1 and 2 of a batch."""
    for axis in (1, 2):
        lo, hi, w = zoom_axis(x.shape[axis], factor)
        shape = [1] * x.ndim
        shape[axis] = len(w)
        w = w.reshape(shape)
        x = np.take(x, lo, axis=axis) * (1 - w) + np.take(x, hi, axis=axis) * w
    return x
