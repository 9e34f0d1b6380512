"""Common corruptions (CIFAR-10-C) as pure, deterministic functions of a batch of images.

    from robust_attn.corruptions import CORRUPTIONS, corrupt
    bad = corrupt(images, "fog", 3, seed=0, sample_ids=np.arange(len(images)))

Modules: :mod:`.noise`, :mod:`.blur`, :mod:`.weather`, :mod:`.digital` hold the corruptions and
their parameter tables; :mod:`.filters`, :mod:`.geometry`, :mod:`.fractal` and :mod:`.frost`
the batched image operations they are built from; :mod:`.registry` the table and ``corrupt``.
"""

from robust_attn.corruptions.registry import (
    CORRUPTION_FAMILIES,
    CORRUPTIONS,
    FAMILIES,
    SEVERITIES,
    Corruption,
    corrupt,
    get_corruption,
)

__all__ = ["CORRUPTIONS", "CORRUPTION_FAMILIES", "FAMILIES", "SEVERITIES", "Corruption", "corrupt", "get_corruption"]
