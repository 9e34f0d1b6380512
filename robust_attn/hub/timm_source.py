"""``timm:<name>``: a timm architecture with local weights, or timm's pretrained ones on request.

``timm.create_model(name, pretrained=False, num_classes=N)`` builds the architecture (``name``
may carry a pretrained tag, ``resnet18.a1_in1k``). The weights come from ``checkpoint = PATH``
(a state dict in a ``.pth``/``.pt``/``.bin`` or ``.safetensors`` file; ``num_classes`` defaults
to what its classifier holds), or, only with ``download=True``, from timm's pretrained weights.
Either is converted once into ``$ROBUST_ATTN_HOME/hub/timm/<name>/`` and read from there
afterwards, so a model downloaded once loads offline. timm models expect normalised input, so
the model is wrapped with its ``pretrained_cfg`` mean and std and takes [0, 1] images.
"""

from __future__ import annotations

import difflib
import hashlib
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from robust_attn.errors import CheckpointError, ModelError
from robust_attn.hub import cache as hub_cache
from robust_attn.hub.weights import TIMM_WRAPPERS, candidate_spellings, fit_state_dict, read_file, unwrap
from robust_attn.models.normalize import Normalize

PREFIX = "timm:"


class NormalizedClassifier(nn.Module):
    """``model(normalize(x))``: a model trained on normalised images, fed [0, 1] images."""

    def __init__(self, model: nn.Module, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(self.normalize(x))


def is_timm_ref(ref: str) -> bool:
    return ref.startswith(PREFIX)


def _timm() -> Any:
    try:
        import timm
    except ImportError:
        raise ModelError("timm is not installed; pip install 'robust-attn[hub]' (or pip install timm)") from None
    return timm


def timm_name(ref: str) -> str:
    """The timm model name of ``timm:<name>``, checked against timm's registry (close matches otherwise)."""
    name = ref.removeprefix(PREFIX)
    timm = _timm()
    if not name:
        raise ModelError(f"timm reference {ref!r} names no model; write timm:NAME, e.g. timm:resnet18")
    if not timm.is_model(name):
        close = difflib.get_close_matches(name, timm.list_models(), n=5, cutoff=0.6)
        hint = f"close matches: {', '.join(close)}" if close else "see timm.list_models()"
        raise ModelError(f"timm does not know {name!r}; {hint}")
    return name


def _cfg(name: str) -> Any:
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(name)
    if cfg is None:
        raise ModelError(f"timm has no configuration for {name!r}; name an architecture with a default config (timm.list_models())")
    return cfg


def _classifier_classes(name: str, state: dict[str, torch.Tensor]) -> int | None:
    head = _cfg(name).classifier
    head = head[0] if isinstance(head, (tuple, list)) else head
    for spelling in candidate_spellings(state):
        weight = spelling.get(f"{head}.weight")
        if weight is not None and weight.ndim >= 1:
            return int(weight.shape[0])
    return None


def _cache_for(name: str, checkpoint: Path | None) -> Path:
    if checkpoint is None:
        return hub_cache.hub_home() / "timm" / name / "pretrained.safetensors"
    digest = hashlib.sha256(str(checkpoint).encode()).hexdigest()[:12]
    return hub_cache.hub_home() / "timm" / name / f"{checkpoint.stem}-{digest}.safetensors"


def _create(name: str, num_classes: int, pretrained: bool = False) -> nn.Module:
    model: nn.Module = _timm().create_model(name, pretrained=pretrained, num_classes=num_classes)
    return model


def _from_cache(name: str, cache: Path, originals: list[Path], num_classes: int | None) -> tuple[nn.Module, dict[str, Any]] | None:
    meta = hub_cache.read_cache_metadata(cache)
    if meta is None or not hub_cache.is_current(meta, originals) or num_classes not in (None, meta.get("num_classes")):
        return None
    model = _create(name, int(meta["num_classes"]))
    try:
        model.load_state_dict(hub_cache.read_cache(cache, meta), strict=True)
    except RuntimeError:
        return None  # timm's definition changed since the conversion: convert again
    return model, meta


def _convert_checkpoint(name: str, path: Path, cache: Path, num_classes: int | None) -> tuple[nn.Module, dict[str, Any]]:
    if not path.is_file():
        raise CheckpointError(f"timm checkpoint {str(path)!r} not found; pass checkpoint = PATH of a saved state dict for {name}")
    state = unwrap(read_file(path, f"save {name}'s state_dict() there again"), path, TIMM_WRAPPERS)
    classes = num_classes or _classifier_classes(name, state) or int(_cfg(name).num_classes)
    model = _create(name, classes)
    ignored = fit_state_dict(model, state, path, f"timm's {name} with {classes} classes")
    record = {"source": "timm", "name": name, "num_classes": classes, "ignored_keys": ignored, **hub_cache.original_record([path])}
    return model, hub_cache.write_cache(cache, model.state_dict(), record)


def _download_pretrained(name: str, cache: Path, num_classes: int | None) -> tuple[nn.Module, dict[str, Any]]:
    cfg = _cfg(name)
    if num_classes not in (None, cfg.num_classes):
        raise ModelError(f"timm's pretrained {name} has {cfg.num_classes} classes, not {num_classes}; drop num_classes, or pass "
                         "checkpoint = PATH of weights fine-tuned to your classes")  # fmt: skip
    model = _create(name, int(cfg.num_classes), pretrained=True)
    record = {"source": "timm", "name": name, "num_classes": int(cfg.num_classes), "pretrained_tag": cfg.tag,
              "pretrained_from": cfg.hf_hub_id or cfg.url, "originals": [], "original_sha256": []}  # fmt: skip
    return model, hub_cache.write_cache(cache, model.state_dict(), record)


def load_timm(
    ref: str,
    device: str | torch.device = "auto",
    *,
    num_classes: int | None = None,
    checkpoint: str | Path | None = None,
    download: bool = False,
    dataset: str | None = None,
    training_regime: str | None = None,
    **_: Any,
) -> tuple[nn.Module, dict[str, Any]]:
    """(timm model wrapped to take [0, 1] images, in eval mode on ``device``; metadata).

    ``dataset`` and ``training_regime`` are what the user knows about the weights (timm does not
    record them): they go into the metadata, ``None`` and ``unknown`` otherwise.
    """
    from robust_attn.device import resolve_device

    name = timm_name(ref)
    path = Path(checkpoint).expanduser().resolve() if checkpoint is not None else None
    cache = _cache_for(name, path)
    found = _from_cache(name, cache, [path] if path is not None else [], num_classes)
    if found is None and path is not None:
        found = _convert_checkpoint(name, path, cache, num_classes)
    elif found is None and download:
        found = _download_pretrained(name, cache, num_classes)
    elif found is None:
        raise CheckpointError(f"timm:{name} has no weights: pass checkpoint = PATH (a saved state dict), "
                              "or download=True (--download) for timm's pretrained weights")  # fmt: skip
    model, meta = found
    cfg = getattr(model, "pretrained_cfg", None) or _cfg(name).to_dict()
    wrapped = NormalizedClassifier(model, tuple(cfg["mean"]), tuple(cfg["std"])).to(resolve_device(device)).eval()
    return wrapped, {
        "source": "timm",
        "model_name": ref,
        "architecture": name,
        "training_regime": training_regime or "unknown",
        "train_seed": None,
        "dataset": dataset,
        "classes": int(meta["num_classes"]),
        "mean": list(cfg["mean"]),
        "std": list(cfg["std"]),
        "input_size": list(cfg.get("input_size") or []),
        "weights_sha256": meta["weights_sha256"],
        "original": [s["path"] for s in meta.get("originals", [])] or meta.get("pretrained_from"),
        "original_sha256": meta.get("original_sha256"),
        "ignored_keys": meta.get("ignored_keys", []),
        "cache": str(cache),
    }


def check_timm(ref: str) -> None:
    timm_name(ref)


def skeleton_timm(ref: str) -> nn.Module:
    """timm's architecture with its default number of classes and random weights, wrapped."""
    name = timm_name(ref)
    cfg = _cfg(name)
    return NormalizedClassifier(_create(name, int(cfg.num_classes)), tuple(cfg.mean), tuple(cfg.std))
