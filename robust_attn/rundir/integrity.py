"""Size and sha256 of the merged tables, recorded in the manifest and checked on read.

The merge renames its tables into place one by one and the manifest last; a process killed between
two renames (kill -9, power loss) leaves tables that the manifest does not describe. Reading
checks each table against the manifest's record, so such a directory is reported in one line
(and finished by rerunning the sweep, which merges again) instead of read as if it were whole."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from robust_attn.errors import RunDirError


def file_record(path: Path) -> dict[str, Any]:
    """``{"size": bytes, "sha256": hex}`` of one file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return {"size": path.stat().st_size, "sha256": digest.hexdigest()}


def mismatched(root: Path, files: dict[str, dict[str, Any]]) -> list[str]:
    """The recorded files that are missing or differ from their record."""
    bad = []
    for name, record in files.items():
        path = root / name
        if not path.is_file() or path.stat().st_size != record.get("size") or file_record(path)["sha256"] != record.get("sha256"):
            bad.append(name)
    return bad


def check_files(root: Path, files: dict[str, dict[str, Any]], rerun: str) -> None:
    """Raise one line when a table differs from the manifest's record of it."""
    bad = mismatched(root, files)
    if bad:
        raise RunDirError(
            f"{root}: {', '.join(bad)} differ from the record in manifest.json (a merge was interrupted, or the files were edited); {rerun}"
        )
