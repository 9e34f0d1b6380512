"""Common corruptions (CIFAR-10-C, ImageNet-C) as pure, deterministic functions of a batch of images.

    from robust_attn.corruptions import CORRUPTIONS, corrupt, parameter_set
    bad = corrupt(images, "fog", 3, seed=0, sample_ids=np.arange(len(images)))
    parameter_set(images.shape)  # "cifar" for 32x32, "imagenet" for 224x224: record it with the images

Modules: :mod:`.noise`, :mod:`.blur`, :mod:`.weather`, :mod:`.digital` hold the corruptions;
:mod:`.parameters` the reference scripts' parameter tables and the size rule that picks one;
:mod:`.filters`, :mod:`.geometry`, :mod:`.fractal` and :mod:`.frost` the batched image
operations they are built from; :mod:`.registry` the table and ``corrupt``.
"""

from robust_attn.corruptions.parameters import PARAMETER_SETS, ParameterSet, parameter_set
from robust_attn.corruptions.registry import (
    CORRUPTION_FAMILIES,
    CORRUPTIONS,
    FAMILIES,
    SEVERITIES,
    Corruption,
    corrupt,
    get_corruption,
)

__all__ = [
    "CORRUPTIONS",
    "CORRUPTION_FAMILIES",
    "FAMILIES",
    "PARAMETER_SETS",
    "SEVERITIES",
    "Corruption",
    "ParameterSet",
    "corrupt",
    "get_corruption",
    "parameter_set",
]
