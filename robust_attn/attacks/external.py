"""The same attacks run by torchattacks and foolbox, behind the :class:`Attack` interface.

They are the reference implementations the native engine is checked against, and a way to
run any torchattacks attack (``torchattacks:AutoAttack``) through the sweep runner.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from robust_attn.attacks.base import Attack, IterativeAttack, Precision
from robust_attn.attacks.registry import register_attack


class _ParamAttack(IterativeAttack):
    """Library attacks take FGSM/PGD parameters but not restarts."""

    def __init__(self, model: nn.Module, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        if self.restarts != 1:
            raise ValueError(f"restarts={self.restarts} is only supported by the native backend")

    def params(self) -> dict[str, Any]:
        return {"targeted": self.targeted} if self.name == "fgsm" else super().params()


class _Torchattacks(_ParamAttack):
    backend = "torchattacks"

    def build(self, eps: float) -> Any:
        import torchattacks

        if self.name == "fgsm":
            return torchattacks.FGSM(self.model, eps=eps)
        cls = torchattacks.PGD if self.name == "pgd" else torchattacks.PGDL2
        return cls(self.model, eps=eps, alpha=self.step_size(eps), steps=self.steps, random_start=self.random_start)

    def perturb(self, x: torch.Tensor, y: torch.Tensor, eps: float, stop_early: bool = False) -> torch.Tensor:
        atk = self.build(eps)
        if self.targeted:
            atk.set_mode_targeted_by_label(quiet=True)
        self.seed_global_rng()
        return atk(x, y)


class _Foolbox(_ParamAttack):
    backend = "foolbox"

    def build(self, eps: float) -> Any:
        import foolbox as fb

        if self.name == "fgsm":
            return fb.attacks.FGSM()
        cls = fb.attacks.LinfPGD if self.name == "pgd" else fb.attacks.L2PGD
        return cls(abs_stepsize=self.step_size(eps), steps=self.steps, random_start=self.random_start)

    def perturb(self, x: torch.Tensor, y: torch.Tensor, eps: float, stop_early: bool = False) -> torch.Tensor:
        import foolbox as fb

        fmodel = fb.PyTorchModel(self.model, bounds=(0, 1), device=self.device)
        criterion = fb.criteria.TargetedMisclassification(y) if self.targeted else fb.criteria.Misclassification(y)
        self.seed_global_rng()
        _, clipped, _ = self.build(eps)(fmodel, x, criterion, epsilons=eps)
        return clipped.detach()


for _backend, _base in (("torchattacks", _Torchattacks), ("foolbox", _Foolbox)):
    for _name, _norm in (("fgsm", "linf"), ("pgd", "linf"), ("pgd-l2", "l2")):
        _cls = type(f"{_base.__name__[1:]}_{_name.replace('-', '_')}", (_base,), {"name": _name, "norm": _norm})
        register_attack(_name, _backend)(_cls)


class TorchattacksByName(Attack):
    """Any torchattacks class by name; keyword parameters go to its constructor with ``eps``."""

    backend = "torchattacks"

    def __init__(self, model: nn.Module, cls_name: str, *, targeted: bool = False, seed: int = 0,
                 precision: Precision = "fp32", channels_last: bool = False, fold_bn: bool = False, **kwargs: Any) -> None:  # fmt: skip
        super().__init__(model, targeted=targeted, seed=seed, precision=precision, channels_last=channels_last, fold_bn=fold_bn)
        self.name = f"torchattacks:{cls_name}"  # type: ignore[misc]
        self.cls_name = cls_name
        self.kwargs = kwargs

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
            raise ValueError(f"torchattacks.{self.cls_name} rejected its parameters ({err}); check the spec's attack fields") from None
        if self.targeted:
            atk.set_mode_targeted_by_label(quiet=True)
        self.seed_global_rng()
        return atk(x, y)
