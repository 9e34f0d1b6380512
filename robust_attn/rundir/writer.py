"""Writing a run directory: one atomically written unit per finished cell under ``cells/``
(see :mod:`.store`), merged once at the end of a sweep into the tables a user reads
(``results.csv``, ``samples.parquet``, the probe tables, the attention examples) and
``manifest.json``. The plan (``cells/plan.json``) is written first with every planned unit, so a
sweep stopped half-way (killed, out of disk) is known to be incomplete and says which units are
missing, while the tables and manifest of an earlier merge stay exactly as they were: an
interrupted or failed sweep leaves the directory as it found it, plus its finished units."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from robust_attn.atomic import atomic_bytes
from robust_attn.errors import RunDirError
from robust_attn.rundir import manifest as manifest_file
from robust_attn.rundir import schema
from robust_attn.rundir.aggregate import results_table
from robust_attn.rundir.integrity import file_record, mismatched
from robust_attn.rundir.layout import RunDir, disk_full
from robust_attn.rundir.store import PROBE_TABLES, assemble, finished_records, is_done
from robust_attn.rundir.units import Cell, CellOutcome, ProbeCell, ProbeOutcome, Unit


def _table(columns: tuple[schema.Column, ...], data: dict[str, Any], n: int) -> Any:
    """An Arrow table with exactly ``columns``: absent nullable columns are all null."""
    import pyarrow as pa

    unknown = set(data) - {c.name for c in columns}
    if unknown:
        raise ValueError(f"columns {sorted(unknown)} are not in the run directory's schema")  # a bug: the schema owns the columns
    arrays = []
    for c in columns:
        typ = schema.arrow_type(c.type)
        if c.name in data and data[c.name] is not None:
            value = data[c.name]
            if np.isscalar(value) or isinstance(value, str):
                arrays.append(pa.array([value] * n, type=typ))
            else:
                arrays.append(pa.array(np.asarray(value).reshape(-1), type=typ, from_pandas=True))
        elif c.nullable:
            arrays.append(pa.nulls(n, type=typ))
        else:
            raise ValueError(f"column {c.name!r} is required")
    return pa.Table.from_arrays(arrays, schema=schema.arrow_schema(columns))


def _parquet_bytes(table: Any) -> bytes:
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


def _model_columns(info: Any) -> dict[str, Any]:
    return {"model": info.ref, "architecture": info.architecture, "training_regime": info.training_regime, "train_seed": info.train_seed}


def sample_table(cell: Cell, outcome: CellOutcome, labels: np.ndarray, samples: np.ndarray) -> Any:
    """The long per-sample table of one cell: K x N rows, condition-major (the cell's type says
    which columns name the condition: eps, or corruption and severity)."""
    k, n = outcome.correct.shape
    data: dict[str, Any] = {
        **_model_columns(cell.model),
        "attack": cell.attack,
        "name": cell.name,
        "backend": cell.backend,
        "threat_model": cell.threat_model,
        "mode": cell.mode,
        **cell.columns(n),
        "sample": np.tile(samples.astype(np.int32), k),
        "label": np.tile(labels.astype(np.int16), k),
        "clean_pred": np.tile(outcome.clean_pred.astype(np.int16), k),
        "pred": outcome.pred.astype(np.int16),
        "correct": outcome.correct.astype(bool),
    }
    for name, values in outcome.columns.items():
        values = np.asarray(values)
        data[name] = np.tile(values, k) if values.ndim == 1 else values
    return _table(schema.SAMPLE_COLUMNS, data, k * n)


def unit_record(unit: Unit) -> dict[str, Any]:
    """What the plan records of a unit (the manifest's ``planned`` list)."""
    base = {
        "unit": "probe" if isinstance(unit, ProbeCell) else "attack",
        "slug": unit.slug,
        "config_hash": unit.config_hash,
        "model": unit.model.ref,
        "attack": unit.attack,
    }
    return base | ({"mode": unit.mode} if isinstance(unit, Cell) else {"probe": unit.kind})


class RunWriter:
    """Writes the files of one run directory; every write goes through :meth:`_put`.

    While a sweep runs, only ``cells/`` (whole units, and ``cells/plan.json``) and ``examples/``
    gain files: the tables a user reads and ``manifest.json`` are untouched until :meth:`merge`,
    which writes the new ones into a staging folder and renames them into place, manifest last."""

    def __init__(self, root: str | Path) -> None:
        self.dir = RunDir(root)
        self.finished_now = 0  # units this writer stored (this invocation's share of the run)

    @property
    def root(self) -> Path:
        return self.dir.root

    @contextmanager
    def _writing(self, what: str) -> Iterator[None]:
        """A full disk (or another OS error) while writing is a one-line error: the finished units
        are kept, and the same command resumes from them."""
        try:
            yield
        except OSError as err:
            why = "the disk is full" if disk_full(err) else f"{err.strerror or err}"
            raise RunDirError(
                f"could not write {what} under {self.root} ({why}); finished units are kept in {self.dir.cells} "
                "and the run's tables are unchanged: free space (or fix the folder) and rerun the same command to resume"
            ) from err

    def _put(self, path: Path, data: bytes) -> None:
        """Write one file, atomically: the one place the run directory is written."""
        with self._writing(path.name):
            atomic_bytes(path, data)

    # -- which run this directory holds ---------------------------------------------------------
    def stored(self) -> tuple[str, dict[str, Any]] | None:
        """The merged manifest (``"manifest"``) or, for a sweep that has not merged yet, its plan
        (``"plan"``), whichever holds the spec this directory is for; None for a new directory."""
        for where, path in (("manifest", self.dir.manifest), ("plan", self.dir.plan)):
            if path.is_file():
                return where, manifest_file.load_object(path)
        return None

    def claim(self, fingerprint: str, differences: Callable[[dict[str, Any]], list[str]]) -> None:
        """Refuse to write a sealed run directory, or one that holds the results of another spec
        (``differences(stored spec)`` names the fields in which it differs)."""
        stored = self.stored()
        if stored is None:
            return
        record = stored[1]
        sealed = record.get("sealed")
        if sealed:
            raise RunDirError(
                f"{self.root} is a sealed run directory ({_sealed_note(sealed)}); sweep into another folder (--out), "
                f"or unseal it first with `robust-attn seal --undo {self.root}`"
            )
        theirs = record.get("spec_fingerprint")
        spec = record.get("spec")
        if theirs == fingerprint or (theirs is None and not isinstance(spec, dict)):
            return
        fields = differences(spec) if isinstance(spec, dict) else []
        if theirs is None and not fields:
            return  # written before fingerprints: its spec computes the same numbers
        which = f" (they differ in {', '.join(fields)})" if fields else ""
        raise RunDirError(
            f"{self.root} holds the results of another sweep spec{which}; sweep into another folder (--out), "
            "and combine the two with `robust-attn compare` if you want one report"
        )

    # -- resumable units ------------------------------------------------------------------------
    def is_done(self, unit: Unit) -> bool:
        return is_done(self.dir, unit.slug, unit.config_hash)

    def _finish(self, unit: Unit, files: dict[str, bytes], meta: dict[str, Any]) -> None:
        for name, data in files.items():
            self._put(self.dir.unit_file(name), data)
        record = {**asdict(unit), "unit": "probe" if isinstance(unit, ProbeCell) else "attack", "files": list(files), **meta}
        self._put(self.dir.unit_meta(unit.slug), json.dumps(record, indent=1, default=str).encode())
        self.finished_now += 1

    def write_cell(self, cell: Cell, outcome: CellOutcome, labels: np.ndarray, samples: np.ndarray, meta: dict[str, Any]) -> None:
        """Store one finished attack cell (``meta``: seconds, cost counters, the attack's repr, members)."""
        table = sample_table(cell, outcome, labels, samples)
        self._finish(cell, {f"{cell.slug}.parquet": _parquet_bytes(table)}, meta)

    def write_probe(self, probe: ProbeCell, outcome: ProbeOutcome, meta: dict[str, Any]) -> None:
        """Store one finished probe: its drift, segmentation and indicator rows and its example arrays."""
        info = _model_columns(probe.model) | ({"attack": probe.attack} if probe.kind == "attention" else {})
        files = {}
        for part, (_, columns) in PROBE_TABLES.items():
            rows: dict[str, np.ndarray] = getattr(outcome, part)
            if rows:
                n = len(next(iter(rows.values())))
                files[f"{probe.slug}.{part}.parquet"] = _parquet_bytes(_table(columns, {**info, **rows}, n))
        if outcome.examples:
            files[f"{probe.slug}.examples.npz"] = _npz_bytes(outcome.examples)
        self._finish(probe, files, {**meta, "stages": outcome.stages})

    def write_examples(self, cell: Cell, arrays: dict[str, np.ndarray]) -> None:
        """Adversarial images of the first samples of a cell (spec field save_examples)."""
        self._put(self.dir.examples(cell.slug), _npz_bytes(arrays))

    # -- the plan and the merged product --------------------------------------------------------
    def write_plan(self, manifest: dict[str, Any], units: list[Unit]) -> None:
        """The plan, before any work: what the sweep will compute (``cells/plan.json``; a merged
        product of an earlier invocation stays as it is until this one merges)."""
        out = {"format_version": schema.FORMAT_VERSION, **manifest, "complete": False, schema.PLANNED: [unit_record(u) for u in units]}
        self._put(self.dir.plan, json.dumps(out, indent=1, default=str).encode())

    def progress(self, units: list[Unit]) -> tuple[int, int]:
        """(finished, planned) units of ``units``, as they stand in ``cells/``."""
        return sum(self.is_done(u) for u in units), len(units)

    def merge(self, units: list[Unit], manifest: dict[str, Any], *, changed: bool = True) -> bool:
        """Write the run's tables and manifest from its finished units (once, at the end of a
        sweep): into a staging folder first, then renamed into place, manifest last. With
        ``changed`` False (no unit computed by this invocation) and a merged product that already
        holds exactly these units, nothing is rewritten. Returns whether it wrote."""
        planned = [unit_record(u) for u in units]
        done = finished_records(self.dir, planned)
        if not changed and self._up_to_date(planned):
            return False
        product = assemble(self.dir, done)
        for old in self.root.glob(f"{schema.STAGING}*"):  # left by a merge that was killed (we hold the lock)
            shutil.rmtree(old, ignore_errors=True)
        stage = RunDir(self.root / f"{schema.STAGING}{os.getpid()}")
        try:
            self._write_product(stage, product)
            files = {name: file_record(stage.root / name) for name in sorted(p.name for p in stage.root.iterdir())}
            out = {
                "format_version": schema.FORMAT_VERSION,
                **manifest,
                "complete": len(done) == len(planned),
                schema.PLANNED: planned,
                "cells": product.cells,
                "probes": product.probes,
                "files": files,
            }
            self._put(stage.manifest, json.dumps(out, indent=1, default=str).encode())
            with _interrupts_deferred():
                for name in [*files, schema.MANIFEST]:  # the manifest last: it describes the tables renamed before it
                    os.replace(stage.root / name, self.root / name)
        finally:
            shutil.rmtree(stage.root, ignore_errors=True)
        return True

    def _write_product(self, stage: RunDir, product: Any) -> None:
        self._put(stage.samples, _parquet_bytes(product.samples))
        results = results_table(product.samples.to_pandas(), product.cells)
        self._put(stage.results, results.to_csv(index=False, lineterminator="\n").encode())
        for part, (file_name, _) in PROBE_TABLES.items():
            self._put(stage.table(file_name), _parquet_bytes(product.probe_tables[part]))
        self._put(stage.table(schema.EXAMPLES), _npz_bytes(product.examples))

    def _up_to_date(self, planned: list[dict[str, Any]]) -> bool:
        """Whether manifest.json already describes exactly ``planned``, complete, with intact tables."""
        stored = self.stored()
        if stored is None or stored[0] != "manifest":
            return False
        record = stored[1]
        files = record.get("files")
        return (
            bool(record.get("complete"))
            and record.get(schema.PLANNED) == planned
            and isinstance(files, dict)
            and not mismatched(self.root, files)
        )

    # -- sealing ----------------------------------------------------------------------------------
    def seal(self, note: str, undo: bool = False) -> bool:
        """Mark a finished run directory sealed (a sweep, ``--force`` included, then refuses to write
        it), or unseal it; returns whether anything changed."""
        stored = self.stored()
        if stored is None or stored[0] != "manifest":
            raise RunDirError(f"{self.root} has no merged manifest.json to seal; finish its sweep first (it resumes)")
        record = stored[1]
        if bool(record.get("sealed")) != undo:
            return False
        if undo:
            record.pop("sealed")
        else:
            record["sealed"] = {"at": datetime.now(UTC).isoformat(timespec="seconds"), "note": note}
        self._put(self.dir.manifest, json.dumps(record, indent=1, default=str).encode())
        return True


def _sealed_note(sealed: Any) -> str:
    if isinstance(sealed, dict):
        return "; ".join(str(v) for v in (f"sealed {sealed.get('at')}" if sealed.get("at") else "", sealed.get("note")) if v) or "sealed"
    return "sealed"


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)  # type: ignore[arg-type]
    return buf.getvalue()


@contextmanager
def _interrupts_deferred() -> Iterator[None]:
    """Ctrl-C waits until the block is done (the renames that publish a merge), then stops the
    process as it would have: a merge is published whole or not at all, short of kill -9."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt
