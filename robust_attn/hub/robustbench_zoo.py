"""RobustBench's own model definitions, and the ``robustbench:`` references that name them.

The definitions come from whatever package is importable as ``robustbench`` (torchattacks
ships a copy; see :mod:`robust_attn.hub` for why). Only its ``model_zoo`` subpackage is
imported, never the package's ``__init__``: that one pulls in RobustBench's data loaders,
which import ``pkg_resources`` (gone from setuptools) and, in 1.1.1, its AutoAttack fork.

A reference is ``robustbench:[DATASET/][THREAT_MODEL/]NAME``, mirroring RobustBench's own
layout ``<dataset>/<threat_model>/<name>.pt``; the dataset defaults to ``cifar10`` and the threat
model to ``Linf``, as in ``robustbench.utils.load_model``.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch.nn as nn

from robust_attn.errors import ModelError, first_line

PREFIX = "robustbench:"
DATASETS = ("cifar10", "cifar100", "imagenet")
THREAT_MODELS = ("Linf", "L2", "corruptions")
DEFAULT_DATASET, DEFAULT_THREAT_MODEL = "cifar10", "Linf"


@dataclass(frozen=True)
class RobustBenchRef:
    """One RobustBench zoo entry: where it sits in the leaderboard and in RobustBench's layout."""

    dataset: str
    threat_model: str
    name: str

    @property
    def ref(self) -> str:
        return f"{PREFIX}{self.dataset}/{self.threat_model}/{self.name}"

    @property
    def relative_path(self) -> Path:
        """Where RobustBench keeps the weights under its ``model_dir``."""
        return Path(self.dataset) / self.threat_model / f"{self.name}.pt"


def is_robustbench_ref(ref: str) -> bool:
    return ref.startswith(PREFIX)


def _threat_model(word: str) -> str | None:
    return next((t for t in THREAT_MODELS if t.lower() == word.lower()), None)


def parse_ref(ref: str, dataset: str | None = None, threat_model: str | None = None) -> RobustBenchRef:
    """``robustbench:[DATASET/][THREAT_MODEL/]NAME`` (options fill what the reference leaves out)."""
    parts = ref.removeprefix(PREFIX).split("/")
    name, qualifiers = parts[-1], parts[:-1]
    given: dict[str, str] = {}
    for word in qualifiers:
        key, value = ("dataset", word.lower()) if word.lower() in DATASETS else ("threat_model", _threat_model(word) or "")
        if not value or key in given:
            raise ModelError(
                f"bad RobustBench reference {ref!r}; write robustbench:[DATASET/][THREAT_MODEL/]NAME with DATASET in "
                f"{', '.join(DATASETS)} and THREAT_MODEL in {', '.join(THREAT_MODELS)}"
            )
        given[key] = value
    for key, option, known in (("dataset", dataset, DATASETS), ("threat_model", threat_model, THREAT_MODELS)):
        if option is None:
            continue
        value = option.lower() if key == "dataset" else (_threat_model(option) or option)
        if value not in known:
            raise ModelError(f"unknown RobustBench {key} {option!r} for {ref!r}; use one of {', '.join(known)}")
        if given.setdefault(key, value) != value:
            raise ModelError(f"{ref!r} names {key} {given[key]!r} but the option says {option!r}; drop one of them")
    if not name:
        raise ModelError(f"RobustBench reference {ref!r} names no model; write robustbench:NAME, e.g. robustbench:Standard")
    return RobustBenchRef(given.get("dataset", DEFAULT_DATASET), given.get("threat_model", DEFAULT_THREAT_MODEL), name)


def _import_models_module() -> Any:
    """``robustbench.model_zoo.models``, imported without running ``robustbench/__init__.py``."""
    spec = importlib.util.find_spec("robustbench") if "robustbench" not in sys.modules else None
    if "robustbench" not in sys.modules and spec is None:
        raise ModelError("RobustBench's model definitions are not installed; they come with torchattacks: pip install 'torchattacks>=3.5'")
    stub, before = None, set(sys.modules)
    if spec is not None:  # an unexecuted package object: its submodules import, its __init__ does not run
        stub = importlib.util.module_from_spec(spec)
        sys.modules["robustbench"] = stub
    try:
        return importlib.import_module("robustbench.model_zoo.models")
    except ImportError as err:
        where = spec.submodule_search_locations[0] if spec is not None and spec.submodule_search_locations else "robustbench"
        for key in set(sys.modules) - before:  # half-imported modules would poison the next attempt
            if key.startswith("robustbench."):
                del sys.modules[key]
        raise ModelError(
            f"cannot import RobustBench's model zoo from {where} ({first_line(err)}); install what it needs, or restore "
            "torchattacks' copy: pip install --force-reinstall --no-deps torchattacks==3.5.1"
        ) from None
    finally:
        if stub is not None and sys.modules.get("robustbench") is stub:
            del sys.modules["robustbench"]  # a later ``import robustbench`` runs the real package


@functools.cache
def _models_module() -> Any:
    return _import_models_module()


@functools.cache
def zoo() -> dict[str, dict[str, dict[str, dict[str, Any]]]]:
    """RobustBench's zoo as ``{dataset: {threat_model: {name: entry}}}``; an entry holds ``model``
    (a constructor) and ``gdrive_id`` (a Google Drive id, or a list of them for an ensemble)."""
    module = _models_module()
    return {ds.value: {tm.value: dict(entries) for tm, entries in tms.items()} for ds, tms in module.model_dicts.items()}


def zoo_location() -> str:
    """The folder the definitions were imported from (torchattacks' copy or a RobustBench install)."""
    return str(Path(_models_module().__file__ or "").parent)


def list_robustbench(dataset: str = DEFAULT_DATASET, threat_model: str = DEFAULT_THREAT_MODEL) -> list[str]:
    """The names RobustBench knows for ``dataset`` and ``threat_model``, in its leaderboard order."""
    return list(zoo().get(dataset, {}).get(threat_model, {}))


def _elsewhere(name: str) -> list[str]:
    return [RobustBenchRef(ds, tm, name).ref for ds, tms in zoo().items() for tm, entries in tms.items() if name in entries]


def get_entry(rb: RobustBenchRef) -> dict[str, Any]:
    """The zoo entry of ``rb``, or a one-line error with close matches (or where the name does exist)."""
    entries = zoo().get(rb.dataset, {}).get(rb.threat_model)
    if entries is None:
        raise ModelError(
            f"RobustBench has no {rb.dataset}/{rb.threat_model} leaderboard; pick one of "
            + ", ".join(f"{ds}/{tm}" for ds, tms in zoo().items() for tm in tms)
        )
    if rb.name in entries:
        return entries[rb.name]
    if found := _elsewhere(rb.name):
        raise ModelError(f"RobustBench has no {rb.name!r} for {rb.dataset}/{rb.threat_model}; it has {', '.join(found)}")
    close = difflib.get_close_matches(rb.name, entries, n=5, cutoff=0.6)
    others = {n for tms in zoo().values() for es in tms.values() for n in es if n not in entries}
    close_elsewhere = [ref for n in difflib.get_close_matches(rb.name, others, n=3, cutoff=0.6) for ref in _elsewhere(n)][:3]
    hints = [f"close matches: {', '.join(close)}"] if close else []
    hints += [f"on other leaderboards: {', '.join(close_elsewhere)}"] if close_elsewhere else []
    hint = "; ".join(hints) or f"known: {', '.join(list(entries)[:6])}, ... ({len(entries)} in all)"
    raise ModelError(f"RobustBench does not know {rb.name!r} for {rb.dataset}/{rb.threat_model}; {hint}")


def build(rb: RobustBenchRef) -> nn.Module:
    """The entry's architecture with RobustBench's initial weights (its normalisation inside)."""
    model = get_entry(rb)["model"]()
    if not isinstance(model, nn.Module):
        raise ModelError(f"RobustBench's constructor for {rb.ref} returned {type(model).__name__}, not a torch.nn.Module")
    return model


def training_regime(rb: RobustBenchRef) -> str:
    """The leaderboard the model was submitted to, as a regime: ``clean`` (RobustBench's
    ``Standard`` baselines), ``linf-at``, ``l2-at``, or ``corruption-robust``; a corruptions entry
    named ``..._Linf`` / ``..._L2`` is the adversarially trained model of that norm."""
    if rb.name.startswith("Standard"):
        return "clean"
    if rb.threat_model == "corruptions":
        suffix = rb.name.rsplit("_", 1)[-1]
        return {"Linf": "linf-at", "L2": "l2-at"}.get(suffix, "corruption-robust")
    return f"{rb.threat_model.lower()}-at"
