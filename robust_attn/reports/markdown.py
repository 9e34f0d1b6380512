"""The Markdown renderer: the same blocks as the PDF, with every full listing (``detail``) in full and
figures as ``figures/<name>.png``."""

from __future__ import annotations

import pandas as pd

from robust_attn.reports.blocks import Block, Heading, PageBreak, Paragraph, Plot, Table


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(df: pd.DataFrame, bold: set[tuple[int, str]] | None = None) -> str:
    """``df`` (display strings) as a pipe table; ``bold``: (row position, column) cells in bold."""
    cols = list(df.columns)
    lines = ["| " + " | ".join(_cell(c) for c in cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for i, row in enumerate(df.itertuples(index=False)):
        cells = [f"**{_cell(v)}**" if bold and (i, c) in bold else _cell(v) for c, v in zip(cols, row)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _paragraph(p: Paragraph) -> str:
    lead = f"**{p.lead.rstrip()}**" + (" " if p.lead.endswith(" ") else "") if p.lead else ""
    if p.style == "mono":
        return "```\n" + p.text + "\n```"
    if p.style == "bullet":
        return f"- {lead}{p.text}"
    if p.style == "alert":
        return f"> {lead}{p.text}"
    return f"{lead}{p.text}"


def render_markdown(blocks: list[Block]) -> str:
    out: list[str] = []
    for b in blocks:
        if isinstance(b, PageBreak):
            continue
        if isinstance(b, Heading):
            out.append(f"{'#' * b.level} {b.text}")
        elif isinstance(b, Paragraph):
            text = _paragraph(b)
            if b.style == "bullet" and out and out[-1].startswith("- "):
                out[-1] += "\n" + text  # one list
            else:
                out.append(text)
        elif isinstance(b, Table):
            parts = [f"**{b.title}**"] if b.title else []
            parts += [b.caption] if b.caption else []
            out.append("\n\n".join([*parts, markdown_table(b.frame, b.bold)]))
        elif isinstance(b, Plot):
            out.append(f"![{b.alt}](figures/{b.name}.png)\n\n*{b.caption}*")
    return "\n\n".join(out) + "\n"
