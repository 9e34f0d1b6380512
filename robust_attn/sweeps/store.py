"""A sweep's run directory: one atomic file pair per finished cell, merged into
``results.csv``, ``outcomes.npz`` and ``manifest.json``.

A cell's ``.json`` is written after its ``.npz``, both by rename, so a cell is complete
exactly when its ``.json`` exists and names the cell's config hash.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from robust_attn.stats import wilson_interval

RESULT_COLUMNS = ["model", "attack", "name", "backend", "mode", "params", "eps", "eps_255", "n", "correct",
                  "accuracy", "ci_low", "ci_high", "seconds"]  # fmt: skip


def atomic_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and rename (no half-written file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)  # type: ignore[arg-type]
    return buf.getvalue()


@dataclass
class Cell:
    """One (model, attack, mode) over its eps grid."""

    model: str
    attack: str  # AttackSpec.key
    name: str
    backend: str
    mode: str
    params: dict[str, Any]
    eps: list[float]
    config_hash: str

    @property
    def slug(self) -> str:
        return self.config_hash[:16]


class RunStore:
    """Reads and writes the files of one run directory."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.cells_dir = self.root / "cells"

    def is_done(self, cell: Cell) -> bool:
        meta = self.cells_dir / f"{cell.slug}.json"
        if not meta.is_file() or not (self.cells_dir / f"{cell.slug}.npz").is_file():
            return False
        try:
            return json.loads(meta.read_text()).get("config_hash") == cell.config_hash
        except (json.JSONDecodeError, OSError):
            return False

    def write_cell(
        self, cell: Cell, correct: np.ndarray, pred: np.ndarray, clean_pred: np.ndarray, seconds: float, extra: dict[str, Any]
    ) -> None:
        arrays = {
            "correct": correct.astype(bool),
            "pred": pred.astype(np.int16),
            "clean_pred": clean_pred.astype(np.int16),
            "eps": np.asarray(cell.eps),
        }
        atomic_bytes(self.cells_dir / f"{cell.slug}.npz", npz_bytes(arrays))
        meta = {**cell.__dict__, "seconds": seconds, **extra}
        atomic_bytes(self.cells_dir / f"{cell.slug}.json", json.dumps(meta, indent=1).encode())

    def read_cell(self, cell: Cell) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta = json.loads((self.cells_dir / f"{cell.slug}.json").read_text())
        with np.load(self.cells_dir / f"{cell.slug}.npz") as z:
            return meta, {k: z[k] for k in z.files}

    def merge(self, cells: list[Cell], indices: np.ndarray, labels: np.ndarray, manifest: dict[str, Any]) -> None:
        """Rewrite results.csv, outcomes.npz and manifest.json from the finished cells."""
        rows: list[dict[str, Any]] = []
        arrays: dict[str, np.ndarray] = {"indices": indices, "labels": labels.astype(np.int16)}
        names: list[str] = []
        timings: dict[str, float] = {}
        for cell in cells:
            if not self.is_done(cell):
                continue
            meta, data = self.read_cell(cell)
            i = len(names)
            names.append(f"{cell.model}|{cell.attack}|{cell.mode}")
            arrays[f"cell{i}_correct"] = data["correct"]
            arrays[f"cell{i}_pred"] = data["pred"]
            arrays[f"cell{i}_eps"] = data["eps"]
            arrays[f"clean_pred|{cell.model}"] = data["clean_pred"]
            timings[names[-1]] = meta["seconds"]
            n = data["correct"].shape[1]
            for eps, corr in zip(cell.eps, data["correct"]):
                k = int(corr.sum())
                low, high = wilson_interval(k, n)
                rows.append({"model": cell.model, "attack": cell.attack, "name": cell.name, "backend": cell.backend,
                             "mode": cell.mode, "params": json.dumps(cell.params, sort_keys=True), "eps": repr(float(eps)),
                             "eps_255": f"{eps * 255:.4g}", "n": n, "correct": k, "accuracy": f"{k / n:.6f}",
                             "ci_low": f"{low:.6f}", "ci_high": f"{high:.6f}", "seconds": f"{meta['seconds']:.3f}"})  # fmt: skip
        arrays["cells"] = np.asarray(names, dtype=str)
        buf = io.StringIO()
        writer = csv.DictWriter(buf, RESULT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        atomic_bytes(self.root / "results.csv", buf.getvalue().encode())
        atomic_bytes(self.root / "outcomes.npz", npz_bytes(arrays))
        atomic_bytes(self.root / "manifest.json", json.dumps({**manifest, "cell_seconds": timings}, indent=1, default=str).encode())
