"""CIFAR-10-C / CIFAR-100-C loading from small files written in the published layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from robust_attn.data import cifar_c
from robust_attn.data.cifar_c import CIFAR_C_CORRUPTIONS, load_cifar_c
from robust_attn.errors import DataError, DataNotFound

BLOCK = 12  # images per severity (10,000 in the real files)


def write_release(root: Path, folder: str = "CIFAR-10-C", corruptions: tuple[str, ...] = ("fog", "spatter"), classes: int = 10) -> Path:
    """<root>/<folder>/<corruption>.npy (5 x BLOCK, 32, 32, 3) and labels.npy, as published.

    Pixel [row, 0, 0] holds (severity, index in block, corruption number) so each read can be
    traced back to the row it came from."""
    path = root / folder
    path.mkdir(parents=True)
    for number, name in enumerate(corruptions):
        images = np.zeros((5 * BLOCK, 32, 32, 3), np.uint8)
        for severity in range(1, 6):
            rows = slice((severity - 1) * BLOCK, severity * BLOCK)
            images[rows, :, :, 0] = severity
            images[rows, 0, 0, 1] = np.arange(BLOCK)
            images[rows, 0, 0, 2] = number
        np.save(path / f"{name}.npy", images)
    labels = np.tile(np.arange(BLOCK) * 7 % classes, 5).astype(np.uint8)  # as in the release: repeated per block
    np.save(path / "labels.npy", labels)
    return path


def test_reads_each_severity_block_with_its_labels(tmp_path: Path) -> None:
    write_release(tmp_path)
    for severity in range(1, 6):
        ds = load_cifar_c("cifar10c", tmp_path, "fog", severity)
        assert ds.images.shape == (BLOCK, 3, 32, 32) and ds.images.dtype == torch.uint8
        assert (ds.images[:, 0] == severity).all()  # NCHW: channel 0 carries the severity
        assert torch.equal(ds.images[:, 1, 0, 0], torch.arange(BLOCK, dtype=torch.uint8))
        assert torch.equal(ds.labels, torch.arange(BLOCK) * 7 % 10) and ds.labels.dtype == torch.int64
    assert ds.name == "cifar10c" and ds.split == "test"
    assert ds.classes[:3] == ("airplane", "automobile", "bird") and len(ds.classes) == 10
    assert ds.mean == (0.4914, 0.4822, 0.4465) and ds.std == (0.2470, 0.2435, 0.2616)
    spatter = load_cifar_c("CIFAR-10-C", tmp_path, "spatter", 2)  # a held-out corruption the release also ships
    assert (spatter.images[:, 2, 0, 0] == 1).all()


def test_first_n_rows_and_cifar100(tmp_path: Path) -> None:
    write_release(tmp_path)
    ds = load_cifar_c("cifar10c", tmp_path, "fog", 4, n=5)
    assert len(ds) == 5 and torch.equal(ds.images[:, 1, 0, 0], torch.arange(5, dtype=torch.uint8))
    assert len(load_cifar_c("cifar10c", tmp_path, "fog", 4, n=10_000)) == BLOCK
    assert len(load_cifar_c("cifar10c", tmp_path, "fog", 4, n=0)) == 0
    write_release(tmp_path, "CIFAR-100-C", classes=100)
    ds = load_cifar_c("cifar100c", tmp_path, "fog", 5)
    assert ds.name == "cifar100c" and len(ds.classes) == 100 and ds.classes[-1] == "worm"
    assert ds.mean == (0.5071, 0.4865, 0.4409) and int(ds.labels.max()) == 77


def test_reads_only_through_a_memory_map(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_release(tmp_path)
    modes = []
    real_load = np.load

    def spy(path: Path, **kwargs: object) -> np.ndarray:
        modes.append(kwargs.get("mmap_mode"))
        return real_load(path, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(cifar_c.np, "load", spy)
    load_cifar_c("cifar10c", tmp_path, "fog", 3)
    assert modes == ["r", "r"]  # images and labels


def test_corruption_list_is_the_release() -> None:
    assert len(CIFAR_C_CORRUPTIONS) == 19 and CIFAR_C_CORRUPTIONS[:3] == ("gaussian_noise", "shot_noise", "impulse_noise")
    assert set(CIFAR_C_CORRUPTIONS[15:]) == {"speckle_noise", "gaussian_blur", "spatter", "saturate"}


def one_line(err: pytest.ExceptionInfo[BaseException]) -> str:
    text = str(err.value)
    assert "\n" not in text
    return text


def test_missing_folder_and_files_name_the_path_and_the_download(tmp_path: Path) -> None:
    with pytest.raises(DataNotFound) as err:
        load_cifar_c("cifar10c", tmp_path, "fog", 1)
    text = one_line(err)
    assert str(tmp_path / "CIFAR-10-C") in text and "zenodo.org/records/2535967" in text and "CIFAR-10-C.tar" in text
    assert isinstance(err.value, FileNotFoundError)
    with pytest.raises(DataNotFound, match="zenodo.org/records/3555552"):
        load_cifar_c("cifar100c", tmp_path, "fog", 1)
    path = write_release(tmp_path)
    with pytest.raises(DataNotFound) as err:
        load_cifar_c("cifar10c", tmp_path, "frost", 1)
    assert str(path / "frost.npy") in one_line(err)
    (path / "labels.npy").unlink()
    with pytest.raises(DataNotFound) as err:
        load_cifar_c("cifar10c", tmp_path, "fog", 1)
    assert str(path / "labels.npy") in one_line(err)


@pytest.mark.parametrize(
    "images,match",
    [
        (np.zeros((60, 32, 32, 1), np.uint8), r"expected uint8 \(5 x N, 32, 32, 3\)"),
        (np.zeros((60, 32, 32, 3), np.float32), r"float32 \(60, 32, 32, 3\)"),
        (np.zeros((60, 3, 32, 32), np.uint8), r"expected uint8"),
        (np.zeros((58, 32, 32, 3), np.uint8), r"58 rows, not a positive multiple of 5"),
    ],
)
def test_malformed_image_files_are_data_errors(tmp_path: Path, images: np.ndarray, match: str) -> None:
    path = write_release(tmp_path)
    np.save(path / "fog.npy", images)
    with pytest.raises(DataError, match=match) as err:
        load_cifar_c("cifar10c", tmp_path, "fog", 1)
    assert not isinstance(err.value, DataNotFound) and str(path / "fog.npy") in one_line(err)


@pytest.mark.parametrize(
    "labels,match",
    [
        (np.zeros(50, np.uint8), r"expected 60 integer labels"),
        (np.zeros((60, 1), np.uint8), r"expected 60 integer labels"),
        (np.zeros(60, np.float32), r"expected 60 integer labels"),
        (np.full(60, 10, np.uint8), r"labels outside 0..9"),
    ],
)
def test_malformed_labels_are_data_errors(tmp_path: Path, labels: np.ndarray, match: str) -> None:
    path = write_release(tmp_path)
    np.save(path / "labels.npy", labels)
    with pytest.raises(DataError, match=match) as err:
        load_cifar_c("cifar10c", tmp_path, "fog", 1)
    assert str(path / "labels.npy") in one_line(err)


def test_unreadable_file_and_bad_arguments(tmp_path: Path) -> None:
    path = write_release(tmp_path)
    (path / "fog.npy").write_bytes(b"<html>not a numpy file</html>")
    with pytest.raises(DataError, match="is not a readable .npy file") as err:
        load_cifar_c("cifar10c", tmp_path, "fog", 1)
    one_line(err)
    for severity in (0, 6, True, 2.0):
        with pytest.raises(DataError, match="severity must be one of 1, 2, 3, 4, 5"):
            load_cifar_c("cifar10c", tmp_path, "spatter", severity)  # type: ignore[arg-type]
    with pytest.raises(DataError, match="unknown CIFAR-10-C corruption 'fogg'; known: gaussian_noise, "):
        load_cifar_c("cifar10c", tmp_path, "fogg", 1)
    with pytest.raises(DataError, match="unknown corrupted data set 'cifar10'; known: cifar10c, cifar100c"):
        load_cifar_c("cifar10", tmp_path, "fog", 1)
    with pytest.raises(DataError, match="n must be non-negative"):
        load_cifar_c("cifar10c", tmp_path, "spatter", 1, n=-1)
