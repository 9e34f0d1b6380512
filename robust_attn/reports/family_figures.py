"""The families forest plot: per threat model (row groups, top to bottom) each architecture's
accuracy over seeds and samples with its 95% interval, one panel per training regime with the
rows aligned across panels, one colour per architecture."""

from __future__ import annotations

import matplotlib as mpl
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.lines import Line2D

from robust_attn.reports.canvas import Canvas
from robust_attn.reports.figures import Colour, _legend

PITCH, GAP = 0.072, 0.075  # inches per architecture row, and between threat-model groups
TOP, BOTTOM, WGAP = 0.3, 0.48, 0.3  # inches of the panel titles, of the axis with its label, between panels
FRAME = TOP + BOTTOM + 0.05
LEGEND = 2.0  # inches of the right margin the legend takes
GREY = (0.4, 0.4, 0.4)


def forest_height(groups: int, architectures: int) -> float:
    """Inches a forest of ``groups`` threat models x ``architectures`` rows needs."""
    return FRAME + groups * (architectures * PITCH + GAP)


def groups_fitting(architectures: int, height: float) -> int:
    """How many threat-model groups of ``architectures`` rows fit in ``height`` inches (at least one)."""
    return max(1, int((height - FRAME) // (architectures * PITCH + GAP)))


def _label_room(labels: list[str]) -> float:
    return 0.058 * max(len(s) for s in labels) + 0.25


def _differs(r: pd.Series) -> bool:
    """The row's difference from its baseline has an interval clear of 0 (or it has no difference)."""
    return bool(pd.isna(r["diff"]) or r["diff_low"] > 0 or r["diff_high"] < 0)


def _panel(ax: Axes, rows: pd.DataFrame, y: dict[tuple[str, str], float], colours: dict[str, Colour], baseline: str) -> None:
    """One regime: an interval and a point per (threat model, architecture) row; the baseline a
    square, architectures within noise of it hollow."""
    for _, r in rows.iterrows():
        at, colour = y[(r["label"], r["architecture"])], colours.get(str(r["architecture"]), GREY)
        ax.plot([r["ci_low"], r["ci_high"]], [at, at], color=colour, lw=1.3, solid_capstyle="butt")
        filled = _differs(r)
        marker = "s" if r["population"] == baseline else "o"
        ax.plot([r["accuracy"]], [at], marker=marker, ms=3.6, color=colour, mfc=colour if filled else "white", mew=1.1)


def families_forest(canvas: Canvas, rows: pd.DataFrame, colours: dict[str, Colour], baselines: dict[str, str]) -> None:
    """The forest of :func:`robust_attn.reports.families.family_rows` ``rows`` (one chunk of its
    threat models): one panel per regime, threat models as row groups labelled at the left,
    architectures by colour; ``baselines``: regime -> its baseline population."""
    groups = list(dict.fromkeys(rows["label"]))
    archs = list(dict.fromkeys(rows["architecture"]))
    regimes = list(dict.fromkeys(rows["regime"]))
    step = len(archs) + GAP / PITCH  # data units per group: one per architecture row, and the gap
    y = {(g, a): i * step + j for i, g in enumerate(groups) for j, a in enumerate(archs)}
    centres = [i * step + (len(archs) - 1) / 2 for i in range(len(groups))]
    left = _label_room(groups)
    axes = canvas.grid(1, len(regimes), left=left, right=LEGEND, top=TOP, bottom=BOTTOM, wgap=WGAP, sharey=True)[0]
    narrow = (canvas.width - left - LEGEND - WGAP * (len(regimes) - 1)) / len(regimes) < 2.4
    for ax, regime in zip(axes, regimes):
        _panel(ax, rows[rows["regime"] == regime], y, colours, baselines.get(regime, ""))
        for i in range(1, len(groups)):
            ax.axhline(i * step - 0.5 - GAP / PITCH / 2, color="0.8", lw=0.6)
        ax.set_title(f"{regime} training", fontsize=8)
        ax.set_xlim(-0.02, 1.02)
        ax.set_xticks([0, 0.5, 1] if narrow else [0, 0.2, 0.4, 0.6, 0.8, 1])
        ax.xaxis.set_major_formatter(mpl.ticker.PercentFormatter(1.0))
        ax.grid(axis="y", visible=False)
        ax.tick_params(axis="y", length=0)
    middle = (left + canvas.width - LEGEND) / 2 / canvas.width  # one axis label under all panels
    canvas.fig.text(middle, canvas.y(canvas.height - 0.05), "accuracy, mean over seeds and samples, with its 95% interval", ha="center",
                    va="bottom", fontsize=7.5)  # fmt: skip
    axes[0].set_yticks(centres, groups, fontsize=7)
    axes[0].set_ylim(len(groups) * step - GAP / PITCH - 0.3, -0.7)
    handles = [Line2D([], [], color=colours.get(a, GREY), lw=1.3, marker="o", ms=3.6) for a in archs]
    labels = list(archs)
    if baselines:
        handles += [
            Line2D([], [], ls="", marker="s", ms=3.6, color="0.3"),
            Line2D([], [], ls="", marker="o", ms=3.6, color="0.3", mfc="white"),
        ]
        labels += ["the regime's baseline", "difference from the baseline: interval contains 0"]
    _legend(canvas, handles, labels, right=LEGEND)
