"""The documentation site: its generated pages list what the code defines (every spec field, every
registered attack, every run-directory table, every bad-input case), and ``mkdocs build --strict``
builds it offline, with no resource fetched from the web when a page is viewed."""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    """docs/gen/gen_pages.py, imported (not run: run, it writes the pages into an mkdocs build)."""
    return _load("docs_gen_pages", ROOT / "docs" / "gen" / "gen_pages.py")


@pytest.fixture(scope="module")
def pages(gen: ModuleType) -> dict[str, str]:
    """Every hand-written page with its markers filled, and every page made from scratch."""
    return {**gen.filled_pages(), **gen.generated_pages()}


def test_every_marker_is_filled(pages: dict[str, str], gen: ModuleType) -> None:
    assert {"spec.md", "attacks.md", "rundir.md", "bad-inputs.md", "cli.md", "zoo.md", "getting-started.md"} <= set(pages)
    left = [name for name, text in pages.items() if "<!-- gen:" in text]
    assert not left, f"markers not replaced in {left}"
    with pytest.raises(KeyError, match="unknown marker <!-- gen: nope -->"):
        gen.fill("text\n<!-- gen: nope -->\n")


def test_spec_reference_lists_every_field_and_attack(pages: dict[str, str]) -> None:
    from robust_attn.attacks.registry import attack_class, backends, list_attacks
    from robust_attn.sweeps.spec import ATTACK_FIELDS, TOP_FIELDS, SweepSpec

    page = pages["spec.md"]
    for key in TOP_FIELDS:
        assert f"| `{key}` |" in page, key
    for key in ATTACK_FIELDS:
        assert f"| `{key}` |" in page, key
    defaults = {f.name: f.default for f in dataclasses.fields(SweepSpec)}
    assert defaults["n"] == 1000 and "| `n` | `1000` |" in page
    assert '| `modes` | `["worst-case"]` |' in page and "| `models` | **required** |" in page
    for backend in backends():
        for name in list_attacks(backend):
            anchor = "attack-" + name + ("" if backend == "native" else f"-{backend}")
            section = page.split(f"{{#{anchor}}}", 1)
            assert len(section) == 2, f"{name} ({backend}) has no section"
            body = section[1].split("\n### ", 1)[0]
            assert f"`{attack_class(name, backend).__qualname__}`" in body or attack_class(name, backend).__qualname__ in body
    pgd = page.split("{#attack-pgd}", 1)[1].split("\n### ", 1)[0]
    assert "| `steps` | an integer | `10` |" in pgd and "| `random_start` | true or false | `true` |" in pgd
    apgd_t = page.split("{#attack-apgd-t}", 1)[1].split("\n### ", 1)[0]
    assert "| `targets` | an integer | `9` |" in apgd_t and "`loss`" not in apgd_t, "APGD-T fixes its loss: not a parameter"
    table = pages["attacks.md"]
    for name in list_attacks():
        assert f"[`{name}`](spec.md#attack-{name})" in table, name


def test_schema_page_contains_every_table(pages: dict[str, str]) -> None:
    from robust_attn.rundir import schema

    page = pages["rundir.md"]
    tables = {n: v for n, v in vars(schema).items() if isinstance(v, tuple) and v and all(isinstance(c, schema.Column) for c in v)}
    assert {"SAMPLE_COLUMNS", "DRIFT_COLUMNS", "SEGMENTATION_COLUMNS", "INDICATOR_COLUMNS"} <= set(tables)
    for name, columns in tables.items():
        assert schema.markdown_schema(columns) in page, name
    for column in schema.RESULT_COLUMNS:
        assert f"| `{column}` |" in page.split("## results.csv", 1)[1], column
    for name in (schema.MANIFEST, schema.RESULTS, schema.SAMPLES, schema.DRIFT, schema.SEGMENTATION, schema.INDICATORS, schema.EXAMPLES):
        assert f"| `{name}` |" in page, name
    assert f"**{schema.FORMAT_VERSION}**" in page


def test_bad_inputs_page_covers_every_case(pages: dict[str, str], gen: ModuleType) -> None:
    cases = _load("bad_inputs_cases", ROOT / "tests" / "test_bad_inputs.py")
    page = pages["bad-inputs.md"]
    for case_id, _, pattern in cases.ALL_CASES:
        assert f"\n| {case_id} |" in page, case_id
        shown = gen.bad_inputs.readable(pattern)
        assert gen.bad_inputs.code(shown) in page, case_id
        if "\\d" not in pattern:
            assert re.search(pattern, shown), f"the page's line for {case_id!r} is not an instance of its pattern: {shown!r}"
    others = [n for n in vars(cases) if n.startswith("test_") and n != "test_bad_input_is_one_line_and_exit_2"]
    assert others
    for name in others:
        assert f"(`{name}`)" in page, name


def test_api_pages_name_every_public_export(pages: dict[str, str]) -> None:
    import robust_attn

    page = pages["api/index.md"]
    for name in robust_attn.__all__:
        if name != "__version__":
            assert re.search(rf"(::: [\w.]+\.{name}\n|\[`{name}`\]\[)", page), name
    assert "- run_sweep" in pages["api/sweeps.md"] and "- load_run" in pages["api/rundir.md"]


def test_mkdocs_build_strict(tmp_path: Path) -> None:
    """The site builds with --strict (a broken link fails) and shows what it should. CI builds the
    site only here, so under CI a missing docs package fails instead of skipping."""
    for module in ("mkdocs", "material", "mkdocstrings", "mkdocs_gen_files"):
        if os.environ.get("CI"):
            importlib.import_module(module)
        else:
            pytest.importorskip(module, reason="the docs extra is not installed (pip install -e '.[docs]')")
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    spec = (site / "spec.html").read_text()
    assert 'id="attack-apgd"' in spec and "runs/&lt;name&gt;/" in spec, "placeholders in field docs are shown, not eaten as HTML tags"
    assert "create_attack" in (site / "api" / "index.html").read_text()
    assert (site / "studies" / "compare" / "report.pdf").is_file() and "Robustness report: compare" in (
        site / "studies" / "compare" / "report.html"
    ).read_text()
    for study in sorted((ROOT / "reports").glob("*/report.md")):
        assert (site / "studies" / study.parent.name / "index.html").is_file(), f"{study.parent.name} has no findings page"
    fetched = re.compile(r'<(?:link|script|img)[^>]*(?:href|src)="(?:https?:)?//')
    for page in site.rglob("*.html"):
        hit = fetched.search(page.read_text())
        assert hit is None, f"{page.relative_to(site)} loads {hit.group(0) if hit else ''} from the web"


def test_attacks_readme_is_generated_and_lists_every_spec_and_field() -> None:
    """attacks/README.md is read on the web host, where no build fills a marker, so it is committed
    filled (docs/gen/readmes.py): it must be what its template and the code give now, and so name
    every spec in attacks/ and every field the parser accepts."""
    from robust_attn.sweeps.spec import ATTACK_FIELDS, TOP_FIELDS

    readmes = _load("docs_gen_readmes", ROOT / "docs" / "gen" / "readmes.py")
    assert readmes.stale() == [], "a committed README drifted from its template or the code: run python docs/gen/readmes.py"
    text = (ROOT / "attacks" / "README.md").read_text()
    for spec in sorted((ROOT / "attacks").glob("*.toml")):
        assert f"[`{spec.name}`]({spec.name})" in text, spec.name
    for key in [*TOP_FIELDS, *ATTACK_FIELDS]:
        assert f"| `{key}` |" in text, key
    assert "<!-- gen:" not in text


def _benchmark_rows() -> dict[str, list[str]]:
    """benchmarks/README.md's table: script file name -> its cells."""
    rows = {}
    for line in (ROOT / "benchmarks" / "README.md").read_text().splitlines():
        match = re.match(r"\| \[`(\w+\.py)`\]\(\1\) \|", line)
        if match:
            rows[match.group(1)] = [c.strip() for c in line.strip("|").split(" | ")]
    return rows


def test_benchmarks_readme_names_every_script_and_each_current_result() -> None:
    """Every benchmark script has a row; every file under benchmarks/results/ is named in one (one
    current result per script, results/<script>.txt, and the data it was summarised from in
    results/<script>/); and a page the row cites names the result."""
    bench = ROOT / "benchmarks"
    rows = _benchmark_rows()
    assert set(rows) == {p.name for p in bench.glob("*.py")}
    text = (bench / "README.md").read_text()
    for path in sorted((bench / "results").rglob("*")):
        if path.is_file():
            rel = path.relative_to(bench).as_posix()
            assert rel in text or f"{path.parent.relative_to(bench).as_posix()}/" in text, f"{rel} is named in no row"
    for script, cells in rows.items():
        results = re.findall(r"\[`(results/[\w./-]+)`\]", cells[3])
        assert len(results) <= 1, script
        for result in results:
            assert result == f"results/{script.removesuffix('.py')}.txt" and (bench / result).is_file(), result
            cited = [ROOT / "benchmarks" / link.split("#")[0] for link in re.findall(r"\]\((\.\./[^)]+)\)", cells[5])]
            assert cited and all(p.is_file() for p in cited), script
            assert any(f"benchmarks/{result}" in p.read_text() for p in cited), f"no page the row of {script} cites names {result}"
    for result in (bench / "results").glob("*.txt"):
        assert (bench / f"{result.stem}.py").is_file(), f"{result.name} has no script"


def test_no_imports_between_tests_and_benchmarks() -> None:
    """What a test and a benchmark both need lives in benchmarks/_common (or the package): no test
    loads a benchmark script, no benchmark imports a test or puts tests/ on its path."""
    for path in (ROOT / "tests").rglob("*.py"):
        text = path.read_text()
        for hit in re.finditer(r"""["']benchmarks["']\s*/\s*["']([^"']+)|["']benchmarks/([^/"']+)""", text):
            assert not (hit.group(1) or hit.group(2)).endswith(".py"), f"{path.name} loads a benchmark script: {hit.group(0)}"
    for path in (ROOT / "benchmarks").rglob("*.py"):
        text = path.read_text()
        assert not re.search(r"^\s*(from|import) (test_|tests\b|conftest|constructed\b)", text, re.MULTILINE), path.name
        assert '"tests"' not in text and "/ 'tests'" not in text, path.name


def test_studies_page_lists_every_committed_study(pages: dict[str, str]) -> None:
    """The studies page is read from reports/ when the site is built: one table row and one
    findings link per committed run directory, and no count typed by hand."""
    page = pages["studies/index.md"]
    studies = sorted(p.parent.name for p in (ROOT / "reports").glob("*/report.md"))
    assert studies
    assert len(re.findall(r"^\| `reports/[\w-]+` \|", page, re.MULTILINE)) == len(studies)
    for name in studies:
        assert f"| `reports/{name}` |" in page and f"]({name}/index.md)" in page, name
    assert not re.search(r"\b(Two|Three|Four|Five|Six|Seven|Eight|Nine|Ten) run directories\b", page)


def test_your_data_page_lists_every_data_source_and_option(pages: dict[str, str]) -> None:
    """The "Your data" page is read from the data registry: a row for every registered data set
    (and for your own, package.module:factory), and every option of every data table with its doc."""
    from robust_attn.data.loading import dataset_source, list_datasets

    page = pages["your-data.md"]
    names = list_datasets()
    assert {"builtin", "imagefolder", "imagenet", "imagenet-c", "imagefolder-c"} <= set(names)
    sources = [(name, dataset_source(name)) for name in names] + [("package.module:factory", dataset_source("my_pkg.data:make"))]
    for name, source in sources:
        row = next((line for line in page.splitlines() if line.startswith(f"| `{name}` | ")), None)
        assert row is not None, f"{name} has no row"
        assert source.description.replace("<", "&lt;") in row and ", ".join(source.splits) in row, name
        for option, doc in source.options.items():
            line = next((x for x in page.splitlines() if x.startswith(f"| `{option}` | {doc.replace('<', '&lt;')} |")), None)
            assert line is not None and f"`{name}`" in line, f"{name}: option {option} is not documented as it declares"
    assert "| `resize` |" in page and "| `subset` |" in page and "| `corrupted_dir` |" in page


def test_the_my_data_example_loads_and_matches_its_image_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pages: dict[str, str]
) -> None:
    """docs/examples/my_data.py, shown whole on the page, runs through ra.load_dataset as the page's
    spec names it: ten classes in turn, each image's mask exactly the square of its class's colour;
    written as an image folder by the same file, it reads back with the same labels and pixels
    (to the 255th a PNG keeps). The page's spec for it parses."""
    import tomllib

    import torch

    import robust_attn as ra

    example = ROOT / "docs" / "examples" / "my_data.py"
    page = pages["your-data.md"]
    assert example.read_text().strip() in page, "the page shows the example file as it is"
    monkeypatch.syspath_prepend(str(example.parent))
    monkeypatch.delitem(sys.modules, "my_data", raising=False)  # imported here, forgotten after the test
    my_data = importlib.import_module("my_data")
    data = ra.load_dataset("my_data:make", n=20)
    assert data.classes == tuple(my_data.COLOURS) and data.labels.tolist() == [i % 10 for i in range(20)]
    assert data.has_masks and data.image_shape == (3, 32, 32)
    x, y, masks = data.head(20)
    assert masks is not None and x.shape == (20, 3, 32, 32)
    for image, label, mask in zip(x, y, masks, strict=True):
        colour = torch.tensor(my_data.COLOURS[data.classes[int(label)]])
        assert 64 <= int(mask.sum()) <= 256 and torch.equal(image[:, mask].T, colour.expand(int(mask.sum()), 3))
    root = tmp_path / "colours"
    assert my_data.write_folder(root, my_data.Colours(n=20)) == 20
    folder = ra.load_dataset("imagefolder", data_dir=root, classes=list(data.classes))
    assert torch.equal(folder.labels, data.labels)
    read = torch.cat([b for _, b, _ in folder.batches(8)])
    assert torch.allclose(read, x.mul(255).round().div(255), atol=1e-6)
    spec = next(block for block in re.findall(r"```toml\n(.*?)```", page, re.DOTALL) if "my_data:make" in block)
    parsed = ra.parse_spec(tomllib.loads(spec))
    assert parsed.dataset == "my_data:make" and parsed.models == ("attention_cnn:make", "plain_cnn:make")
