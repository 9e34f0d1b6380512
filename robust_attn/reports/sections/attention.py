"""Attention under attack (maps of every probed attention model, grouped by architecture, and their
drift) and weakly supervised segmentation from the maps."""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd

from robust_attn.epsilon import format_eps
from robust_attn.reports import figures
from robust_attn.reports.blocks import Block, Heading, Paragraph, Plot, Table, table_from
from robust_attn.reports.context import Context
from robust_attn.reports.tables import BASELINE_MAPS, drift_summary, segmentation_summary

ATTENTION, SEGMENTATION = "Attention under attack", "Weakly supervised segmentation"
TILE = 0.42  # inches per 32x32 map in the mosaics


def _mosaic_height(seeds: list[tuple[str, dict[str, np.ndarray], list[str]]]) -> float:
    return 0.45 + sum((1 + len(stages)) * TILE * 1.12 + 0.42 for _, _, stages in seeds)


def attention_section(ctx: Context) -> list[Block]:
    run = ctx.run
    probes = [p for p in run.probes if p.get("stages")]
    if not ctx.attention or not probes:
        return []
    attack = probes[0]["attack"]
    classes = list(run.manifest.get("dataset", {}).get("classes", []))
    n = int(run.drift["sample"].nunique()) if not run.drift.empty else 0
    blocks: list[Block] = [
        Heading(ATTENTION),
        Paragraph(
            f"{n} test images attacked with {attack} (the sweep's parameters, independent per eps) during the sweep. Each mosaic shows, per "
            "training seed, the first images clean and at each shown eps with the model's prediction, and each stage's attention map over "
            "the image; drift compares clean and adversarial maps of the same image.",
            style="note",
        ),
    ]
    groups: dict[str, list[tuple[str, dict[str, np.ndarray], list[str]]]] = {}
    for p in probes:
        if p["model"] in run.examples:
            groups.setdefault(ctx.arch_of.get(p["model"], p["model"]), []).append((p["model"], run.examples[p["model"]], list(p["stages"])))
    for arch, seeds in groups.items():
        name = "attention_" + "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in arch)
        draw = partial(figures.attention_mosaic, arch=arch, seeds=seeds, classes=classes, attack=attack)
        blocks.append(Plot(name, f"attention maps of {arch} ({len(seeds)} model(s))", draw, _mosaic_height(seeds)))
    drift = drift_summary(run)
    if not drift.empty:
        blocks.append(
            Plot(
                "attention_drift",
                "Attention drift vs eps: clean vs adversarial maps of the same image",
                lambda c: figures.drift_curves(c, drift, ctx.arch_of, ctx.arch_colours, attack),
                3.1,
            )
        )
        blocks.append(
            table_from(
                drift,
                {"eps": format_eps, "one_minus_iou": lambda v: f"{v:.3f}", "cosine": lambda v: f"{v:.3f}"},
                title="Attention drift per model, stage and eps (mean over images)",
                detail=True,
            )
        )
    return blocks


def segmentation_section(ctx: Context) -> list[Block]:
    seg = segmentation_summary(ctx.run)
    if not ctx.attention or seg.empty:
        return []
    attack = next((p["attack"] for p in ctx.run.probes), "")
    blocks: list[Block] = [
        Heading(SEGMENTATION),
        Paragraph(
            "Each map is upsampled to the input size and binarised at the uniform level (a pixel is foreground when its attention exceeds "
            "1/(H*W), the map's mean); the Jaccard index against the ground-truth object mask is averaged over images (per-image rows in "
            "segmentation.parquet). Baselines: input-gradient saliency, Grad-CAM and Grad-CAM++ (captum, on the last convolution) of each "
            "model without attention, binarised the same way, and a centred box covering the middle half of each side.",
            style="note",
        ),
    ]
    blocks.append(
        Plot(
            "segmentation",
            "Jaccard index vs eps",
            lambda c: figures.segmentation_curves(c, seg, ctx.arch_of, ctx.arch_colours, attack),
            3.3,
        )
    )
    blocks.append(_jaccard_table(seg, ctx.arch_of, per_architecture=True))
    blocks.append(_jaccard_table(seg, ctx.arch_of, per_architecture=False))
    return blocks


def _jaccard_table(seg: pd.DataFrame, arch_of: dict[str, str], *, per_architecture: bool) -> Table:
    """Jaccard per method and eps: per architecture (mean over its seeds, with their range), or
    per model (the full listing)."""
    if per_architecture:
        arch = seg["model"].map(lambda m: arch_of.get(m, m))
        label = [
            (
                "centred box"
                if k == "centred box"
                else f"{BASELINE_MAPS[k]} ({a})"
                if k in BASELINE_MAPS
                else f"{a} {'mean of stages' if st == 'mean' else st}"
            )
            for k, a, st in zip(seg["kind"], arch, seg["stage"])
        ]
        seg = seg.assign(method=label)
    g = seg.groupby(["method", "eps"], sort=False)["jaccard"]
    stats = pd.DataFrame({"mean": g.mean(), "low": g.min(), "high": g.max(), "n": g.size()}).reset_index()
    cols = sorted(stats["eps"].unique())
    shown: dict[str, list[str]] = {"method": list(dict.fromkeys(stats["method"]))}
    keys: dict[str, list[float]] = {"method": [np.nan] * len(shown["method"])}
    for e in cols:
        at = stats[stats["eps"] == e].set_index("method")
        shown[format_eps(float(e))] = [_jaccard(at.loc[m]) if m in at.index else "-" for m in shown["method"]]
        keys[format_eps(float(e))] = [float(at.loc[m, "mean"]) if m in at.index else np.nan for m in shown["method"]]
    if per_architecture:
        return Table(
            pd.DataFrame(shown),
            title="Jaccard index per architecture and eps: mean over seeds [lowest, highest seed] (higher is better)",
            keys=pd.DataFrame(keys),
        )
    return Table(pd.DataFrame(shown), title="Jaccard index per model and eps", keys=pd.DataFrame(keys), detail=True)


def _jaccard(row: pd.Series) -> str:
    if int(row["n"]) < 2 or np.isclose(row["low"], row["high"]):
        return f"{row['mean']:.3f}"
    return f"{row['mean']:.3f} [{row['low']:.3f}, {row['high']:.3f}]"
