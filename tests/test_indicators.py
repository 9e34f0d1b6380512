"""Indicators of attack failure: models built to mask gradients each trigger the right one, and a
smooth constructed model triggers none under FGSM and APGD. Every model here has a known answer:
none depends on weights trained during the test run (they differ between CPUs)."""

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


class LinearModel(nn.Module):
    """Logits W x + b with fixed random weights: smooth, deterministic, always foolable in the box."""

    def __init__(self, classes: int = 10, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.w = nn.Parameter(torch.randn(classes, 3 * 32 * 32, generator=g) * 0.02)
        self.b = nn.Parameter(torch.zeros(classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1) @ self.w.T + self.b


class SilentSuccess(nn.Module):
    """Two classes; the margin of class 0 is a function of s = 255 * mean(x - 0.5): m(s) = 1 - s up to
    s = 1.5, then rising again (-0.5 + 3 (s - 1.5)). Sign-gradient PGD from s = 0 with a step of
    1.25/255 goes 0 -> 1.25 (fooled) -> 2.5 (correct again) -> 1.25 -> 2.5 ...: after an even number
    of steps it returns a correct point although an iterate fooled the model."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = 255 * (x - 0.5).flatten(1).mean(dim=1)
        margin = torch.where(s < 1.5, 1 - s, -0.5 + 3 * (s - 1.5))
        return torch.stack([4 * margin, torch.zeros_like(margin)], dim=1)


def _own_labels(batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """The batch with the linear model's own clean predictions as labels (all start correct)."""
    x, _ = batch
    with torch.no_grad():
        return x, LinearModel()(x).argmax(dim=1)


def test_smooth_model_triggers_none(batch) -> None:  # type: ignore[no-untyped-def]
    x, _ = batch
    model = LinearModel().eval()
    with torch.no_grad():
        y = model(x).argmax(dim=1)  # its own predictions: every image starts correct
    fired = _fired(model, x, y, ["fgsm", "apgd"])
    assert not any(fired.values()), [k for k, v in fired.items() if v]
    assert len(fired) == 4 + 2 * 3


def test_quantised_input_triggers_unavailable_gradients(batch) -> None:  # type: ignore[no-untyped-def]
    fired = _fired(Quantised(LinearModel()), *_own_labels(batch), ["apgd"])
    assert fired[("(model)", "unavailable gradients")]
    assert not fired[("(model)", "probability outputs")] and not fired[("(model)", "randomness in the forward pass")]


def test_saturated_softmax_triggers_probability_outputs(batch) -> None:  # type: ignore[no-untyped-def]
    fired = _fired(SaturatedSoftmax(LinearModel()), *_own_labels(batch), ["apgd"])
    assert fired[("(model)", "probability outputs")]
    assert not fired[("(model)", "randomness in the forward pass")]


def test_dropout_left_on_triggers_randomness_and_instability(batch) -> None:  # type: ignore[no-untyped-def]
    fired = _fired(DropoutOn(LinearModel()), *_own_labels(batch), ["apgd"])
    assert fired[("(model)", "randomness in the forward pass")] and fired[("(model)", "unstable predictions")]
    assert not fired[("(model)", "unavailable gradients")]


def test_plain_pgd_in_independent_mode_can_succeed_silently() -> None:
    """PGD returns its last iterate: with a large step, an intermediate point that fooled the model
    is lost, which silent success reports (on every image: the model is built so); APGD returns the
    fooling point and never triggers it."""
    model = SilentSuccess()
    x = torch.full((6, 3, 32, 32), 0.5)
    y = torch.zeros(6, dtype=torch.long)
    pgd = create_attack("pgd", model, steps=10, alpha=1.25 / 255, random_start=False)
    adv = pgd(x, y, 4 / 255)
    assert (pgd.predict(adv) == y).all(), "the last iterate is correct again"
    rows = diagnose(model, [("pgd-big-step", pgd, 4 / 255), ("apgd", create_attack("apgd", model, steps=10), 4 / 255)], x, y, seed=0)
    silent = {a: v for a, i, v in zip(rows["attack"], rows["indicator"], rows["value"]) if i == "silent success"}
    assert silent["pgd-big-step"] == 1.0 and silent["apgd"] == 0
