"""Ensembles of attacks run as one worst-case attack, and the ``autoattack`` presets (Croce & Hein,
ICML 2020, standard version: APGD-CE, APGD-T, FAB-T, Square).

At each eps only the samples no member has fooled yet are attacked, each member only sees the
previous members' survivors, and in a worst-case sweep a sample fooled at a smaller eps is not
attacked again. The per-sample column ``fooled_by`` names the member that fooled each sample
first (``clean`` where the model was already wrong). FAB-T (and the L2 Square) run through torchattacks
with AutoAttack's parameters; APGD-CE, APGD-T and the L-inf Square are the native engine's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Unpack

import torch
import torch.nn as nn

from robust_attn.attacks.apgd import APGD, APGDL2, APGDT, APGDTL2
from robust_attn.attacks.base import Attack, AttackOptions, Norm, positive_int
from robust_attn.attacks.registry import register_attack
from robust_attn.attacks.square import Square

NOT_FOOLED = -1


class TorchattacksMember(Attack):
    """A torchattacks attack inside an ensemble, built per call with the model's class count
    (``"n_classes"`` as a parameter value is replaced by it) and the member's seed."""

    backend = "torchattacks"
    supports_channels_last = False

    def __init__(self, model: nn.Module, cls_name: str, norm: Norm, params: dict[str, Any], **options: Unpack[AttackOptions]) -> None:
        super().__init__(model, **options)
        self.cls_name, self.kwargs = cls_name, params
        self.norm = norm  # type: ignore[misc]

    def params(self) -> dict[str, Any]:
        return {"class": self.cls_name, **self.kwargs}

    def perturb(self, x: torch.Tensor, y: torch.Tensor, eps: float, stop_early: bool = False) -> torch.Tensor:
        import torchattacks

        with torch.inference_mode():
            n_classes = int(self.logits(x[:1]).shape[1])
        kwargs = {k: (n_classes if v == "n_classes" else v) for k, v in self.kwargs.items()}
        norm = "Linf" if self.norm == "linf" else "L2"
        atk = getattr(torchattacks, self.cls_name)(self.model, eps=eps, norm=norm, seed=self.seed, **kwargs)
        return atk(x, y)


@dataclass
class _EnsembleState:
    clean_pred: torch.Tensor
    clean_fooled: torch.Tensor  # (B,) wrong before any attack
    epsilons: list[float]
    fooled_by: torch.Tensor  # (K, B) member index, NOT_FOOLED where no member fooled the sample at that eps


class Ensemble(Attack):
    """Members in order, each on the previous members' survivors; a sample counts as fooled at eps
    if some member fools it there (or, in a worst-case sweep, at a smaller eps)."""

    supports_channels_last = False  # the ensemble's own images stay NCHW; each member runs in its own layout

    def __init__(self, model: nn.Module, members: list[tuple[str, Attack]], **options: Unpack[AttackOptions]) -> None:
        super().__init__(model, **options)
        if len({m.norm for _, m in members}) != 1 or members[0][1].norm != self.norm:
            raise ValueError(f"ensemble members must all be {self.norm} attacks")
        self.members = members
        self.categorical_columns = {"fooled_by": [*[name for name, _ in members], "clean"]}  # type: ignore[misc]

    def params(self) -> dict[str, Any]:
        return {name: m.params() for name, m in self.members} | {"targeted": self.targeted}

    def reseed(self, seed: int) -> None:
        """Each member gets its own stream (and torchattacks members their own seed)."""
        super().reseed(seed)
        for i, (_, member) in enumerate(self.members):
            member.seed = (seed + 7919 * (i + 1)) % 2**31
            member.reseed(member.seed)

    @property
    def cost(self) -> tuple[int, int]:
        totals = [self.counter.forwards, self.counter.backwards]
        for _, m in self.members:
            f, b = m.cost
            totals[0] += f
            totals[1] += b
        return totals[0], totals[1]

    def member_costs(self) -> dict[str, tuple[int, int]]:
        """Forward and backward passes (in images) each member has spent."""
        return {name: m.cost for name, m in self.members}

    def chain(self, x: torch.Tensor, y: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Adversarial images and, per sample, the index of the member that fooled it (or NOT_FOOLED)."""
        result = x.clone()
        by = torch.full((x.shape[0],), NOT_FOOLED, dtype=torch.long, device=x.device)
        todo = torch.arange(x.shape[0], device=x.device)
        for i, (_, member) in enumerate(self.members):
            if todo.numel() == 0:
                break
            member.apply_layout()
            fmt = torch.channels_last if member.channels_last else torch.contiguous_format
            adv = member.perturb(x[todo].contiguous(memory_format=fmt), y[todo], eps, stop_early=True)
            hit = self._fooled(member.predict(adv), y[todo], y[todo])
            result[todo[hit]] = adv[hit]
            by[todo[hit]] = i
            todo = todo[~hit]
        self.apply_layout()  # leave the shared model as the ensemble found it
        return result, by

    def perturb(self, x: torch.Tensor, y: torch.Tensor, eps: float, stop_early: bool = False) -> torch.Tensor:
        return self.chain(x, y, eps)[0]

    def _start_sweep(self, x: torch.Tensor, goal: torch.Tensor, epsilons: Sequence[float]) -> _EnsembleState:
        clean_pred = self.predict(x)
        fooled_by = torch.full((len(epsilons), x.shape[0]), NOT_FOOLED, dtype=torch.long, device=x.device)
        return _EnsembleState(clean_pred, self._fooled(clean_pred, goal, goal), [float(e) for e in epsilons], fooled_by)

    def _attack_at(
        self, state: _EnsembleState, idx: torch.Tensor | None, x: torch.Tensor, goal: torch.Tensor, eps: float, stop_early: bool
    ) -> torch.Tensor:
        adv, by = self.chain(x, goal, eps)
        state.fooled_by[state.epsilons.index(eps), slice(None) if idx is None else idx] = by
        return self.predict(adv)

    def _sweep_columns(self, state: _EnsembleState, worst_case: bool) -> dict[str, torch.Tensor]:
        codes = state.fooled_by.clone()
        if worst_case:  # fooled at a smaller eps: the same member's point lies in every larger ball
            for k in range(1, len(codes)):
                codes[k] = torch.where(codes[k] == NOT_FOOLED, codes[k - 1], codes[k])
        codes[:, state.clean_fooled] = len(self.members)  # "clean"
        return {"fooled_by": codes}


def _autoattack_members(model: nn.Module, norm: Norm, steps: int, targets: int, fab_steps: int, square_queries: int,
                        options: AttackOptions) -> list[tuple[str, Attack]]:  # fmt: skip
    apgd, apgdt = (APGD, APGDT) if norm == "linf" else (APGDL2, APGDTL2)
    native: AttackOptions = dict(options)  # type: ignore[assignment]
    library: AttackOptions = {"precision": options.get("precision", "fp32")}
    square: Attack = (
        Square(model, queries=square_queries, p_init=0.8, restarts=1, **native)
        if norm == "linf"  # native L-inf Square: torchattacks' numbers, faster (benchmarks/strong_attacks.py)
        else TorchattacksMember(model, "Square", norm, {"n_queries": square_queries, "n_restarts": 1, "p_init": 0.8}, **library)
    )
    return [
        ("apgd-ce", apgd(model, steps=steps, loss="ce", **native)),
        ("apgd-t", apgdt(model, steps=steps, targets=targets, **native)),
        ("fab-t", TorchattacksMember(model, "FAB", norm, {"steps": fab_steps, "n_restarts": 1, "multi_targeted": True, "n_classes": "n_classes"}, **library)),
        ("square", square),
    ]  # fmt: skip


@register_attack("autoattack", "native")
class AutoAttack(Ensemble):
    """AutoAttack, standard version, L-inf: APGD-CE (100 steps), APGD-T (9 targets x 100 steps),
    FAB-T (9 targets, 100 steps, torchattacks) and Square (5,000 queries, native), as a
    worst-case ensemble. ``steps``, ``targets``, ``fab_steps`` and ``square_queries`` shrink it
    for quick runs (results then are not AutoAttack's)."""

    name = "autoattack"
    norm: ClassVar[Norm] = "linf"

    def __init__(
        self,
        model: nn.Module,
        *,
        steps: int = 100,
        targets: int = 9,
        fab_steps: int = 100,
        square_queries: int = 5000,
        **options: Unpack[AttackOptions],
    ) -> None:
        positive_int(steps=steps, targets=targets, fab_steps=fab_steps, square_queries=square_queries)
        if options.get("targeted"):
            raise ValueError("autoattack is untargeted; for a given target use apgd with targeted = true")
        members = _autoattack_members(model, self.norm, steps, targets, fab_steps, square_queries, options)
        super().__init__(model, members, **options)
        self.settings = {"steps": steps, "targets": targets, "fab_steps": fab_steps, "square_queries": square_queries}

    def params(self) -> dict[str, Any]:
        return dict(self.settings)


@register_attack("autoattack-l2", "native")
class AutoAttackL2(AutoAttack):
    """AutoAttack, standard version, L2."""

    name = "autoattack-l2"
    norm: ClassVar[Norm] = "l2"
