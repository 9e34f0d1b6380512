"""``robust-attn upgrade RUN_DIR``: convert a run directory of format version 2 or 3 to the current
one, in place, without rerunning anything: one step per version, then the manifest (written last,
with the new record of the tables' sizes and sha256).

Version 4 stores a transfer cell's attack id alone in the ``attack`` column (version 3 wrote
``pgd-10<-builtin/vgg``, the source already in its own column) and gives the indicators table a
``source`` column; the step splits the old ids once, here, the only code that reads them.

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
from robust_attn.rundir import manifest as manifest_file
from robust_attn.rundir import schema
from robust_attn.rundir.aggregate import results_table
from robust_attn.rundir.integrity import file_record
from robust_attn.rundir.layout import RunDir
from robust_attn.rundir.lock import RunLock


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


def _cells(manifest: dict[str, Any], describe: AttackDescriber, path: Path) -> list[dict[str, Any]]:
    by_key = {}
    for a in manifest.get("spec", {}).get("attacks", []):
        key, traits = describe(a)
        by_key[key] = (a, traits)
    out = []
    for i, cell in enumerate(manifest.get("cells", [])):
        if cell["attack"] not in by_key:
            raise RunDirError(
                f"{path}: field 'cells[{i}].attack' names {cell['attack']!r}, which is not among the attacks of the recorded spec "
                f"({', '.join(by_key) or 'none'}); {manifest_file.DAMAGED}"
            )
        a, traits = by_key[cell["attack"]]
        out.append(
            {
                **cell,
                "name": a["name"],
                "backend": a.get("backend", "native"),
                "norm": traits["norm"],
                "eps": list(a["eps"]),
                "params": dict(a.get("params", {})),
                "traits": traits,
            }
        )
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


# What the conversion reads of a version-2 manifest (the rest is copied as it is, then checked as version 3).
V2_FIELDS: tuple[manifest_file.Field, ...] = (
    manifest_file.Field("spec", "v2 spec", "yes", "the sweep spec"),
    manifest_file.Field("models", "map[object]", "yes", "model records"),
    manifest_file.Field("cells", "list[v2 cell]", "yes", "the attack cells"),
    manifest_file.Field("probes", "list[v2 probe]", "no", "the probes"),
)
V2_RECORDS: dict[str, tuple[manifest_file.Field, ...]] = {
    "v2 spec": (manifest_file.Field("attacks", "list[attack]", "yes", "the [[attacks]] tables"),),
    "attack": manifest_file.ATTACK_FIELDS,
    "v2 cell": (manifest_file.Field("attack", "string", "yes", "attack id"),),
    "v2 probe": (manifest_file.Field("model", "string", "yes", "model reference"),),
}


def upgrade_run_dir(root: str | Path, describe: AttackDescriber) -> list[str]:
    """Convert ``root`` from format version 2 or 3 to the current version in place; returns what changed.
    ``describe`` gives the id and declared traits of each attack of the recorded spec (the sweep
    layer's knowledge: the CLI passes it). A directory already at the current version is checked
    and left alone. The new manifest is built and checked before any file is rewritten."""
    run = RunDir(root)
    if not run.manifest.is_file():
        raise RunDirError(f"{run.root} has no {schema.MANIFEST}; is it a run directory? (upgrade converts what a sweep wrote)")
    with RunLock(run.root, instead="", create=False):  # nothing else writes it meanwhile
        return _upgrade(run, describe)


def _upgrade(run: RunDir, describe: AttackDescriber) -> list[str]:
    if not run.manifest.is_file():
        raise RunDirError(f"{run.root} has no {schema.MANIFEST}; is it a run directory? (upgrade converts what a sweep wrote)")
    manifest = manifest_file.load_object(run.manifest)
    version = manifest_file.format_version(manifest, run.manifest)
    if version == schema.FORMAT_VERSION:
        manifest_file.parse(manifest, run.manifest)
        return []
    if manifest.get("sealed"):
        raise RunDirError(
            f"{run.root} is a sealed run directory; unseal it first (`robust-attn seal --undo {run.root}`), upgrade, and seal it again"
        )
    if version not in schema.UPGRADABLE:
        raise RunDirError(f"{run.root} has format version {version}; only versions {schema.UPGRADABLE} can be upgraded, rerun its sweep")
    changes = [f"format version {version} -> {schema.FORMAT_VERSION}"]
    if version == 2:
        manifest, notes = _v2_to_v3(run, manifest, describe)
        changes += notes
    manifest, notes = _v3_to_v4(run, manifest)
    changes += notes
    tables = [
        name
        for name in (
            schema.SAMPLES,
            schema.RESULTS,
            schema.DRIFT,
            schema.SEGMENTATION,
            schema.INDICATORS,
            schema.GENERALISATION,
            schema.EXAMPLES,
        )
        if run.table(name).is_file()
    ]
    out = {
        **manifest,
        "format_version": schema.FORMAT_VERSION,
        "upgraded_from": version,
        "files": {name: file_record(run.table(name)) for name in tables},
    }
    manifest_file.parse(out, run.manifest)
    atomic_bytes(run.manifest, json.dumps(out, indent=1, default=str).encode())  # last: it describes the tables rewritten before it
    return changes


def _v2_to_v3(run: RunDir, manifest: dict[str, Any], describe: AttackDescriber) -> tuple[dict[str, Any], list[str]]:
    """Models' declared traits, cells' attack traits, the threat-model columns."""
    import pandas as pd

    manifest_file.check_record(manifest, V2_FIELDS, V2_RECORDS, run.manifest)
    models, cells = _models(manifest), _cells(manifest, describe, run.manifest)
    probes = [
        {
            **p,
            "training_regime": models.get(p["model"], {}).get("training_regime", "unknown"),
            "architecture": models.get(p["model"], {}).get("architecture", p.get("architecture")),
        }
        for p in manifest.get("probes", [])
    ]
    out = {**manifest, "format_version": 3, "models": models, "cells": cells, "probes": probes, "complete": True, schema.PLANNED: []}
    manifest_file.parse(
        {**out, "format_version": schema.FORMAT_VERSION}, run.manifest
    )  # what version 2 lacks: one line, nothing rewritten yet
    samples = _with_model_columns(pd.read_parquet(run.samples), models).assign(threat_model="white-box")
    _write_table(run.samples, samples, schema.SAMPLE_COLUMNS)
    samples = pd.read_parquet(run.samples)
    for file_name, columns in (
        (schema.DRIFT, schema.DRIFT_COLUMNS),
        (schema.SEGMENTATION, schema.SEGMENTATION_COLUMNS),
        (schema.INDICATORS, schema.INDICATOR_COLUMNS),
    ):
        _write_table(run.table(file_name), _with_model_columns(pd.read_parquet(run.table(file_name)), models), columns)
    results = results_table(samples, cells)
    atomic_bytes(run.results, results.to_csv(index=False, lineterminator="\n").encode())
    regimes = sorted({str(m["training_regime"]) for m in models.values()})
    return out, [
        f"{len(models)} models (training regimes: {', '.join(regimes)})",
        f"{len(cells)} cells with their attack traits",
        f"{len(samples)} per-sample rows, {int(np.sum(results['n']))} counted in results.csv",
    ]


LEGACY_TRANSFER_ID = "<-"  # version 3's transfer ids: "<attack id><-<source>"


def _attack_id(attack: Any) -> Any:
    return attack.partition(LEGACY_TRANSFER_ID)[0] if isinstance(attack, str) else attack


def _v3_to_v4(run: RunDir, manifest: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Transfer cells' attack ids without their source (tables, manifest, finished units); the
    indicators table's source column."""
    import pandas as pd

    samples = pd.read_parquet(run.samples)
    moved = int((samples["threat_model"] == "transfer").sum())
    samples["attack"] = samples["attack"].map(_attack_id)
    _write_table(run.samples, samples, schema.SAMPLE_COLUMNS)
    if run.table(schema.INDICATORS).is_file():
        _write_table(
            run.table(schema.INDICATORS), _split_indicators(pd.read_parquet(run.table(schema.INDICATORS))), schema.INDICATOR_COLUMNS
        )
    cells = [{**c, "attack": _attack_id(c["attack"]), **_source_of(c["attack"])} for c in manifest.get("cells", [])]
    planned = [{**u, "attack": _attack_id(u.get("attack"))} for u in manifest.get(schema.PLANNED, [])]
    results = results_table(pd.read_parquet(run.samples), cells)
    atomic_bytes(run.results, results.to_csv(index=False, lineterminator="\n").encode())
    units = _upgrade_units(run)
    notes = [f"{moved} transfer rows name their attack and source apart"] if moved else []
    return {**manifest, "cells": cells, schema.PLANNED: planned}, notes + (
        [f"{units} finished units under cells/ converted"] if units else []
    )


def _source_of(attack: Any) -> dict[str, Any]:
    """A version-3 transfer id's source, as the cell entry's ``source`` field (others: nothing)."""
    return {"source": attack.partition(LEGACY_TRANSFER_ID)[2]} if isinstance(attack, str) and LEGACY_TRANSFER_ID in attack else {}


def _split_indicators(df: Any) -> Any:
    legacy = df["attack"].astype(str).str.contains(LEGACY_TRANSFER_ID, regex=False)
    df = df.copy()
    df["source"] = [a.partition(LEGACY_TRANSFER_ID)[2] if hit else None for a, hit in zip(df["attack"].astype(str), legacy)]
    df["attack"] = df["attack"].map(_attack_id)
    return df


def _upgrade_units(run: RunDir) -> int:
    """The finished units a resumed sweep merges again: their records and tables, converted."""
    import pandas as pd

    count = 0
    for record_path in sorted(run.cells.glob("*.json")) if run.cells.is_dir() else []:
        if record_path.name == schema.PLAN:
            continue
        record = json.loads(record_path.read_text())
        if not isinstance(record, dict):
            continue
        for name in record.get("files", []):  # idempotent on units without transfer ids
            path = run.unit_file(name)
            if name.endswith(".parquet") and path.is_file():
                columns = schema.INDICATOR_COLUMNS if ".indicators." in name else schema.SAMPLE_COLUMNS
                df = pd.read_parquet(path)
                _write_table(
                    path,
                    _split_indicators(df) if columns is schema.INDICATOR_COLUMNS else df.assign(attack=df["attack"].map(_attack_id)),
                    columns,
                )
        atomic_bytes(record_path, json.dumps({**record, "attack": _attack_id(record["attack"])}, indent=1, default=str).encode())
        count += 1
    return count
