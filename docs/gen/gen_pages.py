"""Generate the site's reference pages during ``mkdocs build`` (the mkdocs-gen-files plugin runs
this file): nothing generated is committed, so nothing generated can be stale.

Two kinds of output:

- hand-written pages under ``docs/`` with markers, a line ``<!-- gen: NAME -->``, each replaced
  by the output of ``MARKERS[NAME]`` (an unknown marker stops the build);
- whole pages and files: the API reference, the benchmarks' current results and copies of the
  studies committed under ``reports/``.

READMEs read on the repository's web host (``attacks/README.md``) take the same markers but are
committed filled: ``docs/gen/readmes.py`` writes them from their templates, and
``tests/test_docs.py`` fails when one has drifted from the code.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import api_reference
import bad_inputs
import cli_reference
import copies
import data_reference
import schema_reference
import spec_reference
import zoo_reference

DOCS = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"^<!-- gen: ([a-z0-9-]+) -->$", re.MULTILINE)
MARKERS: dict[str, Callable[[], str]] = {
    "spec-fields": spec_reference.spec_fields,
    "attack-fields": spec_reference.attack_fields,
    "attack-options": spec_reference.common_options,
    "attack-parameters": spec_reference.attack_parameters,
    "attack-table": spec_reference.attack_table,
    "spec-files": spec_reference.spec_files,
    "spec-files-linked": lambda: spec_reference.spec_files(links=True),  # attacks/README.md, beside the files
    "attack-names": spec_reference.attack_names,
    "presets-doc": spec_reference.presets_doc,
    "run-files": schema_reference.files_table,
    "run-tables": schema_reference.column_tables,
    "manifest-fields": schema_reference.manifest_fields,
    "result-columns": schema_reference.result_columns,
    "format-version": schema_reference.format_version,
    "bad-input-cases": bad_inputs.cases_table,
    "bad-input-behaviours": bad_inputs.behaviours_list,
    "cli-reference": cli_reference.cli_reference,
    "studies-table": copies.studies_table,
    "studies-list": copies.studies_list,
    "benchmark-list": copies.benchmark_list,
    "quickstart-output": copies.quickstart_output,
    "zoo-entries": zoo_reference.zoo_entries,
    "architectures": zoo_reference.architectures,
    "data-sources": data_reference.data_sources,
    "data-options": data_reference.data_options,
    "my-data-example": data_reference.my_data_example,
}


def fill(text: str, where: str = "page") -> str:
    """``text`` with every marker replaced by its generated Markdown."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in MARKERS:
            raise KeyError(f"{where}: unknown marker <!-- gen: {name} -->; known: {', '.join(sorted(MARKERS))}")
        return MARKERS[name]().strip()

    return MARKER.sub(one, text)


def filled_pages() -> dict[str, str]:
    """Hand-written page (path under docs/) -> its text with the markers filled in."""
    out = {}
    for path in sorted(DOCS.rglob("*.md")):
        rel = path.relative_to(DOCS).as_posix()
        text = path.read_text(encoding="utf-8")
        if not rel.startswith("gen/") and MARKER.search(text):
            out[rel] = fill(text, rel)
    return out


def generated_pages() -> dict[str, str]:
    """Page path -> Markdown of the pages made from scratch."""
    out = dict(api_reference.pages())
    for path in copies.benchmark_results():
        out[f"{copies.RESULTS_DIR}/{path.stem}.md"] = copies.benchmark_page(path)
    for study in copies.studies():
        stub = copies.study_stub(study)
        if stub is not None:
            out[f"{copies.STUDIES_DIR}/{study.name}/index.md"] = stub
    return out


def copied_files() -> Iterator[tuple[str, Path]]:
    """(path in the site, file) of the studies' reports, figures, PDFs and data."""
    for study in copies.studies():
        yield from copies.study_files(study)


def write_all() -> None:
    import mkdocs_gen_files

    for name, text in {**filled_pages(), **generated_pages()}.items():
        with mkdocs_gen_files.open(name, "w", encoding="utf-8") as f:
            f.write(text)
    for name, source in copied_files():
        with mkdocs_gen_files.open(name, "wb") as out:
            out.write(source.read_bytes())


if __name__ == "<run_path>":  # run by mkdocs-gen-files inside `mkdocs build`
    write_all()
