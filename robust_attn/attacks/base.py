"""One interface for every attack: an :class:`Attack` perturbs a batch at one epsilon and
sweeps a grid of epsilons, worst-case (cumulative) or independent per eps.

Inputs are images in [0, 1]; epsilons are in the same pixel units (8/255 = 0.0314).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
import torch.nn as nn

from robust_attn.models.fold import fold_batchnorm

Mode = Literal["worst-case", "independent"]
Precision = Literal["fp32", "bf16", "fp16"]
MODES: tuple[Mode, ...] = ("worst-case", "independent")
PRECISIONS: tuple[Precision, ...] = ("fp32", "bf16", "fp16")


@dataclass
class SweepBatch:
    """Outcomes of one batch over a grid of K epsilons (ascending)."""

    correct: torch.Tensor  # (K, B) bool: prediction == label after the attack at eps_k
    pred: torch.Tensor  # (K, B) int64: predicted label after the attack at eps_k
    clean_pred: torch.Tensor  # (B,) int64: prediction on the unperturbed images


@contextlib.contextmanager
def autocast(device: torch.device, precision: Precision) -> Iterator[None]:
    """Reduced precision for forward passes; ``fp32`` is a no-op."""
    if precision == "fp32":
        yield
        return
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    with torch.autocast(device_type=device.type, dtype=dtype):
        yield


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter or buffer (CPU for a parameter-free module)."""
    for t in (*model.parameters(), *model.buffers()):
        return t.device
    return torch.device("cpu")


class Attack:
    """Base class: subclasses set ``name``/``norm`` and implement :meth:`perturb`.

    :meth:`sweep` works for every attack through :meth:`perturb`; attacks that can share
    work across epsilons (FGSM: one gradient for all eps) override it.
    """

    name: ClassVar[str] = ""
    norm: ClassVar[Literal["linf", "l2"]] = "linf"
    backend: ClassVar[str] = "native"

    def __init__(
        self,
        model: nn.Module,
        *,
        targeted: bool = False,
        seed: int = 0,
        precision: Precision = "fp32",
        channels_last: bool = False,
        fold_bn: bool = False,
    ) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
        # folding works on a copy: the caller's model keeps its BatchNorm layers
        self.model = fold_batchnorm(model)[0] if fold_bn else model.eval()
        self.targeted = targeted
        self.seed = seed
        self.precision: Precision = precision
        self.channels_last = channels_last
        self.device = model_device(model)
        self._generator: torch.Generator | None = None
        if channels_last:
            self.model.to(memory_format=torch.channels_last)

    # -- hooks ---------------------------------------------------------------------------
    def params(self) -> dict[str, Any]:
        """Parameters that change the attack's outcome, recorded in results."""
        return {"targeted": self.targeted}

    def perturb(self, x: torch.Tensor, y: torch.Tensor, eps: float, stop_early: bool = False) -> torch.Tensor:
        """Adversarial images for labels ``y`` (targets when targeted) at one eps.

        ``stop_early`` lets iterative attacks freeze a sample at its first fooling iterate
        (used by worst-case sweeps, where any fooling point inside the ball is enough)."""
        raise NotImplementedError

    # -- shared machinery ----------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        """Picklable for worker processes: the random stream is not carried (workers reseed
        every batch)."""
        return {**self.__dict__, "_generator": None}

    def reseed(self, seed: int) -> None:
        """Fix the random stream used by random starts (one seed per batch keeps resumed
        sweeps identical to uninterrupted ones)."""
        self._generator = torch.Generator(device="cpu").manual_seed(seed)

    def seed_global_rng(self) -> None:
        """Seed torch's global generator from ours: torchattacks and foolbox draw their random
        starts from it."""
        torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=self.generator)))

    @property
    def generator(self) -> torch.Generator:
        if self._generator is None:
            self.reseed(self.seed)
        assert self._generator is not None
        return self._generator

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        low, high = (float(v) for v in torch.aminmax(x))  # one pass; NaN and inf propagate into the extremes
        if not (math.isfinite(low) and math.isfinite(high)):
            raise ValueError("images contain NaN or infinite pixels; clean or drop those samples before attacking")
        if low < 0 or high > 1:
            raise ValueError(
                f"images must be in [0, 1] (got [{low:.3g}, {high:.3g}]); divide uint8 images by 255, and normalise inside the model"
            )
        x = x.to(self.device, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Model logits in fp32 under the attack's precision."""
        with autocast(self.device, self.precision):
            return self.model(x).float()

    @torch.inference_mode()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(x).argmax(dim=1)

    def __call__(self, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
        return self.perturb(self._prepare(x), y.to(self.device), eps)

    def sweep(
        self, x: torch.Tensor, y: torch.Tensor, epsilons: Sequence[float], mode: Mode = "worst-case", target: torch.Tensor | None = None
    ) -> SweepBatch:
        """Per-sample outcomes at every eps (ascending).

        ``worst-case``: a sample fooled at eps_k stays fooled at every larger eps (the same
        adversarial image lies inside every larger ball), so only survivors are attacked
        again. ``independent``: every eps is a separate attack on the clean images.
        """
        x, y = self._prepare(x), y.to(self.device)
        goal = target.to(self.device) if (self.targeted and target is not None) else y
        clean_pred = self.predict(x)
        pred = clean_pred.unsqueeze(0).repeat(len(epsilons), 1)
        # worst-case: the clean image lies inside every ball, so a clean mistake is final
        fooled = self._fooled(clean_pred, y, goal)
        everyone = torch.arange(x.shape[0], device=x.device)
        for i, eps in enumerate(epsilons):
            if mode == "worst-case":
                if i:
                    pred[i] = pred[i - 1]
                idx = (~fooled).nonzero().squeeze(1)
            else:
                idx = everyone
            if idx.numel() == 0 or eps == 0:
                continue  # eps = 0 keeps the clean prediction exactly
            p = self.predict(self.perturb(x[idx], goal[idx], float(eps), stop_early=mode == "worst-case"))
            pred[i, idx] = p
            if mode == "worst-case":
                fooled[idx] = self._fooled(p, y[idx], goal[idx])
        return SweepBatch(pred == y.unsqueeze(0), pred, clean_pred)

    def _fooled(self, pred: torch.Tensor, y: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        return pred == goal if self.targeted else pred != y

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.params().items())
        return f"{type(self).__name__}[{self.backend}]({args})"


class IterativeAttack(Attack):
    """Parameters of iterative attacks (PGD and its library twins), validated in one place."""

    def __init__(
        self,
        model: nn.Module,
        *,
        steps: int = 10,
        alpha: float | None = None,
        random_start: bool = True,
        restarts: int = 1,
        targeted: bool = False,
        seed: int = 0,
        precision: Precision = "fp32",
        channels_last: bool = False,
        fold_bn: bool = False,
    ) -> None:
        super().__init__(model, targeted=targeted, seed=seed, precision=precision, channels_last=channels_last, fold_bn=fold_bn)
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        if restarts < 1:
            raise ValueError(f"restarts must be >= 1, got {restarts}")
        if alpha is not None and alpha <= 0:
            raise ValueError(f"alpha (step size) must be positive, got {alpha}")
        self.steps = steps
        self.alpha = alpha
        self.random_start = random_start
        self.restarts = restarts

    def params(self) -> dict[str, Any]:
        alpha = self.alpha if self.alpha is not None else "2.5*eps/steps"
        return {
            "steps": self.steps,
            "alpha": alpha,
            "random_start": self.random_start,
            "restarts": self.restarts,
            "targeted": self.targeted,
        }

    def step_size(self, eps: float) -> float:
        """Absolute step size; by default 2.5 * eps / steps (Madry et al. 2018)."""
        return self.alpha if self.alpha is not None else 2.5 * eps / self.steps
