"""torch.distributed (gloo on loopback, 2 ranks): a killed rank ends the job with a one-line error,
and the rerun resumes to exactly what one process writes; the workers option; DDP training runs."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import robust_attn as ra
from robust_attn.sweeps import parse_spec, run_sweep

pytestmark = pytest.mark.slow  # subprocesses and training: the full tier only

ROOT = Path(__file__).resolve().parents[1]
HOOKS = ROOT / "tests" / "hooks"  # sitecustomize.py: the fault-injection hook


def _spec_file(tmp_path: Path, ckpt: Path) -> Path:
    spec = tmp_path / "d.toml"
    spec.write_text(
        f'name = "d"\nmodels = ["{ckpt}"]\nn = 48\nbatch_size = 12\nattention_samples = 12\ndiagnostic_samples = 12\n'
        'modes = ["worst-case", "independent"]\n'
        '[[attacks]]\nname = "fgsm"\neps = ["0", "4/255"]\n'
        '[[attacks]]\nname = "pgd"\nsteps = 3\nrandom_start = true\neps = ["2/255", "8/255"]\n'
        '[[attacks]]\nname = "apgd"\nsteps = 5\neps = ["2/255"]\n'
    )
    return spec


def _torchrun(*args: str, env: dict[str, str] | None = None, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--standalone", "-m", "robust_attn", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env={**os.environ, **(env or {})})


def _results(run: Path) -> list[dict[str, str]]:
    """Every column but the wall time: pass counts are summed over the ranks, so they equal one process's."""
    with open(run / "results.csv") as f:
        return [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(f)]


def _samples(run: Path) -> pd.DataFrame:
    return pd.read_parquet(run / "samples.parquet")


@pytest.fixture(scope="module")
def one_process(trained, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("dist")
    spec = _spec_file(folder, trained[1])
    return spec, run_sweep(ra.load_spec(spec), folder / "one", progress=False)


def test_a_killed_rank_fails_the_job_in_one_line_and_the_rerun_resumes(one_process: tuple[Path, Path], tmp_path: Path) -> None:
    spec, one = one_process
    run = tmp_path / "killed"
    env = {"ROBUST_ATTN_FAULT": "1:5", "PYTHONPATH": os.pathsep.join([str(HOOKS), os.environ.get("PYTHONPATH", "")])}
    crashed = _torchrun("sweep", str(spec), "--out", str(run), "--quiet", env=env)
    assert crashed.returncode != 0
    ours = [line for line in crashed.stderr.splitlines() if line.startswith("robust-attn: error:")]
    # the survivor either notices the dead peer in a collective, or is stopped by torchrun first
    assert len(ours) == 1 and ours[0].startswith("robust-attn: error: rank 0/2: "), crashed.stderr[-2000:]
    assert "another rank" in ours[0] and "rerun the same command to resume" in ours[0]
    assert "failed (exitcode: 17) local_rank: 1" in crashed.stderr, "torchrun's report names the rank that died"
    finished = len(list((run / "cells").glob("*.json")))
    assert 1 <= finished < 6, "some cells were finished before the rank died, not all"
    again = _torchrun("sweep", str(spec), "--out", str(run), "--quiet")
    assert again.returncode == 0, again.stderr[-2000:]
    # two ranks (before and after the crash) write what one process writes
    assert _results(one) == _results(run)
    assert _samples(one).equals(_samples(run)), "every per-sample outcome, random starts included"
    for table in ("segmentation.parquet", "attention_drift.parquet"):  # rank 0 probes with 1 thread: rounding only
        pd.testing.assert_frame_equal(pd.read_parquet(one / table), pd.read_parquet(run / table), rtol=0, atol=1e-5)
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["world_size"] == 2 and manifest["backend"] == "gloo"
    assert again.stdout.count("wrote ") == 1, "only rank 0 reports"


def test_ddp_training_runs_and_writes_one_checkpoint(tmp_path: Path) -> None:
    done = _torchrun(
        "train", "vgg", "--width", "0.0625", "--epochs", "1", "--train-size", "256", "--test-size", "64", "--out", str(tmp_path)
    )
    assert done.returncode == 0, done.stderr[-2000:]
    _, meta = ra.load_checkpoint(tmp_path / "vgg.safetensors")  # loads: weights match the recorded architecture
    assert meta["ddp_world_size"] == 2 and meta["train_size"] == 256 and len(meta["train_result"]["history"]) == 1
    assert done.stdout.count("clean test accuracy") == 1, "only rank 0 reports"


def test_the_workers_option_is_a_front_for_local_ranks(one_process: tuple[Path, Path], tmp_path: Path) -> None:
    """workers = 2 splits batches over two 1-thread local ranks: every per-sample outcome and
    prediction (random starts included), and the summed pass counts, equal one process's."""
    spec, one = one_process
    two = run_sweep(ra.load_spec(spec).with_overrides(workers=2), tmp_path / "workers", progress=False)
    assert json.loads((two / "manifest.json").read_text())["world_size"] == 2
    assert _samples(one).equals(_samples(two))
    assert _results(one) == _results(two), "pass counts included: every rank's counters are summed"


def test_bad_input_fails_before_the_ranks_start(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """With workers = 2 the parent checks the models first: a bad one is one line, no ranks."""
    (tmp_path / "bad.safetensors").write_bytes(b"not a checkpoint")
    spec = parse_spec({"models": [str(tmp_path / "bad.safetensors")], "workers": 2, "attacks": [{"name": "fgsm", "eps": ["0"]}]})
    with pytest.raises(ValueError, match="corrupt or not a safetensors file"):
        run_sweep(spec, tmp_path / "run", progress=False)
