"""The same attacks run by torchattacks and foolbox, behind the :class:`Attack` interface.

They are the reference implementations the native engine is checked against, and a way to
run any torchattacks attack (``torchattacks:AutoAttack``) through the sweep runner. The
libraries are imported only when an attack of theirs runs.
"""

from __future__ import annotations

import difflib
import inspect
import re
from typing import Any

import torch
import torch.nn as nn

from robust_attn.attacks.base import Attack, AttackOptions, IterativeAttack, Norm
from robust_attn.attacks.registry import PrefixBackend, UnknownAttack, register_attack, register_prefix
from robust_attn.epsilon import parse_eps
from robust_attn.errors import AttackParameterError, SpecError


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
        params = torchattacks_params(cls_name, params)
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
    """The norm of the class's eps: its ``norm`` parameter (Linf, L2, L1), else L2 for the classes
    named for it (PGDL2), else L-inf."""
    norm = str(params.get("norm", "")).upper()
    if norm in ("L2", "L1"):
        return "l2" if norm == "L2" else "l1"
    return "l2" if cls_name in ("PGDL2", "CW", "DeepFool", "EOTPGDL2") or cls_name.endswith("L2") else "linf"


_SUPPLIED = ("model", "eps")  # what the runner passes every torchattacks class itself
_ARGUMENT = re.compile(r"^\s*(\w+)\s*\([^)]*\)\s*:(.*)$")
_CHOICES = re.compile(r"\[((?:\s*'[^']*'\s*,)*\s*'[^']*'\s*)\]")


def torchattacks_params(cls_name: str, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` checked against torchattacks.<cls_name> before any work: names against its
    constructor's signature, types against its defaults (torchattacks annotates none), and values
    against the choices its docstring declares (``norm (str): ... ['Linf', 'L2']``). Returns them
    converted (a float parameter may be written '2/255'); raises :class:`AttackParameterError`."""
    import torchattacks

    cls = getattr(torchattacks, cls_name)
    signature = inspect.signature(cls).parameters
    if "eps" not in signature:
        raise AttackParameterError(
            "eps",
            f"torchattacks.{cls_name} takes no eps (it is not an eps-ball attack), so a sweep cannot run it "
            "at an eps grid; use a class that takes eps, e.g. torchattacks:PGD or torchattacks:Square",
        )
    accepted = {n: p for n, p in signature.items() if n not in _SUPPLIED and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    choices = _declared_choices(cls)
    out = {}
    for name, value in params.items():
        if name not in accepted:
            hint = f"did you mean {close[0]!r}? " if (close := difflib.get_close_matches(name, accepted, n=1)) else ""
            raise AttackParameterError(
                name,
                f"torchattacks.{cls_name} takes no parameter {name!r}; {hint}it takes: {', '.join(accepted)} (eps comes from the eps grid)",
            )
        out[name] = _like_default(cls_name, name, accepted[name].default, value, choices.get(name))
    missing = [n for n, p in accepted.items() if p.default is inspect.Parameter.empty and n not in out]
    if missing:
        raise AttackParameterError(
            missing[0], f"torchattacks.{cls_name} needs {missing[0]!r}, which has no default; give it in the attack table"
        )
    return out


def _like_default(cls_name: str, name: str, default: Any, value: Any, choices: tuple[str, ...] | None) -> Any:
    """``value`` of the default's type (bool, int, a number, a string among ``choices``, a tuple of
    the default's length); parameters without a usable default take any value."""
    where = f"torchattacks.{cls_name} parameter {name}"
    if isinstance(default, bool):
        ok = isinstance(value, bool)
        want = "true or false"
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
        want = "an integer"
    elif isinstance(default, float):
        try:
            return float(parse_eps(value, max_eps=None)) if isinstance(value, str) else _number(value)
        except (SpecError, TypeError):
            raise AttackParameterError(name, f"{where} must be a number (or 'a/b'), got {value!r}") from None
    elif isinstance(default, str):
        ok = isinstance(value, str) and (choices is None or value in choices)
        want = "one of " + ", ".join(repr(c) for c in choices) if choices else "a string"
    elif isinstance(default, tuple):
        ok = isinstance(value, (list, tuple)) and len(value) == len(default) and all(type(v) is type(d) for v, d in zip(value, default))
        want = f"a list like {list(default)!r}"
        value = tuple(value) if ok else value
    else:
        return value  # no default, None or a class: torchattacks checks it when the attack is built
    if not ok:
        raise AttackParameterError(name, f"{where} must be {want}, got {value!r}")
    return value


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(value)
    return float(value)


def _declared_choices(cls: type) -> dict[str, tuple[str, ...]]:
    """Parameter -> the values the class's docstring lists for it (``loss (str): ... ['ce', 'dlr']``);
    kept only where the constructor's default is among them, so prose in brackets is not read as choices."""
    defaults = {n: p.default for n, p in inspect.signature(cls).parameters.items()}
    out = {}
    for line in (inspect.getdoc(cls) or "").splitlines():
        argument = _ARGUMENT.match(line)
        found = _CHOICES.search(argument.group(2)) if argument else None
        if argument and found:
            values = tuple(v.strip().strip("'") for v in found.group(1).split(","))
            if defaults.get(argument.group(1)) in values:
                out[argument.group(1)] = values
    return out


def _torchattacks_param_names(cls_name: str) -> set[str]:
    import torchattacks

    return {n for n in inspect.signature(getattr(torchattacks, cls_name)).parameters if n not in _SUPPLIED}


register_prefix(
    PrefixBackend(
        "torchattacks:",
        "torchattacks",
        _check_torchattacks,
        TorchattacksByName,
        _torchattacks_norm,
        torchattacks_params,
        _torchattacks_param_names,
    )
)
