"""The run directory's format: file names, table columns and the format version.

This module and its siblings in :mod:`robust_attn.rundir` are the only code that knows how a
run directory is laid out; the sweep writes through :class:`~robust_attn.rundir.writer.RunWriter`
and reports read through :func:`~robust_attn.rundir.reader.load_run`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

FORMAT_VERSION = 4
# 1: outcomes.npz (before the Parquet tables); 2: samples.parquet; 3: models' declared traits
# (training_regime), attack traits in the manifest, threat model / corruption / severity / source /
# decision columns, planned units, no per-sample pass counts; 4: a transfer cell's attack column
# holds the attack's id alone (its source in the source column), the indicators table has a source
# column, the manifest records each table's size and sha256. `robust-attn upgrade DIR` converts 2 and 3.

UPGRADABLE = (2, 3)  # versions `robust-attn upgrade` converts
MANIFEST = "manifest.json"
PLANNED = "planned"  # manifest key: every unit the sweep set out to compute
RESULTS = "results.csv"
SAMPLES = "samples.parquet"
DRIFT = "attention_drift.parquet"
SEGMENTATION = "segmentation.parquet"
INDICATORS = "indicators.parquet"
GENERALISATION = "generalisation.parquet"
EXAMPLES = "attention_examples.npz"
CELLS = "cells"
PLAN = "plan.json"  # under cells/: the manifest of a sweep in progress (its planned units); the merge writes manifest.json
LOCK = ".lock"  # the writer's lock (robust_attn.rundir.lock), present only while a command writes
STAGING = ".merging-"  # prefix of the folder a merge writes its tables into before renaming them into place
EXAMPLES_DIR = "examples"  # adversarial images of the first samples (spec field save_examples)
FIGURES = "figures"
REPORT_PDF, REPORT_MD, REPORT_HTML = "report.pdf", "report.md", "report.html"
SUMMARY, PAIRED, ARCHITECTURE_PAIRS = "summary.csv", "paired.csv", "architecture_pairs.csv"
DATA_FILES = (MANIFEST, RESULTS, SAMPLES, INDICATORS, DRIFT, SEGMENTATION, GENERALISATION, EXAMPLES)
THREAT_MODELS = ("white-box", "transfer", "corruption")


@dataclass(frozen=True)
class Column:
    """One column of a Parquet table: its name, Arrow type name, whether it may be null, and meaning."""

    name: str
    type: str  # an Arrow type: string, int16, int32, int64, float32, float64, bool
    nullable: bool
    doc: str


_MODEL_COLUMNS = (
    Column("model", "string", False, "model reference as the spec names it (zoo name, checkpoint path or package.module:factory)"),
    Column(
        "architecture",
        "string",
        True,
        "architecture as the model declares it (registry name such as vgg-att3-pc; an import spec's `architecture` attribute, else its reference)",
    ),
    Column("training_regime", "string", False, "how the model was trained: clean, fgsm-at, pgd-at, ... (the recipe), or unknown"),
    Column("train_seed", "int32", True, "training seed of the checkpoint; null when unknown"),
)

SAMPLE_COLUMNS: tuple[Column, ...] = (
    *_MODEL_COLUMNS,
    Column("attack", "string", False, "attack id in the spec (fgsm, pgd-10, pgd@torchattacks, ...)"),
    Column("name", "string", False, "registered attack name (fgsm, pgd, pgd-l2, ...)"),
    Column("backend", "string", False, "native, torchattacks or foolbox"),
    Column("threat_model", "string", False, "white-box (the model's own gradients or queries), transfer (crafted on source) or corruption"),
    Column("norm", "string", True, "norm of eps: linf, l2 or l1 (null for corruptions)"),
    Column("mode", "string", False, "worst-case or independent"),
    Column("eps", "float64", True, "perturbation budget in pixel units ([0, 1] images); null for corruptions"),
    Column("corruption", "string", True, "common corruption (gaussian_noise, fog, ...); null for attacks"),
    Column("severity", "int8", True, "corruption severity 1-5; null for attacks"),
    Column("source", "string", True, "transfer: the model (or ensemble of models, joined by +) the adversarial images were crafted on"),
    Column("sample", "int32", False, "index of the image in the data split (the first n images are used)"),
    Column("label", "int16", False, "true class"),
    Column("clean_pred", "int16", False, "prediction on the unperturbed image"),
    Column("pred", "int16", False, "prediction after the attack at eps (worst-case: the first fooling point found at eps or below)"),
    Column("correct", "bool", False, "pred == label"),
    Column("min_norm", "float32", True, "smallest fooling perturbation norm found (min-norm attacks; 0 = clean mistake, inf = none found)"),
    Column("fooled_by", "string", True, "which attack of an ensemble first fooled the sample (null: not fooled, or not an ensemble)"),
    Column("decision", "string", True, "what an adaptive attack chose to run on this sample (rapid), so a run explains itself"),
)

DRIFT_COLUMNS: tuple[Column, ...] = (
    *_MODEL_COLUMNS,
    Column("attack", "string", False, "attack that made the adversarial images (independent per eps)"),
    Column("stage", "string", False, "attended stage: l1, l2, l3"),
    Column("eps", "float64", False, "perturbation budget"),
    Column("sample", "int32", False, "image index"),
    Column("one_minus_iou", "float32", False, "1 - IoU of the top-10% attention regions of the clean and adversarial maps"),
    Column("cosine", "float32", False, "cosine similarity of the clean and adversarial maps"),
)

SEGMENTATION_COLUMNS: tuple[Column, ...] = (
    *_MODEL_COLUMNS,
    Column("attack", "string", False, "attack that made the adversarial images (independent per eps)"),
    Column(
        "method",
        "string",
        False,
        "attention, gradient saliency, grad-cam, grad-cam++ (models without attention; CAMs on the activated last conv with a map >= 4x4, "
        "robust_attn.probes.cam), or centred box (needs no model: its rows, eps = 0 only, repeat under each probed model)",
    ),
    Column("stage", "string", False, "l1, l2, l3 or mean (mean of the stage maps); '-' for saliency and the box"),
    Column("eps", "float64", False, "perturbation budget"),
    Column("sample", "int32", False, "image index"),
    Column("jaccard", "float32", False, "Jaccard index of the binarised map against the ground-truth object mask"),
)

INDICATOR_COLUMNS: tuple[Column, ...] = (
    *_MODEL_COLUMNS,
    Column("attack", "string", False, "attack id, or (model) for the checks of the model itself"),
    Column(
        "indicator",
        "string",
        False,
        "unavailable gradients, probability outputs, randomness in the forward pass, unstable predictions, silent success, incomplete optimisation, unconstrained attack failure",
    ),
    Column("level", "string", False, "model or attack"),
    Column("value", "float64", True, "the measurement (see detail)"),
    Column("threshold", "float64", True, "the value above which the indicator triggers"),
    Column("triggered", "bool", False, "the check failed: the evaluation may overstate robustness"),
    Column("skipped", "bool", False, "not applicable to this attack (detail says why)"),
    Column("detail", "string", False, "the measurement in words, and what to do when triggered"),
    Column("source", "string", True, "transfer indicators: the model (or models joined by +) the images were crafted on"),
)

GENERALISATION_COLUMNS: tuple[Column, ...] = (
    *_MODEL_COLUMNS,
    Column(
        "dataset", "string", False, "unseen data set: shapes-unseen-classes, shapes-unseen-backgrounds, mnist, fashionmnist, svhn, cifar10"
    ),
    Column("sample", "int32", False, "index of the image in the unseen set's test split (the same images for every model)"),
    Column("label", "int16", False, "true class in the unseen set"),
    Column("pred", "int16", False, "the linear probe's prediction"),
    Column("correct", "bool", False, "pred == label"),
    Column("feature_dim", "int32", False, "D of the model's frozen descriptor (features(x), else the input of its last nn.Linear)"),
    Column("n_train", "int32", False, "train-split images the probe was fitted on"),
    Column("n_classes", "int16", False, "classes of the unseen set"),
    Column("converged", "bool", False, "lbfgs converged within max_iter (false: the accuracy may understate the features)"),
)

RESULT_COLUMNS: tuple[str, ...] = (
    "model",
    "architecture",
    "training_regime",
    "train_seed",
    "attack",
    "name",
    "backend",
    "threat_model",
    "norm",
    "mode",
    "params",
    "eps",
    "eps_label",
    "corruption",
    "severity",
    "source",
    "n",
    "correct",
    "accuracy",
    "ci_low",
    "ci_high",
    "seconds",
    "forwards_per_sample",
    "backwards_per_sample",
)


def arrow_type(name: str) -> Any:
    """The pyarrow type of a column type name (pyarrow is imported only to write or read)."""
    import pyarrow as pa

    return pa.bool_() if name == "bool" else getattr(pa, name)()


def arrow_schema(columns: tuple[Column, ...]) -> Any:
    """The pyarrow schema of a table."""
    import pyarrow as pa

    return pa.schema([pa.field(c.name, arrow_type(c.type), nullable=c.nullable) for c in columns])


def markdown_schema(columns: tuple[Column, ...]) -> str:
    """The columns as a Markdown table (the README's schema section is generated from this)."""
    lines = ["| column | type | null | meaning |", "|---|---|---|---|"]
    lines += [f"| `{c.name}` | {c.type} | {'yes' if c.nullable else 'no'} | {c.doc} |" for c in columns]
    return "\n".join(lines)


def example_key(index: int, array: str) -> str:
    """Key of one example array of the ``index``-th probe in attention_examples.npz (model names
    live in the manifest's ``probes`` list, never in keys)."""
    return f"probe{index}_{array}"
