"""Sweeps and zoo training on torch.distributed ranks against one process, on the CPU.

    python benchmarks/distributed_speed.py            # builtin/vgg, 500 test images; 2 zoo entries

Rows: one process with all threads; one rank with one thread; N ranks (the ``workers`` option,
which starts local ranks through torch's elastic launcher) with one thread each. Times are wall
times of run_sweep / train_entries, rank start-up included. "Outcomes" compares the per-sample
table with the one-thread run's.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

import robust_attn as ra
from robust_attn.sweeps import parse_spec, run_sweep

ATTACKS = {
    "PGD-10 (worst-case)": [{"name": "pgd", "steps": 10, "eps": ["1/255", "2/255", "4/255", "8/255"]}],
    "PGD-10 (independent)": [{"name": "pgd", "steps": 10, "eps": ["1/255", "2/255", "4/255", "8/255"]}],
    "APGD-CE 100 (worst-case)": [{"name": "apgd", "steps": 100, "eps": ["1/255", "2/255", "4/255", "8/255"]}],
}


def sweep(model: str, n: int, attacks: list[dict], mode: str, threads: int, workers: int, out: Path) -> tuple[float, pd.DataFrame]:
    torch.set_num_threads(threads)
    spec = parse_spec(
        {
            "name": "bench",
            "models": [model],
            "n": n,
            "batch_size": 50,
            "modes": [mode],
            "attention_samples": 0,
            "diagnostic_samples": 0,
            "workers": workers,
            "attacks": attacks,
        }
    )
    t0 = time.perf_counter()
    run_sweep(spec, out, progress=False)
    return time.perf_counter() - t0, pd.read_parquet(out / "samples.parquet").drop(columns=["forwards", "backwards"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="builtin/vgg")
    parser.add_argument("-n", type=int, default=500)
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--skip-zoo", action="store_true")
    args = parser.parse_args()
    cores = torch.get_num_threads()
    ra.load_model(args.model, "cpu", progress=False)  # trained before timing
    print(f"{args.model}, {args.n} images, batch 50, {cores} cores, torch {torch.__version__}\n")
    print(
        f"| sweep | {cores}-thread process (s) | 1 rank, 1 thread (s) | {args.ranks} ranks x 1 thread (s) | speed-up over the {cores}-thread process | outcomes |"
    )
    print("|---|---:|---:|---:|---:|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for label, attacks in ATTACKS.items():
            mode = "independent" if "independent" in label else "worst-case"
            many, ref = sweep(args.model, args.n, attacks, mode, cores, 1, Path(tmp) / f"{label}-many")
            one, single = sweep(args.model, args.n, attacks, mode, 1, 1, Path(tmp) / f"{label}-one")
            ranks, shared = sweep(args.model, args.n, attacks, mode, cores, args.ranks, Path(tmp) / f"{label}-ranks")
            same = "identical" if shared.equals(single) else f"{int((shared['correct'] != single['correct']).sum())} differ"
            same_threads = (
                "" if ref.equals(single) else f" ({int((ref['correct'] != single['correct']).sum())} differ from the {cores}-thread run)"
            )
            print(f"| {label} | {many:.1f} | {one:.1f} | {ranks:.1f} | {many / ranks:.2f}x | {same}{same_threads} |", flush=True)
        torch.set_num_threads(cores)
        if not args.skip_zoo:
            zoo_rows(Path(tmp), cores, args.ranks)


def zoo_rows(tmp: Path, cores: int, ranks: int) -> None:
    """Two quick-zoo architectures on 5,000 images for 2 epochs: serial in one process with all
    threads, serial with one thread, and spread over ranks of one thread each."""
    from robust_attn import zoo

    entries = [zoo.ZooEntry(f"builtin/bench-{m}", m, dict(zoo._CPU_KWARGS), epochs=2, train_size=5000) for m in ("vgg", "vgg-att3-pc")]
    for e in entries:
        zoo.ZOO[e.name] = e
    times, weights = {}, {}
    for label, threads, workers in ((f"{cores}-thread process", cores, 1), ("1 thread", 1, 1), (f"{ranks} ranks x 1 thread", cores, ranks)):
        os.environ["ROBUST_ATTN_HOME"] = str(tmp / label.replace(" ", "_"))
        torch.set_num_threads(threads)
        t0 = time.perf_counter()
        metas = ra.train_entries([e.name for e in entries], device="cpu", progress=False, workers=workers)
        times[label] = time.perf_counter() - t0
        weights[label] = [m["weights_sha256"] for m in metas.values()]
    torch.set_num_threads(cores)
    base = f"{cores}-thread process"
    rank_label = f"{ranks} ranks x 1 thread"
    same = "identical to the 1-thread run" if weights[rank_label] == weights["1 thread"] else "differ from the 1-thread run"
    print(
        f"\nzoo training, 2 entries x 2 epochs x 5,000 images: {base} {times[base]:.1f} s, 1 thread {times['1 thread']:.1f} s, "
        f"{rank_label} {times[rank_label]:.1f} s: {times[base] / times[rank_label]:.2f}x; weights {same}"
    )


if __name__ == "__main__":
    main()
