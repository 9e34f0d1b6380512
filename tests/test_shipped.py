"""Shipped zoo weights: a zoo name loads the file shipped with the package (verified against its
provenance record) before the cache and before training; an edited, truncated or unrecorded
shipped file, an unknown --retrain, and a cached file that shadows a shipped one with other
weights are one line each; training never writes a shipped file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import robust_attn as ra
from robust_attn import shipped, zoo
from robust_attn.cli import main
from robust_attn.errors import CheckpointError
from robust_attn.zoo import ZooEntry

TINY = ZooEntry("builtin/tiny-ship", "vgg", {"layout": "compact", "width": 0.0625, "dropout": 0.0}, epochs=1, train_size=128)


@pytest.fixture
def shipped_tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated_home: Path) -> Path:
    """The tiny entry trained into one cache, shipped into a temporary weights folder, and the cache
    emptied: what a fresh install sees."""
    monkeypatch.setitem(zoo.ZOO, TINY.name, TINY)
    monkeypatch.setattr(shipped, "WEIGHTS", tmp_path / "weights")
    zoo.train_entry(TINY.name, device="cpu", progress=False)
    assert main(["zoo", "ship", TINY.name, "--command", "robust-attn zoo train builtin/tiny-ship"]) == 0
    zoo.checkpoint_path(TINY.name).unlink()
    return zoo.shipped_file(TINY.name)


def test_a_shipped_entry_loads_without_training(
    shipped_tiny: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    record = json.loads(shipped_tiny.with_suffix(".json").read_text())
    assert record["command"] == "robust-attn zoo train builtin/tiny-ship" and record["cpu"] and record["torch"]
    assert record["zoo_entry"] == TINY.config() and 0 <= record["clean_accuracy"] <= 1 and len(record["sha256"]) == 64
    monkeypatch.setattr(zoo, "train_entry", lambda *a, **k: pytest.fail("a shipped entry was trained"))
    _, card = ra.load_model(TINY.name, "cpu")
    assert card.checkpoint == str(shipped_tiny) and card.weights_sha256 == record["weights_sha256"]
    capsys.readouterr()
    assert main(["zoo", "list"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith(TINY.name + " "))
    assert " 0 " in row and f"{record['clean_accuracy']:.2%}" in row, row


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (
            lambda p: p.write_bytes(p.read_bytes()[:-50]),
            r"do not match their provenance record \(\d+ bytes, expected \d+: edited or truncated\)",
        ),
        (lambda p: p.write_bytes(p.read_bytes()[:-1] + b"\x01"), r"do not match their provenance record \(their sha256 differs"),
        (lambda p: p.with_suffix(".json").write_text("{}"), r"provenance record .* lacks its size and sha256"),
        (lambda p: p.unlink(), r"are missing beside their record"),
    ],
    ids=["truncated", "edited", "record without checksum", "file gone"],
)
def test_a_damaged_shipped_file_is_one_line_and_never_replaced(damage: object, message: str, shipped_tiny: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    damage(shipped_tiny)  # type: ignore[operator]
    monkeypatch.setattr(zoo, "train_entry", lambda *a, **k: pytest.fail("training replaced a shipped file"))
    with pytest.raises(CheckpointError, match=message) as err:
        ra.load_model(TINY.name, "cpu")
    assert "\n" not in str(err.value) and "restore it (git checkout -- robust_attn/weights" in str(err.value)


def test_retrain_goes_to_the_cache_and_a_shadow_is_refused(shipped_tiny: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``zoo train --retrain`` trains into the cache, leaves the shipped file as it was, and says how
    the two compare; then loading the name refuses to choose between two sets of weights silently."""
    before = shipped_tiny.read_bytes()
    assert main(["zoo", "train", TINY.name]) == 2, "a shipped entry needs --retrain"
    assert "shipped with the package, nothing to train; --retrain" in capsys.readouterr().err
    assert main(["zoo", "train", TINY.name, "--retrain", "--workers", "1", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "(shipped " in out and "weights identical to the shipped ones" in out, "training is deterministic on one CPU"
    assert shipped_tiny.read_bytes() == before and zoo.checkpoint_path(TINY.name).is_file()
    ra.load_model(TINY.name, "cpu")  # the same weights: no shadow
    meta = zoo.read_metadata(zoo.checkpoint_path(TINY.name))
    model, _ = ra.load_model(zoo.checkpoint_path(TINY.name), "cpu")
    ra.save_checkpoint(zoo.checkpoint_path(TINY.name), _perturbed(model), meta)
    with pytest.raises(CheckpointError, match=r"the cache holds other weights .* than the shipped ones; delete the cached file"):
        ra.load_model(TINY.name, "cpu")
    assert main(["zoo", "train", "builtin/no-such-entry", "--retrain"]) == 2


def _perturbed(model: object) -> object:
    import torch

    with torch.no_grad():
        next(model.parameters()).add_(0.01)  # type: ignore[attr-defined]
    return model


REPORTS = Path(__file__).resolve().parents[1] / "reports"


def _studies() -> list[Path]:
    return sorted(p.parent for p in REPORTS.glob("*/manifest.json"))


@pytest.mark.parametrize("study", _studies(), ids=lambda p: p.name)
def test_every_committed_study_rests_on_the_shipped_weights(study: Path) -> None:
    """Every zoo model a committed study evaluated is a shipped file with the same weights (sha256 of
    the tensors), so the study reruns on the same networks on any machine."""
    from robust_attn.rundir import manifest

    models = manifest.read(study / "manifest.json")["models"]
    records = dict(shipped.shipped_entries())
    zoo_models = {name: meta for name, meta in models.items() if zoo.is_zoo_ref(name)}
    assert zoo_models, f"{study.name}: no zoo model"
    differing = sorted(n for n, meta in zoo_models.items() if n not in records or records[n]["weights_sha256"] != meta["weights_sha256"])
    assert not differing, f"{study.name}: {differing} are not the shipped weights; rerun the study or ship its weights"
