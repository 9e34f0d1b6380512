"""Adversarial training recipes (FGSM-RS and PGD), the catastrophic-overfitting guard, and their
metadata."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

import robust_attn as ra
from robust_attn.training import trainer
from robust_attn.training.adversarial import adversarial_batch

pytestmark = pytest.mark.slow  # subprocesses and training: the full tier only


def _linear(d: int, gen: torch.Generator) -> tuple[torch.nn.Module, torch.Tensor]:
    """A two-class linear model whose cross-entropy gradient has the sign of W[1 - y] - W[y] at
    every point (its softmax weights are positive): the steepest-ascent direction is known."""
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(d, 2))
    with torch.no_grad():
        model[1].weight.copy_(torch.randn(2, d, generator=gen))
        model[1].bias.zero_()
    return model, (model[1].weight[1] - model[1].weight[0]).sign().detach()


@pytest.mark.parametrize("recipe", ["fgsm-at", "pgd-at"])
def test_adversarial_points_are_the_known_steepest_ascent_steps(recipe: str) -> None:
    """On a linear model the training points are known in closed form: PGD (3 steps of 2.5 eps / 3
    from a uniform start) ends on the corner x + eps * s, s the sign of the loss gradient; FGSM-RS
    is the uniform start plus 1.25 eps * s, clipped to the ball (Wong et al., 2020)."""
    gen = torch.Generator().manual_seed(0)
    model, s = _linear(3 * 8 * 8, gen)
    x = 0.2 + 0.6 * torch.rand(16, 3, 8, 8, generator=gen)  # inside the box by more than eps: no clipping at 0 or 1
    y = torch.arange(16) % 2
    fine = dataclasses.replace(ra.get_recipe(recipe), attack_steps=3)
    eps, sign = fine.train_eps, torch.where(y[:, None] == 0, s, -s).view(16, 3, 8, 8)
    points = adversarial_batch(model, x, y, fine, torch.Generator().manual_seed(7))
    start = (torch.rand(x.shape, generator=torch.Generator().manual_seed(7)) * 2 - 1) * eps
    expected = x + (eps * sign if recipe == "pgd-at" else (start + 1.25 * eps * sign).clamp(-eps, eps))
    torch.testing.assert_close(points, expected, rtol=0, atol=1e-6)
    assert float((points - x).abs().amax()) <= eps + 1e-6
    assert bool(((points - x) * sign >= 0.25 * eps - 1e-6).all()), "every coordinate moved up the gradient"


@pytest.mark.parametrize("recipe", ["fgsm-at", "pgd-at"])
def test_training_steps_on_the_adversarial_points(recipe: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """train_model feeds the optimiser the adversarial batch (not the clean one) at every step, and the
    recipe round-trips through the checkpoint."""
    made: list[tuple[torch.Tensor, torch.Tensor]] = []  # (clean, adversarial) per step
    inside = [False]

    def recording(model, x, y, recipe, generator):  # type: ignore[no-untyped-def]
        inside[0] = True
        try:
            made.append((x.clone(), adversarial_batch(model, x, y, recipe, generator)))
        finally:
            inside[0] = False
        return made[-1][1]

    monkeypatch.setattr(trainer, "adversarial_batch", recording)
    torch.manual_seed(0)
    model = ra.create_model("vgg", width=0.0625, layout="compact", dropout=0.0)
    seen: list[torch.Tensor] = []
    model.register_forward_pre_hook(lambda m, a: None if inside[0] or not m.training else seen.append(a[0].detach().clone()))
    train, test = ra.load_dataset("builtin", "train", n=64), ra.load_dataset("builtin", "test", n=16)
    fine = dataclasses.replace(ra.get_recipe(recipe), batch_size=32, guard_samples=0, attack_steps=2)
    ra.train_model(model, train, test, fine, epochs=1, seed=0, out=tmp_path / "m.safetensors", progress=False)
    assert len(made) == len(seen) == 2
    for (clean, point), fed in zip(made, seen, strict=True):
        assert torch.equal(point, fed), "the optimiser's batch is the adversarial one"
        assert 0 < float((point - clean).abs().amax()) <= fine.train_eps + 1e-6
    meta = ra.read_metadata(tmp_path / "m.safetensors")
    assert meta["recipe"]["adversarial"] == recipe.split("-")[0] and meta["recipe"]["train_eps"] == pytest.approx(4 / 255)
    assert ra.Recipe(**meta["recipe"]) == fine  # the recipe round-trips through the checkpoint


def test_guard_keeps_the_epoch_before_a_collapse(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A crafted run whose held-out PGD accuracy collapses in its last epoch keeps the best epoch's weights."""
    scores = iter([0.30, 0.45, 0.02])
    snapshots: list[dict[str, torch.Tensor]] = []

    def fake_guard(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float) -> float:
        snapshots.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        return next(scores)

    monkeypatch.setattr(trainer, "guard_accuracy", fake_guard)
    torch.manual_seed(0)
    model = ra.create_model("vgg", width=0.0625, layout="compact", dropout=0.0)
    train = ra.load_dataset("builtin", "train", n=160)
    test = ra.load_dataset("builtin", "test", n=32)
    recipe = dataclasses.replace(ra.get_recipe("fgsm-at"), batch_size=32, guard_samples=32)
    ra.train_model(model, train, test, recipe, epochs=3, seed=0, out=tmp_path / "g.safetensors", progress=False)
    kept = snapshots[1]
    assert all(torch.equal(v, kept[k]) for k, v in model.state_dict().items()), "the weights of epoch 2 were kept"
    assert not all(torch.equal(v, snapshots[2][k]) for k, v in snapshots[1].items()), "epoch 3 had other weights"
    meta = ra.read_metadata(tmp_path / "g.safetensors")
    assert meta["guard"] == {"kept_epoch": 2, "kept_guard_pgd_accuracy": 0.45, "samples": 32}
    assert [h["guard_pgd_accuracy"] for h in meta["train_result"]["history"]] == [0.30, 0.45, 0.02]
    assert meta["train_size"] == 128, "the guard's held-out images are not trained on"
