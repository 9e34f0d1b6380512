"""Other people's weight files, read without unpickling code and fitted to an architecture.

``torch.load(..., weights_only=True)`` refuses any pickled object but tensors and plain
containers; a few harmless types that training scripts often save beside the weights (numpy
scalars such as the epoch or best accuracy, an ``argparse.Namespace`` of hyper-parameters) are
allowed too. Every way a downloaded file goes wrong (an HTML page saved in its place, a cut-off
download, a pickled whole model, keys of another architecture) is a one-line
:class:`~robust_attn.errors.CheckpointError` naming the file and the fix.
"""

from __future__ import annotations

import argparse
import pickle
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from safetensors import SafetensorError
from safetensors.torch import load_file

from robust_attn.errors import CheckpointError
from robust_attn.verified import access_problem

# Wrappers around the state dict, tried in order (RobustBench: ``last`` for the Kireev2021 and
# Andriushchenko2020 files, ``state_dict`` for most; timm: EMA weights first, as its loader does).
ROBUSTBENCH_WRAPPERS = ("last", "state_dict", "model_state_dict", "model")
TIMM_WRAPPERS = ("state_dict_ema", "model_ema", "state_dict", "model_state_dict", "model")
# Prefixes left by torch.nn.DataParallel / DistributedDataParallel, torch.compile and wrappers.
WRAPPER_PREFIXES = ("module.", "_orig_mod.")
# Buffers an architecture sets itself and old checkpoints lack (RobustBench loads those models
# non-strictly): normalisation constants, and BatchNorm's counter, unused in eval mode.
OPTIONAL_BUFFERS = ("mu", "sigma", "mean", "std", "num_batches_tracked")


def _numpy_globals() -> list[Any]:
    core = np._core if hasattr(np, "_core") else np.core
    scalar = core.multiarray.scalar
    dtypes = sorted({type(np.dtype(c)) for c in "?bBhHiIlLqQefdgFDG"}, key=lambda t: t.__name__)
    return [scalar, (scalar, "numpy.core.multiarray.scalar"), (scalar, "numpy._core.multiarray.scalar"), np.dtype, *dtypes]


SAFE_GLOBALS: list[Any] = [*_numpy_globals(), argparse.Namespace]


def looks_like_html(head: bytes) -> bool:
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return text.startswith((b"<!doctype html", b"<html", b"<?xml", b"<head", b"<body")) or b"<html" in text[:1024]


def _unsafe_global(err: BaseException) -> str | None:
    found = re.search(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL) ([\w.]+)", str(err))
    return found.group(1) if found else None


def read_file(path: Path, fix: str) -> Any:
    """The object saved in ``path`` (a torch file, or safetensors by extension); ``fix`` ends
    every error (what to do to get a good file)."""
    where = f"checkpoint {str(path)!r}"
    if not path.is_file():
        raise CheckpointError(f"{where} not found; {fix}")
    try:
        with open(path, "rb") as f:
            head = f.read(2048)
    except OSError as err:
        raise CheckpointError(f"{where} cannot be read ({access_problem(path, err)}); make it readable (chmod a+r), or {fix}") from None
    if not head:
        raise CheckpointError(f"{where} is empty (0 bytes): an interrupted download; delete it and {fix}")
    if looks_like_html(head):
        raise CheckpointError(
            f"{where} is an HTML page, not weights (a download quota or sign-in page saved in its place); delete it and {fix}"
        )
    if path.suffix == ".safetensors":
        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as err:
            raise CheckpointError(
                f"{where} is truncated or not a safetensors file ({str(err).splitlines()[0]}); delete it and {fix}"
            ) from None
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        name = _unsafe_global(err)
        if name is None:
            raise CheckpointError(f"{where} is not a PyTorch file (it cannot be unpickled); delete it and {fix}") from None
        raise CheckpointError(
            f"{where} holds a pickled {name}, which is not loaded (weights_only=True: unpickling could run code); if you trust it, "
            "re-save just its weights: torch.save(torch.load(f, weights_only=False).state_dict(), f)"
        ) from None
    except (EOFError, RuntimeError, OSError, ValueError) as err:
        detail = str(err).strip().split(".")[0] or type(err).__name__
        raise CheckpointError(f"{where} is truncated or corrupt ({detail}); delete it and {fix}") from None


def _is_state_dict(obj: Any) -> bool:
    return isinstance(obj, dict) and bool(obj) and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())


def unwrap(obj: Any, path: Path, wrappers: Sequence[str]) -> dict[str, torch.Tensor]:
    """The state dict inside a saved object: itself, or under one of ``wrappers`` (two levels at most)."""
    for _ in range(3):
        if _is_state_dict(obj):
            return dict(obj)
        key = next((k for k in wrappers if isinstance(obj, dict) and isinstance(obj.get(k), dict)), None)
        if key is None:
            break
        obj = obj[key]
    what = f"a dict with keys {', '.join(map(str, list(obj)[:6]))}" if isinstance(obj, dict) else f"a {type(obj).__name__}"
    raise CheckpointError(
        f"checkpoint {str(path)!r} holds {what}, not a state dict (names -> tensors, possibly under {', '.join(wrappers)}); "
        "save model.state_dict() instead"
    )


def _strip(state: dict[str, torch.Tensor], prefixes: Iterable[str]) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in state.items():
        changed = True
        while changed:
            changed = False
            for p in prefixes:
                if key.startswith(p):
                    key, changed = key[len(p) :], True
        out[key] = value
    return out


def candidate_spellings(state: dict[str, torch.Tensor]) -> list[dict[str, torch.Tensor]]:
    """The state dict as saved, without wrapper prefixes, without ``model.`` (RobustBench strips
    it), and with ``model.`` added (RobustBench adds it for its normalising ImageNet wrappers)."""
    bare = _strip(state, WRAPPER_PREFIXES)
    return [state, bare, _strip(bare, ("model.",)), {f"model.{k}": v for k, v in bare.items()}]


def _required(model: nn.Module) -> set[str]:
    buffers = {name for name, _ in model.named_buffers()}
    return {k for k in model.state_dict() if k not in buffers or k.rsplit(".", 1)[-1] not in OPTIONAL_BUFFERS}


def fit_state_dict(model: nn.Module, state: dict[str, torch.Tensor], path: Path, what: str) -> list[str]:
    """Load ``state`` into ``model`` (the key spelling that covers all its weights; normalisation
    buffers it lacks keep the architecture's values); returns the ignored extra keys."""
    expected = model.state_dict()
    required = _required(model)
    best = min(candidate_spellings(state), key=lambda c: (len(required - c.keys()), len(c.keys() - expected.keys())))
    missing = sorted(required - best.keys())
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise CheckpointError(f"checkpoint {str(path)!r} does not fit {what}: it lacks {shown}; is it the file for this model?")
    for key, value in best.items():
        if key in expected and tuple(value.shape) != tuple(expected[key].shape):
            raise CheckpointError(
                f"checkpoint {str(path)!r} does not fit {what}: {key} is {tuple(value.shape)}, the architecture needs "
                f"{tuple(expected[key].shape)}; is it the file for this model (and number of classes)?"
            )
    ignored = sorted(best.keys() - expected.keys())
    if deeper := _inside_the_architecture(model, ignored):
        raise CheckpointError(
            f"checkpoint {str(path)!r} does not fit {what}: it has extra layers ({', '.join(deeper[:2])}, ...); "
            "is it a deeper variant of this architecture?"
        )
    model.load_state_dict({k: v for k, v in best.items() if k in expected}, strict=False)
    return ignored


def _inside_the_architecture(model: nn.Module, extra: list[str]) -> list[str]:
    """Extra keys that extend the architecture's own containers (``block1.layer.6.*`` where the
    model has 6 layers): weights of a deeper model. Other extras are ignored: tensors beside an
    existing layer (pruning scores) and whole foreign subtrees (an EMA copy, an auxiliary head)."""
    modules = {name for name, _ in model.named_modules()}
    out = []
    for key in extra:
        parent = key.rsplit(".", 1)[0] if "." in key else ""
        ancestors = [parent.rsplit(".", i)[0] for i in range(1, parent.count(".") + 1)]
        if parent not in modules and any(a in modules for a in ancestors):
            out.append(key)
    return out
