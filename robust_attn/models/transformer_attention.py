"""Attention maps of vision transformers through the suite's attention protocol.

A model that holds a ViT-like trunk (a ``patch_embed`` with a ``grid_size`` and ``blocks`` whose
``attn`` has a ``qkv`` projection and ``num_heads``: timm's ViT and DeiT, and the zoo's ViT) and
declares no ``attention_maps`` of its own gets two maps, each a declared kind:

* ``cls``: the class token's attention in the last block, averaged over heads (Dosovitskiy et al.);
* ``rollout``: attention rollout (Abnar & Zuidema, ACL 2020): each block's head-averaged
  attention mixed with the identity for the residual, 0.5 A + 0.5 I, rows renormalised, multiplied
  from the first block to the last; the class token's row.

Both are read off the patch tokens (prefix tokens dropped), reshaped to the patch grid; the probe
resizes them to the image. The attention weights are recomputed from each block's input with
its own ``qkv`` (and ``q_norm``/``k_norm``), so fused attention kernels need not expose them. The
adapter is chosen by what the model exposes, never by its name.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

MAP_KINDS = ("cls", "rollout")


def find_vit(model: nn.Module) -> nn.Module | None:
    """The first submodule with a patch grid and self-attention blocks (a ViT trunk), or None."""
    for module in model.modules():
        blocks = getattr(module, "blocks", None)
        grid = getattr(getattr(module, "patch_embed", None), "grid_size", None)
        if grid is None or not isinstance(blocks, nn.Sequential | nn.ModuleList) or not len(blocks):
            continue
        if all(hasattr(getattr(b, "attn", None), "qkv") and hasattr(b.attn, "num_heads") for b in blocks):
            return module
    return None


def _weights(attn: Any, tokens: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) of one attention module on its input tokens: (B, heads, N, N)."""
    b, n, _ = tokens.shape
    heads = int(attn.num_heads)
    qkv = attn.qkv(tokens).reshape(b, n, 3, heads, -1).permute(2, 0, 3, 1, 4)
    q, k = qkv[0], qkv[1]
    q = attn.q_norm(q) if hasattr(attn, "q_norm") else q
    k = attn.k_norm(k) if hasattr(attn, "k_norm") else k
    scale = float(getattr(attn, "scale", q.shape[-1] ** -0.5))
    return ((q * scale) @ k.transpose(-2, -1)).softmax(dim=-1)


def block_attention(vit: Any, model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Every block's attention weights (B, heads, N, N) during ``model(x)``."""
    inputs: list[torch.Tensor] = []
    hooks = [b.attn.register_forward_pre_hook(lambda _m, args: inputs.append(args[0].detach())) for b in vit.blocks]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return [_weights(b.attn, t) for b, t in zip(vit.blocks, inputs)]


def _grid(vit: Any, row: torch.Tensor) -> torch.Tensor:
    """The patch tokens of a (B, N) attention row, as (B, grid_h, grid_w)."""
    gh, gw = (int(v) for v in vit.patch_embed.grid_size)
    prefix = row.shape[1] - gh * gw
    return row[:, prefix:].reshape(row.shape[0], gh, gw)


def cls_attention(vit: Any, weights: list[torch.Tensor]) -> torch.Tensor:
    """The class token's attention in the last block, averaged over heads: (B, gh, gw)."""
    return _grid(vit, weights[-1].mean(dim=1)[:, 0])


def rollout(vit: Any, weights: list[torch.Tensor]) -> torch.Tensor:
    """Attention rollout (Abnar & Zuidema 2020) from the class token: (B, gh, gw)."""
    joint: torch.Tensor | None = None
    for w in weights:
        a = w.mean(dim=1)
        a = 0.5 * a + 0.5 * torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
        a = a / a.sum(dim=-1, keepdim=True)
        joint = a if joint is None else a @ joint
    assert joint is not None
    return _grid(vit, joint[:, 0])


class TransformerAttention(nn.Module):
    """A model with a ViT trunk, its logits unchanged, given the attention protocol."""

    attention_stage_names = MAP_KINDS

    def __init__(self, model: nn.Module, vit: nn.Module) -> None:
        super().__init__()
        self.inner = model
        self._vit = [vit]  # a plain list: the trunk is a submodule of ``inner``, not registered twice

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.inner(x)
        return out

    @torch.no_grad()
    def attention_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        vit = self._vit[0]
        weights = block_attention(vit, self.inner, x)
        return [cls_attention(vit, weights), rollout(vit, weights)]

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:  # the wrapped model's declarations (architecture, training_regime, ...)
            return getattr(super().__getattr__("inner"), name)


def with_transformer_attention(model: nn.Module) -> nn.Module:
    """``model`` with the transformer attention protocol when it holds a ViT trunk and declares no
    attention of its own; otherwise ``model`` itself."""
    if callable(getattr(model, "attention_maps", None)):
        return model
    vit = find_vit(model)
    return model if vit is None else TransformerAttention(model, vit).eval()
