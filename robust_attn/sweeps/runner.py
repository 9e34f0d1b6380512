"""Run a sweep spec: every model x attack x mode cell over its eps grid, streamed in batches,
plus each model's attention probe and indicators of attack failure; resumable unit by unit.

The whole plan is written into the run directory before any work, each finished unit is stored
on its own (see :mod:`robust_attn.rundir`), and the run's tables are merged once at the end, when every
unit is done (a sweep stopped by an error or Ctrl-C leaves the tables of the last finished sweep
as they were), so the cost of writing grows with the run, not with its square."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from robust_attn import distributed
from robust_attn.attacks import Attack, create_attack
from robust_attn.attacks.base import Evaluation
from robust_attn.card import ModelCard
from robust_attn.data import ImageData, load_dataset
from robust_attn.device import resolve_device
from robust_attn.errors import SpecError
from robust_attn.progress import interactive, progress_bar
from robust_attn.resolve import load_model_ref
from robust_attn.rundir import AttackCell, Cell, CorruptionCell, ModelInfo, ProbeCell, RunDir, RunWriter
from robust_attn.rundir.lock import RunLock
from robust_attn.sweeps.cells import CellRun, build_attack, build_evaluation, run_cell
from robust_attn.sweeps.fingerprint import differences, fingerprint
from robust_attn.sweeps.plan import (
    batch_seed,
    make_cells,
    make_generalisation_unit,
    make_indicator_unit,
    make_probe,
    model_info,
    probe_attack,
)
from robust_attn.sweeps.preflight import Checked, load_options, preflight, trained_card
from robust_attn.sweeps.spec import AttackSpec, SweepSpec
from robust_attn.versions import environment, library_versions


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=Path(__file__).parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def run_probe(model: nn.Module, a: AttackSpec, data: ImageData, probe: ProbeCell, spec: SweepSpec) -> Any:
    """The attention / segmentation probe of one model on the first ``attention_samples`` images."""
    from robust_attn.probes import probe_model

    x, y, masks = data.head(spec.attention_samples)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    attack = create_attack(a.name, model, seed=spec.seed, **a.params)
    attack.reseed(batch_seed(spec.seed, probe, 0))
    return probe_model(model, attack, x.to(device), y.to(device), masks.to(device) if masks is not None else None, list(a.eps))


def run_indicators(model: nn.Module, data: ImageData, unit: ProbeCell, spec: SweepSpec) -> Any:
    """Indicators of attack failure for one model and every attack of the spec, on the first
    ``diagnostic_samples`` images (each attack at the largest eps of its grid)."""
    from robust_attn.diagnostics import diagnose
    from robust_attn.rundir import ProbeOutcome

    x, y, _ = data.head(spec.diagnostic_samples)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    attacks = [(a.key, build_attack(a, model, spec), max(a.eps)) for a in spec.attacks if a.eps]  # eps-ball attacks (not corruptions)
    return ProbeOutcome(indicators=diagnose(model, attacks, x.to(device), y.to(device), batch_seed(spec.seed, unit, 0) % 2**31))


def example_arrays(attack: Attack, data: ImageData, cell: AttackCell, count: int) -> dict[str, np.ndarray]:
    """Adversarial images of the first ``count`` samples at every eps (independent attacks)."""
    x, y, _ = data.head(count)
    attack.reseed(batch_seed(0, cell, -1))
    advs = [x if eps == 0 else attack(x, y, eps).cpu() for eps in cell.eps]
    return {"clean": x.numpy().astype(np.float16), "adversarial": torch.stack(advs).numpy().astype(np.float16), "eps": np.asarray(cell.eps)}


@dataclass
class _Model:
    """One model's units, planned before any work."""

    item: Checked
    card: ModelCard
    info: ModelInfo
    cells: list[Cell]
    probe: ProbeCell | None
    indicators: ProbeCell | None
    generalisation: ProbeCell | None = None

    @property
    def units(self) -> list[Cell | ProbeCell]:
        return [*self.cells, *(u for u in (self.probe, self.indicators, self.generalisation) if u is not None)]


@dataclass
class _Job:
    """What every unit of one sweep invocation shares."""

    spec: SweepSpec
    root: Path
    data: ImageData
    device: torch.device
    ctx: distributed.Context | None
    writer: RunWriter
    manifest: dict[str, Any]
    force: bool
    progress: bool
    t_start: float
    models: list[_Model] = field(default_factory=list)
    checked: list[Checked] = field(default_factory=list)
    transfers: list[Any] = field(default_factory=list)  # TransferUnits of the spec's [[transfer]] tables
    unseen: list[Any] | None = None  # the unseen data sets of the linear probes, once made

    @property
    def main(self) -> bool:
        return self.ctx is None or self.ctx.is_main

    def say(self, text: str) -> None:
        if self.progress and self.main:
            print(text, flush=True)

    @property
    def units(self) -> list[Cell | ProbeCell]:
        transfer = [u for t in self.transfers for u in (*t.cells.values(), *t.indicators.values())]
        return [*(u for m in self.models for u in m.units), *transfer]

    def merge(self, changed: bool) -> None:
        if self.main:
            self.manifest["wall_seconds"] = time.perf_counter() - self.t_start
            self.writer.merge(self.units, self.manifest, changed=changed)

    def todo(self, units: list[Any]) -> list[Any]:
        """The units not finished yet, as rank 0 sees the run directory (ranks may not share a disk)."""
        mine = [u for u in units if self.force or not self.writer.is_done(u)] if self.main else None
        return list(distributed.broadcast(self.ctx, mine, "planning"))


def _cell_meta(job: _Job, evaluation: Evaluation, run: CellRun, seconds: float) -> dict[str, Any]:
    meta: dict[str, Any] = {"seconds": seconds, "attack_repr": repr(evaluation), "forwards": run.forwards, "backwards": run.backwards}
    if job.ctx is not None:
        meta["world_size"] = job.ctx.world
    if run.members:  # an ensemble's members in order, with their passes (summed over ranks)
        meta["members"] = {k: {"forwards": f, "backwards": b} for k, (f, b) in run.members.items()}
    return meta


def _run_cells(job: _Job, data: ImageData, model: nn.Module, cells: list[Cell]) -> None:
    for cell in job.todo(cells):
        a = next(a for a in job.spec.attacks if a.key == cell.attack)
        evaluation = build_evaluation(a, model, job.spec)
        t0 = time.perf_counter()
        run = run_cell(evaluation, data, cell, job.spec, job.progress, job.ctx)
        if run is None:  # another rank writes
            continue
        meta = _cell_meta(job, evaluation, run, time.perf_counter() - t0)
        if isinstance(cell, CorruptionCell):  # which of Hendrycks & Dietterich's tables the image size chose
            from robust_attn.corruptions import parameter_set

            meta["corruption_parameters"] = parameter_set(data.image_shape)
        job.writer.write_cell(cell, run.outcome, data.labels.numpy(), np.arange(len(data)), meta)
        if job.spec.save_examples and isinstance(evaluation, Attack) and isinstance(cell, AttackCell):
            job.writer.write_examples(cell, example_arrays(evaluation, data, cell, job.spec.save_examples))


def _run_probe_units(job: _Job, data: ImageData, ref: str, model: nn.Module, probe: ProbeCell | None, indicators: ProbeCell | None) -> None:
    """The attention probe and the indicators of attack failure, on rank 0 (the others wait)."""
    probe_with = probe_attack(job.spec)
    if probe is not None and probe_with is not None and job.todo([probe]):
        if job.main:
            t0 = time.perf_counter()
            with distributed.alone_on_the_host(job.ctx):
                result = run_probe(model, probe_with, data, probe, job.spec)
            seconds = time.perf_counter() - t0
            n = min(job.spec.attention_samples, len(data))
            job.writer.write_probe(probe, result, {"seconds": seconds, "samples": n})
            job.say(f"  {ref} probe ({probe.attack}, {n} images): {seconds:.1f} s")
        distributed.barrier(job.ctx, f"the probe of {ref}")
    if indicators is not None and job.todo([indicators]):
        if job.main:
            t0 = time.perf_counter()
            with distributed.alone_on_the_host(job.ctx):
                result = run_indicators(model, data, indicators, job.spec)
            seconds = time.perf_counter() - t0
            job.writer.write_probe(indicators, result, {"seconds": seconds, "samples": min(job.spec.diagnostic_samples, len(data))})
            rows = result.indicators
            fired = [f"{a}: {i}" for a, i, t in zip(rows["attack"], rows["indicator"], rows["triggered"]) if t]
            job.say(f"  {ref} indicators of attack failure ({seconds:.1f} s): " + ("; ".join(fired) if fired else "none triggered"))
        distributed.barrier(job.ctx, f"the indicators of {ref}")


def _unseen(job: _Job) -> list[Any]:
    """The spec's unseen data sets, made once per sweep (the same images for every model, so
    architecture-level statistics pair the samples); skipped sets are noted in the manifest."""
    if job.unseen is None:
        from robust_attn.data.unseen import unseen_datasets

        spec = job.spec
        job.unseen, skipped = unseen_datasets(
            spec.generalisation,
            data_dir=spec.data_dir,
            n_train=spec.generalisation_train,
            n_test=spec.generalisation_test,
            seed=spec.seed,
            exclude=(job.data.trained_as or job.data.name,),
        )
        job.manifest["generalisation_skipped"] = {s.name: s.reason for s in skipped}
        for s in skipped:
            job.say(f"note: {s.reason}")
    return job.unseen


def _run_generalisation(job: _Job, ref: str, model: nn.Module, unit: ProbeCell | None) -> None:
    """Linear probes on the model's frozen features, on rank 0 (the others wait)."""
    if unit is None or not job.todo([unit]):
        return
    if job.main:
        from robust_attn.probes import generalisation_rows
        from robust_attn.probes.generalisation import PROBE_C
        from robust_attn.rundir import ProbeOutcome

        t0 = time.perf_counter()
        rows = generalisation_rows(model, _unseen(job), job.device)
        seconds = time.perf_counter() - t0
        job.writer.write_probe(unit, ProbeOutcome(generalisation=rows), {"seconds": seconds, "probe_c": PROBE_C})
        job.say(f"  {ref} linear probes on {len(_unseen(job))} unseen data sets: {seconds:.1f} s")
    distributed.barrier(job.ctx, f"the linear probes of {ref}")


def _train_missing_zoo_models(job: _Job, checked: list[Checked]) -> None:
    """Missing zoo models are trained before the sweep, spread over the ranks of a job."""
    from robust_attn.zoo import is_zoo_ref, train_entries, trained_metadata

    missing = [c.ref for c in checked if c.module is None and is_zoo_ref(c.ref) and trained_metadata(c.ref) is None]
    missing = list(distributed.broadcast(job.ctx, missing, "planning the zoo"))
    if missing:
        job.say(f"training {len(missing)} missing zoo model(s): {', '.join(missing)}")
        train_entries(missing, device=job.device, data_dir=job.spec.data_dir, progress=job.progress, workers=1 if job.ctx else None)


def _plan(job: _Job, checked: list[Checked]) -> None:
    """Every model's cells and probes, before any work (zoo models are trained by now)."""
    data_id = job.data.identity()  # a folder's files, so that another folder of the same name is not taken for it
    spec = job.spec
    probe_with = probe_attack(spec) if spec.attention_samples > 0 else None
    any_attention = any(c.has_attention for c in checked)
    for item in checked:
        card = trained_card(item, spec, job.device)
        info, sha = model_info(card), card.weights_identity
        seen = card.preprocessing.record() if card.preprocessing is not None else job.data.record().get("preprocessing")
        job.manifest["models"][item.ref] = {**card.manifest_record(), "preprocessing": seen}  # what the model saw
        wants_probe = probe_with is not None and (item.has_attention or (any_attention and job.data.has_masks))
        probe = make_probe(spec, info, sha, probe_with, data_id) if probe_with is not None and wants_probe else None
        indicators = make_indicator_unit(spec, info, sha, data_id) if spec.diagnostic_samples > 0 else None
        general = make_generalisation_unit(spec, info, sha) if spec.generalisation else None
        job.models.append(_Model(item, card, info, make_cells(spec, info, sha, data_id), probe, indicators, general))
    from robust_attn.sweeps.plan import data_key
    from robust_attn.sweeps.transfer import plan_transfer

    infos = {m.item.ref: m.info for m in job.models}
    shas = {m.item.ref: m.card.weights_identity for m in job.models}
    job.checked = checked
    seen = {m.item.ref: m.card.preprocessing for m in job.models}
    for i, t in enumerate(spec.transfer):  # crafted images go from one model to another: one input size for all of them
        names = {r for source in t.sources for r in source} | set(t.targets)
        if len({seen[r] for r in names}) > 1:
            raise SpecError(f"transfer[{i}]: its models declare different preprocessing ({', '.join(sorted(str(seen[r]) for r in names))}); "
                            "images crafted at one input size cannot be fed to another: transfer between models of one preprocessing")  # fmt: skip
    job.transfers = [plan_transfer(spec, t, infos, shas, data_key(spec, data_id)) for t in spec.transfer]


def _run_models(job: _Job) -> None:
    model_bar = progress_bar(len(job.models), "models", unit="model", enabled=job.progress and interactive() and job.main, leave=True)
    for m in job.models:
        model_bar.set_postfix_str(m.item.ref)
        todo = job.todo(m.units)  # a collective: every rank calls it
        if not interactive():
            job.say(f"{m.item.ref}: {sum(isinstance(u, Cell) for u in todo)} of {len(m.cells)} cells to run")
        if todo:
            model = (
                m.item.module
                if m.item.module is not None
                else load_model_ref(m.item.ref, job.device, progress=job.progress and job.main, **load_options(job.spec, m.item.ref))[0]
            )
            data = job.data.for_model(m.card.preprocessing)  # the same samples at the model's own input size, if it declares one
            _run_cells(job, data, model, m.cells)
            _run_probe_units(job, data, m.item.ref, model, m.probe, m.indicators)
            _run_generalisation(job, m.item.ref, model, m.generalisation)
            del model
        if m.item.ref not in _transferred(job.spec):
            m.item.module = None  # released after its turn (a transfer table still needs the models it names)
        model_bar.update(1)
    model_bar.close()


def _transferred(spec: SweepSpec) -> set[str]:
    """The models a transfer table names (as source, ensemble member or target)."""
    return {m for t in spec.transfer for m in (*t.targets, *(s for source in t.sources for s in source))}


def _sweep_entry(spec: SweepSpec, out_dir: str, force: bool, progress: bool, cards: list[ModelCard]) -> None:
    """A local rank launched by the ``workers`` option: the parent checked the models already."""
    device = resolve_device(spec.device)
    _run(spec, Path(out_dir), device, force, progress, [Checked(card) for card in cards])


def _load_data(spec: SweepSpec) -> ImageData:
    return load_dataset(spec.dataset, spec.split, n=spec.n, data_dir=spec.data_dir, seed=spec.seed, download=spec.download,
                        verify=spec.verify, **spec.data_options)  # fmt: skip


def _manifest(spec: SweepSpec, data: ImageData, device: torch.device, ctx: distributed.Context | None) -> dict[str, Any]:
    return {
        "spec": asdict(spec),
        "spec_fingerprint": fingerprint(spec),
        "spec_path": spec.source or None,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else environment()["cpu"],
        "environment": environment(),
        "git_commit": git_commit(),
        "versions": library_versions(),
        "world_size": ctx.world if ctx is not None else 1,
        "backend": ctx.backend if ctx is not None else None,
        "dataset": {**data.record(), "seed": spec.seed},
        "models": {},
    }


DEFAULT_ROOT = Path("runs")  # a sweep without --out writes runs/<spec name> (git-ignored), never a committed study


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C during a sweep; ``summary`` says, truthfully, what was saved and what was not."""

    def __init__(self, summary: str) -> None:
        super().__init__(summary)
        self.summary = summary


def run_sweep(spec: SweepSpec, out_dir: str | Path | None = None, *, force: bool = False, progress: bool = True) -> Path:
    """Run (or resume) ``spec``; returns the run directory (results.csv, samples.parquet, the
    probe tables and manifest.json; format in :mod:`robust_attn.rundir.schema`), by default
    ``runs/<spec name>``.

    One process writes a run directory at a time (a lock), and only for one spec: a sealed
    directory, or one holding another spec's results, is refused before any work. Finished units
    are saved as they finish; the run's tables and manifest are replaced only when every unit is
    done, so an interrupted or failed sweep leaves them as they were.

    Under torchrun every rank runs this; batches are split over the ranks and rank 0 writes. With
    ``workers > 1`` on a CPU (and no torchrun), it starts that many local ranks itself."""
    root = Path(out_dir) if out_dir is not None else DEFAULT_ROOT / spec.name
    device = resolve_device(spec.device)
    if distributed.launched() and not distributed.is_main_process():
        return _run(spec, root, device, force, progress)
    RunDir(root).check_writable("write the sweep's results")
    with RunLock(root) as lock:
        RunWriter(root).claim(fingerprint(spec), lambda stored: differences(spec, stored))
        if spec.workers > 1 and device.type == "cpu" and not distributed.launched():
            data = _load_data(spec)
            checked = preflight(spec, data, device)  # bad models fail here, in one line, before any rank starts
            del data
            with _environment(lock.env()):
                distributed.launch_local(spec.workers, _sweep_entry, spec, str(root), force, progress, [c.card for c in checked])
            return root
        return _run(spec, root, device, force, progress)


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """``values`` in os.environ for the block (local ranks are spawned with it)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _run(spec: SweepSpec, root: Path, device: torch.device, force: bool, progress: bool, checked: list[Checked] | None = None) -> Path:
    """The sweep in this process (one rank of a job, or the only process); ``checked``: the
    models as a parent process checked them (the checks run once per sweep)."""
    t_start = time.perf_counter()
    ctx = distributed.context(device)
    device = distributed.device_for(ctx, device)
    data = _load_data(spec)
    if len(data) < spec.n and (ctx is None or ctx.is_main):
        print(f"note: {spec.dataset} {spec.split} has {len(data)} images; using all of them (n = {spec.n} asked)")
    checked = preflight(spec, data, device) if checked is None else checked
    job = _Job(spec, root, data, device, ctx, RunWriter(root), _manifest(spec, data, device, ctx), force, progress, t_start)
    if ctx is not None:
        job.say(f"sweep over {ctx.world} ranks ({ctx.backend}); rank 0 writes {root}")
    _train_missing_zoo_models(job, checked)
    _plan(job, checked)
    if job.main:
        job.writer.write_plan(job.manifest, job.units)
    try:
        _run_models(job)
        from robust_attn.sweeps.transfer import run_transfers

        run_transfers(job, job.transfers)
    except KeyboardInterrupt:
        if not job.main:
            raise
        done, planned = job.writer.progress(job.units)
        raise SweepInterrupted(
            f"stopped: {done} of {planned} units are finished and saved in {job.writer.dir.cells} ({job.writer.finished_now} by this run); "
            f"{_tables_state(job)}; run the same command again to resume"
        ) from None
    job.merge(changed=job.writer.finished_now > 0)
    distributed.barrier(ctx, "the end of the sweep")
    return root


def _tables_state(job: _Job) -> str:
    """What an interrupted sweep left of the run's tables, for the message."""
    if job.writer.dir.manifest.is_file():
        return "the run's tables and manifest.json are unchanged (they hold the last finished sweep)"
    return "no tables were written yet (they are written when every unit is done)"
