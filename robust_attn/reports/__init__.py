"""Reports: the answer first (the paper's claims and their verdicts, the headline curve), then
architecture-level comparisons, accuracy tables and curves, attacks, attention under attack,
segmentation and sanity checks, as PDF, Markdown and self-contained HTML from the same content
blocks, drawn from a run directory alone; and a few lines for the terminal."""

from robust_attn.reports.build import Report, make_report
from robust_attn.reports.checks import Check, run_checks
from robust_attn.reports.verdicts import terminal_summary
from robust_attn.rundir import Run, RunDirError, load_run

__all__ = ["Check", "Report", "Run", "RunDirError", "load_run", "make_report", "run_checks", "terminal_summary"]
