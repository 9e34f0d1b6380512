"""The CUDA path: every command on --device cuda, torchrun with nccl, and the opt-in bf16/fp16
precision. Skipped where no GPU is present (CI runs on CPUs); run on a GPU machine with
``python -m pytest tests/test_cuda.py``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

import robust_attn as ra
from robust_attn.cli import main
from robust_attn.sweeps import parse_spec, run_sweep

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
ROOT = Path(__file__).resolve().parents[1]


def _spec(ckpt: Path, **extra: object) -> dict:
    raw = {
        "name": "gpu",
        "models": [str(ckpt)],
        "n": 64,
        "batch_size": 32,
        "device": "cuda",
        "attention_samples": 16,
        "diagnostic_samples": 16,
        "attacks": [
            {"name": "fgsm", "eps": ["0", "4/255"]},
            {"name": "pgd", "steps": 3, "random_start": False, "eps": ["2/255"]},
            {"name": "apgd", "steps": 5, "eps": ["2/255"]},
            {"name": "fmn", "steps": 10, "eps": ["2/255"]},
        ],
    }
    raw.update(extra)
    return raw


def test_sweep_report_and_train_on_cuda(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run = run_sweep(parse_spec(_spec(trained[1])), tmp_path / "gpu", progress=False)
    cpu = run_sweep(parse_spec(_spec(trained[1], device="cpu")), tmp_path / "cpu", progress=False)
    gpu_acc, cpu_acc = pd.read_csv(run / "results.csv")["accuracy"], pd.read_csv(cpu / "results.csv")["accuracy"]
    assert (gpu_acc - cpu_acc).abs().max() <= 0.05, "cuDNN rounds differently from the CPU, but not by much"
    assert ra.make_report(run, progress=False).pdf.is_file()
    assert (
        main(
            [
                "train",
                "vgg",
                "--width",
                "0.0625",
                "--epochs",
                "1",
                "--train-size",
                "256",
                "--test-size",
                "64",
                "--device",
                "cuda",
                "--out",
                str(tmp_path / "ckpt"),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "sweep",
                str(ROOT / "attacks" / "fgsm.toml"),
                "--models",
                str(trained[1]),
                "-n",
                "32",
                "--device",
                "cuda",
                "--quiet",
                "--out",
                str(tmp_path / "cli"),
            ]
        )
        == 0
    )


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_reduced_precision_changes_few_outcomes(trained, test_batch, precision: str) -> None:  # type: ignore[no-untyped-def]
    model = trained[0].to("cuda")
    x, y = test_batch
    full = ra.create_attack("pgd", model, steps=5, random_start=False).sweep(x, y, [2 / 255, 4 / 255], mode="independent").correct
    low = (
        ra.create_attack("pgd", model, steps=5, random_start=False, precision=precision)
        .sweep(x, y, [2 / 255, 4 / 255], mode="independent")
        .correct
    )
    assert (full != low).float().mean() <= 0.05
    model.to("cpu")


def test_torchrun_with_nccl(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    spec = tmp_path / "g.toml"
    spec.write_text(
        f'models = ["{trained[1]}"]\nn = 64\nbatch_size = 16\ndevice = "cuda"\n[[attacks]]\nname = "apgd"\nsteps = 5\neps = ["2/255"]\n'
    )
    ranks = min(2, torch.cuda.device_count())
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        str(ranks),
        "--standalone",
        "-m",
        "robust_attn",
        "sweep",
        str(spec),
        "--out",
        str(tmp_path / "run"),
        "--quiet",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT, env=dict(os.environ))
    assert done.returncode == 0, done.stderr[-2000:]
    import json

    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["backend"] == ("nccl" if ranks > 1 else manifest["backend"]) and manifest["world_size"] == ranks
