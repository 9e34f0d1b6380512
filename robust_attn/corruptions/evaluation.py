"""Common corruptions as an evaluation of their own kind: the 15 corruptions of Hendrycks &
Dietterich (ICLR 2019; :mod:`robust_attn.corruptions`) at severities 1-5, with the parameter set
of their scripts nearest the images' size (CIFAR-10-C's for 32x32, ImageNet-C's for 224, ...),
or the published CIFAR-10-C / CIFAR-100-C / ImageNet-C images when the data set carries them.

Not an attack: it has no eps and perturbs nothing adversarially. It is registered under a name
like the attacks (``name = "corruptions"`` in a spec's ``[[attacks]]`` table) and declares its
kind, ``corruption``; its conditions are (corruption, severity) pairs, each evaluated
independently on the clean images, and the run directory records them in the ``corruption`` and
``severity`` columns of its own cells (:class:`robust_attn.rundir.CorruptionCell`). Corrupting is
data preparation: the sweep caches the corrupted images by batch, so a second model does not
make them again.
"""

from __future__ import annotations

from typing import Any, ClassVar, Unpack

import numpy as np
import torch
import torch.nn as nn

from robust_attn.attacks.base import AttackOptions, Evaluation, bad_param
from robust_attn.attacks.registry import register_attack
from robust_attn.corruptions.registry import CORRUPTIONS, SEVERITIES, corrupt


@register_attack("corruptions", "native")
class CommonCorruptions(Evaluation):
    """Accuracy under common corruptions. Parameters: ``severities`` (default 1-5) and
    ``corruptions`` (default all 15, named as the CIFAR-10-C files: gaussian_noise, fog, ...)."""

    kind: ClassVar[str] = "corruption"
    name = "corruptions"
    threat_model: ClassVar[str] = "corruption"
    strength = 0  # not ranked against the attacks

    def __init__(
        self,
        model: nn.Module,
        *,
        severities: list[int] | None = None,
        corruptions: list[str] | None = None,
        **options: Unpack[AttackOptions],
    ) -> None:
        if options.get("targeted"):
            raise bad_param("targeted", "corruptions are not targeted; leave targeted = false")
        super().__init__(model, **options)
        severities = list(SEVERITIES) if severities is None else severities
        corruptions = list(CORRUPTIONS) if corruptions is None else corruptions
        if not isinstance(severities, list) or not severities or any(isinstance(s, bool) or s not in SEVERITIES for s in severities):
            raise bad_param("severities", f"severities must be a non-empty list drawn from 1-5, got {severities!r}")
        if len(set(severities)) != len(severities):
            raise bad_param("severities", f"severities contain duplicates: {severities!r}")
        if not isinstance(corruptions, list) or not corruptions:
            raise bad_param(
                "corruptions", f"corruptions must be a non-empty list of names such as ['fog', 'jpeg_compression'], got {corruptions!r}"
            )
        for c in corruptions:
            if c not in CORRUPTIONS:
                raise bad_param("corruptions", f"unknown corruption {c!r}; known: {', '.join(CORRUPTIONS)}")
        if len(set(corruptions)) != len(corruptions):
            raise bad_param("corruptions", f"corruptions contain duplicates: {corruptions!r}")
        self.severities = sorted(severities)
        self.corruptions = [c for c in CORRUPTIONS if c in corruptions]  # CIFAR-10-C order

    def params(self) -> dict[str, Any]:
        return {"corruptions": self.corruptions, "severities": self.severities}

    def conditions(self) -> list[dict[str, Any]]:
        """The (corruption, severity) conditions in order: corruption-major, severity ascending."""
        return [{"corruption": c, "severity": s} for c in self.corruptions for s in self.severities]

    def corrupted(self, images: np.ndarray, corruption: str, severity: int, sample_ids: np.ndarray) -> np.ndarray:
        """uint8 images (B, C, H, W) under one condition; each image's draws depend on its sample id
        and the attack's seed only, so batches and ranks do not change them."""
        return corrupt(images, corruption, severity, seed=self.seed, sample_ids=sample_ids)

    @torch.inference_mode()
    def predict_uint8(self, images: np.ndarray) -> torch.Tensor:
        """Predictions on uint8 images (converted to [0, 1] like every image the suite feeds a model)."""
        x = torch.from_numpy(np.ascontiguousarray(images)).to(self.device).float().div_(255)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.predict(x)
