"""``robustbench:<name>``: a RobustBench zoo model, its weights from RobustBench's own layout.

The architecture is RobustBench's definition; the weights are the file RobustBench would load,
``<model_dir>/<dataset>/<threat_model>/<name>.pt`` (an ensemble: ``<name>.pt_m0.pt``, ...), with
``model_dir`` defaulting to ``$ROBUST_ATTN_HOME/robustbench``. It is converted once into the hub
cache (:mod:`robust_attn.hub.cache`) and read from there afterwards. Nothing is downloaded unless
``download=True``. RobustBench models normalise inside, so they take [0, 1] images and eps stays
in pixel units.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from robust_attn.errors import CheckpointError, ModelError
from robust_attn.hub import cache as hub_cache
from robust_attn.hub.classes import RECORDED
from robust_attn.hub.download import download_gdrive, gdrive_page
from robust_attn.hub.robustbench_zoo import RobustBenchRef, build, get_entry, parse_ref, training_regime, zoo_location
from robust_attn.hub.weights import ROBUSTBENCH_WRAPPERS, fit_state_dict, read_file, unwrap


def default_model_dir() -> Path:
    """``$ROBUST_ATTN_HOME/robustbench``: RobustBench's ``model_dir`` when none is given."""
    from robust_attn.zoo import zoo_home

    return zoo_home() / "robustbench"


def weight_files(rb: RobustBenchRef, model_dir: str | Path | None = None) -> list[Path]:
    """Where RobustBench keeps the entry's weights (one file per ensemble member)."""
    base = Path(model_dir).expanduser() if model_dir is not None else default_model_dir()
    path = base / rb.relative_path
    ids = get_entry(rb)["gdrive_id"]
    return [Path(f"{path}_m{i}.pt") for i in range(len(ids))] if isinstance(ids, list) else [path]


def cache_file(rb: RobustBenchRef) -> Path:
    """The converted weights: ``$ROBUST_ATTN_HOME/hub/robustbench/<dataset>/<threat_model>/<name>.safetensors``."""
    return hub_cache.hub_home() / "robustbench" / rb.dataset / rb.threat_model / f"{rb.name}.safetensors"


def _gdrive_ids(rb: RobustBenchRef) -> list[str]:
    ids = get_entry(rb)["gdrive_id"]
    if ids is None:  # RobustBench 1.1.1 serves these through timm, under this name
        in_timm = f"{rb.name.lower().replace('-', '_')}_{rb.dataset}_{rb.threat_model.lower()}"
        raise ModelError(
            f"RobustBench serves {rb.ref} through timm, not a weight file; load timm:{in_timm} with download=True (--download)"
        )
    if not ids:
        raise ModelError(
            f"RobustBench builds {rb.ref} from torchvision's pretrained weights, not a weight file; "
            "sweep the torchvision model as a package.module:factory"
        )
    return list(ids) if isinstance(ids, list) else [ids]


def _members(model: nn.Module, rb: RobustBenchRef, count: int) -> list[nn.Module]:
    if count == 1:
        return [model]
    members = getattr(model, "models", None)
    if not isinstance(members, nn.ModuleList) or len(members) != count:
        raise ModelError(f"{rb.ref} is an ensemble RobustBench loads in its own way; it is not supported here")
    return list(members)


def _fetch_missing(rb: RobustBenchRef, files: list[Path], ids: list[str], download: bool, progress: bool) -> None:
    for path, gid in zip(files, ids):
        if path.is_file():
            continue
        if not download:
            raise CheckpointError(
                f"RobustBench weights for {rb.ref} not found at {path}; download them with --download (download=True), "
                f"or save {gdrive_page(gid)} there by hand"
            )
        download_gdrive(gid, path, progress=progress)


def _convert(model: nn.Module, rb: RobustBenchRef, files: list[Path], ids: list[str]) -> dict[str, Any]:
    ignored: list[str] = []
    for member, path, gid in zip(_members(model, rb, len(files)), files, ids):
        fix = f"download it again with --download, or save {gdrive_page(gid)} as {path}"
        state = unwrap(read_file(path, fix), path, ROBUSTBENCH_WRAPPERS)
        ignored += fit_state_dict(member, state, path, f"RobustBench's {rb.name} ({type(member).__name__})")
    record = {
        "source": "robustbench",
        "name": rb.name,
        "dataset": rb.dataset,
        "threat_model": rb.threat_model,
        "definitions": zoo_location(),
        "ignored_keys": ignored,
        **hub_cache.original_record(files),
    }
    return hub_cache.write_cache(cache_file(rb), model.state_dict(), record)


def _from_cache(model: nn.Module, rb: RobustBenchRef, files: list[Path]) -> dict[str, Any] | None:
    meta = hub_cache.read_cache_metadata(cache_file(rb))
    if meta is None or not hub_cache.is_current(meta, files):
        return None
    state = hub_cache.read_cache(cache_file(rb), meta)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError:
        return None  # RobustBench's definition changed since the conversion: convert the original again
    return meta


def load_robustbench(
    ref: str,
    device: str | torch.device = "auto",
    *,
    dataset: str | None = None,
    threat_model: str | None = None,
    model_dir: str | Path | None = None,
    download: bool = False,
    progress: bool = True,
    **_: Any,
) -> tuple[nn.Module, dict[str, Any]]:
    """(RobustBench model in eval mode on ``device``, metadata); see the module docstring."""
    from robust_attn.device import resolve_device

    rb = parse_ref(ref, dataset, threat_model)
    ids = _gdrive_ids(rb)
    files = weight_files(rb, model_dir)
    model = build(rb)
    meta = _from_cache(model, rb, files)
    if meta is None:
        if not all(p.is_file() for p in files) and not download and cache_file(rb).is_file():
            raise CheckpointError(
                f"hub cache {str(cache_file(rb))!r} does not fit RobustBench's {rb.name} any more and "
                f"{files[0]} is gone; delete the cache and download again with --download"
            )
        _fetch_missing(rb, files, ids, download, progress)
        meta = _convert(model, rb, files, ids)
    return model.to(resolve_device(device)).eval(), metadata(rb, model, meta)


def metadata(rb: RobustBenchRef, model: nn.Module, cached: dict[str, Any]) -> dict[str, Any]:
    """What ``load`` reports: the model's traits, its training data, and where its weights came from."""
    return {
        **RECORDED[rb.dataset],
        "source": "robustbench",
        "model_name": rb.ref,
        "architecture": rb.name,
        "module_class": type(model).__name__,
        "training_regime": training_regime(rb),
        "train_seed": None,
        "threat_model": rb.threat_model,
        "preprocessing": get_entry(rb).get("preprocessing"),
        "weights_sha256": cached["weights_sha256"],
        "original": [s["path"] for s in cached.get("originals", [])],
        "original_sha256": cached.get("original_sha256"),
        "ignored_keys": cached.get("ignored_keys", []),
        "cache": str(cache_file(rb)),
        "definitions": cached.get("definitions"),
    }


def recorded_robustbench(ref: str) -> dict[str, Any]:
    """What the entry was trained on, without weights (for the sweep's model-data check)."""
    rb = parse_ref(ref)
    get_entry(rb)
    hub_cache.verify_cache(cache_file(rb))  # a damaged conversion is one line here, before any model trains
    return {**RECORDED[rb.dataset], "architecture": rb.name, "training_regime": training_regime(rb), "threat_model": rb.threat_model}


def check_robustbench(ref: str) -> None:
    """A known entry with a weight file (one-line ModelError naming the fix otherwise)."""
    _gdrive_ids(parse_ref(ref))


def skeleton_robustbench(ref: str) -> nn.Module:
    """RobustBench's architecture for ``ref`` with its initial weights."""
    return build(parse_ref(ref))
