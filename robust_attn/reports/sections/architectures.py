"""The paper's claims as a table, and the architecture-level comparison: curves over seeds, the
headline accuracies and the pairwise differences (every attack in architecture_pairs.csv)."""

from __future__ import annotations

import pandas as pd

from robust_attn.epsilon import format_eps
from robust_attn.reports import figures
from robust_attn.reports.blocks import Block, Heading, Paragraph, Plot, Table, p_value, pct, pct_interval, table_from
from robust_attn.reports.context import Context
from robust_attn.reports.tables import ALL_ATTACKS, budget_mismatch, headline_rows
from robust_attn.reports.verdicts import FRAGILE_NOTE, claim_name, difference, is_fragile

CLAIMS, ARCHITECTURES = "The paper's claims", "Architectures"
INSTANCES_ONLY = (
    "Each architecture has one trained model in this run, so every comparison here is between model instances: another "
    "training run of the same architecture can land elsewhere, and no architecture-level claim is made. Sweep several "
    "training seeds (spec field seeds = [0, 1, 2]) for architecture-level intervals."
)


def claims_section(ctx: Context) -> list[Block]:
    claims = ctx.claims
    if claims.empty:
        return []
    shown = claims.assign(claim=claims.apply(claim_name, axis=1), difference=claims.apply(difference, axis=1))
    table = table_from(
        shown[["architecture", "against", "claim", "measure", "value", "baseline", "difference", "p_value", "seeds", "label"]],
        {"value": lambda v: f"{v:.3f}", "baseline": lambda v: f"{v:.3f}", "p_value": p_value},
        rename={
            "against": "baseline",
            "baseline": "baseline value",
            "difference": "difference [95% CI]",
            "p_value": "p",
            "label": "verdict",
        },
        row_style=["fragile" if f else "" for f in claims["fragile"]],
    )
    note = (
        "The claims of Jetley et al. (2018) tested at the architecture level on this data: accuracies, or the Jaccard index of the "
        "binarised mean attention map against the object mask vs the best of the baseline's input-gradient saliency, Grad-CAM, "
        "Grad-CAM++ and a centred box, or a linear probe's accuracy on frozen features of data sets the models never saw. Supported: the 95% "
        f"interval lies above 0; not supported: below 0; inconclusive: it contains 0. Shaded rows are {FRAGILE_NOTE}."
    )
    if ctx.seeds < 2:
        note += " With one seed per architecture no verdict is given: instances only."
    return [Heading(CLAIMS), Paragraph(note, style="note"), table]


def architecture_section(ctx: Context) -> list[Block]:
    run = ctx.run
    if not ctx.members or ctx.table.empty:
        return []
    blocks: list[Block] = [Heading(ARCHITECTURES)]
    budget = budget_mismatch(run)
    if budget:
        blocks.append(
            Paragraph(
                f" ({'; '.join(budget)}). Differences mix architecture and training length; train them with one budget "
                "before comparing architectures.",
                lead="Warning: the compared models were trained with different budgets",
                style="alert",
            )
        )
    if ctx.seeds < 2:
        return [*blocks, Paragraph(INSTANCES_ONLY)]
    arch = ctx.arch
    blocks.append(
        Paragraph(
            f"{len(ctx.members)} architectures, {_seed_counts(ctx)} training seeds each. Accuracy is the mean over seeds and samples; the 95% "
            "interval counts both seed-to-seed and sample-to-sample variation (crossed random effects, method of moments, Satterthwaite t; "
            "robust_attn.archstats). Differences pair the samples; p tests 'no difference'.",
            style="note",
        )
    )
    blocks += _accuracy_tables(ctx)
    blocks += _pair_tables(ctx)
    rows = int(-(-len({a for a in arch["attack"] if a != "clean"}) // 3))
    blocks.append(
        Plot(
            "architectures",
            "Architecture-level accuracy curves: mean over seeds and samples with 95% bands; thin lines: each seed",
            lambda c: figures.architecture_curves(c, arch, ctx.table, ctx.members, ctx.arch_colours, ctx.markers),
            1.0 + 2.55 * rows,
        )
    )
    return blocks


def _accuracy_tables(ctx: Context) -> list[Block]:
    """The headline attack per architecture and eps (a pivot), and every attack in full (listing)."""
    arch, focus = ctx.arch, ctx.focus
    head = headline_rows(arch, focus)
    cols = sorted(head["eps"].unique())
    pivot: dict[str, list[str]] = {label: [] for label in ["architecture", "seeds", *("clean" if e == 0 else format_eps(e) for e in cols)]}
    keys: dict[str, list[float]] = {k: [] for k in pivot}
    for name, g in head.groupby("architecture", sort=False):
        pivot["architecture"].append(name)
        pivot["seeds"].append(str(int(g["seeds"].iloc[0])))
        keys["architecture"].append(float("nan"))
        keys["seeds"].append(float(g["seeds"].iloc[0]))
        for e in cols:
            r = g[g["eps"] == e]
            label = "clean" if e == 0 else format_eps(e)
            pivot[label].append(pct_interval(*r[["accuracy", "ci_low", "ci_high"]].iloc[0]) if len(r) else "-")
            keys[label].append(float(r["accuracy"].iloc[0]) if len(r) else float("nan"))
    what = "all attacks (pointwise worst case)" if focus == ALL_ATTACKS else str(focus)
    full = arch.assign(attack=arch["attack"].replace({ALL_ATTACKS: "all attacks"}))
    return [
        Table(pd.DataFrame(pivot), title=f"Accuracy per architecture [95% CI, %]: clean and {what}", keys=pd.DataFrame(keys)),
        table_from(
            full[["architecture", "attack", "eps", "seeds", "accuracy", "ci_low", "ci_high"]],
            {"eps": format_eps, "accuracy": pct, "ci_low": pct, "ci_high": pct},
            title="Accuracy per architecture, every attack",
            detail=True,
        ),
    ]


def _pair_tables(ctx: Context) -> list[Block]:
    pairs = ctx.pairs
    if pairs.empty:
        return []
    sel = headline_rows(pairs, ctx.focus)
    cols = sorted(sel["eps"].unique())
    names = list(dict.fromkeys(zip(sel["arch_a"], sel["arch_b"])))
    shown = {"A - B": [f"{a} - {b}" for a, b in names]}
    for e in cols:
        cells = []
        for a, b in names:
            r = sel[(sel["arch_a"] == a) & (sel["arch_b"] == b) & (sel["eps"] == e)]
            if r.empty:
                cells.append("-")
                continue
            r0 = r.iloc[0]
            mark = (
                " fragile" if is_fragile(r0["p_value"], "significant" if r0["ci_low"] > 0 or r0["ci_high"] < 0 else "inconclusive") else ""
            )
            cells.append(f"{r0['diff'] * 100:+.1f} [{r0['ci_low'] * 100:+.1f}, {r0['ci_high'] * 100:+.1f}]\np = {r0['p_value']:.2g}{mark}")
        shown["clean" if e == 0 else format_eps(e)] = cells
    what = "all attacks" if ctx.focus == ALL_ATTACKS else str(ctx.focus)
    full = pairs.assign(attack=pairs["attack"].replace({ALL_ATTACKS: "all attacks"}))
    return [
        Table(
            pd.DataFrame(shown),
            title=f"Differences between architectures, accuracy points [95% CI]: clean and {what}",
            caption="An interval that contains 0 is no evidence of a difference; 'fragile': 0.01 <= p < 0.05. Every attack: "
            "architecture_pairs.csv and the full listing.",
        ),
        table_from(
            full,
            {
                "eps": format_eps,
                "acc_a": pct,
                "acc_b": pct,
                "diff": lambda d: f"{d * 100:+.1f}",
                "ci_low": lambda d: f"{d * 100:+.1f}",
                "ci_high": lambda d: f"{d * 100:+.1f}",
                "p_value": p_value,
            },
            title="Differences between architectures, every attack (architecture_pairs.csv)",
            detail=True,
        ),
    ]


def _seed_counts(ctx: Context) -> str:
    counts = sorted({len(models) for models in ctx.members.values()})
    return str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
