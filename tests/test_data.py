"""Built-in data generation and torchvision loading from files in the real on-disk formats."""

from __future__ import annotations

import pickle
import struct
import time
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch

import robust_attn as ra
from robust_attn.data import SHAPE_CLASSES, generate_shapes


def test_builtin_is_deterministic_and_prefix_stable() -> None:
    a = ra.load_dataset("builtin", "train", n=1500, seed=3)
    b = ra.load_dataset("builtin", "train", n=2500, seed=3)
    assert torch.equal(a.images, b.images[:1500]) and torch.equal(a.labels, b.labels[:1500])
    c = ra.load_dataset("builtin", "train", n=1500, seed=4)
    assert not torch.equal(a.images, c.images)
    test = ra.load_dataset("builtin", "test", n=1500, seed=3)
    assert not torch.equal(a.images, test.images)


def test_builtin_shapes_labels_masks() -> None:
    ds = ra.load_dataset("builtin", "test", n=2000)
    assert ds.images.shape == (2000, 3, 32, 32) and ds.images.dtype == torch.uint8
    assert ds.classes == SHAPE_CLASSES and len(ds.classes) == 10
    assert ds.masks is not None and ds.masks.shape == (2000, 32, 32)
    counts = torch.bincount(ds.labels, minlength=10)
    assert counts.min() > 150  # roughly balanced
    area = ds.masks.float().mean(dim=(1, 2))
    assert (area > 0.01).all() and (area < 0.5).all()  # every image has one visible object
    x, y = ds[0]
    assert x.dtype == torch.float32 and x.min() >= 0 and x.max() <= 1 and y == int(ds.labels[0])


def test_object_pixels_carry_the_object_colour() -> None:
    """The mask marks exactly the pixels painted last, so inside it colour is nearly uniform."""
    images, _, masks = generate_shapes(200, "test", seed=1)
    spreads = []
    for img, m in zip(images.astype(float), masks):
        inside = img[:, m]
        spreads.append(inside.std(axis=1).mean())
    assert np.median(spreads) < 20  # shading only; the background varies far more
    assert np.median([img.std() for img in images.astype(float)]) > 30


def test_generation_is_fast() -> None:
    t0 = time.perf_counter()
    generate_shapes(10_000, "train")
    assert time.perf_counter() - t0 < 10  # 60,000 take about 6 s on 2 cores


def test_unknown_names_and_missing_dirs(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown data set 'imagenet21k'"):
        ra.load_dataset("imagenet21k")
    with pytest.raises(FileNotFoundError, match="--data-dir"):
        ra.load_dataset("cifar10")
    with pytest.raises(FileNotFoundError, match="does not exist.*--download"):
        ra.load_dataset("cifar10", data_dir=tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="not found or corrupted.*--download"):
        ra.load_dataset("cifar10", data_dir=tmp_path)


def _write_cifar(root: Path, folder: str, files: list[str], label_key: str, meta_file: str, meta_key: str, n_classes: int) -> None:
    d = root / folder
    d.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i, f in enumerate(files):
        data = rng.integers(0, 256, (4, 3072), dtype=np.uint8)
        data[:, 0] = i  # red value of the first pixel identifies the file
        with open(d / f, "wb") as fh:
            pickle.dump({"data": data, label_key: [(i + k) % n_classes for k in range(4)]}, fh)
    with open(d / meta_file, "wb") as fh:
        pickle.dump({meta_key: [f"class{k}" for k in range(n_classes)]}, fh)


def test_cifar10_and_cifar100_real_format(tmp_path: Path) -> None:
    batches = [f"data_batch_{i}" for i in range(1, 6)]
    _write_cifar(tmp_path, "cifar-10-batches-py", [*batches, "test_batch"], "labels", "batches.meta", "label_names", 10)
    with pytest.raises(FileNotFoundError, match="--no-verify"):
        ra.load_dataset("cifar10", "train", data_dir=tmp_path)  # our files cannot match the published MD5s
    train = ra.load_dataset("cifar10", "train", data_dir=tmp_path, verify=False)
    test = ra.load_dataset("cifar10", "test", data_dir=tmp_path, verify=False, n=3)
    assert train.images.shape == (20, 3, 32, 32) and len(test) == 3
    assert train.images[4, 0, 0, 0] == 1 and train.labels[4] == 1  # second file, NHWC -> NCHW
    assert train.classes[3] == "class3" and train.mean[0] == pytest.approx(0.4914)
    _write_cifar(tmp_path, "cifar-100-python", ["train", "test"], "fine_labels", "meta", "fine_label_names", 100)
    c100 = ra.load_dataset("cifar100", "test", data_dir=tmp_path, verify=False)
    assert len(c100.classes) == 100 and c100.labels.tolist() == [1, 2, 3, 4]


def test_svhn_real_format(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (32, 32, 3, 5), dtype=np.uint8)  # SVHN's .mat layout: H, W, C, N
    y = np.array([[10], [1], [2], [3], [4]], dtype=np.uint8)  # digit 0 is stored as 10
    scipy.io.savemat(tmp_path / "test_32x32.mat", {"X": x, "y": y})
    ds = ra.load_dataset("svhn", "test", data_dir=tmp_path, verify=False)
    assert ds.images.shape == (5, 3, 32, 32) and ds.labels.tolist() == [0, 1, 2, 3, 4]
    assert torch.equal(ds.images[2, :, 5, 7], torch.from_numpy(x[5, 7, :, 2]))  # .mat stores (H, W, C, N)


def _write_idx(path: Path, arr: np.ndarray) -> None:
    with open(path, "wb") as fh:
        fh.write(struct.pack(">HBB", 0, 0x08, arr.ndim))
        fh.write(struct.pack(">" + "I" * arr.ndim, *arr.shape))
        fh.write(arr.astype(np.uint8).tobytes())


def write_mnist(root: Path, folder: str) -> None:
    """torchvision's raw idx files of MNIST or FashionMNIST: 6 training and 4 test digits."""
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 6), ("t10k", 4)):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)


@pytest.mark.parametrize("name,folder", [("mnist", "MNIST"), ("fashionmnist", "FashionMNIST")])
def test_mnist_family_real_format(tmp_path: Path, name: str, folder: str) -> None:
    write_mnist(tmp_path, folder)
    ds = ra.load_dataset(name, "train", data_dir=tmp_path)
    assert ds.images.shape == (6, 1, 28, 28) and ds.labels.tolist() == [0, 1, 2, 3, 4, 5]
    assert len(ds.classes) == 10
    model = ra.create_model("vgg", width=0.0625, in_channels=1, image_size=28, mean=ds.mean, std=ds.std).eval()
    assert model(ds.images.float() / 255).shape == (6, 10)
