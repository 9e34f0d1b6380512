"""``robust-attn report RUN_DIR``: a run directory -> report.pdf, report.md with PNG figures,
summary.csv and paired.csv. Reads the run directory only: no model, no data set, no attack.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from robust_attn.atomic import atomic_bytes
from robust_attn.epsilon import format_eps, parse_eps
from robust_attn.reports import figures
from robust_attn.reports.checks import Check, indicator_checks, run_checks
from robust_attn.reports.render import markdown_table, stacked_tables_page, table_pages, text_page
from robust_attn.reports.tables import (
    ALL_ATTACKS,
    architecture_curves,
    architecture_pairs,
    architectures,
    attack_costs,
    budget_mismatch,
    curves,
    drift_summary,
    fooled_first,
    min_norm_curves,
    paired_comparisons,
    paper_claims,
    seeds_per_architecture,
    segmentation_summary,
    summary,
)
from robust_attn.rundir import Run, RunDir, load_run, schema

SUMMARY_NOTE = ("Accuracy and its 95% Wilson interval (in %) at each eps (/255 for L-inf); AUC = area under accuracy vs eps over the eps range, "
                "from eps = 0; eps at half clean = where accuracy falls to half of clean. Highlighted: best per column. 'all attacks': a "
                "sample counts as robust only if it survives every L-inf attack (balls are nested, so an attack at a smaller eps also counts).")  # fmt: skip
SECTIONS = ["Run", "Summary", "Architectures", "Accuracy curves", "Attack comparison", "Paired comparison of model instances", "Attention under attack",
            "Weakly supervised segmentation", "Sanity checks"]  # fmt: skip


@dataclass
class Report:
    pdf: Path
    markdown: Path
    summary_csv: Path
    checks: list[Check]
    summary: pd.DataFrame
    incomplete: str = ""  # one line naming the unfinished units of the run and how to finish them ('' when complete)


@dataclass
class _Doc:
    """PDF pages and Markdown blocks, side by side, plus the tables every section reads."""

    run: Run
    table: pd.DataFrame
    summary: pd.DataFrame
    colours: dict[str, tuple[float, float, float]]
    pages: list[Figure] = field(default_factory=list)
    md: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)

    @property
    def figure_dir(self) -> Path:
        return self.run.dir.figures

    def section(self, title: str) -> None:
        self.md.append(f"\n## {title}\n")

    def text(self, text: str) -> None:
        self.md.append(text + "\n")

    def figure(self, fig: Figure, name: str, caption: str) -> None:
        self.figure_dir.mkdir(parents=True, exist_ok=True)
        fig.savefig(self.figure_dir / f"{name}.png", dpi=110)
        self.md.append(f"![{caption}](figures/{name}.png)\n")
        self.pages.append(fig)

    def page(self, title: str, lines: list[str], size: float = 9.5) -> None:
        """A text page in the PDF, the same lines as a code block in the Markdown."""
        self.text("```\n" + "\n".join(lines) + "\n```")
        self.pages.append(text_page(title, lines, size=size))


def _fmt_pct(x: float) -> str:
    return "-" if pd.isna(x) else f"{x:.1%}"


def _summary_display(summary_df: pd.DataFrame, attack: str, mode: str, sep: str = " ") -> tuple[pd.DataFrame, set[tuple[int, str]]]:
    """The summary rows of one attack as strings (accuracy, then its interval after ``sep``)
    and the (row, column) cells holding the best value of each column."""
    sub = summary_df[(summary_df["attack"] == attack) & (summary_df["mode"] == mode)].reset_index(drop=True)
    acc_cols = sorted(
        (c for c in sub.columns if c.startswith("acc@") and sub[c].notna().any()), key=lambda c: parse_eps(c[4:], max_eps=None)
    )
    shown = pd.DataFrame({"model": sub["model"], "clean": sub["clean"].map(_fmt_pct)})
    for c in acc_cols:
        ci = sub[c.replace("acc@", "ci@")]
        shown[c.replace("acc@", "")] = [f"{a:.1%}{sep}{i}" if isinstance(i, str) else "-" for a, i in zip(sub[c], ci)]
    shown["AUC"] = sub["auc"].map(lambda v: f"{v:.3f}")
    half = f"eps at{sep}half clean"  # two header lines in the PDF, where the column is narrow
    norm = str(sub["norm"].iloc[0]) if len(sub) else "linf"
    shown[half] = sub["eps_half_clean"].map(lambda v: "never" if pd.isna(v) else (f"{v:.3g}" if norm == "l2" else f"{v * 255:.2f}/255"))
    bold: set[tuple[int, str]] = set()
    if len(sub) < 2:
        return shown, bold
    for src, dst in [("clean", "clean"), *[(c, c.replace("acc@", "")) for c in acc_cols], ("auc", "AUC"), ("eps_half_clean", half)]:
        values = sub[src].astype(float)
        if src == "eps_half_clean" and values.isna().any():
            best = np.nonzero(values.isna().to_numpy())[0]  # never falls to half: the most robust
        elif values.notna().any():
            best = np.nonzero(np.isclose(values, values.max()))[0]
        else:
            continue
        bold |= {(int(i), dst) for i in best}
    return shown, bold


def _title_lines(run: Run, report_seconds: float) -> list[str]:
    m = run.manifest
    spec = m.get("spec", {})
    ds = m.get("dataset", {})
    env = m.get("environment", {})
    cell_seconds = sum(c.get("seconds") or 0 for c in m.get("cells", [])) + sum(p.get("seconds") or 0 for p in run.probes)
    lines = [f"spec: {spec.get('name', run.root.name)}    run directory: {run.root}",
             f"data: {ds.get('name')} {ds.get('split')} split, {ds.get('n')} samples (seed {ds.get('seed')})",
             f"device: {m.get('device')} ({m.get('device_name')}), {env.get('torch_threads')} threads, torch {env.get('torch_cpu_capability')} kernels; "
             f"attack time {cell_seconds:.0f} s over {len(m.get('cells', []))} cells and {len(run.probes)} probes "
             f"(last sweep invocation {m.get('wall_seconds', 0):.0f} s, resumed cells are not redone); report {report_seconds:.1f} s",
             f"created: {m.get('created')}    report: {datetime.now(UTC).isoformat(timespec='seconds')}    git: {m.get('git_commit')}",
             f"modes: {', '.join(spec.get('modes', []))}; precision {spec.get('precision')}; batch size {spec.get('batch_size')}", "",
             f"models (clean accuracy on these {len(run.labels)} samples; at training; training budget):"]  # fmt: skip
    if run.missing:
        lines[:0] = ["INCOMPLETE RUN: " + run.missing_summary(), ""]
    ref_w = max((len(r) for r in run.models), default=0)
    arch_w = max((len(str(run.model_info(r).get("architecture") or "?")) for r in run.models), default=0)
    for ref in run.models:
        info = run.model_info(ref)
        sha = (info.get("weights_sha256") or info.get("checkpoint_sha256") or "")[:12] or "n/a"
        parts = [f"clean {run.clean_accuracy(ref):.1%}"]
        if isinstance(info.get("checkpoint_clean_accuracy"), float):
            parts.append(f"{info['checkpoint_clean_accuracy']:.1%} at training")
        if info.get("train_epochs"):
            parts.append(f"{info['train_epochs']} epochs x {info.get('train_size') or '?'} images, seed {info.get('train_seed')}")
        lines.append(f"  {ref:<{ref_w}}  {info.get('architecture') or '?':<{arch_w}}  {'; '.join(parts)}; weights {sha}")
    lines += ["", "attacks:"]
    for a in spec.get("attacks", []):
        norm = run.results.loc[run.results["name"] == a["name"], "norm"]
        eps = ", ".join(format_eps(e, str(norm.iloc[0]) if len(norm) else "linf") for e in a["eps"])
        params = " ".join(f"{k}={v}" for k, v in sorted(a["params"].items()))
        lines.append("  " + " ".join(x for x in (a["name"], f"[{a['backend']}]", params, f"| eps: {eps}") if x))
    lines += ["", "library versions: " + ", ".join(f"{k} {v}" for k, v in m.get("versions", {}).items()),
              f"environment: {env.get('cpu')} ({', '.join(env.get('cpu_flags', []))}); {env.get('platform')}"]  # fmt: skip
    return lines


# -- sections: each adds its Markdown and PDF pages to the document -------------------------------
def _run_section(doc: _Doc) -> None:
    doc.md.append(f"# Robustness report: {doc.run.manifest.get('spec', {}).get('name', doc.run.root.name)}\n")
    if doc.run.missing:
        doc.md.append(f"**Incomplete run:** {doc.run.missing_summary()}\n")
    doc.section("Run")
    doc.page("Robustness report: " + str(doc.run.manifest.get("spec", {}).get("name", doc.run.root.name)), _title_lines(doc.run, 0))


def _summary_section(doc: _Doc) -> None:
    doc.section("Summary")
    doc.text("Accuracy with 95% Wilson intervals at each eps (/255 for L-inf); AUC = area under accuracy vs eps divided by the eps range "
             "(from eps = 0); best model per column in bold. The 'all attacks' rows count a sample as robust only if it survives every L-inf attack.")  # fmt: skip
    summ = doc.summary
    order = sorted(dict.fromkeys(zip(summ["attack"], summ["mode"])), key=lambda am: (am[1] != "worst-case", am[0] != ALL_ATTACKS))
    for mode in dict.fromkeys(m for _, m in order):
        blocks = []
        for attack, m in order:
            if m == mode:
                shown, bold = _summary_display(summ, attack, mode)
                doc.text(f"\n**{attack}** ({mode})\n\n" + markdown_table(shown, bold))
                blocks.append((f"{attack} ({mode})", *_summary_display(summ, attack, mode, sep="\n")))
        doc.pages.append(stacked_tables_page(f"Summary: {mode}", SUMMARY_NOTE, blocks))


def _curves_section(doc: _Doc) -> None:
    doc.section("Accuracy curves")
    doc.figure(figures.accuracy_curves(doc.table, doc.colours), "curves", "accuracy vs eps")
    doc.figure(figures.accuracy_curves(doc.table, doc.colours, relative=True), "curves_relative", "accuracy relative to clean vs eps")


def _headline_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Clean rows and, at eps > 0, the pointwise worst over all attacks (or the only attack run)."""
    attacks = [a for a in dict.fromkeys(df["attack"]) if a != "clean"]
    focus = ALL_ATTACKS if ALL_ATTACKS in attacks else (attacks[0] if len(attacks) == 1 else None)
    return df[(df["attack"] == "clean") | ((df["attack"] == focus) & (df["eps"] > 0))]


def _architecture_section(doc: _Doc) -> None:
    doc.section("Architectures")
    run = doc.run
    members = architectures(run)
    seeds = seeds_per_architecture(run)
    budget = budget_mismatch(run)
    if budget:
        doc.text("**Warning: the compared models were trained with different budgets** (" + "; ".join(budget) + "). Differences "
                 "mix architecture and training length; train them with one budget before comparing architectures.")  # fmt: skip
    if seeds < 2:
        msg = ("Each architecture has one trained model in this run, so every comparison here is between model instances: another "
               "training run of the same architecture can land elsewhere, and no architecture-level claim is made. Sweep several "
               "training seeds (spec field seeds = [0, 1, 2]) for architecture-level intervals.")  # fmt: skip
        doc.text(msg)
        doc.pages.append(text_page("Architectures", [msg, "", *budget]))
        _claims_table(doc)
        return
    arch = architecture_curves(run)
    note = (f"{len(members)} architecture(s), at least {seeds} training seeds each. Accuracy is the mean over seeds and samples; the 95% interval "
            "counts both seed-to-seed and sample-to-sample variation (crossed random effects, method of moments, Satterthwaite t; "
            "robust_attn.archstats). Differences pair the samples; p tests 'no difference'.")  # fmt: skip
    doc.text(note)
    doc.figure(figures.architecture_curves(arch, doc.table, members), "architectures", "architecture-level accuracy curves")
    headline = _headline_rows(arch)
    shown = pd.DataFrame({"architecture": headline["architecture"], "seeds": headline["seeds"],
                          "attack": headline["attack"].replace({ALL_ATTACKS: "all attacks"}), "eps": headline["eps"].map(format_eps),
                          "accuracy [95% CI]": [f"{a:.1%} [{lo:.1%}, {hi:.1%}]" for a, lo, hi in zip(headline["accuracy"], headline["ci_low"], headline["ci_high"])]})  # fmt: skip
    doc.text(markdown_table(shown.reset_index(drop=True)))
    doc.pages += table_pages("Architectures: accuracy (clean, and the worst over all attacks)", shown.reset_index(drop=True), note)
    pairs = architecture_pairs(run)
    atomic_bytes(run.dir.csv(schema.ARCHITECTURE_PAIRS), pairs.to_csv(index=False).encode())
    if pairs.empty:
        return
    sel = _headline_rows(pairs).reset_index(drop=True)
    shown = pd.DataFrame({"attack": sel["attack"].replace({ALL_ATTACKS: "all attacks"}), "eps": sel["eps"].map(format_eps),
                          "A": sel["arch_a"], "B": sel["arch_b"], "A - B [95% CI]": [f"{d:+.1%} [{lo:+.1%}, {hi:+.1%}]" for d, lo, hi in zip(sel["diff"], sel["ci_low"], sel["ci_high"])],
                          "p": sel["p_value"].map(lambda p: f"{p:.2g}")})  # fmt: skip
    note = "Differences between architectures (every attack: architecture_pairs.csv). An interval that contains 0 is no evidence of a difference."
    doc.text(note + "\n\n" + markdown_table(shown))
    doc.pages += table_pages("Architectures: pairwise differences", shown, note)
    _claims_table(doc)


def _claims_table(doc: _Doc) -> None:
    """The paper's claims with their verdicts (instances only, when a population has one seed)."""
    run = doc.run
    claims = paper_claims(run)
    if not claims.empty:
        shown = pd.DataFrame({"architecture": claims["architecture"], "baseline": claims["against"], "claim": claims["claim"],
                              "eps": [format_eps(e) if e else "-" for e in claims["eps"]],
                              "value": claims["value"].map(lambda v: f"{v:.3f}"), "baseline value": claims["baseline"].map(lambda v: f"{v:.3f}"),
                              "difference [95% CI]": [f"{d:+.3f} [{lo:+.3f}, {hi:+.3f}]" for d, lo, hi in zip(claims["diff"], claims["ci_low"], claims["ci_high"])],
                              "p": claims["p_value"].map(lambda p: f"{p:.2g}"), "verdict": claims["verdict"]})  # fmt: skip
        note = ("The paper's claims (Jetley et al. 2018) tested at the architecture level on this data: accuracies, or the Jaccard index of "
                "the binarised mean attention map against the object mask vs the baseline's input-gradient saliency. Supported: the "
                "interval lies above 0; not supported: below 0; inconclusive: it contains 0.")  # fmt: skip
        doc.text(note + "\n\n" + markdown_table(shown))
        doc.pages += table_pages("The paper's claims, architecture level", shown, note)


def _attack_comparison_section(doc: _Doc) -> None:
    doc.section("Attack comparison")
    run = doc.run
    min_curves = min_norm_curves(run)
    if not min_curves.empty and (min_curves["norm"] == "linf").any():
        doc.text("A minimum-norm attack gives each sample's smallest fooling perturbation, so one run draws the whole curve; the "
                 "markers are the fixed-eps attacks (worst-case). The headline curve of the summary takes the pointwise worst of all of them.")  # fmt: skip
        doc.figure(figures.min_norm_overlay(min_curves, doc.table, doc.colours), "min_norm", "minimum-norm vs fixed-eps curves")
    first = fooled_first(run)
    if not first.empty:
        members = [c for c in first.columns if c not in ("model", "attack", "eps", "n")]
        shown = first.assign(eps=first["eps"].map(format_eps))[["model", "attack", "eps", "n", *members]]
        shown[members] = shown[members].astype(int)
        note = ("Ensemble cells, worst-case: how many of the n samples each member fooled first (members run in order, each on the "
                "previous members' survivors; 'clean' = wrong without attack). Cumulative over eps.")  # fmt: skip
        doc.text(note + "\n\n" + markdown_table(shown))
        doc.pages += table_pages("Attack comparison: which member fooled each sample first", shown, note)
    costs = attack_costs(run, doc.summary)
    shown = pd.DataFrame({"attack": costs["attack"], "mode": costs["mode"], "models": costs["models"],
                          "forwards / sample": costs["forwards_per_sample"].map(lambda v: "-" if pd.isna(v) else f"{v:,.1f}"),
                          "backwards / sample": costs["backwards_per_sample"].map(lambda v: "-" if pd.isna(v) else f"{v:,.1f}"),
                          "seconds": costs["seconds"].map(lambda v: f"{v:,.1f}"), "mean AUC (lower = stronger)": costs["mean_auc"].map(lambda v: f"{v:.3f}")})  # fmt: skip
    note = ("Compute per attack, over all eps of its grid and averaged over models, next to its strength (normalised AUC of accuracy vs "
            "eps, mean over models): compare attacks on strength per unit of compute. '-': not counted (worker processes).")  # fmt: skip
    doc.text(note + "\n\n" + markdown_table(shown))
    doc.pages += table_pages("Attack comparison: cost and strength", shown, note)


def _paired_section(doc: _Doc) -> None:
    doc.section(SECTIONS[5])
    paired = paired_comparisons(doc.run)
    if paired.empty:
        doc.text("Only one model: nothing to compare.")
        return
    atomic_bytes(doc.run.dir.csv(schema.PAIRED), paired.to_csv(index=False).encode())
    focus = ALL_ATTACKS if (paired["attack"] == ALL_ATTACKS).any() else paired["attack"].iloc[0]
    sel = paired[paired["attack"] == focus].reset_index(drop=True)
    shown = pd.DataFrame({"eps": sel["eps"].map(format_eps), "model A": sel["model_a"], "model B": sel["model_b"],
                          "acc A": sel["acc_a"].map(_fmt_pct), "acc B": sel["acc_b"].map(_fmt_pct),
                          "A - B": sel["diff"].map(lambda d: f"{d:+.1%}"), "only A right": sel["only_a"],
                          "only B right": sel["only_b"], "McNemar p": sel["p_value"].map(lambda p: f"{p:.2g}")})  # fmt: skip
    note = (f"{focus}, worst-case. These compare trained model instances on the same samples, not architectures: another training "
            "run of the same architecture can differ by more than these gaps. 'only A right' / 'only B right' are the discordant pairs; "
            "p is the exact two-sided McNemar test. All attacks and pairs are in paired.csv.")  # fmt: skip
    doc.text(note + "\n\n" + markdown_table(shown))
    doc.pages += table_pages("Paired comparison of model instances", shown, note)


def _attention_section(doc: _Doc) -> None:
    doc.section("Attention under attack")
    run = doc.run
    probes = [p for p in run.probes if p.get("stages")]
    if not probes:
        doc.text("No attention model was probed in this run (no attention model, no native FGSM/PGD attack, or attention_samples = 0).")
        doc.pages.append(text_page("Attention under attack", ["No attention model was probed in this run: section skipped."]))
        return
    attack = probes[0]["attack"]
    classes = list(run.manifest.get("dataset", {}).get("classes", []))
    n = int(run.drift["sample"].nunique()) if not run.drift.empty else 0
    doc.text(f"{n} test images attacked with {attack} (the sweep's parameters, independent per eps) during the sweep. Each grid shows "
             "images, predictions and each stage's attention map; drift compares clean and adversarial maps of the same image.")  # fmt: skip
    for p in probes:
        if p["model"] in run.examples:
            fig = figures.attention_grid(p["model"], run.examples[p["model"]], p["stages"], classes, p["attack"])
            doc.figure(
                fig,
                "attention_" + "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in p["model"]),
                f"attention maps of {p['model']}",
            )
    drift = drift_summary(run)
    doc.figure(figures.drift_curves(drift, doc.colours, attack), "attention_drift", "attention drift vs eps")
    doc.text(markdown_table(drift.assign(eps=drift["eps"].map(format_eps)).round(3)))


def _segmentation_section(doc: _Doc) -> None:
    doc.section("Weakly supervised segmentation")
    seg = segmentation_summary(doc.run)
    if seg.empty:
        doc.text("Needs attention models and a data set with object masks (the built-in one): section skipped.")
        doc.pages.append(text_page("Weakly supervised segmentation", ["Needs attention models and ground-truth masks: skipped."]))
        return
    attack = next((p["attack"] for p in doc.run.probes), "")
    doc.text("Each map is upsampled to the input size and binarised at the uniform level (a pixel is foreground when its attention "
             "exceeds 1/(H*W), the map's mean); the Jaccard index against the ground-truth object mask is averaged over images "
             "(+- one standard error in segmentation.parquet's per-image rows). Baselines: input-gradient saliency of each model without "
             "attention, binarised the same way, and a centred box covering the middle half of each side.")  # fmt: skip
    doc.figure(figures.segmentation_curves(seg, doc.colours, attack), "segmentation", "Jaccard vs eps")
    pivot = seg.pivot_table(index="method", columns="eps", values="jaccard", sort=False)
    pivot.columns = [format_eps(float(c)) for c in pivot.columns]
    seg_tab = pivot.round(3).reset_index()
    doc.text(markdown_table(seg_tab))
    doc.pages += table_pages("Weakly supervised segmentation: Jaccard index", seg_tab, "Higher is better; eps is the attack strength.")


def _checks_section(doc: _Doc) -> None:
    doc.section("Sanity checks")
    run = doc.run
    clean_counts = {m: (int(run.clean_correct(m).sum()), len(run.labels)) for m in run.models}
    results = run.results_with_traits()
    combined = doc.table[doc.table["attack"] == ALL_ATTACKS].assign(
        name=ALL_ATTACKS, backend="native", params="{}", threat_model="white-box"
    )
    results = pd.concat([results, combined[results.columns.intersection(combined.columns)]], ignore_index=True)
    doc.checks = run_checks(results, clean_counts) + indicator_checks(run.indicators)
    lines = []
    for c in doc.checks:
        lines.append(f"[{c.status.upper():>7}] {c.name}: {c.detail}")
        lines += [f"            {f}" for f in c.figures[:12]] + (
            [f"            ... {len(c.figures) - 12} more"] if len(c.figures) > 12 else []
        )
    doc.page("Sanity checks and indicators of attack failure", lines, size=7.5)


SECTION_WRITERS: list[Callable[[_Doc], None]] = [_run_section, _summary_section, _architecture_section, _curves_section, _attack_comparison_section, _paired_section,
                                                 _attention_section, _segmentation_section, _checks_section]  # fmt: skip


def make_report(run_dir: str | Path, *, attention: bool = True, progress: bool = True) -> Report:
    """Write report.pdf, report.md (+ figures/*.png), summary.csv and paired.csv into ``run_dir``,
    from its files alone. ``attention=False`` leaves out the attention and segmentation pages."""
    t0 = time.perf_counter()
    RunDir(run_dir).check_writable("write the report")
    run = load_run(run_dir)
    with figures.report_style():
        table = curves(run)
        doc = _Doc(run, table, summary(run, table), figures.palette(run.models))
        for write in SECTION_WRITERS:
            if attention or write not in (_attention_section, _segmentation_section):
                write(doc)
        title = "Robustness report: " + str(run.manifest.get("spec", {}).get("name", run.root.name))
        doc.pages[0] = text_page(title, _title_lines(run, time.perf_counter() - t0))
        buf = io.BytesIO()
        with PdfPages(buf) as pdf:
            for i, page in enumerate(doc.pages):
                page.text(0.98, 0.015, f"{i + 1}/{len(doc.pages)}", ha="right", fontsize=7, color="grey")
                pdf.savefig(page)
    atomic_bytes(run.dir.csv(schema.SUMMARY), doc.summary.to_csv(index=False).encode())
    atomic_bytes(run.dir.report("pdf"), buf.getvalue())
    atomic_bytes(run.dir.report("md"), "\n".join(doc.md).encode())
    if progress:
        print(f"report written in {time.perf_counter() - t0:.1f} s (read from {run.root}; no model loaded)", flush=True)
    return Report(run.dir.report("pdf"), run.dir.report("md"), run.dir.csv(schema.SUMMARY), doc.checks, doc.summary, run.missing_summary())
