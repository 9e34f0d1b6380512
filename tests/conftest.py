"""Shared fixtures: small data, tiny models, an isolated zoo cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# ROBUST_ATTN_TEST_THREADS and ROBUST_ATTN_TEST_SEED let the suite be run as it would be on
# another machine: with another thread count, and with fixture models trained from another seed
# (their weights then differ, as they do on another CPU). No test may depend on those weights.
torch.set_num_threads(int(os.environ.get("ROBUST_ATTN_TEST_THREADS", min(2, os.cpu_count() or 1))))
FIXTURE_SEED = int(os.environ.get("ROBUST_ATTN_TEST_SEED", "0"))


def pytest_report_header() -> str:
    return f"robust-attn fixtures: seed {FIXTURE_SEED}, {torch.get_num_threads()} threads"


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own ROBUST_ATTN_HOME so nothing touches the user's cache."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("ROBUST_ATTN_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[torch.nn.Module, Path]:
    """A small VGG-att3-pc trained for ~20 s on built-in data (about 68% clean accuracy),
    so attacks flip some predictions and not others; also saved as a checkpoint."""
    import dataclasses

    import robust_attn as ra

    train = ra.load_dataset("builtin", "train", n=10000)
    test = ra.load_dataset("builtin", "test", n=500)
    torch.manual_seed(FIXTURE_SEED)
    model = ra.create_model("vgg-att3-pc", layout="compact", width=0.125, dropout=0.0, mean=train.mean, std=train.std)
    recipe = dataclasses.replace(ra.get_recipe("fast"), batch_size=128)
    out = tmp_path_factory.mktemp("ckpt") / "small-att3.safetensors"
    ra.train_model(model, train, test, recipe, epochs=4, seed=FIXTURE_SEED, out=out, progress=False)
    return model.eval(), out


@pytest.fixture(scope="session")
def test_batch() -> tuple[torch.Tensor, torch.Tensor]:
    import robust_attn as ra

    data = ra.load_dataset("builtin", "test", n=200)
    _, x, y = next(data.batches(200))
    return x, y
