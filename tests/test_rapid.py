"""``rapid``: on constructed models with known answers it reaches the exact robust accuracy of a
linear classifier, is never weaker than APGD-CE, stays within one sample of AutoAttack at a small
share of its passes, records why each sample took its path, and gives every sample the same outcome
whatever batch it is in."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import cast

import pytest
import torch
import torch.nn as nn

from robust_attn.attacks import create_attack
from robust_attn.attacks.base import Attack, SweepBatch
from robust_attn.attacks.ensemble import AutoAttack
from robust_attn.attacks.rapid import (
    D_MALT,
    D_RESTART,
    GRAD_NONFINITE,
    GRAD_OK,
    GRAD_VANISH,
    MALT,
    RETRY,
    Extrapolate,
    KeyedStarts,
    Rapid,
    decision_code,
    keyed_start,
    linearised_distances,
    restart_order,
    sample_keys,
)
from robust_attn.errors import AttackParameterError

SHAPE = (3, 8, 8)
MARGIN = 1  # rapid may leave at most this many samples more than autoattack at any eps (the panel's target)


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """These models are tiny: one thread avoids the spin-wait of two threads on a shared machine
    (ten times faster there); restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class Centred(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - 0.5) * 4


def linear(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(SHAPE), 10)).eval()


def small_cnn(seed: int = 0) -> nn.Sequential:
    """Fixed random weights, inputs centred so that its predictions spread over several classes."""
    torch.manual_seed(seed)
    return nn.Sequential(
        Centred(),
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(8 * 4 * 4, 32),
        nn.ReLU(),
        nn.Linear(32, 10),
    ).eval()


class Quantised(nn.Module):
    """Rounds its input to 8 levels before a linear layer: the input gradient is exactly zero."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(torch.round(x * 8) / 8)


class StraightThrough(nn.Module):
    """Rounds its input to 8 levels in the forward pass and passes the gradient through unchanged (a
    straight-through estimator): the gradients look healthy, but within half a level of a
    level-centred image the output never changes, so no loss can rise."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x + (torch.round(x * 8) / 8 - x).detach())


def images(n: int, seed: int = 1, low: float = 0.0, high: float = 1.0) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, *SHAPE, generator=torch.Generator().manual_seed(seed))


def labelled(model: nn.Module, x: torch.Tensor, wrong: int = 0) -> torch.Tensor:
    """The model's own predictions (clean accuracy 100%), the first ``wrong`` of them shifted by one."""
    with torch.no_grad():
        y = model(x).argmax(1)
    y[:wrong] = (y[:wrong] + 1) % 10
    return y


def linf_distances(model: nn.Sequential, x: torch.Tensor, y: torch.Tensor, norm: str = "linf") -> torch.Tensor:
    """Exact smallest fooling perturbation of a linear classifier z = Wx + b per sample (the box
    [0, 1] never binds: images lie in [0.3, 0.7] and every eps tested is below 0.3):
    min_t (z_y - z_t) / ||w_y - w_t||_* with the dual norm (L1 for L-inf, L2 for L2)."""
    w = cast(nn.Linear, model[1]).weight.detach()
    with torch.no_grad():
        z = model(x)
    diff = w[y][:, None, :] - w[None]  # (n, C, D)
    dual = diff.abs().sum(-1) if norm == "linf" else diff.norm(dim=-1)
    d = (z.gather(1, y[:, None]) - z) / dual
    d[torch.arange(len(y)), y] = math.inf
    return d.min(1).values


def eps_between(distances: torch.Tensor, quantiles: tuple[float, ...] = (0.3, 0.5, 0.7)) -> list[float]:
    """One eps near each quantile of the distances, in the widest gap of the sorted distances
    around it (no sample within a near-tie of an eps, so the exact answer is what an attack must
    reach), ascending."""
    d = distances.sort().values
    gaps = (d[1:] - d[:-1]) / d[1:]
    n, picks = len(d), []
    for q in quantiles:
        low, high = int((q - 0.1) * n), int((q + 0.1) * n)
        i = low + int(gaps[low:high].argmax())
        picks.append(float((d[i] + d[i + 1]) / 2))
    return picks


def sweep(attack: Attack, x: torch.Tensor, y: torch.Tensor, eps: list[float], batch: int, seed: int = 0) -> SweepBatch:
    """A worst-case sweep in batches, each reseeded as the sweep runner does (seed + batch index)."""
    parts = []
    for b, start in enumerate(range(0, len(x), batch)):
        attack.reseed(seed + b)
        parts.append(attack.sweep(x[start : start + batch], y[start : start + batch], eps))
    cat = lambda key: torch.cat([getattr(p, key) for p in parts], dim=-1)
    columns = {k: torch.cat([p.columns[k] for p in parts], dim=1) for k in parts[0].columns}
    return SweepBatch(cat("correct"), cat("pred"), cat("clean_pred"), columns)


def passes(attack: Attack) -> int:
    forwards, backwards = attack.cost
    return forwards + backwards


def names(attack: Attack, column: str, codes: torch.Tensor) -> list[list[str | None]]:
    labels = attack.categorical_columns[column]
    return [[labels[int(c)] if c >= 0 else None for c in row] for row in codes]


def paths(attack: Attack, codes: torch.Tensor) -> list[list[str]]:
    """The decision names, every sample having one."""
    rows = names(attack, "decision", codes)
    assert all(d is not None for row in rows for d in row), "every sample has a decision at every eps"
    return [[d or "" for d in row] for row in rows]


# -- strength ------------------------------------------------------------------------------------
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_rapid_reaches_the_exact_robust_accuracy_of_a_linear_model(norm: str) -> None:
    """APGD-CE follows the cross-entropy, whose gradient mixes every class, and leaves samples that
    a step towards their nearest class would fool; MALT's linearised distance is exact here, so one
    targeted run towards the nearest class finds every sample's smallest perturbation (no restarts
    needed) and rapid's accuracy is the true one."""
    model = linear()
    x = images(64, low=0.3, high=0.7)
    y = labelled(model, x)
    distances = linf_distances(model, x, y, norm)
    eps = eps_between(distances)
    assert max(eps) < 0.3, "the box must not bind for the analytic answer to hold"
    exact = [int((distances > e).sum()) for e in eps]
    rapid = create_attack("rapid" if norm == "linf" else "rapid-l2", model, seed=0, restarts=0)  # MALT's nearest class alone
    out = sweep(rapid, x, y, eps, batch=64)
    apgd = create_attack("apgd" if norm == "linf" else "apgd-l2", model).sweep(x, y, eps).correct.sum(1).tolist()
    assert out.correct.sum(1).tolist() == exact
    assert all(a >= e for a, e in zip(apgd, exact)) and sum(apgd) > sum(exact), "APGD-CE alone must miss some for the test to mean anything"


@pytest.mark.slow
def test_rapid_matches_autoattack_on_a_small_cnn_at_a_tenth_of_its_passes() -> None:
    """A CNN with fixed random weights: rapid leaves at most MARGIN samples more than the full
    autoattack, fewer than APGD-CE alone, and spends at most a fifth of autoattack's forward and
    backward passes (measured here: equal accuracy at 1/15.6 of the passes, docs/rapid.md)."""
    model = small_cnn()
    x = images(24)
    y = labelled(model, x, wrong=2)
    eps = [0.015]
    rapid = create_attack("rapid", model, seed=0)
    rapid_correct = sweep(rapid, x, y, eps, batch=24).correct.sum(1)
    aa = create_attack("autoattack", model)
    aa.reseed(0)
    aa_correct = aa.sweep(x, y, eps).correct.sum(1)
    apgd_correct = create_attack("apgd", model).sweep(x, y, eps).correct.sum(1)
    assert (rapid_correct <= aa_correct + MARGIN).all(), (rapid_correct.tolist(), aa_correct.tolist())
    assert (rapid_correct <= apgd_correct).all() and (rapid_correct < apgd_correct).any(), (rapid_correct.tolist(), apgd_correct.tolist())
    assert passes(rapid) * 5 <= passes(aa), (passes(rapid), passes(aa))
    members = rapid.member_costs()  # type: ignore[attr-defined]
    assert list(members) == ["apgd-ce", "malt", "restart", "square", "extrapolate", "retry"] and members["malt"][1] > 0
    assert sum(f + b for f, b in members.values()) <= passes(rapid)


# -- decisions ----------------------------------------------------------------------------------------
def test_decisions_name_each_samples_path_and_agree_with_who_fooled_it() -> None:
    model = small_cnn()
    x = images(32, seed=2)
    y = labelled(model, x, wrong=3)
    rapid = create_attack("rapid", model, seed=0)
    out = sweep(rapid, x, y, [0.005, 0.01, 0.02], batch=32)
    decision, fooled_by = paths(rapid, out.columns["decision"]), names(rapid, "fooled_by", out.columns["fooled_by"])
    for k, (d_row, f_row) in enumerate(zip(decision, fooled_by)):
        for i, (d, f) in enumerate(zip(d_row, f_row)):
            assert (f is None) == bool(out.correct[k, i]), "fooled_by is null exactly where the sample survived"
            if i < 3:
                assert d == f == "clean"
            elif f == "apgd-ce":
                assert d == "apgd-ce", "fooled by the first member: nothing else ran"
            elif f == "malt":
                assert d == "apgd-ce > malt nearest", d
            elif f == "restart":
                assert d.startswith("apgd-ce > malt nearest > restart x") and "retry" not in d, d
            elif f == "retry":
                assert d.startswith("apgd-ce > malt nearest") and "> retry closest x" in d, d
            elif f == "extrapolate":
                assert k > 0 and d == "extrapolate (the smaller eps's point, scaled)", (
                    "only a survivor of a smaller eps has a point to scale"
                )
            if d == "apgd-ce":
                assert f == "apgd-ce", "a survivor of APGD-CE always goes on to another member"
    flat = [d for row in decision for d in row]
    assert "apgd-ce" in flat and any(d.startswith("apgd-ce > malt") for d in flat), "both the easy and the hard paths are exercised"
    assert not any("square" in d for d in flat), "gradients work here: no query attack"
    for k in range(1, 3):  # worst case: a sample fooled at a smaller eps keeps its path and its member
        for i in (~out.correct[k - 1]).nonzero().flatten().tolist():
            assert (decision[k][i], fooled_by[k][i]) == (decision[k - 1][i], fooled_by[k - 1][i])


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_extrapolating_the_smaller_eps_point_only_adds_fooled_samples_and_saves_passes(norm: str) -> None:
    """A sample the scaled-up point does not fool takes exactly the path it took without it (keyed
    starts), so at every eps the survivors with extrapolation are a subset of those without; some
    samples fall to the scaled point, for one forward pass each and no backward pass, and the
    sweep spends fewer passes."""
    model = small_cnn()
    x = images(32, seed=8)
    y = labelled(model, x, wrong=2)
    name, eps = ("rapid", [0.004, 0.008, 0.016]) if norm == "linf" else ("rapid-l2", [0.06, 0.12, 0.24])
    on, off = create_attack(name, model, seed=0, steps=30), create_attack(name, model, seed=0, steps=30, extrapolate=False)
    with_, without = sweep(on, x, y, eps, batch=32), sweep(off, x, y, eps, batch=32)
    assert not (with_.correct & ~without.correct).any(), "a survivor with extrapolation survives without it"
    assert torch.equal(with_.correct[0], without.correct[0]), "the first eps has no smaller point to scale"
    by = names(on, "fooled_by", with_.columns["fooled_by"])
    scaled = sum(f == "extrapolate" for row in by[1:] for f in row)
    assert scaled > 0, "some samples fall to the scaled point"
    forwards, backwards = on.member_costs()["extrapolate"]  # type: ignore[attr-defined]
    assert backwards == 0 and 0 < forwards <= int(with_.correct[:-1].sum()), "one forward pass per survivor of a smaller eps"
    assert passes(on) < passes(off), (passes(on), passes(off))
    # the previous defaults (one restart, no extrapolation): every change since only adds tries
    before = sweep(create_attack(name, model, seed=0, steps=30, restarts=1, extrapolate=False, retries=0), x, y, eps, batch=32)
    assert not (with_.correct & ~before.correct).any(), "a survivor of today's rapid survives the previous one"


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_the_scaled_point_lies_in_the_ball_and_the_box(norm: str) -> None:
    x = images(6)
    g = torch.Generator().manual_seed(9)
    delta = torch.randn(x.shape, generator=g)
    size = delta.flatten(1).abs().amax(1) if norm == "linf" else delta.flatten(1).norm(dim=1)
    delta = 0.01 * delta / size.view(-1, 1, 1, 1)  # found at eps 0.01
    point = Extrapolate(linear(), norm).point(x, delta, torch.full((6,), 2.0), 0.02)  # type: ignore[arg-type]
    d = (point - x).flatten(1)
    assert float(point.min()) >= 0 and float(point.max()) <= 1
    assert float(d.abs().amax() if norm == "linf" else d.norm(dim=1).max()) <= 0.02 + 1e-7
    inside = ((x + 2 * delta) >= 0) & ((x + 2 * delta) <= 1)
    assert torch.allclose(point[inside], (x + 2 * delta)[inside], atol=1e-6), "inside the box the point is x + ratio * delta"


class Confident(nn.Module):
    """A linear model whose logit for class 0 leads every other by about 10 on images in [0.3, 0.7]:
    a small perturbation keeps each sample's targeted DLR loss near -1, far from fooling."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = linear()
        self.bias = nn.Parameter(torch.tensor([10.0] + [0.0] * 9), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.1 * self.inner(x) + self.bias


@pytest.mark.parametrize("abort", [-0.6, -math.inf])
def test_a_targeted_run_nowhere_near_the_boundary_stops_at_its_first_checkpoint(abort: float) -> None:
    """Its best targeted DLR loss stays near -1: with ``abort_loss`` -0.6 each sample stops after the
    first checkpoint (its start and 22 of the 100 steps: 23 backward passes), with -inf it runs all
    101; either way it is not fooled and its answer lies in the ball."""
    model = Confident()
    x = images(8, low=0.3, high=0.7)
    y = labelled(model, x)
    assert (y == 0).all()
    member = create_attack("rapid", model, seed=0, abort_loss=abort).member(MALT)
    assert isinstance(member, KeyedStarts) and member.abort_loss == abort
    result, fooled = x.clone(), torch.zeros(8, dtype=torch.bool)
    member.run_once(x, y, 0.01, torch.ones(8, dtype=torch.long), result, fooled, torch.arange(8))
    assert not fooled.any() and float((result - x).abs().max()) <= 0.01 + 1e-7
    assert member.cost[1] == 8 * (23 if abort > -math.inf else 101), member.cost


def test_a_sample_s_decision_counts_its_stopped_targeted_runs() -> None:
    """On the confident model every sample survives APGD-CE and its MALT run stops at the first
    checkpoint: the decision says so, and with -inf no decision mentions a stop."""
    model = Confident()
    x = images(8, low=0.3, high=0.7)
    y = labelled(model, x)
    for abort, want in ((-0.6, "; 1 targeted run stopped at the first checkpoint"), (-math.inf, "")):
        rapid = create_attack("rapid", model, seed=0, abort_loss=abort, restarts=0)
        decision = paths(rapid, rapid.sweep(x, y, [0.01]).columns["decision"])[0]
        assert decision == [f"apgd-ce > malt nearest{want}"] * 8, decision
    names = create_attack("rapid", model, restarts=1, retries=0).categorical_columns["decision"]
    assert (
        len(names) == 8 * 3
        and names[8 + 7] == "apgd-ce > malt nearest > restart x1 (logit order); 1 targeted run stopped at the first checkpoint"
    )
    assert names[16 + 7].endswith("; 2 targeted runs stopped at the first checkpoint")
    names = create_attack("rapid", model, restarts=1, retries=2).categorical_columns["decision"]  # 8 paths, 2 x 2 retried; up to 4 stops
    code = decision_code(torch.tensor([D_RESTART, D_MALT]), torch.tensor([2, 1]), torch.tensor([3, 0]), 1, 2)
    assert len(names) == 12 * 5 and [names[int(c)] for c in code] == [
        "apgd-ce > malt nearest > restart x1 (logit order) > retry closest x2; 3 targeted runs stopped at the first checkpoint",
        "apgd-ce > malt nearest > retry closest x1",
    ]


def test_stopping_hopeless_targeted_runs_keeps_every_fooled_sample_of_a_linear_model() -> None:
    """The stops cost no strength where the answer is known (the linear model's exact robust
    accuracy at three eps) and save passes."""
    model = linear()
    x = images(64, low=0.3, high=0.7)
    y = labelled(model, x)
    distances = linf_distances(model, x, y)
    eps = eps_between(distances)
    exact = [int((distances > e).sum()) for e in eps]
    stop, run_on = (create_attack("rapid", model, seed=0, abort_loss=a) for a in (-0.6, -math.inf))
    assert sweep(stop, x, y, eps, batch=64).correct.sum(1).tolist() == exact
    assert sweep(run_on, x, y, eps, batch=64).correct.sum(1).tolist() == exact
    assert passes(stop) < passes(run_on), (passes(stop), passes(run_on))


@pytest.mark.parametrize("reach", [0.0, 1e9])
def test_restarts_only_where_a_survivor_came_close(reach: float) -> None:
    model = small_cnn()
    x = images(16, seed=2)
    y = labelled(model, x)
    rapid = create_attack(
        "rapid", model, seed=0, restart_reach=reach, steps=20, restarts=2, abort_loss=-math.inf, retries=0
    )  # every run to the end
    out = rapid.sweep(x, y, [0.01])
    decision = paths(rapid, out.columns["decision"])[0]
    survivors = [s for s, right in zip(decision, out.correct[0]) if right]
    assert survivors and all(s.startswith("apgd-ce > malt") for s in survivors)
    restart = rapid.member_costs()["restart"]  # type: ignore[attr-defined]
    if reach == 0.0:
        assert survivors == ["apgd-ce > malt nearest"] * len(survivors) and restart == (0, 0)
    else:  # within any reach: both restarts, towards the logits' best untried class, then MALT's
        assert survivors == ["apgd-ce > malt nearest > restart x2 (logit, malt order)"] * len(survivors)
        assert restart[1] >= 2 * 20 * len(survivors)


def test_restarts_alternate_logit_order_and_linearised_distance_over_untried_classes() -> None:
    """AutoAttack's order (clean logits, highest first) and MALT's (nearest first) in turn, without
    the true class and the classes already tried."""
    logits = torch.tensor([[5, 1, 2, 0, 4, 3], [0, 1, 2, 3, 4, 5]])
    distance = torch.tensor([[0.5, 9.0, 0.1, 0.2, 0.3, 0.4], [9.0, 8.0, 7.0, 6.0, 5.0, 0.1]])
    got = restart_order(logits, distance, torch.tensor([1, 0]), torch.tensor([[2, -1], [3, 1]]))
    assert got.tolist() == [[5, 3, 0], [2, 5, 4]]


def test_retries_only_add_fooled_samples_and_run_only_where_a_run_came_close() -> None:
    """The retries come after every other run (keyed starts), so at every eps the survivors with
    them are a subset of those without; where some run is retried the retry member spends passes,
    with ``retry_reach`` 0 it spends none, and with an unbounded reach every survivor of the
    targeted runs takes all its retries (and says so in its decision)."""
    model = small_cnn()
    x = images(32, seed=8)
    y = labelled(model, x, wrong=2)
    eps = [0.004, 0.008, 0.016]
    make = lambda **kw: create_attack("rapid", model, seed=0, steps=30, **kw)
    on, off, none, every = make(), make(retries=0), make(retry_reach=0.0), make(retry_reach=1e9, retries=2, abort_loss=-math.inf)
    with_, without, near_none, all_ = (sweep(a, x, y, eps, batch=32) for a in (on, off, none, every))
    assert not (with_.correct & ~without.correct).any() and torch.equal(near_none.correct, without.correct)
    assert off.member_costs()["retry"] == (0, 0) and none.member_costs()["retry"] == (0, 0)  # type: ignore[attr-defined]
    assert passes(none) == passes(off), "a reach of 0 is no retries: not even the closeness of the last restart's point"
    decision = paths(every, all_.columns["decision"])
    targeted = [
        d for k in range(3) for d, right in zip(decision[k], all_.correct[k]) if right and "malt nearest" in d and "square" not in d
    ]
    assert targeted and all("> retry closest x2" in d for d in targeted), targeted
    assert every.member_costs()["retry"][1] >= 2 * 30 * len(targeted)  # type: ignore[attr-defined]


def test_a_retry_goes_to_the_class_whose_run_came_closest() -> None:
    """With no restarts the only targeted run is MALT's, towards the nearest class by linearised
    distance; every retry (unbounded reach) goes to that same class, from a new random start."""
    model = small_cnn()
    x = images(16, seed=2)
    y = labelled(model, x)
    rapid = create_attack("rapid", model, seed=0, steps=20, restarts=0, retries=1, retry_reach=1e9, abort_loss=-math.inf)
    targets: dict[int, list[int]] = {MALT: [], RETRY: []}
    for code in targets:
        member = rapid.member(code)  # type: ignore[attr-defined]
        run_once = member.run_once

        def record(*args: object, _run: object = run_once, _code: int = code) -> None:
            targets[_code].extend(cast(torch.Tensor, args[3]).tolist())
            _run(*args)  # type: ignore[operator]

        member.run_once = record
    out = rapid.sweep(x, y, [0.01])
    retried = [i for i, d in enumerate(paths(rapid, out.columns["decision"])[0]) if "retry closest x1" in d]
    assert retried and len(targets[RETRY]) == len(retried)
    distance, _, _ = linearised_distances(rapid.member(MALT), x, y, "linf")  # type: ignore[attr-defined]
    assert targets[RETRY] == distance.argmin(1)[retried].tolist()


def test_vanishing_gradients_send_survivors_to_square_with_that_reason() -> None:
    """A model that quantises its input has zero input gradients: APGD-CE cannot move, the survivors
    go to Square (and to nothing else), the reason is recorded, and Square fools some of them."""
    model = Quantised(linear())
    x = images(24, low=0.3, high=0.7)
    y = labelled(model, x)
    rapid = create_attack("rapid", model, seed=0, square_queries=300)
    out = sweep(rapid, x, y, [0.05, 0.1], batch=24)
    decision, fooled_by = paths(rapid, out.columns["decision"]), names(rapid, "fooled_by", out.columns["fooled_by"])
    for k in range(2):
        for d, f in zip(decision[k], fooled_by[k]):
            assert d in ("apgd-ce", "apgd-ce > square (gradients vanish)"), d
            assert f in (None, "square") or d == "apgd-ce"
    assert sum(f == "square" for row in fooled_by for f in row) > 0, "Square must fool some samples the gradient attacks could not"
    assert rapid.member_costs()["malt"][1] == 10 * sum(d != "apgd-ce" for d in decision[0]), "only the gradient check, once per sample"  # type: ignore[attr-defined]
    assert rapid.member_costs()["restart"] == (0, 0)  # type: ignore[attr-defined]
    distance, gradients, _ = linearised_distances(rapid.members[0][1], x, y, "linf")  # type: ignore[attr-defined]
    assert (gradients == GRAD_VANISH).all() and torch.isinf(distance).all()


def test_a_loss_that_never_rises_sends_survivors_to_square() -> None:
    """Straight-through rounding on level-centred images, eps below half a level: the gradients are
    finite and nonzero, so the sample goes on to the targeted runs, but none of their losses moves;
    it goes to Square with the reason 'loss did not rise' (the model is constant in the ball, so
    every sample survives)."""
    model = StraightThrough(linear())
    x = torch.randint(0, 9, (12, *SHAPE), generator=torch.Generator().manual_seed(4)).float() / 8
    y = labelled(model, x)
    rapid = create_attack("rapid", model, seed=0, steps=10, square_queries=50)
    out = sweep(rapid, x, y, [0.05], batch=12)
    decision = paths(rapid, out.columns["decision"])[0]
    flat = "apgd-ce > malt nearest > square (loss did not rise)"  # a run far from the boundary also stopped early: still Square
    assert all(d in (flat, f"{flat}; 1 targeted run stopped at the first checkpoint") for d in decision), decision
    assert out.correct.all() and rapid.member_costs()["square"][0] > 0  # type: ignore[attr-defined]
    distance, gradients, _ = linearised_distances(rapid.members[0][1], x, y, "linf")  # type: ignore[attr-defined]
    assert (gradients == GRAD_OK).all() and torch.isfinite(distance).any(1).all()


def test_the_gradient_check_separates_vanishing_and_non_finite_gradients() -> None:
    class Sqrt(nn.Module):  # d/dx sqrt(x) is inf at 0: the first pixel of the first image is 0
        def __init__(self) -> None:
            super().__init__()
            self.inner = linear()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.inner(torch.sqrt(x))

    x = images(4)
    x[0, 0, 0, 0] = 0.0
    y = torch.zeros(4, dtype=torch.long)
    attack = create_attack("apgd", Sqrt())
    _, gradients, _ = linearised_distances(attack, x, y, "linf")
    assert gradients.tolist() == [GRAD_NONFINITE, GRAD_OK, GRAD_OK, GRAD_OK]


# -- determinism -------------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["cnn", "quantised"])
def test_a_samples_outcome_does_not_depend_on_its_batch(which: str) -> None:
    """The same images swept in one batch, in batches of 5 and in batches of 7 in reverse order
    (each batch reseeded by its index, as the runner does): every sample's outcome, member and path
    are the same (with Square, on the quantised model, too)."""
    model = small_cnn() if which == "cnn" else Quantised(linear())
    x = images(16, seed=3, low=0.0 if which == "cnn" else 0.3, high=1.0 if which == "cnn" else 0.7)
    y = labelled(model, x, wrong=1)
    eps = [0.015] if which == "cnn" else [0.01]
    runs = []
    for batch, order in ((16, torch.arange(16)), (5, torch.arange(16)), (7, torch.arange(15, -1, -1))):
        out = sweep(create_attack("rapid", model, seed=4, square_queries=200), x[order], y[order], eps, batch=batch, seed=100 * batch)
        back = order.argsort()
        runs.append((out.correct[:, back], out.columns["fooled_by"][:, back], out.columns["decision"][:, back]))
    for other in runs[1:]:
        for a, b in zip(runs[0], other):
            assert torch.equal(a, b)
    assert (~runs[0][0]).sum() > 2 and runs[0][0].sum() > 2, "some fooled, some not: the comparison can fail"
    if which == "quantised":
        assert (runs[0][1] == 3).sum() > 0, "Square fooled some (its search is what this case checks)"


def test_the_seed_changes_the_random_starts() -> None:
    model = small_cnn()
    x = images(16, seed=5)
    y = labelled(model, x)
    one, two = (create_attack("rapid", model, seed=s) for s in (0, 1))
    a, b = one.member(0), two.member(0)  # type: ignore[attr-defined]
    assert isinstance(one, Rapid) and a is not b
    starts = [keyed_start(x, 0.01, "linf", sample_keys(x, s), "apgd-ce:0.01") for s in (0, 1, 0)]
    assert torch.equal(starts[0], starts[2]) and not torch.equal(starts[0], starts[1])
    assert float((starts[0] - x).abs().amax()) <= 0.01 + 1e-7
    assert torch.equal(keyed_start(x[3:5], 0.01, "linf", sample_keys(x[3:5], 0), "apgd-ce:0.01"), starts[0][3:5]), (
        "a start depends on its image only"
    )
    assert torch.equal(create_attack("rapid", model, seed=0).sweep(x, y, [0.02]).correct, one.sweep(x, y, [0.02]).correct)


# -- interface ----------------------------------------------------------------------------------
def test_traits_registry_and_parameters() -> None:
    model = linear()
    rapid = create_attack("rapid", model)
    traits = rapid.traits()
    assert traits.ensemble and traits.iterative and not traits.minimum_norm and not traits.probe
    assert traits.norm == "linf" and create_attack("rapid-l2", model).traits().norm == "l2"
    assert 0 < traits.strength < AutoAttack.strength
    assert rapid.params() == {
        "steps": 100,
        "restarts": 3,
        "restart_reach": 2.0,
        "square_queries": 5000,
        "extrapolate": True,
        "abort_loss": -0.6,
        "retries": 3,
        "retry_reach": 0.1,
        "seed": 0,
    }
    assert rapid.categorical_columns["fooled_by"] == ["apgd-ce", "malt", "restart", "square", "extrapolate", "retry", "clean"]
    decisions = create_attack("rapid", model, restarts=3).categorical_columns["decision"]
    assert [d for d in decisions if "restart" in d and "stopped" not in d and "retry" not in d] == [
        f"apgd-ce > malt nearest > restart x{r} ({o} order)" for r, o in ((1, "logit"), (2, "logit, malt"), (3, "logit, malt, logit"))
    ]
    for bad, param in (
        ({"steps": 0}, "steps"),
        ({"square_queries": 1.5}, "square_queries"),
        ({"restarts": -1}, "restarts"),
        ({"retries": 1.5}, "retries"),
        ({"retry_reach": -1}, "retry_reach"),
        ({"restart_reach": "far"}, "restart_reach"),
        ({"restart_reach": -0.1}, "restart_reach"),
        ({"targeted": True}, "targeted"),
        ({"extrapolate": "yes"}, "extrapolate"),
        ({"abort_loss": 0.5}, "abort_loss"),
        ({"abort_loss": math.nan}, "abort_loss"),
        ({"abort_loss": "low"}, "abort_loss"),
    ):
        with pytest.raises(AttackParameterError) as err:
            create_attack("rapid", model, **bad)
        assert err.value.param == param and "\n" not in str(err.value)
    with pytest.raises(AttackParameterError, match="takes no parameter 'fab_steps'"):
        create_attack("rapid", model, fab_steps=3)
    rapid.check_data(10, SHAPE)
    with pytest.raises(AttackParameterError, match="rapid needs at least 4 classes .* the data has 3; use apgd") as err:
        rapid.check_data(3, SHAPE)
    assert err.value.param == "name"


def test_perturb_stays_in_the_ball_and_fools_what_the_sweep_fools() -> None:
    model = small_cnn()
    x = images(16, seed=6)
    y = labelled(model, x)
    rapid = create_attack("rapid", model, seed=0)
    adv = rapid(x, y, 0.02)
    assert float((adv - x).abs().amax()) <= 0.02 + 1e-6 and float(adv.min()) >= 0 and float(adv.max()) <= 1
    with torch.no_grad():
        fooled = model(adv).argmax(1) != y
    assert torch.equal(~fooled, rapid.sweep(x, y, [0.02]).correct[0])


def test_an_independent_sweep_attacks_each_eps_afresh_and_leaves_clean_mistakes_alone() -> None:
    model = small_cnn()
    x = images(16, seed=7)
    y = labelled(model, x, wrong=2)
    rapid = create_attack("rapid", model, seed=0, extrapolate=False)
    independent = rapid.sweep(x, y, [0.01, 0.02], mode="independent")
    worst = rapid.sweep(x, y, [0.01, 0.02])
    assert torch.equal(independent.correct[0], worst.correct[0]), "the first eps is the same attack either way"
    # keyed starts: a survivor of the first eps gets the same attack at the second in either mode
    assert torch.equal(worst.correct[1], independent.correct[1] & worst.correct[0])
    # extrapolating from the first eps only adds a try: it can fool more there, never fewer
    scaled = create_attack("rapid", model, seed=0).sweep(x, y, [0.01, 0.02])
    assert torch.equal(scaled.correct[0], worst.correct[0]) and not (scaled.correct[1] & ~worst.correct[1]).any()
    assert (independent.correct[0] & ~independent.correct[1]).any(), "the larger eps fools more: the relation is not empty"
    assert torch.equal(independent.pred[:, :2], independent.clean_pred[:2].expand(2, 2)), "clean mistakes keep their prediction"
    assert (independent.columns["decision"][:, :2] == rapid.categorical_columns["decision"].index("clean")).all()


def test_rapid_l2_sends_masked_samples_to_the_library_square_one_image_at_a_time() -> None:
    model = Quantised(linear())
    x = images(6, low=0.3, high=0.7)
    y = labelled(model, x)
    rapid = create_attack("rapid-l2", model, seed=0, square_queries=30)
    out = rapid.sweep(x, y, [0.5])
    assert set(paths(rapid, out.columns["decision"])[0]) <= {"apgd-ce", "apgd-ce > square (gradients vanish)"}
    assert rapid.member_costs()["square"][0] > 0  # type: ignore[attr-defined]
    adv = rapid(x, y, 0.5)
    assert float((adv - x).flatten(1).norm(dim=1).max()) <= 0.5 + 1e-5
