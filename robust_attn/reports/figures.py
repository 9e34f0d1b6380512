"""The report's figures, each drawn onto a :class:`~robust_attn.reports.canvas.Canvas` of known
size (a PDF page region or a standalone image). Colours follow the architecture (a population)
and its seeds share the hue in shades with their own markers, on every figure; legends sit
outside the data.

Figures are ``matplotlib.figure.Figure`` objects (no pyplot), drawn inside :func:`report_style`,
so making a report changes neither the user's backend nor their plotting theme.
"""

from __future__ import annotations

import contextlib
import textwrap
from collections.abc import Iterator, Sequence
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.font_manager import FontProperties
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from matplotlib.transforms import ScaledTranslation, blended_transform_factory

from robust_attn.reports.canvas import Canvas
from robust_attn.reports.tables import ALL_ATTACKS, BASELINE_MAPS

BASELINE_MAP_STYLES = {"gradient saliency": "-", "grad-cam": "--", "grad-cam++": "-."}

Colour = tuple[float, float, float]
MARKERS = "os^Dv<>P*X"
VERDICT_COLOURS = {"supported": "#1a7f37", "not supported": "#c62828", "inconclusive": "#6b6b6b", "instances only": "#3f6fb5"}
FRAGILE_COLOUR = "#e07000"
RC: dict[str, Any] = {
    "font.size": 8,
    "axes.titlesize": 8.5,
    "axes.labelsize": 8,
    "xtick.labelsize": 7.5,
    "ytick.labelsize": 7.5,
    "legend.fontsize": 7.5,
    "axes.titleweight": "normal",
    "lines.linewidth": 1.5,
    "lines.markersize": 4,
}


@contextlib.contextmanager
def report_style() -> Iterator[None]:
    """Seaborn's white grid with the report's font sizes, for the figures made inside; restored after."""
    with sns.axes_style("whitegrid"), mpl.rc_context(RC):  # type: ignore[arg-type]
        yield


def palette(members: dict[str, list[str]]) -> tuple[dict[str, Colour], dict[str, str], dict[str, Colour]]:
    """(model -> colour, model -> marker, architecture -> colour): one hue per architecture, its
    seeds in shades of it (darker to lighter) and markers in seed order."""
    base = dict(zip(members, sns.color_palette("colorblind", max(len(members), 1))))
    colours: dict[str, Colour] = {}
    markers: dict[str, str] = {}
    for arch, models in members.items():
        shades = sns.dark_palette(base[arch], len(models) + 2)[2:] if len(models) > 1 else [base[arch]]
        for i, m in enumerate(models):
            colours[m] = tuple(float(c) for c in shades[len(models) - 1 - i])  # type: ignore[assignment]
            markers[m] = MARKERS[i % len(MARKERS)]
    return colours, markers, base


def _x(norm: str, eps: pd.Series | np.ndarray) -> np.ndarray:
    return np.asarray(eps, float) if norm == "l2" else np.asarray(eps, float) * 255


def _eps_label(norm: str, attack: str = "") -> str:
    unit = "eps (L2, pixel units)" if norm == "l2" else "eps (L-inf, /255)"
    return f"{attack} {unit}".strip()


def _attack_title(attack: str) -> str:
    return "all L-inf attacks (pointwise worst case)" if attack == ALL_ATTACKS else attack


def _ordered_attacks(attacks: Sequence[str]) -> list[str]:
    names = [a for a in dict.fromkeys(attacks) if a != "clean"]
    return ([ALL_ATTACKS] if ALL_ATTACKS in names else []) + [a for a in names if a != ALL_ATTACKS]


def _accuracy_axis(ax: Axes, relative: bool = False) -> None:
    ax.set_ylim(-0.02, 1.05 if relative else 1.02)
    ax.set_ylabel("accuracy / clean accuracy" if relative else "accuracy")


def _legend(canvas: Canvas, handles: list, labels: list[str], *, right: float, title: str | None = None) -> None:
    """A legend in the right margin (``right`` inches wide), outside every panel; a label too long
    for the margin wraps at its spaces."""
    if handles:
        points = FontProperties(size=mpl.rcParams["legend.fontsize"]).get_size_in_points()
        chars = max(int((right - 0.55) * 72 / (0.6 * points)), 8)  # the marker and its gap take ~0.45 in
        labels = [textwrap.fill(label, chars, break_long_words=False, break_on_hyphens=False) for label in labels]
        canvas.fig.legend(
            handles,
            labels,
            loc="center left",
            bbox_to_anchor=(1 - canvas.x(right - 0.1), 0.5),
            frameon=False,
            title=title,
            title_fontsize=7.5,
            borderaxespad=0,
        )


def _unique(handles: list, labels: list[str]) -> tuple[list, list[str]]:
    seen: dict[str, object] = {}
    for h, label in zip(handles, labels):
        seen.setdefault(label, h)
    return list(seen.values()), list(seen)


def _panels(canvas: Canvas, n: int, cols: int, *, right: float, top: float = 0.45, bottom: float = 0.5, **kw: float) -> list[Axes]:
    rows = int(np.ceil(n / cols))
    axes = canvas.grid(rows, cols, right=right, top=top, bottom=bottom, **kw)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    return list(axes.flat)[:n]


# -- page 1 -------------------------------------------------------------------------------------
def forest(ax: Axes, claims: pd.DataFrame, label_in: float = 1.4) -> None:
    """Each claim row's difference from its baseline with its 95% interval, grouped by claim (and
    eps), the zero line marked and the verdict written at the right; fragile verdicts hollow and
    labelled. Every row's interval line has gid ``claim-row:<i>:<fragile|firm>``."""
    from robust_attn.reports.verdicts import claim_name

    names = list(dict.fromkeys(claim_name(r) for _, r in claims.iterrows()))
    y, ticks, labels = 0.0, [], []
    trans = blended_transform_factory(ax.transAxes, ax.transData)
    header = trans + ScaledTranslation(-label_in, 0, ax.figure.dpi_scale_trans)
    for name in names:
        ax.text(0, y, name, transform=header, ha="left", va="center", fontsize=8, weight="bold")
        y += 1
        for i, r in claims.iterrows():
            if claim_name(r) != name:
                continue
            colour = VERDICT_COLOURS.get(str(r["verdict"]), "0.3")
            fragile = bool(r.get("fragile", False))
            ax.plot(
                [r["ci_low"], r["ci_high"]],
                [y, y],
                color=colour,
                lw=2,
                ls=(0, (2, 1)) if fragile else "-",
                solid_capstyle="butt",
                gid=f"claim-row:{i}:{'fragile' if fragile else 'firm'}",
            )
            ax.plot([r["diff"]], [y], marker="D" if fragile else "o", ms=6, color=colour, mfc="white" if fragile else colour, mew=1.6)
            label = str(r.get("label", r["verdict"]))
            ax.text(
                1.015,
                y,
                label,
                transform=trans,
                va="center",
                fontsize=7.5,
                color=FRAGILE_COLOUR if fragile else colour,
                weight="bold" if r["verdict"] in ("supported", "not supported") else "normal",
            )
            ticks.append(y)
            labels.append(f"{r['architecture']} vs {r['against']}")
            y += 1
        y += 0.35
    ax.axvline(0, color="black", lw=1)
    ax.set_yticks(ticks, labels)
    ax.set_ylim(y - 0.6, -0.8)
    ax.grid(axis="y", visible=False)
    lo, hi = float(claims["ci_low"].min()), float(claims["ci_high"].max())
    pad = 0.08 * max(hi - lo, 0.05)
    ax.set_xlim(min(lo, 0) - pad, max(hi, 0) + pad)
    ax.set_xlabel("difference from the baseline with 95% interval\n(accuracy, or Jaccard index for the maps; 0.1 = 10 points)")


def forest_height(claims: pd.DataFrame) -> float:
    """Inches a forest plot of these claims needs (rows, group headers, axis)."""
    groups = len({(r["claim"], r["eps"]) for _, r in claims.iterrows()})
    return 0.9 + 0.24 * (len(claims) + 1.35 * groups)


def headline_panel(ax: Axes, curve: pd.DataFrame, colours: dict[str, Colour], markers: dict[str, str]) -> None:
    """The headline curve from clean: one line per architecture (or model) with its 95% band."""
    norm = str(curve["norm"].iloc[0])
    for label, g in curve.groupby("label", sort=False):
        x = _x(norm, g["eps"])
        c = colours.get(str(label), (0.4, 0.4, 0.4))
        ax.plot(x, g["accuracy"], "-", marker=markers.get(str(label), "o"), ms=3.5, color=c, label=str(label))
        ax.fill_between(x, g["ci_low"].clip(0, 1), g["ci_high"].clip(0, 1), color=c, alpha=0.15, linewidth=0)
    attack = str(curve["attack"].iloc[0])
    level = "architecture mean over seeds" if curve["level"].iloc[0] == "architecture" else "per model (instances)"
    ax.set_title(f"{_attack_title(attack)}\n{level}, 95% bands", fontsize=8.5)
    ax.set_xlabel(_eps_label(norm))
    _accuracy_axis(ax)


def summary_figure(canvas: Canvas, claims: pd.DataFrame, curve: pd.DataFrame, colours: dict[str, Colour], markers: dict[str, str]) -> None:
    """Page 1's figure: the forest plot of the claims (left) and the headline curve (right)."""
    w, h = canvas.width, canvas.height
    curve_w = (2.9 if len(claims) else 4.5) if len(curve) else 0.0
    if len(claims):
        longest = max(len(f"{a} vs {b}") for a, b in zip(claims["architecture"], claims["against"]))
        label_w, verdict_w = 0.15 + 0.062 * longest, 1.3
        width = w - label_w - verdict_w - (curve_w + 0.75 if curve_w else 0.0)
        forest(canvas.axes(label_w, 0.12, width, h - 0.8), claims, label_in=label_w - 0.05)
    if len(curve):
        n = min(len(curve["label"].unique()), 12)
        left = w - curve_w - 0.05 if len(claims) else (w - curve_w) / 2
        ax = canvas.axes(left, 0.45, curve_w, h - 1.2 - 0.17 * ((n + 1) // 2))
        headline_panel(ax, curve, colours, markers)
        handles, labels = ax.get_legend_handles_labels()
        ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, frameon=False, fontsize=7)


# -- architectures and models -------------------------------------------------------------------
def architecture_curves(
    canvas: Canvas,
    arch: pd.DataFrame,
    table: pd.DataFrame,
    members: dict[str, list[str]],
    arch_colours: dict[str, Colour],
    markers: dict[str, str],
) -> None:
    """One panel per attack (the pointwise worst over all attacks first): each architecture's mean
    accuracy over seeds and samples with its 95% band, and one thin line per training seed."""
    attacks = _ordered_attacks(arch["attack"])
    axes = _panels(canvas, len(attacks), min(3, len(attacks)), right=1.9)
    for ax, attack in zip(axes, attacks):
        sub = arch[arch["attack"] == attack]
        norm = str(sub["norm"].iloc[0])
        for name, models in members.items():
            g = sub[sub["architecture"] == name].sort_values("eps")
            if g.empty:
                continue
            x, c = _x(norm, g["eps"]), arch_colours[name]
            ax.plot(x, g["accuracy"], "-", marker="o", ms=3, lw=2, color=c, label=f"{name} ({len(models)} seeds)")
            ax.fill_between(x, g["ci_low"].clip(0, 1), g["ci_high"].clip(0, 1), color=c, alpha=0.15, linewidth=0)
            if len(g) == 1:
                ax.errorbar(
                    x, g["accuracy"], yerr=[g["accuracy"] - g["ci_low"], g["ci_high"] - g["accuracy"]], fmt="none", ecolor=c, capsize=4
                )
            for model in models:
                m = table[(table["model"] == model) & (table["attack"] == attack) & (table["mode"] == "worst-case")].sort_values("eps")
                ax.plot(
                    _x(norm, m["eps"]), m["accuracy"], "-", marker=markers.get(model) if len(m) == 1 else None, lw=0.7, alpha=0.6, color=c
                )
        ax.set_title(_attack_title(attack), fontweight="bold" if attack == ALL_ATTACKS else None)
        ax.set_xlabel(_eps_label(norm))
        if sub["eps"].nunique() == 1:  # one eps: a window around it, ticked at it alone
            centre = float(_x(norm, sub["eps"])[0])
            ax.set_xlim(centre * 0.75, centre * 1.25)
            ax.set_xticks([centre])
        _accuracy_axis(ax)
    handles, labels = axes[0].get_legend_handles_labels()
    handles.append(Line2D([], [], color="0.4", lw=0.7))
    labels.append("one training seed")
    _legend(canvas, handles, labels, right=1.9)


def accuracy_curves(
    canvas: Canvas, table: pd.DataFrame, colours: dict[str, Colour], markers: dict[str, str], relative: bool = False
) -> None:
    """One panel per attack: accuracy (or accuracy / clean) vs eps, one line per model, 95% Wilson
    bands; worst-case solid, independent dashed."""
    attacks = _ordered_attacks(table["attack"])
    axes = _panels(canvas, len(attacks), min(3, len(attacks)), right=2.3)
    y = "relative" if relative else "accuracy"
    modes = list(dict.fromkeys(table["mode"]))
    for ax, attack in zip(axes, attacks):
        sub = table[table["attack"] == attack]
        norm = str(sub["norm"].iloc[0])
        for (model, mode), g in sub.groupby(["model", "mode"], sort=False):
            g = g.sort_values("eps")
            x, c = _x(norm, g["eps"]), colours[str(model)]
            ax.plot(x, g[y], "-" if mode == "worst-case" else "--", marker=markers[str(model)], ms=3, lw=1.2, color=c, label=str(model))
            if not relative and mode == "worst-case":
                ax.fill_between(x, g["ci_low"], g["ci_high"], color=c, alpha=0.12, linewidth=0)
        ax.set_title(_attack_title(attack), fontweight="bold" if attack == ALL_ATTACKS else None)
        ax.set_xlabel(_eps_label(norm))
        _accuracy_axis(ax, relative)
    handles, labels = _unique(*axes[0].get_legend_handles_labels())
    if len(modes) > 1:
        handles += [Line2D([], [], color="0.3", ls="-"), Line2D([], [], color="0.3", ls="--")]
        labels += ["worst-case", "independent"]
    _legend(canvas, handles, labels, right=2.3)


def min_norm_overlay(canvas: Canvas, min_curves: pd.DataFrame, table: pd.DataFrame, colours: dict[str, Colour]) -> None:
    """Per model: the minimum-norm attack's whole curve (line) over the fixed-eps attacks'
    worst-case accuracies (markers), L-inf."""
    models = list(dict.fromkeys(min_curves["model"]))
    cols = min(4, len(models))
    axes = _panels(canvas, len(models), cols, right=1.7, wgap=0.5, hgap=0.6, bottom=0.45, top=0.3)
    fixed = table[(table["mode"] == "worst-case") & (table["norm"] == "linf") & ~table["attack"].isin(min_curves["attack"])]
    shapes = dict(zip(dict.fromkeys(fixed["attack"]), "osD^vP*X"))
    for k, (ax, model) in enumerate(zip(axes, models)):
        for attack, g in min_curves[(min_curves["model"] == model) & (min_curves["norm"] == "linf")].groupby("attack", sort=False):
            ax.plot(g["eps"] * 255, g["accuracy"], color=colours.get(model, "0.3"), lw=2, label=f"{attack} (minimum norm)")
        for attack, g in fixed[fixed["model"] == model].groupby("attack", sort=False):
            ax.plot(g["eps"] * 255, g["accuracy"], ls="none", marker=shapes.get(str(attack), "o"), ms=4, color="0.2", label=str(attack))
        ax.set_title(model, fontsize=7.5)
        ax.set_ylim(-0.02, 1.02)
        if k % cols == 0:
            ax.set_ylabel("accuracy")
        if k >= len(models) - cols:
            ax.set_xlabel("eps (L-inf, /255)")
    handles, labels = _unique(*axes[0].get_legend_handles_labels())
    _legend(canvas, handles, labels, right=1.7)


# -- attention and segmentation ------------------------------------------------------------------
def _overlay(image: np.ndarray, heat: np.ndarray) -> np.ndarray:
    """The image in grey with the map (min-max scaled) in jet over it, as RGB."""
    grey = image.mean(axis=2, keepdims=True).repeat(3, axis=2)
    span = float(heat.max() - heat.min())
    scaled = (heat - heat.min()) / span if span > 0 else np.zeros_like(heat)
    return 0.5 * grey + 0.5 * mpl.colormaps["jet"](scaled)[..., :3]


def _mosaic(ex: dict[str, np.ndarray], stages: list[str]) -> tuple[np.ndarray, int, int]:
    """(RGB mosaic, tile size, gap): the input row then one row per stage, columns the images at each eps."""
    images, maps = ex["images"].astype(np.float32), ex["maps"].astype(np.float32)
    n_eps, n_img, size = images.shape[0], images.shape[1], images.shape[-1]
    gap = max(size // 8, 1)
    rows, cols = 1 + len(stages), n_eps * n_img
    mosaic = np.ones((rows * (size + gap) - gap, cols * size + (n_img - 1) * 3 * gap, 3), np.float32)
    for i in range(n_img):
        for e in range(n_eps):
            c0 = (i * n_eps + e) * size + i * 3 * gap
            img = np.clip(images[e, i].transpose(1, 2, 0), 0, 1)
            img = img.repeat(3, axis=2) if img.shape[2] == 1 else img
            mosaic[0:size, c0 : c0 + size] = img
            for s in range(len(stages)):
                r0 = (s + 1) * (size + gap)
                mosaic[r0 : r0 + size, c0 : c0 + size] = _overlay(img, maps[e, s, i])
    return mosaic, size, gap


def attention_mosaic(
    canvas: Canvas, arch: str, seeds: list[tuple[str, dict[str, np.ndarray], list[str]]], classes: list[str], attack: str
) -> None:
    """One architecture's attention maps: per seed, the input row (clean and each shown eps of
    each image, with the prediction above) and one row per attended stage; one image per seed."""
    head, label_w, labels_h = 0.4, 1.05, 0.26
    per_block = (canvas.height - head) / max(len(seeds), 1)
    for b, (model, ex, stages) in enumerate(seeds):
        mosaic, size, gap = _mosaic(ex, stages)
        preds, eps, n_img = ex["preds"], ex["eps"], ex["images"].shape[1]
        n_eps = len(eps)
        scale = min((per_block - labels_h - 0.12) / mosaic.shape[0], (canvas.width - label_w - 0.1) / mosaic.shape[1])
        ax = canvas.axes(label_w, head + b * per_block + labels_h, mosaic.shape[1] * scale, mosaic.shape[0] * scale)
        ax.imshow(mosaic, interpolation="nearest", aspect="auto")
        ax.set_xticks([])
        ax.set_yticks(
            [(s + 0.5) * (size + gap) - gap / 2 for s in range(1 + len(stages))],
            ["input", *[f"attention {st}" for st in stages]],
            fontsize=7,
        )
        ax.set_ylabel(model, fontsize=7.5)
        ax.grid(False)
        for spine in ax.spines.values():
            spine.set_visible(False)
        for i in range(n_img):
            for e in range(n_eps):
                c = (i * n_eps + e) * size + i * 3 * gap + size / 2
                what = "clean" if eps[e] == 0 else f"{eps[e] * 255:.3g}/255"
                pred = int(preds[e, i])
                ax.text(c, -gap / 2, f"{what}\n{classes[pred] if pred < len(classes) else pred}", ha="center", va="bottom", fontsize=6)
    canvas.title(
        f"{arch}: attention maps (jet overlay, red = high) on clean and {attack} adversarial images, each with the prediction", fontsize=9
    )


def drift_curves(canvas: Canvas, drift: pd.DataFrame, arch_of: dict[str, str], arch_colours: dict[str, Colour], attack: str) -> None:
    """Clean vs adversarial maps of the same image: per architecture and stage, the mean over its
    seeds (thick) and each seed (thin); colour = architecture, line style = stage."""
    axes = canvas.grid(1, 2, right=2.0, top=0.4)[0]
    styles = dict(zip(sorted(drift["stage"].unique()), ["-", "--", ":", "-."]))
    plot = drift.assign(architecture=drift["model"].map(arch_of), x=drift["eps"] * 255)
    for ax, (col, label) in zip(
        axes, [("one_minus_iou", "1 - IoU of the top-10% attention regions"), ("cosine", "cosine similarity to the clean map")]
    ):
        for (arch, stage), g in plot.groupby(["architecture", "stage"], sort=False):
            c = arch_colours.get(str(arch), (0.4, 0.4, 0.4))
            for _, s in g.groupby("model", sort=False):
                ax.plot(s["x"], s[col], ls=styles[stage], lw=0.6, alpha=0.5, color=c)
            mean = g.groupby("x")[col].mean()
            ax.plot(mean.index, mean.to_numpy(), ls=styles[stage], lw=2, color=c)
        ax.set_xlabel(_eps_label("linf", attack))
        ax.set_ylabel(label)
        ax.set_ylim(-0.02, 1.02)
    axes[0].set_title("drift (higher = maps move more)")
    axes[1].set_title("similarity (lower = maps move more)")
    handles = [Line2D([], [], color=arch_colours[a], lw=2) for a in dict.fromkeys(plot["architecture"])]
    labels = list(dict.fromkeys(plot["architecture"]))
    handles += [Line2D([], [], color="0.3", ls=ls) for ls in styles.values()]
    labels += [f"stage {s}" for s in styles]
    handles.append(Line2D([], [], color="0.3", lw=0.6))
    labels.append("one training seed")
    _legend(canvas, handles, labels, right=2.0)


def segmentation_curves(canvas: Canvas, seg: pd.DataFrame, arch_of: dict[str, str], arch_colours: dict[str, Colour], attack: str) -> None:
    """Jaccard vs eps: attention maps (colour = architecture, style = stage, thick = mean over seeds),
    the baselines' saliency and class activation maps (grey) and the centred box (black, dotted)."""
    ax = canvas.grid(1, 1, right=2.6, top=0.4)[0, 0]
    styles = {"mean": "-", "l1": ":", "l2": "--", "l3": "-."}
    data = seg.assign(architecture=seg["model"].map(arch_of), x=seg["eps"] * 255)
    handles, labels = [], []
    colour: Any
    for (kind, arch, stage), g in data.groupby(["kind", "architecture", "stage"], sort=False, dropna=False):
        if kind == "centred box":
            colour, ls, label = "black", ":", "centred box"
        elif kind in BASELINE_MAP_STYLES:
            colour, ls = "0.55", BASELINE_MAP_STYLES[str(kind)]
            label = f"{BASELINE_MAPS[str(kind)]} (baselines)"
        else:
            colour, ls = arch_colours.get(str(arch), (0.4, 0.4, 0.4)), styles.get(str(stage), "-")
            label = f"{arch} {'mean of stages' if stage == 'mean' else stage}"
        for _, s in g.groupby("method", sort=False):
            ax.plot(s["x"], s["jaccard"], ls=ls, lw=0.6, alpha=0.5, color=colour)
        mean = g.groupby("x")["jaccard"].mean()
        (line,) = ax.plot(mean.index, mean.to_numpy(), ls=ls, lw=2 if stage in ("mean", "-") else 1.3, marker="o", ms=2.5, color=colour)
        if label not in labels:
            handles.append(line)
            labels.append(label)
    ax.set_xlabel(_eps_label("linf", attack))
    ax.set_ylabel("Jaccard index vs the ground-truth mask")
    ax.set_ylim(0, max(0.6, float(seg["jaccard"].max()) + 0.05))
    ax.set_title("Weakly supervised segmentation from binarised maps (thick: mean over seeds; thin: each seed)")
    _legend(canvas, handles, labels, right=2.6)


# -- appendix -----------------------------------------------------------------------------------
def short_names(models: list[str]) -> dict[str, str]:
    """Model labels for tight axes: a prefix all share up to a '/' or ':' dropped, '@seed=' as ' s'."""
    prefix = ""
    for sep in ("/", ":"):
        first = models[0].split(sep)[0] + sep
        if len(models) > 1 and all(m.startswith(first) for m in models):
            prefix = first
            break
    short = {m: m[len(prefix) :].replace("@seed=", " s") for m in models}
    return short if len(set(short.values())) == len(models) else {m: m for m in models}


def paired_heatmap(canvas: Canvas, paired: pd.DataFrame, models: list[str], eps: float) -> None:
    """Per attack at ``eps``: accuracy of the row model minus the column model (points) on the same
    samples, lower triangle; outlined cells: exact McNemar p < 0.05 (thick: p < 0.01); faded: not."""
    sub = paired[np.isclose(paired["eps"], eps)]
    attacks = _ordered_attacks(sub["attack"])
    cols = min(3, len(attacks))
    n = len(models) - 1  # rows: models[1:], columns: models[:-1]
    names = short_names(models)
    label_in = 0.058 * max(len(s) for s in names.values()) + 0.1
    axes = _panels(
        canvas,
        len(attacks),
        cols,
        right=1.0,
        left=label_in + 0.05,
        bottom=label_in + 0.1,
        top=0.3,
        wgap=label_in + 0.25,
        hgap=label_in + 0.35,
    )
    index = {m: i for i, m in enumerate(models)}
    limit = max(float(sub["diff"].abs().max()) if len(sub) else 0.0, 0.01)
    cmap = mpl.colormaps["RdBu"]
    size = 5.5 if n > 9 else 6.5
    for ax, attack in zip(axes, attacks):
        for r in sub[sub["attack"] == attack].itertuples():
            a, b = index[r.model_a], index[r.model_b]
            i, j, d = (b, a, -r.diff) if a < b else (a, b, r.diff)  # the later model's row: row minus column
            i -= 1
            shade = 0.5 + d / (2 * limit)
            significant = r.p_value < 0.05
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor=cmap(shade), alpha=1.0 if significant else 0.35, linewidth=0))
            if significant:
                ax.add_patch(
                    Rectangle((j - 0.44, i - 0.44), 0.88, 0.88, fill=False, edgecolor="black", linewidth=1.3 if r.p_value < 0.01 else 0.6)
                )
            dark = significant and abs(shade - 0.5) > 0.3
            ax.text(
                j,
                i,
                f"{d * 100:+.0f}",
                ha="center",
                va="center",
                fontsize=size,
                color="white" if dark else ("black" if significant else "0.4"),
            )
        ax.set_xlim(-0.5, n - 0.5)
        ax.set_ylim(n - 0.5, -0.5)
        ax.set_xticks(range(n), [names[m] for m in models[:-1]], rotation=90, fontsize=6.5)
        ax.set_yticks(range(n), [names[m] for m in models[1:]], fontsize=6.5)
        ax.grid(False)
        ax.set_aspect("equal", adjustable="box")
        ax.set_title(_attack_title(attack), fontsize=8)
    sm = mpl.cm.ScalarMappable(norm=mpl.colors.Normalize(-limit * 100, limit * 100), cmap=cmap)
    bar = canvas.fig.colorbar(sm, cax=canvas.axes(canvas.width - 0.8, 0.5, 0.14, min(3.0, canvas.height - 1.0)))
    bar.set_label("row minus column, accuracy points")
