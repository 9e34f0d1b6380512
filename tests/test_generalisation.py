"""Unseen data sets, the features protocol and linear probes on frozen features (the paper's
generalisation claim). Every accuracy asserted comes from a constructed model with a known answer."""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn as nn

import robust_attn as ra
from robust_attn.data import unseen as U
from robust_attn.data.dataset import ImageDataset
from robust_attn.data.shapes import SHAPE_CLASSES, _shape_mask, generate_shapes
from robust_attn.errors import DataNotFound
from robust_attn.models import VGG
from robust_attn.probes.features import FeatureProtocolError, extract_features, has_features, model_features
from robust_attn.probes.generalisation import ROW_COLUMNS, generalisation_rows, generalisation_summary
from robust_attn.stats import wilson_interval

# ---------------------------------------------------------------- unseen data sets


@pytest.mark.parametrize("name", [U.UNSEEN_CLASSES_SET, U.UNSEEN_BACKGROUNDS_SET])
def test_generated_sets_are_deterministic_per_seed_and_prefix_stable(name: str) -> None:
    a = U.load_generated(name, "test", 1100, seed=3)
    b = U.load_generated(name, "test", 40, seed=3)
    c = U.load_generated(name, "test", 40, seed=4)
    assert a.masks is not None and b.masks is not None and c.masks is not None
    assert torch.equal(a.images[:40], b.images) and torch.equal(a.labels[:40], b.labels) and torch.equal(a.masks[:40], b.masks)
    assert not torch.equal(b.images, c.images)
    train = U.load_generated(name, "train", 40, seed=3)
    assert not torch.equal(train.images, b.images), "train and test are different draws"
    assert a.image_shape == (3, 32, 32) and a.masks.shape == (1100, 32, 32)


def test_unseen_streams_differ_from_the_builtin_set() -> None:
    builtin, _, _ = generate_shapes(20, "train", 0)
    unseen = U.load_generated(U.UNSEEN_CLASSES_SET, "train", 20, seed=0).images.numpy()
    assert (builtin != unseen).mean() > 0.9, "same seed, yet no shared backgrounds with the zoo's training images"


def _render(
    mask_fn: Callable[[int, np.ndarray, np.ndarray], np.ndarray], label: int, angle: float, scale: float, grid: np.ndarray
) -> np.ndarray:
    v, u = np.meshgrid(grid, grid, indexing="ij")
    c, s = np.cos(angle), np.sin(angle)
    return mask_fn(label, (c * u + s * v) / scale, (-s * u + c * v) / scale)


def test_unseen_classes_are_not_builtin_classes() -> None:
    """IoU of each new class (canonical pose) with every built-in class at relative rotations up to
    40 degrees (both generators rotate by 20 at most) and scale ratios 0.6-1.4 stays below 0.7."""
    grid = np.linspace(-1.6, 1.6, 101)
    worst = 0.0
    for new in range(len(U.UNSEEN_CLASSES)):
        m0 = _render(U.unseen_mask, new, 0.0, 1.0, grid)
        for old in range(len(SHAPE_CLASSES)):
            for angle in np.deg2rad(np.arange(-40, 41, 10)):
                for scale in (0.6, 0.8, 1.0, 1.2, 1.4):
                    m1 = _render(_shape_mask, old, angle, scale, grid)
                    worst = max(worst, (m0 & m1).sum() / (m0 | m1).sum())
    assert 0.4 < worst < 0.7


def test_unseen_masks_have_their_analytic_areas() -> None:
    grid = np.linspace(-1, 1, 801)
    cell = (grid[1] - grid[0]) ** 2
    area = {name: _render(U.unseen_mask, i, 0.0, 1.0, grid).sum() * cell for i, name in enumerate(U.UNSEEN_CLASSES)}
    assert area["ellipse"] == pytest.approx(np.pi * 0.95 * 0.42, rel=0.01)
    assert area["frame"] == pytest.approx(1.8**2 - 1.1**2, rel=0.01)
    assert area["x-cross"] == pytest.approx(2 * 0.28 * 1.9 - 0.28**2, rel=0.02)
    assert all(0.8 < a < 2.2 for a in area.values()), area


@pytest.mark.parametrize("name", [U.UNSEEN_CLASSES_SET, U.UNSEEN_BACKGROUNDS_SET])
def test_generated_labels_and_masks(name: str) -> None:
    data = U.load_generated(name, "train", 1000)
    assert data.masks is not None
    counts = np.bincount(data.labels.numpy(), minlength=len(data.classes))
    assert len(counts) == len(data.classes) and counts.min() > 0.6 * 1000 / len(data.classes)
    masks = data.masks.numpy()
    assert masks.any(axis=(1, 2)).all(), "every image has its object"
    fraction = masks.mean(axis=(1, 2))  # unit-frame areas 0.8-3.2 at scales 4.5-9 px on 32 x 32
    assert fraction.min() > 0.01 and fraction.max() < 0.26, (fraction.min(), fraction.max())


def _novel_look(images: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Grey images, or backgrounds whose median level is outside what the built-in set draws."""
    x = images.astype(np.float32) / 255
    grey = (x == x[:, :1]).all(axis=(1, 2, 3))
    median = np.array([np.median(im[:, ~m]) for im, m in zip(x, masks)])
    return grey | (median < 0.22) | (median > 0.78)


def test_unseen_backgrounds_are_never_builtin_backgrounds() -> None:
    novel = U.load_generated(U.UNSEEN_BACKGROUNDS_SET, "test", 300)
    assert novel.masks is not None
    assert _novel_look(novel.images.numpy(), novel.masks.numpy()).all()
    images, _, masks = generate_shapes(300, "test", 0)
    assert not _novel_look(images, masks).any()


def test_as_rgb32_pads_and_repeats_grey_images() -> None:
    images = torch.arange(2 * 28 * 28, dtype=torch.int64).remainder(250).add(1).to(torch.uint8).view(2, 1, 28, 28)
    grey = ImageDataset("mnist", "test", images, torch.tensor([3, 7]), tuple("0123456789"), (0.13,), (0.31,))
    rgb = U.as_rgb32(grey)
    assert rgb.image_shape == (3, 32, 32) and rgb.mean == (0.13,) * 3
    assert torch.equal(rgb.images[:, :, 2:30, 2:30], images.repeat(1, 3, 1, 1))
    assert rgb.images.sum() == 3 * images.sum(), "the padding is zero"


def _write_fake_mnist(root: Path, n_train: int, n_test: int) -> None:
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(
            struct.pack(">IIII", 2051, n, 28, 28) + rng.integers(0, 256, n * 784, np.uint8).tobytes()
        )
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, n) + (np.arange(n) % 10).astype(np.uint8).tobytes())


def test_torchvision_sets_load_skip_or_fail(tmp_path: Path) -> None:
    _write_fake_mnist(tmp_path, 30, 20)
    (tmp_path / "cifar-10-batches-py").mkdir()
    (tmp_path / "cifar-10-batches-py" / "data_batch_1").write_bytes(b"not a pickle")
    loaded, skipped = U.unseen_datasets(("mnist", "svhn", "fashionmnist"), data_dir=tmp_path, n_train=25, n_test=10)
    assert [d.name for d in loaded] == ["mnist"]
    assert loaded[0].train.image_shape == (3, 32, 32) and len(loaded[0].train) == 25 and len(loaded[0].test) == 10
    assert [s.name for s in skipped] == ["svhn", "fashionmnist"]
    assert all(s.reason.startswith(f"{s.name}: skipped") and "\n" not in s.reason for s in skipped)
    with pytest.raises(DataNotFound, match="cifar10 train split not found or corrupted") as err:
        U.unseen_datasets(("cifar10",), data_dir=tmp_path)
    assert not isinstance(err.value, U.UnseenDataAbsent), "present-but-broken files are an error, not a skip"
    _, skipped = U.unseen_datasets(("cifar10", "mnist"), data_dir=None, exclude=("CIFAR-10",))
    assert [s.reason for s in skipped] == ["cifar10: skipped, the models were trained on it", "mnist: skipped, no data_dir given"]


# ---------------------------------------------------------------- the features protocol


def _classifier_inputs(model: Any, x: torch.Tensor) -> torch.Tensor:
    """The inputs of the model's linear classifier(s), caught by hooks, concatenated in stage order."""
    linears = [h if isinstance(h, nn.Linear) else h[-1] for h in model.heads]
    seen: list[torch.Tensor] = []
    handles = [m.register_forward_hook(lambda mod, inp, out: seen.append(inp[0])) for m in linears]
    model(x)
    for h in handles:
        h.remove()
    return torch.cat(seen, dim=1)


@pytest.mark.parametrize("name", ra.list_models())
def test_features_of_every_zoo_architecture(name: str) -> None:
    torch.manual_seed(0)
    model: Any = ra.create_model(name).eval()  # the families at their own defaults, the VGGs at the zoo's compact width
    if isinstance(model, VGG):
        model = ra.create_model(name, layout="compact", width=0.125, dropout=0.0).eval()
    with torch.no_grad():
        for m in model.modules():  # non-trivial BN statistics, so the heads' BN matters
            if isinstance(m, nn.BatchNorm1d):
                m.running_mean.uniform_(-1, 1)  # type: ignore[union-attr]
                m.running_var.uniform_(0.5, 2)  # type: ignore[union-attr]
        x = torch.rand(3, 3, 32, 32)
        f = model_features(model, x)
        assert f.dim() == 2 and f.shape[0] == 3
        if isinstance(model, VGG):
            assert has_features(model)
            assert torch.equal(f, _classifier_inputs(model, x)), "features are exactly what the linear classifier reads"
            heads: list[Any] = list(model.heads)
            assert f.shape[1] == sum(h.in_features if isinstance(h, nn.Linear) else h[-1].in_features for h in heads)
            assert (f >= 0).all(), "after the heads' ReLU"


def test_zoo_feature_dimensions() -> None:
    dims = {
        n: model_features(ra.create_model(n, layout="compact", width=0.125), torch.rand(2, 3, 32, 32)).shape[1]
        for n in ("vgg", "vgg-att2-pc", "vgg-att3-pc")
    }
    assert dims == {"vgg": 64, "vgg-att2-pc": 64 + 64, "vgg-att3-pc": 32 + 64 + 64}


class _Trunk(nn.Module):
    """torchvision's convention: ``features`` is a submodule returning maps, not the protocol."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
        self.head = nn.Linear(4, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))


def test_fallback_is_the_input_of_the_last_linear() -> None:
    torch.manual_seed(0)
    x = torch.rand(4, 3, 8, 8)
    trunk = _Trunk().eval()
    assert not has_features(trunk)
    assert torch.allclose(model_features(trunk, x), trunk.features(x).mean(dim=(2, 3)))
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(192, 7), nn.ReLU(), nn.Linear(7, 3))
    assert torch.allclose(model_features(mlp, x), torch.relu(mlp[1](x.flatten(1))))
    with pytest.raises(FeatureProtocolError, match="neither a features"):
        model_features(nn.Sequential(nn.Conv2d(3, 2, 1), nn.Flatten()), x)


def test_features_returning_maps_is_a_protocol_error() -> None:
    class Maps(_Trunk):
        def features(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
            return x

    with pytest.raises(FeatureProtocolError, match=r"must return a \(B, D\) tensor, got \(2, 3, 8, 8\)"):
        model_features(Maps(), torch.rand(2, 3, 8, 8))


def test_extract_features_batches_and_restores_mode() -> None:
    torch.manual_seed(0)
    model = ra.create_model("vgg-att2-pc", layout="compact", width=0.125).train()
    data = _coded_split("noise", "test", 20, 4, 0, code=False)
    a, b = extract_features(model, data, batch_size=7), extract_features(model, data, batch_size=20)
    assert model.training and a.shape == (20, 128) and a.dtype == np.float32
    assert np.allclose(a, b, atol=1e-5), "eval mode: a sample's features do not depend on its batch"


# ---------------------------------------------------------------- linear probes


class _Coded(nn.Module):
    """Reads the class code written into pixel (0, 0, 0); ``features`` is its one-hot identity, or
    (``random``) a fixed random projection of the image, independent of the label."""

    def __init__(self, classes: int, random: bool = False) -> None:
        super().__init__()
        self.classes, self.random = classes, random
        self.projection = nn.Linear(3 * 32 * 32, 32)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if self.random:
            return self.projection(x.flatten(1))
        return nn.functional.one_hot((x[:, 0, 0, 0] * 255 / 20).round().long(), self.classes).float()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


def _coded_split(name: str, split: str, n: int, classes: int, seed: int, code: bool) -> ImageDataset:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    images = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
    if code:
        images[:, 0, 0, 0] = labels * 20
    return ImageDataset(
        name, split, torch.from_numpy(images), torch.from_numpy(labels), tuple(map(str, range(classes))), (0.5,) * 3, (0.25,) * 3
    )


def _coded_set(name: str, classes: int, code: bool, n_train: int = 2000, n_test: int = 1000) -> U.UnseenSplits:
    return U.UnseenSplits(
        name, _coded_split(name, "train", n_train, classes, 1, code), _coded_split(name, "test", n_test, classes, 2, code)
    )


def test_one_hot_class_features_give_perfect_probes() -> None:
    data = _coded_set("coded", 8, code=True, n_train=400, n_test=300)
    rows = generalisation_rows(_Coded(8), [data])
    assert tuple(rows) == ROW_COLUMNS and len(rows["sample"]) == 300
    assert rows["correct"].all() and np.array_equal(rows["pred"], rows["label"])
    assert set(rows["feature_dim"]) == {8} and set(rows["n_train"]) == {400} and rows["converged"].all()


def test_label_free_features_give_chance() -> None:
    torch.manual_seed(0)
    data = _coded_set("noise", 10, code=False)
    model = _Coded(10, random=True)
    rows = generalisation_rows(model, [data])
    accuracy = rows["correct"].mean()
    assert 0.05 < accuracy < 0.16, accuracy  # chance 0.10; sd 0.0095 over 1,000 test images
    assert np.array_equal(generalisation_rows(model, [data])["pred"], rows["pred"]), "the probe is deterministic"
    assert len(generalisation_rows(model, [])["sample"]) == 0


def test_summary_has_wilson_intervals_and_skipped_sets() -> None:
    rows = generalisation_rows(_Coded(4), [_coded_set("a", 4, True, 200, 50), _coded_set("b", 4, True, 200, 70)])
    rows["correct"][:10] = False  # ten mistakes on set a
    summary = generalisation_summary(rows, [U.Skipped("svhn", "svhn: skipped, no data_dir given")])
    assert list(summary["dataset"]) == ["a", "b", "svhn"]
    assert list(summary["n"]) == [50, 70, 0] and list(summary["correct"]) == [40, 70, 0]
    assert summary["accuracy"][0] == pytest.approx(0.8) and np.isnan(summary["accuracy"][2])
    assert (summary["ci_low"][0], summary["ci_high"][0]) == pytest.approx(wilson_interval(40, 50))
    assert list(summary["skipped"]) == ["", "", "svhn: skipped, no data_dir given"]
