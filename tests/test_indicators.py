"""Indicators of attack failure: models built to mask gradients each trigger the right one, and a
trained zoo-style model triggers none under FGSM and APGD."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from robust_attn.attacks import create_attack
from robust_attn.diagnostics import diagnose


class Quantised(nn.Module):
    """Rounds its input to 16 levels first: a non-differentiable layer (zero input gradients)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(torch.round(x * 15) / 15)


class SaturatedSoftmax(nn.Module):
    """Returns probabilities from sharpened logits instead of logits."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(50 * self.model(x), dim=1)


class DropoutOn(nn.Module):
    """Dropout on the input, left in training mode by the user."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model, self.drop = model, nn.Dropout(0.3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.drop.train()  # as if the user forgot model.eval() on this layer
        return self.model(self.drop(x))


def _fired(model: nn.Module, x: torch.Tensor, y: torch.Tensor, attacks: list[str]) -> dict[tuple[str, str], bool]:
    built = [
        (a, create_attack(a, model, **({"steps": 100} if a != "fgsm" else {})), 8 / 255) for a in attacks
    ]  # APGD as AutoAttack runs it
    rows = diagnose(model, built, x, y, seed=0)
    return {(a, i): bool(t) for a, i, t in zip(rows["attack"], rows["indicator"], rows["triggered"])}


@pytest.fixture(scope="module")
def batch(test_batch) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[no-untyped-def]
    x, y = test_batch
    return x[:48], y[:48]


def test_trained_model_triggers_none(trained, batch) -> None:  # type: ignore[no-untyped-def]
    fired = _fired(trained[0], *batch, ["fgsm", "apgd"])
    assert not any(fired.values()), [k for k, v in fired.items() if v]
    assert len(fired) == 4 + 2 * 3


def test_quantised_input_triggers_unavailable_gradients(trained, batch) -> None:  # type: ignore[no-untyped-def]
    fired = _fired(Quantised(trained[0]), *batch, ["apgd"])
    assert fired[("(model)", "unavailable gradients")]
    assert not fired[("(model)", "probability outputs")] and not fired[("(model)", "randomness in the forward pass")]


def test_saturated_softmax_triggers_probability_outputs(trained, batch) -> None:  # type: ignore[no-untyped-def]
    fired = _fired(SaturatedSoftmax(trained[0]), *batch, ["apgd"])
    assert fired[("(model)", "probability outputs")]
    assert not fired[("(model)", "randomness in the forward pass")]


def test_dropout_left_on_triggers_randomness_and_instability(trained, batch) -> None:  # type: ignore[no-untyped-def]
    fired = _fired(DropoutOn(trained[0]), *batch, ["apgd"])
    assert fired[("(model)", "randomness in the forward pass")] and fired[("(model)", "unstable predictions")]
    assert not fired[("(model)", "unavailable gradients")]


def test_plain_pgd_in_independent_mode_can_succeed_silently(trained, batch) -> None:  # type: ignore[no-untyped-def]
    """PGD returns its last iterate: with a large step, an intermediate point that fooled the model
    is lost, which silent success reports; APGD returns the fooling point and never triggers it."""
    model, _ = trained
    x, y = batch
    pgd = create_attack("pgd", model, steps=10, alpha=4 / 255, random_start=False)
    rows = diagnose(model, [("pgd-big-step", pgd, 4 / 255), ("apgd", create_attack("apgd", model, steps=10), 4 / 255)], x, y, seed=0)
    silent = {a: v for a, i, v in zip(rows["attack"], rows["indicator"], rows["value"]) if i == "silent success"}
    assert silent["pgd-big-step"] > 0 and silent["apgd"] == 0
