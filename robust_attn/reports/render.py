"""Page and Markdown primitives: text pages, table pages, Markdown tables."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import pandas as pd
from matplotlib.figure import Figure

from robust_attn.reports.figures import PAGE

ROWS_PER_PAGE = 26


def text_page(title: str, lines: Sequence[str], size: float = 9.5) -> Figure:
    fig = Figure(figsize=PAGE)
    fig.text(0.06, 0.93, title, fontsize=16, weight="bold", va="top")
    wrapped: list[str] = []
    for line in lines:
        wrapped += textwrap.wrap(line, 130, subsequent_indent="    ") or [""]
    fig.text(0.06, 0.86, "\n".join(wrapped), fontsize=size, va="top", family="monospace")
    return fig


def table_pages(title: str, df: pd.DataFrame, note: str = "", bold: set[tuple[int, str]] | None = None) -> list[Figure]:
    """``df`` (already formatted as strings) over as many pages as it needs; ``bold`` marks
    (row position, column) cells."""
    pages = []
    chunks = [df.iloc[i : i + ROWS_PER_PAGE] for i in range(0, max(len(df), 1), ROWS_PER_PAGE)]
    for k, chunk in enumerate(chunks):
        fig = Figure(figsize=PAGE)
        suffix = f" ({k + 1}/{len(chunks)})" if len(chunks) > 1 else ""
        fig.text(0.04, 0.95, title + suffix, fontsize=14, weight="bold", va="top")
        if note:
            fig.text(0.04, 0.905, "\n".join(textwrap.wrap(note, 160)), fontsize=8, va="top")
        ax = fig.add_axes((0.02, 0.04, 0.96, 0.8))
        ax.axis("off")
        table = ax.table(cellText=chunk.to_numpy().tolist(), colLabels=list(chunk.columns), loc="upper center", cellLoc="center")
        table.auto_set_font_size(False)
        table.set_fontsize(7 if len(chunk.columns) > 10 else 8)
        table.auto_set_column_width(list(range(len(chunk.columns))))
        for (r, c), cell in table.get_celld().items():
            if r == 0:
                cell.set_text_props(weight="bold")
                cell.set_facecolor("#e8e8e8")
            elif bold and (chunk.index[r - 1], chunk.columns[c]) in bold:
                cell.set_text_props(weight="bold")
                cell.set_facecolor("#fff2b3")
        pages.append(fig)
    return pages


def stacked_tables_page(title: str, note: str, blocks: list[tuple[str, pd.DataFrame, set[tuple[int, str]]]]) -> Figure:
    """Several small tables on one page, each fitted to the page width."""
    fig = Figure(figsize=PAGE)
    fig.text(0.04, 0.95, title, fontsize=14, weight="bold", va="top")
    fig.text(0.04, 0.91, "\n".join(textwrap.wrap(note, 170)), fontsize=7.5, va="top")
    top, bottom = 0.83, 0.04
    row_h = min(0.05, (top - bottom) / sum(len(df) + 2.2 for _, df, _ in blocks))
    y = top
    for subtitle, df, bold in blocks:
        height = row_h * (len(df) + 1)
        fig.text(0.04, y, subtitle, fontsize=10, weight="bold", va="top")
        ax = fig.add_axes((0.04, y - 0.02 - height, 0.92, height))
        ax.axis("off")
        table = ax.table(cellText=df.to_numpy().tolist(), colLabels=list(df.columns), bbox=(0, 0, 1, 1), cellLoc="center")  # type: ignore[arg-type]
        table.auto_set_font_size(False)
        table.set_fontsize(7)
        first = 0.15  # the model-name column
        for (r, c), cell in table.get_celld().items():
            cell.set_width(first if c == 0 else (1 - first) / (len(df.columns) - 1))
            if r == 0:
                cell.set_text_props(weight="bold")
                cell.set_facecolor("#e8e8e8")
            elif (df.index[r - 1], df.columns[c]) in bold:
                cell.set_text_props(weight="bold")
                cell.set_facecolor("#fff2b3")
        y -= height + 1.2 * row_h + 0.02
    return fig


def markdown_table(df: pd.DataFrame, bold: set[tuple[int, str]] | None = None) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for idx, row in df.iterrows():
        cells = [f"**{row[c]}**" if bold and (idx, c) in bold else str(row[c]) for c in cols]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
