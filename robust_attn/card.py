"""The model card: what every model source says about a model, in one typed record.

Every source (the zoo, a checkpoint file, an import spec, timm, RobustBench) returns a
:class:`ModelCard` with the module, and every consumer (the sweep's checks and plan, the run
directory's manifest, the reports) reads the card, never a source's own metadata: a field has
one name and one type wherever it is read (timm's ``PretrainedCfg`` is the pattern).

What a card does not know stays ``None``: an import spec records no training data until a
forward pass tells its class count, a timm architecture without a checkpoint has no training
regime. ``recorded`` keeps the source's own record (a checkpoint's header) for the curious.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from robust_attn.data.preprocessing import ROBUSTBENCH, Preprocessing

REGIMES = ("clean", "fgsm-at", "pgd-at", "trades", "unknown")  # the known ones; a recipe may name its own


@dataclass(frozen=True)
class Budget:
    """How much training went into a model (robustness comparisons need matched budgets)."""

    epochs: int | None = None
    train_size: int | None = None
    recipe: str | None = None
    seconds: float | None = None


@dataclass(frozen=True)
class ModelCard:
    """One model, as its source declares it."""

    ref: str  # the reference as the user wrote it (zoo name, checkpoint path, import spec, timm:..., robustbench:...)
    source: str  # which kind of reference served it: zoo, checkpoint, import, timm, robustbench, ...
    architecture: str  # the registry name (vgg-att3-pc), the hub's name, or the reference itself
    training_regime: str = "unknown"  # clean, fgsm-at, pgd-at, trades, ... (the recipe), or unknown
    train_seed: int | None = None
    attention: tuple[str, ...] = ()  # names of its attention maps (empty: no attention protocol)
    dataset: str | None = None  # the data set it was trained on
    classes: tuple[str, ...] | None = None  # class names in the order of its logits
    num_classes: int | None = None
    image_shape: tuple[int, ...] | None = None  # (C, H, W) it was trained on; None: any size
    mean: tuple[float, ...] | None = None  # its normalisation, applied inside the model
    std: tuple[float, ...] | None = None
    preprocessing: Preprocessing | None = None
    weights_sha256: str | None = None  # the sha256 of its weights: what a sweep's units are keyed on
    checkpoint: str | None = None  # the file its weights came from
    checkpoint_sha256: str | None = None
    clean_accuracy: float | None = None  # as measured at the end of its training
    budget: Budget = field(default_factory=Budget)
    model_name: str | None = None  # the factory that builds it (the model registry's name)
    model_kwargs: dict[str, Any] | None = None
    threat_model: str | None = None  # the threat model a hub lists it under (RobustBench: Linf, L2, corruptions)
    recorded: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)  # the source's own record, as read

    @property
    def has_attention(self) -> bool:
        return bool(self.attention)

    @property
    def weights_identity(self) -> str:
        """What a sweep's units are keyed on: the weights' sha256 (a model retrained to the same
        weights replays the same random starts), else the file's; "" for an import spec."""
        return self.weights_sha256 or self.checkpoint_sha256 or ""

    def with_(self, **changes: Any) -> ModelCard:
        return replace(self, **changes)

    def manifest_record(self) -> dict[str, Any]:
        """What the run directory's manifest keeps of the model (``models`` in manifest.json)."""
        return {
            "architecture": self.architecture,
            "training_regime": self.training_regime,
            "has_attention": self.has_attention,
            "attention": list(self.attention),
            "source": self.source,
            "model_name": self.model_name,
            "model_kwargs": self.model_kwargs,
            "train_seed": self.train_seed,
            "checkpoint": self.checkpoint,
            "checkpoint_sha256": self.checkpoint_sha256,
            "weights_sha256": self.weights_sha256,
            "checkpoint_clean_accuracy": self.clean_accuracy,
            "trained_on": self.dataset,
            "train_epochs": self.budget.epochs,
            "train_size": self.budget.train_size,
            "recipe": self.budget.recipe,
            "classes": list(self.classes) if self.classes is not None else self.num_classes,
            "image_shape": list(self.image_shape) if self.image_shape is not None else None,
            "preprocessing": self.preprocessing.record() if self.preprocessing is not None else None,
        }


def _regime(record: dict[str, Any], module: Any) -> str:
    recipe = record.get("recipe")
    if isinstance(recipe, dict):  # a checkpoint trained here records its recipe
        return "clean" if recipe.get("adversarial", "none") == "none" else str(recipe.get("name"))
    return str(getattr(module, "training_regime", None) or record.get("training_regime") or "unknown")


def _budget(record: dict[str, Any]) -> Budget:
    recipe = record.get("recipe")
    result = record.get("train_result")
    seconds = result.get("seconds") if isinstance(result, dict) else None
    return Budget(
        _int(record.get("epochs")),
        _int(record.get("train_size")),
        str(recipe.get("name")) if isinstance(recipe, dict) else (str(recipe) if recipe else None),
        float(seconds) if isinstance(seconds, int | float) else None,
    )


def _preprocessing(value: Any) -> Preprocessing | None:
    """A record's declared preprocessing: RobustBench's name for it, or resize/crop/interpolation."""
    if isinstance(value, Preprocessing):
        return value
    if isinstance(value, str):
        return ROBUSTBENCH.get(value)
    if isinstance(value, dict):
        from robust_attn.data.preprocessing import from_options

        return from_options(value)
    return None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _floats(value: Any) -> tuple[float, ...] | None:
    return tuple(float(v) for v in value) if isinstance(value, list | tuple) and value else None


def card_from_record(ref: str, source: str, record: dict[str, Any], module: Any = None, attention: tuple[str, ...] = ()) -> ModelCard:
    """The card of a model from its source's record (a checkpoint's header, a hub's metadata, an
    import spec's module attributes): the one place where those records' keys are read."""
    classes = record.get("classes")
    names = tuple(str(c) for c in classes) if isinstance(classes, list | tuple) else None
    count = len(names) if names is not None else _int(classes) if _int(classes) is not None else _int(record.get("num_classes"))
    shape = record.get("image_shape")
    seed = record.get("seed", record.get("train_seed", getattr(module, "train_seed", None)))
    accuracy = record.get("clean_accuracy")
    return ModelCard(
        ref=ref,
        source=source,
        architecture=str(record.get("architecture") or record.get("model") or getattr(module, "architecture", None) or ref),
        training_regime=_regime(record, module),
        train_seed=_int(seed),
        attention=attention,
        dataset=str(record["dataset"]) if record.get("dataset") else None,
        classes=names,
        num_classes=count,
        image_shape=tuple(int(d) for d in shape) if isinstance(shape, list | tuple) and shape else None,
        mean=_floats(record.get("mean")),
        std=_floats(record.get("std")),
        weights_sha256=record.get("weights_sha256") or None,
        checkpoint=record.get("checkpoint"),
        checkpoint_sha256=record.get("checkpoint_sha256"),
        clean_accuracy=float(accuracy) if isinstance(accuracy, int | float) else None,
        budget=_budget(record),
        model_name=record.get("model") or record.get("model_name"),
        model_kwargs=record.get("model_kwargs"),
        threat_model=record.get("threat_model"),
        preprocessing=_preprocessing(record.get("preprocessing") or getattr(module, "preprocessing", None)),
        recorded=dict(record),
    )
