"""Constructed models with known answers on the built-in shapes (nothing is trained), swept by
import spec (``memory_models:memory0``) in the combine and leaderboard tests."""

import torch
import torch.nn as nn

from robust_attn.data import load_dataset


class Memory(nn.Module):
    """Nearest-neighbour memory of the first 24 test images (clean accuracy 100%) plus a random
    linear term of strength ``scale`` that gradient attacks exploit."""

    training_regime = "clean"

    def __init__(self, seed, scale, architecture):
        super().__init__()
        ds = load_dataset("builtin", "test", n=24)
        self.register_buffer("x", torch.stack([ds[i][0] for i in range(24)]).flatten(1))
        self.register_buffer("y", nn.functional.one_hot(torch.tensor([int(ds[i][1]) for i in range(24)]), 10).float())
        self.register_buffer("w", torch.randn(10, self.x.shape[1], generator=torch.Generator().manual_seed(seed)))
        self.architecture, self.train_seed, self.scale = architecture, seed, scale

    def forward(self, x):
        x = x.flatten(1)
        return 10 * torch.softmax(-(torch.cdist(x, self.x) ** 2), dim=1) @ self.y + self.scale * (x - 0.5) @ self.w.T


class Constant(nn.Module):
    """Always class 5: its accuracy is the share of label 5 at every eps."""

    architecture = "constant"
    training_regime = "clean"

    def forward(self, x):
        return nn.functional.one_hot(torch.tensor(5), 10).float().expand(len(x), -1) + 0 * x.flatten(1).sum(1, keepdim=True)


def memory0():
    return Memory(0, 0.2, "memory").eval()


def memory1():
    return Memory(1, 0.2, "memory").eval()


def steady():
    return Memory(2, 0.1, "memory-steady").eval()


def const():
    return Constant().eval()
