"""Other people's models in a sweep, by name and offline: a RobustBench model built from
RobustBench's own definitions with weights where RobustBench keeps them, and a timm architecture
with a local checkpoint, each swept on CIFAR-10 files written in torchvision's format (n = 8);
a CIFAR-100 RobustBench model on CIFAR-10 data is refused before any work."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from test_corruption_sweep import _write_cifar10
from test_hub import SMALL_REF, TIMM_NAME, _timm_model, write_fake_robustbench_dir

import robust_attn as ra

ATTACKS = [{"name": "fgsm", "eps": ["0", "2/255"]}]


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _spec(tmp_path: Path, models: list[object], **extra: object) -> ra.SweepSpec:
    return ra.parse_spec(
        {
            "models": models,
            "dataset": "cifar10",
            "data_dir": str(tmp_path / "data"),
            "verify": False,
            "n": 8,
            "attention_samples": 0,
            "diagnostic_samples": 4,
            "attacks": ATTACKS,
            **extra,
        }
    )


def test_a_robustbench_model_is_swept_by_name(tmp_path: Path) -> None:
    _write_cifar10(tmp_path / "data", 8)
    name = SMALL_REF.split("/")[-1]
    write_fake_robustbench_dir(tmp_path / "rb")
    spec = _spec(tmp_path, [{"ref": f"robustbench:{name}", "threat_model": "corruptions"}], model_dir=str(tmp_path / "rb"))
    assert spec.models == (SMALL_REF,), "the model table names the exact entry"
    run = ra.load_run(ra.run_sweep(spec, tmp_path / "run", progress=False))
    info = run.model_info(SMALL_REF)
    assert info["architecture"] == name and info["training_regime"] == "corruption-robust" and info["weights_sha256"]
    assert set(run.results["attack"]) == {"fgsm"} and (run.results["n"] == 8).all()


def test_a_timm_model_with_a_local_checkpoint_is_swept(tmp_path: Path) -> None:
    _write_cifar10(tmp_path / "data", 8)
    ckpt = tmp_path / "weights.pth"
    torch.save(_timm_model(10, seed=0).state_dict(), ckpt)
    ref = f"timm:{TIMM_NAME}"
    spec = _spec(tmp_path, [{"ref": ref, "checkpoint": str(ckpt), "num_classes": 10}])
    assert spec.model_options[ref] == {"checkpoint": str(ckpt), "num_classes": 10}
    run = ra.load_run(ra.run_sweep(spec, tmp_path / "run", progress=False))
    assert run.model_info(ref)["architecture"] == TIMM_NAME and len(run.clean_pred[ref]) == 8


def test_a_timm_model_whose_classes_do_not_fit_is_refused(tmp_path: Path) -> None:
    _write_cifar10(tmp_path / "data", 8)
    ckpt = tmp_path / "weights.pth"
    torch.save(_timm_model(7, seed=0).state_dict(), ckpt)
    with pytest.raises(  # read from the checkpoint's header when the spec is read, before any model is built
        ra.RobustAttnError, match=r"classifier has 7 outputs but the sweep's data cifar10 has 10 classes; set num_classes = 10"
    ):
        _spec(tmp_path, [{"ref": f"timm:{TIMM_NAME}", "checkpoint": str(ckpt)}])
    assert not (tmp_path / "run").exists()


def test_a_cifar100_model_on_cifar10_data_is_refused(tmp_path: Path) -> None:
    _write_cifar10(tmp_path / "data", 8)
    with pytest.raises(ra.RobustAttnError, match=r"was trained on cifar100 .*100 classes.* but the sweep's data is cifar10"):
        ra.run_sweep(_spec(tmp_path, ["robustbench:cifar100/Linf/Gowal2020Uncovering"]), tmp_path / "run", progress=False)


def test_an_unknown_robustbench_name_lists_close_matches() -> None:
    with pytest.raises(
        ra.RobustAttnError, match=r"models: .*RobustBench does not know 'Carmon2019Unlabelled' .*close matches: Carmon2019Unlabeled"
    ):
        ra.parse_spec({"models": ["robustbench:Carmon2019Unlabelled"], "attacks": ATTACKS})
