"""Turn what a user names (zoo entry, checkpoint file, ``package.module:factory``) into a model."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn


def is_import_spec(ref: str) -> bool:
    """``package.module:factory`` (a callable returning an nn.Module, or a module instance)."""
    mod, sep, attr = ref.partition(":")
    return bool(sep and mod and attr) and all(p.isidentifier() for p in mod.split(".")) and attr.isidentifier()


def _import_factory(ref: str) -> Any:
    mod_name, attr = ref.split(":")
    try:
        return getattr(importlib.import_module(mod_name), attr)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"cannot import {ref!r} ({err}); check PYTHONPATH and the name after ':'") from None


def check_model_ref(ref: str) -> None:
    """Validation before any work (import specs are imported, not called): raise ValueError naming the fix."""
    from robust_attn.zoo import ZOO, get_entry, is_zoo_ref

    if is_zoo_ref(ref) or "@seed=" in ref:
        get_entry(ref)  # a bad seed suffix or unknown name is a one-line error
        return
    if is_import_spec(ref):
        _import_factory(ref)
        return
    if ref.endswith(".safetensors"):
        if not Path(ref).expanduser().is_file():
            raise ValueError(f"checkpoint {ref!r} not found; train one with robust-attn train or use a zoo name")
        return
    raise ValueError(f"unknown model {ref!r}; use a zoo name ({', '.join(ZOO)}), a .safetensors checkpoint, or package.module:factory")


def build_import_spec(ref: str, device: str | torch.device = "auto") -> nn.Module:
    """Call the factory of ``package.module:factory`` (no arguments) and return the model in eval
    mode on ``device``; it must take [0, 1] images and return logits."""
    from robust_attn.device import resolve_device

    obj = _import_factory(ref)
    model = obj() if not isinstance(obj, nn.Module) else obj
    if not isinstance(model, nn.Module):
        raise ValueError(f"{ref!r} returned {type(model).__name__}, not a torch.nn.Module")
    return model.to(resolve_device(device)).eval()


def load_model_ref(
    ref: str, device: str | torch.device = "auto", *, progress: bool = True, data_dir: str | None = None
) -> tuple[nn.Module, dict[str, Any]]:
    """(model in eval mode on ``device``, metadata)."""
    from robust_attn.zoo import load_model

    check_model_ref(ref)
    if is_import_spec(ref):
        return build_import_spec(ref, device), {"model_name": ref, "source": "import"}
    model, meta = load_model(ref, device, progress=progress, data_dir=data_dir)
    return model.eval(), meta
