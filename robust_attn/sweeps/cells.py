"""Computing one cell: its batches through the evaluation of its kind (an attack cell's batch
through its attack's eps sweep; a corruption cell's through each of its conditions), the
batches of a rank, and every rank's results assembled into one (K, N) outcome with the passes
spent. Shared by the sweep runner and the transfer matrices."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from robust_attn import distributed, hooks
from robust_attn.attacks import Attack, create_attack
from robust_attn.attacks.base import Evaluation, Mode
from robust_attn.attacks.registry import create_evaluation
from robust_attn.corruptions.evaluation import CommonCorruptions
from robust_attn.data import ImageData
from robust_attn.errors import ModelOutputError, RobustAttnError, UserCodeError, first_line, raised_in_user_code, user_frames
from robust_attn.progress import progress_bar
from robust_attn.rundir import AttackCell, Cell, CellOutcome, CorruptionCell
from robust_attn.sweeps.plan import batch_seed
from robust_attn.sweeps.spec import AttackSpec, SweepSpec

# indices, correct (K, B), pred (K, B), clean (B,), extra per-sample columns ((B,) or (K, B))
BatchResult = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]


def build_evaluation(a: AttackSpec, model: nn.Module, spec: SweepSpec) -> Evaluation:
    """The evaluation of an ``[[attacks]]`` table on ``model``, with the spec's options."""
    return create_evaluation(
        a.name,
        model,
        backend=a.backend,
        seed=spec.seed,
        precision=spec.precision,
        channels_last=spec.channels_last and a.backend == "native",
        fold_bn=spec.fold_bn and a.backend == "native",
        **a.params,
    )


def build_attack(a: AttackSpec, model: nn.Module, spec: SweepSpec) -> Attack:
    """The attack of an ``[[attacks]]`` (or ``[[transfer]]``) table on ``model``; an evaluation of
    another kind is refused (see :func:`robust_attn.attacks.create_attack`)."""
    built = build_evaluation(a, model, spec)
    if not isinstance(built, Attack):
        return create_attack(a.name, model, backend=a.backend)  # raises: the one-line refusal of a non-attack
    return built


def sweep_batch(
    attack: Attack, seed: int, idx: torch.Tensor, x: torch.Tensor, y: torch.Tensor, eps: list[float], mode: Mode
) -> BatchResult:
    """One batch of a sweep cell, its random starts seeded by ``seed``, as numpy arrays."""
    attack.reseed(seed)
    out = attack.sweep(x, y, eps, mode=mode)
    columns = {k: v.detach().cpu().numpy() for k, v in out.columns.items()}
    return idx.numpy(), out.correct.cpu().numpy(), out.pred.cpu().numpy(), out.clean_pred.cpu().numpy(), columns


def _batch_error(ref: str, b: int, idx: torch.Tensor, err: Exception) -> Exception:
    """A model's misbehaviour on one batch, as a one-line error naming the batch; else ``err``."""
    where = f"batch {b} (images {int(idx.min())}-{int(idx.max())})"
    if isinstance(err, ModelOutputError):
        return ModelOutputError(
            f"model {ref!r} returned NaN or infinite logits for {err.count} of {err.total} images of {where}; "
            "fix its forward (an overflow, a log of 0, an uninitialised layer): NaN logits would count as predictions",
            err.count,
            err.total,
        )
    if not isinstance(err, RobustAttnError) and raised_in_user_code(err):
        return UserCodeError(
            f"model {ref!r}: its forward raised {first_line(err)} on {where}; fix it in your code (traceback of your files below)",
            user_frames(err),
        )
    return err


@dataclass
class CellRun:
    """One computed cell: its outcome and the passes every rank spent on it."""

    outcome: CellOutcome
    forwards: int
    backwards: int
    members: dict[str, tuple[int, int]] = field(default_factory=dict)


def _sum_costs(
    parts: list[tuple[list[BatchResult], tuple[int, int], dict[str, tuple[int, int]]]],
) -> tuple[int, int, dict[str, tuple[int, int]]]:
    forwards = sum(p[1][0] for p in parts)
    backwards = sum(p[1][1] for p in parts)
    members: dict[str, tuple[int, int]] = {}
    for _, _, per in parts:
        for k, (f, b) in per.items():
            members[k] = (members.get(k, (0, 0))[0] + f, members.get(k, (0, 0))[1] + b)
    return forwards, backwards, members


def _assemble(gathered: list[Any], k: int, n: int, categorical: dict[str, list[str]]) -> CellRun:
    """Every rank's batch results as one (K, N) outcome, with the passes all ranks spent."""
    correct = np.zeros((k, n), dtype=bool)
    pred = np.zeros((k, n), dtype=np.int16)
    clean = np.zeros(n, dtype=np.int16)
    columns: dict[str, np.ndarray] = {}
    for sl, c, p, cl, extra in (r for part in gathered for r in part[0]):
        correct[:, sl], pred[:, sl], clean[sl] = c, p, cl
        for name, values in extra.items():
            if name not in columns:
                columns[name] = np.zeros((n,) if values.ndim == 1 else (k, n), dtype=values.dtype)
            columns[name][..., sl] = values
    for name, labels in categorical.items():  # codes -> names, -1 -> null
        if name in columns:
            names = np.asarray([*labels, None], dtype=object)
            columns[name] = names[np.where(columns[name] < 0, len(labels), columns[name])]
    forwards, backwards, members = _sum_costs(gathered)
    return CellRun(CellOutcome(pred, correct, clean, columns), forwards, backwards, members)


def _corruption_batch(evaluation: Evaluation, data: ImageData, cell: Cell, spec: SweepSpec, b: int, batch: Batch) -> BatchResult:
    """One batch of a corruption cell: the clean prediction, then each condition's."""
    from robust_attn.sweeps.corrupted import corrupted_batch

    if not isinstance(evaluation, CommonCorruptions) or not isinstance(cell, CorruptionCell):
        raise TypeError(f"a corruption cell needs common corruptions, got {type(evaluation).__name__}")  # a bug: the plan pairs them
    idx, x, y = batch
    ids = idx.numpy()
    images = x.mul(255).round_().to(torch.uint8).numpy()  # the 8-bit images the batch was made of (exact: x = uint8 / 255)
    clean = evaluation.predict_uint8(images)
    preds = [
        evaluation.predict_uint8(corrupted_batch(evaluation, data, ids, images, c["corruption"], c["severity"], spec.seed))
        for c in cell.conditions
    ]
    pred = torch.stack(preds).cpu()
    return ids, (pred == y.unsqueeze(0)).numpy(), pred.numpy(), clean.cpu().numpy(), {}


def _attack_batch(evaluation: Evaluation, data: ImageData, cell: Cell, spec: SweepSpec, b: int, batch: Batch) -> BatchResult:
    """One batch of an attack cell: the attack's sweep over the cell's eps grid."""
    if not isinstance(evaluation, Attack) or not isinstance(cell, AttackCell):
        raise TypeError(f"an attack cell needs an attack, got {type(evaluation).__name__}")  # a bug: the plan pairs them
    mode: Mode = "independent" if cell.mode == "independent" else "worst-case"
    idx, x, y = batch
    return sweep_batch(evaluation, batch_seed(spec.seed, cell, b), idx, x, y, list(cell.eps), mode)


Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # sample ids, images, labels
BATCH_RUNNERS: dict[type[Cell], Callable[[Evaluation, ImageData, Cell, SweepSpec, int, Batch], BatchResult]] = {
    AttackCell: _attack_batch,
    CorruptionCell: _corruption_batch,
}  # a cell's kind -> how one of its batches runs (a transfer cell's batches are crafted by robust_attn.sweeps.transfer)


def run_cell(
    evaluation: Evaluation, data: ImageData, cell: Cell, spec: SweepSpec, progress: bool, ctx: distributed.Context | None = None
) -> CellRun | None:
    """Stream the data set through one cell's evaluation, batch by batch as its kind runs them.
    Under torch.distributed each rank takes every world-th batch (boundaries and seeds unchanged)
    and rank 0 gathers them with every rank's pass counts; other ranks get None."""
    n = len(data)
    run_batch = BATCH_RUNNERS[type(cell)]
    main = ctx is None or ctx.is_main
    bar = progress_bar(n, f"  {cell.model.ref} {cell.attack} [{cell.mode}]", enabled=progress and main)
    mine: list[BatchResult] = []
    shown = 0  # rank 0 counts the other ranks' batches as its own (an estimate, capped at n, completed once gathered)
    for b, (idx, x, y) in enumerate(data.batches(spec.batch_size)):
        if ctx is not None and not ctx.shard(b):
            continue
        try:
            mine.append(run_batch(evaluation, data, cell, spec, b, (idx, x, y)))
        except Exception as err:
            raise _batch_error(cell.model.ref, b, idx, err) from err
        hooks.batch_done(ctx.rank if ctx is not None else 0, b + 1)
        step = min(len(idx) * (ctx.world if ctx is not None else 1), n - shown)
        shown += step
        bar.update(step)
    gathered = distributed.gather(ctx, (mine, evaluation.cost, evaluation.member_costs()), f"cell {cell.model.ref} {cell.attack}")
    bar.update(n - shown)
    bar.close()
    return None if gathered is None else _assemble(gathered, cell.size, n, evaluation.categorical_columns)
