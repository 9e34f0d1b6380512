"""The suite's cache of converted hub weights: ``$ROBUST_ATTN_HOME/hub/<source>/...safetensors``.

An original file (a RobustBench ``.pt``, a timm checkpoint) is read, verified and fitted once;
the fitted state dict is written as safetensors with JSON metadata (source, name, data set, threat
model, the sha256 of the original file and of the weights, and the original's size and mtime).
Later loads read only the cache: the original is not opened again while its size and mtime are
unchanged (or when it is gone). Every read of the cache is verified (:mod:`robust_attn.verified`):
a damaged or unreadable cache file is a one-line CheckpointError naming it and the fix (delete it:
the next load converts the original again), never converted over in silence; a cache file that
no longer stands for its original (changed since, or fitted to another architecture) is converted
again with a printed note.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from robust_attn import verified
from robust_attn.verified import file_sha256

METADATA_KEY = "robust_attn_hub"
FORMAT_VERSION = 1
HUB_CACHE = verified.Entry(
    METADATA_KEY, "hub cache", "delete it: the next load converts the original weights again (timm's pretrained ones: with --download)"
)


def hub_home() -> Path:
    """``$ROBUST_ATTN_HOME/hub`` (see :func:`robust_attn.zoo.zoo_home`)."""
    from robust_attn.zoo import zoo_home

    return zoo_home() / "hub"


def original_stamp(path: Path) -> dict[str, Any]:
    """What identifies an original file without reading it: its path, size and mtime."""
    st = path.stat()
    return {"path": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def original_record(paths: list[Path]) -> dict[str, Any]:
    """Stamps and sha256 of the original files (read once, at conversion)."""
    return {"originals": [original_stamp(p) for p in paths], "original_sha256": [file_sha256(p) for p in paths]}


def read_cache_metadata(cache: Path) -> dict[str, Any] | None:
    """The metadata of a cache file (from its header: structure and size checked); None when there
    is none or it has another format version (then it is converted again, with a note). A damaged or
    unreadable file raises a one-line CheckpointError."""
    meta = verified.read_header(cache, HUB_CACHE)
    return meta if meta is not None and meta.get("format") == FORMAT_VERSION else None


def verify_cache(cache: Path) -> dict[str, Any] | None:
    """As :func:`read_cache_metadata`, with every weight hashed (remembered while the file is
    unchanged): for a check of every cached entry before a sweep's work starts."""
    meta = verified.verify(cache, HUB_CACHE)
    return meta if meta is not None and meta.get("format") == FORMAT_VERSION else None


def is_current(meta: dict[str, Any], originals: list[Path]) -> bool:
    """Whether a cache entry still stands for ``originals``: each is gone, or unchanged since conversion."""
    stamps = meta.get("originals", [])
    if len(stamps) != len(originals):
        return False
    for path, stamp in zip(originals, stamps):
        if path.is_file():
            now = original_stamp(path)
            if (now["size"], now["mtime_ns"]) != (stamp.get("size"), stamp.get("mtime_ns")):
                return False
    return True


def replaced_because(old: dict[str, Any], new: dict[str, Any]) -> str:
    """Why a cache file that was not damaged is converted again (compares its record with the new one)."""
    if old.get("format") != FORMAT_VERSION:
        return f"it was written in format {old.get('format')!r} by another version of robust-attn"
    if [s.get("path") for s in old.get("originals", [])] != [s.get("path") for s in new.get("originals", [])]:
        return "it was converted from other original files"
    if old.get("originals") != new.get("originals"):
        return "its original file changed since it was converted"
    if old.get("num_classes") != new.get("num_classes"):
        return f"it was converted for {old.get('num_classes')} classes, {new.get('num_classes')} were asked"
    return "its weights no longer fit the architecture's definition (the hub's code changed)"


def write_cache(cache: Path, state: dict[str, torch.Tensor], metadata: dict[str, Any]) -> dict[str, Any]:
    """Write the fitted ``state`` with ``metadata`` (plus format and weights sha256); returns the
    metadata. Replacing an earlier conversion prints a note saying why."""
    why: str | None = None
    try:
        old = verified.read_header(cache, HUB_CACHE)
    except verified.EntryError as err:  # callers read the cache first, so only a file changed since
        old, why = None, f"it {'could not be read' if err.unreadable else 'was damaged'} ({err.why})"
    meta = verified.write(cache, state, {"format": FORMAT_VERSION, **metadata}, HUB_CACHE)
    if old is not None:
        why = replaced_because(old, meta)
    if why is not None:
        print(f"note: converted {meta.get('source', 'the')} weights of {meta.get('name', '?')} again into {cache}: {why}", flush=True)
    return meta


def read_cache(cache: Path, meta: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The cached weights, verified against the sha256 in their metadata."""
    got = verified.read_tensors(cache, HUB_CACHE)
    if got is None:
        raise verified.damaged(cache, HUB_CACHE, "gone (deleted since its metadata was read)")
    return got[0]
