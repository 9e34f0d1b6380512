"""Speed of the threat models beyond the white-box eps-ball, side by side in one run.

Corruptions: making the 15 corruptions x 5 severities of N built-in test images (the sweep's cache
cold) against evaluating them on builtin/vgg (target: making <= 1x evaluating), and the second
model's run, which reads the cache. Transfer: a matrix of S sources x T targets makes its images
once per source (S crafting passes) where running each pair separately would make S x T.

    python benchmarks/threat_models_speed.py -n 10000            # the issue's setting
    python benchmarks/threat_models_speed.py -n 2000 --transfer-n 200
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import torch

import robust_attn as ra
from robust_attn.attacks.registry import dry_evaluation
from robust_attn.corruptions import CORRUPTIONS, SEVERITIES
from robust_attn.versions import cpu_name


def corruptions(n: int, batch: int) -> None:
    data = ra.load_dataset("builtin", "test", n=n)
    attack = dry_evaluation("corruptions")
    t0 = time.perf_counter()
    made = {}
    for start in range(0, n, batch):
        ids = np.arange(start, min(n, start + batch))
        clean = data.images[ids].numpy()
        for c in CORRUPTIONS:
            for s in SEVERITIES:
                made[(start, c, s)] = attack.corrupted(clean, c, s, ids)
    making = time.perf_counter() - t0
    model, _ = ra.load_model("builtin/vgg", train_missing=False)
    evaluator = ra.create_evaluation("corruptions", model, channels_last=True)
    t0 = time.perf_counter()
    for images in made.values():
        evaluator.predict_uint8(images)
    evaluating = time.perf_counter() - t0
    images = n * len(CORRUPTIONS) * len(SEVERITIES)
    print(
        f"corruptions: {images:,} images made in {making:.1f} s ({images / making:,.0f} img/s), evaluated on builtin/vgg in "
        f"{evaluating:.1f} s ({images / evaluating:,.0f} img/s): making / evaluating = {making / evaluating:.2f} (target <= 1)"
    )
    before = os.environ.get("ROBUST_ATTN_HOME")
    with tempfile.TemporaryDirectory() as home:
        os.environ["ROBUST_ATTN_HOME"] = home
        os.symlink(os.path.join(os.path.expanduser("~/.cache/robust-attn"), "zoo"), os.path.join(home, "zoo"))
        spec = ra.parse_spec(
            {
                "models": ["builtin/vgg", "builtin/vgg@seed=1"],
                "n": n,
                "batch_size": batch,
                "attention_samples": 0,
                "diagnostic_samples": 0,
                "attacks": [{"name": "corruptions"}],
            }
        )
        t0 = time.perf_counter()
        root = ra.run_sweep(spec, os.path.join(home, "run"), progress=True)
        total = time.perf_counter() - t0
        cells = {c["model"]: c["seconds"] for c in ra.load_run(root).manifest["cells"]}
        print(
            f"sweep of two models (cold cache): {total:.1f} s; first model {cells['builtin/vgg']:.1f} s (makes the images), second "
            f"{cells['builtin/vgg@seed=1']:.1f} s (reads them): the second model is {cells['builtin/vgg'] / cells['builtin/vgg@seed=1']:.1f}x faster"
        )
    if before is None:  # the transfer part reads the real cache again
        os.environ.pop("ROBUST_ATTN_HOME", None)
    else:
        os.environ["ROBUST_ATTN_HOME"] = before


def transfer(n: int) -> None:
    models = ["builtin/vgg", "builtin/vgg@seed=1", "builtin/vgg-att3-pc", "builtin/vgg-att3-pc@seed=1"]
    loaded = {m: ra.load_model(m, train_missing=False)[0] for m in models}
    _, x, y = next(ra.load_dataset("builtin", "test", n=n).batches(n))
    t0 = time.perf_counter()
    for src in models:
        adv = ra.create_attack("pgd", loaded[src], steps=10, channels_last=True)(x, y, 4 / 255)
        for tgt in models:
            loaded[tgt](adv)
    shared = time.perf_counter() - t0
    t0 = time.perf_counter()
    for src in models:
        for tgt in models:
            adv = ra.create_attack("pgd", loaded[src], steps=10, channels_last=True)(x, y, 4 / 255)
            loaded[tgt](adv)
    separate = time.perf_counter() - t0
    print(
        f"transfer 4 x 4 (PGD-10, {n} images, one eps): one crafting pass per source {shared:.1f} s, per pair {separate:.1f} s "
        f"({separate / shared:.2f}x)"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", type=int, default=10_000)
    p.add_argument("--batch-size", type=int, default=250)
    p.add_argument("--transfer-n", type=int, default=500)
    args = p.parse_args()
    print(f"machine: {cpu_name()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}")
    corruptions(args.n, args.batch_size)
    transfer(args.transfer_n)


if __name__ == "__main__":
    main()
