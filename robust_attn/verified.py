"""Cache entries that carry their own check, verified on every read.

Every cache of robust-attn (zoo checkpoints, hub conversions, corrupted images) is one safetensors
file: tensors plus a JSON record under one metadata key. The record holds the sha256 of the tensors
(``weights_sha256``; ``extra_sha256`` for tensors kept beside the weights, such as a resumable
run's optimiser state), and safetensors refuses a file whose size differs from what its header
describes, so a file carries its size and checksum with no second file to keep in step. A read
tells three cases apart:

- missing: ``None``, and the caller makes the entry;
- damaged (empty, truncated, not safetensors, no record, tensors changed on disk): :class:`EntryError`
  with ``unreadable`` False;
- unreadable (permissions, an I/O error): :class:`EntryError` with ``unreadable`` True, naming the
  file's owner and mode.

The message is one line naming the file and the fix that the caller's :class:`Entry` describes.
A full check hashes every tensor; it is remembered for the life of the process per file identity
(device, inode, size, mtime), so asking again is free until the file changes. As in git's "racy"
check, a file modified in the last two seconds is not remembered: file times tick in jiffies, so
an edit that soon after the check might leave them unchanged.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import stat
import struct
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from robust_attn.atomic import atomic_write
from robust_attn.errors import CheckpointError

Tensors = dict[str, torch.Tensor]
UNREADABLE_FIX = "ask its owner to make it readable (chmod a+r), or set ROBUST_ATTN_HOME to a cache of your own"
_MAX_HEADER = 100_000_000  # safetensors' own limit on the JSON header
RACY_NS = 2_000_000_000  # a file modified this recently is hashed again on the next check


def tensors_sha256(tensors: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 over tensor names, dtypes, shapes and bytes in name order."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def all_weights(tensors: Tensors) -> tuple[Tensors, Tensors]:
    """Every tensor is covered by ``weights_sha256``; none is extra."""
    return tensors, {}


@dataclass(frozen=True)
class Entry:
    """One kind of verified file: where its record lives and how its problems are reported.

    Messages read ``{label} '{path}' is {why}; {fix}`` (damaged) and ``{label} '{path}' cannot be
    read ({why}); {unreadable_fix}``."""

    key: str  # the safetensors metadata key holding the JSON record
    label: str  # e.g. "zoo model builtin/vgg: cached checkpoint"
    fix: str  # what to do about a damaged file
    unreadable_fix: str = UNREADABLE_FIX
    split: Callable[[Tensors], tuple[Tensors, Tensors]] = all_weights  # (weights, extras) of the stored tensors
    contents: str = "weights"  # what the tensors are, for the message of a failed sha256 check


class EntryError(CheckpointError):
    """A verified file that cannot be used: ``why`` it cannot, and whether it was ``unreadable``
    (permissions, I/O) rather than damaged."""

    def __init__(self, message: str, path: Path, why: str, unreadable: bool = False) -> None:
        super().__init__(message)
        self.path, self.why, self.unreadable = path, why, unreadable

    def __reduce__(self) -> tuple[type[EntryError], tuple[str, Path, str, bool]]:
        return type(self), (str(self), self.path, self.why, self.unreadable)  # whole, when a rank sends it to another process


def damaged(path: Path, entry: Entry, why: str) -> EntryError:
    """The error for a file that is there but cannot be trusted."""
    return EntryError(f"{entry.label} {str(path)!r} is {why}; {entry.fix}", path, why)


def unreadable(path: Path, entry: Entry, err: OSError) -> EntryError:
    """The error for a file the user cannot read (``err`` from opening it)."""
    why = access_problem(path, err)
    return EntryError(f"{entry.label} {str(path)!r} cannot be read ({why}); {entry.unreadable_fix}", path, why, unreadable=True)


def access_problem(path: Path, err: OSError) -> str:
    """``Permission denied: owned by alice (uid 1000), mode 0600``, as far as the file's stat tells."""
    text = err.strerror or type(err).__name__
    try:
        st = os.stat(path)
    except OSError:
        return text
    return f"{text}: owned by {_owner(st.st_uid)}, mode {stat.S_IMODE(st.st_mode):04o}"


def _owner(uid: int) -> str:
    """``alice (uid 1000)``; the bare uid where the user database does not know it (or there is none)."""
    try:
        import pwd

        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except (ImportError, KeyError):
        return f"uid {uid}"


def _structure_problem(path: Path, size: int, err: Exception) -> str:
    """Why safetensors refused a file: cut off (its header says how long it should be) or not safetensors at all."""
    detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    try:
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(n)) if 0 < n <= min(size - 8, _MAX_HEADER) else None
        ends = [int(v["data_offsets"][1]) for k, v in (header or {}).items() if k != "__metadata__"]
    except (OSError, ValueError, TypeError, KeyError, IndexError, struct.error, AttributeError):
        ends = []
    if ends and 8 + n + max(ends) != size:
        expected = 8 + n + max(ends)
        cut = "truncated" if size < expected else "longer than its header says"
        return f"{cut} or corrupt ({size:,} bytes, its header describes {expected:,})"
    return f"corrupt or not a safetensors file ({detail})"


def read_header(path: str | Path, entry: Entry) -> dict[str, Any] | None:
    """The file's JSON record, read from its header (no tensor is read); None when there is no file.

    Refuses (:class:`EntryError`) a path that is not a regular file, an unreadable file, an empty
    one, one safetensors cannot parse or whose size differs from its header, and one without a
    record under ``entry.key``."""
    path = Path(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as err:
        raise unreadable(path, entry, err) from None
    if not stat.S_ISREG(st.st_mode):
        raise damaged(path, entry, "not a file (a folder or a device stands in its place)")
    try:
        with open(path, "rb"):  # safetensors' own error would hide the errno of a permission problem
            pass
    except OSError as err:
        raise unreadable(path, entry, err) from None
    if st.st_size == 0:
        raise damaged(path, entry, "empty (0 bytes: cut off when it was written, or emptied since)")
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get(entry.key)
    except (SafetensorError, OSError, ValueError) as err:
        raise damaged(path, entry, _structure_problem(path, st.st_size, err)) from None
    if raw is None:
        raise damaged(path, entry, f"not written by robust-attn (it has no {entry.key} metadata)")
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError as err:
        raise damaged(path, entry, f"corrupt (malformed metadata: {err})") from None
    if not isinstance(meta, dict):
        raise damaged(path, entry, f"corrupt (its metadata is a JSON {type(meta).__name__}, not an object)")
    return meta


def _identity(path: Path) -> tuple[str, int, int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return str(path.absolute()), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


_VERIFIED: dict[tuple[tuple[str, int, int, int, int], str], dict[str, Any]] = {}


def read_tensors(path: str | Path, entry: Entry) -> tuple[Tensors, dict[str, Any]] | None:
    """(tensors, record) of a file whose tensors match their sha256; None when there is no file."""
    path = Path(path)
    before = _identity(path)
    meta = read_header(path, entry)
    if meta is None:
        return None
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise damaged(path, entry, _structure_problem(path, path.stat().st_size, err)) from None
    weights, extra = entry.split(tensors)
    if tensors_sha256(weights) != meta.get("weights_sha256"):
        raise damaged(path, entry, f"damaged: its {entry.contents} fail their sha256 check (changed on disk after they were written)")
    if "extra_sha256" in meta and tensors_sha256(extra) != meta["extra_sha256"]:
        raise damaged(path, entry, "damaged: its extra tensors fail their sha256 check (changed on disk after they were written)")
    if before is not None and before == _identity(path) and time.time_ns() - before[4] > RACY_NS:
        _VERIFIED[(before, entry.key)] = copy.deepcopy(meta)
    return tensors, meta


def verify(path: str | Path, entry: Entry) -> dict[str, Any] | None:
    """The record of a file that passes the full check (every tensor hashed), or None when there
    is no file; remembered until the file changes."""
    path = Path(path)
    ident = _identity(path)
    if ident is not None and (ident, entry.key) in _VERIFIED:
        return copy.deepcopy(_VERIFIED[(ident, entry.key)])
    got = read_tensors(path, entry)
    return None if got is None else got[1]


def write(path: str | Path, tensors: Tensors, record: dict[str, Any], entry: Entry) -> dict[str, Any]:
    """Write ``tensors`` with ``record`` plus their sha256 (``weights_sha256``, and ``extra_sha256``
    when ``entry.split`` finds extras) atomically; returns the record as written."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    weights, extra = entry.split(tensors)
    meta = {k: v for k, v in record.items() if k not in ("weights_sha256", "extra_sha256")}
    meta["weights_sha256"] = tensors_sha256(weights)
    if extra:
        meta["extra_sha256"] = tensors_sha256(extra)
    atomic_write(Path(path), lambda tmp: save_file(tensors, tmp, metadata={entry.key: json.dumps(meta)}))
    return meta


def check_writable(path: str | Path, what: str, fix: str) -> None:
    """Fail now, in one line, if a file could not be written at ``path`` (its folder cannot be made
    or refuses a new file), rather than after the minutes of work that would produce it."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".probe")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        where = err.filename if isinstance(err.filename, str) else str(path.parent)
        raise CheckpointError(f"cannot write {what} {str(path)!r} ({err.strerror or err} at {where}); {fix}") from None
