"""Appendix: paired comparisons of model instances (exact McNemar tests on the same samples), as one
heatmap per attack at the headline eps; every attack, eps and pair in paired.csv and the listing."""

from __future__ import annotations

import numpy as np

from robust_attn.epsilon import format_eps
from robust_attn.reports import figures
from robust_attn.reports.blocks import Block, Heading, Paragraph, Plot, p_value, pct, table_from
from robust_attn.reports.context import Context
from robust_attn.reports.tables import ALL_ATTACKS, headline_eps

TITLE = "Appendix: paired comparison of model instances"


def appendix_section(ctx: Context) -> list[Block]:
    paired = ctx.paired
    if paired.empty:
        return []
    focus = paired[paired["attack"] == (ctx.focus or paired["attack"].iloc[0])]
    eps = headline_eps((focus if len(focus) else paired)["eps"].unique())
    if eps is None:
        eps = float(paired["eps"].max())
    models = [m for m in ctx.run.models if m in set(paired["model_a"]) | set(paired["model_b"])]
    attacks = paired.loc[np.isclose(paired["eps"], eps), "attack"].nunique()
    rows = int(-(-attacks // 3))
    from robust_attn.reports.pdf import HEIGHT

    side = min((HEIGHT - 1.3) / rows, 0.75 + 0.22 * len(models) + 0.06 * max(len(m) for m in figures.short_names(models).values()))
    note = (
        f"At eps = {format_eps(eps)}, each panel compares two trained model instances on the same samples: the cell in row A, column B "
        "is A's accuracy minus B's in points; outlined: exact two-sided McNemar p < 0.05 (thick outline: p < 0.01), faded: not "
        "significant. Instances, not architectures: another training run of the same architecture can differ by more than these "
        "gaps. Every attack, eps and pair is in paired.csv and the full listing."
    )
    listing = paired.assign(attack=paired["attack"].replace({ALL_ATTACKS: "all attacks"}))
    return [
        Heading(TITLE, new_page=True),
        Paragraph(note, style="note"),
        Plot(
            "paired",
            f"Paired differences of model instances at {format_eps(eps)} (McNemar)",
            lambda c: figures.paired_heatmap(c, paired, models, eps),
            0.3 + side * rows,
        ),
        table_from(
            listing,
            {"eps": format_eps, "acc_a": pct, "acc_b": pct, "diff": lambda d: f"{d * 100:+.1f}", "p_value": p_value},
            rename={
                "model_a": "model A",
                "model_b": "model B",
                "acc_a": "acc A",
                "acc_b": "acc B",
                "diff": "A - B (points)",
                "only_a": "only A right",
                "only_b": "only B right",
                "p_value": "McNemar p",
            },
            title="Every paired comparison (paired.csv)",
            detail=True,
        ),
    ]
