"""Class activation maps of models without attention, the paper's "other CNN attention maps" at
weakly supervised segmentation: Grad-CAM (Selvaraju et al. 2017, captum's ``LayerGradCam``) and
Grad-CAM++ (Chattopadhyay et al. 2018, closed form below), on the model's CAM layer.

The CAM layer is ``model.cam_layer`` when the model declares one (an ``nn.Module`` whose output
is a (B, C, H, W) map), else the last ``nn.Conv2d`` in module order whose output on the probed
images is at least ``MIN_CAM_SIDE`` pixels on each side, taken after the BatchNorm and activation
that follow it in its ``nn.Sequential`` block (conv -> BN -> ReLU: the ReLU's output, as
pytorch-grad-cam's examples pick VGG's last ReLU). Two measured reasons (builtin/vgg, 200 test
images): the very last convolution of the zoo's VGG (compact layout) works on a 1 x 1 map, where
every CAM is constant, so the floor picks conv13 (4 x 4, the l3 stage the attention models attend);
and Grad-CAM++ assumes non-negative maps: on conv13's raw output (61% negative) its Jaccard index
is 0.056, on the activated one 0.125 (Grad-CAM: 0.175 raw, 0.158 activated). Maps are for the
class ``y`` given (the probe passes the true class, as it does for input-gradient saliency).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from robust_attn.errors import ModelError

MIN_CAM_SIDE = 4  # 1/8 of a 32 x 32 input: the coarsest attention stage of the zoo's compact layout
GRADCAM_PP_EPS = 1e-6  # pytorch-grad-cam's guard in the alpha denominator (kept so both agree)


# What may follow the last convolution inside its block and still be "its" map.
_FOLLOWERS = (nn.BatchNorm2d, nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Mish, nn.Hardswish)


class CamLayerError(ModelError):
    """A declared ``cam_layer`` that is not a module of the model, or is not called once per forward."""


def _conv_outputs(model: nn.Module, x: torch.Tensor) -> list[tuple[nn.Conv2d, tuple[int, ...]]]:
    """Each nn.Conv2d of ``model`` in module order with its output shape on ``x`` (uncalled ones omitted)."""
    shapes: dict[int, tuple[int, ...]] = {}
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    handles = [m.register_forward_hook(lambda mod, i, out: shapes.__setitem__(id(mod), tuple(out.shape))) for m in convs]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return [(m, shapes[id(m)]) for m in convs if id(m) in shapes]


def _activated(model: nn.Module, conv: nn.Module) -> nn.Module:
    """The last of the BatchNorm / activation modules that directly follow ``conv`` in its parent
    nn.Sequential (conv -> BN -> ReLU gives the ReLU), else ``conv`` itself."""
    for parent in model.modules():
        if isinstance(parent, nn.Sequential):
            children = list(parent.children())
            if any(c is conv for c in children):
                i = next(k for k, c in enumerate(children) if c is conv)
                layer = conv
                for child in children[i + 1 :]:
                    if not isinstance(child, _FOLLOWERS):
                        break
                    layer = child
                return layer
    return conv


def cam_layer(model: nn.Module, x: torch.Tensor, activated: bool = True) -> nn.Module | None:
    """The layer whose maps the CAMs read: ``model.cam_layer`` if declared; else the last nn.Conv2d in
    module order with an output of at least MIN_CAM_SIDE x MIN_CAM_SIDE on ``x`` and, with
    ``activated``, the BatchNorm / activation right after it (the non-negative maps Grad-CAM++'s
    derivation assumes). None if no convolution is large enough."""
    declared = getattr(model, "cam_layer", None)
    if declared is not None:
        if not isinstance(declared, nn.Module) or all(declared is not m for m in model.modules()):
            raise CamLayerError(f"{type(model).__name__}.cam_layer must be one of the model's own modules, got {type(declared).__name__}")
        return declared
    fit = [m for m, shape in _conv_outputs(model, x[:2]) if min(shape[-2:]) >= MIN_CAM_SIDE]
    if not fit:
        return None
    return _activated(model, fit[-1]) if activated else fit[-1]


def activations_and_gradients(model: nn.Module, layer: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The layer's output A (B, C, H, W) on ``x`` and d logit_y / d A (in-place ops after the layer
    see a copy, so A is the layer's own output)."""
    seen: list[torch.Tensor] = []

    def hook(module: nn.Module, inputs: object, output: torch.Tensor) -> torch.Tensor:
        seen.append(output)
        return output.clone()

    handle = layer.register_forward_hook(hook)
    try:
        with torch.enable_grad():
            logits = model(x)
            if len(seen) != 1:
                raise CamLayerError(f"the CAM layer {type(layer).__name__} ran {len(seen)} times in one forward; declare cam_layer")
            (grad,) = torch.autograd.grad(logits.gather(1, y[:, None]).sum(), seen[0])
    finally:
        handle.remove()
    return seen[0].detach(), grad.detach()


def _upsample(cam: torch.Tensor, size: torch.Size) -> torch.Tensor:
    """(B, h, w) -> (B, H, W), bilinear, as the attention maps are upsampled."""
    return F.interpolate(cam[:, None].float(), size=size, mode="bilinear", align_corners=False)[:, 0]


def grad_cam(model: nn.Module, x: torch.Tensor, y: torch.Tensor, layer: nn.Module) -> torch.Tensor:
    """ReLU(sum_k mean_ij(d logit_y / d A_kij) A_k) by captum's LayerGradCam, upsampled to (B, H, W)."""
    from captum.attr import LayerGradCam

    with torch.enable_grad():
        cam = LayerGradCam(model, layer).attribute(x, target=y, relu_attributions=True)
    return _upsample(cam.detach()[:, 0], x.shape[-2:])


def grad_cam_plusplus_weights(acts: torch.Tensor, grads: torch.Tensor, eps: float = GRADCAM_PP_EPS) -> torch.Tensor:
    """Grad-CAM++ channel weights (B, C), the paper's eq. 19 for an exponential score:
    alpha_kij = g^2 / (2 g^2 + sum_ab A_kab g^3 + eps) (0 where g = 0), w_k = sum_ij alpha_kij ReLU(g_kij),
    with g = d logit / d A. The score's exp factor is a positive per-image constant and is dropped."""
    g2 = grads * grads
    total = acts.sum(dim=(2, 3), keepdim=True)
    alpha = torch.where(grads != 0, g2 / (2 * g2 + total * g2 * grads + eps), torch.zeros_like(grads))
    return (alpha * grads.clamp_min(0)).sum(dim=(2, 3))


def grad_cam_plusplus(model: nn.Module, x: torch.Tensor, y: torch.Tensor, layer: nn.Module, eps: float = GRADCAM_PP_EPS) -> torch.Tensor:
    """ReLU(sum_k w_k A_k) with the Grad-CAM++ weights, upsampled to (B, H, W)."""
    acts, grads = activations_and_gradients(model, layer, x, y)
    weights = grad_cam_plusplus_weights(acts, grads, eps)
    cam = (weights[:, :, None, None] * acts).sum(dim=1).clamp_min(0)
    return _upsample(cam, x.shape[-2:])
