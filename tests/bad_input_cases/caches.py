"""Bad-input rows about caches: a damaged or unreadable cached zoo checkpoint or hub conversion is
one line naming the file and the fix, found before anything trains (the zoo's own builtin/vgg
would train for minutes if it were taken for missing); training refuses fewer than one epoch.

Damaged corrupted-image files are not rows: they are remade with a printed note (exit 0), tested
in tests/test_caches.py."""

from __future__ import annotations

import builtins
import errno
import os
from pathlib import Path
from typing import Any

import torch
from badinput import Case, _sweep

import robust_attn as ra


def _cached_vgg() -> Path:
    """A cached checkpoint of the zoo's builtin/vgg-att2-dp under this test's ROBUST_ATTN_HOME, as its
    training would write it (random weights: nothing is trained)."""
    from robust_attn.zoo import ZOO, checkpoint_path

    entry = ZOO["builtin/vgg-att2-dp"]
    torch.manual_seed(0)
    model = ra.create_model(entry.model, num_classes=10, **entry.model_kwargs)
    classes = list(ra.load_dataset("builtin", "test", n=1).classes)
    meta = {
        "dataset": "builtin",
        "image_shape": [3, 32, 32],
        "classes": classes,
        "clean_accuracy": 0.1,
        "zoo_entry": entry.config(),
        "zoo_name": entry.name,
    }
    path = checkpoint_path(entry)
    ra.save_checkpoint(path, model, meta)
    return path


def _refuse_once(path: Path) -> None:
    """As root, where permissions do not bind: robust-attn's first open of ``path`` is refused
    as the kernel refuses another user's 0600 file; then the patch removes itself."""
    from robust_attn import verified

    real = builtins.open

    def refuse(file: Any, *args: Any, **kwargs: Any) -> Any:
        if Path(str(file)) == path:
            del verified.open  # type: ignore[attr-defined]
            raise PermissionError(errno.EACCES, "Permission denied", str(file))
        return real(file, *args, **kwargs)

    verified.open = refuse  # type: ignore[attr-defined]


def zero_byte_checkpoint(t: Path) -> list[str]:
    """The cached checkpoint of ``builtin/vgg-att2-dp`` is empty (0 bytes); spec ``models = ["builtin/vgg-att2-dp"]``."""
    path = _cached_vgg()
    path.write_bytes(b"")
    return _sweep(t, body="", models='["builtin/vgg-att2-dp"]')


def truncated_checkpoint(t: Path) -> list[str]:
    """The cached checkpoint of ``builtin/vgg-att2-dp`` lost its last 100 bytes; spec ``models = ["builtin/vgg-att2-dp"]``."""
    path = _cached_vgg()
    path.write_bytes(path.read_bytes()[:-100])
    return _sweep(t, body="", models='["builtin/vgg-att2-dp"]')


def edited_checkpoint(t: Path) -> list[str]:
    """One byte of the weights in the cached checkpoint of ``builtin/vgg-att2-dp`` changed (same size,
    valid header); spec ``models = ["builtin/vgg-att2-dp"]``."""
    path = _cached_vgg()
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    return _sweep(t, body="", models='["builtin/vgg-att2-dp"]')


def unreadable_checkpoint(t: Path) -> list[str]:
    """The cached checkpoint of ``builtin/vgg-att2-dp`` cannot be read by the user (another user's file,
    mode 0600; as root, where permissions do not bind, its first open is refused the same way);
    ``robust-attn zoo train builtin/vgg-att2-dp``."""
    path = _cached_vgg()
    path.chmod(0o600)
    if os.geteuid() != 0:
        path.chmod(0o000)
    else:
        _refuse_once(path)
    return ["zoo", "train", "builtin/vgg-att2-dp"]


def damaged_hub_conversion(t: Path) -> list[str]:
    """A timm model converted once from a local checkpoint, whose converted weights in the hub
    cache were then emptied (0 bytes); spec ``models = [{ref = "timm:test_efficientnet",
    checkpoint = "w.pth"}]``."""
    import timm

    from robust_attn.hub import load_timm

    torch.manual_seed(0)
    weights = t / "w.pth"
    torch.save(timm.create_model("test_efficientnet", pretrained=False, num_classes=10).state_dict(), weights)
    _, meta = load_timm("timm:test_efficientnet", "cpu", checkpoint=str(weights))
    Path(meta["cache"]).write_bytes(b"")
    return _sweep(t, body="", models=f'[{{ref = "timm:test_efficientnet", checkpoint = "{weights}"}}]')


CASES: list[Case] = [
    ("zero-byte cached zoo checkpoint", lambda t: zero_byte_checkpoint(t),
     r"zoo model builtin/vgg-att2-dp: cached checkpoint '.*builtin/vgg-att2-dp\.safetensors' is empty \(0 bytes.*\); "
     r"retrain it with `robust-attn zoo train builtin/vgg-att2-dp --retrain`, or delete the file"),
    ("truncated cached zoo checkpoint", lambda t: truncated_checkpoint(t),
     r"zoo model builtin/vgg-att2-dp: cached checkpoint '.*' is truncated or corrupt \(.* bytes, its header describes .*\); "
     r"retrain it with `robust-attn zoo train builtin/vgg-att2-dp --retrain`"),
    ("edited cached zoo checkpoint", lambda t: edited_checkpoint(t),
     r"zoo model builtin/vgg-att2-dp: cached checkpoint '.*' is damaged: its weights fail their sha256 check .*; "
     r"retrain it with `robust-attn zoo train builtin/vgg-att2-dp --retrain`"),
    ("unreadable cached zoo checkpoint", lambda t: unreadable_checkpoint(t),
     r"zoo model builtin/vgg-att2-dp: cached checkpoint '.*' cannot be read \(Permission denied: owned by .*, mode .*\); "
     r"ask its owner to make it readable \(chmod a\+r\), or set ROBUST_ATTN_HOME to a cache of your own"),
    ("damaged hub conversion", lambda t: damaged_hub_conversion(t),
     r"hub cache '.*test_efficientnet.*\.safetensors' is empty \(0 bytes.*\); delete it: the next load converts the original weights again"),
    ("train --epochs 0", lambda t: ["train", "vgg", "--epochs", "0", "--train-size", "32", "--test-size", "32", "--out", str(t / "ck")],
     r"epochs must be a whole number >= 1, got 0: 0 epochs would write an untrained checkpoint; pass --epochs 1 or more"),
    ("train --epochs -1", lambda t: ["train", "vgg", "--epochs", "-1", "--train-size", "32", "--test-size", "32", "--out", str(t / "ck")],
     r"epochs must be a whole number >= 1, got -1: "),
    ("train with an unknown recipe", lambda t: ["train", "vgg", "--recipe", "nosuch"], r"unknown recipe 'nosuch'; known: paper, cosine, fast, fgsm-at, pgd-at"),
]  # fmt: skip
