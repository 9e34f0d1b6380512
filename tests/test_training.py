"""Training: recipe schedules, determinism, resumption after Ctrl-C, CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

import robust_attn as ra
from robust_attn.cli import main
from robust_attn.training import augment, resume_path, trainer
from robust_attn.training.augment import random_crop, random_flip

RECIPE = ra.Recipe("t", lr=0.05, epochs=2, batch_size=64, schedule="onecycle", warmup_fraction=0.2, crop_padding=2)


@pytest.fixture(scope="module")
def small_data() -> tuple[ra.ImageDataset, ra.ImageDataset]:
    return ra.load_dataset("builtin", "train", n=256), ra.load_dataset("builtin", "test", n=128)


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return ra.create_model("vgg-att2-pc", width=0.0625, layout="compact", dropout=1.0)


def test_schedules() -> None:
    paper = ra.get_recipe("paper")
    assert paper.lr_at(0, 100, 300) == pytest.approx(0.1)
    assert paper.lr_at(25 * 100, 100, 300) == pytest.approx(0.05)
    assert paper.lr_at(50 * 100 + 3, 100, 300) == pytest.approx(0.025)
    assert (paper.momentum, paper.weight_decay) == (0.9, 5e-4)
    assert RECIPE.lr_at(0, 10, 2) == pytest.approx(0.005)
    assert RECIPE.lr_at(4, 10, 2) == pytest.approx(0.05)  # end of warm-up
    assert RECIPE.lr_at(19, 10, 2) < 0.002
    with pytest.raises(ValueError, match="unknown recipe 'adam'"):
        ra.get_recipe("adam")


def test_augmentations_preserve_content() -> None:
    x = torch.rand(8, 3, 6, 6)
    torch.testing.assert_close(random_crop(x, 0), x)
    crops = random_crop(x, 2, torch.Generator().manual_seed(0))
    assert crops.shape == x.shape
    flips = random_flip(x, torch.Generator().manual_seed(0))
    for a, b in zip(flips, x):
        assert torch.equal(a, b) or torch.equal(a, b.flip(2))


def test_training_is_deterministic_and_learns(small_data: tuple[ra.ImageDataset, ra.ImageDataset], tmp_path: Path) -> None:
    train, test = small_data
    a, b = _model(), _model()
    ra.train_model(a, train, test, RECIPE, seed=1, progress=False, out=tmp_path / "a.safetensors")
    ra.train_model(b, train, test, RECIPE, seed=1, progress=False)
    for (n, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(p, q), n
    meta = ra.read_metadata(tmp_path / "a.safetensors")
    assert meta["recipe"]["lr"] == 0.05 and meta["seed"] == 1 and meta["dataset"] == "builtin"
    assert len(meta["train_result"]["history"]) == 2 and "torch" in meta["versions"]
    assert not resume_path(tmp_path / "a.safetensors").exists()


def test_interrupt_then_resume_gives_identical_weights(
    small_data: tuple[ra.ImageDataset, ra.ImageDataset], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    train, test = small_data
    full = _model()
    ra.train_model(full, train, test, RECIPE, seed=2, progress=False)

    calls = {"n": 0}
    steps_per_epoch = 256 // 64
    real_flip = augment.random_flip

    def flaky_flip(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        calls["n"] += 1
        if calls["n"] == steps_per_epoch + 2:  # Ctrl-C in the middle of epoch 2
            raise KeyboardInterrupt
        return real_flip(x, generator)

    out = tmp_path / "m.safetensors"
    monkeypatch.setattr(trainer, "random_flip", flaky_flip)
    with pytest.raises(KeyboardInterrupt):
        ra.train_model(_model(), train, test, RECIPE, seed=2, progress=False, out=out)
    assert resume_path(out).is_file() and not out.exists()
    monkeypatch.setattr(trainer, "random_flip", real_flip)
    resumed = ra.create_model("vgg-att2-pc", width=0.0625, layout="compact", dropout=1.0)
    ra.train_model(resumed, train, test, RECIPE, seed=2, progress=False, out=out, resume=True)
    for (n, p), q in zip(full.state_dict().items(), resumed.state_dict().values()):
        torch.testing.assert_close(p, q, msg=n)
    assert out.is_file() and not resume_path(out).exists()


def test_cli_train_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(
        [
            "train",
            "vgg",
            "--epochs",
            "1",
            "--width",
            "0.0625",
            "--train-size",
            "128",
            "--test-size",
            "64",
            "--out",
            str(tmp_path),
            "--device",
            "cpu",
        ]
    )
    assert rc == 0
    _, meta = ra.load_checkpoint(tmp_path / "vgg.safetensors")
    assert meta["train_size"] == 128
    assert main(["train", "vgg-att9", "--out", str(tmp_path)]) == 2
    assert "unknown model 'vgg-att9'" in capsys.readouterr().err
    assert main(["train", "vgg", "--dataset", "cifar10", "--data-dir", str(tmp_path / "none"), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not exist" in err


def test_progress_lines_without_bars(small_data: tuple[ra.ImageDataset, ra.ImageDataset], capfd: pytest.CaptureFixture[str]) -> None:
    """Worker processes print one labelled line per epoch and no tqdm bars (they would interleave)."""
    train, test = small_data
    ra.train_model(_model(), train.subset(128), test.subset(64), RECIPE, seed=0, progress=True, show_bar=False, label="w1")
    out, err = capfd.readouterr()
    assert [line.split(":")[0] for line in out.splitlines()] == ["w1 epoch 1/2", "w1 epoch 2/2"]
    assert "img/s]" not in err and "%|" not in err


@pytest.mark.slow
def test_training_log_has_no_carriage_returns(tmp_path: Path) -> None:
    """`robust-attn train` written to a file: one line per epoch (with img/s), no tqdm stream."""
    log = tmp_path / "train.log"
    with open(log, "w") as f:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "robust_attn",
                "train",
                "vgg",
                "--width",
                "0.0625",
                "--epochs",
                "2",
                "--train-size",
                "256",
                "--test-size",
                "64",
                "--out",
                str(tmp_path),
            ],
            stdout=f,
            stderr=subprocess.STDOUT,
            check=True,
            timeout=300,
        )
    text = log.read_text()
    assert "\r" not in text
    epochs = [line for line in text.splitlines() if line.startswith("epoch ")]
    assert len(epochs) == 2 and all(line.endswith("img/s") for line in epochs)
