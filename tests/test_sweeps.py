"""Sweep specs, the resumable runner and the run-directory files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import FIXTURE_SEED

from robust_attn.cli import main
from robust_attn.rundir import load_run
from robust_attn.stats import wilson_interval
from robust_attn.sweeps import SpecError, load_spec, parse_spec, run_sweep
from robust_attn.sweeps import runner as runner_mod

ROOT = Path(__file__).resolve().parents[1]


def _spec(ckpt: Path, **extra: object) -> dict:
    raw = {
        "name": "t",
        "models": [str(ckpt)],
        "n": 60,
        "batch_size": 25,
        "modes": ["worst-case", "independent"],
        "attacks": [{"name": "fgsm", "eps": ["0", "2/255", "8/255"]}, {"name": "pgd", "steps": 3, "eps": ["2/255", "8/255"]}],
    }
    raw.update(extra)
    return raw


def _rows(path: Path, drop_seconds: bool = True, drop_counts: bool = False) -> list[dict[str, str]]:
    """results.csv rows; timings (and, for worker processes, which count in their own copies, pass counts) dropped."""
    dropped = ({"seconds"} if drop_seconds else set()) | ({"forwards_per_sample", "backwards_per_sample"} if drop_counts else set())
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return [{k: v for k, v in r.items() if k not in dropped} for r in rows]


def test_shipped_specs_parse() -> None:
    for name in ("fgsm", "pgd", "quickstart", "autoattack", "autoattack-l2", "compare", "adversarial", "adversarial-autoattack"):
        spec = load_spec(ROOT / "attacks" / f"{name}.toml")
        assert spec.name == name and spec.attacks
    quick = load_spec(ROOT / "attacks" / "quickstart.toml")
    assert quick.models == (
        "builtin/vgg",
        "builtin/vgg@seed=1",
        "builtin/vgg@seed=2",
        "builtin/vgg-att3-pc",
        "builtin/vgg-att3-pc@seed=1",
        "builtin/vgg-att3-pc@seed=2",
    )
    fgsm, pgd, apgd = quick.attacks
    assert [round(e * 255) for e in fgsm.eps] == [0, 1, 2, 3, 4, 6, 8, 12, 16]
    assert [round(e * 255) for e in pgd.eps] == [2, 4, 8] and pgd.params["steps"] == 10
    assert apgd.name == "apgd" and apgd.params == {"steps": 100}
    assert [a.name for a in load_spec(ROOT / "attacks" / "autoattack.toml").attacks] == ["autoattack", "fmn"]
    assert load_spec(ROOT / "attacks" / "autoattack-l2.toml").attacks[0].eps == (0.1, 0.25, 0.5, 1.0)
    adversarial = load_spec(ROOT / "attacks" / "adversarial.toml")
    assert adversarial.models[0] == "builtin/vgg-at" and len(adversarial.models) == 6, "two -at entries x 3 seeds"
    assert [a.label or a.name for a in adversarial.attacks] == ["fgsm", "pgd", "apgd", "apgd-dlr-100", "fmn"]
    packaged = ROOT / "robust_attn" / "specs" / "quickstart.toml"  # what `robust-attn quickstart` runs outside a checkout
    assert packaged.read_text() == (ROOT / "attacks" / "quickstart.toml").read_text()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"colour": 1}, "colour: unknown key"),
        ({"models": ["builtin/nope"]}, "models: unknown model 'builtin/nope'"),
        ({"attacks": [{"name": "cw", "eps": ["1/255"]}]}, r"attacks\[0\].name: unknown attack 'cw'"),
        ({"attacks": [{"name": "fgsm", "eps": ["-1/255"]}]}, r"attacks\[0\].eps: eps must be a finite number >= 0"),
        ({"attacks": [{"name": "fgsm", "eps": ["2"]}]}, r"attacks\[0\].eps: eps '2' exceeds 1"),
        ({"attacks": [{"name": "fgsm", "eps": []}]}, r"attacks\[0\].eps: must be a non-empty list"),
        ({"attacks": [{"name": "pgd", "eps": ["1/255"], "steps": 0}]}, r"attacks\[0\].steps: steps must be an integer >= 1, got 0"),
        (
            {"attacks": [{"name": "fgsm", "eps": ["0"], "sigma": 1}]},
            r"attacks\[0\].sigma: attack 'fgsm' \(native\) takes no parameter 'sigma'; it takes: targeted \(and the options",
        ),
        (
            {"attacks": [{"name": "fgsm", "eps": ["0"], "steps": 3}]},
            r"attacks\[0\].steps: attack 'fgsm' \(native\) takes no parameter 'steps'",
        ),
        (
            {"attacks": [{"name": "apgd", "eps": ["1/255"], "loss": "dlr", "seed": 3}]},
            r"attacks\[0\].seed: seed is a spec-level field",
        ),
        ({"attacks": [{"name": "apgd-t", "eps": ["1/255"], "targets": 0}]}, r"attacks\[0\].targets: targets must be an integer >= 1"),
        ({"n": 0}, "n: must be a positive integer"),
        ({"modes": ["best-case"]}, "modes: must be a non-empty list"),
        ({"dataset": "imagenet21k"}, "dataset: unknown data set"),
        ({"fold_bn": "yes"}, "fold_bn: must be true or false"),
        ({"workers": 0}, "workers: must be a positive integer"),
    ],
)
def test_bad_specs_name_the_field(trained, change: dict, field: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SpecError, match=field):
        parse_spec(_spec(trained[1], **change))


def test_bad_spec_from_cli_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "bad.toml"
    spec.write_text('models = ["builtin/vgg"]\n[[attacks]]\nname = "fgsm"\neps = ["-1"]\n')
    assert main(["sweep", str(spec), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("robust-attn: error: attacks[0].eps") and "\n" not in err
    assert not (tmp_path / "run").exists(), "a bad spec must fail before any work"


def test_sweep_writes_files_and_is_deterministic(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    spec = parse_spec(_spec(trained[1]))
    run = run_sweep(spec, tmp_path / "a", progress=False)
    rows = _rows(run / "results.csv", drop_seconds=False)
    assert len(rows) == 2 * (3 + 2)  # modes x (fgsm eps + pgd eps)
    assert set(rows[0]) >= {
        "model",
        "architecture",
        "train_seed",
        "attack",
        "backend",
        "norm",
        "params",
        "eps",
        "eps_label",
        "n",
        "correct",
        "accuracy",
        "ci_low",
        "ci_high",
        "seconds",
        "forwards_per_sample",
        "backwards_per_sample",
    }
    for r in rows:
        low, high = wilson_interval(int(r["correct"]), int(r["n"]))
        assert float(r["ci_low"]) == pytest.approx(low, abs=1e-6) and float(r["ci_high"]) == pytest.approx(high, abs=1e-6)
        assert float(r["ci_low"]) <= float(r["accuracy"]) <= float(r["ci_high"])
        assert r["architecture"] == "vgg-att3-pc" and r["train_seed"] == str(FIXTURE_SEED), "the fixture's training seed"
    fgsm_wc = [r for r in rows if r["attack"] == "fgsm" and r["mode"] == "worst-case"]
    assert [r["eps_label"] for r in fgsm_wc] == ["0/255", "2/255", "8/255"]
    # FGSM worst-case: one forward+backward per image, then forwards for the survivors only
    assert float(fgsm_wc[0]["backwards_per_sample"]) == 1.0 and 1.0 < float(fgsm_wc[0]["forwards_per_sample"]) <= 3.0
    samples = pd.read_parquet(run / "samples.parquet")  # plain pandas + pyarrow, no robust_attn reader
    assert len(samples) == 2 * (3 + 2) * 60
    cell = samples[(samples["attack"] == "fgsm") & (samples["mode"] == "worst-case")]
    assert sorted(cell["sample"].unique()) == list(range(60)) and cell["correct"].dtype == bool
    assert cell.groupby("eps")["correct"].sum().tolist() == [int(r["correct"]) for r in fgsm_wc]
    assert (cell["correct"] == (cell["pred"] == cell["label"])).all()
    manifest = json.loads((run / "manifest.json").read_text())
    assert (
        manifest["format_version"] == 4
        and manifest["complete"]
        and manifest["environment"]["torch_threads"] >= 1
        and manifest["environment"]["cpu"]
    )
    record = manifest["models"][str(trained[1])]
    assert len(record["checkpoint_sha256"]) == 64 and manifest["versions"]["torch"]
    assert record["model_name"] == "vgg-att3-pc" and 0.5 < record["checkpoint_clean_accuracy"] <= 1
    assert isinstance(record["train_epochs"], int) and record["train_epochs"] >= 1 and record["train_size"] > 0
    again = run_sweep(spec, tmp_path / "b", progress=False)
    assert _rows(run / "results.csv") == _rows(again / "results.csv")
    assert pd.read_parquet(again / "samples.parquet").equals(samples)


def test_retrained_identical_weights_give_identical_results(trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """Cells are keyed on the weights, not the file: a checkpoint written again with the same
    weights and other metadata (a fresh zoo cache records other training times) replays the
    same PGD random starts, so results.csv matches to the digit."""
    from robust_attn.checkpoint import file_sha256, load_checkpoint, save_checkpoint

    model, meta = load_checkpoint(trained[1], "cpu")
    for d, seconds in (("a", 1.0), ("b", 2.0)):
        (tmp_path / d).mkdir()
        save_checkpoint(tmp_path / d / "m.safetensors", model, {**meta, "train_result": {"seconds": seconds}})
    assert file_sha256(tmp_path / "a" / "m.safetensors") != file_sha256(tmp_path / "b" / "m.safetensors")
    raw = _spec(Path("m.safetensors"), modes=["independent"], attacks=[{"name": "pgd", "steps": 2, "eps": ["4/255"], "random_start": True}])
    results, cells = [], []
    for d in ("a", "b"):
        monkeypatch.chdir(tmp_path / d)
        run = run_sweep(parse_spec(raw), tmp_path / d / "run", progress=False)
        results.append(_rows(run / "results.csv"))
        cells.append(sorted(p.name for p in (run / "cells").iterdir()))
    assert cells[0] == cells[1]  # same cell hashes, hence the same per-batch seeds
    assert results[0] == results[1]


def test_resume_redoes_only_unfinished_cells(trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    spec = parse_spec(_spec(trained[1]))
    reference = run_sweep(spec, tmp_path / "ref", progress=False)
    calls: list[str] = []
    real = runner_mod.run_cell

    def crash_on_third(attack, data, cell, *rest):  # type: ignore[no-untyped-def]
        calls.append(cell.slug)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(attack, data, cell, *rest)

    monkeypatch.setattr(runner_mod, "run_cell", crash_on_third)
    with pytest.raises(KeyboardInterrupt, match=r"stopped: 2 of 6 units are finished and saved in .*cells \(2 by this run\); no tables"):
        run_sweep(spec, tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "results.csv").exists(), "tables are written when every unit is done"
    partial = load_run(tmp_path / "run")  # read from the finished units, the rest named
    assert len(partial.results) == 3 + 3 and len(partial.missing) == 4  # two finished fgsm cells; two pgd cells and two probes to go
    assert not list((tmp_path / "run").rglob("*.tmp")), "no half-written files"
    calls.clear()
    monkeypatch.setattr(runner_mod, "run_cell", lambda *a: (calls.append(a[2].slug), real(*a))[1])
    run_sweep(spec, tmp_path / "run", progress=False)
    assert len(calls) == 2, "only the two unfinished pgd cells run again"
    assert _rows(tmp_path / "run" / "results.csv") == _rows(reference / "results.csv")
    calls.clear()
    run_sweep(spec, tmp_path / "run", progress=False, force=True)
    assert len(calls) == 4


def test_cli_sweep_with_overrides(trained, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    spec = tmp_path / "s.toml"
    spec.write_text(f'name = "s"\nmodels = ["{trained[1]}"]\nn = 500\n[[attacks]]\nname = "fgsm"\neps = ["0", "4/255"]\n')
    assert main(["sweep", str(spec), "-n", "40", "--independent", "--quiet", "--out", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "fgsm (independent) accuracy at eps:" in out and "4/255" in out
    rows = _rows(tmp_path / "run" / "results.csv")
    assert {r["n"] for r in rows} == {"40"} and {r["mode"] for r in rows} == {"independent"}
    assert main(["sweep", str(spec), "-n", "40", "--independent", "--fold-bn", "--quiet", "--out", str(tmp_path / "folded")]) == 0
    assert json.loads((tmp_path / "folded" / "manifest.json").read_text())["spec"]["fold_bn"] is True
    folded = _rows(tmp_path / "folded" / "results.csv")
    assert [abs(int(a["correct"]) - int(b["correct"])) <= 1 for a, b in zip(rows, folded)] == [True, True]


def test_save_examples_keeps_adversarial_images(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    spec = parse_spec(_spec(trained[1], save_examples=3, modes=["worst-case"], attacks=[{"name": "fgsm", "eps": ["0", "8/255"]}]))
    run = run_sweep(spec, tmp_path / "run", progress=False)
    (path,) = (run / "examples").glob("*.npz")
    z = np.load(path)
    assert z["adversarial"].shape == (2, 3, 3, 32, 32) and z["clean"].shape == (3, 3, 32, 32)
    delta = np.abs(z["adversarial"][1].astype(np.float32) - z["clean"].astype(np.float32)).max()
    assert 0 < delta <= 8 / 255 + 1e-3  # float16 storage
    assert np.array_equal(z["adversarial"][0], z["clean"])


def test_any_module_by_import_spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """`package.module:factory` models run through the CLI like zoo models; a bad one fails
    before any work with a one-line error."""
    (tmp_path / "user_models.py").write_text(
        "import torch.nn as nn\n\n"
        "def linear():\n"
        "    import torch\n"
        "    torch.manual_seed(0)\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = tmp_path / "s.toml"
    spec.write_text('models = ["user_models:linear"]\nn = 30\n[[attacks]]\nname = "fgsm"\neps = ["0", "8/255"]\n')
    assert main(["sweep", str(spec), "--quiet", "--out", str(tmp_path / "run")]) == 0
    rows = _rows(tmp_path / "run" / "results.csv")
    assert [r["model"] for r in rows] == ["user_models:linear"] * 2 and rows[0]["n"] == "30"
    assert int(rows[1]["correct"]) <= int(rows[0]["correct"])
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["models"]["user_models:linear"]["model_name"] == "user_models:linear"
    capsys.readouterr()
    assert main(["sweep", str(spec), "--models", "user_models:nope", "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("robust-attn: error: models: module 'user_models' has no 'nope' for model 'user_models:nope'")
        and err.count("\n") == 1
    )
    assert not (tmp_path / "bad").exists()
