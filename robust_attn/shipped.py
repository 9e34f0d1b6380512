"""The zoo's shipped weights: trained checkpoints committed with the package (``robust_attn/weights``,
package data), each beside its provenance record (the entry's configuration, the command that
trained it, torch version, CPU, training time, clean accuracy, the file's size and sha256).

A zoo name loads its shipped file when there is one, verified against its record (an edited or
truncated file is one line naming it, never loaded); the cache serves the entries without shipped
weights (other seeds, user recipes) and ``robust-attn zoo train NAME --retrain``. A shipped file is
never written by training. Like timm's ``pretrained=True``, the networks are the same everywhere:
every committed study names weights whose sha256 equals a shipped file's.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from robust_attn.errors import CheckpointError
from robust_attn.rundir.integrity import file_record

WEIGHTS = Path(__file__).resolve().parent / "weights"
RESTORE = "restore it (git checkout -- robust_attn/weights, or reinstall robust-attn)"


def shipped_path(relative: Path) -> Path:
    """Where the shipped checkpoint of a zoo name lies (``relative``: its path under the cache's
    ``zoo/`` folder, e.g. builtin/vgg@seed=1.safetensors)."""
    return WEIGHTS / relative


def record_path(path: Path) -> Path:
    return path.with_suffix(".json")


def shipped_record(path: Path) -> dict[str, Any] | None:
    """The provenance record of a shipped checkpoint, or None when nothing is shipped for it."""
    if not path.exists() and not record_path(path).exists():
        return None
    where = record_path(path)
    try:
        record = json.loads(where.read_text())
    except (OSError, ValueError) as err:
        raise CheckpointError(f"the provenance record {where} of shipped weights cannot be read ({err}); {RESTORE}") from None
    if not isinstance(record, dict) or not isinstance(record.get("sha256"), str) or not isinstance(record.get("size"), int):
        raise CheckpointError(f"the provenance record {where} of shipped weights lacks its size and sha256; {RESTORE}")
    return record


def verify_shipped(path: Path) -> dict[str, Any] | None:
    """The provenance record of a shipped checkpoint whose file matches it (size and sha256); None
    when nothing is shipped; a one-line CheckpointError naming the file otherwise."""
    record = shipped_record(path)
    if record is None:
        return None
    if not path.is_file():
        raise CheckpointError(f"shipped weights {path} are missing beside their record {record_path(path).name}; {RESTORE}")
    found = file_record(path)
    if found["size"] != record["size"] or found["sha256"] != record["sha256"]:
        what = f"{found['size']} bytes, expected {record['size']}" if found["size"] != record["size"] else "their sha256 differs"
        raise CheckpointError(f"shipped weights {path} do not match their provenance record ({what}: edited or truncated); {RESTORE}")
    return record


def ship(cached: Path, target: Path, meta: dict[str, Any], command: str) -> dict[str, Any]:
    """Copy a trained checkpoint into the shipped weights with its provenance record (maintainers:
    ``robust-attn zoo ship NAME``); returns the record."""
    import torch

    from robust_attn.versions import cpu_name

    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(cached, target)
    found = meta.get("train_result")
    result: dict[str, Any] = found if isinstance(found, dict) else {}
    record = {
        "name": meta.get("zoo_name"),
        "zoo_entry": meta.get("zoo_entry"),
        "command": command,
        "torch": torch.__version__,
        "cpu": cpu_name(),
        "threads": result.get("threads"),
        "training_seconds": result.get("seconds"),
        "clean_accuracy": meta.get("clean_accuracy"),
        "weights_sha256": meta.get("weights_sha256"),
        "shipped": time.strftime("%Y-%m-%d", time.gmtime()),
        **file_record(target),
    }
    record_path(target).write_text(json.dumps(record, indent=1) + "\n")
    return record


def shipped_entries() -> list[tuple[str, dict[str, Any]]]:
    """(zoo name, record) of every shipped checkpoint, in file order."""
    out = []
    for record in sorted(WEIGHTS.rglob("*.json")) if WEIGHTS.is_dir() else []:
        data = json.loads(record.read_text())
        out.append((str(data.get("name")), data))
    return out
