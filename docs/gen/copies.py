"""Pages made from files the repository already holds: the committed studies under ``reports/``
(their report.md with its figures, the PDF and the data files), the benchmarks' current results
``benchmarks/results/<script>.txt``, and what the quickstart prints (from the committed reference run)."""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from md import code, table

ROOT = Path(__file__).resolve().parents[2]
REPORTS = ROOT / "reports"
BENCHMARKS = ROOT / "benchmarks"
RESULTS = BENCHMARKS / "results"  # one current result per benchmark script: results/<script>.txt
STUDIES_DIR = "studies"  # where the studies' copies go in the site
RESULTS_DIR = "benchmarks/results"  # where the benchmark results go in the site (the repository's path)


@dataclass(frozen=True)
class Study:
    """A committed run directory with its report."""

    name: str
    folder: Path

    @property
    def manifest(self) -> dict[str, object]:
        data: dict[str, object] = json.loads((self.folder / "manifest.json").read_text())
        return data


def studies() -> list[Study]:
    """Every committed run directory that has a report.md."""
    return [Study(p.parent.name, p.parent) for p in sorted(REPORTS.glob("*/report.md"))]


# a study's files whose name in the site differs: its README is the folder's page (the findings),
# and a committed self-contained report.html would collide with the page made from report.md
RENAMED = {"README.md": "index.md", "report.html": "report.standalone.html"}


def study_files(study: Study) -> Iterator[tuple[str, Path]]:
    """(path in the site, file) of everything of a study the site carries: its README (the
    findings) as the folder's page, report.md as a page, figures, PDF and data files (not the
    resumable cells)."""
    for path in sorted(study.folder.rglob("*")):
        rel = path.relative_to(study.folder).as_posix()
        if path.is_file() and not rel.startswith("cells/"):
            yield f"{STUDIES_DIR}/{study.name}/{RENAMED.get(rel, rel)}", path


def study_stub(study: Study) -> str | None:
    """The folder's page of a study without a README (so the nav always finds one), else None."""
    if (study.folder / "README.md").is_file():
        return None
    return f"# `reports/{study.name}`\n\nThis run directory has no README yet: see [its report](report.md).\n"


def studies_table() -> str:
    """One row per study: what it ran and links to its findings, report, PDF and data."""
    rows = []
    for s in studies():
        m = s.manifest
        spec = m["spec"]
        assert isinstance(spec, dict)
        models = sorted({str(x).split("@")[0] for x in spec.get("models", [])})
        attacks = ", ".join(dict.fromkeys(str(a.get("name")) for a in spec.get("attacks", [])))
        seeds = spec.get("seeds") or [0]
        links = [f"[findings]({s.name}/index.md)", f"[report]({s.name}/report.md)"]  # the table is on studies/index.md
        links += [f"[{n}]({s.name}/{n})" for n in ("report.pdf", "results.csv", "summary.csv") if (s.folder / n).is_file()]
        row = (
            code(f"reports/{s.name}"),
            ", ".join(code(x) for x in models),
            str(len(seeds)),
            str(spec.get("n")),
            attacks,
            " · ".join(links),
        )
        rows.append(row)
    return table(("run directory", "models", "seeds", "images", "attacks", "open"), rows)


def studies_list() -> str:
    """Each study's findings page, titled by its README's first heading."""
    lines = []
    for s in studies():
        readme = s.folder / "README.md"
        title = readme.read_text().splitlines()[0].lstrip("# ").strip() if readme.is_file() else f"`reports/{s.name}`"
        lines.append(f"- [{title}]({s.name}/index.md), and [its full report]({s.name}/report.md)")
    return "\n".join(lines)


def benchmark_results() -> list[Path]:
    """Each benchmark's current result, ``benchmarks/results/<script>.txt`` (data a result was
    summarised from lives beside it, in ``results/<script>/``)."""
    return sorted(RESULTS.glob("*.txt"))


def benchmark_summary(script: Path) -> str:
    """The first line of a benchmark script's docstring: what it measures."""
    doc = ast.get_docstring(ast.parse(script.read_text(encoding="utf-8"))) or ""
    return doc.strip().split("\n\n")[0].replace("\n", " ")


def benchmark_page(path: Path) -> str:
    """A benchmark's current result, verbatim, under what its script measures."""
    script = BENCHMARKS / f"{path.stem}.py"
    head = f"# {path.stem}\n\n{benchmark_summary(script)}\n\n"
    head += f"The current result of `benchmarks/{script.name}` (`benchmarks/results/{path.name}` in the repository), verbatim.\n\n"
    return head + "```text\n" + path.read_text().rstrip() + "\n```\n"


def benchmark_list() -> str:
    """Every benchmark's current result with what its script measures (the commands, CPUs and the
    figures each backs are in ``benchmarks/README.md``)."""
    rows = [(f"[{code(p.stem)}]({RESULTS_DIR}/{p.stem}.md)", benchmark_summary(BENCHMARKS / f"{p.stem}.py")) for p in benchmark_results()]
    return table(("result", "what the benchmark measures"), rows)


def quickstart_output() -> str:
    """The summary the quickstart prints, recomputed from the committed quickstart run
    (``reports/reference``, made by ``robust-attn quickstart --out reports/reference``)."""
    from robust_attn.cli import summary_table
    from robust_attn.rundir import load_run

    return "```text\n" + summary_table(load_run(REPORTS / "reference"), modes=("worst-case",)) + "\n```"
