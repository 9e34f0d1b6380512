"""A PreAct ResNet-18 (He et al., ECCV 2016), the convolutional control RobustBench's CIFAR models
use, at a width that matches the zoo's compact VGG in multiply-adds on 32x32 images (base width 11:
about 16 M multiply-adds and 0.33 M parameters against the VGG's 15.5 M and 0.31 M)."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from robust_attn.errors import ModelError
from robust_attn.models.normalize import Normalize
from robust_attn.models.registry import register_model


class PreActBlock(nn.Module):
    """BN-ReLU-conv twice, with a projection shortcut when the shape changes."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(cin), nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2, self.conv2 = nn.BatchNorm2d(cout), nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.shortcut = nn.Conv2d(cin, cout, 1, stride, bias=False) if stride != 1 or cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(x))
        skip = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + skip


class PreActResNet18(nn.Module):
    """Four stages of two pre-activation blocks at widths w, 2w, 4w, 8w; global average pooling."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3, width: int = 11, mean: tuple[float, ...] = (0.5, 0.5, 0.5),
                 std: tuple[float, ...] = (0.25, 0.25, 0.25)) -> None:  # fmt: skip
        super().__init__()
        self.normalize = Normalize(mean[:in_channels], std[:in_channels])
        self.stem = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        stages, cin = [], width
        for i, cout in enumerate((width, 2 * width, 4 * width, 8 * width)):
            stages += [PreActBlock(cin, cout, 1 if i == 0 else 2), PreActBlock(cout, cout, 1)]
            cin = cout
        self.stages = nn.Sequential(*stages)
        self.bn = nn.BatchNorm2d(cin)
        self.act = nn.ReLU()
        self.cam_layer = self.act  # the last feature maps, for class activation maps
        self.fc = nn.Linear(cin, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled descriptor the classifier reads (the features protocol)."""
        out = self.act(self.bn(self.stages(self.stem(self.normalize(x)))))
        return F.adaptive_avg_pool2d(out, 1).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.fc(self.features(x))
        return out


@register_model("resnet")
def preact_resnet18(num_classes: int = 10, in_channels: int = 3, image_size: int = 32, width: int = 11, **kwargs: object) -> nn.Module:
    """PreAct ResNet-18 of base width ``width`` (64 is the standard one)."""
    if isinstance(width, bool) or not float(width).is_integer() or width < 1:
        raise ModelError(f"resnet: width is the base number of channels, a positive integer (11 matches the compact VGG); got {width!r}")
    mean = kwargs.get("mean", (0.5, 0.5, 0.5))
    std = kwargs.get("std", (0.25, 0.25, 0.25))
    return PreActResNet18(num_classes, in_channels, int(width), tuple(mean), tuple(std))  # type: ignore[arg-type]
