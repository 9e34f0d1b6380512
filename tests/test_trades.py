"""TRADES (Zhang et al., ICML 2019) as a training recipe, checked against the reference
formulation (``trades.py`` of the authors' repository): the inner maximisation ascends the KL
between the clean and the adversarial prediction from x + 0.001 N(0, 1) in eval mode; the loss is
CE on the clean images plus beta times that KL over the batch."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import robust_attn as ra
from robust_attn.training import get_recipe
from robust_attn.training.adversarial import trades_loss, trades_points


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 5)).train()


def _reference_points(model: nn.Module, x: torch.Tensor, noise: torch.Tensor, step: float, eps: float, steps: int) -> torch.Tensor:
    """The authors' loop, written as they wrote it (KLDivLoss with size_average=False is reduction='sum')."""
    criterion_kl = nn.KLDivLoss(reduction="sum")
    model.eval()
    x_adv = x.detach() + 0.001 * noise
    for _ in range(steps):
        x_adv.requires_grad_()
        with torch.enable_grad():
            loss_kl = criterion_kl(F.log_softmax(model(x_adv), dim=1), F.softmax(model(x), dim=1))
        grad = torch.autograd.grad(loss_kl, [x_adv])[0]
        x_adv = x_adv.detach() + step * torch.sign(grad.detach())
        x_adv = torch.min(torch.max(x_adv, x - eps), x + eps)
        x_adv = torch.clamp(x_adv, 0.0, 1.0)
    model.train()
    return x_adv


def test_the_inner_maximisation_is_the_reference_loop() -> None:
    recipe = dataclasses.replace(get_recipe("trades"), train_eps=8 / 255, attack_steps=4)
    x = torch.rand(6, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    model = _model()
    ours = trades_points(model, x, recipe, torch.Generator().manual_seed(7))
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(7))
    reference = _reference_points(model, x, noise, 2.5 * recipe.train_eps / recipe.attack_steps, recipe.train_eps, recipe.attack_steps)
    torch.testing.assert_close(ours, reference, rtol=0, atol=1e-6)
    assert model.training, "the model is back in training mode"
    assert float((ours - x).abs().max()) <= recipe.train_eps + 1e-6 and float(ours.min()) >= 0 and float(ours.max()) <= 1
    with torch.no_grad():
        model.eval()
        clean = F.softmax(model(x), dim=1)
        kl = [float(F.kl_div(F.log_softmax(model(p), dim=1), clean, reduction="sum")) for p in (x + 0.001 * noise, ours)]
    assert kl[1] > kl[0], "the KL is ascended"


def test_the_loss_is_ce_plus_beta_times_the_batch_mean_kl_to_the_clean_prediction() -> None:
    g = torch.Generator().manual_seed(3)
    clean, adv, y = torch.randn(8, 5, generator=g), torch.randn(8, 5, generator=g), torch.randint(0, 5, (8,), generator=g)
    reference = F.cross_entropy(clean, y) + 6.0 * (1.0 / 8) * nn.KLDivLoss(reduction="sum")(
        F.log_softmax(adv, dim=1), F.softmax(clean, dim=1)
    )
    torch.testing.assert_close(trades_loss(clean, adv, y, 6.0), reference)
    torch.testing.assert_close(trades_loss(clean, adv, y, 0.0), F.cross_entropy(clean, y))
    assert float(trades_loss(clean, clean, y, 6.0) - F.cross_entropy(clean, y)) == pytest.approx(0.0, abs=1e-6), "no KL against itself"


def test_a_trades_model_records_its_regime(tmp_path: object) -> None:
    """One short epoch: the checkpoint says it was trained with TRADES, and the zoo has its entries."""
    from pathlib import Path

    data = ra.load_dataset("builtin", "train", n=64)
    test = ra.load_dataset("builtin", "test", n=32)
    model = ra.create_model("vgg", num_classes=10, width=0.0625, layout="compact", dropout=0.0)
    recipe = dataclasses.replace(get_recipe("trades"), batch_size=32, guard_samples=0)
    out = Path(str(tmp_path)) / "t.safetensors"
    ra.train_model(model, data, test, recipe, epochs=1, seed=0, device="cpu", out=out, progress=False)
    _, card = ra.load_model(out, "cpu")
    assert card.training_regime == "trades" and card.budget.recipe == "trades"
    assert {"builtin/vgg-trades", "builtin/vgg-att3-pc-trades"} <= set(ra.ZOO)
