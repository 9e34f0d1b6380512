"""The L1 threat model (APGD-L1, APGD-T-L1, ``autoattack-l1``) against the authors' code
(pyautoattack) per sample from the same random start, the L1-ball-in-the-box projection, and
Expectation over Transformation (``eot``, ``autoattack-rand``) on randomized models built here
with a known answer."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from typing import Any

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import robust_attn.attacks.presets  # noqa: F401  (registers the presets)
from robust_attn.attacks import create_attack
from robust_attn.attacks.apgd import l1_box_projection
from robust_attn.attacks.ensemble import NOT_FOOLED
from robust_attn.attacks.presets import check_eps_for_image
from robust_attn.attacks.registry import attack_traits
from robust_attn.errors import AttackParameterError

SEED = 5  # the random starts' seed, native and reference
MODEL_SEED = 0  # the constructed models' weights and images (the margins below hold for seeds 0-4)


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """The models here are tiny: a second thread only adds contention (on a loaded 2-core machine a
    pass took 55 ms with two threads, 2 ms with one)."""
    threads, logger = torch.get_num_threads(), logging.getLogger("auto-attack")
    level = logger.level
    torch.set_num_threads(1)
    logger.setLevel(logging.WARNING)  # pyautoattack logs every step at debug level
    yield
    torch.set_num_threads(threads)
    logger.setLevel(level)


def _cnn(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 8 * 8, 10)).eval()


Case = tuple[nn.Module, torch.Tensor, torch.Tensor]


def cnn_case(seed: int) -> Case:
    """A fixed random CNN on random 3x16x16 images, labelled with its own predictions."""
    model = _cnn(seed)
    x = torch.rand(48, 3, 16, 16, generator=torch.Generator().manual_seed(1 + seed))
    with torch.no_grad():
        y = model(x).argmax(1)
    return model, x, y


@pytest.fixture(scope="module")
def cnn_batch() -> Case:
    return cnn_case(MODEL_SEED)


def _correct(model: nn.Module, adv: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(adv).argmax(1) == y


# -- the projection --------------------------------------------------------------------------------
def test_l1_projection_is_the_authors_and_lands_in_the_ball_and_the_box() -> None:
    """Bit for bit the authors' ``L1_projection``; the projected point lies in the L1 ball and
    the box; it is the nearest such point (no other feasible point found by an independent
    float64 bisection on the shrinkage is closer); points already inside are left alone."""
    from pyautoattack.autopgd_base import L1_projection

    gen = torch.Generator().manual_seed(0)
    x = torch.rand(64, 300, generator=gen)
    x[:, :60] = x[:, :60].round()  # pixels on the faces of the box
    for scale, eps in ((0.01, 0.5), (0.1, 2.0), (1.0, 5.0), (1.0, 400.0)):
        delta = torch.randn(64, 300, generator=gen) * scale
        c = l1_box_projection(x, delta, eps)
        assert torch.equal(c, L1_projection(x, delta, eps)), (scale, eps)
        z = x + delta + c
        assert float(z.min()) >= -1e-6 and float(z.max()) <= 1 + 1e-6
        assert float((z - x).abs().sum(1).max()) <= eps * (1 + 1e-5) + 1e-5
        # independent check in float64: shrink |delta| by lam (within the box) until the L1 norm is eps
        a = delta.double().abs()
        room = torch.where(delta > 0, 1 - x.double(), x.double())
        low, high = torch.zeros(64, 1, dtype=torch.float64), a.amax(1, keepdim=True)
        for _ in range(100):
            mid = (low + high) / 2
            over = (a - mid).clamp_min(0).minimum(room).sum(1, keepdim=True) > eps
            low, high = torch.where(over, mid, low), torch.where(over, high, mid)
        best = x.double() + delta.sign().double() * (a - high).clamp_min(0).minimum(room)
        assert torch.allclose(z.double(), best, atol=1e-5), (scale, eps)
    inside = torch.rand(8, 300, generator=gen) * 0.001 * torch.where(x[:8] < 0.5, 1.0, -1.0)
    assert torch.equal(l1_box_projection(x[:8], inside, 1.0).abs().sum(), torch.tensor(0.0))


# -- APGD-L1 against the reference ------------------------------------------------------------------
@pytest.mark.parametrize(("loss", "large_eps"), [("ce", False), ("dlr", False), ("ce", True)])
def test_apgd_l1_matches_the_reference_per_sample(cnn_batch: Case, loss: str, large_eps: bool) -> None:
    """The native APGD-L1 and the authors' ``APGDAttack(norm='L1')`` fool the same samples from
    the same seed, two restarts, with and without AutoAttack's 3 eps / 2 eps / eps schedule."""
    from pyautoattack.autopgd_base import APGDAttack

    model, x, y = cnn_batch
    eps = 2.0
    attack = create_attack("apgd-l1", model, steps=12, restarts=2, loss=loss, large_eps=large_eps)
    attack.reseed(SEED)
    adv = attack(x, y, eps)
    native = _correct(model, adv, y)
    ref = APGDAttack(model, n_iter=12, norm="L1", eps=eps, seed=SEED, loss=loss, n_restarts=2, use_largereps=large_eps, device="cpu")
    reference = _correct(model, ref.perturb(x, y), y)
    assert 5 < int(native.sum()) < len(y) - 5, "some samples fooled, some not: the comparison can fail"
    assert torch.equal(native, reference)
    # the reference's rounding ((x + delta) + correction, coordinate by coordinate) leaves up to ~5e-5 relative
    assert float((adv - x).abs().flatten(1).sum(1).max()) <= eps * (1 + 1e-4) and float(adv.min()) >= 0 and float(adv.max()) <= 1


@pytest.mark.filterwarnings("ignore:there are .* points with zero gradient")
@pytest.mark.parametrize(("loss", "large_eps"), [("ce", False), ("dlr", True)])
def test_apgd_l1_trajectories_are_the_reference_s(cnn_batch: Case, loss: str, large_eps: bool) -> None:
    """Outcomes alone hardly depend on the details (a wrong first sparsity still fools the same
    samples), so the points are compared: a sample no restart fools ends at its highest-loss point
    of the last restart, which must be the reference's bit for bit, run by run on its random stream
    (one ``torch.manual_seed``, each restart on the samples still standing)."""
    from pyautoattack.autopgd_base import APGDAttack

    model, x, y = cnn_batch
    eps, steps = 1.0, 25
    attack = create_attack("apgd-l1", model, steps=steps, restarts=2, loss=loss, large_eps=large_eps)
    attack.reseed(SEED)
    adv = attack(x, y, eps)
    ref = APGDAttack(model, n_iter=steps, norm="L1", eps=eps, seed=SEED, loss=loss, use_largereps=large_eps, device="cpu")
    ref.init_hyperparam(x)
    first = math.ceil(0.3 * steps)
    torch.manual_seed(SEED)
    standing = torch.arange(len(y))
    for _ in range(2):
        xs, ys = x[standing], y[standing]
        if large_eps:
            best, robust, _, _ = ref.decr_eps_pgd(xs, ys, [3 * eps, 2 * eps, eps], [first, first, steps - 2 * first])
        else:
            best, robust, _, _ = ref.attack_single_run(xs, ys)
        standing, best = standing[robust], best[robust]
    assert 5 < len(standing) < len(y) - 5
    assert torch.equal(_correct(model, adv, y), torch.isin(torch.arange(len(y)), standing))
    assert torch.equal(adv[standing], best), float((adv[standing] - best).abs().max())  # bit for bit


def test_apgd_t_l1_matches_the_reference_per_sample(cnn_batch: Case) -> None:
    from pyautoattack.autopgd_base import APGDAttack_targeted

    model, x, y = cnn_batch
    eps = 1.5
    attack = create_attack("apgd-t-l1", model, steps=12, targets=3, large_eps=True)
    attack.reseed(SEED)
    native = _correct(model, attack(x, y, eps), y)
    ref = APGDAttack_targeted(model, n_iter=12, norm="L1", eps=eps, seed=SEED, n_target_classes=3, use_largereps=True, device="cpu")
    assert 5 < int(native.sum()) < len(y) - 5
    assert torch.equal(native, _correct(model, ref.perturb(x, y), y))


def test_autoattack_l1_matches_the_reference_per_sample(cnn_batch: Case) -> None:
    """The preset's members are AutoAttack's L1 APGD members with their parameters (pyautoattack's
    version='standard' adds L1 FAB-T and Square, which the engine does not have); shrunk, and
    with each member on the reference's seed, the ensemble fools the same samples."""
    from pyautoattack import AutoAttack
    from pyautoattack.autopgd_base import APGDAttack, APGDAttack_targeted

    model, x, y = cnn_batch
    eps = 1.0
    standard = AutoAttack(model, norm="L1", eps=eps, version="standard", device="cpu")
    assert standard.attacks_to_run == ["apgd-ce", "apgd-t", "fab-t", "square"]
    full = create_attack("autoattack-l1", model)
    (ce_name, ce), (t_name, t) = full.members  # type: ignore[attr-defined]
    assert (ce_name, t_name) == ("apgd-ce", "apgd-t") and ce.norm == t.norm == "l1"
    reference = standard.apgd
    assert (ce.steps, ce.restarts, ce.loss, ce.large_eps) == (reference.n_iter, reference.n_restarts, "ce", reference.use_largereps)
    tg = standard.apgd_targeted
    assert (t.steps, t.restarts, t.targets, t.large_eps) == (tg.n_iter, tg.n_restarts, tg.n_target_classes, tg.use_largereps)

    attack = create_attack("autoattack-l1", model, steps=10, restarts=2, targets=2)
    attack.reseed(0)
    for _, member in attack.members:  # type: ignore[attr-defined]
        member.reseed(SEED)
    out = attack.sweep(x, y, [eps])
    aa = AutoAttack(model, norm="L1", eps=eps, version="custom", attacks=["apgd-ce", "apgd-t"], seed=SEED, device="cpu")
    aa.apgd = APGDAttack(model, n_iter=10, norm="L1", eps=eps, seed=SEED, n_restarts=2, use_largereps=True, device="cpu")
    aa.apgd_targeted = APGDAttack_targeted(
        model, n_iter=10, norm="L1", eps=eps, seed=SEED, n_target_classes=2, use_largereps=True, device="cpu"
    )
    _, y_adv = aa.run_standard_evaluation(x, y, batch_size=len(x))
    codes = out.columns["fooled_by"][0]
    assert int((codes == 1).sum()) > 0, "APGD-T must fool some survivors of APGD-CE for the comparison to cover it"
    assert 5 < int(out.correct.sum()) < len(y) - 5
    assert torch.equal(out.correct[0], y_adv == y)


# -- Expectation over Transformation ------------------------------------------------------------------
class Wiggly(nn.Module):
    """A linear classifier plus a small fast-varying term: logits W z + (alpha / omega) R sin(omega U z).
    The term hardly moves the logits (|value| <= alpha / omega per unit) but its gradient, alpha R
    diag(cos) U, dwarfs W's: a gradient attack on it needs the term averaged away."""

    W: torch.Tensor
    U: torch.Tensor
    R: torch.Tensor

    def __init__(self, seed: int, dim: int = 192, hidden: int = 64, omega: float = 300.0, alpha: float = 0.5) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.register_buffer("W", torch.randn(10, dim, generator=gen) / math.sqrt(dim))
        u = torch.randn(hidden, dim, generator=gen)
        self.register_buffer("U", u / u.norm(dim=1, keepdim=True))
        self.register_buffer("R", torch.randn(10, hidden, generator=gen))
        self.omega, self.alpha = omega, alpha

    def linear(self, z: torch.Tensor) -> torch.Tensor:
        return z.flatten(1) @ self.W.T

    def wiggle(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sin(self.omega * z.flatten(1) @ self.U.T) * (self.alpha / self.omega)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.linear(z) + self.wiggle(z) @ self.R.T


class NoisyInput(nn.Module):
    """Gaussian noise on the input (sigma 0.01): omega * sigma = 3 turns the term's phase at random,
    so its expected gradient is exp(-4.5) = 1% of one pass's and the expected gradient is W's."""

    def __init__(self, base: Wiggly, sigma: float = 0.01) -> None:
        super().__init__()
        self.base, self.sigma = base, sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x + self.sigma * torch.randn_like(x))


class DroppedWiggle(nn.Module):
    """The term enters as m1 * s - m2 * s with independent dropout masks (F.dropout in every
    forward, whatever the module's mode): zero in expectation, so the expected logits are W x."""

    def __init__(self, base: Wiggly, p: float = 0.5) -> None:
        super().__init__()
        self.base, self.p = base, p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.base.wiggle(x)
        dropped = F.dropout(torch.cat([s, -s], dim=1), self.p, training=True)
        return self.base.linear(x) + dropped @ torch.cat([self.base.R, self.base.R], dim=1).T


def randomized_case(kind: str, seed: int, n: int = 64) -> tuple[nn.Module, torch.Tensor, torch.Tensor, float]:
    """A randomized model, images labelled by its expected logits, and an L-inf eps 1.5 times the
    median that the linear part needs (so an attack with the expected gradient fools about half)."""
    base = Wiggly(seed).eval()
    model: nn.Module = NoisyInput(base) if kind == "noise" else DroppedWiggle(base)
    x = torch.rand(n, 3, 8, 8, generator=torch.Generator().manual_seed(100 + seed))
    with torch.no_grad():
        logits = base.linear(x)
    top = logits.topk(2, dim=1)
    need = (top.values[:, 0] - top.values[:, 1]) / (base.W[top.indices[:, 0]] - base.W[top.indices[:, 1]]).abs().sum(1)
    return model.eval(), x, top.indices[:, 0], 1.5 * float(need.median())


def _native_accuracy(name: str, model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, rep: int, **params: Any) -> float:
    torch.manual_seed(1000 + rep)  # the models draw their noise from the global stream
    attack = create_attack(name, model, seed=rep, **params)
    attack.reseed(rep)
    return float(attack.sweep(x, y, [eps]).correct.float().mean())


REPEATS = 6


@pytest.mark.parametrize("kind", ["noise", "dropout"])
def test_eot_lowers_accuracy_on_randomized_models(kind: str) -> None:
    """Averaged over 6 evaluations of 64 images, APGD-CE and PGD with eot = 20 leave far lower
    accuracy than with one pass per step (10 steps). Measured on model seeds 0-4, both models, 6
    evaluations: APGD 0.69-0.87 without EoT, 0.46-0.56 with it (smallest gap 0.16), PGD 0.74-0.88
    and 0.43-0.51 (smallest gap 0.28); spread between evaluations 0.01-0.05."""
    model, x, y, eps = randomized_case(kind, MODEL_SEED)
    for name in ("apgd", "pgd"):
        one = sum(_native_accuracy(name, model, x, y, eps, r, steps=10) for r in range(REPEATS)) / REPEATS
        twenty = sum(_native_accuracy(name, model, x, y, eps, r, steps=10, eot=20) for r in range(REPEATS)) / REPEATS
        assert twenty < one - 0.1, (name, one, twenty)
    torch.manual_seed(0)
    with torch.no_grad():
        clean = sum(float((model(x).argmax(1) == y).float().mean()) for _ in range(10)) / 10
    assert clean > 0.85, "the random term hardly moves the logits: the model is accurate on clean images (0.92-1.0 per draw)"


@pytest.mark.parametrize("kind", ["noise", "dropout"])
def test_autoattack_rand_matches_the_reference_within_sampling_error(kind: str) -> None:
    """The preset is pyautoattack's version='rand' (APGD-CE and APGD-DLR, one restart, eot_iter = 20;
    10 steps here). Over 6 evaluations each, its robust accuracy counted as AutoAttack counts it
    (the samples that no evaluation, clean or after a member, found wrong: ``fooled_by`` is -1) is
    the reference's within 0.04. Measured on model seeds 0-4, both models: reference accuracy
    0.36-0.49, spread between evaluations 0.006-0.026 (so the standard error of the difference of
    two 6-evaluation means is about 0.014), mean differences -0.016 to +0.003 (with 10
    evaluations: -0.008 to +0.005)."""
    from pyautoattack import AutoAttack
    from pyautoattack.autopgd_base import APGDAttack

    standard = AutoAttack(nn.Linear(2, 3), norm="Linf", eps=0.1, version="rand", device="cpu")
    assert standard.attacks_to_run == ["apgd-ce", "apgd-dlr"]
    assert (standard.apgd.n_iter, standard.apgd.n_restarts, standard.apgd.eot_iter) == (100, 1, 20)
    full = create_attack("autoattack-rand", nn.Linear(2, 3))
    assert [(name, m.loss, m.steps, m.restarts, m.eot) for name, m in full.members] == [  # type: ignore[attr-defined]
        ("apgd-ce", "ce", 100, 1, 20),
        ("apgd-dlr", "dlr", 100, 1, 20),
    ]
    assert full.traits().randomized and attack_traits("autoattack-rand").randomized

    model, x, y, eps = randomized_case(kind, MODEL_SEED)
    native, reference = [], []
    for rep in range(REPEATS):
        torch.manual_seed(1000 + rep)
        attack = create_attack("autoattack-rand", model, steps=10, seed=rep)
        attack.reseed(rep)
        out = attack.sweep(x, y, [eps])
        native.append(float((out.columns["fooled_by"][0] == NOT_FOOLED).float().mean()))
        aa = AutoAttack(model, norm="Linf", eps=eps, version="rand", seed=rep, device="cpu")
        aa.apgd = APGDAttack(model, n_iter=10, norm="Linf", eps=eps, seed=rep, n_restarts=1, eot_iter=20, device="cpu", logger=aa.logger)
        _, y_adv = aa.run_standard_evaluation(x, y, batch_size=len(x))
        reference.append(float((y_adv == y).float().mean()))
    gap = abs(sum(native) / REPEATS - sum(reference) / REPEATS)
    assert 0.2 < sum(reference) / REPEATS < 0.7, "the attack fools some samples and not others"
    assert gap <= 0.04, (native, reference)


class _Constant(nn.Module):
    """Class 0 by a margin no attack can close; the input still gets a (zero) gradient."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tensor([100.0, 0.0, 0.0, 0.0]) + 0.0 * x.flatten(1).sum(1, keepdim=True)


def test_eot_counts_every_pass_and_sets_the_randomized_trait() -> None:
    x, y = torch.rand(6, 3, 4, 4), torch.zeros(6, dtype=torch.long)
    apgd = create_attack("apgd", _Constant(), steps=4, eot=3)
    apgd(x, y, 0.1)
    assert apgd.cost == (6 + 3 * 5 * 6, 3 * 5 * 6), "one clean pass, then eot passes at the start and at each step"
    pgd = create_attack("pgd", _Constant(), steps=4, eot=3)
    pgd(x, y, 0.1)
    assert pgd.cost == (3 * 4 * 6, 3 * 4 * 6)
    for name in ("apgd", "apgd-t", "apgd-l1", "pgd", "pgd-l2"):
        assert not create_attack(name, _Constant()).traits().randomized, name
        assert create_attack(name, _Constant(), eot=2).traits().randomized, name
    assert create_attack("apgd-l1", _Constant()).traits().norm == "l1" and attack_traits("autoattack-l1").norm == "l1"


def test_parameters_and_eps_are_checked() -> None:
    bad = (("apgd", {"eot": 0}), ("pgd", {"eot": 1.5}), ("autoattack-rand", {"eot": 0}), ("apgd-l1", {"large_eps": True, "steps": 2}))
    for name, params in bad:
        with pytest.raises(AttackParameterError) as err:
            create_attack(name, _Constant(), **params)
        assert err.value.param in params, name
    check_eps_for_image("l1", [0.0, 12.0, 3072.0], (3, 32, 32))
    check_eps_for_image("l2", math.sqrt(3072), (3, 32, 32))
    with pytest.raises(AttackParameterError, match=r"l1 eps 3073 exceeds the l1 diameter of a 3x32x32 image in \[0, 1\] \(3072\)"):
        check_eps_for_image("l1", [12.0, 3073.0], (3, 32, 32))
    with pytest.raises(AttackParameterError, match="linf eps 2 exceeds"):
        check_eps_for_image("linf", 2.0, (3, 32, 32))
    with pytest.raises(AttackParameterError, match="l2 eps 56 exceeds"):
        check_eps_for_image("l2", 56.0, (3, 32, 32))
