"""Training recipes: the paper's and a fast one for CPUs."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

from robust_attn.errors import UsageError

Schedule = Literal["step", "cosine", "onecycle"]


def check_epochs(epochs: object) -> int:
    """``epochs`` as an int >= 1, or a one-line UsageError: a run of 0 epochs would write an
    untrained checkpoint as if it were a trained one."""
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise UsageError(
            f"epochs must be a whole number >= 1, got {epochs!r}: {epochs!r} epochs would write an untrained checkpoint; "
            "pass --epochs 1 or more, or leave it out for the recipe's"
        )
    return epochs


@dataclass(frozen=True)
class Recipe:
    """SGD hyper-parameters, learning-rate schedule and augmentation."""

    name: str
    lr: float
    epochs: int
    batch_size: int = 128
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = False
    schedule: Schedule = "step"
    step_epochs: int = 25  # "step": multiply lr by step_gamma every step_epochs
    step_gamma: float = 0.5
    warmup_fraction: float = 0.0  # "onecycle": share of steps spent warming up
    crop_padding: int = 0
    flip: bool = True
    label_smoothing: float = 0.0
    adversarial: Literal["none", "fgsm", "pgd", "trades"] = "none"  # FGSM-RS (Wong et al. 2020), PGD (Madry et al. 2018) or TRADES
    beta: float = 6.0  # TRADES: weight of the KL term (the paper's 6 for CIFAR-10)
    train_eps: float = 0.0  # L-inf training budget in pixel units
    attack_steps: int = 1  # PGD steps (fgsm: 1)
    guard_samples: int = 0  # held-out images whose PGD-10 accuracy picks the kept epoch (catastrophic-overfitting guard)

    def __post_init__(self) -> None:
        check_epochs(self.epochs)
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise UsageError(f"batch size must be a whole number >= 1, got {self.batch_size!r}; pass --batch-size 1 or more")
        if isinstance(self.lr, bool) or not isinstance(self.lr, int | float) or not math.isfinite(self.lr) or self.lr <= 0:
            raise UsageError(f"learning rate must be a number > 0, got {self.lr!r}; pass --lr 0.1, say, or leave it out for the recipe's")

    def lr_at(self, step: int, steps_per_epoch: int, epochs: int) -> float:
        """Learning rate for optimiser step ``step`` (0-based) of a run of ``epochs``."""
        total = max(1, steps_per_epoch * epochs)
        if self.schedule == "step":
            return self.lr * self.step_gamma ** (step // (self.step_epochs * steps_per_epoch))
        if self.schedule == "cosine":
            return 0.5 * self.lr * (1 + math.cos(math.pi * step / total))
        warm = max(1, int(self.warmup_fraction * total))
        if step < warm:
            return self.lr * (0.1 + 0.9 * step / warm)
        return 0.5 * self.lr * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


RECIPES: dict[str, Recipe] = {
    # Authors: SGD, momentum 0.9, wd 5e-4, lr halved every 25 epochs, 300 epochs; flips,
    # plus the PyTorch re-implementation's lr 0.1 and random crops with padding 4.
    "paper": Recipe("paper", lr=0.1, epochs=300, schedule="step", crop_padding=4),
    "cosine": Recipe("cosine", lr=0.1, epochs=200, schedule="cosine", crop_padding=4),
    # A few epochs on 2 CPU cores: warm-up then cosine decay, light crops.
    "fast": Recipe(
        "fast", lr=0.08, epochs=6, schedule="onecycle", warmup_fraction=0.15, nesterov=True, crop_padding=2, label_smoothing=0.05
    ),
    # Adversarial training on top of "fast" (eps and epochs set by the zoo entry): FGSM from a uniform
    # random start with step 1.25 eps and a one-cycle schedule ("Fast is better than free"), or PGD.
    "fgsm-at": Recipe(
        "fgsm-at",
        lr=0.08,
        epochs=6,
        schedule="onecycle",
        warmup_fraction=0.15,
        nesterov=True,
        crop_padding=2,
        adversarial="fgsm",
        train_eps=4 / 255,
        guard_samples=256,
    ),
    "pgd-at": Recipe(
        "pgd-at",
        lr=0.08,
        epochs=6,
        schedule="onecycle",
        warmup_fraction=0.15,
        nesterov=True,
        crop_padding=2,
        adversarial="pgd",
        train_eps=4 / 255,
        attack_steps=5,
        guard_samples=256,
    ),
    # TRADES (Zhang et al., ICML 2019): CE on the clean images plus beta = 6 times the KL between the
    # clean and the adversarial prediction, the adversarial point maximising that KL (5 steps here).
    "trades": Recipe(
        "trades",
        lr=0.08,
        epochs=6,
        schedule="onecycle",
        warmup_fraction=0.15,
        nesterov=True,
        crop_padding=2,
        adversarial="trades",
        train_eps=4 / 255,
        attack_steps=5,
        beta=6.0,
        guard_samples=256,
    ),
}


def get_recipe(name: str) -> Recipe:
    """The recipe ``name``, or a one-line UsageError naming the known ones."""
    try:
        return RECIPES[name]
    except KeyError:
        raise UsageError(f"unknown recipe {name!r}; known: {', '.join(RECIPES)}") from None
