"""The threat models beyond the white-box eps-ball: common corruptions (per population and severity,
against the baseline), transfer matrices (heatmaps per eps, the architecture-level matrix and its
asymmetry) and the generalisation probes (linear classifiers on frozen features of unseen data)."""

from __future__ import annotations

from functools import partial

import pandas as pd

from robust_attn.epsilon import format_eps
from robust_attn.reports import threat_figures, threats
from robust_attn.reports.blocks import Block, Heading, Paragraph, Plot, Table, p_value, pct, pct_interval, table_from
from robust_attn.reports.context import Context
from robust_attn.reports.verdicts import annotate

CORRUPTIONS, TRANSFER, GENERALISATION = "Common corruptions", "Transfer attacks", "Generalisation to unseen data"


def _comparison_table(rows: pd.DataFrame, key: str, title: str, caption: str) -> Table:
    """Attention population vs its baseline per ``key`` (severity, eps or data set): the difference
    in points [95% CI], p and the verdict, fragile rows shaded."""
    shown = annotate(rows).assign(
        difference=[
            f"{d * 100:+.1f} [{lo * 100:+.1f}, {hi * 100:+.1f}]" for d, lo, hi in zip(rows["diff"], rows["ci_low"], rows["ci_high"])
        ]
    )
    return table_from(
        shown[["architecture", "against", key, "difference", "p_value", "seeds", "label"]],
        {key: lambda v: format_eps(float(v)) if key == "eps" else str(v), "p_value": p_value},
        rename={"against": "baseline", "difference": "difference, points [95% CI]", "p_value": "p", "label": "verdict"},
        title=title,
        caption=caption,
        row_style=["fragile" if f else "" for f in shown["fragile"]],
    )


def corruption_section(ctx: Context) -> list[Block]:
    run = ctx.run
    if not run.corruptions:
        return []
    table = threats.corruption_table(run)
    arch = threats.corruption_architecture(run)
    names = table["corruption"].nunique()
    blocks: list[Block] = [
        Heading(CORRUPTIONS),
        Paragraph(
            f"{names} common corruptions of CIFAR-10-C (Hendrycks & Dietterich, ICLR 2019: noise, blur, weather, digital) at severities "
            f"{', '.join(str(s) for s in sorted(table['severity'].unique()))}, with their CIFAR parameters, applied to the same "
            f"{len(run.labels):,} test images for every model (deterministic for the spec's seed). Accuracy is the mean over the "
            "corruptions; intervals over seeds and samples as for the attacks. No eps: a corruption is not a norm ball.",
            style="note",
        ),
    ]
    blocks.append(_severity_table(arch, ctx))
    comparison = threats.corruption_comparison(run) if ctx.seeds >= 2 else pd.DataFrame()
    if len(comparison):
        blocks.append(
            _comparison_table(
                comparison,
                "severity",
                "Attention vs baseline under corruptions (mean over corruptions)",
                "Positive: the attention population keeps more images; an interval that contains 0 is no evidence.",
            )
        )
    height = threat_figures.corruption_height(len(ctx.members))
    blocks.append(
        Plot(
            "corruptions",
            "Accuracy under common corruptions: per corruption (left) and per severity (right)",
            lambda c: threat_figures.corruption_figure(c, table, ctx.arch_of, ctx.arch_colours),
            height,
        )
    )
    blocks.append(table_from(table, {"accuracy": pct, "clean": pct}, title="Accuracy per model, corruption and severity", detail=True))
    return blocks


def _severity_table(arch: pd.DataFrame, ctx: Context) -> Table:
    severities = list(dict.fromkeys(arch["severity"]))
    shown: dict[str, list[str]] = {"population": [], "seeds": [], "clean": []}
    shown.update({f"severity {s}" if s != "all" else "all severities": [] for s in severities})
    for population, g in arch.groupby("architecture", sort=False):
        models = ctx.members.get(str(population), [])
        shown["population"].append(str(population))
        shown["seeds"].append(str(len(models)))
        clean = [ctx.run.clean_accuracy(m) for m in models]
        shown["clean"].append(f"{sum(clean) / len(clean):.1%}" if clean else "-")
        for s in severities:
            r = g[g["severity"] == s]
            shown[f"severity {s}" if s != "all" else "all severities"].append(
                pct_interval(*r[["accuracy", "ci_low", "ci_high"]].iloc[0]) if len(r) else "-"
            )
    return Table(pd.DataFrame(shown), title="Accuracy under corruptions per population [95% CI, %], mean over the corruptions")


def transfer_section(ctx: Context) -> list[Block]:
    run = ctx.run
    if not run.transfers:
        return []
    matrix = threats.transfer_matrix(run)
    blocks: list[Block] = [
        Heading(TRANSFER),
        Paragraph(
            "Adversarial images crafted on each source model (white-box) and evaluated on each target: the diagonal (outlined) is the "
            "white-box attack, the rest black-box transfer. A transfer attack that leaves a target lower than its white-box attack "
            "raises the indicator 'black-box beats white-box' (gradient masking suspected; see the sanity checks).",
            style="note",
        ),
    ]
    for k, (attack, sub) in enumerate(matrix.groupby("attack", sort=False)):  # one figure per [[transfer]] section
        models = list(dict.fromkeys([*sub["target"], *sub["source"]]))
        blocks.append(
            Plot(
                "transfer" + (f"-{k + 1}" if k else ""),
                f"Transfer matrices ({attack}): target accuracy (rows) on images crafted on each source (columns), per eps",
                partial(threat_figures.transfer_figure, matrix=sub),
                threat_figures.transfer_height(models, sub["eps"].nunique()),
            )
        )
    if ctx.seeds >= 2:
        arch = threats.transfer_architecture(run)
        if len(arch):
            shown = arch.assign(accuracy=[pct_interval(a, lo, hi) for a, lo, hi in zip(arch["accuracy"], arch["ci_low"], arch["ci_high"])])
            blocks.append(
                table_from(
                    shown[["source", "target", "eps", "seeds", "accuracy"]],
                    {"eps": format_eps},
                    rename={"accuracy": "target accuracy [95% CI]"},
                    title="Transfer between populations (sources averaged, a model is never its own source)",
                )
            )
        asym = threats.transfer_asymmetry(run)
        if len(asym):
            blocks.append(
                _comparison_table(
                    asym,
                    "eps",
                    "Do attacks crafted on the baseline transfer to the attention models less than the other way round?",
                    "Difference: accuracy of the attention models on the baseline's images minus the baseline's accuracy "
                    "on the attention models' images; positive: the attention models resist transfer better.",
                )
            )
    blocks.append(table_from(matrix, {"eps": format_eps, "accuracy": pct}, title="Every transfer cell", detail=True))
    return blocks


def generalisation_section(ctx: Context) -> list[Block]:
    run = ctx.run
    if run.generalisation.empty:
        return []
    arch = threats.generalisation_architecture(run)
    skipped = run.manifest.get("generalisation_skipped", {})
    blocks: list[Block] = [
        Heading(GENERALISATION),
        Paragraph(
            "A linear classifier (scikit-learn logistic regression) on each model's frozen features (the attended, concatenated features "
            "of attention models; the penultimate features of the others), trained and tested on data sets the model never saw.",
            style="note",
        ),
    ]
    if skipped:
        blocks.append(Paragraph("; ".join(str(v) for v in skipped.values()) + ".", lead="Skipped: ", style="note"))
    shown = arch.assign(accuracy=[pct_interval(a, lo, hi) for a, lo, hi in zip(arch["accuracy"], arch["ci_low"], arch["ci_high"])])
    blocks.append(
        table_from(
            shown[["architecture", "dataset", "seeds", "accuracy"]],
            {},
            rename={"accuracy": "probe accuracy [95% CI]"},
            title="Linear-probe test accuracy per population and unseen data set",
        )
    )
    blocks.append(
        Plot(
            "generalisation",
            "Linear-probe accuracy on unseen data sets",
            lambda c: threat_figures.generalisation_figure(c, arch, ctx.arch_colours),
            3.2,
        )
    )
    return blocks
