"""Writing a run directory: one atomically written unit per finished cell under ``cells/``
(see :mod:`.store`), merged once at the end of a sweep into the tables a user reads
(``results.csv``, ``samples.parquet``, the probe tables, the attention examples) and
``manifest.json``. The manifest is written first with every planned unit, so a sweep stopped
half-way (killed, out of disk) is known to be incomplete, and says which units are missing."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from robust_attn.atomic import atomic_bytes, atomic_write
from robust_attn.errors import RunDirError
from robust_attn.rundir import schema
from robust_attn.rundir.aggregate import results_table
from robust_attn.rundir.layout import RunDir, disk_full
from robust_attn.rundir.store import PROBE_TABLES, assemble, finished_records, is_done
from robust_attn.rundir.units import AttackCell, CellOutcome, ProbeCell, ProbeOutcome, Unit


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


def _write_parquet(path: Path, table: Any) -> None:
    import pyarrow.parquet as pq

    atomic_write(path, lambda tmp: pq.write_table(table, tmp, compression="zstd"))


def _parquet_bytes(table: Any) -> bytes:
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


def _model_columns(info: Any) -> dict[str, Any]:
    return {"model": info.ref, "architecture": info.architecture, "training_regime": info.training_regime, "train_seed": info.train_seed}


def sample_table(cell: AttackCell, outcome: CellOutcome, labels: np.ndarray, samples: np.ndarray) -> Any:
    """The long per-sample table of one attack cell: K x N rows, eps-major."""
    k, n = outcome.correct.shape
    conditions: dict[str, Any] = {"eps": np.repeat(np.asarray(cell.eps, np.float64), n)}
    if cell.conditions:  # corruption cells: no eps, a corruption and a severity per condition
        conditions = {"eps": None, "corruption": np.repeat(np.asarray([c["corruption"] for c in cell.conditions], dtype=object), n),
                      "severity": np.repeat(np.asarray([c["severity"] for c in cell.conditions], np.int8), n)}  # fmt: skip
    data: dict[str, Any] = {
        **_model_columns(cell.model), "attack": cell.attack, "name": cell.name, "backend": cell.backend,
        "threat_model": cell.threat_model, "norm": None if cell.conditions else cell.norm, "mode": cell.mode, "source": cell.source,
        **conditions, "sample": np.tile(samples.astype(np.int32), k),
        "label": np.tile(labels.astype(np.int16), k), "clean_pred": np.tile(outcome.clean_pred.astype(np.int16), k),
        "pred": outcome.pred.astype(np.int16), "correct": outcome.correct.astype(bool),
    }  # fmt: skip
    for name, values in outcome.columns.items():
        values = np.asarray(values)
        data[name] = np.tile(values, k) if values.ndim == 1 else values
    return _table(schema.SAMPLE_COLUMNS, data, k * n)


def unit_record(unit: Unit) -> dict[str, Any]:
    """What the plan records of a unit (the manifest's ``planned`` list)."""
    base = {"unit": "probe" if isinstance(unit, ProbeCell) else "attack", "slug": unit.slug, "config_hash": unit.config_hash,
            "model": unit.model.ref, "attack": unit.attack}  # fmt: skip
    return base | ({"mode": unit.mode} if isinstance(unit, AttackCell) else {"probe": unit.kind})


class RunWriter:
    """Writes the files of one run directory."""

    def __init__(self, root: str | Path) -> None:
        self.dir = RunDir(root)

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
            raise RunDirError(f"could not write {what} under {self.root} ({why}); finished units are kept in {self.dir.cells}: "
                              "free space (or fix the folder) and rerun the same command to resume") from err  # fmt: skip

    def _atomic(self, path: Path, data: bytes) -> None:
        with self._writing(path.name):
            atomic_bytes(path, data)

    # -- resumable units ------------------------------------------------------------------------
    def is_done(self, unit: Unit) -> bool:
        return is_done(self.dir, unit.slug, unit.config_hash)

    def _finish(self, unit: Unit, files: dict[str, bytes], meta: dict[str, Any]) -> None:
        for name, data in files.items():
            self._atomic(self.dir.unit_file(name), data)
        record = {**asdict(unit), "unit": "probe" if isinstance(unit, ProbeCell) else "attack", "files": list(files), **meta}
        self._atomic(self.dir.unit_meta(unit.slug), json.dumps(record, indent=1, default=str).encode())

    def write_cell(self, cell: AttackCell, outcome: CellOutcome, labels: np.ndarray, samples: np.ndarray, meta: dict[str, Any]) -> None:
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
            buf = io.BytesIO()
            np.savez_compressed(buf, **outcome.examples)  # type: ignore[arg-type]
            files[f"{probe.slug}.examples.npz"] = buf.getvalue()
        self._finish(probe, files, {**meta, "stages": outcome.stages})

    def write_examples(self, cell: AttackCell, arrays: dict[str, np.ndarray]) -> None:
        """Adversarial images of the first samples of a cell (spec field save_examples)."""
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)  # type: ignore[arg-type]
        self._atomic(self.dir.examples(cell.slug), buf.getvalue())

    # -- the plan and the merged product --------------------------------------------------------
    def write_plan(self, manifest: dict[str, Any], units: list[Unit]) -> None:
        """The manifest before any work: what the sweep will compute, marked incomplete (a merged
        product of an earlier invocation stays on disk until this one merges)."""
        self.dir.root.mkdir(parents=True, exist_ok=True)
        out = {"format_version": schema.FORMAT_VERSION, **manifest, "complete": False, schema.PLANNED: [unit_record(u) for u in units]}
        self._atomic(self.dir.manifest, json.dumps(out, indent=1, default=str).encode())

    def merge(self, units: list[Unit], manifest: dict[str, Any]) -> None:
        """Write the run's tables and manifest from its finished units (once, at the end of a sweep)."""
        planned = [unit_record(u) for u in units]
        done = finished_records(self.dir, planned)
        product = assemble(self.dir, done)
        with self._writing(schema.SAMPLES):
            _write_parquet(self.dir.samples, product.samples)
        results = results_table(product.samples.to_pandas(), product.cells)
        self._atomic(self.dir.results, results.to_csv(index=False, lineterminator="\n").encode())
        for part, (file_name, _) in PROBE_TABLES.items():
            with self._writing(file_name):
                _write_parquet(self.dir.table(file_name), product.probe_tables[part])
        buf = io.BytesIO()
        np.savez_compressed(buf, **product.examples)  # type: ignore[arg-type]
        self._atomic(self.dir.table(schema.EXAMPLES), buf.getvalue())
        out = {"format_version": schema.FORMAT_VERSION, **manifest, "complete": len(done) == len(planned), schema.PLANNED: planned,
               "cells": product.cells, "probes": product.probes}  # fmt: skip
        self._atomic(self.dir.manifest, json.dumps(out, indent=1, default=str).encode())
