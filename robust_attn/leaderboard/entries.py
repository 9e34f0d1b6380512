"""The leaderboard's rows as data: one per model and one per architecture (its population: the
architecture with its training regime, over training seeds), each with clean accuracy and the
robust accuracy of its strongest evaluation per threat, where that came from (run, attacks,
samples), its cost and the model's training budget.

A model evaluated in several runs is listed under its strongest evaluation at the headline
threat (the run in which it scored lowest there, as RobustBench lists the best known attack);
that run gives its clean accuracy and every threat it evaluated, so a row reads as one
evaluation on one set of samples, and threats only other runs evaluated come from the strongest
of those, marked (``Value.primary`` False). Models are one model across runs when their reference and
recorded weights (sha256; an import spec records none) agree. Model intervals are Wilson 95%
intervals over samples; architecture intervals (robust_attn.archstats) cover seeds and samples.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import TypeVar

import numpy as np

from robust_attn.archstats import architecture_mean
from robust_attn.leaderboard.evaluation import CellView, Score, Threat, cell_views, worst_case
from robust_attn.reports.tables import architectures, population
from robust_attn.rundir import Run
from robust_attn.stats import wilson_interval


@dataclass(frozen=True)
class Source:
    """One run of the leaderboard: its label (the folder name), data, and the link to its report."""

    label: str
    run: Run
    report: str | None  # path of report.html (else report.md, report.pdf) relative to the leaderboard; None if neither exists


@dataclass(frozen=True)
class Value:
    """An accuracy with its 95% interval, and the evaluation it came from."""

    value: float
    low: float
    high: float
    n: int  # samples
    run: str  # label of the run
    attacks: tuple[str, ...] = ()  # the attacks whose per-sample worst case it is (empty: clean)
    seeds: int = 1
    primary: bool = True  # from the row's primary run (False: a threat only another run evaluated)


@dataclass
class Entry:
    """One leaderboard row."""

    kind: str  # model or architecture
    name: str
    architecture: str
    training_regime: str
    seeds: int
    clean: Value
    scores: dict[str, Value]  # Threat.key -> value
    evaluation: str  # the attacks behind the row's robust accuracies, per run
    forwards: float | None  # forward / backward passes per sample of those attacks (per model for architectures); None: not recorded
    backwards: float | None
    budget: dict[str, str]  # train_epochs, train_size, recipe
    runs: list[str] = field(default_factory=list)  # labels of the runs its numbers come from
    rank: int = 0


@dataclass(frozen=True)
class _Evaluated:
    """One model in one run: its clean outcomes and its scores per threat."""

    source: Source
    model: str
    clean: np.ndarray
    scores: dict[str, Score]


BUDGET = ("train_epochs", "train_size", "recipe")
T = TypeVar("T")


def evaluate(source: Source, model: str, threats: Iterable[Threat]) -> _Evaluated:
    cells: list[CellView] = cell_views(source.run, model)
    clean = source.run.clean_correct(model)
    scores = {t.key: s for t in threats if (s := worst_case(cells, clean, t)) is not None}
    return _Evaluated(source, model, clean, scores)


def _model_value(correct: np.ndarray, run: str, attacks: tuple[str, ...] = ()) -> Value:
    k, n = int(correct.sum()), int(correct.size)
    low, high = wilson_interval(k, n)
    return Value(k / n, float(low), float(high), n, run, attacks)


def _arch_value(y: np.ndarray, run: str, attacks: tuple[str, ...] = ()) -> Value:
    """Mean over seeds x samples with the interval of robust_attn.archstats (clipped to [0, 1])."""
    if y.shape[1] < 2:
        return Value(float(y.mean()), float("nan"), float("nan"), y.shape[1], run, attacks, len(y))
    est = architecture_mean(y)
    return Value(est.value, max(0.0, est.low), min(1.0, est.high), y.shape[1], run, attacks, len(y))


def _strongest(candidates: list[tuple[Value, T]]) -> tuple[Value, T] | None:
    """The lowest accuracy (ties: more samples, then the earlier run)."""
    if not candidates:
        return None
    return min(enumerate(candidates), key=lambda ic: (ic[1][0].value, -ic[1][0].n, ic[0]))[1]


def _cost(evals: list[tuple[_Evaluated, set[tuple[str, str]]]]) -> tuple[float | None, float | None]:
    """Forward and backward passes per sample of the (attack, mode) cells behind a row, summed over
    its cells and averaged over models per run, then summed over runs; None when a cell did not record them."""
    per_run: dict[str, list[tuple[float, float]]] = {}
    for ev, ids in evals:
        res = ev.source.run.results
        rows = res[res["model"] == ev.model].drop_duplicates(["attack", "mode"]).set_index(["attack", "mode"])
        f = [rows.loc[i, "forwards_per_sample"] for i in ids if i in rows.index]
        b = [rows.loc[i, "backwards_per_sample"] for i in ids if i in rows.index]
        if len(f) < len(ids) or any(math.isnan(float(v)) for v in f + b):  # NaN: a run written before the counters existed
            return None, None
        per_run.setdefault(ev.source.label, []).append((float(sum(f)), float(sum(b))))
    if not per_run:
        return None, None
    return (
        sum(float(np.mean([c[0] for c in v])) for v in per_run.values()),
        sum(float(np.mean([c[1] for c in v])) for v in per_run.values()),
    )


def _evaluation(scores: dict[str, Value], order: list[str]) -> str:
    """``fgsm + pgd-10 (compare); apgd-100 (reference)``: the attacks behind the values, per run."""
    per_run: dict[str, dict[str, None]] = {label: {} for label in order}
    for v in scores.values():
        per_run[v.run] |= dict.fromkeys(v.attacks)
    return "; ".join(f"{' + '.join(a)} ({label})" for label, a in per_run.items() if a)


def _budget(infos: list[dict[str, object]]) -> dict[str, str]:
    out = {}
    for key in BUDGET:
        values = list(dict.fromkeys(str(i.get(key)) for i in infos if i.get(key) is not None))
        out[key] = " / ".join(values)
    return out


def _used(ev: _Evaluated, scores: dict[str, Value]) -> set[tuple[str, str]]:
    """The (attack, mode) cells of ``ev`` behind the values of ``scores`` that came from its run."""
    return {(c.attack, c.mode) for key, v in scores.items() if v.run == ev.source.label and key in ev.scores for c in ev.scores[key].cells}


def _pick(candidates: dict[str, list[tuple[Value, T]]], headline: str) -> tuple[str, dict[str, tuple[Value, T]]]:
    """(the row's primary run, per threat its value): the primary run is the strongest evaluation at
    the headline threat (else the run with the most threats), and gives every threat it evaluated,
    so a row reads as one evaluation on one set of samples; the threats it lacks come from the
    strongest other run, marked as such."""
    best = _strongest(candidates.get(headline, []))
    if best is not None:
        primary = best[0].run
    else:
        runs = [v.run for cands in candidates.values() for v, _ in cands]
        primary = max(dict.fromkeys(runs), key=runs.count)
    out = {}
    for key, cands in candidates.items():
        mine = [c for c in cands if c[0].run == primary]
        pick = mine[0] if mine else _strongest(cands)
        if pick is not None:
            out[key] = pick if mine else (replace(pick[0], primary=False), pick[1])
    return primary, out


def model_entry(name: str, evals: list[_Evaluated], order: list[str], headline: str) -> Entry:
    """The row of one model from its evaluations in one or more runs."""
    candidates: dict[str, list[tuple[Value, _Evaluated]]] = {}
    for ev in evals:
        for key, score in ev.scores.items():
            candidates.setdefault(key, []).append((_model_value(score.correct, ev.source.label, score.attacks), ev))
    primary, picked = _pick(candidates, headline)
    scores = {k: v for k, (v, _) in picked.items()}
    main = next((ev for ev in evals if ev.source.label == primary), evals[0])
    arch, regime = population(main.source.run, main.model)
    forwards, backwards = _cost([(ev, _used(ev, scores)) for ev in evals if any(v.run == ev.source.label for v in scores.values())])
    info = [ev.source.run.model_info(ev.model) for ev in evals]
    return Entry(
        "model",
        name,
        arch,
        regime,
        1,
        _model_value(main.clean, main.source.label),
        scores,
        _evaluation(scores, order),
        forwards,
        backwards,
        _budget(info),
        [r for r in order if any(v.run == r for v in scores.values())],
    )


def architecture_entry(label: str, parts: list[list[_Evaluated]], order: list[str], headline: str) -> Entry:
    """The row of one population from its models in each run (``parts``: one list of seeds per run)."""
    candidates: dict[str, list[tuple[Value, list[_Evaluated]]]] = {}
    for part in parts:
        for key in dict.fromkeys(k for ev in part for k in ev.scores):
            seeds = [ev for ev in part if key in ev.scores]
            y = np.asarray([ev.scores[key].correct for ev in seeds], dtype=float)
            attacks = tuple(dict.fromkeys(a for ev in seeds for a in ev.scores[key].attacks))
            candidates.setdefault(key, []).append((_arch_value(y, seeds[0].source.label, attacks), seeds))
    primary, picked = _pick(candidates, headline)
    scores = {k: v for k, (v, _) in picked.items()}
    main = next((p for p in parts if p[0].source.label == primary), parts[0])
    arch, regime = population(main[0].source.run, main[0].model)
    evs = list({id(ev): ev for _, seeds in picked.values() for ev in seeds}.values())
    forwards, backwards = _cost([(ev, _used(ev, scores)) for ev in evs])
    clean = _arch_value(np.asarray([ev.clean for ev in main], dtype=float), primary)
    info = [ev.source.run.model_info(ev.model) for part in parts for ev in part]
    return Entry(
        "architecture",
        label,
        arch,
        regime,
        len(main),
        clean,
        scores,
        _evaluation(scores, order),
        forwards,
        backwards,
        _budget(info),
        [r for r in order if any(v.run == r for v in scores.values())],
    )


def entries(sources: list[Source], threats: list[Threat], headline: Threat) -> tuple[list[Entry], list[Entry], list[str]]:
    """(architecture rows, model rows, notes) over the runs."""
    order = [s.label for s in sources]
    evaluated = {(s.label, m): evaluate(s, m, threats) for s in sources for m in s.run.models}
    names, notes = _identities(sources)
    models = [model_entry(name, [evaluated[k] for k in keys], order, headline.key) for name, keys in names.items()]
    pops: dict[str, list[list[_Evaluated]]] = {}
    for s in sources:
        for label, refs in architectures(s.run).items():
            pops.setdefault(label, []).append([evaluated[(s.label, m)] for m in refs])
    archs = [architecture_entry(label, parts, order, headline.key) for label, parts in pops.items()]
    return archs, models, notes


def _identities(sources: list[Source]) -> tuple[dict[str, list[tuple[str, str]]], list[str]]:
    """Row name -> the (run label, model) pairs that are one model: the same reference and recorded
    weights; a reference with two sets of weights gets one row per set, named with its run."""
    by_id: dict[tuple[str, str | None], list[tuple[str, str]]] = {}
    for s in sources:
        for m in s.run.models:
            by_id.setdefault((m, s.run.model_info(m).get("weights_sha256")), []).append((s.label, m))
    refs = [ref for ref, _ in by_id]
    out, notes = {}, []
    for (ref, sha), keys in by_id.items():
        ambiguous = refs.count(ref) > 1
        out[f"{ref} ({', '.join(label for label, _ in keys)})" if ambiguous else ref] = keys
        if ambiguous:
            notes.append(
                f"{ref} names different weights in different runs (weights {str(sha)[:12]} in {', '.join(k for k, _ in keys)}): one row each"
            )
    return out, list(dict.fromkeys(notes))
