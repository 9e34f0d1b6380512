"""Strong attacks on the zoo VGG: native APGD-CE vs torchattacks' APGD per eps, the autoattack
worst-case sweep vs torchattacks' four attacks (MultiAttack) looped over eps, and one FMN run vs
APGD-CE at each eps, and native Square vs torchattacks' Square. One process, fp32, timed side by side in one run.

    python benchmarks/strong_attacks.py                 # builtin/vgg, 500 images (APGD/FMN), 100 (Square, AutoAttack)
    python benchmarks/strong_attacks.py -n 200 --aa-n 50

Every row prints its seconds, forward/backward passes per image where counted, robust accuracy at
each eps, and per-sample agreement where defined (native APGD from torchattacks' own random start).
"""

from __future__ import annotations

import argparse
import time

import torch

import robust_attn as ra
from robust_attn.attacks import create_attack
from robust_attn.attacks.base import CostCounter

EPS = [1 / 255, 2 / 255, 4 / 255]


def _fmt(acc: list[float]) -> str:
    return "  ".join(f"{e * 255:.0f}/255: {a:6.1%}" for e, a in zip(EPS, acc))


def apgd_rows(model: torch.nn.Module, data: ra.ImageDataset, batch: int, steps: int) -> dict[str, float]:
    """Per eps, independent: native APGD-CE (default channels_last; and NCHW from torchattacks' start)
    against torchattacks.APGD with the same steps."""
    import torchattacks

    out = {}
    for eps in EPS:
        times, correct = {}, {}
        for label in ("native", "native-same-start", "torchattacks"):
            t0, parts = time.perf_counter(), []
            for b, (_, x, y) in enumerate(data.batches(batch)):
                if label == "torchattacks":
                    adv = torchattacks.APGD(model, eps=eps, steps=steps, seed=b, loss="ce")(x, y)
                    with torch.inference_mode():
                        parts.append(model(adv).argmax(1) == y)
                else:
                    attack = create_attack("apgd", model, steps=steps, channels_last=label == "native")
                    attack.reseed(b)  # the stream torchattacks draws from with seed=b
                    parts.append(attack.sweep(x, y, [eps], mode="independent").correct[0])
            times[label], correct[label] = time.perf_counter() - t0, torch.cat(parts)
        same = int((correct["native-same-start"] == correct["torchattacks"]).sum())
        print(
            f"APGD-CE {steps} steps, eps {eps * 255:.0f}/255: native {times['native']:.1f} s ({correct['native'].float().mean():.1%}), "
            f"torchattacks {times['torchattacks']:.1f} s ({correct['torchattacks'].float().mean():.1%}): {times['torchattacks'] / times['native']:.2f}x; "
            f"from the same start (NCHW, {times['native-same-start']:.1f} s) {same}/{len(data)} samples agree",
            flush=True,
        )
        out[f"apgd_{eps * 255:.0f}"] = times["native"]
    return out


def _timed(obj: object, method: str, seconds: dict[str, float], key: str) -> None:
    """Add the time spent in ``obj.method`` to ``seconds[key]`` (an instance-level wrapper)."""
    inner = getattr(obj, method)

    def wrapper(*args: object, **kwargs: object) -> object:
        t0 = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            seconds[key] = seconds.get(key, 0.0) + time.perf_counter() - t0

    setattr(obj, method, wrapper)


def _members(seconds: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.1f} s" for k, v in seconds.items())


def autoattack_rows(model: torch.nn.Module, data: ra.ImageDataset, batch: int) -> None:
    """The native worst-case autoattack sweep vs torchattacks' APGD/APGDT/FAB/Square, MultiAttack per eps."""
    import torchattacks

    t0, parts, costs, native_s = time.perf_counter(), [], [0, 0], {}  # type: ignore[var-annotated]
    for b, (_, x, y) in enumerate(data.batches(batch)):
        attack = create_attack("autoattack", model, channels_last=True)  # the sweep's default layout
        for name, member in attack.members:  # type: ignore[attr-defined]
            _timed(member, "minimise" if name == "fab-t" else "perturb", native_s, name)
        attack.reseed(b)
        out = attack.sweep(x, y, EPS, mode="worst-case")
        parts.append(out.correct)
        f, bw = attack.cost
        costs[0] += f
        costs[1] += bw
    native_t = time.perf_counter() - t0
    native_acc = torch.cat(parts, 1).float().mean(1).tolist()
    print(
        f"autoattack worst-case sweep (native APGD-CE, APGD-T, FAB-T, L-inf Square): {native_t:.1f} s, "
        f"{costs[0] / len(data):,.0f} forwards and {costs[1] / len(data):,.0f} backwards per image; {_fmt(native_acc)}",
        flush=True,
    )
    print(f"  per member: {_members(native_s)}", flush=True)
    counted = CostCounter(model.to(memory_format=torch.contiguous_format)).eval()  # torchattacks' FAB needs NCHW
    t0, parts, lib_s = time.perf_counter(), [], {}  # type: ignore[var-annotated]
    for eps in EPS:
        correct = []
        for b, (_, x, y) in enumerate(data.batches(batch)):
            members = [
                torchattacks.APGD(counted, eps=eps, steps=100, seed=b, loss="ce"),
                torchattacks.APGDT(counted, eps=eps, steps=100, seed=b, n_classes=10),
                torchattacks.FAB(counted, eps=eps, steps=100, multi_targeted=True, n_classes=10, seed=b),
                torchattacks.Square(counted, eps=eps, n_queries=5000, seed=b),
            ]
            for name, member in zip(("apgd-ce", "apgd-t", "fab-t", "square"), members):
                _timed(member, "forward", lib_s, name)
            adv = torchattacks.MultiAttack(members)(x, y)
            with torch.inference_mode():
                correct.append(model(adv).argmax(1) == y)
        parts.append(torch.cat(correct))
    lib_t = time.perf_counter() - t0
    lib_acc = [float(p.float().mean()) for p in parts]
    print(
        f"torchattacks MultiAttack(APGD 100, APGDT, FAB, Square) per eps: {lib_t:.1f} s, {counted.forwards / len(data):,.0f} forwards and "
        f"{counted.backwards / len(data):,.0f} backwards per image; {_fmt(lib_acc)}",
        flush=True,
    )
    print(f"  per member: {_members(lib_s)}", flush=True)
    worst = max(n - t for n, t in zip(native_acc, lib_acc))
    print(f"autoattack: {lib_t / native_t:.2f}x faster; native accuracy minus torchattacks' at most {worst * 100:+.1f} points", flush=True)


def square_rows(model: torch.nn.Module, data: ra.ImageDataset, batch: int, queries: int) -> None:
    """Native L-inf Square (default channels_last) against torchattacks' Square from the same seed, per eps."""
    import torchattacks

    for eps in EPS:
        times, correct = {}, {}
        for label in ("native", "torchattacks"):
            t0, parts = time.perf_counter(), []
            for b, (_, x, y) in enumerate(data.batches(batch)):
                attack = create_attack("square", model, queries=queries, channels_last=True)
                attack.reseed(b)
                if label == "native":
                    adv = attack(x, y, eps)
                else:
                    model.to(memory_format=torch.contiguous_format)
                    adv = torchattacks.Square(model, eps=eps, n_queries=queries, seed=attack.call_seed())(x, y)
                with torch.inference_mode():
                    parts.append(model(adv).argmax(1) == y)
            times[label], correct[label] = time.perf_counter() - t0, torch.cat(parts)
        same = int((correct["native"] == correct["torchattacks"]).sum())
        print(
            f"Square {queries} queries, eps {eps * 255:.0f}/255: native {times['native']:.1f} s ({correct['native'].float().mean():.1%}), "
            f"torchattacks {times['torchattacks']:.1f} s ({correct['torchattacks'].float().mean():.1%}): "
            f"{times['torchattacks'] / times['native']:.2f}x; {same}/{len(data)} samples agree",
            flush=True,
        )


FMN_CONFIGS = ((100, 0.05), (50, 0.3))  # the default; half the steps with a faster epsilon factor


def fmn_rows(model: torch.nn.Module, data: ra.ImageDataset, batch: int, apgd_times: dict[str, float]) -> None:
    """One FMN run (all eps at once) per configuration against APGD-CE at each eps."""
    apgd = create_attack("apgd", model, steps=100, channels_last=True)
    apgd_acc = [
        float(torch.cat([apgd.sweep(x, y, [eps], mode="independent").correct[0] for _, x, y in data.batches(batch)]).float().mean())
        for eps in EPS
    ]
    one_eps = max(apgd_times.values())
    for steps, gamma in FMN_CONFIGS:
        t0, parts = time.perf_counter(), []
        attack = create_attack("fmn", model, steps=steps, gamma=gamma, channels_last=True)
        for _, x, y in data.batches(batch):
            parts.append(attack.sweep(x, y, EPS, mode="worst-case").correct)
        fmn_t = time.perf_counter() - t0
        fmn_acc = torch.cat(parts, 1).float().mean(1).tolist()
        f, b = attack.cost
        print(
            f"FMN {steps} steps, gamma {gamma}, one run: {fmn_t:.1f} s ({f / len(data):.0f} forwards, {b / len(data):.0f} backwards per image) "
            f"against APGD-CE at one eps {min(apgd_times.values()):.1f}-{one_eps:.1f} s: {fmn_t / one_eps:.2f}x the costliest eps",
            flush=True,
        )
        print(
            f"  FMN   {_fmt(fmn_acc)}\n  APGD  {_fmt(apgd_acc)}\n  FMN - APGD: "
            + ", ".join(f"{(a - b) * 100:+.1f}" for a, b in zip(fmn_acc, apgd_acc)),
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="builtin/vgg")
    parser.add_argument("-n", type=int, default=500, help="images for the APGD and FMN rows")
    parser.add_argument("--aa-n", type=int, default=100, help="images for the AutoAttack rows (torchattacks' FAB and Square are slow)")
    parser.add_argument("--batch", type=int, default=250)
    parser.add_argument("--square-queries", type=int, default=1000, help="queries for the Square rows")
    parser.add_argument("--skip-autoattack", action="store_true")
    parser.add_argument("--only-autoattack", action="store_true", help="only the autoattack rows")
    args = parser.parse_args()
    model, _ = ra.load_model(args.model, "cpu", progress=False)
    print(f"{args.model}, torch {torch.__version__}, {torch.get_num_threads()} threads, {len(EPS)} eps")
    data = ra.load_dataset("builtin", "test", n=args.n)
    if not args.only_autoattack:
        times = apgd_rows(model, data, args.batch, 100)
        fmn_rows(model, data, args.batch, times)
    if not args.skip_autoattack:
        aa_data = ra.load_dataset("builtin", "test", n=args.aa_n)
        if not args.only_autoattack:
            square_rows(model, aa_data, args.batch, args.square_queries)
        autoattack_rows(model, aa_data, args.batch)


if __name__ == "__main__":
    main()
