"""manifest.json is parsed once, against its declaration (robust_attn/rundir/manifest.py), by every
reader: a missing field or one of the wrong type is one line naming the file and the field; fields
a newer writer adds pass through; every committed study parses. And ``robust-attn report`` checks
that it can write the run directory and its figures/ folder before any work."""

from __future__ import annotations

import copy
import errno
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from badinput import USER_MODELS, _spec

import robust_attn as ra
from robust_attn.errors import RunDirError
from robust_attn.rundir import load_run, manifest, read_manifest, schema, upgrade_run_dir

ROOT = Path(__file__).resolve().parents[1]
STUDIES = sorted(ROOT.glob("reports/*/manifest.json"))
DAMAGED = "; the file is damaged: restore it from version control, or delete it and rerun the sweep (its finished cells under cells/ are merged again, not recomputed)"


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One finished sweep of a user's linear model (20 images, FGSM), copied by each test that changes it."""
    tmp = tmp_path_factory.mktemp("manifest")
    (tmp / "bi_models.py").write_text(USER_MODELS)
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(tmp))
        mp.setenv("ROBUST_ATTN_HOME", str(tmp / "home"))
        yield ra.run_sweep(ra.load_spec(_spec(tmp, "")), tmp / "run", progress=False)


@pytest.fixture
def run(base: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(base, tmp_path / "run"))


def _written(run: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((run / "manifest.json").read_text())
    return data


def _one_line(err: pytest.ExceptionInfo[RunDirError], pattern: str) -> str:
    message = str(err.value)
    assert "\n" not in message and re.search(pattern, message), message
    return message


# -- every manifest robust-attn wrote parses ----------------------------------------------------------------
def test_there_are_committed_studies() -> None:
    assert len(STUDIES) >= 5, "the parse test below would run over nothing"


@pytest.mark.parametrize("path", STUDIES, ids=[p.parent.name for p in STUDIES])
def test_every_committed_study_parses(path: Path) -> None:
    data = manifest.read(path)
    assert data["format_version"] == schema.FORMAT_VERSION and data["complete"] is True and data["cells"]


def test_a_fresh_sweep_parses_and_the_parse_returns_the_manifest_itself(base: Path) -> None:
    data = _written(base)
    assert manifest.parse(data, base / "manifest.json") is data, "the dict the readers use, unchanged"
    assert read_manifest(base) == data


def test_fields_a_newer_writer_adds_are_accepted_and_kept(run: Path) -> None:
    data = _written(run)
    newer = {
        **data,
        "spec_fingerprint": "5363a0a1ffc6ca2e",
        "sealed": {"at": "2026-12-07T00:00:00+00:00", "note": "study"},
        "files": {"results.csv": {"size": 12, "sha256": "ab" * 32}},
        "from_the_future": [1, {"x": None}],
    }
    newer["cells"] = [{**c, "new_cell_field": True} for c in data["cells"]]
    assert manifest.parse(copy.deepcopy(newer), run / "manifest.json") == newer


def test_a_plan_without_cells_or_probes_parses_until_it_says_it_is_complete(run: Path) -> None:
    """The cells and probes are written by the merge: a sweep's plan (complete: false) has none."""
    plan = {k: v for k, v in _written(run).items() if k not in ("cells", "probes")}
    assert manifest.parse({**plan, "complete": False}, run / "plan.json")
    with pytest.raises(RunDirError) as err:
        manifest.parse({**plan, "complete": True}, run / "manifest.json")
    _one_line(err, r"field 'cells' is missing \(the manifest says the run is complete\)")


# -- what is refused, in one line naming the file and the field -----------------------------------------------
def _drop(key: str) -> Callable[[dict[str, Any]], Any]:
    return lambda m: {k: v for k, v in m.items() if k != key}


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], Any]:
    """Set a dotted path (list indices and dict keys alike) to ``value``."""

    def edit(m: dict[str, Any]) -> dict[str, Any]:
        *parents, last = path.split(".")
        node: Any = m
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        node[int(last) if isinstance(node, list) else last] = value
        return m

    return edit


def _del(path: str) -> Callable[[dict[str, Any]], Any]:
    def edit(m: dict[str, Any]) -> dict[str, Any]:
        *parents, last = path.split(".")
        node: Any = m
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        del node[last]
        return m

    return edit


MODEL = "bi_models:good"
REFUSED: list[tuple[str, Callable[[dict[str, Any]], Any], str]] = [
    ("a list", lambda m: [], r"is not a run manifest: it must be a JSON object, got a list"),
    ("a string", lambda m: "manifest", r'is not a run manifest: it must be a JSON object, got the string "manifest"'),
    ("null", lambda m: None, r"is not a run manifest: it must be a JSON object, got null"),
    ("no models", _drop("models"), r"field 'models' is missing"),
    ("no dataset", _drop("dataset"), r"field 'dataset' is missing"),
    ("no planned units", _drop("planned"), r"field 'planned' is missing"),
    ("models a list", _set("models", []), r"field 'models' must be an object of model records by name, got a list"),
    ("cells an object", _set("cells", {}), r"field 'cells' must be a list of cell records, got an object"),
    ("a cell a string", _set("cells.0", "fgsm"), r"field 'cells\[0\]' must be a cell record \(an object\), got the string \"fgsm\""),
    ("a cell without slug", _del("cells.0.slug"), r"field 'cells\[0\]\.slug' is missing"),
    ("a cell's eps a string", _set("cells.0.eps", "0, 4/255"), r"field 'cells\[0\]\.eps' must be a list of numbers, got the string"),
    ("an eps a string", _set("cells.0.eps.1", "4/255"), r"field 'cells\[0\]\.eps\[1\]' must be a number, got the string \"4/255\""),
    (
        "has_attention a string",
        _set(f"models.{MODEL}.has_attention", "yes"),
        r"field 'models\[\"bi_models:good\"\]\.has_attention' must be true or false, got the string \"yes\"",
    ),
    ("train_seed a float", _set(f"models.{MODEL}.train_seed", 1.5), r"\.train_seed' must be an integer or null, got the number 1\.5"),
    ("n a string", _set("dataset.n", "20"), r"field 'dataset\.n' must be an integer, got the string \"20\""),
    ("n a boolean", _set("dataset.n", True), r"field 'dataset\.n' must be an integer, got true"),
    ("complete a string", _set("complete", "yes"), r"field 'complete' must be true or false, got the string \"yes\""),
    ("spec_path a number", _set("spec_path", 5), r"field 'spec_path' must be a string or null, got the number 5"),
    ("wall_seconds null", _set("wall_seconds", None), r"field 'wall_seconds' must be a number, got null"),
    ("spec attacks an object", _set("spec.attacks", {}), r"field 'spec\.attacks' must be a list of attack records, got an object"),
    ("a planned unit without config_hash", _del("planned.0.config_hash"), r"field 'planned\[0\]\.config_hash' is missing"),
    ("spec_fingerprint a number", _set("spec_fingerprint", 5), r"field 'spec_fingerprint' must be a string, got the number 5"),
    ("files a list", _set("files", []), r"field 'files' must be an object of file records by name, got a list"),
    (
        "a file size a string",
        _set("files", {"results.csv": {"size": "12", "sha256": "ab"}}),
        r"field 'files\[\"results\.csv\"\]\.size' must be an integer, got the string \"12\"",
    ),
    ("sealed a string", _set("sealed", "yes"), r"field 'sealed' must be an object, got the string \"yes\""),
    (
        "partial_attacks of strings",
        _set("partial_attacks", {"pgd": "a"}),
        r"field 'partial_attacks\[\"pgd\"\]' must be a list of strings, got the string \"a\"",
    ),
]


@pytest.mark.parametrize(("case", "edit", "pattern"), REFUSED, ids=[c[0] for c in REFUSED])
def test_a_damaged_manifest_is_one_line_naming_the_file_and_the_field(
    case: str, edit: Callable[[dict[str, Any]], Any], pattern: str, run: Path
) -> None:
    (run / "manifest.json").write_text(json.dumps(edit(_written(run))))
    with pytest.raises(RunDirError) as err:
        load_run(run)
    message = _one_line(err, pattern)
    assert message.startswith(f"{run / 'manifest.json'}") and message.endswith(DAMAGED), message


@pytest.mark.parametrize(("value", "word"), [("3", 'the string "3"'), (3.0, "the number 3.0"), (True, "true")])
def test_a_format_version_that_is_no_integer_is_named(value: Any, word: str, run: Path) -> None:
    (run / "manifest.json").write_text(json.dumps({**_written(run), "format_version": value}))
    with pytest.raises(RunDirError) as err:
        read_manifest(run)
    _one_line(err, re.escape(f"{run / 'manifest.json'}: field 'format_version' must be an integer, got {word}{DAMAGED}"))


def test_bytes_that_are_not_json_are_one_line(run: Path) -> None:
    (run / "manifest.json").write_bytes(b"\xff\xfe{")
    with pytest.raises(RunDirError) as err:
        read_manifest(run)
    _one_line(err, r"manifest\.json is not valid JSON \(.*\); the file is damaged")
    (run / "manifest.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(RunDirError) as err:
        read_manifest(run)
    _one_line(err, r"manifest\.json is not a run manifest \(JSON nested too deeply to read\); the file is damaged")


# -- the declaration ---------------------------------------------------------------------------------------
def _names(type_: str) -> list[str]:
    """The innermost type names of a declared type: 'map[list[string]] | null' -> ['string', 'null']."""
    return [t.strip().replace("list[", "").replace("map[", "").rstrip("]") for t in type_.split("|")]


def test_every_declared_type_is_known() -> None:
    scalars = {"string", "integer", "number", "bool", "object", "list", "null", "any"}
    for owner, fields in {"manifest": manifest.FIELDS, **manifest.RECORDS}.items():
        assert len({f.name for f in fields}) == len(fields), f"{owner}: a field declared twice"
        for f in fields:
            assert f.required in ("yes", "no", "when complete") and f.doc, (owner, f.name)
            unknown = [n for n in _names(f.type) if n not in scalars and n not in manifest.RECORDS]
            assert not unknown, f"{owner}.{f.name}: unknown type {unknown}"


@pytest.mark.parametrize(
    ("type_", "words"),
    [
        ("list[cell]", "a list of cell records"),
        ("string | null", "a string or null"),
        ("map[model]", "an object of model records by name"),
        ("map[list[string]]", "an object of lists by name"),
        ("integer", "an integer"),
        ("bool", "true or false"),
    ],
)
def test_types_in_words(type_: str, words: str) -> None:
    assert manifest.describe(type_) == words


def test_the_writer_writes_every_required_field(base: Path) -> None:
    """Every field the declaration requires of a complete run is in what a sweep writes, so the
    declaration cannot demand what the writer never writes."""
    data = _written(base)
    required = [f.name for f in manifest.FIELDS if f.required != "no"]
    assert [k for k in required if k not in data] == []
    cell, model = data["cells"][0], data["models"][MODEL]
    assert [f.name for f in manifest.CELL_FIELDS if f.required == "yes" and f.name not in cell] == []
    assert [f.name for f in manifest.MODEL_FIELDS if f.required == "yes" and f.name not in model] == []


# -- the other readers: compare, upgrade ---------------------------------------------------------------------
def test_compare_force_over_a_folder_whose_manifest_is_no_object(base: Path, tmp_path: Path) -> None:
    """--force replaces only a combined run; a manifest.json holding a JSON number there is not one
    (it used to end in a TypeError)."""
    from robust_attn.rundir.combine import combine_runs

    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.json").write_text("5")
    with pytest.raises(RunDirError) as err:
        combine_runs([base], out, force=True)
    _one_line(err, "exists and was not written by robust-attn compare")


def _describe(a: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return str(a["name"]), {"norm": "linf", "iterative": False}


def _version_2(run: Path) -> dict[str, Any]:
    """A version-2 manifest of ``run``: model records as version 2 wrote them, cells without traits."""
    data = _written(run)
    models = {ref: {"model_name": "linear", "recipe": None, "attention": False} for ref in data["models"]}
    cells = [{k: c[k] for k in ("model", "attack", "mode", "slug", "seconds")} for c in data["cells"]]
    old = {k: v for k, v in data.items() if k not in ("files", "spec_fingerprint")}
    return {**old, "format_version": 2, "models": models, "cells": cells}


def test_upgrade_converts_version_2_and_the_result_parses(run: Path) -> None:
    (run / "manifest.json").write_text(json.dumps(_version_2(run)))
    changes = upgrade_run_dir(run, _describe)
    assert changes[0] == "format version 2 -> 4"
    data = read_manifest(run)
    assert data["upgraded_from"] == 2 and data["models"][MODEL]["has_attention"] is False
    assert data["cells"][0]["traits"] == {"norm": "linf", "iterative": False}
    assert upgrade_run_dir(run, _describe) == [], "already current: checked, left alone"


@pytest.mark.parametrize(
    ("edit", "pattern"),
    [
        (_set("cells", {}), r"field 'cells' must be a list of v2 cell records, got an object"),
        (_set("spec.attacks.0.eps", "4/255"), r"field 'spec\.attacks\[0\]\.eps' must be a list of numbers"),
        (
            _set("cells.0.attack", "pgd"),
            r"field 'cells\[0\]\.attack' names 'pgd', which is not among the attacks of the recorded spec \(fgsm\)",
        ),
        (_drop("dataset"), r"field 'dataset' is missing"),
    ],
)
def test_upgrade_of_a_damaged_version_2_is_one_line_and_rewrites_nothing(
    edit: Callable[[dict[str, Any]], Any], pattern: str, run: Path
) -> None:
    (run / "manifest.json").write_text(json.dumps(edit(_version_2(run))))
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    with pytest.raises(RunDirError) as err:
        upgrade_run_dir(run, _describe)
    _one_line(err, pattern)
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before


def test_upgrade_of_a_damaged_current_manifest_names_the_field(run: Path) -> None:
    (run / "manifest.json").write_text(json.dumps(_drop("models")(_written(run))))
    with pytest.raises(RunDirError) as err:
        upgrade_run_dir(run, _describe)
    _one_line(err, r"field 'models' is missing")


# -- the report writes the run directory and figures/: both checked before any work ---------------------------
def _refuse_writes_in(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``folder`` read-only: chmod where permissions bind, else (root) the write probe refused there."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return
    real = tempfile.NamedTemporaryFile

    def probe(*args: Any, **kwargs: Any) -> Any:
        if Path(str(kwargs.get("dir"))) == folder:
            raise PermissionError(errno.EACCES, "Permission denied")
        return real(*args, **kwargs)

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", probe)


def test_report_into_read_only_figures_writes_nothing(run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from robust_attn.reports import make_report

    (run / "figures").mkdir()
    _refuse_writes_in(run / "figures", monkeypatch)
    try:
        with pytest.raises(RunDirError) as err:
            make_report(run, progress=False)
    finally:
        (run / "figures").chmod(0o755)
    _one_line(
        err,
        re.escape(
            f"cannot write the report's figures under {run / 'figures'} (Permission denied); make it writable, or copy "
            "the run directory and report the copy"
        ),
    )
    assert not (run / "report.pdf").exists() and not (run / "summary.csv").exists()


def test_report_into_a_read_only_run_dir_does_not_advise_out(run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``report`` has no --out: the line says to make the folder writable or to report a copy."""
    from robust_attn.reports import make_report

    _refuse_writes_in(run, monkeypatch)
    try:
        with pytest.raises(RunDirError) as err:
            make_report(run, progress=False)
    finally:
        run.chmod(0o755)
    message = _one_line(
        err, re.escape(f"cannot write the report under {run} (Permission denied); make it writable, or copy the run directory")
    )
    assert "--out" not in message


def test_a_writable_figures_folder_passes_the_check(run: Path) -> None:
    """The check refuses only what cannot be written: the report replaces figures/'s PNGs as before."""
    from robust_attn.reports import make_report

    (run / "figures").mkdir()
    (run / "figures" / "left-by-an-older-report.png").write_bytes(b"png")
    make_report(run, progress=False)
    pngs = [p.name for p in (run / "figures").glob("*.png")]
    assert pngs and "left-by-an-older-report.png" not in pngs and (run / "report.pdf").is_file()
