"""The families comparison: every population's architecture-level accuracy under every threat model
of the run (clean, each eps-ball attack at each eps, the corruptions at each severity, transfer from
the other populations at each eps), and its difference from the baseline trained the same way, all
with the intervals of :mod:`robust_attn.archstats` on the outcome tables the other sections use."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd

from robust_attn.epsilon import format_eps
from robust_attn.reports.tables import _matrix, architectures, baselines, population, verdict_of
from robust_attn.reports.threats import _corruption_matrix, _transfer_matrix
from robust_attn.reports.verdicts import is_fragile
from robust_attn.rundir import Run

MIN_FAMILIES = 3  # distinct declared architectures a run needs for the families page
MIN_THREAT_KINDS = 2  # and kinds of threat model: one kind alone is the Architectures section's view
Outcomes = Callable[[list[str]], np.ndarray | None]  # a population's models -> seeds x samples outcomes (None: a cell is missing)


@dataclass(frozen=True)
class Threat:
    """One threat model at one strength: a row group of the families page."""

    kind: str  # a key of THREAT_KINDS
    name: str  # clean, the attack id, corruptions, the transfer table's attack id
    level: str  # the eps (2/255), the severity (severity 3), or '' for clean
    outcomes: Outcomes

    @property
    def label(self) -> str:
        """'clean', 'rapid 2/255', 'corruptions, severity 3', 'transfer pgd-10 4/255'."""
        name = f"transfer {self.name}" if self.kind == "transfer" else self.name
        return f"{name}, {self.level}" if self.kind == "corruptions" else f"{name} {self.level}".strip()


def _clean(run: Run) -> list[Threat]:
    return [Threat("clean", "clean", "", partial(_matrix, run, attack="clean", eps=0.0))]


def _eps_ball(run: Run) -> list[Threat]:
    """Each white-box attack (worst-case) at each eps > 0 it was run at."""
    grids: dict[str, tuple[str, set[float]]] = {}
    for (_, attack, mode), c in run.cells.items():
        if mode == "worst-case":
            grids.setdefault(attack, (c.norm, set()))[1].update(float(e) for e in c.eps if e > 0)
    return [
        Threat("eps-ball", attack, format_eps(e, norm), partial(_matrix, run, attack=attack, eps=e))
        for attack, (norm, grid) in grids.items()
        for e in sorted(grid)
    ]


def _corruptions(run: Run) -> list[Threat]:
    """The corruptions, each sample's accuracy averaged over them, at each severity."""
    severities = sorted({s for c in run.corruptions.values() for _, s in c.conditions})
    return [Threat("corruptions", "corruptions", f"severity {s}", partial(_corruption_matrix, run, severity=s)) for s in severities]


def _from_others(run: Run, sources: list[str], models: list[str], *, attack: str, eps: float) -> np.ndarray | None:
    """The population's seeds x samples under images crafted on the models of the other populations
    (the off-diagonal of the population-level transfer matrix, sources averaged)."""
    return _transfer_matrix(run, [s for s in sources if s not in models], models, eps, attack)


def _transfer(run: Run) -> list[Threat]:
    """Each transfer table (attack id) at each eps: transfer from the other populations."""
    tables: dict[str, tuple[str, set[str], set[float]]] = {}
    for (_, attack, _), c in run.transfers.items():
        _, sources, grid = tables.setdefault(attack, (c.norm, set(), set()))
        sources.add(str(c.source))
        grid.update(float(e) for e in c.eps)
    return [
        Threat("transfer", attack, format_eps(e, norm), partial(_from_others, run, sorted(sources), attack=attack, eps=e))
        for attack, (norm, sources, grid) in tables.items()
        for e in sorted(grid)
    ]


# The threat models of the families page, in the order of its rows; each finds its own in the run.
THREAT_KINDS: dict[str, Callable[[Run], list[Threat]]] = {
    "clean": _clean,
    "eps-ball": _eps_ball,
    "corruptions": _corruptions,
    "transfer": _transfer,
}


def threat_models(run: Run) -> list[Threat]:
    return [t for find in THREAT_KINDS.values() for t in find(run)]


def threat_kinds(run: Run) -> int:
    """Kinds of threat model beyond clean accuracy that the run holds (eps-ball, corruptions, transfer)."""
    return sum(bool(find(run)) for kind, find in THREAT_KINDS.items() if kind != "clean")


def family_count(run: Run) -> int:
    """Distinct architectures the run's models declare (whatever their training regimes)."""
    return len({population(run, m)[0] for m in run.models})


def regime_baselines(run: Run) -> dict[str, str]:
    """Training regime -> the population the others trained that way are compared with: the
    baseline of the paper's claims (:func:`~robust_attn.reports.tables.baselines`)."""
    pops = architectures(run)
    return {population(run, pops[base][0])[1]: base for base in baselines(run).values()}


def without_baseline(run: Run) -> dict[str, tuple[list[str], list[str]]]:
    """Training regime -> (its populations without attention, those with), for each regime that
    has no baseline (:func:`regime_baselines`)."""
    have = regime_baselines(run)
    out: dict[str, tuple[list[str], list[str]]] = {}
    for label, models in architectures(run).items():
        regime = population(run, models[0])[1]
        if regime not in have:
            out.setdefault(regime, ([], []))[bool(run.model_info(models[0]).get("has_attention"))].append(label)
    return out


COLUMNS = ["kind", "threat", "level", "label", "regime", "architecture", "population", "seeds", "accuracy", "ci_low", "ci_high"]
DIFFERENCE = ["against", "diff", "diff_low", "diff_high", "p_value", "fragile"]


def _accuracy(y: np.ndarray) -> dict[str, object]:
    """The population's mean over seeds and samples with its 95% interval (clipped to [0, 1], as
    :func:`~robust_attn.reports.tables.architecture_curves` does)."""
    from robust_attn.archstats import architecture_mean

    est = architecture_mean(y)
    return {"seeds": len(y), "accuracy": est.value, "ci_low": max(0.0, est.low), "ci_high": min(1.0, est.high)}


def _difference(y: np.ndarray, base: np.ndarray | None, against: str) -> dict[str, object]:
    """The difference from the baseline's outcomes on the same samples, with interval, p and the
    fragile mark; blank for the baseline itself and where it lacks the cell."""
    from robust_attn.archstats import architecture_difference

    if base is None or base.shape[1] != y.shape[1]:
        return {"against": against, "diff": np.nan, "diff_low": np.nan, "diff_high": np.nan, "p_value": np.nan, "fragile": False}
    d = architecture_difference(y, base)
    verdict = verdict_of(d.low, d.high, min(len(y), len(base)))
    return {"against": against, "diff": d.value, "diff_low": d.low, "diff_high": d.high, "p_value": d.p_value,
            "fragile": is_fragile(d.p_value, verdict)}  # fmt: skip


def family_rows(run: Run) -> pd.DataFrame:
    """Per threat model (in :data:`THREAT_KINDS` order), training regime and architecture: the
    architecture-level accuracy with its 95% interval, and the difference from the regime's
    baseline (:func:`regime_baselines`) with its interval and p."""
    pops = architectures(run)
    base = regime_baselines(run)
    rows = []
    for threat in threat_models(run):
        outcomes = {label: threat.outcomes(models) for label, models in pops.items()}
        for label, y in outcomes.items():
            if y is None:
                continue
            arch, regime = population(run, pops[label][0])
            against = base.get(regime, "")
            yb = outcomes.get(against) if against and against != label else None
            where = {"kind": threat.kind, "threat": threat.name, "level": threat.level, "label": threat.label}
            rows.append({**where, "regime": regime, "architecture": arch, "population": label, **_accuracy(y),
                         **_difference(y, yb, against if yb is not None else "")})  # fmt: skip
    return pd.DataFrame(rows, columns=[*COLUMNS, *DIFFERENCE])
