"""Report content as renderer-neutral blocks. Each section builds its list of blocks once; the
PDF, Markdown and HTML renderers lay out the same list, so no section is written three times.

A block marked ``detail`` is a full listing (every row of a table, every figure of a check): the
Markdown and the HTML (collapsed) carry it, the PDF shows the compact form next to it instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from robust_attn.reports.canvas import Canvas

_NUMERIC = re.compile(r"^[-+\u2212]?[\d.,]+(e[-+]?\d+)?%?(\s|$)|^-$|^never$|^\[")


@dataclass
class Heading:
    text: str
    level: int = 2  # 1: the report's title, 2: a section, 3: a part of one
    new_page: bool = False  # the PDF starts it on a fresh page

    @property
    def anchor(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.text.lower()).strip("-") or "section"


@dataclass
class Paragraph:
    """Plain text (no markup); ``lead`` is a bold run-in; ``style`` is body, note (smaller),
    alert (a warning the reader must see), bullet (one item of a list) or mono (preformatted lines)."""

    text: str
    lead: str = ""
    style: str = "body"
    detail: bool = False


@dataclass
class Table:
    """A table of display strings (``\\n`` breaks a cell's line), with optional numeric sort keys of
    the same shape (the HTML sorts on them), highlighted cells (``bold``: (row position, column))
    and a style per row ('' or 'fragile')."""

    frame: pd.DataFrame
    title: str = ""
    caption: str = ""
    keys: pd.DataFrame | None = None
    bold: set[tuple[int, str]] = field(default_factory=set)
    row_style: list[str] = field(default_factory=list)
    detail: bool = False

    def __post_init__(self) -> None:
        self.frame = self.frame.reset_index(drop=True).astype(str)
        if not self.row_style:
            self.row_style = [""] * len(self.frame)

    def text_columns(self) -> list[bool]:
        """Per column, whether it holds text (read best left-aligned) rather than numbers (centred);
        the first column is always text."""
        out = []
        for j, col in enumerate(self.frame.columns):
            cells = [str(v) for v in self.frame[col]]
            out.append(j == 0 or sum(not _NUMERIC.match(c) for c in cells) > len(cells) / 2)
        return out


@dataclass
class Plot:
    """A figure ``height`` inches tall at the content width, drawn by ``draw`` onto a canvas; saved
    as ``figures/<name>.png`` for the Markdown and embedded in the HTML."""

    name: str
    caption: str
    draw: Callable[[Canvas], None]
    height: float
    detail: bool = False

    @property
    def alt(self) -> str:
        """A short text alternative: the caption's first clause."""
        return re.split(r"[:;(]|\. ", self.caption, maxsplit=1)[0].strip()[:100] or self.name


@dataclass
class PageBreak:
    """The PDF continues on a new page (the other renderers ignore it)."""


Block = Heading | Paragraph | Table | Plot | PageBreak


def table_from(
    df: pd.DataFrame, formats: Mapping[str, Callable[[Any], str]], *, rename: Mapping[str, str] | None = None, **kwargs: Any
) -> Table:
    """A Table of ``df``'s columns, each shown through its format (``str`` when not given), sorting
    on the raw values where they are numbers."""
    shown, keys = {}, {}
    for col in df.columns:
        fmt = formats.get(col, str)
        label = (rename or {}).get(col, col)
        shown[label] = [fmt(v) for v in df[col]]
        numeric = pd.to_numeric(df[col], errors="coerce") if df[col].dtype != bool else pd.Series(np.nan, index=df.index)
        keys[label] = numeric.to_numpy(float)
    return Table(pd.DataFrame(shown), keys=pd.DataFrame(keys), **kwargs)


def pct(x: Any) -> str:
    return "-" if pd.isna(x) else f"{float(x):.1%}"


def signed_pct(x: Any) -> str:
    return "-" if pd.isna(x) else f"{float(x) * 100:+.1f}"


def p_value(p: Any) -> str:
    return "-" if pd.isna(p) else f"{float(p):.2g}"


def pct_interval(v: float, lo: float, hi: float) -> str:
    """'53.0% [49.3, 56.4]': an accuracy with its 95% interval in points."""
    return f"{v:.1%} [{lo * 100:.1f}, {hi * 100:.1f}]"
