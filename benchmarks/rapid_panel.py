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
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

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


@dataclass
class Sweep:
    """One attack's worst-case sweep of the panel images, per eps."""

    correct: list[list[bool]]  # (K, N)
    fooled_by: list[list[str | None]]  # (K, N)
    passes: list[int] = field(default_factory=list)  # forward + backward passes (in images) spent at each eps
    seconds: list[float] = field(default_factory=list)
    members: dict[str, list[int]] = field(default_factory=dict)  # per member: forwards, backwards (whole sweep)


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
            members = [torchattacks.APGD(model, eps=e, steps=100, seed=b, loss="ce"), torchattacks.APGDT(model, eps=e, steps=100, seed=b, n_classes=10),
                       torchattacks.FAB(model, eps=e, steps=100, multi_targeted=True, n_classes=10, seed=b),
                       torchattacks.Square(model, eps=e, n_queries=5000, seed=b)]  # fmt: skip
            adv = torchattacks.MultiAttack(members)(x, y)
            with torch.inference_mode():
                right += int((model(adv).argmax(1) == y).sum())
        seconds.append(time.perf_counter() - t0)
        accuracy.append(right / len(data))
    return seconds, accuracy


@dataclass
class Row:
    model: str
    eps: float
    n: int
    aa_correct: int
    rapid_correct: int
    aa_only: list[tuple[int, str | None]] | None  # images autoattack fooled and rapid did not, with the autoattack member that did
    rapid_only: list[tuple[int, str | None]] | None  # images rapid fooled and autoattack did not, with the rapid member (None: not known)
    aa_passes: int
    rapid_passes: int
    aa_seconds: float
    rapid_seconds: float
    torchattacks_seconds: float | None = None
    torchattacks_accuracy: float | None = None
    ablation: dict[str, Any] | None = None  # the --ablation variant of rapid on the same images: correct, passes, seconds
    weights: str | None = None  # sha256 of the checkpoint's weights (rows saved before it was recorded have None)
    aa_survivors: list[int] | None = None  # images autoattack leaves correct (for a later --rerun-rapid)
    aa_fooled_by: list[str | None] | None = None  # per image, the autoattack member that fooled it
    reused: bool = False  # autoattack's side read from a saved run (--rerun-rapid): rapid's seconds not side by side
    offset: int = 0  # the panel's images start at this built-in test image (--offset); image numbers above are absolute
    timed_n: int | None = None  # images the seconds were measured on, where fewer than n (a --join of a reused and a timed part)


def compare(
    ref: str,
    eps: tuple[float, ...],
    aa: Sweep,
    rapid: Sweep,
    library: tuple[list[float], list[float]] | None,
    ablation: Sweep | None = None,
    weights: str | None = None,
    offset: int = 0,
) -> list[Row]:
    rows = []
    for k, e in enumerate(eps):
        a, r = aa.correct[k], rapid.correct[k]
        aa_only, rapid_only = _disagreements(a, aa.fooled_by[k], r, rapid.fooled_by[k], offset)
        lib_s, lib_acc = (library[0][k], library[1][k]) if library else (None, None)
        alt = (
            None
            if ablation is None
            else {"correct": sum(ablation.correct[k]), "passes": ablation.passes[k], "seconds": ablation.seconds[k]}
        )
        rows.append(Row(ref, e, len(a), sum(a), sum(r), aa_only, rapid_only, aa.passes[k], rapid.passes[k], aa.seconds[k], rapid.seconds[k],
                        lib_s, lib_acc, alt, weights, [offset + i for i in range(len(a)) if a[i]], aa.fooled_by[k],
                        offset=offset))  # fmt: skip
    return rows


def _disagreements(
    aa_correct: list[bool], aa_by: list[str | None], rapid_correct: list[bool], rapid_by: list[str | None], offset: int = 0
) -> tuple[list[tuple[int, str | None]], list[tuple[int, str | None]]]:
    """(images only autoattack fooled, with its member that did; images only rapid fooled, with its member),
    numbered from the first built-in test image (``offset`` is the panel's first)."""
    images = range(len(aa_correct))
    return ([(offset + i, aa_by[i]) for i in images if rapid_correct[i] and not aa_correct[i]],
            [(offset + i, rapid_by[i]) for i in images if aa_correct[i] and not rapid_correct[i]])  # fmt: skip


def _side_by_side(rows: list[Row]) -> list[Row]:
    """The rows whose seconds were measured side by side (not those with autoattack's side reused)."""
    return [r for r in rows if not r.reused]


def show(row: Row) -> None:
    lib = (
        f"; torchattacks MultiAttack {row.torchattacks_seconds:.1f} s ({row.torchattacks_accuracy:.1%})"
        if row.torchattacks_seconds is not None
        else ""
    )
    print(f"{row.model} eps {row.eps * 255:.0f}/255: autoattack {row.aa_correct / row.n:.1%} ({row.aa_correct}), rapid {row.rapid_correct / row.n:.1%} "
          f"({row.rapid_correct}), rapid - autoattack {row.rapid_correct - row.aa_correct:+d}; passes {row.aa_passes:,} vs {row.rapid_passes:,} "
          f"(1/{row.aa_passes / max(row.rapid_passes, 1):.1f}); {row.aa_seconds:.1f} s vs {row.rapid_seconds:.1f} s "
          f"(1/{row.aa_seconds / max(row.rapid_seconds, 1e-9):.1f}){lib}", flush=True)  # fmt: skip
    if row.aa_only is None:
        print(
            "  (autoattack's side reused from a run that did not record its per-image outcome: which images differ is not known)",
            flush=True,
        )
    elif row.aa_only or row.rapid_only:
        print(f"  only autoattack fooled {row.aa_only}; only rapid fooled {row.rapid_only}", flush=True)
    if row.ablation:
        a = row.ablation
        print(f"  ablation: {a['correct']} correct, {a['passes']:,} passes (1/{row.aa_passes / max(a['passes'], 1):.1f}), "
              f"{a['seconds']:.1f} s", flush=True)  # fmt: skip


def verdict(rows: list[Row]) -> bool:
    """Print the targets and whether each holds; True when all do."""
    worst = max(r.rapid_correct - r.aa_correct for r in rows)
    total = sum(r.rapid_correct - r.aa_correct for r in rows)
    passes = [r.aa_passes / max(r.rapid_passes, 1) for r in rows]
    timed = _side_by_side(rows)
    total_passes = sum(r.aa_passes for r in rows) / max(sum(r.rapid_passes for r in rows), 1)
    checks = [
        (f"rapid leaves at most 1 image more per model and eps (worst {worst:+d})", worst <= 1),
        (f"and no more images over the whole panel (total {total:+d})", total <= 0),
        (f"passes <= 1/10 of autoattack's per model and eps (worst 1/{min(passes):.1f}; total 1/{total_passes:.1f})", min(passes) >= 10),
    ]
    if timed:
        seconds = [r.aa_seconds / max(r.rapid_seconds, 1e-9) for r in timed]
        total_seconds = sum(r.aa_seconds for r in timed) / max(sum(r.rapid_seconds for r in timed), 1e-9)
        text = f"wall time <= 1/5 of autoattack's per model and eps (worst 1/{min(seconds):.1f}; total 1/{total_seconds:.1f};"
        checks.append((f"{text} over the {len(timed)} rows timed side by side)", min(seconds) >= 5))
    for text, ok in checks:
        print(f"  [{'ok' if ok else 'MISSED'}] {text}", flush=True)
    if not timed:
        print("  [--] wall time: not measured side by side on these rows (autoattack's side reused)", flush=True)
    alt = [r for r in rows if r.ablation]
    if alt:
        passes_alt = sum(r.aa_passes for r in alt) / max(sum(r.ablation["passes"] for r in alt), 1)  # type: ignore[index]
        total_alt = sum(r.ablation["correct"] - r.aa_correct for r in alt)  # type: ignore[index]
        worst_alt = min(r.aa_passes / max(r.ablation["passes"], 1) for r in alt)  # type: ignore[index]
        print(f"  ablation on {len(alt)} rows: total {total_alt:+d} images against autoattack, passes 1/{passes_alt:.1f} "
              f"(worst 1/{worst_alt:.1f})", flush=True)  # fmt: skip
    return all(ok for _, ok in checks)


def markdown(rows: list[Row]) -> str:
    """The panel as a Markdown table (for docs/speed.md), totals last; with an ablation column
    (its correct images and passes ratio) where the rows have one."""
    alt = all(r.ablation for r in rows)
    head = "| model | eps | autoattack | rapid | only autoattack fooled | only rapid fooled | passes autoattack / rapid | seconds autoattack / rapid |"
    lines = [head + (" ablation: correct, passes |" if alt else ""), "|---|---|---|---|---|---|---|---|" + ("---|" if alt else "")]
    for r in rows:
        extra = f" {r.ablation['correct']}, 1/{r.aa_passes / max(r.ablation['passes'], 1):.1f} |" if alt and r.ablation else ""
        lines.append(f"| `{r.model}` | {r.eps * 255:.0f}/255 | {r.aa_correct / r.n:.1%} | {r.rapid_correct / r.n:.1%} | "
                     f"{_images(r.aa_only)} | {_images(r.rapid_only)} | "
                     f"{r.aa_passes:,} / {r.rapid_passes:,} (1/{r.aa_passes / max(r.rapid_passes, 1):.1f}) | "
                     f"{r.aa_seconds:.0f} / {r.rapid_seconds:.0f} (1/{r.aa_seconds / max(r.rapid_seconds, 1e-9):.1f}){_timing(r)} |{extra}")  # fmt: skip
    aa, rp = sum(r.aa_passes for r in rows), sum(r.rapid_passes for r in rows)
    timed = _side_by_side(rows) or rows
    sa, sr = sum(r.aa_seconds for r in timed), sum(r.rapid_seconds for r in timed)
    extra, side = "", f" over the {len(timed)} rows without *" if len(timed) < len(rows) else ""
    if alt:
        ap = sum(r.ablation["passes"] for r in rows if r.ablation)
        extra = f" {sum(r.ablation['correct'] for r in rows if r.ablation)} images, 1/{aa / max(ap, 1):.1f} |"
    lines.append(f"| **all** | | {sum(r.aa_correct for r in rows)} images | {sum(r.rapid_correct for r in rows)} images | | | "
                 f"{aa:,} / {rp:,} (1/{aa / max(rp, 1):.1f}) | {sa:.0f} / {sr:.0f} (1/{sa / max(sr, 1e-9):.1f}){side} |{extra}")  # fmt: skip
    return "\n".join(lines)


def _timing(row: Row) -> str:
    """How a row's seconds were measured, for its table cell: * not side by side, or on fewer images."""
    return " *" if row.reused else f" on {row.timed_n} images" if row.timed_n else ""


def _images(found: list[tuple[int, str | None]] | None) -> str:
    """Images with the member that fooled them, for a table cell."""
    return "not recorded" if found is None else ", ".join(f"{i} ({m})" for i, m in found) or "-"


def summarise(paths: list[Path], join_parts: bool = False) -> None:
    """Targets and table of a panel saved with --json, in one or several parts (also parts
    stopped before their end); with ``join_parts`` the parts of other images are joined first."""
    rows = [Row(**{**r, **{k: None if r[k] is None else [tuple(x) for x in r[k]] for k in ("aa_only", "rapid_only")}})
            for path in paths for r in json.loads(path.read_text())]  # fmt: skip
    if join_parts:
        rows = join(rows)
    print(f"{len(rows)} panel rows from {', '.join(map(str, paths))}:")
    verdict(rows)
    print(markdown(rows))


def join(rows: list[Row]) -> list[Row]:
    """One row per model and eps from parts on adjacent images (images 0-99 and 100-199 as one
    200-image panel): images, disagreements and passes add up; seconds add up over the parts
    timed side by side only (``timed_n`` says on how many images), so a reused part's seconds
    never enter the wall-time target. Repeat runs of the same images keep one (``_repeat``);
    parts that overlap otherwise, leave a gap or differ in weights are refused."""
    groups: dict[tuple[str, float], dict[tuple[int, int], Row]] = {}
    for r in rows:
        same = groups.setdefault((r.model, r.eps), {})
        key = (r.offset, r.n)
        same[key] = _repeat(same[key], r) if key in same else r
    return [_join(sorted(parts.values(), key=lambda r: r.offset)) for parts in groups.values()]


def _repeat(a: Row, b: Row) -> Row:
    """One of two runs of the same model, eps and images (a rerun that records autoattack's
    per-image outcome where the first did not): both attacks are deterministic on the same
    weights, so counts and passes must be equal; the run with the per-image outcome is kept,
    else the one timed side by side, else the first."""
    fields = ("weights", "aa_correct", "rapid_correct", "aa_passes", "rapid_passes")
    differ = [f"{f} {getattr(a, f)} vs {getattr(b, f)}" for f in fields if getattr(a, f) != getattr(b, f)]
    if differ:
        raise SystemExit(f"{_where(a)} on images {a.offset}-{a.offset + a.n - 1}: two runs of the same images differ "
                         f"({', '.join(differ)}); summarise them apart, or join only one")  # fmt: skip
    return max((a, b), key=lambda r: (r.aa_only is not None, not r.reused))


def _where(row: Row) -> str:
    """The model and eps of a row, for an error."""
    return f"{row.model} at {row.eps * 255:.0f}/255"


def _join(parts: list[Row]) -> Row:
    first = parts[0]
    if len(parts) == 1:
        return first
    where = _where(first)
    for a, b in itertools.pairwise(parts):
        if a.offset + a.n != b.offset:
            raise SystemExit(f"{where}: a part of images {a.offset}-{a.offset + a.n - 1} is followed by one from image {b.offset}; "
                             "join only parts of adjacent images (their --offset and --n)")  # fmt: skip
    if len({p.weights for p in parts}) > 1:
        raise SystemExit(
            f"{where}: the parts were measured on other weights ({', '.join(str(p.weights)[:12] for p in parts)}); join only one model's"
        )
    timed = _side_by_side(parts) or parts
    library = all(p.torchattacks_seconds is not None for p in timed)
    n = sum(p.n for p in parts)
    return Row(first.model, first.eps, n, sum(p.aa_correct for p in parts), sum(p.rapid_correct for p in parts),
               _concat([p.aa_only for p in parts]), _concat([p.rapid_only for p in parts]),
               sum(p.aa_passes for p in parts), sum(p.rapid_passes for p in parts),
               sum(p.aa_seconds for p in timed), sum(p.rapid_seconds for p in timed),
               sum(p.torchattacks_seconds or 0.0 for p in timed) if library else None,
               sum((p.torchattacks_accuracy or 0.0) * p.n for p in timed) / sum(p.n for p in timed) if library else None,
               None, first.weights, _concat([p.aa_survivors for p in parts]), _concat([p.aa_fooled_by for p in parts]),
               reused=all(p.reused for p in parts), offset=first.offset,
               timed_n=None if len(timed) == len(parts) else sum(p.n for p in timed))  # fmt: skip


def _concat(values: list[list[Any] | None]) -> list[Any] | None:
    """The parts' lists end to end; None when a part did not record its own."""
    return None if any(v is None for v in values) else [x for v in values for x in v]  # type: ignore[union-attr]


def rerun_rapid(
    paths: list[Path], data: ra.ImageDataset, params: dict[str, Any], batch: int, expected: dict[str, str], offset: int = 0
) -> list[Row]:
    """rapid with ``params`` alone on the models of saved panel parts, against their saved
    autoattack side. Exact only on the same weights, images and (deterministic) autoattack, so a
    model whose weights differ from the rows' ``weights`` (for rows saved without them: from
    ``expected``, reference -> sha256 prefix) is refused. Rows saved with autoattack's per-image
    outcome get the disagreeing images; older ones only the counts (``aa_only`` None). Seconds
    are this run's, not side by side with autoattack's."""
    saved = [r for path in paths for r in json.loads(path.read_text())]
    if any(r.get("offset", 0) != offset or r["n"] != len(data) for r in saved):
        raise SystemExit(f"the saved rows are not of {len(data)} images from image {offset}: pass their --n and --offset")
    rerun = []
    for ref in dict.fromkeys(r["model"] for r in saved):
        rows = [r for r in saved if r["model"] == ref]
        model, weights = load(ref)
        recorded = {r.get("weights") or expected.get(ref, "not recorded") for r in rows}
        if not all(weights.startswith(w) for w in recorded):
            raise SystemExit(f"{ref}: its weights ({weights[:12]}) are not the saved rows' ({', '.join(recorded)}); "
                             "run the whole model instead (--models)")  # fmt: skip
        eps = tuple(r["eps"] for r in rows)
        sweep = run_sweep(create_attack("rapid", model, channels_last=True, **params), data, eps, batch)
        for k, r in enumerate(rows):
            rerun.append(_rerun_row(r, sweep, k, weights))
            show(rerun[-1])
    return rerun


def _rerun_row(saved: dict[str, Any], sweep: Sweep, k: int, weights: str) -> Row:
    """A panel row of a saved autoattack side and a new rapid sweep."""
    aa_only: list[tuple[int, str | None]] | None = None
    rapid_only: list[tuple[int, str | None]] | None = None
    offset = saved.get("offset", 0)
    if saved.get("aa_fooled_by") is not None:
        survivors = set(saved["aa_survivors"])
        aa_correct = [offset + i in survivors for i in range(saved["n"])]
        aa_only, rapid_only = _disagreements(aa_correct, saved["aa_fooled_by"], sweep.correct[k], sweep.fooled_by[k], offset)
    return Row(saved["model"], saved["eps"], saved["n"], saved["aa_correct"], sum(sweep.correct[k]), aa_only, rapid_only,
               saved["aa_passes"], sweep.passes[k], saved["aa_seconds"], sweep.seconds[k], saved.get("torchattacks_seconds"),
               saved.get("torchattacks_accuracy"), None, weights, saved.get("aa_survivors"), saved.get("aa_fooled_by"),
               reused=True, offset=offset)  # fmt: skip


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
    print(f"rapid panel: {args.n} built-in test images from image {args.offset}, batch {args.batch}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"rapid {params or 'defaults'}, ablation {args.ablation or 'none'}", flush=True)  # fmt: skip
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
