"""The families beside LTPA at one budget: the zoo's PreAct ResNet-18 and small ViT take the
built-in images, return one logit per class, stay well under a million parameters and within a
fifth of the compact VGG's multiply-adds, and their zoo entries train with the VGG entries'
images, epochs and recipes. The ViT declares its attention maps; the ResNet its CAM layer."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import robust_attn as ra
from robust_attn.protocols import has_attention, has_features

VGG = {"layout": "compact", "width": 0.125, "dropout": 0.0}


def _cost(model: torch.nn.Module) -> tuple[int, float]:
    model.eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.rand(1, 3, 32, 32))
    return sum(p.numel() for p in model.parameters()), counter.get_total_flops() / 2


@pytest.mark.parametrize("name", ["resnet", "vit"])
def test_a_family_matches_the_vgg_budget(name: str) -> None:
    torch.manual_seed(0)
    model = ra.create_model(name, num_classes=10, **ra.ZOO[f"builtin/{name}"].model_kwargs)
    params, macs = _cost(model)
    vgg_params, vgg_macs = _cost(ra.create_model("vgg", num_classes=10, **VGG))
    assert model(torch.rand(3, 3, 32, 32)).shape == (3, 10)
    assert params < 1_000_000 and 0.8 <= macs / vgg_macs <= 1.2, (params, macs, vgg_macs)
    assert 0.8 <= params / vgg_params <= 1.2


def test_the_vit_declares_its_maps_and_the_resnet_its_cam_layer() -> None:
    vit = ra.create_model("vit", num_classes=10)
    maps = vit.attention_maps(torch.rand(2, 3, 32, 32))
    assert has_attention(vit) and [m.shape for m in maps] == [(2, 8, 8), (2, 8, 8)] and vit.attention_stage_names == ("cls", "rollout")
    for m in maps:  # rows of a softmax over the patches (and the class token): non-negative, at most 1 in all
        assert float(m.min()) >= 0 and bool((m.flatten(1).sum(1) <= 1 + 1e-5).all())
    resnet = ra.create_model("resnet", num_classes=10, width=11)
    assert isinstance(resnet.cam_layer, torch.nn.Module) and has_features(resnet) and not has_attention(resnet)
    assert resnet.features(torch.rand(2, 3, 32, 32)).shape == (2, 88)


def test_the_family_entries_share_the_vgg_entries_budget() -> None:
    for suffix in ("", "-at", "-pgd-at"):
        base = ra.ZOO[f"builtin/vgg{suffix}"]
        for name in ("resnet", "vit"):
            entry = ra.ZOO[f"builtin/{name}{suffix}"]
            assert (entry.recipe, entry.epochs, entry.train_size, entry.dataset, entry.data_seed) == (
                base.recipe, base.epochs, base.train_size, base.dataset, base.data_seed)  # fmt: skip
            assert entry.recipe_params == base.recipe_params
