"""The answer in words: the paper's claims with their verdicts (marked fragile when p is near the
threshold), the headline curve and the sanity checks as a few sentences for page 1, and as a few
lines for the terminal (:func:`terminal_summary`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from robust_attn.epsilon import format_eps
from robust_attn.reports.tables import ALL_ATTACKS

if TYPE_CHECKING:
    from robust_attn.reports.checks import Check
    from robust_attn.rundir import Run

FRAGILE = (0.01, 0.05)  # a verdict with FRAGILE[0] <= p < FRAGILE[1] may not survive a rerun on another machine
FRAGILE_NOTE = (
    f"fragile: {FRAGILE[0]:g} <= p < {FRAGILE[1]:g}, so a rerun on another machine (other kernels, other training "
    "noise) may not reproduce the verdict"
)


def is_fragile(p: float, verdict: str) -> bool:
    """A verdict (or an instance-level difference) that rests on a p-value between 0.01 and 0.05;
    an inconclusive verdict is never fragile (its interval already contains 0)."""
    return verdict != "inconclusive" and not pd.isna(p) and FRAGILE[0] <= float(p) < FRAGILE[1]


def beyond_noise(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows whose confidence interval lies clear of 0 (an instance difference beyond noise)."""
    return rows[(rows["ci_low"] > 0) | (rows["ci_high"] < 0)]


def annotate(claims: pd.DataFrame) -> pd.DataFrame:
    """The claims with ``fragile`` and ``label`` (the verdict, '(fragile)' appended where it is) columns."""
    if claims.empty:
        return claims.assign(fragile=pd.Series(dtype=bool), label=pd.Series(dtype=str))
    fragile = [is_fragile(p, v) for p, v in zip(claims["p_value"], claims["verdict"])]
    return claims.assign(fragile=fragile, label=[v + (" (fragile)" if f else "") for v, f in zip(claims["verdict"], fragile)])


def claim_name(row: Any) -> str:
    """'robust to fgsm at 2/255', 'clean accuracy is higher', ..."""
    return str(row["claim"]) + (f" at {format_eps(float(row['eps']))}" if row["eps"] else "")


def difference(row: Any) -> str:
    """The difference from the baseline with its interval, in the unit of the claim's measure."""
    d, lo, hi = float(row["diff"]), float(row["ci_low"]), float(row["ci_high"])
    if row.get("measure", "accuracy") == "Jaccard":
        return f"{d:+.3f} [{lo:+.3f}, {hi:+.3f}] Jaccard"
    return f"{d * 100:+.1f} [{lo * 100:+.1f}, {hi * 100:+.1f}] points"


def _item(row: Any, *, with_against: bool = True) -> str:
    p = f"p = {float(row['p_value']):.2g}"
    against = f" vs {row['against']}" if with_against else ""
    return f"{row['architecture']} {claim_name(row)} ({difference(row)}{against}, {p}{', fragile' if row['fragile'] else ''})"


def _grouped(rows: pd.DataFrame) -> str:
    """Claims grouped by name: 'robust to fgsm at 2/255 (vgg-att2-pc, vgg-att3-dp); ...'."""
    groups: dict[str, list[str]] = {}
    for _, r in rows.iterrows():
        groups.setdefault(claim_name(r), []).append(str(r["architecture"]))
    return "; ".join(f"{name} ({', '.join(archs)})" for name, archs in groups.items())


def claim_sentences(claims: pd.DataFrame, seeds: int) -> list[tuple[str, str]]:
    """(lead, text) sentences: what is supported, what is not, what is inconclusive; with one seed
    per architecture, the instance-level statement instead."""
    out: list[tuple[str, str]] = []
    if seeds < 2:
        out.append(
            (
                "Instances only",
                ": each architecture has one trained model here, so comparisons are between model instances, not "
                "architectures (another training run of the same architecture can land elsewhere); sweep several training seeds "
                "(spec field seeds = [0, 1, 2]) for verdicts.",
            )
        )
    if claims.empty:
        return [
            *out,
            (
                "No claim tested",
                ": the run has no attention architecture with a baseline without attention trained the same "
                "way (and the data to compare them), so the paper's claims cannot be tested here.",
            ),
        ]
    if seeds < 2:
        clear = beyond_noise(claims)
        noise = claims.drop(clear.index)
        if len(clear):
            out.append(("Instance differences beyond noise", ": " + "; ".join(_item(r) for _, r in clear.iterrows()) + "."))
        if len(noise):
            out.append(("Within noise (interval contains 0)", ": " + _grouped(noise) + "."))
        return out
    by = {v: claims[claims["verdict"] == v] for v in ("supported", "not supported", "inconclusive")}
    level = f" at the architecture level ({_seeds(claims)} training seeds per architecture, 95% interval above 0)"
    out += (
        [("Supported", level + ": " + "; ".join(_item(r) for _, r in by["supported"].iterrows()) + ".")]
        if len(by["supported"])
        else [("Nothing supported", f": no claim's 95% interval lies above 0 ({_seeds(claims)} training seeds per architecture).")]
    )
    if len(by["not supported"]):
        out.append(("Not supported", " (interval below 0): " + "; ".join(_item(r) for _, r in by["not supported"].iterrows()) + "."))
    else:
        out.append(("Nothing contradicted", ": no claim's interval lies below 0."))
    if len(by["inconclusive"]):
        out.append(
            ("Inconclusive", f" (interval contains 0, {len(by['inconclusive'])} of {len(claims)}): " + _grouped(by["inconclusive"]) + ".")
        )
    return out


def headline_sentence(curve: pd.DataFrame) -> tuple[str, str] | None:
    """The headline curve at the claims' eps and at the largest eps, best and worst."""
    from robust_attn.reports.tables import headline_eps

    if curve.empty or not (curve["eps"] > 0).any():
        return None
    attack = str(curve["attack"].iloc[0])
    norm = str(curve["norm"].iloc[0])
    what = "the pointwise worst of all L-inf attacks" if attack == ALL_ATTACKS else attack
    level = "architecture" if curve["level"].iloc[0] == "architecture" else "model"
    parts = []
    for e in dict.fromkeys([headline_eps(curve["eps"].unique()) or float(curve["eps"].max()), float(curve["eps"].max())]):
        at = curve[curve["eps"] == e].sort_values("accuracy")
        lo, hi = at.iloc[0], at.iloc[-1]
        where = f"at {format_eps(float(e), norm)}"
        if len(at) > 1 and f"{lo['accuracy']:.1%}" == f"{hi['accuracy']:.1%}":
            parts.append(f"{where} every {level} is at {hi['accuracy']:.1%}")
        elif len(at) > 1:
            parts.append(
                f"{where} {level} accuracy runs from {lo['accuracy']:.1%} ({lo['label']}) to {hi['accuracy']:.1%} "
                f"[{hi['ci_low']:.1%}, {hi['ci_high']:.1%}] ({hi['label']})"
            )
        else:
            parts.append(f"{where} {level} accuracy is {hi['accuracy']:.1%} [{hi['ci_low']:.1%}, {hi['ci_high']:.1%}] ({hi['label']})")
    return ("Headline", f" ({what}): " + "; ".join(parts) + ".")


def _comparisons(rows: pd.DataFrame) -> str:
    """'a vs b +5.1 [+0.4, +9.8] points (p = 0.039, fragile); inconclusive: c, d vs b'."""
    clear = beyond_noise(rows)
    parts = [
        f"{r['architecture']} vs {r['against']} {difference(r)} (p = {float(r['p_value']):.2g}"
        f"{', fragile' if is_fragile(r['p_value'], str(r['verdict'])) else ''})"
        for _, r in clear.iterrows()
    ]
    rest = rows.drop(clear.index)
    if len(rest):
        parts.append("inconclusive: " + ", ".join(f"{a} vs {b}" for a, b in dict.fromkeys(zip(rest["architecture"], rest["against"]))))
    return "; ".join(parts)


def threat_sentences(run: Run, seeds: int) -> list[tuple[str, str]]:
    """Page 1's sentences on the threat models beyond the eps-ball: attention vs baseline under
    common corruptions (all severities) and the asymmetry of transfer, at the architecture level;
    with one seed, the populations' mean accuracy under corruptions (instances)."""
    from robust_attn.reports import threats

    out: list[tuple[str, str]] = []
    if run.corruptions:
        names = len({c for cell in run.corruptions.values() for c, _ in cell.conditions})
        comparison = threats.corruption_comparison(run) if seeds >= 2 else pd.DataFrame()
        if len(comparison):
            rows = comparison[comparison["severity"] == "all"]
            out.append(("Common corruptions", f" (mean over {names} corruptions and every severity): " + _comparisons(rows) + "."))
        else:
            arch = threats.corruption_architecture(run)
            at = arch[arch["severity"] == "all"].sort_values("accuracy", ascending=False)
            out.append(
                (
                    "Common corruptions",
                    f" (mean over {names} corruptions and every severity, instances): "
                    + ", ".join(f"{r['architecture']} {r['accuracy']:.1%}" for _, r in at.iterrows())
                    + ".",
                )
            )
    if run.transfers and seeds >= 2:
        asym = threats.transfer_asymmetry(run)
        if len(asym):
            rows = asym.assign(architecture=[f"{a} at {format_eps(float(e))}" for a, e in zip(asym["architecture"], asym["eps"])])
            out.append(
                (
                    "Transfer",
                    " (accuracy on the baseline's images minus the baseline's on theirs; positive: attention resists "
                    "transfer better): " + _comparisons(rows) + ".",
                )
            )
    return out


def checks_sentence(checks: list[Check]) -> tuple[str, str]:
    counts = {s: sum(c.status == s for c in checks) for s in ("pass", "warning", "skipped")}
    warned = [c.name.removeprefix("indicator: ") for c in checks if c.status == "warning"]
    text = f": {counts['pass']} pass, {counts['warning']} warning(s), {counts['skipped']} skipped"
    text += f" (warnings: {'; '.join(warned)}); read them before trusting a number." if warned else "."
    return ("Sanity checks", text)


def terminal_summary(run: Run) -> list[str]:
    """A few lines for the end of ``quickstart``, ``sweep`` and ``report``: the architecture-level
    verdicts (or the instance-level statement with one seed), fragile ones marked, and the headline."""
    from robust_attn.reports.tables import architecture_curves, curves, headline_curve, seeds_per_architecture
    from robust_attn.reports.threats import all_claims

    seeds = seeds_per_architecture(run)
    claims = annotate(all_claims(run))
    lines = [f"incomplete: {run.missing_summary()}"] if run.missing else []
    if claims.empty:
        lines.append("claims: none tested (no attention architecture with a baseline trained the same way)")
    elif seeds < 2:
        clear = beyond_noise(claims)
        lines.append(
            f"claims: instances only (one trained model per architecture; sweep seeds = [0, 1, 2] for verdicts); "
            f"{len(clear)} of {len(claims)} instance differences beyond noise"
        )
        lines += [f"  {_short(r)}" for _, r in clear.iterrows()]
    else:
        lines.append(
            f"claims, architecture level ({_seeds(claims)} seeds each; FRAGILE: {FRAGILE[0]:g} <= p < {FRAGILE[1]:g}, "
            "may not reproduce on another machine):"
        )
        for verdict in ("supported", "not supported"):
            rows = claims[claims["verdict"] == verdict]
            lines += [f"  {verdict}: {_short(r)}" for _, r in rows.iterrows()] or [f"  {verdict}: none"]
        rest = claims[claims["verdict"] == "inconclusive"]
        if len(rest):
            counts = rest.apply(claim_name, axis=1).value_counts(sort=False)
            lines.append(f"  inconclusive: {len(rest)} of {len(claims)} (" + ", ".join(f"{n} x{k}" for n, k in counts.items()) + ")")
    lines += [f"{lead.lower()}{text}" for lead, text in threat_sentences(run, seeds)]
    table = curves(run)
    line = headline_line(headline_curve(run, table, architecture_curves(run) if seeds >= 2 else None))
    return lines + ([line] if line else [])


def headline_line(curve: pd.DataFrame, show: int = 6) -> str:
    """'headline at 2/255 (all attacks, architecture mean): a 33.3%, b 28.2%, ...': best first."""
    from robust_attn.reports.tables import headline_eps

    if curve.empty or not (curve["eps"] > 0).any():
        return ""
    e = headline_eps(curve["eps"].unique()) or float(curve["eps"].max())
    at = curve[curve["eps"] == e].sort_values("accuracy", ascending=False)
    items = [f"{r['label']} {r['accuracy']:.1%}" for _, r in at.iterrows()]
    if len(items) > show:
        items = [*items[: show - 1], "...", items[-1]]
    attack = str(curve["attack"].iloc[0])
    level = "architecture mean" if curve["level"].iloc[0] == "architecture" else "per model"
    return f"headline at {format_eps(float(e), str(curve['norm'].iloc[0]))} ({attack}, {level}): " + ", ".join(items)


def _short(row: Any) -> str:
    return f"{row['architecture']} {claim_name(row)} ({difference(row)}, p = {float(row['p_value']):.2g}{', FRAGILE' if row['fragile'] else ''})"


def _seeds(claims: pd.DataFrame) -> str:
    """'3', or '2-3' when the populations compared have different numbers of seeds."""
    lo, hi = int(claims["seeds"].min()), int(claims["seeds"].max())
    return str(lo) if lo == hi else f"{lo}-{hi}"
