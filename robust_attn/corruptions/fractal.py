"""The plasma fractal (diamond-square heightmap) behind the fog corruption, for a whole batch."""

from __future__ import annotations

import numpy as np


def draws_needed(mapsize: int) -> int:
    """Uniform draws one map consumes: every point but the first, mapsize^2 - 1."""
    return mapsize * mapsize - 1


def plasma_fractal(uniforms: np.ndarray, mapsize: int, wibbledecay: float) -> np.ndarray:
    """Heightmaps (N, mapsize, mapsize) in [0, 1], one per row of ``uniforms`` (N, mapsize^2 - 1).

    The reference's ``plasma_fractal`` with a leading batch axis: each square or diamond
    midpoint is the mean of its four neighbours (wrapping around) plus wibble * U(-wibble,
    wibble), the wibble dividing by ``wibbledecay`` at each halving of the step. The uniforms
    are consumed in the reference's order: squares, then the two diamond sets, step by step.
    """
    if mapsize & (mapsize - 1):
        raise ValueError(f"mapsize must be a power of two, got {mapsize}")
    n = len(uniforms)
    grid = np.zeros((n, mapsize, mapsize))
    step, wibble, used = mapsize, 100.0, 0

    def wibbled_mean(total: np.ndarray) -> np.ndarray:
        nonlocal used
        count = total[0].size
        u = uniforms[:, used : used + count].reshape(total.shape)
        used += count
        return total / 4 + wibble * (-wibble + 2 * wibble * u)  # numpy's uniform(low, high)

    while step >= 2:
        half = step // 2
        corners = grid[:, 0:mapsize:step, 0:mapsize:step]
        squares = corners + np.roll(corners, -1, axis=1)
        squares += np.roll(squares, -1, axis=2)
        grid[:, half:mapsize:step, half:mapsize:step] = wibbled_mean(squares)
        centres = grid[:, half:mapsize:step, half:mapsize:step]
        corners = grid[:, 0:mapsize:step, 0:mapsize:step]
        left = (centres + np.roll(centres, 1, axis=1)) + (corners + np.roll(corners, -1, axis=2))
        grid[:, 0:mapsize:step, half:mapsize:step] = wibbled_mean(left)
        top = (centres + np.roll(centres, 1, axis=2)) + (corners + np.roll(corners, -1, axis=1))
        grid[:, half:mapsize:step, 0:mapsize:step] = wibbled_mean(top)
        step //= 2
        wibble /= wibbledecay
    grid -= grid.min(axis=(1, 2), keepdims=True)
    return grid / grid.max(axis=(1, 2), keepdims=True)
