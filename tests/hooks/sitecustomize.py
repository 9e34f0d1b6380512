"""Fault injection for the distributed tests, installed through Python's sitecustomize hook (put
this folder on PYTHONPATH): with ``ROBUST_ATTN_FAULT=RANK:BATCHES`` that rank exits hard, as a
crashed or killed process would, once it has finished that many batches. Production code has no
branch for it: this registers an ordinary observer of finished batches (robust_attn.hooks)."""

import os

_spec = os.environ.get("ROBUST_ATTN_FAULT")
if _spec:
    from robust_attn import hooks

    _rank, _, _after = _spec.partition(":")
    _done = [0]

    def _die(rank: int, batches_done: int) -> None:
        _done[0] += 1
        if rank == int(_rank) and _done[0] >= int(_after or 0):
            os._exit(17)

    hooks.after_batch.append(_die)
