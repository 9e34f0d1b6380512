"""What a sweep will compute: its cells and probes, each keyed on everything that changes
its numbers, and the per-batch seeds that make resumed runs replay the same random starts."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from robust_attn.attacks import registry
from robust_attn.rundir import AttackCell, ModelInfo, ProbeCell
from robust_attn.sweeps.spec import AttackSpec, SweepSpec


def config_hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def batch_seed(seed: int, unit: AttackCell | ProbeCell, batch: int) -> int:
    """Seed for one batch's random starts: resumed runs replay the same stream."""
    return int(config_hash([seed, unit.config_hash, batch])[:15], 16)


def weights_identity(meta: dict[str, Any]) -> str:
    """What units are keyed on: the sha256 of the weights, not of the file, so a model retrained
    to the same weights (a fresh zoo cache) replays the same random starts and results; the file
    sha also covers metadata such as training times. Import-spec models have neither ("")."""
    return str(meta.get("weights_sha256") or meta.get("checkpoint_sha256") or "")


def model_info(ref: str, meta: dict[str, Any], has_attention: bool) -> ModelInfo:
    """Who a model is, from the traits its source declared (resolve.declared_traits): architecture,
    training regime and seed. Adversarially trained models are another population than
    clean-trained ones of the same network: reports group by (architecture, training_regime)."""
    return ModelInfo(ref, str(meta.get("architecture") or ref), meta.get("train_seed"), str(meta.get("training_regime", "unknown")),
                     has_attention)  # fmt: skip


def model_record(meta: dict[str, Any], info: ModelInfo) -> dict[str, Any]:
    """What the manifest keeps of a model: its declared traits, checkpoint identity, its recorded
    clean accuracy and training budget (robustness comparisons need matched budgets)."""
    recipe = meta.get("recipe") or {}
    return {
        "architecture": info.architecture,
        "training_regime": info.training_regime,
        "has_attention": info.has_attention,
        "model_name": meta.get("model") or meta.get("model_name"),
        "model_kwargs": meta.get("model_kwargs"),
        "train_seed": info.train_seed,
        "checkpoint": meta.get("checkpoint"),
        "checkpoint_sha256": meta.get("checkpoint_sha256"),
        "weights_sha256": meta.get("weights_sha256"),
        "checkpoint_clean_accuracy": meta.get("clean_accuracy"),
        "trained_on": meta.get("dataset"),
        "train_epochs": meta.get("epochs"),
        "train_size": meta.get("train_size"),
        "recipe": recipe.get("name") if isinstance(recipe, dict) else recipe,
        "classes": meta.get("classes"),
    }


def data_key(spec: SweepSpec) -> list[Any]:
    key: list[Any] = [spec.dataset, spec.split, spec.n, spec.seed, spec.batch_size, spec.precision, spec.channels_last]
    if spec.fold_bn:  # only when set, so runs made before the option existed keep their keys
        key.append("fold_bn")
    return key


def make_cells(spec: SweepSpec, info: ModelInfo, model_sha: str) -> list[AttackCell]:
    """The attack cells of one model; their hash covers everything that changes the numbers."""
    cells = []
    for a in spec.attacks:
        traits = registry.attack_traits(a.name, a.backend, a.params)
        if traits.threat_model == "corruption":  # no eps, no modes: each condition is its own evaluation of the clean images
            conditions = registry.dry_attack(a.name, a.backend, a.params).conditions()  # type: ignore[attr-defined]
            h = config_hash([info.ref, model_sha, a.name, a.backend, a.params, conditions, data_key(spec)])
            cells.append(
                AttackCell(info, a.key, a.name, a.backend, "none", "independent", dict(a.params), [], h, traits.as_dict(), conditions)
            )
            continue
        for mode in spec.modes:
            h = config_hash([info.ref, model_sha, a.name, a.backend, a.params, list(a.eps), mode, data_key(spec)])
            cells.append(AttackCell(info, a.key, a.name, a.backend, traits.norm, mode, dict(a.params), list(a.eps), h, traits.as_dict()))
    return cells


def probe_attack(spec: SweepSpec) -> AttackSpec | None:
    """The attack of the attention probe: the strongest untargeted attack of the spec that declares
    itself fit for the probe (``probe`` trait), L-inf first, more steps first; None if there is none."""
    fit = [(registry.attack_traits(a.name, a.backend, a.params), a) for a in spec.attacks if a.backend == "native"]
    fit = [(t, a) for t, a in fit if t.probe and not a.params.get("targeted")]
    if not fit:
        return None
    return max(fit, key=lambda ta: (ta[0].norm == "linf", ta[0].strength, int(ta[1].params.get("steps", 1))))[1]


def make_probe(spec: SweepSpec, info: ModelInfo, model_sha: str, attack: AttackSpec) -> ProbeCell:
    label = attack.name.upper() + (f"-{attack.params['steps']}" if "steps" in attack.params else "")
    h = config_hash([info.ref, model_sha, "probe", attack.name, attack.params, list(attack.eps), spec.attention_samples, data_key(spec)])
    return ProbeCell(info, label, h)


def make_generalisation_unit(spec: SweepSpec, info: ModelInfo, model_sha: str) -> ProbeCell:
    """The unit of one model's linear probes on the spec's unseen data sets."""
    h = config_hash([info.ref, model_sha, "generalisation", list(spec.generalisation), spec.generalisation_train, spec.generalisation_test,
                     spec.seed, spec.data_dir])  # fmt: skip
    return ProbeCell(info, "linear probes", h, kind="generalisation")


def make_indicator_unit(spec: SweepSpec, info: ModelInfo, model_sha: str) -> ProbeCell:
    """The unit of one model's indicators of attack failure (all the spec's attacks)."""
    attacks = [[a.name, a.backend, a.params, max(a.eps)] for a in spec.attacks if a.eps]  # eps-ball attacks only
    h = config_hash([info.ref, model_sha, "indicators", attacks, spec.diagnostic_samples, data_key(spec)])
    return ProbeCell(info, "indicators", h, kind="indicators")
