"""Ensembles of attacks run as one worst-case attack, and the ``autoattack`` presets (Croce & Hein,
ICML 2020, standard version: APGD-CE, APGD-T, FAB-T, Square).

At each eps only the samples no member has fooled yet are attacked, each member only sees the
previous members' survivors, and in a worst-case sweep a sample fooled at a smaller eps is not
attacked again. The per-sample column ``fooled_by`` names the member that fooled each sample
first (``clean`` where the model was already wrong). APGD-CE, APGD-T, FAB-T and the L-inf Square
are the native engine's; the L2 Square runs through torchattacks, with AutoAttack's parameters.

A minimum-norm member (FAB-T: deterministic, its search independent of eps) runs once per sample
in a sweep: its smallest fooling norm answers every larger eps, so it is not run again there.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Unpack

import torch
import torch.nn as nn

from robust_attn.attacks.apgd import APGD, APGDL2, APGDT, APGDTL2
from robust_attn.attacks.base import Attack, AttackOptions, Norm, bad_param, positive_int
from robust_attn.attacks.fab import FABT, FABTL2
from robust_attn.attacks.minnorm import MinimumNormAttack
from robust_attn.attacks.registry import register_attack
from robust_attn.attacks.square import Square

NOT_FOOLED = -1


class TorchattacksMember(Attack):
    """A torchattacks attack inside an ensemble, built per call with the member's seed."""

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

        norm = "Linf" if self.norm == "linf" else "L2"
        atk = getattr(torchattacks, self.cls_name)(self.model, eps=eps, norm=norm, seed=self.seed, **self.kwargs)
        return atk(x, y)


@dataclass
class _MinNormAnswers:
    """A minimum-norm member's results per sample of a sweep batch."""

    norms: torch.Tensor  # (B,) smallest fooling norm found (inf: none)
    adv: torch.Tensor  # (B, ...) the point with that norm
    stopped_below: torch.Tensor  # (B,) the stop_below its run used (nan: not run yet); a norm above it is exact

    @classmethod
    def empty(cls, x: torch.Tensor) -> _MinNormAnswers:
        nan = torch.full((x.shape[0],), math.nan, device=x.device)
        return cls(torch.full_like(nan, math.inf), torch.empty_like(x, memory_format=torch.contiguous_format), nan)

    def ask(self, member: MinimumNormAttack, x: torch.Tensor, y: torch.Tensor, ids: torch.Tensor, eps: float) -> torch.Tensor:
        """The member's point inside the eps-ball where it has one, else the clean image; runs it
        only on the samples whose earlier answer does not settle this eps."""
        norms, stopped = self.norms[ids], self.stopped_below[ids]
        settled = (stopped <= eps) | (norms > stopped)  # a run that stopped below a larger eps may not have its smallest point
        ask = (~settled).nonzero().squeeze(1)
        if ask.numel():
            adv, found, _ = member.minimise(x[ask], y[ask], stop_below=eps)
            self.norms[ids[ask]], self.adv[ids[ask]], self.stopped_below[ids[ask]] = found, adv, eps
        inside = (self.norms[ids] <= eps).view(-1, *([1] * (x.dim() - 1)))
        return torch.where(inside, self.adv[ids], x)


@dataclass
class _EnsembleState:
    clean_pred: torch.Tensor
    clean_fooled: torch.Tensor  # (B,) wrong before any attack
    epsilons: list[float]
    fooled_by: torch.Tensor  # (K, B) member index, NOT_FOOLED where no member fooled the sample at that eps
    answers: dict[int, _MinNormAnswers]  # minimum-norm members' results, by member index


class Ensemble(Attack):
    """Members in order, each on the previous members' survivors; a sample counts as fooled at eps
    if some member fools it there (or, in a worst-case sweep, at a smaller eps)."""

    is_ensemble = True

    supports_channels_last = False  # the ensemble's own images stay NCHW; each member runs in its own layout

    def __init__(self, model: nn.Module, members: list[tuple[str, Attack]], **options: Unpack[AttackOptions]) -> None:
        super().__init__(model, **options)
        if len({m.norm for _, m in members}) != 1 or members[0][1].norm != self.norm:
            raise bad_param("members", f"ensemble members must all be {self.norm} attacks")
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

    def check_data(self, classes: int, image_shape: Sequence[int]) -> None:
        for _, member in self.members:
            member.check_data(classes, image_shape)

    def member_costs(self) -> dict[str, tuple[int, int]]:
        """Forward and backward passes (in images) each member has spent."""
        return {name: m.cost for name, m in self.members}

    def chain(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        eps: float,
        ids: torch.Tensor | None = None,
        answers: dict[int, _MinNormAnswers] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Adversarial images, per sample the index of the member that fooled it (or NOT_FOOLED),
        and the prediction of the evaluation that decided it (for a random model, the sweep's
        outcome must be that evaluation's, not a fresh draw's). In a sweep, ``ids`` are the samples'
        places in the batch and ``answers`` the minimum-norm members' results so far."""
        result = x.clone()
        by = torch.full((x.shape[0],), NOT_FOOLED, dtype=torch.long, device=x.device)
        pred = torch.full((x.shape[0],), -1, dtype=torch.long, device=x.device)
        todo = torch.arange(x.shape[0], device=x.device)
        for i, (_, member) in enumerate(self.members):
            if todo.numel() == 0:
                break
            fmt = torch.channels_last if member.channels_last else torch.contiguous_format
            xs = x[todo].contiguous(memory_format=fmt)
            if answers is not None and ids is not None and i in answers:
                adv = answers[i].ask(member, xs, y[todo], ids[todo], eps)  # type: ignore[arg-type]
            else:
                adv = member.perturb(xs, y[todo], eps, stop_early=True)
            p = member.predict(adv)
            pred[todo] = p
            hit = self._fooled(p, y[todo], y[todo])
            result[todo[hit]] = adv[hit]
            by[todo[hit]] = i
            todo = todo[~hit]
        if todo.numel():  # no member ran on them (an empty ensemble): their clean prediction
            pred[todo] = self.predict(x[todo])
        return result, by, pred

    def perturb(self, x: torch.Tensor, y: torch.Tensor, eps: float, stop_early: bool = False) -> torch.Tensor:
        return self.chain(x, y, eps)[0]

    def _start_sweep(self, x: torch.Tensor, goal: torch.Tensor, epsilons: Sequence[float]) -> _EnsembleState:
        clean_pred = self.predict(x)
        fooled_by = torch.full((len(epsilons), x.shape[0]), NOT_FOOLED, dtype=torch.long, device=x.device)
        answers = {i: _MinNormAnswers.empty(x) for i, (_, m) in enumerate(self.members) if isinstance(m, MinimumNormAttack)}
        return _EnsembleState(clean_pred, self._fooled(clean_pred, goal, goal), [float(e) for e in epsilons], fooled_by, answers)

    def _attack_at(
        self, state: _EnsembleState, idx: torch.Tensor | None, x: torch.Tensor, goal: torch.Tensor, eps: float, stop_early: bool
    ) -> torch.Tensor:
        ids = torch.arange(len(state.clean_pred), device=x.device) if idx is None else idx
        _, by, pred = self.chain(x, goal, eps, ids, state.answers)
        state.fooled_by[state.epsilons.index(eps), ids] = by
        return pred

    def _sweep_columns(self, state: _EnsembleState, worst_case: bool) -> dict[str, torch.Tensor]:
        codes = state.fooled_by.clone()
        if worst_case:  # fooled at a smaller eps: the same member's point lies in every larger ball
            for k in range(1, len(codes)):
                codes[k] = torch.where(codes[k] == NOT_FOOLED, codes[k - 1], codes[k])
        codes[:, state.clean_fooled] = len(self.members)  # "clean"
        return {"fooled_by": codes}


def _autoattack_members(
    model: nn.Module, norm: Norm, steps: int, targets: int, fab_steps: int, square_queries: int, options: AttackOptions
) -> list[tuple[str, Attack]]:
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
        ("fab-t", (FABT if norm == "linf" else FABTL2)(model, steps=fab_steps, targets=targets, **native)),
        ("square", square),
    ]


@register_attack("autoattack", "native")
class AutoAttack(Ensemble):
    """AutoAttack, standard version, L-inf: APGD-CE (100 steps), APGD-T (9 targets x 100 steps),
    FAB-T (9 targets x 100 steps) and Square (5,000 queries), all native, as a
    worst-case ensemble. ``steps``, ``targets``, ``fab_steps`` and ``square_queries`` shrink it
    for quick runs (results then are not AutoAttack's)."""

    name = "autoattack"
    norm: ClassVar[Norm] = "linf"
    strength = 50

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
            raise bad_param("targeted", "autoattack is untargeted; for a given target use apgd with targeted = true")
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
