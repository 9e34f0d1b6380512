"""robust-attn: adversarial-robustness evaluation of Learn-To-Pay-Attention CNNs.

Public API::

    import robust_attn as ra
    model = ra.create_model("vgg-att3-pc", num_classes=10, width=0.25)
    model, card = ra.load_model("builtin/vgg-att3-pc")      # zoo (trained on demand), checkpoint, import spec, timm:, robustbench:
    test = ra.load_dataset("builtin", "test", n=1000)
    attack = ra.create_attack("pgd", model, steps=10)        # native, torchattacks or foolbox
    out = attack.sweep(x, y, [0, 2/255, 8/255])              # per-sample outcomes, worst-case
    run_dir = ra.run_sweep(ra.load_spec("attacks/quickstart.toml"))
    run = ra.load_run(run_dir)                               # results, per-sample table, probes
    ra.make_report(run_dir)                                  # report.pdf, report.md, summary.csv

Importing the package loads nothing heavy and changes no global state: each name is imported
from its module on first use (PEP 562).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "Attack": "robust_attn.attacks",
    "create_attack": "robust_attn.attacks",
    "create_evaluation": "robust_attn.attacks",
    "Evaluation": "robust_attn.attacks",
    "list_attacks": "robust_attn.attacks",
    "register_attack": "robust_attn.attacks",
    "parse_eps": "robust_attn.epsilon",
    "format_eps": "robust_attn.epsilon",
    "CheckpointError": "robust_attn.errors",
    "RobustAttnError": "robust_attn.errors",
    "load_checkpoint": "robust_attn.checkpoint",
    "read_metadata": "robust_attn.checkpoint",
    "save_checkpoint": "robust_attn.checkpoint",
    "ImageDataset": "robust_attn.data",
    "list_datasets": "robust_attn.data",
    "load_dataset": "robust_attn.data",
    "resolve_device": "robust_attn.device",
    "clean_accuracy": "robust_attn.evaluate",
    "predict": "robust_attn.evaluate",
    "AttentionOutput": "robust_attn.models",
    "create_model": "robust_attn.models",
    "fold_batchnorm": "robust_attn.models",
    "list_models": "robust_attn.models",
    "register_model": "robust_attn.models",
    "quickstart": "robust_attn.quickstart",
    "Report": "robust_attn.reports",
    "make_report": "robust_attn.reports",
    "Run": "robust_attn.rundir",
    "RunDirError": "robust_attn.errors",
    "load_run": "robust_attn.rundir",
    "SweepSpec": "robust_attn.sweeps",
    "load_spec": "robust_attn.sweeps",
    "parse_spec": "robust_attn.sweeps",
    "run_sweep": "robust_attn.sweeps",
    "RECIPES": "robust_attn.training",
    "Recipe": "robust_attn.training",
    "get_recipe": "robust_attn.training",
    "train_model": "robust_attn.training",
    "QUICK_ZOO": "robust_attn.zoo",
    "ZOO": "robust_attn.zoo",
    "load_model": "robust_attn.resolve",
    "ModelCard": "robust_attn.card",
    "train_entries": "robust_attn.zoo",
    "train_entry": "robust_attn.zoo",
    "zoo_home": "robust_attn.zoo",
}

__all__ = [
    "QUICK_ZOO",
    "RECIPES",
    "ZOO",
    "Attack",
    "AttentionOutput",
    "CheckpointError",
    "Evaluation",
    "ImageDataset",
    "ModelCard",
    "Recipe",
    "Report",
    "RobustAttnError",
    "Run",
    "RunDirError",
    "SweepSpec",
    "__version__",
    "clean_accuracy",
    "create_attack",
    "create_evaluation",
    "create_model",
    "fold_batchnorm",
    "format_eps",
    "get_recipe",
    "list_attacks",
    "list_datasets",
    "list_models",
    "load_checkpoint",
    "load_dataset",
    "load_model",
    "load_run",
    "load_spec",
    "make_report",
    "parse_eps",
    "parse_spec",
    "predict",
    "quickstart",
    "read_metadata",
    "register_attack",
    "register_model",
    "resolve_device",
    "run_sweep",
    "save_checkpoint",
    "train_entries",
    "train_entry",
    "train_model",
    "zoo_home",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'robust_attn' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
    from robust_attn.attacks import Attack, Evaluation, create_attack, create_evaluation, list_attacks, register_attack
    from robust_attn.card import ModelCard
    from robust_attn.checkpoint import load_checkpoint, read_metadata, save_checkpoint
    from robust_attn.data import ImageDataset, list_datasets, load_dataset
    from robust_attn.device import resolve_device
    from robust_attn.epsilon import format_eps, parse_eps
    from robust_attn.errors import CheckpointError, RobustAttnError, RunDirError
    from robust_attn.evaluate import clean_accuracy, predict
    from robust_attn.models import AttentionOutput, create_model, fold_batchnorm, list_models, register_model
    from robust_attn.quickstart import quickstart
    from robust_attn.reports import Report, make_report
    from robust_attn.resolve import load_model
    from robust_attn.rundir import Run, load_run
    from robust_attn.sweeps import SweepSpec, load_spec, parse_spec, run_sweep
    from robust_attn.training import RECIPES, Recipe, get_recipe, train_model
    from robust_attn.zoo import QUICK_ZOO, ZOO, train_entries, train_entry, zoo_home
