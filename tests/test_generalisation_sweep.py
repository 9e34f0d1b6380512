"""The generalisation probe as a unit of the sweep: linear probes on each model's frozen features,
on unseen data sets made once per sweep, stored per sample in generalisation.parquet and compared
at the architecture level (the paper's claim 'features generalise better')."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import robust_attn as ra
from robust_attn.reports.threats import generalisation_architecture, generalisation_comparison

EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    mp = pytest.MonkeyPatch()
    mp.syspath_prepend(str(EXAMPLES))
    spec = ra.parse_spec(
        {
            "models": ["plain_cnn:make", "attention_cnn:make"],
            "n": 8,
            "attention_samples": 0,
            "diagnostic_samples": 0,
            "attacks": [{"name": "fgsm", "eps": ["0"]}],
            "generalisation": ["shapes-unseen-classes", "mnist"],
            "generalisation_train": 120,
            "generalisation_test": 60,
        }
    )
    root = ra.run_sweep(spec, tmp_path_factory.mktemp("gen") / "run", progress=False)
    yield root
    mp.undo()


def test_probe_rows_per_model_and_sample(run_dir: Path) -> None:
    rows = pd.read_parquet(run_dir / "generalisation.parquet")
    assert set(rows["model"]) == {"plain_cnn:make", "attention_cnn:make"} and set(rows["dataset"]) == {"shapes-unseen-classes"}
    assert rows.groupby("model").size().eq(60).all() and (rows["correct"] == (rows["pred"] == rows["label"])).all()
    run = ra.load_run(run_dir)
    assert "mnist" in run.manifest["generalisation_skipped"], "an absent torchvision set is skipped with its reason"
    assert (generalisation_architecture(run)["seeds"] == 1).all()
    claims = generalisation_comparison(run)
    assert list(claims["claim"]) == ["features generalise better (shapes-unseen-classes)"] and claims["verdict"].eq("instances only").all()


def test_a_finished_probe_is_not_run_again(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from robust_attn import probes

    monkeypatch.syspath_prepend(str(EXAMPLES))
    monkeypatch.setattr(probes, "generalisation_rows", lambda *a: pytest.fail("probed again"))
    spec = ra.parse_spec(
        {
            "models": ["plain_cnn:make", "attention_cnn:make"],
            "n": 8,
            "attention_samples": 0,
            "diagnostic_samples": 0,
            "attacks": [{"name": "fgsm", "eps": ["0"]}],
            "generalisation": ["shapes-unseen-classes", "mnist"],
            "generalisation_train": 120,
            "generalisation_test": 60,
        }
    )
    ra.run_sweep(spec, run_dir, progress=False)


def test_unknown_unseen_sets_name_the_field() -> None:
    with pytest.raises(ra.RobustAttnError, match=r"generalisation: must be a list drawn from shapes-unseen-classes"):
        ra.parse_spec({"models": ["builtin/vgg"], "attacks": [{"name": "fgsm", "eps": ["0"]}], "generalisation": ["imagenet"]})
