"""Seaborn/matplotlib figures for the report; every model keeps one colour on every page.

Figures are ``matplotlib.figure.Figure`` objects (no pyplot), drawn inside :func:`report_style`,
so making a report changes neither the user's backend nor their plotting theme.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from robust_attn.reports.tables import ALL_ATTACKS

PAGE = (11.0, 8.5)  # landscape letter, inches


@contextlib.contextmanager
def report_style() -> Iterator[None]:
    """Seaborn's paper context and white grid, for the figures made inside; restored after."""
    with sns.axes_style("whitegrid"), sns.plotting_context("paper", font_scale=1.1):
        yield


def _subplots(rows: int = 1, cols: int = 1, **kwargs: Any) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=PAGE)
    axes = fig.subplots(rows, cols, squeeze=False, **kwargs)
    return fig, axes


def palette(models: list[str]) -> dict[str, tuple[float, float, float]]:
    return dict(zip(models, sns.color_palette("colorblind", len(models))))


def _eps_axis(ax: Axes, norm: str) -> None:
    ax.set_xlabel("eps (L2, pixel units)" if norm == "l2" else "eps (L-inf, /255)")


def _x(norm: str, eps: pd.Series) -> pd.Series:
    return eps if norm == "l2" else eps * 255


def accuracy_curves(table: pd.DataFrame, colours: dict[str, tuple[float, float, float]], relative: bool = False) -> Figure:
    """One panel per attack: accuracy (or accuracy / clean) vs eps, one line per model, 95%
    Wilson bands; worst-case solid, independent dashed."""
    attacks = list(dict.fromkeys(table["attack"]))
    attacks = ([ALL_ATTACKS] if ALL_ATTACKS in attacks else []) + [a for a in attacks if a != ALL_ATTACKS]  # the headline first
    cols = min(3, len(attacks))
    rows = int(np.ceil(len(attacks) / cols))
    fig, axes = _subplots(rows, cols)
    y = "relative" if relative else "accuracy"
    for ax, attack in zip(axes.flat, attacks):
        sub = table[table["attack"] == attack]
        norm = str(sub["norm"].iloc[0])
        for (model, mode), g in sub.groupby(["model", "mode"], sort=False):
            g = g.sort_values("eps")
            x = _x(norm, g["eps"])
            style = "-" if mode == "worst-case" else "--"
            ax.plot(x, g[y], style, marker="o", ms=3, color=colours[str(model)], label=f"{model} ({mode})")
            if not relative and mode == "worst-case":
                ax.fill_between(x, g["ci_low"], g["ci_high"], color=colours[str(model)], alpha=0.15, linewidth=0)
        ax.set_title(
            attack if attack != ALL_ATTACKS else "all L-inf attacks (pointwise worst case)",
            fontweight="bold" if attack == ALL_ATTACKS else None,
        )
        _eps_axis(ax, norm)
        ax.set_ylabel("accuracy / clean accuracy" if relative else "accuracy")
        ax.set_ylim(-0.02, 1.05 if relative else 1.02)
    for ax in list(axes.flat)[len(attacks) :]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(4, len(labels)), frameon=False, fontsize=8)
    what = "Accuracy relative to clean" if relative else "Accuracy (95% Wilson bands)"
    fig.suptitle(f"{what} vs eps; solid = worst-case, dashed = independent per-eps attacks")
    fig.tight_layout(rect=(0, 0.08, 1, 0.95))
    return fig


def attention_grid(name: str, ex: dict[str, np.ndarray], stages: list[str], classes: list[str], attack: str) -> Figure:
    """Columns: each shown image clean and at each shown eps; rows: the image, then each
    stage's attention map overlaid on it (as in the paper's figures)."""
    images, maps, preds, eps = ex["images"].astype(np.float32), ex["maps"].astype(np.float32), ex["preds"], ex["eps"]
    n_eps, n_img = images.shape[0], images.shape[1]
    rows, cols = len(stages) + 1, n_eps * n_img
    fig, axes = _subplots(rows, cols, gridspec_kw={"wspace": 0.06, "hspace": 0.12})
    for i in range(n_img):
        for e in range(n_eps):
            col = i * n_eps + e
            img = np.clip(images[e, i].transpose(1, 2, 0), 0, 1).astype(np.float32)
            axes[0, col].imshow(img)
            label = "clean" if eps[e] == 0 else f"{eps[e] * 255:.3g}/255"
            axes[0, col].set_title(f"image {i + 1}, {label}\npred: {classes[int(preds[e, i])]}", fontsize=7)
            for s, stage in enumerate(stages):
                ax = axes[s + 1, col]
                ax.imshow(img.mean(axis=2), cmap="gray", vmin=0, vmax=1)
                ax.imshow(maps[e, s, i], cmap="jet", alpha=0.5)
                if col == 0:
                    ax.set_ylabel(f"attention {stage}", fontsize=8)
    axes[0, 0].set_ylabel("input", fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"{name}: attention maps (jet overlay, red = high) on clean and {attack} adversarial images", fontsize=11)
    fig.subplots_adjust(left=0.04, right=0.99, top=0.86, bottom=0.03)
    return fig


def drift_curves(drift: pd.DataFrame, colours: dict[str, tuple[float, float, float]], attack: str) -> Figure:
    fig, grid = _subplots(1, 2)
    axes = grid[0]
    plot = drift.assign(eps255=drift["eps"] * 255)
    for ax, (col, label) in zip(
        axes, [("one_minus_iou", "1 - IoU of top-10% attention region"), ("cosine", "cosine similarity to clean map")]
    ):
        sns.lineplot(plot, x="eps255", y=col, hue="model", style="stage", markers=True, palette=colours, ax=ax, legend=ax is axes[0])
        ax.set_xlabel(f"{attack} eps (L-inf, /255)")
        ax.set_ylabel(label)
    axes[0].set_ylim(-0.02, 1.02)
    handles, labels = axes[0].get_legend_handles_labels()
    axes[0].get_legend().remove()
    fig.suptitle("Attention drift under attack: clean vs adversarial maps of the same image (higher left / lower right = more drift)")
    fig.tight_layout(rect=(0, 0, 0.76, 0.95))
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(0.77, 0.5), fontsize=8, frameon=False)
    return fig


def segmentation_curves(seg: pd.DataFrame, colours: dict[str, tuple[float, float, float]], attack: str) -> Figure:
    """Jaccard vs eps: colour = model, line style = stage (solid = mean of stages); baselines grey."""
    fig, grid = _subplots()
    ax = grid[0, 0]
    styles = ["--", ":", "-."]
    for method, g in seg.groupby("method", sort=False):
        g = g.sort_values("eps")
        model = str(g["model"].iloc[0])
        if model == "baseline":
            style: dict[str, object] = {
                "color": "0.35" if "saliency" in str(method) else "0.0",
                "ls": "-" if "saliency" in str(method) else ":",
                "lw": 2,
            }
        else:
            stage = str(method).rsplit(" ", 1)[-1]
            ls = "-" if str(method).endswith("mean of stages") else styles[int(stage[1:]) % 3 if stage[1:].isdigit() else 0]
            style = {"color": colours.get(model, "0.5"), "ls": ls, "lw": 2 if ls == "-" else 1.2}
        ax.plot(g["eps"] * 255, g["jaccard"], marker="o", ms=3, label=str(method), **style)
    ax.set_xlabel(f"{attack} eps (L-inf, /255)")
    ax.set_ylabel("Jaccard index vs ground-truth mask")
    ax.set_ylim(0, max(0.6, float(seg["jaccard"].max()) + 0.05))
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    ax.set_title("Weakly supervised segmentation from binarised maps (foreground = above-uniform attention)")
    fig.tight_layout()
    return fig


def min_norm_overlay(min_curves: pd.DataFrame, table: pd.DataFrame, colours: dict[str, tuple[float, float, float]]) -> Figure:
    """Per model: the minimum-norm attack's whole curve (line) over the fixed-eps attacks'
    worst-case accuracies (markers), L-inf."""
    models = list(dict.fromkeys(min_curves["model"]))
    cols = min(3, len(models))
    rows = int(np.ceil(len(models) / cols))
    fig, axes = _subplots(rows, cols)
    fixed = table[(table["mode"] == "worst-case") & (table["norm"] == "linf") & ~table["attack"].isin(min_curves["attack"])]
    markers = dict(zip(dict.fromkeys(fixed["attack"]), "osD^vP*X"))
    for ax, model in zip(axes.flat, models):
        for attack, g in min_curves[(min_curves["model"] == model) & (min_curves["norm"] == "linf")].groupby("attack", sort=False):
            ax.plot(g["eps"] * 255, g["accuracy"], color=colours[model], lw=2, label=f"{attack} (minimum norm)")
        for attack, g in fixed[fixed["model"] == model].groupby("attack", sort=False):
            ax.plot(g["eps"] * 255, g["accuracy"], ls="none", marker=markers.get(str(attack), "o"), ms=5, color="0.25", label=str(attack))
        ax.set_title(model, fontsize=9)
        ax.set_xlabel("eps (L-inf, /255)")
        ax.set_ylabel("accuracy")
        ax.set_ylim(-0.02, 1.02)
    for ax in list(axes.flat)[len(models) :]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(5, len(labels)), frameon=False, fontsize=8)
    fig.suptitle("Minimum-norm curve (one run: accuracy = share of samples whose smallest fooling norm exceeds eps) vs fixed-eps attacks")
    fig.tight_layout(rect=(0, 0.07, 1, 0.95))
    return fig


def architecture_curves(arch: pd.DataFrame, table: pd.DataFrame, members: dict[str, list[str]]) -> Figure:
    """One panel per attack (worst-case; the pointwise worst over all attacks first): each
    architecture's mean accuracy over seeds and samples with its 95% band, and one thin line per
    training seed, so the spread between training runs shows."""
    attacks = [a for a in dict.fromkeys(arch["attack"]) if a != "clean"]
    attacks = ([ALL_ATTACKS] if ALL_ATTACKS in attacks else []) + [a for a in attacks if a != ALL_ATTACKS]
    colours = palette(list(members))
    cols = min(3, len(attacks))
    rows = int(np.ceil(len(attacks) / cols))
    fig, axes = _subplots(rows, cols)
    for ax, attack in zip(axes.flat, attacks):
        sub = arch[arch["attack"] == attack]
        norm = str(sub["norm"].iloc[0])
        for i, (name, models) in enumerate(members.items()):
            g = sub[sub["architecture"] == name].sort_values("eps")
            if g.empty:
                continue
            x = _x(norm, g["eps"])
            single = len(g) == 1  # a band of one point is invisible: the interval and the seeds as marks, side by side
            if single:
                x = x * (1 + 0.03 * (i - (len(members) - 1) / 2))
            ax.plot(x, g["accuracy"], "-", marker="o", ms=3, lw=2, color=colours[name], label=f"{name} ({len(models)} seeds)")
            ax.fill_between(x, g["ci_low"].clip(0, 1), g["ci_high"].clip(0, 1), color=colours[name], alpha=0.15, linewidth=0)
            if single:
                acc = g["accuracy"].to_numpy()
                spread = [acc - g["ci_low"].clip(0, 1).to_numpy(), g["ci_high"].clip(0, 1).to_numpy() - acc]
                ax.errorbar(x, acc, yerr=spread, fmt="none", ecolor=colours[name], elinewidth=1.5, capsize=4)
            for model in models:
                m = table[(table["model"] == model) & (table["attack"] == attack) & (table["mode"] == "worst-case")].sort_values("eps")
                mx = x.to_numpy() if single else _x(norm, m["eps"])
                ax.plot(mx, m["accuracy"], "-", marker="_" if single else None, ms=10, lw=0.7, alpha=0.6, color=colours[name])
        ax.set_title(
            attack if attack != ALL_ATTACKS else "all L-inf attacks (pointwise worst case)",
            fontweight="bold" if attack == ALL_ATTACKS else None,
        )
        _eps_axis(ax, norm)
        if sub["eps"].nunique() == 1:  # one eps: a window around it, ticked at it alone
            centre = float(_x(norm, sub["eps"]).iloc[0])
            ax.set_xlim(centre * 0.75, centre * 1.25)
            ax.set_xticks([centre])
        ax.set_ylabel("accuracy")
        ax.set_ylim(-0.02, 1.02)
    for ax in list(axes.flat)[len(attacks) :]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(4, len(labels)), frameon=False, fontsize=8)
    fig.suptitle("Architectures: mean over seeds and samples with 95% intervals (bands or bars); thin lines or ticks: each seed")
    fig.tight_layout(rect=(0, 0.07, 1, 0.95))
    return fig
