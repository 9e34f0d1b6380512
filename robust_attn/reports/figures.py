"""Seaborn/matplotlib figures for the report; every model keeps one colour on every page."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from robust_attn.reports.tables import ALL_ATTACKS, is_l2

sns.set_theme(context="paper", style="whitegrid", font_scale=1.1)
PAGE = (11.0, 8.5)  # landscape letter, inches


def palette(models: list[str]) -> dict[str, tuple[float, float, float]]:
    return dict(zip(models, sns.color_palette("colorblind", len(models))))


def _eps_axis(ax: plt.Axes, attack: str) -> None:
    ax.set_xlabel("eps (L2, pixel units)" if is_l2(attack) else "eps (L-inf, /255)")


def _x(attack: str, eps: pd.Series) -> pd.Series:
    return eps if is_l2(attack) else eps * 255


def accuracy_curves(table: pd.DataFrame, colours: dict[str, tuple[float, float, float]], relative: bool = False) -> Figure:
    """One panel per attack: accuracy (or accuracy / clean) vs eps, one line per model, 95%
    Wilson bands; worst-case solid, independent dashed."""
    attacks = list(dict.fromkeys(table["attack"]))
    attacks = [a for a in attacks if a != ALL_ATTACKS] + ([ALL_ATTACKS] if ALL_ATTACKS in attacks else [])
    cols = min(3, len(attacks))
    rows = int(np.ceil(len(attacks) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=PAGE, squeeze=False)
    y = "relative" if relative else "accuracy"
    for ax, attack in zip(axes.flat, attacks):
        sub = table[table["attack"] == attack]
        for (model, mode), g in sub.groupby(["model", "mode"], sort=False):
            g = g.sort_values("eps")
            x = _x(attack, g["eps"])
            style = "-" if mode == "worst-case" else "--"
            ax.plot(x, g[y], style, marker="o", ms=3, color=colours[str(model)], label=f"{model} ({mode})")
            if not relative and mode == "worst-case":
                ax.fill_between(x, g["ci_low"], g["ci_high"], color=colours[str(model)], alpha=0.15, linewidth=0)
        ax.set_title(attack if attack != ALL_ATTACKS else "all attacks (pointwise worst case)")
        _eps_axis(ax, attack)
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
    """Rows: (image, stage); columns: clean and adversarial at each shown eps; maps overlaid."""
    images, maps, preds, eps = ex["images"], ex["maps"], ex["preds"], ex["eps"]
    n_eps, n_img = images.shape[0], images.shape[1]
    rows = n_img * (len(stages) + 1)
    fig, axes = plt.subplots(rows, n_eps, figsize=(1.55 * n_eps + 1.2, 1.3 * rows), squeeze=False)
    for i in range(n_img):
        for e in range(n_eps):
            img = np.clip(images[e, i].transpose(1, 2, 0), 0, 1).astype(np.float32)
            r0 = i * (len(stages) + 1)
            ax = axes[r0, e]
            ax.imshow(img)
            label = "clean" if eps[e] == 0 else f"{attack} {eps[e] * 255:.3g}/255"
            ax.set_title(f"{label}\npred: {classes[int(preds[e, i])]}", fontsize=7)
            for s, stage in enumerate(stages):
                ax = axes[r0 + 1 + s, e]
                ax.imshow(img.mean(axis=2), cmap="gray")
                ax.imshow(maps[e, s, i], cmap="jet", alpha=0.5)
                if e == 0:
                    ax.set_ylabel(f"att. {stage}", fontsize=7)
        for ax in axes.flat:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(f"{name}: attention maps (jet overlay) on clean and {attack} images", fontsize=9)
    fig.tight_layout()
    return fig


def drift_curves(drift: pd.DataFrame, colours: dict[str, tuple[float, float, float]], attack: str) -> Figure:
    fig, axes = plt.subplots(1, 2, figsize=(PAGE[0], 4.2))
    plot = drift.assign(eps255=drift["eps"] * 255)
    for ax, (col, label) in zip(
        axes, [("one_minus_iou", "1 - IoU of top-10% attention region"), ("cosine", "cosine similarity to clean map")]
    ):
        sns.lineplot(plot, x="eps255", y=col, hue="model", style="stage", markers=True, palette=colours, ax=ax)
        ax.set_xlabel(f"{attack} eps (L-inf, /255)")
        ax.set_ylabel(label)
        ax.legend(fontsize=7)
    axes[0].set_ylim(-0.02, 1.02)
    fig.suptitle("Attention drift under attack (clean vs adversarial maps of the same image)")
    fig.tight_layout()
    return fig


def segmentation_curves(seg: pd.DataFrame, attack: str) -> Figure:
    fig, ax = plt.subplots(figsize=(PAGE[0], 4.6))
    plot = seg.assign(eps255=seg["eps"] * 255)
    sns.lineplot(plot, x="eps255", y="jaccard", hue="method", marker="o", ax=ax)
    ax.set_xlabel(f"{attack} eps (L-inf, /255)")
    ax.set_ylabel("Jaccard index vs ground-truth mask")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, ncol=2)
    ax.set_title("Weakly supervised segmentation from binarised maps (above-uniform attention)")
    fig.tight_layout()
    return fig
