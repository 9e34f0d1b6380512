"""Square Attack, L-inf (Andriushchenko et al., ECCV 2020): a query-only random search, the
black-box member of AutoAttack.

Each query changes one square window (the same window for every sample of the batch, its side
shrinking on the authors' schedule) to +-eps per channel and keeps the change where the margin
loss falls. The random draws, their order and the update follow torchattacks' ``Square`` (a port
of the authors' code) step for step, so from the same seed the per-sample outcomes are the same
(tested). What differs is the cost: the query runs in the engine's memory layout under
``inference_mode`` and only the window is recomputed, which is where the time goes (every query
is one forward pass of the samples still standing).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Unpack

import torch

from robust_attn.attacks.base import Attack, AttackOptions, Norm, bad_param, positive_int
from robust_attn.attacks.registry import register_attack

# (upper end of the rescaled iteration, divisor of p_init) after the authors' schedule
_P_SCHEDULE = ((10, 1), (50, 2), (200, 4), (500, 8), (1000, 16), (2000, 32), (4000, 64), (6000, 128), (8000, 256))


def p_selection(p_init: float, it: int, queries: int) -> float:
    """Share of the image a square covers at iteration ``it``, rescaled to a run of ``queries``."""
    it = int(it / queries * 10000)
    for upper, divisor in _P_SCHEDULE:
        if it <= upper:
            return p_init / divisor
    return p_init / 512


@register_attack("square", "native")
class Square(Attack):
    """Square Attack, L-inf, margin loss. Parameters: ``queries`` (5,000 per restart),
    ``p_init`` (0.8: the first squares' share of the image), ``restarts`` (1). Each call draws its
    seed from the attack's stream (sweeps reseed per batch)."""

    name = "square"
    norm: ClassVar[Norm] = "linf"
    strength = 15  # query-only: weaker than the gradient attacks on a model with useful gradients

    def __init__(
        self, model: Any, *, queries: int = 5000, p_init: float = 0.8, restarts: int = 1, **options: Unpack[AttackOptions]
    ) -> None:
        super().__init__(model, **options)
        positive_int(queries=queries, restarts=restarts)
        if not 0 < p_init <= 1:
            raise bad_param("p_init", f"p_init must be in (0, 1], got {p_init}")
        self.queries, self.p_init, self.restarts = queries, p_init, restarts

    def params(self) -> dict[str, Any]:
        return {"queries": self.queries, "p_init": self.p_init, "restarts": self.restarts, "targeted": self.targeted}

    def call_seed(self) -> int:
        """The seed of one call's random search, drawn from the attack's stream."""
        return int(torch.randint(0, 2**31 - 1, (1,), generator=self.generator))

    @torch.inference_mode()
    def _query(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One query: the margin of the model at ``x`` (<= 0: done), one forward pass."""
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.margin(self.logits(x), y)

    def perturb(self, x: torch.Tensor, y: torch.Tensor, eps: float, stop_early: bool = False) -> torch.Tensor:
        gen = torch.Generator(device="cpu").manual_seed(self.call_seed())
        adv = x.clone()
        todo = (self._query(x, y) > 0).nonzero().flatten()  # samples already done keep the clean image
        for _ in range(self.restarts):
            if todo.numel() == 0:
                break
            best, margin = self._search(x[todo], y[todo], eps, gen)
            done = margin <= 0
            adv[todo[done]] = best[done]
            todo = todo[~done]
        return adv

    @torch.inference_mode()
    def _search(self, x: torch.Tensor, y: torch.Tensor, eps: float, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """One random search, its stripes and then its windows drawn from ``gen`` (the reference's
        order of draws): the best point per sample and its margin."""
        n, c, _, w = x.shape
        stripes = torch.sign(2 * torch.rand([n, c, 1, w], generator=gen) - 1).to(x.device, x.dtype)
        return self.search_from(x, y, eps, stripes, gen)

    @torch.inference_mode()
    def search_from(
        self, x: torch.Tensor, y: torch.Tensor, eps: float, stripes: torch.Tensor, windows: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Square's random search from ``x + eps * stripes`` (``stripes``: +-1 per sample, channel and
        column), each query's window and signs drawn from ``windows``: the best point per sample and
        its margin (<= 0: fooled). The one search loop: ``square`` draws the stripes and windows from
        one stream, rapid's keyed member each sample's stripes from its own key."""
        best = torch.clamp(x + eps * stripes, 0.0, 1.0)
        margin = self._query(best, y)
        for it in range(self.queries):
            active = (margin > 0.0).nonzero().flatten()
            if active.numel() == 0:
                break
            window, sign = self._window(it, x, windows)
            x_a, best_a = x[active], best[active]
            x_win = x_a[window]
            cand = best_a.clone()
            cand[window] = torch.clamp(torch.min(torch.max(best_a[window] + 2.0 * eps * sign, x_win - eps), x_win + eps), 0.0, 1.0)
            m = self._query(cand, y[active])
            better = (m < margin[active]) | (m <= 0.0)
            margin[active] = torch.where(better, m, margin[active])
            best[active] = torch.where(better.view(-1, 1, 1, 1), cand, best_a)
        return best, margin

    def _window(self, it: int, x: torch.Tensor, windows: torch.Generator) -> tuple[tuple[slice, ...], torch.Tensor]:
        """Query ``it``'s square window (its side on the authors' schedule, its corner drawn from
        ``windows``) and its sign per channel (drawn next), as the reference draws them."""
        _, c, h, w = x.shape
        p = p_selection(self.p_init, it, self.queries)
        s = max(round(math.sqrt(p * (c * h * w) / c)), 1)  # the reference's arithmetic
        vh = int(((h - s) * torch.rand([1], generator=windows)).long())
        vw = int(((w - s) * torch.rand([1], generator=windows)).long())
        sign = torch.sign(2 * torch.rand([c, 1, 1], generator=windows) - 1).to(x.device, x.dtype)
        return (slice(None), slice(None), slice(vh, vh + s), slice(vw, vw + s)), sign
