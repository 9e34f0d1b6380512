"""A small vision transformer for the built-in 32x32 data: timm's ``VisionTransformer`` with 4x4
patches (an 8x8 grid), embedding width 64, 8 blocks of 4 heads, MLP ratio 2. At 0.28 M parameters
and 17 M multiply-adds it matches the zoo's compact VGG (0.31 M, 15.5 M), so the families are
compared at one compute budget. Its attention is the class token's last-block map and the
rollout (robust_attn.models.transformer_attention), declared like LTPA's maps."""

from __future__ import annotations

import torch
import torch.nn as nn

from robust_attn.models.normalize import Normalize
from robust_attn.models.registry import register_model
from robust_attn.models.transformer_attention import MAP_KINDS, block_attention, cls_attention, rollout


class SmallViT(nn.Module):
    """Normalisation inside, logits out; ``attention_maps`` as the attention protocol asks."""

    attention_stage_names = MAP_KINDS

    def __init__(self, num_classes: int = 10, in_channels: int = 3, image_size: int = 32, patch_size: int = 4, embed_dim: int = 64,
                 depth: int = 8, num_heads: int = 4, mlp_ratio: float = 2.0, mean: tuple[float, ...] = (0.5, 0.5, 0.5),
                 std: tuple[float, ...] = (0.25, 0.25, 0.25)) -> None:  # fmt: skip
        from timm.models.vision_transformer import VisionTransformer

        super().__init__()
        self.normalize = Normalize(mean[:in_channels], std[:in_channels])
        self.vit = VisionTransformer(img_size=image_size, patch_size=patch_size, in_chans=in_channels, num_classes=num_classes,
                                     embed_dim=embed_dim, depth=depth, num_heads=num_heads, mlp_ratio=mlp_ratio)  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.vit(self.normalize(x))
        return out

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The class token after the final norm: what the head reads (the features protocol)."""
        vit = self.vit
        return vit.forward_head(vit.forward_features(self.normalize(x)), pre_logits=True)

    @torch.no_grad()
    def attention_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        weights = block_attention(self.vit, self, x)
        return [cls_attention(self.vit, weights), rollout(self.vit, weights)]


@register_model("vit")
def small_vit(num_classes: int = 10, in_channels: int = 3, image_size: int = 32, **kwargs: object) -> nn.Module:
    """The zoo's small ViT (architecture options: patch_size, embed_dim, depth, num_heads, mlp_ratio)."""
    options = {k: kwargs[k] for k in ("patch_size", "embed_dim", "depth", "num_heads", "mlp_ratio") if k in kwargs}
    mean = kwargs.get("mean", (0.5, 0.5, 0.5))
    std = kwargs.get("std", (0.25, 0.25, 0.25))
    return SmallViT(num_classes, in_channels, image_size, mean=tuple(mean), std=tuple(std), **options)  # type: ignore[arg-type]
