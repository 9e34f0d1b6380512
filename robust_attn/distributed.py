"""torch.distributed for sweeps and zoo training: one rank per process, launched by torchrun (or by
the ``workers`` option, which starts local ranks through torch's elastic launcher).

Backend gloo on CPU, nccl on GPUs (one device per rank, from LOCAL_RANK). Collectives have a
timeout, so a rank that dies ends the job with an error instead of a hang; torchrun then stops the
other ranks and exits non-zero, and rerunning the same command resumes from the finished units.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

from robust_attn.errors import RankFailed, RobustAttnError, UsageError

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
    threads divided among them) through torch's elastic launcher.

    A rank that stops on an error in the input (a :class:`RobustAttnError`) records it in a
    folder this process made (:func:`record_error`), and the same error, class and
    one line, is raised here, as one process would have raised it; a bug in a rank raises
    :class:`RankBug` carrying the rank's traceback; a rank that died without a word (a signal)
    is a :class:`RankFailed` naming it."""
    import tempfile

    import torch
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    check_workers(workers)
    threads = max(1, torch.get_num_threads() // workers)
    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=workers,
        run_id=f"robust-attn-{os.getpid()}",
        rdzv_backend="c10d",
        rdzv_endpoint="localhost:0",
        max_restarts=0,
        monitor_interval=0.2,
        start_method="spawn",
    )
    with tempfile.TemporaryDirectory(prefix="robust-attn-ranks-") as folder, _launcher_quiet():
        try:
            elastic_launch(config, _rank_main)(threads, folder, entrypoint, *args)
        except ChildFailedError as err:
            raise error_from_ranks(folder, workers, _silent_deaths(err)) from None


def _silent_deaths(err: Any) -> dict[int, str]:
    """local rank -> how it ended (``exit code 1``, ``signal SIGKILL``), from torch's report of the failed ranks."""
    out = {}
    for failure in (getattr(err, "failures", None) or {}).values():
        code = int(getattr(failure, "exitcode", 1))
        how = f"signal {failure.signal_name()}" if code < 0 else f"exit code {code}"
        out[int(getattr(failure, "local_rank", -1))] = how
    return out


@contextlib.contextmanager
def _launcher_quiet() -> Iterator[None]:
    """torch's launcher logs every failed rank with its traceback and every rank it stops; the
    ranks' own records say what happened (one line for an input error), so those logs are held
    back while local ranks run."""
    import logging

    names = [n for n in list(logging.root.manager.loggerDict) if n.startswith(("torch.distributed", "torch.multiprocessing"))]
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def usable_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def alone_on_the_host(ctx: Context | None) -> Iterator[None]:
    """Work that rank 0 does alone while its local peers wait at a barrier (the probes): it takes
    their threads for the while, so the host's cores stay busy; restored after."""
    import torch

    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    if ctx is None or ctx.world == 1 or local <= 1:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(min(usable_cores(), before * local))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def check_workers(workers: int) -> None:
    """More local ranks than cores only compete for them (and each holds its own model and data)."""
    cores = usable_cores()
    if not isinstance(workers, int) or isinstance(workers, bool) or not 1 <= workers <= cores:
        raise UsageError(f"workers must be an integer from 1 to {cores} (the CPU cores this process may use), got {workers!r}")


def _rank_main(threads: int, records: str, entrypoint: Callable[..., Any], *args: Any) -> Any:
    """A local rank: ``entrypoint(*args)`` on ``threads`` threads; an error that stops it is
    recorded in ``records`` for the parent, and the rank exits without printing it (exit code 2
    for an input error, 1 for a bug), so the parent's one report is all the user sees."""
    import torch

    torch.set_num_threads(threads)
    try:
        return entrypoint(*args)
    except KeyboardInterrupt:
        raise
    except Exception as err:
        record_error(records, err)
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        # the error has unwound every with and finally of the job; what is left is the process group's teardown, whose
        # C++ threads can abort the interpreter at exit while a peer is mid-collective ("terminate called without an
        # active exception"): the rank's record says everything, so it leaves now, with the exit code of its error
        os._exit(2 if isinstance(err, RobustAttnError) else 1)


class RankBug(RuntimeError):
    """An unexpected exception in a local rank: a bug in robust-attn, not in the input. Its message
    carries the rank's traceback, so the report of the bug is the same as in one process."""


def record_error(folder: str | Path, err: BaseException) -> Path:
    """Write what stopped this rank into ``folder`` as ``rank-<RANK>.json``: the error's class,
    message and attributes (an input error), or its traceback (a bug), and when it happened."""
    cls = type(err)
    attrs = {k: v for k, v in vars(err).items() if _json_safe(v)}
    entry = {
        "rank": int(os.environ.get("RANK", "0")),
        "local_rank": int(os.environ.get("LOCAL_RANK", "0")),
        "time": time.time(),
        "input_error": isinstance(err, RobustAttnError),
        "module": cls.__module__,
        "class": cls.__qualname__,
        "message": str(err),
        "attrs": attrs,
        "traceback": "".join(traceback.format_exception(err)),
    }
    path = Path(folder) / f"rank-{entry['rank']}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(entry))
    tmp.replace(path)  # the parent never reads half a record
    return path


def error_from_ranks(folder: str | Path, workers: int, deaths: dict[int, str]) -> BaseException:
    """The error that stopped a job of local ranks, from their records in ``folder``: the first
    error that is not a rank's report of another rank's death (a dead peer is a consequence),
    rebuilt as its own class; else the first rank that died without a record."""
    entries = []
    for path in sorted(Path(folder).glob("rank-*.json")):
        with contextlib.suppress(OSError, ValueError):
            entries.append(json.loads(path.read_text()))
    causes = sorted((e for e in entries if e.get("class") != RankFailed.__qualname__), key=lambda e: float(e.get("time", 0)))
    if causes:
        return _rebuild(causes[0], workers)
    silent = {r: how for r, how in deaths.items() if r not in {e.get("local_rank") for e in entries}}
    if silent:
        rank, how = min(silent.items())
        return RankFailed(
            f"local rank {rank} of {workers} died ({how}) without reporting an error (killed, or out of memory?); "
            "rerun the same command to resume from the finished units"
        )
    if entries:
        return _rebuild(entries[0], workers)
    return RankFailed(
        f"a local rank of {workers} failed without reporting an error; rerun the same command to resume from the finished units"
    )


def _rebuild(entry: dict[str, Any], workers: int) -> BaseException:
    """A recorded input error as its own class (message and attributes as raised); a bug as a :class:`RankBug`."""
    if not entry.get("input_error"):
        return RankBug(
            f"local rank {entry.get('local_rank', '?')} of {workers} stopped on a bug; its traceback:\n{entry.get('traceback', '')}"
        )
    cls = _error_class(str(entry.get("module", "")), str(entry.get("class", "")))
    err = cls.__new__(cls)
    Exception.__init__(err, str(entry.get("message", "")))
    err.__dict__.update(entry.get("attrs") or {})
    err.add_note(f"raised in local rank {entry.get('local_rank', '?')} of {workers}:\n{entry.get('traceback', '')}")  # shown by --debug
    return err


def _error_class(module: str, qualname: str) -> type[RobustAttnError]:
    """The class a rank raised, if it is a RobustAttnError this process can import; else the base class."""
    import importlib

    try:
        found: Any = importlib.import_module(module)
        for part in qualname.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError):
        return RobustAttnError
    return found if isinstance(found, type) and issubclass(found, RobustAttnError) else RobustAttnError


def _json_safe(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True
