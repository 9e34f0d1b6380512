"""Attacks behind one interface, registered by name and backend (native, torchattacks, foolbox)."""

from robust_attn.attacks import external, native  # noqa: F401  (registers the attacks)
from robust_attn.attacks.base import MODES, PRECISIONS, Attack, Mode, Precision, SweepBatch
from robust_attn.attacks.eps import parse_eps
from robust_attn.attacks.registry import BACKENDS, check_attack, create_attack, list_attacks, register_attack

__all__ = [
           "BACKENDS",
           "MODES",
           "PRECISIONS",
           "Attack",
           "Mode",
           "Precision",
           "SweepBatch",
           "check_attack",
           "create_attack",
           "list_attacks",
           "parse_eps",
           "register_attack",
]  # fmt: skip
