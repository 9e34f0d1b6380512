"""One writer per run directory: an exclusive lock held for as long as a command writes there.

The lock is ``flock`` on ``<run dir>/.lock`` (the kernel drops it when the process dies, so a
killed sweep leaves no stale lock). The file names its holder (pid, host, command, start time),
so a second writer is refused in one line that says who holds it; it does not wait. The file is
removed on release (after re-checking, on acquire, that the locked file is still the one at the
path), so a finished run directory holds no trace of it.

Local ranks started by the ``workers`` option write on behalf of the parent that holds the lock:
the parent passes its token in ``ROBUST_ATTN_RUN_LOCK`` and a rank whose token matches the lock
file's writes without locking again.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from robust_attn.errors import RunDirError
from robust_attn.rundir.schema import LOCK

TOKEN_ENV = "ROBUST_ATTN_RUN_LOCK"  # "<run dir>\t<token>": set by a parent for the ranks it starts


def _flock(fd: int) -> bool:
    """Take an exclusive lock on ``fd`` without waiting; False when another process holds it."""
    import fcntl  # POSIX (Linux, macOS): the platforms robust-attn runs on

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _holder(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text() or "{}"))
    except (OSError, ValueError, TypeError):
        return {}


def _describe(holder: dict[str, Any]) -> str:
    if not holder:
        return "another robust-attn process"
    command = " ".join(str(a) for a in holder.get("argv", [])) or "?"
    return f"pid {holder.get('pid', '?')} on {holder.get('host', '?')} (`{command}`, since {holder.get('started', '?')})"


class RunLock:
    """The exclusive right to write one run directory; a context manager."""

    def __init__(self, root: str | Path, instead: str = "sweep into another folder (--out)", create: bool = True) -> None:
        """``instead``: what the refused command can do other than wait, for its message;
        ``create``: make the folder if it does not exist (a sweep), else refuse (commands that
        read a run directory before they write beside it)."""
        self.root = Path(root)
        self.create = create
        self.path = self.root / LOCK
        self.instead = instead
        self.token = ""
        self._fd: int | None = None
        self._made_root = False

    def _inherit(self) -> bool:
        """Whether a parent holding this directory's lock passed it to this process (a local rank)."""
        given = os.environ.get(TOKEN_ENV, "")
        root, _, token = given.partition("\t")
        if not token or Path(root).resolve() != self.root.resolve():
            return False
        return _holder(self.path).get("token") == token

    def acquire(self) -> RunLock:
        if not self.create and not self.root.is_dir():
            raise RunDirError(f"run directory {str(self.root)!r} does not exist; run `robust-attn sweep SPEC` to create it")
        self._made_root = not self.root.exists()
        self.root.mkdir(parents=True, exist_ok=True)
        if self._inherit():
            return self
        for _ in range(20):  # the holder may remove the file between our open and our lock: retry on a new one
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            if not _flock(fd):
                os.close(fd)
                raise RunDirError(
                    f"run directory {self.root} is being written by {_describe(_holder(self.path))}; "
                    f"wait for it to finish{', or ' + self.instead if self.instead else ''}"
                )
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self._fd = fd
                self.token = secrets.token_hex(8)
                record = {
                    "pid": os.getpid(),
                    "host": socket.gethostname(),
                    "argv": ["robust-attn", *sys.argv[1:]],
                    "started": datetime.now(UTC).isoformat(timespec="seconds"),
                    "token": self.token,
                }
                os.ftruncate(fd, 0)
                os.write(fd, json.dumps(record).encode())
                return self
            os.close(fd)
            time.sleep(0.01)
        raise RunDirError(f"could not lock run directory {self.root}: its lock file keeps changing; try again")

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)  # while still locked: a waiter re-checks the inode
            if self._made_root and not any(self.root.iterdir()):
                self.root.rmdir()  # a command that failed before writing anything leaves no empty folder behind
        finally:
            os.close(self._fd)
            self._fd = None

    def env(self) -> dict[str, str]:
        """The environment a local rank needs to write under this lock."""
        return {TOKEN_ENV: f"{self.root}\t{self.token}"} if self.token else {}

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None) -> None:
        self.release()
