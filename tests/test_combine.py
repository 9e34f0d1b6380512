"""``robust-attn compare``: a new model swept with a study's settings into its own run directory is
compared with the study without rerunning it; the combined run holds exactly the union of the
runs' rows, and runs that cannot be compared on the same samples are refused in one line."""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import robust_attn as ra
from robust_attn.commands_runs import add_parsers
from robust_attn.errors import RunDirError, UsageError
from robust_attn.reports.tables import architectures, paired_comparisons
from robust_attn.rundir import FORMAT_VERSION
from robust_attn.rundir.combine import combine_runs
from robust_attn.rundir.integrity import file_record

CONSTRUCTED = Path(__file__).parent / "constructed"  # memory_models.py: models with known answers

M = "memory_models"
FGSM: dict[str, Any] = {"name": "fgsm", "eps": ["0", "2/255", "4/255", "8/255"]}
PGD: dict[str, Any] = {"name": "pgd", "steps": 3, "eps": ["2/255", "8/255"]}


def _sweep(root: Path, name: str, models: list[str], attacks: list[dict[str, Any]], **settings: object) -> Path:
    raw = {
        "name": name,
        "models": [f"{M}:{m}" for m in models],
        "n": 24,
        "batch_size": 24,
        "attention_samples": 0,
        "diagnostic_samples": 0,
        "attacks": attacks,
        **settings,
    }
    return ra.run_sweep(ra.parse_spec(raw), root / name, progress=False)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """The reference study; a new model (and the constant model again, with one more attack) swept
    with the study's settings; and runs that differ from the study in one setting each."""
    root = tmp_path_factory.mktemp("combine")
    mp = pytest.MonkeyPatch()
    mp.syspath_prepend(str(CONSTRUCTED))
    out = {
        "study": _sweep(root, "study", ["memory0", "memory1", "const"], [FGSM, PGD]),
        "new": _sweep(root, "new", ["steady", "const"], [FGSM, PGD, {"name": "apgd", "steps": 3, "eps": ["8/255"]}]),
        "split": _sweep(root, "split", ["const"], [FGSM], split="train"),
        "n": _sweep(root, "n", ["const"], [FGSM], n=20),
        "grid": _sweep(root, "grid", ["const"], [{**PGD, "eps": ["2/255", "4/255"]}]),
        "params": _sweep(root, "params", ["const"], [{**PGD, "random_start": False}]),
    }
    yield out
    mp.undo()


def _compare(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    add_parsers(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


def _key(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    return df.sort_values(columns, kind="stable").reset_index(drop=True)


def test_a_new_model_is_compared_with_a_study_without_rerunning_it(runs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "both"
    assert _compare(["compare", str(runs["study"]), str(runs["new"]), "--out", str(out), "--quiet"]) == 0
    study, new, both = ra.load_run(runs["study"]), ra.load_run(runs["new"]), ra.load_run(out)
    const = f"{M}:const"
    # the union of the sources' rows: the constant model (in both runs, same predictions) is kept once,
    # from the study, and gains the attack only the new run had
    from_new = ~((new.results["model"] == const) & new.results["attack"].isin(study.attacks))
    expected = pd.concat([study.results, new.results[from_new]], ignore_index=True)
    keys = ["model", "attack", "mode", "eps"]
    pd.testing.assert_frame_equal(_key(both.results, keys), _key(expected, keys), check_dtype=False)
    rows = ["model", "attack", "mode", "eps", "sample"]
    keep = ~((new.samples["model"] == const) & new.samples["attack"].isin(study.attacks))
    pd.testing.assert_frame_equal(_key(both.samples, rows), _key(pd.concat([study.samples, new.samples[keep]]), rows), check_dtype=False)
    assert both.models == [f"{M}:memory0", f"{M}:memory1", const, f"{M}:steady"]
    assert architectures(both) == {"memory": [f"{M}:memory0", f"{M}:memory1"], "constant": [const], "memory-steady": [f"{M}:steady"]}

    m = both.manifest
    assert m["format_version"] == FORMAT_VERSION and m["complete"] and m["dataset"]["n"] == 24
    assert [(s["path"], s["manifest_sha256"]) for s in m["combined_from"]] == [
        (str(runs[k].resolve()), hashlib.sha256((runs[k] / "manifest.json").read_bytes()).hexdigest()) for k in ("study", "new")
    ]
    assert m["partial_attacks"] == {"apgd-3": [const, f"{M}:steady"]}
    assert m["duplicate_models"][const]["kept"] == str(runs["study"])
    assert m["duplicate_models"][const]["added"] == [f"apgd-3 from {runs['new']}"]
    assert any(n.startswith("attack apgd-3 was run on 2 of 4 models") for n in m["combined_notes"])

    pairs = paired_comparisons(both)
    cross = pairs[(pairs["model_a"] == f"{M}:memory0") & (pairs["model_b"] == f"{M}:steady") & (pairs["attack"] == "pgd-3")]
    assert len(cross) == 2, "paired tests run across the two sweeps, on the shared samples"
    assert (out / "report.pdf").is_file() and "memory-steady" in (out / "report.md").read_text()


def _one_line(err: pytest.ExceptionInfo[BaseException], *parts: str) -> None:
    text = str(err.value)
    assert "\n" not in text and all(p in text for p in parts), text


@pytest.mark.parametrize(
    ("other", "parts"),
    [
        ("split", ["runs differ in their data set", "test split", "train split"]),
        ("n", ["runs differ in their samples", "24 samples (ids 0-23)", "20 samples (ids 0-19)"]),
        ("grid", ["attack 'pgd-3' has different eps grids", "(2/255, 8/255)", "(2/255, 4/255)"]),
        ("params", ["attack 'pgd-3' has different parameters", "random_start=(default)", "random_start=False"]),
    ],
)
def test_runs_that_cannot_share_samples_or_attacks_are_refused(runs: dict[str, Path], tmp_path: Path, other: str, parts: list[str]) -> None:
    with pytest.raises(RunDirError) as err:
        combine_runs([runs["study"], runs[other]], tmp_path / "out")
    _one_line(err, str(runs["study"]), str(runs[other]), *parts)
    assert not (tmp_path / "out").exists() and not list(tmp_path.iterdir()), "nothing is written"


def _copy(src: Path, dst: Path, **models: dict[str, Any]) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("cells"))
    manifest = json.loads((dst / "manifest.json").read_text())
    for model, fields in models.items():
        manifest["models"][model].update(fields)
    (dst / "manifest.json").write_text(json.dumps(manifest))
    return dst


def test_another_data_set_is_refused(runs: dict[str, Path], tmp_path: Path) -> None:
    other = _copy(runs["new"], tmp_path / "cifar")
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["dataset"]["name"] = "cifar10"
    (other / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(RunDirError) as err:
        combine_runs([runs["study"], other], tmp_path / "out")
    _one_line(err, "runs differ in their data set", "builtin test split", "cifar10 test split")


def test_one_reference_with_two_sets_of_weights_is_refused(runs: dict[str, Path], tmp_path: Path) -> None:
    const = f"{M}:const"
    a = _copy(runs["study"], tmp_path / "a", **{const: {"weights_sha256": "a" * 64}})
    b = _copy(runs["new"], tmp_path / "b", **{const: {"weights_sha256": "b" * 64}})
    with pytest.raises(RunDirError) as err:
        combine_runs([a, b], tmp_path / "out")
    _one_line(err, f"model '{const}' has different weights", "weights aaaaaaaaaaaa", "weights bbbbbbbbbbbb")
    same = _copy(runs["new"], tmp_path / "same", **{const: {"weights_sha256": "a" * 64}})
    out = combine_runs([a, same], tmp_path / "out")
    assert "the same weights (sha256 aaaaaaaaaaaa)" in json.loads((out / "manifest.json").read_text())["duplicate_models"][const]["why"]


def test_unrecorded_weights_are_told_apart_by_clean_predictions(runs: dict[str, Path], tmp_path: Path) -> None:
    const = f"{M}:const"
    other = _copy(runs["new"], tmp_path / "other")
    samples = pd.read_parquet(other / "samples.parquet")
    samples.loc[(samples["model"] == const) & (samples["sample"] == 3), "clean_pred"] = 0
    samples.to_parquet(other / "samples.parquet")
    with pytest.raises(RunDirError) as err:
        combine_runs([runs["study"], other], tmp_path / "out")
    _one_line(err, "samples.parquet differ from the record in manifest.json")  # an edited table is found first
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["files"]["samples.parquet"] = file_record(other / "samples.parquet")  # as if another sweep had written it so
    (other / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(RunDirError) as err:
        combine_runs([runs["study"], other], tmp_path / "out")
    _one_line(err, f"model '{const}' makes different clean predictions", "(1 of 24 samples)")


def test_no_run_or_a_folder_that_is_no_run_is_refused(runs: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(UsageError) as err:
        combine_runs([], tmp_path / "out")
    _one_line(err, "compare needs at least one run directory")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunDirError) as err2:
        combine_runs([runs["study"], tmp_path / "empty"], tmp_path / "out")
    _one_line(err2, f"{tmp_path / 'empty'} has no manifest.json")
    with pytest.raises(UsageError) as err3:
        combine_runs([runs["study"], runs["study"]], tmp_path / "out")
    _one_line(err3, "is given twice")
    assert not (tmp_path / "out").exists()


def test_an_existing_folder_is_kept_unless_it_is_a_combined_run_and_forced(runs: dict[str, Path], tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    with pytest.raises(RunDirError) as err:
        combine_runs([runs["study"], runs["new"]], tmp_path / "taken", force=True)
    _one_line(err, "was not written by robust-attn compare")
    out = combine_runs([runs["study"]], tmp_path / "out")
    with pytest.raises(RunDirError):
        combine_runs([runs["study"], runs["new"]], out)
    combine_runs([runs["study"], runs["new"]], out, force=True)
    assert len(ra.load_run(out).models) == 4 and sorted(p.name for p in tmp_path.iterdir()) == ["out", "taken"]


def test_a_failure_half_way_leaves_nothing(runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import robust_attn.rundir.combine as combine

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(combine, "results_table", broken)
    with pytest.raises(RunDirError) as err:
        combine_runs([runs["study"], runs["new"]], tmp_path / "out")
    _one_line(err, "could not write the combined run", "the disk is full", "nothing was written")
    assert list(tmp_path.iterdir()) == [], "the temporary folder is removed"


def test_the_committed_compare_study_takes_a_new_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's use case: one new model swept with attacks/compare.toml, then compared with the
    committed reports/compare (12 models) without rerunning it; the study's rows come through unchanged."""
    from robust_attn.cli import main

    root = Path(__file__).resolve().parents[1]
    monkeypatch.syspath_prepend(str(CONSTRUCTED))
    new, out = tmp_path / "mine", tmp_path / "compare-plus-mine"
    spec = str(root / "attacks" / "compare.toml")
    assert main(["sweep", spec, "--models", f"{M}:const", "--out", str(new), "--quiet"]) == 0
    compare = ["compare", str(root / "reports" / "compare"), str(new), "--out", str(out), "--quiet", "--no-attention"]
    assert _compare(compare) == 0  # the attention pages are tested in test_reports
    study, both = ra.load_run(root / "reports" / "compare"), ra.load_run(out)
    assert both.models == [*study.models, f"{M}:const"]
    keys = ["model", "attack", "mode", "eps"]
    mine = both.results[both.results["model"].isin(study.models)]
    pd.testing.assert_frame_equal(_key(mine, keys), _key(study.results, keys), check_dtype=False)
    const = both.results[(both.results["model"] == f"{M}:const") & (both.results["attack"] != "clean")]
    share = float((study.labels == 5).mean())  # the constant model's accuracy at every eps
    assert np.allclose(const["accuracy"], share), const[["attack", "eps", "accuracy"]]
    assert (out / "report.pdf").is_file() and "constant" in (out / "report.md").read_text()
