"""The sanity checks (Carlini et al. 2019, and the indicators of attack failure) and the run's
provenance: spec, data, models with their training budget and weights, attacks, versions."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd

from robust_attn.epsilon import format_eps
from robust_attn.reports.blocks import Block, Heading, Paragraph, Table
from robust_attn.reports.context import Context
from robust_attn.rundir import Run

CHECKS, RUN = "Sanity checks", "Run"
SHOWN = 4  # figures of a check the table shows; the full listing has them all


def checks_section(ctx: Context) -> list[Block]:
    checks = ctx.checks
    if not checks:
        return []
    rows = []
    for c in checks:
        figures = "\n".join(f"\u2022 {f}" for f in c.figures[:SHOWN]) + (
            f"\n... {len(c.figures) - SHOWN} more (full listing)" if len(c.figures) > SHOWN else ""
        )
        rows.append({"status": c.status.upper(), "check": c.name, "detail": c.detail, "figures": figures if c.status == "warning" else ""})
    style = ["fragile" if c.status == "warning" else "" for c in checks]
    listing = []
    for c in checks:
        listing.append(f"[{c.status.upper():>7}] {c.name}: {c.detail}")
        listing += [f"            {f}" for f in c.figures]
    return [
        Heading(CHECKS),
        Paragraph(
            "Each check reads the results table alone; a warning names the cells where it triggered (shaded) and what to do.", style="note"
        ),
        Table(pd.DataFrame(rows), row_style=style),
        Paragraph("\n".join(listing), style="mono", detail=True),
    ]


def title_lines(run: Run) -> list[str]:
    """The run's provenance, one fact a line."""
    m = run.manifest
    spec = m.get("spec", {})
    ds = m.get("dataset", {})
    env = m.get("environment", {})
    cell_seconds = sum(c.get("seconds") or 0 for c in m.get("cells", [])) + sum(p.get("seconds") or 0 for p in run.probes)
    lines = [
        f"spec: {spec.get('name', run.root.name)}    run directory: {run.root}",
        f"data: {ds.get('name')} {ds.get('split')} split, {ds.get('n')} samples (seed {ds.get('seed')})",
        f"device: {m.get('device')} ({m.get('device_name')}), {env.get('torch_threads')} threads, torch {env.get('torch_cpu_capability')} kernels; "
        f"attack time {cell_seconds:.0f} s over {len(m.get('cells', []))} cells and {len(run.probes)} probes "
        f"(last sweep invocation {m.get('wall_seconds', 0):.0f} s, resumed cells are not redone)",
        f"created: {m.get('created')}    report: {datetime.now(UTC).isoformat(timespec='seconds')}    git: {m.get('git_commit')}",
        f"modes: {', '.join(spec.get('modes', []))}; precision {spec.get('precision')}; batch size {spec.get('batch_size')}",
        "",
        f"models (clean accuracy on these {len(run.labels)} samples; at training; training budget):",
    ]
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
        norm = run.results.loc[run.results["attack"] == a.get("name"), "norm"].dropna()
        grid = ", ".join(format_eps(e, str(norm.iloc[0]) if len(norm) else "linf") for e in a.get("eps") or [])
        params = " ".join(f"{k}={v}" for k, v in sorted((a.get("params") or {}).items()))
        lines.append(
            "  "
            + " ".join(x for x in (a.get("name", "?"), f"[{a.get('backend', 'native')}]", params, f"| eps: {grid}" if grid else "") if x)
        )
    lines += [
        "",
        "library versions: " + ", ".join(f"{k} {v}" for k, v in m.get("versions", {}).items()),
        f"environment: {env.get('cpu')} ({', '.join(env.get('cpu_flags', []))}); {env.get('platform')}",
    ]
    return lines


def run_section(ctx: Context) -> list[Block]:
    return [Heading(RUN), Paragraph("\n".join(title_lines(ctx.run)), style="mono")]
