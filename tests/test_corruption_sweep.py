"""Common corruptions as a threat model of the sweep: columns of their own (corruption, severity,
no eps), resumable and independent of batches and ranks, cached so a second model does not make
the images again, and the published CIFAR-10-C files read when the data set is cifar10c."""

from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import robust_attn as ra
from robust_attn.corruptions import corrupt
from robust_attn.data.cifar_c import CIFAR10_CLASSES

EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"
CORR = {"name": "corruptions", "severities": [1, 5], "corruptions": ["gaussian_noise", "fog", "jpeg_compression"]}


def _spec(**extra: object) -> ra.SweepSpec:
    raw = {
        "models": ["plain_cnn:make", "attention_cnn:make"],
        "n": 16,
        "batch_size": 8,
        "attention_samples": 0,
        "diagnostic_samples": 0,
        "attacks": [{"name": "fgsm", "eps": ["0", "2/255"]}, CORR],
    }
    return ra.parse_spec({**raw, **extra})


@pytest.fixture(autouse=True)
def _examples(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLES))


def test_corruption_cells_have_their_own_columns(tmp_path: Path) -> None:
    run = ra.load_run(ra.run_sweep(_spec(), tmp_path / "run", progress=False))
    samples = pd.read_parquet(tmp_path / "run" / "samples.parquet")
    corr = samples[samples["threat_model"] == "corruption"]
    assert len(corr) == 2 * 3 * 2 * 16 and corr["eps"].isna().all() and corr["norm"].isna().all()
    assert set(corr["corruption"]) == {"gaussian_noise", "fog", "jpeg_compression"} and set(corr["severity"]) == {1, 5}
    assert (corr["mode"] == "independent").all() and samples.loc[samples["threat_model"] == "white-box", "severity"].isna().all()
    results = pd.read_csv(tmp_path / "run" / "results.csv")
    rows = results[results["threat_model"] == "corruption"]
    assert len(rows) == 2 * 3 * 2 and rows["eps"].isna().all() and rows["severity"].notna().all()
    oc = run.corruptions[("plain_cnn:make", "corruptions")]
    assert oc.conditions == [
        ("gaussian_noise", 1),
        ("gaussian_noise", 5),
        ("fog", 1),
        ("fog", 5),
        ("jpeg_compression", 1),
        ("jpeg_compression", 5),
    ]
    assert oc.correct.shape == (6, 16) and ("plain_cnn:make", "corruptions", "independent") not in run.cells


def test_outcomes_are_the_models_predictions_on_the_corrupted_images(tmp_path: Path) -> None:
    sys.path.insert(0, str(EXAMPLES))
    import plain_cnn  # type: ignore[import-not-found]

    run = ra.load_run(ra.run_sweep(_spec(), tmp_path / "run", progress=False))
    data = ra.load_dataset("builtin", "test", n=16)
    model = plain_cnn.make()
    for k, (name, severity) in enumerate(run.corruptions[("plain_cnn:make", "corruptions")].conditions):
        images = corrupt(data.images.numpy(), name, severity, seed=0, sample_ids=np.arange(16))
        with torch.no_grad():
            pred = model(torch.from_numpy(images).float() / 255).argmax(1).numpy()
        assert np.array_equal(run.corruptions[("plain_cnn:make", "corruptions")].pred[k], pred), (name, severity)


def test_batches_resume_and_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Batch size does not change a corrupted image; the second model and a resumed run make no image."""
    from robust_attn.corruptions.evaluation import CommonCorruptions as Corruptions

    a = pd.read_parquet(ra.run_sweep(_spec(), tmp_path / "a", progress=False) / "samples.parquet")
    monkeypatch.setattr(Corruptions, "corrupted", lambda *args: pytest.fail("a cached corruption was made again"))
    b = pd.read_parquet(ra.run_sweep(_spec(batch_size=8), tmp_path / "b", progress=False) / "samples.parquet")
    pd.testing.assert_frame_equal(a, b)
    monkeypatch.undo()
    c = pd.read_parquet(ra.run_sweep(_spec(batch_size=5), tmp_path / "c", progress=False) / "samples.parquet")
    key = ["model", "attack", "corruption", "severity", "sample"]
    pd.testing.assert_frame_equal(
        a.sort_values(key).reset_index(drop=True)[["pred", "correct"]], c.sort_values(key).reset_index(drop=True)[["pred", "correct"]]
    )
    from robust_attn.sweeps import runner

    monkeypatch.setattr(runner, "run_cell", lambda *args, **kw: pytest.fail("a finished cell ran again"))
    ra.run_sweep(_spec(), tmp_path / "a", progress=False)


def _write_cifar10(root: Path, n: int) -> np.ndarray:
    """The clean CIFAR-10 test set in torchvision's on-disk format (tiny), returns its labels."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    labels = (np.arange(n) * 3 % 10).tolist()
    for f in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]:
        with open(folder / f, "wb") as fh:
            pickle.dump({"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "labels": labels}, fh)
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({"label_names": list(CIFAR10_CLASSES)}, fh)
    return np.asarray(labels)


def _write_cifar10c(root: Path, labels: np.ndarray, corruptions: list[str]) -> dict[str, np.ndarray]:
    folder = root / "CIFAR-10-C"
    folder.mkdir()
    rng = np.random.default_rng(1)
    files = {}
    for name in corruptions:
        files[name] = rng.integers(0, 256, (5 * len(labels), 32, 32, 3), dtype=np.uint8)
        np.save(folder / f"{name}.npy", files[name])
    np.save(folder / "labels.npy", np.tile(labels, 5).astype(np.uint8))
    return files


def _cifar_model(tmp_path: Path) -> str:
    torch.manual_seed(0)
    model = ra.create_model("vgg", width=0.0625, layout="compact", dropout=0.0)
    path = tmp_path / "c10.safetensors"
    ra.save_checkpoint(path, model, {"dataset": "cifar10", "image_shape": [3, 32, 32], "classes": list(CIFAR10_CLASSES)})
    return str(path)


def test_cifar10c_reads_the_published_files(tmp_path: Path) -> None:
    """dataset = cifar10c: clean accuracy on the clean CIFAR-10 test set, each corruption cell on the
    published images of its severity block; a CIFAR-10 model is accepted for it."""
    labels = _write_cifar10(tmp_path / "data", 6)
    files = _write_cifar10c(tmp_path / "data", labels, ["fog", "gaussian_noise"])
    ckpt = _cifar_model(tmp_path)
    spec = ra.parse_spec(
        {
            "models": [ckpt],
            "dataset": "cifar10c",
            "data_dir": str(tmp_path / "data"),
            "verify": False,
            "n": 6,
            "attention_samples": 0,
            "diagnostic_samples": 0,
            "attacks": [{"name": "corruptions", "severities": [2, 4], "corruptions": ["fog", "gaussian_noise"]}],
        }
    )
    run = ra.load_run(ra.run_sweep(spec, tmp_path / "run", progress=False))
    model, _ = ra.load_model(ckpt)
    out = run.corruptions[(ckpt, "corruptions")]
    for k, (name, severity) in enumerate(out.conditions):
        block = files[name][(severity - 1) * 6 : severity * 6].transpose(0, 3, 1, 2)
        with torch.no_grad():
            pred = model(torch.from_numpy(np.ascontiguousarray(block)).float() / 255).argmax(1).numpy()
        assert np.array_equal(out.pred[k], pred), (name, severity)
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["dataset"]["name"] == "cifar10c"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"corruptions": ["gaussian_noize"]}, r"attacks\[1\]\.corruptions: unknown corruption 'gaussian_noize'; known: gaussian_noise"),
        ({"severities": [0, 3]}, r"attacks\[1\]\.severities: severities must be a non-empty list drawn from 1-5, got \[0, 3\]"),
        ({"severities": [6]}, r"attacks\[1\]\.severities: .*got \[6\]"),
        ({"eps": ["1/255"]}, r"attacks\[1\]\.eps: 'corruptions' has no eps"),
    ],
)
def test_bad_corruption_tables_name_the_field(change: dict, message: str) -> None:
    with pytest.raises(ra.RobustAttnError, match=message):
        _spec(attacks=[{"name": "fgsm", "eps": ["0"]}, {**CORR, **change}])


def test_cifar10c_without_its_files(tmp_path: Path) -> None:
    labels = _write_cifar10(tmp_path / "data", 6)
    spec = ra.parse_spec(
        {
            "models": [_cifar_model(tmp_path)],
            "dataset": "cifar10c",
            "data_dir": str(tmp_path / "data"),
            "verify": False,
            "n": 6,
            "attention_samples": 0,
            "diagnostic_samples": 0,
            "attacks": [CORR],
        }
    )
    with pytest.raises(
        ra.RobustAttnError, match=r"CIFAR-10-C folder '.*CIFAR-10-C' not found; download CIFAR-10-C.tar from https://zenodo"
    ):
        ra.run_sweep(spec, tmp_path / "run", progress=False)
    assert len(labels) == 6
