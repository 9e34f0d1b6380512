"""Figures of the threat models beyond the white-box eps-ball: corruption heatmaps and severity
curves, transfer heatmaps per eps, and the linear probes' accuracy per unseen data set."""

from __future__ import annotations

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.patches import Rectangle

from robust_attn.epsilon import format_eps
from robust_attn.reports.canvas import Canvas
from robust_attn.reports.figures import Colour, _accuracy_axis, _legend, short_names

HEAT = "viridis"


def _annotated(ax: Axes, values: np.ndarray, *, size: float = 6.0) -> mpl.image.AxesImage:
    """An accuracy heatmap (0-1) with each cell's percentage written in it; NaN cells left blank."""
    image = ax.imshow(values, cmap=HEAT, vmin=0, vmax=1, aspect="auto")
    for (i, j), v in np.ndenumerate(values):
        if np.isfinite(v):
            ax.text(j, i, f"{v * 100:.0f}", ha="center", va="center", fontsize=size, color="black" if v > 0.55 else "white")
    ax.grid(False)
    return image


def _colourbar(canvas: Canvas, image: mpl.image.AxesImage, top: float, height: float) -> None:
    bar = canvas.fig.colorbar(image, cax=canvas.axes(canvas.width - 0.75, top, 0.13, height))
    bar.set_label("accuracy")
    bar.ax.yaxis.set_major_formatter(mpl.ticker.PercentFormatter(1.0))


def corruption_height(populations: int) -> float:
    return max(2.6, 1.9 + 0.24 * populations)


def corruption_figure(canvas: Canvas, table: pd.DataFrame, arch_of: dict[str, str], colours: dict[str, Colour]) -> None:
    """Left: accuracy per population (rows) and corruption (columns), mean over severities, seeds
    and samples. Right: accuracy vs severity per population, mean over the corruptions (thin: each model)."""
    data = table.assign(population=table["model"].map(lambda m: arch_of.get(m, m)))
    populations = list(dict.fromkeys(data["population"]))
    corruptions = list(dict.fromkeys(data["corruption"]))
    heat = data.groupby(["population", "corruption"], sort=False)["accuracy"].mean().unstack("corruption")
    heat = heat.reindex(index=populations, columns=corruptions)
    label_in = 0.06 * max(len(p) for p in populations) + 0.15
    curve_w = 2.3
    heat_w = canvas.width - label_in - curve_w - 1.0 - 0.9
    ax = canvas.axes(label_in, 0.35, heat_w, canvas.height - 1.55)
    image = _annotated(ax, heat.to_numpy(float), size=5.5 if len(corruptions) > 10 else 6.5)
    ax.set_xticks(range(len(corruptions)), [c.replace("_", " ") for c in corruptions], rotation=60, ha="right", fontsize=6.5)
    ax.set_yticks(range(len(populations)), populations, fontsize=7)
    ax.set_title("accuracy per corruption, mean over severities, seeds and samples (%)", fontsize=8)
    curves = canvas.axes(canvas.width - curve_w - 0.95, 0.35, curve_w, canvas.height - 1.55)
    per_model = data.groupby(["population", "model", "severity"], sort=False)["accuracy"].mean().reset_index()
    for population, g in per_model.groupby("population", sort=False):
        colour = colours.get(str(population), (0.4, 0.4, 0.4))
        for _, m in g.groupby("model", sort=False):
            curves.plot(m["severity"], m["accuracy"], lw=0.6, alpha=0.45, color=colour)
        mean = g.groupby("severity")["accuracy"].mean()
        curves.plot(mean.index, mean.to_numpy(), lw=2, marker="o", ms=3, color=colour, label=str(population))
    curves.set_xlabel("severity")
    curves.set_xticks(sorted(data["severity"].unique()))
    curves.set_title("mean over corruptions", fontsize=8)
    _accuracy_axis(curves)
    _colourbar(canvas, image, 0.35, canvas.height - 1.55)
    handles, labels = curves.get_legend_handles_labels()
    curves.legend(handles, labels, loc="lower left", fontsize=6.5, frameon=True)


def _label_room(names: list[str]) -> float:
    """Inches that tick labels of these names need (rotated or not)."""
    return 0.055 * max(len(s) for s in names) + 0.15


COLS = 3  # transfer panels per row


def transfer_height(models: list[str], panels: int) -> float:
    """Inches for :func:`transfer_figure`: square cells of about 0.25 inch (smaller for many
    models, so three panels fit the width), labels below each row of panels."""
    rows = -(-panels // COLS)
    label_in = _label_room(list(short_names(models).values()))
    return 0.35 + rows * (min(0.25 * len(models), 2.2) + label_in + 0.75)


def transfer_figure(canvas: Canvas, matrix: pd.DataFrame) -> None:
    """One heatmap per eps: the target model's accuracy (rows) on images crafted on the source model
    (columns); outlined: the diagonal, the white-box attack."""
    grid = sorted(matrix["eps"].unique())
    targets = list(dict.fromkeys(matrix["target"]))
    sources = list(dict.fromkeys(matrix["source"]))
    names = short_names(list(dict.fromkeys([*targets, *sources])))
    label_in = _label_room(list(names.values()))
    cols = min(COLS, len(grid))
    axes = canvas.grid(
        -(-len(grid) // cols),
        cols,
        left=label_in + 0.3,
        bottom=label_in + 0.4,
        right=1.0,
        top=0.35,
        wgap=label_in + 0.5,
        hgap=label_in + 0.75,
    ).ravel()
    image = None
    for ax, eps in zip(axes, grid):
        at = matrix[np.isclose(matrix["eps"], eps)]
        values = at.pivot_table(index="target", columns="source", values="accuracy", aggfunc="mean").reindex(index=targets, columns=sources)
        image = _annotated(ax, values.to_numpy(float), size=5.5 if len(sources) > 8 else 6.5)
        ax.set_aspect("equal", adjustable="box")
        for i, t in enumerate(targets):
            if t in sources and np.isfinite(values.loc[t, t]):
                ax.add_patch(Rectangle((sources.index(t) - 0.42, i - 0.42), 0.84, 0.84, fill=False, edgecolor="red", lw=1.4))
        ax.set_xticks(range(len(sources)), [names[s] for s in sources], rotation=90, fontsize=6)
        ax.set_yticks(range(len(targets)), [names[t] for t in targets], fontsize=6)
        ax.set_xlabel("source (images crafted on)", fontsize=7)
        ax.set_ylabel("target (evaluated on)", fontsize=7)
        ax.set_title(f"eps = {format_eps(float(eps))}, {at['attack'].iloc[0]}", fontsize=8)
    for ax in axes[len(grid) :]:
        ax.set_visible(False)
    if image is not None:
        _colourbar(canvas, image, 0.35, min(3.0, canvas.height - 1.0))


def generalisation_figure(canvas: Canvas, arch: pd.DataFrame, colours: dict[str, Colour]) -> None:
    """The linear probe's test accuracy per unseen data set (x) and population (colour), mean over
    seeds with its 95% interval."""
    ax = canvas.grid(1, 1, right=2.4, bottom=0.9)[0, 0]
    datasets = list(dict.fromkeys(arch["dataset"]))
    populations = list(dict.fromkeys(arch["architecture"]))
    width = 0.8 / max(len(populations), 1)
    handles, labels = [], []
    for k, population in enumerate(populations):
        g = arch[arch["architecture"] == population].set_index("dataset").reindex(datasets)
        x = np.arange(len(datasets)) - 0.4 + width * (k + 0.5)
        colour = colours.get(str(population), (0.4, 0.4, 0.4))
        err = np.vstack([g["accuracy"] - g["ci_low"], g["ci_high"] - g["accuracy"]]).clip(0)
        line = ax.errorbar(x, g["accuracy"], yerr=err, fmt="o", ms=4, capsize=2, color=colour)
        handles.append(line)
        labels.append(str(population))
    ax.set_xticks(range(len(datasets)), [d.replace("shapes-", "shapes:\n") for d in datasets], fontsize=7)
    ax.set_xlim(-0.5, len(datasets) - 0.5)
    ax.set_xlabel("unseen data set (linear probe on frozen features)")
    ax.set_title("Linear-probe test accuracy, mean over seeds with 95% intervals")
    _accuracy_axis(ax)
    _legend(canvas, handles, labels, right=2.4)
