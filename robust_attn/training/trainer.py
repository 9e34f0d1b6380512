"""The training loop: SGD with a recipe, per-epoch evaluation, resumable and interruptible."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from robust_attn import verified
from robust_attn.checkpoint import METADATA_KEY, load_checkpoint_with_extra, save_checkpoint, split_weights
from robust_attn.data import ImageDataset
from robust_attn.evaluate import clean_accuracy
from robust_attn.progress import interactive, progress_bar
from robust_attn.training.adversarial import adversarial_batch, guard_accuracy, trades_loss, trades_points
from robust_attn.training.augment import random_crop, random_flip
from robust_attn.training.recipes import Recipe, check_epochs
from robust_attn.versions import library_versions


@dataclass
class TrainResult:
    """What a finished run reports; also stored in the checkpoint metadata."""

    test_accuracy: float
    epochs: int
    seconds: float
    images_per_second: float
    history: list[dict[str, float]] = field(default_factory=list)
    threads: int = 0  # torch's intra-op threads while training (the sums' order, hence the weights, depends on it)


def resume_path(out: Path) -> Path:
    """Where the resumable state of a run that writes ``out`` lives."""
    return out.with_name(out.stem + ".resume.safetensors")


RESUME = verified.Entry(METADATA_KEY, "resumable training state", "delete it to train from the start", split=split_weights)


def _optimizer(model: nn.Module, recipe: Recipe) -> torch.optim.SGD:
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for _name, p in model.named_parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)  # no weight decay on BN and biases
    return torch.optim.SGD(
        [{"params": decay, "weight_decay": recipe.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=recipe.lr,
        momentum=recipe.momentum,
        nesterov=recipe.nesterov,
    )


def _momentum_state(opt: torch.optim.SGD) -> dict[str, torch.Tensor]:
    params = [p for g in opt.param_groups for p in g["params"]]
    return {f"momentum.{i}": opt.state[p]["momentum_buffer"] for i, p in enumerate(params) if "momentum_buffer" in opt.state[p]}


def _restore_momentum(opt: torch.optim.SGD, extra: dict[str, torch.Tensor], device: torch.device) -> None:
    params = [p for g in opt.param_groups for p in g["params"]]
    for i, p in enumerate(params):
        if f"momentum.{i}" in extra:
            opt.state[p]["momentum_buffer"] = extra[f"momentum.{i}"].to(device)


@dataclass
class TrainConfig:
    """How one training run is carried out (what it optimises is the :class:`Recipe`)."""

    epochs: int | None = None  # None: the recipe's
    seed: int = 0  # initialisation is the caller's; this seeds shuffling, augmentation and dropout per epoch
    device: str | torch.device = "cpu"
    out: str | Path | None = None  # checkpoint path; a .resume.safetensors state is kept beside it
    resume: bool = False
    progress: bool = True  # a line per epoch
    show_bar: bool = True  # and, on a terminal, a tqdm bar
    label: str = ""  # prefix of the progress lines
    metadata: dict[str, Any] = field(default_factory=dict)  # extra checkpoint metadata
    channels_last: bool = True
    ddp: Any = None  # a robust_attn.distributed.Context: train one model over the job's ranks

    def __post_init__(self) -> None:
        if self.epochs is not None:
            check_epochs(self.epochs)

    @property
    def main(self) -> bool:
        return self.ddp is None or self.ddp.is_main


@dataclass
class _Progress:
    """What a run has done so far (restored from the resume state)."""

    start_epoch: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    images_seen: int = 0
    best: tuple[float, int, dict[str, torch.Tensor]] | None = None  # guard accuracy, epoch, weights


def _restore(model: nn.Module, opt: torch.optim.SGD, config: TrainConfig, out: Path | None, epochs: int) -> _Progress:
    """The progress of an interrupted run from its resume state (weights and momentum restored),
    or a fresh start."""
    if not (config.resume and out is not None and resume_path(out).is_file()):
        return _Progress()
    device = torch.device(config.device)
    saved, meta, extra = load_checkpoint_with_extra(resume_path(out), device, RESUME)
    model.load_state_dict(saved.state_dict())
    _restore_momentum(opt, extra, device)
    best = None
    if "best_epoch" in meta:
        best = (meta["best_guard_accuracy"], meta["best_epoch"], {k[5:]: v.to(device) for k, v in extra.items() if k.startswith("best.")})
    if config.progress and config.main:
        print(f"resuming {config.label or getattr(model, 'model_name', 'model')} from epoch {meta['epochs_done']}/{epochs}", flush=True)
    return _Progress(meta["epochs_done"], meta["history"], meta["seconds"], 0, best)


def _split_guard(
    train: ImageDataset, recipe: Recipe, device: torch.device
) -> tuple[ImageDataset, torch.Tensor | None, torch.Tensor | None]:
    """Adversarial recipes hold out ``guard_samples`` training images for the held-out PGD guard."""
    if recipe.adversarial == "none" or not recipe.guard_samples:
        return train, None, None
    held = train.subset(recipe.guard_samples, offset=len(train) - recipe.guard_samples)
    _, gx, gy = next(held.batches(len(held)))
    return train.subset(len(train) - recipe.guard_samples), gx.to(device), gy.to(device)


def _run_epoch(
    net: nn.Module,
    model: nn.Module,
    opt: torch.optim.SGD,
    train: ImageDataset,
    recipe: Recipe,
    epoch: int,
    epochs: int,
    config: TrainConfig,
) -> tuple[float, float, int]:
    """One pass over ``train``; returns (mean loss, train accuracy, images this rank saw)."""
    ddp, device = config.ddp, torch.device(config.device)
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    gen = torch.Generator().manual_seed(config.seed * 100_003 + epoch)
    torch.manual_seed(config.seed * 100_003 + epoch)
    steps_per_epoch = -(-len(train) // recipe.batch_size)
    net.train()
    loss_sum, correct, seen = 0.0, 0, 0
    # on a terminal a live bar; in a log only the epoch line (no carriage-return stream)
    bar = progress_bar(
        len(train), f"epoch {epoch + 1}/{epochs}", enabled=config.progress and config.show_bar and interactive() and config.main
    )
    try:
        for step, (_, x, y) in enumerate(train.batches(recipe.batch_size, shuffle=True, generator=gen)):
            x = random_crop(x, recipe.crop_padding, gen)
            x = random_flip(x, gen) if recipe.flip else x
            if ddp is not None:  # this rank's rows of the global batch
                x, y = x[ddp.rank :: ddp.world], y[ddp.rank :: ddp.world]
            x, y = x.to(device, memory_format=memory_format), y.to(device)
            if recipe.adversarial in ("fgsm", "pgd"):
                x = adversarial_batch(model, x, y, recipe, gen)
            for group in opt.param_groups:
                group["lr"] = recipe.lr_at(epoch * steps_per_epoch + step, steps_per_epoch, epochs)
            if recipe.adversarial == "trades":
                adv = trades_points(model, x, recipe, gen)
                if ddp is None:  # the reference: two forward passes in training mode
                    logits, logits_adv = net(x), net(adv)
                else:  # one forward per backward under DistributedDataParallel (BatchNorm sees the joint batch)
                    logits, logits_adv = net(torch.cat([x, adv])).split(len(x))
                loss = trades_loss(logits, logits_adv, y, recipe.beta)
            else:
                logits = net(x)
                loss = F.cross_entropy(logits, y, label_smoothing=recipe.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += float(loss.detach()) * len(y)
            correct += int((logits.argmax(1) == y).sum())
            seen += len(y)
            bar.update(len(y) * (ddp.world if ddp is not None else 1))
            bar.set_postfix_str(f"loss={loss_sum / seen:.3f}, acc={correct / seen:.3f}")
    except KeyboardInterrupt:
        where = f"; rerun with --resume to continue from epoch {epoch}" if config.out is not None and epoch > 0 else ""
        print(f"interrupted during epoch {epoch + 1}{where}")
        raise
    finally:
        bar.close()
    return loss_sum / seen, correct / seen, seen


def _epoch_line(config: TrainConfig, record: dict[str, float], epochs: int, images: int) -> str:
    guard = f"  held-out PGD acc {record['guard_pgd_accuracy']:.3f}" if "guard_pgd_accuracy" in record else ""
    return (
        f"{config.label + ' ' if config.label else ''}epoch {int(record['epoch'])}/{epochs}: loss {record['loss']:.3f}  "
        f"train acc {record['train_accuracy']:.3f}  test acc {record['test_accuracy']:.3f}{guard}  {images / record['seconds']:.0f} img/s"
    )


def _save_resume(out: Path, model: nn.Module, opt: torch.optim.SGD, base_meta: dict[str, Any], done: _Progress, epoch: int) -> None:
    state = {**base_meta, "epochs_done": epoch + 1, "history": done.history, "seconds": done.seconds}
    extra = _momentum_state(opt)
    if done.best is not None:
        state |= {"best_guard_accuracy": done.best[0], "best_epoch": done.best[1]}
        extra |= {f"best.{k}": v for k, v in done.best[2].items()}
    save_checkpoint(resume_path(out), model, state, extra)


def _keep_best(
    model: nn.Module, test: ImageDataset, recipe: Recipe, config: TrainConfig, done: _Progress, epochs: int, test_acc: float
) -> tuple[float, dict[str, Any]]:
    """After adversarial training: keep the epoch with the best held-out PGD accuracy (a later one
    may have lost it to catastrophic overfitting). Returns the final test accuracy and the guard's metadata."""
    if done.best is None:
        return test_acc, {}
    accuracy, kept, weights = done.best
    guard = {"guard": {"kept_epoch": kept, "kept_guard_pgd_accuracy": accuracy, "samples": recipe.guard_samples}}
    if kept != epochs:
        model.load_state_dict(weights)
        test_acc = clean_accuracy(model, test, device=config.device)
        if config.progress and config.main:
            print(
                f"{config.label + ' ' if config.label else ''}kept epoch {kept} (held-out PGD accuracy {accuracy:.3f}, the best); later epochs lost it",
                flush=True,
            )
    return test_acc, guard


def train_model(
    model: nn.Module, train: ImageDataset, test: ImageDataset, recipe: Recipe, config: TrainConfig | None = None, **overrides: Any
) -> TrainResult:
    """Train ``model`` (built by :func:`robust_attn.create_model`) and write it to ``config.out``.

    ``overrides`` set fields of :class:`TrainConfig` (``train_model(m, tr, te, recipe, seed=1, out=path)``).
    The state after every epoch goes to a ``.resume.safetensors`` file beside ``out``; with
    ``resume=True`` training continues from it and gives the same weights as an uninterrupted run.
    Each epoch's shuffling, augmentation and dropout are seeded from (seed, epoch).

    With ``ddp`` (a :class:`robust_attn.distributed.Context`, under torchrun) one model trains over the
    job's ranks with DistributedDataParallel: every rank draws the same shuffled, augmented batch and
    takes every world-th row of it, so the averaged gradient is the whole batch's (BatchNorm
    statistics are per rank); rank 0 writes the checkpoints, in the same format.
    """
    from robust_attn import distributed

    config = replace(config or TrainConfig(), **overrides)  # refuses epochs < 1 before any work
    device = torch.device(config.device)
    epochs = recipe.epochs if config.epochs is None else config.epochs
    out = Path(config.out) if config.out is not None else None
    if out is not None and config.main:  # not after the whole run
        verified.check_writable(out, "the checkpoint", "choose an output folder you can write (--out)")
    model.to(device=device)
    model.to(memory_format=torch.channels_last if config.channels_last else torch.contiguous_format)
    net: nn.Module = model
    if config.ddp is not None:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    opt = _optimizer(model, recipe)
    done = _restore(model, opt, config, out, epochs)
    train, guard_x, guard_y = _split_guard(train, recipe, device)
    base_meta = {
        "dataset": train.name,
        "classes": list(train.classes),
        "mean": list(train.mean),
        "std": list(train.std),
        "image_shape": list(train.image_shape),
        "recipe": recipe.to_dict(),
        "epochs": epochs,
        "seed": config.seed,
        "train_size": len(train),
        "versions": library_versions(),
        **config.metadata,
    }
    world = config.ddp.world if config.ddp is not None else 1
    for epoch in range(done.start_epoch, epochs):
        t0 = time.perf_counter()
        loss, train_acc, seen = _run_epoch(net, model, opt, train, recipe, epoch, epochs, config)
        record = {
            "epoch": epoch + 1,
            "loss": loss,
            "train_accuracy": train_acc,
            "test_accuracy": clean_accuracy(model, test, device=device),
            "seconds": time.perf_counter() - t0,
        }
        done.seconds += record["seconds"]
        done.images_seen += seen * world  # this rank saw every world-th row of each batch
        if guard_x is not None and guard_y is not None:
            record["guard_pgd_accuracy"] = guard_accuracy(model, guard_x, guard_y, recipe.train_eps)
            if done.best is None or record["guard_pgd_accuracy"] >= done.best[0]:
                done.best = (record["guard_pgd_accuracy"], epoch + 1, {k: v.detach().clone() for k, v in model.state_dict().items()})
        done.history.append(record)
        if config.progress and config.main:
            print(_epoch_line(config, record, epochs, seen * world), flush=True)
        if out is not None and epoch + 1 < epochs and config.main:
            _save_resume(out, model, opt, base_meta, done, epoch)
    model.eval()
    test_acc = done.history[-1]["test_accuracy"] if done.history else clean_accuracy(model, test, device=device)
    test_acc, guard_meta = _keep_best(model, test, recipe, config, done, epochs, test_acc)
    result = TrainResult(
        test_acc,
        epochs,
        done.seconds,
        done.images_seen / max(done.seconds, 1e-9) if done.images_seen else 0.0,
        done.history,
        torch.get_num_threads(),
    )
    if out is not None and config.main:
        meta = {**base_meta, "clean_accuracy": test_acc, "test_size": len(test), "train_result": asdict(result), **guard_meta}
        if config.ddp is not None:
            meta["ddp_world_size"] = config.ddp.world
        save_checkpoint(out, model, meta)
        resume_path(out).unlink(missing_ok=True)
    distributed.barrier(config.ddp, "the end of training")
    model.to(memory_format=torch.contiguous_format)
    return result
