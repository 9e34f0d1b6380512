"""Evaluations registered by (name, backend): attacks, and evaluations of other kinds (common
corruptions), each class declaring its kind; a backend may also serve every name under a prefix
(``torchattacks:<Class>``). The registry knows no backend: backends register themselves."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import torch.nn as nn

from robust_attn.attacks.base import Attack, AttackOptions, AttackTraits, Evaluation
from robust_attn.attacks.params import coerce_options, coerce_params, parameter_hints
from robust_attn.errors import AttackParameterError, SpecError, UsageError

_ATTACKS: dict[tuple[str, str], type[Evaluation]] = {}
_BACKENDS: list[str] = []
A = TypeVar("A", bound=type[Evaluation])


@dataclass(frozen=True)
class PrefixBackend:
    """A backend that serves ``prefix + suffix`` for any suffix it can check."""

    prefix: str
    backend: str
    check: Callable[[str], None]  # raises UnknownAttack naming the fix for an unknown suffix
    cls: type[Attack]  # built as cls(model, suffix, **params); its class traits apply to every suffix
    norm: Callable[[str, dict[str, Any]], str]  # (suffix, params) -> "linf" or "l2"
    params: Callable[[str, dict[str, Any]], dict[str, Any]] | None = None  # (suffix, params) -> checked params; raises AttackParameterError
    param_names: Callable[[str], set[str]] | None = None  # suffix -> the parameters it takes

    def create(self, model: nn.Module, suffix: str, **params: Any) -> Attack:
        build: Callable[..., Attack] = self.cls  # its constructor takes (model, suffix, **params)
        return build(model, suffix, **params)


_PREFIXES: dict[str, PrefixBackend] = {}


def register_backend(name: str) -> None:
    """Declare a backend name (idempotent)."""
    if name not in _BACKENDS:
        _BACKENDS.append(name)


def backends() -> tuple[str, ...]:
    return tuple(_BACKENDS)


def register_attack(name: str, backend: str) -> Callable[[A], A]:
    """Class decorator: make ``cls`` available as ``create_evaluation(name, backend=backend)`` (and,
    for an :class:`Attack`, ``create_attack``)."""

    def add(cls: A) -> A:
        if (name, backend) in _ATTACKS:
            raise ValueError(f"attack {name!r} is already registered for backend {backend!r}")  # a programming error
        register_backend(backend)
        _ATTACKS[(name, backend)] = cls
        return cls

    return add


def register_prefix(handler: PrefixBackend) -> None:
    """Let ``handler`` serve every attack name starting with its prefix."""
    register_backend(handler.backend)
    _PREFIXES[handler.prefix] = handler


def list_attacks(backend: str | None = None) -> list[str]:
    """Registered attack names (for one backend, or all)."""
    return sorted({n for n, b in _ATTACKS if backend is None or b == backend})


def _prefix(name: str) -> tuple[PrefixBackend, str] | None:
    for prefix, handler in _PREFIXES.items():
        if name.startswith(prefix):
            return handler, name[len(prefix) :]
    return None


class UnknownAttack(SpecError):
    """An attack name or backend that nothing is registered under."""


def check_attack(name: str, backend: str = "native") -> None:
    """Raise a one-line :class:`UnknownAttack` naming the known attacks/backends when ``name`` is unknown."""
    served = _prefix(name)
    if served is not None:
        served[0].check(served[1])
        return
    if backend not in _BACKENDS:
        raise UnknownAttack(f"unknown backend {backend!r}; use one of: {', '.join(_BACKENDS)}")
    if (name, backend) not in _ATTACKS:
        known = ", ".join(list_attacks(backend))
        others = "".join(f", or {p}<Class>" for p in _PREFIXES)
        raise UnknownAttack(f"unknown attack {name!r} for backend {backend!r}; known: {known}{others}")


def attack_class(name: str, backend: str = "native") -> type[Evaluation]:
    check_attack(name, backend)
    return _ATTACKS[(name, backend)]


def attack_norm(name: str, backend: str = "native", params: dict[str, Any] | None = None) -> str:
    """The threat model of an attack's eps: ``linf``, ``l2`` or ``l1``."""
    return attack_traits(name, backend, params).norm


class _DryModel(nn.Module):
    """A stand-in model to build an attack without one: constructors check their parameters' values
    (steps >= 1, a known loss, ...) and instances report traits their parameters refine (eot > 1:
    randomized) before any model is loaded."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(1, 2)


def dry_evaluation(name: str, backend: str = "native", params: dict[str, Any] | None = None) -> Evaluation:
    """The evaluation built on a stand-in model: its parameters checked, its traits readable."""
    return create_evaluation(name, _DryModel(), backend=backend, **(params or {}))


def attack_traits(name: str, backend: str = "native", params: dict[str, Any] | None = None) -> AttackTraits:
    """What attack ``name`` can do with these parameters: its class's declaration, refined by the
    instance (an APGD with eot > 1 is randomized; a torchattacks class's norm comes from its name)."""
    served = _prefix(name)
    if served is not None:
        return replace(served[0].cls.class_traits(), norm=served[0].norm(served[1], params or {}))
    return dry_evaluation(name, backend, params).traits()


def accepted_params(name: str, backend: str = "native") -> set[str] | None:
    """The parameters an attack takes, read from its signature (a prefix backend's from the
    library class's); None for a prefix backend that does not declare them."""
    served = _prefix(name)
    if served is not None:
        served[0].check(served[1])
        return served[0].param_names(served[1]) if served[0].param_names is not None else None
    return set(parameter_hints(attack_class(name, backend)))


def check_params(name: str, backend: str, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` checked against the attack's signature (names and types), converted (eps-valued
    strings to floats); a prefix backend checks them against the library class it serves."""
    served = _prefix(name)
    if served is not None:
        served[0].check(served[1])
        options = {k: v for k, v in params.items() if k in AttackOptions.__annotations__}
        rest = {k: v for k, v in params.items() if k not in options}
        checked = served[0].params(served[1], rest) if served[0].params is not None else rest
        return {**checked, **coerce_options(options)}
    try:
        return coerce_params(attack_class(name, backend), params)
    except AttackParameterError as err:
        raise AttackParameterError(err.param, f"attack {name!r} ({backend}) {err}" if str(err).startswith("takes") else str(err)) from None


def create_evaluation(name: str, model: nn.Module, backend: str = "native", **params: Any) -> Evaluation:
    """Build a registered evaluation (an attack, or another kind) by name; a parameter it does not
    take is a one-line error listing the ones it does."""
    served = _prefix(name)
    if served is not None:
        served[0].check(served[1])
        return served[0].create(model, served[1], **params)
    params = check_params(name, backend, params)
    return attack_class(name, backend)(model, **params)


def create_attack(name: str, model: nn.Module, backend: str = "native", **params: Any) -> Attack:
    """Build an attack by name, e.g. ``create_attack("pgd", model, steps=20)``; a parameter the
    attack does not take is a one-line error listing the ones it does. An evaluation of another
    kind (``corruptions``) is refused: it perturbs nothing, use :func:`create_evaluation`."""
    built = create_evaluation(name, model, backend, **params)
    if not isinstance(built, Attack):
        raise UsageError(
            f"{name!r} is an evaluation of kind {built.kind_of()}, not an attack (it has no eps); run it in a sweep "
            "([[attacks]] name = ...) or build it with robust_attn.create_evaluation"
        )
    return built
