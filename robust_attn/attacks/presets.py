"""AutoAttack presets beyond the standard L-inf/L2 ones (those live in ``ensemble.py``): the L1
threat model (``autoattack-l1``) and the version for randomized models (``autoattack-rand``),
with the members and parameters of the authors' ``AutoAttack(version=...)``; and the check that
an eps can be a perturbation of an image at all (:func:`check_eps_for_image`).

AutoAttack's standard L1 version runs APGD-CE (5 restarts) and APGD-T (5 targets), both on the
3 eps / 2 eps / eps schedule, then FAB-T and Square in L1. The native engine has no L1 FAB-T or
L1 Square yet, so ``autoattack-l1`` runs the two APGD members only (in the authors' evaluation
of "Mind the box" they do nearly all of the work); its results are therefore an upper bound on
AutoAttack-L1's robust accuracy, not equal to it.

The ``rand`` version runs APGD-CE and APGD-DLR, one restart of 100 steps each, with the gradient
of every step averaged over 20 forward-backward passes (``eot_iter=20``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar, Unpack

import torch.nn as nn

from robust_attn.attacks.apgd import APGD, APGDL1, APGDTL1
from robust_attn.attacks.base import Attack, AttackOptions, Norm, bad_param, positive_int
from robust_attn.attacks.ensemble import Ensemble
from robust_attn.attacks.registry import register_attack


def _untargeted(name: str, options: AttackOptions) -> None:
    if options.get("targeted"):
        raise bad_param("targeted", f"{name} is untargeted; for a given target use apgd with targeted = true")


@register_attack("autoattack-l1", "native")
class AutoAttackL1(Ensemble):
    """AutoAttack, standard version, L1 (eps: the L1 radius, summed over channels and pixels):
    APGD-CE (5 restarts x 100 steps) and APGD-T (5 targets x 100 steps), both APGD-L1 on
    AutoAttack's 3 eps / 2 eps / eps schedule (``large_eps``). AutoAttack's L1 FAB-T and Square
    are not members (the engine has no L1 version of them). ``steps``, ``restarts`` and
    ``targets`` shrink it for quick runs (results then are not AutoAttack's)."""

    name = "autoattack-l1"
    norm: ClassVar[Norm] = "l1"
    strength = 50

    def __init__(
        self, model: nn.Module, *, steps: int = 100, restarts: int = 5, targets: int = 5, **options: Unpack[AttackOptions]
    ) -> None:
        positive_int(steps=steps, restarts=restarts, targets=targets)
        _untargeted(self.name, options)
        members: list[tuple[str, Attack]] = [
            ("apgd-ce", APGDL1(model, steps=steps, restarts=restarts, loss="ce", large_eps=True, **options)),
            ("apgd-t", APGDTL1(model, steps=steps, restarts=1, targets=targets, large_eps=True, **options)),
        ]
        super().__init__(model, members, **options)
        self.settings = {"steps": steps, "restarts": restarts, "targets": targets}

    def params(self) -> dict[str, Any]:
        return dict(self.settings)


@register_attack("autoattack-rand", "native")
class AutoAttackRand(Ensemble):
    """AutoAttack, version for randomized models, L-inf: APGD-CE and APGD-DLR, each one restart
    of 100 steps whose gradients average ``eot`` (20) forward-backward passes. ``steps`` and
    ``eot`` shrink it for quick runs (results then are not AutoAttack's)."""

    name = "autoattack-rand"
    norm: ClassVar[Norm] = "linf"
    strength = 45  # stronger than APGD-T on a randomized model; without FAB-T and Square, below autoattack elsewhere
    randomized = True

    def __init__(self, model: nn.Module, *, steps: int = 100, eot: int = 20, **options: Unpack[AttackOptions]) -> None:
        positive_int(steps=steps, eot=eot)
        _untargeted(self.name, options)
        members: list[tuple[str, Attack]] = [
            (f"apgd-{loss}", APGD(model, steps=steps, restarts=1, loss=loss, eot=eot, **options)) for loss in ("ce", "dlr")
        ]
        super().__init__(model, members, **options)
        self.settings = {"steps": steps, "eot": eot}

    def params(self) -> dict[str, Any]:
        return dict(self.settings)


def check_eps_for_image(norm: str, eps: float | Sequence[float], image_shape: Sequence[int]) -> None:
    """Raise a one-line error naming the largest eps that no perturbation of an image of
    ``image_shape`` (C, H, W) in [0, 1] can reach: beyond the box's diameter in ``norm`` (L-inf
    1, L2 sqrt(C*H*W), L1 C*H*W) every eps means the same unconstrained attack, so such a value
    is a unit mistake (an L1 radius is a sum over all C*H*W values)."""
    values = [float(eps)] if isinstance(eps, (int, float)) else [float(e) for e in eps]
    if not values:
        return
    size = math.prod(int(s) for s in image_shape)
    diameter = {"linf": 1.0, "l2": math.sqrt(size), "l1": float(size)}.get(norm)
    if diameter is None:
        raise bad_param("norm", f"unknown norm {norm!r}; use linf, l2 or l1")
    worst = max(values)
    if worst > diameter:
        shape = "x".join(str(int(s)) for s in image_shape)
        raise bad_param(
            "eps",
            f"{norm} eps {worst:g} exceeds the {norm} diameter of a {shape} image in [0, 1] ({diameter:g}); "
            f"use a radius up to {diameter:g}",
        )
