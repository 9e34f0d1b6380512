"""A region of known size in inches that a figure draws into: a whole figure (for the Markdown and
HTML images) or a part of a PDF page (a subfigure). Margins are given in inches, so a figure lays
out the same at any size and its labels keep their room."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure, FigureBase
from matplotlib.gridspec import GridSpec

EPS = 1e-6


@dataclass
class Canvas:
    fig: FigureBase
    width: float  # inches
    height: float

    def grid(
        self,
        rows: int = 1,
        cols: int = 1,
        *,
        left: float = 0.65,
        right: float = 0.15,
        top: float = 0.45,
        bottom: float = 0.5,
        wgap: float = 0.55,
        hgap: float = 0.65,
        **kwargs: Any,
    ) -> np.ndarray:
        """A rows x cols grid of axes inside the margins (inches), gaps between panels in inches."""
        panel_w = max((self.width - left - right - (cols - 1) * wgap) / cols, 0.1)
        panel_h = max((self.height - top - bottom - (rows - 1) * hgap) / rows, 0.1)
        gridspec_kw = {
            "left": left / self.width,
            "right": 1 - right / self.width,
            "top": 1 - top / self.height,
            "bottom": bottom / self.height,
            "wspace": wgap / panel_w,
            "hspace": hgap / panel_h,
            **kwargs.pop("gridspec_kw", {}),
        }
        return np.asarray(self.fig.subplots(rows, cols, squeeze=False, gridspec_kw=gridspec_kw, **kwargs))

    def axes(self, left: float, top: float, width: float, height: float) -> Axes:
        """One axes at ``left`` inches from the left and ``top`` inches from the top."""
        return self.fig.add_axes((left / self.width, 1 - (top + height) / self.height, width / self.width, height / self.height))

    def x(self, inches: float) -> float:
        return inches / self.width

    def y(self, inches_from_top: float) -> float:
        return 1 - inches_from_top / self.height

    def title(self, text: str, **kwargs: Any) -> None:
        """A title line at the top of the region (inside its top margin)."""
        self.fig.text(0.5, self.y(0.06), text, ha="center", va="top", fontsize=kwargs.pop("fontsize", 9.5), **kwargs)


def standalone(width: float, height: float) -> tuple[Figure, Canvas]:
    fig = Figure(figsize=(width, height))
    return fig, Canvas(fig, width, height)


def region(page: Figure, page_size: tuple[float, float], left: float, top: float, width: float, height: float) -> Canvas:
    """A subfigure of ``page`` at ``left``, ``top`` (inches from the top-left), ``width`` x ``height`` inches."""
    pw, ph = page_size
    gs = GridSpec(
        3,
        3,
        figure=page,
        left=0,
        right=1,
        bottom=0,
        top=1,
        wspace=0,
        hspace=0,
        width_ratios=[left + EPS, width, max(pw - left - width, 0) + EPS],
        height_ratios=[top + EPS, height, max(ph - top - height, 0) + EPS],
    )
    return Canvas(page.add_subfigure(gs[1, 1]), width, height)
