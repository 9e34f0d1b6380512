"""Every cache entry is verified on read (zoo checkpoints, hub conversions, corrupted images).

A damaged or unreadable zoo checkpoint or hub conversion is one line naming the file and the fix,
found before anything trains or any attack runs, and the file is left as it was; a damaged
corrupted-image file is remade with a printed note. Nothing here trains a network: the trainer is
replaced by a function that fails the test if it is called, or by one that writes a checkpoint.
"""

from __future__ import annotations

import builtins
import errno
import hashlib
import json
import os
import re
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

import robust_attn as ra
from robust_attn import verified, zoo
from robust_attn.checkpoint import CHECKPOINT, verify_checkpoint
from robust_attn.cli import main
from robust_attn.corruptions import corrupt
from robust_attn.errors import CheckpointError, ModelError, UsageError
from robust_attn.sweeps import corrupted
from robust_attn.training import TrainConfig, TrainResult, check_epochs, get_recipe, resume_path, train_model
from robust_attn.zoo import ZooEntry, cached_metadata, checkpoint_path, train_entries

SMALL = {"layout": "compact", "width": 0.0625, "dropout": 0.0}
EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"


# -- helpers ---------------------------------------------------------------------------------------
def _register(monkeypatch: pytest.MonkeyPatch, name: str = "builtin/tiny-cache", **kw: Any) -> ZooEntry:
    entry = ZooEntry(name, "vgg", dict(SMALL), epochs=1, train_size=64, **kw)
    monkeypatch.setitem(zoo.ZOO, entry.name, entry)
    return entry


def _cache(entry: ZooEntry, config: dict[str, Any] | None = None) -> Path:
    """A cached checkpoint of ``entry`` as its training would write it (random weights, no training)."""
    torch.manual_seed(0)
    model = ra.create_model(entry.model, num_classes=10, **entry.model_kwargs)
    meta = {
        "dataset": "builtin",
        "image_shape": [3, 32, 32],
        "classes": [str(i) for i in range(10)],
        "clean_accuracy": 0.5,
        "zoo_entry": config if config is not None else entry.config(),
        "zoo_name": entry.name,
    }
    path = checkpoint_path(entry)
    ra.save_checkpoint(path, model, meta)
    return path


@pytest.fixture
def no_training(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any training (or the data it would load) fails the test."""

    def fail(*args: Any, **kwargs: Any) -> Any:
        pytest.fail("a model was trained (or its training data loaded)")

    monkeypatch.setattr(zoo, "train_model", fail)
    monkeypatch.setattr(zoo, "entry_data", fail)


@pytest.fixture
def fake_training(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Training replaced by writing a checkpoint of random weights where the run would; returns the
    labels of the runs."""
    runs: list[str] = []

    def fake_data(entry: ZooEntry, data_dir: object = None) -> tuple[Any, Any]:
        data = ra.load_dataset("builtin", "test", n=8)
        return data, data

    def fake_train(model: torch.nn.Module, train: Any, test: Any, recipe: Any, config: TrainConfig) -> Any:
        runs.append(config.label)
        ra.save_checkpoint(
            config.out,
            model,
            {
                "dataset": "builtin",
                "image_shape": [3, 32, 32],
                "classes": list(train.classes),  # type: ignore[arg-type]
                "clean_accuracy": 0.25,
                **config.metadata,
            },
        )
        return TrainResult(0.25, 1, 0.0, 0.0)

    monkeypatch.setattr(zoo, "entry_data", fake_data)
    monkeypatch.setattr(zoo, "train_model", fake_train)
    return runs


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def refuse_reading(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    """Make ``path`` unreadable to this process: mode 0000 for a normal user; as root, where
    permissions do not bind, robust-attn's open of it is refused as the kernel would refuse it."""
    if os.geteuid() != 0:
        path.chmod(0o000)
        return
    path.chmod(0o600)
    real = builtins.open

    def refuse(file: Any, *args: Any, **kwargs: Any) -> Any:
        if Path(str(file)) == path:
            raise PermissionError(errno.EACCES, "Permission denied", str(file))
        return real(file, *args, **kwargs)

    for module in (verified, corrupted):
        monkeypatch.setattr(module, "open", refuse, raising=False)


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("robust-attn: error: "), err
    return lines[0]


# -- zoo checkpoints -------------------------------------------------------------------------------
def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-100])


def _append(path: Path) -> None:
    path.write_bytes(path.read_bytes() + b"\0" * 16)


def _flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def _zero_the_weights(path: Path) -> None:
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    path.write_bytes(data[: 8 + n] + bytes(len(data) - 8 - n))


def _html(path: Path) -> None:
    path.write_bytes(b"<!DOCTYPE html><html><body>quota exceeded</body></html>")


def _foreign(path: Path) -> None:
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(path))


def _folder(path: Path) -> None:
    path.unlink()
    path.mkdir()


DAMAGE: dict[str, tuple[Callable[[Path], None], str]] = {
    "zero bytes": (_empty, r"is empty \(0 bytes"),
    "truncated": (_truncate, r"is truncated or corrupt \([\d,]+ bytes, its header describes [\d,]+\)"),
    "bytes appended": (_append, r"is longer than its header says or corrupt"),
    "a weight edited": (_flip_last_byte, r"is damaged: its weights fail their sha256 check"),
    "weights zeroed": (_zero_the_weights, r"is damaged: its weights fail their sha256 check"),
    "an HTML page": (_html, r"is corrupt or not a safetensors file"),
    "another program's safetensors": (_foreign, r"is not written by robust-attn \(it has no robust_attn metadata\)"),
    "a folder in its place": (_folder, r"is not a file"),
}


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_a_damaged_zoo_checkpoint_is_one_line_and_kept(kind: str, monkeypatch: pytest.MonkeyPatch, no_training: None) -> None:
    """Each kind of damage: one line naming the file, what is wrong and the fix, from every way
    in (train_entries, load_model, cached_metadata); nothing trains and the file is left as it was."""
    entry = _register(monkeypatch)
    path = _cache(entry)
    damage, why = DAMAGE[kind]
    damage(path)
    before = _digest(path) if path.is_file() else None
    expected = rf"^zoo model builtin/tiny-cache: cached checkpoint '{re.escape(str(path))}' {why}.*; retrain it with `robust-attn zoo train builtin/tiny-cache --retrain`, or delete the file$"
    for call in (lambda: train_entries([entry.name]), lambda: ra.load_model(entry.name, "cpu"), lambda: cached_metadata(entry.name)):
        with pytest.raises(CheckpointError) as err:
            call()
        assert re.search(expected, str(err.value)) and "\n" not in str(err.value), str(err.value)
    assert (_digest(path) if path.is_file() else None) == before, "the damaged file was not replaced"


def test_listings_report_each_cache_file_without_stopping(monkeypatch: pytest.MonkeyPatch) -> None:
    """``cache_state`` / ``seed_states`` (for ``zoo list``): one bad file is reported, the others still listed."""
    from robust_attn.zoo import cache_state, seed_states, with_seed

    entry = _register(monkeypatch)
    assert cache_state(entry.name) == "missing" and seed_states(entry.name) == {}
    _cache(entry)
    _cache(zoo.get_entry(with_seed(entry.name, 2))).write_bytes(b"")
    _cache(zoo.get_entry(with_seed(entry.name, 3)), {**entry.config(), "seed": 3, "epochs": 8})
    states = seed_states(entry.name)
    assert states[0] == "cached" and states[3] == "stale" and states[2].startswith("damaged: empty (0 bytes") and list(states) == [0, 2, 3]


def test_zoo_train_names_the_damaged_file_and_exits_2(
    monkeypatch: pytest.MonkeyPatch, no_training: None, capsys: pytest.CaptureFixture[str]
) -> None:
    entry = _register(monkeypatch)
    path = _cache(entry)
    path.write_bytes(b"")
    assert main(["zoo", "train", entry.name]) == 2
    line = _one_error_line(capsys)
    assert f"cached checkpoint '{path}' is empty (0 bytes" in line and "zoo train builtin/tiny-cache --retrain" in line
    assert path.stat().st_size == 0


def test_an_unreadable_zoo_checkpoint_names_its_owner_and_mode(monkeypatch: pytest.MonkeyPatch, no_training: None) -> None:
    entry = _register(monkeypatch)
    path = _cache(entry)
    before = _digest(path)
    refuse_reading(monkeypatch, path)
    mode = "0000" if os.geteuid() != 0 else "0600"
    with pytest.raises(
        CheckpointError,
        match=rf"cached checkpoint '.*' cannot be read \(Permission denied: owned by .*\(uid {os.geteuid()}\), "
        rf"mode {mode}\); ask its owner to make it readable \(chmod a\+r\), or set ROBUST_ATTN_HOME",
    ):
        train_entries([entry.name])
    path.chmod(0o644)
    monkeypatch.undo()
    assert _digest(path) == before


def test_a_sweep_checks_every_cached_model_before_training_or_attacking(
    monkeypatch: pytest.MonkeyPatch, no_training: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The damaged model is the second of three, the first is missing (it would train for minutes)
    and the third is fine: the sweep stops in its preflight, before training the first or
    attacking anything, and writes no cell."""
    from robust_attn.sweeps import runner

    missing, damaged, fine = (_register(monkeypatch, f"builtin/tiny-{n}") for n in ("missing", "damaged", "fine"))
    _cache(fine)
    path = _cache(damaged)
    _truncate(path)
    monkeypatch.setattr(runner, "run_cell", lambda *a, **k: pytest.fail("an attack ran"))
    spec = tmp_path / "spec.toml"
    models = ", ".join(f'"{e.name}"' for e in (missing, damaged, fine))
    spec.write_text(f'models = [{models}]\nn = 8\nattention_samples = 0\ndiagnostic_samples = 0\n[[attacks]]\nname = "fgsm"\neps = ["0"]\n')
    assert main(["sweep", str(spec), "--quiet", "--out", str(tmp_path / "run")]) == 2
    line = _one_error_line(capsys)
    assert "zoo model builtin/tiny-damaged: cached checkpoint" in line and "is truncated or corrupt" in line
    assert not checkpoint_path(missing).exists() and not list((tmp_path / "run").glob("cells/*.json"))


def test_force_replaces_a_damaged_checkpoint_on_the_users_word(monkeypatch: pytest.MonkeyPatch, fake_training: list[str]) -> None:
    entry = _register(monkeypatch)
    path = _cache(entry)
    path.write_bytes(b"")
    meta = train_entries([entry.name], force=True, progress=False, workers=1)[entry.name]
    assert fake_training == [entry.name] and verify_checkpoint(path)["weights_sha256"] == meta["weights_sha256"]


def test_a_checkpoint_of_another_configuration_is_retrained_with_a_note(
    monkeypatch: pytest.MonkeyPatch, fake_training: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    entry = _register(monkeypatch)
    path = _cache(entry, {**entry.config(), "epochs": 8})
    with pytest.raises(
        ModelError, match="was trained with another configuration of its entry; run: robust-attn zoo train builtin/tiny-cache"
    ):
        ra.load_model(entry.name, "cpu", train_missing=False)
    train_entries([entry.name], progress=False, workers=1)
    assert fake_training == [entry.name]
    out = capsys.readouterr().out
    assert (
        f"note: zoo model builtin/tiny-cache: the cached checkpoint {path} was trained with another configuration (epochs 8 -> 1); " in out
    )
    assert cached_metadata(entry.name) is not None


def test_a_damaged_resumable_state_is_found_before_anything_trains(monkeypatch: pytest.MonkeyPatch, no_training: None) -> None:
    first, second = _register(monkeypatch, "builtin/tiny-a"), _register(monkeypatch, "builtin/tiny-b")
    resume = resume_path(checkpoint_path(second))
    resume.parent.mkdir(parents=True, exist_ok=True)
    resume.write_bytes(b"partial")
    with pytest.raises(
        CheckpointError,
        match=r"zoo model builtin/tiny-b: resumable state of an unfinished training run '.*' is corrupt or not "
        r"a safetensors file .*; delete it to train from the start",
    ):
        train_entries([first.name, second.name])
    assert resume.read_bytes() == b"partial"


def test_an_unwritable_cache_folder_is_found_before_anything_trains(monkeypatch: pytest.MonkeyPatch, no_training: None) -> None:
    entry = _register(monkeypatch)
    folder = checkpoint_path(entry).parent
    folder.mkdir(parents=True)
    if os.geteuid() != 0:
        folder.chmod(0o555)
    else:
        monkeypatch.setattr(
            verified.tempfile, "mkstemp", lambda *a, **k: (_ for _ in ()).throw(PermissionError(errno.EACCES, "Permission denied"))
        )
    try:
        with pytest.raises(
            CheckpointError,
            match=r"cannot write zoo model builtin/tiny-cache: its checkpoint '.*' \(Permission denied at .*\); "
            r"make that folder writable, or set ROBUST_ATTN_HOME",
        ):
            train_entries([entry.name], force=True)
    finally:
        folder.chmod(0o755)


def test_checkpoints_written_before_the_record_grew_still_verify_and_are_not_rewritten() -> None:
    """The committed fixture was written before ``extra_sha256`` existed: its weights and structure
    are verified, and reading it changes no byte (files are never rewritten on read)."""
    from constructed.small_att3 import CHECKPOINT as SMALL_ATT3

    before = _digest(SMALL_ATT3)
    meta = verify_checkpoint(SMALL_ATT3)
    assert len(meta["weights_sha256"]) == 64 and "extra_sha256" not in meta
    ra.load_checkpoint(SMALL_ATT3)
    assert _digest(SMALL_ATT3) == before


def _flip_tensor(path: Path, name: str) -> None:
    """Flip the first byte of tensor ``name``'s data, found through the file's header."""
    data = bytearray(path.read_bytes())
    (n,) = struct.unpack("<Q", data[:8])
    start = 8 + n + json.loads(data[8 : 8 + n])[name]["data_offsets"][0]
    data[start] ^= 0xFF
    path.write_bytes(bytes(data))


def test_extra_tensors_are_verified_too(tmp_path: Path) -> None:
    path = tmp_path / "m.resume.safetensors"
    torch.manual_seed(0)
    meta = ra.save_checkpoint(path, ra.create_model("vgg", **SMALL), {}, extra={"momentum.0": torch.ones(64)})
    assert len(meta["extra_sha256"]) == 64
    verify_checkpoint(path)
    _flip_tensor(path, "extra.momentum.0")
    with pytest.raises(CheckpointError, match="is damaged: its extra tensors fail their sha256 check"):
        verify_checkpoint(path)


def test_a_full_check_is_remembered_until_the_file_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "m.safetensors"
    torch.manual_seed(0)
    ra.save_checkpoint(path, ra.create_model("vgg", **SMALL), {})
    hashed: list[int] = []
    real = verified.tensors_sha256

    def counting(tensors: Any) -> str:
        hashed.append(1)
        return real(tensors)

    monkeypatch.setattr(verified, "tensors_sha256", counting)
    verify_checkpoint(path)
    verify_checkpoint(path)
    assert len(hashed) == 2, "a file written in the last two seconds is hashed on every check (its times may not tick yet)"
    old = time.time_ns() - 60_000_000_000
    os.utime(path, ns=(old, old))
    verify_checkpoint(path)
    verify_checkpoint(path)
    assert len(hashed) == 3, "an older file is hashed once"
    _flip_last_byte(path)
    os.utime(path, ns=(old + 1, old + 1))
    with pytest.raises(CheckpointError, match="sha256"):
        verify_checkpoint(path)


def test_a_cache_error_crosses_processes_whole(tmp_path: Path) -> None:
    """Ranks send errors to each other pickled: the one line and its parts survive."""
    import pickle

    path = tmp_path / "m.safetensors"
    path.write_bytes(b"")
    with pytest.raises(verified.EntryError) as err:
        verify_checkpoint(path)
    again = pickle.loads(pickle.dumps(err.value))
    assert (str(again), again.path, again.why, again.unreadable) == (str(err.value), path, err.value.why, False)
    assert isinstance(again, CheckpointError)


def test_a_user_checkpoint_keeps_its_own_wording(tmp_path: Path) -> None:
    """Checkpoints the user names (not the zoo's) say 'delete it and retrain', as before."""
    path = tmp_path / "m.safetensors"
    path.write_bytes(b"")
    with pytest.raises(CheckpointError, match=rf"^checkpoint '{re.escape(str(path))}' is empty \(0 bytes.*\); delete it and retrain$"):
        ra.load_checkpoint(path)
    assert CHECKPOINT.fix == "delete it and retrain"


# -- training refuses no epochs --------------------------------------------------------------------
class _Untouchable:
    """A data set whose every use fails the test: the check must come before any data is used."""

    def __getattr__(self, name: str) -> Any:
        pytest.fail(f"the data set was used ({name}) before the epochs were checked")


@pytest.mark.parametrize("epochs", [0, -1, True, 2.5])
def test_training_refuses_fewer_than_one_epoch_before_using_data(epochs: Any, tmp_path: Path) -> None:
    model = ra.create_model("vgg", **SMALL)
    out = tmp_path / "vgg.safetensors"
    with pytest.raises(
        UsageError,
        match=rf"^epochs must be a whole number >= 1, got {re.escape(repr(epochs))}: .* untrained checkpoint; "
        "pass --epochs 1 or more",
    ):
        train_model(model, _Untouchable(), _Untouchable(), get_recipe("fast"), epochs=epochs, out=out)  # type: ignore[arg-type]
    assert not out.exists() and not list(tmp_path.iterdir())
    with pytest.raises(UsageError):
        TrainConfig(epochs=epochs)
    assert check_epochs(3) == 3


def test_recipes_refuse_what_would_fail_mid_run() -> None:
    import dataclasses

    with pytest.raises(UsageError, match=r"unknown recipe 'nosuch'; known: paper, cosine, fast, fgsm-at, pgd-at"):
        get_recipe("nosuch")
    fast = get_recipe("fast")
    for field, value, message in [
        ("epochs", 0, "epochs must be"),
        ("batch_size", 0, "batch size must be"),
        ("lr", -0.1, "learning rate must be"),
        ("lr", float("nan"), "learning rate must be"),
    ]:
        with pytest.raises(UsageError, match=message):
            dataclasses.replace(fast, **{field: value})  # type: ignore[arg-type]


def test_train_epochs_0_is_refused_before_any_data_is_loaded(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import robust_attn.data

    monkeypatch.setattr(robust_attn.data, "load_dataset", lambda *a, **k: pytest.fail("data loaded before the epochs were checked"))
    assert main(["train", "vgg", "--epochs", "0", "--out", str(tmp_path)]) == 2
    assert "epochs must be a whole number >= 1, got 0" in _one_error_line(capsys)


def test_train_epochs_0_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["train", "vgg", "--epochs", "0", "--train-size", "32", "--test-size", "32", "--out", str(tmp_path / "ck")]
    assert main(argv) == 2
    assert "epochs must be a whole number >= 1, got 0" in _one_error_line(capsys)
    assert not (tmp_path / "ck").exists() or not list((tmp_path / "ck").iterdir())


# -- hub conversions -------------------------------------------------------------------------------
TIMM = "test_efficientnet"


@pytest.fixture
def timm_checkpoint(tmp_path: Path) -> Path:
    pytest.importorskip("timm")
    import timm

    torch.manual_seed(0)
    path = tmp_path / "w.pth"
    torch.save(timm.create_model(TIMM, pretrained=False, num_classes=10).state_dict(), path)
    return path


def test_a_damaged_hub_conversion_is_one_line_and_kept(timm_checkpoint: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not converted over in silence: the file is named with the fix, and the original is not read again."""
    from robust_attn.hub import load_timm

    _, meta = load_timm(f"timm:{TIMM}", "cpu", checkpoint=str(timm_checkpoint))
    cache = Path(meta["cache"])
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("the original was converted again"))
    for damage, why in [
        (_flip_last_byte, "is damaged: its weights fail their sha256 check"),
        (lambda p: p.write_bytes(b""), r"is empty \(0 bytes"),
    ]:
        damage(cache)
        before = _digest(cache)
        with pytest.raises(
            CheckpointError, match=rf"^hub cache '{re.escape(str(cache))}' {why}.*; delete it: the next load converts the original"
        ):
            load_timm(f"timm:{TIMM}", "cpu", checkpoint=str(timm_checkpoint))
        assert _digest(cache) == before


def test_a_hub_conversion_of_a_changed_original_is_redone_with_a_note(timm_checkpoint: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from robust_attn.hub import load_timm

    _, first = load_timm(f"timm:{TIMM}", "cpu", checkpoint=str(timm_checkpoint))
    assert "note:" not in capsys.readouterr().out
    state = torch.load(timm_checkpoint, weights_only=True)
    torch.save({k: v + 1 if v.is_floating_point() else v for k, v in state.items()}, timm_checkpoint)
    os.utime(timm_checkpoint, ns=(1, 1))
    _, second = load_timm(f"timm:{TIMM}", "cpu", checkpoint=str(timm_checkpoint))
    assert second["weights_sha256"] != first["weights_sha256"]
    assert (
        f"note: converted timm weights of {TIMM} again into {first['cache']}: its original file changed since it was converted"
        in capsys.readouterr().out
    )


def test_an_unreadable_hub_original_is_one_line(timm_checkpoint: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from robust_attn.hub import load_timm, weights

    if os.geteuid() != 0:
        timm_checkpoint.chmod(0o000)
    else:
        monkeypatch.setattr(
            weights, "open", lambda *a, **k: (_ for _ in ()).throw(PermissionError(errno.EACCES, "Permission denied")), raising=False
        )
    with pytest.raises(
        CheckpointError, match=r"checkpoint '.*w\.pth' cannot be read \(Permission denied: owned by .*, mode \d{4}\); make it readable"
    ):
        load_timm(f"timm:{TIMM}", "cpu", checkpoint=str(timm_checkpoint))
    timm_checkpoint.chmod(0o644)


# -- corrupted images ------------------------------------------------------------------------------
class _Corruptions:
    """The corruption attack's ``corrupted``, counting the images it makes."""

    def __init__(self) -> None:
        self.made = 0

    def corrupted(self, images: np.ndarray, corruption: str, severity: int, sample_ids: np.ndarray) -> np.ndarray:
        self.made += 1
        return corrupt(images, corruption, severity, seed=0, sample_ids=sample_ids)


@pytest.fixture(scope="module")
def images() -> Any:
    return ra.load_dataset("builtin", "test", n=8)


def _batch(attack: _Corruptions, data: Any) -> np.ndarray:
    return corrupted.corrupted_batch(attack, data, np.arange(8), data.images[:8].numpy(), "gaussian_noise", 3, 0)  # type: ignore[arg-type]


def _only_cache_file() -> Path:
    (path,) = corrupted.cache_dir().glob("*.safetensors")
    return path


def _wrong_shape(path: Path) -> None:
    meta = verified.read_header(path, corrupted.CORRUPTED_IMAGES)
    assert meta is not None
    verified.write(path, {"images": torch.zeros(2, 3, 32, 32, dtype=torch.uint8)}, meta, corrupted.CORRUPTED_IMAGES)


def _other_entry(path: Path) -> None:
    meta = verified.read_header(path, corrupted.CORRUPTED_IMAGES)
    assert meta is not None
    images = verified.read_tensors(path, corrupted.CORRUPTED_IMAGES)[0]["images"]  # type: ignore[index]
    verified.write(path, {"images": images}, {**meta, "key": "0" * 32}, corrupted.CORRUPTED_IMAGES)


def _zero_whole_file(path: Path) -> None:
    path.write_bytes(bytes(path.stat().st_size))


IMAGE_DAMAGE: dict[str, tuple[Callable[[Path], None], str]] = {
    "the whole file zeroed": (_zero_whole_file, "it was corrupt or not a safetensors file"),
    "the images zeroed": (_zero_the_weights, "it was damaged: its images fail their sha256 check"),
    "zero bytes": (_empty, r"it was empty \(0 bytes"),
    "truncated": (_truncate, "it was truncated or corrupt"),
    "images of another shape": (
        _wrong_shape,
        r"it holds uint8 images of shape \(2, 3, 32, 32\), expected uint8 images of shape \(8, 3, 32, 32\)",
    ),
    "another entry's images": (_other_entry, "it holds the images of another cache entry"),
}


def test_corrupted_images_are_cached_verified_and_read_back(images: Any) -> None:
    attack = _Corruptions()
    first = _batch(attack, images)
    second = _batch(attack, images)
    assert attack.made == 1 and np.array_equal(first, second)
    meta = verified.verify(_only_cache_file(), corrupted.CORRUPTED_IMAGES)
    assert meta is not None and meta["corruption"] == "gaussian_noise" and meta["severity"] == 3 and len(meta["weights_sha256"]) == 64


@pytest.mark.parametrize("kind", list(IMAGE_DAMAGE))
def test_a_damaged_corrupted_image_file_is_remade_with_a_note(kind: str, images: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """Never read as if it were right: the images are made again (the same images), the file is
    replaced by a good one, and a note names it and why."""
    attack = _Corruptions()
    made = _batch(attack, images)
    path = _only_cache_file()
    damage, why = IMAGE_DAMAGE[kind]
    damage(path)
    capsys.readouterr()
    again = _batch(attack, images)
    assert attack.made == 2 and np.array_equal(again, made)
    out = capsys.readouterr().out
    assert re.search(rf"^note: remade the cached corrupted images {re.escape(str(path))}: {why}", out, re.M), out
    assert verified.verify(path, corrupted.CORRUPTED_IMAGES) is not None
    _batch(attack, images)
    assert attack.made == 2, "the remade file serves the next read"


def test_an_unreadable_corrupted_image_file_is_remade_with_a_note(
    images: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    attack = _Corruptions()
    made = _batch(attack, images)
    path = _only_cache_file()
    refuse_reading(monkeypatch, path)
    capsys.readouterr()
    assert np.array_equal(_batch(attack, images), made) and attack.made == 2
    assert f"note: remade the cached corrupted images {path}: it could not be read (Permission denied" in capsys.readouterr().out


def test_a_damaged_corrupted_image_file_that_cannot_be_replaced(
    images: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    attack = _Corruptions()
    made = _batch(attack, images)
    path = _only_cache_file()
    path.write_bytes(b"")
    monkeypatch.setattr(verified, "atomic_write", lambda *a, **k: (_ for _ in ()).throw(PermissionError(errno.EACCES, "Permission denied")))
    capsys.readouterr()
    assert np.array_equal(_batch(attack, images), made)
    out = capsys.readouterr().out
    assert (
        f"note: the cached corrupted images {path} cannot be used (it was empty (0 bytes" in out
        and "nor replaced (Permission denied)" in out
    )


def test_a_sweep_over_zeroed_corrupted_images_gives_the_tables_of_a_fresh_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue's case: zeroed cache files were read and the corruption accuracy fell to chance.
    Now the second sweep remakes them (one note per file) and its samples equal the first's."""
    monkeypatch.syspath_prepend(str(EXAMPLES))
    spec = ra.parse_spec(
        {
            "models": ["plain_cnn:make"],
            "n": 16,
            "batch_size": 8,
            "attention_samples": 0,
            "diagnostic_samples": 0,
            "attacks": [{"name": "corruptions", "severities": [1, 5], "corruptions": ["gaussian_noise", "fog"]}],
        }
    )
    first = pd.read_parquet(ra.run_sweep(spec, tmp_path / "a", progress=False) / "samples.parquet")
    files = sorted(corrupted.cache_dir().glob("*.safetensors"))
    assert len(files) == 2 * 2 * 2  # two batches of each condition
    for f in files:
        _zero_whole_file(f)
    capsys.readouterr()
    second = pd.read_parquet(ra.run_sweep(spec, tmp_path / "b", progress=False) / "samples.parquet")
    pd.testing.assert_frame_equal(first, second)
    notes = [line for line in capsys.readouterr().out.splitlines() if line.startswith("note: remade the cached corrupted images")]
    assert len(notes) == len(files)
