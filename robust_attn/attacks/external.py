"""The same attacks run by torchattacks and foolbox, behind the :class:`Attack` interface.

They are the reference implementations the native engine is checked against, and a way to
run any torchattacks attack (``torchattacks:AutoAttack``) through the sweep runner.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from robust_attn.attacks.base import Attack, Precision
from robust_attn.attacks.registry import register_attack


class _ParamAttack(Attack):
    """Shared constructor for backends that forward FGSM/PGD parameters."""

    def __init__(
        self,
        model: nn.Module,
        *,
        steps: int = 10,
        alpha: float | None = None,
        random_start: bool = True,
        restarts: int = 1,
        targeted: bool = False,
        seed: int = 0,
        precision: Precision = "fp32",
        channels_last: bool = False,
    ) -> None:
        super().__init__(model, targeted=targeted, seed=seed, precision=precision, channels_last=channels_last)
        if restarts != 1:
            raise ValueError(f"restarts={restarts} is only supported by the native backend")
        self.steps, self.alpha, self.random_start = steps, alpha, random_start

    def params(self) -> dict[str, Any]:
        if self.name == "fgsm":
            return {"targeted": self.targeted}
        alpha = self.alpha if self.alpha is not None else "2.5*eps/steps"
        return {"steps": self.steps, "alpha": alpha, "random_start": self.random_start, "restarts": 1, "targeted": self.targeted}

    def step_size(self, eps: float) -> float:
        return self.alpha if self.alpha is not None else 2.5 * eps / self.steps

    def _seed_global(self) -> None:
        # both libraries draw random starts from torch's global generator
        torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=self.generator)))


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
        self._seed_global()
        return atk(x, y)


@register_attack("fgsm", "torchattacks")
class TorchattacksFGSM(_Torchattacks):
    name = "fgsm"


@register_attack("pgd", "torchattacks")
class TorchattacksPGD(_Torchattacks):
    name = "pgd"


@register_attack("pgd-l2", "torchattacks")
class TorchattacksPGDL2(_Torchattacks):
    name = "pgd-l2"
    norm = "l2"


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
        self._seed_global()
        _, clipped, _ = self.build(eps)(fmodel, x, criterion, epsilons=eps)
        return clipped.detach()


@register_attack("fgsm", "foolbox")
class FoolboxFGSM(_Foolbox):
    name = "fgsm"


@register_attack("pgd", "foolbox")
class FoolboxPGD(_Foolbox):
    name = "pgd"


@register_attack("pgd-l2", "foolbox")
class FoolboxPGDL2(_Foolbox):
    name = "pgd-l2"
    norm = "l2"


class TorchattacksByName(Attack):
    """Any torchattacks class by name; keyword parameters go to its constructor with ``eps``."""

    backend = "torchattacks"

    def __init__(self, model: nn.Module, cls_name: str, *, targeted: bool = False, seed: int = 0,
                 precision: Precision = "fp32", channels_last: bool = False, **kwargs: Any) -> None:  # fmt: skip
        super().__init__(model, targeted=targeted, seed=seed, precision=precision, channels_last=channels_last)
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
        self._seed()
        return atk(x, y)

    def _seed(self) -> None:
        torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=self.generator)))
