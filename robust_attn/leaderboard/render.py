"""The leaderboard's files: rows (data) rendered through Jinja2 templates into one self-contained
HTML page (inline style and script: no network, sortable columns) and Markdown, as RobustBench
renders its tables from per-model records; and a CSV of the same rows for machines."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from robust_attn.leaderboard.entries import Entry, Value
from robust_attn.leaderboard.evaluation import Threat

TEMPLATES = Path(__file__).resolve().parent / "templates"


def _environment(autoescape: bool) -> Any:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    env = Environment(
        loader=FileSystemLoader(TEMPLATES), autoescape=autoescape, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True
    )
    env.filters["md"] = lambda text: str(text).replace("|", "\\|").replace("\n", " ")
    return env


def _pct(x: float) -> str:
    return "" if math.isnan(x) else f"{100 * x:.1f}"


def cell(v: Value | None, architecture: bool) -> dict[str, str] | None:
    """How one value shows: its percentage, its interval, and a tooltip naming its evaluation."""
    if v is None:
        return None
    interval = "" if math.isnan(v.low) else f"{_pct(v.low)}–{_pct(v.high)}"
    who = f"{v.seeds} seeds x {v.n} samples" if architecture else f"{v.n} samples"
    by = f" by {' + '.join(v.attacks)}" if v.attacks else ""
    other = "" if v.primary else "; only another run than the row's evaluated this threat (other samples)"
    return {
        "sort": f"{v.value:.6f}",
        "text": _pct(v.value),
        "interval": interval,
        "mark": "" if v.primary else "†",
        "title": f"{_pct(v.value)}% (95% interval {interval or 'n/a'}), {who}{by}, run {v.run}{other}",
    }


def _number(x: float | None) -> str:
    """A pass count per sample: whole passes from 100 up, one decimal below."""
    return "" if x is None else f"{x:.0f}" if x >= 100 else f"{x:.1f}"


def row(e: Entry, columns: list[Threat], reports: dict[str, str | None]) -> dict[str, Any]:
    """The template's view of one entry."""
    arch = e.kind == "architecture"
    return {
        "rank": e.rank,
        "name": e.name,
        "kind": e.kind,
        "population": e.architecture if arch else _population(e),
        "regime": e.training_regime,
        "seeds": e.seeds,
        "clean": cell(e.clean, arch),
        "scores": [cell(e.scores.get(t.key), arch) for t in columns],
        "evaluation": e.evaluation,
        "forwards": _number(e.forwards),
        "backwards": _number(e.backwards),
        **e.budget,
        "reports": [{"label": r, "href": reports[r]} for r in e.runs if reports.get(r)],
    }


def _population(e: Entry) -> str:
    return e.architecture if e.training_regime in ("clean", "unknown") else f"{e.architecture}+{e.training_regime}"


def render_html(context: dict[str, Any]) -> str:
    return str(_environment(True).get_template("leaderboard.html.j2").render(**context))


def render_markdown(context: dict[str, Any]) -> str:
    return str(_environment(False).get_template("leaderboard.md.j2").render(**context))


def csv_table(archs: list[Entry], models: list[Entry], columns: list[Threat], reports: dict[str, str | None]) -> Any:
    """One row per entry: accuracies as fractions with their intervals, and per threat the run,
    samples and attacks of the evaluation."""
    import pandas as pd

    rows = []
    for e in [*archs, *models]:
        r: dict[str, Any] = {
            "kind": e.kind,
            "rank": e.rank,
            "name": e.name,
            "architecture": e.architecture,
            "training_regime": e.training_regime,
            "seeds": e.seeds,
            "n": e.clean.n,
            "clean": e.clean.value,
            "clean_low": e.clean.low,
            "clean_high": e.clean.high,
        }
        for t in columns:
            v = e.scores.get(t.key)
            r |= {
                t.key: v.value if v else None,
                f"{t.key} low": v.low if v else None,
                f"{t.key} high": v.high if v else None,
                f"{t.key} n": v.n if v else None,
                f"{t.key} run": v.run if v else None,
                f"{t.key} attacks": " + ".join(v.attacks) if v else None,
            }
        r |= {
            "evaluation": e.evaluation,
            "forwards_per_sample": e.forwards,
            "backwards_per_sample": e.backwards,
            **e.budget,
            "runs": " ".join(e.runs),
            "report": " ".join(str(reports[x]) for x in e.runs if reports.get(x)),
        }
        rows.append(r)
    df = pd.DataFrame(rows)
    for c in df.columns:
        if df[c].dtype == float:
            df[c] = df[c].round(6)
    return df
