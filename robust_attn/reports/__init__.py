"""Reports: the answer first (the paper's claims and their verdicts, the headline curve), then
architecture-level comparisons, accuracy tables and curves, attacks, attention under attack,
segmentation and sanity checks, as PDF, Markdown and self-contained HTML from the same content
blocks, drawn from a run directory alone; and a few lines for the terminal.

Names are imported on first use: the terminal summary a sweep prints needs no plotting
libraries, and matplotlib and seaborn cost about a second to import."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "Check": "robust_attn.reports.checks",
    "Report": "robust_attn.reports.build",
    "Run": "robust_attn.rundir",
    "RunDirError": "robust_attn.rundir",
    "load_run": "robust_attn.rundir",
    "make_report": "robust_attn.reports.build",
    "run_checks": "robust_attn.reports.checks",
    "terminal_summary": "robust_attn.reports.verdicts",
}
__all__ = ["Check", "Report", "Run", "RunDirError", "load_run", "make_report", "run_checks", "terminal_summary"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'robust_attn.reports' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


if TYPE_CHECKING:
    from robust_attn.reports.build import Report, make_report
    from robust_attn.reports.checks import Check, run_checks
    from robust_attn.reports.verdicts import terminal_summary
    from robust_attn.rundir import Run, RunDirError, load_run
