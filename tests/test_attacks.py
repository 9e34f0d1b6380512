"""The attack engine: agreement with torchattacks and foolbox, worst-case semantics, errors."""

from __future__ import annotations

import re

import pytest
import torch
import torch.nn as nn

import robust_attn as ra
from robust_attn.attacks import create_attack, list_attacks, parse_eps
from robust_attn.attacks.registry import UnknownAttack
from robust_attn.evaluate import predict

EPS = [0.0, 1 / 255, 2 / 255, 4 / 255, 8 / 255, 16 / 255]


def _outcomes(
    name: str, backend: str, model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: list[float], **params: object
) -> torch.Tensor:
    attack = create_attack(name, model, backend=backend, **params)
    return attack.sweep(x, y, eps, mode="independent").correct


def test_registry_lists_and_rejects() -> None:
    assert {"fgsm", "pgd", "pgd-l2"} <= set(list_attacks("native"))
    assert set(list_attacks("foolbox")) == {"fgsm", "pgd", "pgd-l2"}
    known = ", ".join(list_attacks("native")) + ", or torchattacks:<Class>"
    with pytest.raises(UnknownAttack, match=f"unknown attack 'cw' for backend 'native'; known: {re.escape(known)}$"):
        create_attack("cw", nn.Linear(2, 2))
    with pytest.raises(UnknownAttack, match="unknown backend 'cleverhans'"):
        create_attack("fgsm", nn.Linear(2, 2), backend="cleverhans")
    with pytest.raises(UnknownAttack, match="torchattacks has no attack 'Nope'"):
        create_attack("torchattacks:Nope", nn.Linear(2, 2))


def test_attacks_refuse_parameters_they_do_not_take() -> None:
    """Library FGSM refuses PGD-only parameters as native FGSM does (one line naming what it takes)."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10))
    for backend in ("native", "torchattacks", "foolbox"):
        with pytest.raises(ValueError, match=rf"attack 'fgsm' \({backend}\) takes no parameter 'steps'; it takes: .*targeted"):
            create_attack("fgsm", model, backend=backend, steps=5)
    with pytest.raises(ValueError, match="takes no parameter 'sigma'"):
        create_attack("pgd", model, backend="foolbox", sigma=1)
    assert create_attack("pgd", model, backend="torchattacks", steps=3).steps == 3


def test_cost_counter_counts_images_through_any_backend(test_batch) -> None:  # type: ignore[no-untyped-def]
    x, y = test_batch
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10))
    for backend in ("native", "torchattacks", "foolbox"):
        attack = create_attack("pgd", model, backend=backend, steps=3, random_start=False)
        attack(x[:8], y[:8], 4 / 255)
        forwards, backwards = attack.cost
        assert backwards == 3 * 8, backend  # one input gradient per step and image
        assert 3 * 8 <= forwards <= 5 * 8, backend  # plus at most a clean and a final forward


@pytest.mark.parametrize(("text", "value"), [("8/255", 8 / 255), ("0", 0.0), (0.5, 0.5), (" 1/255 ", 1 / 255)])
def test_parse_eps(text: str | float, value: float) -> None:
    assert parse_eps(text) == pytest.approx(value, abs=0)


@pytest.mark.parametrize(
    ("text", "message"), [("-1/255", ">= 0"), ("8", "did you mean 8/255"), ("nan", "cannot read eps"), ("x", "cannot read eps")]
)
def test_parse_eps_rejects(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_eps(text)


def test_eps_zero_is_clean_accuracy_exactly(trained, test_batch) -> None:  # type: ignore[no-untyped-def]
    model, _ = trained
    x, y = test_batch
    clean = predict(model, _as_dataset(x, y)) == y
    for name in ("fgsm", "pgd"):
        for mode in ("worst-case", "independent"):
            out = create_attack(name, model).sweep(x, y, [0.0, 4 / 255], mode=mode)
            assert torch.equal(out.correct[0], clean), (name, mode)
            assert torch.equal(out.clean_pred == y, clean)


def test_fgsm_agrees_with_torchattacks_and_foolbox_per_sample(trained, test_batch) -> None:  # type: ignore[no-untyped-def]
    model, _ = trained
    x, y = test_batch
    native = _outcomes("fgsm", "native", model, x, y, EPS)
    acc = native.float().mean(dim=1)
    assert acc[0] > 0.6 and acc[-1] < acc[0] - 0.2, "the fixture model must be accurate and attackable"
    assert torch.equal(native, _outcomes("fgsm", "torchattacks", model, x, y, EPS))
    assert torch.equal(native, _outcomes("fgsm", "foolbox", model, x, y, EPS))


def test_pgd_without_random_start_agrees_with_torchattacks(trained, test_batch) -> None:  # type: ignore[no-untyped-def]
    model, _ = trained
    x, y = test_batch
    eps = [2 / 255, 4 / 255]
    for name in ("pgd", "pgd-l2"):
        grid = eps if name == "pgd" else [0.1, 0.3]
        native = _outcomes(name, "native", model, x, y, grid, steps=5, random_start=False)
        reference = _outcomes(name, "torchattacks", model, x, y, grid, steps=5, random_start=False)
        assert torch.equal(native, reference), name


def test_pgd_agrees_with_foolbox_within_tolerance(trained, test_batch) -> None:  # type: ignore[no-untyped-def]
    """foolbox sums the loss where torchattacks averages it; the gradient sign is the same up to
    float rounding of near-zero components, so at most 1% of outcomes may differ."""
    model, _ = trained
    x, y = test_batch
    native = _outcomes("pgd", "native", model, x, y, [4 / 255], steps=5, random_start=False)
    fb = _outcomes("pgd", "foolbox", model, x, y, [4 / 255], steps=5, random_start=False)
    assert (native != fb).float().mean() <= 0.01


def test_worst_case_fgsm_is_cumulative_independent(trained, test_batch) -> None:  # type: ignore[no-untyped-def]
    model, _ = trained
    x, y = test_batch
    attack = create_attack("fgsm", model)
    independent = attack.sweep(x, y, EPS, mode="independent").correct
    worst = attack.sweep(x, y, EPS, mode="worst-case").correct
    assert torch.equal(worst, torch.cummin(independent.int(), dim=0).values.bool())


def test_worst_case_pgd_is_monotone_and_at_least_as_strong(trained, test_batch) -> None:  # type: ignore[no-untyped-def]
    model, _ = trained
    x, y = test_batch
    eps = [1 / 255, 2 / 255, 4 / 255]
    attack = create_attack("pgd", model, steps=5, random_start=False)
    worst = attack.sweep(x, y, eps, mode="worst-case").correct
    independent = attack.sweep(x, y, eps, mode="independent").correct
    assert (worst[1:] <= worst[:-1]).all(), "a fooled sample must stay fooled at larger eps"
    assert (worst <= independent).all(), "worst-case must never be more accurate per sample"


def test_pgd_stronger_than_fgsm_and_seeded(trained, test_batch) -> None:  # type: ignore[no-untyped-def]
    model, _ = trained
    x, y = test_batch
    fgsm = _outcomes("fgsm", "native", model, x, y, [4 / 255]).float().mean()
    pgd_a = create_attack("pgd", model, steps=10, seed=3).sweep(x, y, [4 / 255], mode="independent").correct
    pgd_b = create_attack("pgd", model, steps=10, seed=3).sweep(x, y, [4 / 255], mode="independent").correct
    assert torch.equal(pgd_a, pgd_b)
    assert pgd_a.float().mean() < fgsm


def test_restarts_never_weaken(trained, test_batch) -> None:  # type: ignore[no-untyped-def]
    model, _ = trained
    x, y = test_batch
    one = create_attack("pgd", model, steps=3, seed=1).sweep(x, y, [2 / 255], mode="independent").correct
    three = create_attack("pgd", model, steps=3, restarts=3, seed=1).sweep(x, y, [2 / 255], mode="independent").correct
    assert three.sum() <= one.sum()


def test_targeted_pgd_reaches_targets(trained, test_batch) -> None:  # type: ignore[no-untyped-def]
    model, _ = trained
    x, y = test_batch
    target = (y + 1) % 10
    attack = create_attack("pgd", model, steps=10, targeted=True)
    out = attack.sweep(x, y, [0.0, 16 / 255], mode="independent", target=target)
    hit = (out.pred == target.unsqueeze(0)).float().mean(dim=1)
    assert hit[0] < 0.1 and hit[1] > 0.5


def test_any_module_and_torchattacks_by_name(test_batch) -> None:  # type: ignore[no-untyped-def]
    x, y = test_batch
    torch.manual_seed(0)
    plain = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10))
    out = create_attack("fgsm", plain).sweep(x[:20], y[:20], [0.0, 0.1])
    assert out.correct.shape == (2, 20)
    by_name = create_attack("torchattacks:FGSM", plain).sweep(x[:20], y[:20], [0.0, 0.1], mode="independent")
    assert torch.equal(by_name.correct, create_attack("fgsm", plain).sweep(x[:20], y[:20], [0.0, 0.1], mode="independent").correct)


def test_attack_stays_in_ball_and_box(trained, test_batch) -> None:  # type: ignore[no-untyped-def]
    model, _ = trained
    x, y = test_batch
    for name, eps, norm in (("fgsm", 8 / 255, "inf"), ("pgd", 8 / 255, "inf"), ("pgd-l2", 0.5, 2)):
        adv = create_attack(name, model)(x, y, eps)
        dist = (adv - x).flatten(1).norm(p=float(norm), dim=1)
        assert dist.max() <= eps + 1e-6 and adv.min() >= 0 and adv.max() <= 1, name


def _as_dataset(x: torch.Tensor, y: torch.Tensor) -> ra.ImageDataset:
    return ra.ImageDataset("t", "test", (x * 255).round().to(torch.uint8), y, tuple(str(i) for i in range(10)), (0.5,) * 3, (0.22,) * 3)


def test_bad_images_are_refused_with_the_fix(test_batch) -> None:  # type: ignore[no-untyped-def]
    x, y = test_batch
    attack = create_attack("fgsm", nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10)))
    nan = x[:4].clone()
    nan[1, 0, 3, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN or infinite"):
        attack.sweep(nan, y[:4], [0.0, 8 / 255])
    with pytest.raises(ValueError, match=r"must be in \[0, 1\].*divide uint8 images by 255"):
        attack(x[:4] * 255, y[:4], 8 / 255)


@pytest.mark.slow
def test_fold_bn_changes_speed_not_results(trained, test_batch) -> None:  # type: ignore[no-untyped-def]
    """Folded BatchNorm rounds differently, so at most a near-tie sample may flip (<= 1%)."""
    model, _ = trained
    x, y = test_batch
    for name, params in (("fgsm", {}), ("pgd", {"steps": 5, "random_start": False})):
        plain = create_attack(name, model, **params).sweep(x, y, EPS[1:4], mode="independent").correct
        folded = create_attack(name, model, fold_bn=True, **params).sweep(x, y, EPS[1:4], mode="independent").correct
        assert (plain != folded).any(dim=0).float().mean() <= 0.01, name
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules()), "the caller's model is not modified"
