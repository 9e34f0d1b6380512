"""Spawned CPU worker processes that split the machine's threads between them.

Small CNNs leave cores idle inside one multi-threaded process; training (``zoo``) and attack
sweeps (``sweeps.pool``) both run k 1-thread processes instead on a k-core CPU.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import torch


def _init_worker(threads: int) -> None:
    torch.set_num_threads(threads)


def cpu_process_pool(workers: int) -> tuple[ProcessPoolExecutor, int]:
    """A spawn-context pool of ``workers`` processes, each with this process's torch threads
    divided among them (at least one); returns it with the threads each worker got."""
    threads = max(1, torch.get_num_threads() // workers)
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker, initargs=(threads,))
    return pool, threads
