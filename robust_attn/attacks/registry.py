"""Attacks registered by (name, backend); a backend may also serve every name under a prefix
(``torchattacks:<Class>``). The registry knows no backend: backends register themselves."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import torch.nn as nn

from robust_attn.attacks.base import Attack

_ATTACKS: dict[tuple[str, str], type[Attack]] = {}
_BACKENDS: list[str] = []
A = TypeVar("A", bound=type[Attack])


@dataclass(frozen=True)
class PrefixBackend:
    """A backend that serves ``prefix + suffix`` for any suffix it can check."""

    prefix: str
    backend: str
    check: Callable[[str], None]  # raises KeyError naming the fix for an unknown suffix
    create: Callable[..., Attack]  # (model, suffix, **params) -> Attack
    norm: Callable[[str, dict[str, Any]], str]  # (suffix, params) -> "linf" or "l2"


_PREFIXES: dict[str, PrefixBackend] = {}


def register_backend(name: str) -> None:
    """Declare a backend name (idempotent)."""
    if name not in _BACKENDS:
        _BACKENDS.append(name)


def backends() -> tuple[str, ...]:
    return tuple(_BACKENDS)


def register_attack(name: str, backend: str) -> Callable[[A], A]:
    """Class decorator: make ``cls`` available as ``create_attack(name, backend=backend)``."""

    def add(cls: A) -> A:
        if (name, backend) in _ATTACKS:
            raise ValueError(f"attack {name!r} is already registered for backend {backend!r}")
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


def check_attack(name: str, backend: str = "native") -> None:
    """Raise a one-line KeyError naming the known attacks/backends when ``name`` is unknown."""
    served = _prefix(name)
    if served is not None:
        served[0].check(served[1])
        return
    if backend not in _BACKENDS:
        raise KeyError(f"unknown backend {backend!r}; use one of: {', '.join(_BACKENDS)}")
    if (name, backend) not in _ATTACKS:
        known = ", ".join(list_attacks(backend))
        others = "".join(f", or {p}<Class>" for p in _PREFIXES)
        raise KeyError(f"unknown attack {name!r} for backend {backend!r}; known: {known}{others}")


def attack_class(name: str, backend: str = "native") -> type[Attack]:
    check_attack(name, backend)
    return _ATTACKS[(name, backend)]


def attack_norm(name: str, backend: str = "native", params: dict[str, Any] | None = None) -> str:
    """The threat model of an attack's eps: ``linf`` or ``l2``."""
    served = _prefix(name)
    if served is not None:
        return served[0].norm(served[1], params or {})
    return attack_class(name, backend).norm


def _accepted(cls: type[Attack]) -> set[str]:
    """Keyword parameters a class accepts: its own and its bases' up to :class:`Attack`, plus the shared options."""
    from robust_attn.attacks.base import AttackOptions

    names = set(AttackOptions.__annotations__)
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is not None:
            names |= {p.name for p in inspect.signature(init).parameters.values() if p.kind is p.KEYWORD_ONLY}
        if klass is Attack:
            break
    return names


def accepted_params(name: str, backend: str = "native", with_options: bool = True) -> set[str] | None:
    """The parameters an attack takes (``with_options=False``: its own and ``targeted``, without
    the options a sweep sets for every attack); None for prefix backends (they check when built)."""
    if _prefix(name) is not None:
        return None
    from robust_attn.attacks.base import AttackOptions

    accepted = _accepted(attack_class(name, backend))
    return accepted if with_options else (accepted - set(AttackOptions.__annotations__)) | {"targeted"}


def check_params(name: str, backend: str, params: dict[str, Any]) -> None:
    """Raise a one-line ValueError when the attack takes no parameter of that name (prefix
    backends check their own parameters when the attack is built)."""
    if _prefix(name) is not None:
        return
    cls = attack_class(name, backend)
    unknown = sorted(set(params) - _accepted(cls))
    if unknown:
        raise ValueError(f"attack {name!r} ({backend}) takes no parameter {unknown[0]!r}; it takes: {', '.join(sorted(_accepted(cls)))}")


def create_attack(name: str, model: nn.Module, backend: str = "native", **params: Any) -> Attack:
    """Build an attack by name, e.g. ``create_attack("pgd", model, steps=20)``; a parameter the
    attack does not take is a one-line error listing the ones it does."""
    served = _prefix(name)
    if served is not None:
        served[0].check(served[1])
        return served[0].create(model, served[1], **params)
    check_params(name, backend, params)
    return attack_class(name, backend)(model, **params)
