"""Strong attacks: native APGD / APGD-T against torchattacks and the authors' AutoAttack code
(pyautoattack), per sample, from the same random starts."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

from robust_attn.attacks import create_attack

SEED = 5


@pytest.fixture(scope="module")
def batch(test_batch) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[no-untyped-def]
    x, y = test_batch
    return x[:64], y[:64]


def _correct(model: nn.Module, adv: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(adv).argmax(1) == y


def _native(name: str, model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, **params: object) -> torch.Tensor:
    """Native outcomes with the random stream torchattacks and AutoAttack draw from
    (torch.manual_seed(SEED), then torch.rand/randn per run on the samples still correct)."""
    attack = create_attack(name, model, seed=SEED, **params)
    attack.reseed(SEED)
    return _correct(model, attack(x, y, eps), y)


@pytest.mark.parametrize(
    ("norm", "loss", "eps"), [("Linf", "ce", 2 / 255), ("Linf", "dlr", 2 / 255), ("L2", "ce", 0.15), ("L2", "dlr", 0.15)]
)
def test_apgd_matches_torchattacks_and_the_reference_per_sample(trained, batch, norm: str, loss: str, eps: float) -> None:  # type: ignore[no-untyped-def]
    import torchattacks
    from pyautoattack.autopgd_base import APGDAttack

    model, _ = trained
    x, y = batch
    native = _native("apgd" if norm == "Linf" else "apgd-l2", model, x, y, eps, steps=10, loss=loss)
    library = _correct(model, torchattacks.APGD(model, norm=norm, eps=eps, steps=10, seed=SEED, loss=loss)(x, y), y)
    reference = _correct(model, APGDAttack(model, n_iter=10, norm=norm, eps=eps, seed=SEED, loss=loss, device="cpu").perturb(x, y), y)
    clean = _correct(model, x, y)
    assert native.sum() < clean.sum() - 5, "the attack must fool some samples for the comparison to mean anything"
    assert torch.equal(native, reference)
    assert torch.equal(native, library)


@pytest.mark.parametrize(("norm", "eps"), [("Linf", 2 / 255), ("L2", 0.15)])
def test_apgd_t_matches_torchattacks_and_the_reference_per_sample(trained, batch, norm: str, eps: float) -> None:  # type: ignore[no-untyped-def]
    import torchattacks
    from pyautoattack.autopgd_base import APGDAttack_targeted

    model, _ = trained
    x, y = batch
    native = _native("apgd-t" if norm == "Linf" else "apgd-t-l2", model, x, y, eps, steps=10, targets=3)
    library = torchattacks.APGDT(model, norm=norm, eps=eps, steps=10, seed=SEED, n_classes=4)  # n_classes - 1 = 3 targets
    reference = APGDAttack_targeted(model, n_iter=10, norm=norm, eps=eps, seed=SEED, n_target_classes=3, device="cpu")
    assert torch.equal(native, _correct(model, reference.perturb(x, y), y))
    assert torch.equal(native, _correct(model, library(x, y), y))


def test_apgd_stays_in_the_ball_and_beats_pgd(trained, batch) -> None:  # type: ignore[no-untyped-def]
    model, _ = trained
    x, y = batch
    for name, eps, p in (("apgd", 4 / 255, float("inf")), ("apgd-l2", 0.3, 2.0), ("apgd-t", 4 / 255, float("inf"))):
        adv = create_attack(name, model, steps=10, **({"targets": 2} if name == "apgd-t" else {}))(x, y, eps)
        assert (adv - x).flatten(1).norm(p=p, dim=1).max() <= eps + 1e-5 and adv.min() >= 0 and adv.max() <= 1, name
    eps = [1 / 255, 2 / 255]
    pgd = create_attack("pgd", model, steps=10).sweep(x, y, eps).correct.sum(1)
    apgd = create_attack("apgd", model, steps=10).sweep(x, y, eps).correct.sum(1)
    assert (apgd <= pgd).all()


def test_apgd_worst_case_sweep_is_monotone_and_counts_its_cost(trained, batch) -> None:  # type: ignore[no-untyped-def]
    model, _ = trained
    x, y = batch
    attack = create_attack("apgd", model, steps=10)
    out = attack.sweep(x, y, [0.0, 1 / 255, 2 / 255, 4 / 255], mode="worst-case")
    assert (out.correct[1:] <= out.correct[:-1]).all()
    _, backwards = attack.cost
    survivors = int(out.correct[1:-1].sum())  # attacked again at the next eps
    assert backwards <= (11) * (len(x) + survivors) and backwards >= len(x)  # early stopping spends less than steps + 1 per attacked sample


def test_dlr_needs_enough_classes(test_batch) -> None:  # type: ignore[no-untyped-def]
    x, y = test_batch
    two = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 2))
    three = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 3))
    with pytest.raises(ValueError, match="the DLR loss needs at least 3 classes, the model has 2"):
        create_attack("apgd", two, loss="dlr")(x[:4], y[:4] % 2, 1 / 255)
    with pytest.raises(ValueError, match=r"targeted DLR \(APGD-T\) needs at least 4 classes, the model has 3"):
        create_attack("apgd-t", three)(x[:4], y[:4] % 3, 1 / 255)
    with pytest.raises(ValueError, match="loss must be one of 'ce', 'dlr', got 'hinge'"):
        create_attack("apgd", two, loss="hinge")
    assert create_attack("apgd", two)(x[:4], y[:4] % 2, 1 / 255).shape == x[:4].shape  # CE works with 2 classes


def _foolbox_norms(model: nn.Module, attack: object, x: torch.Tensor, y: torch.Tensor, p: float) -> torch.Tensor:
    import foolbox as fb

    _, adv, _ = attack(fb.PyTorchModel(model, bounds=(0, 1)), x, fb.criteria.Misclassification(y), epsilons=None)  # type: ignore[operator]
    fooled = ~_correct(model, adv, y)
    return torch.where(fooled, (adv - x).flatten(1).norm(p=p, dim=1), torch.full((len(x),), float("inf")))


def _fixed_foolbox_l2fmn(steps: int) -> object:
    """foolbox 3.3's L2FMNAttack with its projection corrected (it scales by norms / norms = 1, so it
    never projects); everything else is foolbox's code."""
    import eagerpy as ep
    import foolbox as fb
    from foolbox.devutils import atleast_kd, flatten

    class L2FMNProjected(fb.attacks.L2FMNAttack):  # type: ignore[misc]
        def project(self, x: ep.Tensor, x0: ep.Tensor, epsilon: ep.Tensor) -> ep.Tensor:
            norms = ep.maximum(flatten(x - x0).norms.l2(axis=-1), 1e-12)
            return x0 + (x - x0) * atleast_kd(ep.minimum(1, epsilon / norms), x.ndim)

    return L2FMNProjected(steps=steps)


@pytest.mark.parametrize("name", ["fmn", "fmn-l2"])
def test_fmn_norms_match_foolbox(trained, batch, name: str) -> None:  # type: ignore[no-untyped-def]
    """The same samples are found, and per-sample minimal norms equal foolbox's within 1%: the
    two round differently (eagerpy vs torch ops) and the difference grows over the iterations;
    most samples agree to 0.1% (on 200 images, 20 steps: all but one)."""
    import foolbox as fb

    model, _ = trained
    x, y = batch
    x, y = x[:40], y[:40]
    p = float("inf") if name == "fmn" else 2.0
    native = create_attack(name, model, steps=20).sweep(x, y, [0.0]).columns["min_norm"]
    reference = _foolbox_norms(model, fb.attacks.LInfFMNAttack(steps=20) if name == "fmn" else _fixed_foolbox_l2fmn(20), x, y, p)
    assert torch.equal(torch.isfinite(native), torch.isfinite(reference))
    both = torch.isfinite(native)
    rel = (native[both] - reference[both]).abs() / reference[both].clamp_min(1e-6)
    assert both.sum() >= 20 and rel.max() <= 1e-2 and (rel <= 1e-3).float().mean() >= 0.9


@pytest.mark.parametrize(("name", "params"), [("fmn", {"steps": 10}), ("fab-t", {"steps": 5, "targets": 2})])
def test_min_norm_curve_is_the_sweep(trained, batch, tmp_path, name: str, params: dict[str, int]) -> None:  # type: ignore[no-untyped-def]
    """accuracy(eps) = share of samples whose minimal norm exceeds eps, in both modes and in the
    run directory's per-sample table, for both minimum-norm attacks."""
    import pandas as pd

    from robust_attn.sweeps import parse_spec, run_sweep

    model, ckpt = trained
    x, y = batch
    eps = [0.0, 1 / 255, 2 / 255, 4 / 255]
    attack = create_attack(name, model, **params)
    for mode in ("worst-case", "independent"):
        out = attack.sweep(x, y, eps, mode=mode)
        norms = out.columns["min_norm"]
        assert torch.equal(out.correct, torch.stack([norms > e for e in eps])), mode
    spec = {
        "name": "mn",
        "models": [str(ckpt)],
        "n": 30,
        "batch_size": 15,
        "attention_samples": 0,
        "attacks": [{"name": name, **params, "eps": ["0", "2/255", "8/255"]}],
    }
    run = run_sweep(parse_spec(spec), tmp_path / "run", progress=False)
    s = pd.read_parquet(run / "samples.parquet")
    assert s["min_norm"].notna().all() and (s["correct"] == (s["min_norm"] > s["eps"])).all()
    assert (s.loc[s["clean_pred"] != s["label"], "min_norm"] == 0).all()


def test_ensemble_members_see_only_survivors(trained, batch) -> None:  # type: ignore[no-untyped-def]
    """Each member attacks only what the previous members left; in a worst-case sweep a sample fooled
    at a smaller eps is not attacked again; fooled_by names who fooled each sample first."""
    from robust_attn.attacks.ensemble import Ensemble

    model, _ = trained
    x, y = batch
    seen: dict[str, list[int]] = {"fgsm": [], "pgd": []}
    members = []
    for name, params in (("fgsm", {}), ("pgd", {"steps": 5})):
        member = create_attack(name, model, **params)
        original = member.perturb
        member.perturb = lambda xs, ys, eps, stop_early=False, n=name, f=original: (seen[n].append(len(xs)), f(xs, ys, eps, stop_early))[1]  # type: ignore[method-assign]
        members.append((name, member))
    ensemble = Ensemble(model, members)
    eps = [1 / 255, 4 / 255]
    out = ensemble.sweep(x, y, eps, mode="worst-case")
    codes = out.columns["fooled_by"]  # 0 fgsm, 1 pgd, 2 clean, -1 not fooled
    clean_right = out.clean_pred == y
    assert seen["fgsm"][0] == int(clean_right.sum()), "the first member sees every sample the model gets right"
    assert seen["pgd"][0] == int(clean_right.sum()) - int((codes[0] == 0).sum()), "the second sees only the first's survivors"
    assert seen["fgsm"][1] == int(out.correct[0].sum()), "at the next eps only the survivors of the smaller eps"
    assert torch.equal(out.correct, (codes == -1) & clean_right)
    assert ((codes[1] == codes[0]) | (codes[0] == -1)).all(), "worst case: who fooled a sample first stays recorded"
    assert (codes[:, ~clean_right] == 2).all()


def test_autoattack_preset_runs_as_a_worst_case_sweep(trained, batch) -> None:  # type: ignore[no-untyped-def]
    """The preset's four members in AutoAttack's order (shrunk here for time); the worst case over
    them is never above APGD-CE alone from the same start."""
    model, _ = trained
    x, y = batch
    x, y = x[:32], y[:32]
    attack = create_attack("autoattack", model, steps=5, targets=2, fab_steps=3, square_queries=20, seed=1)
    attack.reseed(1)
    out = attack.sweep(x, y, [1 / 255, 2 / 255])
    assert [name for name, _ in attack.members] == ["apgd-ce", "apgd-t", "fab-t", "square"]  # type: ignore[attr-defined]
    assert (out.correct[1] <= out.correct[0]).all()
    alone = create_attack("apgd", model, steps=5, seed=1)
    alone.reseed(attack.members[0][1].seed)  # type: ignore[attr-defined]
    assert (out.correct.sum(1) <= alone.sweep(x, y, [1 / 255, 2 / 255]).correct.sum(1)).all()
    costs = attack.member_costs()  # type: ignore[attr-defined]
    assert costs["apgd-ce"][1] > 0 and sum(f for f, _ in costs.values()) <= attack.cost[0]


@pytest.mark.slow
@pytest.mark.parametrize("channels_last", [False, True])
def test_square_matches_torchattacks_per_sample(trained, batch, channels_last: bool) -> None:  # type: ignore[no-untyped-def]
    """Native L-inf Square makes torchattacks' random draws in its order: from the same seed and in
    the same memory layout (NCHW) the adversarial images are the same bit for bit; channels_last
    rounds the forward pass differently, which can move a near-tie accept/reject, so there the
    per-sample outcomes are compared."""
    import torchattacks

    model, _ = trained
    x, y = batch
    eps = 2 / 255
    attack = create_attack("square", model, queries=150, channels_last=channels_last)
    attack.reseed(SEED)
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=torch.Generator().manual_seed(SEED)))  # the call's seed
    adv = attack(x, y, eps)
    model.to(memory_format=torch.contiguous_format)
    ref = torchattacks.Square(model, eps=eps, n_queries=150, seed=seed)(x, y)
    assert torch.equal(_correct(model, adv, y), _correct(model, ref, y))
    fooled = ~_correct(model, ref, y)
    assert 0 < int(fooled.sum()) < len(y), "some samples fooled, some not: the comparison can fail"
    if not channels_last:
        assert torch.equal(adv[fooled], ref[fooled])
    assert float((adv - x).abs().max()) <= eps + 1e-6 and float(adv.min()) >= 0 and float(adv.max()) <= 1


def test_square_counts_one_forward_per_query_and_stops_when_fooled(trained, batch) -> None:  # type: ignore[no-untyped-def]
    model, _ = trained
    x, y = batch
    attack = create_attack("square", model, queries=40)
    out = attack.sweep(x, y, [8 / 255], mode="independent")
    forwards, backwards = attack.cost
    assert backwards == 0, "Square uses no gradients"
    # one clean pass + (init + at most `queries`) per sample still standing + the sweep's clean and final passes
    assert len(y) < forwards <= len(y) * (1 + 1 + 40) + 2 * len(y)
    assert out.correct.float().mean() < (out.clean_pred == y).float().mean()
    with pytest.raises(ValueError, match="p_init"):
        create_attack("square", model, p_init=0)


@pytest.mark.slow
@pytest.mark.parametrize(("norm", "eps"), [("Linf", 2 / 255), ("L2", 0.15)])
def test_fab_t_matches_torchattacks_and_the_reference_per_sample(trained, batch, norm: str, eps: float) -> None:  # type: ignore[no-untyped-def]
    """FAB-T has nothing random with one restart: the native run, torchattacks' FAB (multi-targeted)
    and the authors' FABAttack_PT must fool the same samples."""
    import torchattacks
    from pyautoattack.fab_pt import FABAttack_PT

    model, _ = trained
    x, y = batch
    native = _native("fab-t" if norm == "Linf" else "fab-t-l2", model, x, y, eps, steps=10, targets=3)
    library = _correct(model, torchattacks.FAB(model, norm=norm, eps=eps, steps=10, multi_targeted=True, n_classes=4)(x, y), y)
    ref = FABAttack_PT(model, norm=norm, n_restarts=1, n_iter=10, eps=eps, targeted=True, n_target_classes=3, device="cpu")
    reference = _correct(model, ref.perturb(x, y), y)
    clean = _correct(model, x, y)
    assert native.sum() < clean.sum() - 5 and native.sum() > 0, "some samples fooled, some not: the comparison can fail"
    assert torch.equal(native, library)
    assert torch.equal(native, reference)


@pytest.mark.parametrize("name", ["fab-t", "fab-t-l2"])
def test_fab_t_norms_match_torchattacks(trained, batch, name: str) -> None:  # type: ignore[no-untyped-def]
    """With one target and an eps no sample needs, torchattacks returns each sample's smallest
    fooling point: its norm is the native minimum norm. The native projection runs in float64,
    the reference's in float32, so norms agree to float32 precision over 10 steps (median relative
    difference 1e-6 to 1.3e-5 over the fixture seeds and CPUs tried), except that a rounding
    difference at a near-tie fooling check can send a trajectory elsewhere (1 sample in 45 here)."""
    import torchattacks

    model, _ = trained
    x, y = batch
    p = math.inf if name == "fab-t" else 2.0
    attack = create_attack(name, model, steps=10, targets=1)
    adv, norms, pred = attack.minimise(x, y)  # type: ignore[attr-defined]
    ref = torchattacks.FAB(model, norm="Linf" if p == math.inf else "L2", eps=100.0, steps=10, multi_targeted=True, n_classes=2)(x, y)
    ref_norm = (ref - x).flatten(1).norm(p=p, dim=1)
    clean = _correct(model, x, y)
    assert (norms[~clean] == 0).all(), "a clean mistake needs no perturbation"
    found = norms.isfinite() & clean
    assert int(found.sum()) > int(clean.sum()) // 2
    assert torch.equal(found, ~_correct(model, ref, y) & clean)
    rel = ((norms - ref_norm).abs() / ref_norm)[found]
    assert float(rel.median()) < 1e-4
    assert float((rel < 1e-3).float().mean()) >= 0.95, "float rounding may send a near-tie trajectory elsewhere, rarely"
    assert torch.allclose((adv - x).flatten(1).norm(p=p, dim=1)[found], norms[found], rtol=1e-5, atol=1e-7)
    assert (pred[found] != y[found]).all() and not _correct(model, adv[found], y[found]).any()


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_projection_matches_the_reference_and_meets_the_constraints(norm: str) -> None:
    """The native step onto the hyperplane w.(t + d) = b inside [0, 1] agrees with the reference's
    sort-and-bisect projection, reaches the hyperplane where the box allows, and stays in the box."""
    from torchattacks.attacks.fab import projection_l2, projection_linf

    from robust_attn.attacks.fab import project_to_hyperplane

    gen = torch.Generator().manual_seed(0)
    t = torch.rand(64, 300, generator=gen)
    w = torch.randn(64, 300, generator=gen) * (torch.rand(64, 300, generator=gen) > 0.1)  # some zero weights
    b = (w * t).sum(1) + torch.randn(64, generator=gen) * torch.linspace(0.1, 300, 64)  # near and far hyperplanes
    d = project_to_hyperplane(t, w, b, norm)  # type: ignore[arg-type]
    ref = (projection_linf if norm == "linf" else projection_l2)(t, w, b)
    usable = ref.isfinite().all(1)  # the reference's L2 form returns NaN on some rows near the box's limit
    assert d.isfinite().all() and float(usable.float().mean()) > 0.9
    assert torch.allclose(d[usable], ref[usable], atol=1e-5)
    assert float((t + d).min()) >= -1e-6 and float((t + d).max()) <= 1 + 1e-6
    reach = (w * (t + d)).sum(1)
    corner = (w * torch.where(w > 0, 1.0, 0.0)).sum(1), (w * torch.where(w > 0, 0.0, 1.0)).sum(1)
    feasible = (b <= corner[0]) & (b >= corner[1])
    assert 0 < int(feasible.sum()) < len(b), "both reachable and unreachable hyperplanes are tested"
    assert torch.allclose(reach[feasible], b[feasible], atol=1e-3)


@pytest.mark.slow
def test_ensemble_runs_a_minimum_norm_member_once_per_sample(trained, batch) -> None:  # type: ignore[no-untyped-def]
    """FAB-T's search does not depend on eps: in a sweep its answer at the first eps serves every
    larger one, with the outcomes of running it afresh there."""
    from robust_attn.attacks.ensemble import _MinNormAnswers

    model, _ = trained
    x, y = batch
    fab = create_attack("fab-t", model, steps=10, targets=2)
    _, norms, _ = create_attack("fab-t", model, steps=10, targets=2).minimise(x, y)  # type: ignore[attr-defined]
    found = norms[norms.isfinite() & (norms > 0)]
    # eps between the found norms' quartiles, whatever the weights: some survivors fall at the larger one, some not
    small, large = float(found.quantile(0.25)), float(found.quantile(0.6))
    answers = _MinNormAnswers.empty(x)
    ids = torch.arange(len(y))
    at_small = _correct(model, answers.ask(fab, x, y, ids, small), y)  # type: ignore[arg-type]
    spent = fab.cost
    left = at_small.nonzero().squeeze(1)
    at_large = _correct(model, answers.ask(fab, x[left], y[left], ids[left], large), y[left])  # type: ignore[arg-type]
    assert fab.cost == spent, "no new forward or backward pass at the larger eps"
    fresh = create_attack("fab-t", model, steps=10, targets=2)
    assert torch.equal(at_large, _correct(model, fresh(x[left], y[left], large), y[left]))
    assert 0 < int(at_large.sum()) < len(left), "some survivors fooled at the larger eps, some not"
    # a run stopped below a larger eps does not answer a smaller one: it is run again
    answers = _MinNormAnswers.empty(x)
    answers.ask(fab, x, y, ids, large)  # type: ignore[arg-type]
    again = _correct(model, answers.ask(fab, x, y, ids, small), y)  # type: ignore[arg-type]
    assert torch.equal(again, at_small)


def test_apgd_takes_an_expanded_input_gradient_without_writing_into_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """A model whose logits ignore its input (``0 * x.sum()``) has an expanded input gradient
    (stride 0); APGD's checkpoints write rows of the gradient in place, so it is copied first: no
    warning, and the model keeps every sample (nothing can move its output)."""
    import warnings
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).parent / "constructed"))
    from memory_models import Constant

    x = torch.rand(8, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    y = torch.full((8,), 5)
    attack = create_attack("apgd", Constant().eval(), steps=30, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        adv = attack.perturb(x, y, 8 / 255)
    assert float((adv - x).abs().amax()) <= 8 / 255 + 1e-6
    assert bool((Constant()(adv).argmax(1) == 5).all())
