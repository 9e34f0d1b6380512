"""The paths a sample can take through ``rapid``, as the codes and names of the sweep column
``decision``: which members ran on it, how many restarts and retries, and how many of its targeted
runs stopped at their first checkpoint (docs/rapid.md, "What it records")."""

from __future__ import annotations

import torch

# why a sample went to the query-only member
VANISH, NONFINITE, FLAT = "gradients vanish", "gradients not finite", "loss did not rise"
# decision paths, in the order of decision_names(); D_RESTART + r - 1: r restarts ran; then the
# retried paths (see decision_code)
D_CE, D_SQ_VANISH, D_SQ_NONFINITE, D_MALT, D_MALT_SQUARE, D_CLEAN, D_EXTRAPOLATE, D_RESTART = range(8)


def _restart_orders(r: int) -> str:
    """Where the classes of ``r`` restarts came from: the clean logits' order and MALT's, in turn."""
    return ", ".join(("logit", "malt")[i % 2] for i in range(r))


def _stops(k: int) -> str:
    return f"; {k} targeted run{'s' if k > 1 else ''} stopped at the first checkpoint"


def decision_names(restarts: int, retries: int = 0) -> list[str]:
    """The paths a sample can take, by decision code: one per number of restarts that ran (the
    restarts' target orders take turns, the clean logits' first), then the MALT and restart paths
    followed by 1 .. ``retries`` retries of the closest class, then all of these with 1, 2, ...
    targeted runs stopped at their first checkpoint (see :func:`decision_code`)."""
    malt = "apgd-ce > malt nearest"
    targeted = [malt, *[f"{malt} > restart x{r} ({_restart_orders(r)} order)" for r in range(1, restarts + 1)]]
    paths = [
        "apgd-ce",
        f"apgd-ce > square ({VANISH})",
        f"apgd-ce > square ({NONFINITE})",
        malt,
        f"{malt} > square ({FLAT})",
        "clean",
        "extrapolate (the smaller eps's point, scaled)",
        *targeted[1:],
        *[f"{t} > retry closest x{k}" for t in targeted for k in range(1, retries + 1)],
    ]
    return [*paths, *[p + _stops(k) for k in range(1, restarts + retries + 2) for p in paths]]


def decision_code(path: torch.Tensor, retried: torch.Tensor, stopped: torch.Tensor, restarts: int, retries: int) -> torch.Tensor:
    """The code in :func:`decision_names` of each ``path`` (D_*) after ``retried`` retries (0 or
    more; only on the MALT and restart paths) with ``stopped`` targeted runs stopped."""
    ran = torch.where(path == D_MALT, 0, path - D_RESTART + 1)  # restarts that ran, on the targeted paths
    again = D_RESTART + restarts + ran * retries + retried - 1
    path = torch.where(retried > 0, again, path)
    return path + (D_RESTART + restarts + (restarts + 1) * retries) * stopped
