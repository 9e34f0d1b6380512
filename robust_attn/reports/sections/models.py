"""Per model: the summary tables (accuracy with Wilson intervals at each eps, AUC, eps at half clean)
and the accuracy curves of every attack."""

from __future__ import annotations

import numpy as np
import pandas as pd

from robust_attn.epsilon import parse_eps
from robust_attn.reports import figures
from robust_attn.reports.blocks import Block, Heading, Paragraph, Plot, Table, pct
from robust_attn.reports.context import Context
from robust_attn.reports.tables import ALL_ATTACKS, CLAIM_EPS, class_extremes

TITLE = "Accuracy per model"
NOTE = (
    "Accuracy and its 95% Wilson interval (in %) at each eps (/255 for L-inf); AUC = area under accuracy vs eps over the eps range, "
    "from eps = 0; eps at half clean = where accuracy falls to half of clean. Highlighted: best per column. 'all attacks': a "
    "sample counts as robust only if it survives every L-inf attack (balls are nested, so an attack at a smaller eps also counts)."
)


def summary_display(summary: pd.DataFrame, attack: str, mode: str) -> tuple[pd.DataFrame, pd.DataFrame, set[tuple[int, str]]]:
    """The summary rows of one attack as strings (accuracy, its interval on a second line), their
    numeric sort keys, and the (row, column) cells holding the best value of each column."""
    sub = summary[(summary["attack"] == attack) & (summary["mode"] == mode)].reset_index(drop=True)
    acc_cols = sorted(
        (c for c in sub.columns if c.startswith("acc@") and sub[c].notna().any()), key=lambda c: parse_eps(c[4:], max_eps=None)
    )
    shown = pd.DataFrame({"model": sub["model"], "clean": sub["clean"].map(pct)})
    keys = pd.DataFrame({"model": np.nan, "clean": sub["clean"]}, index=sub.index)
    for c in acc_cols:
        ci = sub[c.replace("acc@", "ci@")]
        shown[c[4:]] = [f"{a:.1%} {i}" if isinstance(i, str) else "-" for a, i in zip(sub[c], ci)]
        keys[c[4:]] = sub[c]
    shown["AUC"] = sub["auc"].map(lambda v: f"{v:.3f}")
    keys["AUC"] = sub["auc"]
    half = "eps at half clean"
    norm = str(sub["norm"].iloc[0]) if len(sub) else "linf"
    shown[half] = sub["eps_half_clean"].map(lambda v: "never" if pd.isna(v) else (f"{v:.3g}" if norm == "l2" else f"{v * 255:.2f}/255"))
    keys[half] = sub["eps_half_clean"].fillna(np.inf)
    bold: set[tuple[int, str]] = set()
    if len(sub) < 2:
        return shown, keys, bold
    for src, dst in [("clean", "clean"), *[(c, c[4:]) for c in acc_cols], ("auc", "AUC"), ("eps_half_clean", half)]:
        values = sub[src].astype(float)
        if src == "eps_half_clean" and values.isna().any():
            best = np.nonzero(values.isna().to_numpy())[0]  # never falls to half: the most robust
        elif values.notna().any():
            best = np.nonzero(np.isclose(values, values.max()))[0]
        else:
            continue
        bold |= {(int(i), dst) for i in best}
    return shown, keys, bold


def models_section(ctx: Context) -> list[Block]:
    summ = ctx.summary
    if summ.empty:
        return []
    table = ctx.table
    rows = int(-(-table["attack"].nunique() // 3))
    height = 0.95 + 2.5 * rows
    blocks: list[Block] = [Heading(TITLE)]
    blocks.append(
        Plot(
            "curves",
            "Accuracy vs eps per model (95% Wilson bands); solid = worst-case, dashed = independent per-eps attacks",
            lambda c: figures.accuracy_curves(c, table, ctx.colours, ctx.markers),
            height,
        )
    )
    blocks.append(
        Plot(
            "curves_relative",
            "Accuracy relative to clean vs eps per model",
            lambda c: figures.accuracy_curves(c, table, ctx.colours, ctx.markers, relative=True),
            height,
            detail=True,
        )
    )
    blocks.append(Paragraph(NOTE, style="note"))
    order = sorted(dict.fromkeys(zip(summ["attack"], summ["mode"])), key=lambda am: (am[1] != "worst-case", am[0] != ALL_ATTACKS))
    for attack, mode in order:
        shown, keys, bold = summary_display(summ, attack, mode)
        blocks.append(Table(shown, title=f"{attack} ({mode})", keys=keys, bold=bold))
    return blocks + class_blocks(ctx)


def class_blocks(ctx: Context) -> list[Block]:
    """Robust accuracy by class, at its ends: the least and the most robust classes (every class
    when there are few), so the report's size does not grow with the class count."""
    attack, table = class_extremes(ctx.run)
    if attack is None or table.empty:
        return []
    shown = table.assign(**{"robust accuracy": table["robust accuracy"].map(pct)})
    if not shown["end"].any():
        shown = shown.drop(columns="end")
    title = f"Robust accuracy by class under {attack} at {CLAIM_EPS * 255:g}/255 (worst-case; all models, every image of the class)"
    return [Table(shown, title=title)]
