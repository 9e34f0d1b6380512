"""The strongest evaluation a run holds of one model under one threat: the per-sample worst case
over every attack of that threat model and norm (a sample counts robust at eps only if it
survives each of them), computed from the per-sample table alone.

Worst-case cells record the first fooling point at each grid eps, and eps balls are nested, so an
attack run at a smaller eps still constrains a larger one (a sample it fooled at 2/255 is not
robust at 8/255); independent cells answer only at their own grid points; minimum-norm attacks
answer at every eps (robust iff the smallest fooling norm found exceeds eps). A threat counts as
evaluated in a run only at the eps values some attack of that norm was run at, so a column is
never filled from smaller budgets alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from robust_attn.epsilon import format_eps
from robust_attn.rundir import Run

BALL_THREATS = ("white-box", "transfer")  # threat models with an eps ball (corruptions have none)
NORM_LABELS = {"linf": "L∞", "l2": "L2", "l1": "L1"}


@dataclass(frozen=True, order=True)
class Threat:
    """A column of the leaderboard: threat model, norm and eps."""

    threat_model: str
    norm: str
    eps: float

    @property
    def eps_label(self) -> str:
        return format_eps(self.eps, self.norm)

    @property
    def key(self) -> str:
        """Stable id of the column (CSV header, HTML data-key, ``#sort=`` value): ``white-box:linf:8/255``."""
        return f"{self.threat_model}:{self.norm}:{self.eps_label}"

    @property
    def label(self) -> str:
        """Column heading: ``L∞ 8/255``, ``transfer L∞ 8/255``."""
        head = f"{NORM_LABELS.get(self.norm, self.norm)} {self.eps_label}"
        return head if self.threat_model == "white-box" else f"{self.threat_model} {head}"


@dataclass(frozen=True)
class CellView:
    """One eps-ball cell of one model, as matrices: what the worst case needs."""

    attack: str  # attack id as results.csv has it
    threat_model: str
    norm: str
    mode: str
    eps: np.ndarray  # (K,) ascending
    correct: np.ndarray  # (K, N) bool
    min_norm: np.ndarray | None = None  # (N,) minimum-norm attacks in worst-case mode
    source: str | None = None  # transfer cells: the model the images were crafted on

    @property
    def name(self) -> str:
        """The attack as the leaderboard names it: its id, with its mode outside worst-case and its transfer source."""
        name = self.attack if self.mode == "worst-case" else f"{self.attack} [{self.mode}]"
        return name if self.source is None else f"{name} from {self.source}"


@dataclass(frozen=True)
class Score:
    """Per-sample robustness of a model under a threat, and the attacks that formed it."""

    correct: np.ndarray  # (N,) bool
    cells: tuple[CellView, ...]  # the cells that formed it

    @property
    def attacks(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c.name for c in self.cells))

    @property
    def accuracy(self) -> float:
        return float(self.correct.mean())


def cell_views(run: Run, model: str) -> list[CellView]:
    """The eps-ball cells (white-box and transfer, every mode) of ``model`` in ``run``."""
    s = run.samples
    rows = s[(s["model"] == model) & s["threat_model"].isin(BALL_THREATS) & s["eps"].notna()]
    out = []
    for (tm, attack, mode, source), g in rows.groupby(["threat_model", "attack", "mode", "source"], sort=False, dropna=False):
        g = g.sort_values(["eps", "sample"], kind="stable")
        eps = np.unique(g["eps"].to_numpy(float))
        correct = g["correct"].to_numpy(bool).reshape(len(eps), -1)
        first = g[g["eps"] == eps[0]]
        min_norm = first["min_norm"].to_numpy(float) if mode == "worst-case" and first["min_norm"].notna().all() else None
        src = None if pd.isna(source) else str(source)
        out.append(CellView(str(attack), str(tm), str(g["norm"].iloc[0]), str(mode), eps, correct, min_norm, src))
    return out


def threats(cells: list[CellView]) -> list[Threat]:
    """The threats the cells evaluated: every (threat model, norm, eps > 0) of their grids."""
    found = {Threat(c.threat_model, c.norm, round(float(e), 12)) for c in cells for e in c.eps if e > 0}
    return sorted(found)


def worst_case(cells: list[CellView], clean: np.ndarray, threat: Threat) -> Score | None:
    """The per-sample worst case at ``threat`` over the cells of its threat model and norm (None
    when none of them was run at that eps)."""
    mine = [c for c in cells if (c.threat_model, c.norm) == (threat.threat_model, threat.norm)]
    e = threat.eps
    if not any(np.isclose(c.eps, e, rtol=1e-9, atol=1e-12).any() for c in mine):
        return None
    robust = clean.astype(bool).copy()
    used: list[CellView] = []
    for c in mine:
        if c.min_norm is not None:
            robust &= c.min_norm > e
        elif c.mode == "worst-case" and (j := int(np.searchsorted(c.eps, e + 1e-12, side="right")) - 1) >= 0:
            robust &= c.correct[j]
        elif c.mode != "worst-case" and (hit := np.nonzero(np.isclose(c.eps, e, rtol=1e-9, atol=1e-12))[0]).size:
            robust &= c.correct[hit[0]]
        else:
            continue
        used.append(c)
    return Score(robust, tuple(used))
