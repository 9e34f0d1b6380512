"""Read a sweep's run directory (results.csv, outcomes.npz, manifest.json) with clear errors."""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from robust_attn.sweeps.store import RESULT_COLUMNS


class RunDirError(ValueError):
    """A run directory is missing a file or holds a malformed one."""


@dataclass
class CellOutcomes:
    """Per-sample outcomes of one (model, attack, mode) cell."""

    model: str
    attack: str
    mode: str
    eps: np.ndarray  # (K,)
    correct: np.ndarray  # (K, N) bool
    pred: np.ndarray  # (K, N)


@dataclass
class Run:
    """Everything a report needs from a run directory."""

    root: Path
    results: pd.DataFrame
    manifest: dict[str, Any]
    labels: np.ndarray
    cells: dict[tuple[str, str, str], CellOutcomes] = field(default_factory=dict)
    clean_pred: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def models(self) -> list[str]:
        return list(dict.fromkeys(self.results["model"]))

    @property
    def attacks(self) -> list[str]:
        return list(dict.fromkeys(self.results["attack"]))

    def clean_correct(self, model: str) -> np.ndarray:
        return self.clean_pred[model] == self.labels

    def clean_accuracy(self, model: str) -> float:
        return float(self.clean_correct(model).mean())


def _need(root: Path, name: str) -> Path:
    path = root / name
    if not path.is_file():
        raise RunDirError(f"{root} has no {name}; run `robust-attn sweep SPEC --out {root}` first (or finish it: it resumes)")
    return path


def load_run(root: str | Path) -> Run:
    """Load and cross-check the three files of a run directory."""
    root = Path(root)
    if not root.is_dir():
        raise RunDirError(f"run directory {str(root)!r} does not exist; run `robust-attn sweep SPEC` to create it")
    try:
        results = pd.read_csv(_need(root, "results.csv"))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise RunDirError(f"{root / 'results.csv'} is not a readable CSV ({err}); rerun the sweep with --force") from None
    missing = [c for c in RESULT_COLUMNS if c not in results.columns]
    if missing or results.empty:
        raise RunDirError(f"{root / 'results.csv'} is malformed (missing columns {missing} or no rows); rerun the sweep with --force")
    try:
        manifest = json.loads(_need(root, "manifest.json").read_text())
    except json.JSONDecodeError as err:
        raise RunDirError(f"{root / 'manifest.json'} is not valid JSON ({err}); rerun the sweep") from None
    try:
        with np.load(_need(root, "outcomes.npz")) as z:
            arrays = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as err:
        raise RunDirError(f"{root / 'outcomes.npz'} is corrupt ({err}); rerun the sweep (finished cells are kept under cells/)") from None
    if "labels" not in arrays or "cells" not in arrays:
        raise RunDirError(f"{root / 'outcomes.npz'} lacks 'labels' or 'cells'; it was not written by robust-attn sweep")
    run = Run(root, results, manifest, arrays["labels"].astype(np.int64))
    for i, name in enumerate(arrays["cells"].tolist()):
        model, attack, mode = name.split("|")
        run.cells[(model, attack, mode)] = CellOutcomes(
            model, attack, mode, arrays[f"cell{i}_eps"], arrays[f"cell{i}_correct"], arrays[f"cell{i}_pred"]
        )
    for key, value in arrays.items():
        if key.startswith("clean_pred|"):
            run.clean_pred[key.split("|", 1)[1]] = value.astype(np.int64)
    for model in run.models:
        if model not in run.clean_pred:
            raise RunDirError(f"{root / 'outcomes.npz'} has no clean predictions for {model!r}; rerun the sweep with --force")
    return run
