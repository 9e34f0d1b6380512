"""The HTML renderer: one self-contained file (figures embedded as base64 PNG, no network), a
table of contents, tables sortable by clicking a header (a few lines of inline script), full
listings (``detail``) collapsed; the page template is Jinja2."""

from __future__ import annotations

import base64
import math
from typing import Any

import jinja2

from robust_attn.reports.blocks import Block, Heading, PageBreak, Paragraph, Plot, Table

TEMPLATE = r"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="robust-attn">
<title>{{ title }}</title>
<style>
body { font-family: system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; margin: 0; color: #1b1b1b; line-height: 1.45; }
main { max-width: 1180px; margin: 0 auto; padding: 1.2em 1.6em 4em; }
nav.toc { background: #f4f5f7; border-bottom: 1px solid #ddd; padding: 0.5em 1.6em; position: sticky; top: 0; z-index: 2; font-size: 0.9em; }
nav.toc a { margin-right: 1.1em; color: #114488; text-decoration: none; white-space: nowrap; }
nav.toc a:hover { text-decoration: underline; }
h1 { font-size: 1.7em; margin: 0.3em 0 0.4em; }
h2 { font-size: 1.35em; margin: 1.8em 0 0.5em; border-bottom: 1px solid #ddd; padding-bottom: 0.15em; scroll-margin-top: 3em; }
h3 { font-size: 1.1em; margin: 1.2em 0 0.4em; scroll-margin-top: 3em; }
p.note { font-size: 0.88em; color: #444; }
p.alert { background: #fff1e6; border-left: 4px solid #d45500; padding: 0.5em 0.8em; }
ul.bullets { padding-left: 1.3em; }
pre { background: #f6f6f6; padding: 0.7em; overflow-x: auto; font-size: 0.8em; }
figure { margin: 1em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.85em; color: #444; }
.table-title { font-weight: 600; margin: 1em 0 0.2em; }
.table-wrap { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; font-size: 0.82em; margin: 0.3em 0 1em; }
th, td { border: 1px solid #ddd; padding: 0.2em 0.5em; text-align: center; }
th, td.text { text-align: left; }
td.num, td.text:first-child { white-space: nowrap; }
th { background: #ececec; }
table.sortable th { cursor: pointer; user-select: none; }
table.sortable th::after { content: " \2195"; color: #999; font-size: 0.8em; }
table.sortable th[aria-sort="ascending"]::after { content: " \25B2"; color: #114488; }
table.sortable th[aria-sort="descending"]::after { content: " \25BC"; color: #114488; }
tr:nth-child(even) td { background: #f8f8f8; }
tr.fragile td { background: #fde3c2; }
td.best { background: #fff2b3; font-weight: 600; }
details { margin: 0.6em 0 1em; }
summary { cursor: pointer; color: #114488; }
</style>
</head>
<body>
<nav class="toc" aria-label="contents">{% for h in toc %}<a href="#{{ h.anchor }}">{{ h.text }}</a>{% endfor %}</nav>
<main>
{% for b in blocks %}
{%- if b.kind == "heading" %}
<h{{ b.level }} id="{{ b.anchor }}">{{ b.text }}</h{{ b.level }}>
{%- elif b.kind == "bullets" %}
<ul class="bullets">{% for p in b.entries %}<li>{% if p.lead %}<strong>{{ p.lead }}</strong>{% endif %}{{ p.text }}</li>{% endfor %}</ul>
{%- elif b.kind == "paragraph" %}
{% if b.detail %}<details><summary>full listing</summary>{% endif %}
{% if b.style == "mono" %}<pre>{{ b.text }}</pre>{% else %}<p class="{{ b.style }}">{% if b.lead %}<strong>{{ b.lead }}</strong>{% endif %}{{ b.text }}</p>{% endif %}
{% if b.detail %}</details>{% endif %}
{%- elif b.kind == "table" %}
{% if b.detail %}<details><summary>{{ b.title or "full table" }} ({{ b.rows|length }} rows)</summary>{% elif b.title %}<div class="table-title">{{ b.title }}</div>{% endif %}
{% if b.caption %}<p class="note">{{ b.caption }}</p>{% endif %}
<div class="table-wrap"><table class="sortable" id="{{ b.id }}">
<thead><tr>{% for c in b.columns %}<th scope="col">{{ c }}</th>{% endfor %}</tr></thead>
<tbody>
{% for row in b.rows %}<tr{% if row.style %} class="{{ row.style }}"{% endif %}>{% for c in row.cells %}<td class="{{ c.cls }}"{% if c.key is not none %} data-v="{{ c.key }}"{% endif %}>{{ c.lines | join("<br>" | safe) }}</td>{% endfor %}</tr>
{% endfor %}</tbody></table></div>
{% if b.detail %}</details>{% endif %}
{%- elif b.kind == "figure" %}
{% if b.detail %}<details><summary>figure: {{ b.caption }}</summary>{% endif %}
<figure id="fig-{{ b.name }}"><img src="data:image/png;base64,{{ b.data }}" alt="{{ b.alt }}"><figcaption>{{ b.caption }}</figcaption></figure>
{% if b.detail %}</details>{% endif %}
{%- endif %}
{% endfor %}
</main>
<script>
// Sort a table's body rows by one column: numbers (data-v) numerically, the rest as text; empty keys last.
function sortTable(table, col, dir) {
  const body = table.tBodies[0];
  const key = (row) => { const c = row.cells[col]; const v = c.dataset.v; return v !== undefined && v !== "" ? Number(v) : c.textContent.trim(); };
  const rows = Array.from(body.rows);
  const numeric = rows.every((r) => typeof key(r) === "number");
  rows.sort((a, b) => { const x = key(a), y = key(b);
    const c = numeric ? x - y : String(x).localeCompare(String(y), undefined, {numeric: true});
    return dir === "descending" ? -c : c; });
  rows.forEach((r) => body.appendChild(r));
  table.querySelectorAll("th").forEach((th, i) => { if (i === col) th.setAttribute("aria-sort", dir); else th.removeAttribute("aria-sort"); });
}
document.querySelectorAll("table.sortable").forEach((table) => {
  table.querySelectorAll("th").forEach((th, i) => th.addEventListener("click", () => {
    sortTable(table, i, th.getAttribute("aria-sort") === "ascending" ? "descending" : "ascending");
  }));
});
</script>
</body>
</html>
"""


def _key(value: Any) -> str | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else repr(v)


def _table(t: Table, index: int) -> dict[str, Any]:
    cols = list(t.frame.columns)
    keys = t.keys if t.keys is not None and list(t.keys.columns) == cols else None
    text = t.text_columns()
    rows = []
    for i, row in enumerate(t.frame.itertuples(index=False)):
        cells = [
            {
                "lines": str(v).split("\n"),
                "key": _key(keys.iat[i, j]) if keys is not None else None,
                "cls": ("text" if text[j] else "num") + (" best" if (i, c) in t.bold else ""),
            }
            for j, (c, v) in enumerate(zip(cols, row))
        ]
        rows.append({"cells": cells, "style": t.row_style[i] if i < len(t.row_style) else ""})
    return {
        "kind": "table",
        "id": f"table-{index}",
        "title": t.title,
        "caption": t.caption,
        "columns": cols,
        "rows": rows,
        "detail": t.detail,
    }


def _items(blocks: list[Block], images: dict[str, bytes]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    tables = 0
    for b in blocks:
        if isinstance(b, PageBreak):
            continue
        if isinstance(b, Heading):
            out.append({"kind": "heading", "level": b.level, "text": b.text, "anchor": b.anchor})
        elif isinstance(b, Paragraph) and b.style == "bullet":
            if not out or out[-1]["kind"] != "bullets":
                out.append({"kind": "bullets", "entries": []})
            out[-1]["entries"].append({"lead": b.lead, "text": b.text})
        elif isinstance(b, Paragraph):
            out.append({"kind": "paragraph", "style": b.style, "lead": b.lead, "text": b.text, "detail": b.detail})
        elif isinstance(b, Table):
            tables += 1
            out.append(_table(b, tables))
        elif isinstance(b, Plot):
            data = base64.b64encode(images[b.name]).decode("ascii")
            out.append({"kind": "figure", "name": b.name, "caption": b.caption, "alt": b.alt, "data": data, "detail": b.detail})
    return out


def render_html(blocks: list[Block], images: dict[str, bytes], title: str) -> str:
    """The report as one HTML page; ``images``: figure name -> PNG bytes."""
    env = jinja2.Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    items = _items(blocks, images)
    seen: dict[str, int] = {}
    for item in items:  # anchors unique, in document order
        if item["kind"] == "heading":
            seen[item["anchor"]] = seen.get(item["anchor"], 0) + 1
            item["anchor"] += f"-{seen[item['anchor']]}" if seen[item["anchor"]] > 1 else ""
    toc = [item for item in items if item["kind"] == "heading" and item["level"] == 2]
    return env.from_string(TEMPLATE).render(title=title, toc=toc, blocks=items)
