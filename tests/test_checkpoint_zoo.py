"""Checkpoints round-trip, refuse damage, and the zoo trains on demand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import robust_attn as ra
from robust_attn.checkpoint import METADATA_KEY, CheckpointError, load_checkpoint_with_extra
from robust_attn.errors import ModelError
from robust_attn.zoo import ZooEntry


def _tiny(name: str = "vgg-att2-pc") -> torch.nn.Module:
    torch.manual_seed(0)
    return ra.create_model(name, width=0.0625, layout="compact")


def test_round_trip_keeps_outputs_and_metadata(tmp_path: Path) -> None:
    model = _tiny().eval()
    path = tmp_path / "m.safetensors"
    meta = ra.save_checkpoint(path, model, {"clean_accuracy": 0.5}, extra={"momentum.0": torch.ones(3)})
    loaded, read = ra.load_checkpoint(path)
    x = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(loaded(x), model(x))
    assert read["model"] == "vgg-att2-pc" and read["model_kwargs"]["width"] == 0.0625
    assert read["weights_sha256"] == meta["weights_sha256"] and len(meta["weights_sha256"]) == 64
    _, _, extra = load_checkpoint_with_extra(path)
    assert torch.equal(extra["momentum.0"], torch.ones(3))


def test_corrupt_tampered_and_foreign_files_fail_clearly(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    ra.save_checkpoint(path, _tiny(), {})
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"<html>not a checkpoint</html>")
    with pytest.raises(CheckpointError, match="corrupt or not a safetensors file"):
        ra.load_checkpoint(garbage)
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match="corrupt"):
        ra.load_checkpoint(truncated)

    tensors = load_file(str(path))
    meta = ra.read_metadata(path)
    tensors["block_a.0.weight"] = tensors["block_a.0.weight"] + 1
    tampered = tmp_path / "tampered.safetensors"
    save_file(tensors, str(tampered), metadata={METADATA_KEY: json.dumps(meta)})
    with pytest.raises(CheckpointError, match="sha256"):
        ra.load_checkpoint(tampered)

    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(1)}, str(foreign))
    with pytest.raises(CheckpointError, match="no robust_attn metadata"):
        ra.load_checkpoint(foreign)

    unknown = tmp_path / "unknown.safetensors"
    save_file(load_file(str(path)), str(unknown), metadata={METADATA_KEY: json.dumps({**meta, "model": "resnet9000"})})
    with pytest.raises(CheckpointError, match="unknown architecture 'resnet9000'"):
        ra.load_checkpoint(unknown)

    mismatch = tmp_path / "mismatch.safetensors"
    save_file(
        load_file(str(path)),
        str(mismatch),
        metadata={METADATA_KEY: json.dumps({**meta, "model_kwargs": {"width": 0.125, "layout": "compact"}})},
    )
    with pytest.raises(CheckpointError, match="does not fit vgg-att2-pc"):
        ra.load_checkpoint(mismatch)
    with pytest.raises(CheckpointError, match="does not exist"):
        ra.load_checkpoint(tmp_path / "missing.safetensors")


def test_dataparallel_prefix_is_stripped(tmp_path: Path) -> None:
    model = _tiny("vgg")
    path = tmp_path / "m.safetensors"
    meta = ra.save_checkpoint(path, model, {})
    tensors = {f"module.{k}": v for k, v in load_file(str(path)).items()}
    dp = tmp_path / "dp.safetensors"
    save_file(tensors, str(dp), metadata={METADATA_KEY: json.dumps(meta)})
    loaded, _ = ra.load_checkpoint(dp)
    x = torch.rand(1, 3, 32, 32)
    torch.testing.assert_close(loaded(x), model.eval()(x))


def test_zoo_trains_on_demand_and_caches(monkeypatch: pytest.MonkeyPatch, isolated_home: Path) -> None:
    from robust_attn import zoo

    entry = ZooEntry("builtin/tiny", "vgg-att2-pc", {"layout": "compact", "width": 0.0625, "dropout": 0.0}, epochs=1, train_size=256)
    monkeypatch.setitem(zoo.ZOO, entry.name, entry)
    with pytest.raises(ModelError, match="robust-attn zoo train builtin/tiny"):
        ra.load_model("builtin/tiny", "cpu", train_missing=False)
    _model, card = ra.load_model("builtin/tiny", "cpu", progress=False)
    assert card.recorded["zoo_name"] == "builtin/tiny" and card.clean_accuracy is not None and 0 <= card.clean_accuracy <= 1
    assert card.source == "zoo" and card.architecture == "vgg-att2-pc" and card.attention and card.training_regime == "clean"
    assert card.checkpoint is not None and Path(card.checkpoint).is_relative_to(isolated_home)
    assert card.checkpoint_sha256 is not None and len(card.checkpoint_sha256) == 64
    assert card.budget.epochs == 1 and card.budget.train_size == 256
    mtime = Path(card.checkpoint).stat().st_mtime_ns
    _, again = ra.load_model("builtin/tiny", "cpu", progress=False)
    assert again.checkpoint is not None and Path(again.checkpoint).stat().st_mtime_ns == mtime  # cached, not retrained
    assert again.checkpoint_sha256 == card.checkpoint_sha256
    with pytest.raises(ValueError, match="unknown model 'builtin/nope'"):
        ra.load_model("builtin/nope")


@pytest.mark.slow
def test_parallel_zoo_training_matches_a_serial_run_with_the_same_threads(monkeypatch: pytest.MonkeyPatch, isolated_home: Path) -> None:
    """Two entries trained in two 1-thread worker processes (on the data set the parent made
    once and shared) give the weights that a serial 1-thread run gives, and that one entry
    trained on its own, making its own data, gives: the worker split changes speed, not results."""
    from robust_attn import zoo

    entries = [
        ZooEntry(f"builtin/tiny-{m}", m, {"layout": "compact", "width": 0.0625, "dropout": 0.0}, epochs=1, train_size=128)
        for m in ("vgg", "vgg-att2-dp")
    ]
    for e in entries:
        monkeypatch.setitem(zoo.ZOO, e.name, e)
    names = [e.name for e in entries]
    parallel = ra.train_entries(names, device="cpu", progress=False, workers=2)
    assert list(parallel) == names and all(0 <= m["clean_accuracy"] <= 1 for m in parallel.values())
    monkeypatch.setenv("ROBUST_ATTN_HOME", str(isolated_home / "serial"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        serial = ra.train_entries(names, device="cpu", progress=False, workers=1)
        monkeypatch.setenv("ROBUST_ATTN_HOME", str(isolated_home / "alone"))
        alone = ra.train_entry(names[1], device="cpu", progress=False)
    finally:
        torch.set_num_threads(threads)
    assert [m["weights_sha256"] for m in serial.values()] == [m["weights_sha256"] for m in parallel.values()]
    assert alone["weights_sha256"] == parallel[names[1]]["weights_sha256"]
    monkeypatch.setenv("ROBUST_ATTN_HOME", str(isolated_home / "serial"))
    cached = ra.train_entries(names, device="cpu", progress=False)  # nothing left to train
    assert [m["weights_sha256"] for m in cached.values()] == [m["weights_sha256"] for m in serial.values()]


def test_workers_start_the_longest_jobs_first() -> None:
    from robust_attn.zoo import longest_first

    entries = [
        ZooEntry(f"e{i}", "vgg", epochs=ep, train_size=n)
        for i, (ep, n) in enumerate([(3, 20_000), (5, 20_000), (3, 20_000), (1, None), (5, 10_000)])
    ]
    assert [e.name for e in longest_first(entries)] == ["e3", "e1", "e0", "e2", "e4"]  # None = whole data set


def test_zoo_list_shows_epochs_and_cache_state(isolated_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from robust_attn.cli import main

    assert main(["zoo", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:8] == ["name", "model", "data", "epochs", "recipe", "shipped", "seeds", "cached"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert set(rows) == set(ra.ZOO)
    for name in ra.QUICK_ZOO:  # shipped with the package at seeds 0-2; nothing in the (empty) cache
        assert rows[name][3] == str(ra.ZOO[name].epochs) and rows[name][4:7] == [ra.ZOO[name].recipe, "0,1,2", "-"]


def test_quick_zoo_entries_share_one_training_budget() -> None:
    """Compared models differ in architecture and seed only: one recipe, epoch count and data set."""
    budgets = {(ra.ZOO[n].recipe, ra.ZOO[n].epochs, ra.ZOO[n].train_size, ra.ZOO[n].data_seed) for n in ra.QUICK_ZOO}
    assert len(budgets) == 1 and len(ra.QUICK_ZOO) == 4


def test_seeds_are_separate_cached_entries(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """NAME@seed=N trains the same entry with another training seed into its own file: same data,
    other weights; seed 0 is the plain name; zoo list shows the cached seeds."""
    from robust_attn import zoo
    from robust_attn.cli import main
    from robust_attn.zoo import checkpoint_path, get_entry, split_seed

    entry = ZooEntry("builtin/tiny", "vgg", {"layout": "compact", "width": 0.0625, "dropout": 0.0}, epochs=1, train_size=128)
    monkeypatch.setitem(zoo.ZOO, entry.name, entry)
    assert main(["zoo", "train", "builtin/tiny", "--seeds", "0", "2", "--workers", "1"]) == 0
    first, second = ra.read_metadata(checkpoint_path("builtin/tiny")), ra.read_metadata(checkpoint_path("builtin/tiny@seed=2"))
    assert first["seed"] == 0 and second["seed"] == 2 and first["weights_sha256"] != second["weights_sha256"]
    assert first["zoo_entry"]["data_seed"] == second["zoo_entry"]["data_seed"] == 0
    assert get_entry("builtin/tiny@seed=0") == entry and split_seed("builtin/tiny@seed=2") == ("builtin/tiny", 2)
    capsys.readouterr()
    main(["zoo", "list"])
    row = next(line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("builtin/tiny "))
    assert "0,2" in row  # the cached seeds column (the quick column is empty for this entry)
    with pytest.raises(ValueError, match="bad training seed in 'builtin/tiny@seed=x'"):
        get_entry("builtin/tiny@seed=x")


def test_spec_seeds_expand_zoo_models_only() -> None:
    from robust_attn.sweeps import SpecError, parse_spec

    spec = parse_spec(
        {"models": ["builtin/vgg", "builtin/vgg-att3-pc@seed=5"], "seeds": [0, 1, 2], "attacks": [{"name": "fgsm", "eps": ["0"]}]}
    )
    assert spec.models == ("builtin/vgg", "builtin/vgg@seed=1", "builtin/vgg@seed=2", "builtin/vgg-att3-pc@seed=5")
    with pytest.raises(SpecError, match="seeds: must be a list of non-negative integers"):
        parse_spec({"models": ["builtin/vgg"], "seeds": [-1], "attacks": [{"name": "fgsm", "eps": ["0"]}]})
