"""The run directory as a data product: its Parquet schema read by plain pandas, model references
that round-trip, format versions, model-data checks before any work, and log-friendly progress."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

import robust_attn as ra
from robust_attn.cli import main
from robust_attn.rundir import RunDirError, load_run
from robust_attn.rundir.schema import SAMPLE_COLUMNS, SEGMENTATION_COLUMNS
from robust_attn.sweeps import parse_spec, run_sweep

ROOT = Path(__file__).resolve().parents[1]


def _spec(models: list[str], **extra: object) -> dict:
    raw = {
        "name": "t",
        "models": models,
        "n": 30,
        "batch_size": 15,
        "attention_samples": 12,
        "attacks": [{"name": "fgsm", "eps": ["0", "4/255"]}, {"name": "pgd", "steps": 2, "eps": ["2/255", "4/255"]}],
    }
    raw.update(extra)
    return raw


@pytest.fixture(scope="module")
def odd_run(trained, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:  # type: ignore[no-untyped-def]
    """A sweep of a checkpoint whose path holds '|', ':' and spaces."""
    folder = tmp_path_factory.mktemp("odd")
    odd = folder / "we|ird: name v2.safetensors"
    shutil.copy(trained[1], odd)
    return run_sweep(parse_spec(_spec([str(odd)])), folder / "run", progress=False), str(odd)


def test_samples_table_schema_read_by_pandas(odd_run: tuple[Path, str]) -> None:
    run, ref = odd_run
    samples = pd.read_parquet(run / "samples.parquet")
    assert list(samples.columns) == [c.name for c in SAMPLE_COLUMNS]
    assert set(samples["model"]) == {ref}, "model references round-trip whatever characters they hold"
    assert len(samples) == (2 + 2) * 30
    assert str(samples["sample"].dtype) == "int32" and str(samples["label"].dtype) == "int16" and samples["correct"].dtype == bool
    assert samples["min_norm"].isna().all() and samples["fooled_by"].isna().all()  # columns the strong attacks fill
    per_eps = samples.groupby(["attack", "eps"])["correct"].mean()
    results = pd.read_csv(run / "results.csv").set_index(["attack", "eps"])["accuracy"]
    assert per_eps.round(6).to_dict() == results.to_dict()
    seg = pd.read_parquet(run / "segmentation.parquet")
    assert list(seg.columns) == [c.name for c in SEGMENTATION_COLUMNS]
    assert set(seg["method"]) == {"attention", "centred box"} and set(seg["stage"]) == {"l1", "l2", "l3", "mean", "-"}
    assert seg.groupby(["method", "stage", "eps"]).size().eq(12).all(), "one row per probed image"
    drift = pd.read_parquet(run / "attention_drift.parquet")
    assert (drift[drift["eps"] == 0]["one_minus_iou"] == 0).all() and drift["cosine"].between(-1e-6, 1 + 1e-6).all()


def test_reader_round_trips_and_refuses_other_versions(odd_run: tuple[Path, str], tmp_path: Path) -> None:
    run_dir, ref = odd_run
    run = load_run(run_dir)
    assert run.models == [ref] and run.cells[(ref, "fgsm", "worst-case")].correct.shape == (2, 30)
    assert set(run.examples[ref]) == {"images", "maps", "preds", "eps"} and run.examples[ref]["maps"].shape[1] == 3
    copy = tmp_path / "old"
    shutil.copytree(run_dir, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    (copy / "manifest.json").write_text(json.dumps({**manifest, "format_version": 1}))
    with pytest.raises(RunDirError, match="format version 1, but this robust-attn reads version 4; rerun its sweep"):
        load_run(copy)
    (copy / "manifest.json").write_text(json.dumps({**manifest, "format_version": 2}))
    with pytest.raises(RunDirError, match=f"format version 2, .*; convert it with `robust-attn upgrade {copy}`$"):
        load_run(copy)
    (copy / "manifest.json").write_text(json.dumps({**manifest, "format_version": 5}))
    with pytest.raises(RunDirError, match="format version 5, .*; read it with the newer robust-attn that wrote it"):
        load_run(copy)


def test_probe_is_a_resumable_unit(odd_run: tuple[Path, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A finished sweep run again does no work: not the attack cells, not the probe."""
    from robust_attn.sweeps import runner

    run_dir, ref = odd_run
    monkeypatch.setattr(runner, "run_probe", lambda *a: pytest.fail("the probe ran again"))
    monkeypatch.setattr(runner, "run_cell", lambda *a: pytest.fail("a cell ran again"))
    before = pd.read_parquet(run_dir / "segmentation.parquet")
    run_sweep(parse_spec(_spec([ref])), run_dir, progress=False)
    assert pd.read_parquet(run_dir / "segmentation.parquet").equals(before)


@pytest.mark.slow
def test_report_reads_a_copied_run_dir_without_models(odd_run: tuple[Path, str], tmp_path: Path) -> None:
    """Copied to a machine with an empty model cache, the run directory is reported in a fresh
    process that never imports torch, the zoo or an attack library."""
    copy = tmp_path / "copied run"
    shutil.copytree(odd_run[0], copy)
    (tmp_path / "empty-home").mkdir()
    code = (
        "import sys, json, robust_attn as ra\n"
        f"ra.make_report({str(copy)!r}, progress=False)\n"
        "print(json.dumps(sorted(m for m in ('torch', 'robust_attn.zoo', 'robust_attn.attacks', 'torchattacks', 'foolbox') if m in sys.modules)))\n"
    )
    env = {"ROBUST_ATTN_HOME": str(tmp_path / "empty-home"), "PATH": "/usr/bin:/bin", "MPLBACKEND": "Agg"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
    assert (copy / "report.pdf").stat().st_size > 50_000 and list((tmp_path / "empty-home").iterdir()) == []


def test_import_is_light_and_has_no_side_effects() -> None:
    code = (
        "import sys, json, matplotlib\n"
        "backend = dict.__getitem__(matplotlib.rcParams, 'backend')  # raw: resolving it would import pyplot\n"
        "import robust_attn as ra\n"
        "light = sorted(m for m in ('torch', 'matplotlib.pyplot', 'seaborn', 'pandas', 'torchattacks', 'foolbox', 'scipy') if m in sys.modules)\n"
        "ra.create_model('vgg', width=0.0625)\n"
        "model_only = sorted(m for m in ('matplotlib.pyplot', 'seaborn', 'pandas', 'torchattacks', 'foolbox') if m in sys.modules)\n"
        "print(json.dumps([light, model_only, dict.__getitem__(matplotlib.rcParams, 'backend') == backend]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(out.stdout) == [[], [], True]


def test_a_sweep_on_the_builtin_data_imports_no_plotting_and_no_torchvision() -> None:
    """What `robust-attn sweep` runs and prints on the built-in data needs neither torchvision
    (its import loads torch's compiler: about 3 s) nor the plotting libraries (about 1 s)."""
    code = (
        "import sys, json\n"
        "from robust_attn.sweeps import parse_spec, run_sweep\n"
        "from robust_attn.reports import terminal_summary\n"
        "import robust_attn as ra\n"
        "ra.load_dataset('builtin', 'test', n=8)\n"
        "print(json.dumps(sorted(m for m in ('torchvision', 'seaborn', 'matplotlib.pyplot') if m in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(out.stdout) == []


def test_report_leaves_plotting_state_alone(odd_run: tuple[Path, str]) -> None:
    import matplotlib

    before = dict(matplotlib.rcParams)
    ra.make_report(odd_run[0], progress=False)
    assert dict(matplotlib.rcParams) == before


def _mnist_checkpoint(path: Path) -> Path:
    torch.manual_seed(0)
    model = ra.create_model("vgg", in_channels=1, image_size=28, width=0.0625, layout="compact", dropout=0.0)
    ra.save_checkpoint(path, model, {"dataset": "mnist", "image_shape": [1, 28, 28], "classes": [str(i) for i in range(10)], "seed": 0})
    return path


def test_checkpoint_for_other_data_fails_before_any_work(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = _mnist_checkpoint(tmp_path / "mnist-vgg.safetensors")
    spec = tmp_path / "s.toml"
    spec.write_text(f'models = ["{ckpt}"]\nn = 20\n[[attacks]]\nname = "fgsm"\neps = ["0", "4/255"]\n')
    assert main(["sweep", str(spec), "--quiet", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "was trained on mnist (1x28x28 images, 10 classes)" in err
    assert "builtin (3x32x32 images, 10 classes)" in err and "set dataset = 'mnist'" in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "nn.Sequential(nn.Flatten(), nn.Linear(1 * 28 * 28, 10))",
            r"fails on the sweep's data, builtin \(3x32x32 images, 10 classes\): mat1 and mat2",
        ),
        ("nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 7))", r"returns \(4, 7\) for a batch of 4.*needs logits of shape \(4, 10\)"),
    ],
)
def test_import_spec_models_get_a_dry_forward_pass(
    body: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    module = f"user_mod_{abs(hash(body)) % 10**6}"  # a fresh module name per case: imports are cached
    (tmp_path / f"{module}.py").write_text(f"import torch.nn as nn\n\ndef make():\n    return {body}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = tmp_path / "s.toml"
    spec.write_text(f'models = ["{module}:make"]\nn = 20\n[[attacks]]\nname = "fgsm"\neps = ["0", "4/255"]\n')
    assert main(["sweep", str(spec), "--quiet", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"robust-attn: error: model '{module}:make'") and err.count("\n") == 1
    assert re.search(message, err), err
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_progress_in_a_log_is_one_line_per_cell(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Output to a file (not a terminal): no carriage returns, one line per cell with its rate."""
    spec = tmp_path / "s.toml"
    spec.write_text(f'models = ["{trained[1]}"]\nn = 30\nattention_samples = 0\n[[attacks]]\nname = "fgsm"\neps = ["0", "4/255"]\n')
    log = tmp_path / "log.txt"
    with open(log, "w") as f:
        subprocess.run(
            [sys.executable, "-m", "robust_attn", "sweep", str(spec), "--out", str(tmp_path / "run")],
            stdout=f,
            stderr=subprocess.STDOUT,
            check=True,
            timeout=300,
            cwd=ROOT,
        )
    text = log.read_text()
    assert "\r" not in text
    cell_lines = [line for line in text.splitlines() if "fgsm [worst-case]: 30/30 img in" in line]
    assert len(cell_lines) == 1 and cell_lines[0].endswith("img/s)")
