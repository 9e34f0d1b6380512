"""``robust-attn report RUN_DIR``: results.csv + outcomes.npz + manifest.json (+ checkpoints for
the attention pages) -> report.pdf, report.md with PNG figures, summary.csv."""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from robust_attn.attacks import create_attack
from robust_attn.attacks.eps import format_eps
from robust_attn.data import load_dataset
from robust_attn.reports import figures
from robust_attn.reports.attention import AttentionStudy, has_attention, study
from robust_attn.reports.checks import Check, run_checks
from robust_attn.reports.render import markdown_table, stacked_tables_page, table_pages, text_page
from robust_attn.reports.rundir import Run, load_run
from robust_attn.reports.tables import ALL_ATTACKS, curves, paired_comparisons, summary
from robust_attn.sweeps.store import atomic_bytes

SUMMARY_NOTE = ("Accuracy and its 95% Wilson interval (in %) at each eps (/255); AUC = area under accuracy vs eps over the eps range, from eps = 0; "
                "eps at half clean = where accuracy falls to half of clean. Highlighted: best per column. 'all attacks': a sample counts as "
                "robust only if it survives every L-inf attack (balls are nested, so an attack at a smaller eps also counts).")  # fmt: skip
SECTIONS = ["Run", "Summary", "Accuracy curves", "Paired model comparison", "Attention under attack",
            "Weakly supervised segmentation", "Sanity checks"]  # fmt: skip
ATTENTION_SAMPLES = 200


@dataclass
class Report:
    pdf: Path
    markdown: Path
    summary_csv: Path
    checks: list[Check]
    summary: pd.DataFrame


class _Doc:
    """Collects PDF pages and Markdown blocks side by side."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.pages: list[Figure] = []
        self.md: list[str] = []
        self.figure_dir = root / "figures"
        self.figure_dir.mkdir(parents=True, exist_ok=True)

    def section(self, title: str) -> None:
        self.md.append(f"\n## {title}\n")

    def text(self, text: str) -> None:
        self.md.append(text + "\n")

    def figure(self, fig: Figure, name: str, caption: str) -> None:
        fig.savefig(self.figure_dir / f"{name}.png", dpi=110)
        self.md.append(f"![{caption}](figures/{name}.png)\n")
        self.pages.append(fig)


def _fmt_pct(x: float) -> str:
    return "-" if pd.isna(x) else f"{x:.1%}"


def _summary_display(summary_df: pd.DataFrame, attack: str, mode: str, sep: str = " ") -> tuple[pd.DataFrame, set[tuple[int, str]]]:
    """The summary rows of one attack as strings (accuracy, then its interval after ``sep``)
    and the (row, column) cells holding the best value of each column."""
    sub = summary_df[(summary_df["attack"] == attack) & (summary_df["mode"] == mode)].reset_index(drop=True)
    acc_cols = [c for c in sub.columns if c.startswith("acc@") and sub[c].notna().any()]
    shown = pd.DataFrame({"model": sub["model"], "clean": sub["clean"].map(_fmt_pct)})
    for c in acc_cols:
        ci = sub[c.replace("acc@", "ci@")]
        shown[c.replace("acc@", "")] = [f"{a:.1%}{sep}{i}" if isinstance(i, str) else "-" for a, i in zip(sub[c], ci)]
    shown["AUC"] = sub["auc"].map(lambda v: f"{v:.3f}")
    half = f"eps at{sep}half clean"  # two header lines in the PDF, where the column is narrow
    shown[half] = sub["eps_half_clean_255"].map(lambda v: "never" if pd.isna(v) else f"{v:.2f}/255")
    bold: set[tuple[int, str]] = set()
    for src, dst in [
        ("clean", "clean"),
        *[(c, c.replace("acc@", "")) for c in acc_cols],
        ("auc", "AUC"),
        ("eps_half_clean_255", half),
    ]:
        values = sub[src].astype(float)
        if len(sub) < 2:
            continue
        if src == "eps_half_clean_255" and values.isna().any():
            best = np.nonzero(values.isna().to_numpy())[0]  # never falls to half: the most robust
        elif values.notna().any():
            best = np.nonzero(np.isclose(values, values.max()))[0]
        else:
            continue
        bold |= {(int(i), dst) for i in best}
    return shown, bold


def _title_lines(run: Run, wall: float) -> list[str]:
    m = run.manifest
    spec = m.get("spec", {})
    ds = m.get("dataset", {})
    lines = [f"spec: {spec.get('name', run.root.name)}    run directory: {run.root}",
             f"data: {ds.get('name')} {ds.get('split')} split, {ds.get('n')} samples (seed {ds.get('seed')})",
             f"device: {m.get('device')} ({m.get('device_name')}), {m.get('torch_threads')} threads; attack time {sum(m.get('cell_seconds', {}).values()):.0f} s "
             f"over {len(m.get('cell_seconds', {}))} cells (last sweep invocation {m.get('wall_seconds', 0):.0f} s, resumed cells are not redone); report {wall:.0f} s",
             f"created: {m.get('created')}    report: {datetime.now(UTC).isoformat(timespec='seconds')}    git: {m.get('git_commit')}",
             f"modes: {', '.join(spec.get('modes', []))}; precision {spec.get('precision')}; batch size {spec.get('batch_size')}", "", "models:"]  # fmt: skip
    ref_w = max((len(r) for r in run.models), default=0)
    arch_w = max((len(m.get("models", {}).get(r, {}).get("model_name") or "?") for r in run.models), default=0)
    lines[-1] = f"models (clean accuracy on these {len(run.labels)} samples; at training; training length):"
    for ref in run.models:
        info = m.get("models", {}).get(ref, {})
        sha = (info.get("checkpoint_sha256") or "")[:12] or "n/a"
        arch = info.get("model_name") or "?"
        recorded = info.get("checkpoint_clean_accuracy")
        parts = [f"clean {run.clean_accuracy(ref):.1%}"]
        if isinstance(recorded, float):
            parts.append(f"{recorded:.1%} at training")
        if info.get("train_epochs"):
            parts.append(f"{info['train_epochs']} epochs x {info.get('train_size') or '?'} images")
        lines.append(f"  {ref:<{ref_w}}  {arch:<{arch_w}}  {'; '.join(parts)}; sha256 {sha}")
    lines += ["", "attacks:"]
    for a in spec.get("attacks", []):
        eps = ", ".join(format_eps(e) for e in a["eps"])
        params = " ".join(f"{k}={v}" for k, v in sorted(a["params"].items()))
        lines.append("  " + " ".join(x for x in (a["name"], f"[{a['backend']}]", params, f"| eps: {eps}") if x))
    lines += ["", "library versions: " + ", ".join(f"{k} {v}" for k, v in m.get("versions", {}).items())]
    return lines


def _attention_study(run: Run, progress: bool) -> tuple[AttentionStudy | None, str, dict[str, list[str]], list[str]]:
    """Reload the attention models' checkpoints and measure their maps under the strongest
    native L-inf attack of the sweep."""
    from robust_attn.resolve import load_model_ref

    spec = run.manifest.get("spec", {})
    attacks = [a for a in spec.get("attacks", []) if a["backend"] == "native" and a["name"] in ("pgd", "fgsm")]
    if not attacks:
        return None, "", {}, []
    chosen = next((a for a in attacks if a["name"] == "pgd"), attacks[0])
    ds = run.manifest["dataset"]
    data = load_dataset(ds["name"], ds["split"], n=min(ATTENTION_SAMPLES, ds["n"]), data_dir=spec.get("data_dir"), seed=ds.get("seed", 0))
    _, x, y = next(data.batches(len(data)))
    models, stages, attack_for = {}, {}, {}
    baseline = None
    for ref in run.models:
        try:
            model, _ = load_model_ref(ref, "cpu", progress=progress, data_dir=spec.get("data_dir"))
        except (ValueError, FileNotFoundError) as err:
            print(f"note: skipping attention pages for {ref}: {err}")
            continue
        if has_attention(model):
            models[ref] = model
            stages[ref] = list(getattr(model, "stage_names", []))
            attack_for[ref] = create_attack(chosen["name"], model, seed=spec.get("seed", 0), **chosen["params"])
        elif baseline is None:
            baseline = model
            attack_for["__baseline__"] = create_attack(chosen["name"], model, seed=spec.get("seed", 0), **chosen["params"])
    if not models:
        return None, chosen["name"], {}, list(data.classes)
    eps_grid = sorted({0.0, *chosen["eps"]})
    nonzero = [e for e in eps_grid if e > 0]
    example_eps = sorted({nonzero[0], nonzero[len(nonzero) // 2], nonzero[-1]}) if nonzero else []
    masks = data.masks if data.masks is not None else None
    label = chosen["name"].upper() + (f"-{chosen['params']['steps']}" if "steps" in chosen["params"] else "")
    return study(models, attack_for, x, y, masks, eps_grid, example_eps, baseline=baseline), label, stages, list(data.classes)


def make_report(run_dir: str | Path, *, attention: bool = True, progress: bool = True) -> Report:
    """Write report.pdf, report.md (+ figures/*.png) and summary.csv into ``run_dir``."""
    t0 = time.perf_counter()
    run = load_run(run_dir)
    root = run.root
    doc = _Doc(root)
    table = curves(run)
    summ = summary(run, table)
    colours = figures.palette(run.models)
    clean_counts = {m: (int(run.clean_correct(m).sum()), len(run.labels)) for m in run.models}
    combined = table[table["attack"] == ALL_ATTACKS].assign(name=ALL_ATTACKS, backend="native", params="{}")
    checks = run_checks(
        pd.concat([run.results, combined[run.results.columns.intersection(combined.columns)]], ignore_index=True), clean_counts
    )

    doc.md.append(f"# Robustness report: {run.manifest.get('spec', {}).get('name', root.name)}\n")
    # 2. summary
    doc.section("Summary")
    doc.text("Accuracy with 95% Wilson intervals at each eps (/255 for L-inf); AUC = area under accuracy vs eps divided by the eps range "
             "(from eps = 0); best model per column in bold. The 'all attacks' rows count a sample as robust only if it survives every L-inf attack.")  # fmt: skip
    summary_pages: list[Figure] = []
    order = [(a, m) for a, m in dict.fromkeys(zip(summ["attack"], summ["mode"]))]
    order = sorted(order, key=lambda am: (am[1] != "worst-case", am[0] == ALL_ATTACKS))
    for mode in dict.fromkeys(m for _, m in order):
        blocks = []
        for attack, m in order:
            if m == mode:
                shown, bold = _summary_display(summ, attack, mode)
                doc.text(f"\n**{attack}** ({mode})\n\n" + markdown_table(shown, bold))
                blocks.append((f"{attack} ({mode})", _summary_display(summ, attack, mode, sep="\n")))
        summary_pages.append(stacked_tables_page(f"Summary: {mode}", SUMMARY_NOTE, [(t, df, b) for t, (df, b) in blocks]))
    # 3. curves
    doc.section("Accuracy curves")
    curve_fig = figures.accuracy_curves(table, colours)
    rel_fig = figures.accuracy_curves(table, colours, relative=True)
    # 4. paired comparison
    paired = paired_comparisons(run, table)
    paired_shown = pd.DataFrame()
    if not paired.empty:
        focus = ALL_ATTACKS if (paired["attack"] == ALL_ATTACKS).any() else paired["attack"].iloc[0]
        sel = paired[paired["attack"] == focus].reset_index(drop=True)
        paired_shown = pd.DataFrame({"eps": sel["eps"].map(format_eps), "model A": sel["model_a"], "model B": sel["model_b"],
                                     "acc A": sel["acc_a"].map(_fmt_pct), "acc B": sel["acc_b"].map(_fmt_pct),
                                     "A - B": sel["diff"].map(lambda d: f"{d:+.1%}"), "only A right": sel["only_a"],
                                     "only B right": sel["only_b"], "McNemar p": sel["p_value"].map(lambda p: f"{p:.2g}")})  # fmt: skip
    # 5-6. attention
    att, att_label, stages, classes = _attention_study(run, progress) if attention else (None, "", {}, [])

    # assemble PDF order and Markdown
    doc.pages.append(text_page("Robustness report: " + str(run.manifest.get("spec", {}).get("name", root.name)), _title_lines(run, 0)))
    doc.md.insert(1, "\n## Run\n\n```\n" + "\n".join(_title_lines(run, 0)) + "\n```\n")
    doc.pages += summary_pages
    doc.figure(curve_fig, "curves", "accuracy vs eps")
    doc.figure(rel_fig, "curves_relative", "accuracy relative to clean vs eps")
    doc.section("Paired model comparison")
    if paired.empty:
        doc.text("Only one model: nothing to compare.")
    else:
        note = (f"{focus}, worst-case: accuracy difference on the same samples; 'only A right' / 'only B right' are the discordant pairs; "
                "p is the exact two-sided McNemar test. All attacks and pairs are in paired.csv.")  # fmt: skip
        doc.text(note + "\n\n" + markdown_table(paired_shown))
        doc.pages += table_pages("Paired model comparison", paired_shown, note)
        atomic_bytes(root / "paired.csv", paired.to_csv(index=False).encode())
    doc.section("Attention under attack")
    if att is None:
        doc.text("No attention model in this run (or no native FGSM/PGD attack to reproduce): section skipped.")
        doc.pages.append(text_page("Attention under attack", ["No attention model in this run: section skipped."]))
    else:
        doc.text(f"{ATTENTION_SAMPLES} test images attacked with {att_label} (the sweep's parameters, independent per eps). Each grid shows "
                 "images, predictions and each stage's attention map; drift compares clean and adversarial maps of the same image.")  # fmt: skip
        for ref, ex in att.examples.items():
            doc.figure(
                figures.attention_grid(ref, ex, stages[ref], classes, att_label),
                "attention_" + ref.replace("/", "_"),
                f"attention maps of {ref}",
            )
        doc.figure(figures.drift_curves(att.drift, colours, att_label), "attention_drift", "attention drift vs eps")
        drift_tab = att.drift.assign(eps=att.drift["eps"].map(format_eps)).round(3)
        doc.text(markdown_table(drift_tab))
    doc.section("Weakly supervised segmentation")
    if att is None or att.segmentation.empty:
        doc.text("Needs attention models and a data set with object masks (the built-in one): section skipped.")
        doc.pages.append(text_page("Weakly supervised segmentation", ["Needs attention models and ground-truth masks: skipped."]))
    else:
        seg = att.segmentation
        doc.text("Each map is upsampled to 32x32 and binarised at the uniform level (a pixel is foreground when its attention exceeds "
                 "1/(H*W), the map's mean); the Jaccard index against the ground-truth object mask is averaged over images. Baselines: "
                 "input-gradient saliency of the baseline VGG binarised the same way, and a centred box covering the middle half of each side.")  # fmt: skip
        doc.figure(figures.segmentation_curves(seg, colours, att_label), "segmentation", "Jaccard vs eps")
        pivot = seg.pivot_table(index="method", columns="eps", values="jaccard", sort=False)
        pivot.columns = [format_eps(float(c)) for c in pivot.columns]
        seg_tab = pivot.round(3).reset_index()
        doc.text(markdown_table(seg_tab))
        doc.pages += table_pages("Weakly supervised segmentation: Jaccard index", seg_tab, "Higher is better; eps is the attack strength.")
    doc.section("Sanity checks")
    lines = []
    for c in checks:
        lines.append(f"[{c.status.upper():>7}] {c.name}: {c.detail}")
        lines += [f"            {f}" for f in c.figures[:12]] + (
            [f"            ... {len(c.figures) - 12} more"] if len(c.figures) > 12 else []
        )
    doc.text("```\n" + "\n".join(lines) + "\n```")
    doc.pages.append(text_page("Sanity checks (Carlini et al. 2019)", lines, size=8))

    summ_out = summ.copy()
    atomic_bytes(root / "summary.csv", summ_out.to_csv(index=False).encode())
    wall = time.perf_counter() - t0
    doc.pages[0] = text_page("Robustness report: " + str(run.manifest.get("spec", {}).get("name", root.name)), _title_lines(run, wall))
    doc.md[1] = "\n## Run\n\n```\n" + "\n".join(_title_lines(run, wall)) + "\n```\n"
    buf = io.BytesIO()
    with PdfPages(buf) as pdf:
        for i, page in enumerate(doc.pages):
            page.text(0.98, 0.015, f"{i + 1}/{len(doc.pages)}", ha="right", fontsize=7, color="grey")
            pdf.savefig(page)
            plt.close(page)
    atomic_bytes(root / "report.pdf", buf.getvalue())
    atomic_bytes(root / "report.md", "\n".join(doc.md).encode())
    return Report(root / "report.pdf", root / "report.md", root / "summary.csv", checks, summ)
