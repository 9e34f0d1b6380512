"""Tidy tables behind the report, computed from a run directory alone: accuracy curves (with the
pointwise worst case over all attacks), summary metrics per model, paired McNemar comparisons,
and the attention probe's drift and segmentation summaries."""

from __future__ import annotations

import itertools
import json
from typing import Any

import numpy as np
import pandas as pd

from robust_attn.epsilon import format_eps
from robust_attn.rundir import Run
from robust_attn.stats import eps_at_half, mcnemar_exact, normalised_auc, wilson_interval

ALL_ATTACKS = "all attacks"
CLAIM_EPS = 2 / 255  # where the paper's robustness claims are tested, and the headline eps of a report


def _rows(model: str, attack: str, mode: str, norm: str, eps: np.ndarray, correct: np.ndarray) -> list[dict[str, object]]:
    """One row per eps: counts, accuracy and its Wilson interval from a (K, N) correctness matrix."""
    k = correct.sum(axis=1)
    n = np.full_like(k, correct.shape[1])
    low, high = wilson_interval(k, n)
    return [
        {
            "model": model,
            "attack": attack,
            "mode": mode,
            "norm": norm,
            "eps": float(e),
            "n": int(nn),
            "correct": int(kk),
            "accuracy": kk / nn,
            "ci_low": lo,
            "ci_high": hi,
        }
        for e, kk, nn, lo, hi in zip(eps, k, n, low, high)
    ]


def worst_over_attacks(run: Run, model: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(eps grid, correct (K, N)): a sample is robust at eps only if it survives every L-inf
    attack, each taken at its largest grid eps <= eps in worst-case mode (balls are nested)."""
    cells = [c for (m, _, mode), c in run.cells.items() if m == model and mode == "worst-case" and c.norm == "linf"]
    if len(cells) < 2:
        return None
    grid = np.unique(np.concatenate([c.eps for c in cells]))
    clean = run.clean_correct(model)
    out = np.ones((len(grid), clean.size), dtype=bool) & clean
    for c in cells:
        for i, e in enumerate(grid):
            if c.min_norm is not None:  # a minimum-norm attack answers at every eps, not only on its grid
                out[i] &= c.min_norm > e
                continue
            j = np.searchsorted(c.eps, e, side="right") - 1
            if j >= 0:
                out[i] &= c.correct[j]
    return grid, out


def curves(run: Run) -> pd.DataFrame:
    """Long table: one row per model x attack x mode x eps, plus the 'all attacks' rows."""
    rows = [r for (m, a, mode), c in run.cells.items() for r in _rows(m, a, mode, c.norm, c.eps, c.correct)]
    for model in run.models:
        combined = worst_over_attacks(run, model)
        if combined is not None:
            rows += _rows(model, ALL_ATTACKS, "worst-case", "linf", *combined)
    columns = ["model", "attack", "mode", "norm", "eps", "n", "correct", "accuracy", "ci_low", "ci_high"]
    df = pd.DataFrame(rows, columns=columns)
    df["clean_accuracy"] = df["model"].map({m: run.clean_accuracy(m) for m in run.models})
    df["relative"] = df["accuracy"] / df["clean_accuracy"].where(df["clean_accuracy"] > 0)
    return df


def eps_column(eps: float, norm: str) -> str:
    """Column name of an eps in the summary table (``8/255`` or ``0.5``)."""
    return format_eps(eps, norm)


def summary(run: Run, table: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per attack, mode and model: clean accuracy, accuracy at each eps, normalised AUC and
    the eps at which accuracy falls to half of clean."""
    table = curves(run) if table is None else table
    out = []
    for (attack, mode, model), g in table.groupby(["attack", "mode", "model"], sort=False):
        g = g.sort_values("eps")
        norm = str(g["norm"].iloc[0])
        clean = run.clean_accuracy(str(model))
        eps = g["eps"].to_numpy()
        acc = g["accuracy"].to_numpy()
        # curves start at eps = 0 (clean) when the grid does not include it
        e0, a0 = (eps, acc) if eps[0] == 0 else (np.r_[0.0, eps], np.r_[clean, acc])
        row: dict[str, object] = {"attack": attack, "mode": mode, "model": model, "norm": norm, "n": int(g["n"].iloc[0]), "clean": clean}
        for e, a, lo, hi in zip(eps, acc, g["ci_low"], g["ci_high"]):
            row[f"acc@{eps_column(e, norm)}"] = a
            row[f"ci@{eps_column(e, norm)}"] = f"[{lo * 100:.1f}, {hi * 100:.1f}]"
        row["auc"] = normalised_auc(e0, a0)
        half = eps_at_half(e0, a0, clean)
        row["eps_half_clean"] = half
        out.append(row)
    return pd.DataFrame(out)


def paired_comparisons(run: Run, mode: str = "worst-case") -> pd.DataFrame:
    """For each attack, eps and pair of model instances: accuracy difference on the same samples
    and the exact McNemar p-value of the discordant pairs."""
    rows = []
    for attack in [*run.attacks, ALL_ATTACKS]:
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
                rows.append(
                    {
                        "attack": attack,
                        "eps": float(e),
                        "model_a": a,
                        "model_b": b,
                        "acc_a": xa.mean(),
                        "acc_b": xb.mean(),
                        "diff": xa.mean() - xb.mean(),
                        "only_a": only_a,
                        "only_b": only_b,
                        "p_value": p,
                    }
                )
    return pd.DataFrame(rows)


def drift_summary(run: Run) -> pd.DataFrame:
    """Mean drift per model, stage and eps (the per-image rows are in attention_drift.parquet)."""
    if run.drift.empty:
        return pd.DataFrame(columns=["model", "stage", "eps", "one_minus_iou", "cosine", "n"])
    g = run.drift.groupby(["model", "stage", "eps"], sort=False)
    out = g[["one_minus_iou", "cosine"]].mean().astype(float)
    out["n"] = g.size()
    return out.reset_index()


BASELINE_MAPS = {"gradient saliency": "input-gradient saliency", "grad-cam": "Grad-CAM", "grad-cam++": "Grad-CAM++"}  # method -> display


def segmentation_summary(run: Run) -> pd.DataFrame:
    """Mean Jaccard index (and its standard error) per method and eps, with display labels; the
    centred box, which does not change under attack, is repeated over the eps grid. ``model``:
    whose map it is ('-' for the box); ``kind``: attention, one of :data:`BASELINE_MAPS` (maps of
    the models without attention) or centred box."""
    seg = run.segmentation
    if seg.empty:
        return pd.DataFrame(columns=["method", "model", "kind", "stage", "eps", "jaccard", "se", "n"])
    grid = np.unique(seg["eps"])
    parts = []
    box = seg[seg["method"] == "centred box"].drop_duplicates("sample")
    if not box.empty:
        parts.append(pd.concat([box.assign(eps=e) for e in grid]).assign(label="centred box", owner="-"))
    for method, display in BASELINE_MAPS.items():
        for model, g in seg[seg["method"] == method].groupby("model", sort=False):
            parts.append(g.assign(label=f"{display} ({model})", owner=str(model)))
    att = seg[seg["method"] == "attention"]
    for (model, stage), g in att.groupby(["model", "stage"], sort=False):
        parts.append(g.assign(label=f"{model} {'mean of stages' if stage == 'mean' else stage}", owner=str(model)))
    long = pd.concat(parts, ignore_index=True)
    g = long.groupby(["label", "owner", "method", "stage", "eps"], sort=False)["jaccard"]
    out = pd.DataFrame({"jaccard": g.mean(), "se": g.std(ddof=1) / np.sqrt(g.size()), "n": g.size()}).reset_index()
    return out.rename(columns={"method": "kind"}).rename(columns={"label": "method", "owner": "model"})


def min_norm_curves(run: Run, points: int = 200) -> pd.DataFrame:
    """Accuracy vs eps of every minimum-norm cell, on a fine grid up to the largest finite norm
    (accuracy(eps) = share of samples whose smallest fooling norm exceeds eps)."""
    rows = []
    for (model, attack, mode), c in run.cells.items():
        if c.min_norm is None or mode != "worst-case":
            continue
        top = float(c.eps.max()) * 1.25  # the range of the fixed-eps grids; a few samples' norms run far beyond it
        for e in np.linspace(0.0, top, points):
            rows.append({"model": model, "attack": attack, "norm": c.norm, "eps": e, "accuracy": float((c.min_norm > e).mean())})
    return pd.DataFrame(rows, columns=["model", "attack", "norm", "eps", "accuracy"])


def fooled_first(run: Run) -> pd.DataFrame:
    """For every ensemble cell (worst-case), how many samples each member fooled first, by the
    eps at which they fell."""
    rows = []
    for (model, attack, mode), c in run.cells.items():
        if c.fooled_by is None or mode != "worst-case":
            continue
        for k, e in enumerate(c.eps):
            counts = pd.Series(c.fooled_by[k]).value_counts()
            named = dict.fromkeys(run.ensemble_members(model, attack, mode), 0)  # members that fooled none get a 0
            rows.append(
                {
                    "model": model,
                    "attack": attack,
                    "eps": float(e),
                    "n": c.correct.shape[1],
                    **named,
                    **{str(m): int(v) for m, v in counts.items() if m is not None},
                }
            )
    return pd.DataFrame(rows).fillna(0)


def attack_costs(run: Run, summ: pd.DataFrame) -> pd.DataFrame:
    """Per attack and mode: forward and backward passes per sample and seconds (over all models),
    next to its mean normalised AUC over the models (strength per unit of compute); white-box
    attacks only (a transfer cell's cost is its source's crafting pass, a corruption has no AUC)."""
    res = run.results[run.results["threat_model"] == "white-box"].drop_duplicates(["model", "attack", "mode"])
    g = res.groupby(["attack", "mode"], sort=False)
    out = pd.DataFrame(
        {
            "models": g.size(),
            "forwards_per_sample": g["forwards_per_sample"].mean(),
            "backwards_per_sample": g["backwards_per_sample"].mean(),
            "seconds": g["seconds"].sum(),
        }
    )
    auc = summ.groupby(["attack", "mode"], sort=False)["auc"].mean().rename("mean_auc")
    return out.join(auc).reset_index()


# -- architecture level -------------------------------------------------------------------------
def population(run: Run, model: str) -> tuple[str, str]:
    """(architecture, training regime) as the model declared them: the population a seed is drawn from."""
    info = run.model_info(model)
    return str(info.get("architecture") or model), str(info.get("training_regime") or "unknown")


def population_label(architecture: str, regime: str) -> str:
    """How reports name a population: the architecture, with its training regime unless it is clean
    (or unknown): ``vgg``, ``vgg-att3-pc+fgsm-at``. A label for people; tables keep both fields."""
    return architecture if regime in ("clean", "unknown") else f"{architecture}+{regime}"


def architectures(run: Run) -> dict[str, list[str]]:
    """Population label -> its model references (one per training seed), in run order; grouped by
    the declared (architecture, training_regime) fields."""
    out: dict[str, list[str]] = {}
    for model in run.models:
        out.setdefault(population_label(*population(run, model)), []).append(model)
    return out


def baselines(run: Run) -> dict[str, str]:
    """Population label -> the label of the population it is compared with in the paper's claims:
    for each population with attention, the one without attention trained the same way (when the
    run has exactly one such)."""
    pops = {label: models[0] for label, models in architectures(run).items()}
    attends = {label: bool(run.model_info(m).get("has_attention")) for label, m in pops.items()}
    out = {}
    for label, model in pops.items():
        if not attends[label]:
            continue
        regime = population(run, model)[1]
        plain = [other for other, m in pops.items() if not attends[other] and population(run, m)[1] == regime]
        if len(plain) == 1:
            out[label] = plain[0]
    return out


def strongest_attacks(run: Run, norm: str = "linf") -> tuple[str | None, str | None]:
    """(the single-step attack, the strongest iterative attack) of the run in ``norm``, by their
    declared traits (strength, then steps), among its white-box attacks; None where the run has none."""
    single: list[tuple[int, int, str]] = []
    iterative: list[tuple[int, int, str]] = []
    white_box = {a for (_, a, _) in run.cells}
    for attack in run.attacks:
        t = run.attack_traits(attack)
        if attack not in white_box:
            continue
        if t.get("norm") != norm:
            continue
        steps = int(json.loads(run.results.loc[run.results["attack"] == attack, "params"].iloc[0]).get("steps", 1))
        (iterative if t.get("iterative") else single).append((int(t.get("strength", 0)), steps, attack))
    return (max(single)[2] if single else None), (max(iterative)[2] if iterative else None)


def seeds_per_architecture(run: Run) -> int:
    """The smallest number of distinct training seeds any architecture has (1: instance-level only;
    two copies of one checkpoint are one training run)."""
    counts = []
    for models in architectures(run).values():
        seeds = [run.model_info(m).get("train_seed") for m in models]
        counts.append(len({s for s in seeds if s is not None}) + sum(s is None for s in seeds))
    return min(counts, default=0)


def budget_mismatch(run: Run) -> list[str]:
    """One line per training-budget field on which the compared models differ (epochs, images, recipe)."""
    lines = []
    for key, label in (("train_epochs", "epochs"), ("train_size", "training images"), ("recipe", "recipe")):
        values = {m: run.model_info(m).get(key) for m in run.models}
        known = {v for v in values.values() if v is not None}
        if len(known) > 1:
            groups = ", ".join(f"{v}: {sum(1 for x in values.values() if x == v)} models" for v in sorted(known, key=str))
            lines.append(f"training {label} differ ({groups})")
    return lines


def _matrix(run: Run, models: list[str], attack: str, eps: float) -> np.ndarray | None:
    """Seeds x samples correctness of ``models`` under ``attack`` (worst-case) at ``eps``; None if missing."""
    rows = []
    for m in models:
        if attack == "clean":
            rows.append(run.clean_correct(m))
            continue
        if attack == ALL_ATTACKS:
            combined = worst_over_attacks(run, m)
            if combined is None:
                return None
            grid, corr = combined
        elif (m, attack, "worst-case") in run.cells:
            c = run.cells[(m, attack, "worst-case")]
            grid, corr = c.eps, c.correct
        else:
            return None
        hit = np.nonzero(np.isclose(grid, eps))[0]
        if not len(hit):
            return None
        rows.append(corr[hit[0]])
    return np.asarray(rows, dtype=float)


def architecture_curves(run: Run) -> pd.DataFrame:
    """Per architecture, attack (worst-case, and the pointwise worst over all L-inf attacks) and eps:
    mean accuracy over seeds and samples with its 95% interval (robust_attn.archstats)."""
    from robust_attn.archstats import architecture_mean

    table = curves(run)
    rows = []
    for arch, models in architectures(run).items():
        sub = table[table["model"].isin(models) & (table["mode"] == "worst-case")]
        for (attack, eps), _ in sub.groupby(["attack", "eps"], sort=False):
            y = _matrix(run, models, str(attack), float(eps))
            if y is None:
                continue
            est = architecture_mean(y)
            rows.append(
                {
                    "architecture": arch,
                    "attack": attack,
                    "norm": sub.loc[sub["attack"] == attack, "norm"].iloc[0],
                    "eps": float(eps),
                    "seeds": len(models),
                    "accuracy": est.value,
                    "ci_low": max(0.0, est.low),
                    "ci_high": min(1.0, est.high),
                }
            )
        y = _matrix(run, models, "clean", 0.0)
        assert y is not None
        est = architecture_mean(y)  # intervals are clipped to [0, 1]: with 3 seeds a t interval can reach past them
        rows.append(
            {
                "architecture": arch,
                "attack": "clean",
                "norm": "linf",
                "eps": 0.0,
                "seeds": len(models),
                "accuracy": est.value,
                "ci_low": max(0.0, est.low),
                "ci_high": min(1.0, est.high),
            }
        )
    return pd.DataFrame(rows)


def architecture_pairs(run: Run) -> pd.DataFrame:
    """Per pair of architectures, attack and eps: difference of mean accuracy with its 95% interval
    and p-value (seeds and samples both count; samples are paired)."""
    from robust_attn.archstats import architecture_difference

    archs = architectures(run)
    arch_curves = architecture_curves(run)
    rows = []
    for (attack, eps), _ in arch_curves.groupby(["attack", "eps"], sort=False):
        for a, b in itertools.combinations(archs, 2):
            ya, yb = _matrix(run, archs[a], str(attack), float(eps)), _matrix(run, archs[b], str(attack), float(eps))
            if ya is None or yb is None:
                continue
            d = architecture_difference(ya, yb)
            rows.append(
                {
                    "attack": attack,
                    "eps": float(eps),
                    "arch_a": a,
                    "arch_b": b,
                    "seeds_a": len(ya),
                    "seeds_b": len(yb),
                    "acc_a": ya.mean(),
                    "acc_b": yb.mean(),
                    "diff": d.value,
                    "ci_low": d.low,
                    "ci_high": d.high,
                    "p_value": d.p_value,
                }
            )
    columns = ["attack", "eps", "arch_a", "arch_b", "seeds_a", "seeds_b", "acc_a", "acc_b", "diff", "ci_low", "ci_high", "p_value"]
    return pd.DataFrame(rows, columns=columns)


def _segmentation_matrix(run: Run, models: list[str], method: str, stage: str) -> np.ndarray | None:
    """Seeds x samples: the clean Jaccard index of ``method``'s map of each model (the centred box,
    the same for every model, is repeated once per model)."""
    seg = run.segmentation
    rows = []
    for m in models:
        sel = (seg["method"] == method) & (seg["stage"] == stage) & (seg["eps"] == 0)
        g = seg[sel & (seg["model"] == m) if method != "centred box" else sel].drop_duplicates("sample").sort_values("sample")
        if g.empty:
            return None
        rows.append(g["jaccard"].to_numpy(float))
    return np.asarray(rows) if len({len(r) for r in rows}) == 1 else None


def best_other_map(run: Run, models: list[str]) -> tuple[str, np.ndarray] | None:
    """The segmentation claim's reference: of the baseline population's own maps (input-gradient
    saliency, Grad-CAM, Grad-CAM++) and the centred box, the one with the highest mean clean
    Jaccard index (choosing the best after seeing it makes the claim harder to support, not easier)."""
    found = [
        (BASELINE_MAPS.get(method, method), y)
        for method, stage in [*((m, "-") for m in BASELINE_MAPS), ("centred box", "-")]
        if (y := _segmentation_matrix(run, models, method, stage)) is not None
    ]
    return max(found, key=lambda item: float(item[1].mean())) if found else None


def paper_claims(run: Run, eps: float = CLAIM_EPS) -> pd.DataFrame:
    """The paper's claims, per attention population against its baseline (:func:`baselines`: the
    population without attention trained the same way): clean accuracy, segmentation (mean of the
    stage maps against the best of the baseline's saliency, Grad-CAM and Grad-CAM++ and the centred
    box: :func:`best_other_map`), robustness to the single-step attack (FGSM) and to the strongest
    iterative L-inf attack of the run at ``eps``. Verdict: supported (interval above 0), not
    supported (below 0), inconclusive (contains 0); with fewer than 2 seeds per architecture no
    verdict is given (instances only). ``measure``: what the difference is of (accuracy, or the
    Jaccard index of the maps)."""
    archs = architectures(run)
    single, strongest = strongest_attacks(run)
    claims = [("clean accuracy is higher", "clean", 0.0)]
    claims += [(f"robust to {single}", single, eps)] if single else []
    claims += [(f"robust to {strongest}", strongest, eps)] if strongest else []
    rows = []
    for arch, base in baselines(run).items():
        models = archs[arch]
        pairs: list[tuple[str, float, str, np.ndarray | None, np.ndarray | None]] = [
            (claim, e, "accuracy", _matrix(run, models, attack, e), _matrix(run, archs[base], attack, e)) for claim, attack, e in claims
        ]
        best = best_other_map(run, archs[base])
        if best is not None:
            maps = _segmentation_matrix(run, models, "attention", "mean")
            pairs.insert(1, (f"maps segment better than {best[0]}", 0.0, "Jaccard", maps, best[1]))
        rows += [
            claim_row(arch, base, claim, e, measure, ya, yb)
            for claim, e, measure, ya, yb in pairs
            if ya is not None and yb is not None and ya.shape[1] == yb.shape[1]
        ]
    return pd.DataFrame(rows)


def verdict_of(low: float, high: float, seeds: int) -> str:
    """Supported (95% interval above 0), not supported (below 0), inconclusive (contains 0); with
    fewer than two seeds per population no verdict: instances only."""
    return "instances only" if seeds < 2 else "supported" if low > 0 else "not supported" if high < 0 else "inconclusive"


def difference_columns(d: Any, seeds: int) -> dict[str, object]:
    """The columns every architecture-level comparison reports: the difference, its 95% interval,
    p, the seeds per population and the verdict."""
    return {"diff": d.value, "ci_low": d.low, "ci_high": d.high, "p_value": d.p_value, "seeds": seeds,
            "verdict": verdict_of(d.low, d.high, seeds)}  # fmt: skip


def claim_row(arch: str, base: str, claim: str, eps: float, measure: str, ya: np.ndarray, yb: np.ndarray) -> dict[str, object]:
    """One claim: population ``ya`` (seeds x samples) against ``yb`` on the same samples, with the
    architecture-level difference, its interval, p and verdict."""
    from robust_attn.archstats import architecture_difference

    d = architecture_difference(ya, yb)
    values = {"value": ya.mean(), "baseline": yb.mean()}
    return {"architecture": arch, "against": base, "claim": claim, "eps": eps, "measure": measure, **values,
            **difference_columns(d, min(len(ya), len(yb)))}  # fmt: skip


# -- the headline: what page 1 and the appendix show ---------------------------------------------
def headline_attack(run: Run, table: pd.DataFrame) -> str | None:
    """The attack a report leads with, among the attacks of ``table`` (the curves): the pointwise
    worst over all L-inf attacks when there is one, else the only attack, else the strongest
    iterative L-inf one (else the first)."""
    attacks = [str(a) for a in dict.fromkeys(table["attack"]) if a != "clean"] if len(table) else []
    if ALL_ATTACKS in attacks:
        return ALL_ATTACKS
    if len(attacks) <= 1:
        return attacks[0] if attacks else None
    strongest = strongest_attacks(run)[1]
    return strongest if strongest in attacks else attacks[0]


def headline_rows(df: pd.DataFrame, focus: str | None) -> pd.DataFrame:
    """Clean rows and, at eps > 0, the rows of the headline attack."""
    return df[(df["attack"] == "clean") | ((df["attack"] == focus) & (df["eps"] > 0))]


def headline_eps(grid: np.ndarray | list[float], target: float = CLAIM_EPS) -> float | None:
    """The eps a report leads with: ``target`` (the claims' eps) when the grid has it, else the
    positive grid eps nearest to it on a log scale."""
    pos = np.asarray([e for e in grid if e > 0 and np.isfinite(e)], float)
    if not len(pos):
        return None
    hit = np.nonzero(np.isclose(pos, target))[0]
    return float(pos[hit[0]] if len(hit) else pos[np.argmin(np.abs(np.log(pos / target)))])


def headline_curve(run: Run, table: pd.DataFrame, arch: pd.DataFrame | None = None) -> pd.DataFrame:
    """The headline attack's curve from eps = 0 (clean): per architecture (``arch``, the
    architecture curves, when every architecture has two seeds or more) or else per model
    (worst-case), with 95% intervals. Columns: label, level, attack, norm, eps, accuracy, ci_low, ci_high."""
    focus = headline_attack(run, table)
    columns = ["label", "level", "attack", "norm", "eps", "accuracy", "ci_low", "ci_high"]
    if focus is None:
        return pd.DataFrame(columns=columns)
    if arch is not None and len(arch):
        rows = headline_rows(arch, focus).rename(columns={"architecture": "label"}).assign(level="architecture", attack=focus)
        return _in_order(rows)[columns]
    sub = table[(table["attack"] == focus)]
    mode = "worst-case" if (sub["mode"] == "worst-case").any() else str(sub["mode"].iloc[0])
    sub = sub[(sub["mode"] == mode) & (sub["eps"] > 0)]
    clean = []
    for model in dict.fromkeys(sub["model"]):
        k, n = int(run.clean_correct(str(model)).sum()), len(run.labels)
        low, high = wilson_interval(k, n)
        clean.append({"model": model, "eps": 0.0, "accuracy": k / n, "ci_low": float(low), "ci_high": float(high)})
    rows = pd.concat([pd.DataFrame(clean), sub], ignore_index=True).rename(columns={"model": "label"})
    rows = rows.assign(level="model", attack=focus, norm=str(sub["norm"].iloc[0]) if len(sub) else "linf")
    return _in_order(rows)[columns]


def _in_order(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows by label in order of first appearance, then by eps."""
    order = {m: i for i, m in enumerate(dict.fromkeys(rows["label"]))}
    ranked = rows.assign(_rank=rows["label"].map(order))
    return ranked.sort_values(["_rank", "eps"], kind="stable").drop(columns="_rank").reset_index(drop=True)


CLASS_EXTREMES = 5  # classes shown at each end of the by-class summary, whatever the class count


def class_extremes(run: Run, eps: float = CLAIM_EPS, k: int = CLASS_EXTREMES) -> tuple[str | None, pd.DataFrame]:
    """(attack, table): the ``k`` classes least and most robust under the strongest iterative L-inf
    attack of the run (worst-case) at ``eps``, over every model and sample of the class; a summary
    of bounded size for any class count (1000 ImageNet classes give 2k rows, not a table per class)."""
    _, attack = strongest_attacks(run)
    cells = [c for (_, a, mode), c in run.cells.items() if a == attack and mode == "worst-case" and np.isclose(c.eps, eps).any()]
    if attack is None or not cells:
        return None, pd.DataFrame()
    correct = np.stack([c.correct[int(np.argmin(np.abs(c.eps - eps)))] for c in cells])  # models x samples
    labels = run.labels[: correct.shape[1]]
    classes = list(run.manifest.get("dataset", {}).get("classes", []))
    rows = []
    for label in np.unique(labels):
        hit = correct[:, labels == label]
        name = classes[int(label)] if int(label) < len(classes) else str(label)
        rows.append({"class": name, "images": int(hit.shape[1]), "robust accuracy": float(hit.mean())})
    table = pd.DataFrame(rows).sort_values(["robust accuracy", "class"], kind="stable").reset_index(drop=True)
    if len(table) > 2 * k:
        table = pd.concat([table.head(k).assign(end="least robust"), table.tail(k).assign(end="most robust")], ignore_index=True)
    else:
        table = table.assign(end="")
    return attack, table
