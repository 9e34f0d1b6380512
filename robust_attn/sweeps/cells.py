"""Computing one attack cell: a batch through an attack (or a corruption cell's conditions), the
batches of a rank, and every rank's results assembled into one (K, N) outcome with the passes
spent. Shared by the sweep runner and the transfer matrices."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from robust_attn import distributed, hooks
from robust_attn.attacks import Attack, create_attack
from robust_attn.attacks.base import Mode
from robust_attn.data import ImageDataset
from robust_attn.errors import ModelOutputError, RobustAttnError, UserCodeError, first_line, raised_in_user_code, user_frames
from robust_attn.progress import progress_bar
from robust_attn.rundir import AttackCell, CellOutcome
from robust_attn.sweeps.plan import batch_seed
from robust_attn.sweeps.spec import AttackSpec, SweepSpec

# indices, correct (K, B), pred (K, B), clean (B,), extra per-sample columns ((B,) or (K, B))
BatchResult = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]


def build_attack(a: AttackSpec, model: nn.Module, spec: SweepSpec) -> Attack:
    return create_attack(a.name, model, backend=a.backend, seed=spec.seed, precision=spec.precision,
                         channels_last=spec.channels_last and a.backend == "native",
                         fold_bn=spec.fold_bn and a.backend == "native", **a.params)  # fmt: skip


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
        return ModelOutputError(f"model {ref!r} returned NaN or infinite logits for {err.count} of {err.total} images of {where}; "
                                "fix its forward (an overflow, a log of 0, an uninitialised layer): NaN logits would count as predictions",
                                err.count, err.total)  # fmt: skip
    if not isinstance(err, RobustAttnError) and raised_in_user_code(err):
        return UserCodeError(f"model {ref!r}: its forward raised {first_line(err)} on {where}; fix it in your code "
                             "(traceback of your files below)", user_frames(err))  # fmt: skip
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


def _member_costs(attack: Attack) -> dict[str, tuple[int, int]]:
    return attack.member_costs() if attack.is_ensemble else {}  # type: ignore[attr-defined]


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


def _corruption_batch(attack: Attack, data: ImageDataset, cell: AttackCell, seed: int, idx: torch.Tensor, y: torch.Tensor) -> BatchResult:
    """One batch of a corruption cell: the clean prediction, then each condition's."""
    from robust_attn.sweeps.corrupted import corrupted_batch

    ids = idx.numpy()
    clean = attack.predict_uint8(data.images[idx].numpy())  # type: ignore[attr-defined]
    preds = [attack.predict_uint8(corrupted_batch(attack, data, ids, c["corruption"], c["severity"], seed))  # type: ignore[attr-defined]
             for c in cell.conditions]  # fmt: skip
    pred = torch.stack(preds).cpu()
    return ids, (pred == y.unsqueeze(0)).numpy(), pred.numpy(), clean.cpu().numpy(), {}


def run_cell(
    attack: Attack, data: ImageDataset, cell: AttackCell, spec: SweepSpec, progress: bool, ctx: distributed.Context | None = None
) -> CellRun | None:
    """Stream the data set through one attack (a corruption cell: through its conditions). Under
    torch.distributed each rank takes every world-th batch (boundaries and seeds unchanged) and rank
    0 gathers them with every rank's pass counts; other ranks get None."""
    n = len(data)
    mode: Mode = cell.mode  # type: ignore[assignment]
    main = ctx is None or ctx.is_main
    bar = progress_bar(n, f"  {cell.model.ref} {cell.attack} [{cell.mode}]", enabled=progress and main)
    mine: list[BatchResult] = []
    for b, (idx, x, y) in enumerate(data.batches(spec.batch_size)):
        if ctx is not None and not ctx.shard(b):
            continue
        try:
            if cell.conditions:
                mine.append(_corruption_batch(attack, data, cell, spec.seed, idx, y))
            else:
                mine.append(sweep_batch(attack, batch_seed(spec.seed, cell, b), idx, x, y, list(cell.eps), mode))
        except Exception as err:
            raise _batch_error(cell.model.ref, b, idx, err) from err
        hooks.batch_done(ctx.rank if ctx is not None else 0, b + 1)
        bar.update(len(idx) * (ctx.world if ctx is not None else 1))
    bar.close()
    gathered = distributed.gather(ctx, (mine, attack.cost, _member_costs(attack)), f"cell {cell.model.ref} {cell.attack}")
    return None if gathered is None else _assemble(gathered, cell.size, n, attack.categorical_columns)
