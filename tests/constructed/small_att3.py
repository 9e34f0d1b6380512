"""The suite's small trained model: a VGG-att3-pc at width 1/8, trained 4 epochs on built-in data
(about 68% clean accuracy), so attacks flip some predictions and not others.

Its checkpoint is committed beside this file (``small-att3.safetensors``) so that every CPU tests
the same weights and the suite does not spend a minute training it; the tests' fixture trains it
anew only when ``ROBUST_ATTN_TEST_SEED`` asks for other weights. Remake the file with

    python tests/constructed/small_att3.py            # seed 0, ~60 s on 2 cores
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import torch

CHECKPOINT = Path(__file__).with_name("small-att3.safetensors")


def train_small_att3(out: Path, seed: int) -> torch.nn.Module:
    """Train the suite's small VGG-att3-pc from ``seed`` and write its checkpoint to ``out``."""
    import robust_attn as ra

    train = ra.load_dataset("builtin", "train", n=10000)
    test = ra.load_dataset("builtin", "test", n=500)
    torch.manual_seed(seed)
    model = ra.create_model("vgg-att3-pc", layout="compact", width=0.125, dropout=0.0, mean=train.mean, std=train.std)
    recipe = dataclasses.replace(ra.get_recipe("fast"), batch_size=128)
    ra.train_model(model, train, test, recipe, epochs=4, seed=seed, out=out, progress=False)
    return model.eval()


if __name__ == "__main__":
    torch.set_num_threads(2)
    train_small_att3(CHECKPOINT, int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    print(f"wrote {CHECKPOINT} ({CHECKPOINT.stat().st_size:,} bytes)")
