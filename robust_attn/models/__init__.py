"""Model zoo architectures, registered by name: VGG baselines and LTPA attention variants, and the
families they are compared with at one budget: a PreAct ResNet-18 and a small vision transformer."""

from robust_attn.models import resnet, vit  # noqa: F401  (registers the ResNet and ViT controls)
from robust_attn.models.attention import Attended, AttentionBlock
from robust_attn.models.fold import fold_batchnorm
from robust_attn.models.normalize import Normalize
from robust_attn.models.registry import create_model, create_model_for, list_models, register_model
from robust_attn.models.vgg import VGG, AttentionOutput, AttentionVGG

__all__ = [
    "VGG",
    "Attended",
    "AttentionBlock",
    "AttentionOutput",
    "AttentionVGG",
    "Normalize",
    "create_model",
    "create_model_for",
    "fold_batchnorm",
    "list_models",
    "register_model",
]
