"""What the table-driven bad-input test and its case modules share: the user's small models (an
import spec the tests write), a spec builder and a checkpoint builder. The case modules under
``bad_input_cases/`` hold rows of the same table, grouped by subject."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

import robust_attn as ra

USER_MODELS = """
import torch
import torch.nn as nn


class Linear(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(3 * 32 * 32, 10)

    def forward(self, x):
        return self.fc(x.flatten(1))


class NaNEverywhere(Linear):
    def forward(self, x):
        return super().forward(x) * float("nan")


class NaNSometimes(Linear):
    def forward(self, x):
        out = super().forward(x)
        if len(x) > 4:  # the dry run's 4 images pass
            out = out.clone()
            out[2] = float("inf")
        return out


class FailsOnRealBatches(Linear):
    def forward(self, x):
        if len(x) > 4:
            raise RuntimeError("shape trouble in the user's layer")
        return super().forward(x)


def good():
    return Linear()


def nan_everywhere():
    return NaNEverywhere()


def nan_sometimes():
    return NaNSometimes()


def fails_later():
    return FailsOnRealBatches()


def boom():
    raise ValueError("bad config in my factory")


CONSTANT = 3
"""


def _spec(tmp: Path, body: str, models: str = '["bi_models:good"]', attacks: str | None = None) -> str:
    attacks = attacks if attacks is not None else '[[attacks]]\nname = "fgsm"\neps = ["0", "4/255"]\n'
    text = f"models = {models}\nn = 20\nattention_samples = 0\ndiagnostic_samples = 0\n{body}\n{attacks}"
    path = tmp / "spec.toml"
    path.write_text(text)
    return str(path)


def _checkpoint(path: Path, **meta: object) -> Path:
    torch.manual_seed(0)
    model = ra.create_model("vgg", in_channels=1, image_size=28, width=0.0625, layout="compact", dropout=0.0)
    ra.save_checkpoint(path, model, {"dataset": "mnist", "image_shape": [1, 28, 28], "classes": [str(i) for i in range(10)], **meta})
    return path


def _sweep(tmp: Path, *args: str, **spec: str) -> list[str]:
    return ["sweep", _spec(tmp, **spec), "--quiet", "--out", str(tmp / "run"), *args]


# (id, argv builder, regex the one error line must match)
Case = tuple[str, Callable[[Path], list[str]], str]
