"""Tables of the threat models beyond the white-box eps-ball: common corruptions and transfer
matrices, per model and at the architecture level (over training seeds, with the intervals of
:mod:`robust_attn.archstats`), read from a run directory alone."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from robust_attn.reports.tables import architectures, baselines, claim_row, difference_columns, paper_claims
from robust_attn.rundir import Run


# -- common corruptions ---------------------------------------------------------------------------
def corruption_table(run: Run) -> pd.DataFrame:
    """Per model, corruption and severity: accuracy (and the model's clean accuracy beside it)."""
    rows = []
    for (model, attack), c in run.corruptions.items():
        for (name, severity), correct in zip(c.conditions, c.correct):
            rows.append(
                {
                    "model": model,
                    "attack": attack,
                    "corruption": name,
                    "severity": severity,
                    "accuracy": float(correct.mean()),
                    "clean": run.clean_accuracy(model),
                }
            )
    return pd.DataFrame(rows, columns=["model", "attack", "corruption", "severity", "accuracy", "clean"])


def _corruption_matrix(run: Run, models: list[str], severity: int | None) -> np.ndarray | None:
    """Seeds x samples: each sample's accuracy averaged over the corruptions (at one severity, or all)."""
    rows = []
    for m in models:
        cells = [c for (model, _), c in run.corruptions.items() if model == m]
        if not cells:
            return None
        c = cells[0]
        keep = [k for k, (_, s) in enumerate(c.conditions) if severity is None or s == severity]
        if not keep:
            return None
        rows.append(c.correct[keep].mean(axis=0))
    return np.asarray(rows, dtype=float)


def corruption_architecture(run: Run) -> pd.DataFrame:
    """Per population and severity (and 'all'): mean accuracy over the corruptions, over seeds and
    samples, with its 95% interval; and the clean accuracy for reference."""
    from robust_attn.archstats import architecture_mean

    severities = sorted({s for c in run.corruptions.values() for _, s in c.conditions})
    rows = []
    for label, models in architectures(run).items():
        for severity in [*severities, None]:
            y = _corruption_matrix(run, models, severity)
            if y is None:
                continue
            est = architecture_mean(y)
            rows.append(
                {
                    "architecture": label,
                    "severity": "all" if severity is None else severity,
                    "seeds": len(models),
                    "accuracy": est.value,
                    "ci_low": max(0.0, est.low),
                    "ci_high": min(1.0, est.high),
                }
            )
    return pd.DataFrame(rows, columns=["architecture", "severity", "seeds", "accuracy", "ci_low", "ci_high"])


def corruption_comparison(run: Run) -> pd.DataFrame:
    """Each attention population against its baseline (trained the same way): the difference of
    accuracy averaged over every corruption, at each severity and over all, with interval, p and verdict."""
    from robust_attn.archstats import architecture_difference

    archs = architectures(run)
    severities = sorted({s for c in run.corruptions.values() for _, s in c.conditions})
    rows = []
    for arch, base in baselines(run).items():
        for severity in [None, *severities]:
            ya, yb = _corruption_matrix(run, archs[arch], severity), _corruption_matrix(run, archs[base], severity)
            if ya is None or yb is None:
                continue
            d = architecture_difference(ya, yb)
            seeds = min(len(ya), len(yb))
            rows.append(
                {
                    "architecture": arch,
                    "against": base,
                    "severity": "all" if severity is None else severity,
                    "value": ya.mean(),
                    "baseline": yb.mean(),
                    **difference_columns(d, seeds),
                }
            )
    return pd.DataFrame(rows)


# -- transfer matrices ------------------------------------------------------------------------------
def transfer_matrix(run: Run) -> pd.DataFrame:
    """Per target, source and eps: the target's accuracy on images crafted on the source (the
    diagonal, source = target, is the white-box attack)."""
    rows = []
    for (target, attack, source), c in run.transfers.items():
        for k, eps in enumerate(c.eps):
            rows.append(
                {
                    "target": target,
                    "source": source,
                    "attack": attack,
                    "eps": float(eps),
                    "accuracy": float(c.correct[k].mean()),
                    "white_box": c.source == target,
                }
            )
    return pd.DataFrame(rows, columns=["target", "source", "attack", "eps", "accuracy", "white_box"])


def _transfer_matrix(run: Run, sources: list[str], targets: list[str], eps: float, attack: str | None = None) -> np.ndarray | None:
    """Target seeds x samples: each sample's correctness averaged over the source models (a model
    is never its own source here: that is the white-box diagonal); ``attack``: one transfer
    table's attack id only (None: every table)."""
    rows = []
    for t in targets:
        per_source = [
            c.correct[int(np.argmin(np.abs(c.eps - eps)))]
            for (target, table, _), c in run.transfers.items()
            if target == t and attack in (None, table) and c.source in sources and c.source != t and np.isclose(c.eps, eps).any()
        ]
        if not per_source:
            return None
        rows.append(np.mean(per_source, axis=0))
    return np.asarray(rows, dtype=float)


def transfer_architecture(run: Run) -> pd.DataFrame:
    """Per source population x target population x eps: the target population's accuracy under
    images crafted on the source population's models, over target seeds and samples (sources
    averaged), with its 95% interval."""
    from robust_attn.archstats import architecture_mean

    archs = architectures(run)
    grid = sorted({float(e) for c in run.transfers.values() for e in c.eps})
    rows = []
    for (src, s_models), (tgt, t_models), eps in itertools.product(archs.items(), archs.items(), grid):
        y = _transfer_matrix(run, s_models, t_models, eps)
        if y is None:
            continue
        est = architecture_mean(y)
        rows.append(
            {
                "source": src,
                "target": tgt,
                "eps": eps,
                "seeds": len(t_models),
                "accuracy": est.value,
                "ci_low": max(0.0, est.low),
                "ci_high": min(1.0, est.high),
            }
        )
    return pd.DataFrame(rows, columns=["source", "target", "eps", "seeds", "accuracy", "ci_low", "ci_high"])


def transfer_asymmetry(run: Run) -> pd.DataFrame:
    """For each attention population and its baseline: does an attack crafted on the baseline
    transfer to the attention models less than the other way round? The difference is
    acc(baseline -> attention) - acc(attention -> baseline), per eps (positive: attention models
    resist the baseline's images better), samples paired, seeds of each target population."""
    from robust_attn.archstats import architecture_difference

    archs = architectures(run)
    grid = sorted({float(e) for c in run.transfers.values() for e in c.eps})
    rows = []
    for arch, base in baselines(run).items():
        for eps in grid:
            to_att = _transfer_matrix(run, archs[base], archs[arch], eps)
            to_base = _transfer_matrix(run, archs[arch], archs[base], eps)
            if to_att is None or to_base is None:
                continue
            d = architecture_difference(to_att, to_base)
            seeds = min(len(to_att), len(to_base))
            rows.append(
                {
                    "architecture": arch,
                    "against": base,
                    "eps": eps,
                    "baseline_to_attention": to_att.mean(),
                    "attention_to_baseline": to_base.mean(),
                    **difference_columns(d, seeds),
                }
            )
    return pd.DataFrame(rows)


__all__ = [
    "all_claims",
    "corruption_architecture",
    "corruption_comparison",
    "corruption_table",
    "generalisation_architecture",
    "generalisation_comparison",
    "transfer_architecture",
    "transfer_asymmetry",
    "transfer_matrix",
]


# -- generalisation: linear probes on frozen features ----------------------------------------------
def _probe_matrix(run: Run, models: list[str], dataset: str) -> np.ndarray | None:
    rows = []
    g = run.generalisation
    for m in models:
        sub = g[(g["model"] == m) & (g["dataset"] == dataset)].sort_values("sample")
        if sub.empty:
            return None
        rows.append(sub["correct"].to_numpy(float))
    return np.asarray(rows) if len({len(r) for r in rows}) == 1 else None


def generalisation_architecture(run: Run) -> pd.DataFrame:
    """Per population and unseen data set: the linear probe's test accuracy over seeds and samples."""
    from robust_attn.archstats import architecture_mean

    rows = []
    datasets = list(dict.fromkeys(run.generalisation["dataset"])) if not run.generalisation.empty else []
    for label, models in architectures(run).items():
        for ds in datasets:
            y = _probe_matrix(run, models, ds)
            if y is None:
                continue
            est = architecture_mean(y)
            rows.append(
                {
                    "architecture": label,
                    "dataset": ds,
                    "seeds": len(models),
                    "accuracy": est.value,
                    "ci_low": max(0.0, est.low),
                    "ci_high": min(1.0, est.high),
                }
            )
    return pd.DataFrame(rows, columns=["architecture", "dataset", "seeds", "accuracy", "ci_low", "ci_high"])


def generalisation_comparison(run: Run) -> pd.DataFrame:
    """The paper's claim 'features generalise better to unseen data sets': each attention population
    against its baseline, per unseen data set, with interval, p and verdict (columns of
    :func:`~robust_attn.reports.tables.paper_claims`, plus ``dataset``)."""
    archs = architectures(run)
    datasets = list(dict.fromkeys(run.generalisation["dataset"])) if not run.generalisation.empty else []
    rows = []
    for arch, base in baselines(run).items():
        for ds in datasets:
            ya, yb = _probe_matrix(run, archs[arch], ds), _probe_matrix(run, archs[base], ds)
            if ya is not None and yb is not None and ya.shape[1] == yb.shape[1]:
                rows.append({**claim_row(arch, base, f"features generalise better ({ds})", 0.0, "probe accuracy", ya, yb), "dataset": ds})
    return pd.DataFrame(rows)


def all_claims(run: Run) -> pd.DataFrame:
    """Every claim of the paper the run can test: :func:`~robust_attn.reports.tables.paper_claims`
    (accuracy, segmentation, robustness) and the generalisation claim per unseen data set."""
    parts = [paper_claims(run), generalisation_comparison(run).drop(columns="dataset", errors="ignore")]
    parts = [p for p in parts if len(p)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
