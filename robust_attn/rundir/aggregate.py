"""``results.csv``: the aggregate of the per-sample table, one row per cell and eps."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np

from robust_attn.epsilon import format_eps
from robust_attn.rundir.schema import RESULT_COLUMNS
from robust_attn.stats import wilson_interval

if TYPE_CHECKING:
    import pandas as pd

    from robust_attn.rundir.writer import AttackCell


def results_table(samples: pd.DataFrame, cells: dict[str, tuple[AttackCell, dict[str, Any]]]) -> pd.DataFrame:
    """Accuracy with its 95% Wilson interval per (cell, eps), in cell order, plus each cell's
    parameters, wall time and mean forward/backward passes per sample."""
    import pandas as pd

    rows = []
    keys = ["model", "attack", "mode"]
    groups = dict(tuple(samples.groupby(keys, sort=False))) if len(samples) else {}
    for cell, meta in cells.values():
        g = groups.get((cell.model.ref, cell.attack, cell.mode))
        if g is None:
            continue
        per_eps = g.groupby("eps", sort=True)["correct"].agg(["sum", "size"])
        n_samples = int(per_eps["size"].iloc[0])
        counts = {k: meta.get(k) for k in ("forwards", "backwards")}
        for eps, (k, n) in zip(per_eps.index, per_eps.to_numpy()):
            rows.append({
                "model": cell.model.ref, "architecture": cell.model.architecture, "train_seed": cell.model.train_seed,
                "attack": cell.attack, "name": cell.name, "backend": cell.backend, "norm": cell.norm, "mode": cell.mode,
                "params": json.dumps(cell.params, sort_keys=True), "eps": float(eps), "eps_label": format_eps(float(eps), cell.norm),
                "n": int(n), "correct": int(k), "seconds": round(float(meta.get("seconds", float("nan"))), 3),
                **{f"{c}_per_sample": (round(v / n_samples, 3) if isinstance(v, (int, float)) else None) for c, v in counts.items()},
            })  # fmt: skip
    df = pd.DataFrame(rows, columns=[c for c in RESULT_COLUMNS if c not in ("accuracy", "ci_low", "ci_high")])
    df["train_seed"] = df["train_seed"].astype("Int64")
    low, high = wilson_interval(df["correct"].to_numpy(), df["n"].to_numpy())
    df["accuracy"] = (df["correct"] / df["n"].where(df["n"] > 0)).round(6)
    df["ci_low"], df["ci_high"] = np.round(low, 6), np.round(high, 6)
    return df[list(RESULT_COLUMNS)]
