"""The zoo table, read from :data:`robust_attn.zoo.ZOO`: every entry with its architecture, data,
recipe and budget, and the architectures :func:`robust_attn.list_models` knows."""

from __future__ import annotations

from md import code, table


def zoo_entries() -> str:
    """Every entry with its training and, where the package ships weights, their clean accuracy per
    seed and the provenance records (robust_attn/weights/<entry>[@seed=N].json)."""
    from robust_attn.epsilon import format_eps
    from robust_attn.shipped import shipped_entries
    from robust_attn.zoo import ZOO, split_seed

    shipped: dict[str, list[tuple[int, dict[str, object]]]] = {}
    for ref, record in shipped_entries():
        base, seed = split_seed(ref)
        shipped.setdefault(base, []).append((seed or 0, record))
    rows = []
    for name, e in ZOO.items():
        images = f"all {e.dataset}" if e.train_size is None else f"{e.train_size:,} {e.dataset}"
        params = {k: format_eps(v, "linf") if k.endswith("eps") else v for k, v in e.recipe_params.items()}
        recipe = e.recipe + "".join(f" ({k} {v})" for k, v in params.items())
        what = ("quick zoo; " if e.quick else "") + e.description
        ours = sorted(shipped.get(name, []), key=lambda sr: sr[0])
        weights = ", ".join(f"seed {s}: {100 * float(r['clean_accuracy']):.1f}%" for s, r in ours) if ours else "trained on demand"  # type: ignore[arg-type]
        rows.append((code(name), code(e.model), f"{recipe}, {e.epochs} epochs of {images} images", weights, what))
    return table(("entry", "architecture", "training", "shipped weights (clean accuracy, 2,000 test images)", "what it is"), rows)


def architectures() -> str:
    from robust_attn.models import list_models

    return ", ".join(code(m) for m in list_models())
