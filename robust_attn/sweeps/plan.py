"""What a sweep will compute: its cells and probes, each keyed on everything that changes
its numbers, and the per-batch seeds that make resumed runs replay the same random starts."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from robust_attn.attacks import registry
from robust_attn.card import ModelCard
from robust_attn.rundir import AttackCell, Cell, CorruptionCell, ModelInfo, ProbeCell
from robust_attn.sweeps.spec import AttackSpec, SweepSpec


def config_hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def batch_seed(seed: int, unit: Cell | ProbeCell, batch: int) -> int:
    """Seed for one batch's random starts: resumed runs replay the same stream."""
    return int(config_hash([seed, unit.config_hash, batch])[:15], 16)


def model_info(card: ModelCard) -> ModelInfo:
    """Who a model's rows belong to, from its card: architecture, training regime and seed.
    Adversarially trained models are another population than clean-trained ones of the same
    network: reports group by (architecture, training_regime)."""
    return ModelInfo(card.ref, card.architecture, card.train_seed, card.training_regime, card.has_attention)


def data_key(spec: SweepSpec, data_id: str = "") -> list[Any]:
    """What the images and their batches are: the spec's data fields, and ``data_id`` (the files'
    identity, :meth:`robust_attn.data.ImageData.identity`) for data read from a folder."""
    key: list[Any] = [spec.dataset, spec.split, spec.n, spec.seed, spec.batch_size, spec.precision, spec.channels_last]
    if spec.fold_bn:  # only when set, so runs made before the option existed keep their keys
        key.append("fold_bn")
    if spec.data_options:  # likewise: the data table's options that change the images (resize, crop, classes, ...)
        from robust_attn.data.loading import dataset_source

        key.append(dataset_source(spec.dataset).result_options(dict(spec.data_options)))
    if data_id:  # likewise: another folder of the same name is other data
        key.append(data_id)
    return key


def make_cells(spec: SweepSpec, info: ModelInfo, model_sha: str, data_id: str = "") -> list[Cell]:
    """The cells of one model, one per evaluation of the spec (and mode, for attacks), of the
    evaluation's kind; their hash covers everything that changes the numbers."""
    from robust_attn.corruptions.evaluation import CommonCorruptions

    cells: list[Cell] = []
    for a in spec.attacks:
        evaluation = registry.dry_evaluation(a.name, a.backend, a.params)
        common: dict[str, Any] = {
            "model": info,
            "attack": a.key,
            "name": a.name,
            "backend": a.backend,
            "params": dict(a.params),
            "traits": evaluation.traits().as_dict(),
        }
        if isinstance(evaluation, CommonCorruptions):  # no eps, no modes: each condition is its own evaluation of the clean images
            conditions = evaluation.conditions()
            h = config_hash([info.ref, model_sha, a.name, a.backend, a.params, conditions, data_key(spec, data_id)])
            cells.append(CorruptionCell(**common, norm="none", mode="independent", config_hash=h, conditions=conditions))
            continue
        for mode in spec.modes:
            h = config_hash([info.ref, model_sha, a.name, a.backend, a.params, list(a.eps), mode, data_key(spec, data_id)])
            cells.append(AttackCell(**common, norm=evaluation.norm, mode=mode, config_hash=h, eps=list(a.eps)))
    return cells


def probe_attack(spec: SweepSpec) -> AttackSpec | None:
    """The attack of the attention probe: the strongest untargeted attack of the spec that declares
    itself fit for the probe (``probe`` trait), L-inf first, more steps first; None if there is none."""
    fit = [(registry.attack_traits(a.name, a.backend, a.params), a) for a in spec.attacks if a.backend == "native"]
    fit = [(t, a) for t, a in fit if t.probe and not a.params.get("targeted")]
    if not fit:
        return None
    return max(fit, key=lambda ta: (ta[0].norm == "linf", ta[0].strength, int(ta[1].params.get("steps", 1))))[1]


def make_probe(spec: SweepSpec, info: ModelInfo, model_sha: str, attack: AttackSpec, data_id: str = "") -> ProbeCell:
    label = attack.name.upper() + (f"-{attack.params['steps']}" if "steps" in attack.params else "")
    h = config_hash(
        [info.ref, model_sha, "probe", attack.name, attack.params, list(attack.eps), spec.attention_samples, data_key(spec, data_id)]
    )
    return ProbeCell(info, label, h)


def make_generalisation_unit(spec: SweepSpec, info: ModelInfo, model_sha: str) -> ProbeCell:
    """The unit of one model's linear probes on the spec's unseen data sets."""
    h = config_hash(
        [
            info.ref,
            model_sha,
            "generalisation",
            list(spec.generalisation),
            spec.generalisation_train,
            spec.generalisation_test,
            spec.seed,
            spec.data_dir,
        ]
    )
    return ProbeCell(info, "linear probes", h, kind="generalisation")


def make_indicator_unit(spec: SweepSpec, info: ModelInfo, model_sha: str, data_id: str = "") -> ProbeCell:
    """The unit of one model's indicators of attack failure (all the spec's attacks)."""
    attacks = [[a.name, a.backend, a.params, max(a.eps)] for a in spec.attacks if a.eps]  # eps-ball attacks only
    h = config_hash([info.ref, model_sha, "indicators", attacks, spec.diagnostic_samples, data_key(spec, data_id)])
    return ProbeCell(info, "indicators", h, kind="indicators")
