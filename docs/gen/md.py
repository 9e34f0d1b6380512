"""Small Markdown helpers shared by the page generators: tables, code spans, cell escaping."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence


def code(text: str) -> str:
    """``text`` as an inline code span, whatever backticks it holds (CommonMark's longer-fence rule)."""
    fence = "`"
    while fence in text:
        fence += "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


_CODE_SPAN = re.compile(r"(`+).+?\1")
_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")


def escape_tags(text: str) -> str:
    """``text`` with every ``<`` that would open an HTML tag written as ``&lt;``, so a placeholder
    such as ``reports/<name>/`` shows instead of vanishing; code spans, fenced and indented code
    blocks are left alone (Markdown shows them literally)."""
    out, fenced = [], False
    for line in text.split("\n"):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        if fenced or line.startswith(("    ", "\t")) or "<" not in line:
            out.append(line)
            continue
        parts, last = [], 0
        for match in _CODE_SPAN.finditer(line):
            parts += [_TAG_START.sub("&lt;", line[last : match.start()]), match.group(0)]
            last = match.end()
        out.append("".join([*parts, _TAG_START.sub("&lt;", line[last:])]))
    return "\n".join(out)


def cell(text: str) -> str:
    """``text`` safe inside a table cell: one line, pipes escaped, no stray HTML tags."""
    return escape_tags(" ".join(text.split())).replace("|", "\\|")


def table(header: Sequence[str], rows: Iterable[Sequence[str]], align: str | None = None) -> str:
    """A Markdown table; ``align`` is one character per column (``l`` or ``r``), default all left."""
    marks = ["---:" if a == "r" else "---" for a in (align or "l" * len(header))]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(marks) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def first_paragraph(doc: str | None) -> str:
    """The first paragraph of a docstring, on one line (empty when there is none)."""
    if not doc:
        return ""
    return " ".join(doc.strip().split("\n\n")[0].split())


_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|data|exc|obj|const):`(~?)([^`<]*?)(?:\s*<([^>`]+)>)?`")


def rst_to_md(text: str) -> str:
    """Docstring reST that Markdown would show raw, made readable: ``:class:`~a.B``` becomes a code
    span ``B`` (the last dotted part, as Sphinx shows it), and a paragraph ending in ``::`` ends in ``:``
    (the indented block after it is a code block in Markdown too)."""

    def role(match: re.Match[str]) -> str:
        tilde, title, target = match.group(1), match.group(2).strip(), match.group(3)
        return code(title if target or not tilde else title.rsplit(".", 1)[-1])

    text = escape_tags(_ROLE.sub(role, text))
    return re.sub(r"(\S)::$", r"\1:", text, flags=re.MULTILINE)
