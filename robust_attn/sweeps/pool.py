"""Worker processes that run native attack sweeps batch by batch on the CPU.

Small CNNs leave cores idle inside one multi-threaded process: on 2 cores, two 1-thread
processes ran the independent PGD sweep of benchmarks/sweep_speed.py on the zoo VGG 1.38x
faster than one 2-thread process. Batches keep their boundaries and random seeds, and the
convolutions do not split a sample across threads, so per-sample outcomes equal a
one-process run's (tested).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait

import numpy as np
import torch

from robust_attn.attacks.base import Attack, Mode
from robust_attn.workers import cpu_process_pool

# indices, correct (K, B), pred (K, B), clean (B,), extra per-sample columns ((B,) or (K, B))
BatchResult = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]


def sweep_batch(
    attack: Attack, seed: int, idx: torch.Tensor, x: torch.Tensor, y: torch.Tensor, eps: list[float], mode: Mode
) -> BatchResult:
    """One batch of a sweep cell, its random starts seeded by ``seed``, as numpy arrays."""
    attack.reseed(seed)
    out = attack.sweep(x, y, eps, mode=mode)
    columns = {k: v.detach().cpu().numpy() for k, v in out.columns.items()}
    return idx.numpy(), out.correct.cpu().numpy(), out.pred.cpu().numpy(), out.clean_pred.cpu().numpy(), columns


class BatchPool:
    """``workers`` spawned processes sharing the machine's threads; reuse one across cells
    (starting a worker imports torch: seconds)."""

    def __init__(self, workers: int) -> None:
        if workers < 2:
            raise ValueError(f"a BatchPool needs at least 2 workers, got {workers}")
        self.workers = workers
        self._pool, _ = cpu_process_pool(workers)

    def sweep(
        self, attack: Attack, batches: Iterable[tuple[int, torch.Tensor, torch.Tensor, torch.Tensor]], eps: list[float], mode: Mode
    ) -> Iterator[BatchResult]:
        """Run ``attack.sweep`` on each (seed, indices, images, labels) batch; yields results
        as they finish (any order). At most two batches per worker are in flight, so memory
        stays bounded however many batches there are."""
        if attack.backend != "native":
            raise ValueError(f"worker processes run native attacks only, not {attack.backend!r}; use workers = 1")
        attack.model.share_memory()  # tasks then carry handles to the weights, not copies
        pending: set[Future[BatchResult]] = set()
        for seed, idx, x, y in batches:
            if len(pending) >= 2 * self.workers:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                yield from (f.result() for f in done)
            pending.add(self._pool.submit(sweep_batch, attack, seed, idx, x, y, list(eps), mode))
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            yield from (f.result() for f in done)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> BatchPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
