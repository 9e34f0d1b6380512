"""``rapid``'s members, by code: keyed APGD-CE, three keyed targeted APGDs (MALT's run, the
restarts, the retries), Square, and the extrapolated point of a worst-case sweep (:class:`Extrapolate`)."""

from __future__ import annotations

from typing import Unpack

import torch
import torch.nn as nn

from robust_attn.attacks.apgd import project_ball
from robust_attn.attacks.base import Attack, AttackOptions, Norm
from robust_attn.attacks.ensemble import TorchattacksMember
from robust_attn.attacks.keyed_members import KeyedAPGDCE, KeyedAPGDCEL2, KeyedAPGDT, KeyedAPGDTL2, KeyedSquare

MEMBERS = ("apgd-ce", "malt", "restart", "square", "extrapolate", "retry")
CE, MALT, RESTART, SQUARE, EXTRAPOLATE, RETRY = range(6)


class Extrapolate(Attack):
    """A survivor's point from the previous eps of a worst-case sweep, its perturbation scaled up
    to this eps and projected onto the ball and the box, checked with one forward pass. On a
    nearly linear model the margin an attack took off at the smaller eps grows with the
    perturbation, so a sample that falls at the larger eps often falls to this point, for one
    pass instead of APGD-CE's steps; one that does not goes on to APGD-CE as before."""

    name = "extrapolate"
    iterative = False

    def __init__(self, model: nn.Module, norm: Norm, **options: Unpack[AttackOptions]) -> None:
        super().__init__(model, **options)
        self.norm = norm  # type: ignore[misc]

    def point(self, x: torch.Tensor, delta: torch.Tensor, ratio: torch.Tensor, eps: float) -> torch.Tensor:
        """x + ratio * delta (ratio per sample: this eps over the eps delta was found at), inside
        the eps-ball around x (rounding may leave it a hair outside) and [0, 1]."""
        return project_ball(x + ratio.view(-1, *([1] * (x.dim() - 1))) * delta, x, eps, self.norm)


def _square(model: nn.Module, norm: Norm, queries: int, options: AttackOptions, native: AttackOptions) -> Attack:
    """The query-only member: the keyed native Square in L-inf; in L2 the library's Square with
    AutoAttack's parameters (as autoattack-l2 runs it)."""
    if norm == "linf":
        return KeyedSquare(model, queries=queries, p_init=0.8, **native)
    library = {"n_queries": queries, "n_restarts": 1, "p_init": 0.8}
    return TorchattacksMember(model, "Square", norm, library, precision=options.get("precision", "fp32"))


def build_members(model: nn.Module, norm: Norm, steps: int, square_queries: int, options: AttackOptions) -> list[tuple[str, Attack]]:
    """rapid's members in code order (MEMBERS), each APGD with ``steps`` steps; the members take
    ``options`` but their own seeds (their random draws are keyed per sample)."""
    apgd, apgdt = (KeyedAPGDCE, KeyedAPGDT) if norm == "linf" else (KeyedAPGDCEL2, KeyedAPGDTL2)
    native: AttackOptions = {k: v for k, v in options.items() if k != "seed"}  # type: ignore[assignment]
    return [
        ("apgd-ce", apgd(model, steps=steps, loss="ce", **native)),
        ("malt", apgdt(model, steps=steps, targets=1, **native)),
        ("restart", apgdt(model, steps=steps, targets=1, **native)),
        ("square", _square(model, norm, square_queries, options, native)),
        ("extrapolate", Extrapolate(model, norm, **native)),
        ("retry", apgdt(model, steps=steps, targets=1, **native)),
    ]
