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

from robust_attn.data.preprocessing import from_timm
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


def _cache_for(name: str, checkpoint: Path | None, arch: dict[str, Any] | None = None) -> Path:
    """The conversion's file: one per checkpoint (or timm's pretrained weights) and architecture options."""
    options = f"-{hashlib.sha256(repr(sorted(arch.items())).encode()).hexdigest()[:8]}" if arch else ""
    if checkpoint is None:
        return hub_cache.hub_home() / "timm" / name / f"pretrained{options}.safetensors"
    digest = hashlib.sha256(str(checkpoint).encode()).hexdigest()[:12]
    return hub_cache.hub_home() / "timm" / name / f"{checkpoint.stem}-{digest}{options}.safetensors"


def _create(name: str, num_classes: int, pretrained: bool = False, arch: dict[str, Any] | None = None) -> nn.Module:
    try:
        model: nn.Module = _timm().create_model(name, pretrained=pretrained, num_classes=num_classes, **(arch or {}))
    except TypeError as err:  # an architecture option the entry point fixes itself (layers of resnet18), or of the wrong kind
        raise ModelError(f"timm:{name} does not take the options {arch!r} ({err}); drop them from its model table") from None
    return model


def _make(name: str, num_classes: int, pretrained: bool, arch: dict[str, Any]) -> nn.Module:
    """:func:`_create`, given the architecture options only when there are some."""
    return _create(name, num_classes, pretrained, arch) if arch else _create(name, num_classes, pretrained)


def _from_cache(
    name: str, cache: Path, originals: list[Path], num_classes: int | None, arch: dict[str, Any]
) -> tuple[nn.Module, dict[str, Any]] | None:
    meta = hub_cache.read_cache_metadata(cache)
    if meta is None or not hub_cache.is_current(meta, originals) or num_classes not in (None, meta.get("num_classes")):
        return None
    if meta.get("architecture_options", {}) != arch:
        return None
    model = _make(name, int(meta["num_classes"]), False, arch)
    try:
        model.load_state_dict(hub_cache.read_cache(cache, meta), strict=True)
    except RuntimeError:
        return None  # timm's definition changed since the conversion: convert again
    return model, meta


def _convert_checkpoint(
    name: str, path: Path, cache: Path, num_classes: int | None, arch: dict[str, Any]
) -> tuple[nn.Module, dict[str, Any]]:
    if not path.is_file():
        raise CheckpointError(f"timm checkpoint {str(path)!r} not found; pass checkpoint = PATH of a saved state dict for {name}")
    state = unwrap(read_file(path, f"save {name}'s state_dict() there again"), path, TIMM_WRAPPERS)
    classes = num_classes or _classifier_classes(name, state) or int(_cfg(name).num_classes)
    model = _make(name, classes, False, arch)
    ignored = fit_state_dict(model, state, path, f"timm's {name} with {classes} classes")
    record = {
        "source": "timm",
        "name": name,
        "num_classes": classes,
        "ignored_keys": ignored,
        "architecture_options": arch,
        **hub_cache.original_record([path]),
    }
    return model, hub_cache.write_cache(cache, model.state_dict(), record)


def _download_pretrained(name: str, cache: Path, num_classes: int | None, arch: dict[str, Any]) -> tuple[nn.Module, dict[str, Any]]:
    cfg = _cfg(name)
    if num_classes not in (None, cfg.num_classes):
        raise ModelError(
            f"timm's pretrained {name} has {cfg.num_classes} classes, not {num_classes}; drop num_classes, or pass "
            "checkpoint = PATH of weights fine-tuned to your classes"
        )
    try:
        model = _make(name, int(cfg.num_classes), True, arch)
    except OSError as err:  # no network, a proxy, the hub's HTTP errors (huggingface_hub's errors are OSErrors)
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelError(
            f"could not download timm's pretrained {name} ({reason}); check the network, "
            "or pass checkpoint = PATH of weights saved on a machine that has it"
        ) from None
    record = {
        "source": "timm",
        "name": name,
        "num_classes": int(cfg.num_classes),
        "pretrained_tag": cfg.tag,
        "pretrained_from": cfg.hf_hub_id or cfg.url,
        "originals": [],
        "original_sha256": [],
        "architecture_options": arch,
    }
    return model, hub_cache.write_cache(cache, model.state_dict(), record)


LOAD_OPTIONS = ("checkpoint", "num_classes", "download", "dataset", "training_regime")  # a timm model table's own options
_GIVEN_TO_EVERY_SOURCE = ("data_dir", "model_dir", "progress")  # the sweep passes these to every source's loader; timm needs none
_NOT_ARCHITECTURE = ("num_classes", "pretrained", "device", "dtype", "self")  # create_model's own, or set here


def architecture_options(name: str) -> set[str] | None:
    """The keywords timm's constructor for ``name`` takes (``in_chans``, ``drop_rate``, ...), read
    from its signature on a model built on the meta device (no memory, no weights); None when
    the constructor takes any keyword (``**kwargs``)."""
    import inspect

    with torch.device("meta"):
        model = _timm().create_model(name, pretrained=False)
    params = inspect.signature(type(model)).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return None
    return {n for n in params if n not in _NOT_ARCHITECTURE}


def check_options(ref: str, options: dict[str, Any]) -> dict[str, Any]:
    """The architecture options among a timm model table's ``options`` (what the constructor
    takes); an option that is neither the loader's nor the constructor's is a one-line
    ModelError naming it and the closest known one."""
    name = timm_name(ref)
    arch = {k: v for k, v in options.items() if k not in (*LOAD_OPTIONS, *_GIVEN_TO_EVERY_SOURCE)}
    known = architecture_options(name) if arch else set()
    for key in arch:
        if known is not None and key not in known:
            close = difflib.get_close_matches(key, [*LOAD_OPTIONS, *sorted(known)], n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ModelError(
                f"{ref}: unknown option {key!r}; {hint}a timm model table takes {', '.join(LOAD_OPTIONS)}, "
                f"and the architecture's own options ({', '.join(sorted(known)[:8])}, ...)"
            )
    return arch


def load_timm(
    ref: str,
    device: str | torch.device = "auto",
    *,
    num_classes: int | None = None,
    checkpoint: str | Path | None = None,
    download: bool = False,
    dataset: str | None = None,
    training_regime: str | None = None,
    **options: Any,
) -> tuple[nn.Module, dict[str, Any]]:
    """(timm model wrapped to take [0, 1] images, in eval mode on ``device``; metadata).

    ``dataset`` and ``training_regime`` are what the user knows about the weights (timm does not
    record them): they go into the metadata, ``None`` and ``unknown`` otherwise. Other
    ``options`` are the architecture's own (``in_chans = 1``, ``drop_rate``), passed to
    ``timm.create_model``; one it does not take is an error naming it (see :func:`check_options`).
    """
    from robust_attn.device import resolve_device

    name = timm_name(ref)
    arch = check_options(ref, options)
    path = Path(checkpoint).expanduser().resolve() if checkpoint is not None else None
    cache = _cache_for(name, path, arch)
    found = _from_cache(name, cache, [path] if path is not None else [], num_classes, arch)
    if found is None and path is not None:
        found = _convert_checkpoint(name, path, cache, num_classes, arch)
    elif found is None and download:
        found = _download_pretrained(name, cache, num_classes, arch)
    elif found is None:
        raise CheckpointError(
            f"timm:{name} has no weights: pass checkpoint = PATH (a saved state dict), "
            "or download=True (--download) for timm's pretrained weights"
        )
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
        # timm's evaluation transform describes its own pretrained weights; a user's checkpoint was trained on the user's data
        "preprocessing": from_timm(cfg) if meta.get("pretrained_from") else None,
    }


def check_timm(ref: str) -> None:
    timm_name(ref)


def qualify_timm(ref: str, options: dict[str, Any], context: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A spec's timm model table, checked before any work: its options (:func:`check_options`),
    and its classifier against the spec's data set (``context["dataset"]``): a model with 1000
    outputs swept on 10 classes is a one-line error saying which option fixes it."""
    check_options(ref, options)
    classes = _data_classes(context.get("dataset"))
    if classes is not None:
        _check_classes(ref, options, str(context.get("dataset")), classes)
    return ref, dict(options)


def _data_classes(dataset: Any) -> int | None:
    from robust_attn.data.loading import dataset_source
    from robust_attn.errors import RobustAttnError

    try:
        return dataset_source(str(dataset)).num_classes
    except RobustAttnError:
        return None  # an unknown data set is the spec's own error


def _check_classes(ref: str, options: dict[str, Any], dataset: str, classes: int) -> None:
    name = timm_name(ref)
    given, checkpoint = options.get("num_classes"), options.get("checkpoint")
    fix = f"set num_classes = {classes}"
    if given is not None:
        if given != classes:
            raise ModelError(f"{ref}: num_classes = {given} but the sweep's data {dataset} has {classes} classes; {fix}")
        return
    if checkpoint is None:
        default = int(_cfg(name).num_classes)
        if options.get("download") and default != classes:
            raise ModelError(
                f"{ref}: timm's pretrained weights have {default} classes but the sweep's data {dataset} has {classes}; "
                f"pass checkpoint = PATH of weights trained on {dataset} and {fix}"
            )
        return
    path = Path(str(checkpoint)).expanduser()
    if not path.is_file():
        return  # the loader says it is missing
    found = _checkpoint_classes(name, path)
    if found is not None and found != classes:  # (no classifier found: the loader says what the file lacks)
        raise ModelError(
            f"{ref}: its checkpoint's classifier has {found} outputs but the sweep's data {dataset} has {classes} classes; "
            f"{fix} and pass a checkpoint trained on those {classes} classes (these weights are for another task)"
        )


def _checkpoint_classes(name: str, path: Path) -> int | None:
    """The classifier's outputs in a checkpoint, read without loading its tensors (safetensors
    header, or a memory-mapped torch file); None when it cannot tell (the loader reports a bad file)."""
    try:
        if path.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), "pt") as f:
                state: dict[str, Any] = {k: _Shape(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118 (safe_open has no __iter__)
        else:
            state = unwrap(torch.load(path, map_location="cpu", mmap=True, weights_only=True), path, TIMM_WRAPPERS)
        return _classifier_classes(name, state)
    except Exception:  # any unreadable file: the loader names the problem when it reads it
        return None


class _Shape:
    """A tensor's shape without its data (what :func:`_classifier_classes` reads of a weight)."""

    def __init__(self, shape: list[int]) -> None:
        self.shape = tuple(shape)
        self.ndim = len(shape)


def skeleton_timm(ref: str) -> nn.Module:
    """timm's architecture with its default number of classes and random weights, wrapped."""
    name = timm_name(ref)
    cfg = _cfg(name)
    return NormalizedClassifier(_create(name, int(cfg.num_classes)), tuple(cfg.mean), tuple(cfg.std))
