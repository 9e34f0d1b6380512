"""Observers of a sweep's progress: callables appended here are called after every batch a rank
finishes, as ``hook(rank, batches_done)``. robust-attn registers none; tools use them to watch
progress, and the tests use one to make a rank die mid-sweep (``tests/hooks/sitecustomize.py``).
This module imports nothing, so a hook can be installed before robust-attn loads."""

from __future__ import annotations

from collections.abc import Callable

BatchHook = Callable[[int, int], None]
after_batch: list[BatchHook] = []


def batch_done(rank: int, batches_done: int) -> None:
    for hook in after_batch:
        hook(rank, batches_done)
