"""The model card and the one loader: ``ra.load_model`` serves every reference a sweep accepts and
returns ``(model, card)``; the sweep reads cards, loads each model once at its turn and releases
it, and checks the models once per sweep (not again in its ranks)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn as nn

import robust_attn as ra
from robust_attn.card import ModelCard, card_from_record
from robust_attn.protocols import AttentionModel, has_attention, has_features

FACTORY = """
import torch
import torch.nn as nn

BUILT = []


class Attentive(nn.Module):
    architecture, training_regime, train_seed = "tiny-attentive", "pgd-at", 4
    attention_stage_names = ("a1",)

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(3 * 32 * 32, 10)

    def forward(self, x):
        return self.fc(x.flatten(1))

    def attention_maps(self, x):
        return [x.mean(dim=1)]


def make():
    BUILT.append(1)
    return Attentive()
"""


@pytest.fixture
def factory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "card_models.py").write_text(FACTORY)
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib
    import sys

    sys.modules.pop("card_models", None)
    importlib.invalidate_caches()
    return "card_models:make"


def test_one_loader_serves_every_kind_of_reference(trained, factory: str, tmp_path: Path) -> None:
    """A checkpoint, an import spec and a timm architecture with the user's weights all load through
    ``ra.load_model`` and come back with a card that says what they are."""
    import timm

    _, ckpt = trained
    model, card = ra.load_model(ckpt, "cpu")
    assert isinstance(card, ModelCard) and card.source == "checkpoint" and card.architecture == "vgg-att3-pc"
    assert card.attention == ("l1", "l2", "l3") and card.has_attention and has_attention(model)
    assert card.num_classes == 10 and card.image_shape == (3, 32, 32) and card.training_regime == "clean" and card.weights_identity

    user, card = ra.load_model(factory, "cpu")
    assert card.source == "import" and card.architecture == "tiny-attentive" and card.training_regime == "pgd-at"
    assert card.train_seed == 4 and card.attention == ("a1",) and card.weights_identity == "" and isinstance(user, AttentionModel)

    weights = tmp_path / "resnet18.pth"
    torch.save(timm.create_model("resnet18", num_classes=10).state_dict(), weights)
    resnet, card = ra.load_model("timm:resnet18", checkpoint=weights, num_classes=10)  # as the README shows
    assert card.source == "timm" and card.architecture == "resnet18" and card.num_classes == 10 and not card.attention
    assert card.mean == (0.485, 0.456, 0.406) and len(card.weights_sha256 or "") == 64
    assert resnet(torch.rand(2, 3, 32, 32)).shape == (2, 10)


def test_the_card_reads_every_record_key_in_one_place() -> None:
    """A checkpoint's header becomes typed fields; what the manifest keeps of a model is the card's
    record (one name and one type per field, wherever it is read)."""
    record = {
        "model": "vgg",
        "seed": 2,
        "recipe": {"name": "fgsm-at", "adversarial": "fgsm"},
        "dataset": "builtin",
        "image_shape": [3, 32, 32],
        "classes": ["a", "b"],
        "epochs": 6,
        "train_size": 20000,
        "clean_accuracy": 0.91,
        "weights_sha256": "ab" * 32,
        "train_result": {"seconds": 12.5},
        "mean": [0.5] * 3,
        "std": [0.2] * 3,
    }
    card = card_from_record("builtin/vgg-at@seed=2", "zoo", record)
    assert (card.architecture, card.training_regime, card.train_seed, card.num_classes) == ("vgg", "fgsm-at", 2, 2)
    assert card.budget.epochs == 6 and card.budget.recipe == "fgsm-at" and card.budget.seconds == 12.5
    kept = card.manifest_record()
    assert kept["training_regime"] == "fgsm-at" and kept["trained_on"] == "builtin" and kept["classes"] == ["a", "b"]
    assert kept["weights_sha256"] == "ab" * 32 and kept["image_shape"] == [3, 32, 32] and json.dumps(kept)
    assert card_from_record("pkg.m:f", "import", {"classes": 10}).num_classes == 10


def test_protocols_are_declared_not_named() -> None:
    class Maps(nn.Module):
        def attention_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
            return [x.mean(dim=1)]

    class Features(nn.Module):
        def features(self, x: torch.Tensor) -> torch.Tensor:
            return x.flatten(1)

    class Trunk(nn.Module):  # torchvision's `features` submodule is not the protocol
        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Identity()

    assert has_attention(Maps()) and not has_attention(nn.Linear(1, 1))
    assert has_features(Features()) and not has_features(Trunk())


def test_an_import_spec_is_built_once_and_released_after_its_turn(factory: str, tmp_path: Path) -> None:
    """The factory runs once (in the checks); its module is used at the model's turn and then let
    go, not held for the rest of the sweep."""
    import card_models  # type: ignore[import-not-found]

    from robust_attn.sweeps import runner

    seen: list[object] = []
    real = runner._run_cells

    def spy(job: object, data: object, model: nn.Module, cells: list[object]) -> None:
        seen.append(job)
        real(job, data, model, cells)  # type: ignore[arg-type]

    spec = ra.parse_spec(
        {
            "models": [factory],
            "n": 20,
            "attention_samples": 0,
            "diagnostic_samples": 0,
            "attacks": [{"name": "fgsm", "eps": ["0", "2/255"]}],
        }
    )
    runner._run_cells = spy  # type: ignore[assignment]
    try:
        ra.run_sweep(spec, tmp_path / "run", progress=False)
    finally:
        runner._run_cells = real  # type: ignore[assignment]
    assert len(card_models.BUILT) == 1, "the user's factory ran once"
    job = seen[0]
    assert all(m.item.module is None for m in job.models), "released after its turn"  # type: ignore[attr-defined]
    record = json.loads((tmp_path / "run" / "manifest.json").read_text())["models"][factory]
    assert record["architecture"] == "tiny-attentive" and record["attention"] == ["a1"] and record["source"] == "import"


def test_a_local_rank_does_not_check_the_models_again(trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With ``workers = N`` the parent checks the models and hands each rank their cards: a rank
    runs no preflight of its own (called here in-process, as the launcher calls it)."""
    from robust_attn.sweeps import runner
    from robust_attn.sweeps.preflight import preflight

    spec = ra.parse_spec(
        {
            "models": [str(trained[1])],
            "n": 20,
            "attention_samples": 0,
            "diagnostic_samples": 0,
            "attacks": [{"name": "fgsm", "eps": ["0", "2/255"]}],
        }
    )
    data = ra.load_dataset("builtin", "test", n=20)
    cards = [c.card for c in preflight(spec, data, torch.device("cpu"))]
    monkeypatch.setattr(runner, "preflight", lambda *a, **k: pytest.fail("a rank checked the models again"))
    runner._sweep_entry(spec, str(tmp_path / "run"), False, False, cards)
    assert len(ra.load_run(tmp_path / "run").results) == 2


def test_a_zoo_header_is_read_once_per_sweep(trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sweep reads a checkpoint's header once, into its card (the checks, the plan and the
    manifest read the card)."""
    from robust_attn import resolve

    calls: list[str] = []
    real = resolve.recorded_card

    def count(ref: str) -> object:
        calls.append(ref)
        return real(ref)

    monkeypatch.setattr(resolve, "recorded_card", count)
    from robust_attn.sweeps import preflight as preflight_mod

    monkeypatch.setattr(preflight_mod, "recorded_card", count)
    spec = ra.parse_spec(
        {
            "models": [str(trained[1])],
            "n": 20,
            "attention_samples": 0,
            "diagnostic_samples": 0,
            "attacks": [{"name": "fgsm", "eps": ["0", "2/255"]}],
        }
    )
    ra.run_sweep(spec, tmp_path / "run", progress=False)
    assert calls == [str(trained[1])]


def test_every_registered_model_source_is_exercised() -> None:
    """Each kind of reference has a test that loads one through ``ra.load_model`` (checkpoint,
    import, timm: above; zoo: test_checkpoint_zoo; robustbench: test_hub): a new source fails here
    until it has one."""
    from robust_attn.model_sources import _SOURCES
    from robust_attn.resolve import source_for

    source_for("builtin/vgg")  # registers the built-in and hub sources
    assert {s.kind for s in _SOURCES} == {"zoo", "checkpoint", "import", "timm", "robustbench"}
