"""A one-file attention model from outside robust-attn: a small CNN with a CBAM-style spatial
attention gate. It follows the suite's attention protocol, so a sweep gives it the attention
probes (maps under attack, drift, weakly supervised segmentation) with no other change:

* ``attention_maps(x)`` returns one (B, H, W) map per attended stage, each summing to 1 over space
  (or with values in [0, 1]);
* ``architecture`` and ``training_regime`` (optional) say what it is, for grouping in reports.

Sweep it as ``attention_cnn:make`` (with this folder on PYTHONPATH); ``plain_cnn:make`` in the
same folder is the same network without the gate, its baseline."""

from __future__ import annotations

import torch
import torch.nn as nn


class AttentionCNN(nn.Module):
    architecture = "tiny-cnn-spatial-attention"
    training_regime = "clean"

    def __init__(self, classes: int = 10, width: int = 16) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(width, width, 3, padding=1), nn.ReLU())  # fmt: skip
        self.gate = nn.Conv2d(2, 1, 7, padding=3)  # CBAM's spatial attention: conv over [mean, max] of the channels
        self.head = nn.Linear(width, classes)

    def _scores(self, f: torch.Tensor) -> torch.Tensor:
        return self.gate(torch.cat([f.mean(dim=1, keepdim=True), f.amax(dim=1, keepdim=True)], dim=1))[:, 0]

    def attention_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The gate's map over the 16x16 feature grid, normalised to sum to 1 (the probe upsamples it)."""
        scores = self._scores(self.features(x))
        return [torch.softmax(scores.flatten(1), dim=1).view_as(scores)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x)
        a = torch.softmax(self._scores(f).flatten(1), dim=1).view(len(x), 1, *f.shape[-2:])
        return self.head((f * a).sum(dim=(2, 3)))


def make() -> AttentionCNN:
    torch.manual_seed(0)  # fixed weights: this example is about the protocol, not about training
    return AttentionCNN().eval()
