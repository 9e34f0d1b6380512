"""Model-data compatibility, checked for every model before a sweep does any work.

Each model's card comes from its source once, here. Checkpoints and zoo entries record the data
set, image shape and classes they were trained on; other models (``package.module:factory``, a
timm architecture) get one dry forward pass on a batch of the sweep's data. A mismatch is a
one-line error naming both sides and the fix. Each model's attention (the ``attention_maps``
protocol) is checked here too, on its architecture or its module, and recorded in its card.
Nothing loaded here is kept, except an import spec's module (building it runs the user's code,
so it is built once), which the sweep uses at the model's turn and then releases.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

from robust_attn.card import ModelCard, card_from_record
from robust_attn.data import ImageData
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
from robust_attn.protocols import has_attention
from robust_attn.resolve import attention_of, build_import_spec, load_model, recorded_card, skeleton, source_for
from robust_attn.sweeps.spec import SweepSpec


@dataclass
class Checked:
    """A model that passed the compatibility checks: its card, and for an import spec the module
    built to check it (used at its turn, then released)."""

    card: ModelCard
    module: nn.Module | None = None

    @property
    def ref(self) -> str:
        return self.card.ref

    @property
    def has_attention(self) -> bool:
        return self.card.has_attention


def _describe(dataset: str, shape: tuple[int, ...] | list[int] | None, classes: int | None) -> str:
    dims = "x".join(str(d) for d in shape) if shape else "?"
    return f"{dataset} ({dims} images, {classes if classes is not None else '?'} classes)"


def check_recorded(card: ModelCard, data: ImageData) -> None:
    """Compare what a checkpoint (or zoo entry) was trained on with the sweep's data."""
    trained = card.dataset
    expected = data.trained_as or data.name  # cifar10c is evaluated with models trained on cifar10
    ours = _describe(data.name, list(data.image_shape), len(data.classes))
    theirs = _describe(str(trained), card.image_shape, card.num_classes)
    mismatched = (
        (trained is not None and str(trained) != expected)
        or (card.image_shape is not None and list(card.image_shape) != list(data.image_shape))
        or (card.num_classes is not None and card.num_classes != len(data.classes))
    )
    if mismatched:
        same_set = trained is not None and str(trained) == expected
        fix = (f"set classes = [...] in the data table to the model's {card.num_classes} classes, or sweep a model trained on these "
               f"{len(data.classes)}" if same_set and card.num_classes != len(data.classes) else
               f"set dataset = {str(trained)!r} in the spec, or sweep a model trained on {data.name}")  # fmt: skip
        raise ModelDataMismatch(f"model {card.ref!r} was trained on {theirs} but the sweep's data is {ours}; {fix}")
    check_class_order(card, data)


def check_class_order(card: ModelCard, data: ImageData) -> None:
    """A model whose class names are the data's in another order would be scored against the wrong
    labels: refuse it, naming the first class out of place and the fix."""
    if card.classes is None or set(card.classes) != set(data.classes) or tuple(card.classes) == tuple(data.classes):
        return
    i = next(i for i, (a, b) in enumerate(zip(card.classes, data.classes)) if a != b)
    raise ModelDataMismatch(f"model {card.ref!r} orders its classes differently from the data: its class {i} is {card.classes[i]!r}, "
                            f"the data's {data.classes[i]!r}; set classes = [...] in the data table to the model's order")  # fmt: skip


def check_forward(ref: str, model: nn.Module, data: ImageData, device: torch.device, batch: int = 4) -> None:
    """One dry forward pass: the model must take the data's images and return one logit per class."""
    x, _, _ = data.head(batch)
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
            raise UserCodeError(
                f"model {ref!r}: its forward raised {first_line(err)} on a batch of the sweep's data; fix it in your code "
                "(traceback of your files below)",
                user_frames(err),
            ) from err
        raise
    if not isinstance(out, torch.Tensor) or out.shape != (x.shape[0], len(data.classes)):
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ModelDataMismatch(
            f"model {ref!r} returns {got} for a batch of {x.shape[0]}, but the sweep's data {ours} needs logits of shape "
            f"({x.shape[0]}, {len(data.classes)}); return one logit per class (logits only, not a tuple)"
        )
    bad = int((~torch.isfinite(out.float()).all(dim=1)).sum())
    if bad:
        raise ModelOutputError(
            f"model {ref!r} returns NaN or infinite logits for {bad} of {len(out)} images of a batch of the sweep's data; "
            "fix its forward (an overflow, a log of 0, an uninitialised layer): NaN logits would count as predictions",
            bad,
            len(out),
        )


def check_attention(ref: str, model: nn.Module, data: ImageData, device: torch.device) -> bool:
    """Whether ``model`` has attention; if it says so, its maps must follow the protocol (checked
    on two images, so a wrong shape fails here, not after the sweep's attack cells)."""
    if not has_attention(model):
        return False
    from robust_attn.probes.maps import attention_maps

    x, _, _ = data.head(2)
    try:
        attention_maps(model, x.to(device))
    except RobustAttnError:
        raise
    except Exception as err:
        if raised_in_user_code(err):
            raise UserCodeError(f"model {ref!r}: attention_maps raised {first_line(err)}; fix it in your code", user_frames(err)) from err
        raise
    return True


def check_attacks(spec: SweepSpec, data: ImageData) -> None:
    """Every attack against the data: every eps grid (attacks and transfer tables) within the
    images' diameter in its norm, and what each attack itself declares it needs (e.g. more
    classes than APGD-T's targets)."""
    from robust_attn.attacks.registry import dry_evaluation
    from robust_attn.sweeps.spec import check_eps_tables

    check_eps_tables(spec, tuple(data.image_shape))
    tables = [(f"attacks[{i}]", a) for i, a in enumerate(spec.attacks)] + [
        (f"transfer[{j}]", t.attack) for j, t in enumerate(spec.transfer)
    ]
    for where, a in tables:
        try:
            dry_evaluation(a.name, a.backend, a.params).check_data(len(data.classes), data.image_shape)
        except AttackParameterError as err:
            raise SpecError(f"{where}.{err.param}: {err} (data: {data.name})") from None


def preflight(spec: SweepSpec, data: ImageData, device: torch.device) -> list[Checked]:
    """Check every attack and model against the data before any work (one-line errors, exit 2 in
    the CLI); each model's card, with its attention as checked."""
    check_attacks(spec, data)
    return [_check_model(ref, spec, data, device) for ref in spec.models]


def _check_model(ref: str, spec: SweepSpec, data: ImageData, device: torch.device) -> Checked:
    source = source_for(ref)
    if source.user_code:  # building it runs the user's code: once, kept until its turn
        module = build_import_spec(ref, device)
        data = data.for_model(getattr(module, "preprocessing", None) and card_from_record(ref, source.kind, {}, module).preprocessing)
        check_forward(ref, module, data, device)
        attention = attention_of(module) if check_attention(ref, module, data, device) else ()
        return Checked(card_from_record(ref, source.kind, {"model_name": ref}, module, attention), module)
    source.check(ref)
    card = recorded_card(ref)
    if card is None:  # only a forward pass can tell (a timm architecture): loaded once here, released
        module, card = load_model(ref, device, **load_options(spec, ref))
        data = data.for_model(card.preprocessing)
        check_forward(ref, module, data, device)
        check_class_order(card, data)
        return Checked(card.with_(attention=card.attention if check_attention(ref, module, data, device) else ()))
    data = data.for_model(card.preprocessing)
    check_recorded(card, data)
    arch = skeleton(ref)
    attentive = arch is not None and check_attention(ref, arch.to(device).eval(), data, device)
    return Checked(card.with_(attention=attention_of(arch) if arch is not None and attentive else ()))


def load_options(spec: SweepSpec, ref: str) -> dict[str, Any]:
    """What loading ``ref`` takes from the spec: its model table's options, model_dir, download."""
    return {"data_dir": spec.data_dir, "model_dir": spec.model_dir, "download": spec.download, **spec.model_options.get(ref, {})}


def trained_card(item: Checked, spec: SweepSpec, device: torch.device) -> ModelCard:
    """A model's card once trained (a zoo entry trained since the checks now records its weights'
    identity); a source that records none in its header is loaded once to learn it (other hubs:
    the weights' sha256 keys its cells)."""
    card = item.card
    if card.weights_identity or item.module is not None:
        return card
    recorded = recorded_card(item.ref)
    if recorded is None or not recorded.weights_identity:
        _, recorded = load_model(item.ref, device, progress=False, **load_options(spec, item.ref))
    return recorded.with_(attention=card.attention)
