"""``robust-attn upgrade RUN_DIR``: convert a run directory of format version 2 to the current
one, in place, without rerunning anything.

Version 3 records what models and attacks declare instead of strings to parse: each model's
``architecture`` and ``training_regime`` become separate fields (version 2 wrote
``vgg-att3-pc+fgsm-at``), each cell records its attack's traits, the per-sample table gains the
threat-model columns (all white-box in version 2) and loses the per-sample pass counts (never
filled). Traits of version-2 cells are looked up in today's attack registry by the recorded
attack name: that is the one place a name is read, to translate data written before the traits
were recorded; the caller (the CLI) supplies that lookup, so this module knows no attack.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from robust_attn.atomic import atomic_bytes, atomic_write
from robust_attn.errors import RunDirError
from robust_attn.rundir import schema
from robust_attn.rundir.aggregate import results_table
from robust_attn.rundir.layout import RunDir


def _regime(record: dict[str, Any]) -> str:
    from robust_attn.training import RECIPES

    recipe = record.get("recipe")
    if recipe is None:
        return "unknown"
    known = RECIPES.get(str(recipe))
    return "clean" if known is not None and known.adversarial == "none" else str(recipe)


def _models(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out = {}
    for ref, record in manifest.get("models", {}).items():
        arch = record.get("model_name") or record.get("architecture") or ref
        out[ref] = {**record, "architecture": arch, "training_regime": _regime(record), "has_attention": bool(record.get("attention"))}
        out[ref].pop("attention", None)
    return out


AttackDescriber = Callable[[dict[str, Any]], tuple[str, dict[str, Any]]]  # a spec's attack table -> (its id, its traits)


def _cells(manifest: dict[str, Any], describe: AttackDescriber) -> list[dict[str, Any]]:
    by_key = {}
    for a in manifest.get("spec", {}).get("attacks", []):
        key, traits = describe(a)
        by_key[key] = (a, traits)
    out = []
    for cell in manifest.get("cells", []):
        a, traits = by_key[cell["attack"]]
        out.append({**cell, "name": a["name"], "backend": a.get("backend", "native"), "norm": traits["norm"], "eps": list(a["eps"]),
                    "params": dict(a.get("params", {})), "traits": traits})  # fmt: skip
    return out


def _with_model_columns(df: Any, models: dict[str, dict[str, Any]]) -> Any:
    df = df.copy()
    df["architecture"] = df["model"].map({m: r["architecture"] for m, r in models.items()})
    df["training_regime"] = df["model"].map({m: r["training_regime"] for m, r in models.items()})
    return df


def _write_table(path: Path, df: Any, columns: tuple[schema.Column, ...]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    for c in columns:
        if c.name not in df.columns:
            df[c.name] = None
    table = pa.Table.from_pandas(df[[c.name for c in columns]], schema=schema.arrow_schema(columns), preserve_index=False)
    atomic_write(path, lambda tmp: pq.write_table(table, tmp, compression="zstd"))


def upgrade_run_dir(root: str | Path, describe: AttackDescriber) -> list[str]:
    """Convert ``root`` from format version 2 to the current version in place; returns what changed.
    ``describe`` gives the id and declared traits of each attack of the recorded spec (the sweep
    layer's knowledge: the CLI passes it). A directory already at the current version is left alone."""
    import pandas as pd

    run = RunDir(root)
    try:
        manifest = json.loads(run.manifest.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise RunDirError(f"{run.manifest} cannot be read ({err}); is {run.root} a run directory?") from None
    version = manifest.get("format_version", 1)
    if version == schema.FORMAT_VERSION:
        return []
    if version not in schema.UPGRADABLE:
        raise RunDirError(f"{run.root} has format version {version}; only versions {schema.UPGRADABLE} can be upgraded, rerun its sweep")
    models, cells = _models(manifest), _cells(manifest, describe)
    samples = _with_model_columns(pd.read_parquet(run.samples), models).assign(threat_model="white-box")
    _write_table(run.samples, samples, schema.SAMPLE_COLUMNS)
    samples = pd.read_parquet(run.samples)
    for file_name, columns in ((schema.DRIFT, schema.DRIFT_COLUMNS), (schema.SEGMENTATION, schema.SEGMENTATION_COLUMNS),
                               (schema.INDICATORS, schema.INDICATOR_COLUMNS)):  # fmt: skip
        _write_table(run.table(file_name), _with_model_columns(pd.read_parquet(run.table(file_name)), models), columns)
    results = results_table(samples, cells)
    atomic_bytes(run.results, results.to_csv(index=False, lineterminator="\n").encode())
    probes = [{**p, "training_regime": models.get(p["model"], {}).get("training_regime", "unknown"),
               "architecture": models.get(p["model"], {}).get("architecture", p.get("architecture"))} for p in manifest.get("probes", [])]  # fmt: skip
    out = {**manifest, "format_version": schema.FORMAT_VERSION, "models": models, "cells": cells, "probes": probes, "complete": True,
           schema.PLANNED: [], "upgraded_from": version}  # fmt: skip
    atomic_bytes(run.manifest, json.dumps(out, indent=1, default=str).encode())
    regimes = sorted({str(m["training_regime"]) for m in models.values()})
    return [f"format version {version} -> {schema.FORMAT_VERSION}", f"{len(models)} models (training regimes: {', '.join(regimes)})",
            f"{len(cells)} cells with their attack traits", f"{len(samples)} per-sample rows, {int(np.sum(results['n']))} counted in results.csv"]  # fmt: skip
