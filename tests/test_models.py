"""Architecture tests, parametrised over the registry (timm style)."""

from __future__ import annotations

import pytest
import torch

import robust_attn as ra
from robust_attn.models import VGG, AttentionBlock
from robust_attn.probes import has_attention

# the VGG family (baselines and LTPA variants); the ResNet and ViT have their own tests (test_families.py)
ALL = [n for n in ra.list_models() if isinstance(ra.create_model(n), VGG)]


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("layout,size", [("compact", 32), ("paper", 32), ("compact", 28), ("paper", 40)])
def test_every_model_shapes(name: str, layout: str, size: int) -> None:
    in_ch = 1 if size == 28 else 3
    model = ra.create_model(name, num_classes=7, width=0.0625, layout=layout, in_channels=in_ch, image_size=size).eval()
    x = torch.rand(3, in_ch, size, size)
    out = model.forward_with_attention(x, upsample=True)
    assert model(x).shape == (3, 7)
    assert torch.equal(out.logits, model(x))
    assert not torch.isnan(out.logits).any()
    stages = model.attention_stages
    assert len(out.maps) == stages == len(out.scores)
    assert has_attention(model) == (stages > 0), "the attention protocol: attention_maps(x) on attention models only"
    if stages:
        maps = model.attention_maps(x)
        assert len(maps) == stages and all(m.dim() == 3 and m.shape[0] == 3 for m in maps)
        torch.testing.assert_close(torch.stack([m.sum(dim=(1, 2)) for m in maps]), torch.ones(stages, 3))
    for m in out.maps:
        assert m.shape == (3, 1, size, size)


@pytest.mark.parametrize("name", [n for n in ALL if n != "vgg"])
def test_softmax_maps_are_distributions(name: str) -> None:
    model = ra.create_model(name, width=0.0625, layout="compact").eval()
    out = model.forward_with_attention(torch.rand(4, 3, 32, 32))
    expected_sides = {2: [8, 4], 3: [16, 8, 4]}[len(out.maps)]
    for m, side in zip(out.maps, expected_sides):
        assert m.shape == (4, 1, side, side)
        assert (m >= 0).all()
        torch.testing.assert_close(m.sum(dim=(2, 3)), torch.ones(4, 1))


def test_paper_layout_stage_resolutions() -> None:
    """The authors' layout attends conv7/conv10/conv13 at 32/16/8 for a 32x32 input."""
    model = ra.create_model("vgg-att3-pc", width=0.0625, layout="paper").eval()
    out = model.forward_with_attention(torch.rand(2, 3, 32, 32))
    assert [m.shape[-1] for m in out.maps] == [32, 16, 8]


def test_attention_block_dp_and_sigmoid_match_definitions() -> None:
    torch.manual_seed(0)
    local, g = torch.randn(2, 5, 3, 4), torch.randn(2, 5)
    dp = AttentionBlock(5, "dp")(local, g)
    c = torch.einsum("bchw,bc->bhw", local, g)
    torch.testing.assert_close(dp.scores[:, 0], c)
    a = torch.softmax(c.flatten(1), 1).view(2, 3, 4)
    torch.testing.assert_close(dp.feature, torch.einsum("bhw,bchw->bc", a, local))
    sig = AttentionBlock(5, "pc", "sigmoid")
    torch.nn.init.normal_(sig.u.weight)  # u starts at zero; test a non-trivial one
    out = sig(local, g)
    u = sig.u.weight.view(5)
    c_pc = torch.einsum("c,bchw->bhw", u, local + g[:, :, None, None])
    torch.testing.assert_close(out.attention[:, 0], torch.sigmoid(c_pc))
    torch.testing.assert_close(out.feature, (torch.sigmoid(c_pc)[:, None] * local).mean(dim=(2, 3)))


def _conv_bn(cin: int, cout: int) -> int:
    return 9 * cin * cout + 2 * cout  # 3x3 conv without bias, BN weight and bias


def _paper_counts() -> dict[str, int]:
    """Parameter counts derived by hand from the authors' layout (shared/LTPA.md; Jetley et al.
    2018, Sec. 3 and the authors' Lua VGG code): VGG-16-BN trunk, two extra conv-BN layers and a
    512x512 FC for g, BN-ReLU-linear heads; att3 projects g to 256 for l1 with BN + linear."""
    widths = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    trunk, cin = 0, 3
    for w in widths:
        trunk += _conv_bn(cin, w)
        cin = w
    g_path = 2 * _conv_bn(512, 512) + 512 * 512 + 512
    head = lambda c, k: 2 * c + c * k + k  # BN1d + linear
    u = lambda c: c
    baseline = trunk + g_path + head(512, 10)
    att3_pc = trunk + g_path + (2 * 512 + 512 * 256 + 256) + u(256) + 2 * u(512) + 2 * (256 + 512 + 512) + 1280 * 10 + 10
    att2_dp = trunk + g_path + 2 * (512 + 512) + 1024 * 10 + 10
    att3_dp_indep = trunk + g_path + (2 * 512 + 512 * 256 + 256) + head(256, 10) + 2 * head(512, 10)
    return {"vgg": baseline, "vgg-att3-pc": att3_pc, "vgg-att2-dp": att2_dp, "vgg-att3-dp-indep": att3_dp_indep}


@pytest.mark.parametrize("name,expected", sorted(_paper_counts().items()))
def test_parameter_count_at_paper_width(name: str, expected: int) -> None:
    model = ra.create_model(name, width=1.0, layout="paper")
    assert sum(p.numel() for p in model.parameters()) == expected


def test_known_parameter_count_literal() -> None:
    # Keras' VGG16(include_top=False) has 14,714,688 parameters: 3x3 conv weights plus 4,224
    # biases. Ours drops the conv biases (BN follows) and adds BN's 2 x 4,224 affine parameters.
    model = ra.create_model("vgg", width=1.0)
    trunk = sum(p.numel() for n, p in model.named_parameters() if n.startswith("block_"))
    assert trunk == 14_714_688 - 4_224 + 8_448


@pytest.mark.parametrize("name", ["vgg", "vgg-att2-dp", "vgg-att3-pc", "vgg-att3-pc-indep"])
@pytest.mark.parametrize("projection", ["g_down", "l_up"])
def test_gradients_reach_every_parameter(name: str, projection: str) -> None:
    torch.manual_seed(0)
    model = ra.create_model(name, width=0.125, layout="compact", projection=projection).train()
    x, y = torch.rand(6, 3, 32, 32), torch.arange(6) % 10
    # u (pc) and g's last layer (dp) start at zero so the first maps are uniform; after one
    # step every parameter must receive gradient
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(2):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    opt.zero_grad()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


def test_registry_errors_and_listing() -> None:
    assert "vgg-att3-pc" in ra.list_models("vgg-att3-*")
    assert ra.list_models("nothing*") == []
    with pytest.raises(ValueError, match="unknown model 'vgg-att4'.*vgg-att3-pc"):
        ra.create_model("vgg-att4")
    with pytest.raises(ValueError, match="image_size"):
        ra.create_model("vgg", layout="compact", image_size=8)


def test_input_normalisation_lives_in_the_model() -> None:
    model = ra.create_model("vgg", width=0.0625, mean=[0.2, 0.3, 0.4], std=[0.5, 0.5, 0.5])
    x = torch.full((1, 3, 2, 2), 0.7)
    torch.testing.assert_close(model.normalize(x)[0, :, 0, 0], torch.tensor([1.0, 0.8, 0.6]))


@pytest.mark.parametrize("name", ALL)
def test_folding_batchnorm_keeps_the_function(name: str) -> None:
    torch.manual_seed(0)
    model = ra.create_model(name, width=0.0625, layout="compact").eval()
    for m in model.modules():  # non-trivial running statistics and affine parameters
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            torch.nn.init.uniform_(m.weight, 0.5, 1.5)
            torch.nn.init.uniform_(m.bias, -0.2, 0.2)
    folded, count = ra.fold_batchnorm(model)
    assert count == 15  # 13 trunk convs + 2 global-feature convs, each followed by BatchNorm2d
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) == 15, "the original keeps its layers"
    x = torch.rand(4, 3, 32, 32)
    torch.testing.assert_close(folded(x), model(x), rtol=1e-4, atol=1e-4)
    fm, om = folded.forward_with_attention(x).maps, model.forward_with_attention(x).maps
    for a, b in zip(fm, om):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
