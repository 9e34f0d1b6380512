"""The model zoo: named, reproducible training configurations and their cached checkpoints.

An entry is data (architecture, data set, recipe, seed), not code; its checkpoint lives in
``$ROBUST_ATTN_HOME/zoo/<name>.safetensors`` and is trained on demand when missing, so
``load_model("builtin/vgg-att3-pc")`` works offline on a fresh machine. Every read of the cache
verifies the file (:mod:`robust_attn.verified`): a damaged or unreadable checkpoint is a one-line
error naming it and the fix, found before anything trains, and is never retrained in its place
unless asked (``--retrain``); one trained with another configuration of its entry is retrained
with a printed note.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from robust_attn import shipped, verified
from robust_attn.checkpoint import CHECKPOINT, METADATA_KEY, file_sha256, load_checkpoint, read_metadata, split_weights
from robust_attn.data import ImageDataset, load_dataset
from robust_attn.data.loading import load_in_memory
from robust_attn.device import resolve_device
from robust_attn.errors import CheckpointError, ModelError
from robust_attn.models import create_model_for
from robust_attn.training import TrainConfig, get_recipe, resume_path, train_model

# Compact layout at 1/8 width without dropout: about 2,500 images/s for training on 2 cores.
_CPU_KWARGS: dict[str, Any] = {"layout": "compact", "width": 0.125, "dropout": 0.0}


@dataclass(frozen=True)
class ZooEntry:
    """How one zoo model is built and trained."""

    name: str
    model: str
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    dataset: str = "builtin"
    recipe: str = "fast"
    epochs: int = 8
    train_size: int | None = 20_000
    seed: int = 0  # training seed: initialisation, shuffling, augmentation
    data_seed: int = 0  # which draw of the built-in data set; fixed, so seeds differ only in training
    recipe_params: dict[str, Any] = field(default_factory=dict)  # overrides of the recipe (e.g. train_eps)
    quick: bool = False
    description: str = ""

    def config(self) -> dict[str, Any]:
        """The fields that determine the weights; a cached checkpoint must match them."""
        d = asdict(self)
        d.pop("description")
        d.pop("quick")
        if not d["recipe_params"]:  # only when set, so caches made before the field existed stay valid
            d.pop("recipe_params")
        return d


# One budget for every built-in entry, so that compared models differ only in architecture and
# seed: chosen from per-epoch test accuracy over several seeds (README, "Model zoo").
BUILTIN_EPOCHS = 6


def _builtin(model: str, quick: bool, description: str) -> ZooEntry:
    return ZooEntry(f"builtin/{model}", model, dict(_CPU_KWARGS), epochs=BUILTIN_EPOCHS, quick=quick, description=description)


# Adversarially trained forms of the quick zoo: FGSM with a random start (Wong et al. 2020) at
# L-inf eps 2/255, twice the clean budget's epochs (README, "Adversarially trained models").
AT_EPS = 2 / 255
AT_EPOCHS = 10


# The families beside LTPA at the compact VGG's budget (same images, epochs, recipes; about the same
# multiply-adds): a PreAct ResNet-18 of base width 11 and a small ViT (robust_attn.models).
FAMILY_KWARGS: dict[str, dict[str, Any]] = {"resnet": {"width": 11}, "vit": {}}


def model_defaults(model: str) -> dict[str, Any]:
    """The architecture options the zoo trains ``model`` with on a CPU (the VGG family's compact
    layout at width 1/8; the ResNet's and the ViT's own at the VGG's budget)."""
    return dict(FAMILY_KWARGS.get(model, _CPU_KWARGS))


# An entry's name is the model's with its regime's suffix: builtin/vgg-att3-pc-at, builtin/vit-pgd-at, ...
REGIME_SUFFIX = {"clean": "", "fgsm-at": "-at", "pgd-at": "-pgd-at", "trades": "-trades"}


def _regime_entry(model: str, regime: str, description: str) -> ZooEntry:
    """An entry trained clean or adversarially (FGSM-AT, PGD-AT, TRADES at AT_EPS for AT_EPOCHS),
    at the model's zoo options and the VGG entries' budget."""
    name, kwargs = f"builtin/{model}{REGIME_SUFFIX[regime]}", model_defaults(model)
    if regime == "clean":
        return ZooEntry(name, model, kwargs, epochs=BUILTIN_EPOCHS, description=description)
    return ZooEntry(name, model, kwargs, recipe=regime, epochs=AT_EPOCHS, recipe_params={"train_eps": AT_EPS}, description=description)


def _paper(dataset: str, model: str, description: str) -> ZooEntry:
    return ZooEntry(
        f"{dataset}/{model}",
        model,
        {"layout": "paper", "width": 1.0},
        dataset=dataset,
        recipe="paper",
        epochs=300,
        train_size=None,
        description=description,
    )


ZOO: dict[str, ZooEntry] = {
    e.name: e
    for e in [
        _builtin("vgg", True, "VGG-16-BN baseline, compact layout, width 1/8"),
        _builtin("vgg-att2-pc", True, "attention on l2, l3; parametrised compatibility; concat"),
        _builtin("vgg-att3-pc", True, "attention on l1, l2, l3; parametrised compatibility; concat"),
        _builtin("vgg-att3-dp", True, "attention on l1, l2, l3; dot-product compatibility; concat"),
        _builtin("vgg-att3-pc-indep", False, "attention on l1, l2, l3; pc; one classifier per stage"),
        _builtin("vgg-att2-dp", False, "attention on l2, l3; dot-product compatibility; concat"),
        _regime_entry("vgg", "fgsm-at", "VGG baseline, FGSM adversarial training at 2/255"),
        _regime_entry("vgg-att2-pc", "fgsm-at", "attention on l2, l3; pc; FGSM adversarial training at 2/255"),
        _regime_entry("vgg-att3-pc", "fgsm-at", "attention on l1, l2, l3; pc; FGSM adversarial training at 2/255"),
        _regime_entry("vgg-att3-dp", "fgsm-at", "attention on l1, l2, l3; dp; FGSM adversarial training at 2/255"),
        _regime_entry("vgg", "trades", "VGG baseline, TRADES (beta = 6) at 2/255"),
        _regime_entry("vgg-att3-pc", "trades", "attention on l1, l2, l3; pc; TRADES (beta = 6) at 2/255"),
        _regime_entry("vgg", "pgd-at", "VGG baseline, PGD adversarial training (5 steps) at 2/255"),
        _regime_entry("vgg-att3-pc", "pgd-at", "attention on l1, l2, l3; pc; PGD adversarial training at 2/255"),
        _regime_entry("resnet", "clean", "PreAct ResNet-18, width 11 (the VGG's multiply-adds)"),
        _regime_entry("resnet", "fgsm-at", "PreAct ResNet-18, width 11; FGSM adversarial training at 2/255"),
        _regime_entry("resnet", "pgd-at", "PreAct ResNet-18, width 11; PGD adversarial training at 2/255"),
        _regime_entry("vit", "clean", "ViT, 4x4 patches, 8 blocks of width 64 (the VGG's multiply-adds)"),
        _regime_entry("vit", "fgsm-at", "ViT, 4x4 patches; FGSM adversarial training at 2/255"),
        _regime_entry("vit", "pgd-at", "ViT, 4x4 patches; PGD adversarial training at 2/255"),
        _paper("cifar10", "vgg", "paper layout and recipe (needs --data-dir, hours on a GPU)"),
        _paper("cifar10", "vgg-att3-pc", "paper layout and recipe (needs --data-dir, hours on a GPU)"),
        _paper("cifar100", "vgg", "paper's CIFAR-100 baseline (needs --data-dir)"),
        _paper("cifar100", "vgg-att3-pc", "paper's CIFAR-100 VGG-att3-concat-pc (needs --data-dir)"),
    ]
}
QUICK_ZOO: tuple[str, ...] = tuple(n for n, e in ZOO.items() if e.quick)


def zoo_home() -> Path:
    """``$ROBUST_ATTN_HOME``, else ``$XDG_CACHE_HOME/robust-attn`` (``~/.cache/robust-attn``)."""
    if os.environ.get("ROBUST_ATTN_HOME"):
        return Path(os.environ["ROBUST_ATTN_HOME"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "robust-attn"


SEED_MARK = "@seed="
MAX_SEED = 2**31 - 1


def register_entry(entry: ZooEntry) -> None:
    """Add an entry to the zoo (scripts and tests that define their own training configurations)."""
    ZOO[entry.name] = entry


def split_seed(ref: str) -> tuple[str, int | None]:
    """``builtin/vgg@seed=2`` -> (``builtin/vgg``, 2); a reference without a seed -> (ref, None)."""
    base, mark, seed = ref.partition(SEED_MARK)
    if not mark:
        return ref, None
    if not seed.isdigit() or int(seed) > MAX_SEED:
        raise ModelError(f"bad training seed in {ref!r}; write NAME@seed=N with N an integer in [0, 2**31 - 1], e.g. builtin/vgg@seed=2")
    return base, int(seed)


def with_seed(name: str, seed: int) -> str:
    """The zoo reference of entry ``name`` trained with ``seed`` (seed 0 is the plain name)."""
    base, _ = split_seed(name)
    return base if seed == 0 else f"{base}{SEED_MARK}{seed}"


def is_zoo_ref(ref: str) -> bool:
    return ref.partition(SEED_MARK)[0] in ZOO


def get_entry(name: str) -> ZooEntry:
    """The entry ``name``, or ``name@seed=N``: the same entry trained with seed N (its own cache file)."""
    base, seed = split_seed(name)
    try:
        entry = ZOO[base]
    except KeyError:
        raise ModelError(
            f"unknown zoo model {name!r}; known: {', '.join(ZOO)} (see robust-attn zoo list), optionally with @seed=N"
        ) from None
    if seed is None or seed == entry.seed:
        return entry
    return replace(entry, name=with_seed(base, seed), seed=seed)


def _entry(name_or_entry: str | ZooEntry) -> ZooEntry:
    return name_or_entry if isinstance(name_or_entry, ZooEntry) else get_entry(name_or_entry)


def checkpoint_path(name: str | ZooEntry) -> Path:
    return zoo_home() / "zoo" / f"{_entry(name).name}.safetensors"


def cache_entry(name: str | ZooEntry) -> verified.Entry:
    """How entry ``name``'s cached checkpoint is named in errors, and the fix for a damaged one."""
    label = _entry(name).name
    return verified.Entry(
        METADATA_KEY,
        f"zoo model {label}: cached checkpoint",
        f"retrain it with `robust-attn zoo train {label} --retrain`, or delete the file",
        split=split_weights,
    )


def resume_entry(name: str | ZooEntry) -> verified.Entry:
    """As :func:`cache_entry`, for the resumable state of an unfinished training run."""
    label = _entry(name).name
    return verified.Entry(
        METADATA_KEY,
        f"zoo model {label}: resumable state of an unfinished training run",
        f"delete it to train from the start, or retrain with `robust-attn zoo train {label} --retrain`",
        split=split_weights,
    )


def recorded_config(name: str | ZooEntry) -> dict[str, Any] | None:
    """The cached checkpoint's verified metadata whatever configuration it was trained with; None
    when there is none. A damaged or unreadable file raises a one-line CheckpointError."""
    entry = _entry(name)
    return verified.verify(checkpoint_path(entry), cache_entry(entry))


def cached_metadata(name: str | ZooEntry) -> dict[str, Any] | None:
    """Metadata of the cached checkpoint if it exists and matches the entry, else None.

    The file is verified (every weight hashed; remembered while it is unchanged): a damaged or
    unreadable one raises a one-line CheckpointError naming it and the fix; it is never taken
    for a missing one."""
    entry = _entry(name)
    meta = recorded_config(entry)
    return meta if meta is not None and meta.get("zoo_entry") == entry.config() else None


def shipped_file(name: str | ZooEntry) -> Path:
    """Where entry ``name``'s shipped checkpoint lies (package data; see :mod:`robust_attn.shipped`)."""
    return shipped.shipped_path(Path(f"{_entry(name).name}.safetensors"))


def shipped_entry(name: str | ZooEntry) -> verified.Entry:
    label = _entry(name).name
    return verified.Entry(METADATA_KEY, f"zoo model {label}: shipped checkpoint", shipped.RESTORE, split=split_weights)


def shipped_metadata(name: str | ZooEntry) -> dict[str, Any] | None:
    """The shipped checkpoint's metadata, verified against its provenance record; None when the
    entry ships no weights. Shipped weights of another configuration of the entry are a one-line
    error (the entry changed without its weights: a maintainer's mistake, which a test guards)."""
    entry = _entry(name)
    if shipped.verify_shipped(shipped_file(entry)) is None:
        return None
    meta = verified.verify(shipped_file(entry), shipped_entry(entry))
    if meta is None or meta.get("zoo_entry") != entry.config():
        raise CheckpointError(f"shipped weights {shipped_file(entry)} were trained with another configuration of {entry.name} "
                              f"({config_change(meta.get('zoo_entry') if meta else None, entry.config())}); retrain and ship them again")  # fmt: skip
    return meta


def trained_metadata(name: str | ZooEntry) -> dict[str, Any] | None:
    """The metadata of the weights a zoo name loads: shipped ones first, else the cache's; None
    when neither exists (it trains on demand)."""
    return shipped_metadata(name) or cached_metadata(name)


def trained_path(name: str | ZooEntry) -> tuple[Path, verified.Entry]:
    """The file a zoo name loads and how its errors read: the shipped one, else the cache's."""
    return (shipped_file(name), shipped_entry(name)) if shipped_metadata(name) is not None else (checkpoint_path(name), cache_entry(name))


def check_not_shadowed(name: str | ZooEntry) -> None:
    """A cached checkpoint of a shipped entry holds other weights (``zoo train --retrain``): loading
    the name would silently pick one of the two; refuse in one line."""
    entry = _entry(name)
    ours, cached = shipped_metadata(entry), recorded_config(entry)
    if ours is not None and cached is not None and cached.get("weights_sha256") != ours.get("weights_sha256"):
        raise CheckpointError(f"zoo model {entry.name}: the cache holds other weights ({checkpoint_path(entry)}, retrained here) than the "
                              f"shipped ones; delete the cached file to use the shipped weights, or sweep the retrained file by its path")  # fmt: skip


def config_change(old: object, new: dict[str, Any]) -> str:
    """What differs between a recorded zoo configuration and the entry's: ``epochs 8 -> 6``."""
    if not isinstance(old, dict):
        return "it records no zoo configuration"
    changed = [f"{k} {old.get(k)!r} -> {new.get(k)!r}" for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
    return ", ".join(changed[:3]) + (f" and {len(changed) - 3} more" if len(changed) > 3 else "")


def stale_note(name: str | ZooEntry) -> str | None:
    """The line printed before a cached checkpoint trained with another configuration of its entry
    is trained again (and replaced); None when there is nothing to replace."""
    entry = _entry(name)
    meta = recorded_config(entry)
    if meta is None or meta.get("zoo_entry") == entry.config():
        return None
    return (
        f"note: zoo model {entry.name}: the cached checkpoint {checkpoint_path(entry)} was trained with another configuration "
        f"({config_change(meta.get('zoo_entry'), entry.config())}); training it again replaces it"
    )


def check_before_training(entries: Iterable[ZooEntry], force: bool = False) -> None:
    """Find what would stop the training of ``entries`` before any of them trains: a damaged or
    unreadable cached checkpoint or resumable state (with ``force`` both are replaced, as asked),
    and a cache folder that cannot be written. Each is a one-line CheckpointError."""
    for e in entries:
        if not force:
            recorded_config(e)
            verified.verify(resume_path(checkpoint_path(e)), resume_entry(e))
        verified.check_writable(
            checkpoint_path(e),
            f"zoo model {e.name}: its checkpoint",
            "make that folder writable, or set ROBUST_ATTN_HOME to a folder you can write",
        )


def _seed_files(name: str) -> list[tuple[int, Path]]:
    """(seed, path) of the cache files of entry ``name`` trained with another seed; resumable
    states of unfinished runs (``.resume.safetensors``) are not among them."""
    folder = checkpoint_path(name).parent
    out = []
    for path in sorted(folder.glob(f"{Path(name).name}{SEED_MARK}*.safetensors")):
        seed = path.name[: -len(".safetensors")].split(SEED_MARK)[-1]
        if seed.isdigit():
            out.append((int(seed), path))
    return out


def cached_seeds(name: str) -> list[int]:
    """Training seeds of entry ``name`` whose checkpoints are cached and match the entry."""
    seeds = [0] if cached_metadata(name) is not None else []
    seeds += [seed for seed, _ in _seed_files(name) if cached_metadata(with_seed(name, seed)) is not None]
    return sorted(set(seeds))


def cache_state(name: str | ZooEntry) -> str:
    """``cached``, ``missing``, ``stale`` (trained with another configuration of its entry), or
    ``damaged: why`` / ``unreadable: why``: for listings, which must not stop at one bad file."""
    try:
        meta = recorded_config(name)
    except verified.EntryError as err:
        return f"{'unreadable' if err.unreadable else 'damaged'}: {err.why}"
    if meta is None:
        return "missing"
    return "cached" if meta.get("zoo_entry") == _entry(name).config() else "stale"


def seed_states(name: str) -> dict[int, str]:
    """:func:`cache_state` of every seed of entry ``name`` that has a cache file (seed 0 included)."""
    seeds = ([0] if checkpoint_path(name).exists() else []) + [seed for seed, _ in _seed_files(name)]
    return {seed: cache_state(with_seed(name, seed)) for seed in sorted(set(seeds))}


def resumable_seeds(name: str) -> list[int]:
    """Training seeds of entry ``name`` whose training run stopped before the end and can resume
    (its ``.resume.safetensors`` state lies beside where the checkpoint will go)."""
    stem = Path(name).name
    seeds = []
    for path in checkpoint_path(name).parent.glob(f"{stem}*.resume.safetensors"):
        base = path.name[: -len(".resume.safetensors")]
        seed = "0" if base == stem else base.removeprefix(f"{stem}{SEED_MARK}")
        if seed.isdigit():
            seeds.append(int(seed))
    return sorted(seeds)


def entry_recorded_data(name: str) -> dict[str, Any]:
    """What a zoo entry trains on (data set, image shape, classes), without training it."""
    entry = get_entry(name)
    if entry.dataset == "builtin":
        sample = load_dataset("builtin", "test", n=1)
        return {"dataset": "builtin", "image_shape": list(sample.image_shape), "classes": list(sample.classes)}
    return {"dataset": entry.dataset}


def _data_key(entry: ZooEntry) -> tuple[str, int | None, int]:
    return entry.dataset, entry.train_size, entry.data_seed


def entry_data(entry: ZooEntry, data_dir: str | Path | None = None) -> tuple[ImageDataset, ImageDataset]:
    """The (train, test) sets an entry trains and is scored on; equal for equal ``_data_key``."""
    train = load_in_memory(entry.dataset, "train", n=entry.train_size, data_dir=data_dir, seed=entry.data_seed)
    test = load_in_memory(entry.dataset, "test", data_dir=data_dir, n=2000 if entry.dataset == "builtin" else None, seed=entry.data_seed)
    return train, test


def train_entry(
    name: str | ZooEntry,
    *,
    device: str | torch.device = "auto",
    data_dir: str | Path | None = None,
    progress: bool = True,
    force: bool = False,
    show_bar: bool = True,
    data: tuple[ImageDataset, ImageDataset] | None = None,
) -> dict[str, Any]:
    """Train zoo entry ``name`` (a name, or the entry itself) into the cache (resuming an
    interrupted run); returns its metadata.

    ``data`` is the entry's ``entry_data`` when the caller already has it (several entries
    share one data set; generating it again costs seconds per entry).
    """
    entry = _entry(name)
    label = entry.name
    if not force and (meta := trained_metadata(entry)) is not None:
        return meta
    check_before_training([entry], force)
    if not force and (note := stale_note(entry)):
        print(note, flush=True)
    dev = resolve_device(device)
    train, test = data if data is not None else entry_data(entry, data_dir)
    torch.manual_seed(entry.seed)
    model = create_model_for(entry.model, train, **entry.model_kwargs)
    if progress:
        n_threads = torch.get_num_threads()
        threads = f", {n_threads} thread{'s' if n_threads > 1 else ''}" if dev.type == "cpu" else ""
        print(f"training {label} ({entry.model}, {entry.epochs} epochs on {len(train)} {entry.dataset} images, {dev}{threads})", flush=True)
    t0 = time.perf_counter()
    config = TrainConfig(
        epochs=entry.epochs,
        seed=entry.seed,
        device=dev,
        out=checkpoint_path(entry),
        resume=not force,
        progress=progress,
        show_bar=show_bar,
        label=label,
        metadata={"zoo_entry": entry.config(), "zoo_name": label},
    )
    result = train_model(model, train, test, dataclasses.replace(get_recipe(entry.recipe), **entry.recipe_params), config)
    if progress:
        print(
            f"trained {label}: clean test accuracy {result.test_accuracy:.2%} in {time.perf_counter() - t0:.0f} s -> {checkpoint_path(entry)}",
            flush=True,
        )
    return read_metadata(checkpoint_path(entry), cache_entry(entry))


def longest_first(entries: Iterable[ZooEntry]) -> list[ZooEntry]:
    """Entries by decreasing training work (epochs x images; stable for ties): started in this
    order, workers that finish short jobs pick up the rest and the last one ends sooner."""
    return sorted(entries, key=lambda e: -e.epochs * (e.train_size if e.train_size is not None else math.inf))


def assign(entries: list[ZooEntry], ranks: int) -> list[list[ZooEntry]]:
    """Entries per rank: longest first, each to the rank with the least work so far (the same
    answer on every rank, so no rank needs to ask)."""
    loads = [0.0] * ranks
    out: list[list[ZooEntry]] = [[] for _ in range(ranks)]
    for e in longest_first(entries):
        r = loads.index(min(loads))
        out[r].append(e)
        loads[r] += e.epochs * (e.train_size if e.train_size is not None else 1e9)
    return out


def _train_share(entries: list[ZooEntry], device: str, data_dir: str | None, progress: bool, force: bool) -> None:
    """This rank's share of ``entries`` (all of them outside a job); each data set made once."""
    from robust_attn import distributed

    ctx = distributed.context(resolve_device(device))
    mine = assign(entries, ctx.world)[ctx.rank] if ctx is not None else longest_first(entries)
    data: dict[tuple[str, int | None, int], tuple[ImageDataset, ImageDataset]] = {}
    dev = distributed.device_for(ctx, resolve_device(device))
    for e in mine:
        if _data_key(e) not in data:
            data[_data_key(e)] = entry_data(e, data_dir)
        train_entry(e, device=dev, progress=progress, force=force, show_bar=ctx is None, data=data[_data_key(e)])
    distributed.barrier(ctx, "zoo training")


def train_entries(
    names: Iterable[str],
    *,
    device: str | torch.device = "auto",
    data_dir: str | Path | None = None,
    progress: bool = True,
    force: bool = False,
    workers: int | None = None,
) -> dict[str, dict[str, Any]]:
    """Train the missing (all with ``force``) entries among ``names``; returns name -> metadata.

    Under torchrun the entries are spread over the ranks. Otherwise, on a CPU, ``workers`` local
    ranks (default: one per core, at most one per entry) share the cores: small models leave cores
    idle inside one process, and on 2 cores two 1-thread processes train about 1.35x more images per
    second than one 2-thread process. Each entry's weights depend on its own thread count and seed,
    not on the other ranks.
    """
    from robust_attn import distributed

    names = list(dict.fromkeys(names))
    entries = [get_entry(n) for n in names]  # fail on a bad name before training anything
    todo = [e for e in entries if force or trained_metadata(e) is None]  # a damaged cache file fails here
    check_before_training(todo, force)
    dev = resolve_device(device)
    count = 1 if dev.type != "cpu" else min(len(todo), torch.get_num_threads() if workers is None else workers)
    if todo and distributed.launched():
        _train_share(todo, str(dev), None if data_dir is None else str(data_dir), progress, force)
    elif count > 1:
        if progress:
            each = max(1, torch.get_num_threads() // count)
            print(f"training {len(todo)} zoo models in {count} local ranks, {each} thread{'s' if each > 1 else ''} each", flush=True)
        distributed.launch_local(count, _train_share, todo, "cpu", None if data_dir is None else str(data_dir), progress, force)
    elif todo:
        _train_share(todo, str(dev), None if data_dir is None else str(data_dir), progress, force)
    out = {}
    for name, entry in zip(names, entries):
        meta = cached_metadata(entry)
        if meta is None:
            raise RuntimeError(f"zoo model {name!r} was not written by its training run; run robust-attn zoo train {name} again")
        out[name] = meta
    return out


def load_model(
    name_or_path: str | Path,
    device: str | torch.device = "auto",
    *,
    train_missing: bool = True,
    data_dir: str | Path | None = None,
    progress: bool = True,
) -> tuple[nn.Module, dict[str, Any]]:
    """A zoo name (trained on demand) or a checkpoint path -> (model in eval mode, metadata).

    The metadata gains ``checkpoint`` (path) and ``checkpoint_sha256`` (of the file).
    """
    dev = resolve_device(device)
    key = str(name_or_path)
    if is_zoo_ref(key):
        if trained_metadata(key) is None:
            if not train_missing:
                why = "was trained with another configuration of its entry" if recorded_config(key) is not None else "is not trained yet"
                raise ModelError(f"zoo model {key!r} {why}; run: robust-attn zoo train {key}")
            train_entry(key, device=dev, data_dir=data_dir, progress=progress)
        check_not_shadowed(key)
        path, entry = trained_path(key)
    else:
        path, entry = Path(key).expanduser(), CHECKPOINT
        if not path.is_file():
            raise ModelError(f"unknown model {key!r}: neither a zoo name ({', '.join(ZOO)}) nor a checkpoint file")
    model, meta = load_checkpoint(path, dev, entry)
    meta = {**meta, "checkpoint": str(path), "checkpoint_sha256": file_sha256(path)}
    return model, meta
