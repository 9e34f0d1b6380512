"""The PDF renderer: blocks flowed onto landscape pages (headings kept with what follows, tables
split between rows with their header repeated, figures drawn into page regions), and each
figure's region saved as the PNG the Markdown and HTML show."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache, partial
from typing import Any

from matplotlib.backends.backend_agg import RendererAgg
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.patches import Rectangle
from matplotlib.transforms import Bbox

from robust_attn.reports.blocks import Block, Heading, PageBreak, Paragraph, Plot, Table
from robust_attn.reports.canvas import region

PAGE = (11.0, 8.5)  # landscape letter, inches
LEFT, TOP, BOTTOM = 0.45, 0.4, 0.45
WIDTH, HEIGHT = PAGE[0] - 2 * LEFT, PAGE[1] - TOP - BOTTOM
GAP = 0.12
PNG_DPI = 110
HEADING_SIZE = {1: 16.0, 2: 13.0, 3: 10.0}
TEXT_SIZE = {"body": 9.0, "bullet": 9.0, "alert": 9.5, "note": 8.0, "mono": 7.0}
TABLE_SIZE = 7.2
LINE = 1.32  # line height as a multiple of the font size
FRAGILE_FILL, BOLD_FILL, HEADER_FILL, STRIPE_FILL = "#fde3c2", "#fff2b3", "#e6e6e6", "#f6f6f6"
_RENDERER = RendererAgg(10, 10, 720)  # measured at 720 dpi: whole pixels are then a tenth of a point


@lru_cache(maxsize=1 << 16)
def text_width(text: str, size: float, bold: bool = False, mono: bool = False) -> float:
    """Width in inches of one line of text as matplotlib draws it."""
    prop = FontProperties(size=size, weight="bold" if bold else "normal", family="monospace" if mono else "sans-serif")
    width, _, _ = _RENDERER.get_text_width_height_descent(text, prop, ismath=False)
    return float(width) / 720


def wrap(text: str, width: float, size: float, *, bold: bool = False, mono: bool = False, indent: float = 0.0) -> list[str]:
    """Greedy word wrap to ``width`` inches (the first line ``indent`` inches shorter); a line's width
    is the sum of its words' and spaces' widths (each word measured once)."""
    space = text_width("a a", size, bold, mono) - text_width("aa", size, bold, mono)
    lines: list[str] = []
    for para in text.split("\n"):
        line, used, avail = "", 0.0, width - (indent if not lines else 0.0)
        for word in para.split(" "):
            w = text_width(word, size, bold, mono) if word else 0.0
            if not line or used + space + w <= avail:
                line, used = (f"{line} {word}", used + space + w) if line else (word, w)
            else:
                lines.append(line)
                lead = "    " if mono else ""
                line, used, avail = lead + word, text_width(lead, size, bold, mono) + w, width
        lines.append(line)
    return lines


def _line(size: float) -> float:
    return size * LINE / 72


@dataclass
class Piece:
    """Something placed on a page: its height, how to draw it at (left, top) inches, whether it must
    share a page with the next piece, and a piece drawn before it when it opens a page (a table header)."""

    height: float
    draw: Callable[[Figure, float, float], None]
    keep_with_next: bool = False
    repeat: Piece | None = None
    plot: Plot | None = None
    space_after: float = GAP
    page_break: bool = False


# -- blocks to pieces ----------------------------------------------------------------------------
def _text(page: Figure, left: float, top: float, text: str, size: float, **kwargs: Any) -> None:
    page.text(
        left, PAGE[1] - top, text, transform=page.dpi_scale_trans, fontsize=size, va="top", linespacing=LINE, parse_math=False, **kwargs
    )


def _heading(block: Heading) -> list[Piece]:
    size = HEADING_SIZE.get(block.level, 10.0)
    lines = wrap(block.text, WIDTH, size, bold=True)
    pieces = [Piece(0, lambda *a: None, page_break=True)] if block.new_page else []
    draw = lambda page, x, y: _text(page, x, y, "\n".join(lines), size, weight="bold")
    return [*pieces, Piece(_line(size) * len(lines) + 0.04, draw, keep_with_next=True, space_after=0.08)]


def _paragraph(block: Paragraph) -> list[Piece]:
    size, mono = TEXT_SIZE.get(block.style, 9.0), block.style == "mono"
    indent = 0.2 if block.style == "bullet" else 0.0
    lead = block.lead.rstrip()
    space = text_width("a a", size) - text_width("aa", size)
    lead_w = text_width(lead, size, bold=True) + (space if block.text.startswith(" ") or block.lead.endswith(" ") else 0.0) if lead else 0.0
    lines = wrap(block.text.lstrip(" ") if lead else block.text, WIDTH - indent, size, mono=mono, indent=lead_w)
    colour = "#9a2d00" if block.style == "alert" else "black"

    def draw_lines(page: Figure, x: float, y: float, chunk: list[str], first: bool) -> None:
        if first and block.style == "bullet":
            _text(page, x + 0.05, y, "\u2022", size)
        if first and lead:
            _text(page, x + indent, y, lead, size, weight="bold", color=colour)
            _text(page, x + indent + lead_w, y, chunk[0], size, color=colour)
            chunk = chunk[1:]
            y += _line(size)
        if chunk:
            _text(page, x + indent, y, "\n".join(chunk), size, family="monospace" if mono else "sans-serif", color=colour)

    step = 40 if mono else len(lines)  # a long listing may run over pages, 40 lines at a time
    pieces = []
    for k in range(0, len(lines), step):
        chunk = lines[k : k + step]
        draw = partial(draw_lines, chunk=chunk, first=k == 0)
        pieces.append(Piece(_line(size) * len(chunk), draw, space_after=0.0))
    pieces[-1].space_after = GAP if block.style != "bullet" else 0.05
    pieces[-1].keep_with_next = block.style == "note"  # a note explains what follows it
    return pieces


@dataclass
class _TableLayout:
    widths: list[float]
    cells: list[list[list[str]]]  # row -> column -> lines
    header: list[list[str]]
    heights: list[float] = field(default_factory=list)
    left: list[bool] = field(default_factory=list)  # left-aligned columns (text), the others centred


def _cap(natural: list[float], width: float) -> float:
    """The largest column width c with sum(min(w, c)) <= width (water-filling: only the widest wrap)."""
    lo, hi = 0.0, max(natural, default=0.0)
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if sum(min(w, mid) for w in natural) <= width else (lo, mid)
    return lo


def _table_layout(table: Table) -> _TableLayout:
    size, pad = TABLE_SIZE, 0.16
    cols = list(table.frame.columns)
    header = [[str(c)] for c in cols]
    cells = [[str(v).split("\n") for v in row] for row in table.frame.itertuples(index=False)]

    def natural(j: int) -> float:
        return (
            max([text_width(line, size, bold=True) for line in header[j]] + [text_width(line, size) for r in cells for line in r[j]]) + pad
        )

    widths = [natural(j) for j in range(len(cols))]
    if sum(widths) > WIDTH:
        cap = max(_cap(widths, WIDTH), 0.7)
        for j in range(len(cols)):
            if widths[j] > cap:
                header[j] = wrap(" ".join(header[j]), cap - pad, size, bold=True)
                for r in cells:
                    r[j] = [w for line in r[j] for w in wrap(line, cap - pad, size)]
                widths[j] = natural(j)
    layout = _TableLayout(widths, cells, header)
    layout.left = table.text_columns()
    layout.heights = [max(len(c) for c in r) * _line(size) + 0.035 for r in cells]
    return layout


def _table(block: Table) -> list[Piece]:
    lay = _table_layout(block)
    size = TABLE_SIZE
    cols = list(block.frame.columns)
    header_h = max(len(h) for h in lay.header) * _line(size) + 0.06 if cols else 0.0
    title_lines = wrap(block.title, WIDTH, 9.0, bold=True) if block.title else []
    caption_lines = wrap(block.caption, WIDTH, 7.8) if block.caption else []
    lead_h = len(title_lines) * _line(9.0) + len(caption_lines) * _line(7.8) + (0.04 if title_lines or caption_lines else 0.0)
    total_w = sum(lay.widths)

    def cell_texts(page: Figure, x: float, y: float, h: float, texts: list[list[str]], bold: set[int], fill: str | None) -> None:
        if fill:
            page.add_artist(Rectangle((x, PAGE[1] - y - h), total_w, h, transform=page.dpi_scale_trans, facecolor=fill, edgecolor="none"))
        cx = x
        for j, (lines, w) in enumerate(zip(texts, lay.widths)):
            if j in bold:
                page.add_artist(
                    Rectangle((cx, PAGE[1] - y - h), w, h, transform=page.dpi_scale_trans, facecolor=BOLD_FILL, edgecolor="none")
                )
            _text(
                page,
                cx + 0.06 if lay.left[j] else cx + w / 2,
                y + 0.018,
                "\n".join(lines),
                size,
                ha="left" if lay.left[j] else "center",
                weight="bold" if j in bold or fill == HEADER_FILL else "normal",
            )
            cx += w

    def draw_header(page: Figure, x: float, y: float, with_lead: bool) -> None:
        if with_lead and title_lines:
            _text(page, x, y, "\n".join(title_lines), 9.0, weight="bold")
        if with_lead and caption_lines:
            _text(page, x, y + len(title_lines) * _line(9.0), "\n".join(caption_lines), 7.8, color="0.25")
        top = y + (lead_h if with_lead else 0.0)
        cell_texts(page, x, top, header_h, lay.header, set(), HEADER_FILL)

    bold_cols = {(r, cols.index(c)) for r, c in block.bold if c in cols}
    pieces = [Piece(lead_h + header_h, lambda p, x, y: draw_header(p, x, y, True), keep_with_next=True, space_after=0.0)]
    repeat = Piece(header_h, lambda p, x, y: draw_header(p, x, y, False), space_after=0.0)
    for i, (texts, h) in enumerate(zip(lay.cells, lay.heights)):
        fill = FRAGILE_FILL if block.row_style[i] == "fragile" else (STRIPE_FILL if i % 2 else None)
        bold = {j for r, j in bold_cols if r == i}
        draw = lambda p, x, y, t=texts, hh=h, f=fill, b=bold: cell_texts(p, x, y, hh, t, b, f)
        pieces.append(Piece(h, draw, keep_with_next=i < 2 and i < len(lay.cells) - 1, repeat=repeat, space_after=0.0))
    pieces[-1].space_after = GAP + 0.05
    return pieces


def _plot(block: Plot) -> list[Piece]:
    height = min(block.height, HEIGHT)
    return [Piece(height, lambda *a: None, plot=block)]


def pieces_of(blocks: list[Block]) -> list[Piece]:
    out: list[Piece] = []
    for b in blocks:
        if isinstance(b, PageBreak):
            out.append(Piece(0, lambda *a: None, page_break=True))
        elif isinstance(b, Heading):
            out += _heading(b)
        elif getattr(b, "detail", False):
            continue  # full listings live in the Markdown and HTML
        elif isinstance(b, Paragraph):
            out += _paragraph(b)
        elif isinstance(b, Table):
            out += _table(b)
        elif isinstance(b, Plot):
            out += _plot(b)
    return out


# -- pagination and drawing ---------------------------------------------------------------------
def paginate(pieces: list[Piece]) -> list[list[tuple[Piece, float]]]:
    """Pages of (piece, top): a chain of keep-with-next pieces moves to a new page whole, and a
    table row that opens a page gets its header drawn first."""
    pages: list[list[tuple[Piece, float]]] = [[]]
    y = 0.0
    for i, p in enumerate(pieces):
        if p.page_break:
            if pages[-1]:
                pages.append([])
                y = 0.0
            continue
        chain, k = p.height, i
        while pieces[k].keep_with_next and k + 1 < len(pieces) and not pieces[k + 1].page_break:
            chain += pieces[k].space_after
            k += 1
            chain += pieces[k].height
        chain = min(chain, HEIGHT)
        inside = i > 0 and pieces[i - 1].keep_with_next  # its chain already began on this page: break only if it alone does not fit
        if pages[-1] and y + (p.height if inside else chain) > HEIGHT + 1e-6:
            pages.append([])
            y = 0.0
        if not pages[-1] and p.repeat is not None:
            pages[-1].append((p.repeat, y))
            y += p.repeat.height
        pages[-1].append((p, y))
        y += p.height + p.space_after
    return [page for page in pages if page]


def render_pdf(blocks: list[Block], title: str) -> tuple[bytes, dict[str, bytes], int]:
    """(PDF bytes, figure name -> PNG bytes of the figures it drew, page count)."""
    pages = paginate(pieces_of(blocks))
    images: dict[str, bytes] = {}
    buf = io.BytesIO()
    with PdfPages(buf, metadata={"Title": title, "Creator": "robust-attn"}) as pdf:
        for n, placed in enumerate(pages):
            page = Figure(figsize=PAGE)
            crops = []
            for piece, top in placed:
                if piece.plot is not None:
                    canvas = region(page, PAGE, LEFT, TOP + top, WIDTH, piece.height)
                    piece.plot.draw(canvas)
                    crops.append((piece.plot.name, Bbox([[LEFT, PAGE[1] - TOP - top - piece.height], [LEFT + WIDTH, PAGE[1] - TOP - top]])))
                else:
                    piece.draw(page, LEFT, TOP + top)
            for name, box in crops:
                images[name] = _crop(page, box)
            foot: dict[str, Any] = {"transform": page.dpi_scale_trans, "fontsize": 7, "color": "grey", "parse_math": False}
            page.text(PAGE[0] - LEFT, 0.22, f"{n + 1}/{len(pages)}", ha="right", **foot)
            page.text(LEFT, 0.22, title, ha="left", **foot)
            pdf.savefig(page)
    return buf.getvalue(), images, len(pages)


def _crop(page: Figure, box: Bbox) -> bytes:
    """PNG of one plot's region of ``page``. The page's own text and fills (tables, paragraphs) are
    placed in inches from the page's corner, which a crop does not move: left visible, they would
    land on the plot; only the subfigures (the plots) are drawn."""
    own = [*page.texts, *page.patches, *page.lines, *page.artists, *page.images]
    shown = [a.get_visible() for a in own]
    for a in own:
        a.set_visible(False)
    try:
        png = io.BytesIO()
        page.savefig(png, format="png", dpi=PNG_DPI, bbox_inches=box)
        return png.getvalue()
    finally:
        for a, visible in zip(own, shown, strict=True):
            a.set_visible(visible)


def height_of(blocks: list[Block]) -> float:
    """Inches the blocks take on a page (a section sizes a figure to fill the rest of one)."""
    return sum(p.height + p.space_after for p in pieces_of(blocks))
