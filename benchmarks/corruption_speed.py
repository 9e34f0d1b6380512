"""Speed of the 15 CIFAR-10-C corruptions at every severity on the built-in 32x32 test images.

    python benchmarks/corruption_speed.py -n 500

Prints images per second for each corruption and severity (wall clock and CPU time of this
process), and the projected time to corrupt 10,000 images at all 15 x 5 (750,000 images), the
budget being "no slower than evaluating them with a small CNN on 2 cores" (about 2-3 minutes).
CPU time is the steadier number on a shared machine.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

import robust_attn as ra
from robust_attn.corruptions import CORRUPTIONS, SEVERITIES, corrupt


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (what ``lscpu`` prints), else platform's guess."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=500, help="images per corruption and severity (default 500)")
    parser.add_argument("--corruptions", nargs="*", default=list(CORRUPTIONS), help="a subset of the 15 names")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    images = ra.load_dataset("builtin", "test", n=args.n).images.numpy()
    ids = np.arange(len(images))
    corrupt(images[:8], "zoom_blur", 1, seed=args.seed, sample_ids=ids[:8])  # warm imports and caches
    print(f"{len(images)} built-in {images.shape[2]}x{images.shape[3]} images; CPU: {cpu_model()}")
    print(f"{'corruption':18s} " + " ".join(f"{'sev ' + str(s):>13s}" for s in SEVERITIES) + "   (images/s wall | cpu)")
    wall_total = cpu_total = 0.0
    for name in args.corruptions:
        cells = []
        for severity in SEVERITIES:
            wall, cpu = time.perf_counter(), time.process_time()
            corrupt(images, name, severity, seed=args.seed, sample_ids=ids)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            wall_total += wall * 10_000 / len(images)
            cpu_total += cpu * 10_000 / len(images)
            cells.append(f"{len(images) / wall:6.0f}|{len(images) / max(cpu, 1e-9):6.0f}")
        print(f"{name:18s} " + " ".join(cells), flush=True)
    count = len(args.corruptions) * len(SEVERITIES) * 10_000
    print(
        f"projected for 10,000 images x {len(args.corruptions)} corruptions x 5 severities ({count:,} images): "
        f"{wall_total:.0f} s wall, {cpu_total:.0f} s CPU ({count / max(cpu_total, 1e-9):,.0f} images/s of CPU time)"
    )


if __name__ == "__main__":
    main()
