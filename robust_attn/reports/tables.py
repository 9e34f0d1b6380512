"""Tidy tables behind the report: accuracy curves (with the pointwise worst case over all
attacks), summary metrics per model, and paired McNemar comparisons."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from robust_attn.reports.rundir import Run
from robust_attn.stats import eps_at_half, mcnemar_exact, normalised_auc, wilson_interval

ALL_ATTACKS = "all attacks"
_L2_ATTACKS = {"pgd-l2", "torchattacks:PGDL2", "torchattacks:CW", "torchattacks:DeepFool", "torchattacks:FAB"}


def is_l2(attack: str) -> bool:
    return attack.split("@")[0] in _L2_ATTACKS


def _row(model: str, attack: str, mode: str, eps: float, correct: np.ndarray) -> dict[str, object]:
    k, n = int(correct.sum()), int(correct.size)
    low, high = wilson_interval(k, n)
    return {
        "model": model,
        "attack": attack,
        "mode": mode,
        "eps": float(eps),
        "n": n,
        "correct": k,
        "accuracy": k / n,
        "ci_low": low,
        "ci_high": high,
    }


def worst_over_attacks(run: Run, model: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(eps grid, correct (K, N)): a sample is robust at eps only if it survives every L-inf
    attack, each taken at its largest grid eps <= eps in worst-case mode (balls are nested)."""
    cells = [c for (m, a, mode), c in run.cells.items() if m == model and mode == "worst-case" and not is_l2(a)]
    if len(cells) < 2:
        return None
    grid = np.unique(np.concatenate([c.eps for c in cells]))
    clean = run.clean_correct(model)
    out = np.ones((len(grid), clean.size), dtype=bool) & clean
    for c in cells:
        for i, e in enumerate(grid):
            j = np.searchsorted(c.eps, e, side="right") - 1
            if j >= 0:
                out[i] &= c.correct[j]
    return grid, out


def curves(run: Run) -> pd.DataFrame:
    """Long table: one row per model x attack x mode x eps, plus the 'all attacks' rows."""
    rows = [_row(m, a, mode, e, corr) for (m, a, mode), c in run.cells.items() for e, corr in zip(c.eps, c.correct)]
    for model in run.models:
        combined = worst_over_attacks(run, model)
        if combined is not None:
            rows += [_row(model, ALL_ATTACKS, "worst-case", e, corr) for e, corr in zip(*combined)]
    df = pd.DataFrame(rows)
    df["clean_accuracy"] = df["model"].map({m: run.clean_accuracy(m) for m in run.models})
    df["relative"] = df["accuracy"] / df["clean_accuracy"].where(df["clean_accuracy"] > 0)
    return df


def summary(run: Run, table: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per attack, mode and model: clean accuracy, accuracy at each eps, normalised AUC and
    the eps at which accuracy falls to half of clean."""
    table = curves(run) if table is None else table
    out = []
    for (attack, mode, model), g in table.groupby(["attack", "mode", "model"], sort=False):
        g = g.sort_values("eps")
        clean = run.clean_accuracy(str(model))
        eps = g["eps"].to_numpy()
        acc = g["accuracy"].to_numpy()
        # curves start at eps = 0 (clean) when the grid does not include it
        e0, a0 = (eps, acc) if eps[0] == 0 else (np.r_[0.0, eps], np.r_[clean, acc])
        row: dict[str, object] = {"attack": attack, "mode": mode, "model": model, "n": int(g["n"].iloc[0]), "clean": clean}
        for e, a, lo, hi in zip(eps, acc, g["ci_low"], g["ci_high"]):
            row[f"acc@{e * 255:.4g}/255"] = a
            row[f"ci@{e * 255:.4g}/255"] = f"[{lo * 100:.1f}, {hi * 100:.1f}]"
        row["auc"] = normalised_auc(e0, a0)
        row["eps_half_clean_255"] = eps_at_half(e0, a0, clean) * 255
        out.append(row)
    return pd.DataFrame(out)


def paired_comparisons(run: Run, table: pd.DataFrame | None = None, mode: str = "worst-case") -> pd.DataFrame:
    """For each attack, eps and pair of models: accuracy difference on the same samples and
    the exact McNemar p-value of the discordant pairs."""
    rows = []
    attacks = [a for a in run.attacks] + [ALL_ATTACKS]
    for attack in attacks:
        per_model: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for model in run.models:
            if attack == ALL_ATTACKS:
                combined = worst_over_attacks(run, model)
                if combined is not None:
                    per_model[model] = combined
            elif (model, attack, mode) in run.cells:
                c = run.cells[(model, attack, mode)]
                per_model[model] = (c.eps, c.correct)
        for a, b in itertools.combinations(per_model, 2):
            (ea, ca), (eb, cb) = per_model[a], per_model[b]
            for e in np.intersect1d(ea, eb):
                xa, xb = ca[np.searchsorted(ea, e)], cb[np.searchsorted(eb, e)]
                only_a, only_b, p = mcnemar_exact(xa, xb)
                rows.append({"attack": attack, "eps": float(e), "eps_255": e * 255, "model_a": a, "model_b": b,
                             "acc_a": xa.mean(), "acc_b": xb.mean(), "diff": xa.mean() - xb.mean(),
                             "only_a": only_a, "only_b": only_b, "p_value": p})  # fmt: skip
    return pd.DataFrame(rows)
