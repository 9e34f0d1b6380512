"""``robust-attn compare``: several run directories as one run, so a report (architecture-level
statistics, the paper's claims, curves, paired tests) can compare models that were swept apart:
a new model swept with a reference study's settings is compared with the study without
rerunning it.

The combined directory is an ordinary run directory of the current format holding the union of
the runs' models. Paired tests need the same test images, so runs are refused unless they share
the data set, split, data seed and sample ids with their labels, and an attack id present in
several runs must mean one evaluation there (same attack, backend, parameters and eps grid).
An attack present in only some runs is kept for those runs' models and listed under
``partial_attacks``. A model reference in two runs is one model only if its weights agree (their
sha256, else its clean predictions): it is kept from the first run, and gains the cells only a
later run has when its clean predictions agree there (``duplicate_models`` says which). Everything
is written into a temporary folder beside ``out`` and renamed into place, so ``out`` is never half
written. The manifest's ``combined_notes`` are one line each for a report to print.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from robust_attn.epsilon import format_eps
from robust_attn.errors import RunDirError, UsageError
from robust_attn.rundir import manifest as manifest_file
from robust_attn.rundir import schema
from robust_attn.rundir.aggregate import results_table
from robust_attn.rundir.layout import RunDir, disk_full
from robust_attn.rundir.reader import Run, load_run, read_manifest
from robust_attn.rundir.store import PROBE_TABLES

DATA_KEYS = ("name", "split", "seed", "image_shape", "classes")  # what makes two runs' images the same (n: the sample ids)
SETTING_KEYS = ("precision", "channels_last", "fold_bn", "batch_size", "seed")  # differ: noted, not refused


@dataclass(frozen=True)
class Source:
    """One run directory being combined: its path as the user gave it, its data and manifest hash."""

    label: str
    run: Run
    manifest_sha256: str


def combine_runs(dirs: Sequence[str | Path], out: str | Path, *, name: str | None = None, force: bool = False) -> Path:
    """Write a new run directory ``out`` holding the models of every run in ``dirs`` on their shared
    samples, and return it; refuses (RunDirError, one line) runs that cannot be compared. ``force``
    replaces an ``out`` that an earlier combine wrote. The report is the caller's:
    ``robust_attn.reports.make_report(out)``."""
    out = Path(out)
    sources = _load_sources(dirs, out, force)
    _check_data(sources)
    _check_samples(sources)
    _check_attacks(sources)
    plan = _plan(sources)
    manifest = _manifest(sources, plan, name or out.name)
    _write_atomically(out, lambda tmp: _write(tmp, sources, plan, manifest))
    return out


# -- inputs -------------------------------------------------------------------------------------
def _load_sources(dirs: Sequence[str | Path], out: Path, force: bool) -> list[Source]:
    if not dirs:
        raise UsageError("compare needs at least one run directory, got none; name them: robust-attn compare RUN_DIR... --out DIR")
    seen: dict[Path, str] = {}
    for d in dirs:
        read_manifest(d)  # a folder that is no run directory (or of another format version) fails here, in one line
        real = Path(d).resolve()
        if real in seen:
            raise UsageError(f"run directory {str(d)!r} is given twice ({seen[real]!r}); name each run once")
        seen[real] = str(d)
        if out.resolve() == real or real in out.resolve().parents:
            raise UsageError(f"--out {out} lies inside the run directory {d}; write the combined run elsewhere")
    _check_out(out, force)
    sources = []
    for d in dirs:
        run = load_run(d)
        if run.missing:
            raise RunDirError(f"{d} is an unfinished run: {run.missing_summary()}")
        sha = hashlib.sha256(RunDir(d).manifest.read_bytes()).hexdigest()
        sources.append(Source(str(d), run, sha))
    return sources


def _check_out(out: Path, force: bool) -> None:
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        RunDir(out).check_writable("write the combined run directory")
        return
    if not force:
        raise RunDirError(f"{out} already exists; choose a new --out, or pass --force to replace a combined run written there before")
    try:
        previous = manifest_file.load_object(RunDir(out).manifest)
    except RunDirError:
        previous = {}  # no readable manifest: not a combined run, refused below
    if "combined_from" not in previous:
        raise RunDirError(
            f"{out} exists and was not written by robust-attn compare; --force replaces only a combined run, choose another --out"
        )
    if previous.get("sealed"):
        raise RunDirError(
            f"{out} is a sealed run directory; --force does not replace it: choose another --out "
            f"(or unseal it first with `robust-attn seal --undo {out}`)"
        )


def _differ(sources: list[Source], value: Any, what: str, show: Any = str) -> None:
    """Refuse when ``value(source)`` is not the same for every run, naming the first two that differ."""
    first = value(sources[0])
    for s in sources[1:]:
        if value(s) != first:
            raise RunDirError(
                f"runs differ in {what}: {sources[0].label} has {show(first)}, {s.label} has {show(value(s))}; "
                "compare runs swept with the same data settings (dataset, split, n, seed of the reference spec)"
            )


def _check_data(sources: list[Source]) -> None:
    def data(s: Source) -> dict[str, Any]:
        ds = s.run.manifest.get("dataset", {})
        return {k: ds.get(k) for k in DATA_KEYS}

    def show(d: dict[str, Any]) -> str:
        return f"{d['name']} {d['split']} split (data seed {d['seed']}, images {d['image_shape']}, {len(d['classes'] or [])} classes)"

    _differ(sources, data, "their data set", show)


def _sample_ids(s: Source) -> tuple[np.ndarray, np.ndarray]:
    first = s.run.samples.drop_duplicates("sample").sort_values("sample")
    return first["sample"].to_numpy(np.int64), first["label"].to_numpy(np.int64)


def _check_samples(sources: list[Source]) -> None:
    ids0, labels0 = _sample_ids(sources[0])
    for s in sources[1:]:
        ids, labels = _sample_ids(s)
        if len(ids) != len(ids0) or not np.array_equal(ids, ids0):
            raise RunDirError(
                f"runs differ in their samples: {sources[0].label} has {_show_ids(ids0)}, {s.label} has {_show_ids(ids)}; "
                "paired comparisons need the same images: sweep with the same n (and dataset, split, seed)"
            )
        if not np.array_equal(labels, labels0):
            bad = np.nonzero(labels != labels0)[0]
            raise RunDirError(
                f"runs {sources[0].label} and {s.label} have the same sample ids but different labels on {len(bad)} samples "
                f"(first: sample {ids[bad[0]]}); they were not drawn from the same data, sweep with the same dataset and seed"
            )


def _show_ids(ids: np.ndarray) -> str:
    contiguous = len(ids) and ids[-1] - ids[0] + 1 == len(ids)
    return f"{len(ids)} samples" + (f" (ids {ids[0]}-{ids[-1]})" if contiguous else "")


def _attack_definitions(s: Source) -> dict[str, dict[str, Any]]:
    """Attack id -> what defines its evaluation: name, backend, parameters as the spec gave them, eps
    grid (from its first cell: the same for every model of a run)."""
    out: dict[str, dict[str, Any]] = {}
    for cell in s.run.manifest.get("cells", []):
        if cell["attack"] not in out:
            grid = [float(e) for e in cell.get("eps") or []]
            out[cell["attack"]] = {
                "name": cell.get("name"),
                "backend": cell.get("backend"),
                **(cell.get("params") or {}),
                "eps": grid,
                "norm": cell.get("norm"),
            }
    return out


def _check_attacks(sources: list[Source]) -> None:
    seen: dict[str, tuple[str, dict[str, Any]]] = {}
    for s in sources:
        for attack, d in _attack_definitions(s).items():
            if attack not in seen:
                seen[attack] = (s.label, d)
                continue
            label, first = seen[attack]
            if len(d["eps"]) != len(first["eps"]) or not np.allclose(d["eps"], first["eps"], rtol=0, atol=1e-12):
                norm = str(d.get("norm") or "linf")
                grids = [", ".join(format_eps(e, norm) for e in g["eps"]) for g in (first, d)]
                raise RunDirError(
                    f"attack {attack!r} has different eps grids in runs {label} ({grids[0]}) and {s.label} ({grids[1]}); "
                    "one attack id must be one evaluation: sweep with the same grid, or give one a distinct label"
                )
            keys = sorted((set(d) | set(first)) - {"eps", "norm"})
            diff = [k for k in keys if d.get(k) != first.get(k)]
            if diff:
                show = [", ".join(f"{k}={g.get(k, '(default)')}" for k in diff) for g in (first, d)]
                raise RunDirError(
                    f"attack {attack!r} has different parameters in runs {label} ({show[0]}) and {s.label} ({show[1]}); "
                    "one attack id must be one evaluation: sweep with the same parameters, or give one a distinct label"
                )


# -- which run each model and cell is taken from -----------------------------------------------
CellKey = tuple[str, str, str]  # (model, attack, mode)


@dataclass(frozen=True)
class Duplicate:
    """A model reference found in several runs: one model, kept from the first run that has it."""

    kept: str  # the run whose results (and probes) are kept
    also_in: list[str]  # the other runs that have it
    why: str  # why the copies are one model
    added: list[str] = field(default_factory=list)  # "attack [mode] from run": cells only a later run had, merged
    left_out: list[str] = field(default_factory=list)  # such cells not merged (the clean predictions differ)


@dataclass
class Plan:
    """Where each model (its record and probes) and each cell of the combined run comes from."""

    models: dict[str, int] = field(default_factory=dict)  # model -> index of its first run
    cells: dict[CellKey, int] = field(default_factory=dict)  # cell -> index of the run it is taken from
    duplicates: dict[str, Duplicate] = field(default_factory=dict)

    def cells_of(self, j: int) -> list[CellKey]:
        return [k for k, i in self.cells.items() if i == j]

    def models_of(self, j: int) -> list[str]:
        return [m for m, i in self.models.items() if i == j]


def _cell_keys(s: Source, model: str) -> list[CellKey]:
    return [(c["model"], c["attack"], c["mode"]) for c in s.run.manifest.get("cells", []) if c["model"] == model]


def _show_cell(key: CellKey) -> str:
    return key[1] if key[2] == "worst-case" else f"{key[1]} [{key[2]}]"


def _plan(sources: list[Source]) -> Plan:
    """Each model from the first run that has it; a later run's copy of the same model (refused
    when its weights differ) adds the cells the earlier runs lack, when its clean predictions agree."""
    plan = Plan()
    for i, s in enumerate(sources):
        for model in s.run.models:
            if model not in plan.models:
                plan.models[model] = i
                plan.cells |= dict.fromkeys(_cell_keys(s, model), i)
                continue
            owner = sources[plan.models[model]]
            why = _same_model(owner, s, model)
            new = [k for k in _cell_keys(s, model) if k not in plan.cells]
            merge = np.array_equal(owner.run.clean_pred[model], s.run.clean_pred[model])
            if merge:
                plan.cells |= dict.fromkeys(new, i)
            d = plan.duplicates.get(model, Duplicate(owner.label, [], why))
            shown = [f"{_show_cell(k)} from {s.label}" for k in new]
            plan.duplicates[model] = Duplicate(
                d.kept, [*d.also_in, s.label], d.why, d.added + (shown if merge else []), d.left_out + ([] if merge else shown)
            )
    order = {m: n for n, m in enumerate(plan.models)}
    plan.cells = dict(sorted(plan.cells.items(), key=lambda kv: order[kv[0][0]]))  # grouped by model, run order within
    return plan


def _same_model(a: Source, b: Source, model: str) -> str:
    """Why ``model`` of runs a and b is one model (its weights hash, else its clean predictions); refuses otherwise."""
    sha_a, sha_b = (s.run.model_info(model).get("weights_sha256") for s in (a, b))
    if sha_a and sha_b:
        if sha_a != sha_b:
            raise RunDirError(
                f"model {model!r} has different weights in runs {a.label} (weights {sha_a[:12]}) and {b.label} "
                f"(weights {sha_b[:12]}); one reference must be one model: rename one checkpoint, or leave it out of one run"
            )
        return f"the same weights (sha256 {sha_a[:12]})"
    pa, pb = a.run.clean_pred[model], b.run.clean_pred[model]
    if not np.array_equal(pa, pb):
        raise RunDirError(
            f"model {model!r} makes different clean predictions in runs {a.label} and {b.label} ({int((pa != pb).sum())} of "
            f"{len(pa)} samples), so its weights (not recorded) differ; give one of them another reference, or leave it out of one run"
        )
    return f"weights not recorded, the same clean predictions on all {len(pa)} samples"


# -- the combined manifest ----------------------------------------------------------------------
def _partial_attacks(plan: Plan) -> dict[str, list[str]]:
    """Attack id (with ``[mode]`` outside worst-case) -> the models that have it, for the attacks not every model has."""
    have: dict[str, list[str]] = {}
    for key in plan.cells:
        have.setdefault(_show_cell(key), []).append(key[0])
    return {k: list(dict.fromkeys(models)) for k, models in have.items() if set(models) != set(plan.models)}


def _union(lists: list[list[Any]]) -> list[Any]:
    """Entries of several lists in order, each once (compared as JSON)."""
    out: dict[str, Any] = {}
    for items in lists:
        for item in items:
            out.setdefault(json.dumps(item, sort_keys=True, default=str), item)
    return list(out.values())


def _spec(sources: list[Source], plan: Plan, name: str) -> dict[str, Any]:
    specs = [s.run.manifest.get("spec", {}) for s in sources]
    out = {**specs[0], "name": name, "models": list(plan.models)}
    for key in ("attacks", "transfer", "modes"):
        out[key] = _union([list(sp.get(key) or []) for sp in specs])
    return out


def _notes(sources: list[Source], plan: Plan, partial: dict[str, list[str]]) -> list[str]:
    """One line each for what a reader of the combined report must know."""
    lines = [
        f"combined from {len(sources)} runs: " + "; ".join(f"{s.label} ({len(plan.models_of(j))} models)" for j, s in enumerate(sources))
    ]
    for model, d in plan.duplicates.items():
        line = f"model {model} is in runs {d.kept} and {', '.join(d.also_in)} with {d.why}: kept the results of {d.kept}"
        line += f", added {', '.join(d.added)}" if d.added else ""
        line += f", left out {', '.join(d.left_out)} (its clean predictions differ there)" if d.left_out else ""
        lines.append(line)
    for attack, models in partial.items():
        runs = sorted({sources[plan.cells[k]].label for k in plan.cells if _show_cell(k) == attack})
        lines.append(
            f"attack {attack} was run on {len(models)} of {len(plan.models)} models (in {', '.join(runs)}): {', '.join(models)}; "
            "its comparisons, and the worst case over attacks of the other models, leave it out"
        )
    for key in SETTING_KEYS:
        values = {s.label: s.run.manifest.get("spec", {}).get(key) for s in sources}
        if len({json.dumps(v) for v in values.values()}) > 1:
            lines.append(f"the runs differ in {key}: " + ", ".join(f"{label} {v}" for label, v in values.items()))
    return lines


def _entries(sources: list[Source], plan: Plan) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The manifest's cell entries (in plan order) and probe entries (from each model's first run)."""
    cells = {
        (c["model"], c["attack"], c["mode"]): c
        for j, s in enumerate(sources)
        for c in s.run.manifest.get("cells", [])
        if plan.cells.get((c["model"], c["attack"], c["mode"])) == j
    }
    probes = [p for j, s in enumerate(sources) for p in s.run.manifest.get("probes", []) if plan.models.get(p["model"]) == j]
    return [cells[k] for k in plan.cells], probes


def _manifest(sources: list[Source], plan: Plan, name: str) -> dict[str, Any]:
    first = sources[0].run.manifest
    partial = _partial_attacks(plan)
    cells, probes = _entries(sources, plan)
    return {
        "format_version": schema.FORMAT_VERSION,
        "spec": _spec(sources, plan, name),
        "spec_path": None,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "device": " + ".join(dict.fromkeys(str(s.run.manifest.get("device")) for s in sources)),
        "device_name": " + ".join(dict.fromkeys(str(s.run.manifest.get("device_name")) for s in sources)),
        "environment": first.get("environment", {}),
        "git_commit": first.get("git_commit"),
        "versions": first.get("versions", {}),
        "dataset": {**first.get("dataset", {}), "n": len(sources[0].run.labels)},
        "models": {m: sources[i].run.model_info(m) for m, i in plan.models.items()},
        "wall_seconds": sum(float(s.run.manifest.get("wall_seconds") or 0) for s in sources),
        "complete": True,
        schema.PLANNED: [],
        "cells": cells,
        "probes": probes,
        "combined_from": [
            {
                "path": str(s.run.root.resolve()),
                "name": s.run.manifest.get("spec", {}).get("name"),
                "manifest_sha256": s.manifest_sha256,
                "created": s.run.manifest.get("created"),
                "git_commit": s.run.manifest.get("git_commit"),
                "models": plan.models_of(j),
            }
            for j, s in enumerate(sources)
        ],
        "partial_attacks": partial,
        "duplicate_models": {m: asdict(d) for m, d in plan.duplicates.items()},
        "combined_notes": _notes(sources, plan, partial),
    }


# -- writing ------------------------------------------------------------------------------------
def _select(path: Path, columns: tuple[schema.Column, ...], models: list[str], cells: list[CellKey] | None = None) -> Any:
    """The rows of ``models`` (or of ``cells``) of one Parquet table, cast to the current schema."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    if cells is None:
        keep = pc.is_in(table["model"], value_set=pa.array(models, pa.string()))
    else:
        joined = pc.binary_join_element_wise(table["model"], table["attack"], table["mode"], "\x1f")
        keep = pc.is_in(joined, value_set=pa.array(["\x1f".join(k) for k in cells], pa.string()))
    return table.filter(keep).select([c.name for c in columns]).cast(schema.arrow_schema(columns))


def _write_tables(tmp: RunDir, sources: list[Source], plan: Plan) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    parts = [s.run.dir.samples for s in sources]
    samples = [_select(path, schema.SAMPLE_COLUMNS, [], plan.cells_of(j)) for j, path in enumerate(parts)]
    pq.write_table(pa.concat_tables(samples), tmp.samples, compression="zstd")
    for file_name, columns in PROBE_TABLES.values():
        empty = schema.arrow_schema(columns).empty_table()  # a table added to the format later is absent from older runs
        tables = [
            _select(path, columns, plan.models_of(j)) if (path := s.run.dir.table(file_name)).is_file() else empty
            for j, s in enumerate(sources)
        ]
        pq.write_table(pa.concat_tables(tables), tmp.table(file_name), compression="zstd")


def _write_examples(tmp: RunDir, sources: list[Source], plan: Plan) -> None:
    """The probes' example arrays, renumbered to the combined probe list."""
    arrays: dict[str, np.ndarray] = {}
    index = 0
    for j, s in enumerate(sources):
        with np.load(s.run.dir.table(schema.EXAMPLES)) as z:
            for i, probe in enumerate(s.run.manifest.get("probes", [])):
                if plan.models.get(probe["model"]) != j:
                    continue
                prefix = schema.example_key(i, "")
                arrays |= {schema.example_key(index, k[len(prefix) :]): z[k] for k in z.files if k.startswith(prefix)}
                index += 1
    with open(tmp.table(schema.EXAMPLES), "wb") as f:
        np.savez_compressed(f, **arrays)  # type: ignore[arg-type]


def _write(root: Path, sources: list[Source], plan: Plan, manifest: dict[str, Any]) -> None:
    import pandas as pd

    tmp = RunDir(root)
    _write_tables(tmp, sources, plan)
    _write_examples(tmp, sources, plan)
    results = results_table(pd.read_parquet(tmp.samples), manifest["cells"])
    tmp.results.write_bytes(results.to_csv(index=False, lineterminator="\n").encode())
    tmp.manifest.write_bytes(json.dumps(manifest, indent=1, default=str).encode())


def _write_atomically(out: Path, write: Any) -> None:
    """``write(tmp)`` into a fresh folder beside ``out``, then rename it to ``out`` (an earlier
    combined run there is replaced only once the new one is complete). A full disk is a one-line
    error and leaves nothing behind."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.combining-"))
    aside = tmp.with_name(tmp.name.replace(".combining-", ".replaced-"))
    try:
        write(tmp)
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; give the folder the permissions mkdir would
        if out.exists():
            os.replace(out, aside)
        os.replace(tmp, out)
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if aside.exists() and not out.exists():
            os.replace(aside, out)
        if isinstance(err, OSError):
            if disk_full(err):
                raise RunDirError(
                    f"could not write the combined run {out} (the disk is full); nothing was written there, free space and rerun"
                ) from err
            if isinstance(err, PermissionError):
                raise RunDirError(
                    f"could not write the combined run {out} ({err.strerror}); nothing was written there, choose a folder you can write"
                ) from err
        raise
    shutil.rmtree(aside, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
