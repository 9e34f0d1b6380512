"""rapid against the native autoattack on the panel of the issue, side by side in one run: per model
and eps both worst-case accuracies, the images on which they disagree (and which autoattack member
fooled them), forward+backward passes and seconds; for the clean models also torchattacks'
MultiAttack (APGD, APGD-T, FAB, Square: AutoAttack's standard version) time per eps.

    python benchmarks/rapid_panel.py                     # the full panel, 200 images: 1-2 hours on 2 cores
    python benchmarks/rapid_panel.py --models builtin/vgg-at --n 50 --skip-torchattacks   # a quick look
    python benchmarks/rapid_panel.py --n 100 --offset 100 --skip-torchattacks   # out of sample: images 100-199

Panel: builtin/vgg-at and builtin/vgg-att3-pc-at, seeds 0-2, at 2/255 and 4/255; clean builtin/vgg,
seeds 0-2, at 1/255 and 2/255; and a model defined here, outside the package (``LogitMean``: the
mean logits of builtin/vgg-at and builtin/vgg-att3-pc-at), at 2/255 and 4/255. Each (model, attack) is one worst-case
sweep over its two eps, in batches of ``--batch`` reseeded per batch as the sweep runner does.

Targets (checked at the end): rapid leaves at most one image more than autoattack on every model and
eps, and no more over the whole panel; its passes are at most 1/10 of autoattack's and its
wall time at most 1/5 (each per model and eps, and in total).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from _common.panel import Row, Sweep, check_parts, check_weights, compare, rerun_row, show, summarise, verdict

import robust_attn as ra
import robust_attn.attacks.rapid
from robust_attn.attacks import create_attack
from robust_attn.attacks.base import Attack

AT_EPS = (2 / 255, 4 / 255)
CLEAN_EPS = (1 / 255, 2 / 255)
SEEDS = ("", "@seed=1", "@seed=2")
EXTERNAL = "external/logit-mean(vgg-at, vgg-att3-pc-at)"


class LogitMean(nn.Module):
    """A model defined outside the package: the mean logits of several trained networks."""

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(x) for m in self.members]).mean(0)


def panel(names: list[str] | None) -> list[tuple[str, tuple[float, ...], bool]]:
    """(model reference, eps grid, clean-trained) for every model of the panel, or those named."""
    rows = [(f"builtin/{arch}{s}", AT_EPS, False) for arch in ("vgg-at", "vgg-att3-pc-at") for s in SEEDS]
    rows += [(f"builtin/vgg{s}", CLEAN_EPS, True) for s in SEEDS]
    rows.append((EXTERNAL, AT_EPS, False))
    return [r for r in rows if names is None or r[0] in names]


def load(ref: str) -> tuple[nn.Module, str]:
    """(model, the sha256 of its checkpoint's weights: of each member, joined by '+', for LogitMean)."""
    refs = [f"builtin/{arch}" for arch in ("vgg-at", "vgg-att3-pc-at")] if ref == EXTERNAL else [ref]
    loaded = [ra.load_model(r, "cpu", train_missing=False, progress=False) for r in refs]
    weights = "+".join(str(meta["weights_sha256"]) for _, meta in loaded)
    return (LogitMean([m for m, _ in loaded]).eval() if ref == EXTERNAL else loaded[0][0]), weights


def _per_eps(attack: Attack, passes: list[int], seconds: list[float], eps: tuple[float, ...]) -> Callable[..., torch.Tensor]:
    """Wrap the attack's per-eps hook so the passes and seconds it spends at each eps add up."""
    inner = attack._attack_at

    def hook(state: Any, idx: Any, x: torch.Tensor, goal: torch.Tensor, e: float, stop_early: bool) -> torch.Tensor:
        k, before, t0 = eps.index(e), sum(attack.cost), time.perf_counter()
        try:
            return inner(state, idx, x, goal, e, stop_early)
        finally:
            passes[k] += sum(attack.cost) - before
            seconds[k] += time.perf_counter() - t0

    return hook


def run_sweep(attack: Attack, data: ra.ImageDataset, eps: tuple[float, ...], batch: int) -> Sweep:
    passes, seconds = [0] * len(eps), [0.0] * len(eps)
    attack._attack_at = _per_eps(attack, passes, seconds, eps)  # type: ignore[method-assign]
    correct, codes = [], []
    for b, (_, x, y) in enumerate(data.batches(batch)):
        attack.reseed(b)
        out = attack.sweep(x, y, list(eps), mode="worst-case")
        correct.append(out.correct)
        codes.append(out.columns["fooled_by"])
    labels = [*attack.categorical_columns["fooled_by"], None]
    by = torch.cat(codes, 1)
    named = [[labels[int(c)] if c >= 0 else None for c in row] for row in by]
    members = {k: [f, b] for k, (f, b) in attack.member_costs().items()}  # type: ignore[attr-defined]
    return Sweep(torch.cat(correct, 1).tolist(), named, passes, seconds, members)


def torchattacks_seconds(model: nn.Module, data: ra.ImageDataset, eps: tuple[float, ...], batch: int) -> tuple[list[float], list[float]]:
    """torchattacks' MultiAttack of AutoAttack's four members, per eps on every image (it has no
    worst-case sweep): seconds and accuracy per eps."""
    import torchattacks

    model = model.to(memory_format=torch.contiguous_format)  # torchattacks' FAB needs NCHW
    seconds, accuracy = [], []
    for e in eps:
        t0, right = time.perf_counter(), 0
        for b, (_, x, y) in enumerate(data.batches(batch)):
            members = [
                torchattacks.APGD(model, eps=e, steps=100, seed=b, loss="ce"),
                torchattacks.APGDT(model, eps=e, steps=100, seed=b, n_classes=10),
                torchattacks.FAB(model, eps=e, steps=100, multi_targeted=True, n_classes=10, seed=b),
                torchattacks.Square(model, eps=e, n_queries=5000, seed=b),
            ]
            adv = torchattacks.MultiAttack(members)(x, y)
            with torch.inference_mode():
                right += int((model(adv).argmax(1) == y).sum())
        seconds.append(time.perf_counter() - t0)
        accuracy.append(right / len(data))
    return seconds, accuracy


def rerun_rapid(
    paths: list[Path], data: ra.ImageDataset, params: dict[str, Any], batch: int, expected: dict[str, str], offset: int = 0
) -> list[Row]:
    """rapid with ``params`` alone on the models of saved panel parts, against their saved
    autoattack side. Exact only on the same weights, images and (deterministic) autoattack, so
    other images and other weights are refused (``check_parts``, ``check_weights``). Rows saved
    with autoattack's per-image outcome get the disagreeing images; older ones only the counts
    (``aa_only`` None). Seconds are this run's, not side by side with autoattack's."""
    saved = [r for path in paths for r in json.loads(path.read_text())]
    check_parts(saved, len(data), offset)
    rerun = []
    for ref in dict.fromkeys(r["model"] for r in saved):
        rows = [r for r in saved if r["model"] == ref]
        model, weights = load(ref)
        check_weights(ref, weights, rows, expected)
        eps = tuple(r["eps"] for r in rows)
        sweep = run_sweep(create_attack("rapid", model, channels_last=True, **params), data, eps, batch)
        for k, r in enumerate(rows):
            rerun.append(rerun_row(r, sweep, k, weights))
            show(rerun[-1])
    return rerun


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="first N built-in test images")
    parser.add_argument("--offset", type=int, default=0, help="start at this built-in test image (e.g. 100: an out-of-sample panel)")
    parser.add_argument("--batch", type=int, default=250, help="images per batch (the sweep's default)")
    parser.add_argument("--models", nargs="*", help="only these panel entries (default: all)")
    parser.add_argument("--rapid-params", default="{}", help="rapid parameters as JSON, e.g. '{\"restarts\": 1}'")
    parser.add_argument(
        "--ablation", metavar="JSON", help="also run rapid with these parameters on the same images, e.g. '{\"restarts\": 1}'"
    )
    parser.add_argument("--torchattacks-models", nargs="*", help="time MultiAttack only on these clean models (default: all of them)")
    parser.add_argument("--skip-torchattacks", action="store_true", help="skip torchattacks' MultiAttack timing on the clean models")
    parser.add_argument("--json", type=Path, help="also write every row here (rewritten after each model)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's; 1 is faster on a machine shared with other jobs)")
    parser.add_argument(
        "--rerun-rapid", type=Path, nargs="+", metavar="JSON", help="rapid (--rapid-params) alone on the models of saved parts"
    )
    parser.add_argument(
        "--expect-weights",
        default="{}",
        metavar="JSON",
        help="for --rerun-rapid of rows saved without weights: model -> sha256 (prefix) they were measured on",
    )
    parser.add_argument(
        "--summarise", type=Path, nargs="+", metavar="JSON", help="only print the targets and a Markdown table of a saved panel (its parts)"
    )
    parser.add_argument(
        "--join", action="store_true", help="with --summarise: join parts of adjacent images (--offset) into one row per model and eps"
    )
    args = parser.parse_args()
    if args.summarise:
        summarise(args.summarise, args.join)
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    data = ra.load_dataset("builtin", "test", n=args.offset + args.n).subset(args.n, args.offset)
    params = json.loads(args.rapid_params)
    print(
        f"rapid panel: {args.n} built-in test images from image {args.offset}, batch {args.batch}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"rapid {params or 'defaults'}, ablation {args.ablation or 'none'}",
        flush=True,
    )
    if args.rerun_rapid:
        rows = rerun_rapid(args.rerun_rapid, data, params, args.batch, json.loads(args.expect_weights), args.offset)
        if args.json:
            args.json.write_text(json.dumps([asdict(r) for r in rows], indent=1))
        print("targets:", flush=True)
        verdict(rows)
        return
    rows = []
    for ref, eps, clean in panel(args.models):
        model, weights = load(ref)
        aa = run_sweep(create_attack("autoattack", model, channels_last=True), data, eps, args.batch)
        rapid = run_sweep(create_attack("rapid", model, channels_last=True, **params), data, eps, args.batch)
        alt = (
            run_sweep(create_attack("rapid", model, channels_last=True, **json.loads(args.ablation)), data, eps, args.batch)
            if args.ablation
            else None
        )
        timed = clean and not args.skip_torchattacks and (args.torchattacks_models is None or ref in args.torchattacks_models)
        library = torchattacks_seconds(model, data, eps, args.batch) if timed else None
        for row in compare(ref, eps, aa, rapid, library, alt, weights, args.offset):
            show(row)
            rows.append(row)
        print(f"  members: autoattack {aa.members}; rapid {rapid.members}", flush=True)
        if args.json:
            args.json.write_text(json.dumps([asdict(r) for r in rows], indent=1))
    print("targets:", flush=True)
    verdict(rows)


if __name__ == "__main__":
    main()
