"""torch.distributed for sweeps and zoo training: one rank per process, launched by torchrun (or by
the ``workers`` option, which starts local ranks through torch's elastic launcher).

Backend gloo on CPU, nccl on GPUs (one device per rank, from LOCAL_RANK). Collectives have a
timeout, so a rank that dies ends the job with an error instead of a hang; torchrun then stops the
other ranks and exits non-zero, and rerunning the same command resumes from the finished units.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

from robust_attn.errors import RankFailed, UsageError

TIMEOUT_ENV = "ROBUST_ATTN_DIST_TIMEOUT"  # seconds a rank waits for the others in a collective


@dataclass(frozen=True)
class Context:
    """This process's place in the job."""

    rank: int
    world: int
    local_rank: int
    backend: str

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, index: int) -> bool:
        """Whether unit ``index`` (a batch, a zoo entry) is this rank's: round-robin over ranks."""
        return index % self.world == self.rank


def is_main_process() -> bool:
    """Rank 0 of a job (or a process outside any job)."""
    return int(os.environ.get("RANK", "0")) == 0


def launched() -> bool:
    """True inside a torchrun (or elastic-launch) job with more than one rank."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def context(device: torch.device | None = None) -> Context | None:
    """Join the job's process group (once) and return this rank's context; None outside a job."""
    import torch
    import torch.distributed as dist

    if not launched():
        return None
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = device is not None and device.type == "cuda"
    backend = "nccl" if cuda else "gloo"
    if not dist.is_initialized():
        timeout = datetime.timedelta(seconds=float(os.environ.get(TIMEOUT_ENV, "1800")))
        if cuda:
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend, timeout=timeout)
    return Context(dist.get_rank(), dist.get_world_size(), local_rank, str(dist.get_backend()))


def device_for(ctx: Context | None, device: torch.device) -> torch.device:
    """One GPU per rank: cuda:LOCAL_RANK; CPU stays CPU."""
    import torch

    return torch.device("cuda", ctx.local_rank) if ctx is not None and device.type == "cuda" else device


def _collective(what: str, call: Callable[[], Any]) -> Any:
    try:
        return call()
    except RuntimeError as err:  # gloo/nccl report a dead peer or a timeout as RuntimeError
        text = str(err)
        why = "its connection closed" if "closed by peer" in text else "timed out" if "imeout" in text or "timed out" in text else "failed"
        raise RankFailed(f"another rank stopped during {what} ({why}); rerun the same command to resume from the finished units") from err


def broadcast(ctx: Context | None, obj: Any, what: str = "a broadcast") -> Any:
    """Rank 0's ``obj`` on every rank."""
    if ctx is None:
        return obj
    import torch.distributed as dist

    box = [obj if ctx.is_main else None]
    _collective(what, lambda: dist.broadcast_object_list(box, src=0))
    return box[0]


def gather(ctx: Context | None, obj: Any, what: str = "a gather") -> list[Any] | None:
    """Every rank's ``obj`` as a list on rank 0 (None on the others)."""
    if ctx is None:
        return [obj]
    import torch.distributed as dist

    out: list[Any] | None = [None] * ctx.world if ctx.is_main else None
    _collective(what, lambda: dist.gather_object(obj, out, dst=0))
    return out


def barrier(ctx: Context | None, what: str = "a barrier") -> None:
    if ctx is not None:
        import torch.distributed as dist

        _collective(what, dist.barrier)


def shutdown() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def launch_local(workers: int, entrypoint: Callable[..., Any], *args: Any) -> None:
    """Run ``entrypoint(*args)`` in ``workers`` local ranks (spawned processes, the machine's
    threads divided among them) through torch's elastic launcher; raises if a rank fails."""
    import torch
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    check_workers(workers)
    threads = max(1, torch.get_num_threads() // workers)
    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=workers, run_id=f"robust-attn-{os.getpid()}", rdzv_backend="c10d",
                          rdzv_endpoint="localhost:0", max_restarts=0, monitor_interval=0.2, start_method="spawn")  # fmt: skip
    try:
        elastic_launch(config, _with_threads)(threads, entrypoint, *args)
    except Exception as err:  # ChildFailedError and friends: name the failed rank in one line
        failures = getattr(err, "failures", {}) or {}
        ranks = ", ".join(str(f.rank) for f in failures.values()) if failures else "?"
        raise RankFailed(f"local rank {ranks} of {workers} failed ({type(err).__name__}); rerun the same command to resume") from err


def usable_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def check_workers(workers: int) -> None:
    """More local ranks than cores only compete for them (and each holds its own model and data)."""
    cores = usable_cores()
    if not isinstance(workers, int) or isinstance(workers, bool) or not 1 <= workers <= cores:
        raise UsageError(f"workers must be an integer from 1 to {cores} (the CPU cores this process may use), got {workers!r}")


def _with_threads(threads: int, entrypoint: Callable[..., Any], *args: Any) -> Any:
    import torch

    torch.set_num_threads(threads)
    return entrypoint(*args)
