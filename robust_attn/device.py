"""Device selection: ``auto`` picks CUDA when available, else CPU.

One check serves the spec, the CLI and the API: a device that does not exist here (``cuda`` on a
machine without CUDA, ``cuda:3`` with two GPUs) or that robust-attn does not run on (``mps``) is a
one-line :class:`~robust_attn.errors.UsageError` naming it and the devices that do exist, before
any work starts."""

from __future__ import annotations

import re

import torch

from robust_attn.errors import UsageError

DEVICE_NAMES = "auto, cpu, cuda or cuda:N"
_CUDA = re.compile(r"cuda(:(\d+))?")


def check_device_name(device: object) -> str:
    """``device`` if it is a name robust-attn takes (auto, cpu, cuda, cuda:N), whether or not it
    exists on this machine (a spec may be written for another one); else a UsageError."""
    if not isinstance(device, str):
        raise UsageError(f"device must be {DEVICE_NAMES}, got {device!r}")
    if device in ("auto", "cpu") or _CUDA.fullmatch(device):
        return device
    if device == "mps":
        raise UsageError(
            f"device 'mps' (Apple GPUs) is not supported: robust-attn runs on cpu or CUDA; use {DEVICE_NAMES} "
            f"(here: {', '.join(available_devices())})"
        )
    raise UsageError(f"unknown device {device!r}; use {DEVICE_NAMES} (here: {', '.join(available_devices())})")


def available_devices() -> list[str]:
    """The devices this machine offers: ``cpu`` and one ``cuda:N`` per visible GPU."""
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return ["cpu", *(f"cuda:{i}" for i in range(gpus))]


def _missing(name: str, why: str) -> UsageError:
    return UsageError(
        f"device {name!r} is not available here ({why}); devices here: {', '.join(available_devices())}; "
        "use one of them (--device, or device in the spec), or auto"
    )


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N`` to a :class:`torch.device` that exists here."""
    if isinstance(device, torch.device):
        if device.type == "cuda":
            resolve_device(str(device))  # an API caller's torch.device("cuda:3") is checked like the name
        return device
    name = check_device_name(device)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    match = _CUDA.fullmatch(name)
    if match is None:
        return torch.device(name)
    if not torch.cuda.is_available():
        raise _missing(
            name, "no CUDA device is visible" if torch.version.cuda else f"this torch {torch.__version__} was built without CUDA"
        )
    index = match.group(2)
    if index is not None and int(index) >= torch.cuda.device_count():
        raise _missing(name, f"this machine has {torch.cuda.device_count()} CUDA device(s)")
    return torch.device(name)
