"""The same attacks run by torchattacks and foolbox, behind the :class:`Attack` interface.

They are the reference implementations the native engine is checked against, and a way to
run any torchattacks attack (``torchattacks:AutoAttack``) through the sweep runner. The
libraries are imported only when an attack of theirs runs.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from robust_attn.attacks.base import Attack, AttackOptions, IterativeAttack, Norm
from robust_attn.attacks.registry import PrefixBackend, UnknownAttack, register_attack, register_prefix
from robust_attn.errors import AttackParameterError


class _LibraryPGD(IterativeAttack):
    """Library PGD takes the native PGD's parameters except restarts."""

    def __init__(self, model: nn.Module, **params: Any) -> None:
        super().__init__(model, **params)
        if self.restarts != 1:
            raise AttackParameterError("restarts", f"restarts={self.restarts} is only supported by the native backend")


class _TorchattacksRun:
    """Runs a built torchattacks object with our targeting and seeding."""

    def _run_torchattacks(self: Any, atk: Any, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.targeted:
            atk.set_mode_targeted_by_label(quiet=True)
        self.seed_global_rng()
        return atk(x, y)


class TorchattacksFGSM(_TorchattacksRun, Attack):
    name, norm, backend = "fgsm", "linf", "torchattacks"
    iterative, strength = False, 10

    def perturb(self, x: torch.Tensor, y: torch.Tensor, eps: float, stop_early: bool = False) -> torch.Tensor:
        import torchattacks

        return self._run_torchattacks(torchattacks.FGSM(self.model, eps=eps), x, y)


class _TorchattacksPGD(_TorchattacksRun, _LibraryPGD):
    backend = "torchattacks"
    strength = 20

    def perturb(self, x: torch.Tensor, y: torch.Tensor, eps: float, stop_early: bool = False) -> torch.Tensor:
        import torchattacks

        cls = torchattacks.PGD if self.norm == "linf" else torchattacks.PGDL2
        atk = cls(self.model, eps=eps, alpha=self.step_size(eps), steps=self.steps, random_start=self.random_start)
        return self._run_torchattacks(atk, x, y)


class _FoolboxRun:
    def _run_foolbox(self: Any, attack: Any, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
        import foolbox as fb

        fmodel = fb.PyTorchModel(self.model, bounds=(0, 1), device=self.device)
        criterion = fb.criteria.TargetedMisclassification(y) if self.targeted else fb.criteria.Misclassification(y)
        self.seed_global_rng()
        _, clipped, _ = attack(fmodel, x, criterion, epsilons=eps)
        return clipped.detach()


class FoolboxFGSM(_FoolboxRun, Attack):
    name, norm, backend = "fgsm", "linf", "foolbox"
    iterative, strength = False, 10

    def perturb(self, x: torch.Tensor, y: torch.Tensor, eps: float, stop_early: bool = False) -> torch.Tensor:
        import foolbox as fb

        return self._run_foolbox(fb.attacks.FGSM(), x, y, eps)


class _FoolboxPGD(_FoolboxRun, _LibraryPGD):
    backend = "foolbox"
    strength = 20

    def perturb(self, x: torch.Tensor, y: torch.Tensor, eps: float, stop_early: bool = False) -> torch.Tensor:
        import foolbox as fb

        cls = fb.attacks.LinfPGD if self.norm == "linf" else fb.attacks.L2PGD
        return self._run_foolbox(cls(abs_stepsize=self.step_size(eps), steps=self.steps, random_start=self.random_start), x, y, eps)


register_attack("fgsm", "torchattacks")(TorchattacksFGSM)
register_attack("fgsm", "foolbox")(FoolboxFGSM)
for _base in (_TorchattacksPGD, _FoolboxPGD):
    for _name, _norm in (("pgd", "linf"), ("pgd-l2", "l2")):
        _cls = type(f"{_base.__name__[1:]}_{_name.replace('-', '_')}", (_base,), {"name": _name, "norm": _norm})
        register_attack(_name, _base.backend)(_cls)


class TorchattacksByName(_TorchattacksRun, Attack):
    """Any torchattacks class by name; keyword parameters go to its constructor with ``eps``."""

    backend = "torchattacks"

    def __init__(self, model: nn.Module, cls_name: str, /, **params: Any) -> None:
        options: AttackOptions = {k: params.pop(k) for k in list(params) if k in AttackOptions.__annotations__}  # type: ignore[assignment]
        super().__init__(model, **options)
        self.name = f"torchattacks:{cls_name}"  # type: ignore[misc]
        self.norm = _torchattacks_norm(cls_name, params)  # type: ignore[misc]
        self.cls_name = cls_name
        self.kwargs = params

    def params(self) -> dict[str, Any]:
        return {**self.kwargs, "targeted": self.targeted}

    def perturb(self, x: torch.Tensor, y: torch.Tensor, eps: float, stop_early: bool = False) -> torch.Tensor:
        import torchattacks

        cls = getattr(torchattacks, self.cls_name)
        kwargs = dict(self.kwargs)
        if "seed" in cls.__init__.__code__.co_varnames:
            kwargs.setdefault("seed", self.seed)
        try:
            atk = cls(self.model, eps=eps, **kwargs)
        except TypeError as err:
            raise AttackParameterError(
                "params", f"torchattacks.{self.cls_name} rejected its parameters ({err}); check the spec's attack fields"
            ) from None
        return self._run_torchattacks(atk, x, y)


def _check_torchattacks(cls_name: str) -> None:
    import torchattacks

    if not isinstance(getattr(torchattacks, cls_name, None), type):
        raise UnknownAttack(f"torchattacks has no attack {cls_name!r}; see torchattacks.__all__ (e.g. torchattacks:AutoAttack)")


def _torchattacks_norm(cls_name: str, params: dict[str, Any]) -> Norm:
    """L2 for the classes that measure eps in L2 (by name, or their ``norm`` parameter), else L-inf."""
    if str(params.get("norm", "")).upper() == "L2":
        return "l2"
    return "l2" if cls_name in ("PGDL2", "CW", "DeepFool", "EOTPGDL2") or cls_name.endswith("L2") else "linf"


register_prefix(PrefixBackend("torchattacks:", "torchattacks", _check_torchattacks, TorchattacksByName, _torchattacks_norm))
