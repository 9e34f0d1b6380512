"""224x224 images and 1,000 classes through the engine: native FGSM, PGD, APGD-CE and the AutoAttack
ensemble against torchattacks and the authors' code (pyautoattack) per sample on timm's resnet18
(fixed random weights, 10 classes) and decoded JPEGs; the probes' maps at the image's size; and
the targeted members' classes among 1,000 logits (the 9 ranked highest after the true one, as
AutoAttack picks them).

Labels are the model's own predictions, so every sample starts correct and what an attack fools
is the model's doing, not the labels'. Seconds are printed (native against the reference: the time
ratio), never asserted."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image

import robust_attn as ra
from robust_attn.attacks import create_attack

SIZE = 224
SEED = 5  # the random starts' seed, native and reference


@pytest.fixture(autouse=True, scope="module")
def quiet_reference() -> Iterator[None]:
    logger = logging.getLogger("auto-attack")
    level = logger.level
    logger.setLevel(logging.WARNING)  # pyautoattack logs every step at debug level
    yield
    logger.setLevel(level)


def _write_jpegs(root: Path, count: int) -> None:
    """Smooth random 224x224 photographs-to-be (two scales of structure), quality-90 JPEGs."""
    for i in range(count):
        rng = np.random.default_rng(i)
        coarse, fine = (
            np.asarray(Image.fromarray(rng.integers(0, 256, (k, k, 3), dtype=np.uint8)).resize((SIZE, SIZE), Image.Resampling.BICUBIC))
            for k in (8, 32)
        )
        folder = root / f"class{i % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray((0.7 * coarse + 0.3 * fine).astype(np.uint8)).save(folder / f"{i}.jpg", quality=90)


Case = tuple[nn.Module, torch.Tensor, torch.Tensor]


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Case:
    """timm's resnet18 (seed 0, 10 classes) and 6 decoded 224x224 JPEGs labelled with its predictions."""
    import timm

    root = tmp_path_factory.mktemp("jpegs")
    _write_jpegs(root, 6)
    data = ra.load_dataset("imagefolder", data_dir=root, stream=True)
    _, x, _ = next(data.batches(6))
    assert x.shape == (6, 3, SIZE, SIZE)
    torch.manual_seed(0)
    model = timm.create_model("resnet18", num_classes=10).eval()
    with torch.no_grad():
        y = model(x).argmax(1)
    return model, x, y


def _correct(model: nn.Module, adv: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(adv).argmax(1) == y


def _timed(label: str, work: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = work()
    seconds = time.perf_counter() - t0
    print(f"{label}: {seconds:.2f} s")
    return out, seconds


# -- attacks against the references at 224 px -------------------------------------------------------
def test_fgsm_at_224_matches_torchattacks_image_for_image(case: Case) -> None:
    """The native FGSM sweep (one gradient for every eps) against torchattacks' FGSM run per eps:
    the same samples fooled at each eps, and the same adversarial images."""
    import torchattacks

    model, x, y = case
    grid = [0.1 / 255, 0.25 / 255, 0.5 / 255, 1 / 255, 2 / 255]
    native, t_native = _timed("native FGSM sweep, 5 eps", lambda: create_attack("fgsm", model).sweep(x, y, grid, mode="independent"))
    reference, t_ref = _timed(
        "torchattacks FGSM per eps", lambda: torch.stack([_correct(model, torchattacks.FGSM(model, eps=e)(x, y), y) for e in grid])
    )
    print(f"time ratio torchattacks / native: {t_ref / t_native:.2f}")
    assert native.correct[0].all() and not native.correct[-1].all(), "some samples fooled, some not: the comparison can fail"
    assert torch.equal(native.correct, reference)
    for eps in (0.5 / 255, 2 / 255):
        ours, theirs = create_attack("fgsm", model)(x, y, eps), torchattacks.FGSM(model, eps=eps)(x, y)
        assert float((ours - theirs).abs().max()) <= 1e-6, eps


def test_pgd_without_random_start_at_224_matches_torchattacks(case: Case) -> None:
    """PGD-5 from the clean image (step 2.5 eps / 5): the same fooled samples and the same images."""
    import torchattacks

    model, x, y = case
    eps = 0.5 / 255
    ours, t_native = _timed("native PGD-5", lambda: create_attack("pgd", model, steps=5, random_start=False)(x, y, eps))
    theirs, t_ref = _timed(
        "torchattacks PGD-5", lambda: torchattacks.PGD(model, eps=eps, alpha=2.5 * eps / 5, steps=5, random_start=False)(x, y)
    )
    print(f"time ratio torchattacks / native: {t_ref / t_native:.2f}")
    fooled = ~_correct(model, ours, y)
    assert 0 < int(fooled.sum()) < len(y)
    assert torch.equal(fooled, ~_correct(model, theirs, y))
    assert float((ours - theirs).abs().max()) <= 1e-6 and float((ours - x).abs().max()) <= eps + 1e-6


def test_apgd_ce_at_224_matches_torchattacks_and_the_reference(case: Case) -> None:
    """APGD-CE (5 steps) from the same random start as torchattacks' APGD and the authors'
    APGDAttack (torch.manual_seed(SEED)): the same samples fooled."""
    import torchattacks
    from pyautoattack.autopgd_base import APGDAttack

    model, x, y = case
    eps = 0.5 / 255

    def native() -> torch.Tensor:
        attack = create_attack("apgd", model, steps=5, seed=SEED)
        attack.reseed(SEED)
        return _correct(model, attack(x, y, eps), y)

    ours, t_native = _timed("native APGD-CE", native)
    library, t_lib = _timed("torchattacks APGD", lambda: _correct(model, torchattacks.APGD(model, eps=eps, steps=5, seed=SEED)(x, y), y))
    ref = APGDAttack(model, n_iter=5, norm="Linf", eps=eps, seed=SEED, loss="ce", device="cpu")
    reference, t_ref = _timed("pyautoattack APGDAttack", lambda: _correct(model, ref.perturb(x, y), y))
    print(f"time ratio torchattacks / native: {t_lib / t_native:.2f}, pyautoattack / native: {t_ref / t_native:.2f}")
    assert 0 < int((~ours).sum()) < len(y)
    assert torch.equal(ours, library) and torch.equal(ours, reference)


@pytest.mark.slow
def test_autoattack_at_224_matches_the_reference_per_sample(case: Case) -> None:
    """The ``autoattack`` ensemble (APGD-CE, APGD-T, FAB-T, Square; shrunk) against the authors'
    AutoAttack with the same members and parameters, each member from the reference's seed: the
    same samples fooled, APGD-T fooling some that APGD-CE left."""
    from pyautoattack import AutoAttack
    from pyautoattack.autopgd_base import APGDAttack, APGDAttack_targeted
    from pyautoattack.fab_pt import FABAttack_PT
    from pyautoattack.square import SquareAttack

    model, x, y = case
    eps = 0.25 / 255
    attack = create_attack("autoattack", model, steps=3, targets=2, fab_steps=3, square_queries=10)
    for _, member in attack.members:  # type: ignore[attr-defined]
        member.reseed(SEED)
    out, t_native = _timed("native autoattack", lambda: attack.sweep(x, y, [eps]))
    aa = AutoAttack(
        model, norm="Linf", eps=eps, version="custom", attacks=["apgd-ce", "apgd-t", "fab-t", "square"], seed=SEED, device="cpu"
    )
    aa.apgd = APGDAttack(model, n_iter=3, norm="Linf", eps=eps, seed=SEED, n_restarts=1, device="cpu")
    aa.apgd_targeted = APGDAttack_targeted(model, n_iter=3, norm="Linf", eps=eps, seed=SEED, n_target_classes=2, device="cpu")
    aa.fab = FABAttack_PT(model, n_restarts=1, n_iter=3, eps=eps, seed=SEED, n_target_classes=2, norm="Linf", device="cpu")
    aa.square = SquareAttack(
        model, p_init=0.8, n_queries=10, eps=eps, norm="Linf", n_restarts=1, seed=SEED, device="cpu", resc_schedule=False
    )
    (_, y_adv), t_ref = _timed("pyautoattack AutoAttack", lambda: aa.run_standard_evaluation(x, y, batch_size=len(x)))
    print(f"time ratio pyautoattack / native: {t_ref / t_native:.2f}")
    codes = out.columns["fooled_by"][0]
    assert int((codes == 1).sum()) > 0, "APGD-T must fool a survivor of APGD-CE for the comparison to cover it"
    assert 0 < int((~out.correct[0]).sum()) < len(y)
    assert torch.equal(out.correct[0], y_adv == y)


# -- the probes at 224 px ----------------------------------------------------------------------------
class _GridCam(nn.Module):
    """The image averaged over 32 x 32 cells (a 7 x 7 grid at 224 px); a 1 x 1 convolution reads the
    red channel (the CAM layer, 7 x 7, then its ReLU) and class 0's logit is its sum, class 1's a
    constant 4.5. The gradient of class 0's logit at that layer is 1 everywhere, so Grad-CAM is the
    red map itself: upsampled to the image it marks the red cells."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 1, 1, bias=False)
        self.relu = nn.ReLU()
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor([1.0, 0.0, 0.0])[None, :, None, None])

    def red(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv(nn.functional.avg_pool2d(x, 32)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = self.red(x).flatten(1).sum(1)
        return torch.stack([total, torch.full_like(total, 4.5)], dim=1)


class _GridAttention(_GridCam):
    """The same model with the 7 x 7 red map as its one attention map."""

    def attention_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [self.red(x)[:, 0]]


def _red_block(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Images whose red channel is 1 on the 3 x 3 cells from (1, 1) (pixels 32-127) and 0 elsewhere
    (green and blue random), and that block as the ground-truth mask."""
    x = torch.rand(n, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    mask = torch.zeros(n, SIZE, SIZE, dtype=torch.bool)
    mask[:, 32:128, 32:128] = True
    x[:, 0] = mask.float()
    return x, mask


def test_the_probes_resize_attention_maps_and_cams_to_224_images() -> None:
    """A 7 x 7 attention map and a 7 x 7 CAM are upsampled to the 224 x 224 image: the binarised
    map holds the whole red block and stays within one cell of it, the segmentation rows score it
    against the 224 x 224 masks, and Grad-CAM (the same map) scores the same."""
    from robust_attn.probes.maps import binarise, jaccard
    from robust_attn.probes.study import probe_model

    x, mask = _red_block(3)
    y = torch.zeros(3, dtype=torch.long)
    attentive = _GridAttention().eval()
    assert torch.equal(attentive(x).argmax(1), y), "9 red cells: class 0's logit 9 > 4.5"
    out = probe_model(attentive, create_attack("fgsm", attentive), x, y, mask, [1 / 255], n_examples=2)
    maps = torch.from_numpy(out.examples["maps"].astype(np.float32))  # (eps shown, stages, examples, H, W)
    assert maps.shape == (2, 1, 2, SIZE, SIZE)
    marked = binarise(maps[0, 0])
    near = torch.zeros(SIZE, SIZE, dtype=torch.bool)
    near[:160, :160] = True  # the block and the cells around it
    assert (marked >= mask[:2]).all() and (marked <= near).all()
    seg = out.segmentation
    clean = (seg["method"] == "attention") & (seg["stage"] == "s1") & (seg["eps"] == 0)
    np.testing.assert_allclose(seg["jaccard"][clean][:2], jaccard(marked, mask[:2]).numpy(), rtol=1e-6)
    assert 0.4 < float(seg["jaccard"][clean].min()) < 0.9

    cam = probe_model(_GridCam().eval(), create_attack("fgsm", _GridCam().eval()), x, y, mask, [1 / 255]).segmentation
    for method in ("grad-cam", "grad-cam++"):
        rows = (cam["method"] == method) & (cam["eps"] == 0)
        np.testing.assert_allclose(cam["jaccard"][rows], seg["jaccard"][clean], rtol=1e-5, err_msg=method)


def test_the_zoo_attention_architecture_probes_at_224() -> None:
    """VGG-att3-pc built for 224 px (compact, width 1/8, random weights): its three stages' maps come
    back at 224 x 224, and every drift and segmentation row is written."""
    from robust_attn.probes.study import probe_model

    torch.manual_seed(0)
    model = ra.create_model("vgg-att3-pc", layout="compact", width=0.125, image_size=SIZE).eval()
    x, mask = _red_block(2)
    y = model(x).argmax(1)
    out = probe_model(model, create_attack("fgsm", model), x, y, mask, [1 / 255], n_examples=2)
    assert out.stages == ["l1", "l2", "l3"] and out.examples["maps"].shape == (2, 3, 2, SIZE, SIZE)
    assert len(out.drift["sample"]) == 2 * 3 * 2  # eps (0 and 1/255) x stages x samples
    jaccard = out.segmentation["jaccard"][out.segmentation["method"] == "attention"]
    assert len(jaccard) == 2 * 4 * 2 and ((jaccard >= 0) & (jaccard <= 1)).all()  # the 3 stages and their mean


def test_a_224_model_without_attention_gets_224_cams(case: Case) -> None:
    """resnet18 at 224: the CAM layer is found (layer4's last activation, 7 x 7) and every saliency
    map comes back at the image's size."""
    from robust_attn.probes.cam import cam_layer
    from robust_attn.probes.study import baseline_maps

    model, x, y = case
    layer = cam_layer(model, x[:2])
    assert layer is not None
    maps = baseline_maps(model, x[:2], y[:2], layer)
    assert set(maps) == {"gradient saliency", "grad-cam", "grad-cam++"}
    for name, m in maps.items():
        assert m.shape == (2, SIZE, SIZE) and bool(torch.isfinite(m).all()), name


# -- targets among 1,000 classes ---------------------------------------------------------------------
class _Linear1000(nn.Module):
    """Logits W x for 1,000 classes on 3 x 4 x 4 images; column j of W is 10 times a random
    permutation of 0 .. 999 (numpy's, the same on every machine), so the image with a 1 at pixel j
    and 0 elsewhere has its own ranking of the classes, 10 apart from one to the next."""

    w: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        rng = np.random.default_rng(3)
        columns = np.stack([rng.permutation(1000) for _ in range(48)], axis=1)
        self.register_buffer("w", torch.from_numpy(10.0 * columns).float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1) @ self.w.T


def _thousand_classes() -> tuple[nn.Module, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The model, 5 one-pixel images, their labels (its predictions) and the 9 classes ranked
    after the label, by clean logit."""
    model = _Linear1000().eval()
    x = torch.zeros(5, 48)
    x[torch.arange(5), torch.tensor([0, 7, 19, 30, 47])] = 1.0
    x = x.view(5, 3, 4, 4)
    ranked = model.w[:, [0, 7, 19, 30, 47]].T.argsort(dim=1, descending=True)
    with torch.no_grad():
        assert torch.equal(model(x).argsort(dim=1, descending=True)[:, :10], ranked[:, :10])
    assert len({tuple(r) for r in ranked[:, :10].tolist()}) == 5, "each image ranks the classes its own way"
    return model, x, ranked[:, 0], ranked[:, 1:10]


TINY_EPS = 1e-6  # moves a logit by at most 48 * 9990 * 1e-6 < 0.5, the gaps are 10: nothing is fooled, every target runs


def _recorded(monkeypatch: pytest.MonkeyPatch, cls: type, method: str, target_arg: int, ids_arg: int | None) -> list[tuple[Any, Any]]:
    """Calls of ``cls.method`` from now on, as (sample ids or None, target classes)."""
    calls: list[tuple[Any, Any]] = []
    original = getattr(cls, method)

    def spy(self: Any, *args: Any) -> Any:
        calls.append((None if ids_arg is None else args[ids_arg].clone(), args[target_arg].clone()))
        return original(self, *args)

    monkeypatch.setattr(cls, method, spy)
    return calls


def _targets_per_sample(calls: list[tuple[Any, Any]], n: int) -> torch.Tensor:
    """(n, runs) target classes, each sample's in the order its runs came."""
    rows: list[list[int]] = [[] for _ in range(n)]
    for ids, target in calls:
        for i, t in zip(range(n) if ids is None else ids.tolist(), target.tolist()):
            rows[i].append(t)
    return torch.tensor(rows)


def test_apgd_t_aims_at_the_9_classes_ranked_after_the_label_among_1000(monkeypatch: pytest.MonkeyPatch) -> None:
    """With 1,000 classes APGD-T runs 9 targets per sample: the classes of the 2nd to the 10th
    highest clean logit, in that order, as the authors' APGDAttack_targeted picks them."""
    from pyautoattack.autopgd_base import APGDAttack_targeted

    from robust_attn.attacks.apgd import APGDT
    from robust_attn.attacks.base import DEFAULT_TARGETS

    model, x, y, expected = _thousand_classes()
    calls = _recorded(monkeypatch, APGDT, "run_once", target_arg=3, ids_arg=6)
    attack = create_attack("apgd-t", model, steps=2)
    assert attack.targets == DEFAULT_TARGETS == 9  # type: ignore[attr-defined]
    attack.check_data(1000, (3, 4, 4))
    out = attack.sweep(x, y, [TINY_EPS])
    assert out.correct.all(), "nothing fooled: every sample runs every target"
    assert torch.equal(_targets_per_sample(calls, len(y)), expected)

    reference = APGDAttack_targeted(model, n_iter=2, eps=TINY_EPS, seed=SEED, device="cpu")
    assert reference.n_target_classes == DEFAULT_TARGETS
    seen: list[torch.Tensor] = []
    original = reference.attack_single_run

    def spy(*args: Any) -> Any:
        seen.append(reference.y_target.clone())  # set by perturb just before each run
        return original(*args)

    monkeypatch.setattr(reference, "attack_single_run", spy)
    reference.perturb(x, y)
    assert torch.equal(torch.stack(seen, dim=1), expected)


def test_the_autoattack_ensemble_aims_its_targeted_members_at_the_top_9_of_1000(monkeypatch: pytest.MonkeyPatch) -> None:
    """The ``autoattack`` ensemble on a 1,000-class model: its APGD-T and FAB-T members each run the
    9 classes ranked after the label (AutoAttack's standard version sets 9 for both)."""
    from pyautoattack import AutoAttack

    from robust_attn.attacks.apgd import APGDT
    from robust_attn.attacks.fab import FABT

    model, x, y, expected = _thousand_classes()
    standard = AutoAttack(model, norm="Linf", eps=TINY_EPS, version="standard", device="cpu")
    assert standard.apgd_targeted.n_target_classes == standard.fab.n_target_classes == 9
    apgd_calls = _recorded(monkeypatch, APGDT, "run_once", target_arg=3, ids_arg=6)
    fab_calls = _recorded(monkeypatch, FABT, "_run_target", target_arg=2, ids_arg=None)
    attack = create_attack("autoattack", model, steps=2, fab_steps=2, square_queries=2)
    attack.check_data(1000, (3, 4, 4))
    out = attack.sweep(x, y, [TINY_EPS])
    assert out.correct.all()
    assert torch.equal(_targets_per_sample(apgd_calls, len(y)), expected)
    assert torch.equal(_targets_per_sample(fab_calls, len(y)), expected)
