"""Shared fixtures: small data, tiny models, an isolated zoo cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own ROBUST_ATTN_HOME so nothing touches the user's cache."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("ROBUST_ATTN_HOME", str(home))
    return home
