"""``robust-attn leaderboard RUN_DIR... --out DIR``: models and architectures of several run
directories ranked on one data set, written as leaderboard.html (one self-contained file),
leaderboard.md and leaderboard.csv; from the run directories alone."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from robust_attn.atomic import atomic_bytes
from robust_attn.errors import RunDirError, UsageError
from robust_attn.leaderboard.entries import Entry, Source, entries
from robust_attn.leaderboard.evaluation import BALL_THREATS, Threat
from robust_attn.leaderboard.render import csv_table, render_html, render_markdown, row
from robust_attn.rundir import RunDir, load_run

DATA_KEYS = ("name", "split", "seed", "classes", "image_shape")  # one data set (the sample count may differ: it is shown)
HTML, MARKDOWN, CSV = "leaderboard.html", "leaderboard.md", "leaderboard.csv"


@dataclass(frozen=True)
class Leaderboard:
    """The files written and the rows they hold (architectures and models, in rank order)."""

    html: Path
    markdown: Path
    csv: Path
    architectures: list[Entry]
    models: list[Entry]
    columns: list[Threat]
    headline: Threat


def build_leaderboard(dirs: Sequence[str | Path], out: str | Path, *, title: str | None = None) -> Leaderboard:
    """Rank every model and architecture of the runs in ``dirs`` and write the leaderboard into
    ``out``; refuses (one line) zero runs, runs on different data, and runs with no threat in common."""
    out = Path(out)
    RunDir(out).check_writable("write the leaderboard")  # before any run is read
    sources = _sources(dirs, out)
    _check_data(sources)
    columns, headline = _columns(sources)
    archs, models, notes = entries(sources, columns, headline)
    for group in (archs, models):
        _rank(group, headline)
    reports = {s.label: s.report for s in sources}
    context = _context(sources, columns, headline, archs, models, notes + _notes(sources), reports, title)
    out.mkdir(parents=True, exist_ok=True)
    board = Leaderboard(out / HTML, out / MARKDOWN, out / CSV, archs, models, columns, headline)
    atomic_bytes(board.html, render_html(context).encode())
    atomic_bytes(board.markdown, render_markdown(context).encode())
    atomic_bytes(board.csv, csv_table(archs, models, columns, reports).to_csv(index=False, lineterminator="\n").encode())
    return board


def _sources(dirs: Sequence[str | Path], out: Path) -> list[Source]:
    if not dirs:
        raise UsageError(
            "a leaderboard needs at least one run directory, got none; name them: robust-attn leaderboard RUN_DIR... --out DIR"
        )
    seen: dict[Path, str] = {}
    sources: list[Source] = []
    for d in dirs:
        real = Path(d).resolve()
        if real in seen:
            raise UsageError(f"run directory {str(d)!r} is given twice ({seen[real]!r}); name each run once")
        seen[real] = str(d)
        run = load_run(d)
        label = real.name if all(s.label != real.name for s in sources) else str(d)  # the folder's name; its path if two share it
        report = next((run.dir.report(k) for k in ("html", "md", "pdf") if run.dir.report(k).is_file()), None)
        href = Path(os.path.relpath(report.resolve(), out.resolve())).as_posix() if report else None
        sources.append(Source(label, run, href))
    return sources


def _check_data(sources: list[Source]) -> None:
    def data(s: Source) -> dict[str, Any]:
        ds = s.run.manifest.get("dataset", {})
        return {k: ds.get(k) for k in DATA_KEYS}

    first = data(sources[0])
    for s in sources[1:]:
        if data(s) != first:
            differ = [k for k in DATA_KEYS if data(s)[k] != first[k]]
            show = "; ".join(f"{k} {first[k]} vs {data(s)[k]}" for k in differ if k != "classes") or "their classes differ"
            raise RunDirError(
                f"runs {sources[0].label} and {s.label} are on different data ({show}); "
                "a leaderboard ranks models on one data set: build one per data set"
            )


def run_threats(s: Source) -> set[Threat]:
    """The threats a run evaluated: (threat model, norm, eps > 0) of its eps-ball cells."""
    r = s.run.results
    r = r[r["threat_model"].isin(BALL_THREATS) & r["eps"].notna() & (r["eps"] > 0)]
    return {Threat(str(tm), str(norm), round(float(e), 12)) for tm, norm, e in zip(r["threat_model"], r["norm"], r["eps"])}


def _columns(sources: list[Source]) -> tuple[list[Threat], Threat]:
    """Every threat any run evaluated (white-box first, by norm and eps), and the headline: the
    threat evaluated by the most runs and models (then white-box, then the larger eps)."""
    per_run = {s.label: run_threats(s) for s in sources}
    empty = [label for label, t in per_run.items() if not t]
    if empty:
        raise RunDirError(f"run {empty[0]} has no attack with an eps ball (white-box or transfer): nothing to rank it on; leave it out")
    common = set.intersection(*per_run.values())
    if not common:
        shown = "; ".join(f"{label} evaluates {', '.join(t.label for t in sorted(ts))}" for label, ts in per_run.items())
        raise RunDirError(f"the runs share no threat model and eps ({shown}); a leaderboard needs a column every run evaluated")
    columns = sorted(set().union(*per_run.values()), key=lambda t: (t.threat_model != "white-box", t.threat_model, t.norm, t.eps))
    counts = {t: sum(len({m for m in s.run.results.loc[_rows_at(s, t), "model"]}) for s in sources) for t in common}
    headline = max(sorted(common), key=lambda t: (counts[t], t.threat_model == "white-box", t.norm == "linf", t.eps))
    return columns, headline


def _rows_at(s: Source, t: Threat) -> Any:
    r = s.run.results
    return (r["threat_model"] == t.threat_model) & (r["norm"] == t.norm) & ((r["eps"] - t.eps).abs() < 1e-9)


def _rank(group: list[Entry], headline: Threat) -> None:
    """Sort by robust accuracy under the headline threat (missing last), then clean accuracy; rank 1, 2, ..."""

    def key(e: Entry) -> tuple[bool, float, float, str]:
        v = e.scores.get(headline.key)
        return (v is None, -(v.value if v else 0.0), -e.clean.value, e.name)

    group.sort(key=key)
    for i, e in enumerate(group):
        e.rank = i + 1


def _notes(sources: list[Source]) -> list[str]:
    notes = []
    sizes = {s.label: len(s.run.labels) for s in sources}
    if len(set(sizes.values())) > 1:
        notes.append(
            "the runs evaluate different numbers of samples ("
            + ", ".join(f"{k} {v}" for k, v in sizes.items())
            + "): values from runs of different sizes are on different sets of test images (the first n of the split); "
            "each value names its run and samples"
        )
    for s in sources:
        if s.run.missing:
            notes.append(f"run {s.label} is unfinished: {s.run.missing_summary()}")
        costs = s.run.results[["forwards_per_sample", "backwards_per_sample"]]
        if costs.isna().all().all():
            notes.append(
                f"run {s.label} did not record forward/backward passes (written before robust-attn counted them): its costs are n/a"
            )
        if s.report is None:
            notes.append(f"run {s.label} has no report yet: robust-attn report {s.run.root}")
    return notes


def _context(
    sources: list[Source],
    columns: list[Threat],
    headline: Threat,
    archs: list[Entry],
    models: list[Entry],
    notes: list[str],
    reports: dict[str, str | None],
    title: str | None,
) -> dict[str, Any]:
    from robust_attn import __version__

    ds = sources[0].run.manifest.get("dataset", {})
    runs = [
        {
            "label": s.label,
            "href": s.report,
            "n": len(s.run.labels),
            "models": len(s.run.models),
            "path": str(s.run.root),
            "attacks": ", ".join(s.run.attacks),
        }
        for s in sources
    ]
    tables = [
        {
            "id": "architectures",
            "title": "Architectures",
            "name_heading": "architecture",
            "caption": "Each population (an architecture with its training regime) over its training seeds in one run: the mean over "
            "seeds and samples, with a 95% interval covering both.",
            "rows": [row(e, columns, reports) for e in archs],
        },
        {
            "id": "models",
            "title": "Models",
            "name_heading": "model",
            "caption": "Each trained model (one seed): robust accuracy under its strongest evaluation.",
            "rows": [row(e, columns, reports) for e in models],
        },
    ]
    return {
        "title": title or f"Robustness leaderboard: {ds.get('name')} {ds.get('split')}",
        "dataset": f"{len(sources)} run{'s' if len(sources) > 1 else ''} on the {ds.get('name')} {ds.get('split')} split "
        f"(data seed {ds.get('seed')}, {len(ds.get('classes') or [])} classes)",
        "columns": [{"key": t.key, "label": t.label} for t in columns],
        "headline": headline.key,
        "headline_label": headline.label,
        "tables": tables,
        "runs": runs,
        "notes": notes,
        "version": __version__,
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
    }
