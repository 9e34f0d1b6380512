"""report.html in a real headless browser (Debian's chromium): one self-contained file whose
sections, table of contents and figures render (every image decoded, natural width > 0), and
whose tables sort when a header is clicked; skipped where no chromium is installed."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import robust_attn as ra
from robust_attn.reports.build import SECTIONS
from robust_attn.reports.sections.families import FAMILIES

EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

# Run after the page's own script: record what rendered, click a header twice, and write it all
# into the DOM for --dump-dom. The longest table with a numeric column of distinct values is sorted.
PROBE = """<script>
window.addEventListener("load", () => {
  const out = {images: Array.from(document.images).map((i) => [i.naturalWidth, i.naturalHeight, i.complete]),
               headings: Array.from(document.querySelectorAll("h2")).map((h) => [h.id, h.textContent]),
               toc: Array.from(document.querySelectorAll("nav.toc a")).map((a) => a.getAttribute("href"))};
  const keys = (table, col) => Array.from(table.tBodies[0].rows).map((r) => Number(r.cells[col].dataset.v));
  const tables = Array.from(document.querySelectorAll("table.sortable")).sort((a, b) => b.tBodies[0].rows.length - a.tBodies[0].rows.length);
  for (const table of tables) {
    const heads = Array.from(table.tHead.rows[0].cells);
    const col = heads.findIndex((th, j) => { const k = keys(table, j); return k.every((v) => !isNaN(v)) && new Set(k).size > 2; });
    if (col < 0) continue;
    out.column = heads[col].textContent;
    out.before = keys(table, col);
    heads[col].click();
    out.ascending = [keys(table, col), heads[col].getAttribute("aria-sort")];
    heads[col].click();
    out.descending = [keys(table, col), heads[col].getAttribute("aria-sort")];
    out.firstCells = Array.from(table.tBodies[0].rows).map((r) => r.cells[0].textContent);
    break;
  }
  const pre = document.createElement("pre");
  pre.id = "probe";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def _browser() -> str:
    for name in BROWSERS:
        if shutil.which(name):
            return str(shutil.which(name))
    pytest.skip(f"no headless browser installed (looked for {', '.join(BROWSERS)}; apt-get install chromium)")


def _chromium(browser: str, *args: str) -> str:
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--virtual-time-budget=10000", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True).stdout


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Two small models with fixed weights (docs/examples), one with attention, its baseline without,
    under every threat model (eps-ball attacks, corruptions, transfer) and the generalisation probe."""
    mp = pytest.MonkeyPatch()
    mp.syspath_prepend(str(EXAMPLES))
    spec = ra.parse_spec(
        {
            "name": "html",
            "models": ["attention_cnn:make", "plain_cnn:make"],
            "n": 24,
            "batch_size": 12,
            "attention_samples": 6,
            "diagnostic_samples": 6,
            "attacks": [
                {"name": "fgsm", "eps": ["0", "1/255", "2/255", "4/255", "8/255"]},
                {"name": "pgd", "steps": 2, "eps": ["1/255", "2/255", "8/255"]},
                {"name": "corruptions", "severities": [1, 5], "corruptions": ["gaussian_noise", "fog"]},
            ],
            "transfer": [{"sources": "all", "targets": "all", "attack": "fgsm", "eps": ["2/255", "8/255"]}],
            "generalisation": ["shapes-unseen-classes"],
            "generalisation_train": 60,
            "generalisation_test": 30,
        }
    )
    root = ra.run_sweep(spec, tmp_path_factory.mktemp("html") / "run", progress=False)
    ra.make_report(root, progress=False)
    yield root
    mp.undo()


def test_html_is_one_self_contained_file(run_dir: Path) -> None:
    page = (run_dir / "report.html").read_text()
    sources = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert sources and all(s.startswith(("data:image/png;base64,", "#")) for s in sources), "no file or network reference"
    assert "http://" not in page.replace("http://www.w3.org", "") and "https://" not in page
    md = (run_dir / "report.md").read_text()
    figures = re.findall(r"\]\(figures/([^)]+)\.png\)", md)
    assert page.count('<img src="data:image/png;base64,') == len(figures) > 5, "every figure of the Markdown is embedded"
    for name in figures:
        assert f'id="fig-{name}"' in page


def test_sections_figures_and_sorting_render_in_a_browser(run_dir: Path, tmp_path: Path) -> None:
    browser = _browser()
    probed = tmp_path / "probed.html"
    probed.write_text((run_dir / "report.html").read_text().replace("</body>", PROBE + "\n</body>"))
    dom = _chromium(browser, "--dump-dom", probed.as_uri())
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert found, "the page's scripts ran"
    out = json.loads(html.unescape(found.group(1)))
    assert out["images"] and all(w > 0 and h > 0 and complete for w, h, complete in out["images"]), "every figure decoded"
    titles = [t for _, t in out["headings"]]
    assert titles == [s for s in SECTIONS if s != FAMILIES], "every section of the report, in order (two architectures: no families page)"
    assert out["toc"] == [f"#{anchor}" for anchor, _ in out["headings"]], "the table of contents links every section"
    before, (ascending, asc_state), (descending, desc_state) = out["before"], out["ascending"], out["descending"]
    assert ascending == sorted(before) and descending == sorted(before, reverse=True) and ascending != descending
    assert (asc_state, desc_state) == ("ascending", "descending")


def test_the_page_draws(run_dir: Path, tmp_path: Path) -> None:
    """A screenshot of the top of the page: the summary and its figure are painted, not a blank page."""
    from PIL import Image

    browser = _browser()
    shot = tmp_path / "top.png"
    _chromium(browser, "--hide-scrollbars", "--window-size=1280,1600", f"--screenshot={shot}", (run_dir / "report.html").as_uri())
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.shape == (1600, 1280) and pixels.std() > 20 and (pixels < 100).mean() > 0.005, "text and figures on the page"
