"""Run a sweep spec: every model x attack x mode cell over its eps grid, streamed in batches,
plus each model's attention probe; resumable unit by unit."""

from __future__ import annotations

import io
import subprocess
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from robust_attn.atomic import atomic_bytes
from robust_attn.attacks import Attack, create_attack
from robust_attn.attacks.base import Mode
from robust_attn.data import ImageDataset, load_dataset
from robust_attn.device import resolve_device
from robust_attn.progress import interactive, progress_bar
from robust_attn.resolve import build_import_spec, is_import_spec, load_model_ref
from robust_attn.rundir import AttackCell, CellOutcome, ProbeCell, RunWriter
from robust_attn.sweeps.plan import (
    batch_seed,
    make_cells,
    make_indicator_unit,
    make_probe,
    model_info,
    model_record,
    probe_attack,
    weights_identity,
)
from robust_attn.sweeps.pool import BatchPool, sweep_batch
from robust_attn.sweeps.preflight import check_forward, check_recorded, recorded_metadata
from robust_attn.sweeps.spec import AttackSpec, SweepSpec
from robust_attn.versions import environment, library_versions


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=Path(__file__).parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def build_attack(a: AttackSpec, model: nn.Module, spec: SweepSpec) -> Attack:
    return create_attack(a.name, model, backend=a.backend, seed=spec.seed, precision=spec.precision,
                         channels_last=spec.channels_last and a.backend == "native",
                         fold_bn=spec.fold_bn and a.backend == "native", **a.params)  # fmt: skip


def run_cell(
    attack: Attack, data: ImageDataset, cell: AttackCell, spec: SweepSpec, progress: bool, pool: BatchPool | None = None
) -> CellOutcome:
    """Stream the data set through one attack (in ``pool``'s worker processes when given)."""
    n, k = len(data), len(cell.eps)
    correct = np.zeros((k, n), dtype=bool)
    pred = np.zeros((k, n), dtype=np.int16)
    clean = np.zeros(n, dtype=np.int16)
    bar = progress_bar(n, f"  {cell.model.ref} {cell.attack} [{cell.mode}]", enabled=progress)
    batches = ((batch_seed(spec.seed, cell, b), idx, x, y) for b, (idx, x, y) in enumerate(data.batches(spec.batch_size)))
    mode: Mode = cell.mode  # type: ignore[assignment]
    results = (
        pool.sweep(attack, batches, cell.eps, mode) if pool is not None else (sweep_batch(attack, *b, cell.eps, mode) for b in batches)
    )
    columns: dict[str, np.ndarray] = {}
    for sl, c, p, cl, extra in results:
        correct[:, sl], pred[:, sl], clean[sl] = c, p, cl
        for name, values in extra.items():
            if name not in columns:
                columns[name] = np.zeros((n,) if values.ndim == 1 else (k, n), dtype=values.dtype)
            columns[name][..., sl] = values
        bar.update(len(sl))
    bar.close()
    for name, labels in attack.categorical_columns.items():  # codes -> names, -1 -> null
        if name in columns:
            names = np.asarray([*labels, None], dtype=object)
            columns[name] = names[np.where(columns[name] < 0, len(labels), columns[name])]
    return CellOutcome(pred, correct, clean, columns)


def run_probe(model: nn.Module, a: AttackSpec, data: ImageDataset, probe: ProbeCell, spec: SweepSpec) -> Any:
    """The attention / segmentation probe of one model on the first ``attention_samples`` images."""
    from robust_attn.probes import probe_model

    sub = data.subset(spec.attention_samples)
    _, x, y = next(sub.batches(len(sub)))
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    attack = create_attack(a.name, model, seed=spec.seed, **a.params)
    attack.reseed(batch_seed(spec.seed, probe, 0))
    masks = sub.masks.to(device) if sub.masks is not None else None
    return probe_model(model, attack, x.to(device), y.to(device), masks, list(a.eps))


def run_indicators(model: nn.Module, data: ImageDataset, unit: ProbeCell, spec: SweepSpec) -> Any:
    """Indicators of attack failure for one model and every attack of the spec, on the first
    ``diagnostic_samples`` images (each attack at the largest eps of its grid)."""
    from robust_attn.diagnostics import diagnose
    from robust_attn.rundir import ProbeOutcome

    sub = data.subset(spec.diagnostic_samples)
    _, x, y = next(sub.batches(len(sub)))
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    attacks = [(a.key, build_attack(a, model, spec), max(a.eps)) for a in spec.attacks]
    return ProbeOutcome(indicators=diagnose(model, attacks, x.to(device), y.to(device), batch_seed(spec.seed, unit, 0) % 2**31))


def _save_examples(attack: Attack, data: ImageDataset, cell: AttackCell, count: int, path: Path) -> None:
    """Adversarial images of the first ``count`` samples at every eps (independent attacks)."""
    sub = data.subset(min(count, len(data)))
    _, x, y = next(iter(sub.batches(len(sub))))
    attack.reseed(batch_seed(0, cell, -1))
    advs = [x if eps == 0 else attack(x, y, eps).cpu() for eps in cell.eps]
    buf = io.BytesIO()
    np.savez_compressed(buf, clean=x.numpy().astype(np.float16), adversarial=torch.stack(advs).numpy().astype(np.float16),
                        eps=np.asarray(cell.eps))  # fmt: skip
    atomic_bytes(path, buf.getvalue())


@dataclass
class _Checked:
    """A model that passed the compatibility checks; import specs keep the module they built."""

    ref: str
    attentive: bool
    module: nn.Module | None = None


def preflight(spec: SweepSpec, data: ImageDataset, device: torch.device) -> list[_Checked]:
    """Check every model against the data before any work (one-line errors, exit 2 in the CLI)."""
    checked = []
    for ref in spec.models:
        if is_import_spec(ref):
            module = build_import_spec(ref, device)
            check_forward(ref, module, data, device)
            from robust_attn.probes import has_attention

            checked.append(_Checked(ref, has_attention(module), module))
            continue
        meta = recorded_metadata(ref) or {}
        check_recorded(ref, meta, data)
        from robust_attn.zoo import get_entry, is_zoo_ref

        arch = get_entry(ref).model if is_zoo_ref(ref) else str(meta.get("model", ""))
        checked.append(_Checked(ref, "-att" in arch))
    return checked


def run_sweep(spec: SweepSpec, out_dir: str | Path | None = None, *, force: bool = False, progress: bool = True) -> Path:
    """Run (or resume) ``spec``; returns the run directory (results.csv, samples.parquet, the
    probe tables and manifest.json; format in :mod:`robust_attn.rundir.schema`)."""
    t_start = time.perf_counter()
    root = Path(out_dir) if out_dir is not None else Path("reports") / spec.name
    device = resolve_device(spec.device)
    data = load_dataset(spec.dataset, spec.split, n=spec.n, data_dir=spec.data_dir, seed=spec.seed)
    if len(data) < spec.n:
        print(f"note: {spec.dataset} {spec.split} has {len(data)} images; using all of them (n = {spec.n} asked)")
    checked = preflight(spec, data, device)
    writer = RunWriter(root)
    samples = np.arange(len(data))
    labels = data.labels.numpy()
    probe_with = probe_attack(spec) if spec.attention_samples > 0 else None
    any_attention = any(c.attentive for c in checked)
    manifest: dict[str, Any] = {
        "spec": asdict(spec), "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "device": str(device), "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else environment()["cpu"],
        "environment": environment(), "git_commit": git_commit(), "versions": library_versions(),
        "dataset": {"name": data.name, "split": data.split, "n": len(data), "classes": list(data.classes), "seed": spec.seed,
                    "image_shape": list(data.image_shape), "has_masks": data.masks is not None},
        "models": {},
    }  # fmt: skip
    all_cells: list[AttackCell] = []
    all_probes: list[ProbeCell] = []
    pool: BatchPool | None = None
    try:
        model_bar = progress_bar(len(checked), "models", unit="model", enabled=progress and interactive(), leave=True)
        for item in checked:
            model_bar.set_postfix_str(item.ref)
            if item.module is not None:
                model, meta = item.module, {"model_name": item.ref, "source": "import"}
            else:
                model, meta = load_model_ref(item.ref, device, progress=progress, data_dir=spec.data_dir)
            info, sha = model_info(item.ref, meta), weights_identity(meta)
            manifest["models"][item.ref] = {**model_record(meta), "architecture": info.architecture, "attention": item.attentive}
            cells = make_cells(spec, info, sha)
            all_cells += cells
            probe = None
            if probe_with is not None and (item.attentive or (any_attention and data.masks is not None)):
                probe = make_probe(spec, info, sha, probe_with)
                all_probes.append(probe)
            indicators = make_indicator_unit(spec, info, sha) if spec.diagnostic_samples > 0 else None
            if indicators is not None:
                all_probes.append(indicators)
            todo = [c for c in cells if force or not writer.is_done(c)]
            probe_todo = probe is not None and (force or not writer.is_done(probe))
            if progress and not interactive():
                print(
                    f"{item.ref}: {len(todo)} of {len(cells)} attack cells to run" + (", then its probe" if probe_todo else ""), flush=True
                )
            for cell in todo:
                a = next(a for a in spec.attacks if a.key == cell.attack)
                attack = build_attack(a, model, spec)
                parallel = spec.workers > 1 and device.type == "cpu" and a.backend == "native"
                if parallel and pool is None:
                    pool = BatchPool(spec.workers)  # started once, on the first cell that uses it
                t0 = time.perf_counter()
                outcome = run_cell(attack, data, cell, spec, progress, pool if parallel else None)
                seconds = time.perf_counter() - t0
                forwards, backwards = attack.cost
                meta_out = {"seconds": seconds, "attack_repr": repr(attack)}
                if not parallel:  # worker processes count in their own copies
                    meta_out |= {"forwards": forwards, "backwards": backwards}
                    if hasattr(attack, "member_costs"):
                        meta_out["members"] = {k: {"forwards": f, "backwards": b} for k, (f, b) in attack.member_costs().items()}
                writer.write_cell(cell, outcome, labels, samples, meta_out)
                if spec.save_examples:
                    _save_examples(attack, data, cell, spec.save_examples, root / "examples" / f"{cell.slug}.npz")
                manifest["wall_seconds"] = time.perf_counter() - t_start
                writer.merge(all_cells, all_probes, manifest)
            if probe_todo and probe is not None and probe_with is not None:
                t0 = time.perf_counter()
                result = run_probe(model, probe_with, data, probe, spec)
                seconds = time.perf_counter() - t0
                writer.write_probe(probe, result, {"seconds": seconds, "samples": min(spec.attention_samples, len(data))})
                if progress:
                    print(
                        f"  {item.ref} probe ({probe.attack}, {min(spec.attention_samples, len(data))} images): {seconds:.1f} s", flush=True
                    )
                writer.merge(all_cells, all_probes, manifest)
            if indicators is not None and (force or not writer.is_done(indicators)):
                t0 = time.perf_counter()
                result = run_indicators(model, data, indicators, spec)
                seconds = time.perf_counter() - t0
                writer.write_probe(indicators, result, {"seconds": seconds, "samples": min(spec.diagnostic_samples, len(data))})
                if progress:
                    fired = [
                        f"{a}: {i}"
                        for a, i, t in zip(result.indicators["attack"], result.indicators["indicator"], result.indicators["triggered"])
                        if t
                    ]
                    print(
                        f"  {item.ref} indicators of attack failure ({seconds:.1f} s): "
                        + ("; ".join(fired) if fired else "none triggered"),
                        flush=True,
                    )
                writer.merge(all_cells, all_probes, manifest)
            model_bar.update(1)
            del model
        model_bar.close()
    finally:
        if pool is not None:
            pool.close()
    manifest["wall_seconds"] = time.perf_counter() - t_start
    writer.merge(all_cells, all_probes, manifest)
    return root
