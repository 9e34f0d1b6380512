"""Other people's models by name: RobustBench zoo entries and timm architectures, offline.

RobustBench models are built from RobustBench's own zoo definitions (the smallest entry,
Hendrycks2020AugMix_WRN, a WRN-40-2 with 2.2M parameters) and get random weights written where
RobustBench keeps them; timm uses its tiny ``test_efficientnet``. The known answer is always
the output of the model whose weights were saved.
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn as nn

from robust_attn.checkpoint import file_sha256
from robust_attn.errors import CheckpointError, ModelError
from robust_attn.hub import cache as hub_cache
from robust_attn.hub import (
    cache_file,
    list_robustbench,
    load_robustbench,
    load_timm,
    parse_ref,
    recorded_robustbench,
    register_hub_sources,
    robustbench_zoo,
    timm_source,
    weight_files,
)
from robust_attn.hub import download as hub_download
from robust_attn.hub.robustbench_zoo import build

SMALL_REF = "robustbench:cifar10/corruptions/Hendrycks2020AugMix_WRN"
NORMALIZATION_BUFFERS = ("mu", "sigma")  # RobustBench's files for this entry lack them; the architecture sets them
X = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def _randomised(model: nn.Module, seed: int) -> nn.Module:
    """``model`` (weights already drawn by its constructor) with BatchNorm statistics and biases
    drawn from ``seed`` too, so loading any of them wrongly changes the outputs; in eval mode.
    Moderate values: logits stay finite and far from denormals (which slow CPUs down 100x)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif name.endswith(("running_mean", ".bias")):
                t.copy_(torch.randn(t.shape, generator=g) * 0.1)
    return model.eval()


def _layout(state: dict[str, torch.Tensor], layout: str) -> Any:
    """A state dict saved the way one of RobustBench's checkpoints is."""
    prefixed = {f"module.{k}": v for k, v in state.items()}
    return {
        "robustbench": {"state_dict": prefixed, "epoch": 200},  # Carmon2019Unlabeled and most others
        "plain": state,
        "model_state_dict": {"model_state_dict": state, "optimizer_state_dict": {}},
        "last": {"last": state, "best": {k: torch.zeros_like(v) for k, v in state.items()}},  # Kireev2021, Andriushchenko2020
        "model.": {f"model.{k}": v for k, v in state.items()},  # Chen2020Efficient
        "extras": {**state, "conv1.scores": torch.ones(1), "ema.fc.weight": torch.ones(1)},  # pruning scores, an EMA copy
    }[layout]


def write_fake_robustbench_dir(
    model_dir: Path, ref: str = SMALL_REF, *, seed: int = 0, layout: str = "robustbench"
) -> tuple[str, Path, nn.Module]:
    """Random weights for RobustBench entry ``ref`` where RobustBench expects them under ``model_dir``.

    The file is written as RobustBench's own files are (``layout="robustbench"``: a dict with a
    ``state_dict`` whose keys carry DataParallel's ``module.`` prefix, without the normalisation
    buffers the architecture sets itself). Returns ``(ref, path of the .pt, the model holding
    those weights in eval mode)``; load it with ``load_model_ref(ref, model_dir=str(model_dir))``.
    The default entry takes 32x32 CIFAR-10 images (ref ``robustbench:cifar10/corruptions/...``).
    """
    rb = parse_ref(ref)
    torch.manual_seed(seed)
    model = _randomised(build(rb), seed)
    state = {k: v.clone() for k, v in model.state_dict().items() if k not in NORMALIZATION_BUFFERS}
    path = weight_files(rb, model_dir)[0]
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(_layout(state, layout), path)
    return rb.ref, path, model


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Any:
    """Forward passes here take a few images: one thread is as fast, and about 70x faster than
    two when other jobs share the two cores (OpenMP threads wait for each other)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def small_state(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """The saved state dict of the small entry, and its logits on ``X``."""
    _, _, model = write_fake_robustbench_dir(tmp_path_factory.mktemp("small"), seed=3)
    with torch.no_grad():
        return {k: v for k, v in model.state_dict().items() if k not in NORMALIZATION_BUFFERS}, model(X)


def _logits(model: nn.Module) -> torch.Tensor:
    with torch.no_grad():
        out = model(X)
    assert torch.isfinite(out).all() and out.std() > 1e-3
    return out


# -- RobustBench -----------------------------------------------------------------------------------
def test_zoo_carries_the_cifar10_leaderboards_and_their_architectures() -> None:
    names = {tm: list_robustbench("cifar10", tm) for tm in ("Linf", "L2", "corruptions")}
    assert min(len(v) for v in names.values()) >= 17
    assert {"Standard", "Carmon2019Unlabeled"} <= set(names["Linf"]) and "Hendrycks2020AugMix_WRN" in names["corruptions"]
    assert sum(p.numel() for p in build(parse_ref(SMALL_REF)).parameters()) == 2_243_546  # WRN-40-2, 10 classes
    package = sys.modules.get("robustbench")  # the unexecuted package object used for the import is gone again
    assert package is None or hasattr(package, "load_model")


def test_an_unimportable_zoo_is_a_one_line_error_naming_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> Any:
        raise ModuleNotFoundError("No module named 'geotorch'", name="geotorch")

    monkeypatch.setattr(robustbench_zoo.importlib, "import_module", missing)
    monkeypatch.delitem(sys.modules, "robustbench", raising=False)
    with pytest.raises(
        ModelError, match=r"cannot import RobustBench's model zoo from .*geotorch.*--force-reinstall --no-deps torchattacks"
    ):
        robustbench_zoo._import_models_module()
    assert "robustbench" not in sys.modules


@pytest.mark.parametrize(
    ("gdrive_id", "message"), [(None, r"through timm.*timm:tinyentry_cifar10_linf with download=True"), ("", r"torchvision")]
)
def test_entries_without_a_weight_file_say_where_their_weights_are(monkeypatch: pytest.MonkeyPatch, gdrive_id: Any, message: str) -> None:
    monkeypatch.setitem(robustbench_zoo.zoo()["cifar10"]["Linf"], "TinyEntry", {"model": _TinyEnsemble, "gdrive_id": gdrive_id})
    with pytest.raises(ModelError, match=message):
        load_robustbench("robustbench:TinyEntry")


@pytest.mark.parametrize("layout", ["robustbench", "plain", "model_state_dict", "last", "model.", "extras"])
def test_loads_by_name_with_the_saved_weights(tmp_path: Path, layout: str) -> None:
    ref, path, reference = write_fake_robustbench_dir(tmp_path, seed=3, layout=layout)
    model, meta = load_robustbench(ref, "cpu", model_dir=tmp_path)
    assert not model.training
    torch.testing.assert_close(_logits(model), _logits(reference), rtol=0, atol=0)
    assert meta["architecture"] == "Hendrycks2020AugMix_WRN" and meta["training_regime"] == "corruption-robust"
    assert meta["dataset"] == "cifar10" and len(meta["classes"]) == 10 and meta["classes"][0] == "airplane"
    assert meta["source"] == "robustbench" and meta["original"] == [str(path)] and meta["original_sha256"] == [file_sha256(path)]
    assert meta["ignored_keys"] == (["conv1.scores", "ema.fc.weight"] if layout == "extras" else [])
    assert meta["weights_sha256"] == hub_cache.read_cache_metadata(cache_file(parse_ref(ref)))["weights_sha256"]  # type: ignore[index]


def test_default_model_dir_and_options_spell_the_same_entry(isolated_home: Path, small_state: Any) -> None:
    _, expected = small_state
    path = isolated_home / "robustbench" / "cifar10" / "corruptions" / "Hendrycks2020AugMix_WRN.pt"
    path.parent.mkdir(parents=True)
    torch.save(small_state[0], path)
    model, meta = load_robustbench("robustbench:Hendrycks2020AugMix_WRN", "cpu", threat_model="corruptions")
    torch.testing.assert_close(_logits(model), expected, rtol=0, atol=0)
    assert meta["model_name"] == SMALL_REF
    with pytest.raises(ModelError, match=r"names threat_model 'corruptions' but the option says 'L2'"):
        load_robustbench(SMALL_REF, "cpu", threat_model="L2")


def test_unknown_names_list_close_matches_and_other_leaderboards() -> None:
    with pytest.raises(ModelError, match=r"close matches: Carmon2019Unlabeled"):
        load_robustbench("robustbench:Carmon2019Unlabelled")
    with pytest.raises(ModelError, match=r"no 'Hendrycks2020AugMix_WRN' for cifar10/Linf; it has robustbench:cifar10/corruptions/"):
        load_robustbench("robustbench:Hendrycks2020AugMix_WRN")
    with pytest.raises(ModelError, match=r"bad RobustBench reference"):
        load_robustbench("robustbench:svhn/Linf/Standard")


def test_missing_file_offline_names_the_exact_path(tmp_path: Path) -> None:
    expected = tmp_path / "cifar10" / "corruptions" / "Hendrycks2020AugMix_WRN.pt"
    with pytest.raises(CheckpointError) as err:
        load_robustbench(SMALL_REF, "cpu", model_dir=tmp_path)
    assert f"not found at {expected};" in str(err.value) and "--download" in str(err.value) and "\n" not in str(err.value)
    assert not expected.exists()


class _Boom:
    """A pickle that would run code when unpickled: it makes a directory."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.mkdir, (str(self.marker),))


def _bad_files(small: dict[str, torch.Tensor], tmp_path: Path) -> dict[str, tuple[Any, str]]:
    """Kind -> (how to write it, what its error says)."""
    good = io.BytesIO()
    torch.save({"state_dict": small}, good)
    cifar100 = {k: v for k, v in build(parse_ref("robustbench:cifar100/corruptions/Hendrycks2020AugMix_WRN")).state_dict().items()}
    return {
        "html page": (
            b"<!DOCTYPE html><html><head><title>Google Drive - Quota exceeded</title></head></html>",
            r"is an HTML page, not weights",
        ),
        "truncated": (good.getvalue()[: len(good.getvalue()) // 2], r"is truncated or corrupt"),
        "empty": (b"", r"is empty \(0 bytes\)"),
        "not a torch file": (b"\x00\x01 not a pickle " * 20, r"is not a PyTorch file"),
        "whole pickled model": (
            nn.Linear(2, 2),
            r"holds a pickled torch.nn.modules.linear.Linear, which is not loaded \(weights_only=True",
        ),
        "code in the pickle": ({"state_dict": _Boom(tmp_path / "ran")}, r"holds a pickled (posix|nt|os)\.mkdir, which is not loaded"),
        "a bare tensor": (torch.zeros(3), r"holds a Tensor, not a state dict"),
        "no state dict inside": ({"epoch": 3, "acc": 0.5}, r"holds a dict with keys epoch, acc, not a state dict"),
        "another architecture": (
            nn.Linear(2, 2).state_dict(),
            r"does not fit RobustBench's Hendrycks2020AugMix_WRN \(Hendrycks2020AugMixWRNNet\): it lacks .* and \d+ more; is it the file",
        ),
        "deeper variant": (
            {**small, "block1.layer.6.conv1.weight": torch.zeros(32, 32, 3, 3)},
            r"it has extra layers \(block1.layer.6.conv1.weight, ...\); is it a deeper variant",
        ),
        "wrong number of classes": (cifar100, r"fc.weight is \(100, 128\), the architecture needs \(10, 128\)"),
    }


def test_every_bad_file_is_a_one_line_checkpoint_error(tmp_path: Path, small_state: Any) -> None:
    rb = parse_ref(SMALL_REF)
    path = weight_files(rb, tmp_path)[0]
    path.parent.mkdir(parents=True)
    for kind, (content, message) in _bad_files(small_state[0], tmp_path).items():
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            torch.save(content, path)
        with pytest.raises(CheckpointError, match=message) as err:
            load_robustbench(SMALL_REF, "cpu", model_dir=tmp_path)
        text = str(err.value)
        assert "\n" not in text and str(path) in text, kind
        assert not cache_file(rb).exists(), kind
    assert not (tmp_path / "ran").exists()  # the malicious pickle never ran


def test_conversion_happens_once_and_again_when_the_file_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ref, path, first = write_fake_robustbench_dir(tmp_path, seed=4)
    load_robustbench(ref, "cpu", model_dir=tmp_path)
    cached = cache_file(parse_ref(ref))
    meta = hub_cache.read_cache_metadata(cached)
    assert meta is not None and meta["original_sha256"] == [file_sha256(path)] and meta["threat_model"] == "corruptions"

    def no_torch_load(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the original .pt was read again")

    with monkeypatch.context() as m:
        m.setattr(torch, "load", no_torch_load)
        again, _ = load_robustbench(ref, "cpu", model_dir=tmp_path)
        torch.testing.assert_close(_logits(again), _logits(first), rtol=0, atol=0)
        path.rename(path.with_suffix(".moved"))  # the cache serves when the original is gone
        torch.testing.assert_close(_logits(load_robustbench(ref, "cpu", model_dir=tmp_path)[0]), _logits(first), rtol=0, atol=0)
    _, _, second = write_fake_robustbench_dir(tmp_path, seed=5)
    os.utime(path, ns=(1, 1))  # a new mtime even on a coarse clock
    changed, _ = load_robustbench(ref, "cpu", model_dir=tmp_path)
    torch.testing.assert_close(_logits(changed), _logits(second), rtol=0, atol=0)
    assert not torch.equal(_logits(second), _logits(first))


def test_cifar100_entry_is_recorded_as_100_classes() -> None:
    from robust_attn.data import ImageDataset
    from robust_attn.errors import RobustAttnError
    from robust_attn.resolve import recorded_card, recorded_metadata
    from robust_attn.sweeps.preflight import check_recorded

    register_hub_sources()
    ref = "robustbench:cifar100/corruptions/Hendrycks2020AugMix_WRN"
    meta = recorded_metadata(ref)
    assert meta is not None and meta["dataset"] == "cifar100" and meta["image_shape"] == [3, 32, 32]
    assert len(meta["classes"]) == 100 and len(set(meta["classes"])) == 100 and meta["classes"][:2] == ["apple", "aquarium_fish"]
    assert len(recorded_robustbench(SMALL_REF)["classes"]) == 10
    cifar10 = ImageDataset(
        "cifar10",
        "test",
        torch.zeros(1, 3, 32, 32, dtype=torch.uint8),
        torch.zeros(1, dtype=torch.long),
        tuple(recorded_robustbench(SMALL_REF)["classes"]),
        (0.5,) * 3,
        (0.5,) * 3,
    )
    with pytest.raises((RobustAttnError, ValueError), match=r"100 classes"):
        check_recorded(recorded_card(ref), cifar10)  # type: ignore[arg-type]
    check_recorded(recorded_card(SMALL_REF), cifar10)  # type: ignore[arg-type]


def test_registered_sources_load_through_the_resolver(tmp_path: Path) -> None:
    from robust_attn.resolve import load_model_ref, source_for

    register_hub_sources()
    assert source_for(SMALL_REF).name == "robustbench:<name>" and source_for("timm:resnet18").name == "timm:<name>"
    ref, _, reference = write_fake_robustbench_dir(tmp_path, seed=6)
    model, card = load_model_ref(ref, "cpu", model_dir=str(tmp_path), progress=False)
    torch.testing.assert_close(_logits(model), _logits(reference), rtol=0, atol=0)
    assert card.architecture == "Hendrycks2020AugMix_WRN" and card.training_regime == "corruption-robust" and card.train_seed is None
    assert card.source == "robustbench" and card.dataset == "cifar10" and card.num_classes == 10 and card.weights_sha256


class _TinyEnsemble(nn.Module):
    """Stands for RobustBench's ensembles (Chen2020Adversarial, CARD decks): members in ``models``."""

    def __init__(self) -> None:
        super().__init__()
        self.models = nn.ModuleList([nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10)) for _ in range(2)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sum(m(x) for m in self.models) / 2


def test_ensemble_members_load_from_their_own_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    entries = robustbench_zoo.zoo()["cifar10"]["Linf"]
    monkeypatch.setitem(entries, "TinyEnsemble", {"model": _TinyEnsemble, "gdrive_id": ["id0", "id1"]})
    torch.manual_seed(0)
    reference = _TinyEnsemble().eval()
    files = weight_files(parse_ref("robustbench:TinyEnsemble"), tmp_path)
    assert [f.name for f in files] == ["TinyEnsemble.pt_m0.pt", "TinyEnsemble.pt_m1.pt"]  # RobustBench's names
    files[0].parent.mkdir(parents=True)
    for f, member in zip(files, reference.models):
        torch.save({"state_dict": member.state_dict()}, f)
    model, _ = load_robustbench("robustbench:TinyEnsemble", "cpu", model_dir=tmp_path)
    torch.testing.assert_close(_logits(model), _logits(reference), rtol=0, atol=0)


def test_download_only_when_asked_and_never_saves_an_html_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small_state: Any) -> None:
    payload = io.BytesIO()
    torch.save({"state_dict": small_state[0]}, payload)
    served: list[str] = []

    def fake_urlopen(request: Any, timeout: float = 0) -> io.BytesIO:
        served.append(request.full_url)
        return io.BytesIO(body)

    monkeypatch.setattr(hub_download.urllib.request, "urlopen", fake_urlopen)
    expected = weight_files(parse_ref(SMALL_REF), tmp_path)[0]
    body = b"<!DOCTYPE html><html><body>Too many users have viewed or downloaded this file recently</body></html>"
    with pytest.raises(CheckpointError, match=r"Google Drive sent an HTML page .* save it as .*Hendrycks2020AugMix_WRN.pt"):
        load_robustbench(SMALL_REF, "cpu", model_dir=tmp_path, download=True, progress=False)
    assert not expected.exists() and not list(expected.parent.iterdir())
    body = payload.getvalue()
    model, _ = load_robustbench(SMALL_REF, "cpu", model_dir=tmp_path, download=True, progress=False)
    torch.testing.assert_close(_logits(model), small_state[1], rtol=0, atol=0)
    assert expected.is_file() and len(served) == 2 and "id=1wy7gSRsUZzCzj8QhmTbcnwmES_2kkNph" in served[0]


# -- timm ----------------------------------------------------------------------------------------------
TIMM_NAME = "test_efficientnet"  # about 100k parameters; ImageNet mean and std in its pretrained_cfg


def _timm_model(num_classes: int, seed: int) -> nn.Module:
    import timm

    torch.manual_seed(seed)
    return _randomised(timm.create_model(TIMM_NAME, pretrained=False, num_classes=num_classes), seed)


def _normalised_logits(model: nn.Module) -> torch.Tensor:
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        return model((X - mean) / std)


def test_timm_loads_a_local_checkpoint_behind_its_normalisation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reference = _timm_model(7, seed=1)
    ckpt = tmp_path / "ckpt.pth"
    torch.save({"state_dict_ema": {f"module.{k}": v for k, v in reference.state_dict().items()}, "epoch": 3}, ckpt)
    model, meta = load_timm(f"timm:{TIMM_NAME}", "cpu", checkpoint=str(ckpt))  # num_classes read from the classifier
    torch.testing.assert_close(_logits(model), _normalised_logits(reference), rtol=1e-6, atol=1e-6)
    assert meta["classes"] == 7 and meta["architecture"] == TIMM_NAME and meta["training_regime"] == "unknown"
    assert meta["source"] == "timm" and meta["mean"] == pytest.approx([0.485, 0.456, 0.406]) and len(meta["weights_sha256"]) == 64
    with monkeypatch.context() as m:
        m.setattr(torch, "load", lambda *a, **k: pytest.fail("the checkpoint was read again"))
        again, meta2 = load_timm(f"timm:{TIMM_NAME}", "cpu", checkpoint=str(ckpt))
    torch.testing.assert_close(_logits(again), _logits(model), rtol=0, atol=0)
    assert meta2["weights_sha256"] == meta["weights_sha256"] and Path(meta["cache"]).parent.parent.parent == hub_cache.hub_home()
    with pytest.raises(CheckpointError, match=r"classifier.weight is \(7, \d+\), the architecture needs \(10, \d+\)"):
        load_timm(f"timm:{TIMM_NAME}", "cpu", checkpoint=str(ckpt), num_classes=10)


def test_timm_errors_name_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"timm does not know 'resnet_18'; close matches: resnet18"):
        load_timm("timm:resnet_18")
    with pytest.raises(CheckpointError, match=r"has no weights: pass checkpoint = PATH .* or download=True"):
        load_timm(f"timm:{TIMM_NAME}")
    with pytest.raises(CheckpointError, match=r"timm checkpoint '.*nope.pth' not found"):
        load_timm(f"timm:{TIMM_NAME}", checkpoint=str(tmp_path / "nope.pth"))
    (tmp_path / "page.pth").write_text("<html><body>Sign in</body></html>")
    with pytest.raises(CheckpointError, match=r"page.pth' is an HTML page"):
        load_timm(f"timm:{TIMM_NAME}", checkpoint=str(tmp_path / "page.pth"))


def test_timm_pretrained_only_with_download_then_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    created: list[bool] = []
    real_create = timm_source._create

    def fake_create(name: str, num_classes: int, pretrained: bool = False) -> nn.Module:
        created.append(pretrained)
        return _timm_model(num_classes, seed=2) if pretrained else real_create(name, num_classes)

    monkeypatch.setattr(timm_source, "_create", fake_create)
    with pytest.raises(CheckpointError, match="download=True"):
        load_timm(f"timm:{TIMM_NAME}", "cpu")
    with pytest.raises(ModelError, match=r"pretrained test_efficientnet has 1000 classes, not 10"):
        load_timm(f"timm:{TIMM_NAME}", "cpu", download=True, num_classes=10)
    model, meta = load_timm(f"timm:{TIMM_NAME}", "cpu", download=True)
    offline, _ = load_timm(f"timm:{TIMM_NAME}", "cpu")  # served by the hub cache
    assert created == [True, False] and meta["classes"] == 1000
    torch.testing.assert_close(_logits(offline), _logits(model), rtol=0, atol=0)
    torch.testing.assert_close(_logits(model), _normalised_logits(_timm_model(1000, seed=2)), rtol=1e-6, atol=1e-6)
