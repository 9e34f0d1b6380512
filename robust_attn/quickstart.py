"""The one-command pipeline: quick zoo -> attacks/quickstart.toml sweep -> report."""

from __future__ import annotations

import time
from pathlib import Path

from robust_attn.device import resolve_device
from robust_attn.distributed import usable_cores
from robust_attn.reports import Report, make_report
from robust_attn.sweeps import load_spec, run_sweep
from robust_attn.zoo import is_zoo_ref, shipped_metadata, train_entries, trained_metadata

PACKAGED_SPEC = Path(__file__).parent / "specs" / "quickstart.toml"


def quickstart_spec_path() -> Path:
    """``attacks/quickstart.toml`` in the working directory (users edit it), else the packaged copy."""
    local = Path("attacks") / "quickstart.toml"
    return local if local.is_file() else PACKAGED_SPEC


def quickstart(out: str | Path = "runs/quickstart", *, device: str = "auto", progress: bool = True) -> Report:
    """Load the shipped quick-zoo models (train any missing), run the quickstart sweep (resuming) and write the report."""
    t0 = time.perf_counter()
    spec_path = quickstart_spec_path()
    spec = load_spec(spec_path).with_overrides(device=device)
    if resolve_device(spec.device).type == "cpu" and spec.workers == 1:
        spec = spec.with_overrides(workers=min(2, usable_cores()))  # small models: one 1-thread rank per core beats one process
    zoo_models = [n for n in spec.models if is_zoo_ref(n)]
    missing = [n for n in zoo_models if trained_metadata(n) is None]
    if progress:
        ships = sum(shipped_metadata(n) is not None for n in zoo_models)
        which = f" on the built-in data: {', '.join(missing)}" if missing else ""
        print(
            f"[1/3] models: {ships} shipped with the package, {len(zoo_models) - ships - len(missing)} cached, {len(missing)} to train{which}"
        )
    train_entries(missing, device=device, progress=progress)
    if progress:
        print(f"[2/3] sweep {spec_path} -> {out}")
    run_sweep(spec, out, progress=progress)
    if progress:
        print(f"[3/3] report -> {out}/report.pdf")
    report = make_report(out, progress=progress)
    if progress:
        print(f"done in {time.perf_counter() - t0:.0f} s")
    return report
