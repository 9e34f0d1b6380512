"""Transfer (black-box) matrices: adversarial images crafted on each source model (or an ensemble
of sources, whose logits are averaged) and evaluated on every target, per sample; the diagonal
(source = target) is the white-box result and is always computed, so every target has its
reference. Crafting runs once per (source, eps, batch) for all targets: the adversarial images
live only in memory, one batch at a time.

For each target, the indicator "black-box beats white-box" (Carlini et al. 2019's checklist)
fires when a transfer attack leaves lower accuracy than the white-box attack of the same norm and
eps: the model's gradients are masked, and the white-box numbers overstate its robustness.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn as nn

from robust_attn import distributed, hooks
from robust_attn.attacks.base import finite_logits
from robust_attn.attacks.registry import attack_traits
from robust_attn.rundir import ModelInfo, ProbeCell, ProbeOutcome, TransferCell
from robust_attn.sweeps.cells import CellRun, _assemble, build_attack
from robust_attn.sweeps.plan import config_hash
from robust_attn.sweeps.spec import SweepSpec, TransferSpec


class TransferJob(Protocol):
    """What the transfer phase needs of the sweep that runs it."""

    spec: SweepSpec
    data: Any
    device: torch.device
    ctx: distributed.Context | None
    writer: Any
    checked: list[Any]

    def todo(self, units: list[Any]) -> list[Any]: ...

    def say(self, text: str) -> None: ...


INDICATOR = "black-box beats white-box"
MARGIN = 0.02  # a transfer attack must leave this much less accuracy (and 2 samples) to count as beating the white-box one


class LogitEnsemble(nn.Module):
    """Several source models as one: the mean of their logits (Liu et al., ICLR 2017). The issue's
    'average of losses' has no single-output form a loss-agnostic attack can ascend; for the
    cross-entropy both lead to similar crafted images (stated in the docs)."""

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(x) for m in self.members]).mean(dim=0)


@dataclass
class TransferUnits:
    """The cells of one transfer table, by (target, source label), and each target's indicator unit."""

    spec: TransferSpec
    cells: dict[tuple[str, str], TransferCell]
    indicators: dict[str, ProbeCell]


def plan_transfer(
    spec: SweepSpec, t: TransferSpec, infos: dict[str, ModelInfo], shas: dict[str, str], data_key: list[Any]
) -> TransferUnits:
    traits = attack_traits(t.attack.name, t.attack.backend, t.attack.params)
    cells: dict[tuple[str, str], TransferCell] = {}
    indicators = {}
    for target in t.targets:
        for source in dict.fromkeys([*t.sources, (target,)]):  # the diagonal: the white-box reference
            label = t.source_label(source)
            h = config_hash(
                [
                    target,
                    shas[target],
                    "transfer",
                    [[s, shas[s]] for s in source],
                    t.attack.name,
                    t.attack.backend,
                    t.attack.params,
                    list(t.attack.eps),
                    spec.seed,
                    data_key,
                ]
            )
            cells[(target, label)] = TransferCell(
                model=infos[target],
                attack=t.attack.key,
                name=t.attack.name,
                backend=t.attack.backend,
                norm=traits.norm,
                mode="independent",
                params=dict(t.attack.params),
                config_hash=h,
                traits=traits.as_dict(),
                eps=list(t.attack.eps),
                source=label,
            )
        h = config_hash([cells[(target, s)].config_hash for s in (t.source_label(x) for x in t.sources)] + [target, "transfer indicator"])
        indicators[target] = ProbeCell(infos[target], t.key, h, kind="indicators")
    return TransferUnits(t, cells, indicators)


@torch.inference_mode()
def _predict(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return finite_logits(model(x).float()).argmax(dim=1)


def _craft_batch(
    job: TransferJob,
    units: TransferUnits,
    models: dict[str, nn.Module],
    b: int,
    idx: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
    todo: set[tuple[str, str]],
) -> dict[tuple[str, str], np.ndarray]:
    """(target, source) -> predictions (K, B) for one batch: each source's images made once per eps."""

    t = units.spec
    out: dict[tuple[str, str], list[torch.Tensor]] = {}
    every = {t.source_label(src): src for src in [*t.sources, *((tg,) for tg in t.targets)]}
    for label in sorted({s for _, s in todo}):
        source = every[label]
        module = models[source[0]] if len(source) == 1 else LogitEnsemble([models[s] for s in source])
        attack = build_attack(t.attack, module, job.spec)
        for k, eps in enumerate(t.attack.eps):
            attack.reseed(
                int(config_hash([job.spec.seed, "transfer", label, t.attack.key, b, k])[:15], 16)
            )  # the same whichever targets are left
            adv = attack(x, y, float(eps)).detach()
            for target, src in todo:
                if src == label:
                    out.setdefault((target, src), []).append(_predict(models[target], adv.to(x.device)))
    return {key: torch.stack(preds).cpu().numpy() for key, preds in out.items()}


def _indicator_rows(
    units: TransferUnits, target: str, outcomes: dict[tuple[str, str], np.ndarray], labels: np.ndarray
) -> dict[str, np.ndarray]:
    """One row per (source != target, eps): transfer accuracy minus white-box accuracy."""
    t = units.spec
    white = outcomes[(target, target)] == labels[None]
    rows = []
    for source in t.sources:
        label = t.source_label(source)
        if label == target:
            continue
        black = outcomes[(target, label)] == labels[None]
        for k, eps in enumerate(t.attack.eps):
            gap = float(black[k].mean() - white[k].mean())
            hit = gap < -MARGIN and int(white[k].sum() - black[k].sum()) >= 2
            rows.append(
                {
                    "attack": t.attack.key,
                    "source": label,
                    "indicator": INDICATOR,
                    "level": "attack",
                    "value": gap,
                    "threshold": -MARGIN,
                    "triggered": hit,
                    "skipped": False,
                    "detail": f"at eps {eps:.4g}, crafted on {label}: {black[k].mean():.1%} vs white-box {white[k].mean():.1%}"
                    + (
                        "; the target's own gradients are masked: its white-box robustness is overstated, attack it with "
                        "a transfer or query-only attack (square, autoattack)"
                        if hit
                        else ""
                    ),
                }
            )
    keys = ["attack", "source", "indicator", "level", "value", "threshold", "triggered", "skipped", "detail"]
    return {k: np.asarray([r[k] for r in rows], dtype=object if isinstance(rows[0][k], str) else None) for k in keys} if rows else {}


def run_transfers(job: TransferJob, all_units: list[TransferUnits]) -> None:
    """Every transfer table: craft, evaluate, and store each (target, source) cell and each target's indicator."""
    from robust_attn.resolve import load_model_ref
    from robust_attn.sweeps.preflight import load_options

    for units in all_units:
        groups = [tg for tg in units.spec.targets if job.todo([*(c for (t, _), c in units.cells.items() if t == tg), units.indicators[tg]])]
        if not groups:
            continue
        todo = {key for key in units.cells if key[0] in groups}  # a target's cells and indicator are recomputed together
        every = {units.spec.source_label(src): src for src in [*units.spec.sources, *((tg,) for tg in units.spec.targets)]}
        names = {m for key in todo for m in (key[0], *every[key[1]])}
        models: dict[str, nn.Module] = {}
        for m in names:
            built = next((c.module for c in job.checked if c.ref == m and c.module is not None), None)
            models[m] = built if built is not None else load_model_ref(m, job.device, progress=False, **load_options(job.spec, m))[0]
        mine: dict[tuple[str, str], list[Any]] = {key: [] for key in todo}
        for b, (idx, x, y) in enumerate(job.data.batches(job.spec.batch_size)):
            if job.ctx is not None and not job.ctx.shard(b):
                continue
            x, y = x.to(job.device), y.to(job.device)
            for key, pred in _craft_batch(job, units, models, b, idx, x, y, todo).items():
                mine[key].append((idx.numpy(), pred == y.cpu().numpy()[None], pred, np.zeros(len(idx), np.int16), {}))
            hooks.batch_done(job.ctx.rank if job.ctx is not None else 0, b + 1)
        gathered = distributed.gather(job.ctx, mine, f"transfer {units.spec.attack.key}")
        if gathered is None:
            continue
        labels = job.data.labels.numpy()
        outcomes: dict[tuple[str, str], np.ndarray] = {}
        for key in sorted(todo):
            run: CellRun = _assemble([(part[key], (0, 0), {}) for part in gathered], len(units.spec.attack.eps), len(job.data), {})
            target_model = models[key[0]]
            run = replace(run, outcome=replace(run.outcome, clean_pred=_clean(target_model, job)))
            outcomes[key] = run.outcome.pred.astype(np.int64)
            job.writer.write_cell(units.cells[key], run.outcome, labels, np.arange(len(job.data)), {"seconds": None, "source": key[1]})
        for target in groups:
            rows = _indicator_rows(units, target, outcomes, labels)
            job.writer.write_probe(units.indicators[target], ProbeOutcome(indicators=rows), {"seconds": None})
            fired = [
                f"{a} crafted on {s}" for a, s, h in zip(rows.get("attack", []), rows.get("source", []), rows.get("triggered", [])) if h
            ]
            job.say(
                f"  {target} transfer ({units.spec.attack.key}): "
                + (f"{INDICATOR}: {', '.join(fired)}" if fired else "no transfer attack beats white-box")
            )


def _clean(model: nn.Module, job: TransferJob) -> np.ndarray:
    preds = [_predict(model, x.to(job.device)).cpu() for _, x, _ in job.data.batches(job.spec.batch_size)]
    return torch.cat(preds).numpy().astype(np.int16)
