"""Run a sweep spec: every model x attack x mode cell over its eps grid, streamed in batches,
resumable cell by cell."""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from tqdm.auto import tqdm

from robust_attn.attacks import Attack, create_attack
from robust_attn.attacks.base import Mode
from robust_attn.data import ImageDataset, load_dataset
from robust_attn.device import resolve_device
from robust_attn.resolve import load_model_ref
from robust_attn.sweeps.pool import BatchPool, sweep_batch
from robust_attn.sweeps.spec import AttackSpec, SweepSpec
from robust_attn.sweeps.store import Cell, RunStore, atomic_bytes, npz_bytes
from robust_attn.versions import library_versions


def _hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def batch_seed(seed: int, cell: Cell, batch: int) -> int:
    """Seed for one batch's random starts: resumed runs replay the same stream."""
    return int(_hash([seed, cell.config_hash, batch])[:15], 16)


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=Path(__file__).parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def weights_identity(meta: dict[str, Any]) -> str:
    """What cells are keyed on: the sha256 of the weights, not of the file, so a model retrained
    to the same weights (a fresh zoo cache) replays the same random starts and results; the file
    sha also covers metadata such as training times. Import-spec models have neither ("")."""
    return str(meta.get("weights_sha256") or meta.get("checkpoint_sha256") or "")


def model_record(meta: dict[str, Any]) -> dict[str, Any]:
    """What the manifest keeps of a model: architecture, checkpoint identity, its recorded clean
    accuracy and training length (robustness comparisons need matched training budgets)."""
    return {
        "model_name": meta.get("model") or meta.get("model_name"),
        "model_kwargs": meta.get("model_kwargs"),
        "checkpoint": meta.get("checkpoint"),
        "checkpoint_sha256": meta.get("checkpoint_sha256"),
        "checkpoint_clean_accuracy": meta.get("clean_accuracy"),
        "trained_on": meta.get("dataset"),
        "train_epochs": meta.get("epochs"),
        "train_size": meta.get("train_size"),
        "classes": meta.get("classes"),
    }


def make_cells(spec: SweepSpec, model_ref: str, model_sha: str) -> list[Cell]:
    """The cells of one model; their hash covers everything that changes the numbers."""
    data_key = [spec.dataset, spec.split, spec.n, spec.seed, spec.batch_size, spec.precision, spec.channels_last]
    if spec.fold_bn:  # only when set, so runs made before the option existed keep their cells
        data_key.append("fold_bn")
    cells = []
    for a in spec.attacks:
        for mode in spec.modes:
            h = _hash([model_ref, model_sha, a.name, a.backend, a.params, list(a.eps), mode, data_key])
            cells.append(Cell(model_ref, a.key, a.name, a.backend, mode, dict(a.params), list(a.eps), h))
    return cells


def build_attack(a: AttackSpec, model: nn.Module, spec: SweepSpec) -> Attack:
    return create_attack(a.name, model, backend=a.backend, seed=spec.seed, precision=spec.precision,
                         channels_last=spec.channels_last and a.backend == "native",
                         fold_bn=spec.fold_bn and a.backend == "native", **a.params)  # fmt: skip


def run_cell(
    attack: Attack, data: ImageDataset, cell: Cell, spec: SweepSpec, progress: bool, pool: BatchPool | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stream the data set through one attack (in ``pool``'s worker processes when given);
    returns correct (K, N), pred (K, N), clean_pred (N)."""
    n, k = len(data), len(cell.eps)
    correct = np.zeros((k, n), dtype=bool)
    pred = np.zeros((k, n), dtype=np.int16)
    clean = np.zeros(n, dtype=np.int16)
    bar = tqdm(total=n, desc=f"  {cell.attack} [{cell.mode}]", unit="img", leave=False, disable=not progress, mininterval=0.5)
    batches = ((batch_seed(spec.seed, cell, b), idx, x, y) for b, (idx, x, y) in enumerate(data.batches(spec.batch_size)))
    mode: Mode = cell.mode  # type: ignore[assignment]
    results = (
        pool.sweep(attack, batches, cell.eps, mode) if pool is not None else (sweep_batch(attack, *b, cell.eps, mode) for b in batches)
    )
    for sl, c, p, cl in results:
        correct[:, sl], pred[:, sl], clean[sl] = c, p, cl
        bar.update(len(sl))
    bar.close()
    return correct, pred, clean


def _save_examples(attack: Attack, data: ImageDataset, cell: Cell, count: int, path: Path) -> None:
    """Adversarial images of the first ``count`` samples at every eps (independent attacks)."""
    sub = data.subset(min(count, len(data)))
    _, x, y = next(iter(sub.batches(len(sub))))
    attack.reseed(batch_seed(0, cell, -1))
    advs = [x if eps == 0 else attack(x, y, eps).cpu() for eps in cell.eps]
    atomic_bytes(
        path,
        npz_bytes(
            {
                "clean": x.numpy().astype(np.float16),
                "adversarial": torch.stack(advs).numpy().astype(np.float16),
                "eps": np.asarray(cell.eps),
            }
        ),
    )


def run_sweep(spec: SweepSpec, out_dir: str | Path | None = None, *, force: bool = False, progress: bool = True) -> Path:
    """Run (or resume) ``spec``; returns the run directory holding results.csv,
    outcomes.npz and manifest.json."""
    t_start = time.perf_counter()
    root = Path(out_dir) if out_dir is not None else Path("reports") / spec.name
    store = RunStore(root)
    device = resolve_device(spec.device)
    data = load_dataset(spec.dataset, spec.split, n=spec.n, data_dir=spec.data_dir, seed=spec.seed)
    if len(data) < spec.n:
        print(f"note: {spec.dataset} {spec.split} has {len(data)} images; using all of them (n = {spec.n} asked)")
    indices = np.arange(len(data))
    labels = data.labels.numpy()
    manifest: dict[str, Any] = {
        "spec": asdict(spec), "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "device": str(device), "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(), "git_commit": git_commit(), "versions": library_versions(),
        "dataset": {"name": data.name, "split": data.split, "n": len(data), "classes": list(data.classes), "seed": spec.seed},
        "models": {},
    }  # fmt: skip
    all_cells: list[Cell] = []
    pool: BatchPool | None = None
    try:
        model_bar = tqdm(spec.models, desc="models", unit="model", disable=not progress)
        for ref in model_bar:
            model_bar.set_postfix_str(ref)
            model, meta = load_model_ref(ref, device, progress=progress, data_dir=spec.data_dir)
            sha = weights_identity(meta)
            manifest["models"][ref] = model_record(meta)
            cells = make_cells(spec, ref, sha)
            all_cells += cells
            todo = [c for c in cells if force or not store.is_done(c)]
            for cell in tqdm(todo, desc="  cells", unit="cell", leave=False, disable=not progress):
                a = next(a for a in spec.attacks if a.key == cell.attack)
                attack = build_attack(a, model, spec)
                parallel = spec.workers > 1 and device.type == "cpu" and a.backend == "native"
                if parallel and pool is None:
                    pool = BatchPool(spec.workers)  # started once, on the first cell that uses it
                t0 = time.perf_counter()
                correct, pred, clean = run_cell(attack, data, cell, spec, progress, pool if parallel else None)
                seconds = time.perf_counter() - t0
                store.write_cell(cell, correct, pred, clean, seconds, {"attack_repr": repr(attack)})
                if spec.save_examples:
                    _save_examples(attack, data, cell, spec.save_examples, root / "examples" / f"{cell.slug}.npz")
                manifest["wall_seconds"] = time.perf_counter() - t_start
                store.merge(all_cells, indices, labels, manifest)
            del model
    finally:
        if pool is not None:
            pool.close()
    manifest["wall_seconds"] = time.perf_counter() - t_start
    store.merge(all_cells, indices, labels, manifest)
    return root
