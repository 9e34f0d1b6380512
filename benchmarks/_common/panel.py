"""The rapid panel's rows (``benchmarks/rapid_panel.py``): per model and eps, autoattack's and
rapid's worst-case outcomes side by side, the images on which they disagree, their passes and
seconds; the targets checked over the rows; parts on adjacent images joined into one panel; and a
row rebuilt from a saved autoattack side and a new rapid sweep. Pure bookkeeping of saved JSON
(no model, no torch), shared with ``tests/test_rapid_panel.py``."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Images = list[tuple[int, str | None]]  # (built-in test image, the member that fooled it)


@dataclass
class Sweep:
    """One attack's worst-case sweep of the panel images, per eps."""

    correct: list[list[bool]]  # (K, N)
    fooled_by: list[list[str | None]]  # (K, N)
    passes: list[int] = field(default_factory=list)  # forward + backward passes (in images) spent at each eps
    seconds: list[float] = field(default_factory=list)
    members: dict[str, list[int]] = field(default_factory=dict)  # per member: forwards, backwards (whole sweep)


@dataclass
class Row:
    """One model at one eps: both attacks' counts, the images only one of them fooled, passes, seconds."""

    model: str
    eps: float
    n: int
    aa_correct: int
    rapid_correct: int
    aa_only: Images | None  # images autoattack fooled and rapid did not, with the autoattack member that did
    rapid_only: Images | None  # images rapid fooled and autoattack did not, with the rapid member (None: not known)
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
    """One row per eps of a model's two sweeps (and torchattacks' seconds and accuracy per eps, if timed)."""
    rows = []
    for k, e in enumerate(eps):
        a, r = aa.correct[k], rapid.correct[k]
        aa_only, rapid_only = disagreements(a, aa.fooled_by[k], r, rapid.fooled_by[k], offset)
        lib_s, lib_acc = (library[0][k], library[1][k]) if library else (None, None)
        alt = (
            None
            if ablation is None
            else {"correct": sum(ablation.correct[k]), "passes": ablation.passes[k], "seconds": ablation.seconds[k]}
        )
        survivors = [offset + i for i in range(len(a)) if a[i]]
        rows.append(
            Row(
                model=ref,
                eps=e,
                n=len(a),
                aa_correct=sum(a),
                rapid_correct=sum(r),
                aa_only=aa_only,
                rapid_only=rapid_only,
                aa_passes=aa.passes[k],
                rapid_passes=rapid.passes[k],
                aa_seconds=aa.seconds[k],
                rapid_seconds=rapid.seconds[k],
                torchattacks_seconds=lib_s,
                torchattacks_accuracy=lib_acc,
                ablation=alt,
                weights=weights,
                aa_survivors=survivors,
                aa_fooled_by=aa.fooled_by[k],
                offset=offset,
            )
        )
    return rows


def disagreements(
    aa_correct: list[bool], aa_by: list[str | None], rapid_correct: list[bool], rapid_by: list[str | None], offset: int = 0
) -> tuple[Images, Images]:
    """(images only autoattack fooled, with its member that did; images only rapid fooled, with its member),
    numbered from the first built-in test image (``offset`` is the panel's first)."""
    images = range(len(aa_correct))
    aa_only = [(offset + i, aa_by[i]) for i in images if rapid_correct[i] and not aa_correct[i]]
    rapid_only = [(offset + i, rapid_by[i]) for i in images if aa_correct[i] and not rapid_correct[i]]
    return aa_only, rapid_only


def side_by_side(rows: list[Row]) -> list[Row]:
    """The rows whose seconds were measured side by side (not those with autoattack's side reused)."""
    return [r for r in rows if not r.reused]


def show(row: Row) -> None:
    """Print one row as the benchmark does while it runs."""
    lib = ""
    if row.torchattacks_seconds is not None:
        lib = f"; torchattacks MultiAttack {row.torchattacks_seconds:.1f} s ({row.torchattacks_accuracy:.1%})"
    print(
        f"{row.model} eps {row.eps * 255:.0f}/255: autoattack {row.aa_correct / row.n:.1%} ({row.aa_correct}), "
        f"rapid {row.rapid_correct / row.n:.1%} ({row.rapid_correct}), rapid - autoattack {row.rapid_correct - row.aa_correct:+d}; "
        f"passes {row.aa_passes:,} vs {row.rapid_passes:,} (1/{row.aa_passes / max(row.rapid_passes, 1):.1f}); "
        f"{row.aa_seconds:.1f} s vs {row.rapid_seconds:.1f} s (1/{row.aa_seconds / max(row.rapid_seconds, 1e-9):.1f}){lib}",
        flush=True,
    )
    if row.aa_only is None:
        print(
            "  (autoattack's side reused from a run that did not record its per-image outcome: which images differ is not known)",
            flush=True,
        )
    elif row.aa_only or row.rapid_only:
        print(f"  only autoattack fooled {row.aa_only}; only rapid fooled {row.rapid_only}", flush=True)
    if row.ablation:
        a = row.ablation
        ratio = row.aa_passes / max(a["passes"], 1)
        print(f"  ablation: {a['correct']} correct, {a['passes']:,} passes (1/{ratio:.1f}), {a['seconds']:.1f} s", flush=True)


def verdict(rows: list[Row]) -> bool:
    """Print the targets and whether each holds; True when all do."""
    worst = max(r.rapid_correct - r.aa_correct for r in rows)
    total = sum(r.rapid_correct - r.aa_correct for r in rows)
    passes = [r.aa_passes / max(r.rapid_passes, 1) for r in rows]
    timed = side_by_side(rows)
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
    alt = [r.ablation | {"aa_correct": r.aa_correct, "aa_passes": r.aa_passes} for r in rows if r.ablation]
    if alt:
        passes_alt = sum(a["aa_passes"] for a in alt) / max(sum(a["passes"] for a in alt), 1)
        total_alt = sum(a["correct"] - a["aa_correct"] for a in alt)
        worst_alt = min(a["aa_passes"] / max(a["passes"], 1) for a in alt)
        print(
            f"  ablation on {len(alt)} rows: total {total_alt:+d} images against autoattack, passes 1/{passes_alt:.1f} (worst 1/{worst_alt:.1f})",
            flush=True,
        )
    return all(ok for _, ok in checks)


def markdown(rows: list[Row]) -> str:
    """The panel as a Markdown table (for docs/speed.md), totals last; with an ablation column
    (its correct images and passes ratio) where the rows have one."""
    alt = all(r.ablation for r in rows)
    head = "| model | eps | autoattack | rapid | only autoattack fooled | only rapid fooled | passes autoattack / rapid | seconds autoattack / rapid |"
    lines = [head + (" ablation: correct, passes |" if alt else ""), "|---|---|---|---|---|---|---|---|" + ("---|" if alt else "")]
    for r in rows:
        extra = f" {r.ablation['correct']}, 1/{r.aa_passes / max(r.ablation['passes'], 1):.1f} |" if alt and r.ablation else ""
        passes = f"{r.aa_passes:,} / {r.rapid_passes:,} (1/{r.aa_passes / max(r.rapid_passes, 1):.1f})"
        seconds = f"{r.aa_seconds:.0f} / {r.rapid_seconds:.0f} (1/{r.aa_seconds / max(r.rapid_seconds, 1e-9):.1f}){_timing(r)}"
        lines.append(
            f"| `{r.model}` | {r.eps * 255:.0f}/255 | {r.aa_correct / r.n:.1%} | {r.rapid_correct / r.n:.1%} | "
            f"{_images(r.aa_only)} | {_images(r.rapid_only)} | {passes} | {seconds} |{extra}"
        )
    aa, rp = sum(r.aa_passes for r in rows), sum(r.rapid_passes for r in rows)
    timed = side_by_side(rows) or rows
    sa, sr = sum(r.aa_seconds for r in timed), sum(r.rapid_seconds for r in timed)
    extra, side = "", f" over the {len(timed)} rows without *" if len(timed) < len(rows) else ""
    if alt:
        ap = sum(r.ablation["passes"] for r in rows if r.ablation)
        extra = f" {sum(r.ablation['correct'] for r in rows if r.ablation)} images, 1/{aa / max(ap, 1):.1f} |"
    lines.append(
        f"| **all** | | {sum(r.aa_correct for r in rows)} images | {sum(r.rapid_correct for r in rows)} images | | | "
        f"{aa:,} / {rp:,} (1/{aa / max(rp, 1):.1f}) | {sa:.0f} / {sr:.0f} (1/{sa / max(sr, 1e-9):.1f}){side} |{extra}"
    )
    return "\n".join(lines)


def _timing(row: Row) -> str:
    """How a row's seconds were measured, for its table cell: * not side by side, or on fewer images."""
    return " *" if row.reused else f" on {row.timed_n} images" if row.timed_n else ""


def _images(found: Images | None) -> str:
    """Images with the member that fooled them, for a table cell."""
    return "not recorded" if found is None else ", ".join(f"{i} ({m})" for i, m in found) or "-"


def library_lines(rows: list[Row]) -> list[str]:
    """torchattacks' MultiAttack on the rows where it was timed beside both ensembles: its seconds
    against theirs (a reused row's MultiAttack ran in another session than its rapid)."""
    lines = []
    for r in side_by_side(rows):
        if r.torchattacks_seconds is None:
            continue
        on = r.timed_n or r.n
        lines.append(
            f"torchattacks MultiAttack, `{r.model}` at {r.eps * 255:.0f}/255 on {on} images: {r.torchattacks_seconds:.0f} s, "
            f"{r.torchattacks_seconds / max(r.rapid_seconds, 1e-9):.1f}x rapid's and {r.torchattacks_seconds / max(r.aa_seconds, 1e-9):.2f}x "
            f"autoattack's; accuracy {r.torchattacks_accuracy:.1%} on those images"
        )
    return lines


def load_rows(paths: list[Path]) -> list[Row]:
    """The rows of panel parts saved with --json (lists of images come back from JSON as lists)."""
    rows = []
    for path in paths:
        for r in json.loads(path.read_text()):
            images = {k: None if r[k] is None else [tuple(x) for x in r[k]] for k in ("aa_only", "rapid_only")}
            rows.append(Row(**{**r, **images}))
    return rows


def summarise(paths: list[Path], join_parts: bool = False) -> None:
    """Targets and table of a panel saved with --json, in one or several parts (also parts
    stopped before their end); with ``join_parts`` the parts of other images are joined first."""
    rows = load_rows(paths)
    if join_parts:
        rows = join(rows)
    print(f"{len(rows)} panel rows from {', '.join(map(str, paths))}:")
    verdict(rows)
    print(markdown(rows))
    for line in library_lines(rows):
        print(line)


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
        raise SystemExit(
            f"{_where(a)} on images {a.offset}-{a.offset + a.n - 1}: two runs of the same images differ "
            f"({', '.join(differ)}); summarise them apart, or join only one"
        )
    return max((a, b), key=lambda r: (r.aa_only is not None, not r.reused))


def _where(row: Row) -> str:
    """The model and eps of a row, for an error."""
    return f"{row.model} at {row.eps * 255:.0f}/255"


def _join(parts: list[Row]) -> Row:
    """One row of a model and eps from its parts on adjacent images."""
    first = parts[0]
    if len(parts) == 1:
        return first
    where = _where(first)
    for a, b in itertools.pairwise(parts):
        if a.offset + a.n != b.offset:
            raise SystemExit(
                f"{where}: a part of images {a.offset}-{a.offset + a.n - 1} is followed by one from image {b.offset}; "
                "join only parts of adjacent images (their --offset and --n)"
            )
    if len({p.weights for p in parts}) > 1:
        raise SystemExit(
            f"{where}: the parts were measured on other weights ({', '.join(str(p.weights)[:12] for p in parts)}); join only one model's"
        )
    timed = side_by_side(parts) or parts
    library = all(p.torchattacks_seconds is not None for p in timed)
    timed_images = sum(p.n for p in timed)
    return Row(
        model=first.model,
        eps=first.eps,
        n=sum(p.n for p in parts),
        aa_correct=sum(p.aa_correct for p in parts),
        rapid_correct=sum(p.rapid_correct for p in parts),
        aa_only=_concat([p.aa_only for p in parts]),
        rapid_only=_concat([p.rapid_only for p in parts]),
        aa_passes=sum(p.aa_passes for p in parts),
        rapid_passes=sum(p.rapid_passes for p in parts),
        aa_seconds=sum(p.aa_seconds for p in timed),
        rapid_seconds=sum(p.rapid_seconds for p in timed),
        torchattacks_seconds=sum(p.torchattacks_seconds or 0.0 for p in timed) if library else None,
        torchattacks_accuracy=sum((p.torchattacks_accuracy or 0.0) * p.n for p in timed) / timed_images if library else None,
        weights=first.weights,
        aa_survivors=_concat([p.aa_survivors for p in parts]),
        aa_fooled_by=_concat([p.aa_fooled_by for p in parts]),
        reused=all(p.reused for p in parts),
        offset=first.offset,
        timed_n=None if len(timed) == len(parts) else timed_images,
    )


def _concat(values: list[list[Any] | None]) -> list[Any] | None:
    """The parts' lists end to end; None when a part did not record its own."""
    return None if any(v is None for v in values) else [x for v in values for x in v]  # type: ignore[union-attr]


def check_parts(saved: list[dict[str, Any]], n: int, offset: int) -> None:
    """Refuse saved rows of other images than the rerun's (a --rerun-rapid is exact only on the same ones)."""
    if any(r.get("offset", 0) != offset or r["n"] != n for r in saved):
        raise SystemExit(f"the saved rows are not of {n} images from image {offset}: pass their --n and --offset")


def check_weights(ref: str, weights: str, rows: list[dict[str, Any]], expected: dict[str, str]) -> None:
    """Refuse a model whose weights are not the saved rows' (for rows saved without their weights:
    ``expected``, reference -> sha256 prefix): a rerun against another network's autoattack side
    would compare two different models."""
    recorded = {r.get("weights") or expected.get(ref, "not recorded") for r in rows}
    if not all(weights.startswith(w) for w in recorded):
        raise SystemExit(
            f"{ref}: its weights ({weights[:12]}) are not the saved rows' ({', '.join(recorded)}); run the whole model instead (--models)"
        )


def rerun_row(saved: dict[str, Any], sweep: Sweep, k: int, weights: str) -> Row:
    """A panel row of a saved autoattack side and a new rapid sweep (its ``k``-th eps)."""
    aa_only: Images | None = None
    rapid_only: Images | None = None
    offset = saved.get("offset", 0)
    if saved.get("aa_fooled_by") is not None:
        survivors = set(saved["aa_survivors"])
        aa_correct = [offset + i in survivors for i in range(saved["n"])]
        aa_only, rapid_only = disagreements(aa_correct, saved["aa_fooled_by"], sweep.correct[k], sweep.fooled_by[k], offset)
    return Row(
        model=saved["model"],
        eps=saved["eps"],
        n=saved["n"],
        aa_correct=saved["aa_correct"],
        rapid_correct=sum(sweep.correct[k]),
        aa_only=aa_only,
        rapid_only=rapid_only,
        aa_passes=saved["aa_passes"],
        rapid_passes=sweep.passes[k],
        aa_seconds=saved["aa_seconds"],
        rapid_seconds=sweep.seconds[k],
        torchattacks_seconds=saved.get("torchattacks_seconds"),
        torchattacks_accuracy=saved.get("torchattacks_accuracy"),
        weights=weights,
        aa_survivors=saved.get("aa_survivors"),
        aa_fooled_by=saved.get("aa_fooled_by"),
        reused=True,
        offset=offset,
    )
