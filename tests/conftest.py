"""Shared fixtures: small data, tiny models, an isolated zoo cache."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch
from constructed.small_att3 import CHECKPOINT as SMALL_ATT3
from constructed.small_att3 import train_small_att3

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
    """A small VGG-att3-pc trained 4 epochs on built-in data (about 68% clean accuracy), so attacks
    flip some predictions and not others; also its checkpoint (a copy the test may change).

    By default its committed checkpoint (tests/constructed/small-att3.safetensors): every CPU tests
    the same weights, and the suite does not spend a minute training. With ROBUST_ATTN_TEST_SEED
    set it is trained here from that seed, so its weights differ as on another CPU."""
    import robust_attn as ra

    out = tmp_path_factory.mktemp("ckpt") / "small-att3.safetensors"
    if "ROBUST_ATTN_TEST_SEED" in os.environ:
        return train_small_att3(out, FIXTURE_SEED), out
    shutil.copyfile(SMALL_ATT3, out)
    model, _ = ra.load_model(out, "cpu", progress=False)
    return model.eval(), out


@pytest.fixture(scope="session")
def test_batch() -> tuple[torch.Tensor, torch.Tensor]:
    import robust_attn as ra

    data = ra.load_dataset("builtin", "test", n=200)
    _, x, y = next(data.batches(200))
    return x, y
