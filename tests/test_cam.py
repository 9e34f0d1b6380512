"""Class activation maps at weakly supervised segmentation: Grad-CAM (captum), Grad-CAM++ (closed
form, checked against pytorch-grad-cam's values), input-gradient saliency (captum), the CAM layer,
and the rows the segmentation probe writes for models without attention."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn as nn

import robust_attn as ra
from robust_attn.probes.cam import CamLayerError, activations_and_gradients, cam_layer, grad_cam, grad_cam_plusplus
from robust_attn.probes.maps import gradient_saliency
from robust_attn.probes.study import probe_model

A0 = [[1.0, 2.0], [3.0, 4.0]]  # channel 0 activations, sum 10
A1 = [[1.0, 0.0], [0.0, 1.0]]


class _Known(nn.Module):
    """The input is the CAM layer's activation (an identity 1x1 conv), read by a linear head, either
    after global average pooling (``pooled``: the CAM setting) or position by position."""

    def __init__(self, head: torch.Tensor, pooled: bool) -> None:
        super().__init__()
        channels = head.shape[1] if pooled else head.shape[1] // 4
        self.conv = nn.Conv2d(channels, channels, 1, bias=False)
        self.pooled = pooled
        self.head = nn.Linear(head.shape[1], head.shape[0], bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.eye(channels)[:, :, None, None])
            self.head.weight.copy_(head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.conv(x)
        return self.head(a.mean(dim=(2, 3)) if self.pooled else a.flatten(1))


def test_grad_cam_and_plusplus_closed_forms_with_pooling() -> None:
    """Logit = sum_k W_k mean(A_k) with W = (4, -4) on 2 x 2 maps: every gradient is g_k = W_k / 4 = (1, -1).
    Grad-CAM: ReLU(A0 - A1). Grad-CAM++: alpha_0 = 1 / (2 + sum(A0) g_0) = 1/12, w_0 = 4 alpha_0 = 1/3,
    w_1 = 0 (negative gradient): the map is A0 / 3."""
    model = _Known(torch.tensor([[4.0, -4.0], [0.0, 1.0]]), pooled=True)
    x, y = torch.tensor([[A0, A1]]), torch.tensor([0])
    assert torch.allclose(grad_cam(model, x, y, model.conv)[0], torch.tensor([[0.0, 2.0], [3.0, 3.0]]))
    assert torch.allclose(grad_cam_plusplus(model, x, y, model.conv)[0], torch.tensor(A0) / 3, atol=1e-6)


def test_grad_cam_plusplus_closed_form_with_spatial_gradients() -> None:
    """Logit = sum_ij V_ij A_ij, so g = V = ((1, 0), (-1, 0.5)) with sum(A) = 10: alpha = 1/12, -, -1/8, 1/7;
    w = 1 * 1/12 + 0.5 * 1/7 = 13/84 (ReLU(g) drops the -1, g = 0 drops its alpha). Grad-CAM: mean g = 1/8."""
    model = _Known(torch.tensor([[1.0, 0.0, -1.0, 0.5], [0.0, 0.0, 0.0, 1.0]]), pooled=False)
    x, y = torch.tensor([[A0]]), torch.tensor([0])
    assert torch.allclose(grad_cam_plusplus(model, x, y, model.conv)[0], torch.tensor(A0) * 13 / 84, atol=1e-6)
    assert torch.allclose(grad_cam(model, x, y, model.conv)[0], torch.tensor(A0) / 8)


def _small_cnn(seed: int = 4, inplace: bool = False) -> tuple[nn.Sequential, torch.Tensor, torch.Tensor]:
    """A random CNN whose weights come from numpy (the same on every machine), two 8 x 8 images, targets."""
    rng = np.random.default_rng(seed)
    net = nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(6, 5, 3, padding=1),
        nn.ReLU(inplace=inplace),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(20, 4),
    )
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.from_numpy(rng.normal(0, 0.5, p.shape).astype(np.float32)))
    x = torch.from_numpy(rng.uniform(0, 1, (2, 3, 8, 8)).astype(np.float32))
    return net.eval(), x, torch.tensor([1, 3])


# pytorch-grad-cam 1.5.7, GradCAMPlusPlus(model=net, target_layers=[net[2]]) on _small_cnn(4), targets
# ClassifierOutputTarget(1) and (3): its maps are min-max normalised per image (the layer is 8 x 8 like
# the input, so its resize is the identity). Made in a throwaway venv (grad-cam needs opencv).
PYTORCH_GRAD_CAM_PP = np.array(
    [
        [
            (0.000000, 0.000000, 0.000000, 0.000000, 0.000000, 0.000000, 0.000000, 0.000000),
            (0.000000, 0.000000, 0.000000, 0.000000, 0.105599, 0.325444, 0.000000, 0.072093),
            (0.000000, 0.000000, 0.000000, 0.134009, 0.446877, 0.000000, 0.000000, 0.711265),
            (0.000000, 0.000000, 0.000000, 0.029703, 0.000000, 0.000000, 0.384341, 0.368041),
            (0.000000, 0.000000, 0.257601, 0.000000, 0.000000, 0.000000, 0.000000, 0.624706),
            (0.000000, 0.190593, 0.886442, 0.899702, 0.047183, 0.000000, 0.749644, 0.000000),
            (0.000000, 0.000000, 0.283211, 0.000000, 0.000000, 0.000000, 0.508912, 0.498737),
            (0.000000, 0.164948, 1.000000, 0.331723, 0.297488, 0.355401, 0.489849, 0.356491),
        ],
        [
            (0.343459, 0.332554, 0.774571, 0.715829, 0.649058, 0.123090, 0.559745, 0.409026),
            (0.321924, 0.404451, 0.174680, 0.520667, 0.000000, 0.387713, 0.160552, 0.239172),
            (0.741886, 0.038885, 0.084703, 1.000000, 0.000000, 0.499332, 0.000000, 0.046105),
            (0.895955, 0.277775, 0.636778, 0.037040, 0.332252, 0.076758, 0.326134, 0.000000),
            (0.712410, 0.150390, 0.303585, 0.296821, 0.121128, 0.052813, 0.159017, 0.000000),
            (0.641825, 0.000000, 0.322949, 0.437629, 0.060025, 0.000000, 0.713129, 0.028479),
            (0.398742, 0.326415, 0.325854, 0.153563, 0.000000, 0.000000, 0.041588, 0.000000),
            (0.168667, 0.120501, 0.000000, 0.000000, 0.244773, 0.000000, 0.000000, 0.193012),
        ],
    ],
    dtype=np.float32,
)


def _min_max(cam: torch.Tensor) -> torch.Tensor:
    cam = cam - cam.amin(dim=(1, 2), keepdim=True)
    return cam / (1e-7 + cam.amax(dim=(1, 2), keepdim=True))


def test_grad_cam_plusplus_matches_pytorch_grad_cam() -> None:
    net, x, y = _small_cnn()
    ours = _min_max(grad_cam_plusplus(net, x, y, net[2]))
    assert np.abs(ours.numpy() - PYTORCH_GRAD_CAM_PP).max() < 2e-5
    if importlib.util.find_spec("pytorch_grad_cam") is not None:  # where it is installed, the live library too
        from pytorch_grad_cam import GradCAMPlusPlus
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        live = GradCAMPlusPlus(model=net, target_layers=[net[2]])(input_tensor=x, targets=[ClassifierOutputTarget(int(c)) for c in y])
        assert np.abs(ours.numpy() - live).max() < 2e-5


def test_captum_grad_cam_reads_the_layer_output_despite_inplace_ops() -> None:
    """Our hook and captum see the conv's own output even when an in-place ReLU follows it."""
    net, x, y = _small_cnn(inplace=True)
    acts, grads = activations_and_gradients(net, net[2], x, y)
    with torch.no_grad():
        assert torch.equal(acts, net[2](net[1](net[0](x))))
        assert (acts < 0).any(), "pre-ReLU values: the in-place ReLU did not reach the captured tensor"
    expected = (grads.mean(dim=(2, 3), keepdim=True) * acts).sum(dim=1).clamp_min(0)
    assert torch.allclose(grad_cam(net, x, y, net[2]), expected, atol=1e-6)


def test_gradient_saliency_is_simonyans_max_over_channels() -> None:
    net, x, y = _small_cnn()
    xg = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(net(xg).gather(1, y[:, None]).sum(), xg)
    assert torch.equal(gradient_saliency(net, x, y), grad.abs().amax(dim=1))


def _plain_cnn() -> Any:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "docs" / "examples"))
    try:
        from plain_cnn import make
    finally:
        sys.path.pop(0)
    return make()


def test_cam_layer_is_the_last_conv_with_a_large_enough_map() -> None:
    x = torch.rand(2, 3, 32, 32)
    compact: Any = ra.create_model("vgg", layout="compact", width=0.125).eval()
    conv13, _, relu13 = list(compact.block_e.modules())[-3:]
    assert cam_layer(compact, x) is relu13, "conv13 (4 x 4, not the 1 x 1 conv after it), after its BN and ReLU"
    assert cam_layer(compact, x, activated=False) is conv13
    paper: Any = ra.create_model("vgg", layout="paper", width=0.125).eval()
    assert cam_layer(paper, x, activated=False) is paper.global_path[1], "paper layout: the 4 x 4 conv after conv13 (8 x 8)"
    assert cam_layer(paper, x) is paper.global_path[3]
    plain = _plain_cnn()
    assert cam_layer(plain, x) is plain.features[4] and cam_layer(plain, x, activated=False) is plain.features[3]
    assert cam_layer(nn.Sequential(nn.Flatten(), nn.Linear(3072, 10)), x) is None
    plain.cam_layer = plain.features[0]
    assert cam_layer(plain, x) is plain.features[0]

    class Foreign(nn.Module):
        cam_layer = property(lambda self: nn.Conv2d(3, 3, 1))  # a module that is not part of the model

    with pytest.raises(CamLayerError, match="must be one of the model's own modules"):
        cam_layer(Foreign(), x)


class _MaskReader(nn.Module):
    """Logit 0 = mean of channel 0, logit 1 = its negative: Grad-CAM of class 0 is channel 0 itself,
    and the input gradient is the same at every pixel."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 1, 1, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor([1.0, 0.0, 0.0])[None, :, None, None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.conv(x).mean(dim=(1, 2, 3))
        return torch.stack([m, -m], dim=1)


def test_probe_rows_for_models_without_attention() -> None:
    """Channel 0 holds the object mask, so both CAMs are the mask (Jaccard 1) clean and under FGSM
    (which lowers channel 0 evenly), while the constant input gradient binarises to nothing (Jaccard 0)."""
    data = ra.load_dataset("builtin", "test", n=12)
    assert data.masks is not None
    masks = data.masks
    x = torch.full((12, 3, 32, 32), 0.5)
    x[:, 0] = masks.float()
    y = torch.zeros(12, dtype=torch.long)
    model = _MaskReader().eval()
    outcome = probe_model(model, ra.create_attack("fgsm", model), x, y, masks, [0.1])
    seg = outcome.segmentation
    methods = seg["method"].astype(str)
    assert set(methods) == {"gradient saliency", "grad-cam", "grad-cam++", "centred box"}
    for method in ("grad-cam", "grad-cam++"):
        for eps in (0.0, 0.1):
            sel = (methods == method) & (seg["eps"] == eps)
            assert sel.sum() == 12 and np.allclose(seg["jaccard"][sel], 1.0), (method, eps)
    assert np.allclose(seg["jaccard"][methods == "gradient saliency"], 0.0) and (methods == "gradient saliency").sum() == 24
    assert set(seg["stage"][methods != "centred box"].astype(str)) == {"-"}
