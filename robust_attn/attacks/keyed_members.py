"""Square and APGD with their random draws keyed per sample (:mod:`robust_attn.attacks.keyed`)
instead of taken from the attack's stream, so that a sample's search does not depend on its batch:
``rapid``'s query-only member (native in L-inf, the library's in L2) and its four APGD members
(CE and targeted DLR, L-inf and L2)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from robust_attn.attacks.apgd import APGD, APGDL2, APGDT, APGDTL2, _Active
from robust_attn.attacks.base import Attack
from robust_attn.attacks.keyed import keyed_noise, keyed_seed, keyed_start, keyed_stream
from robust_attn.attacks.square import Square


class KeyedSquare(Square):
    """Square (L-inf), with each sample's initial stripes drawn from its own key and the windows
    from a stream shared by every batch, so a sample's search does not depend on its batch. The
    search is Square's own (:meth:`Square.search_from`)."""

    def search(self, x: torch.Tensor, y: torch.Tensor, eps: float, keys: Sequence[bytes], salt: str) -> torch.Tensor:
        """Adversarial images where the search fooled the model, else the clean images; ``salt``
        (which should hold the seed and eps) picks the windows' stream, ``keys`` the stripes."""
        stripes = torch.sign(keyed_noise(keys, f"{salt}:stripes", x[:, :, :1, :], normal=False))
        best, margin = self.search_from(x, y, eps, stripes, keyed_stream(b"square windows", salt))
        return torch.where((margin <= 0).view(-1, 1, 1, 1), best, x)


def keyed_library_search(member: Attack, x: torch.Tensor, y: torch.Tensor, eps: float, keys: Sequence[bytes], salt: str) -> torch.Tensor:
    """``member`` (a library attack that draws from one seed per call, as torchattacks' L2 Square)
    run one image per call, each seeded from its key and ``salt``, so a sample's search does not
    depend on its batch; the adversarial images (or the clean ones, as ``member`` returns them)."""
    rows = []
    for i, key in enumerate(keys):
        member.seed = keyed_seed(key, salt)
        rows.append(member.perturb(x[i : i + 1], y[i : i + 1], eps))
    return torch.cat(rows)


class KeyedStarts(APGD):
    """APGD whose random start comes from per-sample keys (set by :meth:`keyed` for one run)
    instead of the attack's stream, so a sample's start does not depend on its batch; without keys
    it is plain APGD. A run may also stop hopeless samples at its first checkpoint (``abort_loss``)."""

    start_keys: Sequence[bytes] | None = None
    start_salt: str = ""
    abort_loss: float = -math.inf  # a run stops at its first checkpoint where its best loss is below this
    stopped: torch.Tensor | None = None  # where set (per position of the result): +1 where a run was stopped

    def _after_checkpoint(self, s: _Active, done: int, result: torch.Tensor) -> None:
        """At the first checkpoint, stop the samples whose best loss so far is below
        ``abort_loss``: they have come nowhere near the boundary (their best point is the answer)."""
        if done != self.first_interval or self.abort_loss == -math.inf:
            return
        hopeless = (s.loss_best < self.abort_loss) & ~s.hit
        if hopeless.any():
            result[s.ids[hopeless]] = s.best[hopeless]
            if self.stopped is not None:
                self.stopped[s.ids[hopeless]] += 1
            s.keep(~hopeless)

    def keyed(self, keys: Sequence[bytes], salt: str) -> KeyedStarts:
        """Draw the next run's starts from ``keys`` (one per sample of the run) and ``salt``."""
        self.start_keys, self.start_salt = keys, salt
        return self

    def random_start(self, x: torch.Tensor, eps: float) -> torch.Tensor:
        """The keyed start where keys are set, else APGD's own."""
        if self.start_keys is None:
            return super().random_start(x, eps)
        if len(self.start_keys) != x.shape[0]:
            raise RuntimeError(f"{len(self.start_keys)} keys for a run on {x.shape[0]} samples")  # a bug in the caller
        return keyed_start(x, eps, self.norm, self.start_keys, self.start_salt)


class KeyedAPGDCE(KeyedStarts):
    """APGD-CE, L-inf, keyed starts."""


class KeyedAPGDT(KeyedStarts, APGDT):
    """Targeted-DLR APGD, L-inf, keyed starts (run with a target per sample)."""


class KeyedAPGDCEL2(KeyedStarts, APGDL2):
    """APGD-CE, L2, keyed starts."""


class KeyedAPGDTL2(KeyedStarts, APGDTL2):
    """Targeted-DLR APGD, L2, keyed starts."""
