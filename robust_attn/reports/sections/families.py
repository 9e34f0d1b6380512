"""Families: the architecture-level accuracy of every population under every threat model of the
run (a forest plot, one panel per training regime) and, per regime, a table with each
architecture's difference from the baseline; when the run holds three architectures or more."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import pandas as pd

from robust_attn.reports import families, family_figures, figures
from robust_attn.reports.blocks import Block, Heading, Paragraph, Plot, Table, p_value, pct, pct_interval, table_from
from robust_attn.reports.context import Context
from robust_attn.reports.sections.architectures import INSTANCES_ONLY
from robust_attn.reports.verdicts import FRAGILE_NOTE

FAMILIES = "Families"
KIND_NOTES = {  # what a row of each kind of threat model is, for the section's note
    "eps-ball": "each white-box attack at each eps it was run at (worst case)",
    "corruptions": "the common corruptions at each severity, each sample's accuracy averaged over them",
    "transfer": "transfer: images crafted on the models of the other populations (sources averaged), per eps",
}


def families_section(ctx: Context) -> list[Block]:
    """The Families section, for a run whose models declare three architectures or more under two
    kinds of threat model or more (eps-ball, corruptions, transfer; with one
    seed per architecture, only the note that its comparisons would be between instances)."""
    run = ctx.run
    if families.family_count(run) < families.MIN_FAMILIES or families.threat_kinds(run) < families.MIN_THREAT_KINDS:
        return []
    if ctx.seeds < 2:
        return [Heading(FAMILIES), Paragraph(INSTANCES_ONLY)]
    rows = families.family_rows(run)
    if rows.empty:
        return []
    from robust_attn.reports.pdf import HEIGHT, height_of

    heading = Heading(FAMILIES)
    forests = _forests(rows, ctx, HEIGHT - height_of([heading]) - 0.1)
    tables = [_regime_table(g, ctx, str(regime)) for regime, g in rows.groupby("regime", sort=False)]
    return [heading, *forests, Paragraph(_note(ctx, rows), style="note"), *tables, _listing(rows)]


def _note(ctx: Context, rows: pd.DataFrame) -> str:
    archs = list(dict.fromkeys(rows["architecture"]))
    seeds = sorted(set(rows["seeds"]))
    kinds = [KIND_NOTES[k] for k in dict.fromkeys(rows["kind"]) if k in KIND_NOTES]
    bases = families.regime_baselines(ctx.run)
    text = (
        f"{len(archs)} architectures ({', '.join(archs)}), {seeds[0] if len(seeds) == 1 else f'{seeds[0]}-{seeds[-1]}'} training seeds "
        f"each, clean and under {len(set(rows['label'])) - ('clean' in set(rows['kind']))} threat models: {'; '.join(kinds)}. "
        "Accuracy is the mean over seeds and samples with its 95% interval (seeds and samples both count: robust_attn.archstats, as in "
        "Architectures). "
    )
    if bases:
        text += (
            "Differences are from the baseline trained the same way ("
            + ", ".join(f"{regime}: {b}" for regime, b in bases.items())
            + "), samples paired; p tests 'no difference'. "
        )
    for regime, (plain, attending) in families.without_baseline(ctx.run).items():
        text += (
            f"No baseline for {regime} training: the baseline is the one population without attention trained the same way as "
            f"populations with attention, and {regime} training has {_count(plain, 'without')} and {_count(attending, 'with')}. "
        )
    return text


def _count(labels: list[str], what: str) -> str:
    """'2 populations without attention (vgg, resnet)', 'none with attention'."""
    return (
        f"{len(labels)} population{'s' if len(labels) > 1 else ''} {what} attention ({', '.join(labels)})"
        if labels
        else f"none {what} attention"
    )


def _forests(rows: pd.DataFrame, ctx: Context, room: float) -> list[Plot]:
    """The forest plot, its threat models split into page-sized figures of equal size when they
    are too many for one (the first shares its page with the heading)."""
    groups = list(dict.fromkeys(rows["label"]))
    archs = list(dict.fromkeys(rows["architecture"]))
    per = family_figures.groups_fitting(len(archs), room)
    count = -(-len(groups) // per)
    per = -(-len(groups) // count)
    colours = figures.palette({a: [] for a in archs})[2]  # one hue per architecture, whatever its training regime
    bases = families.regime_baselines(ctx.run)
    plots = []
    for k in range(count):
        chunk = groups[k * per : (k + 1) * per]
        plots.append(
            Plot(
                "families" + (f"-{k + 1}" if k else ""),
                "Accuracy per architecture and threat model, mean over seeds and samples with 95% intervals; one panel per training regime"
                + (f" (part {k + 1} of {count})" if count > 1 else ""),
                partial(family_figures.families_forest, rows=rows[rows["label"].isin(chunk)], colours=colours, baselines=bases),
                family_figures.forest_height(len(chunk), len(archs)),
            )
        )
    return plots


def _difference(r: pd.Series) -> str:
    """'-3.1 [-6.0, -0.2] p = 0.041 fragile': the difference from the baseline in points."""
    mark = " fragile" if r["fragile"] else ""
    return f"{r['diff'] * 100:+.1f} [{r['diff_low'] * 100:+.1f}, {r['diff_high'] * 100:+.1f}] p = {p_value(r['p_value'])}{mark}"


def _regime_table(rows: pd.DataFrame, ctx: Context, regime: str) -> Table:
    """One row per threat model, one column per architecture: accuracy [95% CI] and, below it, the
    difference from the regime's baseline."""
    base = families.regime_baselines(ctx.run).get(regime, "")
    archs = list(dict.fromkeys(rows["architecture"]))
    heads = {a: f"{a} (baseline)" if base in set(rows.loc[rows["architecture"] == a, "population"]) else a for a in archs}
    shown: dict[str, list[str]] = {"threat model": [], **{heads[a]: [] for a in archs}}
    keys: dict[str, list[float]] = {k: [] for k in shown}
    for label, g in rows.groupby("label", sort=False):
        shown["threat model"].append(str(label))
        keys["threat model"].append(float("nan"))
        for a in archs:
            r = g[g["architecture"] == a]
            cell = "-" if r.empty else pct_interval(*r[["accuracy", "ci_low", "ci_high"]].iloc[0])
            if len(r) and pd.notna(r["diff"].iloc[0]):
                cell += "\n" + _difference(r.iloc[0])
            shown[heads[a]].append(cell)
            keys[heads[a]].append(float(r["accuracy"].iloc[0]) if len(r) else float("nan"))
    against = f"the difference from {base} in points [95% CI] and p" if base else "no baseline to compare with"
    return Table(
        pd.DataFrame(shown),
        title=f"{regime} training: accuracy per architecture [95% CI, %]; below it, {against}",
        caption=f"An interval that contains 0 is no evidence of a difference; {FRAGILE_NOTE}. Every row: the full listing in report.md and report.html.",
        keys=pd.DataFrame(keys),
    )


def _signed(d: float) -> str:
    return "-" if pd.isna(d) else f"{d * 100:+.1f}"


LISTING: dict[str, Callable[[Any], str]] = {  # column -> its format in the full listing
    "label": str,
    "regime": str,
    "architecture": str,
    "seeds": str,
    "accuracy": pct,
    "ci_low": pct,
    "ci_high": pct,
    "against": lambda b: b or "-",
    "diff": _signed,
    "diff_low": _signed,
    "diff_high": _signed,
    "p_value": p_value,
    "fragile": lambda f: "fragile" if f else "",
}


def _listing(rows: pd.DataFrame) -> Table:
    return table_from(
        rows[list(LISTING)],
        LISTING,
        rename={"label": "threat model", "against": "baseline", "diff": "difference", "p_value": "p"},
        title="Families: every threat model, training regime and architecture (accuracy %, differences in points)",
        row_style=["fragile" if f else "" for f in rows["fragile"]],
        detail=True,
    )
