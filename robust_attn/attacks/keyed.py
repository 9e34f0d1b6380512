"""Random draws keyed per sample: each image gets a key hashed from the attack's seed and the image's
bytes, and every random start or stripe it needs is drawn from a stream of that key and a salt
(naming the eps and the stage). A sample's draws therefore do not depend on the batch it is in or its
position there, which is what makes ``rapid``'s outcomes batch-independent (docs/rapid.md)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch

from robust_attn.attacks.apgd import _norm


def sample_keys(x: torch.Tensor, seed: int) -> list[bytes]:
    """One key per image: a hash of the seed and the image's bytes."""
    flat = x.detach().float().cpu().contiguous().flatten(1).numpy()
    salt = int(seed).to_bytes(8, "little", signed=True)
    return [hashlib.blake2b(row.tobytes(), digest_size=16, key=salt).digest() for row in flat]


def keyed_stream(key: bytes, salt: str) -> torch.Generator:
    """A CPU generator seeded from ``key`` and ``salt``: the same pair always gives the same stream."""
    digest = hashlib.blake2b(salt.encode(), digest_size=8, key=key).digest()
    return torch.Generator(device="cpu").manual_seed(int.from_bytes(digest, "little") >> 1)


def keyed_seed(key: bytes, salt: str) -> int:
    """A non-negative 31-bit seed from ``key`` and ``salt``, for a library attack that takes a seed, not a stream."""
    return int.from_bytes(hashlib.blake2b(salt.encode(), digest_size=4, key=key).digest(), "little") >> 1


def _uniform_pm1(shape: torch.Size, generator: torch.Generator) -> torch.Tensor:
    """Uniform(-1, 1) noise, drawn as APGD and Square draw theirs."""
    return 2 * torch.rand(shape, generator=generator) - 1


def keyed_noise(keys: Sequence[bytes], salt: str, like: torch.Tensor, normal: bool) -> torch.Tensor:
    """Per sample, uniform(-1, 1) (or standard normal) noise of one image's shape from its own key."""
    shape = like.shape[1:]
    draw = torch.randn if normal else _uniform_pm1
    rows = [draw(shape, generator=keyed_stream(k, salt)) for k in keys]
    return torch.stack(rows).to(like.device, like.dtype) if rows else torch.empty_like(like)


def keyed_start(x: torch.Tensor, eps: float, norm: str, keys: Sequence[bytes], salt: str) -> torch.Tensor:
    """APGD's random start (a point on the L-inf or L2 eps-sphere, clipped to [0, 1]), drawn from each sample's key."""
    t = keyed_noise(keys, salt, x, normal=norm == "l2")
    return (x + eps * t / (_norm(t, norm) + 1e-12)).clamp(0.0, 1.0)
