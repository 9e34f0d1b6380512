"""What decides a run's numbers besides its inputs: library versions and the compute
environment, recorded in checkpoints and run manifests."""

from __future__ import annotations

import platform
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

# CPU features that change which kernels torch runs (and so the floating-point order)
_CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "amx_bf16", "amx_int8", "asimd", "sve")


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("robust-attn", "torch", "torchvision", "torchattacks", "foolbox", "numpy", "seaborn"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


@cache
def _cpu() -> tuple[str, list[str]]:
    name, flags = platform.processor() or platform.machine(), list[str]()
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return name, flags
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and value.strip():
            name = value.strip()
        elif key.strip() in ("flags", "Features"):
            present = set(value.split())
            flags = [f for f in _CPU_FLAGS if f in present]
            break
    return name, flags


def cpu_name() -> str:
    """The CPU's model name (/proc/cpuinfo), or what the platform says."""
    return _cpu()[0]


def environment() -> dict[str, Any]:
    """What bit-identical results depend on: the CPU (model, the instruction-set features torch
    dispatches on), the torch build and the thread count. Equal environments and inputs give
    equal numbers; a different CPU or torch build may round differently."""
    import torch

    name, flags = _cpu()
    return {
        "cpu": name,
        "cpu_flags": flags,
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch_build": {
            "version": torch.__version__,
            "git": torch.version.git_version,
            "cuda": torch.version.cuda,
            "mkldnn": torch.backends.mkldnn.is_available(),
        },
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
    }
