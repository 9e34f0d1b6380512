"""The training loop: SGD with a recipe, per-epoch evaluation, resumable and interruptible."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from robust_attn.checkpoint import load_checkpoint_with_extra, save_checkpoint
from robust_attn.data import ImageDataset
from robust_attn.evaluate import clean_accuracy
from robust_attn.progress import interactive, progress_bar
from robust_attn.training.adversarial import adversarial_batch, guard_accuracy
from robust_attn.training.augment import random_crop, random_flip
from robust_attn.training.recipes import Recipe
from robust_attn.versions import library_versions


@dataclass
class TrainResult:
    """What a finished run reports; also stored in the checkpoint metadata."""

    test_accuracy: float
    epochs: int
    seconds: float
    images_per_second: float
    history: list[dict[str, float]] = field(default_factory=list)


def resume_path(out: Path) -> Path:
    """Where the resumable state of a run that writes ``out`` lives."""
    return out.with_name(out.stem + ".resume.safetensors")


def _optimizer(model: nn.Module, recipe: Recipe) -> torch.optim.SGD:
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for _name, p in model.named_parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)  # no weight decay on BN and biases
    return torch.optim.SGD(
        [{"params": decay, "weight_decay": recipe.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=recipe.lr, momentum=recipe.momentum, nesterov=recipe.nesterov,
    )  # fmt: skip


def _momentum_state(opt: torch.optim.SGD) -> dict[str, torch.Tensor]:
    params = [p for g in opt.param_groups for p in g["params"]]
    return {f"momentum.{i}": opt.state[p]["momentum_buffer"] for i, p in enumerate(params) if "momentum_buffer" in opt.state[p]}


def _restore_momentum(opt: torch.optim.SGD, extra: dict[str, torch.Tensor], device: torch.device) -> None:
    params = [p for g in opt.param_groups for p in g["params"]]
    for i, p in enumerate(params):
        if f"momentum.{i}" in extra:
            opt.state[p]["momentum_buffer"] = extra[f"momentum.{i}"].to(device)


def train_model(
    model: nn.Module,
    train: ImageDataset,
    test: ImageDataset,
    recipe: Recipe,
    *,
    epochs: int | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    out: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    show_bar: bool = True,
    label: str = "",
    metadata: dict[str, Any] | None = None,
    channels_last: bool = True,
    ddp: Any = None,
) -> TrainResult:
    """Train ``model`` (built by :func:`robust_attn.create_model`) and write it to ``out``.

    The state after every epoch goes to a ``.resume.safetensors`` file beside ``out``; with
    ``resume=True`` training continues from it and gives the same weights as an
    uninterrupted run. Each epoch's shuffling and dropout are seeded from (seed, epoch).
    ``progress`` prints a line per epoch (prefixed by ``label``) and, with ``show_bar`` on a terminal, a tqdm bar.

    ``ddp`` (a :class:`robust_attn.distributed.Context`, under torchrun) trains one model over the
    job's ranks with DistributedDataParallel: every rank draws the same shuffled, augmented batch and
    takes every world-th row of it, so the averaged gradient is the whole batch's (BatchNorm
    statistics are per rank); rank 0 writes the checkpoints, in the same format.
    """
    from robust_attn import distributed

    main = ddp is None or ddp.is_main
    device = torch.device(device)
    epochs = recipe.epochs if epochs is None else epochs
    out_path = Path(out) if out is not None else None
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model.to(device=device)
    model.to(memory_format=memory_format)
    net: nn.Module = model
    if ddp is not None:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    opt = _optimizer(model, recipe)
    start_epoch, history, seconds = 0, [], 0.0
    if resume and out_path is not None and resume_path(out_path).is_file():
        saved, meta, extra = load_checkpoint_with_extra(resume_path(out_path), device)
        model.load_state_dict(saved.state_dict())
        _restore_momentum(opt, extra, device)
        start_epoch, history, seconds = meta["epochs_done"], meta["history"], meta["seconds"]
        if progress and main:
            print(f"resuming {label or getattr(model, 'model_name', 'model')} from epoch {start_epoch}/{epochs}", flush=True)

    guard_x = guard_y = None
    if recipe.adversarial != "none" and recipe.guard_samples:
        held = train.subset(recipe.guard_samples, offset=len(train) - recipe.guard_samples)
        train = train.subset(len(train) - recipe.guard_samples)  # the guard's images are not trained on
        _, guard_x, guard_y = next(held.batches(len(held)))
        guard_x, guard_y = guard_x.to(device), guard_y.to(device)
    best: tuple[float, int, dict[str, torch.Tensor]] | None = None  # guard accuracy, epoch, weights
    if resume and out_path is not None and resume_path(out_path).is_file() and "best_epoch" in meta:
        best = (meta["best_guard_accuracy"], meta["best_epoch"], {k[5:]: v.to(device) for k, v in extra.items() if k.startswith("best.")})
    steps_per_epoch = -(-len(train) // recipe.batch_size)
    images_seen = 0
    base_meta = {
        "dataset": train.name, "classes": list(train.classes), "mean": list(train.mean), "std": list(train.std),
        "image_shape": list(train.image_shape), "recipe": recipe.to_dict(), "epochs": epochs, "seed": seed,
        "train_size": len(train), "versions": library_versions(), **(metadata or {}),
    }  # fmt: skip
    for epoch in range(start_epoch, epochs):
        torch.manual_seed(seed * 100_003 + epoch)
        gen = torch.Generator().manual_seed(seed * 100_003 + epoch)
        net.train()
        t0 = time.perf_counter()
        loss_sum, correct, seen = 0.0, 0, 0
        # on a terminal a live bar; in a log only the epoch line below (no carriage-return stream)
        bar = progress_bar(len(train), f"epoch {epoch + 1}/{epochs}", enabled=progress and show_bar and interactive() and main)
        try:
            for step, (_, x, y) in enumerate(train.batches(recipe.batch_size, shuffle=True, generator=gen)):
                x = random_flip(random_crop(x, recipe.crop_padding, gen), gen) if recipe.flip else random_crop(x, recipe.crop_padding, gen)
                if ddp is not None:  # this rank's rows of the global batch
                    x, y = x[ddp.rank :: ddp.world], y[ddp.rank :: ddp.world]
                x = x.to(device, memory_format=memory_format)
                y = y.to(device)
                if recipe.adversarial != "none":
                    x = adversarial_batch(model, x, y, recipe, gen)
                for group in opt.param_groups:
                    group["lr"] = recipe.lr_at(epoch * steps_per_epoch + step, steps_per_epoch, epochs)
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
            bar.close()
            where = f"; rerun with --resume to continue from epoch {epoch}" if out_path is not None and epoch > 0 else ""
            print(f"interrupted during epoch {epoch + 1}{where}")
            raise
        bar.close()
        epoch_seconds = time.perf_counter() - t0
        seconds += epoch_seconds
        images = seen * (ddp.world if ddp is not None else 1)  # this rank saw every world-th row of each batch
        images_seen += images
        test_acc = clean_accuracy(model, test, device=device)
        record = {
            "epoch": epoch + 1,
            "loss": loss_sum / seen,
            "train_accuracy": correct / seen,
            "test_accuracy": test_acc,
            "seconds": epoch_seconds,
        }
        if guard_x is not None and guard_y is not None:
            record["guard_pgd_accuracy"] = guard_accuracy(model, guard_x, guard_y, recipe.train_eps)
            if best is None or record["guard_pgd_accuracy"] >= best[0]:
                best = (record["guard_pgd_accuracy"], epoch + 1, {k: v.detach().clone() for k, v in model.state_dict().items()})
        history.append(record)
        if progress and main:
            print(
                f"{label + ' ' if label else ''}epoch {epoch + 1}/{epochs}: loss {loss_sum / seen:.3f}  train acc {correct / seen:.3f}  test acc {test_acc:.3f}"
                + (f"  held-out PGD acc {record['guard_pgd_accuracy']:.3f}" if "guard_pgd_accuracy" in record else "")
                + f"  {images / epoch_seconds:.0f} img/s",
                flush=True,
            )
        if out_path is not None and epoch + 1 < epochs and main:
            state = {**base_meta, "epochs_done": epoch + 1, "history": history, "seconds": seconds}
            extra = _momentum_state(opt)
            if best is not None:
                state |= {"best_guard_accuracy": best[0], "best_epoch": best[1]}
                extra |= {f"best.{k}": v for k, v in best[2].items()}
            save_checkpoint(resume_path(out_path), model, state, extra)

    model.eval()
    test_acc = history[-1]["test_accuracy"] if history else clean_accuracy(model, test, device=device)
    guard_meta: dict[str, Any] = {}
    if best is not None:
        guard_meta = {"guard": {"kept_epoch": best[1], "kept_guard_pgd_accuracy": best[0], "samples": recipe.guard_samples}}
        if best[1] != epochs:  # a later epoch lost held-out robustness (catastrophic overfitting): keep the best one
            model.load_state_dict(best[2])
            test_acc = clean_accuracy(model, test, device=device)
            if progress and main:
                print(
                    f"{label + ' ' if label else ''}kept epoch {best[1]} (held-out PGD accuracy {best[0]:.3f}, the best); later epochs lost it",
                    flush=True,
                )
    rate = images_seen / max(seconds, 1e-9) if images_seen else 0.0
    result = TrainResult(test_acc, epochs, seconds, rate, history)
    if out_path is not None and main:
        meta = {**base_meta, "clean_accuracy": test_acc, "test_size": len(test), "train_result": asdict(result), **guard_meta}
        if ddp is not None:
            meta["ddp_world_size"] = ddp.world
        save_checkpoint(out_path, model, meta)
        resume_path(out_path).unlink(missing_ok=True)
    distributed.barrier(ddp, "the end of training")
    model.to(memory_format=torch.contiguous_format)
    return result
