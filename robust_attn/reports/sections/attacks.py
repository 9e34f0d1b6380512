"""Attack comparison: minimum-norm curves against the fixed-eps attacks, which ensemble member
fooled each sample first, and each attack's cost next to its strength."""

from __future__ import annotations

import pandas as pd

from robust_attn.epsilon import format_eps
from robust_attn.reports import figures
from robust_attn.reports.blocks import Block, Heading, Paragraph, Plot, table_from
from robust_attn.reports.context import Context
from robust_attn.reports.tables import attack_costs, fooled_first, min_norm_curves

TITLE = "Attack comparison"


def attack_section(ctx: Context) -> list[Block]:
    run = ctx.run
    if not run.cells:
        return []
    blocks: list[Block] = [Heading(TITLE)]
    costs = attack_costs(run, ctx.summary)
    fmt = {
        "forwards_per_sample": _count,
        "backwards_per_sample": _count,
        "seconds": lambda v: f"{v:,.1f}",
        "mean_auc": lambda v: f"{v:.3f}",
    }
    blocks.append(
        table_from(
            costs[["attack", "mode", "models", "forwards_per_sample", "backwards_per_sample", "seconds", "mean_auc"]],
            fmt,
            rename={
                "forwards_per_sample": "forwards / sample",
                "backwards_per_sample": "backwards / sample",
                "mean_auc": "mean AUC (lower = stronger)",
            },
            title="Cost and strength per attack",
            caption="Compute per attack over all eps of its grid, averaged over models, next to its strength (normalised "
            "AUC of accuracy vs eps, mean over models). '-': not counted (worker processes).",
        )
    )
    min_curves = min_norm_curves(run)
    if not min_curves.empty and (min_curves["norm"] == "linf").any():
        blocks.append(
            Paragraph(
                "A minimum-norm attack gives each sample's smallest fooling perturbation, so one run draws the whole curve; "
                "the markers are the fixed-eps attacks (worst-case). The headline takes the pointwise worst of all of them.",
                style="note",
            )
        )
        rows = int(-(-min_curves["model"].nunique() // 4))
        blocks.append(
            Plot(
                "min_norm",
                "Minimum-norm curve (accuracy = share of samples whose smallest fooling norm exceeds eps) vs fixed-eps attacks",
                lambda c: figures.min_norm_overlay(c, min_curves, ctx.table, ctx.colours),
                0.75 + 1.75 * rows,
            )
        )
    first = fooled_first(run)
    if not first.empty:
        members = [c for c in first.columns if c not in ("model", "attack", "eps", "n")]
        first[members] = first[members].astype(int)
        blocks.append(
            table_from(
                first[["model", "attack", "eps", "n", *members]],
                {"eps": format_eps},
                title="Which ensemble member fooled each sample first",
                caption="Worst-case ensemble cells: how many of the n samples each member fooled first (members run in "
                "order, each on the previous members' survivors; 'clean' = wrong without attack). Cumulative over eps.",
            )
        )
    return blocks


def _count(v: object) -> str:
    return "-" if pd.isna(v) else f"{float(v):,.1f}"  # type: ignore[arg-type]
