"""Users' data at scale: a streamed sweep of an ImageFolder tree of 224x224 JPEGs on timm:resnet18
(random weights, 10 classes) at several data set sizes n, side by side in one run, against the
bound measured in the same run.

For each n the script writes a folder of n generated JPEGs (smooth random images, Pillow quality
90, 10 class folders; under --data-dir, or a temporary folder removed afterwards), runs the sweep
in a child process (``stream = true``, resize 256, crop 224) and records its wall and CPU time,
images/s and peak memory: the sweep process's own peak RSS and its largest DataLoader worker's
(``getrusage``; a worker's RSS counts the pages it shares with the sweep process it forked from).

The bound: decoding the same n images alone (the sweep's DataLoader path, one worker per core)
plus the model's passes on a pre-decoded batch alone (the engine's own forward and
forward+backward calls, channels_last as a sweep runs them), as many per image as the run
directory's results.csv counts (forwards and backwards per sample, summed over its cells), timed
on min(n, --bound-images) images and scaled to n. On a CPU decoding and the passes share the
cores, so the bound is their sum; on a GPU, where they overlap, it is the larger. The model passes
are timed just before and just after the sweep and averaged: on a shared machine the load of
others moves every timing, and the two show by how much.

Targets (issue 38): peak RSS at the largest n within 1.2x of that at the smallest, and wall time
within 1.15x of the bound. The sweep runs in mode ``independent``, so every attack runs on every
image: in worst-case mode a random-weight model's clean mistakes (about 90%) would skip the
attacks, and the sweep would measure little but decoding.

    python benchmarks/data_scale.py                  # the issue's setting (1,000, 5,000, 20,000): about 4.6 h on 2 cores
    python benchmarks/data_scale.py --sizes 64 256   # the issue's attacks, small n (about 6 min)
    python benchmarks/data_scale.py --sizes 1000 5000 --attacks clean --bound-images 500   # memory over n, cheap passes

--out FILE writes the result there too (--append adds it after what FILE holds).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CLASSES = 10
SIZE = 224
PREPROCESSING: dict[str, Any] = {"resize": 256, "crop": SIZE}


# -- the data --------------------------------------------------------------------------------------
def _write_images(root: str, start: int, stop: int) -> None:
    """Images start .. stop-1: two scales of smooth random structure plus light noise (about 16 KB
    each as a quality-90 JPEG), image i in class folder i % 10, seeded by i."""
    import numpy as np
    from PIL import Image

    for i in range(start, stop):
        rng = np.random.default_rng(i)
        coarse, fine = (
            np.asarray(Image.fromarray(rng.integers(0, 256, (k, k, 3), dtype=np.uint8)).resize((SIZE, SIZE), Image.Resampling.BICUBIC))
            for k in (8, 32)
        )
        noise = rng.integers(-8, 9, (SIZE, SIZE, 3), dtype=np.int16)
        pixels = (0.7 * coarse + 0.3 * fine + noise).clip(0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(Path(root) / f"class{i % CLASSES}" / f"{i:06d}.jpg", format="JPEG", quality=90)


def generate(root: Path, n: int) -> float:
    """An ImageFolder tree of n JPEGs at ``root`` (kept when already complete); seconds taken."""
    if root.is_dir() and sum(1 for _ in root.rglob("*.jpg")) == n:
        return 0.0
    shutil.rmtree(root, ignore_errors=True)
    for c in range(CLASSES):
        (root / f"class{c}").mkdir(parents=True)
    t0 = time.perf_counter()
    starts = range(0, n, 500)
    with ProcessPoolExecutor(max_workers=os.cpu_count()) as pool:
        list(pool.map(_write_images, [str(root)] * len(starts), starts, [min(n, s + 500) for s in starts]))
    return time.perf_counter() - t0


def save_weights(path: Path) -> None:
    """timm's resnet18 with 10 classes and fixed random weights (seed 0), written once (a rewritten
    file would make the suite convert it again)."""
    import timm
    import torch

    if not path.is_file():
        torch.manual_seed(0)
        torch.save(timm.create_model("resnet18", num_classes=CLASSES).state_dict(), path)


# -- the sweep, in a child process -----------------------------------------------------------------
def attack_tables(attacks: str, eps: str) -> list[dict[str, Any]]:
    """'clean+fgsm+pgd-10' -> the spec's attack tables. Clean is FGSM's eps 0 when FGSM runs (its
    gradient pass gives the clean logits); alone, a forward pass (PGD at eps 0, labelled clean)."""
    tokens = attacks.split("+")
    tables: list[dict[str, Any]] = []
    for token in tokens:
        if token == "fgsm":
            tables.append({"name": "fgsm", "eps": ["0", eps] if "clean" in tokens else [eps]})
        elif token.startswith("pgd-") and token[4:].isdigit():
            tables.append({"name": "pgd", "steps": int(token[4:]), "eps": [eps]})
        elif token != "clean":
            raise SystemExit(f"--attacks: unknown {token!r}; join clean, fgsm and pgd-<steps> with +, e.g. clean+fgsm+pgd-10")
    if "clean" in tokens and "fgsm" not in tokens:
        tables.insert(0, {"name": "pgd", "steps": 1, "eps": ["0"], "label": "clean"})
    return tables


def sweep_spec(data_dir: Path, weights: Path, n: int, args: argparse.Namespace) -> dict[str, Any]:
    return {
        "name": f"data-scale-{n}",
        "models": [{"ref": "timm:resnet18", "checkpoint": str(weights), "num_classes": CLASSES}],
        "dataset": {"name": "imagefolder", **PREPROCESSING, "stream": True, "loader_workers": args.workers},
        "data_dir": str(data_dir),
        "n": n,
        "batch_size": args.batch_size,
        "modes": ["independent"],
        "attention_samples": 0,
        "diagnostic_samples": 0,
        "attacks": attack_tables(args.attacks, args.eps),
    }


def _cpu_seconds() -> float:
    """CPU seconds (user + system) of this process and of its children reaped so far."""
    own, reaped = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + reaped.ru_utime + reaped.ru_stime


def child(spec_path: str, result_path: str) -> None:
    """Run one sweep; write its wall and CPU time and the peak RSS of this process and of its workers."""
    import robust_attn as ra

    spec = ra.parse_spec(json.loads(Path(spec_path).read_text()))
    run_dir = Path(result_path).with_suffix("")
    t0, cpu0 = time.perf_counter(), _cpu_seconds()
    ra.run_sweep(spec, run_dir, progress=False)
    wall, cpu = time.perf_counter() - t0, _cpu_seconds() - cpu0
    rss = {
        who: resource.getrusage(which).ru_maxrss for who, which in (("self", resource.RUSAGE_SELF), ("workers", resource.RUSAGE_CHILDREN))
    }
    Path(result_path).write_text(json.dumps({"wall": wall, "cpu": cpu, "rss_kib": rss, "run_dir": str(run_dir)}))


@dataclass
class SweepRun:
    wall: float  # run_sweep's seconds (the child's start-up and imports excluded)
    cpu: float  # CPU seconds in run_sweep, its DataLoader workers included
    cells: float  # the cells' own seconds, summed (manifest)
    self_mib: float  # the sweep process's peak RSS
    workers_mib: float  # the largest DataLoader worker's peak RSS
    forwards: float  # passes per image, summed over the cells (results.csv)
    backwards: float
    accuracy: dict[str, float]


def run_child(spec: dict[str, Any], work: Path) -> SweepRun:
    """The sweep in a child process. Its memory is what the kernel kept of it (``ru_maxrss``): sampling
    /proc/<pid>/smaps_rollup while it ran slowed it by 40% (every read walks its page tables under
    the lock its allocations need)."""
    import pandas as pd

    spec_path, result_path = work / f"{spec['name']}.json", work / f"{spec['name']}.result.json"
    spec_path.write_text(json.dumps(spec))
    shutil.rmtree(result_path.with_suffix(""), ignore_errors=True)  # a run directory left from an earlier run would be resumed
    code = subprocess.run([sys.executable, __file__, "--child", str(spec_path), str(result_path)], check=False).returncode
    if code != 0:
        raise SystemExit(f"the sweep of {spec['n']} images failed (exit {code}); its output is above")
    out = json.loads(result_path.read_text())
    run_dir = Path(out["run_dir"])
    results = pd.read_csv(run_dir / "results.csv")
    per_cell = results.drop_duplicates(["model", "attack", "mode"])  # the pass counts are per cell, repeated on each eps row
    return SweepRun(
        wall=out["wall"],
        cpu=out["cpu"],
        cells=sum(c["seconds"] for c in json.loads((run_dir / "manifest.json").read_text())["cells"]),
        self_mib=out["rss_kib"]["self"] / 1024,
        workers_mib=out["rss_kib"]["workers"] / 1024,
        forwards=float(per_cell["forwards_per_sample"].sum()),
        backwards=float(per_cell["backwards_per_sample"].sum()),
        accuracy={f"{r.attack} {r.eps_label}": float(r.accuracy) for r in results.itertuples()},
    )


# -- the bound, measured in this process -----------------------------------------------------------
@dataclass
class Timed:
    wall: float
    cpu: float

    def __add__(self, other: Timed) -> Timed:
        return Timed(self.wall + other.wall, self.cpu + other.cpu)

    def scaled(self, k: float) -> Timed:
        return Timed(self.wall * k, self.cpu * k)


def timed(work: Callable[[], object]) -> Timed:
    t0, cpu0 = time.perf_counter(), _cpu_seconds()
    work()
    _synchronize()
    return Timed(time.perf_counter() - t0, _cpu_seconds() - cpu0)


def _synchronize() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def decode_alone(data_dir: Path, n: int, batch_size: int) -> Timed:
    """Decoding the n images through the sweep's DataLoader path, one worker per core."""
    import robust_attn as ra

    data = ra.load_dataset("imagefolder", "test", data_dir=data_dir, n=n, **PREPROCESSING, stream=True, loader_workers=os.cpu_count() or 1)
    count: list[int] = []
    spent = timed(lambda: count.append(sum(len(ids) for ids, _, _ in data.batches(batch_size))))
    assert count == [n], (count, n)
    return spent


class ModelAlone:
    """The engine's own passes (an FGSM evaluation's ``predict`` and ``loss_gradient``, channels_last
    as a sweep runs them) on one pre-decoded batch of the data."""

    def __init__(self, data_dir: Path, weights: Path, batch_size: int) -> None:
        import torch

        import robust_attn as ra
        from robust_attn.attacks.native import FGSM

        data = ra.load_dataset("imagefolder", "test", data_dir=data_dir, n=batch_size, **PREPROCESSING, stream=True)
        _, x, y = next(data.batches(batch_size))
        model, _ = ra.load_model("timm:resnet18", checkpoint=weights, num_classes=CLASSES)
        attack = FGSM(model, channels_last=True)
        self.x = x.to(attack.device).contiguous(memory_format=torch.channels_last)
        y = y.to(attack.device)
        self.steps = {"forward": attack.predict, "backward": lambda b: attack.loss_gradient(b, y[: len(b)])}
        self.batch_size = batch_size

    def per_image(self, images: int, backward: bool) -> dict[str, Timed]:
        """Seconds per image of a forward pass alone and (with ``backward``) of a forward+backward
        pass, each timed over ``images`` images after a batch of warm-up."""
        sizes = [min(self.batch_size, images - s) for s in range(0, images, self.batch_size)]
        kinds = ("forward", "backward") if backward else ("forward",)
        return {kind: self._timed(self.steps[kind], sizes).scaled(1 / images) for kind in kinds}

    def _timed(self, step: Callable[[Any], object], sizes: list[int]) -> Timed:
        step(self.x)  # warm-up, not timed
        return timed(lambda: [step(self.x[:k]) for k in sizes])


def model_passes(n: int, per_image: dict[str, Timed], forwards: float, backwards: float) -> Timed:
    """n images' passes: ``backwards`` forward+backward passes and ``forwards - backwards``
    forward passes alone per image (results.csv counts the forward of a forward+backward too)."""
    total = per_image["forward"].scaled(n * (forwards - backwards))
    return total + per_image["backward"].scaled(n * backwards) if backwards else total


# -- the report ------------------------------------------------------------------------------------
def cpu_name() -> str:
    """lscpu's model name (else the platform's)."""
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in text.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or "unknown CPU"


def header(args: argparse.Namespace) -> list[str]:
    import torch

    device = f"GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else "CPU"
    return [
        "# python benchmarks/data_scale.py " + shlex.join(sys.argv[1:]),
        f"# {datetime.date.today().isoformat()}; {cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; passes on the {device}; load average at the start {os.getloadavg()[0]:.2f}",
        f"# timm:resnet18 (random weights, {CLASSES} classes); generated {SIZE}x{SIZE} JPEGs (quality 90), resize 256, crop {SIZE}; "
        f"streamed (stream = true, loader_workers = {args.workers}); batch {args.batch_size}; mode independent; "
        f"attacks {args.attacks} at eps {args.eps}; model passes of the bound timed on min(n, {args.bound_images}) images, "
        "before and after the sweep",
    ]


COLUMNS = "{:>7} {:>8} {:>7} {:>8} {:>9} {:>17} {:>8} {:>10} {:>9} {:>8} {:>10}"
TITLES = (
    "n",
    "sweep s",
    "img/s",
    "cells s",
    "decode s",
    "model s (bef/aft)",
    "bound s",
    "wall/bound",
    "cpu/bound",
    "RSS MiB",
    "worker MiB",
)


@dataclass
class Measured:
    n: int
    sweep: SweepRun
    decode: Timed
    before: Timed  # the model passes alone, timed before the sweep
    after: Timed  # and after it
    gpu: bool

    @property
    def model(self) -> Timed:
        return (self.before + self.after).scaled(0.5)

    @property
    def bound(self) -> Timed:
        if self.gpu:
            return Timed(max(self.decode.wall, self.model.wall), self.decode.cpu + self.model.cpu)
        return self.decode + self.model

    def row(self) -> str:
        s, b = self.sweep, self.bound
        return COLUMNS.format(
            f"{self.n:,}",
            f"{s.wall:.1f}",
            f"{self.n / s.wall:.2f}",
            f"{s.cells:.1f}",
            f"{self.decode.wall:.1f}",
            f"{self.model.wall:.1f} ({self.before.wall:.0f}/{self.after.wall:.0f})",
            f"{b.wall:.1f}",
            f"{s.wall / b.wall:.3f}",
            f"{s.cpu / b.cpu:.3f}",
            f"{s.self_mib:.0f}",
            f"{s.workers_mib:.0f}",
        )

    def note(self) -> str:
        accuracy = ", ".join(f"{k} {v:.1%}" for k, v in self.sweep.accuracy.items())
        return (
            f"n = {self.n:,}: {self.sweep.forwards:g} forward passes per image, {self.sweep.backwards:g} of them with a backward "
            f"(results.csv); decoding alone {self.n / self.decode.wall:,.0f} images/s; accuracy {accuracy}"
        )


def measure(n: int, root: Path, weights: Path, args: argparse.Namespace) -> Measured:
    """One size: generate; time the model passes alone; sweep in a child; decode alone; time the
    model passes alone again."""
    import torch

    folder = root / f"n{n}"
    made = generate(folder, n)
    print(f"n = {n:,}: images generated in {made:.1f} s", flush=True)
    model = ModelAlone(folder, weights, args.batch_size)
    images, backward = min(n, args.bound_images), any(t != "clean" for t in args.attacks.split("+"))
    first = model.per_image(images, backward)
    sweep = run_child(sweep_spec(folder, weights, n, args), root)
    decode = decode_alone(folder, n, args.batch_size)
    second = model.per_image(images, backward)
    before, after = (model_passes(n, t, sweep.forwards, sweep.backwards) for t in (first, second))
    measured = Measured(n, sweep, decode, before, after, torch.cuda.is_available())
    print(measured.note(), flush=True)
    return measured


def verdict(results: list[Measured]) -> list[str]:
    """The two targets: peak RSS at the largest n over the smallest, and wall / bound at each n."""
    small, large = results[0], results[-1]
    rss, worker = large.sweep.self_mib / small.sweep.self_mib, large.sweep.workers_mib / small.sweep.workers_mib
    ratios = ", ".join(f"{m.n:,}: {m.sweep.wall / m.bound.wall:.3f}" for m in results)
    return [
        f"peak RSS of the sweep process at n = {large.n:,} / at n = {small.n:,}: {large.sweep.self_mib:.0f} / {small.sweep.self_mib:.0f} "
        f"MiB = {rss:.3f} (target <= 1.2); the largest DataLoader worker's {worker:.3f}",
        f"wall / bound (run_sweep's wall time over decoding alone + model passes alone): {ratios} (target <= 1.15)",
    ]


def run(args: argparse.Namespace) -> list[str]:
    """Every size in turn, smallest first; the result's lines (header, notes, table, verdict)."""
    lines = header(args)
    print("\n".join(lines), flush=True)
    results: list[Measured] = []
    with tempfile.TemporaryDirectory(prefix="data-scale-") as tmp:
        root = args.data_dir or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        os.environ["ROBUST_ATTN_HOME"] = str(root / "home")  # the converted weights, for this process and the sweeps'
        weights = root / "resnet18-random.pth"
        save_weights(weights)
        for n in sorted(args.sizes):
            results.append(measure(n, root, weights, args))
    table = [COLUMNS.format(*TITLES), *(m.row() for m in results)]
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    return [*lines, *(m.note() for m in results), "", *table, "", *verdict(results), f"# load average at the end: {load}"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 20000], help="data set sizes n, one sweep each")
    p.add_argument("--attacks", default="clean+fgsm+pgd-10", help="clean, fgsm, pgd-<steps> joined by + (default clean+fgsm+pgd-10)")
    p.add_argument("--eps", default="4/255")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="the sweep's DataLoader workers (default: one per core)")
    p.add_argument("--bound-images", type=int, default=2000, help="images the bound's model passes are timed on (scaled to n)")
    p.add_argument("--data-dir", type=Path, help="where the image folders are written and kept (default: a temporary folder)")
    p.add_argument("--out", type=Path, help="also write the result to this file (benchmarks/results/data_scale.txt)")
    p.add_argument("--append", action="store_true", help="add the result to --out after what it holds (a second run's block)")
    p.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return child(*args.child)
    attack_tables(args.attacks, args.eps)  # a bad --attacks fails before any work
    lines = run(args)
    print("\n".join(lines[lines.index("") :]))
    if args.out:
        before = args.out.read_text() + "\n" if args.append and args.out.is_file() else ""
        args.out.write_text(before + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
