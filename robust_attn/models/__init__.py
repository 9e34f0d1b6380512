"""Model zoo architectures: VGG baselines and LTPA attention variants, registered by name."""

from robust_attn.models.attention import Attended, AttentionBlock
from robust_attn.models.fold import fold_batchnorm
from robust_attn.models.normalize import Normalize
from robust_attn.models.registry import create_model, list_models, register_model
from robust_attn.models.vgg import VGG, AttentionOutput, AttentionVGG

__all__ = [
    "VGG",
    "Attended",
    "AttentionBlock",
    "AttentionOutput",
    "AttentionVGG",
    "Normalize",
    "create_model",
    "fold_batchnorm",
    "list_models",
    "register_model",
]
