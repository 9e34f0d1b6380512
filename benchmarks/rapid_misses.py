"""Why did rapid leave images that autoattack's APGD-T fooled? Per image of a panel model: rapid's decision at each eps, the
clean logits' and MALT's class orders, and for every target class how many of 5 random starts of a targeted APGD run
fool it at the last eps.

    python benchmarks/rapid_misses.py builtin/vgg-att3-pc-at@seed=2 32,36 2,4   # model, images, eps grid in /255
"""

import sys

import torch

import robust_attn as ra
from robust_attn.attacks import create_attack
from robust_attn.attacks.base import Attack
from robust_attn.attacks.rapid import linearised_distances


def main() -> None:
    torch.set_num_threads(2)
    ref, images = sys.argv[1], [int(i) for i in sys.argv[2].split(",")]
    eps_grid = tuple(float(e) / 255 for e in sys.argv[3].split(","))
    model = ra.load_model(ref, "cpu", train_missing=False, progress=False)[0]
    _, x, y = next(iter(ra.load_dataset("builtin", "test", n=100).batches(100)))  # the panel's images, batch 0
    rapid = create_attack("rapid", model, channels_last=True)
    rapid.reseed(0)
    out = rapid.sweep(x, y, list(eps_grid), mode="worst-case")
    names = rapid.categorical_columns["decision"]
    apgdt = create_attack("apgd-t", model, channels_last=True, targets=1)
    for i in images:
        xi, yi = x[i : i + 1], y[i : i + 1]
        d, _, logits = linearised_distances(rapid.member(1), xi, yi, "linf")  # type: ignore[attr-defined]
        decisions = [names[int(c)] if c >= 0 else None for c in out.columns["decision"][:, i]]
        print(f"image {i} label {int(yi)}: rapid correct {[bool(out.correct[k][i]) for k in range(len(eps_grid))]}, decision {decisions}")
        print(f"  logits order {logits.argsort(1, descending=True)[0].tolist()}; MALT order {d.argsort(1)[0].tolist()}")
        for t in range(logits.shape[1]):
            if t != int(yi):
                print(f"  target {t}: fooled in {_wins(apgdt, xi, yi, eps_grid[-1], t)}/5 starts")


def _wins(apgdt: Attack, x: torch.Tensor, y: torch.Tensor, eps: float, target: int, starts: int = 5) -> int:
    """How many of ``starts`` random starts of one targeted APGD run towards ``target`` fool the image."""
    wins = 0
    for s in range(starts):
        apgdt.reseed(100 + s)
        result, fooled = x.clone(), torch.zeros(1, dtype=torch.bool)
        apgdt.run_once(x, y, eps, torch.tensor([target]), result, fooled, torch.tensor([0]))  # type: ignore[attr-defined]
        wins += int(fooled[0])
    return wins


if __name__ == "__main__":
    main()
