"""Model-data compatibility, checked for every model before a sweep does any work.

Checkpoints and zoo entries record the data set, image shape and classes they were trained on;
other models (``package.module:factory``) get one dry forward pass on a batch of the sweep's
data. A mismatch is a one-line error naming both sides and the fix. Each model's attention
(the ``attention_maps`` protocol) is found here too, from its architecture or its module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

from robust_attn.data import ImageDataset
from robust_attn.errors import (
    AttackParameterError,
    ModelDataMismatch,
    ModelOutputError,
    RobustAttnError,
    SpecError,
    UserCodeError,
    first_line,
    raised_in_user_code,
    user_frames,
)
from robust_attn.probes import has_attention
from robust_attn.resolve import build_import_spec, declared_traits, load_model_ref, recorded_metadata, skeleton, source_for
from robust_attn.sweeps.spec import SweepSpec


@dataclass
class Checked:
    """A model that passed the compatibility checks; import specs keep the module they built."""

    ref: str
    has_attention: bool
    module: nn.Module | None = None
    meta: dict[str, Any] | None = None  # what loading it reported, for a model loaded here


def _describe(dataset: str, shape: tuple[int, ...] | list[int] | None, classes: int | None) -> str:
    dims = "x".join(str(d) for d in shape) if shape else "?"
    return f"{dataset} ({dims} images, {classes if classes is not None else '?'} classes)"


def check_recorded(ref: str, meta: dict[str, Any], data: ImageDataset) -> None:
    """Compare what a checkpoint (or zoo entry) was trained on with the sweep's data."""
    shape = meta.get("image_shape")
    classes = meta.get("classes")
    n_classes = len(classes) if isinstance(classes, list) else classes if isinstance(classes, int) else None
    trained = meta.get("dataset")
    expected = data.trained_as or data.name  # cifar10c is evaluated with models trained on cifar10
    ours = _describe(data.name, list(data.image_shape), len(data.classes))
    theirs = _describe(str(trained), shape, n_classes)
    mismatched = (
        (trained is not None and str(trained) != expected)
        or (shape is not None and list(shape) != list(data.image_shape))
        or (n_classes is not None and n_classes != len(data.classes))
    )
    if mismatched:
        raise ModelDataMismatch(
            f"model {ref!r} was trained on {theirs} but the sweep's data is {ours}; "
            f"set dataset = {str(trained)!r} in the spec, or sweep a model trained on {data.name}"
        )


def check_forward(ref: str, model: nn.Module, data: ImageDataset, device: torch.device, batch: int = 4) -> None:
    """One dry forward pass: the model must take the data's images and return one logit per class."""
    _, x, _ = next(data.subset(batch).batches(batch))
    ours = _describe(data.name, list(data.image_shape), len(data.classes))
    try:
        with torch.inference_mode():
            out = model(x.to(device))
    except (RuntimeError, ValueError, TypeError) as err:
        raise ModelDataMismatch(
            f"model {ref!r} fails on the sweep's data, {ours}: {first_line(err).partition(': ')[2] or type(err).__name__}; "
            "check the data set or the model's input layer"
        ) from None
    except Exception as err:
        if raised_in_user_code(err):
            raise UserCodeError(f"model {ref!r}: its forward raised {first_line(err)} on a batch of the sweep's data; fix it in your code "
                                "(traceback of your files below)", user_frames(err)) from err  # fmt: skip
        raise
    if not isinstance(out, torch.Tensor) or out.shape != (x.shape[0], len(data.classes)):
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ModelDataMismatch(
            f"model {ref!r} returns {got} for a batch of {x.shape[0]}, but the sweep's data {ours} needs logits of shape "
            f"({x.shape[0]}, {len(data.classes)}); return one logit per class (logits only, not a tuple)"
        )
    bad = int((~torch.isfinite(out.float()).all(dim=1)).sum())
    if bad:
        raise ModelOutputError(f"model {ref!r} returns NaN or infinite logits for {bad} of {len(out)} images of a batch of the sweep's data; "
                               "fix its forward (an overflow, a log of 0, an uninitialised layer): NaN logits would count as predictions",
                               bad, len(out))  # fmt: skip


def check_attention(ref: str, model: nn.Module, data: ImageDataset, device: torch.device) -> bool:
    """Whether ``model`` has attention; if it says so, its maps must follow the protocol (checked
    on two images, so a wrong shape fails here, not after the sweep's attack cells)."""
    if not has_attention(model):
        return False
    from robust_attn.probes.maps import attention_maps

    _, x, _ = next(data.subset(2).batches(2))
    try:
        attention_maps(model, x.to(device))
    except RobustAttnError:
        raise
    except Exception as err:
        if raised_in_user_code(err):
            raise UserCodeError(f"model {ref!r}: attention_maps raised {first_line(err)}; fix it in your code", user_frames(err)) from err
        raise
    return True


def check_attacks(spec: SweepSpec, data: ImageDataset) -> None:
    """Every attack against the data: every eps grid (attacks and transfer tables) within the
    images' diameter in its norm, and what each attack itself declares it needs (e.g. more
    classes than APGD-T's targets)."""
    from robust_attn.attacks.registry import dry_attack
    from robust_attn.sweeps.spec import check_eps_tables

    check_eps_tables(spec, tuple(data.image_shape))
    tables = [(f"attacks[{i}]", a) for i, a in enumerate(spec.attacks)] + [
        (f"transfer[{j}]", t.attack) for j, t in enumerate(spec.transfer)
    ]
    for where, a in tables:
        try:
            dry_attack(a.name, a.backend, a.params).check_data(len(data.classes), data.image_shape)
        except AttackParameterError as err:
            raise SpecError(f"{where}.{err.param}: {err} (data: {data.name})") from None


def preflight(spec: SweepSpec, data: ImageDataset, device: torch.device) -> list[Checked]:
    """Check every attack and model against the data before any work (one-line errors, exit 2 in the CLI)."""
    check_attacks(spec, data)
    checked = []
    for ref in spec.models:
        source = source_for(ref)
        if source.user_code:
            module = build_import_spec(ref, device)
            check_forward(ref, module, data, device)
            checked.append(Checked(ref, check_attention(ref, module, data, device), module))
            continue
        source.check(ref)
        recorded = recorded_metadata(ref)
        if recorded is None:  # only a forward pass can tell (a timm architecture): load it once, keep it
            module, meta = load_model_ref(ref, device, **load_options(spec, ref))
            check_forward(ref, module, data, device)
            checked.append(Checked(ref, check_attention(ref, module, data, device), module, meta))
            continue
        check_recorded(ref, recorded, data)
        arch = skeleton(ref)
        checked.append(Checked(ref, arch is not None and check_attention(ref, arch.to(device).eval(), data, device)))
    return checked


def load_options(spec: SweepSpec, ref: str) -> dict[str, Any]:
    """What loading ``ref`` takes from the spec: its model table's options, model_dir, download."""
    return {"data_dir": spec.data_dir, "model_dir": spec.model_dir, "download": spec.download, **spec.model_options.get(ref, {})}


def trained_metadata(item: Checked, spec: SweepSpec, device: torch.device) -> dict[str, Any]:
    """What a model records about itself once trained (weights identity, architecture, recipe,
    seed), with its declared traits: from its header where the source records it there (zoo,
    checkpoints), else from loading it once (other hubs: the weights' sha256 keys its cells)."""
    if item.module is not None:
        meta: dict[str, Any] = item.meta or {"model_name": item.ref, "source": "import"}
        return {**declared_traits(meta, item.module, item.ref), **meta}
    meta = recorded_metadata(item.ref) or {}
    if not meta.get("weights_sha256"):
        _, meta = load_model_ref(item.ref, device, progress=False, **load_options(spec, item.ref))
    return {**declared_traits(meta, None, item.ref), **meta}
