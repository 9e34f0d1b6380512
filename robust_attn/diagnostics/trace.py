"""A recorder the native iterative attacks report each step to, when one is attached: which
samples some iterate fooled, and each sample's loss along the way. Indicators of attack failure
read it (silent success, incomplete optimisation)."""

from __future__ import annotations

import torch


class AttackTrace:
    """Per-sample records over one ``perturb`` call on a batch of ``n`` samples."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.ever_fooled = torch.zeros(n, dtype=torch.bool)
        self.rows: list[torch.Tensor] = []  # one (n,) row of losses per step, NaN for samples not attacked then

    def step(self, ids: torch.Tensor, loss: torch.Tensor, fooled: torch.Tensor) -> None:
        """Record one iterate of samples ``ids`` (positions in the traced batch): their loss
        (higher = closer to fooling) and whether the iterate fooled them."""
        row = torch.full((self.n,), float("nan"))
        row[ids.cpu()] = loss.detach().float().cpu()
        self.rows.append(row)
        self.ever_fooled[ids[fooled].cpu()] = True

    def losses(self) -> torch.Tensor:
        """(steps, n) loss history, NaN where a sample was not being attacked."""
        return torch.stack(self.rows) if self.rows else torch.full((0, self.n), float("nan"))
