"""Attacks behind one interface, registered by name and backend (native, torchattacks, foolbox)."""

from robust_attn.attacks import apgd, ensemble, external, fab, fmn, native, presets, rapid, square  # noqa: F401  (registers the attacks)
from robust_attn.attacks.base import MODES, PRECISIONS, Attack, AttackOptions, AttackTraits, Evaluation, Mode, Precision, SweepBatch
from robust_attn.attacks.registry import (
    attack_norm,
    backends,
    check_attack,
    create_attack,
    create_evaluation,
    list_attacks,
    register_attack,
)
from robust_attn.corruptions import evaluation as _corruptions  # noqa: F401  (registers common corruptions, an evaluation of its own kind)
from robust_attn.epsilon import format_eps, parse_eps

__all__ = [
    "MODES",
    "PRECISIONS",
    "Attack",
    "AttackOptions",
    "AttackTraits",
    "Evaluation",
    "Mode",
    "Precision",
    "SweepBatch",
    "attack_norm",
    "backends",
    "check_attack",
    "create_attack",
    "create_evaluation",
    "format_eps",
    "list_attacks",
    "parse_eps",
    "register_attack",
]
