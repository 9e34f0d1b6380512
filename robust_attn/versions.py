"""Library versions, recorded in checkpoints and run manifests for reproducibility."""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("robust-attn", "torch", "torchvision", "torchattacks", "foolbox", "numpy", "seaborn"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out
