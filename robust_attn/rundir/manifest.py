"""``manifest.json``: its fields, declared once, and the one parse every reader goes through.

The declaration follows :mod:`.schema`'s tables: a tuple of :class:`Field` per record (the
manifest itself, a model, a cell, ...), each with its JSON type, whether it is required and what
it means; the docs' schema page is generated from it. :func:`parse` checks a manifest of the
current format version against it and returns the manifest itself, unchanged: every reader (the
reports, ``compare``, the leaderboard, ``upgrade``) goes on reading the dict, fields that a newer
writer adds pass through untouched (a rewrite such as ``upgrade`` keeps them), and a field that is
missing or of the wrong type is one line naming the file and the field, before any work.

A type is ``string``, ``integer``, ``number``, ``bool``, ``object`` (any JSON object), ``list``
(any list), ``any``, a record name of :data:`RECORDS`, ``list[T]``, ``map[T]`` (an object whose
values are T), or alternatives such as ``string | null``. Fields the sweep copies from a model's
own metadata (its recipe, epochs, classes) are ``any``: the reader accepts whatever the writer wrote.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from robust_attn.errors import RunDirError
from robust_attn.rundir import schema

Required = Literal["yes", "no", "when complete"]
DAMAGED = "the file is damaged: restore it from version control, or delete it and rerun the sweep (its finished cells under cells/ are merged again, not recomputed)"


@dataclass(frozen=True)
class Field:
    """One field of a manifest record: its name, JSON type, whether it must be present, and meaning."""

    name: str
    type: str
    required: Required
    doc: str


FIELDS: tuple[Field, ...] = (
    Field("format_version", "integer", "yes", f"the run directory's format version (this robust-attn reads {schema.FORMAT_VERSION})"),
    Field("spec", "spec", "yes", "the sweep spec as the sweep read it (every field of the spec page, defaults filled in)"),
    Field(
        "spec_fingerprint",
        "string",
        "no",
        "hash of the spec fields that decide the numbers: a sweep of another spec into the directory is refused",
    ),
    Field("spec_path", "string | null", "no", "the spec file the sweep was started with (null for a combined run)"),
    Field("created", "string", "no", "when the sweep started (ISO 8601, UTC)"),
    Field("device", "string", "no", "torch device of the sweep (cpu, cuda:0, ...)"),
    Field("device_name", "string", "no", "the CPU or GPU model"),
    Field("environment", "object", "no", "the compute environment: CPU, its flags, torch's build and kernels, threads, platform"),
    Field("git_commit", "string | null", "no", "commit of the robust-attn checkout that ran the sweep (null outside a git checkout)"),
    Field("versions", "object", "no", "library versions (python, robust-attn, torch, ...)"),
    Field("world_size", "integer", "no", "ranks of the sweep (1: one process)"),
    Field("backend", "string | null", "no", "torch.distributed backend of a multi-rank sweep"),
    Field("dataset", "dataset", "yes", "the images every model was evaluated on"),
    Field("models", "map[model]", "yes", "each model of the sweep, by its reference in the spec"),
    Field("wall_seconds", "number", "no", "wall time of the last sweep invocation"),
    Field("complete", "bool", "yes", "every planned unit is finished (false: a report says which are missing)"),
    Field(schema.PLANNED, "list[unit]", "yes", "every unit the sweep set out to compute"),
    Field("cells", "list[cell]", "when complete", "the finished attack cells"),
    Field("probes", "list[probe]", "when complete", "the finished probe units (attention, indicators, linear probes)"),
    Field("files", "map[file]", "no", "size and sha256 of each merged table, by file name, checked on read"),
    Field("sealed", "object", "no", "present when the directory is sealed (a sweep refuses to write it): when, and a note"),
    Field("upgraded_from", "integer", "no", "the format version `robust-attn upgrade` converted the directory from"),
    Field("generalisation_skipped", "map[string]", "no", "unseen data sets the linear probes skipped, with the reason"),
    Field(
        "combined_from",
        "list[object]",
        "no",
        "`robust-attn compare`: the runs combined (path, name, manifest_sha256, created, git_commit, models)",
    ),
    Field("partial_attacks", "map[list[string]]", "no", "`robust-attn compare`: attacks run on only some models, with those models"),
    Field("duplicate_models", "map[object]", "no", "`robust-attn compare`: models found in several runs, which run was kept and why"),
    Field("combined_notes", "list[string]", "no", "`robust-attn compare`: one line each for the reader of the combined report"),
)

SPEC_FIELDS: tuple[Field, ...] = (
    Field("name", "string", "yes", "the spec's name (the report's title)"),
    Field("models", "list[string]", "yes", "model references"),
    Field("attacks", "list[attack]", "yes", "the [[attacks]] tables"),
    Field("modes", "list[string]", "yes", "worst-case and/or independent"),
    Field("transfer", "list[object]", "no", "the [[transfer]] tables"),
)

ATTACK_FIELDS: tuple[Field, ...] = (
    Field("name", "string", "yes", "registered attack name"),
    Field("eps", "list[number]", "yes", "the eps grid in pixel units"),
    Field("backend", "string", "no", "native, torchattacks or foolbox"),
    Field("params", "object", "no", "the attack's parameters"),
    Field("label", "string", "no", "the label that tells two attacks of one name apart"),
)

DATASET_FIELDS: tuple[Field, ...] = (
    Field("name", "string", "yes", "data set (builtin, cifar10, ...)"),
    Field("split", "string", "yes", "train or test"),
    Field("n", "integer", "yes", "images evaluated (the first n of the split)"),
    Field("classes", "list", "yes", "class names, by label"),
    Field("seed", "integer", "yes", "data seed"),
    Field("image_shape", "list[integer]", "yes", "channels, height, width"),
    Field("has_masks", "bool", "no", "the data set has object masks (segmentation probes)"),
)

MODEL_FIELDS: tuple[Field, ...] = (
    Field("architecture", "string", "yes", "architecture as the model declares it"),
    Field("training_regime", "string", "yes", "clean, fgsm-at, pgd-at, ... or unknown"),
    Field("has_attention", "bool", "yes", "the model exposes attention maps (attention probes, the segmentation claim)"),
    Field("train_seed", "integer | null", "no", "training seed; null when unknown"),
    Field("checkpoint", "string | null", "no", "the checkpoint file the weights came from"),
    Field("checkpoint_sha256", "string | null", "no", "sha256 of the checkpoint file"),
    Field("weights_sha256", "string | null", "no", "sha256 of the weights (one model across runs: `compare`, the leaderboard)"),
    Field("model_name", "any", "no", "registry name or factory, as the model's metadata records it"),
    Field("model_kwargs", "any", "no", "constructor arguments, as recorded"),
    Field("checkpoint_clean_accuracy", "any", "no", "clean accuracy recorded at training"),
    Field("trained_on", "any", "no", "data set of training, as recorded"),
    Field("train_epochs", "any", "no", "training epochs, as recorded"),
    Field("train_size", "any", "no", "training images, as recorded"),
    Field("recipe", "any", "no", "training recipe, as recorded"),
    Field("classes", "any", "no", "the checkpoint's class names, as recorded"),
    Field("attention", "list[string]", "no", "the names of its attention maps (empty: no attention protocol); the model card's"),
    Field("source", "string", "no", "the kind of reference that served it: zoo, checkpoint, import, timm, robustbench"),
    Field("image_shape", "list[integer] | null", "no", "(C, H, W) it was trained on; null: any size"),
    Field("preprocessing", "object | null", "no", "resize, crop and interpolation it declares; null: images fed as they are"),
)

UNIT_FIELDS: tuple[Field, ...] = (
    Field("unit", "string", "yes", "attack or probe"),
    Field("slug", "string", "yes", "the unit's file name under cells/ (its config hash, shortened)"),
    Field("config_hash", "string", "yes", "hash of everything that changes the unit's numbers"),
    Field("model", "string", "yes", "model reference"),
    Field("attack", "string", "yes", "attack id"),
    Field("mode", "string", "no", "attack units: worst-case or independent"),
    Field("probe", "string", "no", "probe units: attention, indicators or generalisation"),
)

CELL_FIELDS: tuple[Field, ...] = (
    Field("model", "string", "yes", "model reference"),
    Field("attack", "string", "yes", "attack id in the spec"),
    Field("mode", "string", "yes", "worst-case or independent"),
    Field("slug", "string", "yes", "the cell's file name under cells/"),
    Field("name", "string", "yes", "registered attack name"),
    Field("backend", "string", "yes", "native, torchattacks or foolbox"),
    Field("norm", "string", "yes", "linf, l2, l1, or none (corruptions)"),
    Field("eps", "list[number]", "no", "the eps grid (attack and transfer cells; a corruption cell has none)"),
    Field("source", "string | null", "no", "transfer cells: the model (or models joined by +) the images were crafted on"),
    Field("corruption_parameters", "string", "no", "corruption cells: the parameter set the image size chose (cifar, imagenet, ...)"),
    Field("params", "object", "yes", "the attack's parameters"),
    Field("traits", "object", "yes", "what the attack declares: norm, iterative, traceable, minimum_norm, ensemble, strength, ..."),
    Field("seconds", "number | null", "no", "wall time of the cell"),
    Field("attack_repr", "string | null", "no", "the attack object as constructed"),
    Field("forwards", "integer | null", "no", "forward passes spent (images)"),
    Field("backwards", "integer | null", "no", "backward passes spent (images)"),
    Field("members", "map[object]", "no", "ensembles: each member's pass counts, in order"),
)

PROBE_FIELDS: tuple[Field, ...] = (
    Field("model", "string", "yes", "model reference"),
    Field("attack", "string", "yes", "attack that made the adversarial images"),
    Field("kind", "string", "no", "attention (default), indicators or generalisation"),
    Field("slug", "string", "no", "the unit's file name under cells/"),
    Field("architecture", "string | null", "no", "as in the model record"),
    Field("training_regime", "string | null", "no", "as in the model record"),
    Field("train_seed", "integer | null", "no", "as in the model record"),
    Field("stages", "list", "no", "attended stages probed"),
    Field("seconds", "number | null", "no", "wall time of the probe"),
    Field("examples", "bool", "no", "its example arrays are in attention_examples.npz"),
)

FILE_FIELDS: tuple[Field, ...] = (
    Field("size", "integer", "yes", "bytes"),
    Field("sha256", "string", "yes", "hex digest"),
)

RECORDS: dict[str, tuple[Field, ...]] = {
    "spec": SPEC_FIELDS,
    "attack": ATTACK_FIELDS,
    "dataset": DATASET_FIELDS,
    "model": MODEL_FIELDS,
    "unit": UNIT_FIELDS,
    "cell": CELL_FIELDS,
    "probe": PROBE_FIELDS,
    "file": FILE_FIELDS,
}
Records = Mapping[str, tuple[Field, ...]]


# -- reading ------------------------------------------------------------------------------------
def load_json(path: Path) -> Any:
    """The JSON value of ``path``; a file that cannot be read or is not JSON is one line."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RunDirError(f"{path} is not valid JSON ({err}); {DAMAGED}") from None
    except RecursionError:
        raise RunDirError(f"{path} is not a run manifest (JSON nested too deeply to read); {DAMAGED}") from None
    except OSError as err:
        raise RunDirError(f"{path} cannot be read ({err.strerror or err}); make it readable, or restore it from version control") from None


def load_object(path: Path) -> dict[str, Any]:
    """The JSON object of ``path`` (any other JSON value is one line), not yet checked field by field."""
    data = load_json(path)
    if not isinstance(data, dict):
        raise RunDirError(f"{path} is not a run manifest: it must be a JSON object, got {_got(data)}; {DAMAGED}")
    return data


def format_version(manifest: dict[str, Any], path: Path) -> int:
    """The manifest's format version (1 when absent: the first format did not record it)."""
    version = manifest.get("format_version", 1)
    if not _is(version, "integer"):
        raise RunDirError(f"{path}: field 'format_version' must be an integer, got {_got(version)}; {DAMAGED}")
    return int(version)


def parse(manifest: Any, path: Path) -> dict[str, Any]:
    """``manifest`` checked against :data:`FIELDS` (current format version) and returned unchanged."""
    if not isinstance(manifest, dict):
        raise RunDirError(f"{path} is not a run manifest: it must be a JSON object, got {_got(manifest)}; {DAMAGED}")
    check_record(manifest, FIELDS, RECORDS, path)
    return manifest


def read(path: Path) -> dict[str, Any]:
    """Read, check the format version of, and parse one manifest file; another format version is
    refused with both versions named and the way to read it."""
    manifest = load_object(path)
    version = format_version(manifest, path)
    if version != schema.FORMAT_VERSION:
        root = path.parent
        fix = (
            f"convert it with `robust-attn upgrade {root}`"
            if version in schema.UPGRADABLE
            else "rerun its sweep into a new directory (robust-attn sweep SPEC --out NEW_DIR)"
            if version < schema.FORMAT_VERSION
            else "read it with the newer robust-attn that wrote it (pip install -U robust-attn)"
        )
        raise RunDirError(
            f"{root} is a run directory of format version {version}, but this robust-attn reads version {schema.FORMAT_VERSION}; {fix}"
        )
    return parse(manifest, path)


# -- checking -----------------------------------------------------------------------------------
def check_record(record: dict[str, Any], fields: tuple[Field, ...], records: Records, path: Path, where: str = "") -> None:
    """Raise one line for the first required field missing from ``record`` or field of the wrong type."""
    for f in fields:
        name = f"{where}.{f.name}" if where else f.name
        if f.name not in record:
            if f.required == "yes" or (f.required == "when complete" and record.get("complete") is True):
                why = " (the manifest says the run is complete)" if f.required == "when complete" else ""
                raise RunDirError(f"{path}: field '{name}' is missing{why}; {DAMAGED}")
            continue
        check_value(record[f.name], f.type, records, path, name)


def check_value(value: Any, type_: str, records: Records, path: Path, where: str) -> None:
    """Raise one line when ``value`` (at ``where``) is not of ``type_``; records are checked field by field."""
    options = [t.strip() for t in _split(type_)]
    match = next((t for t in options if _is(value, t, records)), None)
    if match is None:
        want = " or ".join(describe(t) for t in options)
        raise RunDirError(f"{path}: field '{where}' must be {want}, got {_got(value)}; {DAMAGED}")
    if match in records:
        check_record(value, records[match], records, path, where)
    elif match.startswith("list["):
        for i, item in enumerate(value):
            check_value(item, match[5:-1], records, path, f"{where}[{i}]")
    elif match.startswith("map["):
        for key, item in value.items():
            check_value(item, match[4:-1], records, path, f'{where}["{key}"]')


def _split(type_: str) -> list[str]:
    """Top-level alternatives of a type (``|`` outside brackets)."""
    out, depth, start = [], 0, 0
    for i, ch in enumerate(type_):
        depth += {"[": 1, "]": -1}.get(ch, 0)
        if ch == "|" and depth == 0:
            out.append(type_[start:i])
            start = i + 1
    return [*out, type_[start:]]


def _is(value: Any, type_: str, records: Records = RECORDS) -> bool:
    """Whether ``value`` has the JSON shape of ``type_`` (one alternative; items are checked after)."""
    if type_ in records or type_ == "object" or type_.startswith("map["):
        return isinstance(value, dict)
    if type_ == "list" or type_.startswith("list["):
        return isinstance(value, list)
    if type_ not in _SCALARS:
        raise ValueError(f"unknown manifest field type {type_!r}")  # a bug in a declaration
    return _SCALARS[type_](value)


_SCALARS: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "any": lambda v: True,
}


_PLURAL = {"string": "strings", "integer": "integers", "number": "numbers", "bool": "booleans", "object": "objects", "list": "lists"}
_ARTICLE = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "bool": "true or false",
    "object": "an object",
    "list": "a list",
    "null": "null",
    "any": "any value",
}


def describe(type_: str) -> str:
    """A type in words: ``list[cell]`` -> 'a list of cell records'."""
    type_ = type_.strip()
    if "|" in type_ and len(_split(type_)) > 1:
        return " or ".join(describe(t) for t in _split(type_))
    if type_.startswith("list["):
        return f"a list of {_plural(type_[5:-1])}"
    if type_.startswith("map["):
        return f"an object of {_plural(type_[4:-1])} by name"
    return _ARTICLE.get(type_, f"a {type_} record (an object)")


def _plural(type_: str) -> str:
    if type_.startswith(("list[", "map[")):
        return "lists" if type_.startswith("list[") else "objects"
    return _PLURAL.get(type_, f"{type_} records")


def _got(value: Any) -> str:
    """What a JSON value is, in words, for a message."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, str):
        return f"the string {json.dumps(value[:40] + ('...' if len(value) > 40 else ''))}"
    if isinstance(value, int | float):
        return f"the number {value}"
    return "a list" if isinstance(value, list) else "an object"


# -- documentation ------------------------------------------------------------------------------
def markdown_fields(fields: tuple[Field, ...]) -> str:
    """The fields as a Markdown table (the schema page's manifest section is generated from this)."""
    lines = ["| field | type | required | meaning |", "|---|---|---|---|"]
    lines += [f"| `{f.name}` | `{_cell(f.type)}` | {f.required} | {_cell(f.doc)} |" for f in fields]
    return "\n".join(lines)


def _cell(text: str) -> str:
    """``text`` inside a Markdown table cell: a pipe, in a code span too, is escaped."""
    return text.replace("|", "\\|")
