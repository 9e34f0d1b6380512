"""Other people's models by name: ``robustbench:<name>`` and ``timm:<name>``.

:func:`register_hub_sources` adds both to the model-source registry of :mod:`robust_attn.resolve`.

Where RobustBench's model definitions come from (the choice, and why)
---------------------------------------------------------------------
We build RobustBench models from RobustBench's own ``model_zoo`` (its entries and architecture
classes, normalisation inside each model), importing **whatever package is importable as
``robustbench``**, and we declare no RobustBench dependency: torchattacks (already required)
ships a copy of RobustBench under that import name (``robustbench/model_zoo`` with the CIFAR-10
Linf, L2 and corruptions leaderboards, CIFAR-100 and ImageNet: 57 + 18 + 17 CIFAR-10 entries in
torchattacks 3.4.0 to 3.5.1), in pure PyTorch. Only ``robustbench.model_zoo`` is imported; the
package's ``__init__`` never runs: it imports RobustBench's data loaders, which need
``pkg_resources`` (setuptools 84 no longer ships it), and in 1.1.1 also ``autoattack``, which
none of its declared dependencies provides (``pyautoattack`` installs as ``pyautoattack``).

Rejected: depending on ``robustbench`` from PyPI (1.1.1): it pins ``timm==1.0.9`` and
``gdown==5.1.0`` (no current timm beside it), installs a top-level ``tests`` package, and writes
its files over torchattacks' copy in the same ``site-packages/robustbench`` folder (uninstalling
either then breaks the other). A git dependency on RobustBench's master: PyPI refuses direct
references, it needs network access to GitHub at install time, and it pins an AutoAttack fork
from git too. Copying the definitions into this package: we copy no code.

Whoever wants RobustBench's newer entries (76 CIFAR-10 Linf in 1.1.1) can add them without its
pins: ``pip install --no-deps robustbench==1.1.1 torchdiffeq geotorch`` (its ``model_zoo`` imports
and builds with timm 1.0.31; timm only warns about deprecated imports; it replaces torchattacks'
copy, which torchattacks itself never imports); the loader here uses it unchanged, since it reads
only ``model_zoo``.

pyproject changes this package needs
------------------------------------
``dependencies``: ``"torchattacks>=3.4"`` (already ``>=3.5``: nothing to change; it is the one
that carries RobustBench's definitions). ``[project.optional-dependencies]``: a new
``hub = ["timm>=1.0.9"]``, and ``"timm>=1.0.9"`` added to ``test`` and ``dev``. A fresh
``pip install torch==2.14.1 torchvision==0.29.1 -e ".[test]"`` then resolves to timm 1.0.31 with
torch 2.14.1 (checked with ``pip install --dry-run --ignore-installed``: idna 2.10 and
httpx2 2.3.0 keep torchattacks' ``requests~=2.25.1`` satisfied).
"""

from __future__ import annotations

from robust_attn.hub.robustbench_source import (
    cache_file,
    check_robustbench,
    default_model_dir,
    load_robustbench,
    recorded_robustbench,
    skeleton_robustbench,
    weight_files,
)
from robust_attn.hub.robustbench_zoo import RobustBenchRef, is_robustbench_ref, list_robustbench, parse_ref, zoo_location
from robust_attn.hub.timm_source import NormalizedClassifier, check_timm, is_timm_ref, load_timm, qualify_timm, skeleton_timm

__all__ = [
    "NormalizedClassifier",
    "RobustBenchRef",
    "cache_file",
    "default_model_dir",
    "list_robustbench",
    "load_robustbench",
    "load_timm",
    "parse_ref",
    "recorded_robustbench",
    "register_hub_sources",
    "weight_files",
    "zoo_location",
]


def qualify_robustbench(ref: str, options: dict[str, object], context: dict[str, object]) -> tuple[str, dict[str, object]]:
    """``robustbench:NAME`` with the model table's ``dataset`` / ``threat_model`` -> the exact
    ``robustbench:DATASET/THREAT_MODEL/NAME``. What the table leaves out defaults to what the
    reference writes, then to the spec's data set and attacks (``context``), then to cifar10/Linf;
    a table option that contradicts the reference is an error."""
    from robust_attn.hub.robustbench_zoo import DATASETS, THREAT_MODELS

    rest = dict(options)
    given = {k: rest.pop(k) for k in ("dataset", "threat_model") if k in rest}
    words = [w.lower() for w in ref.removeprefix("robustbench:").split("/")[:-1]]
    written = {"dataset": any(w in DATASETS for w in words), "threat_model": any(w in (t.lower() for t in THREAT_MODELS) for w in words)}
    chosen = {k: given.get(k) or (None if written[k] else context.get(k)) for k in ("dataset", "threat_model")}
    if chosen["dataset"] not in (None, *DATASETS):
        chosen["dataset"] = None  # the spec's data set is not a RobustBench one (builtin): the reference's default
    rb = parse_ref(ref, chosen["dataset"], chosen["threat_model"])  # type: ignore[arg-type]
    return rb.ref, rest


def register_hub_sources() -> None:
    """Register ``robustbench:<name>`` and ``timm:<name>`` with :mod:`robust_attn.resolve`."""
    from robust_attn.model_sources import ModelSource, register_source

    register_source(
        ModelSource(
            "robustbench:<name>",
            is_robustbench_ref,
            check_robustbench,
            load_robustbench,
            recorded_robustbench,
            skeleton_robustbench,
            qualify_robustbench,
            kind="robustbench",
        )
    )
    register_source(
        ModelSource("timm:<name>", is_timm_ref, check_timm, load_timm, lambda ref: None, skeleton_timm, qualify_timm, kind="timm")
    )
