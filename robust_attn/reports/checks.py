"""Evaluation sanity checks after Carlini et al. (2019), "On Evaluating Adversarial Robustness".

Each check reads a results table (the columns of ``results.csv`` and the attacks' declared traits,
``Run.results_with_traits``) and clean-accuracy counts, so it can be tested on crafted tables, and
returns pass, warning or skipped with its figures.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pandas as pd

from robust_attn.epsilon import format_eps

LARGE_EPS = 16 / 255  # an undefended 32x32 classifier should be near 0% under a strong attack here
NEAR_ZERO = 0.10

CELL = ["model", "attack", "mode", "source"]  # the rows of one cell (transfer cells of one attack differ in their source)


def _cell(results: pd.DataFrame) -> list[str]:
    """The columns that name a cell in ``results`` (tables without transfer rows may lack ``source``)."""
    return [c for c in CELL if c in results.columns]


@dataclass
class Check:
    name: str
    status: str  # "pass", "warning" or "skipped"
    detail: str
    figures: list[str] = field(default_factory=list)


def _fmt(eps: float) -> str:
    return format_eps(eps)  # the checks below concern L-inf attacks


def eps_zero_is_clean(results: pd.DataFrame, clean: dict[str, tuple[int, int]]) -> Check:
    """At eps = 0 an attack must keep each sample's clean prediction exactly: its count equals its
    own cell's clean count (``clean_correct``; without it, the model's)."""
    name = "eps = 0 equals clean accuracy"
    rows = results[results["eps"] == 0]
    if rows.empty:
        return Check(name, "skipped", "no attack has eps = 0 in its grid")
    model_level = rows["model"].map(lambda m: clean[m][0])
    own = rows["clean_correct"].fillna(model_level) if "clean_correct" in rows else model_level
    bad = [
        f"{r.model} {r.attack} [{r.mode}]: {r.correct}/{r.n} vs clean {int(c)}/{r.n}"
        for r, c in zip(rows.itertuples(), own)
        if int(r.correct) != int(c)
    ]
    if bad:
        return Check(name, "warning", "an attack at eps = 0 changed predictions (randomness or a preprocessing mismatch)", bad)
    return Check(name, "pass", f"{len(rows)} rows at eps = 0 reproduce their clean counts exactly")


def accuracy_does_not_rise(results: pd.DataFrame) -> Check:
    name = "accuracy does not rise with eps"
    bad = []
    for key, g in results.groupby(_cell(results), sort=False, dropna=False):
        model, attack, mode = key[:3]
        g = g.sort_values("eps")
        acc, high, eps = g["accuracy"].to_numpy(), g["ci_high"].to_numpy(), g["eps"].to_numpy()
        for j in range(1, len(g)):
            i = int(high[:j].argmin())
            if acc[j] > high[i]:
                bad.append(f"{model} {attack} [{mode}]: {acc[j]:.3f} at {_fmt(eps[j])} > {high[i]:.3f} (upper 95% bound at {_fmt(eps[i])})")
    if bad:
        return Check(name, "warning", "accuracy rose beyond its interval: the attack is not converging (gradient masking?)", bad)
    return Check(name, "pass", "no curve rises above the 95% interval of any smaller eps")


def iterative_at_least_fgsm(results: pd.DataFrame) -> Check:
    """Every iterative attack (declared ``iterative``, not minimum-norm) against the single-step one of its norm."""
    name = "iterative attacks at least as strong as FGSM"
    native = results[(results["backend"] == "native") & (results["threat_model"] == "white-box")]
    fgsm = native[native["iterative"] == False]  # noqa: E712  (a column of booleans)
    it = native[(native["iterative"] == True) & (native["minimum_norm"] == False)]  # noqa: E712
    merged = it.merge(fgsm, on=["model", "mode", "norm", "eps"], suffixes=("", "_fgsm"))
    merged = merged[merged["eps"] > 0]
    if merged.empty:
        return Check(name, "skipped", "no native iterative and single-step attack rows share an eps")
    bad = [
        f"{r.model} {r.attack} [{r.mode}] at {_fmt(r.eps)}: {r.accuracy:.3f} > FGSM {r.accuracy_fgsm:.3f} (upper bound {r.ci_high_fgsm:.3f})"
        for r in merged.itertuples()
        if r.accuracy > r.ci_high_fgsm
    ]
    figures = [
        f"{r.model} [{r.mode}] {_fmt(r.eps)}: {r.attack} {r.accuracy:.3f} vs FGSM {r.accuracy_fgsm:.3f}" for r in merged.itertuples()
    ]
    if bad:
        return Check(name, "warning", "an iterative attack left more samples correct than FGSM: too few steps or a bad step size", bad)
    return Check(
        name, "pass", f"iterative attacks are at most FGSM's upper bound at all {len(merged)} shared (model, attack, eps)", figures
    )


def large_eps_near_zero(results: pd.DataFrame) -> Check:
    name = f"accuracy near zero at large eps (>= {_fmt(LARGE_EPS)})"
    linf = results[results["norm"] == "linf"]
    large = linf[linf["eps"] >= LARGE_EPS - 1e-12]
    if linf.empty:
        return Check(name, "skipped", "no L-inf attack in this run")
    if large.empty:
        return Check(name, "skipped", f"the largest L-inf eps is {_fmt(float(linf['eps'].max()))}, below {_fmt(LARGE_EPS)}")
    best = large.loc[large.groupby("model")["accuracy"].idxmin()]
    figures = [f"{r.model}: {r.accuracy:.3f} ({r.attack} [{r.mode}] at {_fmt(r.eps)})" for r in best.itertuples()]
    bad = [f for f, r in zip(figures, best.itertuples()) if r.accuracy > NEAR_ZERO]
    if bad:
        return Check(
            name, "warning", f"some model keeps more than {NEAR_ZERO:.0%} at a large eps: use a stronger attack or check for masking", bad
        )
    return Check(name, "pass", f"every model is at most {NEAR_ZERO:.0%} accurate under its strongest attack at a large eps", figures)


def libraries_agree(results: pd.DataFrame) -> Check:
    name = "torchattacks / foolbox cross-check"
    grids = results.groupby(_cell(results), dropna=False)["eps"].agg(lambda e: tuple(sorted(e))).rename("grid")
    results = results.join(grids, on=_cell(results))
    native = results[results["backend"] == "native"]
    other = results[results["backend"] != "native"]
    merged = other.merge(native, on=["model", "name", "mode", "eps"], suffixes=("", "_native"))
    merged = merged[merged["params"].map(_canonical) == merged["params_native"].map(_canonical)]
    # a worst-case row counts samples fooled at any smaller eps of its own grid: comparable only on equal grids
    merged = merged[(merged["mode"] == "independent") | (merged["grid"] == merged["grid_native"])]
    if merged.empty:
        return Check(
            name,
            "skipped",
            "no torchattacks or foolbox attack was run beside a native one with the same parameters (and, worst-case, the same eps grid)",
        )
    figures, bad = [], []
    for r in merged.itertuples():
        deterministic = r.iterative == False or not json.loads(r.params).get("random_start", True)  # noqa: E712
        half_width = max(r.ci_high - r.ci_low, r.ci_high_native - r.ci_low_native) / 2
        # a library cell runs in another memory layout: near-tie samples its clean pass rounds the other way may differ
        flips = abs(int(r.clean_correct) - int(r.clean_correct_native)) if "clean_correct" in merged and pd.notna(r.clean_correct) else 0
        ok = abs(r.correct - r.correct_native) <= flips if deterministic else abs(r.accuracy - r.accuracy_native) <= half_width
        line = f"{r.model} {r.name}@{r.backend} [{r.mode}] {_fmt(r.eps)}: {r.correct}/{r.n} vs native {r.correct_native}/{r.n_native}"
        figures.append(line)
        if not ok:
            bad.append(line)
    if bad:
        return Check(name, "warning", "the libraries disagree with the native engine beyond tolerance", bad)
    return Check(
        name,
        "pass",
        f"{len(merged)} rows agree (identical counts where the attack is deterministic, within the interval otherwise)",
        figures,
    )


def _canonical(params: str) -> str:
    return json.dumps(json.loads(params), sort_keys=True)


def run_checks(results: pd.DataFrame, clean: dict[str, tuple[int, int]]) -> list[Check]:
    """All checks in report order."""
    if "source" in results:  # one dtype for the cell key: "" for the cells that are not transfer cells
        results = results.assign(source=results["source"].astype(object).where(results["source"].notna(), "").astype(str))
    return [
        eps_zero_is_clean(results, clean),
        accuracy_does_not_rise(results),
        iterative_at_least_fgsm(results),
        large_eps_near_zero(results),
        libraries_agree(results),
    ]


def indicator_checks(indicators: pd.DataFrame) -> list[Check]:
    """One check per indicator of attack failure, over models and attacks: a warning listing each
    (model, attack) where it triggered with what to do, else pass (or skipped everywhere)."""
    checks = []
    for name, g in indicators.groupby("indicator", sort=False):
        ran = g[~g["skipped"]]
        fired = ran[ran["triggered"]]
        label = f"indicator: {name}"
        if ran.empty:
            checks.append(Check(label, "skipped", "; ".join(dict.fromkeys(str(d) for d in g["detail"]))))
        elif fired.empty:
            where = "models" if (g["level"] == "model").all() else "model x attack pairs"
            checks.append(Check(label, "pass", f"not triggered in the {len(ran)} {where} checked"))
        else:
            figures = [f"{r.model} {r.attack}: {r.detail}" for r in fired.itertuples()]
            checks.append(
                Check(label, "warning", f"triggered {len(fired)} of {len(ran)} times: the evaluation may overstate robustness", figures)
            )
    return checks
