"""Reports: accuracy-degradation tables and curves, paired tests, attention under attack,
segmentation scores and sanity checks, as PDF and Markdown, drawn from a run directory alone."""

from robust_attn.reports.build import Report, make_report
from robust_attn.reports.checks import Check, run_checks
from robust_attn.rundir import Run, RunDirError, load_run

__all__ = ["Check", "Report", "Run", "RunDirError", "load_run", "make_report", "run_checks"]
