"""robust-attn: adversarial-robustness evaluation of Learn-To-Pay-Attention CNNs.

Public API::

    import robust_attn as ra
    model = ra.create_model("vgg-att3-pc", num_classes=10, width=0.25)
    model, meta = ra.load_model("builtin/vgg-att3-pc")      # zoo, trained on demand
    test = ra.load_dataset("builtin", "test", n=1000)
    attack = ra.create_attack("pgd", model, steps=10)        # native, torchattacks or foolbox
    out = attack.sweep(x, y, [0, 2/255, 8/255])              # per-sample outcomes, worst-case
    run = ra.run_sweep(ra.load_spec("attacks/quickstart.toml"))
    ra.make_report(run)                                       # report.pdf, report.md, summary.csv
"""

from robust_attn.attacks import Attack, create_attack, list_attacks, parse_eps, register_attack
from robust_attn.checkpoint import CheckpointError, load_checkpoint, read_metadata, save_checkpoint
from robust_attn.data import ImageDataset, list_datasets, load_dataset
from robust_attn.device import resolve_device
from robust_attn.evaluate import clean_accuracy, predict
from robust_attn.models import AttentionOutput, create_model, fold_batchnorm, list_models, register_model
from robust_attn.quickstart import quickstart
from robust_attn.reports import load_run, make_report
from robust_attn.sweeps import SweepSpec, load_spec, parse_spec, run_sweep
from robust_attn.training import RECIPES, Recipe, get_recipe, train_model
from robust_attn.zoo import QUICK_ZOO, ZOO, load_model, train_entries, train_entry, zoo_home

__version__ = "0.1.0"

__all__ = [
    "QUICK_ZOO",
    "RECIPES",
    "ZOO",
    "Attack",
    "AttentionOutput",
    "CheckpointError",
    "ImageDataset",
    "Recipe",
    "SweepSpec",
    "__version__",
    "clean_accuracy",
    "create_attack",
    "create_model",
    "fold_batchnorm",
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
