"""Turn what a user names into a model, through a registry of model sources.

A source declares which references it serves (a zoo name, a ``.safetensors`` file, a
``package.module:factory`` import spec, ...), how to check one cheaply before any work, how to
load it, and what it records about its training data and traits. New sources (other people's
model hubs) register themselves; nothing here matches on a source's name.

Every model comes back with its card (:class:`robust_attn.card.ModelCard`): architecture,
training regime (``clean``, ``fgsm-at``, ... or ``unknown``), seed, attention, training data,
normalisation, weights' identity and budget, from the source's record or what the module declares.
:func:`load_model` is the one loader, for every reference a sweep accepts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from robust_attn.card import ModelCard, card_from_record
from robust_attn.errors import ModelError, SpecError, UserCodeError
from robust_attn.import_spec import import_object, is_import_spec, user_error
from robust_attn.model_sources import _SOURCES, ModelSource
from robust_attn.models.transformer_attention import with_transformer_attention
from robust_attn.protocols import has_attention


def source_for(ref: str) -> ModelSource:
    """The source that serves ``ref``, or a one-line error listing the kinds of reference."""
    _ensure_builtin_sources()
    for source in _SOURCES:
        if source.matches(ref):
            return source
    from robust_attn.zoo import ZOO

    raise ModelError(
        f"unknown model {ref!r}; use a zoo name ({', '.join(ZOO)}), a .safetensors checkpoint, or package.module:factory"
        + "".join(f", or {s.name}" for s in _SOURCES if s.name.endswith(":<name>"))
    )


def qualify(ref: str, options: dict[str, Any], context: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A spec's model table -> (exact reference, options for load): the source rewrites it if it
    declares how (``ModelSource.qualify``), else the reference stands and the options go to load."""
    source = source_for(ref)
    return source.qualify(ref, options, context) if source.qualify is not None else (ref, dict(options))


def check_model_ref(ref: str, where: str = "") -> None:
    """Validation before any work (import specs are imported, not called); one-line errors naming
    the fix. With ``where`` (a spec field), a bad reference is a SpecError naming that field."""
    try:
        source_for(ref).check(ref)
    except ModelError as err:
        if where and not isinstance(err, UserCodeError):
            raise SpecError(f"{where}: {err}") from None
        raise


def load_model(ref: str | Path, device: str | torch.device = "auto", **options: Any) -> tuple[nn.Module, ModelCard]:
    """(model in eval mode on ``device``, its card), for every reference a sweep accepts: a zoo name
    (trained on demand unless ``train_missing=False``), a ``.safetensors`` checkpoint, an import
    spec, ``timm:<name>`` (``checkpoint=``, ``num_classes=``, architecture options) or
    ``robustbench:<name>`` (``model_dir=``, ``threat_model=``). ``options`` are the source's, as
    in a spec's model table."""
    ref = str(ref)
    source = source_for(ref)
    source.check(ref)
    model, record = source.load(ref, device, **options)
    model = with_transformer_attention(model.eval())  # a ViT trunk gets the attention protocol (its CLS and rollout maps)
    return model, card_from_record(ref, source.kind, record, model, attention_of(model))


load_model_ref = load_model  # the sweep's name for it


def recorded_card(ref: str) -> ModelCard | None:
    """The card a model's source records without loading weights (a checkpoint's header, a zoo
    entry, a hub's table); None when only loading it can tell (an import spec, a timm architecture)."""
    source = source_for(ref)
    record = source.recorded(ref)
    return None if record is None else card_from_record(ref, source.kind, record)


def recorded_metadata(ref: str) -> dict[str, Any] | None:
    """What a model records about its training data (dataset, image_shape, classes), without
    training or loading weights; None when only a forward pass can tell."""
    return source_for(ref).recorded(ref)


def skeleton(ref: str) -> nn.Module | None:
    """The model's architecture without its trained weights, when that is cheap to build."""
    return source_for(ref).skeleton(ref)


def attention_of(model: nn.Module) -> tuple[str, ...]:
    """The names of a module's attention maps (its ``attention_stage_names``, else one name per
    map found by the protocol); empty without the attention protocol."""
    if not has_attention(model):
        return ()
    return tuple(str(n) for n in getattr(model, "attention_stage_names", None) or ()) or ("maps",)


# -- import specs -------------------------------------------------------------------------------
def _import_factory(ref: str) -> Any:
    obj = import_object(ref)
    if not callable(obj) and not isinstance(obj, nn.Module):
        raise ModelError(
            f"{ref!r} names a {type(obj).__name__}, not a factory or a torch.nn.Module; point it at a function returning the model"
        )
    return obj


def build_import_spec(ref: str, device: str | torch.device = "auto") -> nn.Module:
    """Call the factory of ``package.module:factory`` (no arguments) and return the model in eval
    mode on ``device``; it must take [0, 1] images and return logits."""
    from robust_attn.device import resolve_device

    obj = _import_factory(ref)
    if isinstance(obj, nn.Module):
        model = obj
    else:
        try:
            model = obj()
        except Exception as err:
            raise user_error(ref, "the factory", err) from err
    if not isinstance(model, nn.Module):
        raise ModelError(f"{ref!r} returned {type(model).__name__}, not a torch.nn.Module; return the model from the factory")
    return with_transformer_attention(model.to(resolve_device(device)).eval())


def _load_import(ref: str, device: str | torch.device = "auto", **_: Any) -> tuple[nn.Module, dict[str, Any]]:
    return build_import_spec(ref, device), {"model_name": ref, "source": "import"}


# -- checkpoints and the zoo ---------------------------------------------------------------------
def _is_checkpoint(ref: str) -> bool:
    return ref.endswith(".safetensors")


def _check_checkpoint(ref: str) -> None:
    if not Path(ref).expanduser().is_file():
        raise ModelError(f"checkpoint {ref!r} not found; train one with robust-attn train or use a zoo name")


def _load_checkpoint(ref: str, device: str | torch.device = "auto", **_: Any) -> tuple[nn.Module, dict[str, Any]]:
    from robust_attn.zoo import load_model

    return load_model(ref, device)


def _with_file(meta: dict[str, Any], path: Path) -> dict[str, Any]:
    from robust_attn.checkpoint import file_sha256

    return {**meta, "checkpoint": str(path), "checkpoint_sha256": file_sha256(path)}


def _checkpoint_recorded(ref: str) -> dict[str, Any] | None:
    from robust_attn.checkpoint import verify_checkpoint

    path = Path(ref).expanduser()
    return _with_file(verify_checkpoint(path), path)  # weights hashed against their record before any work


def _checkpoint_skeleton(ref: str) -> nn.Module | None:
    from robust_attn.checkpoint import read_metadata
    from robust_attn.models import create_model, list_models

    meta = read_metadata(Path(ref).expanduser())
    return create_model(meta["model"], **meta.get("model_kwargs", {})) if meta.get("model") in list_models() else None


def _load_zoo(
    ref: str,
    device: str | torch.device = "auto",
    *,
    progress: bool = True,
    data_dir: str | None = None,
    train_missing: bool = True,
    **_: Any,
) -> tuple[nn.Module, dict[str, Any]]:
    from robust_attn.zoo import load_model

    return load_model(ref, device, progress=progress, data_dir=data_dir, train_missing=train_missing)


def _check_zoo(ref: str) -> None:
    from robust_attn.zoo import get_entry

    get_entry(ref)  # a bad seed suffix or unknown name is a one-line error


def _zoo_recorded(ref: str) -> dict[str, Any] | None:
    """The shipped (else cached) checkpoint's metadata once trained; before that, what the entry will train on."""
    from robust_attn.zoo import check_not_shadowed, entry_recorded_data, trained_metadata, trained_path

    meta = trained_metadata(ref)
    if meta is None:
        return entry_recorded_data(ref)
    check_not_shadowed(ref)
    return _with_file(meta, trained_path(ref)[0])


def _zoo_skeleton(ref: str) -> nn.Module | None:
    from robust_attn.models import create_model
    from robust_attn.zoo import get_entry

    entry = get_entry(ref)
    return create_model(entry.model, **entry.model_kwargs)


def _is_zoo(ref: str) -> bool:
    from robust_attn.zoo import SEED_MARK, is_zoo_ref

    return is_zoo_ref(ref) or SEED_MARK in ref


def _check_import(ref: str) -> None:
    _import_factory(ref)


def _import_skeleton(ref: str) -> nn.Module | None:
    return None  # building it runs the user's factory: the sweep builds it once, in preflight


_BUILTIN_SOURCES = (
    ModelSource(
        "a .safetensors checkpoint",
        _is_checkpoint,
        _check_checkpoint,
        _load_checkpoint,
        _checkpoint_recorded,
        _checkpoint_skeleton,
        kind="checkpoint",
    ),
    ModelSource(
        "package.module:factory",
        is_import_spec,
        _check_import,
        _load_import,
        lambda ref: None,
        _import_skeleton,
        user_code=True,
        kind="import",
    ),
    ModelSource("a zoo name", _is_zoo, _check_zoo, _load_zoo, _zoo_recorded, _zoo_skeleton, kind="zoo"),
)


_HUB_REGISTERED = [False]


def _ensure_builtin_sources() -> None:
    """The zoo, checkpoint files and import specs, then other people's models (robust_attn.hub)."""
    for source in _BUILTIN_SOURCES:
        if all(s.name != source.name for s in _SOURCES):
            _SOURCES.append(source)
    if not _HUB_REGISTERED[0]:
        _HUB_REGISTERED[0] = True
        from robust_attn.hub import register_hub_sources

        register_hub_sources()
