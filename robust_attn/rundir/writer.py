"""Writing a run directory: one atomically written unit per finished cell under ``cells/``, merged
into the tables a user reads (``results.csv``, ``samples.parquet``, the probe tables, the
attention examples) and ``manifest.json``.

A unit's ``.json`` is written after its data files, each by rename, so a unit is complete
exactly when its ``.json`` exists, names the unit's config hash and lists files that exist.
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from robust_attn.atomic import atomic_bytes, atomic_write
from robust_attn.rundir import schema


@dataclass(frozen=True)
class ModelInfo:
    """Who a row belongs to: the reference as written in the spec, its architecture and training seed."""

    ref: str
    architecture: str | None = None
    train_seed: int | None = None


@dataclass
class AttackCell:
    """One (model, attack, mode) over its eps grid: the resumable unit of a sweep."""

    model: ModelInfo
    attack: str  # the spec's attack id
    name: str
    backend: str
    norm: str
    mode: str
    params: dict[str, Any]
    eps: list[float]
    config_hash: str

    @property
    def slug(self) -> str:
        return self.config_hash[:16]


@dataclass
class CellOutcome:
    """Per-sample outcomes of one attack cell over K eps and N samples."""

    pred: np.ndarray  # (K, N) predicted labels
    correct: np.ndarray  # (K, N) bool
    clean_pred: np.ndarray  # (N,)
    columns: dict[str, np.ndarray] = field(default_factory=dict)  # optional sample columns, (N,) or (K, N)


@dataclass
class ProbeCell:
    """A per-model measurement unit: the attention / segmentation probe (``kind="attention"``) or
    the indicators of attack failure (``kind="indicators"``)."""

    model: ModelInfo
    attack: str  # attention: the attack that made the adversarial images, e.g. PGD-10
    config_hash: str
    kind: str = "attention"

    @property
    def slug(self) -> str:
        return self.config_hash[:16]


@dataclass
class ProbeOutcome:
    """Tables (column name -> array) and example arrays of a probe unit."""

    drift: dict[str, np.ndarray] = field(default_factory=dict)  # one row per sample x stage x eps
    segmentation: dict[str, np.ndarray] = field(default_factory=dict)
    examples: dict[str, np.ndarray] = field(default_factory=dict)  # images (E, B, C, H, W), maps (E, S, B, H, W), preds (E, B), eps (E,)
    stages: list[str] = field(default_factory=list)
    indicators: dict[str, np.ndarray] = field(default_factory=dict)  # one row per (attack, indicator)


PROBE_TABLES = {
    "drift": (schema.DRIFT, schema.DRIFT_COLUMNS),
    "segmentation": (schema.SEGMENTATION, schema.SEGMENTATION_COLUMNS),
    "indicators": (schema.INDICATORS, schema.INDICATOR_COLUMNS),
}


def _table(columns: tuple[schema.Column, ...], data: dict[str, Any], n: int) -> Any:
    """An Arrow table with exactly ``columns``: absent nullable columns are all null."""
    import pyarrow as pa

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


def sample_table(cell: AttackCell, outcome: CellOutcome, labels: np.ndarray, samples: np.ndarray) -> Any:
    """The long per-sample table of one attack cell: K x N rows, eps-major."""
    k, n = outcome.correct.shape
    data: dict[str, Any] = {
        "model": cell.model.ref, "architecture": cell.model.architecture, "train_seed": cell.model.train_seed,
        "attack": cell.attack, "name": cell.name, "backend": cell.backend, "norm": cell.norm, "mode": cell.mode,
        "eps": np.repeat(np.asarray(cell.eps, np.float64), n), "sample": np.tile(samples.astype(np.int32), k),
        "label": np.tile(labels.astype(np.int16), k), "clean_pred": np.tile(outcome.clean_pred.astype(np.int16), k),
        "pred": outcome.pred.astype(np.int16), "correct": outcome.correct.astype(bool),
    }  # fmt: skip
    for name, values in outcome.columns.items():
        values = np.asarray(values)
        data[name] = np.tile(values, k) if values.ndim == 1 else values
    return _table(schema.SAMPLE_COLUMNS, data, k * n)


class RunWriter:
    """Writes the files of one run directory."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.cells_dir = self.root / schema.CELLS

    # -- resumable units ------------------------------------------------------------------
    def _meta_path(self, slug: str) -> Path:
        return self.cells_dir / f"{slug}.json"

    def is_done(self, unit: AttackCell | ProbeCell) -> bool:
        path = self._meta_path(unit.slug)
        try:
            meta = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return False
        return meta.get("config_hash") == unit.config_hash and all((self.cells_dir / f).is_file() for f in meta.get("files", []))

    def _finish(self, unit: AttackCell | ProbeCell, files: dict[str, bytes], meta: dict[str, Any]) -> None:
        for name, data in files.items():
            atomic_bytes(self.cells_dir / name, data)
        record = {**asdict(unit), "kind": "probe" if isinstance(unit, ProbeCell) else "attack", "files": list(files), **meta}
        atomic_bytes(self._meta_path(unit.slug), json.dumps(record, indent=1, default=str).encode())

    def write_cell(self, cell: AttackCell, outcome: CellOutcome, labels: np.ndarray, samples: np.ndarray, meta: dict[str, Any]) -> None:
        """Store one finished attack cell (``meta``: seconds, cost counters, the attack's repr)."""
        table = sample_table(cell, outcome, labels, samples)
        self._finish(cell, {f"{cell.slug}.parquet": _parquet_bytes(table)}, meta)

    def write_probe(self, probe: ProbeCell, outcome: ProbeOutcome, meta: dict[str, Any]) -> None:
        """Store one finished probe: its drift and segmentation rows and its example arrays."""
        info = {"model": probe.model.ref, "architecture": probe.model.architecture, "train_seed": probe.model.train_seed}
        if probe.kind == "attention":
            info["attack"] = probe.attack
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

    def read_meta(self, unit: AttackCell | ProbeCell) -> dict[str, Any]:
        meta: dict[str, Any] = json.loads(self._meta_path(unit.slug).read_text())
        return meta

    # -- the merged product ---------------------------------------------------------------
    def merge(self, cells: list[AttackCell], probes: list[ProbeCell], manifest: dict[str, Any]) -> None:
        """Rewrite the run's tables and manifest from its finished units (in the given order)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        from robust_attn.rundir.aggregate import results_table

        done = [c for c in cells if self.is_done(c)]
        metas = {c.slug: self.read_meta(c) for c in done}
        parts = [pq.read_table(self.cells_dir / f"{c.slug}.parquet") for c in done]
        samples = pa.concat_tables(parts) if parts else schema.arrow_schema(schema.SAMPLE_COLUMNS).empty_table()
        _write_parquet(self.root / schema.SAMPLES, samples)
        results = results_table(samples.to_pandas(), {c.slug: (c, metas[c.slug]) for c in done})
        atomic_bytes(self.root / schema.RESULTS, results.to_csv(index=False, lineterminator="\n").encode())

        done_probes = [p for p in probes if self.is_done(p)]
        for part, (file_name, columns) in PROBE_TABLES.items():
            paths = [self.cells_dir / f"{p.slug}.{part}.parquet" for p in done_probes]
            tables = [pq.read_table(path) for path in paths if path.is_file()]
            merged = pa.concat_tables(tables) if tables else schema.arrow_schema(columns).empty_table()
            _write_parquet(self.root / file_name, merged)
        probe_records = []
        examples: dict[str, np.ndarray] = {}
        for i, p in enumerate(done_probes):
            meta = self.read_meta(p)
            path = self.cells_dir / f"{p.slug}.examples.npz"
            if path.is_file():
                with np.load(path) as z:
                    examples.update({schema.example_key(i, key): z[key] for key in z.files})
            probe_records.append({"kind": p.kind, "model": p.model.ref, "architecture": p.model.architecture, "train_seed": p.model.train_seed,
                                  "attack": p.attack, "stages": meta.get("stages", []), "seconds": meta.get("seconds"),
                                  "examples": path.is_file()})  # fmt: skip
        buf = io.BytesIO()
        np.savez_compressed(buf, **examples)  # type: ignore[arg-type]
        atomic_bytes(self.root / schema.EXAMPLES, buf.getvalue())

        out = {
            "format_version": schema.FORMAT_VERSION,
            **manifest,
            "cells": [{"model": c.model.ref, "attack": c.attack, "mode": c.mode, "slug": c.slug,
                       **{k: metas[c.slug].get(k) for k in ("seconds", "attack_repr", "forwards", "backwards")},
                       **{k: metas[c.slug][k] for k in ("members",) if k in metas[c.slug]}} for c in done],
            "probes": probe_records,
        }  # fmt: skip
        atomic_bytes(self.root / schema.MANIFEST, json.dumps(out, indent=1, default=str).encode())
