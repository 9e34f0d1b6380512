"""``robust-attn report RUN_DIR``: a run directory -> report.pdf, report.md (figures under
figures/), report.html (self-contained), summary.csv, paired.csv and architecture_pairs.csv.
Reads the run directory only: no model, no data set, no attack.

Each section (:mod:`robust_attn.reports.sections`) turns the run into content blocks once; the
PDF, Markdown and HTML renderers lay out the same blocks. A new section is a function
``(Context) -> list[Block]`` (empty when the run holds none of its data) added to
:data:`SECTION_WRITERS` where it belongs in order of importance.
"""

from __future__ import annotations

import errno
import io
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from robust_attn.atomic import atomic_bytes
from robust_attn.errors import RunDirError
from robust_attn.reports import figures
from robust_attn.reports.blocks import Block, Heading, Plot
from robust_attn.reports.canvas import standalone
from robust_attn.reports.checks import Check
from robust_attn.reports.context import Context
from robust_attn.reports.html import render_html
from robust_attn.reports.markdown import render_markdown
from robust_attn.reports.pdf import PNG_DPI, WIDTH, render_pdf
from robust_attn.reports.sections.answer import answer_section
from robust_attn.reports.sections.appendix import appendix_section
from robust_attn.reports.sections.architectures import architecture_section, claims_section
from robust_attn.reports.sections.attacks import attack_section
from robust_attn.reports.sections.attention import attention_section, segmentation_section
from robust_attn.reports.sections.families import families_section
from robust_attn.reports.sections.models import models_section
from robust_attn.reports.sections.provenance import checks_section, run_section
from robust_attn.reports.sections.threats import corruption_section, generalisation_section, transfer_section
from robust_attn.rundir import RunDir, load_run, schema
from robust_attn.rundir.lock import RunLock

# In order of importance: the answer, the evidence behind it, then the detail; instance-level tests last.
SECTION_WRITERS: list[Callable[[Context], list[Block]]] = [
    answer_section,  # page 1: Summary
    claims_section,  # The paper's claims
    architecture_section,  # Architectures
    families_section,  # Families (three architectures or more, two threat-model kinds or more)
    checks_section,  # Sanity checks
    models_section,  # Accuracy per model
    attack_section,  # Attack comparison
    corruption_section,  # Common corruptions
    transfer_section,  # Transfer attacks
    generalisation_section,  # Generalisation to unseen data
    attention_section,  # Attention under attack
    segmentation_section,  # Weakly supervised segmentation
    run_section,  # Run
    appendix_section,  # Appendix: paired comparison of model instances
]
SECTIONS = [
    "Summary",
    "The paper's claims",
    "Architectures",
    "Families",
    "Sanity checks",
    "Accuracy per model",
    "Attack comparison",
    "Common corruptions",
    "Transfer attacks",
    "Generalisation to unseen data",
    "Attention under attack",
    "Weakly supervised segmentation",
    "Run",
    "Appendix: paired comparison of model instances",
]


@dataclass
class Report:
    pdf: Path
    markdown: Path
    summary_csv: Path
    checks: list[Check]
    summary: pd.DataFrame
    incomplete: str = ""  # one line naming the unfinished units of the run and how to finish them ('' when complete)
    html: Path | None = None
    pages: int = 0  # pages of the PDF


def build_blocks(ctx: Context) -> list[Block]:
    """Every section's blocks, in report order."""
    return [b for write in SECTION_WRITERS for b in write(ctx)]


def _figures(blocks: list[Block], drawn: dict[str, bytes]) -> dict[str, bytes]:
    """PNG bytes of every figure: those the PDF drew (cut from its pages), the others drawn alone."""
    out = {}
    for b in blocks:
        if isinstance(b, Plot):
            if b.name not in drawn:
                fig, canvas = standalone(WIDTH, b.height)
                b.draw(canvas)
                buf = io.BytesIO()
                fig.savefig(buf, format="png", dpi=PNG_DPI)
                drawn[b.name] = buf.getvalue()
            out[b.name] = drawn[b.name]
    return out


def _write_figures(folder: Path, images: dict[str, bytes]) -> None:
    """figures/<name>.png for the Markdown; PNGs an earlier report left there and this one did not write are removed."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        if old.stem not in images:
            old.unlink()
    for name, png in images.items():
        atomic_bytes(folder / f"{name}.png", palette_png(png))


def palette_png(png: bytes) -> bytes:
    """The figure as a 256-colour palette PNG: a third of the bytes of the RGBA one, no visible
    change on these plots (flat colours, a few colour maps), so committed studies stay small."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as im:
        quantized = im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    buf = io.BytesIO()
    quantized.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


READ_ONLY_FIX = "make it writable, or copy the run directory and report the copy"


def check_writable(root: Path) -> None:
    """Fail in one line, before any work, when the report could not write its files: into the run
    directory (report.pdf, .md, .html, the CSVs) and its figures/ folder (the PNGs). A folder that
    does not exist yet is made by the report (figures/), or refused by the reader (the run directory)."""
    figures = RunDir(root).figures
    if figures.exists() and not figures.is_dir():
        raise RunDirError(
            f"cannot write the report's figures: {figures} is a file, not a folder; move it away (the report writes "
            "its PNG figures into that folder)"
        )
    for folder, what in ((root, "the report"), (figures, "the report's figures")):
        if not folder.is_dir():
            continue
        try:
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".robust-attn-write-test-"):
                pass
        except OSError as err:
            raise RunDirError(f"cannot write {what} under {folder} ({os.strerror(err.errno or errno.EACCES)}); {READ_ONLY_FIX}") from None


def make_report(run_dir: str | Path, *, attention: bool = True, progress: bool = True) -> Report:
    """Write report.pdf, report.md (+ figures/*.png), report.html, summary.csv, paired.csv and
    architecture_pairs.csv into ``run_dir``, from its files alone. ``attention=False`` leaves out
    the attention and segmentation sections."""
    t0 = time.perf_counter()
    check_writable(Path(run_dir))
    with RunLock(run_dir, instead="", create=False):  # one writer: not while a sweep or another report writes here
        return _make_report(run_dir, attention, progress, t0)


def _make_report(run_dir: str | Path, attention: bool, progress: bool, t0: float) -> Report:
    run = load_run(run_dir)
    ctx = Context(run, attention=attention)
    with figures.report_style():
        blocks = build_blocks(ctx)
        title = next((b.text for b in blocks if isinstance(b, Heading)), ctx.title)
        pdf, drawn, pages = render_pdf(blocks, title)
        images = _figures(blocks, drawn)
    out = run.dir
    atomic_bytes(out.csv(schema.SUMMARY), ctx.summary.to_csv(index=False).encode())
    if len(run.models) > 1:
        atomic_bytes(out.csv(schema.PAIRED), ctx.paired.to_csv(index=False).encode())
    if ctx.seeds >= 2 or len(ctx.members) > 1:
        atomic_bytes(out.csv(schema.ARCHITECTURE_PAIRS), ctx.pairs.to_csv(index=False).encode())
    _write_figures(out.figures, images)
    atomic_bytes(out.report("pdf"), pdf)
    atomic_bytes(out.report("md"), render_markdown(blocks).encode())
    atomic_bytes(out.report("html"), render_html(blocks, images, title).encode())
    if progress:
        print(f"report written in {time.perf_counter() - t0:.1f} s ({pages} pages; read from {run.root}; no model loaded)", flush=True)
    return Report(
        out.report("pdf"),
        out.report("md"),
        out.csv(schema.SUMMARY),
        ctx.checks,
        ctx.summary,
        run.missing_summary(),
        out.report("html"),
        pages,
    )
