"""Which training eps suits the built-in data? FGSM adversarial training (the zoo's ``fgsm-at``
recipe and budget) at several eps, each model scored clean and under worst-case APGD-CE.

    python benchmarks/at_eps_curve.py                       # builtin/vgg-at at 1, 2, 4, 8 /255, seed 0
    python benchmarks/at_eps_curve.py --train-eps 2 4 --model vgg-att3-pc -n 300

Models are trained into a temporary cache (two local ranks on 2 cores, as ``zoo train`` does);
the table gives clean accuracy (2,000 test images, as in the zoo), the guard's kept epoch, and
APGD-CE (100 steps) accuracy at each test eps on ``-n`` test images, next to the clean-trained
zoo entry of the same architecture and seed.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import replace

import torch

import robust_attn as ra
from robust_attn import zoo

TEST_EPS = [1 / 255, 2 / 255, 4 / 255, 8 / 255]


def robust_accuracy(model: torch.nn.Module, n: int) -> list[float]:
    data = ra.load_dataset("builtin", "test", n=n)
    attack = ra.create_attack("apgd", model, steps=100, channels_last=True)
    parts = []
    for b, (_, x, y) in enumerate(data.batches(250)):
        attack.reseed(b)
        parts.append(attack.sweep(x, y, [0.0, *TEST_EPS], mode="worst-case").correct)
    return torch.cat(parts, 1).float().mean(1).tolist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="vgg")
    parser.add_argument("--train-eps", type=float, nargs="+", default=[1, 2, 4, 8], help="training eps in /255 units")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-n", type=int, default=500, help="test images for APGD-CE")
    args = parser.parse_args()
    base = zoo.get_entry(f"builtin/{args.model}-at")
    clean_ref = zoo.with_seed(f"builtin/{args.model}", args.seed)
    rows = []
    clean_model, clean_card = ra.load_model(clean_ref, "cpu", progress=False)
    rows.append((f"clean training ({clean_ref})", clean_card.clean_accuracy, None, None, robust_accuracy(clean_model, args.n)))
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["ROBUST_ATTN_HOME"] = tmp
        names = []
        for e in args.train_eps:
            entry = replace(base, name=f"builtin/curve-{args.model}-at{e:g}", recipe_params={"train_eps": e / 255}, seed=args.seed)
            zoo.ZOO[entry.name] = entry
            names.append(entry.name)
        t0 = time.perf_counter()
        ra.train_entries(names, device="cpu", progress=True)
        train_s = time.perf_counter() - t0
        for e, name in zip(args.train_eps, names):
            model, card = ra.load_model(name, "cpu", progress=False)
            meta = card.recorded
            guard = meta.get("guard", {})
            rows.append(
                (
                    f"FGSM-AT at {e:g}/255",
                    meta["clean_accuracy"],
                    guard.get("kept_epoch"),
                    meta["train_result"]["seconds"],
                    robust_accuracy(model, args.n),
                )
            )
    print(
        f"\nbuiltin/{args.model}, seed {args.seed}, {base.epochs} epochs of {base.train_size:,} images; training wall time {train_s:.0f} s "
        f"for {len(names)} models on {torch.get_num_threads()} cores; APGD-CE 100 steps, worst-case, {args.n} test images\n"
    )
    eps_cols = " | ".join(f"APGD-CE {e * 255:g}/255" for e in TEST_EPS)
    print(f"| training | clean (2,000 images) | kept epoch | train time (s) | {eps_cols} |")
    print("|---|---:|---:|---:|" + "---:|" * len(TEST_EPS))
    for label, clean, kept, secs, acc in rows:
        cells = " | ".join(f"{a:.1%}" for a in acc[1:])
        print(f"| {label} | {clean:.1%} | {kept if kept is not None else '-'} | {f'{secs:.0f}' if secs else '-'} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
