"""Clean predictions and accuracy of a classifier on an in-memory data set."""

from __future__ import annotations

import torch
import torch.nn as nn

from robust_attn.data import ImageDataset


@torch.inference_mode()
def predict(model: nn.Module, dataset: ImageDataset, batch_size: int = 500, device: str | torch.device = "cpu") -> torch.Tensor:
    """Predicted labels (N,) for every sample, model in eval mode."""
    was_training = model.training
    model.eval()
    preds = [model(x.to(device)).argmax(1).cpu() for _, x, _ in dataset.batches(batch_size)]
    model.train(was_training)
    return torch.cat(preds) if preds else torch.zeros(0, dtype=torch.int64)


def clean_accuracy(model: nn.Module, dataset: ImageDataset, batch_size: int = 500, device: str | torch.device = "cpu") -> float:
    """Top-1 accuracy in [0, 1]."""
    if len(dataset) == 0:
        raise ValueError("cannot compute accuracy on an empty data set")
    return float((predict(model, dataset, batch_size, device) == dataset.labels).float().mean())
