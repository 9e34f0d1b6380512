"""The resumable units under ``cells/``: one JSON record per finished unit (written last, by
rename, so a unit is complete exactly when its record exists, names the unit's config hash and
lists files that exist) plus its data files; and their assembly into the run's tables, which the
writer merges once at the end of a sweep and the reader rebuilds for a sweep that did not finish."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from robust_attn.rundir import schema
from robust_attn.rundir.layout import RunDir

PROBE_TABLES = {
    "drift": (schema.DRIFT, schema.DRIFT_COLUMNS),
    "segmentation": (schema.SEGMENTATION, schema.SEGMENTATION_COLUMNS),
    "indicators": (schema.INDICATORS, schema.INDICATOR_COLUMNS),
    "generalisation": (schema.GENERALISATION, schema.GENERALISATION_COLUMNS),
}
CELL_RECORD_KEYS = (
    "seconds",
    "attack_repr",
    "forwards",
    "backwards",
    "members",
    "traits",
    "name",
    "backend",
    "norm",
    "eps",
    "params",
    "source",
)


def read_record(run: RunDir, slug: str) -> dict[str, Any] | None:
    """A finished unit's record, or None when the unit is not complete."""
    try:
        record: dict[str, Any] = json.loads(run.unit_meta(slug).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if not all(run.unit_file(f).is_file() for f in record.get("files", [])):
        return None
    return record


def is_done(run: RunDir, slug: str, config_hash: str) -> bool:
    record = read_record(run, slug)
    return record is not None and record.get("config_hash") == config_hash


def finished_records(run: RunDir, planned: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records of the planned units that are complete, in plan order."""
    out = []
    for unit in planned:
        record = read_record(run, unit["slug"])
        if record is not None and record.get("config_hash") == unit["config_hash"]:
            out.append(record)
    return out


@dataclass
class Assembled:
    """The run's tables, built from finished unit records."""

    samples: Any  # pyarrow.Table with schema.SAMPLE_COLUMNS
    probe_tables: dict[str, Any]  # part -> pyarrow.Table
    examples: dict[str, np.ndarray] = field(default_factory=dict)
    cells: list[dict[str, Any]] = field(default_factory=list)  # manifest entries of the attack cells
    probes: list[dict[str, Any]] = field(default_factory=list)  # manifest entries of the probe units


def cell_entry(record: dict[str, Any]) -> dict[str, Any]:
    """What the manifest keeps of a finished attack cell."""
    model = record["model"]
    return {
        "model": model["ref"],
        "attack": record["attack"],
        "mode": record["mode"],
        "slug": record["config_hash"][:16],
        **{k: record.get(k) for k in CELL_RECORD_KEYS if k in record},
    }


def probe_entry(record: dict[str, Any], has_examples: bool) -> dict[str, Any]:
    model = record["model"]
    return {
        "kind": record.get("kind", "attention"),
        "slug": record["config_hash"][:16],
        "model": model["ref"],
        "architecture": model.get("architecture"),
        "training_regime": model.get("training_regime"),
        "train_seed": model.get("train_seed"),
        "attack": record["attack"],
        "stages": record.get("stages", []),
        "seconds": record.get("seconds"),
        "examples": has_examples,
    }


def assemble(run: RunDir, records: list[dict[str, Any]]) -> Assembled:
    """Concatenate the finished units' tables (attack cells in record order, then probes)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    attack = [r for r in records if r.get("unit") == "attack"]
    probes = [r for r in records if r.get("unit") == "probe"]
    parts = [pq.read_table(run.unit_file(f"{r['config_hash'][:16]}.parquet")) for r in attack]
    samples = pa.concat_tables(parts) if parts else schema.arrow_schema(schema.SAMPLE_COLUMNS).empty_table()
    tables = {}
    for part, (_, columns) in PROBE_TABLES.items():
        paths = [run.unit_file(f"{r['config_hash'][:16]}.{part}.parquet") for r in probes]
        found = [pq.read_table(p) for p in paths if p.is_file()]
        tables[part] = pa.concat_tables(found) if found else schema.arrow_schema(columns).empty_table()
    examples: dict[str, np.ndarray] = {}
    probe_entries = []
    for i, r in enumerate(probes):
        path = run.unit_file(f"{r['config_hash'][:16]}.examples.npz")
        if path.is_file():
            with np.load(path) as z:
                examples.update({schema.example_key(i, key): z[key] for key in z.files})
        probe_entries.append(probe_entry(r, path.is_file()))
    return Assembled(samples, tables, examples, [cell_entry(r) for r in attack], probe_entries)
