"""Attacks registered by (name, backend); ``torchattacks:<Class>`` runs any torchattacks attack."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import torch.nn as nn

from robust_attn.attacks.base import Attack

BACKENDS = ("native", "torchattacks", "foolbox")
_ATTACKS: dict[tuple[str, str], type[Attack]] = {}
_BY_NAME_PREFIX = "torchattacks:"
A = TypeVar("A", bound=type[Attack])


def register_attack(name: str, backend: str) -> Callable[[A], A]:
    """Class decorator: make ``cls`` available as ``create_attack(name, backend=backend)``."""

    def add(cls: A) -> A:
        if (name, backend) in _ATTACKS:
            raise ValueError(f"attack {name!r} is already registered for backend {backend!r}")
        _ATTACKS[(name, backend)] = cls
        return cls

    return add


def list_attacks(backend: str | None = None) -> list[str]:
    """Registered attack names (for one backend, or all)."""
    return sorted({n for n, b in _ATTACKS if backend is None or b == backend})


def check_attack(name: str, backend: str = "native") -> None:
    """Raise a one-line error naming the known attacks/backends when ``name`` is unknown."""
    if name.startswith(_BY_NAME_PREFIX):
        import torchattacks

        cls_name = name[len(_BY_NAME_PREFIX) :]
        if not isinstance(getattr(torchattacks, cls_name, None), type):
            raise KeyError(f"torchattacks has no attack {cls_name!r}; see torchattacks.__all__ (e.g. torchattacks:AutoAttack)")
        return
    if backend not in BACKENDS:
        raise KeyError(f"unknown backend {backend!r}; use one of: {', '.join(BACKENDS)}")
    if (name, backend) not in _ATTACKS:
        known = ", ".join(list_attacks(backend))
        raise KeyError(f"unknown attack {name!r} for backend {backend!r}; known: {known}, or torchattacks:<Class>")


def create_attack(name: str, model: nn.Module, backend: str = "native", **params: Any) -> Attack:
    """Build an attack by name, e.g. ``create_attack("pgd", model, steps=20)``."""
    check_attack(name, backend)
    if name.startswith(_BY_NAME_PREFIX):
        from robust_attn.attacks.external import TorchattacksByName

        return TorchattacksByName(model, name[len(_BY_NAME_PREFIX) :], **params)
    return _ATTACKS[(name, backend)](model, **params)
