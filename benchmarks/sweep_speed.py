"""FGSM and PGD epsilon sweeps: native engine vs torchattacks vs foolbox, one process.

    python benchmarks/sweep_speed.py                      # builtin/vgg, 2,000 test images
    python benchmarks/sweep_speed.py --model builtin/vgg-att3-pc -n 500

Prints seconds, images x eps per second, the ratio to the fastest run, and whether the
per-sample outcomes agree with the native fp32 sweep in torchattacks' memory format (NCHW);
channels_last (the sweep default) and folded BatchNorm (opt-in) are faster and may flip a sample
whose logits nearly tie.
Also times the FGSM lower bound: one forward+backward plus K forwards per image on the same
model and memory format. Each time is the best of --repeat runs after a warm-up batch.
"""

from __future__ import annotations

import argparse
import copy
import time
from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

import robust_attn as ra
from robust_attn.attacks import create_attack

FGSM_EPS = [k / 255 for k in (0, 1, 2, 3, 4, 6, 8, 12, 16)]
PGD_EPS = [k / 255 for k in (2, 4, 8)]


REPEAT = 2


def run(
    attack_name: str, backend: str, model: nn.Module, data: ra.ImageDataset, eps: list[float], mode: str, batch: int, **params: object
) -> tuple[float, torch.Tensor]:
    """Best of REPEAT timed sweeps (after one warm-up batch), and the per-sample outcomes."""
    attack = create_attack(attack_name, model, backend=backend, **params)
    _, x0, y0 = next(data.batches(batch))
    attack.sweep(x0, y0, eps, mode=mode)  # type: ignore[arg-type]
    best = float("inf")
    for _ in range(REPEAT):
        correct = []
        t0 = time.perf_counter()
        for _, x, y in data.batches(batch):
            correct.append(attack.sweep(x, y, eps, mode=mode).correct)  # type: ignore[arg-type]
        best = min(best, time.perf_counter() - t0)
    return best, torch.cat(correct, dim=1)


def fgsm_lower_bound(model: nn.Module, data: ra.ImageDataset, eps: list[float], batch: int) -> tuple[float, float]:
    """Best time of the bound (one forward+backward and K - 1 forwards per image; eps = 0 reuses
    the clean pass) and of the native independent sweep, timed in alternation so that drifts
    in machine speed hit both alike."""
    bound_model = copy.deepcopy(model).to(memory_format=torch.channels_last).eval()
    attack = create_attack("fgsm", copy.deepcopy(model), channels_last=True)
    best_bound = best_native = float("inf")
    for _ in range(REPEAT + 2):
        t0 = time.perf_counter()
        _bound_pass(bound_model, data, eps, batch)
        best_bound = min(best_bound, time.perf_counter() - t0)
        t0 = time.perf_counter()
        for _, x, y in data.batches(batch):
            attack.sweep(x, y, eps, mode="independent")
        best_native = min(best_native, time.perf_counter() - t0)
    return best_bound, best_native


def _bound_pass(model: nn.Module, data: ra.ImageDataset, eps: list[float], batch: int) -> None:
    for _, x, y in data.batches(batch):
        x = x.contiguous(memory_format=torch.channels_last).requires_grad_(True)
        (grad,) = torch.autograd.grad(F.cross_entropy(model(x), y), x)
        with torch.inference_mode():
            for e in eps:
                if e:
                    model((x.detach() + e * grad.sign()).clamp_(0, 1)).argmax(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="builtin/vgg")
    parser.add_argument("-n", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=250)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--skip-pgd", action="store_true")
    parser.add_argument("--skip-fgsm", action="store_true")
    parser.add_argument("--no-bf16", action="store_true", help="skip bf16 (slow on CPUs without bf16 arithmetic, e.g. AVX2-only)")
    parser.add_argument("--repeat", type=int, default=REPEAT, help="timed repetitions per run; the best is reported")
    args = parser.parse_args()
    globals()["REPEAT"] = args.repeat
    if args.threads:
        torch.set_num_threads(args.threads)
    model, _meta = ra.load_model(args.model, "cpu")
    data = ra.load_dataset("builtin", "test", n=args.n)
    params = sum(p.numel() for p in model.parameters())
    print(
        f"model {args.model} ({params:,} parameters), {len(data)} images, batch {args.batch_size}, {torch.get_num_threads()} threads, torch {torch.__version__}"
    )

    def fresh() -> nn.Module:  # the native engine switches its model to channels_last in place
        return copy.deepcopy(model)

    all_variants = [  # (label, backend, mode, keyword arguments)
        ("native fp32 (worst-case)", "native", "worst-case", {"channels_last": True}),
        ("native fp32 (independent)", "native", "independent", {"channels_last": True}),
        ("native fp32 NCHW (independent)", "native", "independent", {}),
        ("native fp32 folded BN (indep.)", "native", "independent", {"channels_last": True, "fold_bn": True}),
        ("native bf16 (independent)", "native", "independent", {"channels_last": True, "precision": "bf16"}),
        ("torchattacks (loop over eps)", "torchattacks", "independent", {}),
        ("foolbox (epsilons list)", "foolbox", "independent", {}),
    ]
    variants = [v for v in all_variants if not (args.no_bf16 and "bf16" in v[0])]

    # several ranks (torch.distributed, the sweep's workers option): benchmarks/distributed_speed.py

    def runs(attack: str, eps: list[float], **params: object) -> list[tuple[str, Callable[[], tuple[float, torch.Tensor]]]]:
        out: list[tuple[str, Callable[[], tuple[float, torch.Tensor]]]] = [
            (label, lambda b=backend, m=mode, kw=kw: run(attack, b, fresh(), data, eps, m, args.batch_size, **params, **kw))  # type: ignore[misc]
            for label, backend, mode, kw in variants
        ]
        return out

    if not args.skip_fgsm:
        report("FGSM", runs("fgsm", FGSM_EPS), len(data) * len(FGSM_EPS), reference="native fp32 NCHW (independent)")
        bound, native = fgsm_lower_bound(fresh(), data, FGSM_EPS, args.batch_size)
        print(
            f"  lower bound (1 fwd+bwd + {len(FGSM_EPS) - 1} fwd per image, channels_last): {bound:.2f} s;"
            f" native fp32 independent timed alternately with it: {native:.2f} s = {native / bound:.3f}x the bound"
        )
    if not args.skip_pgd:
        pgd = runs("pgd", PGD_EPS, steps=10, random_start=False)
        report("PGD-10 (no random start, step 2.5*eps/10)", pgd, len(data) * len(PGD_EPS), reference="native fp32 NCHW (independent)")


LAST: dict[str, float] = {}


def report(title: str, runs: list[tuple[str, Callable[[], tuple[float, torch.Tensor]]]], work: int, reference: str) -> None:
    results = {name: fn() for name, fn in runs}
    fastest = min(s for s, _ in results.values())
    ref = results[reference][1]
    print(f"\n{title}: {work:,} image x eps")
    print(f"  {'run':<32}{'seconds':>9}{'img*eps/s':>11}{'x fastest':>11}  accuracy per eps / outcomes vs {reference}")
    for name, (sec, correct) in results.items():
        LAST[name] = sec
        acc = " ".join(f"{a:.3f}" for a in correct.float().mean(dim=1).tolist())
        if "worst-case" in name:
            agree = "worst-case (<= independent: " + ("yes" if bool((correct <= ref).all()) else "NO") + ")"
        else:
            changed = int((correct != ref).any(dim=0).sum())
            agree = "identical" if changed == 0 else f"{changed} of {correct.shape[1]} samples differ"
        print(f"  {name:<32}{sec:>9.2f}{work / sec:>11.0f}{sec / fastest:>11.2f}  [{acc}] {agree}")
    ta = results["torchattacks (loop over eps)"][0]
    fb = results["foolbox (epsilons list)"][0]
    for name in results:
        if name.startswith("native"):
            print(f"  {name}: {ta / results[name][0]:.2f}x faster than torchattacks, {fb / results[name][0]:.2f}x faster than foolbox")
    if "native bf16 (independent)" in results:
        speedup = results["native fp32 (independent)"][0] / results["native bf16 (independent)"][0]
        print(f"  bf16 speed-up over fp32 (independent): {speedup:.2f}x")


if __name__ == "__main__":
    main()
