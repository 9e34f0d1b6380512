"""VGG-16-BN for small images, with and without LTPA attention (Jetley et al., ICLR 2018).

Two layouts share one trunk:

* ``paper``: the authors' layout. The first two max-pools are removed, so at 32x32 input
  l1 = conv7 (256 x 32 x 32), l2 = conv10 (512 x 16 x 16), l3 = conv13 (512 x 8 x 8).
* ``compact``: one max-pool after the first block, so the stages are at 16/8/4 (the reference
  PyTorch "attention after pooling" variant); about 4x cheaper, the default for CPU zoos.

The global feature g comes from two more pooled convs and a 512 -> 512 linear layer (FC-1).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal, NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from robust_attn.errors import ModelError
from robust_attn.models.attention import Attended, AttentionBlock, Compatibility, Normalisation
from robust_attn.models.normalize import Normalize
from robust_attn.models.registry import register_model

Layout = Literal["paper", "compact"]
Combine = Literal["concat", "indep"]
Projection = Literal["g_down", "l_up"]

# VGG-16 conv widths per block; conv7, conv10 and conv13 end blocks c, d and e.
_BLOCKS: tuple[tuple[int, ...], ...] = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))
_CIFAR_IMAGENET_MEAN = (0.5, 0.5, 0.5)
_CIFAR_IMAGENET_STD = (0.25, 0.25, 0.25)


class AttentionOutput(NamedTuple):
    """Logits plus one attention map (and raw score map) per attended stage."""

    logits: torch.Tensor
    maps: list[torch.Tensor]
    scores: list[torch.Tensor]


def _scaled(channels: int, width: float) -> int:
    return max(1, round(channels * width))


def _conv_bn_relu(cin: int, cout: int, dropout: float) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    return layers


def _block(cin: int, widths: Sequence[int], first_dropout: float, dropout: float) -> nn.Sequential:
    """cifar.torch convention: dropout after every conv of a block but the last."""
    layers: list[nn.Module] = []
    for i, cout in enumerate(widths):
        last = i == len(widths) - 1
        rate = 0.0 if last else (first_dropout if i == 0 else dropout)
        layers += _conv_bn_relu(cin, cout, rate)
        cin = cout
    return nn.Sequential(*layers)


def _pool() -> nn.MaxPool2d:
    return nn.MaxPool2d(2, 2, ceil_mode=True)


def _head(channels: int, dropout: float) -> nn.Sequential:
    """BN, ReLU, dropout applied to a feature vector before a linear classifier."""
    layers: list[nn.Module] = [nn.BatchNorm1d(channels), nn.ReLU(inplace=True)]
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


def _split(head: nn.Module) -> tuple[nn.Module, nn.Module]:
    """A head ``Sequential(BN/ReLU/dropout, Linear)`` as (its feature part, its linear classifier)."""
    assert isinstance(head, nn.Sequential)
    return head[:-1], head[-1]


class VGG(nn.Module):
    """VGG-16-BN with an optional LTPA attention head.

    ``attention_stages=0`` is the baseline (classifier on g); 2 attends (l2, l3), 3 attends
    (l1, l2, l3). ``forward`` returns logits only so every attack library can use the model;
    :meth:`forward_with_attention` also returns the maps.
    """

    def __init__(
        self,
        num_classes: int = 10,
        *,
        attention_stages: int = 0,
        compatibility: Compatibility = "pc",
        combine: Combine = "concat",
        normalisation: Normalisation = "softmax",
        projection: Projection = "g_down",
        layout: Layout = "paper",
        width: float = 1.0,
        dropout: float = 1.0,
        in_channels: int = 3,
        image_size: int = 32,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        if attention_stages not in (0, 2, 3):
            raise ModelError(f"attention_stages must be 0, 2 or 3, got {attention_stages}")
        if layout not in ("paper", "compact"):
            raise ModelError(f"unknown layout {layout!r}; use 'paper' or 'compact'")
        if combine not in ("concat", "indep"):
            raise ModelError(f"unknown combine {combine!r}; use 'concat' or 'indep'")
        if projection not in ("g_down", "l_up"):
            raise ModelError(f"unknown projection {projection!r}; use 'g_down' or 'l_up'")
        if width <= 0:
            raise ModelError(f"width must be positive, got {width}")
        min_size = 8 if layout == "paper" else 16
        if image_size < min_size:
            raise ModelError(f"image_size {image_size} is too small for the {layout} layout (minimum {min_size})")
        self.num_classes = num_classes
        self.attention_stages = attention_stages
        self.combine = combine
        self.layout = layout
        self.image_size = image_size
        mean = tuple(mean) if mean is not None else _CIFAR_IMAGENET_MEAN[:1] * in_channels
        std = tuple(std) if std is not None else _CIFAR_IMAGENET_STD[:1] * in_channels
        self.normalize = Normalize(mean, std)

        w = [[_scaled(c, width) for c in block] for block in _BLOCKS]
        d3, d4 = 0.3 * dropout, 0.4 * dropout
        self.block_a = _block(in_channels, w[0], d3, d4)
        self.pool_a: nn.Module = _pool() if layout == "compact" else nn.Identity()
        self.block_b = _block(w[0][-1], w[1], d4, d4)
        self.block_c = _block(w[1][-1], w[2], d4, d4)  # ends with conv7 -> l1
        self.block_d = nn.Sequential(_pool(), _block(w[2][-1], w[3], d4, d4))  # conv10 -> l2
        self.block_e = nn.Sequential(_pool(), _block(w[3][-1], w[4], d4, d4))  # conv13 -> l3
        c1, c2, c3 = w[2][-1], w[3][-1], w[4][-1]
        cg = c3
        self.global_path = nn.Sequential(
            _pool(),
            *_conv_bn_relu(c3, cg, 0.0),
            _pool(),
            *_conv_bn_relu(cg, cg, 0.0),
            nn.AdaptiveMaxPool2d(1),
            nn.Flatten(),
            *([nn.Dropout(0.5 * dropout)] if dropout > 0 else []),
            nn.Linear(cg, cg),
        )

        stage_channels = {0: [], 2: [c2, c3], 3: [c1, c2, c3]}[attention_stages]
        self.project_l1: nn.Module | None = None
        self.project_g1: nn.Module | None = None
        if attention_stages == 3 and c1 != cg:
            if projection == "l_up":
                self.project_l1 = nn.Conv2d(c1, cg, 1, bias=False)
                stage_channels[0] = cg
            else:
                self.project_g1 = nn.Sequential(_head(cg, 0.5 * dropout), nn.Linear(cg, c1))
        self.stage_channels = stage_channels
        self.stage_names = ["l1", "l2", "l3"][3 - attention_stages :] if attention_stages else []
        self.attention = nn.ModuleList(AttentionBlock(c, compatibility, normalisation) for c in stage_channels)

        if attention_stages == 0:
            self.heads = nn.ModuleList([nn.Sequential(_head(cg, 0.5 * dropout), nn.Linear(cg, num_classes))])
        elif combine == "concat":
            self.stage_heads = nn.ModuleList(_head(c, 0.5 * dropout) for c in stage_channels)
            self.heads = nn.ModuleList([nn.Linear(sum(stage_channels), num_classes)])
        else:
            self.heads = nn.ModuleList(nn.Sequential(_head(c, 0.5 * dropout), nn.Linear(c, num_classes)) for c in stage_channels)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        blocks = [b for b in self.attention if isinstance(b, AttentionBlock)]
        for block in blocks:
            block.reset_parameters()
        if blocks and blocks[0].compatibility == "dp":
            # <l, g> = 0 for every position starts each map uniform, as u = 0 does for pc
            last_g1 = list(self.project_g1)[-1] if isinstance(self.project_g1, nn.Sequential) else None
            for layer in (list(self.global_path)[-1], last_g1):
                if isinstance(layer, nn.Linear):
                    nn.init.zeros_(layer.weight)
                    nn.init.zeros_(layer.bias)

    def _features(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        x = self.normalize(x)
        x = self.block_b(self.pool_a(self.block_a(x)))
        l1 = self.block_c(x)
        l2 = self.block_d(l1)
        l3 = self.block_e(l2)
        g = self.global_path(l3)
        return [l1, l2, l3], g

    def _attend(self, x: torch.Tensor) -> tuple[list[Attended], torch.Tensor]:
        """The attention stages' outputs and g (no stages for the baseline)."""
        locals_, g = self._features(x)
        outs: list[Attended] = []
        for i, (block, local) in enumerate(zip(self.attention, locals_[3 - self.attention_stages :])):
            glob = g
            if i == 0 and self.attention_stages == 3:
                if self.project_l1 is not None:
                    local = self.project_l1(local)
                elif self.project_g1 is not None:
                    glob = self.project_g1(g)
            outs.append(block(local, glob))
        return outs, g

    def _head_inputs(self, outs: list[Attended], g: torch.Tensor) -> list[torch.Tensor]:
        """What each linear classifier reads: per head, its feature after BN/ReLU (dropout in training)."""
        if self.attention_stages == 0:
            return [_split(self.heads[0])[0](g)]
        if self.combine == "concat":
            return [torch.cat([head(o.feature) for head, o in zip(self.stage_heads, outs)], dim=1)]
        return [_split(head)[0](o.feature) for head, o in zip(self.heads, outs)]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The global descriptor the paper's linear probes read, (B, D): exactly the input of the
        linear classifier(s). Baseline: g after its head's BN/ReLU (D = 512 x width). LTPA models:
        the attended stage features after their BN/ReLU, concatenated (``indep``: each stage's own
        classifier input, concatenated in stage order). Call in eval mode (dropout is active in training)."""
        return torch.cat(self._head_inputs(*self._attend(x)), dim=1)

    def forward_with_attention(self, x: torch.Tensor, upsample: bool = False) -> AttentionOutput:
        """Logits and the per-stage attention maps (B, 1, H_s, W_s); ``upsample`` resizes
        the maps (bilinear) to the input size."""
        outs, g = self._attend(x)
        inputs = self._head_inputs(outs, g)
        if self.attention_stages == 0:
            return AttentionOutput(_split(self.heads[0])[1](inputs[0]), [], [])
        if self.combine == "concat":
            logits = self.heads[0](inputs[0])
        else:
            logits = torch.stack([_split(head)[1](f) for head, f in zip(self.heads, inputs)]).mean(dim=0)
        maps = [o.attention for o in outs]
        scores = [o.scores for o in outs]
        if upsample:
            size = x.shape[-2:]
            maps = [F.interpolate(m, size=size, mode="bilinear", align_corners=False) for m in maps]
            scores = [F.interpolate(s, size=size, mode="bilinear", align_corners=False) for s in scores]
        return AttentionOutput(logits, maps, scores)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_attention(x).logits


class AttentionVGG(VGG):
    """VGG with LTPA attention: implements the suite's attention protocol, ``attention_maps(x)``
    (one (B, H, W) map per attended stage, each summing to 1 over space), which the attention
    probes, drift and segmentation read for any model that has it."""

    @property
    def attention_stage_names(self) -> list[str]:
        """Names of the attended stages, in the order of :meth:`attention_maps`."""
        return list(self.stage_names)

    def attention_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The per-stage attention maps (B, H_s, W_s) at the stages' own resolutions."""
        return [m.squeeze(1) for m in self.forward_with_attention(x).maps]


def _factory(stages: int, compatibility: Compatibility = "pc", combine: Combine = "concat") -> Callable[..., VGG]:
    def make(**kwargs: object) -> VGG:
        cls = AttentionVGG if stages else VGG
        return cls(attention_stages=stages, compatibility=compatibility, combine=combine, **kwargs)  # type: ignore[arg-type]

    return make


register_model("vgg")(_factory(0))
for _stages in (2, 3):
    for _compat in ("pc", "dp"):
        register_model(f"vgg-att{_stages}-{_compat}")(_factory(_stages, _compat, "concat"))
        register_model(f"vgg-att{_stages}-{_compat}-indep")(_factory(_stages, _compat, "indep"))
