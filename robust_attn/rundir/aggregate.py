"""``results.csv``: the aggregate of the per-sample table, one row per cell and condition (eps;
corruption and severity; transfer source)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np

from robust_attn.epsilon import format_eps
from robust_attn.rundir.schema import RESULT_COLUMNS
from robust_attn.stats import wilson_interval

if TYPE_CHECKING:
    import pandas as pd

CONDITION = ["eps", "corruption", "severity", "source"]  # what varies within one cell


def results_table(samples: pd.DataFrame, cells: list[dict[str, Any]]) -> pd.DataFrame:
    """Accuracy with its 95% Wilson interval per (cell, condition), in cell order, plus each cell's
    parameters, wall time and mean forward/backward passes per sample (summed over ranks)."""
    import pandas as pd

    rows = []
    keys = ["model", "attack", "mode", "source"]  # a cell: transfer cells of one attack differ in their source
    groups = {(m, a, mode, None if pd.isna(src) else src): g for (m, a, mode, src), g in samples.groupby(keys, sort=False, dropna=False)}
    for cell in cells:
        g = groups.get((cell["model"], cell["attack"], cell["mode"], cell.get("source")))
        if g is None:
            continue
        first = g.iloc[0]
        per = g.groupby(CONDITION, sort=True, dropna=False)["correct"].agg(["sum", "size"])
        n_samples = int(g["sample"].nunique())
        for (eps, corruption, severity, source), (k, n) in zip(per.index, per.to_numpy()):
            norm = first["norm"]
            counts = {c: cell.get(c) for c in ("forwards", "backwards")}
            rows.append(
                {
                    "model": cell["model"],
                    "architecture": first["architecture"],
                    "training_regime": first["training_regime"],
                    "train_seed": first["train_seed"],
                    "attack": cell["attack"],
                    "name": first["name"],
                    "backend": first["backend"],
                    "threat_model": first["threat_model"],
                    "norm": norm,
                    "mode": cell["mode"],
                    "params": json.dumps(cell.get("params") or {}, sort_keys=True),
                    "eps": None if pd.isna(eps) else float(eps),
                    "eps_label": None if pd.isna(eps) else format_eps(float(eps), str(norm)),
                    "corruption": None if pd.isna(corruption) else corruption,
                    "severity": None if pd.isna(severity) else int(severity),
                    "source": None if pd.isna(source) else source,
                    "n": int(n),
                    "correct": int(k),
                    "seconds": round(float(cell.get("seconds") or float("nan")), 3),
                    **{f"{c}_per_sample": (round(v / n_samples, 3) if isinstance(v, (int, float)) else None) for c, v in counts.items()},
                }
            )
    df = pd.DataFrame(rows, columns=[c for c in RESULT_COLUMNS if c not in ("accuracy", "ci_low", "ci_high")])
    df["train_seed"] = df["train_seed"].astype("Int64")
    df["severity"] = df["severity"].astype("Int64")
    low, high = wilson_interval(df["correct"].to_numpy(), df["n"].to_numpy())
    df["accuracy"] = (df["correct"] / df["n"].where(df["n"] > 0)).round(6)
    df["ci_low"], df["ci_high"] = np.round(low, 6), np.round(high, 6)
    return df[list(RESULT_COLUMNS)]
