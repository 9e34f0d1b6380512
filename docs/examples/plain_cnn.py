"""The baseline of ``attention_cnn``: the same small CNN, global average pooling instead of the gate."""

from __future__ import annotations

import torch
import torch.nn as nn


class PlainCNN(nn.Module):
    architecture = "tiny-cnn"
    training_regime = "clean"

    def __init__(self, classes: int = 10, width: int = 16) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(width, width, 3, padding=1), nn.ReLU())  # fmt: skip
        self.head = nn.Linear(width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))


def make() -> PlainCNN:
    torch.manual_seed(0)
    return PlainCNN().eval()
