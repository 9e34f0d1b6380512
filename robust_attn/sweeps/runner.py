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

from robust_attn import distributed
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
from robust_attn.sweeps.preflight import check_forward, check_recorded, recorded_metadata
from robust_attn.sweeps.spec import AttackSpec, SweepSpec
from robust_attn.versions import environment, library_versions

# indices, correct (K, B), pred (K, B), clean (B,), extra per-sample columns ((B,) or (K, B))
BatchResult = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]


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


def sweep_batch(
    attack: Attack, seed: int, idx: torch.Tensor, x: torch.Tensor, y: torch.Tensor, eps: list[float], mode: Mode
) -> BatchResult:
    """One batch of a sweep cell, its random starts seeded by ``seed``, as numpy arrays."""
    attack.reseed(seed)
    out = attack.sweep(x, y, eps, mode=mode)
    columns = {k: v.detach().cpu().numpy() for k, v in out.columns.items()}
    return idx.numpy(), out.correct.cpu().numpy(), out.pred.cpu().numpy(), out.clean_pred.cpu().numpy(), columns


def run_cell(
    attack: Attack, data: ImageDataset, cell: AttackCell, spec: SweepSpec, progress: bool, ctx: distributed.Context | None = None
) -> CellOutcome | None:
    """Stream the data set through one attack. Under torch.distributed each rank takes every
    world-th batch (boundaries and seeds unchanged) and rank 0 gathers them; other ranks get None."""
    n, k = len(data), len(cell.eps)
    mode: Mode = cell.mode  # type: ignore[assignment]
    main = ctx is None or ctx.is_main
    bar = progress_bar(n, f"  {cell.model.ref} {cell.attack} [{cell.mode}]", enabled=progress and main)
    mine: list[BatchResult] = []
    for b, (idx, x, y) in enumerate(data.batches(spec.batch_size)):
        if ctx is not None and not ctx.shard(b):
            continue
        mine.append(sweep_batch(attack, batch_seed(spec.seed, cell, b), idx, x, y, list(cell.eps), mode))
        distributed.maybe_fail(ctx)
        bar.update(len(idx) * (ctx.world if ctx is not None else 1))
    bar.close()
    gathered = distributed.gather(ctx, mine, f"cell {cell.model.ref} {cell.attack}")
    if gathered is None:
        return None
    correct = np.zeros((k, n), dtype=bool)
    pred = np.zeros((k, n), dtype=np.int16)
    clean = np.zeros(n, dtype=np.int16)
    columns: dict[str, np.ndarray] = {}
    for sl, c, p, cl, extra in (r for part in gathered for r in part):
        correct[:, sl], pred[:, sl], clean[sl] = c, p, cl
        for name, values in extra.items():
            if name not in columns:
                columns[name] = np.zeros((n,) if values.ndim == 1 else (k, n), dtype=values.dtype)
            columns[name][..., sl] = values
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


@dataclass
class _Job:
    """What every unit of one sweep invocation shares."""

    spec: SweepSpec
    root: Path
    data: ImageDataset
    device: torch.device
    ctx: distributed.Context | None
    writer: RunWriter
    manifest: dict[str, Any]
    force: bool
    progress: bool
    t_start: float
    cells: list[AttackCell]
    probes: list[ProbeCell]

    @property
    def main(self) -> bool:
        return self.ctx is None or self.ctx.is_main

    def say(self, text: str) -> None:
        if self.progress and self.main:
            print(text, flush=True)

    def merge(self) -> None:
        if self.main:
            self.manifest["wall_seconds"] = time.perf_counter() - self.t_start
            self.writer.merge(self.cells, self.probes, self.manifest)

    def todo(self, units: list[Any]) -> list[Any]:
        """The units not finished yet, as rank 0 sees the run directory (ranks may not share a disk)."""
        mine = [u for u in units if self.force or not self.writer.is_done(u)] if self.main else None
        return list(distributed.broadcast(self.ctx, mine, "planning"))


def _run_attack_cells(job: _Job, model: nn.Module, cells: list[AttackCell]) -> None:
    for cell in job.todo(cells):
        a = next(a for a in job.spec.attacks if a.key == cell.attack)
        attack = build_attack(a, model, job.spec)
        t0 = time.perf_counter()
        outcome = run_cell(attack, job.data, cell, job.spec, job.progress, job.ctx)
        seconds = time.perf_counter() - t0
        if outcome is None:  # another rank writes
            continue
        forwards, backwards = attack.cost
        meta = {"seconds": seconds, "attack_repr": repr(attack), "forwards": forwards, "backwards": backwards}
        if job.ctx is not None:  # each rank counted its own batches; rank 0 saw 1/world of them
            meta |= {"forwards": None, "backwards": None, "world_size": job.ctx.world}
        if hasattr(attack, "member_costs"):  # an ensemble: its members in order, with their passes where counted
            counted = job.ctx is None
            meta["members"] = {k: {"forwards": f if counted else None, "backwards": b if counted else None}
                               for k, (f, b) in attack.member_costs().items()}  # fmt: skip
        job.writer.write_cell(cell, outcome, job.data.labels.numpy(), np.arange(len(job.data)), meta)
        if job.spec.save_examples:
            _save_examples(attack, job.data, cell, job.spec.save_examples, job.root / "examples" / f"{cell.slug}.npz")
        job.merge()


def _run_probe_units(job: _Job, ref: str, model: nn.Module, probe: ProbeCell | None, indicators: ProbeCell | None) -> None:
    """The attention probe and the indicators of attack failure, on rank 0 (the others wait)."""
    probe_with = probe_attack(job.spec)
    if probe is not None and probe_with is not None and job.todo([probe]):
        if job.main:
            t0 = time.perf_counter()
            result = run_probe(model, probe_with, job.data, probe, job.spec)
            seconds = time.perf_counter() - t0
            n = min(job.spec.attention_samples, len(job.data))
            job.writer.write_probe(probe, result, {"seconds": seconds, "samples": n})
            job.say(f"  {ref} probe ({probe.attack}, {n} images): {seconds:.1f} s")
            job.merge()
        distributed.barrier(job.ctx, f"the probe of {ref}")
    if indicators is not None and job.todo([indicators]):
        if job.main:
            t0 = time.perf_counter()
            result = run_indicators(model, job.data, indicators, job.spec)
            seconds = time.perf_counter() - t0
            job.writer.write_probe(indicators, result, {"seconds": seconds, "samples": min(job.spec.diagnostic_samples, len(job.data))})
            rows = result.indicators
            fired = [f"{a}: {i}" for a, i, t in zip(rows["attack"], rows["indicator"], rows["triggered"]) if t]
            job.say(f"  {ref} indicators of attack failure ({seconds:.1f} s): " + ("; ".join(fired) if fired else "none triggered"))
            job.merge()
        distributed.barrier(job.ctx, f"the indicators of {ref}")


def _load(job: _Job, item: _Checked) -> tuple[nn.Module, dict[str, Any]]:
    if item.module is not None:
        return item.module, {"model_name": item.ref, "source": "import"}
    return load_model_ref(item.ref, job.device, progress=job.progress and job.main, data_dir=job.spec.data_dir)


def _train_missing_zoo_models(job: _Job, checked: list[_Checked]) -> None:
    """Missing zoo models are trained before the sweep, spread over the ranks of a job."""
    from robust_attn.zoo import cached_metadata, is_zoo_ref, train_entries

    missing = [c.ref for c in checked if c.module is None and is_zoo_ref(c.ref) and cached_metadata(c.ref) is None]
    missing = list(distributed.broadcast(job.ctx, missing, "planning the zoo"))
    if missing:
        job.say(f"training {len(missing)} missing zoo model(s): {', '.join(missing)}")
        train_entries(missing, device=job.device, data_dir=job.spec.data_dir, progress=job.progress, workers=1 if job.ctx else None)


def _sweep_entry(spec: SweepSpec, out_dir: str, force: bool, progress: bool) -> None:
    """A local rank launched by the ``workers`` option."""
    run_sweep(spec, out_dir, force=force, progress=progress)


def run_sweep(spec: SweepSpec, out_dir: str | Path | None = None, *, force: bool = False, progress: bool = True) -> Path:
    """Run (or resume) ``spec``; returns the run directory (results.csv, samples.parquet, the
    probe tables and manifest.json; format in :mod:`robust_attn.rundir.schema`).

    Under torchrun every rank runs this; batches are split over the ranks and rank 0 writes. With
    ``workers > 1`` on a CPU (and no torchrun), it starts that many local ranks itself."""
    t_start = time.perf_counter()
    root = Path(out_dir) if out_dir is not None else Path("reports") / spec.name
    device = resolve_device(spec.device)
    if spec.workers > 1 and device.type == "cpu" and not distributed.launched():
        data = load_dataset(spec.dataset, spec.split, n=spec.n, data_dir=spec.data_dir, seed=spec.seed)
        preflight(spec, data, device)  # bad models fail here, in one line, before any rank starts
        distributed.launch_local(spec.workers, _sweep_entry, spec, str(root), force, progress)
        return root
    ctx = distributed.context(device)
    device = distributed.device_for(ctx, device)
    data = load_dataset(spec.dataset, spec.split, n=spec.n, data_dir=spec.data_dir, seed=spec.seed)
    if len(data) < spec.n and (ctx is None or ctx.is_main):
        print(f"note: {spec.dataset} {spec.split} has {len(data)} images; using all of them (n = {spec.n} asked)")
    checked = preflight(spec, data, device)
    manifest: dict[str, Any] = {
        "spec": asdict(spec), "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "device": str(device), "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else environment()["cpu"],
        "environment": environment(), "git_commit": git_commit(), "versions": library_versions(),
        "world_size": ctx.world if ctx is not None else 1, "backend": ctx.backend if ctx is not None else None,
        "dataset": {"name": data.name, "split": data.split, "n": len(data), "classes": list(data.classes), "seed": spec.seed,
                    "image_shape": list(data.image_shape), "has_masks": data.masks is not None},
        "models": {},
    }  # fmt: skip
    job = _Job(spec, root, data, device, ctx, RunWriter(root), manifest, force, progress, t_start, [], [])
    if ctx is not None:
        job.say(f"sweep over {ctx.world} ranks ({ctx.backend}); rank 0 writes {root}")
    _train_missing_zoo_models(job, checked)
    any_attention = any(c.attentive for c in checked)
    model_bar = progress_bar(len(checked), "models", unit="model", enabled=progress and interactive() and job.main, leave=True)
    for item in checked:
        model_bar.set_postfix_str(item.ref)
        model, meta = _load(job, item)
        info, sha = model_info(item.ref, meta), weights_identity(meta)
        manifest["models"][item.ref] = {**model_record(meta), "architecture": info.architecture, "attention": item.attentive}
        cells = make_cells(spec, info, sha)
        job.cells += cells
        probe_with = probe_attack(spec) if spec.attention_samples > 0 else None
        probe = (
            make_probe(spec, info, sha, probe_with)
            if probe_with and (item.attentive or (any_attention and data.masks is not None))
            else None
        )
        indicators = make_indicator_unit(spec, info, sha) if spec.diagnostic_samples > 0 else None
        job.probes += [u for u in (probe, indicators) if u is not None]
        todo = job.todo(cells)  # a collective: every rank calls it
        if not interactive():
            job.say(f"{item.ref}: {len(todo)} of {len(cells)} attack cells to run")
        _run_attack_cells(job, model, cells)
        _run_probe_units(job, item.ref, model, probe, indicators)
        model_bar.update(1)
        del model
    model_bar.close()
    job.merge()
    distributed.barrier(ctx, "the end of the sweep")
    return root
