"""Vision transformers through the attention protocol: on a timm ViT with hand-set weights whose
attention is known, the class token's last-block map and the attention rollout point where they
must; a `timm:` ViT built with architecture options (img_size, patch_size) is swept with
attention rows; the adapter is chosen by the trunk the model exposes, not its name."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn as nn

import robust_attn as ra
from robust_attn.models.transformer_attention import TransformerAttention, find_vit, with_transformer_attention


def hand_set_vit(c: float = 8.0) -> nn.Module:
    """A one-block ViT on 8x8 images in 4x4 patches (a 2x2 grid), embed dim 2, one head: a patch's
    token is (its mean brightness, 0); the class token is (1, 0); q = c * token, k = token, so the
    class token attends to the brightest patch with weight proportional to exp(c * brightness / sqrt(2))."""
    from timm.models.vision_transformer import VisionTransformer

    vit = VisionTransformer(img_size=8, patch_size=4, in_chans=3, num_classes=2, embed_dim=2, depth=1, num_heads=1, mlp_ratio=1.0,
                            qkv_bias=False, class_token=True, global_pool="token", pos_embed="learn")  # fmt: skip
    with torch.no_grad():
        for p in vit.parameters():
            p.zero_()
        vit.patch_embed.proj.weight[0].fill_(1.0 / (3 * 16))  # dim 0: the patch's mean over channels and pixels
        vit.cls_token[0, 0, 0] = 1.0
        block = vit.blocks[0]
        block.norm1 = nn.Identity()  # the tokens reach the attention as they are
        qkv = block.attn.qkv.weight  # (3 * 2, 2): rows 0-1 q, 2-3 k, 4-5 v
        qkv[0, 0], qkv[2, 0] = c, 1.0
    return vit.eval()


def _image(bright: tuple[int, int]) -> torch.Tensor:
    x = torch.full((1, 3, 8, 8), 0.1)
    r, col = bright
    x[:, :, 4 * r : 4 * r + 4, 4 * col : 4 * col + 4] = 0.9
    return x


@pytest.mark.parametrize("bright", [(0, 0), (0, 1), (1, 0), (1, 1)])
def test_the_maps_of_a_hand_set_vit_are_known(bright: tuple[int, int]) -> None:
    model = with_transformer_attention(hand_set_vit())
    assert isinstance(model, TransformerAttention) and model.attention_stage_names == ("cls", "rollout")
    cls_map, rolled = model.attention_maps(_image(bright))
    assert cls_map.shape == rolled.shape == (1, 2, 2)
    # the class token's weights over [cls, p00, p01, p10, p11] are softmax(c * brightness / sqrt(head dim 2)): known exactly
    scale = 2**-0.5
    scores = torch.tensor([8.0 * scale, *(8.0 * scale * (0.9 if (r, col) == bright else 0.1) for r in (0, 1) for col in (0, 1))])
    expected = scores.softmax(0)[1:].reshape(2, 2)
    torch.testing.assert_close(cls_map[0], expected, rtol=1e-5, atol=1e-6)
    assert tuple(int(v) for v in divmod(int(rolled[0].argmax()), 2)) == bright
    # one block: rollout is the class row of 0.5 A + 0.5 I (rows sum to 1 already), i.e. half the attention
    torch.testing.assert_close(rolled[0], 0.5 * expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(model(_image(bright)), hand_set_vit()(_image(bright)))


def test_uniform_attention_gives_flat_maps() -> None:
    model = with_transformer_attention(hand_set_vit(c=0.0))
    cls_map, _ = model.attention_maps(torch.rand(3, 3, 8, 8))
    torch.testing.assert_close(cls_map, torch.full((3, 2, 2), 1 / 5))


def test_the_adapter_follows_the_trunk_not_the_name() -> None:
    class Renamed(nn.Module):  # a user's wrapper around a ViT: found through its submodules
        def __init__(self) -> None:
            super().__init__()
            self.backbone = hand_set_vit()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.backbone(x)

    assert find_vit(Renamed()) is not None and isinstance(with_transformer_attention(Renamed()), TransformerAttention)
    assert with_transformer_attention(nn.Linear(2, 2)).__class__ is nn.Linear
    cnn = ra.create_model("vgg-att3-pc", num_classes=10, width=0.0625, layout="compact")
    assert with_transformer_attention(cnn) is cnn, "a model with its own attention keeps it"


def test_a_timm_vit_with_architecture_options_is_swept_with_attention_rows(tmp_path: Path) -> None:
    """`{ref = "timm:vit_tiny_patch16_224", checkpoint, num_classes = 10, img_size = 32, patch_size = 4}`
    on the built-in 32x32 data: loaded with the options, its card lists the two maps, and the sweep
    writes attention drift rows for it."""
    import timm

    torch.manual_seed(0)
    vit = timm.create_model("vit_tiny_patch16_224", num_classes=10, img_size=32, patch_size=4, depth=2)
    weights = tmp_path / "vit.pth"
    torch.save(vit.state_dict(), weights)
    ref = {"ref": "timm:vit_tiny_patch16_224", "checkpoint": str(weights), "num_classes": 10, "img_size": 32, "patch_size": 4, "depth": 2}
    model, card = ra.load_model(ref["ref"], "cpu", **{k: v for k, v in ref.items() if k != "ref"})
    assert card.attention == ("cls", "rollout") and model(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    spec = ra.parse_spec({"models": [ref], "n": 12, "batch_size": 12, "attention_samples": 6, "diagnostic_samples": 0,
                          "attacks": [{"name": "pgd", "steps": 2, "eps": ["0", "2/255"]}]})  # fmt: skip
    run = ra.load_run(ra.run_sweep(spec, tmp_path / "run", progress=False))
    assert set(run.drift["stage"]) == {"cls", "rollout"} and run.model_info(spec.models[0])["attention"] == ["cls", "rollout"]
