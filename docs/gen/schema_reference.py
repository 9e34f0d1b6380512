"""The run-directory reference, read from :mod:`robust_attn.rundir.schema`: every Parquet table's
columns (``markdown_schema``), the columns of ``results.csv`` and the file names; and
``manifest.json``'s fields, read from :mod:`robust_attn.rundir.manifest` (``markdown_fields``).

Prose the code does not hold (what each file is for, the meaning of the aggregate columns) lives
in the dictionaries below; a file name, table or results column the schema gains without an
entry here stops the build, so the page cannot fall behind the format."""

from __future__ import annotations

from typing import Any

from md import code, table

# schema constant -> what the file holds (files of a run directory, then what `robust-attn report` adds)
FILES: dict[str, str] = {
    "SAMPLES": "one row per (model, attack, mode, eps, sample): the tidy per-sample table below",
    "RESULTS": "its aggregate: one row per (model, attack, mode, eps) with n, correct, accuracy and its 95% Wilson interval, "
    "the cell's seconds and forward/backward passes per sample (columns below)",
    "DRIFT": "one row per (model, stage, eps, sample): 1 - IoU of the top-10% attention regions and cosine similarity of the clean "
    "and adversarial maps",
    "SEGMENTATION": "one row per (model, method, stage, eps, sample): Jaccard index of the binarised attention map (or input-gradient "
    "saliency, or the centred box) against the object mask",
    "INDICATORS": "one row per (model, attack, indicator): the [indicators of attack failure](attacks.md#indicators-of-attack-failure), "
    "measured on diagnostic_samples images",
    "GENERALISATION": "one row per (model, unseen data set, sample): the prediction of a linear probe fitted on the model's frozen "
    "features for a data set it was not trained on (how well its features generalise)",
    "EXAMPLES": "the few images, maps and predictions the report's attention grids show (keys probe{i}_images, ..., i indexing the "
    "manifest's probes)",
    "MANIFEST": "format_version, the spec, data set, each model's checkpoint identity, architecture, training seed and budget, "
    "cells and probes with their seconds and pass counts, library versions and the compute environment (its fields below)",
    "CELLS": "the resumable units the tables are merged from (each written atomically)",
    "PLAN": "under cells/: the plan of a sweep in progress (the manifest it will write, every unit it will compute); the merge "
    "writes manifest.json",
    "LOCK": "present only while a command writes the directory: who holds it (one writer at a time)",
    "STAGING": "prefix of the folder a merge writes the new tables into before renaming them into place (present only during a merge)",
    "EXAMPLES_DIR": "adversarial images of the first samples (spec field save_examples)",
    "REPORT_PDF": "written by robust-attn report: the multi-page report",
    "REPORT_MD": "written by robust-attn report: the same report as Markdown, figures under figures/",
    "REPORT_HTML": "written by robust-attn report: the same report as one self-contained HTML file",
    "FIGURES": "written by robust-attn report: the report's PNG figures",
    "SUMMARY": "written by robust-attn report: the summary tables (accuracy with intervals, AUC, eps at half clean accuracy)",
    "PAIRED": "written by robust-attn report: paired comparisons of model instances (exact McNemar p-values)",
    "ARCHITECTURE_PAIRS": "written by robust-attn report: differences between architectures over seeds, with intervals and p-values",
}
NOT_FILES = {"PLANNED"}  # manifest keys, documented in the prose

# schema table constant -> the file constant it is written to
TABLES: dict[str, str] = {
    "SAMPLE_COLUMNS": "SAMPLES",
    "DRIFT_COLUMNS": "DRIFT",
    "SEGMENTATION_COLUMNS": "SEGMENTATION",
    "INDICATOR_COLUMNS": "INDICATORS",
    "GENERALISATION_COLUMNS": "GENERALISATION",
}

# results.csv columns that are not per-sample columns
RESULT_ONLY: dict[str, str] = {
    "params": "the attack's parameters as JSON",
    "eps_label": "eps as written for people (8/255, 0.5)",
    "n": "samples in the cell",
    "correct": "samples still classified correctly",
    "accuracy": "correct / n",
    "ci_low": "lower end of the 95% Wilson interval of accuracy",
    "ci_high": "upper end of the 95% Wilson interval of accuracy",
    "seconds": "wall time of the whole cell (every eps of it), repeated on each of its rows",
    "forwards_per_sample": "forward passes the whole cell spent, per sample (counted in images; empty when not counted)",
    "backwards_per_sample": "backward passes the whole cell spent, per sample (counted in images; empty when not counted)",
}


def _schema() -> Any:
    from robust_attn.rundir import schema

    return schema


def tables() -> dict[str, tuple[Any, ...]]:
    """Every column table the schema defines (module constants holding ``Column`` tuples)."""
    schema = _schema()
    found = {
        name: value
        for name, value in vars(schema).items()
        if isinstance(value, tuple) and value and all(isinstance(c, schema.Column) for c in value) and not name.startswith("_")
    }
    missing = sorted(set(found) - set(TABLES))
    if missing:
        raise RuntimeError(f"docs/gen/schema_reference.py: table {missing[0]} has no file in TABLES; add it")
    return found


def file_names() -> dict[str, str]:
    """Schema constant -> file name, for every string constant of the schema but the manifest keys."""
    schema = _schema()
    found = {name: value for name, value in vars(schema).items() if name.isupper() and isinstance(value, str) and name not in NOT_FILES}
    missing = sorted(set(found) - set(FILES))
    if missing:
        raise RuntimeError(
            f"docs/gen/schema_reference.py: file constant {missing[0]} = {found[missing[0]]!r} has no entry in FILES; add one"
        )
    return found


def files_table() -> str:
    names = file_names()
    rows = [(code(names[key] + ("/" if "." not in names[key] else "")), FILES[key]) for key in FILES if key in names]
    return table(("file", "what it holds"), rows)


def column_tables() -> str:
    """A section per Parquet table, its columns from ``markdown_schema``."""
    schema = _schema()
    names = file_names()
    parts = []
    for const, columns in tables().items():
        parts.append(f"### {names[TABLES[const]]}\n\n{schema.markdown_schema(columns)}\n")
    return "\n".join(parts)


# manifest record name -> what one such record describes (a record the declaration gains without an entry stops the build)
RECORDS: dict[str, str] = {
    "spec": "the sweep spec as the sweep read it; the fields below are the ones readers rely on, the others are those of "
    "[the spec page](spec.md)",
    "attack": "one [[attacks]] table of the spec",
    "dataset": "the images every model was evaluated on",
    "model": "one model, under its reference in `models`",
    "unit": "one unit the sweep planned (`planned`): an attack cell or a probe",
    "cell": "one finished attack cell (`cells`)",
    "probe": "one finished probe unit (`probes`)",
    "file": "one merged table (`files`), checked on read",
}


def manifest_fields() -> str:
    """manifest.json's fields and each record's, from the declaration the readers parse it with."""
    from robust_attn.rundir import manifest

    missing = sorted(set(manifest.RECORDS) - set(RECORDS))
    if missing:
        raise RuntimeError(f"docs/gen/schema_reference.py: manifest record {missing[0]!r} has no entry in RECORDS; add one")
    parts = [
        "Every reader (reports, `compare`, the leaderboard, `upgrade`, `robust_attn.load_run`) parses it against this declaration "
        "(`robust_attn/rundir/manifest.py`): a required field missing, or any field of the wrong type, is one line naming the "
        "file and the field. Fields not listed are accepted (a newer robust-attn may add some). A type is `string`, `integer`, "
        "`number`, `bool`, `object`, `list`, `any`, a record below, `list[T]`, `map[T]` (an object whose values are T), or "
        "alternatives (`string | null`); *when complete*: required once `complete` is true.\n",
        manifest.markdown_fields(manifest.FIELDS) + "\n",
    ]
    for name, fields in manifest.RECORDS.items():
        parts.append(f"### {name} record\n\n{RECORDS[name][0].upper() + RECORDS[name][1:]}.\n\n{manifest.markdown_fields(fields)}\n")
    return "\n".join(parts)


def result_columns() -> str:
    """The columns of results.csv, in order, with their meaning."""
    schema = _schema()
    per_sample = {c.name: c.doc for c in schema.SAMPLE_COLUMNS}
    missing = [c for c in schema.RESULT_COLUMNS if c not in per_sample and c not in RESULT_ONLY]
    if missing:
        raise RuntimeError(f"docs/gen/schema_reference.py: results column {missing[0]!r} has no entry in RESULT_ONLY; add one")
    rows = [(code(c), RESULT_ONLY.get(c) or f"as in {schema.SAMPLES}: {per_sample[c]}") for c in schema.RESULT_COLUMNS]
    return table(("column", "meaning"), rows)


def format_version() -> str:
    schema = _schema()
    upgradable = ", ".join(str(v) for v in schema.UPGRADABLE)
    return (
        f"The current format version is **{schema.FORMAT_VERSION}** (`manifest.json`'s `format_version`); "
        f"`robust-attn upgrade DIR` converts run directories of version {upgradable} in place."
    )
