"""The zoo table, read from :data:`robust_attn.zoo.ZOO`: every entry with its architecture, data,
recipe and budget, and the architectures :func:`robust_attn.list_models` knows."""

from __future__ import annotations

from md import code, table


def zoo_entries() -> str:
    from robust_attn.epsilon import format_eps
    from robust_attn.zoo import ZOO

    rows = []
    for name, e in ZOO.items():
        images = f"all {e.dataset}" if e.train_size is None else f"{e.train_size:,} {e.dataset}"
        params = {k: format_eps(v, "linf") if k.endswith("eps") else v for k, v in e.recipe_params.items()}
        recipe = e.recipe + "".join(f" ({k} {v})" for k, v in params.items())
        what = ("quick zoo; " if e.quick else "") + e.description
        rows.append((code(name), code(e.model), f"{recipe}, {e.epochs} epochs of {images} images", what))
    return table(("entry", "architecture", "training", "what it is"), rows)


def architectures() -> str:
    from robust_attn.models import list_models

    return ", ".join(code(m) for m in list_models())
